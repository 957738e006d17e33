"""Reverse-mode differentiation, graph to graph.

`grad(y, xs)` adds the nodes that compute dy/dx for each x and returns them
as Tensors. Guarantees:
- only nodes on a path from some x to y are differentiated, each once, in
  reverse creation order: time linear in the size of that subgraph;
- a gradient has its input's shape and dtype: broadcasting is undone by
  summing (`sum_to`), and a dtype change is cast back;
- integer and bool values carry no gradient; `stop_gradient` cuts a path;
  an x that y does not depend on gets zeros;
- every rule is built from graph ops, so the result can be differentiated again.
"""
from graphc import dtypes
from graphc.errors import DtypeError, GradError, ShapeError, user_location
from graphc.graph import format_shape
from graphc.tensor import Tensor, apply, as_tensor


def grad(y, xs, grad_y=None):
    """Gradients of y with respect to xs (a Tensor or a list of Tensors).

    y must be a scalar unless `grad_y` (the cotangent, y's shape) is given.
    """
    loc = user_location()
    single = isinstance(xs, Tensor)
    if not single and not isinstance(xs, (list, tuple)):
        raise GradError(f"xs must be a Tensor or a list of Tensors, got {type(xs).__name__}",
                        op="grad", loc=loc)
    xs = [xs] if single else list(xs)
    y = _check_tensor(y, "y", loc)
    for i, x in enumerate(xs):
        _check_tensor(x, f"xs[{i}]", loc)
        if x.graph is not y.graph:
            raise GradError(f"xs[{i}] ({x.name}) is in another graph than y", op="grad", loc=loc)
    with y.graph.role("backward"):          # tags the nodes made here (for gc.viz)
        results = _backward(y, xs, _seed_cotangent(y, grad_y, loc))
    return results[0] if single else results


def _backward(y, xs, seed):
    relevant = _between(y.node, {x.node for x in xs})
    pending = {y.node: [seed]}
    done = {}
    for node in sorted(relevant, key=lambda n: n.id, reverse=True):
        contributions = pending.pop(node, None)
        if not contributions:
            continue
        total = _sum(contributions)
        done[node] = total
        _propagate(node, total, relevant, pending)
    results = [done.get(x.node) for x in xs]
    return [g if g is not None else apply("full", x, shape=None, value=0, dtype=x.dtype)
            for g, x in zip(results, xs)]


def _check_tensor(value, what, loc):
    if not isinstance(value, Tensor):
        raise GradError(f"{what} must be a graphc Tensor, got {type(value).__name__}",
                        op="grad", loc=loc)
    if not dtypes.is_float(value.dtype):
        raise DtypeError(f"{what} ({value.name}) has dtype {value.dtype}; "
                         "gradients need floating-point tensors", op="grad", loc=loc)
    return value


def _seed_cotangent(y, grad_y, loc):
    if grad_y is None:
        if y.shape != ():
            raise GradError(f"y ({y.name}) has shape {format_shape(y.shape)}, not a scalar: "
                            "pass grad_y (the cotangent, of y's shape)", op="grad", loc=loc)
        return apply("full", y, shape=None, value=1, dtype=y.dtype)
    grad_y = as_tensor(grad_y)
    if len(grad_y.shape) != len(y.shape) or any(
            a is not None and b is not None and a != b for a, b in zip(grad_y.shape, y.shape)):
        raise ShapeError(f"grad_y has shape {format_shape(grad_y.shape)} but y ({y.name}) has "
                         f"shape {format_shape(y.shape)}", op="grad", loc=loc)
    return apply("cast", grad_y, dtype=y.dtype) if grad_y.dtype != y.dtype else grad_y


def _between(y, xs):
    """Nodes that lie on a path from some x to y, along differentiable edges."""
    ancestors, stack = set(), [y]
    while stack:
        node = stack.pop()
        if node in ancestors or not dtypes.is_float(node.dtype):
            continue
        ancestors.add(node)
        if node.op.name != "stop_gradient":
            stack.extend(i for k, i in enumerate(node.inputs) if k not in node.op.shape_only)
    reaches = set()
    for node in sorted(ancestors, key=lambda n: n.id):
        if node in xs or any(i in reaches for i in node.inputs):
            reaches.add(node)
    return reaches


def _propagate(node, total, relevant, pending):
    """Apply node's rule and queue each operand's share."""
    wanted = [i in relevant and k not in node.op.shape_only for k, i in enumerate(node.inputs)]
    if not any(wanted) or node.op.name == "stop_gradient":
        return
    if node.op.grad is None:
        raise GradError(f"no gradient rule for {node.op.name} ({node.describe()})",
                        op="grad", loc=node.loc)
    operands = [i.tensor for i in node.inputs]
    shares = node.op.grad(node.tensor, total, *operands, **node.attrs)
    for operand, share, want in zip(node.inputs, shares, wanted):
        if want and share is not None:
            pending.setdefault(operand, []).append(_conform(share, operand, node))


def _conform(share, operand, node):
    """Sum a broadcast gradient back to the operand's shape; match its dtype."""
    if share.dtype != operand.dtype:
        share = apply("cast", share, dtype=operand.dtype)
    broadcasting = node.op.kind == "elementwise" and len(node.inputs) > 1
    if share.shape != operand.shape or (broadcasting and None in share.shape):
        share = apply("sum_to", share, operand.tensor, shape=None)
    return share


def _sum(tensors):
    """The sum of a node's gradient contributions. Gradients of disjoint slices of
    one tensor along one axis (an unrolled loop reading x[:, t]) are joined into
    one concatenate: T zero-filled full-size tensors added up would cost O(T^2)."""
    tensors = _join_slice_grads(tensors)
    total = tensors[0]
    for t in tensors[1:]:
        total = total + t
    return total


def _join_slice_grads(tensors):
    slabs = {}          # (the sliced tensor, axis) -> [(start, stop, contribution)]
    for t in tensors:
        slab = _slab(t.node) if t.node.op.name == "slice_grad" else None
        if slab is not None:
            like, axis, start, stop = slab
            slabs.setdefault((like, axis), []).append((start, stop, t))
    if not slabs:
        return tensors
    (like, axis), pieces = max(slabs.items(), key=lambda item: len(item[1]))
    pieces.sort(key=lambda piece: piece[0])
    if len(pieces) < 2 or any(a[1] > b[0] for a, b in zip(pieces, pieces[1:])):
        return tensors
    parts, at = [], 0
    for start, stop, t in pieces + [(like.shape[axis], None, None)]:
        if start > at:                  # a gap no slice read: zeros
            gap = _full_index(like, axis, at, start)
            parts.append(apply("full", apply("slice", like.tensor, index=gap), shape=None,
                               value=0, dtype=t.dtype if t is not None else pieces[0][2].dtype))
        if t is not None:
            parts.append(t.node.inputs[0].tensor)
            at = stop
    joined = parts[0] if len(parts) == 1 else apply("concatenate", *parts, axis=axis)
    used = {id(t) for _, _, t in pieces}
    return [joined] + [t for t in tensors if id(t) not in used]


def _slab(node):
    """(sliced node, axis, start, stop) if slice_grad `node` wrote one unit-step range
    of one axis of static size and the whole of every other axis; else None."""
    like, index = node.inputs[1], node.attrs["index"]
    axes = [i for i, (start, stop, step) in enumerate(index)
            if (start or 0) != 0 or stop is not None or (step or 1) != 1]
    if len(axes) != 1 or like.shape[axes[0]] is None:
        return None
    axis = axes[0]
    start, stop, step = slice(*index[axis]).indices(like.shape[axis])
    if step != 1 or stop <= start:
        return None
    return like, axis, start, stop


def _full_index(like, axis, start, stop):
    return tuple((start, stop, 1) if i == axis else (None, None, None)
                 for i in range(len(like.shape)))


def stop_gradient(x):
    """x, with no gradient flowing back through it."""
    return apply("stop_gradient", x)
