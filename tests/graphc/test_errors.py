"""Every bad input a user can cause is a GraphcError subclass whose message names
the op (or placeholder), the shapes or dtypes involved, and the user's file and
line; and a failed call leaves every variable as it was (DESIGN.md, "Errors and
bad input")."""
import inspect
import re

import numpy as np
import pytest

import graphc as gc
from helpers import rng


def here():
    """The line number of the caller: `line = here(); offending_call()`."""
    return inspect.currentframe().f_back.f_lineno


def assert_points_at(error, line, *parts):
    """str(error) names this test file at `line`, and contains every part."""
    text = str(error)
    assert re.search(re.escape(f"{__file__}:{line}") + r"\b", text), (
        f"expected {__file__}:{line} in:\n{text}")
    for part in parts:
        assert part in text, f"expected {part!r} in:\n{text}"


# -- type errors while building the graph ---------------------------------------------

def test_add_of_shapes_that_do_not_broadcast_is_a_shape_error_at_the_users_line():
    x = gc.placeholder((2, 3), name="x")
    y = gc.placeholder((4, 5), name="y")
    with pytest.raises(gc.ShapeError) as info:
        line = here(); x + y  # noqa: E702
    assert_points_at(info.value, line, "add", "(2, 3)", "(4, 5)")
    assert info.value.op == "add"


def test_matmul_of_misaligned_shapes_is_a_shape_error_naming_both_shapes():
    a = gc.placeholder((2, 3), name="a")
    b = gc.placeholder((4, 5), name="b")
    with pytest.raises(gc.ShapeError) as info:
        line = here(); a @ b  # noqa: E702
    assert_points_at(info.value, line, "matmul", "(2, 3)", "(4, 5)", "3 != 4")


def test_exp_of_an_integer_tensor_is_a_dtype_error_naming_the_dtype():
    n = gc.placeholder((3,), "int64", name="n")
    with pytest.raises(gc.DtypeError) as info:
        line = here(); gc.exp(n)  # noqa: E702
    assert_points_at(info.value, line, "exp", "int64")


def test_where_with_a_float_condition_is_a_dtype_error():
    c = gc.placeholder((3,), "float32", name="c")
    a = gc.placeholder((3,), name="a")
    with pytest.raises(gc.DtypeError) as info:
        line = here(); gc.where(c, a, 0.0)  # noqa: E702
    assert_points_at(info.value, line, "where", "float32", "bool")


def test_sum_over_an_axis_the_tensor_lacks_is_a_shape_error():
    x = gc.placeholder((2, 3), name="x")
    with pytest.raises(gc.ShapeError) as info:
        line = here(); gc.sum(x, axis=2)  # noqa: E702
    assert_points_at(info.value, line, "sum", "axis 2", "(2, 3)")


def test_softmax_over_an_axis_the_tensor_lacks_is_a_shape_error():
    x = gc.placeholder((2, 3), name="x")
    with pytest.raises(gc.ShapeError) as info:
        line = here(); gc.nn.softmax(x, axis=-3)  # noqa: E702
    assert_points_at(info.value, line, "softmax", "axis -3", "(2, 3)")


def test_concatenate_along_an_axis_the_tensors_lack_is_a_shape_error():
    a = gc.placeholder((2, 3), name="a")
    b = gc.placeholder((2, 3), name="b")
    with pytest.raises(gc.ShapeError) as info:
        line = here(); gc.concatenate([a, b], axis=2)  # noqa: E702
    assert_points_at(info.value, line, "concatenate", "axis 2", "(2, 3)")


def test_tensors_of_two_graphs_cannot_be_combined():
    with gc.Graph("first"):
        a = gc.placeholder((3,), name="a")
    with gc.Graph("second"):
        b = gc.placeholder((3,), name="b")
        with pytest.raises(gc.GraphcError) as info:
            line = here(); a + b  # noqa: E702
    assert_points_at(info.value, line, "add", "first", "second")


def test_bool_of_a_symbolic_tensor_raises_pointing_at_the_if():
    x = gc.placeholder((3,), name="x")
    with pytest.raises(gc.GraphcError) as info:
        line = here(); bool(x)  # noqa: E702
    assert_points_at(info.value, line, "x", "gc.where")
    with pytest.raises(gc.GraphcError) as info:
        line = here()
        if gc.sum(x) > 0:  # the usual way to hit it
            pass
    assert_points_at(info.value, line + 1)


# -- gradients ----------------------------------------------------------------------------

def test_grad_of_a_non_scalar_without_grad_y_is_a_grad_error_naming_the_shape():
    x = gc.placeholder((2, 3), name="x")
    y = gc.tanh(x)
    with pytest.raises(gc.GradError) as info:
        line = here(); gc.grad(y, x)  # noqa: E702
    assert_points_at(info.value, line, "grad", "(2, 3)", "grad_y")


def test_grad_with_respect_to_an_integer_tensor_is_a_dtype_error():
    n = gc.placeholder((3,), "int64", name="n")
    y = gc.sum(n.astype("float32"))
    with pytest.raises(gc.DtypeError) as info:
        line = here(); gc.grad(y, [n])  # noqa: E702
    assert_points_at(info.value, line, "grad", "int64", "n")


def test_grad_of_an_integer_output_is_a_dtype_error():
    n = gc.placeholder((3,), "int64", name="n")
    x = gc.placeholder((3,), name="x")
    y = gc.sum(n)
    with pytest.raises(gc.DtypeError) as info:
        line = here(); gc.grad(y, [x])  # noqa: E702
    assert_points_at(info.value, line, "grad", "int64")


# -- feeds ----------------------------------------------------------------------------------

@pytest.fixture
def double():
    """An executable f(x: (None, 3) float32, n: (2,) int64) -> (2 * x, n + 1)."""
    x = gc.placeholder((None, 3), "float32", name="x")
    n = gc.placeholder((2,), "int64", name="n")
    return gc.compile([x * 2.0, n + 1], inputs=[x, n], device="reference")


def test_a_feed_of_the_wrong_shape_is_a_feed_error_naming_the_placeholder(double):
    with pytest.raises(gc.FeedError) as info:
        line = here(); double(np.zeros((4, 5), np.float32), np.zeros(2, np.int64))  # noqa: E702
    assert_points_at(info.value, line, "'x'", "(None, 3)", "(4, 5)")


def test_a_feed_with_the_wrong_rank_is_a_feed_error(double):
    with pytest.raises(gc.FeedError) as info:
        line = here(); double(np.zeros(3, np.float32), np.zeros(2, np.int64))  # noqa: E702
    assert_points_at(info.value, line, "'x'", "(None, 3)", "(3,)")


def test_a_float_fed_to_an_int64_placeholder_is_a_feed_error_naming_the_dtypes(double):
    with pytest.raises(gc.FeedError) as info:
        line = here(); double(np.zeros((1, 3), np.float32), np.array([0.5, 1.5]))  # noqa: E702
    assert_points_at(info.value, line, "'n'", "int64", "float64")


def test_a_missing_feed_is_a_feed_error_naming_the_placeholder(double):
    with pytest.raises(gc.FeedError) as info:
        line = here(); double(np.zeros((1, 3), np.float32))  # noqa: E702
    assert_points_at(info.value, line, "missing", "'n'", "(2,)", "int64")


def test_an_unknown_feed_name_is_a_feed_error_listing_the_inputs(double):
    with pytest.raises(gc.FeedError) as info:
        line = here(); double(x=np.zeros((1, 3), np.float32), m=np.zeros(2, np.int64))  # noqa: E702
    assert_points_at(info.value, line, "'m'", "x, n")


def test_too_many_positional_feeds_is_a_feed_error(double):
    a, b = np.zeros((1, 3), np.float32), np.zeros(2, np.int64)
    with pytest.raises(gc.FeedError) as info:
        line = here(); double(a, b, b)  # noqa: E702
    assert_points_at(info.value, line, "at most 2", "got 3")


def test_a_ragged_list_feed_is_a_feed_error_not_a_crash(double):
    with pytest.raises(gc.FeedError) as info:
        line = here(); double([[1.0, 2.0, 3.0], [4.0]], [1, 2])  # noqa: E702
    assert_points_at(info.value, line, "'x'", "(None, 3)", "list")


def test_fed_batch_sizes_that_disagree_fail_at_the_add_that_combines_them():
    x = gc.placeholder((None, 3), name="x")
    y = gc.placeholder((None, 3), name="y")
    line = here(); z = x + y  # noqa: E702
    step = gc.compile(z * 2.0, inputs=[x, y], device="reference")
    with pytest.raises(gc.ShapeError) as info:
        step(np.zeros((4, 3), np.float32), np.zeros((5, 3), np.float32))
    assert_points_at(info.value, line, "add", "(4, 3)", "(5, 3)")
    assert info.value.op == "add"
    # the executable is not poisoned: agreeing sizes still run
    out = step(np.ones((4, 3), np.float32), np.ones((4, 3), np.float32))
    np.testing.assert_array_equal(out, np.full((4, 3), 4.0, np.float32))


# -- compile ------------------------------------------------------------------------------------

def test_an_update_of_a_placeholder_is_a_compile_error_naming_it():
    x = gc.placeholder((3,), name="x")
    with pytest.raises(gc.CompileError) as info:
        line = here(); gc.compile([x * 2.0], inputs=[x], updates={x: x + 1.0})  # noqa: E702
    assert_points_at(info.value, line, "non-variable", "x", "placeholder")


def test_an_update_of_a_computed_tensor_is_a_compile_error_naming_its_op():
    w = gc.variable(np.ones(3, np.float32), name="w")
    doubled = w * 2.0
    with pytest.raises(gc.CompileError) as info:
        line = here(); gc.compile([w], inputs=[], updates={doubled: w})  # noqa: E702
    assert_points_at(info.value, line, "non-variable", doubled.name, "multiply")


def test_an_update_of_the_wrong_shape_is_a_shape_error_naming_both_shapes():
    w = gc.variable(np.ones((2, 3), np.float32), name="w")
    made = here(); wrong = gc.sum(w, axis=0)  # noqa: E702
    with pytest.raises(gc.ShapeError) as info:
        line = here(); gc.compile([w], inputs=[], updates={w: wrong})  # noqa: E702
    assert_points_at(info.value, line, "'w'", "(2, 3)", "(3,)")
    assert f"{__file__}:{made}" in str(info.value)      # where the value was made, too


def test_an_update_of_the_wrong_dtype_is_a_dtype_error_naming_both_dtypes():
    w = gc.variable(np.ones(3, np.float32), name="w")
    wrong = w.astype("float64") * 2.0
    with pytest.raises(gc.DtypeError) as info:
        line = here(); gc.compile([w], inputs=[], updates={w: wrong})  # noqa: E702
    assert_points_at(info.value, line, "'w'", "float32", "float64")


def test_a_needed_placeholder_missing_from_inputs_is_a_compile_error():
    x = gc.placeholder((None, 3), name="x")
    y = gc.placeholder((None, 3), name="y")
    z = x + y
    with pytest.raises(gc.CompileError) as info:
        line = here(); gc.compile([z], inputs=[x])  # noqa: E702
    assert_points_at(info.value, line, "'y'", "(None, 3)", "float32", "not in inputs")


def test_an_unknown_device_is_a_compile_error_naming_it():
    x = gc.placeholder((3,), name="x")
    with pytest.raises(gc.CompileError) as info:
        line = here(); gc.compile([x * 2.0], inputs=[x], device="tpu9")  # noqa: E702
    assert_points_at(info.value, line, "'tpu9'", "reference")


# -- run-time failures -------------------------------------------------------------------------

def test_an_out_of_range_one_hot_label_fails_at_run_time_naming_one_hot():
    labels = gc.placeholder((None,), "int64", name="labels")
    line = here(); encoded = gc.one_hot(labels, 3)  # noqa: E702
    step = gc.compile([encoded], inputs=[labels], device="reference")
    np.testing.assert_array_equal(step(np.array([2, 0]))[0], [[0, 0, 1], [1, 0, 0]])
    with pytest.raises(gc.GraphcError) as info:
        step(np.array([0, 5]))
    assert_points_at(info.value, line, "one_hot", "5", "3 classes")


# -- a failed call leaves variables unchanged --------------------------------------------------

def _training_step():
    """A step that reads x (None, 3) float32 and ids (None,) int64 and updates a and b."""
    data = rng(3)
    a = gc.variable(data.standard_normal((3, 2)).astype(np.float32), name="a")
    b = gc.variable(data.standard_normal(2).astype(np.float32), name="b")
    x = gc.placeholder((None, 3), name="x")
    ids = gc.placeholder((None,), "int64", name="ids")
    rows = gc.take(x @ a + b, ids, axis=0)           # fails at run time for a bad id
    labels = gc.one_hot(ids, 2)                        # fails at run time for an id >= 2
    loss = gc.mean(gc.square(rows - labels))
    ga, gb = gc.grad(loss, [a, b])
    step = gc.compile([loss], inputs=[x, ids], updates={a: a - 0.5 * ga, b: b - 0.5 * gb},
                      device="reference")
    return step, a, b


def test_a_successful_call_does_update_the_variables():
    step, a, b = _training_step()
    before = (a.value, b.value)
    step(np.ones((2, 3), np.float32), np.array([0, 1]))
    assert not np.array_equal(a.value, before[0])
    assert not np.array_equal(b.value, before[1])


@pytest.mark.parametrize("feeds, error", [
    ((np.ones((2, 4), np.float32), np.array([0, 1])), gc.FeedError),       # wrong shape
    ((np.ones((2, 3), np.float32), np.array([0.0, 1.0])), gc.FeedError),   # wrong dtype
    ((np.ones((2, 3), np.float32),), gc.FeedError),                        # missing
    ((np.ones((2, 3), np.float32), np.array([0, 7])), gc.GraphcError),     # take out of range
    ((np.ones((9, 3), np.float32), np.array([0, 2])), gc.GraphcError),     # one_hot label 2 of 2
], ids=["feed-shape", "feed-dtype", "feed-missing", "take-index", "one-hot-label"])
def test_a_failed_call_leaves_every_variable_unchanged(feeds, error):
    step, a, b = _training_step()
    step(np.ones((2, 3), np.float32), np.array([0, 1]))     # some state to protect
    before = (a.value, b.value)
    with pytest.raises(error):
        step(*feeds)
    np.testing.assert_array_equal(a.value, before[0])
    np.testing.assert_array_equal(b.value, before[1])
    # and the executable still works afterwards
    step(np.ones((2, 3), np.float32), np.array([0, 1]))
    assert not np.array_equal(a.value, before[0])
