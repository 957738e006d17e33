"""softmax and log_softmax along one axis (computed stably, max subtracted)."""
import numpy as np

from graphc.ops.registry import REDUCE, register_op
from graphc.ops.rules import float_unary
from graphc.tensor import apply


def _shifted(x, axis):
    """x minus its max along axis (x itself, empty, when the axis is)."""
    if x.shape[axis] == 0:
        return x
    return x - np.max(x, axis=axis, keepdims=True)


def _sum_back(t, axis):
    return apply("broadcast_to", apply("sum", t, axis=(axis,), keepdims=True), t, shape=None)


@register_op("softmax", REDUCE)
class Softmax:
    """y = exp(x) / sum(exp(x)) along axis."""
    infer = float_unary

    def reference(x, *, axis):
        e = np.exp(_shifted(x, axis))
        return e / np.sum(e, axis=axis, keepdims=True)

    def grad(y, dy, x, *, axis): return [y * (dy - _sum_back(dy * y, axis))]


@register_op("log_softmax", REDUCE)
class LogSoftmax:
    """y = x - logsumexp(x) along axis."""
    infer = float_unary

    def reference(x, *, axis):
        s = _shifted(x, axis)
        return s - np.log(np.sum(np.exp(s), axis=axis, keepdims=True))

    def grad(y, dy, x, *, axis): return [dy - apply("exp", y) * _sum_back(dy, axis)]
