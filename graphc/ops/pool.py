"""2-D max and average pooling in NCHW (PyTorch's conventions), with gradients.

Windows may overlap (stride < kernel). Max pooling pads with -inf and sends
each window's gradient to its first maximum, as PyTorch does; a NaN counts as
larger than any number (the window's value is NaN, as PyTorch's, and its first
NaN takes the gradient). Average
pooling divides by the window size, or by the count of unpadded elements
when count_include_pad=False, or by divisor_override.
"""
import numpy as np

from graphc import dtypes
from graphc.errors import ArgumentError, DtypeError, ShapeError
from graphc.graph import format_shape
from graphc.ops.conv import _pad_hw, _window, output_size
from graphc.ops.registry import OPAQUE, register_op
from graphc.tensor import apply


def _pool_shape(x, kernel, stride, padding, dilation):
    if len(x.shape) != 4:
        raise ShapeError(f"input must be 4-D (NCHW), got shape {format_shape(x.shape)}")
    if not dtypes.is_float(x.dtype):
        raise DtypeError(f"input must be floating-point, got {x.dtype}")
    if min(kernel + stride + dilation) < 1 or min(padding) < 0:
        raise ArgumentError(f"kernel {kernel}, stride {stride} and dilation {dilation} must "
                            f"be positive and padding {padding} non-negative")
    if any(2 * p > k for p, k in zip(padding, kernel)):
        raise ArgumentError(f"padding {padding} must be at most half the kernel {kernel}")
    hw = tuple(output_size(x.shape[2 + i], kernel[i], stride[i], padding[i], dilation[i])
               for i in (0, 1))
    if any(d is not None and d < 1 for d in hw):
        raise ShapeError(f"input {format_shape(x.shape)} is too small for kernel {kernel}")
    return x.shape[:2] + hw, x.dtype


def _offsets(kernel, dilation, stride, out_hw):
    """(k, window) for each kernel offset: the strided view it reads in the padded input."""
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            yield i * kernel[1] + j, (..., _window(i, dilation[0], stride[0], out_hw[0]),
                                      _window(j, dilation[1], stride[1], out_hw[1]))


def _out_hw(shape, kernel, stride, padding, dilation):
    return tuple(output_size(shape[2 + i], kernel[i], stride[i], padding[i], dilation[i])
                 for i in (0, 1))


def _first_argmax(x, kernel, stride, padding, dilation):
    """Per output element, the kernel offset of the first maximum (NaN above all), and
    the maximum."""
    xp = _pad_hw(x, padding, -np.inf)
    out_hw = _out_hw(x.shape, kernel, stride, padding, dilation)
    best = np.full(x.shape[:2] + out_hw, -np.inf, x.dtype)
    arg = np.zeros(best.shape, np.int64)
    for k, window in _offsets(kernel, dilation, stride, out_hw):
        better = (xp[window] > best) | (np.isnan(xp[window]) & ~np.isnan(best))
        best = np.where(better, xp[window], best)
        arg = np.where(better, k, arg)
    return arg, best


@register_op("max_pool2d", OPAQUE)
class MaxPool2d:
    """Largest element of each window."""
    def infer(x, *, kernel, stride, padding, dilation):
        return _pool_shape(x, kernel, stride, padding, dilation)

    def reference(x, *, kernel, stride, padding, dilation):
        return _first_argmax(x, kernel, stride, padding, dilation)[1]

    def grad(y, dy, x, **attrs):
        return [apply("max_pool2d_grad", x, dy, **attrs)]


@register_op("max_pool2d_grad", OPAQUE)
class MaxPool2dGrad:
    """dx of max_pool2d: dy routed to each window's first maximum."""
    def infer(x, dy, **attrs): return x.shape, dy.dtype

    def reference(x, dy, *, kernel, stride, padding, dilation):
        arg, _ = _first_argmax(x, kernel, stride, padding, dilation)
        (ph, pw), (h, w) = padding, x.shape[2:]
        dxp = np.zeros(x.shape[:2] + (h + 2 * ph, w + 2 * pw), dy.dtype)
        for k, window in _offsets(kernel, dilation, stride, dy.shape[2:]):
            dxp[window] += np.where(arg == k, dy, 0)
        return dxp[..., ph:ph + h, pw:pw + w]

    def grad(y, g, x, dy, **attrs):
        return [None, apply("max_pool2d_select", x, g, **attrs)]


@register_op("max_pool2d_select", OPAQUE)
class MaxPool2dSelect:
    """For each window of x, g at x's first maximum (the adjoint of max_pool2d_grad
    in dy; what grad of grad through max pooling needs)."""
    def infer(x, g, *, kernel, stride, padding, dilation):
        return _pool_shape(x, kernel, stride, padding, dilation)[0], g.dtype

    def reference(x, g, *, kernel, stride, padding, dilation):
        arg, best = _first_argmax(x, kernel, stride, padding, dilation)
        gp = _pad_hw(g, padding)
        out = np.zeros(best.shape, g.dtype)
        for k, window in _offsets(kernel, dilation, stride, best.shape[2:]):
            out += np.where(arg == k, gp[window], 0)
        return out

    def grad(y, dy, x, g, **attrs):
        return [None, apply("max_pool2d_grad", x, dy, **attrs)]


def _divisor(shape, kernel, stride, padding, count_include_pad, divisor_override):
    if divisor_override is not None:
        return divisor_override
    if count_include_pad:
        return kernel[0] * kernel[1]
    ones = np.ones((1, 1) + tuple(shape[2:]))
    return _window_sums(ones, kernel, stride, padding)


def _window_sums(x, kernel, stride, padding):
    xp = _pad_hw(x, padding)
    out_hw = _out_hw(x.shape, kernel, stride, padding, (1, 1))
    total = np.zeros(x.shape[:2] + out_hw, x.dtype)
    for _, window in _offsets(kernel, (1, 1), stride, out_hw):
        total += xp[window]
    return total


@register_op("avg_pool2d", OPAQUE)
class AvgPool2d:
    """Mean of each window."""
    def infer(x, *, kernel, stride, padding, count_include_pad, divisor_override):
        if divisor_override is not None and (not isinstance(divisor_override, int)
                                             or divisor_override < 1):
            raise ArgumentError(f"divisor_override must be a positive int, got "
                                f"{divisor_override!r}")
        return _pool_shape(x, kernel, stride, padding, (1, 1))

    def reference(x, *, kernel, stride, padding, count_include_pad, divisor_override):
        divisor = _divisor(x.shape, kernel, stride, padding, count_include_pad, divisor_override)
        return _window_sums(x, kernel, stride, padding) / divisor

    def grad(y, dy, x, **attrs):
        return [apply("avg_pool2d_grad", dy, input_hw=x.shape[2:], **attrs)]


@register_op("avg_pool2d_grad", OPAQUE)
class AvgPool2dGrad:
    """dx of avg_pool2d: each window's dy spread evenly over it."""
    def infer(dy, *, input_hw, **attrs): return dy.shape[:2] + tuple(input_hw), dy.dtype

    def reference(dy, *, input_hw, kernel, stride, padding, count_include_pad, divisor_override):
        shape = dy.shape[:2] + tuple(input_hw)
        share = dy / _divisor(shape, kernel, stride, padding, count_include_pad, divisor_override)
        (ph, pw), (h, w) = padding, input_hw
        dxp = np.zeros(dy.shape[:2] + (h + 2 * ph, w + 2 * pw), dy.dtype)
        for _, window in _offsets(kernel, (1, 1), stride, dy.shape[2:]):
            dxp[window] += share
        return dxp[..., ph:ph + h, pw:pw + w]

    def grad(y, g, dy, *, input_hw, **attrs):
        return [apply("avg_pool2d", g, **attrs)]
