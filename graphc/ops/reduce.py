"""Reductions over any axes, with keepdims: sum, mean, max, min, prod, argmax,
argmin, logsumexp, and sum_to (the reduction that undoes broadcasting).

`axis` is stored as a sorted tuple of non-negative axes (argmax/argmin: one
int, or None for the flattened array).
"""
import numpy as np
import scipy     # scipy.special loads on first use: it was a quarter of `import graphc`

from graphc import dtypes
from graphc.errors import DtypeError, ShapeError
from graphc.graph import format_shape
from graphc.ops.registry import REDUCE, register_op
from graphc.ops.rules import (blamed_on, broadcasts_to, normalize_axes, normalize_axis,
                              reduced_shape)
from graphc.tensor import apply, as_tensor


def _reduction(x, *, axis, keepdims, dtype=None):
    if dtypes.is_bool(x.dtype) and dtype is None:
        raise DtypeError("expects a numeric tensor, got bool")
    return reduced_shape(x.shape, axis, keepdims), dtype or x.dtype


def _nonempty_reduction(x, *, axis, keepdims):
    if any(x.shape[a] == 0 for a in axis):
        raise ShapeError(f"reduction over an empty axis of shape {format_shape(x.shape)}")
    return _reduction(x, axis=axis, keepdims=keepdims)


def _expand_back(dy, x, axis, keepdims):
    """dy (reduced shape) broadcast back to x's shape."""
    kept = dy if keepdims else apply("expand_dims", dy, axis=axis)
    return apply("broadcast_to", kept, x, shape=None)


@register_op("sum", REDUCE)
class Sum:
    """Sum over axes; integers and bools sum to int64."""
    def infer(x, *, axis, keepdims):
        dtype = x.dtype if dtypes.is_float(x.dtype) else dtypes.int64
        return reduced_shape(x.shape, axis, keepdims), dtype
    def reference(x, *, axis, keepdims): return _wide_sum(x, axis, keepdims)
    def grad(y, dy, x, *, axis, keepdims): return [_expand_back(dy, x, axis, keepdims)]


def _wide_sum(x, axis, keepdims, mean=False):
    """np.sum (np.mean) accumulating float32 in float64, as the cpu kernels do for long
    sums: NumPy adds float32 rows one after another (pairwise only along the last axis),
    so a sum over a million rows of 100 + U(0, 1) was 0.9% off."""
    reduce = np.mean if mean else np.sum
    if x.dtype != np.float32:
        return reduce(x, axis=axis, keepdims=keepdims)
    return reduce(x, axis=axis, keepdims=keepdims, dtype=np.float64).astype(np.float32)


@register_op("mean", REDUCE)
class Mean:
    """Mean over axes; integers average to float32."""
    def infer(x, *, axis, keepdims):
        dtype = x.dtype if dtypes.is_float(x.dtype) else dtypes.DEFAULT_FLOAT
        return _reduction(x, axis=axis, keepdims=keepdims, dtype=dtype)
    def reference(x, *, axis, keepdims): return _wide_sum(x, axis, keepdims, mean=True)

    def grad(y, dy, x, *, axis, keepdims):
        from graphc.ops.source import size
        return [_expand_back(dy, x, axis, keepdims) / size(x, axis, dtype=x.dtype)]


def _extremum_grad(y, dy, x, axis, keepdims):
    """Gradient of max/min: shared evenly among the elements that attain it."""
    hit = apply("equal", x, _expand_back(y, x, axis, keepdims))
    hits = apply("cast", hit, dtype=x.dtype)
    count = apply("sum", hits, axis=axis, keepdims=True)
    share = _expand_back(dy, x, axis, keepdims) / apply("broadcast_to", count, x, shape=None)
    return [share * hits]


@register_op("max", REDUCE)
class Max:
    """Largest element over axes."""
    infer = _nonempty_reduction
    def reference(x, *, axis, keepdims): return np.max(x, axis=axis, keepdims=keepdims)
    def grad(y, dy, x, *, axis, keepdims): return _extremum_grad(y, dy, x, axis, keepdims)


@register_op("min", REDUCE)
class Min:
    """Smallest element over axes."""
    infer = _nonempty_reduction
    def reference(x, *, axis, keepdims): return np.min(x, axis=axis, keepdims=keepdims)
    def grad(y, dy, x, *, axis, keepdims): return _extremum_grad(y, dy, x, axis, keepdims)


@register_op("prod", REDUCE)
class Prod:
    """Product over axes; gradient: the product of the other elements (as PyTorch's,
    defined where x has zeros: y / x without one, the others' product at a lone
    zero, 0 everywhere with two)."""
    def infer(x, *, axis, keepdims):
        dtype = x.dtype if dtypes.is_float(x.dtype) else dtypes.int64
        return _reduction(x, axis=axis, keepdims=keepdims, dtype=dtype)
    def reference(x, *, axis, keepdims): return np.prod(x, axis=axis, keepdims=keepdims)

    def grad(y, dy, x, *, axis, keepdims):
        from graphc.ops.elementwise import logical_and, where
        zero = x == 0
        nonzero_x = where(zero, 1, x)
        zeros = _expand_back(apply("sum", apply("cast", zero, dtype=x.dtype), axis=axis,
                                   keepdims=True), x, axis, True)
        others = _expand_back(apply("prod", nonzero_x, axis=axis, keepdims=True), x, axis, True)
        share = where(zeros == 0, others / nonzero_x,
                      where(logical_and(zero, zeros == 1), others, 0))
        return [_expand_back(dy, x, axis, keepdims) * share]


@register_op("logsumexp", REDUCE)
class LogSumExp:
    """log(sum(exp(x))) over axes, computed stably."""
    def infer(x, *, axis, keepdims):
        if not dtypes.is_float(x.dtype):
            raise DtypeError(f"expects a floating-point tensor, got {x.dtype}")
        return reduced_shape(x.shape, axis, keepdims), x.dtype
    def reference(x, *, axis, keepdims):
        if axis == ():          # over no axes: x itself (scipy gives a 0-d input shape (1,))
            return x
        if x.size == 0:         # scipy fails over every axis of an empty array: log(0)
            with np.errstate(divide="ignore"):
                return np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims))
        return scipy.special.logsumexp(x, axis=axis, keepdims=keepdims)

    def grad(y, dy, x, *, axis, keepdims):
        from graphc.ops.elementwise import exp
        return [_expand_back(dy, x, axis, keepdims) * exp(x - _expand_back(y, x, axis, keepdims))]


def _arg_infer(x, *, axis, keepdims):
    if axis is None:
        if 0 in x.shape:
            raise ShapeError(f"arg-reduction of an empty tensor {format_shape(x.shape)}")
        return ((1,) * len(x.shape) if keepdims else ()), dtypes.int64
    return _nonempty_reduction(x, axis=(axis,), keepdims=keepdims)[0], dtypes.int64


@register_op("argmax", REDUCE)
class ArgMax:
    """Index of the first largest element along an axis (None: flattened)."""
    infer = _arg_infer
    def reference(x, *, axis, keepdims): return np.argmax(x, axis=axis, keepdims=keepdims)


@register_op("argmin", REDUCE)
class ArgMin:
    """Index of the first smallest element along an axis (None: flattened)."""
    infer = _arg_infer
    def reference(x, *, axis, keepdims): return np.argmin(x, axis=axis, keepdims=keepdims)


def sum_to_axes(shape, target):
    """The axes of `shape` to sum so that it becomes `target` (which broadcasts to it)."""
    lead = len(shape) - len(target)
    return tuple(range(lead)) + tuple(
        lead + i for i, t in enumerate(target) if t == 1 and shape[lead + i] != 1)


@register_op("sum_to", REDUCE, shape_only=(1,))
class SumTo:
    """Sum x down to a shape that broadcasts to it (static, or an operand's)."""
    def infer(x, *like, shape):
        target = like[0].shape if like else shape
        if not broadcasts_to(target, x.shape):
            raise ShapeError(f"cannot sum {format_shape(x.shape)} to {format_shape(target)}")
        return tuple(target), x.dtype

    def reference(x, *like, shape):
        target = like[0].shape if like else shape
        return _wide_sum(x, sum_to_axes(x.shape, target), True).reshape(target)

    def grad(y, dy, x, *like, shape):
        return [apply("broadcast_to", dy, x, shape=None)] + [None] * len(like)


# -- public functions -----------------------------------------------------------------

def _public(name):
    @blamed_on(name)
    def function(a, axis=None, keepdims=False):
        a = as_tensor(a)
        return apply(name, a, axis=normalize_axes(axis, a.ndim, a.shape), keepdims=bool(keepdims))
    function.__name__ = name
    function.__doc__ = f"NumPy's {name} over `axis` (None: all), with keepdims."
    return function


sum, mean, max, min, prod, logsumexp = (
    _public(n) for n in ("sum", "mean", "max", "min", "prod", "logsumexp"))
amax, amin = max, min


def _arg_public(name):
    @blamed_on(name)
    def function(a, axis=None, keepdims=False):
        a = as_tensor(a)
        if axis is not None:
            axis = normalize_axis(axis, a.ndim, a.shape)
        return apply(name, a, axis=axis, keepdims=bool(keepdims))
    function.__name__ = name
    function.__doc__ = f"NumPy's {name} along `axis` (None: flattened), int64."
    return function


argmax, argmin = _arg_public("argmax"), _arg_public("argmin")


def var(a, axis=None, keepdims=False, ddof=0):
    """Variance (mean of squared deviations), as NumPy (inf or NaN when ddof >= n)."""
    centred = a - mean(a, axis, keepdims=True)
    total = sum(centred * centred, axis, keepdims=keepdims)
    from graphc.ops.elementwise import maximum
    from graphc.ops.source import size
    return total / maximum(size(a, axis, dtype=a.dtype) - ddof, 0)    # ddof >= n: inf


def std(a, axis=None, keepdims=False, ddof=0):
    from graphc.ops.elementwise import sqrt
    return sqrt(var(a, axis, keepdims, ddof))


def sum_to(x, shape):
    """Sum x down to `shape` (the adjoint of broadcast_to)."""
    return apply("sum_to", x, shape=tuple(shape))
