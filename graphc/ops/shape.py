"""Injective ops (each output element reads at most one input element):
reshape, transpose, broadcast_to, expand_dims, squeeze, slice, concatenate,
pad, one_hot; and the gather `take` with its scatter-add gradient.

Shape-taking ops accept the shape as an operand (`like`, read for its shape
only), which is how gradients get shapes that are unknown until run time.
"""
import numpy as np

from graphc import dtypes
from graphc.errors import ArgumentError, DtypeError, GradError, RuntimeFailure, ShapeError
from graphc.graph import format_shape
from graphc.ops.registry import INJECTIVE, OPAQUE, register_op
from graphc.ops.rules import (as_tuple, blamed_on, broadcast_shapes, broadcasts_to, is_integer,
                              normalize_axes, normalize_axis, num_elements, positive_int)
from graphc.tensor import apply, as_tensor


def resolve_reshape(shape, newshape):
    """newshape with its one -1 (or None) worked out; None where still unknown."""
    unknown = [i for i, d in enumerate(newshape) if d is None or d == -1]
    if len(unknown) > 1:
        raise ShapeError(f"can only infer one dimension of {newshape!r}")
    if any(d is not None and d < -1 for d in newshape):
        raise ShapeError(f"bad dimension in {newshape!r}")
    total, known = num_elements(shape), num_elements([d for d in newshape if d not in (None, -1)])
    out = [None if d == -1 else d for d in newshape]
    if total is None:
        return tuple(out)
    if unknown:
        if known == 0 or total % known:
            raise ShapeError(f"cannot reshape {format_shape(shape)} into {newshape!r}")
        out[unknown[0]] = total // known
    elif known != total:
        raise ShapeError(f"cannot reshape {format_shape(shape)} ({total} elements) into "
                         f"{format_shape(newshape)} ({known} elements)")
    return tuple(out)


@register_op("reshape", INJECTIVE, shape_only=(1,))
class Reshape:
    """NumPy reshape (one -1 allowed); or to an operand's shape."""
    def infer(x, *like, newshape):
        return resolve_reshape(x.shape, like[0].shape if like else newshape), x.dtype
    def reference(x, *like, newshape):
        return x.reshape(like[0].shape if like else [-1 if d is None else d for d in newshape])
    def grad(y, dy, x, *like, newshape): return [reshape_like(dy, x)] + [None] * len(like)


@register_op("transpose", INJECTIVE)
class Transpose:
    """Permute axes."""
    def infer(x, *, axes):
        if sorted(axes) != list(range(len(x.shape))):
            raise ShapeError(f"axes {axes} are not a permutation for shape {format_shape(x.shape)}")
        return tuple(x.shape[a] for a in axes), x.dtype
    def reference(x, *, axes): return np.transpose(x, axes)
    def grad(y, dy, x, *, axes): return [apply("transpose", dy, axes=tuple(np.argsort(axes).tolist()))]


@register_op("broadcast_to", INJECTIVE, shape_only=(1,))
class BroadcastTo:
    """NumPy broadcast_to; or to an operand's shape."""
    def infer(x, *like, shape):
        target = like[0].shape if like else _fill_unknown(x.shape, shape)
        if not broadcasts_to(x.shape, target):
            raise ShapeError(f"cannot broadcast {format_shape(x.shape)} to {format_shape(target)}")
        return tuple(target), x.dtype
    def reference(x, *like, shape):
        return np.broadcast_to(x, like[0].shape if like else _fill_unknown(x.shape, shape))
    def grad(y, dy, x, *like, shape): return [apply("sum_to", dy, x, shape=None)] + [None] * len(like)


def _fill_unknown(shape, target):
    """target with each None (unknown size) taken from the input's aligned dimension."""
    offset = len(target) - len(shape)
    if offset < 0 or None not in target:
        return tuple(target)
    if None in target[:offset]:
        raise ShapeError(f"cannot broadcast {format_shape(shape)} to {format_shape(target)}: "
                         "a None size needs an input dimension to take its size from")
    return tuple(shape[i - offset] if d is None else d for i, d in enumerate(target))


@register_op("expand_dims", INJECTIVE)
class ExpandDims:
    """Insert size-1 axes at the (sorted, non-negative) output positions `axis`."""
    def infer(x, *, axis):
        shape = list(x.shape)
        for a in axis:
            shape.insert(a, 1)
        return tuple(shape), x.dtype
    def reference(x, *, axis): return np.expand_dims(x, axis)
    def grad(y, dy, x, *, axis): return [apply("squeeze", dy, axis=axis)]


@register_op("squeeze", INJECTIVE)
class Squeeze:
    """Remove the size-1 axes `axis` (fixed when the graph is built)."""
    def infer(x, *, axis):
        for a in axis:
            if x.shape[a] not in (1, None):
                raise ShapeError(f"cannot squeeze axis {a} of size {x.shape[a]} "
                                 f"in shape {format_shape(x.shape)}")
        return tuple(d for i, d in enumerate(x.shape) if i not in axis), x.dtype
    def reference(x, *, axis): return np.squeeze(x, axis)
    def grad(y, dy, x, *, axis): return [apply("expand_dims", dy, axis=axis)]


def _sliced_length(dim, start, stop, step):
    """Length of a slice of a dimension (None while the dimension is unknown)."""
    return None if dim is None else len(range(dim)[slice(start, stop, step)])


def _index(index):
    return tuple(slice(*s) for s in index)


@register_op("slice", INJECTIVE)
class Slice:
    """Basic slicing: one (start, stop, step) triple per axis."""
    def infer(x, *, index):
        if len(index) != len(x.shape):
            raise ShapeError(f"{len(index)} slices for shape {format_shape(x.shape)}")
        for start, stop, step in index:
            if step == 0:
                raise ShapeError("slice step cannot be zero")
        return tuple(_sliced_length(d, *s) for d, s in zip(x.shape, index)), x.dtype
    def reference(x, *, index): return x[_index(index)]
    def grad(y, dy, x, *, index): return [apply("slice_grad", dy, x, index=index)]


@register_op("slice_grad", INJECTIVE, shape_only=(1,))
class SliceGrad:
    """Zeros of an operand's shape with dy written where the slice read."""
    def infer(dy, like, *, index): return like.shape, dy.dtype
    def reference(dy, like, *, index):
        out = np.zeros(like.shape, dy.dtype)
        out[_index(index)] = dy
        return out
    def grad(y, dy, g, like, *, index): return [apply("slice", dy, index=index), None]


@register_op("concatenate", INJECTIVE)
class Concatenate:
    """Join tensors along an existing axis."""
    def infer(*xs, axis):
        first = xs[0].shape
        for x in xs[1:]:
            if len(x.shape) != len(first) or not all(
                    a is None or b is None or a == b
                    for i, (a, b) in enumerate(zip(first, x.shape)) if i != axis):
                raise ShapeError("shapes " + ", ".join(format_shape(t.shape) for t in xs)
                                 + f" do not match outside axis {axis}")
        sizes = [x.shape[axis] for x in xs]
        shape = list(broadcast_shapes(*[tuple(1 if i == axis else d for i, d in enumerate(x.shape))
                                        for x in xs]))
        shape[axis] = None if None in sizes else int(np.sum(sizes))
        return tuple(shape), dtypes.promote(*[x.dtype for x in xs])
    def reference(*xs, axis): return np.concatenate(xs, axis=axis)

    def grad(y, dy, *xs, axis):
        sizes = [x.shape[axis] for x in xs]
        if None in sizes:
            return [None if s is not None else _unknown_concat(axis) for s in sizes]
        offsets = np.cumsum([0] + sizes).tolist()
        full = [(None, None, None)] * len(y.shape)
        return [apply("slice", dy, index=tuple(full[:axis] + [(lo, hi, 1)] + full[axis + 1:]))
                for lo, hi in zip(offsets, offsets[1:])]


def _unknown_concat(axis):
    raise GradError(f"concatenate along axis {axis} of unknown size has no gradient")


@register_op("pad", INJECTIVE)
class Pad:
    """Constant padding: `pad_width` is one (before, after) pair per axis."""
    def infer(x, *, pad_width, value):
        if len(pad_width) != len(x.shape):
            raise ShapeError(f"{len(pad_width)} pad widths for shape {format_shape(x.shape)}")
        if any(w < 0 for pair in pad_width for w in pair):
            raise ArgumentError(f"pad widths must be non-negative, got {pad_width} "
                                f"for shape {format_shape(x.shape)}")
        return tuple(None if d is None else d + a + b for d, (a, b) in zip(x.shape, pad_width)), x.dtype
    def reference(x, *, pad_width, value): return np.pad(x, pad_width, constant_values=value)

    def grad(y, dy, x, *, pad_width, value):
        return [apply("slice", dy, index=tuple((a, -b if b else None, 1) for a, b in pad_width))]


@register_op("one_hot", INJECTIVE)
class OneHot:
    """y[..., c] = (indices[...] == c); indices outside [0, num_classes) are an error."""
    def infer(indices, *, num_classes, dtype):
        if not dtypes.is_int(indices.dtype):
            raise DtypeError(f"indices must be integers, got {indices.dtype}")
        return indices.shape + (positive_int(num_classes, "num_classes"),), dtype

    def reference(indices, *, num_classes, dtype):
        bad = (indices < 0) | (indices >= num_classes)
        if bad.any():
            raise IndexError(f"label {indices[bad].flat[0]} is out of range for "
                             f"{num_classes} classes")
        return (indices[..., None] == np.arange(num_classes)).astype(dtype)


@register_op("take", OPAQUE)
class Take:
    """Gather along an axis: a.shape[:axis] + indices.shape + a.shape[axis+1:]. Indices
    lie in [-size, size) (negatives wrap, as NumPy's), or in [0, size) when
    wrap_negative is False (as PyTorch's embedding); others fail at run time."""
    def infer(a, indices, *, axis, wrap_negative):
        if not dtypes.is_int(indices.dtype):
            raise DtypeError(f"indices must be integers, got {indices.dtype}")
        return a.shape[:axis] + indices.shape + a.shape[axis + 1:], a.dtype

    def reference(a, indices, *, axis, wrap_negative):
        _check_indices(indices, a.shape[axis], axis, wrap_negative)
        return np.take(a, indices, axis=axis)

    def grad(y, dy, a, indices, *, axis, wrap_negative):
        return [apply("take_grad", dy, indices, a, axis=axis, wrap_negative=wrap_negative), None]


def c_strides(shape, itemsize=1):
    """The strides of a C-ordered array of `shape` (in elements, or bytes of `itemsize`)."""
    strides, step = [], itemsize
    for dim in reversed(shape):
        strides.append(step)
        step *= dim
    return tuple(reversed(strides))


def lowest_index(size, wrap_negative):
    """The smallest index take and take_grad accept along an axis of `size`."""
    return -size if wrap_negative else 0


def _check_indices(indices, size, axis, wrap_negative):
    """RuntimeFailure at the first index outside take's range (see Take)."""
    flat = np.asarray(indices).reshape(-1)
    bad = np.flatnonzero((flat < lowest_index(size, wrap_negative)) | (flat >= size))
    if bad.size:
        raise RuntimeFailure(f"index {flat[bad[0]]} is out of range for axis {axis} of size "
                             f"{size}")


@register_op("take_grad", OPAQUE, shape_only=(2,))
class TakeGrad:
    """Scatter-add dy into zeros of an operand's shape (the adjoint of take)."""
    def infer(dy, indices, like, *, axis, wrap_negative): return like.shape, dy.dtype

    def reference(dy, indices, like, *, axis, wrap_negative):
        _check_indices(indices, like.shape[axis], axis, wrap_negative)
        out = np.zeros(like.shape, dy.dtype)
        moved = np.moveaxis(dy, list(range(axis, axis + indices.ndim)), list(range(indices.ndim)))
        np.add.at(np.moveaxis(out, axis, 0), indices, moved)
        return out

    def grad(y, g, dy, indices, like, *, axis, wrap_negative):
        return [apply("take", g, indices, axis=axis, wrap_negative=wrap_negative), None, None]


# -- public functions -----------------------------------------------------------------

@blamed_on("reshape")
def reshape(a, newshape):
    """NumPy's reshape; one dimension may be -1, also when the batch dimension is None."""
    a = as_tensor(a)
    if newshape is None:
        raise ArgumentError("newshape must be an int or a tuple of ints, got None")
    newshape = tuple(_dimension(d, newshape) for d in as_tuple(newshape))
    if newshape == a.shape and None not in newshape:
        return a
    return apply("reshape", a, newshape=newshape)


def _dimension(d, shape):
    """One entry of a shape argument as an int (or None); ArgumentError naming it."""
    if d is not None and not is_integer(d):
        where = "" if d is shape else f" in {shape!r}"
        raise ArgumentError(f"a shape holds ints (or -1 or None), got {d!r}{where}")
    return None if d is None else int(d)


def reshape_like(a, like):
    """a reshaped to like's shape (known once like's is)."""
    return a if a.shape == like.shape and None not in a.shape else apply("reshape", a, like, newshape=None)


@blamed_on("transpose")
def transpose(a, axes=None):
    a = as_tensor(a)
    axes = tuple(range(a.ndim))[::-1] if axes is None else tuple(
        normalize_axis(x, a.ndim, a.shape) for x in as_tuple(axes))
    return apply("transpose", a, axes=axes)


@blamed_on("swapaxes")
def swapaxes(a, axis1, axis2):
    a = as_tensor(a)
    perm = list(range(a.ndim))
    axis1, axis2 = (normalize_axis(x, a.ndim, a.shape) for x in (axis1, axis2))
    perm[axis1], perm[axis2] = perm[axis2], perm[axis1]
    return transpose(a, perm)


@blamed_on("broadcast_to")
def broadcast_to(a, shape):
    return apply("broadcast_to", a, shape=tuple(_dimension(d, shape) for d in as_tuple(shape)))


@blamed_on("expand_dims")
def expand_dims(a, axis):
    a = as_tensor(a)
    axes = as_tuple(axis)
    return apply("expand_dims", a, axis=normalize_axes(axes, a.ndim + len(axes)))


@blamed_on("squeeze")
def squeeze(a, axis=None):
    """Remove size-1 axes (axis=None: every axis known to be 1)."""
    a = as_tensor(a)
    if axis is None:
        axes = tuple(i for i, d in enumerate(a.shape) if d == 1)
    else:
        axes = normalize_axes(axis, a.ndim, a.shape)
    return apply("squeeze", a, axis=axes) if axes else a


@blamed_on("concatenate")
def concatenate(arrays, axis=0):
    arrays = [as_tensor(x) for x in arrays]
    if not arrays:
        raise ShapeError("need at least one array")
    axis = normalize_axis(axis, arrays[0].ndim, arrays[0].shape)
    return apply("concatenate", *arrays, axis=axis)


@blamed_on("stack")
def stack(arrays, axis=0):
    """Join tensors of one shape along a new axis."""
    arrays = [as_tensor(x) for x in arrays]
    if not arrays:
        raise ShapeError("need at least one array")
    first = arrays[0].shape
    if any(len(x.shape) != len(first) or any(a is not None and b is not None and a != b
                                             for a, b in zip(first, x.shape)) for x in arrays):
        raise ShapeError("shapes " + ", ".join(format_shape(x.shape) for x in arrays)
                         + " differ: stacked tensors need one shape")
    axis = normalize_axis(axis, len(first) + 1, first)
    return concatenate([expand_dims(x, axis) for x in arrays], axis=axis)


@blamed_on("pad")
def pad(array, pad_width, mode="constant", constant_values=0):
    """NumPy's pad, constant mode: pad_width is an int, a (before, after) pair, or one per axis."""
    array = as_tensor(array)
    if mode != "constant":
        raise ArgumentError(f"only mode='constant' is supported, got {mode!r}")
    return apply("pad", array, pad_width=_pad_widths(pad_width, array), value=constant_values)


def _pad_widths(pad_width, array):
    """pad_width as one (before, after) pair of ints per axis of `array`."""
    try:
        widths = np.asarray(pad_width)
    except ValueError:                              # ragged nested lists
        widths = None
    if widths is None or widths.dtype.kind not in "iu":
        raise ArgumentError(f"pad_width must be ints (an int, a (before, after) pair or one "
                            f"pair per axis), got {pad_width!r}")
    try:
        widths = np.broadcast_to(widths, (array.ndim, 2))
    except ValueError:
        raise ShapeError(f"pad_width {pad_width!r} does not fit shape "
                         f"{format_shape(array.shape)}: give one (before, after) pair per "
                         "axis") from None
    return tuple((int(a), int(b)) for a, b in widths)


@blamed_on("take")
def take(a, indices, axis=None, wrap_negative=True):
    """Gather a's entries along `axis` (None: from the flattened array). A negative
    index counts from the end, as NumPy's, or is an error if not wrap_negative."""
    a = as_tensor(a)
    if axis is None:
        a, axis = reshape(a, (-1,)), 0
    axis = normalize_axis(axis, a.ndim, a.shape)
    return apply("take", a, as_tensor(indices), axis=axis, wrap_negative=bool(wrap_negative))


@blamed_on("one_hot")
def one_hot(indices, num_classes, dtype="float32"):
    """y[..., c] = (indices == c), of `dtype`; an index outside the classes is an error."""
    return apply("one_hot", indices, num_classes=num_classes, dtype=dtypes.as_dtype(dtype))
