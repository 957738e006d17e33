"""lower: softmax, log_softmax, logsumexp, mean and sum_to become max/sum
reductions with keepdims, elementwise ops and reshapes (nothing else; a fill
over a zero-size axis), and the
program computes what the NumPy references compute, extreme logits included."""
import numpy as np
import pytest

import graphc as gc
from graphc.ops.registry import ELEMENTWISE
from graphc.passes.lower import lower
from graphc.tensor import apply
from helpers_passes import assert_same_values, count_live_ops, count_ops, floats, program_of, rng, run

COMPOSITES = ("softmax", "log_softmax", "logsumexp", "mean", "sum_to")


def lowered(outputs, inputs):
    """(program before, program after lower, report)."""
    program = program_of(outputs, inputs)
    before = program.copy()
    report = lower(program)
    return before, program, report


def assert_only_primitives(program):
    """No composite left: max/sum with keepdims, elementwise ops, reshapes, sources."""
    for node in program.graph:
        name = node.op.name
        assert name not in COMPOSITES, node
        if name in ("max", "sum"):
            assert node.attrs["keepdims"] is True, node
        else:
            assert name in ("placeholder", "constant", "reshape") or \
                node.op.kind == ELEMENTWISE, node


def ops(program):
    """{op name: count} over the non-source nodes."""
    counts = {}
    for node in program.graph:
        if node.op.name not in ("placeholder", "constant"):
            counts[node.op.name] = counts.get(node.op.name, 0) + 1
    return counts


def logits(*shape, seed=0):
    """Random logits with extremes: a row of +-1000 and a row of equal large values."""
    x = rng(seed).standard_normal(shape).astype("float32") * 3
    x[0] = 1000.0
    x[0, ::2] = -1000.0
    x[-1] = -1000.0
    return x


# -- log_softmax and softmax -------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_log_softmax_becomes_max_sum_exp_log_and_subtracts(dtype):
    x = gc.placeholder((4, 5), dtype, name="x")
    before, after, report = lowered(gc.nn.log_softmax(x, axis=1), [x])
    assert report == {"log_softmax": 1}
    assert_only_primitives(after)
    assert ops(after) == {"max": 1, "subtract": 2, "exp": 1, "sum": 1, "log": 1}
    (reduction,) = [n for n in after.graph if n.op.name == "max"]
    assert reduction.attrs["axis"] == (1,) and reduction.shape == (4, 1)


def test_softmax_becomes_max_sum_exp_and_divides():
    x = gc.placeholder((4, 5), name="x")
    before, after, report = lowered(gc.nn.softmax(x, axis=0), [x])
    assert report == {"softmax": 1}
    assert_only_primitives(after)
    # exp(x - max) is built once, for the sum and the quotient (cse ran before lower)
    assert ops(after) == {"max": 1, "subtract": 1, "exp": 1, "sum": 1, "divide": 1}
    assert all(n.attrs["axis"] == (0,) for n in after.graph if n.op.name in ("max", "sum"))


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
@pytest.mark.parametrize("axis", [0, 1])
def test_softmax_lowerings_match_the_reference_on_extreme_logits(op, axis):
    x = gc.placeholder((4, 6), name="x")
    before, after, _ = lowered(getattr(gc.nn, op)(x, axis=axis), [x])
    (value,) = assert_same_values(before, after, [logits(4, 6)], rtol=1e-6, atol=1e-6)
    assert np.isfinite(value).all()         # the maximum is subtracted before exp


def test_log_softmax_of_logits_a_thousand_apart_is_minus_two_thousand_not_inf():
    x = gc.placeholder((1, 2), name="x")
    _, after, _ = lowered(gc.nn.log_softmax(x, axis=1), [x])
    (value,), _ = run(after, [np.array([[1000.0, -1000.0]], "float32")])
    np.testing.assert_array_equal(value, [[0.0, -2000.0]])


# -- logsumexp -----------------------------------------------------------------------------

@pytest.mark.parametrize("axis, keepdims, shape", [
    (1, False, (4,)), (1, True, (4, 1)), ((0, 1), False, ()), (0, True, (1, 6))])
def test_logsumexp_becomes_primitives_with_the_right_shape(axis, keepdims, shape):
    x = gc.placeholder((4, 6), name="x")
    before, after, report = lowered(gc.logsumexp(x, axis=axis, keepdims=keepdims), [x])
    assert report == {"logsumexp": 1}
    assert_only_primitives(after)
    assert count_ops(after, "max") == 1 and count_ops(after, "sum") == 1
    assert count_ops(after, "reshape") == (0 if keepdims else 1)
    assert after.outputs[0].shape == shape


@pytest.mark.parametrize("axis, keepdims", [(1, False), (1, True), ((0, 1), False), (0, True)])
def test_logsumexp_matches_the_reference_on_extreme_logits(axis, keepdims):
    x = gc.placeholder((4, 6), name="x")
    before, after, _ = lowered(gc.logsumexp(x, axis=axis, keepdims=keepdims), [x])
    assert_same_values(before, after, [logits(4, 6)], rtol=1e-6, atol=1e-6)


def test_logsumexp_of_an_all_minus_inf_row_is_minus_inf_not_nan():
    x = gc.placeholder((3, 4), name="x")
    before, after, _ = lowered(gc.logsumexp(x, axis=1), [x])
    data = logits(3, 4)
    data[1] = -np.inf
    (value,) = assert_same_values(before, after, [data], rtol=1e-6, atol=1e-6)
    assert value[1] == -np.inf
    assert np.isfinite(value[[0, 2]]).all()


@pytest.mark.parametrize("build", [lambda x: gc.logsumexp(x, axis=0),
                                   lambda x: gc.nn.softmax(x, axis=0),
                                   lambda x: gc.nn.log_softmax(x, axis=0)],
                         ids=["logsumexp", "softmax", "log_softmax"])
def test_a_zero_size_axis_lowers_to_a_fill_without_a_max(build):
    """A max over no elements does not exist: the result (-inf for logsumexp, an empty
    array for the softmaxes) is filled instead."""
    x = gc.placeholder((0, 3), name="x")
    before, after, _ = lowered(build(x), [x])
    assert ops(after) == {"full": 1}
    assert_same_values(before, after, [np.zeros((0, 3), np.float32)])


def test_logsumexp_with_a_plus_inf_element_is_plus_inf():
    x = gc.placeholder((2, 3), name="x")
    before, after, _ = lowered(gc.logsumexp(x, axis=1), [x])
    data = np.array([[np.inf, 1.0, 2.0], [0.0, 1.0, 2.0]], "float32")
    (value,), _ = run(after, [data])
    assert value[0] == np.inf


# -- mean ----------------------------------------------------------------------------------

def test_mean_of_ints_sums_exactly_then_divides_in_float64():
    """As NumPy's mean of ints: an int64 sum (exact), divided in float64, then float32."""
    x = gc.placeholder((2, 3, 4), "int64", name="x")
    before, after, report = lowered(gc.mean(x, axis=(0, 2)), [x])
    assert report == {"mean": 1}
    assert_only_primitives(after)
    assert ops(after) == {"cast": 2, "sum": 1, "divide": 1, "reshape": 1}
    (count,) = [n for n in after.graph if n.op.name == "constant"]
    assert count.attrs["value"] == 8 and count.dtype == np.float64
    assert after.outputs[0].dtype == np.float32
    (total,) = [n for n in after.graph if n.op.name == "sum"]
    assert total.attrs["axis"] == (0, 2) and total.dtype == np.int64
    data = np.arange(24).reshape(2, 3, 4) * 7 - 100
    (value,) = assert_same_values(before, after, [data])
    np.testing.assert_array_equal(value, [-47.5, -19.5, 8.5])


@pytest.mark.parametrize("axis, keepdims, reshapes", [
    (1, False, 1), (1, True, 0), ((0, 2), True, 0), (None, False, 1)])
def test_mean_of_floats_sums_and_divides_without_a_cast(axis, keepdims, reshapes):
    x = gc.placeholder((2, 3, 4), name="x")
    before, after, report = lowered(gc.mean(x, axis=axis, keepdims=keepdims), [x])
    assert report == {"mean": 1}
    assert_only_primitives(after)
    assert ops(after) == {"sum": 1, "divide": 1, **({"reshape": 1} if reshapes else {})}
    assert_same_values(before, after, [logits(2, 3, 4)], rtol=1e-6, atol=1e-6)


# -- sum_to --------------------------------------------------------------------------------

def test_sum_to_sums_leading_and_size_one_axes_then_reshapes():
    x = gc.placeholder((2, 3, 4, 5), name="x")
    before, after, report = lowered(gc.sum_to(x, (3, 1, 5)), [x])
    assert report == {"sum_to": 1}
    assert_only_primitives(after)
    (total,) = [n for n in after.graph if n.op.name == "sum"]
    assert total.attrs["axis"] == (0, 2) and total.shape == (1, 3, 1, 5)
    (reshape,) = [n for n in after.graph if n.op.name == "reshape"]
    assert reshape.attrs["newshape"] == (3, 1, 5) and after.outputs[0] is reshape
    assert_same_values(before, after, [logits(2, 3, 4, 5)], rtol=1e-5, atol=1e-4)


def test_sum_to_a_shape_of_the_same_rank_needs_no_reshape():
    x = gc.placeholder((3, 4), name="x")
    before, after, _ = lowered(gc.sum_to(x, (3, 1)), [x])
    assert ops(after) == {"sum": 1}
    assert after.outputs[0].shape == (3, 1)
    assert_same_values(before, after, [logits(3, 4)], rtol=1e-6, atol=1e-4)


def test_sum_to_the_shape_of_an_operand_drops_the_operand():
    x = gc.placeholder((2, 3, 4), name="x")
    like = gc.placeholder((1, 4), name="like")
    before, after, _ = lowered(apply("sum_to", x, like, shape=None), [x, like])
    assert_only_primitives(after)
    (total,) = [n for n in after.graph if n.op.name == "sum"]
    assert total.attrs["axis"] == (0, 1)
    assert after.outputs[0].shape == (1, 4)
    assert after.graph.users(after.inputs[1]) == []
    assert_same_values(before, after, [logits(2, 3, 4), np.zeros((1, 4), "float32")],
                       rtol=1e-6, atol=1e-4)


def test_sum_to_its_own_shape_is_the_operand_itself():
    x = gc.placeholder((3, 4), name="x")
    before, after, report = lowered(gc.exp(gc.sum_to(x, (3, 4))), [x])
    assert report == {"sum_to": 1}
    assert ops(after) == {"exp": 1}
    assert after.outputs[0].inputs == tuple(after.inputs)
    assert_same_values(before, after, [logits(3, 4)])


def test_sum_to_of_int32_keeps_its_dtype():
    x = gc.placeholder((3, 4), "int32", name="x")
    before, after, _ = lowered(gc.sum_to(x, (4,)), [x])
    assert after.outputs[0].dtype == np.int32
    assert_same_values(before, after, [np.arange(12, dtype="int32").reshape(3, 4)])


# -- the pass as a whole -------------------------------------------------------------------

def test_every_composite_in_one_program_is_lowered_and_counted():
    x = gc.placeholder((4, 6), name="x")
    y = gc.placeholder((4, 6), name="y")
    loss = gc.mean(gc.nn.log_softmax(x, axis=1) * gc.nn.softmax(y, axis=0)) + gc.sum(
        gc.logsumexp(x, axis=0)) + gc.sum(gc.sum_to(y, (1, 6)))
    before, after, report = lowered(loss, [x, y])
    assert report == {"log_softmax": 1, "softmax": 1, "logsumexp": 1, "mean": 1, "sum_to": 1}
    assert all(count_ops(after, op) == 0 for op in COMPOSITES)
    assert_same_values(before, after, [logits(4, 6), logits(4, 6, seed=1)], rtol=1e-5)


def test_lowered_nodes_are_named_after_and_located_at_the_composite():
    x = gc.placeholder((4, 6), name="x")
    y = gc.nn.softmax(x, axis=1)
    before, after, _ = lowered(y, [x])
    (softmax,) = [n for n in before.graph if n.op.name == "softmax"]
    new = [n for n in after.graph if n.op.name not in ("placeholder", "constant")]
    assert len(new) == 5          # max, subtract, exp, sum, divide
    assert all(n.name.startswith("softmax_") and n.loc == softmax.loc for n in new)


def test_a_lowered_output_stays_an_output():
    x = gc.placeholder((4, 6), name="x")
    before, after, _ = lowered([gc.nn.softmax(x, axis=1), gc.mean(x)], [x])
    assert [n.op.name for n in after.outputs] == ["divide", "reshape"]
    assert all(n in after.graph.nx for n in after.outputs)
    assert_same_values(before, after, [logits(4, 6)], rtol=1e-6)


@pytest.mark.parametrize("op", ["sum", "prod", "max", "min", "mean", "logsumexp"])
def test_reduction_over_no_axes_is_its_operand(op):
    """max(x, axis=()) is x. Left as a reduction, the fused loop had no reduced axis to
    run it over and read its value before computing it (the differential test's find)."""
    x = gc.placeholder((2, 2, 1), name="x")
    reduced = getattr(gc, op)(gc.abs(x), axis=())
    program = program_of([reduced * 2.0], [x])
    before = program.copy()
    report = lower(program)
    assert report == {op: 1}
    assert all(count_live_ops(program, name) == 0 for name in (op, "sum", "max"))
    assert_same_values(before, program, [floats(2, 2, 1)])    # (CUDA reduced mean and
                                                              # logsumexp over every axis)
