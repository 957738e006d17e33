"""The CUDA backend's GEMM: one (tile x tile) block of threads per output tile, the
tiles of both operands staged through shared memory, batched over grid z.

Operands are read through element strides (a transposed operand is its base
with swapped strides, never a copy) and a table of each batch's operand
offsets (NumPy's batch broadcasting for matmul; im2col buffers for conv,
runtime/cuda/conv.py). Batch t's result is written C-contiguous at
out[t * m * n:(t + 1) * m * n].
"""
import functools

import numpy as np
from numba import cuda, from_dtype

from graphc.errors import CompileError
from graphc.runtime.cuda.device import LIMITS

MAX_GRID_YZ = 65535         # CUDA's limit on gridDim.y and gridDim.z


@functools.lru_cache(maxsize=None)
def matmul_kernel(dtype, tile):
    """out[t] = a[t] @ b[t] for each batch t, over (tile x tile) blocks of threads,
    accumulated in `dtype` (the output's)."""
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


def gemm_launch(node, a, a_offsets, a_strides, b, b_offsets, b_strides, out, mnk, err):
    """[launch] of out[t] = A_t @ B_t for every batch t (none when the result is empty).

    a, b: flat device arrays; a_offsets, b_offsets: device int64 arrays, one
    offset per batch; a_strides, b_strides: (row, column) element strides;
    mnk: (m, n, k); `node` names the op in errors and gives the dtype."""
    m, n, k = mnk
    batches = a_offsets.size
    tile = LIMITS.tile
    grid = (-(-n // tile), -(-m // tile), batches)
    if m == 0 or n == 0 or batches == 0:
        return []
    if grid[1] > MAX_GRID_YZ or grid[2] > MAX_GRID_YZ:
        raise CompileError(f"{m} rows in {batches} batches exceed the CUDA grid "
                           f"({MAX_GRID_YZ} blocks of {tile} rows, {MAX_GRID_YZ} batches); "
                           f"node {node.name} of shape {node.shape}", op=node.op.name,
                           loc=node.loc)
    kernel = matmul_kernel(node.dtype, tile)
    args = (a, a_offsets, a_strides[0], a_strides[1], b, b_offsets, b_strides[0], b_strides[1],
            out, m, n, k, err)
    return [(kernel, grid, (tile, tile), args)]


def batch_offsets(batch_shape, out_batch, matrix_size):
    """Element offset of each output batch's operand matrix (NumPy batch broadcasting)."""
    count = int(np.prod(batch_shape, dtype=np.int64))
    ids = np.arange(count, dtype=np.int64).reshape(batch_shape)
    ids = np.broadcast_to(ids.reshape((1,) * (len(out_batch) - len(batch_shape)) + batch_shape),
                          out_batch).reshape(-1)
    return ids * matrix_size


def matmul(ctx, node, operands, out, err, index):
    """a @ b with batch dims; a 2-D operand may be a transposed view."""
    a, b = operands
    m, k = a.shape[-2:]
    n = b.shape[-1]
    out_batch = tuple(node.shape[:-2])
    # batch axes (if any) of a contiguous operand; a transposed 2-D one has none
    offsets = [ctx.upload(batch_offsets(x.shape[:-2], out_batch, x.shape[-2] * x.shape[-1]))
               for x in (a, b)]
    return gemm_launch(node, a.flat, offsets[0], a.strides[-2:], b.flat, offsets[1],
                       b.strides[-2:], out, (m, n, k), err)
