"""2-D convolution in NCHW, PyTorch's conventions, and its two gradients.

x: (N, C, H, W), w: (O, C // groups, kh, kw) -> y: (N, O, Ho, Wo) with
Ho = (H + 2 ph - dh (kh - 1) - 1) // sh + 1. The gradients are ops of their
own (each the adjoint of conv2d in one operand), and each has a gradient
built from the other two, so grad of grad works.

The references loop over the kh * kw kernel offsets and contract channels
with einsum: the same arithmetic as im2col + GEMM, readable and float64-exact.
"""
import numpy as np

from graphc import dtypes
from graphc.errors import DtypeError, ShapeError
from graphc.graph import format_shape
from graphc.ops.registry import OPAQUE, register_op
from graphc.tensor import apply


def output_size(size, kernel, stride, padding, dilation):
    if size is None:
        return None
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _window(k, dilation, stride, count):
    """The strided slice that kernel offset k reads for `count` outputs."""
    start = k * dilation
    return slice(start, start + stride * (count - 1) + 1, stride)


def _grouped(x, groups):
    n, c, h, w = x.shape
    return x.reshape(n, groups, c // groups, h, w)


def _pad_hw(x, padding, value=0):
    (ph, pw) = padding
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


def conv2d_reference(x, w, stride, padding, dilation, groups):
    n = x.shape[0]
    out_ch, _, kh, kw = w.shape
    ho, wo = (output_size(x.shape[2 + i], w.shape[2 + i], stride[i], padding[i], dilation[i])
              for i in (0, 1))
    xg = _grouped(_pad_hw(x, padding), groups)
    wg = w.reshape(groups, out_ch // groups, *w.shape[1:])
    y = np.zeros((n, groups, out_ch // groups, ho, wo), np.result_type(x, w))
    for i in range(kh):
        for j in range(kw):
            patch = xg[..., _window(i, dilation[0], stride[0], ho), _window(j, dilation[1], stride[1], wo)]
            y += np.einsum("ngchw,goc->ngohw", patch, wg[..., i, j])
    return y.reshape(n, out_ch, ho, wo)


def conv2d_grad_input_reference(dy, w, input_hw, stride, padding, dilation, groups):
    n, out_ch, ho, wo = dy.shape
    _, cg, kh, kw = w.shape
    (h, wd), (ph, pw) = input_hw, padding
    dxp = np.zeros((n, groups, cg, h + 2 * ph, wd + 2 * pw), np.result_type(dy, w))
    dyg = dy.reshape(n, groups, out_ch // groups, ho, wo)
    wg = w.reshape(groups, out_ch // groups, cg, kh, kw)
    for i in range(kh):
        for j in range(kw):
            window = (_window(i, dilation[0], stride[0], ho), _window(j, dilation[1], stride[1], wo))
            dxp[(..., *window)] += np.einsum("ngohw,goc->ngchw", dyg, wg[..., i, j])
    return dxp[..., ph:ph + h, pw:pw + wd].reshape(n, groups * cg, h, wd)


def conv2d_grad_weight_reference(x, dy, kernel_hw, stride, padding, dilation, groups):
    n, out_ch, ho, wo = dy.shape
    kh, kw = kernel_hw
    xg = _grouped(_pad_hw(x, padding), groups)
    dyg = dy.reshape(n, groups, out_ch // groups, ho, wo)
    dw = np.zeros((groups, out_ch // groups, xg.shape[2], kh, kw), np.result_type(x, dy))
    for i in range(kh):
        for j in range(kw):
            patch = xg[..., _window(i, dilation[0], stride[0], ho), _window(j, dilation[1], stride[1], wo)]
            dw[..., i, j] = np.einsum("ngchw,ngohw->goc", patch, dyg)
    return dw.reshape(out_ch, xg.shape[2], kh, kw)


def _check_conv(x, w, groups):
    shapes = f"input {format_shape(x.shape)}, weight {format_shape(w.shape)}"
    for name, t in (("input", x), ("weight", w)):
        if len(t.shape) != 4:
            raise ShapeError(f"{name} must be 4-D (NCHW / OIHW), got {shapes}")
        if not dtypes.is_float(t.dtype):
            raise DtypeError(f"{name} must be floating-point, got {t.dtype}")
    c, (out_ch, cg) = x.shape[1], w.shape[:2]
    if c is not None and c != cg * groups:
        raise ShapeError(f"input {format_shape(x.shape)} has {c} channels but weight "
                         f"{format_shape(w.shape)} with groups={groups} expects {cg * groups}")
    if out_ch % groups:
        raise ShapeError(f"{out_ch} output channels do not divide into {groups} groups")


@register_op("conv2d", OPAQUE)
class Conv2d:
    """y = conv2d(x, w) (cross-correlation, as PyTorch); no bias."""
    def infer(x, w, *, stride, padding, dilation, groups):
        _check_conv(x, w, groups)
        hw = tuple(output_size(x.shape[2 + i], w.shape[2 + i], stride[i], padding[i], dilation[i])
                   for i in (0, 1))
        if any(d is not None and d < 1 for d in hw):
            raise ShapeError(f"input {format_shape(x.shape)} is too small for weight "
                             f"{format_shape(w.shape)} with padding {padding}, dilation {dilation}")
        return (x.shape[0], w.shape[0]) + hw, dtypes.promote(x.dtype, w.dtype)

    reference = conv2d_reference

    def grad(y, dy, x, w, **attrs):
        return [apply("conv2d_grad_input", dy, w, input_hw=x.shape[2:], **attrs),
                apply("conv2d_grad_weight", x, dy, kernel_hw=w.shape[2:], **attrs)]


@register_op("conv2d_grad_input", OPAQUE)
class Conv2dGradInput:
    """dx of conv2d: the transposed convolution of dy with w."""
    def infer(dy, w, *, input_hw, stride, padding, dilation, groups):
        return (dy.shape[0], w.shape[1] * groups) + tuple(input_hw), dy.dtype

    reference = conv2d_grad_input_reference

    def grad(y, g, dy, w, *, input_hw, **attrs):
        return [apply("conv2d", g, w, **attrs),
                apply("conv2d_grad_weight", g, dy, kernel_hw=w.shape[2:], **attrs)]


@register_op("conv2d_grad_weight", OPAQUE)
class Conv2dGradWeight:
    """dw of conv2d: the correlation of x with dy."""
    def infer(x, dy, *, kernel_hw, stride, padding, dilation, groups):
        return (dy.shape[1], x.shape[1] // groups) + tuple(kernel_hw), dy.dtype

    reference = conv2d_grad_weight_reference

    def grad(y, g, x, dy, *, kernel_hw, **attrs):
        return [apply("conv2d_grad_input", dy, g, input_hw=x.shape[2:], **attrs),
                apply("conv2d", x, g, **attrs)]
