"""Lowering of composite reductions into the primitives that fusion knows.

Guarantees: afterwards the program has no softmax, log_softmax, logsumexp,
mean or sum_to node, each became max/sum reductions (keepdims), elementwise
ops and reshapes, computed stably (the row maximum is subtracted before exp),
or, over a zero-size axis, one fill (-inf for logsumexp; the softmaxes are
empty); and no sum/prod/max/min over no axes (that is x).
Meaning unchanged up to float rounding: the result is what the NumPy
references compute, in a different order of operations.
"""
import collections

import numpy as np

from graphc.ops.reduce import sum_to_axes
from graphc.ops.registry import OPS


def lower(program):
    counts = collections.Counter()
    graph = program.graph
    for node in graph.topological():
        rule = LOWERINGS.get(node.op.name)
        if rule is None:
            continue
        new = rule(_Builder(graph, node), *node.inputs, **node.attrs)
        if new is None:
            continue
        assert new.shape == node.shape and new.dtype == node.dtype, (node, new)
        program.replace(node, new)
        if node not in program.roots():
            graph.remove(node)
        counts[node.op.name] += 1
    return dict(counts)


class _Builder:
    """Adds nodes named after, and located at, the node being lowered."""

    def __init__(self, graph, node):
        self.graph, self.node = graph, node

    def __call__(self, op, *inputs, **attrs):
        return self.graph.add(OPS[op], inputs, attrs, name=f"{self.node.name}_{op}",
                              loc=self.node.loc)

    def constant(self, value, dtype):
        return self("constant", value=np.asarray(value, dtype))

    def reduce(self, op, x, axes):
        return self(op, x, axis=tuple(axes), keepdims=True)

    def drop(self, x, axes, keepdims):
        return x if keepdims else self("reshape", x, newshape=tuple(
            d for i, d in enumerate(x.shape) if i not in axes))


def _stats(b, x, axes):
    """m = max over axes, x - m, e = exp(x - m), and s = sum(e) (keepdims)."""
    m = b.reduce("max", x, axes)
    shifted = b("subtract", x, m)
    e = b("exp", shifted)
    return m, shifted, e, b.reduce("sum", e, axes)


def _empty(x, axes):
    """Whether a reduced axis has no elements (its max would not exist)."""
    return any(x.shape[a] == 0 for a in axes)


def lower_log_softmax(b, x, *, axis):
    """(x - m) - log s. The cpu kernels compute an element value that reads a row
    value as written (runtime/cpu/codegen.py, `exact`), so fastmath cannot rewrite it
    as x - (m + log s), which loses log s against a large m."""
    if _empty(x, (axis,)):      # no element to normalize: the (empty) result as such
        return b("full", shape=x.shape, value=0.0, dtype=b.node.dtype)
    _, shifted, _, s = _stats(b, x, (axis,))
    return b("subtract", shifted, b("log", s))


def lower_softmax(b, x, *, axis):
    if _empty(x, (axis,)):
        return b("full", shape=x.shape, value=0.0, dtype=b.node.dtype)
    _, _, e, s = _stats(b, x, (axis,))
    return b("divide", e, s)        # one exp: the kernel keeps e for its last pass


def _over_no_axes(b, x):
    """A reduction over no axes is x itself (cast as the reduction's dtype): its
    reductions (axis=()) would read as whole-tensor ones to a backend (CUDA's did)."""
    return x if x.dtype == b.node.dtype else b("cast", x, dtype=b.node.dtype)


def lower_logsumexp(b, x, *, axis, keepdims):
    if not axis:
        return _over_no_axes(b, x)
    if _empty(x, axis):         # log of an empty sum, as NumPy's and PyTorch's
        return b("full", shape=b.node.shape, value=-np.inf, dtype=b.node.dtype)
    m = b.reduce("max", x, axis)
    # shift by 0 where the max is infinite (m - m is 0 only for finite m), so an all
    # -inf row gives -inf and a +inf element gives +inf, not NaN
    finite = b("equal", b("subtract", m, m), b.constant(0, m.dtype))
    safe_m = b("where", finite, m, b.constant(0, m.dtype))
    s = b.reduce("sum", b("exp", b("subtract", x, safe_m)), axis)
    return b.drop(b("add", b("log", s), safe_m), axis, keepdims)


def lower_mean(b, x, *, axis, keepdims):
    if not axis:
        return _over_no_axes(b, x)
    count = int(np.prod([x.shape[a] for a in axis]))
    if x.dtype.kind == "f":
        return b.drop(b("divide", b.reduce("sum", x, axis), b.constant(count, x.dtype)),
                      axis, keepdims)
    # integers (and bools): summed exactly in int64, divided in float64, as NumPy's mean
    total = b("cast", b.reduce("sum", x, axis), dtype=np.dtype(np.float64))
    mean = b("divide", total, b.constant(count, np.float64))
    return b.drop(b("cast", mean, dtype=b.node.dtype), axis, keepdims)


def lower_sum_to(b, x, *like, shape):
    target = like[0].shape if like else shape
    axes = sum_to_axes(x.shape, target)
    total = b.reduce("sum", x, axes) if axes else x
    if total.dtype != b.node.dtype:                 # integer sums widen to int64
        total = b("cast", total, dtype=b.node.dtype)
    return total if total.shape == tuple(target) else b("reshape", total, newshape=tuple(target))


def lower_reduction_over_no_axes(b, x, *, axis, keepdims):
    """sum/prod/max/min over no axes are x (cast as NumPy's sum casts); the fused loop
    has no reduction loop to put them in. None: a real reduction, kept."""
    return None if axis else _over_no_axes(b, x)


LOWERINGS = {
    "log_softmax": lower_log_softmax,
    "softmax": lower_softmax,
    "logsumexp": lower_logsumexp,
    "mean": lower_mean,
    "sum_to": lower_sum_to,
    **{name: lower_reduction_over_no_axes for name in ("sum", "prod", "max", "min")},
}
