"""Library kernels of the CUDA backend: the opaque ops as numba.cuda kernels.

Operands are flat device arrays with element strides (so a transposed matmul
operand is its base read with swapped strides, never a copy); outputs are flat
C-contiguous arena views. `LibraryCall.prepare(node, operands, out)` turns a
node into launches [(kernel, grid, block, args)], computed once per plan;
`UNSUPPORTED` ops (conv, pooling, random, ...) raise a GraphcError naming the
op when the plan is built: never a silent fallback to the host.

- matmul: one (tile x tile) block per output tile, the tiles of a and b staged
  through shared memory; batched over grid z, with NumPy's batch broadcasting
  as a table of each batch's operand offsets.
- take: a grid-stride gather; take_grad: a zero fill, then a scatter-add with
  atomics (repeated indices accumulate). An index outside [-size, size) sets
  err[0] = 1, err[1] = 1 + the kernel's index and err[2] = the smallest
  1 + position of such an index (atomic min), as the CPU's code.
"""
import functools

import numpy as np
from numba import cuda, from_dtype

from graphc.errors import CompileError
from graphc.runtime.cuda.device import LIMITS, grid_for

SUPPORTED = ("matmul", "take", "take_grad")
NOT_YET = {"conv2d": "convolution", "conv2d_grad_input": "convolution",
           "conv2d_grad_weight": "convolution", "max_pool2d": "pooling",
           "max_pool2d_grad": "pooling", "max_pool2d_select": "pooling",
           "avg_pool2d": "pooling", "avg_pool2d_grad": "pooling",
           "random_uniform": "random numbers", "random_normal": "random numbers"}
NO_INDEX_ERROR = np.iinfo(np.int64).max


def unsupported(node):
    """The error for a library op the CUDA backend cannot run yet."""
    what = NOT_YET.get(node.op.name, "this op")
    return CompileError(f'device="cuda" cannot run {node.op.name} yet ({what} is not in the CUDA '
                        f'backend\'s first slice: issue 6); node {node.name} of shape '
                        f'{node.shape}; use device="cpu" for this program',
                        op=node.op.name, loc=node.loc)


@functools.lru_cache(maxsize=None)
def _kernels():
    """The kernels (the simulator finds `cuda` among a kernel's globals, not in a closure)."""

    @cuda.jit
    def fill_zero(out, err):
        if err[0] != 0:
            return
        i = cuda.grid(1)
        while i < out.shape[0]:
            out[i] = 0
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
    def take(a, indices, out, size, after, err, kernel):
        """out (before, n, after) = a (before, size, after) gathered along axis 1."""
        if err[0] != 0:
            return
        n = indices.shape[0]
        i = cuda.grid(1)
        while i < out.shape[0]:
            r = i % after
            t = (i // after) % n
            p = i // (after * n)
            k = indices[t]
            if k < -size or k >= size:
                err[0] = 1
                err[1] = kernel
                cuda.atomic.min(err, 2, t + 1)
            else:
                if k < 0:
                    k += size
                out[i] = a[(p * size + k) * after + r]
            i += cuda.gridsize(1)

    @cuda.jit
    def scatter_add(dy, indices, out, size, after, err, kernel):
        """out (before, size, after) += dy (before, n, after) scattered along axis 1."""
        if err[0] != 0:
            return
        n = indices.shape[0]
        i = cuda.grid(1)
        while i < dy.shape[0]:
            r = i % after
            t = (i // after) % n
            p = i // (after * n)
            k = indices[t]
            if k < -size or k >= size:
                err[0] = 1
                err[1] = kernel
                cuda.atomic.min(err, 2, t + 1)
            else:
                if k < 0:
                    k += size
                cuda.atomic.add(out, (p * size + k) * after + r, dy[i])
            i += cuda.gridsize(1)

    return {"fill_zero": fill_zero, "gather": gather, "take": take, "scatter_add": scatter_add}


@functools.lru_cache(maxsize=None)
def matmul_kernel(dtype, tile):
    """out[t] = a[t] @ b[t] for each batch t, over (tile x tile) blocks of threads."""
    element = from_dtype(np.dtype(dtype))
    zero = np.dtype(dtype).type(0)

    @cuda.jit
    def matmul(a, a_offsets, a_row, a_col, b, b_offsets, b_row, b_col, out, m, n, k, err):
        if err[0] != 0:
            return
        a_tile = cuda.shared.array((tile, tile), element)
        b_tile = cuda.shared.array((tile, tile), element)
        tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
        row = cuda.blockIdx.y * tile + ty
        col = cuda.blockIdx.x * tile + tx
        batch = cuda.blockIdx.z
        a_start, b_start = a_offsets[batch], b_offsets[batch]
        acc = zero
        for k0 in range(0, k, tile):
            ka, kb = k0 + tx, k0 + ty
            if row < m and ka < k:
                a_tile[ty, tx] = a[a_start + row * a_row + ka * a_col]
            else:
                a_tile[ty, tx] = zero
            if kb < k and col < n:
                b_tile[ty, tx] = b[b_start + kb * b_row + col * b_col]
            else:
                b_tile[ty, tx] = zero
            cuda.syncthreads()
            for kk in range(tile):
                acc += a_tile[ty, kk] * b_tile[kk, tx]
            cuda.syncthreads()
        if row < m and col < n:
            out[(batch * m + row) * n + col] = acc

    return matmul


class Operand:
    """A value as a kernel reads it: its base's flat device array, shape, element strides."""

    def __init__(self, flat, shape, strides):
        self.flat, self.shape, self.strides = flat, tuple(shape), tuple(strides)


def c_strides(shape):
    strides, step = [], 1
    for dim in reversed(shape):
        strides.append(step)
        step *= dim
    return tuple(reversed(strides))


def _batch_offsets(batch_shape, out_batch, matrix_size, stride):
    """Element offset of each output batch's operand matrix (NumPy batch broadcasting)."""
    count = int(np.prod(batch_shape, dtype=np.int64))
    ids = np.arange(count, dtype=np.int64).reshape(batch_shape)
    ids = np.broadcast_to(ids.reshape((1,) * (len(out_batch) - len(batch_shape)) + batch_shape),
                          out_batch).reshape(-1)
    return ids * (stride if stride is not None else matrix_size)


class LibraryCall:
    """Launches of one library node; `upload` copies the plan's small tables to the device."""

    def __init__(self, upload):
        self.upload = upload

    def prepare(self, node, operands, out, err, index):
        name = node.op.name
        if name not in SUPPORTED:
            raise unsupported(node)
        return getattr(self, "_" + name)(node, operands, out, err, index)

    def _matmul(self, node, operands, out, err, index):
        a, b = operands
        m, k = a.shape[-2:]
        n = b.shape[-1]
        out_batch = tuple(node.shape[:-2])
        batches = int(np.prod(out_batch, dtype=np.int64))
        tables = []
        for x in (a, b):
            # batch axes (if any) of a contiguous operand; a transposed 2-D one has none
            matrix = x.shape[-2] * x.shape[-1]
            tables.append(self.upload(_batch_offsets(x.shape[:-2], out_batch, matrix, None)))
        tile = LIMITS.tile
        grid = (-(-n // tile), -(-m // tile), batches)
        kernel = matmul_kernel(node.dtype, tile)
        args = (a.flat, tables[0], a.strides[-2], a.strides[-1],
                b.flat, tables[1], b.strides[-2], b.strides[-1], out, m, n, k, err)
        return [(kernel, grid, (tile, tile), args)]

    def _take(self, node, operands, out, err, index):
        a, indices = operands
        axis = node.attrs["axis"]
        size, after = a.shape[axis], int(np.prod(a.shape[axis + 1:], dtype=np.int64))
        threads = LIMITS.threads
        return [(_kernels()["take"], grid_for(out.size, threads), threads,
                 (a.flat, indices.flat, out, size, after, err, index + 1))]

    def _take_grad(self, node, operands, out, err, index):
        dy, indices = operands[:2]
        axis = node.attrs["axis"]
        size = node.shape[axis]
        after = int(np.prod(node.shape[axis + 1:], dtype=np.int64))
        threads = LIMITS.threads
        return [(_kernels()["fill_zero"], grid_for(out.size, threads), threads, (out, err)),
                (_kernels()["scatter_add"], grid_for(dy.flat.size, threads), threads,
                 (dy.flat, indices.flat, out, size, after, err, index + 1))]


def gather_launch(src, table, out, err):
    """A launch that copies a strided view (`table`: flat source index of each element)."""
    threads = LIMITS.threads
    return (_kernels()["gather"], grid_for(out.size, threads), threads, (src, table, out, err))
