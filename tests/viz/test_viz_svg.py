"""SVG output: well-formed XML with one element per node, drawn in pure Python
unless Graphviz is asked for (and found)."""
import xml.etree.ElementTree as ET

import pytest

import graphc as gc
from graphc.viz import svg as svg_module
from viz_graphs import small_training_step

NS = "{http://www.w3.org/2000/svg}"


def groups(root, cls):
    return [g for g in root.iter(f"{NS}g") if g.get("class", "").split()[0:1] == [cls]]


def test_python_svg_parses_with_one_group_per_node_and_edge():
    _, loss, _, updates = small_training_step()
    tensors = [loss] + list(updates.values())
    view = gc.viz.view(tensors, stage="autodiff")
    root = ET.fromstring(gc.viz.to_svg(tensors, stage="autodiff", engine="python"))
    assert root.tag == f"{NS}svg"
    assert {g.get("id") for g in groups(root, "node")} == set(view.nodes)
    assert len(groups(root, "edge")) == len(view.edges)


def test_title_and_legend_are_drawn():
    _, loss, _, updates = small_training_step()
    step = gc.compile(loss, updates=updates, device="reference")
    root = ET.fromstring(gc.viz.to_svg(step, stage="autodiff", engine="python"))
    texts = [t.text for t in root.iter(f"{NS}text")]
    assert "after autodiff" in texts
    (legend,) = groups(root, "legend")
    assert [t.text for t in legend.iter(f"{NS}text")] == ["forward", "backward", "update"]


def test_roles_are_coloured_apart():
    _, loss, _, updates = small_training_step()
    step = gc.compile(loss, updates=updates, device="reference")
    view = gc.viz.view(step, stage="autodiff")
    root = ET.fromstring(gc.viz.to_svg(step, stage="autodiff", engine="python"))
    fills = {}
    for g in groups(root, "node"):
        shape = next(e for e in g if e.tag in (f"{NS}rect", f"{NS}ellipse"))
        fills.setdefault(view.nodes[g.get("id")].role, set()).add(shape.get("fill"))
    assert all(len(colours) == 1 for colours in fills.values())
    assert len({next(iter(c)) for c in fills.values()}) == 3


def test_auto_falls_back_to_python_without_graphviz(monkeypatch):
    monkeypatch.setattr(svg_module.shutil, "which", lambda name: None)
    x = gc.placeholder((2,), name="x")
    text = gc.viz.to_svg(gc.exp(x))
    assert 'class="node"' in text and "Graphviz" not in text


def test_graphviz_engine_without_dot_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(svg_module.shutil, "which", lambda name: None)
    x = gc.placeholder((2,), name="x")
    with pytest.raises(gc.GraphcError, match="Graphviz's `dot` is not on PATH"):
        gc.viz.to_svg(gc.exp(x), engine="graphviz")


def test_graphviz_is_used_when_found(monkeypatch, tmp_path):
    """A stand-in `dot` on PATH: the DOT text goes to it and its SVG comes back."""
    fake = tmp_path / "dot"
    fake.write_text("#!/bin/sh\ncat > /dev/null\n"
                    "echo '<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\">"
                    "<g class=\"node\" id=\"from_graphviz\"/></svg>'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    x = gc.placeholder((2,), name="x")
    text = gc.viz.to_svg(gc.exp(x))
    assert text.startswith("<svg") and "from_graphviz" in text
    assert "from_graphviz" not in gc.viz.to_svg(gc.exp(x), engine="python")


def test_unknown_engine_is_an_error():
    x = gc.placeholder((2,), name="x")
    with pytest.raises(gc.GraphcError, match="engine must be one of"):
        gc.viz.to_svg(x, engine="cairo")


def test_text_is_escaped():
    x = gc.placeholder((2,), name="a<b>&c")
    root = ET.fromstring(gc.viz.to_svg(gc.exp(x), engine="python"))
    assert "a<b>&c" in [t.text for t in root.iter(f"{NS}text")]
