"""Max and average pooling (NCHW) and their gradients as Numba kernels.

Each kernel loops over the N * C planes with `prange` (planes are independent,
so overlapping windows accumulate without races) and clips every window to
the input instead of padding it: max pooling's padding is -inf, which never
wins, and average pooling's padding adds zero. Max pooling keeps the
references' tie and NaN rules exactly: a window's value and gradient go to
its first element (in row-major kernel order) greater than all before it,
starting from -inf, so a window of NaNs or -infs routes its gradient to
kernel offset (0, 0) when that is inside the input, and drops it otherwise.
"""
import numpy as np
from numba import njit, prange

from graphc.runtime.cpu.conv import PRANGE_ONLY, _fill, _valid


@njit(cache=True)
def _first_max(xp, y, t, kh, kw, sh, sw, ph, pw, dh, dw):
    """(value, kernel offset) of the first maximum of window (y, t) of plane xp."""
    h, wd = xp.shape
    by, bx = y * sh - ph, t * sw - pw
    i0, i1 = _valid(by, dh, h, kh)
    j0, j1 = _valid(bx, dw, wd, kw)
    best, arg = -np.inf, 0
    for i in range(i0, i1):
        row = xp[by + i * dh]
        for j in range(j0, j1):
            v = row[bx + j * dw]
            if v > best:
                best, arg = v, i * kw + j
    return best, arg


@njit(parallel=PRANGE_ONLY, cache=True)
def max_pool2d(x, out, kh, kw, sh, sw, ph, pw, dh, dw):
    n, c, h, wd = x.shape
    ho, wo = out.shape[2], out.shape[3]
    x3, y3 = x.reshape((n * c, h, wd)), out.reshape((n * c, ho, wo))
    for p in prange(n * c):
        for y in range(ho):
            for t in range(wo):
                y3[p, y, t] = _first_max(x3[p], y, t, kh, kw, sh, sw, ph, pw, dh, dw)[0]


@njit(parallel=PRANGE_ONLY, cache=True)
def max_pool2d_grad(x, dy, out, kh, kw, sh, sw, ph, pw, dh, dw):
    n, c, h, wd = x.shape
    ho, wo = dy.shape[2], dy.shape[3]
    x3, d3, g3 = x.reshape((n * c, h, wd)), dy.reshape((n * c, ho, wo)), out.reshape((n * c, h, wd))
    for p in prange(n * c):
        g = g3[p]
        _fill(g, 0)
        for y in range(ho):
            for t in range(wo):
                arg = _first_max(x3[p], y, t, kh, kw, sh, sw, ph, pw, dh, dw)[1]
                iy = y * sh - ph + (arg // kw) * dh
                ix = t * sw - pw + (arg % kw) * dw
                if 0 <= iy < h and 0 <= ix < wd:
                    g[iy, ix] += d3[p, y, t]


@njit(cache=True)
def _divisor(count, kh, kw, count_include_pad, divisor_override):
    if divisor_override:
        return divisor_override
    return kh * kw if count_include_pad else count


@njit(parallel=PRANGE_ONLY, cache=True)
def avg_pool2d(x, out, kh, kw, sh, sw, ph, pw, count_include_pad, divisor_override):
    n, c, h, wd = x.shape
    ho, wo = out.shape[2], out.shape[3]
    x3, y3 = x.reshape((n * c, h, wd)), out.reshape((n * c, ho, wo))
    for p in prange(n * c):
        xp = x3[p]
        for y in range(ho):
            i0, i1 = _valid(y * sh - ph, 1, h, kh)
            for t in range(wo):
                j0, j1 = _valid(t * sw - pw, 1, wd, kw)
                s = 0.0
                for i in range(i0, i1):
                    for j in range(j0, j1):
                        s += xp[y * sh - ph + i, t * sw - pw + j]
                count = (i1 - i0) * (j1 - j0)
                y3[p, y, t] = s / _divisor(count, kh, kw, count_include_pad, divisor_override)


@njit(parallel=PRANGE_ONLY, cache=True)
def avg_pool2d_grad(dy, out, kh, kw, sh, sw, ph, pw, count_include_pad, divisor_override):
    n, c, ho, wo = dy.shape
    h, wd = out.shape[2], out.shape[3]
    d3, g3 = dy.reshape((n * c, ho, wo)), out.reshape((n * c, h, wd))
    for p in prange(n * c):
        g = g3[p]
        _fill(g, 0)
        for y in range(ho):
            i0, i1 = _valid(y * sh - ph, 1, h, kh)
            for t in range(wo):
                j0, j1 = _valid(t * sw - pw, 1, wd, kw)
                count = (i1 - i0) * (j1 - j0)
                share = d3[p, y, t] / _divisor(count, kh, kw, count_include_pad, divisor_override)
                for i in range(i0, i1):
                    for j in range(j0, j1):
                        g[y * sh - ph + i, t * sw - pw + j] += share
