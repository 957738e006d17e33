"""conv2d and its two gradients at stride 1 as im2col + GEMM, where the column
matrix is built from whole shifted runs of the (padded) input plane.

With the input plane flattened at its padded width Wp, kernel offset (i, j)
reads the run that starts at i dh Wp + j dw: output point (y, x) is column
y Wp + x of every row, so each row of the column matrix is one contiguous copy
of (ho - 1) Wp + wo values, not ho copies of wo. Each image's block of columns
is ho Wp wide; the Wp - wo columns past each output row are not output points:
the forward drops them when it copies out; the gradients zero them and multiply
them by zeros (left as they were, they hold input values or products with the
weights, and an inf or NaN among those made 0 * inf = NaN in gradient entries the
reference keeps finite). Blocks of several images make one GEMM, not one per
image.

LeNet's convs (6 -> 16 channels at 10x10 outputs, 1 -> 6 at 28x28) spent more
time in conv.py's row-by-row im2col than in their GEMMs of 6-16 rows.

`work` is a (chunks, elements) scratch array (conv_variants.py sizes it with
`runs_workspace`): per chunk the column block, the GEMM's block (the forward's
output, or the gradients' zero-gapped dy) and one padded image. Every kernel
overwrites all of `out`.
"""
from numba import njit, prange

from graphc.runtime.cpu.blas import gemm
from graphc.runtime.cpu.conv import PRANGE_ONLY, _add, _copy, _fill

BLOCK_BYTES = 1 << 19        # one GEMM's column and output blocks: half of a Zen 4 L2


@njit(cache=True)
def runs_geometry(x_shape, w_shape, y_shape, ph, pw, n_chunks):
    """(Wp, padded plane size, run length m, columns per image L, images per block)."""
    h, wd = x_shape[2] + 2 * ph, x_shape[3] + 2 * pw
    out_ch, cg, kh, kw = w_shape
    ho, wo = y_shape[2], y_shape[3]
    k, columns = cg * kh * kw, ho * wd
    per_image = 4 * (k + out_ch) * columns          # its columns and its GEMM block
    images = max(1, min(BLOCK_BYTES // per_image, -(-x_shape[0] // n_chunks)))
    return wd, h * wd, (ho - 1) * wd + wo, columns, images


@njit(cache=True)
def _work_elements(x_shape, w_shape, y_shape, ph, pw, chunks):
    out_ch, cg, kh, kw = w_shape
    _, plane, _, columns, images = runs_geometry(x_shape, w_shape, y_shape, ph, pw, chunks)
    return (cg * kh * kw + out_ch) * columns * images + cg * plane + out_ch * cg * kh * kw


def runs_workspace(x_shape, w_shape, y_shape, ph, pw, chunks):
    """(chunks, elements) of the `work` array of the three kernels."""
    return chunks, _work_elements(x_shape, w_shape, y_shape, ph, pw, chunks)


@njit(cache=True)
def _checked_geometry(work, x_shape, w_shape, y_shape, sh, sw, ph, pw):
    """runs_geometry for work's chunks; a ValueError, not wrong values or writes past
    the end, for a strided conv or a work array sized for other shapes."""
    if sh != 1 or sw != 1:
        raise ValueError("the runs conv kernels take stride 1 only")
    if work.shape[1] < _work_elements(x_shape, w_shape, y_shape, ph, pw, work.shape[0]):
        raise ValueError("conv work array too small for these shapes and padding")
    return runs_geometry(x_shape, w_shape, y_shape, ph, pw, work.shape[0])


@njit(cache=True)
def _split(work, p, k, og, columns, images, cg, plane):
    """chunk p's column block (k, images L), GEMM block (og, images L), padded planes,
    and the rest (the weight gradient's partial sums)."""
    row = work[p]
    cols = row[:k * columns * images].reshape((k, columns * images))
    start = k * columns * images
    block = row[start:start + og * columns * images].reshape((og, columns * images))
    start += og * columns * images
    return (cols, block, row[start:start + cg * plane].reshape((cg, plane)),
            row[start + cg * plane:])


@njit(cache=True)
def _planes(x, b, c0, cg, ph, pw, padded):
    """The input planes of image b, channels c0.., flattened at the padded width."""
    h, wd = x.shape[2], x.shape[3]
    if ph == 0 and pw == 0:
        return x[b, c0:c0 + cg].reshape((cg, h * wd))
    width = wd + 2 * pw
    _fill(padded, 0)
    for c in range(cg):
        for y in range(h):
            start = (y + ph) * width + pw
            _copy(padded[c, start:start + wd], x[b, c0 + c, y])
    return padded


@njit(cache=True)
def _columns(planes, cols, s, kh, kw, dh, dw, width, m, columns):
    """Image slot s of the column block: row (c, i, j) is the run at i dh Wp + j dw,
    then zeros in the last output row's Wp - wo columns past the run (stale scratch
    there, times dy's zeros, could be NaN)."""
    cg = planes.shape[0]
    for c in range(cg):
        for i in range(kh):
            for j in range(kw):
                d, row = i * dh * width + j * dw, cols[(c * kh + i) * kw + j]
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
def _runs_back(cols, s, planes, kh, kw, dh, dw, width, m, columns):
    """The adjoint of _columns: each run of image slot s added back into the zeroed
    padded planes."""
    _fill(planes, 0)
    for c in range(planes.shape[0]):
        for i in range(kh):
            for j in range(kw):
                d = i * dh * width + j * dw
                _add(planes[c, d:d + m], cols[(c * kh + i) * kw + j, s * columns:s * columns + m])


@njit(cache=True)
def _output_points(block, s, out, b, o0, width, columns):
    """Image slot s of the forward's GEMM block into out[b, o0:], row by output row
    (the Wp - wo columns past each row are not output points)."""
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


@njit(parallel=PRANGE_ONLY, cache=True)
def conv2d_runs(x, w, out, sh, sw, ph, pw, dh, dw, groups, work):
    n, chunks = x.shape[0], work.shape[0]
    out_ch, cg, kh, kw = w.shape
    og, k = out_ch // groups, cg * kh * kw
    width, plane, m, columns, images = _checked_geometry(
        work, x.shape, w.shape, out.shape, sh, sw, ph, pw)
    w3 = w.reshape((groups, og, k))
    blocks = -(-n // images)
    for p in prange(chunks):
        cols, block, padded, _ = _split(work, p, k, og, columns, images, cg, plane)
        for blk in range(p, blocks, chunks):
            first, count = blk * images, min(images, n - blk * images)
            for g in range(groups):
                for s in range(count):
                    planes = _planes(x, first + s, g * cg, cg, ph, pw, padded)
                    _columns(planes, cols, s, kh, kw, dh, dw, width, m, columns)
                gemm(w3[g], cols[:, :count * columns], block[:, :count * columns], 0.0)
                for s in range(count):
                    _output_points(block, s, out, first + s, g * og, width, columns)


@njit(parallel=PRANGE_ONLY, cache=True)
def conv2d_grad_weight_runs(x, dy, out, sh, sw, ph, pw, dh, dw, groups, work):
    n, out_ch, ho, wo = dy.shape
    chunks = work.shape[0]
    _, cg, kh, kw = out.shape
    og, k = out_ch // groups, cg * kh * kw
    width, plane, m, columns, images = _checked_geometry(
        work, x.shape, out.shape, dy.shape, sh, sw, ph, pw)
    blocks = -(-n // images)
    size = out_ch * k
    for p in prange(chunks):
        cols, block, padded, rest = _split(work, p, k, og, columns, images, cg, plane)
        partial = rest[:size].reshape((groups, og, k))
        _fill(partial, 0)
        for blk in range(p, blocks, chunks):
            first, count = blk * images, min(images, n - blk * images)
            for g in range(groups):
                for s in range(count):
                    planes = _planes(x, first + s, g * cg, cg, ph, pw, padded)
                    _columns(planes, cols, s, kh, kw, dh, dw, width, m, columns)
                    if not _finite(planes):
                        _zero_gaps(cols, s, width, wo, columns)
                    _gapped(dy, first + s, g * og, og, block, s, width, columns)
                gemm(block[:, :count * columns], cols[:, :count * columns].T, partial[g], 1.0)
    flat = out.reshape(size)
    _fill(flat, 0)
    for p in range(chunks):
        _add(flat, _split(work, p, k, og, columns, images, cg, plane)[3][:size])


@njit(parallel=PRANGE_ONLY, cache=True)
def conv2d_grad_input_runs(dy, w, out, sh, sw, ph, pw, dh, dw, groups, work):
    n, out_ch, ho, wo = dy.shape
    chunks = work.shape[0]
    _, cg, kh, kw = w.shape
    og, k, h, wd = out_ch // groups, cg * kh * kw, out.shape[2], out.shape[3]
    width, plane, m, columns, images = _checked_geometry(
        work, out.shape, w.shape, dy.shape, sh, sw, ph, pw)
    w3 = w.reshape((groups, og, k))
    blocks, finite = -(-n // images), _finite(w)
    for p in prange(chunks):
        cols, block, padded, _ = _split(work, p, k, og, columns, images, cg, plane)
        for blk in range(p, blocks, chunks):
            first, count = blk * images, min(images, n - blk * images)
            for g in range(groups):
                for s in range(count):
                    _gapped(dy, first + s, g * og, og, block, s, width, columns)
                gemm(w3[g].T, block[:, :count * columns], cols[:, :count * columns], 0.0)
                for s in range(count):
                    if not finite:
                        _zero_gaps(cols, s, width, wo, columns)
                    _runs_back(cols, s, padded, kh, kw, dh, dw, width, m, columns)
                    for c in range(cg):
                        dx = out[first + s, g * cg + c]
                        for y in range(h):
                            start = (y + ph) * width + pw
                            _copy(dx[y], padded[c, start:start + wd])
