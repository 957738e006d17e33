"""Source ops: what a graph reads from outside (placeholders, variables,
constants) and the creation ops (full, size) that need no data.

A variable is one piece of state (`VariableState`) shared by every executable
that uses it, as TF1 variables are.
"""
import numpy as np

from graphc import dtypes
from graphc.errors import ArgumentError, DtypeError, GraphcError, ShapeError, user_location
from graphc.graph import default_graph, format_shape
from graphc.ops.registry import SOURCE, register_op
from graphc.ops.rules import blamed_on, normalize_axes, num_elements, real_number
from graphc.tensor import Tensor, apply, asarray


class VariableState:
    """The current value of a variable, shared by every executable that uses it.

    The value is a host array, or lives on a device (`keep_on_device`: a device
    backend wrote it) and is fetched the first time the host reads it.
    `version` counts changes of the value (assignments, device writes, and
    in-place writes by the CPU backend, which Executable reports), so a device
    copy knows whether it is still current.
    """

    def __init__(self, value, name, trainable):
        self.name, self.trainable, self.version = name, trainable, -1
        self.value = value                      # version 0

    @property
    def value(self):
        if self.device is not None:
            self._value, self.device = self.device.fetch(), None
        return self._value

    @value.setter
    def value(self, value):
        """A host array is kept C-contiguous: backends update it in place through flat
        views (a Fortran-ordered value's flat view is a copy, and its updates were lost)."""
        if isinstance(value, np.ndarray) and not value.flags.c_contiguous:
            value = np.ascontiguousarray(value)
        self._value, self.device = value, None
        self.version += 1

    def keep_on_device(self, copy):
        """The newest value is `copy`'s (an object with `fetch()`); read on demand."""
        self.device = copy
        self.version += 1

    def assign(self, value, loc=None):
        array = np.asarray(value)
        if array.shape != self.value.shape:
            raise ShapeError(f"cannot assign shape {format_shape(array.shape)} to variable "
                             f"'{self.name}' of shape {format_shape(self.value.shape)}",
                             op="assign", loc=loc)
        if array.dtype.kind not in "fiub" or (array.dtype.kind == "f") != (self.value.dtype.kind == "f"):
            raise DtypeError(f"cannot assign {array.dtype} to variable '{self.name}' of "
                             f"dtype {self.value.dtype}", op="assign", loc=loc)
        try:
            self.value = dtypes.convert(array, self.value.dtype)
        except GraphcError as error:
            raise error.located("assign", loc) from None

    def __repr__(self):
        return f"<variable {self.name} {format_shape(self.value.shape)} {self.value.dtype}>"


@register_op("placeholder", SOURCE)
class Placeholder:
    """A value fed to each call; dimensions may be None."""
    def infer(*, shape, dtype): return shape, dtype
    def reference(*, shape, dtype): raise GraphcError("placeholders are fed, not computed")


@register_op("variable", SOURCE)
class Variable:
    """State held between calls; updated by an executable's `updates`."""
    def infer(*, state): return state.value.shape, state.value.dtype
    def reference(*, state): return state.value


@register_op("constant", SOURCE)
class Constant:
    """A value fixed when the graph is built."""
    def infer(*, value): return value.shape, value.dtype
    def reference(*, value): return value


@register_op("full", SOURCE, shape_only=(0,))
class Full:
    """An array filled with one value; its shape static or taken from an operand."""
    def infer(*like, shape, value, dtype):
        _check_fill(value, dtype)
        return (like[0].shape if like else shape), dtype
    def reference(*like, shape, value, dtype):
        return np.full(like[0].shape if like else shape, value, dtype)
    def grad(y, dy, *like, shape, value, dtype): return [None] * len(like)


@register_op("size", SOURCE, shape_only=(0,))
class Size:
    """Number of elements of an operand along `axes`, as a scalar of `dtype`."""
    def infer(x, *, axes, dtype): return (), dtype
    def reference(x, *, axes, dtype): return np.prod([x.shape[a] for a in axes], dtype=dtype)
    def grad(y, dy, x, *, axes, dtype): return [None]


def _check_fill(value, dtype):
    """A fill value is a real number that `dtype` can hold."""
    if not isinstance(value, (bool, np.bool_)):
        dtypes.of_python_scalar(value)          # a DtypeError for a complex value
        real_number(value, "fill value")
    dtypes.check_fits(value, dtype)


# -- public functions ---------------------------------------------------------------

def _check_shape(shape, allow_none, what):
    try:
        shape = tuple(shape)
    except TypeError:
        shape = (shape,)
    for d in shape:
        if d is None and allow_none:
            continue
        if not isinstance(d, (int, np.integer)) or isinstance(d, bool) or d < 0:
            raise ShapeError(f"bad shape {shape!r}: dimensions must be non-negative ints"
                             + (" or None" if allow_none else ""), op=what, loc=user_location())
    return tuple(None if d is None else int(d) for d in shape)


@blamed_on("placeholder")
def placeholder(shape, dtype="float32", name=None):
    """A value fed at each call, e.g. `placeholder((None, 784), "float32", name="x")`."""
    shape = _check_shape(shape, True, "placeholder")
    return default_graph().add(Placeholder, (), {"shape": shape, "dtype": dtypes.as_dtype(dtype)},
                               name=name or "placeholder").tensor


@blamed_on("variable")
def variable(value, name=None, trainable=True, dtype=None):
    """State held between calls, initialised to a copy of `value`."""
    array = asarray(value)
    natural = dtypes.of_array(array)            # refuses complex, str and object arrays
    dtype = natural if dtype is None else dtypes.as_dtype(dtype)
    state = VariableState(dtypes.convert(array, dtype), name, trainable)
    node = default_graph().add(Variable, (), {"state": state}, name=name or "variable")
    state.name = node.name
    return node.tensor


@blamed_on("constant")
def constant(value, dtype=None):
    """A fixed value; Python floats become float32, NumPy arrays keep their dtype."""
    array = asarray(value)
    target = dtypes.of_array(array)             # refuses complex, str and object arrays
    if dtype is not None:
        target = dtypes.as_dtype(dtype)
    elif array.dtype == np.float64 and not isinstance(value, np.ndarray):
        target = dtypes.DEFAULT_FLOAT
    return default_graph().add(Constant, (), {"value": dtypes.convert(array, target)}).tensor


@blamed_on("full")
def full(shape, fill_value, dtype="float32"):
    shape = _check_shape(shape, False, "full")
    return apply("full", shape=shape, value=fill_value, dtype=dtypes.as_dtype(dtype))


def zeros(shape, dtype="float32"):
    return full(shape, 0, dtype)


def ones(shape, dtype="float32"):
    return full(shape, 1, dtype)


@blamed_on("full_like")
def full_like(x, fill_value, dtype=None):
    dtype = x.dtype if dtype is None else dtypes.as_dtype(dtype)
    return apply("full", x, shape=None, value=fill_value, dtype=dtype)


def zeros_like(x, dtype=None):
    return full_like(x, 0, dtype)


def ones_like(x, dtype=None):
    return full_like(x, 1, dtype)


@blamed_on("arange")
def arange(start, stop=None, step=1, dtype=None):
    """NumPy's arange, as a constant."""
    for what, value in (("start", start), ("stop", stop), ("step", step)):
        if value is not None:
            real_number(value, what)
    if step == 0:
        raise ArgumentError(f"step must not be zero (start {start}, stop {stop})")
    return constant(np.arange(start, stop, step), dtype=dtype)


@blamed_on("size")
def size(x, axis=None, dtype="float32"):
    """Number of elements of x (along `axis`), known once x's shape is: a scalar tensor."""
    axes = normalize_axes(axis, x.ndim, x.shape)
    count = num_elements([x.shape[a] for a in axes])
    if count is not None:
        return constant(np.asarray(count, dtype=dtypes.as_dtype(dtype)))
    return apply("size", x, axes=axes, dtype=dtypes.as_dtype(dtype))


def is_tensor(value):
    return isinstance(value, Tensor)
