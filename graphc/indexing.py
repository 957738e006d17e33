"""`x[index]`: NumPy basic indexing (static slices, integers, Ellipsis, None)
as slice / squeeze / expand_dims nodes, and `x[int_tensor]` as a gather.
"""
from graphc.errors import ShapeError, user_location
from graphc.graph import format_shape
from graphc.ops.rules import is_integer
from graphc.ops.shape import expand_dims, squeeze, take
from graphc.tensor import Tensor, apply


def getitem(x, index):
    if isinstance(index, Tensor):
        return take(x, index, axis=0)
    items = list(index) if isinstance(index, tuple) else [index]
    items = _expand_ellipsis(x, items)
    triples, dropped, inserted, axis = [], [], [], 0
    for position, item in enumerate(items):
        if item is None:
            inserted.append(position - len(dropped))
            continue
        dim = x.shape[axis]
        if isinstance(item, slice):
            triples.append(_slice_triple(item))
        elif is_integer(item):
            triples.append(_integer_triple(int(item), dim, axis, x))
            dropped.append(axis)
        else:
            raise ShapeError(f"index {item!r} is not supported (use ints, slices, None, "
                             "Ellipsis, or one integer tensor)", op="getitem", loc=user_location())
        axis += 1
    triples += [(None, None, None)] * (x.ndim - axis)
    out = x
    if any(t != (None, None, None) for t in triples):
        out = apply("slice", x, index=tuple(triples))
    if dropped:
        out = squeeze(out, tuple(dropped))
    if inserted:
        out = expand_dims(out, tuple(inserted))
    return out


def _expand_ellipsis(x, items):
    at = [k for k, item in enumerate(items) if item is Ellipsis]   # `is`: items may be Tensors
    if len(at) > 1:
        raise ShapeError(f"an index can have only one Ellipsis (...); got {len(at)} for shape "
                         f"{format_shape(x.shape)}", op="getitem", loc=user_location())
    dims_used = sum(1 for i in items if i is not None and i is not Ellipsis)
    if dims_used > x.ndim:
        raise ShapeError(f"too many indices ({dims_used}) for shape {format_shape(x.shape)}",
                         op="getitem", loc=user_location())
    if at:
        items = items[:at[0]] + [slice(None)] * (x.ndim - dims_used) + items[at[0] + 1:]
    return items


def _slice_triple(item):
    bounds = (item.start, item.stop, item.step)
    for bound in bounds:
        if bound is not None and not is_integer(bound):
            hint = " (use gc.take for data-dependent indices)" if isinstance(bound, Tensor) else ""
            raise ShapeError(f"slice bounds must be ints or None, got {bound!r} in "
                             f"{item!r}{hint}", op="getitem", loc=user_location())
    start, stop, step = (None if b is None else int(b) for b in bounds)
    return (start, stop, None if step == 1 else step)


def _integer_triple(i, dim, axis, x):
    if dim is not None and not -dim <= i < dim:
        raise ShapeError(f"index {i} is out of bounds for axis {axis} with size {dim} "
                         f"(shape {format_shape(x.shape)})", op="getitem", loc=user_location())
    return (i, i + 1 if i != -1 else None, None)
