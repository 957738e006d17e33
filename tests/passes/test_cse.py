"""cse: structurally equal nodes become one, never random draws or graph
inputs; outputs and updates follow the survivor; values unchanged."""
import numpy as np

import graphc as gc
from graphc.passes.cse import cse
from helpers_passes import assert_same_values, count_ops, floats, program_of


def merged(outputs, inputs=(), updates=None):
    """(program before, program after cse, report)."""
    program = program_of(outputs, inputs, updates=updates)
    before = program.copy()
    report = cse(program)
    return before, program, report


def test_duplicate_exp_becomes_one():
    x = gc.placeholder((4,), name="x")
    before, after, report = merged(gc.exp(x) + gc.exp(x), [x])
    assert count_ops(before, "exp") == 2
    assert count_ops(after, "exp") == 1
    (add,) = [n for n in after.graph if n.op.name == "add"]
    assert add.inputs[0] is add.inputs[1]
    assert report == {"merged": 1}
    assert_same_values(before, after, [floats(4)])


def test_duplicate_chains_collapse_transitively():
    x = gc.placeholder((4,), name="x")
    chain = lambda: gc.tanh(gc.exp(x) + 1.0)  # noqa: E731
    before, after, report = merged(chain() * chain(), [x])
    assert len(before.graph) == 10      # x, 2 x (exp, constant, add, tanh), multiply
    assert len(after.graph) == 6
    for op in ("exp", "constant", "add", "tanh"):
        assert count_ops(before, op) == 2 and count_ops(after, op) == 1, op
    assert report == {"merged": 4}
    assert_same_values(before, after, [floats(4)])


def test_reductions_over_different_axes_are_not_merged():
    x = gc.placeholder((3, 3), name="x")
    y = gc.sum(x, axis=0) + gc.sum(x, axis=1) + gc.sum(x, axis=1, keepdims=True)[:, 0]
    before, after, report = merged(y, [x])
    assert count_ops(after, "sum") == 3
    assert report == {"merged": 0}
    assert_same_values(before, after, [floats(3, 3)])


def test_random_draws_with_different_seeds_are_never_merged():
    a = gc.random.uniform((3,), seed=1)
    b = gc.random.uniform((3,), seed=2)
    before, after, report = merged([a, b])
    assert count_ops(after, "random_uniform") == 2
    assert report == {"merged": 0}
    out = assert_same_values(before, after)
    assert not np.array_equal(out[0], out[1])


def test_random_draws_are_never_merged_even_with_the_same_seed():
    a = gc.random.normal((3,), seed=7)
    b = gc.random.normal((3,), seed=7)
    before, after, report = merged(a * b)
    assert count_ops(before, "random_normal") == 2
    assert count_ops(after, "random_normal") == 2
    assert report == {"merged": 0}
    assert_same_values(before, after)


def test_variables_with_equal_values_are_not_merged():
    v1 = gc.variable(np.ones(3, "float32"), name="v1")
    v2 = gc.variable(np.ones(3, "float32"), name="v2")
    before, after, report = merged(gc.exp(v1) - gc.exp(v2))
    assert count_ops(after, "variable") == 2
    assert count_ops(after, "exp") == 2
    assert report == {"merged": 0}
    v2.assign(np.full(3, 2.0, "float32"))
    out = assert_same_values(before, after)
    np.testing.assert_allclose(out[0], np.e - np.e ** 2, rtol=1e-6)


def test_placeholders_of_the_same_type_are_not_merged():
    x = gc.placeholder((3,), name="x")
    y = gc.placeholder((3,), name="y")
    before, after, report = merged(x - y, [x, y])
    assert count_ops(after, "placeholder") == 2
    assert report == {"merged": 0}
    assert_same_values(before, after, [floats(3), floats(3, seed=1)])


def test_equal_constants_merge():
    c1 = gc.constant(np.array([1.0, 2.0, 3.0], "float32"))
    c2 = gc.constant(np.array([1.0, 2.0, 3.0], "float32"))
    before, after, report = merged(c1 * c2)
    assert count_ops(before, "constant") == 2
    assert count_ops(after, "constant") == 1
    assert report == {"merged": 1}
    np.testing.assert_array_equal(assert_same_values(before, after)[0], [1.0, 4.0, 9.0])


def test_constants_with_the_same_bytes_but_another_dtype_or_shape_do_not_merge():
    as_float = gc.constant(np.zeros(6, "float32"))
    as_int = gc.constant(np.zeros(6, "int32"))           # the same 24 bytes
    as_matrix = gc.constant(np.zeros((2, 3), "float32"))  # the same bytes, other shape
    before, after, report = merged([as_float, as_int, as_matrix])
    assert count_ops(after, "constant") == 3
    assert report == {"merged": 0}
    out = assert_same_values(before, after)
    assert [o.dtype for o in out] == [np.float32, np.int32, np.float32]


def test_fills_of_zero_and_minus_zero_are_not_merged():
    positive = gc.full((3,), 0.0)
    negative = gc.full((3,), -0.0)
    before, after, report = merged([1.0 / positive, 1.0 / negative])
    assert count_ops(after, "full") == 2
    out = assert_same_values(before, after)
    assert (out[0] == np.inf).all() and (out[1] == -np.inf).all()


def test_merged_output_is_redirected_to_the_survivor():
    x = gc.placeholder((4,), name="x")
    first, second = gc.exp(x), gc.exp(x)
    before, after, report = merged([first, second], [x])
    assert before.outputs[0] is not before.outputs[1]
    assert after.outputs[0] is after.outputs[1]
    assert after.outputs[0] in after.graph.nx
    assert report == {"merged": 1}
    assert_same_values(before, after, [floats(4)])


def test_merged_update_value_is_redirected_to_the_survivor():
    x = gc.placeholder((4,), name="x")
    w = gc.variable(np.zeros(4, "float32"), name="w")
    before, after, report = merged([gc.tanh(x) * 2.0], [x], updates={w: w + gc.tanh(x)})
    assert count_ops(after, "tanh") == 1
    (tanh,) = [n for n in after.graph if n.op.name == "tanh"]
    _, value = after.updates[0]
    assert tanh in value.inputs
    assert report == {"merged": 1}
    assert_same_values(before, after, [floats(4)])
