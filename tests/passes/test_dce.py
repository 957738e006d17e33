"""dce: nodes that reach no output or update value are removed; the
program's placeholders and updated variables stay."""
import numpy as np

import graphc as gc
from graphc.passes.dce import dce
from graphc.passes.pipeline import cleanup_pipeline
from helpers_passes import assert_same_values, count_ops, floats, program_of, run


def pruned(outputs, inputs=(), updates=None):
    """(program before, program after dce, report)."""
    program = program_of(outputs, inputs, updates=updates)
    before = program.copy()
    report = dce(program)
    return before, program, report


def dead_nodes_into(program, x_name="x"):
    """Add tanh(x) * 2.0, used by nothing, to a program's graph; return the 3 nodes."""
    from graphc.ops.registry import OPS
    graph = program.graph
    (x,) = [n for n in graph if n.name == x_name]
    tanh = graph.add(OPS["tanh"], [x])
    two = graph.add(OPS["constant"], [], {"value": np.array(2.0, "float32")})
    return [tanh, two, graph.add(OPS["multiply"], [tanh, two])]


def test_nodes_that_reach_no_output_are_removed():
    x = gc.placeholder((4,), name="x")
    program = program_of(gc.exp(x), [x])
    dead = dead_nodes_into(program)
    before = program.copy()
    assert len(program.graph) == 5 and count_ops(program, "tanh") == 1
    report = dce(program)
    assert report == {"removed": 3}
    assert len(program.graph) == 2 and count_ops(program, "tanh") == 0
    assert not any(node in program.graph.nx for node in dead)
    assert_same_values(before, program, [floats(4)])


def test_unused_placeholders_in_inputs_are_kept():
    x = gc.placeholder((4,), name="x")
    unused = gc.placeholder((2,), name="unused")
    before, after, report = pruned(gc.exp(x), [x, unused])
    assert report == {"removed": 0}
    assert count_ops(after, "placeholder") == 2
    assert all(p in after.graph.nx for p in after.inputs)
    assert_same_values(before, after, [floats(4), floats(2)])


def test_nodes_feeding_an_update_value_are_kept():
    x = gc.placeholder((4,), name="x")
    w = gc.variable(np.ones(4, "float32"), name="w")
    program = program_of(x * 2.0, [x], updates={w: w - 0.1 * gc.exp(x)})
    dead = dead_nodes_into(program)
    before = program.copy()
    report = dce(program)
    assert report == {"removed": len(dead)}
    assert count_ops(program, "exp") == 1 and count_ops(program, "subtract") == 1
    assert count_ops(program, "variable") == 1
    feed = floats(4)
    assert_same_values(before, program, [feed])
    _, (new_w,) = run(program, [feed])
    np.testing.assert_allclose(new_w, 1 - 0.1 * np.exp(feed), rtol=1e-6)


def test_variable_written_by_an_update_but_never_read_is_kept():
    x = gc.placeholder((3,), name="x")
    w = gc.variable(np.ones(3, "float32"), name="w")
    v = gc.variable(np.full(3, 2.0, "float32"), name="v")
    before, after, report = pruned(x * 2.0, [x], updates={w: v * 3.0})
    assert report == {"removed": 0}
    target, _ = after.updates[0]
    assert target in after.graph.nx and count_ops(after, "variable") == 2
    copy = after.copy()                 # the program is still whole
    assert len(copy.graph) == len(after.graph)
    assert_same_values(before, after, [floats(3)])


def test_pipeline_with_an_unread_updated_variable_still_snapshots():
    x = gc.placeholder((3,), name="x")
    w = gc.variable(np.ones(3, "float32"), name="w")
    v = gc.variable(np.full(3, 2.0, "float32"), name="v")
    program = program_of(x * 2.0, [x], updates={w: v * 3.0})
    records = cleanup_pipeline().run(program)
    assert [r.name for r in records] == ["simplify", "cse", "fold", "dce"]
    assert count_ops(records[-1].snapshot, "variable") == 2


def test_report_counts_removed_nodes_and_every_survivor_is_needed():
    x = gc.placeholder((4,), name="x")
    y = gc.placeholder((4,), name="y")
    kept = gc.exp(x) + 1.0
    program = program_of([kept, gc.sum(kept)], [x, y])
    dead = dead_nodes_into(program) + dead_nodes_into(program, "y")
    size = len(program.graph)
    report = dce(program)
    assert report == {"removed": len(dead)} == {"removed": 6}
    assert len(program.graph) == size - 6
    needed = program.graph.ancestors(program.roots()) | set(program.inputs)
    assert set(program.graph) == needed
