"""Index kernels of the CUDA backend: take (gather along an axis), take_grad (its
adjoint, a scatter-add) and argmax/argmin.

- take: a grid-stride gather, one thread per output element.
- take_grad: a zero fill, then a scatter-add with atomics, one thread per dy
  element (repeated indices accumulate; the order of their float sums varies
  between runs, within float rounding).
  Both map an element to its operand position with `take_position`. An index
  outside [-size, size) sets err[0] = 1, err[1] = 1 + the kernel's index and
  err[2] = the smallest 1 + position of such an index (atomic min), as the
  CPU's code reports it.
- argmax / argmin: one thread per output element scans its reduced elements
  in C order and keeps the first maximum (minimum); a NaN wins at once, as in
  NumPy. The input is read through its strides, and the reduced elements of
  axis=None are all of them.
"""
import numpy as np
from numba import cuda

from graphc.ops.shape import lowest_index
from graphc.runtime.cuda.device import LIMITS, grid_for
from graphc.runtime.cuda.layout import fill_launch, size_of, strided_offset

NO_INDEX_ERROR = np.iinfo(np.int64).max


@cuda.jit(device=True)
def take_position(i, indices, size, lowest, after, err, kernel):
    """Element i of take's (before, n, after) space, n = indices.shape[0]: the offset of
    its element in the (before, size, after) operand, or -1 (err flagged) when its index
    is outside [lowest, size) (lowest: -size, or 0 without wrap_negative)."""
    n = indices.shape[0]
    t = (i // after) % n
    k = indices[t]
    if k < lowest or k >= size:
        err[0] = 1
        err[1] = kernel
        cuda.atomic.min(err, 2, t + 1)
        return -1
    if k < 0:
        k += size
    return ((i // (after * n)) * size + k) * after + i % after


@cuda.jit
def take(a, indices, out, size, lowest, after, err, kernel):
    """out (before, n, after) = a (before, size, after) gathered along axis 1."""
    if err[0] != 0:
        return
    i = cuda.grid(1)
    while i < out.shape[0]:
        source = take_position(i, indices, size, lowest, after, err, kernel)
        if source >= 0:
            out[i] = a[source]
        i += cuda.gridsize(1)


@cuda.jit
def scatter_add(dy, indices, out, size, lowest, after, err, kernel):
    """out (before, size, after) += dy (before, n, after) scattered along axis 1."""
    if err[0] != 0:
        return
    i = cuda.grid(1)
    while i < dy.shape[0]:
        target = take_position(i, indices, size, lowest, after, err, kernel)
        if target >= 0:
            cuda.atomic.add(out, target, dy[i])
        i += cuda.gridsize(1)


@cuda.jit
def arg_reduce(x, kept_shape, kept_strides, red_shape, red_strides, count, size, out,
               largest, err):
    """out[o] = the C-order position among the reduced elements of output o of the first
    maximum (largest != 0) or minimum; the first NaN if there is one."""
    if err[0] != 0:
        return
    o = cuda.grid(1)
    while o < count:
        base = strided_offset(o, kept_shape, kept_strides)
        best = x[base]
        arg = 0
        if best == best:
            for k in range(1, size):
                v = x[base + strided_offset(k, red_shape, red_strides)]
                if v != v or (v > best if largest else v < best):
                    best = v
                    arg = k
                    if v != v:
                        break
        out[o] = arg
        o += cuda.gridsize(1)


def _threads_for(work):
    threads = LIMITS.threads
    return grid_for(work, threads), threads


def take_op(ctx, node, operands, out, err, index):
    a, indices = operands
    axis = node.attrs["axis"]
    size, after = a.shape[axis], size_of(a.shape[axis + 1:])
    if out.size == 0:
        return []
    lowest = lowest_index(size, node.attrs["wrap_negative"])
    return [(take, *_threads_for(out.size),
             (a.flat, indices.flat, out, size, lowest, after, err, index + 1))]


def take_grad_op(ctx, node, operands, out, err, index):
    dy, indices = operands[:2]
    axis = node.attrs["axis"]
    size, after = node.shape[axis], size_of(node.shape[axis + 1:])
    launches = [fill_launch(out, np.dtype(node.dtype).type(0), err)]
    if size_of(dy.shape) == 0:
        return launches
    lowest = lowest_index(size, node.attrs["wrap_negative"])
    return launches + [(scatter_add, *_threads_for(size_of(dy.shape)),
                        (dy.flat, indices.flat, out, size, lowest, after, err, index + 1))]


def arg_reduce_op(ctx, node, operands, out, err, index):
    """argmax / argmin along one axis, or over all axes (axis None)."""
    (x,) = operands
    axis = node.attrs["axis"]
    reduced = range(len(x.shape)) if axis is None else [axis]
    kept = [d for d in range(len(x.shape)) if d not in reduced]

    def shape(dims):            # no dims: one position (a (1,) shape, offset 0)
        return ctx.upload(np.array([x.shape[d] for d in dims] or [1], np.int64))

    def strides(dims):
        return ctx.upload(np.array([x.strides[d] for d in dims] or [0], np.int64))
    count = size_of([x.shape[d] for d in kept])
    size = size_of([x.shape[d] for d in reduced])
    largest = int(node.op.name == "argmax")
    return [(arg_reduce, *_threads_for(count),
             (x.flat, shape(kept), strides(kept), shape(reduced), strides(reduced), count,
              size, out, largest, err))]
