"""Shared pieces of type rules: broadcasting, axes, dtype and argument checks, and
`blamed_on`, which gives a public function's errors its op name and the user's line.

A dimension may be None (unknown until the executable is fed). Broadcasting
treats None as "some size": None against 1 is None, None against n is n, and
the executable re-checks every rule once the sizes are known.
"""
import functools
import numbers

import numpy as np

from graphc import dtypes
from graphc.errors import ArgumentError, DtypeError, GraphcError, ShapeError, user_location
from graphc.graph import format_shape


def blamed_on(op_name):
    """Decorator for a public function: a GraphcError raised inside it that names no
    op or no line (an argument check, say) names `op_name` and the user's line, as
    Graph.add does for the errors of type rules."""
    def decorate(function):
        @functools.wraps(function)
        def blamed(*args, **kwargs):
            try:
                return function(*args, **kwargs)
            except GraphcError as error:
                raise error.located(op_name, user_location()) from None
        return blamed
    return decorate


def is_integer(value):
    """A Python or NumPy integer, but not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def is_count(value):
    """An integer >= 0 (a size, an epoch, a seed)."""
    return is_integer(value) and value >= 0


def positive_int(value, what):
    """`value` as an int; ArgumentError unless it is a positive integer."""
    if not is_integer(value) or value <= 0:
        raise ArgumentError(f"{what} must be a positive int, got {value!r}")
    return int(value)


def real_number(value, what):
    """`value` as a float; ArgumentError unless it is a real number (not a bool)."""
    if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)):
        raise ArgumentError(f"{what} must be a real number, got {value!r}")
    return float(value)


def broadcast_shapes(*shapes):
    """NumPy broadcasting of static shapes, with None for unknown sizes."""
    ndim = max(len(s) for s in shapes)
    padded = [(1,) * (ndim - len(s)) + tuple(s) for s in shapes]
    out = []
    for dims in zip(*padded):
        known = {d for d in dims if d is not None and d != 1}
        if len(known) > 1:
            raise ShapeError("shapes " + " and ".join(format_shape(s) for s in shapes)
                             + " do not broadcast")
        if known:
            out.append(known.pop())
        elif None in dims:
            out.append(None)
        else:
            out.append(1)
    return tuple(out)


def broadcasts_to(shape, target):
    """True if `shape` broadcasts to `target` (None counts as matching)."""
    if len(shape) > len(target):
        return False
    for d, t in zip(shape[::-1], target[::-1]):
        if d is not None and d != 1 and t is not None and d != t:
            return False
    return True


def as_tuple(value):
    """A list, tuple, range or 1-D array as a tuple; anything else (an int, a float,
    None, a Tensor) as a 1-tuple, for the caller's check to name."""
    if isinstance(value, (list, tuple, range)) or (
            isinstance(value, np.ndarray) and value.ndim == 1):
        return tuple(value)
    return (value,)


def normalize_axis(axis, ndim, shape=None):
    """A non-negative axis index; ShapeError names the shape if it is out of range."""
    if not is_integer(axis):
        raise ArgumentError(f"axis must be an int, got {axis!r}")
    if not -ndim <= axis < ndim:
        where = format_shape(shape) if shape is not None else f"{ndim} dimensions"
        raise ShapeError(f"axis {axis} is out of range for shape {where}")
    return int(axis) % ndim


def normalize_axes(axis, ndim, shape=None):
    """axis (None, int or sequence) as a sorted tuple of distinct non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = as_tuple(axis)
    out = tuple(sorted(normalize_axis(a, ndim, shape) for a in axes))
    if len(set(out)) != len(out):
        raise ShapeError(f"repeated axis in {axis!r}")
    return out


def reduced_shape(shape, axes, keepdims):
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def num_elements(shape):
    """Product of the dims, or None if any is unknown."""
    total = 1
    for d in shape:
        if d is None:
            return None
        total *= d
    return total


def constant_value(node):
    """The value of a constant node; None for any other node (or a bare type)."""
    op = getattr(node, "op", None)
    return node.attrs["value"] if op is not None and op.name == "constant" else None


def require_float(*nodes):
    for node in nodes:
        if not dtypes.is_float(node.dtype):
            raise DtypeError(f"expects a floating-point tensor, got {node.dtype} "
                             f"of shape {format_shape(node.shape)}")


def float_unary(x, **_):
    """Type rule of a float -> float elementwise op."""
    require_float(x)
    return x.shape, x.dtype


def same_as_input(x, **_):
    return x.shape, x.dtype
