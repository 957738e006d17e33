"""Static shape rules against NumPy, by property (DESIGN.md, "Graph IR" and "Testing"):
broadcasting of two and three operands (with unknown None dims too) and the
reduction shape rule (axis None / int / tuple, negative, keepdims), including
the errors exactly where NumPy raises."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import graphc as gc
from helpers import evaluate

SETTINGS = settings(max_examples=100, deadline=None)


def numpy_broadcast(*shapes):
    """NumPy's broadcast shape, or None where NumPy refuses."""
    try:
        return np.broadcast_shapes(*shapes)
    except ValueError:
        return None


def build_sum(phs):
    out = phs[0]
    for p in phs[1:]:
        out = gc.add(out, p)
    return out


@SETTINGS
@given(st.integers(2, 3).flatmap(
    lambda n: hnp.mutually_broadcastable_shapes(num_shapes=n, min_dims=0, max_dims=4,
                                                min_side=0, max_side=4)))
def test_broadcast_shape_of_compatible_operands_is_numpys(shapes):
    inputs = shapes.input_shapes
    phs = [gc.placeholder(s, "float32") for s in inputs]
    out = build_sum(phs)
    assert out.shape == np.broadcast_shapes(*inputs) == shapes.result_shape
    if len(inputs) == 3:
        assert gc.where(gc.placeholder(inputs[0], "bool"), phs[1], phs[2]).shape == \
            np.broadcast_shapes(*inputs)


@SETTINGS
@given(st.lists(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=3),
                min_size=2, max_size=3))
def test_add_raises_shape_error_exactly_when_numpy_cannot_broadcast(shapes):
    want = numpy_broadcast(*shapes)
    phs = [gc.placeholder(s, "float32") for s in shapes]
    if want is None:
        with pytest.raises(gc.ShapeError):
            build_sum(phs)
        if len(shapes) == 3:
            with pytest.raises(gc.ShapeError):
                gc.where(gc.placeholder(shapes[0], "bool"), phs[1], phs[2])
        else:
            with pytest.raises(gc.ShapeError):
                gc.multiply(phs[0], phs[1])
    else:
        assert build_sum(phs).shape == want


@st.composite
def shapes_with_unknown_dims(draw):
    """Broadcast-compatible shapes, and copies with some dims replaced by None."""
    n = draw(st.integers(2, 3))
    shapes = draw(hnp.mutually_broadcastable_shapes(num_shapes=n, min_dims=0, max_dims=4,
                                                    min_side=0, max_side=4)).input_shapes
    hidden = [tuple(None if draw(st.booleans()) else d for d in s) for s in shapes]
    return shapes, hidden


@SETTINGS
@given(shapes_with_unknown_dims())
def test_broadcast_with_none_dims_agrees_with_numpy_where_known_and_when_run(case):
    shapes, hidden = case
    want = np.broadcast_shapes(*shapes)
    phs = [gc.placeholder(s, "float32") for s in hidden]
    out = build_sum(phs)
    assert len(out.shape) == len(want)
    for got, true in zip(out.shape, want):
        assert got is None or got == true
    # a dim is unknown only if every operand's dim there is unknown or 1
    padded = [(1,) * (len(want) - len(s)) + s for s in hidden]
    for i, got in enumerate(out.shape):
        if got is None:
            assert all(p[i] in (None, 1) for p in padded)
            assert any(p[i] is None for p in padded)
    arrays = [np.full(s, float(k + 1), np.float32) for k, s in enumerate(shapes)]
    value = evaluate(out, dict(zip(phs, arrays)))
    assert value.shape == want
    np.testing.assert_array_equal(value, np.full(want, sum(range(1, len(shapes) + 1)),
                                                 np.float32))


# -- reductions ---------------------------------------------------------------------------

@st.composite
def reduction_case(draw):
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=3))
    ndim = len(shape)
    index = st.integers(-ndim - 1, ndim)            # includes one out-of-range value each side
    axis = draw(st.one_of(st.none(), index, st.lists(index, max_size=4).map(tuple)))
    keepdims = draw(st.booleans())
    return shape, axis, keepdims


def strict(axis):
    """An int axis as a 1-tuple: NumPy's sum/max/prod (not mean) accept axis 0 or -1 on a
    0-d array as a legacy quirk, but not (0,); graphc follows the strict, uniform rule."""
    return (axis,) if isinstance(axis, int) else axis


def numpy_shape(reduce, shape, axis, keepdims):
    """NumPy's result shape, or None where NumPy raises."""
    try:
        return reduce(np.zeros(shape), axis=strict(axis), keepdims=keepdims).shape
    except (ValueError, IndexError):                  # AxisError is both
        return None


@SETTINGS
@given(reduction_case())
def test_sum_shape_rule_is_numpys(case):
    shape, axis, keepdims = case
    want = numpy_shape(np.sum, shape, axis, keepdims)
    x = gc.placeholder(shape, "float32")
    if want is None:
        with pytest.raises(gc.ShapeError):
            gc.sum(x, axis=axis, keepdims=keepdims)
        with pytest.raises(gc.ShapeError):
            gc.mean(x, axis=axis, keepdims=keepdims)
    else:
        assert gc.sum(x, axis=axis, keepdims=keepdims).shape == want
        assert gc.mean(x, axis=axis, keepdims=keepdims).shape == want
        assert gc.prod(x, axis=axis, keepdims=keepdims).shape == want


def test_an_int_axis_on_a_0d_tensor_is_out_of_range():
    # unlike NumPy's np.sum(np.zeros(()), axis=0) quirk, and like np.mean and axis=(0,)
    x = gc.placeholder((), "float32")
    for axis in (0, -1):
        with pytest.raises(gc.ShapeError):
            gc.sum(x, axis=axis)
        with pytest.raises(gc.ShapeError):
            gc.max(x, axis=axis)


@SETTINGS
@given(reduction_case())
def test_max_shape_rule_is_numpys_including_empty_axes(case):
    shape, axis, keepdims = case
    want = numpy_shape(np.max, shape, axis, keepdims)   # also raises over an empty axis
    x = gc.placeholder(shape, "float32")
    if want is None:
        with pytest.raises(gc.ShapeError):
            gc.max(x, axis=axis, keepdims=keepdims)
        with pytest.raises(gc.ShapeError):
            gc.min(x, axis=axis, keepdims=keepdims)
    else:
        assert gc.max(x, axis=axis, keepdims=keepdims).shape == want
        assert gc.min(x, axis=axis, keepdims=keepdims).shape == want


@SETTINGS
@given(reduction_case())
def test_compiled_sum_has_numpys_shape_and_value(case):
    shape, axis, keepdims = case
    data = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape)
    try:
        want = np.sum(data, axis=strict(axis), keepdims=keepdims)
    except (ValueError, IndexError):
        return                                          # covered by the shape-rule test
    x = gc.placeholder(shape, "float64")
    value = evaluate(gc.sum(x, axis=axis, keepdims=keepdims), {x: data})
    assert value.shape == want.shape
    np.testing.assert_array_equal(value, want)
