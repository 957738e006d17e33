"""JSON output: the same nodes and edges as the graph."""
import json

import graphc as gc
from viz_graphs import small_training_step


def test_json_has_the_graph_nodes_and_edges():
    _, loss, _, updates = small_training_step()
    tensors = [loss] + list(updates.values())
    data = json.loads(gc.viz.to_json(tensors, stage="autodiff"))
    nodes = loss.graph.ancestors([t.node for t in tensors])
    assert data["format"] == "graphc-viz" and data["stage"] == "autodiff"
    assert {n["id"] for n in data["nodes"]} == {f"n{n.id}" for n in nodes}
    assert len(data["nodes"]) == len(nodes)
    pairs = {(f"n{p.id}", f"n{n.id}") for n in nodes for p in n.inputs}
    edges = [(e["source"], e["target"]) for e in data["edges"]]
    assert set(edges) == pairs and len(edges) == len(pairs)


def test_json_nodes_carry_op_shape_dtype_and_edges_bytes():
    x = gc.placeholder((4, 3), name="x")
    y = gc.exp(x)
    data = json.loads(gc.viz.to_json(y))
    by_id = {n["id"]: n for n in data["nodes"]}
    info = by_id[f"n{y.node.id}"]["info"]
    assert (info["op"], info["shape"], info["dtype"]) == ("exp", "(4, 3)", "float32")
    assert info["source line"].endswith(f"test_viz_json.py:{y.node.loc.line}")
    assert data["edges"] == [{"source": f"n{x.node.id}", "target": f"n{y.node.id}",
                              "bytes": 48, "count": 1, "reason": None}]


def test_fused_json_lists_the_kernels_as_clusters(w1):
    data = json.loads(gc.viz.to_json(w1.step, stage="fused"))
    kernels = w1.step.program.fusion.kernels
    assert [c["label"][0] for c in data["clusters"]] == [k.name for k in kernels]
