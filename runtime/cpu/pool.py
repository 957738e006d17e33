"""Max and average pooling (NCHW) and their gradients as Numba kernels.

Each kernel, `<op>_images(chunk, start, stop, ...)`, loops over the images in
[start, stop) and their channels (planes are independent, so overlapping windows
accumulate without races); the step program launches it over the threads
(runtime/cpu/chunks.py), and `<op>(...)` runs it over all the images with one
`prange` for Python callers. Numba compiles a parfor about three times as long
as the same loop serial, and the program's launcher is compiled once: a fresh
runtime's W2 step compiled max_pool2d and its gradient in 6.0 s as parfors.
Except for the max gradient, a plane is done one output row and one kernel
offset (i, j) at a time: the offset's inputs for the whole row are one
(strided) view, so the inner loops are branch-free and vectorize (W2's max
pool forward on one thread: 4 ms, against 12 ms window by window). Windows
are clipped to the input instead of padded: max pooling's padding is -inf,
which never wins, and average pooling's padding adds zero. avg_pool2d_grad
allocates one output row of scratch per call of its images kernel.

Max pooling keeps the references' tie and NaN rules exactly: offsets are
visited in row-major order and replace the running maximum only when
strictly greater or NaN, starting from -inf; so ties go to the first
maximum, a window holding a NaN is NaN (its first NaN takes the gradient),
and a window of -infs routes its gradient to offset (0, 0) when that lies
inside the input and drops it otherwise. The max
gradient scans window by window: tracking the argmax along rows was 2x
slower (the select on two arrays does not vectorize).
"""
import numpy as np
from numba import njit, prange

from graphc.runtime.cpu.conv import PRANGE_ONLY, _add, _fill, _has_nan, _row, _valid


@njit(cache=True)
def _max_into(best, src):
    for t in range(best.size):
        best[t] = src[t] if (src[t] > best[t]) | (src[t] != src[t]) else best[t]


@njit(cache=True)
def _max_row(xp, best, y, kh, kw, sh, sw, ph, pw, dh, dw):
    """best[t] = the maximum of window (y, t) of plane xp (-inf if none)."""
    h, wd = xp.shape
    _fill(best, -np.inf)
    i0, i1 = _valid(y * sh - ph, dh, h, kh)
    for i in range(i0, i1):
        src = xp[y * sh - ph + i * dh]
        for j in range(kw):
            off = j * dw - pw
            x0, x1 = _valid(off, sw, wd, best.size)
            if sw == 1:
                _max_into(best[x0:x1], src[x0 + off:x1 + off])
            elif x1 > x0:
                _max_into(best[x0:x1], _row(src, x0, x1, sw, off))


@njit(cache=True)
def _tiles(kh, kw, sh, sw, ph, pw, dh, dw):
    """Whether the windows tile the input: stride = window, no padding or dilation
    (the 2x2, stride 2 pooling of most CNNs)."""
    return kh == sh and kw == sw and ph == 0 and pw == 0 and dh == 1 and dw == 1


@njit(parallel=PRANGE_ONLY, cache=True)
def max_pool2d(x, out, kh, kw, sh, sw, ph, pw, dh, dw):
    for b in prange(x.shape[0]):
        max_pool2d_images(0, b, b + 1, x, out, kh, kw, sh, sw, ph, pw, dh, dw)


@njit(cache=True)
def max_pool2d_images(chunk, start, stop, x, out, kh, kw, sh, sw, ph, pw, dh, dw):
    c = x.shape[1]
    tiles = _tiles(kh, kw, sh, sw, ph, pw, dh, dw)
    for b in range(start, stop):
        for ch in range(c):
            yp = out[b, ch]
            for y in range(yp.shape[0]):
                if tiles:
                    _max_tile_row(x[b, ch], yp[y], y, kh, kw)
                else:
                    _max_row(x[b, ch], yp[y], y, kh, kw, sh, sw, ph, pw, dh, dw)


@njit(cache=True)
def _max_tile_row(xp, best, y, kh, kw):
    """_max_row for tiling windows, indexing the plane directly (3.5x faster on W2's
    pool than views of strided rows: a 12-wide row made the views' cost the work)."""
    for t in range(best.size):
        best[t] = -np.inf
    for i in range(kh):
        src = xp[y * kh + i]
        for j in range(kw):
            for t in range(best.size):
                v = src[t * kw + j]
                best[t] = v if (v > best[t]) | (v != v) else best[t]


@njit(parallel=PRANGE_ONLY, cache=True)
def max_pool2d_grad(x, dy, out, kh, kw, sh, sw, ph, pw, dh, dw):
    for b in prange(x.shape[0]):
        max_pool2d_grad_images(0, b, b + 1, x, dy, out, kh, kw, sh, sw, ph, pw, dh, dw)


@njit(cache=True)
def max_pool2d_grad_images(chunk, start, stop, x, dy, out, kh, kw, sh, sw, ph, pw, dh, dw):
    _, c, h, wd = x.shape
    ho, wo = dy.shape[2], dy.shape[3]
    tiles = _tiles(kh, kw, sh, sw, ph, pw, dh, dw)
    for b in range(start, stop):
        for ch in range(c):
            xp, dp, g = x[b, ch], dy[b, ch], out[b, ch]
            _fill(g, 0)
            nan_rule = _has_nan(xp)         # rare: the NaN test stays out of most scans
            if tiles:
                _max_tile_grad(xp, dp, g, kh, kw, nan_rule)
                continue
            for y in range(ho):
                by = y * sh - ph
                i0, i1 = _valid(by, dh, h, kh)
                for t in range(wo):
                    bx = t * sw - pw
                    j0, j1 = _valid(bx, dw, wd, kw)
                    best, iy, ix = -np.inf, by, bx     # offset (0, 0) unless something beats -inf
                    for i in range(i0, i1):
                        for j in range(j0, j1):
                            v = xp[by + i * dh, bx + j * dw]
                            if v > best or (nan_rule and v != v and best == best):
                                best, iy, ix = v, by + i * dh, bx + j * dw
                    if 0 <= iy < h and 0 <= ix < wd:
                        g[iy, ix] += dp[y, t]


@njit(cache=True)
def _max_tile_grad(xp, dp, g, kh, kw, nan_rule):
    """max_pool2d_grad's plane for tiling windows: no clipping, so no bounds to find
    per window (W2's pool gradient: 2.8 -> 1.5 ms). `nan_rule`: the plane holds a NaN,
    so a NaN must win (tested per element, the scan was 1.5x slower)."""
    for y in range(dp.shape[0]):
        for t in range(dp.shape[1]):
            best, iy, ix = -np.inf, y * kh, t * kw
            for i in range(kh):
                for j in range(kw):
                    v = xp[y * kh + i, t * kw + j]
                    if v > best or (nan_rule and v != v and best == best):
                        best, iy, ix = v, y * kh + i, t * kw + j
            g[iy, ix] += dp[y, t]


@njit(cache=True)
def _divisor(y, t, h, wd, kh, kw, sh, sw, ph, pw, count_include_pad, divisor_override):
    """What avg_pool2d divides window (y, t) by."""
    if divisor_override:
        return divisor_override
    if count_include_pad:
        return kh * kw
    i0, i1 = _valid(y * sh - ph, 1, h, kh)
    j0, j1 = _valid(t * sw - pw, 1, wd, kw)
    return (i1 - i0) * (j1 - j0)


@njit(parallel=PRANGE_ONLY, cache=True)
def avg_pool2d(x, out, kh, kw, sh, sw, ph, pw, count_include_pad, divisor_override):
    for b in prange(x.shape[0]):
        avg_pool2d_images(0, b, b + 1, x, out, kh, kw, sh, sw, ph, pw, count_include_pad,
                          divisor_override)


@njit(cache=True)
def avg_pool2d_images(chunk, start, stop, x, out, kh, kw, sh, sw, ph, pw, count_include_pad,
                      divisor_override):
    _, c, h, wd = x.shape
    for b in range(start, stop):
        for ch in range(c):
            xp, yp = x[b, ch], out[b, ch]
            for y in range(yp.shape[0]):
                row = yp[y]
                _fill(row, 0)
                i0, i1 = _valid(y * sh - ph, 1, h, kh)
                for i in range(i0, i1):
                    src = xp[y * sh - ph + i]
                    for j in range(kw):
                        x0, x1 = _valid(j - pw, sw, wd, row.size)
                        if sw == 1:
                            _add(row[x0:x1], src[x0 + j - pw:x1 + j - pw])
                        elif x1 > x0:
                            _add(row[x0:x1], _row(src, x0, x1, sw, j - pw))
                for t in range(row.size):
                    row[t] /= _divisor(y, t, h, wd, kh, kw, sh, sw, ph, pw,
                                       count_include_pad, divisor_override)


@njit(parallel=PRANGE_ONLY, cache=True)
def avg_pool2d_grad(dy, out, kh, kw, sh, sw, ph, pw, count_include_pad, divisor_override):
    for b in prange(out.shape[0]):
        avg_pool2d_grad_images(0, b, b + 1, dy, out, kh, kw, sh, sw, ph, pw,
                               count_include_pad, divisor_override)


@njit(cache=True)
def avg_pool2d_grad_images(chunk, start, stop, dy, out, kh, kw, sh, sw, ph, pw,
                           count_include_pad, divisor_override):
    _, c, h, wd = out.shape
    wo = dy.shape[3]
    share = np.empty(wo, out.dtype)
    for b in range(start, stop):
        for ch in range(c):
            dp, g = dy[b, ch], out[b, ch]
            _fill(g, 0)
            for y in range(dp.shape[0]):
                for t in range(wo):
                    share[t] = dp[y, t] / _divisor(y, t, h, wd, kh, kw, sh, sw, ph, pw,
                                                   count_include_pad, divisor_override)
                i0, i1 = _valid(y * sh - ph, 1, h, kh)
                for i in range(i0, i1):
                    dst = g[y * sh - ph + i]
                    for j in range(kw):
                        x0, x1 = _valid(j - pw, sw, wd, wo)
                        if sw == 1:
                            _add(dst[x0 + j - pw:x1 + j - pw], share[x0:x1])
                        elif x1 > x0:
                            _add(_row(dst, x0, x1, sw, j - pw), share[x0:x1])
