"""The executable's calling convention (DESIGN.md, Runtime: Executable; Public
contract): feeds, outputs, shape specialization, variables as shared state,
atomic updates, state dicts, check_numerics, and a small training loop."""
import inspect

import numpy as np
import pytest

import graphc as gc
from helpers import rng


def here():
    return inspect.currentframe().f_back.f_lineno


@pytest.fixture
def affine():
    """f(x, y) = 2x + y, x and y of shape (None, 3)."""
    x = gc.placeholder((None, 3), name="x")
    y = gc.placeholder((None, 3), name="y")
    step = gc.compile([2.0 * x + y], inputs=[x, y], device="reference")
    return step, x, y


def _arrays(rows=2, seed=0):
    data = rng(seed)
    return (data.standard_normal((rows, 3)).astype(np.float32),
            data.standard_normal((rows, 3)).astype(np.float32))


# -- feeds ----------------------------------------------------------------------------

def test_positional_feeds_follow_the_inputs_order(affine):
    step, _, _ = affine
    a, b = _arrays()
    (out,) = step(a, b)
    np.testing.assert_allclose(out, 2 * a + b, rtol=1e-6)
    (swapped,) = step(b, a)
    np.testing.assert_allclose(swapped, 2 * b + a, rtol=1e-6)


def test_keyword_feeds_bind_by_placeholder_name(affine):
    step, _, _ = affine
    a, b = _arrays()
    (out,) = step(y=b, x=a)
    np.testing.assert_allclose(out, 2 * a + b, rtol=1e-6)
    (mixed,) = step(a, y=b)
    np.testing.assert_allclose(mixed, 2 * a + b, rtol=1e-6)


def test_a_single_dict_feed_may_be_keyed_by_tensors_or_by_names(affine):
    step, x, y = affine
    a, b = _arrays()
    (by_tensor,) = step({y: b, x: a})
    (by_name,) = step({"y": b, "x": a})
    np.testing.assert_allclose(by_tensor, 2 * a + b, rtol=1e-6)
    np.testing.assert_array_equal(by_name, by_tensor)


def test_feeds_of_the_same_kind_are_converted_to_the_placeholders_dtype():
    x = gc.placeholder((None,), "float32", name="x")
    labels = gc.placeholder((None,), "int64", name="labels")
    step = gc.compile([x * 1.0, labels + 0], inputs=[x, labels], device="reference")
    data = np.array([0.1, 1.0 / 3.0, 1e-3])                 # float64
    values, ids = step(data, np.array([2, 0, 1], np.int32))
    assert values.dtype == np.float32
    np.testing.assert_array_equal(values, data.astype(np.float32))
    assert ids.dtype == np.int64
    np.testing.assert_array_equal(ids, [2, 0, 1])
    # plain Python lists are arrays too
    values, ids = step([1.5, 2.5], [1, 0])
    assert values.dtype == np.float32 and ids.dtype == np.int64
    np.testing.assert_array_equal(ids, [1, 0])


# -- outputs --------------------------------------------------------------------------

def test_a_list_of_outputs_returns_a_list_and_a_single_tensor_returns_one_array():
    x = gc.placeholder((2,), name="x")
    as_list = gc.compile([x + 1.0, x * 3.0], inputs=[x], device="reference")
    as_one = gc.compile(x + 1.0, inputs=[x], device="reference")
    data = np.array([1.0, 2.0], np.float32)
    both = as_list(data)
    assert isinstance(both, list) and len(both) == 2
    np.testing.assert_array_equal(both[0], [2.0, 3.0])
    np.testing.assert_array_equal(both[1], [3.0, 6.0])
    single = as_one(data)
    assert isinstance(single, np.ndarray)
    np.testing.assert_array_equal(single, [2.0, 3.0])
    one_in_a_list = gc.compile([x + 1.0], inputs=[x], device="reference")(data)
    assert isinstance(one_in_a_list, list) and len(one_in_a_list) == 1


def test_returned_arrays_are_numpy_copies_that_do_not_alias_a_variable():
    w = gc.variable(np.arange(4, dtype=np.float32), name="w")
    read = gc.compile([w], inputs=[], device="reference")
    (value,) = read()
    assert type(value) is np.ndarray and value.dtype == np.float32
    value[:] = 99.0
    np.testing.assert_array_equal(read()[0], [0, 1, 2, 3])
    np.testing.assert_array_equal(w.value, [0, 1, 2, 3])


# -- shape specialization ---------------------------------------------------------------

def test_a_none_batch_dimension_accepts_several_batch_sizes_through_one_compile():
    x = gc.placeholder((None, 3), name="x")
    w = gc.variable(rng(1).standard_normal((3, 2)).astype(np.float32), name="w")
    step = gc.compile(x @ w, inputs=[x], device="reference")
    for count, rows in enumerate((1, 7, 64), start=1):
        data = rng(rows).standard_normal((rows, 3)).astype(np.float32)
        out = step(data)
        assert out.shape == (rows, 2)
        np.testing.assert_allclose(out, data @ w.value, rtol=1e-5, atol=1e-6)
        assert step.stats["signatures"] == count
    step(np.zeros((7, 3), np.float32))                   # a shape seen before: no new plan
    assert step.stats["signatures"] == 3


# -- variables and updates ------------------------------------------------------------------

def test_updates_are_atomic_so_a_and_b_swap():
    a = gc.variable(np.array([1.0, 2.0], np.float32), name="a")
    b = gc.variable(np.array([3.0, 4.0], np.float32), name="b")
    swap = gc.compile([a + b], inputs=[], updates={a: b, b: a}, device="reference")
    (total,) = swap()
    np.testing.assert_array_equal(total, [4.0, 6.0])      # outputs read the old values
    np.testing.assert_array_equal(a.value, [3.0, 4.0])
    np.testing.assert_array_equal(b.value, [1.0, 2.0])
    swap()
    np.testing.assert_array_equal(a.value, [1.0, 2.0])
    np.testing.assert_array_equal(b.value, [3.0, 4.0])


def test_a_variable_is_shared_by_separately_compiled_executables():
    w = gc.variable(np.array([1.0, 2.0], np.float32), name="w")
    x = gc.placeholder((2,), name="x")
    train = gc.compile([gc.sum(w * x)], inputs=[x], updates={w: w - 0.5 * x},
                       device="reference")
    evaluate = gc.compile(gc.sum(w * x), inputs=[x], device="reference")
    ones = np.ones(2, np.float32)
    assert float(evaluate(ones)) == 3.0
    train(np.array([2.0, 2.0], np.float32))               # w := w - 0.5 * x = [0, 1]
    assert float(evaluate(ones)) == 1.0
    np.testing.assert_array_equal(gc.compile([w], inputs=[], device="reference")()[0], [0.0, 1.0])


def test_compiling_a_variable_with_no_inputs_reads_its_current_value():
    w = gc.variable(np.array([[1, 2], [3, 4]], np.int64), name="w")
    read = gc.compile([w], inputs=[], device="reference")
    np.testing.assert_array_equal(read()[0], [[1, 2], [3, 4]])
    w.assign([[5, 6], [7, 8]])
    (value,) = read()
    assert value.dtype == np.int64
    np.testing.assert_array_equal(value, [[5, 6], [7, 8]])


def test_assign_and_value_set_and_copy_a_variables_state():
    w = gc.variable(np.zeros(3, np.float32), name="w")
    w.assign(np.array([1.0, 2.0, 3.0]))                   # float64 becomes the variable's float32
    value = w.value
    assert value.dtype == np.float32
    np.testing.assert_array_equal(value, [1.0, 2.0, 3.0])
    value[0] = 42.0                                        # .value is a copy
    np.testing.assert_array_equal(w.value, [1.0, 2.0, 3.0])
    with pytest.raises(gc.ShapeError, match=r"\(2,\).*'w'.*\(3,\)"):
        w.assign(np.zeros(2, np.float32))
    np.testing.assert_array_equal(w.value, [1.0, 2.0, 3.0])
    with pytest.raises(gc.DtypeError, match="int64.*'w'.*float32"):   # same kind only, as feeds
        w.assign(np.array([4, 5, 6]))
    np.testing.assert_array_equal(w.value, [1.0, 2.0, 3.0])
    with pytest.raises(gc.GraphcError, match="not a variable"):
        (w * 2.0).assign(np.zeros(3))
    with pytest.raises(gc.GraphcError, match="hold a value"):
        (w * 2.0).value


@pytest.mark.parametrize("how", ["variable", "assign", "load_state_dict"])
def test_a_fortran_ordered_value_is_updated_in_place_on_cpu_as_on_the_reference(how):
    """A variable holding a transposed (Fortran-ordered) array, as a weight copied from
    torch's `w.numpy().T`, was never updated by the cpu device: its in-place writes
    went to a flat copy."""
    start = np.arange(12.0, dtype=np.float32).reshape(3, 4)
    results = []
    for device in ("reference", "cpu"):
        fortran = np.asfortranarray(start)
        w = gc.variable(fortran if how == "variable" else np.zeros((3, 4), np.float32),
                        name="w")
        m = gc.variable(np.zeros((3, 4), np.float32), name="m")
        x = gc.placeholder((3, 4), name="x")
        step = gc.compile([gc.sum(w)], inputs=[x], updates={w: w * 0.5 + x, m: m * 0.9 + w},
                          device=device)
        if how == "assign":
            w.assign(fortran)
        elif how == "load_state_dict":
            step.load_state_dict({w.name: fortran, m.name: np.asfortranarray(np.ones((3, 4)))})
        for _ in range(2):
            step(np.ones((3, 4), np.float32))
        results.append((w.value, m.value))
    (w_ref, m_ref), (w_cpu, m_cpu) = results
    assert not np.array_equal(w_ref, start)
    np.testing.assert_allclose(w_cpu, w_ref, rtol=1e-6)
    np.testing.assert_allclose(m_cpu, m_ref, rtol=1e-6)


def test_state_dict_round_trips_through_load_state_dict():
    a = gc.variable(np.array([1.0, 2.0], np.float32), name="a")
    b = gc.variable(np.array([[3.0]], np.float64), name="b")
    step = gc.compile([gc.sum(a) + gc.sum(b)], inputs=[], updates={a: a * 2.0, b: b + 1.0},
                      device="reference")
    saved = step.state_dict()
    assert set(saved) == {"a", "b"}
    np.testing.assert_array_equal(saved["a"], [1.0, 2.0])
    saved_copy = {k: v.copy() for k, v in saved.items()}
    step()
    step()
    np.testing.assert_array_equal(a.value, [4.0, 8.0])
    np.testing.assert_array_equal(saved["a"], saved_copy["a"])   # the dict holds copies
    step.load_state_dict(saved)
    np.testing.assert_array_equal(a.value, [1.0, 2.0])
    np.testing.assert_array_equal(b.value, [[3.0]])
    assert b.value.dtype == np.float64
    assert float(step()[0]) == 6.0


def test_load_state_dict_with_a_wrong_shape_raises_and_changes_nothing():
    a = gc.variable(np.array([1.0, 2.0], np.float32), name="a")
    b = gc.variable(np.array([3.0, 4.0, 5.0], np.float32), name="b")
    step = gc.compile([gc.sum(a) + gc.sum(b)], inputs=[], device="reference")
    bad = {"a": np.array([10.0, 20.0], np.float32), "b": np.zeros((2, 2), np.float32)}
    with pytest.raises(gc.ShapeError, match=r"'b'.*\(3,\)"):
        step.load_state_dict(bad)
    np.testing.assert_array_equal(a.value, [1.0, 2.0])      # a was valid but not written
    np.testing.assert_array_equal(b.value, [3.0, 4.0, 5.0])
    with pytest.raises(gc.GraphcError, match="missing"):
        step.load_state_dict({"a": np.zeros(2, np.float32)})
    np.testing.assert_array_equal(a.value, [1.0, 2.0])


# -- check_numerics ----------------------------------------------------------------------------

def test_check_numerics_names_the_node_and_line_that_first_made_an_inf():
    x = gc.placeholder((3,), name="x")
    line = here(); logs = gc.log(x)  # noqa: E702
    out = logs * 2.0 + 1.0
    plain = gc.compile(out, inputs=[x], device="reference")
    checked = gc.compile(out, inputs=[x], device="reference", check_numerics=True)
    data = np.array([1.0, 0.0, 2.0], np.float32)
    assert np.isneginf(plain(data)[1])                     # off by default
    with pytest.raises(gc.GraphcError) as info:
        checked(data)
    text = str(info.value)
    assert info.value.op == "log"
    assert f"{__file__}:{line}" in text and "Inf" in text and logs.name in text
    np.testing.assert_allclose(checked(np.ones(3, np.float32)), np.ones(3))


def test_check_numerics_reports_nan_and_leaves_variables_unchanged():
    w = gc.variable(np.array([1.0, -1.0], np.float32), name="w")
    line = here(); root = gc.sqrt(w)  # noqa: E702
    step = gc.compile([gc.sum(root)], inputs=[], updates={w: w + 1.0}, device="reference",
                      check_numerics=True)
    with pytest.raises(gc.GraphcError, match="NaN") as info:
        step()
    assert info.value.op == "sqrt" and f"{__file__}:{line}" in str(info.value)
    np.testing.assert_array_equal(w.value, [1.0, -1.0])


# -- training -------------------------------------------------------------------------------------

def test_sgd_on_linear_regression_reduces_the_loss_a_hundredfold():
    data = rng(7)
    inputs = data.standard_normal((64, 5)).astype(np.float32)
    true_w = data.standard_normal((5, 1)).astype(np.float32)
    targets = inputs @ true_w + 0.5
    x = gc.placeholder((None, 5), name="x")
    t = gc.placeholder((None, 1), name="t")
    w = gc.variable(np.zeros((5, 1), np.float32), name="w")
    b = gc.variable(np.zeros(1, np.float32), name="b")
    loss = gc.mean(gc.square(x @ w + b - t))
    gw, gb = gc.grad(loss, [w, b])
    step = gc.compile(loss, inputs=[x, t], updates={w: w - 0.1 * gw, b: b - 0.1 * gb},
                      device="reference")
    losses = [float(step(inputs[i % 4 * 16:][:16], targets[i % 4 * 16:][:16]))
              for i in range(200)]
    assert losses[-1] < losses[0] / 100
    np.testing.assert_allclose(w.value, true_w, atol=1e-2)
    np.testing.assert_allclose(b.value, [0.5], atol=1e-2)
