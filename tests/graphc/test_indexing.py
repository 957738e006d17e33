"""`x[index]` follows NumPy basic indexing (static slices, integers, Ellipsis,
None) and gathers along axis 0 for an integer index tensor; gradients of
indexing match central differences; bad indices are shape errors."""
import numpy as np
import pytest

import graphc as gc
from helpers import check_grad, evaluate, rng


def data(shape, seed=0, dtype=np.float64):
    return rng(seed).standard_normal(shape).astype(dtype)


class _Index:
    def __getitem__(self, index):
        return index


I = _Index()   # I[1:, ..., None] is the index tuple (slice(1, None), Ellipsis, None)


def index_both(x, index):
    """(graphc's x[index], NumPy's x[index]) for array x."""
    ph = gc.placeholder(x.shape, x.dtype, name="x")
    out = ph[index]
    value = evaluate(out, {ph: x})
    return out, value, x[index]


CASES = [
    # static slices
    ((6,), I[1:4]),
    ((6,), I[::2]),
    ((6,), I[1::3]),
    ((6,), I[-4:-1]),
    ((6,), I[-2:]),
    ((6,), I[:-7]),          # empty
    ((6,), I[4:2]),          # empty
    ((6,), I[10:]),          # empty, past the end
    ((6,), I[::-1]),
    ((6,), I[-1:1:-2]),
    ((6,), I[4::-3]),
    ((6,), I[:]),
    ((4, 5), I[1:3, ::-2]),
    ((4, 5), I[::-1, 1:-1]),
    ((4, 5), I[:, 2:3]),
    # integers
    ((6,), I[0]),
    ((6,), I[-1]),
    ((6,), I[-6]),
    ((4, 5), I[2]),
    ((4, 5), I[-1]),
    ((4, 5), I[1, -2]),
    ((4, 5), I[-4, 0]),
    ((3, 4, 5), I[:, -1]),
    ((3, 4, 5), I[1, :, -2]),
    ((1, 5), I[0]),
    # Ellipsis and None
    ((3, 4, 5), I[...]),
    ((3, 4, 5), I[..., 1]),
    ((3, 4, 5), I[..., -1, :]),
    ((3, 4, 5), I[0, ...]),
    ((3, 4, 5), I[None]),
    ((3, 4, 5), I[:, None]),
    ((3, 4, 5), I[..., None]),
    ((3, 4, 5), I[None, 0, None]),
    ((3, 4, 5), I[:, np.newaxis, 2]),
    # mixes
    ((3, 4, 5), I[1:, ..., None, -1]),
    ((3, 4, 5), I[:, 2]),                 # h[:, t]
    ((3, 4, 5), I[::-1, None, 1:4:2, -3]),
    ((3, 4, 5), I[-1, ..., ::2, None]),
    ((2, 3, 4, 5), I[1, ..., 0]),
    ((2, 3, 4, 5), I[:, None, 1:, ..., None, -1]),
    ((0, 3), I[:, 1]),
    ((0, 3), I[..., 1:]),
]


@pytest.mark.parametrize("shape, index", CASES)
def test_getitem_matches_numpy(shape, index):
    x = data(shape)
    out, value, expected = index_both(x, index)
    assert out.shape == expected.shape          # static shape
    assert value.shape == expected.shape
    assert value.dtype == expected.dtype
    np.testing.assert_array_equal(value, expected)


def test_numpy_integer_indices_work_like_python_ints():
    x = data((3, 4, 5))
    _, value, expected = index_both(x, I[np.int64(1), :, np.int32(-2)])
    assert value.shape == expected.shape == (4,)
    np.testing.assert_array_equal(value, expected)
    _, value, expected = index_both(x, I[np.int64(1):np.int64(3), ::np.int64(-1)])
    np.testing.assert_array_equal(value, expected)


def test_a_bool_index_is_a_shape_error_not_an_integer():
    x = gc.placeholder((3, 4), name="x")
    with pytest.raises(gc.ShapeError, match="not supported"):
        x[True]


def test_getitem_of_an_int_array_keeps_its_dtype():
    x = np.arange(24, dtype=np.int32).reshape(2, 3, 4)
    _, value, expected = index_both(x, I[1, ::-1, None, 2:])
    assert value.dtype == np.int32
    np.testing.assert_array_equal(value, expected)


@pytest.mark.parametrize("shape, indices", [
    ((5, 3), [4, 0, 0, 2]),
    ((5,), [[1, 2], [-1, 0]]),
    ((4, 2, 3), [3, 1]),
    ((5, 3), 2),
])
def test_getitem_with_an_integer_tensor_gathers_along_axis_zero(shape, indices):
    x = data(shape)
    idx = np.asarray(indices, np.int64)
    ph = gc.placeholder(x.shape, x.dtype, name="x")
    iph = gc.placeholder(idx.shape, idx.dtype, name="i")
    out = ph[iph]
    assert out.shape == x[idx].shape
    value = evaluate(out, {ph: x, iph: idx})
    np.testing.assert_array_equal(value, x[idx])


# -- gradients --------------------------------------------------------------------------

@pytest.mark.parametrize("shape, index", [
    ((6,), I[1:5:2]),
    ((6,), I[::-2]),
    ((3, 4), I[-2:, ::-1]),
    ((3, 4), I[1]),
    ((3, 4), I[:, -1]),
    ((2, 3, 4), I[1:, ..., None, -1]),
    ((2, 3, 4), I[None, -1, 1:3]),
    ((2, 3), I[...]),
])
def test_getitem_gradient(shape, index):
    check_grad(lambda a: a[index], [data(shape)])


def test_getitem_gradient_puts_zeros_where_the_slice_did_not_read():
    a = gc.placeholder((2, 4), "float64", name="a")
    (g,) = gc.grad(gc.sum(a[1, ::2] * 3.0), [a])
    np.testing.assert_array_equal(evaluate(g, {a: data((2, 4))}),
                                  [[0, 0, 0, 0], [3, 0, 3, 0]])


def test_gradient_of_an_integer_tensor_index_scatter_adds_repeats():
    idx = np.array([2, 0, 2, 2], np.int64)
    check_grad(lambda a, i: a[i], [data((3, 2)), idx], wrt=[0])


def test_gradient_of_two_overlapping_slices_adds_up():
    check_grad(lambda a: a[1:] * a[:-1], [data((5,))])


# -- errors -----------------------------------------------------------------------------

@pytest.mark.parametrize("index, bad, axis, size", [
    (I[3], 3, 0, 3),
    (I[-4], -4, 0, 3),
    (I[:, 4], 4, 1, 4),
    (I[0, -5], -5, 1, 4),
    (I[..., 9], 9, 1, 4),
])
def test_out_of_bounds_integer_index_is_a_shape_error_naming_index_and_size(index, bad, axis, size):
    x = gc.placeholder((3, 4), name="x")
    with pytest.raises(gc.ShapeError) as info:
        x[index]
    text = str(info.value)
    assert f"index {bad}" in text
    assert f"size {size}" in text
    assert f"axis {axis}" in text
    assert "(3, 4)" in text


def test_too_many_indices_is_a_shape_error_naming_the_shape():
    x = gc.placeholder((3, 4), name="x")
    with pytest.raises(gc.ShapeError, match=r"\(3, 4\)"):
        x[0, 1, 2]


def test_an_unsupported_index_is_a_shape_error():
    x = gc.placeholder((3, 4), name="x")
    with pytest.raises(gc.ShapeError, match="not supported"):
        x[[0, 1]]


def test_a_zero_slice_step_is_a_shape_error():
    x = gc.placeholder((3, 4), name="x")
    with pytest.raises(gc.ShapeError, match="zero"):
        x[::0]


# -- unknown batch dimension ----------------------------------------------------------

def test_slicing_a_none_batch_placeholder_runs_for_two_batch_sizes():
    x = gc.placeholder((None, 4, 3), name="x")
    outs = [x[1:], x[:, -1], x[::-1, 1:3, None], x[-2:, ..., 0], x[..., ::2]]
    assert outs[0].shape == (None, 4, 3)
    assert outs[1].shape == (None, 3)
    assert outs[2].shape == (None, 2, 1, 3)
    assert outs[3].shape == (None, 4)
    assert outs[4].shape == (None, 4, 2)
    step = gc.compile(outs, inputs=[x], device="reference")
    for batch in (3, 6):
        v = data((batch, 4, 3), seed=batch, dtype=np.float32)
        got = step(v)
        for value, expected in zip(got, [v[1:], v[:, -1], v[::-1, 1:3, None], v[-2:, ..., 0],
                                         v[..., ::2]]):
            assert value.shape == expected.shape
            np.testing.assert_array_equal(value, expected)


def test_integer_index_into_a_none_batch_dimension_runs_for_two_batch_sizes():
    x = gc.placeholder((None, 2), name="x")
    first, last = x[0], x[-1]
    assert first.shape == (2,) and last.shape == (2,)
    step = gc.compile([first, last], inputs=[x], device="reference")
    for batch in (1, 4):
        v = data((batch, 2), seed=batch, dtype=np.float32)
        got = step(v)
        np.testing.assert_array_equal(got[0], v[0])
        np.testing.assert_array_equal(got[1], v[-1])


def test_gradient_of_slicing_a_none_batch_runs_for_two_batch_sizes():
    x = gc.placeholder((None, 3), "float64", name="x")
    (g,) = gc.grad(gc.sum(x[1:, -1]), [x])
    step = gc.compile(g, inputs=[x], device="reference")
    for batch in (2, 4):
        expected = np.zeros((batch, 3))
        expected[1:, -1] = 1
        np.testing.assert_array_equal(step(data((batch, 3))), expected)
