"""The CUDA backend's GEMM: register-blocked, its operands staged through shared
memory, batched over grid z, and split over k when the output has too few
blocks to fill the GPU.

A block of (tile x tile) threads computes a (BLOCK x BLOCK) piece of the
output, BLOCK = REGISTERS * tile: each thread REGISTERS x REGISTERS outputs
(rows ty + tile i, columns tx + tile j), summed in registers. Per step of
`tile` along k, the block stages an A panel (BLOCK rows x tile) and a B panel
(tile x BLOCK) in shared memory, each thread loading REGISTERS elements of
each, adjacent threads reading adjacent addresses of whichever operand axis is
contiguous; then each thread does tile x REGISTERS^2 multiply-adds from
2 REGISTERS shared loads per k. (On a GPU: tile 16, 256 threads, 64 x 64
outputs per block.)

Operands are read through element strides (a transposed operand is its base
with swapped strides, never a copy) and a table of each batch's operand
offsets (NumPy's batch broadcasting for matmul; im2col buffers for conv,
runtime/cuda/conv.py). Batch t's result is written C-contiguous at
out[t * m * n:(t + 1) * m * n].

Split k: a matmul whose grid has fewer than LIMITS.gemm_blocks blocks (W1's
128 x 512 layer: 16; W2's 9216-deep one: 2) gives each of `splits` blocks a
range of k; each writes its partial product to a scratch array of the plan
(split-major), and `sum_parts` adds them in split order: the same result on
every run, no atomics.
"""
import functools

import numpy as np
from numba import cuda, from_dtype

from graphc.errors import CompileError
from graphc.runtime.cuda.device import LIMITS, grid_for

MAX_GRID_YZ = 65535         # CUDA's limit on gridDim.y and gridDim.z
REGISTERS = 4               # each thread's outputs along rows, and along columns
MIN_SPLIT_STEPS = 4         # k steps (of `tile`) each split of k does at least


@functools.lru_cache(maxsize=None)
def matmul_kernel(dtype, tile):
    """out[z] = a[t] @ b[t] over k in [split * k_split, (split + 1) * k_split), for
    z = split * batches + t, accumulated in `dtype` (the output's)."""
    element = from_dtype(np.dtype(dtype))
    zero = np.dtype(dtype).type(0)
    block = REGISTERS * tile
    width = block + 1           # a panel's row; the padding column keeps the stores of a
    regs = REGISTERS            # row-major A panel (threads along k) off one shared bank
    threads = tile * tile

    @cuda.jit
    def matmul(a, a_offsets, a_row, a_col, b, b_offsets, b_row, b_col, out, m, n, k,
               k_split, err):
        if err[0] != 0:
            return
        a_panel = cuda.shared.array((tile, width), element)     # [k, row]
        b_panel = cuda.shared.array((tile, width), element)     # [k, column]
        acc = cuda.local.array((regs, regs), element)
        a_regs = cuda.local.array(regs, element)
        b_regs = cuda.local.array(regs, element)
        tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
        thread = ty * tile + tx
        row0, col0 = cuda.blockIdx.y * block, cuda.blockIdx.x * block
        batches = a_offsets.shape[0]
        batch, split = cuda.blockIdx.z % batches, cuda.blockIdx.z // batches
        a_start, b_start = a_offsets[batch], b_offsets[batch]
        k_begin = split * k_split
        k_end = k_begin + k_split       # (not min(): numba's bundled numba.cuda, which CI
        if k_end > k:                   # has, fails to type it here)
            k_end = k
        for i in range(regs):
            for j in range(regs):
                acc[i, j] = zero
        for k0 in range(k_begin, k_end, tile):
            for r in range(regs):
                e = thread + r * threads
                if a_col == 1:                  # k contiguous: threads along k
                    kk, rr = e % tile, e // tile
                else:                           # rows contiguous: threads along rows
                    kk, rr = e // block, e % block
                if row0 + rr < m and k0 + kk < k_end:
                    a_panel[kk, rr] = a[a_start + (row0 + rr) * a_row + (k0 + kk) * a_col]
                else:
                    a_panel[kk, rr] = zero
                if b_col == 1:                  # columns contiguous: threads along them
                    kk, cc = e // block, e % block
                else:
                    kk, cc = e % tile, e // tile
                if col0 + cc < n and k0 + kk < k_end:
                    b_panel[kk, cc] = b[b_start + (k0 + kk) * b_row + (col0 + cc) * b_col]
                else:
                    b_panel[kk, cc] = zero
            cuda.syncthreads()
            for kk in range(tile):
                for i in range(regs):
                    a_regs[i] = a_panel[kk, ty + tile * i]
                for j in range(regs):
                    b_regs[j] = b_panel[kk, tx + tile * j]
                for i in range(regs):
                    for j in range(regs):
                        acc[i, j] += a_regs[i] * b_regs[j]
            cuda.syncthreads()
        for i in range(regs):
            row = row0 + ty + tile * i
            if row < m:
                for j in range(regs):
                    col = col0 + tx + tile * j
                    if col < n:
                        out[(cuda.blockIdx.z * m + row) * n + col] = acc[i, j]

    return matmul


@cuda.jit
def sum_parts(parts, out, count, zero, err):
    """out[q] = sum over p of parts[p * count + q], in order of p."""
    if err[0] != 0:
        return
    q = cuda.grid(1)
    while q < count:
        acc = zero
        for p in range(parts.shape[0] // count):
            acc += parts[p * count + q]
        out[q] = acc
        q += cuda.gridsize(1)


def sum_launch(parts, out, count, dtype, err):
    """The launch of out[:count] = the sum of the `count`-element parts of `parts`."""
    threads = LIMITS.threads
    zero = np.dtype(dtype).type(0)
    return (sum_parts, grid_for(count, threads), threads, (parts, out, count, zero, err))


def k_splits(blocks, batches, k, tile):
    """(splits, k_split): how many blocks share each output block's k, and the k each
    sums (a multiple of `tile`). Enough blocks for LIMITS.gemm_blocks (`blocks` is
    one batch's), each doing at least MIN_SPLIT_STEPS steps; at most 65535 in grid z."""
    steps = max(1, -(-k // tile))
    wanted = -(-LIMITS.gemm_blocks // (blocks * batches))
    splits = max(1, min(wanted, steps // MIN_SPLIT_STEPS, MAX_GRID_YZ // batches))
    per_split = -(-steps // splits)
    return -(-steps // per_split), per_split * tile


def gemm_launch(ctx, node, a, a_offsets, a_strides, b, b_offsets, b_strides, out, mnk, err):
    """[launches] of out[t] = A_t @ B_t for every batch t (none when the result is empty).

    a, b: flat device arrays; a_offsets, b_offsets: device int64 arrays, one
    offset per batch; a_strides, b_strides: (row, column) element strides;
    mnk: (m, n, k); `node` names the op in errors and gives the dtype; `ctx`
    (library.LibraryCall) allocates the partial products of a split k."""
    m, n, k = mnk
    batches = a_offsets.size
    tile = LIMITS.tile
    block = REGISTERS * tile
    if m == 0 or n == 0 or batches == 0:
        return []
    grid = (-(-n // block), -(-m // block))
    if grid[1] > MAX_GRID_YZ or batches > MAX_GRID_YZ:
        raise CompileError(f"{m} rows in {batches} batches exceed the CUDA grid "
                           f"({MAX_GRID_YZ} blocks of {block} rows, {MAX_GRID_YZ} batches); "
                           f"node {node.name} of shape {node.shape}", op=node.op.name,
                           loc=node.loc)
    splits, k_split = k_splits(grid[0] * grid[1], batches, k, tile)
    kernel = matmul_kernel(node.dtype, tile)
    target = out if splits == 1 else ctx.allocate(splits * batches * m * n, node.dtype)
    args = (a, a_offsets, a_strides[0], a_strides[1], b, b_offsets, b_strides[0], b_strides[1],
            target, m, n, k, k_split, err)
    launches = [(kernel, grid + (batches * splits,), (tile, tile), args)]
    if splits > 1:
        launches.append(sum_launch(target, out, batches * m * n, node.dtype, err))
    return launches


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
    return gemm_launch(ctx, node, a.flat, offsets[0], a.strides[-2:], b.flat, offsets[1],
                       b.strides[-2:], out, (m, n, k), err)
