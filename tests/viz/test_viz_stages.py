"""Stages: what each shows, and how it is obtained from what the user holds."""
import pytest

import graphc as gc
from viz_graphs import small_training_step

PASSES = ["simplify", "cse", "fold", "dce", "lower", "fuse", "memplan"]


def test_stage_names_follow_the_pipeline():
    assert gc.viz.stages() == ["built", "autodiff", *PASSES, "fused", "memory"]


def test_built_leaves_out_what_autodiff_added():
    _, loss, params, updates = small_training_step()
    step = gc.compile(loss, updates=updates, device="reference")
    built = gc.viz.view(step, stage="built")
    whole = gc.viz.view(step, stage="autodiff")
    assert {n.role for n in built.nodes.values()} <= {"forward", "update"}
    assert set(built.nodes) < set(whole.nodes)
    backward = [n for n in whole.nodes.values() if n.role == "backward"]
    assert backward and not set(n.id for n in backward) & set(built.nodes)
    assert f"n{loss.node.id}" in built.nodes


def test_autodiff_tells_forward_backward_and_update_apart():
    x, loss, (w, b), updates = small_training_step()
    step = gc.compile(loss, updates=updates, device="reference")
    roles = {n.node: n.role for n in gc.viz.view(step, stage="autodiff").nodes.values()}
    assert roles[loss.node] == roles[w.node] == roles[x.node] == "forward"
    new_w = updates[w].node
    assert roles[new_w] == "update"                     # w - 0.1 * gw
    assert roles[new_w.inputs[1].inputs[1]] == "backward"   # gw


def test_each_pass_stage_is_the_snapshot_after_that_pass():
    _, loss, _, updates = small_training_step()
    step = gc.compile(loss, updates=updates, device="reference")
    step(*[__import__("numpy").ones((4, 3), "float32")])
    for name in PASSES:
        view = gc.viz.view(step, stage=name)
        assert view.title[0].startswith(f"after {name}")
    lowered = gc.viz.view(step, stage="lower")
    assert "mean" not in {n.info["op"] for n in lowered.nodes.values()}


def test_pass_stages_of_an_executable_come_from_its_compile(w1):
    records = {r.name: r for r in w1.step.passes}
    view = gc.viz.view(w1.step, stage="cse")
    assert len(view.nodes) == len(records["cse"].snapshot.graph)


def test_lowered_nodes_keep_the_role_of_what_they_lower(w1):
    view = gc.viz.view(w1.step, stage="lower")
    softmax_parts = [n for n in view.nodes.values() if n.info["name"].startswith("log_softmax_")]
    assert softmax_parts and {n.role for n in softmax_parts} == {"forward"}


def test_pass_stage_of_a_tensor_with_an_open_dimension_says_what_to_do():
    x = gc.placeholder((None, 3), name="x")
    with pytest.raises(gc.GraphcError, match="compile the graph, call it once"):
        gc.viz.view(gc.exp(x), stage="fuse")


def test_pass_stages_of_a_concrete_tensor_run_the_pipeline_on_a_copy():
    x = gc.placeholder((4, 3), name="x")
    y = gc.sum(gc.exp(x) * 1.0)
    before = set(x.graph.nx.nodes)
    view = gc.viz.view(y, stage="fused")
    assert len(view.clusters) == 1
    assert set(x.graph.nx.nodes) == before      # the user's graph is untouched


def test_unknown_stage_lists_the_stages():
    x = gc.placeholder((2,), name="x")
    with pytest.raises(gc.GraphcError, match="the stages are: built, autodiff, simplify"):
        gc.viz.to_dot(x, stage="optimized")


def test_default_stage_is_fused_for_a_compiled_step_else_autodiff(w1):
    assert gc.viz.view(w1.step).stage == "fused"
    x = gc.placeholder((2,), name="x")
    assert gc.viz.view(gc.exp(x)).stage == "autodiff"


def test_a_graph_and_a_program_can_be_drawn(w1):
    graph_view = gc.viz.view(w1.graph, stage="autodiff")
    assert len(graph_view.nodes) == len(w1.graph)
    program_view = gc.viz.view(w1.step.program)
    assert program_view.stage == "fused" and len(program_view.nodes) == len(w1.step.program.graph)


def test_other_objects_are_refused():
    with pytest.raises(gc.GraphcError, match="not a int"):
        gc.viz.to_dot(3)
