"""DOT output: parsed back with pydot, it has the graph's nodes and edges."""
import pydot
import pytest

import graphc as gc
from viz_graphs import small_training_step

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")   # pyparsing, in pydot
PSEUDO = {"graph", "node", "edge"}


def parse(text):
    (graph,) = pydot.graph_from_dot_data(text)
    return graph


def all_nodes(graph):
    nodes = {n.get_name(): n for n in graph.get_node_list() if n.get_name() not in PSEUDO}
    for sub in graph.get_subgraph_list():
        nodes.update(all_nodes(sub))
    return nodes


def graph_pairs(tensors):
    nodes = tensors[0].graph.ancestors([t.node for t in tensors])
    return nodes, {(f"n{p.id}", f"n{n.id}") for n in nodes for p in n.inputs}


def test_dot_has_one_node_per_graph_node_and_one_edge_per_pair():
    x, loss, _, updates = small_training_step()
    tensors = [loss] + list(updates.values())
    graph = parse(gc.viz.to_dot(tensors, stage="autodiff"))
    nodes, pairs = graph_pairs(tensors)
    assert set(all_nodes(graph)) == {f"n{n.id}" for n in nodes}
    edges = {(e.get_source(), e.get_destination()) for e in graph.get_edge_list()}
    assert edges == pairs
    assert len(graph.get_edge_list()) == len(pairs)


def test_node_labels_show_op_shape_and_dtype_and_edges_show_bytes():
    x = gc.placeholder((4, 3), name="x")
    y = gc.exp(x) * 2.0
    graph = parse(gc.viz.to_dot(y))
    exp = all_nodes(graph)[f"n{y.node.inputs[0].id}"]
    assert exp.get_label().strip('"') == "exp\\n(4, 3) float32"
    (edge,) = [e for e in graph.get_edge_list() if e.get_source() == f"n{x.node.id}"]
    assert edge.get_label().strip('"') == "48 B"        # 4 * 3 float32


def test_unknown_dimension_leaves_the_edge_unlabelled():
    x = gc.placeholder((None, 3), name="x")
    graph = parse(gc.viz.to_dot(gc.exp(x)))
    (edge,) = graph.get_edge_list()
    assert edge.get_label().strip('"') == ""


def test_legend_names_each_role_present_and_no_legend_nodes_are_added():
    _, loss, _, updates = small_training_step()
    step = gc.compile(loss, updates=updates, device="reference")
    graph = parse(gc.viz.to_dot(step, stage="autodiff"))
    label = graph.get_graph_defaults()[0]["label"] if graph.get_graph_defaults() else ""
    for role in ("forward", "backward", "update"):
        assert f">{role}</TD>" in label
    assert all(name.startswith("n") for name in all_nodes(graph))


def test_quotes_and_backslashes_in_names_survive():
    x = gc.placeholder((2,), name='we"ird\\name')
    graph = parse(gc.viz.to_dot(gc.exp(x)))
    node = all_nodes(graph)[f"n{x.node.id}"]
    assert 'we\\"ird\\\\name' in node.get_label()
