"""HTML output: one self-contained page (SVG plus side panel), parsed back."""
import json
from html.parser import HTMLParser

import graphc as gc
from viz_graphs import small_training_step

VOID = {"meta", "input", "br", "img", "link", "hr"}


class Page(HTMLParser):
    """Checks that tags nest, and collects ids, links, sources and the JSON island."""

    def __init__(self, text):
        super().__init__()
        self.stack, self.ids, self.urls, self.errors = [], set(), [], []
        self.island, self._in_island, self.tags = None, False, []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        self.ids.add(attrs.get("id"))
        self.urls += [attrs[k] for k in ("src", "href") if k in attrs]
        self._in_island = attrs.get("type") == "application/json"
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        self.ids.add(attrs.get("id"))

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(f"unbalanced </{tag}>")

    def handle_data(self, data):
        if self._in_island:
            self.island = json.loads(data)
            self._in_island = False


def test_html_page_is_well_formed_and_self_contained():
    _, loss, _, updates = small_training_step()
    step = gc.compile(loss, updates=updates, device="reference")
    page = Page(gc.viz.to_html(step, stage="autodiff", engine="python"))
    assert not page.errors and not page.stack
    assert page.tags.count("svg") == 1 and "aside" in page.tags
    assert not [u for u in page.urls if u.startswith(("http:", "https:", "//"))]
    assert "link" not in page.tags            # no external stylesheet


def test_side_panel_has_details_for_every_drawn_node():
    _, loss, _, updates = small_training_step()
    step = gc.compile(loss, updates=updates, device="reference")
    view = gc.viz.view(step, stage="autodiff")
    page = Page(gc.viz.to_html(step, stage="autodiff", engine="python"))
    assert set(page.island) == set(view.nodes)
    assert set(view.nodes) <= page.ids        # the panel finds each by its SVG id
    details = page.island[f"n{loss.node.id}"]["fields"]
    assert {"op", "shape", "dtype", "source line"} <= set(details)


def test_fused_page_shows_each_kernels_generated_source(w1):
    page = Page(gc.viz.to_html(w1.step, stage="fused", engine="python"))
    assert not page.errors
    kernels = w1.step.program.fusion.kernels
    codes = [page.island[f"cluster_k{k.index}"]["code"] for k in kernels]
    assert all(codes) and any("@loop_kernel" in c for c in codes)
    node = next(iter(kernels[0].all_nodes))
    assert page.island[f"n{node.id}"]["cluster"] == "cluster_k0"


def test_names_cannot_inject_markup():
    x = gc.placeholder((2,), name="</script><script>alert(1)</script>")
    page = Page(gc.viz.to_html(gc.exp(x), engine="python"))
    assert not page.errors
    assert page.tags.count("script") == 2     # the JSON island and the page's own
