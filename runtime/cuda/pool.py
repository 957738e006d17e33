"""Max and average pooling (NCHW) and their gradients on the CUDA backend.

One thread per output element, each scanning its window; windows are clipped
to the input instead of padded (max pooling's padding is -inf, which never
wins; average pooling's adds zero). The gradients are gathers: each input
element visits the windows that contain it, kernel offsets in row-major
order as the references add them, so no atomics are needed and the result
is the same on every run, overlapping windows included.

Max pooling keeps the references' tie and NaN rules: offsets are visited in
row-major order and replace the running maximum only when strictly greater or
the first NaN, starting from -inf. So ties go to the first maximum, a window
holding a NaN is NaN and routes its gradient to its first NaN, and a window of
-infs has the value -inf and routes its gradient to offset (0, 0) (dropped
when that lies in the padding).

Average pooling divides each window's sum by a per-window divisor computed on
the host (divisor_override, the window size, or the count of unpadded
elements), stored in the output's dtype.
"""
import numpy as np
from numba import cuda

from graphc.runtime.cuda.device import LIMITS, grid_for
from graphc.runtime.cuda.layout import size_of


@cuda.jit(device=True)
def window_max(x, base, h, w, by, bx, kh, kw, dh, dw, lowest):
    """(k, value): the row-major kernel offset k = i kw + j of the first strict maximum
    above `lowest` (-inf), or the first NaN, of the window at (by, bx) of the plane at
    x[base:], or (0, -inf)."""
    best = lowest
    arg = 0
    for i in range(kh):
        iy = by + i * dh
        if 0 <= iy < h:
            for j in range(kw):
                ix = bx + j * dw
                if 0 <= ix < w:
                    v = x[base + iy * w + ix]
                    if v > best or (v != v and best == best):
                        best = v
                        arg = i * kw + j
    return arg, best


@cuda.jit
def max_pool2d(x, out, planes, h, w, ho, wo, kh, kw, sh, sw, ph, pw, dh, dw, lowest, err):
    """out[p, y, t] = the maximum of window (y, t) of plane p (-inf if none is larger)."""
    if err[0] != 0:
        return
    q = cuda.grid(1)
    while q < planes * ho * wo:
        t = q % wo
        y = (q // wo) % ho
        base = (q // (wo * ho)) * h * w
        _, best = window_max(x, base, h, w, y * sh - ph, t * sw - pw, kh, kw, dh, dw, lowest)
        out[q] = best
        q += cuda.gridsize(1)


@cuda.jit
def max_pool2d_grad(x, dy, out, planes, h, w, ho, wo, kh, kw, sh, sw, ph, pw, dh, dw,
                    lowest, zero, err):
    """out[p, iy, ix] = the sum of dy over the windows whose first maximum is (iy, ix)."""
    if err[0] != 0:
        return
    q = cuda.grid(1)
    while q < planes * h * w:
        ix = q % w
        iy = (q // w) % h
        plane = q // (w * h)
        acc = zero
        for i in range(kh):
            ny = iy + ph - i * dh
            if ny >= 0 and ny % sh == 0 and ny // sh < ho:
                for j in range(kw):
                    nx = ix + pw - j * dw
                    if nx >= 0 and nx % sw == 0 and nx // sw < wo:
                        y, t = ny // sh, nx // sw
                        arg, _ = window_max(x, plane * h * w, h, w, y * sh - ph, t * sw - pw,
                                            kh, kw, dh, dw, lowest)
                        if arg == i * kw + j:
                            acc += dy[(plane * ho + y) * wo + t]
        out[q] = acc
        q += cuda.gridsize(1)


@cuda.jit
def max_pool2d_select(x, g, out, planes, h, w, ho, wo, kh, kw, sh, sw, ph, pw, dh, dw,
                      lowest, zero, err):
    """out[p, y, t] = g at the first maximum of x's window (y, t) (0 in the padding)."""
    if err[0] != 0:
        return
    q = cuda.grid(1)
    while q < planes * ho * wo:
        t = q % wo
        y = (q // wo) % ho
        base = (q // (wo * ho)) * h * w
        by, bx = y * sh - ph, t * sw - pw
        arg, _ = window_max(x, base, h, w, by, bx, kh, kw, dh, dw, lowest)
        iy, ix = by + (arg // kw) * dh, bx + (arg % kw) * dw
        out[q] = g[base + iy * w + ix] if 0 <= iy < h and 0 <= ix < w else zero
        q += cuda.gridsize(1)


@cuda.jit
def avg_pool2d(x, out, planes, h, w, ho, wo, kh, kw, sh, sw, ph, pw, divisors, zero, err):
    """out[p, y, t] = the sum of window (y, t) of plane p / divisors[y, t]."""
    if err[0] != 0:
        return
    q = cuda.grid(1)
    while q < planes * ho * wo:
        t = q % wo
        y = (q // wo) % ho
        base = (q // (wo * ho)) * h * w
        acc = zero
        for i in range(kh):
            iy = y * sh - ph + i
            if 0 <= iy < h:
                for j in range(kw):
                    ix = t * sw - pw + j
                    if 0 <= ix < w:
                        acc += x[base + iy * w + ix]
        out[q] = acc / divisors[y * wo + t]
        q += cuda.gridsize(1)


@cuda.jit
def avg_pool2d_grad(dy, out, planes, h, w, ho, wo, kh, kw, sh, sw, ph, pw, divisors, zero,
                    err):
    """out[p, iy, ix] = the sum of dy[p, y, t] / divisors[y, t] over the windows (y, t)
    that contain (iy, ix)."""
    if err[0] != 0:
        return
    q = cuda.grid(1)
    while q < planes * h * w:
        ix = q % w
        iy = (q // w) % h
        plane = q // (w * h)
        acc = zero
        for i in range(kh):
            ny = iy + ph - i
            if ny >= 0 and ny % sh == 0 and ny // sh < ho:
                for j in range(kw):
                    nx = ix + pw - j
                    if nx >= 0 and nx % sw == 0 and nx // sw < wo:
                        y, t = ny // sh, nx // sw
                        acc += dy[(plane * ho + y) * wo + t] / divisors[y * wo + t]
        out[q] = acc
        q += cuda.gridsize(1)


def _window(attrs):
    (kh, kw), (sh, sw), (ph, pw) = attrs["kernel"], attrs["stride"], attrs["padding"]
    return kh, kw, sh, sw, ph, pw


def _planes(x_shape, y_shape):
    """planes (n c), h, w, ho, wo."""
    return (x_shape[0] * x_shape[1],) + tuple(x_shape[2:]) + tuple(y_shape[2:])


def _launch(kernel, work, args):
    threads = LIMITS.threads
    return [(kernel, grid_for(work, threads), threads, args)]


def _scalars(dtype):
    """(-inf, 0) in `dtype`: kernels compute in the values' own type."""
    kind = np.dtype(dtype).type
    return kind(-np.inf), kind(0)


def max_pool2d_op(ctx, node, operands, out, err, index):
    (x,) = operands
    lowest, _ = _scalars(node.dtype)
    return _launch(max_pool2d, size_of(node.shape), (
        x.flat, out, *_planes(x.shape, node.shape), *_window(node.attrs),
        *node.attrs["dilation"], lowest, err))


def max_pool2d_grad_op(ctx, node, operands, out, err, index):
    x, dy = operands
    lowest, zero = _scalars(node.inputs[0].dtype)[0], _scalars(node.dtype)[1]
    return _launch(max_pool2d_grad, size_of(node.shape), (
        x.flat, dy.flat, out, *_planes(x.shape, dy.shape), *_window(node.attrs),
        *node.attrs["dilation"], lowest, zero, err))


def max_pool2d_select_op(ctx, node, operands, out, err, index):
    x, g = operands
    lowest, zero = _scalars(node.inputs[0].dtype)[0], _scalars(node.dtype)[1]
    return _launch(max_pool2d_select, size_of(node.shape), (
        x.flat, g.flat, out, *_planes(x.shape, node.shape), *_window(node.attrs),
        *node.attrs["dilation"], lowest, zero, err))


def divisors(attrs, input_hw, output_hw, dtype):
    """What avg_pool2d divides each window (y, t) by, flat, in `dtype`."""
    kh, kw, sh, sw, ph, pw = _window(attrs)
    if attrs["divisor_override"]:
        counts = np.full(output_hw, attrs["divisor_override"])
    elif attrs["count_include_pad"]:
        counts = np.full(output_hw, kh * kw)
    else:
        def inside(size, k, s, p, count):     # unpadded elements of each window, one axis
            start = np.arange(count) * s - p
            return np.minimum(start + k, size) - np.maximum(start, 0)
        counts = np.outer(inside(input_hw[0], kh, sh, ph, output_hw[0]),
                          inside(input_hw[1], kw, sw, pw, output_hw[1]))
    return counts.astype(dtype).reshape(-1)


def avg_pool2d_op(ctx, node, operands, out, err, index):
    (x,) = operands
    table = ctx.upload(divisors(node.attrs, x.shape[2:], node.shape[2:], node.dtype))
    return _launch(avg_pool2d, size_of(node.shape), (
        x.flat, out, *_planes(x.shape, node.shape), *_window(node.attrs), table,
        _scalars(node.dtype)[1], err))


def avg_pool2d_grad_op(ctx, node, operands, out, err, index):
    (dy,) = operands
    table = ctx.upload(divisors(node.attrs, node.shape[2:], dy.shape[2:], node.dtype))
    return _launch(avg_pool2d_grad, size_of(node.shape), (
        dy.flat, out, *_planes(node.shape, dy.shape), *_window(node.attrs), table,
        _scalars(node.dtype)[1], err))
