"""How library kernels of the CUDA backend see values, and the kernels that only
move elements: fills, strided copies, concatenate, pad and slice_grad.

A value is an `Operand`: its base's flat device array, its shape and its
element strides (a transposed view is its base read with permuted strides).
Outputs are flat C-contiguous arena views.

- fill: out[i] = value for every i.
- gather: out[i] = src[table[i]], `table` computed on the host once per plan
  (a strided view made contiguous, for kernels that read C order only).
- place: for every C-order position i of a value of shape `shape`,
  out[offset + strided_offset(i, shape, out_strides)] =
  src[strided_offset(i, shape, src_strides)]: a value (in any layout) copied
  into a strided window of a larger one. concatenate is one place per piece
  at its offset along the axis; pad a fill with the pad value, then a place
  at the leading widths; slice_grad a zero fill, then a place at the slice's
  starts with its steps (negative steps too).

Each element of `out` is written by one thread (no atomics: the same result on
every run), and every kernel returns at once when err[0] is set (an earlier
kernel failed).
"""
import numpy as np
from numba import cuda

from graphc.ops.shape import c_strides

from graphc.runtime.cuda.device import LIMITS, grid_for


class Operand:
    """A value as a kernel reads it: its base's flat device array, shape, element strides."""

    def __init__(self, flat, shape, strides):
        self.flat, self.shape, self.strides = flat, tuple(shape), tuple(strides)

    @property
    def contiguous(self):
        return self.strides == c_strides(self.shape)


def size_of(shape):
    return int(np.prod(shape, dtype=np.int64))


@cuda.jit(device=True)
def strided_offset(flat, shape, strides):
    """The element offset of C-order position `flat` of `shape` in a view with `strides`
    (shape and strides: int64 device arrays of one length)."""
    offset = 0
    for d in range(shape.shape[0] - 1, -1, -1):
        offset += (flat % shape[d]) * strides[d]
        flat //= shape[d]
    return offset


@cuda.jit
def fill(out, value, err):
    """out[i] = value for every i."""
    if err[0] != 0:
        return
    i = cuda.grid(1)
    while i < out.shape[0]:
        out[i] = value
        i += cuda.gridsize(1)


@cuda.jit
def gather(src, table, out, err):
    """out[i] = src[table[i]] (a strided view made contiguous)."""
    if err[0] != 0:
        return
    i = cuda.grid(1)
    while i < out.shape[0]:
        out[i] = src[table[i]]
        i += cuda.gridsize(1)


@cuda.jit
def place(src, src_strides, shape, out, out_offset, out_strides, count, err):
    """The `count` elements of a value of `shape` read from src (through src_strides)
    and written to out at out_offset (through out_strides)."""
    if err[0] != 0:
        return
    i = cuda.grid(1)
    while i < count:
        target = out_offset + strided_offset(i, shape, out_strides)
        out[target] = src[strided_offset(i, shape, src_strides)]
        i += cuda.gridsize(1)


def _launch(kernel, work, args):
    threads = LIMITS.threads
    return (kernel, grid_for(work, threads), threads, args)


def fill_launch(out, value, err):
    return _launch(fill, out.size, (out, value, err))


def gather_launch(src, table, out, err):
    """A launch that copies a strided view (`table`: flat source index of each element)."""
    return _launch(gather, out.size, (src, table, out, err))


def gather_table(operand):
    """The flat source index of each C-order element of a strided `operand`."""
    positions = np.arange(max(1, operand.flat.size), dtype=np.int64)
    view = np.lib.stride_tricks.as_strided(positions, operand.shape,
                                           [s * 8 for s in operand.strides])
    return np.ascontiguousarray(view).reshape(-1)


class Placer:
    """The launches that copy values into strided windows of one output."""

    def __init__(self, ctx, out, out_shape, err):
        self.ctx, self.out, self.err = ctx, out, err
        self.out_strides = c_strides(out_shape)

    def put(self, src, starts, steps=None):
        """Copy operand `src` to out[starts[d] + idx[d] * steps[d], ...]."""
        count = size_of(src.shape)
        if count == 0:
            return []
        steps = steps or (1,) * len(src.shape)
        offset = sum(a * s for a, s in zip(starts, self.out_strides))
        strides = [step * s for step, s in zip(steps, self.out_strides)]
        # a 0-d value is one element: a shape of (1,) keeps the tables non-empty
        table = self.ctx.upload
        shape = table(np.array(src.shape or (1,), np.int64))
        src_strides = table(np.array(src.strides or (0,), np.int64))
        out_strides = table(np.array(strides or [0], np.int64))
        return [_launch(place, count, (src.flat, src_strides, shape, self.out, offset,
                                       out_strides, count, self.err))]


def concatenate(ctx, node, operands, out, err, index):
    """The pieces one after another along the axis."""
    axis, launches, at = node.attrs["axis"], [], 0
    placer = Placer(ctx, out, node.shape, err)
    for piece in operands:
        starts = [0] * len(node.shape)
        starts[axis] = at
        launches += placer.put(piece, starts)
        at += piece.shape[axis]
    return launches


def pad(ctx, node, operands, out, err, index):
    """A fill with the pad value, then the operand at its leading widths."""
    (x,) = operands
    value = np.dtype(node.dtype).type(node.attrs["value"])
    starts = [before for before, _ in node.attrs["pad_width"]]
    return [fill_launch(out, value, err)] + Placer(ctx, out, node.shape, err).put(x, starts)


def slice_grad(ctx, node, operands, out, err, index):
    """Zeros, then dy where the slice read (each axis: its start and step)."""
    dy = operands[0]
    starts, steps = [], []
    for dim, triple in zip(node.shape, node.attrs["index"]):
        start, _, step = slice(*triple).indices(dim)
        starts.append(start)
        steps.append(step)
    zero = np.dtype(node.dtype).type(0)
    return [fill_launch(out, zero, err)] + Placer(ctx, out, node.shape, err).put(
        dy, starts, steps)
