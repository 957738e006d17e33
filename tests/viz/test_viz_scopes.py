"""Big graphs: a 2,000-node unrolled RNN draws in pure Python, and folds into a
few boxes at depth 1 (timing lives in benchmarks/viz_speed.py)."""
import xml.etree.ElementTree as ET

import pytest

import graphc as gc
from viz_graphs import small_training_step, unrolled_rnn

NS = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def rnn_step():
    loss, _, updates, inputs = unrolled_rnn(steps=84)     # over 2,000 nodes
    return gc.compile(loss, inputs=inputs, updates=updates, device="reference")


def drawn_nodes(svg):
    return [g for g in ET.fromstring(svg).iter(f"{NS}g") if g.get("class") == "node"]


def test_two_thousand_nodes_render_without_graphviz(rnn_step):
    view = gc.viz.view(rnn_step, stage="autodiff")
    assert len(view.nodes) >= 2000
    svg = gc.viz.to_svg(rnn_step, stage="autodiff", engine="python")
    assert len(drawn_nodes(svg)) == len(view.nodes)


def test_depth_one_shows_at_most_sixty_boxes(rnn_step):
    svg = gc.viz.to_svg(rnn_step, stage="autodiff", depth=1, engine="python")
    names = {g.find(f"{NS}title").text.splitlines()[0] for g in drawn_nodes(svg)}
    assert len(names) <= 60
    assert {"scope: rnn", "scope: head", "scope: grad", "scope: sgd"} <= names


def test_every_node_is_drawn_once_itself_or_inside_one_box(rnn_step):
    whole = gc.viz.view(rnn_step, stage="autodiff")
    for depth in (1, 2):
        folded = gc.viz.view(rnn_step, stage="autodiff", depth=depth)
        inside = sum(int(n.info["nodes"]) for n in folded.nodes.values() if n.kind == "scope")
        alone = [n for n in folded.nodes.values() if n.kind != "scope"]
        assert inside + len(alone) == len(whole.nodes)
        assert all(not n.group for n in alone)


def test_depth_two_opens_each_top_level_scope(rnn_step):
    folded = gc.viz.view(rnn_step, stage="autodiff", depth=2)
    boxes = {n.info["scope"] for n in folded.nodes.values() if n.kind == "scope"}
    assert {f"rnn/step{t}" for t in range(80)} <= boxes
    assert "rnn" in boxes                       # the scope's own nodes (its variables)


def test_boxes_are_joined_by_merged_edges_with_total_bytes():
    x = gc.placeholder((4,), name="x")
    with gc.name_scope("a"):
        y = gc.exp(x) + gc.log(x)
    with gc.name_scope("b"):
        z = y * y + y
    view = gc.viz.view(z, depth=1)
    edges = {(e.source, e.target): e for e in view.edges}
    (a_to_b,) = [e for (s, t), e in edges.items() if s.startswith("scope_a") and
                 t.startswith("scope_b")]
    assert a_to_b.count == 1 and a_to_b.nbytes == 16    # y, read three times
    assert not [e for e in view.edges if e.source == e.target]


def test_gradients_fold_under_grad_and_unscoped_updates_under_update():
    _, loss, _, updates = small_training_step()        # updates built outside any scope
    step = gc.compile(loss, updates=updates)
    groups = {n.group[:1] for n in gc.viz.view(step, stage="autodiff").nodes.values()
              if n.role in ("backward", "update") and n.info["op"] not in ("variable",)}
    assert ("grad",) in groups and ("update",) in groups


def test_bad_depth_is_an_error():
    x = gc.placeholder((2,), name="x")
    with pytest.raises(gc.GraphcError, match="depth must be a positive int"):
        gc.viz.view(gc.exp(x), depth=0)
