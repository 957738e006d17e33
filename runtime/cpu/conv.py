"""conv2d and its two gradients as Numba kernels (NCHW / OIHW, PyTorch's conventions).

Two variants of each, with the same arguments up to the scratch array (a
third, Winograd, is in runtime/cpu/winograd.py; runtime/cpu/conv_variants.py
picks one per shape):

- GEMM: im2col + sgemm (runtime/cpu/blas.py) per image and group; the input gradient
  multiplies w^T by dy into the column matrix and scatters it back (col2im).
  `work` is a (chunks, elements) scratch array of the operands' dtype (size
  it with conv_variants.py's `conv_workspace_shape`); images are dealt
  round-robin to its `chunks` rows, one `prange` iteration each, so chunks = 1
  is serial (BLAS may then use its own threads) and chunks = numba threads
  runs one single-threaded BLAS call per thread. The kernels allocate nothing.
- direct: a plain loop nest (`prange` over images, or over output channels
  for the weight gradient); no scratch argument, no BLAS. It wins when the
  GEMM is a matrix-vector product (one output channel per group: depthwise
  convs). The forward at stride 1 without padding allocates one padded-width
  output plane per call of its parts (a few KB; see _conv2d_direct_flat).

Every kernel overwrites all of `out`.
"""
import numpy as np
from numba import njit, prange

from graphc.runtime.cpu.blas import gemm

# Parallelize only the explicit prange loops. For compile time, too, the kernels
# use small loop helpers (_fill, _add, _copy) instead of array expressions and
# slice assignments: conv2d_grad_weight compiled in 13 s with those, 2-3 s without.
PRANGE_ONLY = {"prange": True, "comprehension": False, "reduction": False, "inplace_binop": False,
               "setitem": False, "numpy": False, "stencil": False, "fusion": False}


@njit(cache=True)
def _valid(offset, stride, size, count):
    """[lo, hi): the outputs t < count whose input index t * stride + offset lies in [0, size)."""
    if stride == 1:                     # no integer division (tens of cycles) in the common case
        lo = max(0, -offset)
        return lo, max(lo, min(count, size - offset))
    lo = 0 if offset >= 0 else (stride - 1 - offset) // stride
    hi = min(count, (size - 1 - offset) // stride + 1) if offset < size else 0
    return lo, max(lo, hi)


@njit(cache=True)
def _fill(a, value):
    """a[...] = value for a C-contiguous array of any rank."""
    flat = a.reshape(a.size)
    for t in range(flat.size):
        flat[t] = value


@njit(cache=True)
def _has_nan(plane):
    """Whether the 2-D `plane` holds a NaN (counted, so that the loop vectorizes)."""
    count = 0
    for i in range(plane.shape[0]):
        for j in range(plane.shape[1]):
            count += plane[i, j] != plane[i, j]
    return count != 0


@njit(cache=True)
def _add(dst, src):
    for t in range(dst.size):
        dst[t] += src[t]


@njit(cache=True)
def _axpy(dst, a, src):
    for t in range(dst.size):
        dst[t] += a * src[t]


@njit(cache=True)
def _copy(dst, src):
    """dst[:] = src for 1-D arrays of one length. The library's kernels copy with
    this, never a slice assignment, which compiles Numba's shape-mismatch message
    (str, repr, hashing, unicode: 2 s of a fresh runtime's first step)."""
    for t in range(dst.size):
        dst[t] = src[t]


@njit(cache=True)
def _row(v, lo, hi, stride, offset):
    """The elements lo * stride + offset, ..., (hi - 1) * stride + offset of a 1-D array v.

    0-based loops over such views vectorize; indexing v[t * stride + offset]
    does not (Numba's negative-index wraparound check stays in the loop)."""
    return v[lo * stride + offset:(hi - 1) * stride + offset + 1:stride]


@njit(cache=True)
def _im2col(x, b, c0, cg, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo, col):
    """col[(c, i, j), (y, xo)] = padded x[b, c0 + c, y sh + i dh - ph, xo sw + j dw - pw]."""
    h, wd = x.shape[2], x.shape[3]
    for c in range(cg):
        xc = x[b, c0 + c]
        for i in range(kh):
            y0, y1 = _valid(i * dh - ph, sh, h, ho)
            for j in range(kw):
                row = col[(c * kh + i) * kw + j]
                off = j * dw - pw
                x0, x1 = _valid(off, sw, wd, wo)
                if y0 > 0:                  # (the fills only where padding is read:
                    _fill(row[:y0 * wo], 0)  # a call per output row cost as much as the copy)
                if y1 < ho:
                    _fill(row[y1 * wo:], 0)
                for y in range(y0, y1):
                    src = xc[y * sh + i * dh - ph]
                    dst = row[y * wo:(y + 1) * wo]
                    if x0 > 0:
                        _fill(dst[:x0], 0)
                    if sw == 1:
                        _copy(dst[x0:x1], src[x0 + off:x1 + off])
                    elif x1 > x0:
                        _copy(dst[x0:x1], _row(src, x0, x1, sw, off))
                    if x1 < wo:
                        _fill(dst[x1:], 0)


@njit(cache=True)
def _col2im(col, dx, b, c0, cg, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo):
    """The adjoint of _im2col: dx[b, c0 + c, ...] += col (padding positions dropped)."""
    h, wd = dx.shape[2], dx.shape[3]
    for c in range(cg):
        dxc = dx[b, c0 + c]
        for i in range(kh):
            y0, y1 = _valid(i * dh - ph, sh, h, ho)
            for j in range(kw):
                row = col[(c * kh + i) * kw + j]
                off = j * dw - pw
                x0, x1 = _valid(off, sw, wd, wo)
                for y in range(y0, y1):
                    dst = dxc[y * sh + i * dh - ph]
                    src = row[y * wo + x0:y * wo + x1]
                    if sw == 1:
                        _add(dst[x0 + off:x1 + off], src)
                    elif x1 > x0:
                        _add(_row(dst, x0, x1, sw, off), src)


# -- im2col + GEMM -------------------------------------------------------------------

# Each kernel is a `_parts` function, serial over parts [start, stop) of its work
# (part p: images p, p + P, ... with P = work.shape[0], in work row p), which the
# step program launches over the threads (runtime/cpu/chunks.py); the weight
# gradient's `_finish` then adds the parts' sums. The kernels themselves run the
# parts in a `prange`, for Python callers (a parfor compiles 3x as long).

@njit(cache=True)
def conv2d_parts(chunk, start, stop, x, w, out, sh, sw, ph, pw, dh, dw, groups, work):
    n, parts = x.shape[0], work.shape[0]
    out_ch, cg, kh, kw = w.shape
    ho, wo = out.shape[2], out.shape[3]
    og, k, hw = out_ch // groups, cg * kh * kw, ho * wo
    w3 = w.reshape((groups, og, k))
    y4 = out.reshape((n, groups, og, hw))
    for p in range(start, stop):
        col = work[p, :k * hw].reshape((k, hw))
        for b in range(p, n, parts):
            for g in range(groups):
                _im2col(x, b, g * cg, cg, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo, col)
                gemm(w3[g], col, y4[b, g], 0.0)


@njit(parallel=PRANGE_ONLY, cache=True)
def conv2d(x, w, out, sh, sw, ph, pw, dh, dw, groups, work):
    for p in prange(work.shape[0]):
        conv2d_parts(p, p, p + 1, x, w, out, sh, sw, ph, pw, dh, dw, groups, work)


@njit(cache=True)
def conv2d_grad_input_parts(chunk, start, stop, dy, w, out, sh, sw, ph, pw, dh, dw, groups,
                            work):
    n, out_ch, ho, wo = dy.shape
    _, cg, kh, kw = w.shape
    og, k, hw = out_ch // groups, cg * kh * kw, ho * wo
    w3 = w.reshape((groups, og, k))
    dy4 = dy.reshape((n, groups, og, hw))
    parts = work.shape[0]
    for p in range(start, stop):
        col = work[p, :k * hw].reshape((k, hw))
        for b in range(p, n, parts):
            _fill(out[b], 0)
            for g in range(groups):
                gemm(w3[g].T, dy4[b, g], col, 0.0)
                _col2im(col, out, b, g * cg, cg, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo)


@njit(parallel=PRANGE_ONLY, cache=True)
def conv2d_grad_input(dy, w, out, sh, sw, ph, pw, dh, dw, groups, work):
    for p in prange(work.shape[0]):
        conv2d_grad_input_parts(p, p, p + 1, dy, w, out, sh, sw, ph, pw, dh, dw, groups, work)


@njit(cache=True)
def conv2d_grad_weight_parts(chunk, start, stop, x, dy, out, sh, sw, ph, pw, dh, dw, groups,
                             work):
    """Part p sums its images' weight gradient in its row of `work`, after the columns."""
    n, out_ch, ho, wo = dy.shape
    _, cg, kh, kw = out.shape
    og, k, hw = out_ch // groups, cg * kh * kw, ho * wo
    dy4 = dy.reshape((n, groups, og, hw))
    parts, at = work.shape[0], k * hw
    for p in range(start, stop):
        col = work[p, :k * hw].reshape((k, hw))
        part = work[p, at:at + out_ch * k]
        _fill(part, 0)
        for b in range(p, n, parts):
            for g in range(groups):
                _im2col(x, b, g * cg, cg, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo, col)
                # this image's dW of group g, accumulated in place (beta = 1)
                gemm(dy4[b, g], col.T, part[g * og * k:(g + 1) * og * k].reshape((og, k)), 1.0)


@njit(cache=True)
def conv2d_grad_weight_finish(x, dy, out, sh, sw, ph, pw, dh, dw, groups, work):
    """out = the sum of the parts' weight gradients."""
    out_ch, cg, kh, kw = out.shape
    k = cg * kh * kw
    at = k * dy.shape[2] * dy.shape[3]
    flat = out.reshape(out_ch * k)
    _fill(flat, 0)
    for p in range(work.shape[0]):
        _add(flat, work[p, at:at + out_ch * k])


@njit(parallel=PRANGE_ONLY, cache=True)
def conv2d_grad_weight(x, dy, out, sh, sw, ph, pw, dh, dw, groups, work):
    for p in prange(work.shape[0]):
        conv2d_grad_weight_parts(p, p, p + 1, x, dy, out, sh, sw, ph, pw, dh, dw, groups, work)
    conv2d_grad_weight_finish(x, dy, out, sh, sw, ph, pw, dh, dw, groups, work)


# -- direct loop nests ---------------------------------------------------------------

@njit(cache=True, fastmath={"reassoc", "contract", "nsz"})
def _dot(acc, a, b):
    """acc + sum(a * b), in acc's type, vectorized (summation order not kept)."""
    for t in range(a.size):
        acc += a[t] * b[t]
    return acc


# Each direct kernel has a `_parts` form too, over images [start, stop) (the
# weight gradient's: over output channels), launched by the step program.

@njit(cache=True)
def _conv2d_direct_flat(start, stop, x, w, out, dh, dw, groups):
    """conv2d_direct at stride 1 without padding, images [start, stop): each kernel
    offset adds one long contiguous run (the flattened input plane, shifted) into a
    row-padded output plane `ext` of the input's width, which is then cropped; 5x
    faster than row-by-row for 26-wide rows. Allocates `ext` (one output plane)."""
    _, _, h, wd = x.shape
    out_ch, cg, kh, kw = w.shape
    ho, wo = out.shape[2], out.shape[3]
    og, m = out_ch // groups, (ho - 1) * wd + wo
    ext = np.empty(m, out.dtype)
    for b in range(start, stop):
        for o in range(out_ch):
            _fill(ext, 0)
            for c in range(cg):
                xf = x[b, (o // og) * cg + c].reshape(h * wd)
                for i in range(kh):
                    for j in range(kw):
                        d = i * dh * wd + j * dw
                        _axpy(ext, w[o, c, i, j], xf[d:d + m])
            plane = out[b, o]
            for y in range(ho):
                _copy(plane[y], ext[y * wd:y * wd + wo])


@njit(cache=True)
def conv2d_direct_parts(chunk, start, stop, x, w, out, sh, sw, ph, pw, dh, dw, groups):
    _, _, h, wd = x.shape
    out_ch, cg, kh, kw = w.shape
    ho, wo = out.shape[2], out.shape[3]
    og = out_ch // groups
    if sh == 1 and sw == 1 and ph == 0 and pw == 0:
        _conv2d_direct_flat(start, stop, x, w, out, dh, dw, groups)
        return
    for b in range(start, stop):
        for o in range(out_ch):
            plane = out[b, o]
            _fill(plane, 0)
            for c in range(cg):
                xc = x[b, (o // og) * cg + c]
                for i in range(kh):
                    y0, y1 = _valid(i * dh - ph, sh, h, ho)
                    for j in range(kw):
                        off = j * dw - pw
                        x0, x1 = _valid(off, sw, wd, wo)
                        if x1 == x0:
                            continue
                        wv = w[o, c, i, j]
                        for y in range(y0, y1):
                            src, dst = xc[y * sh + i * dh - ph], plane[y, x0:x1]
                            if sw == 1:
                                _axpy(dst, wv, src[x0 + off:x1 + off])
                            else:
                                _axpy(dst, wv, _row(src, x0, x1, sw, off))


@njit(parallel=PRANGE_ONLY, cache=True)
def conv2d_direct(x, w, out, sh, sw, ph, pw, dh, dw, groups):
    for b in prange(x.shape[0]):
        conv2d_direct_parts(b, b, b + 1, x, w, out, sh, sw, ph, pw, dh, dw, groups)


@njit(cache=True)
def conv2d_grad_input_direct_parts(chunk, start, stop, dy, w, out, sh, sw, ph, pw, dh, dw,
                                   groups):
    _, out_ch, ho, wo = dy.shape
    _, cg, kh, kw = w.shape
    h, wd = out.shape[2], out.shape[3]
    og = out_ch // groups
    for b in range(start, stop):
        _fill(out[b], 0)
        for o in range(out_ch):
            plane = dy[b, o]
            for c in range(cg):
                dxc = out[b, (o // og) * cg + c]
                for i in range(kh):
                    y0, y1 = _valid(i * dh - ph, sh, h, ho)
                    for j in range(kw):
                        off = j * dw - pw
                        x0, x1 = _valid(off, sw, wd, wo)
                        if x1 == x0:
                            continue
                        wv = w[o, c, i, j]
                        for y in range(y0, y1):
                            src, dst = plane[y, x0:x1], dxc[y * sh + i * dh - ph]
                            if sw == 1:
                                _axpy(dst[x0 + off:x1 + off], wv, src)
                            else:
                                _axpy(_row(dst, x0, x1, sw, off), wv, src)


@njit(parallel=PRANGE_ONLY, cache=True)
def conv2d_grad_input_direct(dy, w, out, sh, sw, ph, pw, dh, dw, groups):
    for b in prange(dy.shape[0]):
        conv2d_grad_input_direct_parts(b, b, b + 1, dy, w, out, sh, sw, ph, pw, dh, dw, groups)


@njit(cache=True)
def conv2d_grad_weight_direct_parts(chunk, start, stop, x, dy, out, sh, sw, ph, pw, dh, dw,
                                    groups):
    """Output channels [start, stop) of the weight gradient."""
    n, out_ch, ho, wo = dy.shape
    _, cg, kh, kw = out.shape
    h, wd = x.shape[2], x.shape[3]
    og = out_ch // groups
    for o in range(start, stop):
        for c in range(cg):
            ci = (o // og) * cg + c
            for i in range(kh):
                y0, y1 = _valid(i * dh - ph, sh, h, ho)
                for j in range(kw):
                    off = j * dw - pw
                    x0, x1 = _valid(off, sw, wd, wo)
                    out[o, c, i, j] = 0
                    acc = out[o, c, i, j]      # a zero of out's dtype
                    if x1 == x0:
                        continue
                    for b in range(n):
                        for y in range(y0, y1):
                            src, g = x[b, ci, y * sh + i * dh - ph], dy[b, o, y, x0:x1]
                            if sw == 1:
                                acc = _dot(acc, g, src[x0 + off:x1 + off])
                            else:
                                acc = _dot(acc, g, _row(src, x0, x1, sw, off))
                    out[o, c, i, j] = acc


@njit(parallel=PRANGE_ONLY, cache=True)
def conv2d_grad_weight_direct(x, dy, out, sh, sw, ph, pw, dh, dw, groups):
    for o in prange(out.shape[0]):
        conv2d_grad_weight_direct_parts(o, o, o + 1, x, dy, out, sh, sw, ph, pw, dh, dw, groups)
