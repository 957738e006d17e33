"""The fused stage of W1's training step: one cluster per kernel, every node of
the optimized graph in exactly one cluster, unfused edges explained."""
import collections
import xml.etree.ElementTree as ET

import pydot
import pytest

import graphc as gc

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")   # pyparsing, in pydot
NS = "{http://www.w3.org/2000/svg}"


def clusters_in_dot(text):
    (graph,) = pydot.graph_from_dot_data(text)
    return {sub.get_name(): [n.get_name() for n in sub.get_node_list()
                             if n.get_name() not in ("graph", "node", "edge")]
            for sub in graph.get_subgraph_list() if sub.get_name().startswith("cluster")}


def test_w1_fused_dot_has_one_cluster_per_kernel_holding_every_node_once(w1):
    clusters = clusters_in_dot(gc.viz.to_dot(w1.step, stage="fused"))
    kernels = w1.step.program.fusion.kernels
    assert len(clusters) == len(kernels) == w1.step.stats["kernels"]
    assert set(clusters) == {f"cluster_k{k.index}" for k in kernels}
    placed = collections.Counter(m for members in clusters.values() for m in members)
    graph_nodes = {f"n{n.id}" for n in w1.step.graph.nx.nodes}
    assert set(placed) == graph_nodes
    assert set(placed.values()) == {1}


def test_each_kernel_cluster_holds_the_nodes_it_computes(w1):
    clusters = clusters_in_dot(gc.viz.to_dot(w1.step, stage="fused"))
    for kernel in w1.step.program.fusion.kernels:
        members = set(clusters[f"cluster_k{kernel.index}"])
        assert {f"n{n.id}" for n in kernel.all_nodes} <= members


def test_w1_fused_svg_draws_each_cluster_around_its_nodes(w1):
    root = ET.fromstring(gc.viz.to_svg(w1.step, stage="fused", engine="python"))
    clusters = [g for g in root.iter(f"{NS}g") if g.get("class") == "cluster"]
    assert len(clusters) == len(w1.step.program.fusion.kernels)
    view = gc.viz.view(w1.step, stage="fused")
    nodes = {g.get("id") for g in root.iter(f"{NS}g") if g.get("class") == "node"}
    assert nodes == set(view.nodes)


def test_unfused_edges_carry_the_fusion_pass_reason(w1):
    view = gc.viz.view(w1.step, stage="fused")
    reasons = {e.reason for e in view.edges if e.reason}
    assert reasons and reasons <= set(w1.step.program.fusion.reasons.values())
    cluster_of = view.cluster_of()
    for edge in view.edges:
        if edge.reason:
            assert cluster_of[edge.source] != cluster_of[edge.target]
    dot = gc.viz.to_dot(w1.step, stage="fused")
    assert "matmul is a library call reading buffers" in dot


def test_kernel_clusters_carry_their_generated_source(w1):
    view = gc.viz.view(w1.step, stage="fused")
    plan_loops = next(iter(w1.step._plans.values())).loops
    for cluster, kernel in zip(view.clusters, w1.step.program.fusion.kernels):
        if kernel in plan_loops:
            assert plan_loops[kernel].source in cluster.code
        if kernel.library is not None:
            assert f"= {kernel.library.op.name}(" in cluster.code


def test_depth_is_refused_for_the_fused_stage(w1):
    with pytest.raises(gc.GraphcError, match="fused stage draws every kernel"):
        gc.viz.to_dot(w1.step, stage="fused", depth=1)
