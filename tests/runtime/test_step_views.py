"""runtime/cpu/step_views.py: the views of the step's kernel calls are the views
NumPy would make (offset, shape, strides, layout). That a kernel is handed
exactly those arrays: tests/runtime/test_step_program.py."""
import numpy as np
from hypothesis import given, settings, strategies as st
from numba import types

from graphc.runtime.cpu.step_views import View, argument_type, layout_of

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


def test_argument_types_are_the_views_numba_types():
    view = View.contiguous("arena", 4, "float32", (5,)).sliced([(0, 5, 2)])
    pieces = tuple(View.contiguous("x", k, "float64", (2,)) for k in (0, 16))
    assert view.layout == "A" and argument_type(view) == types.Array(types.float32, 1, "A")
    assert argument_type(pieces) == types.UniTuple(types.Array(types.float64, 1, "C"), 2)
    assert (argument_type(7), argument_type(0.5)) == (types.int64, types.float64)
    assert (argument_type(True), argument_type(np.float32(0.5))) == (types.int64, types.float64)
    assert view.text() == "@arena+4:float32:3:8:A"
