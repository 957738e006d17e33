"""Which conv kernel computes a shape (im2col + GEMM, by rows or by runs, Winograd
or direct), and the scratch array it needs. The kernels: runtime/cpu/conv.py,
conv_runs.py and winograd.py.
"""
from graphc.runtime.cpu.conv_runs import runs_workspace
from graphc.runtime.cpu.winograd import tile_grid, winograd_applies, winograd_workspace_shape

WINOGRAD_MIN_CHANNELS = 32     # below, the GEMM of shifted runs is as fast or faster


def conv_workspace_shape(op, variant, x_shape, w_shape, y_shape, chunks=1, padding=None,
                         stride=(1, 1)):
    """(chunks, elements) of the `work` array of `op`'s `variant` kernel (a ValueError
    for a direct kernel, which has none, and for a runs kernel without its padding).

    x_shape, w_shape, y_shape: conv2d's input, weight and output shapes (for
    the gradients: the shapes of the conv2d they differentiate); padding and
    stride: the conv's (the runs kernels' scratch depends on them).
    """
    if variant == "winograd":
        return winograd_workspace_shape(x_shape, w_shape, y_shape, chunks)
    if variant == "runs":
        if padding is None:
            raise ValueError(f"the runs kernel of {op!r} needs the conv's padding")
        return runs_workspace(x_shape, w_shape, y_shape, *stride, *padding, chunks)
    out_ch, cg, kh, kw = w_shape
    k, hw = cg * kh * kw, y_shape[2] * y_shape[3]
    if variant == "gemm" and op in ("conv2d", "conv2d_grad_input"):
        return chunks, k * hw
    if variant == "gemm" and op == "conv2d_grad_weight":
        return chunks, k * hw + out_ch * k
    raise ValueError(f"no work array for the {variant} kernel of {op!r}")


def conv_variant(op, x_shape, w_shape, y_shape, attrs):
    """'runs', 'gemm', 'winograd' or 'direct': the fastest kernel for conv op `op`
    (measured on 2 cores; `attrs`: the conv2d's stride, padding, dilation and groups).

    Winograd (runtime/cpu/winograd.py) wins for 3x3 kernels at stride 1 with at
    least 32 channels in and out and at least 4x4 tiles (8x8 outputs) per image:
    W2's conv2 (32 -> 64, 24x24 outputs) takes 6.1, 6.5 and 6.0 ms against 8.7,
    8.5 and 9.0 for the runs GEMM below (forward, input and weight gradient), 64
    -> 64 at 8x8 1.5/1.6/1.9 against 2.5/2.3/2.7; at 16 -> 16 channels and 32x32
    the runs GEMM is as fast or faster (2.7-2.9/2.9-3.3/2.6-2.7 against
    2.8-3.5/3.2/2.8-2.9), and at 8 -> 8. Otherwise GEMM wins whenever each group has
    several output channels (W2's conv1, one input channel: 0.44 ms against 0.53
    direct). With one output channel per group (depthwise) the GEMM degenerates
    into a matrix-vector product per image and group, and the direct forward
    (5-20x) and weight gradient (3x) win; the input gradient stays faster as GEMM.
    At stride 1 the GEMM's columns come from shifted runs of the input plane
    (conv_runs.py) for kernels larger than 1x1, 2-3x faster than row by row for
    the forward and the weight gradient: LeNet's 6 -> 16 5x5 conv at batch 256
    1.6-2.2 against 3.9-5.7 ms and 1.6-1.9 against 3.9-4.5; W2's conv1 (1 -> 32,
    3x3, 9 columns per output point) about even: forward 0.46-0.52 against
    0.49-1.9 ms, weight gradient 0.89-0.93 against 0.78-1.1 (isolated runs on a
    noisy machine). The input gradient is 1.2-1.9x
    faster from 3 input channels per group, but slower with one (0.62 against
    0.45 ms at W2's conv1: its GEMM sums over one row per output channel), which
    keeps the row-by-row GEMM, as does a 1x1 kernel, whose rows need no im2col
    (runs measured 0.8-1.3x there at stride 1, 2-4x slower at stride 2). At
    stride 2 the runs come from phase planes, 1.3-3x faster than row by row: a
    ResNet's 16 -> 32 3x3 downsampling conv at 32x32 inputs, batch 64, 2.0/2.6/2.8
    against 4.5/4.0/4.5 ms, 32 -> 64 at 16x16 2.5/2.5/1.5 against 4.8/3.5/4.8, a
    5x5 1.4/1.4/2.1 against 3.9/3.1/5.1; ResNet-18's 7x7 stem on 224x224 inputs
    (batch 8) 21/20/20 against 29/31/20."""
    groups, (out_ch, in_ch) = attrs["groups"], w_shape[:2]
    rows, columns = tile_grid(y_shape)
    if (winograd_applies(w_shape, attrs["stride"], attrs["dilation"], groups)
            and min(in_ch, out_ch) >= WINOGRAD_MIN_CHANNELS and rows * columns >= 16):
        return "winograd"
    depthwise = out_ch // groups == 1
    if depthwise and op in ("conv2d", "conv2d_grad_weight"):
        return "direct"
    one_by_one = w_shape[2] * w_shape[3] == 1
    one_channel_input_gradient = op == "conv2d_grad_input" and w_shape[1] == 1
    return "gemm" if one_by_one or one_channel_input_gradient else "runs"


def conv_kernel_name(op, variant):
    """The library function computing `op` with `variant`."""
    return {"gemm": op, "direct": f"{op}_direct", "winograd": f"{op}_winograd",
            "runs": f"{op}_runs"}[variant]


SETUP = {"conv2d_winograd", "conv2d_grad_input_winograd"}      # the weights' transform
FINISH = {"conv2d_grad_weight", "conv2d_grad_weight_runs",      # the parts' sums added
          "conv2d_grad_weight_winograd"}


def conv_steps(op, variant, x_shape, w_shape, parts):
    """The library calls that compute `op` with `variant` in a step program, in order:
    (function name, chunks) each, chunks 0 for a plain call, else the `_parts` form
    launched over parts [0, chunks) (runtime/cpu/chunks.py). `parts` is the rows of
    the work array; a direct kernel's parts are its images (the weight gradient's:
    its output channels). A Winograd forward of fewer images than parts stays one
    call (its prange splits each image's GEMMs)."""
    kernel = conv_kernel_name(op, variant)
    if variant == "direct":
        count = w_shape[0] if op == "conv2d_grad_weight" else x_shape[0]
        return [(kernel + "_parts", count)] if count else []
    if kernel == "conv2d_winograd" and x_shape[0] < parts:
        return [(kernel, 0)]
    return ([(kernel + "_setup", 0)] if kernel in SETUP else []) + \
        [(kernel + "_parts", parts)] + ([(kernel + "_finish", 0)] if kernel in FINISH else [])
