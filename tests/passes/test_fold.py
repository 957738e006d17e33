"""fold: constant subgraphs become constants computed by the NumPy
references; big creations, random draws and variables stay as they are."""
import numpy as np

import graphc as gc
from graphc.passes.fold import MAX_GROWTH, fold
from graphc.tensor import apply
from helpers_passes import assert_same_values, count_live_ops, count_ops, program_of, rng


def folded(outputs, inputs=(), shapes=None):
    """(program before, program after fold, report)."""
    program = program_of(outputs, inputs, shapes)
    before = program.copy()
    report = fold(program)
    return before, program, report


def test_constant_subexpression_folds_to_one_constant_of_value_six():
    x = gc.placeholder((3,), name="x")
    y = gc.constant(2.0) * gc.constant(3.0) + x
    before, after, report = folded(y, [x])
    assert count_ops(before, "multiply") == 1 and count_ops(before, "constant") == 2
    assert count_ops(after, "multiply") == 0 and count_live_ops(after, "constant") == 1
    (add,) = [n for n in after.graph if n.op.name == "add"]
    six = add.inputs[0]
    assert six.op.name == "constant" and six.attrs["value"].dtype == np.float32
    assert six.attrs["value"] == 6.0
    assert report == {"folded": 1}
    feed = rng(0).standard_normal(3).astype("float32")
    np.testing.assert_array_equal(assert_same_values(before, after, [feed])[0], feed + 6)


def test_folded_value_is_exactly_the_numpy_reference():
    a = np.array([0.1, 2.0, 1e-3], "float32")
    big = np.array([2 ** 31 - 1], "int32")
    y = gc.sqrt(gc.exp(gc.constant(a)) + gc.constant(0.2))
    wraps = gc.constant(big) + gc.constant(np.array([1], "int32"))
    before, after, report = folded([y, wraps])
    assert report == {"folded": 4}       # exp, add, sqrt, and the int add
    value, wrapped = (node.attrs["value"] for node in after.outputs)
    expected = np.sqrt(np.exp(a) + np.float32(0.2))
    assert value.dtype == np.float32
    np.testing.assert_array_equal(value, expected)      # bit for bit
    np.testing.assert_array_equal(wrapped, (big + np.int32(1)))
    assert wrapped[0] == -2 ** 31
    assert_same_values(before, after, rtol=0, atol=0)


def test_size_of_a_concrete_shape_folds():
    x = gc.placeholder((None, 3), name="x")
    y = x / gc.size(x)
    before, after, report = folded(y, [x], [(4, 3)])
    assert count_ops(before, "size") == 1
    assert count_ops(after, "size") == 0
    (divide,) = [n for n in after.graph if n.op.name == "divide"]
    assert divide.inputs[1].op.name == "constant" and divide.inputs[1].attrs["value"] == 12
    assert report == {"folded": 1}
    feed = rng(1).standard_normal((4, 3)).astype("float32")
    assert_same_values(before, after, [feed])


def test_small_full_folds_but_a_large_one_stays():
    small = gc.full((4, 3), 2.0)
    large = gc.zeros((1000, 1000))
    before, after, report = folded([small, large])
    assert count_ops(after, "full") == 1
    assert after.outputs[0].op.name == "constant" and after.outputs[1].op.name == "full"
    assert report == {"folded": 1}
    assert_same_values(before, after)


def test_fold_limit_is_max_growth_elements():
    at_limit = gc.ones((MAX_GROWTH,))
    over_limit = gc.ones((MAX_GROWTH + 1,))
    before, after, report = folded([at_limit, over_limit])
    assert [n.op.name for n in after.outputs] == ["constant", "full"]
    assert report == {"folded": 1}
    assert_same_values(before, after)


def test_broadcast_of_a_scalar_constant_to_a_large_shape_stays():
    small = gc.broadcast_to(gc.constant(1.5), (4, 3))
    large = gc.broadcast_to(gc.constant(1.5), (1000, 1000))
    before, after, report = folded([small, large])
    assert count_ops(after, "broadcast_to") == 1
    assert [n.op.name for n in after.outputs] == ["constant", "broadcast_to"]
    assert report == {"folded": 1}
    assert_same_values(before, after)


def test_random_draw_never_folds_even_from_constant_operands():
    counter = gc.constant(np.array(0, "int64"))
    draw = apply("random_uniform", counter, shape=(3,), seed=5, low=0.0, high=1.0,
                 dtype=np.dtype("float32"))
    before, after, report = folded(draw * 2.0)
    assert count_ops(after, "random_uniform") == 1
    assert count_ops(after, "multiply") == 1
    assert report == {"folded": 0}
    assert_same_values(before, after)


def test_random_draw_from_the_graph_counter_never_folds():
    before, after, report = folded(gc.random.uniform((3,), seed=3) + 1.0)
    assert count_ops(after, "random_uniform") == 1
    assert report == {"folded": 0}


def test_variables_never_fold_and_later_assignments_are_seen():
    v = gc.variable(np.ones(3, "float32"), name="v")
    before, after, report = folded(gc.exp(v) * gc.constant(2.0))
    assert count_ops(after, "variable") == 1 and count_ops(after, "exp") == 1
    assert report == {"folded": 0}
    v.assign(np.zeros(3, "float32"))
    np.testing.assert_array_equal(assert_same_values(before, after)[0], [2.0, 2.0, 2.0])


def test_report_counts_every_folded_node_and_leaves_no_constant_only_op():
    x = gc.placeholder((3,), name="x")
    c = gc.exp(gc.constant(np.arange(3, dtype="float32"))) * 2.0 + 1.0     # 3 ops
    y = x * c + gc.tanh(gc.constant(0.5))                                  # 1 more
    before, after, report = folded(y, [x])
    assert report == {"folded": 4}
    assert count_live_ops(after, "exp") == count_live_ops(after, "tanh") == 0
    for node in after.graph:
        if node.op.kind != "source":
            assert not all(i.op.name == "constant" for i in node.inputs), node
    feed = rng(2).standard_normal(3).astype("float32")
    assert_same_values(before, after, [feed])
