"""conv2d and its two gradients as im2col + GEMM, where the column matrix is
built from whole shifted runs of the (padded) input plane.

At stride 1, with the input plane flattened at its padded width Wp, kernel
offset (i, j) reads the run that starts at i dh Wp + j dw: output point (y, x)
is column y Wp + x of every row, so each row of the column matrix is one
contiguous copy of (ho - 1) Wp + wo values, not ho copies of wo. At stride
(sh, sw) the padded plane is first dealt into sh sw phase planes, point (Y, X)
into phase (Y mod sh, X mod sw) at (Y div sh, X div sw), each Wq = ceil(Wp / sw)
wide: offset (a, b) = (i dh, j dw) then reads the run of phase (a mod sh,
b mod sw) starting at (a div sh) Wq + b div sw, and output point (y, x) is
column y Wq + x. (Stride 1 is the one-phase case.) Each image's block of
columns is ho Wq wide; the Wq - wo columns past each output row are not output
points: the forward drops them when it copies out; the gradients zero them and
multiply them by zeros (left as they were, they hold input values or products
with the weights, and an inf or NaN among those made 0 * inf = NaN in gradient
entries the reference keeps finite). Blocks of several images make one GEMM,
not one per image.

LeNet's convs (6 -> 16 channels at 10x10 outputs, 1 -> 6 at 28x28) spent more
time in conv.py's row-by-row im2col than in their GEMMs of 6-16 rows, and a
ResNet's stride-2 3x3 convs (16 -> 32 channels at 16x16 outputs) 2-3x more.

`work` is a (chunks, elements) scratch array (conv_variants.py sizes it with
`runs_workspace`): per chunk the column block, the GEMM's block (the forward's
output, or the gradients' zero-gapped dy) and one image's phase planes. Every
kernel overwrites all of `out`.
"""
import numpy as np
from numba import njit, prange

from graphc.runtime.cpu.blas import gemm
from graphc.runtime.cpu.conv import PRANGE_ONLY, _add, _copy, _fill
from graphc.runtime.cpu.numba_cache import load_for_call

BLOCK_BYTES = 1 << 19        # one GEMM's column and output blocks: half of a Zen 4 L2


@njit(cache=True)
def runs_geometry(x_shape, w_shape, y_shape, sh, sw, ph, pw, n_chunks):
    """(phase width Wq, phase plane size, an image channel's planes' size, run length
    m, columns per image L, images per block)."""
    height = -(-(x_shape[2] + 2 * ph) // sh)
    width = -(-(x_shape[3] + 2 * pw) // sw)
    out_ch, cg, kh, kw = w_shape
    ho, wo = y_shape[2], y_shape[3]
    k, columns = cg * kh * kw, ho * width
    per_image = 4 * (k + out_ch) * columns          # its columns and its GEMM block
    images = max(1, min(BLOCK_BYTES // per_image, -(-x_shape[0] // n_chunks)))
    phase = height * width
    return width, phase, sh * sw * phase, (ho - 1) * width + wo, columns, images


@njit(cache=True)
def _work_elements(x_shape, w_shape, y_shape, sh, sw, ph, pw, chunks):
    out_ch, cg, kh, kw = w_shape
    _, _, plane, _, columns, images = runs_geometry(x_shape, w_shape, y_shape, sh, sw, ph, pw,
                                                    chunks)
    return (cg * kh * kw + out_ch) * columns * images + cg * plane + out_ch * cg * kh * kw


def runs_workspace(x_shape, w_shape, y_shape, sh, sw, ph, pw, chunks):
    """(chunks, elements) of the `work` array of the three kernels."""
    arguments = (x_shape, w_shape, y_shape, sh, sw, ph, pw, chunks)
    load_for_call(_work_elements, *arguments)
    return chunks, _work_elements(*arguments)


@njit(cache=True)
def _checked_geometry(work, x_shape, w_shape, y_shape, sh, sw, ph, pw):
    """runs_geometry for work's chunks; a ValueError, not wrong values or writes past
    the end, for a work array sized for other shapes."""
    if work.shape[1] < _work_elements(x_shape, w_shape, y_shape, sh, sw, ph, pw, work.shape[0]):
        raise ValueError("conv work array too small for these shapes, stride and padding")
    return runs_geometry(x_shape, w_shape, y_shape, sh, sw, ph, pw, work.shape[0])


@njit(cache=True)
def _split(work, p, k, og, columns, images, cg, plane):
    """chunk p's column block (k, images L), GEMM block (og, images L), phase planes,
    and the rest (the weight gradient's partial sums)."""
    row = work[p]
    cols = row[:k * columns * images].reshape((k, columns * images))
    start = k * columns * images
    block = row[start:start + og * columns * images].reshape((og, columns * images))
    start += og * columns * images
    return (cols, block, row[start:start + cg * plane].reshape((cg, plane)),
            row[start + cg * plane:])


@njit(cache=True)
def _at(a, b, sh, sw, width, phase):
    """Where padded point (a, b) lies in a channel's phase planes."""
    return ((a % sh) * sw + b % sw) * phase + (a // sh) * width + b // sw


@njit(cache=True)
def _phase_run(q, size, pad, stride):
    """(first, count): the input indices first, first + stride, ... (count of them)
    whose padded index (+ pad) lies in phase q."""
    first = (q - pad) % stride
    return first, max(0, (size - first + stride - 1) // stride)


@njit(cache=True)
def _phase_copy(channels, planes, sh, sw, ph, pw, width, phase, back):
    """Channels (cg, h, w) of an image into their phase planes (cg, plane), or back
    from them (`back`), phase by phase: no division per row or point."""
    h, wd = channels.shape[1], channels.shape[2]
    for r in range(sh):
        y0, rows = _phase_run(r, h, ph, sh)
        for q in range(sw):
            x0, count = _phase_run(q, wd, pw, sw)
            d0 = _at(y0 + ph, x0 + pw, sh, sw, width, phase)
            for c in range(planes.shape[0]):
                channel, plane = channels[c], planes[c]
                for t in range(rows):
                    y, d = y0 + t * sh, d0 + t * width
                    if back:        # unsigned indices: no wraparound check in the loops
                        for u in range(count):
                            channel[y, np.uint64(x0 + u * sw)] = plane[np.uint64(d + u)]
                    else:
                        for u in range(count):
                            plane[np.uint64(d + u)] = channel[y, np.uint64(x0 + u * sw)]


@njit(cache=True)
def _planes(x, b, c0, cg, sh, sw, ph, pw, width, phase, padded):
    """The input planes of image b, channels c0.., as phase planes (at stride 1 and
    without padding: the planes themselves, flattened)."""
    h, wd = x.shape[2], x.shape[3]
    if sh == 1 and sw == 1 and ph == 0 and pw == 0:
        return x[b, c0:c0 + cg].reshape((cg, h * wd))
    _fill(padded, 0)
    if sw == 1:
        for c in range(cg):
            for y in range(h):
                start = _at(y + ph, pw, sh, 1, width, phase)
                _copy(padded[c, start:start + wd], x[b, c0 + c, y])
    else:
        _phase_copy(x[b, c0:c0 + cg], padded, sh, sw, ph, pw, width, phase, False)
    return padded


@njit(cache=True)
def _planes_back(padded, out, b, c0, sh, sw, ph, pw, width, phase):
    """The adjoint of _planes: out[b, c0..] from the phase planes (padding dropped)."""
    cg, h, wd = padded.shape[0], out.shape[2], out.shape[3]
    if sw == 1:
        for c in range(cg):
            for y in range(h):
                start = _at(y + ph, pw, sh, 1, width, phase)
                _copy(out[b, c0 + c, y], padded[c, start:start + wd])
    else:
        _phase_copy(out[b, c0:c0 + cg], padded, sh, sw, ph, pw, width, phase, True)


@njit(cache=True)
def _columns(planes, cols, s, kh, kw, dh, dw, sh, sw, width, phase, m, columns):
    """Image slot s of the column block: row (c, i, j) is the run at offset (i dh, j dw),
    then zeros in the last output row's Wq - wo columns past the run (stale scratch
    there, times dy's zeros, could be NaN)."""
    cg = planes.shape[0]
    for c in range(cg):
        for i in range(kh):
            for j in range(kw):
                d, row = _at(i * dh, j * dw, sh, sw, width, phase), cols[(c * kh + i) * kw + j]
                _copy(row[s * columns:s * columns + m], planes[c, d:d + m])
                _fill(row[s * columns + m:(s + 1) * columns], 0)


@njit(cache=True, fastmath={"reassoc", "contract", "nsz"})     # not nnan: x * 0 stays
def _finite(a):
    """Whether every value of a C-contiguous array is finite (x * 0 is 0 only then)."""
    flat = a.reshape(a.size)
    if flat.size == 0:
        return True
    zero = flat[0] * 0
    for t in range(flat.size):
        zero += flat[t] * 0
    return zero == 0


@njit(cache=True)
def _zero_gaps(cols, s, width, wo, columns):
    """Zeros in image slot s's Wp - wo columns past each output row. The gradients
    multiply those columns by zeros, and 0 * inf or 0 * NaN (of an input or a weight
    that is not finite) would be NaN where the reference has none. The kernels call
    it only for such inputs: it costs about as much as the columns' copies."""
    for r in range(cols.shape[0]):
        row = cols[r]
        for start in range(s * columns + wo, (s + 1) * columns, width):
            for t in range(start, start + width - wo):
                row[t] = 0


@njit(cache=True)
def _runs_back(cols, s, planes, kh, kw, dh, dw, sh, sw, width, phase, m, columns):
    """The adjoint of _columns: each run of image slot s added back into the zeroed
    phase planes."""
    _fill(planes, 0)
    for c in range(planes.shape[0]):
        for i in range(kh):
            for j in range(kw):
                d = _at(i * dh, j * dw, sh, sw, width, phase)
                _add(planes[c, d:d + m], cols[(c * kh + i) * kw + j, s * columns:s * columns + m])


@njit(cache=True)
def _output_points(block, s, out, b, o0, width, columns):
    """Image slot s of the forward's GEMM block into out[b, o0:], row by output row
    (the Wq - wo columns past each row are not output points)."""
    ho, wo = out.shape[2], out.shape[3]
    for o in range(block.shape[0]):
        for y in range(ho):
            start = s * columns + y * width
            _copy(out[b, o0 + o, y], block[o, start:start + wo])


@njit(cache=True)
def _gapped(dy, b, o0, og, block, s, width, columns):
    """Image slot s of the GEMM block: dy's rows at their place in the runs, zeros
    between them."""
    ho, wo = dy.shape[2], dy.shape[3]
    for o in range(og):
        _fill(block[o, s * columns:(s + 1) * columns], 0)
        for y in range(ho):
            start = s * columns + y * width
            _copy(block[o, start:start + wo], dy[b, o0 + o, y])


# Each kernel is a `_parts` function, serial over parts [start, stop) of its work
# (part p: image blocks p, p + P, ... with P = work.shape[0], in work row p), which
# the step program launches over the threads (runtime/cpu/chunks.py); the weight
# gradient's `_finish` then adds the parts' sums. The kernels themselves check the
# work array's size and run the parts in a `prange`, for Python callers.

@njit(cache=True)
def conv2d_runs_parts(chunk, start, stop, x, w, out, sh, sw, ph, pw, dh, dw, groups, work):
    n, parts = x.shape[0], work.shape[0]
    out_ch, cg, kh, kw = w.shape
    og, k = out_ch // groups, cg * kh * kw
    width, phase, plane, m, columns, images = runs_geometry(
        x.shape, w.shape, out.shape, sh, sw, ph, pw, parts)
    w3 = w.reshape((groups, og, k))
    blocks = -(-n // images)
    for p in range(start, stop):
        cols, block, padded, _ = _split(work, p, k, og, columns, images, cg, plane)
        for blk in range(p, blocks, parts):
            first, count = blk * images, min(images, n - blk * images)
            for g in range(groups):
                for s in range(count):
                    planes = _planes(x, first + s, g * cg, cg, sh, sw, ph, pw, width, phase, padded)
                    _columns(planes, cols, s, kh, kw, dh, dw, sh, sw, width, phase, m, columns)
                gemm(w3[g], cols[:, :count * columns], block[:, :count * columns], 0.0)
                for s in range(count):
                    _output_points(block, s, out, first + s, g * og, width, columns)


@njit(parallel=PRANGE_ONLY, cache=True)
def conv2d_runs(x, w, out, sh, sw, ph, pw, dh, dw, groups, work):
    _checked_geometry(work, x.shape, w.shape, out.shape, sh, sw, ph, pw)
    for p in prange(work.shape[0]):
        conv2d_runs_parts(p, p, p + 1, x, w, out, sh, sw, ph, pw, dh, dw, groups, work)


@njit(cache=True)
def conv2d_grad_weight_runs_parts(chunk, start, stop, x, dy, out, sh, sw, ph, pw, dh, dw,
                                  groups, work):
    """Part p sums its images' weight gradient in its row of `work`."""
    n, out_ch, ho, wo = dy.shape
    parts = work.shape[0]
    _, cg, kh, kw = out.shape
    og, k = out_ch // groups, cg * kh * kw
    width, phase, plane, m, columns, images = runs_geometry(
        x.shape, out.shape, dy.shape, sh, sw, ph, pw, parts)
    blocks = -(-n // images)
    for p in range(start, stop):
        cols, block, padded, rest = _split(work, p, k, og, columns, images, cg, plane)
        partial = rest[:out_ch * k].reshape((groups, og, k))
        _fill(partial, 0)
        for blk in range(p, blocks, parts):
            first, count = blk * images, min(images, n - blk * images)
            for g in range(groups):
                for s in range(count):
                    planes = _planes(x, first + s, g * cg, cg, sh, sw, ph, pw, width, phase, padded)
                    _columns(planes, cols, s, kh, kw, dh, dw, sh, sw, width, phase, m, columns)
                    if not _finite(planes):
                        _zero_gaps(cols, s, width, wo, columns)
                    _gapped(dy, first + s, g * og, og, block, s, width, columns)
                gemm(block[:, :count * columns], cols[:, :count * columns].T, partial[g], 1.0)


@njit(cache=True)
def conv2d_grad_weight_runs_finish(x, dy, out, sh, sw, ph, pw, dh, dw, groups, work):
    """out = the sum of the parts' weight gradients."""
    out_ch, cg, kh, kw = out.shape
    og, k = out_ch // groups, cg * kh * kw
    _, _, plane, _, columns, images = runs_geometry(x.shape, out.shape, dy.shape, sh, sw, ph,
                                                    pw, work.shape[0])
    flat = out.reshape(out_ch * k)
    _fill(flat, 0)
    for p in range(work.shape[0]):
        _add(flat, _split(work, p, k, og, columns, images, cg, plane)[3][:out_ch * k])


@njit(parallel=PRANGE_ONLY, cache=True)
def conv2d_grad_weight_runs(x, dy, out, sh, sw, ph, pw, dh, dw, groups, work):
    _checked_geometry(work, x.shape, out.shape, dy.shape, sh, sw, ph, pw)
    for p in prange(work.shape[0]):
        conv2d_grad_weight_runs_parts(p, p, p + 1, x, dy, out, sh, sw, ph, pw, dh, dw, groups,
                                      work)
    conv2d_grad_weight_runs_finish(x, dy, out, sh, sw, ph, pw, dh, dw, groups, work)


@njit(cache=True)
def conv2d_grad_input_runs_parts(chunk, start, stop, dy, w, out, sh, sw, ph, pw, dh, dw,
                                 groups, work):
    n, out_ch, ho, wo = dy.shape
    parts = work.shape[0]
    _, cg, kh, kw = w.shape
    og, k = out_ch // groups, cg * kh * kw
    width, phase, plane, m, columns, images = runs_geometry(
        out.shape, w.shape, dy.shape, sh, sw, ph, pw, parts)
    w3 = w.reshape((groups, og, k))
    blocks, finite = -(-n // images), _finite(w)
    for p in range(start, stop):
        cols, block, padded, _ = _split(work, p, k, og, columns, images, cg, plane)
        for blk in range(p, blocks, parts):
            first, count = blk * images, min(images, n - blk * images)
            for g in range(groups):
                for s in range(count):
                    _gapped(dy, first + s, g * og, og, block, s, width, columns)
                gemm(w3[g].T, block[:, :count * columns], cols[:, :count * columns], 0.0)
                for s in range(count):
                    if not finite:
                        _zero_gaps(cols, s, width, wo, columns)
                    _runs_back(cols, s, padded, kh, kw, dh, dw, sh, sw, width, phase, m, columns)
                    _planes_back(padded, out, first + s, g * cg, sh, sw, ph, pw, width, phase)


@njit(parallel=PRANGE_ONLY, cache=True)
def conv2d_grad_input_runs(dy, w, out, sh, sw, ph, pw, dh, dw, groups, work):
    _checked_geometry(work, out.shape, w.shape, dy.shape, sh, sw, ph, pw)
    for p in prange(work.shape[0]):
        conv2d_grad_input_runs_parts(p, p, p + 1, dy, w, out, sh, sw, ph, pw, dh, dw, groups,
                                     work)
