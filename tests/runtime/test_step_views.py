"""runtime/cpu/step_views.py: the views of the njit step's kernel calls are the
views NumPy would make (offset, shape, strides, layout), their text reads back
to the same view, and `call_with_views` (runtime/cpu/native_call.py) hands a
kernel exactly those arrays."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from numba import njit, types

from graphc.runtime.cpu.native_call import call_with_views
from graphc.runtime.cpu.step_views import (Base, View, argument_type, layout_of,
                                            parse_arguments)

BASE = np.zeros(4096, np.uint8)


def _numpy_view(view, base=BASE):
    """The NumPy array `view` describes over `base` (bytes)."""
    return np.lib.stride_tricks.as_strided(base[view.offset:].view(view.dtype)[:1],
                                           view.shape, view.strides)


def _numpy_layout(array):
    return "C" if array.flags.c_contiguous else "F" if array.flags.f_contiguous else "A"


def _same_as_numpy(view, array, base=BASE):
    assert array.ctypes.data - base.ctypes.data == view.offset
    assert (array.shape, array.strides, array.dtype.name) == (view.shape, view.strides,
                                                              view.dtype)


shapes = st.lists(st.integers(1, 5), min_size=1, max_size=3).map(tuple)


@settings(max_examples=60, deadline=None)
@given(shape=shapes, offset=st.integers(0, 64).map(lambda k: 4 * k),
       dtype=st.sampled_from(["float32", "float64", "int64"]))
def test_contiguous_flat_and_reshaped_views_are_numpys(shape, offset, dtype):
    view = View.contiguous("arena", offset, dtype, shape)
    size = int(np.prod(shape))
    array = BASE[offset:offset + size * np.dtype(dtype).itemsize].view(dtype).reshape(shape)
    _same_as_numpy(view, array)
    assert view.layout == "C"
    _same_as_numpy(view.flat(), array.reshape(-1))
    if array.size > 1:
        _same_as_numpy(view.flat(1), array.reshape(-1)[1:])
    _same_as_numpy(view.reshaped(shape[::-1]), array.reshape(shape[::-1]))


@settings(max_examples=60, deadline=None)
@given(rows=st.integers(1, 6), cols=st.integers(1, 6))
def test_transposed_view_is_numpys_and_typed_f(rows, cols):
    view = View.contiguous("arena", 16, "float32", (rows, cols))
    array = BASE[16:].view("float32")[:rows * cols].reshape(rows, cols)
    transposed = view.transposed()
    _same_as_numpy(transposed, array.T)
    assert transposed.layout == "F" and view.any_layout().layout == "A"


index = st.tuples(st.integers(-6, 6) | st.none(), st.integers(-6, 6) | st.none(),
                  st.integers(1, 3) | st.none())


@settings(max_examples=100, deadline=None)
@given(shape=shapes, data=st.data())
def test_sliced_view_is_numpys_with_its_layout(shape, data):
    triples = tuple(data.draw(index) for _ in shape)
    view = View.contiguous("arena", 8, "float32", shape)
    array = _numpy_view(view)[tuple(slice(*t) for t in triples)]
    sliced = view.sliced(triples)
    if array.size == 0:
        assert 0 in sliced.shape
        return
    _same_as_numpy(sliced, array)
    assert sliced.layout == _numpy_layout(array)


def test_layout_ignores_axes_of_length_one():
    assert layout_of((1, 4), (64, 4), 4) == "C"
    assert layout_of((4, 1), (4, 64), 4) == "C"
    assert layout_of((3, 4), (4, 12), 4) == "F"
    assert layout_of((3, 4), (32, 4), 4) == "A"


def test_text_reads_back_as_the_same_arguments():
    view = View.contiguous("arena", 1024, "float32", (64, 128)).transposed()
    pieces = (View.contiguous("x", 0, "float64", (2, 3, 1)),
              View.contiguous("x", 48, "float64", (2, 3, 1)))
    text = " ".join([view.text(0), "$1", "#-3", "%0.5", "(" + "|".join(
        p.text(2) for p in pieces) + ")"])
    parsed = parse_arguments(text)
    assert parsed[0] == View(0, 1024, "float32", (128, 64), (4, 512), "F")
    assert parsed[1:4] == [Base(1), -3, 0.5]
    assert parsed[4] == tuple(View(2, p.offset, p.dtype, p.shape, p.strides, "C")
                              for p in pieces)
    with pytest.raises(ValueError, match="not a step argument"):
        parse_arguments("?3")


@njit
def _record(x, y, pieces, code, scale, err):
    """What a kernel sees: writes its arguments' values where they point."""
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            x[i, j] = scale * (10 * i + j)
    for i in range(y.size):
        y[i] = code
    for k in range(len(pieces)):
        pieces[k][0] = -1.0 - k
    err[0] = x.strides[0] * 1000 + x.strides[1]
    return code + 1


@njit
def _step(arena, err):
    return call_with_views(_record, "test_step_views_record",
                           "@0+64:float32:3,2:4,24:A @0+4:float32:5:8:A "
                           "(@0+200:float32:2:4:C|@0+240:float32:2:4:C) #7 %0.5 $1",
                           arena, err)


def test_a_kernel_called_with_views_writes_where_numpy_views_point():
    arena, err = np.zeros(512, np.uint8), np.zeros(1, np.int64)
    assert _step(arena, err) == 8
    expected = np.zeros(512, np.uint8)
    floats = expected.view(np.float32)
    x = np.lib.stride_tricks.as_strided(floats[16:], (3, 2), (4, 24))
    x[...] = 0.5 * (10 * np.arange(3)[:, None] + np.arange(2))
    floats[1:11:2] = 7
    floats[50], floats[60] = -1.0, -2.0
    assert np.array_equal(arena, expected)
    assert err[0] == 4 * 1000 + 24          # the kernel saw the strides of the text


def test_argument_types_come_from_the_text():
    bases = [types.Array(types.uint8, 1, "C"), types.Array(types.int64, 1, "C")]
    view, base, pieces, code, scale = parse_arguments(
        "@0+4:float32:5:8:A $1 (@0+0:float64:2:8:C|@0+16:float64:2:8:C) #7 %0.5")
    assert argument_type(view, bases) == types.Array(types.float32, 1, "A")
    assert argument_type(base, bases) == bases[1]
    assert argument_type(pieces, bases) == types.UniTuple(types.Array(types.float64, 1, "C"), 2)
    assert (argument_type(code, bases), argument_type(scale, bases)) == (types.int64,
                                                                        types.float64)
