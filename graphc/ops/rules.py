"""Shared pieces of type rules: broadcasting, axes, dtype checks.

A dimension may be None (unknown until the executable is fed). Broadcasting
treats None as "some size": None against 1 is None, None against n is n, and
the executable re-checks every rule once the sizes are known.
"""
from graphc import dtypes
from graphc.errors import DtypeError, ShapeError
from graphc.graph import format_shape


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


def normalize_axis(axis, ndim, shape=None):
    """A non-negative axis index; ShapeError names the shape if it is out of range."""
    if not isinstance(axis, int) or isinstance(axis, bool):
        raise ShapeError(f"axis must be an int, got {axis!r}")
    if not -ndim <= axis < ndim:
        where = format_shape(shape) if shape is not None else f"{ndim} dimensions"
        raise ShapeError(f"axis {axis} is out of range for shape {where}")
    return axis % ndim


def normalize_axes(axis, ndim, shape=None):
    """axis (None, int or sequence) as a sorted tuple of distinct non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
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
