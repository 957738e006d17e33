"""Library kernels for the CPU backend's opaque ops: Numba functions writing into `out`.

Every kernel takes its operands, then a preallocated C-contiguous `out` (a view
of the runtime's arena), then the op's attributes as plain ints; it overwrites
all of `out`. None allocates its output; the three that allocate a little
scratch say so (conv2d_direct at stride 1 without padding: one plane per
image; avg_pool2d_grad: one row per call; a deep matmul: one (m, n) product
per extra thread). The step program calls each kernel's compiled code through
a thunk (runtime/cpu/step_program.py), its attributes as int64 words, so a
kernel compiles once per dtype and layout; a pooling kernel's `_images` form
and the `_parts` forms of the convs, the split matmuls and the random draws take
(chunk, start, stop) first and are launched over the threads (with a `_setup` or
`_finish` call where one is needed: conv_variants.py's `conv_steps`, a deep
matmul's slices added up). Conv kernels
live in runtime/cpu/conv.py and winograd.py, pooling in runtime/cpu/pool.py,
random draws in runtime/cpu/random.py; all are re-exported here.

Threads. Float32 GEMMs call runtime/cpu/blas.py's sgemm (MKL when installed,
else SciPy's OpenBLAS: not NumPy's, which is another copy with its own
threads); `prange` uses Numba's OpenMP pool. Both
must not be active in one step: OpenBLAS workers spin after each call and
take the core that `prange` needs (W2's conv2 forward, 2 cores: 16 ms with
one pool, 34 ms with both; W2's linear layer: 1.1 ms against 8 ms). Pick one:

- Numba mode (the one to ship): `set_blas_threads(1)` once, before the first
  step, and `prange` does all parallel work. `matmul` splits its rows over
  Numba's threads (one single-threaded BLAS call each) and the GEMM conv
  kernels get a `work` array with one row per Numba thread. Measured on W2:
  convs 1.4-2x faster than BLAS mode, pools 2x, linear layers equal except
  a transposed left operand (a.T @ g: 1.7 ms against 0.9, one BLAS call).
- BLAS mode: `numba.set_num_threads(1)` and BLAS threads at the core count,
  conv `work` with one row; everything outside the GEMMs runs on one core.

Switching modes inside a process is not enough: workers already spinning keep
spinning, so benchmark each set-up in a fresh process. On a shared machine any
2-thread `prange` region costs about 8 ms while another process keeps one of
the 2 cores busy (the worker waits for a time slice): measure on a quiet one.
`set_blas_threads` returns False when SciPy's BLAS is not a bundled OpenBLAS
(then set OPENBLAS_NUM_THREADS=1 before import).
"""
import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from graphc.runtime.cpu.blas import blas_threads, gemm, set_blas_threads  # noqa: F401
from graphc.runtime.cpu.approx import SAFE_FASTMATH
from graphc.runtime.cpu.views import any_layout, as_contiguous
from graphc.runtime.cpu.conv import PRANGE_ONLY, _add, _copy, _fill
from graphc.runtime.cpu.conv import (conv2d, conv2d_direct, conv2d_grad_input,  # noqa: F401
                                     conv2d_grad_input_direct, conv2d_grad_weight,
                                     conv2d_grad_weight_direct, conv2d_parts,
                                     conv2d_direct_parts, conv2d_grad_input_direct_parts,
                                     conv2d_grad_weight_direct_parts,
                                     conv2d_grad_input_parts, conv2d_grad_weight_parts,
                                     conv2d_grad_weight_finish)
from graphc.runtime.cpu.conv_runs import (conv2d_grad_input_runs,  # noqa: F401
                                          conv2d_grad_weight_runs, conv2d_runs,
                                          conv2d_runs_parts, conv2d_grad_input_runs_parts,
                                          conv2d_grad_weight_runs_parts,
                                          conv2d_grad_weight_runs_finish)
from graphc.runtime.cpu.conv_variants import (conv_kernel_name, conv_steps,  # noqa: F401
                                              conv_variant, conv_workspace_shape)
from graphc.runtime.cpu.winograd import (conv2d_grad_input_winograd,  # noqa: F401
                                         conv2d_grad_weight_winograd, conv2d_winograd,
                                         conv2d_winograd_setup, conv2d_winograd_parts,
                                         conv2d_grad_input_winograd_setup,
                                         conv2d_grad_input_winograd_parts,
                                         conv2d_grad_weight_winograd_parts,
                                         conv2d_grad_weight_winograd_finish)
from graphc.runtime.cpu.pool import (avg_pool2d, avg_pool2d_grad, max_pool2d,  # noqa: F401
                                     max_pool2d_grad, avg_pool2d_images,
                                     avg_pool2d_grad_images, max_pool2d_images,
                                     max_pool2d_grad_images)
from graphc.runtime.cpu.random import (block_count, draw_arguments, random_normal,  # noqa: F401
                                       random_normal_parts, random_uniform,
                                       random_uniform_parts)

MIN_ROWS_PER_THREAD = 16     # matmul: fewer rows per block than this run as one BLAS call
# with too few rows to split, a wide product splits its columns instead (W5's batch of
# one: 784x512 went from 30 to 19 us on 2 threads), if it is worth waking a thread for
MIN_COLUMNS_PER_THREAD = 64
MIN_MACS_TO_SPLIT_COLUMNS = 1 << 17
# ... and a product of more than one row splits its columns only from this much work:
# below it the fork/join costs more than the second core gives (an RNN step at batch
# 8, 8 x 128 @ 128 x 128: 5.2 us in one call, 9.5 split; 16 rows: 8.2 and 11.8)
MIN_MACS_TO_SPLIT_FEW_ROWS = 1 << 19
# a product this many times wider than tall splits its columns even when its rows
# would do: each thread then packs a share of the wide operand, not all of it (W2's
# linear layer, 64 x 128 @ 128 x 9216: 1.36 ms by rows, 1.04 by columns)
WIDE = 4
# a product this many times deeper (K) than its larger side splits K instead: each
# thread reads a share of both operands (W3's recurrent weight gradient, 128 x 3200 @
# 3200 x 64: 317 us by rows, 300 by depth, medians of 400 paired calls on 2 threads)
DEEP = 8


# -- matmul --------------------------------------------------------------------------

numba.get_num_threads()      # starts Numba's threading layer, which registers the symbol below


@intrinsic
def _num_threads(typingctx):
    """numba.get_num_threads() for njit code that can be cached (Numba's own version
    calls through a ctypes pointer, which makes a function uncacheable)."""
    def codegen(context, builder, signature, args):
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(cgutils.intp_t, []),
                                            "get_num_threads")
        return builder.call(fn, [])
    return types.intp(), codegen


@njit(cache=True)
def matmul(a, b, out):
    """out = a @ b for 2-D, or 3-D with a leading batch axis (size 1 broadcasts).

    All three must have one dtype (cast before). Float32 goes through
    runtime/cpu/blas.py's sgemm (MKL or OpenBLAS), which reads C- or
    F-ordered operands in place; other dtypes through np.dot. How a 2-D
    product splits over Numba's threads is `matmul_kernel`'s choice, made here
    per call; the step program makes it once, when its plan is built, and calls
    the chosen kernel alone (compiling every way in one function took 12 s of a
    fresh runtime's first W1 step). `out` must be C-contiguous.
    """
    if a.ndim == 2:
        vector = _contiguous(a) and _contiguous(out) and (_contiguous(b.T) or _contiguous(b))
        kind, blocks = _matmul_kind(a.shape[0], a.shape[1], b.shape[1], _num_threads(),
                                    vector)
        if kind == BY_DEPTH:
            matmul_by_depth(a, b, out, blocks)
        elif kind == BY_ROWS:
            matmul_by_rows(a, b, out, blocks)
        elif kind == VECTOR:
            matmul_vector(a, b, out, blocks)
        elif kind == BY_COLUMNS:
            matmul_by_columns(a, b, out, blocks)
        else:
            gemm(a, b, out, 0.0)
    else:
        matmul_batched(a, b, out, _num_threads())


BY_DEPTH, BY_ROWS, BY_COLUMNS, VECTOR, ONE_CALL = range(5)
MATMUL_KERNELS = {BY_DEPTH: "matmul_by_depth", BY_ROWS: "matmul_by_rows",
                  BY_COLUMNS: "matmul_by_columns", VECTOR: "matmul_vector",
                  ONE_CALL: "matmul_one_call"}


def matmul_kind(m, k, n, threads, vector):
    """(kind, blocks): how (m, k) @ (k, n) splits over `threads` threads. With more
    than one thread, `a` is split into row blocks of at least MIN_ROWS_PER_THREAD
    rows, one single-threaded GEMM per thread (a transposed `a` too: its row block
    is a strided view BLAS reads as is); a product with too few rows for that, or
    WIDE times wider than tall, is split into column blocks of `b` instead; one DEEP
    times deeper than its larger side into slices of the shared axis.
    A single row whose operands are contiguous (`vector`) is a vector-matrix product
    (_matvec)."""
    if threads > 1 and k >= DEEP * max(m, n) and m * k * n >= MIN_MACS_TO_SPLIT_COLUMNS:
        return BY_DEPTH, min(threads, k // MIN_ROWS_PER_THREAD)
    blocks = min(threads, m // MIN_ROWS_PER_THREAD)
    if blocks > 1 and n < WIDE * m:
        return BY_ROWS, blocks
    blocks = max(1, min(threads, n // MIN_COLUMNS_PER_THREAD))    # (0 computed nothing)
    if m * k * n < (MIN_MACS_TO_SPLIT_COLUMNS if m == 1 else MIN_MACS_TO_SPLIT_FEW_ROWS):
        blocks = 1
    if m == 1 and vector:
        return VECTOR, blocks
    return (BY_COLUMNS, blocks) if blocks > 1 else (ONE_CALL, 1)


_matmul_kind = njit(cache=True)(matmul_kind)


def matmul_kernel(m, k, n, threads, vector):
    """(name of the kernel in this module, blocks) for matmul_kind's choice."""
    kind, blocks = matmul_kind(m, k, n, threads, vector)
    return MATMUL_KERNELS[kind], blocks


# The kernels that split a product over the threads by rows, columns, depth or
# batch each have a `_parts` form, serial over parts [start, stop) of the split,
# which the step program launches over the threads (runtime/cpu/chunks.py; a
# parfor compiles about three times as long); the kernels run it in a `prange`,
# for Python callers. A vector's split stays a prange: launched, W5's batch-of-one
# forward took 1.06-1.12x as long (paired, 300 rounds).

@njit(cache=True)
def matmul_by_rows_parts(chunk, start, stop, a, b, out, blocks):
    m = a.shape[0]
    for p in range(start, stop):
        lo, hi = p * m // blocks, (p + 1) * m // blocks
        gemm(a[lo:hi], b, out[lo:hi], 0.0)


@njit(parallel=PRANGE_ONLY, cache=True)
def matmul_by_rows(a, b, out, blocks):
    for p in prange(blocks):
        matmul_by_rows_parts(p, p, p + 1, a, b, out, blocks)


@njit(cache=True)
def matmul_by_columns_parts(chunk, start, stop, a, b, out, blocks):
    n = b.shape[1]
    for p in range(start, stop):
        lo, hi = _column_block(p, blocks, n), _column_block(p + 1, blocks, n)
        gemm(a, b[:, lo:hi], out[:, lo:hi], 0.0)


@njit(parallel=PRANGE_ONLY, cache=True)
def matmul_by_columns(a, b, out, blocks):
    for p in prange(blocks):
        matmul_by_columns_parts(p, p, p + 1, a, b, out, blocks)


@njit(cache=True)
def matmul_vector(a, b, out, blocks):
    """One contiguous row `a` times `b` (C or F), into one contiguous row `out`."""
    _matvec(as_contiguous(a)[0], b, as_contiguous(out)[0], blocks)


@njit(cache=True)
def matmul_one_call(a, b, out, blocks):
    gemm(a, b, out, 0.0)


@njit(cache=True)
def matmul_batched_parts(chunk, start, stop, a, b, out):
    """out[t] = a[t] @ b[t] for t in [start, stop) (a batch of 1 broadcasts)."""
    ia, ib = int(a.shape[0] > 1), int(b.shape[0] > 1)
    for t in range(start, stop):
        gemm(a[t * ia], b[t * ib], out[t], 0.0)


@njit(parallel=PRANGE_ONLY, cache=True)
def matmul_batched(a, b, out, threads):
    """out[t] = a[t] @ b[t] for 3-D operands (a batch of 1 broadcasts), the batch
    split over the threads when there is more than one."""
    if threads > 1:
        for t in prange(out.shape[0]):
            matmul_batched_parts(t, t, t + 1, a, b, out)
    else:
        matmul_batched_parts(0, 0, out.shape[0], a, b, out)


@njit(cache=True)
def matmul_by_depth_parts(chunk, start, stop, a, b, out, scratch):
    """Slices [start, stop) of the shared axis, of scratch.shape[0] + 1: slice 0's
    product into `out`, slice p's into scratch[p - 1]."""
    k, blocks = a.shape[1], scratch.shape[0] + 1
    for p in range(start, stop):
        lo, hi = p * k // blocks, (p + 1) * k // blocks
        if p == 0:
            gemm(a[:, lo:hi], b[lo:hi], out, 0.0)
        else:
            gemm(a[:, lo:hi], b[lo:hi], scratch[p - 1], 0.0)


@njit(cache=True)
def matmul_by_depth_finish(a, b, out, scratch):
    """out += every slice's product in `scratch`."""
    for p in range(scratch.shape[0]):
        _add(out.reshape(-1), scratch[p].reshape(-1))


@njit(parallel=PRANGE_ONLY, cache=True)
def matmul_by_depth(a, b, out, blocks):
    """out = a @ b as the sum of `blocks` products over slices of the shared axis, one
    per thread: for a deep product (a weight gradient over a batch of sequences) each
    thread reads 1/blocks of both operands, where a split by rows or columns has each
    read all of one. Slice 0 writes `out`, the others scratch allocated here
    ((blocks - 1) * m * n elements; the step program's is allocated with its plan),
    added after."""
    scratch = np.empty((blocks - 1, out.shape[0], out.shape[1]), out.dtype)
    for p in prange(blocks):
        matmul_by_depth_parts(p, p, p + 1, a, b, out, scratch)
    matmul_by_depth_finish(a, b, out, scratch)


@njit(cache=True)
def nonfinite32(x):
    """Whether flat float32 `x` holds a NaN or an Inf (check_numerics, after each
    kernel): an all-ones exponent, counted on the bits so that the loop vectorizes."""
    bits, count = x.view(np.uint32), 0
    for i in range(bits.size):          # (an index loop: iterating the view is 6x slower)
        count += (bits[i] & np.uint32(0x7F800000)) == np.uint32(0x7F800000)
    return count != 0


@njit(cache=True)
def nonfinite64(x):
    """nonfinite32 for float64."""
    bits, count = x.view(np.uint64), 0
    for i in range(bits.size):
        count += (bits[i] & np.uint64(0x7FF0000000000000)) == np.uint64(0x7FF0000000000000)
    return count != 0


@njit(cache=True)
def _contiguous(x):
    """Whether 2-D `x` (typed "A") is C-contiguous."""
    rows, cols = x.shape
    return (cols <= 1 or x.strides[1] == x.itemsize) and \
        (rows <= 1 or x.strides[0] == cols * x.itemsize)


@njit(parallel=PRANGE_ONLY, cache=True)
def _matvec(x, b, out, blocks):
    """out = x @ b for one row x, b (k, n) C- or F-ordered (checked by the caller), in
    column blocks over `blocks` threads. A vector times a matrix reads each weight
    once: memory-bound, where BLAS's GEMM (W5's batch of one) ran 20-40% slower."""
    n = b.shape[1]
    if _contiguous(b.T):
        w = as_contiguous(b.T)
        if blocks == 1:
            _dot_rows(x, w, out, 0, n)
        else:
            for p in prange(blocks):
                _dot_rows(x, w, out, _column_block(p, blocks, n), _column_block(p + 1, blocks, n))
    else:
        w = as_contiguous(b)
        if blocks == 1:
            _axpy_rows(x, w, out, 0, n)
        else:
            for p in prange(blocks):
                _axpy_rows(x, w, out, _column_block(p, blocks, n),
                           _column_block(p + 1, blocks, n))


@njit(fastmath=SAFE_FASTMATH, cache=True)
def _dot_rows(x, w, out, lo, hi):
    """out[j] = dot(x, w[j]) for j in [lo, hi), w C (n, k): four rows per pass over x."""
    k = x.shape[0]
    j = lo
    while j + 4 <= hi:
        s0 = s1 = s2 = s3 = out.dtype.type(0)
        for i in range(k):
            xi = x[i]
            s0 += xi * w[j, i]
            s1 += xi * w[j + 1, i]
            s2 += xi * w[j + 2, i]
            s3 += xi * w[j + 3, i]
        out[j], out[j + 1], out[j + 2], out[j + 3] = s0, s1, s2, s3
        j += 4
    for jj in range(j, hi):
        s = out.dtype.type(0)
        for i in range(k):
            s += x[i] * w[jj, i]
        out[jj] = s


@njit(fastmath=SAFE_FASTMATH, cache=True)
def _axpy_rows(x, w, out, lo, hi):
    """out[lo:hi] = sum_i x[i] * w[i, lo:hi], w C (k, n): unit-stride rows of w.
    The sums build in a fresh array, which LLVM knows `w` does not overlap: summed in
    `out` itself, the loop ran scalar, 11x slower (W5's x @ w took 183 us, 30 with
    the weight stored transposed)."""
    sums = np.zeros(hi - lo, out.dtype)
    for i in range(x.shape[0]):
        xi = x[i]
        row = w[i, lo:hi]
        for j in range(hi - lo):
            sums[j] += xi * row[j]
    _copy(out[lo:hi], sums)


@njit(cache=True)
def _column_block(p, blocks, n):
    """Where column block p of n columns in `blocks` blocks starts: a multiple of 16
    columns (one 64-byte line of float32) so that no two threads write one line."""
    return n if p == blocks else (p * n // blocks) // 16 * 16


@njit(cache=True)
def matmul_any_layout(a, b, out):
    """matmul for callers from Python: the operands typed with layout "A", so the
    Python driver runs the very function (and rounding) the njit step runs."""
    matmul(any_layout(a), any_layout(b), out)


# -- concatenate ---------------------------------------------------------------------

@njit(cache=True)
def assign(dst, src):
    """dst[...] = src (same shape): a strided slice assignment compiled once, here,
    instead of inside each step (Numba's shape-error message code took 5 s there)."""
    dst[...] = src


@njit(cache=True)
def concat_piece(out, piece, offset):
    """out[:, offset:offset + piece.shape[1], :] = piece, both 3-D C-contiguous:
    a concatenate along axis a, seen as (before a, along a, after a)."""
    for i in range(piece.shape[0]):
        for j in range(piece.shape[1]):
            _copy(out[i, offset + j], piece[i, j])


@njit(cache=True)
def concat_pieces(out, pieces, offsets):
    """concat_piece for each of a tuple of pieces (one call of the step driver, however
    many pieces: an unrolled loop's 50)."""
    for k in range(len(pieces)):
        concat_piece(out, pieces[k], offsets[k])


@njit(parallel=PRANGE_ONLY, cache=True)
def concat_runs(out, source, offsets, sizes, starts):
    """concat_piece for pieces that are C-contiguous runs of one flat `source` (the
    arena): piece k starts at element offsets[k] and has sizes[k] along the axis.
    Typed by three int arrays, not by a tuple of pieces: the step compiles it once,
    where a tuple of 50 pieces (W3's stacked states) took seconds."""
    before, after = out.shape[0], out.shape[2]
    for k in prange(offsets.size):          # the pieces fill disjoint parts of out
        run = before * sizes[k] * after
        piece = source[offsets[k]:offsets[k] + run].reshape((before, sizes[k], after))
        concat_piece(out, piece, starts[k])


def concat_views(shape, axis):
    """(before, after): the sizes that make a C-contiguous `shape` 3-D around `axis`."""
    before = int(np.prod(shape[:axis], dtype=np.int64))
    return before, int(np.prod(shape[axis + 1:], dtype=np.int64))


# -- gather / scatter ----------------------------------------------------------------

@njit(cache=True)
def _split(shape, axis):
    """(before, size, after): the products of shape[:axis], shape[axis], shape[axis+1:]."""
    before, after = 1, 1
    for d in range(len(shape)):
        if d < axis:
            before *= shape[d]
        elif d > axis:
            after *= shape[d]
    return before, shape[axis], after


@njit(cache=True)
def _check_indices(flat, size, wrap_negative):
    """0, or 1 + the position of the first index outside [-size, size) (outside
    [0, size) when not wrap_negative)."""
    lowest = -size if wrap_negative else 0
    for t in range(flat.size):
        if flat[t] < lowest or flat[t] >= size:
            return t + 1
    return 0


@njit(cache=True)
def take(a, indices, out, axis, wrap_negative):
    """out = np.take(a, indices, axis); negative indices wrap (or are out of range when
    not wrap_negative). Returns 0, or 1 + the position (in flattened `indices`) of the
    first out-of-range index, writing nothing."""
    before, size, after = _split(a.shape, axis)
    flat = indices.reshape(indices.size)
    bad = _check_indices(flat, size, wrap_negative)
    if bad:
        return bad
    a3 = a.reshape((before, size, after))
    y3 = out.reshape((before, flat.size, after))
    for p in range(before):
        for t in range(flat.size):
            k = flat[t] + size if flat[t] < 0 else flat[t]
            _copy(y3[p, t], a3[p, k])
    return 0


@njit(cache=True)
def take_grad(dy, indices, out, axis, wrap_negative):
    """The adjoint of take: out = 0, then out[.., indices[t], ..] += dy[.., t, ..]
    (repeated indices accumulate). Returns take's error code."""
    before, size, after = _split(out.shape, axis)
    flat = indices.reshape(indices.size)
    bad = _check_indices(flat, size, wrap_negative)
    if bad:
        return bad
    y3 = out.reshape((before, size, after))
    d3 = dy.reshape((before, flat.size, after))
    _fill(out, 0)
    for p in range(before):
        for t in range(flat.size):
            k = flat[t] + size if flat[t] < 0 else flat[t]
            _add(y3[p, k], d3[p, t])
    return 0


@njit(cache=True)
def one_hot(indices, out):
    """out[..., c] = (indices[...] == c) with c < out.shape[-1]. Returns 0, or 1 + the
    position (in flattened `indices`) of the first label outside [0, classes), writing nothing."""
    classes = out.shape[-1]
    flat = indices.reshape(indices.size)
    for t in range(flat.size):
        if flat[t] < 0 or flat[t] >= classes:
            return t + 1
    y2 = out.reshape((flat.size, classes))
    _fill(out, 0)
    for t in range(flat.size):
        y2[t, flat[t]] = 1
    return 0


# -- softmax -------------------------------------------------------------------------

@njit(cache=True)
def _softmax_row(x, y, log):
    m = np.max(x)                        # NaN-propagating, as NumPy's
    s = 0.0
    if log:
        for t in range(x.size):
            s += np.exp(x[t] - m)
        shift = m + np.log(s)
        for t in range(x.size):
            y[t] = x[t] - shift
    else:
        for t in range(x.size):
            e = np.exp(x[t] - m)
            y[t] = e
            s += e
        r = 1.0 / s
        for t in range(x.size):
            y[t] *= r


@njit(cache=True)
def softmax_rows(x, out):
    """out = softmax(x) along the last axis of a 2-D array (max subtracted). Serial:
    W1-W3's rows are 10 wide, far below where a fork/join pays."""
    for r in range(x.shape[0]):
        _softmax_row(x[r], out[r], False)


@njit(cache=True)
def log_softmax_rows(x, out):
    """out = x - logsumexp(x) along the last axis of a 2-D array (max subtracted), serial."""
    for r in range(x.shape[0]):
        _softmax_row(x[r], out[r], True)
