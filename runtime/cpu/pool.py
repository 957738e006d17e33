"""Max and average pooling (NCHW) and their gradients as Numba kernels.

All four run one `prange` loop over the N * C planes (planes are independent,
so overlapping windows accumulate without races), in one shared driver: each
prange loop costs about a second of compile time per dtype. Windows are
clipped to the input instead of padded: max pooling's padding is -inf, which
never wins, and average pooling's padding adds zero. Max pooling keeps the
references' tie and NaN rules exactly: a window's value and gradient go to
its first element (in row-major kernel order) greater than all before it,
starting from -inf, so a window of NaNs or -infs routes its gradient to
kernel offset (0, 0) when that is inside the input, and drops it otherwise.
"""
import numpy as np
from numba import njit, prange

from graphc.runtime.cpu.conv import PRANGE_ONLY, _fill, _valid

MAX, MAX_GRAD, AVG, AVG_GRAD = range(4)


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


@njit(cache=True)
def _max_plane(xp, yp, kh, kw, sh, sw, ph, pw, dh, dw):
    for y in range(yp.shape[0]):
        for t in range(yp.shape[1]):
            yp[y, t] = _first_max(xp, y, t, kh, kw, sh, sw, ph, pw, dh, dw)[0]


@njit(cache=True)
def _max_grad_plane(xp, dp, gp, kh, kw, sh, sw, ph, pw, dh, dw):
    h, wd = xp.shape
    _fill(gp, 0)
    for y in range(dp.shape[0]):
        for t in range(dp.shape[1]):
            arg = _first_max(xp, y, t, kh, kw, sh, sw, ph, pw, dh, dw)[1]
            iy = y * sh - ph + (arg // kw) * dh
            ix = t * sw - pw + (arg % kw) * dw
            if 0 <= iy < h and 0 <= ix < wd:
                gp[iy, ix] += dp[y, t]


@njit(cache=True)
def _divisor(count, kh, kw, count_include_pad, divisor_override):
    if divisor_override:
        return divisor_override
    return kh * kw if count_include_pad else count


@njit(cache=True)
def _avg_plane(xp, yp, kh, kw, sh, sw, ph, pw, count_include_pad, divisor_override):
    h, wd = xp.shape
    for y in range(yp.shape[0]):
        i0, i1 = _valid(y * sh - ph, 1, h, kh)
        for t in range(yp.shape[1]):
            j0, j1 = _valid(t * sw - pw, 1, wd, kw)
            s = 0.0
            for i in range(i0, i1):
                for j in range(j0, j1):
                    s += xp[y * sh - ph + i, t * sw - pw + j]
            count = (i1 - i0) * (j1 - j0)
            yp[y, t] = s / _divisor(count, kh, kw, count_include_pad, divisor_override)


@njit(cache=True)
def _avg_grad_plane(dp, gp, kh, kw, sh, sw, ph, pw, count_include_pad, divisor_override):
    h, wd = gp.shape
    _fill(gp, 0)
    for y in range(dp.shape[0]):
        i0, i1 = _valid(y * sh - ph, 1, h, kh)
        for t in range(dp.shape[1]):
            j0, j1 = _valid(t * sw - pw, 1, wd, kw)
            count = (i1 - i0) * (j1 - j0)
            share = dp[y, t] / _divisor(count, kh, kw, count_include_pad, divisor_override)
            for i in range(i0, i1):
                for j in range(j0, j1):
                    gp[y * sh - ph + i, t * sw - pw + j] += share


@njit(parallel=PRANGE_ONLY, cache=True)
def _planes(kind, x, dy, out, kh, kw, sh, sw, ph, pw, dh, dw, count_include_pad, divisor_override):
    """The shared driver: `kind` of the plane kernels above on every (n, c) plane.
    x: the pooled input (the forward's input, or dy for AVG_GRAD); dy: the gradient."""
    planes = x.shape[0] * x.shape[1]
    x3 = x.reshape((planes, x.shape[2], x.shape[3]))
    d3 = dy.reshape((planes, dy.shape[2], dy.shape[3]))
    y3 = out.reshape((planes, out.shape[2], out.shape[3]))
    for p in prange(planes):
        if kind == MAX:
            _max_plane(x3[p], y3[p], kh, kw, sh, sw, ph, pw, dh, dw)
        elif kind == MAX_GRAD:
            _max_grad_plane(x3[p], d3[p], y3[p], kh, kw, sh, sw, ph, pw, dh, dw)
        elif kind == AVG:
            _avg_plane(x3[p], y3[p], kh, kw, sh, sw, ph, pw, count_include_pad, divisor_override)
        else:
            _avg_grad_plane(d3[p], y3[p], kh, kw, sh, sw, ph, pw, count_include_pad, divisor_override)


@njit(cache=True)
def max_pool2d(x, out, kh, kw, sh, sw, ph, pw, dh, dw):
    _planes(MAX, x, x, out, kh, kw, sh, sw, ph, pw, dh, dw, 0, 0)


@njit(cache=True)
def max_pool2d_grad(x, dy, out, kh, kw, sh, sw, ph, pw, dh, dw):
    _planes(MAX_GRAD, x, dy, out, kh, kw, sh, sw, ph, pw, dh, dw, 0, 0)


@njit(cache=True)
def avg_pool2d(x, out, kh, kw, sh, sw, ph, pw, count_include_pad, divisor_override):
    _planes(AVG, x, x, out, kh, kw, sh, sw, ph, pw, 1, 1, count_include_pad, divisor_override)


@njit(cache=True)
def avg_pool2d_grad(dy, out, kh, kw, sh, sw, ph, pw, count_include_pad, divisor_override):
    _planes(AVG_GRAD, dy, dy, out, kh, kw, sh, sw, ph, pw, 1, 1, count_include_pad, divisor_override)
