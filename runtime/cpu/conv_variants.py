"""Which conv kernel computes a shape (im2col + GEMM, Winograd or direct), and the
scratch array it needs. The kernels: runtime/cpu/conv.py and runtime/cpu/winograd.py.
"""
from graphc.runtime.cpu.winograd import tile_grid, winograd_applies, winograd_workspace_shape


def conv_workspace_shape(op, variant, x_shape, w_shape, y_shape, chunks=1):
    """(chunks, elements) of the `work` array of `op`'s `variant` kernel (a ValueError
    for a direct kernel, which has none).

    x_shape, w_shape, y_shape: conv2d's input, weight and output shapes (for
    the gradients: the shapes of the conv2d they differentiate).
    """
    if variant == "winograd":
        return winograd_workspace_shape(x_shape, w_shape, y_shape, chunks)
    out_ch, cg, kh, kw = w_shape
    k, hw = cg * kh * kw, y_shape[2] * y_shape[3]
    if variant == "gemm" and op in ("conv2d", "conv2d_grad_input"):
        return chunks, k * hw
    if variant == "gemm" and op == "conv2d_grad_weight":
        return chunks, k * hw + out_ch * k
    raise ValueError(f"no work array for the {variant} kernel of {op!r}")


def conv_variant(op, x_shape, w_shape, y_shape, attrs):
    """'gemm', 'winograd' or 'direct': the fastest kernel for conv op `op` (measured on
    2 cores; `attrs`: the conv2d's stride, padding, dilation and groups).

    Winograd (runtime/cpu/winograd.py) wins for 3x3 kernels at stride 1 with at
    least 8 channels in and out and at least 4x4 tiles (8x8 outputs) per image:
    W2's conv2 (32 -> 64, 24x24 outputs) takes 6.9, 6.8 and 6.2 ms against
    10.6, 8.9 and 10.7 for forward, input and weight gradient; 16 -> 16 at
    32x32, 3.9/3.4/3.0 against 6.0/4.7/6.2; with 4x4 outputs (4 tiles) or 1-3
    input channels it loses (2-3x). Otherwise GEMM wins whenever each group has
    several output channels (W2's conv1, one input channel: 0.44 ms against 0.53
    direct). With one output channel per group (depthwise) the GEMM degenerates
    into a matrix-vector product per image and group, and the direct forward
    (5-20x) and weight gradient (3x) win; the input gradient stays faster as GEMM.
    """
    groups, (out_ch, in_ch) = attrs["groups"], w_shape[:2]
    rows, columns = tile_grid(y_shape)
    if (winograd_applies(w_shape, attrs["stride"], attrs["dilation"], groups)
            and min(in_ch, out_ch) >= 8 and rows * columns >= 16):
        return "winograd"
    depthwise = out_ch // groups == 1
    return "direct" if depthwise and op in ("conv2d", "conv2d_grad_weight") else "gemm"


def conv_kernel_name(op, variant):
    """The library function computing `op` with `variant`."""
    return {"gemm": op, "direct": f"{op}_direct", "winograd": f"{op}_winograd"}[variant]
