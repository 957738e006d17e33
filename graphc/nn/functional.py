"""gc.nn functions, with torch.nn.functional's signatures (`axis` for `dim`).

Primitive ops (conv2d, pooling, softmax, the classic activations) are
registered in graphc.ops; the rest here are compositions of them
(normalizations, dropout, linear, adaptive pooling, the newer activations), so
they differentiate to any order and fuse like any graph. The losses are in
graphc/nn/losses.py, imported here.
"""
import numpy as np

from graphc.errors import ArgumentError, GraphcError, ShapeError, user_location
from graphc.graph import format_shape
from graphc.nn import arguments
from graphc.nn.arguments import (conv_arguments, divisor_argument, non_negative_number,
                                 pool_arguments, probability_argument, shape_argument,
                                 single_argument)
from graphc.nn.losses import (binary_cross_entropy, binary_cross_entropy_with_logits,  # noqa: F401
                              cross_entropy, huber_loss, kl_div, l1_loss, mse_loss, nll_loss,
                              smooth_l1_loss)
from graphc.ops.elementwise import (expm1, gelu, leaky_relu, minimum, relu, rsqrt, sigmoid,
                                    softplus, tanh, where)
from graphc.ops.linalg import matmul
from graphc.ops.rules import blamed_on, real_number
from graphc.ops.reduce import mean
from graphc.ops.shape import (broadcast_to, expand_dims, one_hot as _one_hot, pad, reshape,
                              squeeze, take, transpose)
from graphc.ops.source import size
from graphc.random import uniform_like
from graphc.tensor import apply, as_tensor

__all__ = [
    "relu", "sigmoid", "tanh", "gelu", "leaky_relu", "softplus", "softmax", "log_softmax",
    "silu", "mish", "logsigmoid", "elu", "hardtanh", "relu6",
    "linear", "conv1d", "conv2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "embedding",
    "one_hot", "dropout", "dropout2d", "scaled_dot_product_attention",
    "batch_norm", "layer_norm", "group_norm",
    "cross_entropy", "nll_loss", "binary_cross_entropy_with_logits",
    "binary_cross_entropy", "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "kl_div",
]


def _axis(x, axis, name):
    from graphc.ops.rules import normalize_axis
    try:
        return normalize_axis(axis, x.ndim, x.shape)
    except GraphcError as error:
        raise error.located(name, user_location()) from None


def softmax(input, axis=-1):
    input = as_tensor(input)
    return apply("softmax", input, axis=_axis(input, axis, "softmax"))


def log_softmax(input, axis=-1):
    input = as_tensor(input)
    return apply("log_softmax", input, axis=_axis(input, axis, "log_softmax"))


# -- activations (compositions; relu, sigmoid, tanh, gelu, leaky_relu, softplus are ops) ----

def silu(input):
    """x * sigmoid(x) (swish)."""
    return input * sigmoid(input)


def mish(input):
    """x * tanh(softplus(x))."""
    return input * tanh(softplus(input))


def logsigmoid(input):
    """log(sigmoid(x)) = -softplus(-x), finite for any x."""
    return -softplus(-input)


@blamed_on("elu")
def elu(input, alpha=1.0):
    """x where x > 0, alpha * (e^x - 1) elsewhere. The exponential sees min(x, 0), so the
    branch not taken never overflows into the gradient (0 * inf)."""
    alpha = real_number(alpha, "alpha")
    return where(input > 0, input, alpha * expm1(minimum(input, 0)))


@blamed_on("hardtanh")
def hardtanh(input, min_val=-1.0, max_val=1.0):
    """x clamped to [min_val, max_val]; gradient 1 strictly inside, 0 at and beyond the
    bounds (as PyTorch's); NaN stays NaN."""
    low, high = real_number(min_val, "min_val"), real_number(max_val, "max_val")
    if low > high:
        raise ArgumentError(f"min_val {low:g} must not exceed max_val {high:g}")
    return where(input <= low, low, where(input >= high, high, input))


def relu6(input):
    """min(max(x, 0), 6): hardtanh(x, 0, 6)."""
    return hardtanh(input, 0.0, 6.0)


def linear(input, weight, bias=None):
    """input @ weight.T + bias, weight of shape (out_features, in_features)."""
    out = matmul(input, transpose(weight))
    return out if bias is None else out + bias


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """PyTorch's conv2d (NCHW); padding may be an int, a pair, 'valid' or 'same'."""
    stride, padding, dilation, groups = conv_arguments("conv2d", stride, padding, dilation,
                                                       groups)
    if padding == "valid":
        padding = (0, 0)
    elif padding == "same":
        if stride != (1, 1):
            raise ShapeError("padding='same' needs stride 1", op="conv2d", loc=user_location())
        total = [dilation[i] * (weight.shape[2 + i] - 1) for i in (0, 1)]
        padding = (total[0] // 2, total[1] // 2)
        if total[0] % 2 or total[1] % 2:        # an even kernel: as PyTorch, the extra
            input = pad(input, ((0, 0), (0, 0), (0, total[0] % 2), (0, total[1] % 2)))  # after
    out = apply("conv2d", input, weight, stride=stride, padding=padding,
                dilation=dilation, groups=groups)
    return out if bias is None else out + reshape(bias, (1, -1, 1, 1))


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """PyTorch's conv1d over (N, C, L), or unbatched (C, L); weight (out, C / groups, k);
    padding an int, a tuple of one, 'valid' or 'same'. Runs as conv2d over
    (N, C, 1, L) with the kernel (out, C / groups, 1, k)."""
    input, weight = as_tensor(input), as_tensor(weight)
    stride, padding, dilation, groups = conv_arguments("conv1d", stride, padding, dilation,
                                                         groups, single_argument)
    _check_conv1d(input, weight, bias, groups, padding, stride, dilation)
    batched = input.ndim == 3
    rows = expand_dims(input if batched else expand_dims(input, 0), 2)      # (N, C, 1, L)
    padding = padding if isinstance(padding, str) else (0,) + padding
    try:
        out = conv2d(rows, expand_dims(weight, 2), None, (1,) + stride, padding,
                     (1,) + dilation, groups)
    except GraphcError as error:             # length or dtype: say it of conv1d's shapes
        raise type(error)(f"{error.message} (input {format_shape(input.shape)} and weight "
                          f"{format_shape(weight.shape)} run as conv2d over (N, C, 1, L))",
                          op="conv1d", loc=user_location()) from None
    out = squeeze(out, 2) if bias is None else squeeze(out, 2) + reshape(bias, (-1, 1))
    return out if batched else squeeze(out, 0)


def _check_conv1d(input, weight, bias, groups, padding, stride, dilation):
    def fail(message):
        raise ShapeError(message, op="conv1d", loc=user_location())
    shapes = f"input {format_shape(input.shape)}, weight {format_shape(weight.shape)}"
    if input.ndim not in (2, 3) or weight.ndim != 3:
        fail(f"expects input (N, C, L) or (C, L) and weight (out, C / groups, k), got {shapes}")
    channels, (out, per_group) = input.shape[-2], weight.shape[:2]
    if channels is not None and channels != per_group * groups or out % groups:
        fail(f"{shapes} with groups={groups}: input channels must be {per_group} * {groups} "
             f"and {out} output channels divisible by {groups}")
    if bias is not None and tuple(bias.shape) != (out,):
        fail(f"bias of shape {format_shape(bias.shape)} does not fit {out} output channels")
    if padding == "same" and stride != (1,):
        fail(f"padding='same' needs stride 1, got stride {stride}")
    length, kernel = input.shape[-1], weight.shape[-1]
    pad_total = 0 if isinstance(padding, str) else 2 * padding[0]
    if padding != "same" and length is not None and \
            length + pad_total - dilation[0] * (kernel - 1) - 1 < 0:
        fail(f"{shapes} is too small: padding {padding}, dilation {dilation} leave no output")


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    kernel, stride, padding, dilation = pool_arguments("max_pool2d", kernel_size, stride,
                                                       padding, dilation, ceil_mode)
    return apply("max_pool2d", input, kernel=kernel, stride=stride, padding=padding,
                 dilation=dilation)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    kernel, stride, padding, _ = pool_arguments("avg_pool2d", kernel_size, stride, padding,
                                                ceil_mode=ceil_mode)
    return apply("avg_pool2d", input, kernel=kernel, stride=stride, padding=padding,
                 count_include_pad=bool(count_include_pad),
                 divisor_override=divisor_argument(divisor_override, "avg_pool2d"))


def adaptive_avg_pool2d(input, output_size):
    """PyTorch's adaptive average pooling of (N, C, H, W) to output_size (an int, a pair,
    None in a pair keeping that size): output cell i averages rows floor(i H / out) to
    ceil((i + 1) H / out). A size that divides evenly is avg_pool2d; 1 is a mean;
    otherwise a product with the (out, H) averaging matrix along each axis."""
    input = as_tensor(input)
    if input.ndim != 4 or input.shape[2] is None or input.shape[3] is None:
        raise ShapeError(f"expects an (N, C, H, W) input with known H and W, got "
                         f"{format_shape(input.shape)}", op="adaptive_avg_pool2d",
                         loc=user_location())
    sizes = output_size if isinstance(output_size, (tuple, list)) else (output_size,) * 2
    if len(sizes) != 2:
        raise ArgumentError(f"output_size must be an int or a pair, got {output_size!r}",
                            op="adaptive_avg_pool2d", loc=user_location())
    out = tuple(input.shape[2 + i] if s is None else
                arguments.int_argument(s, "output_size", "adaptive_avg_pool2d", minimum=1)
                for i, s in enumerate(sizes))
    h, w = input.shape[2:]
    if out == (1, 1):
        return mean(input, axis=(2, 3), keepdims=True)
    if h % out[0] == 0 and w % out[1] == 0:
        kernel = (h // out[0], w // out[1])
        return avg_pool2d(input, kernel, kernel) if kernel != (1, 1) else input
    rows = _averaging_matrix(h, out[0], input.dtype)          # (out_h, H)
    cols = _averaging_matrix(w, out[1], input.dtype)          # (out_w, W)
    pooled = matmul(input, transpose(cols))                   # (N, C, H, out_w)
    return transpose(matmul(transpose(pooled, (0, 1, 3, 2)), transpose(rows)), (0, 1, 3, 2))


def _averaging_matrix(size, out, dtype):
    matrix = np.zeros((out, size), dtype)
    for i in range(out):
        lo, hi = (i * size) // out, -((-(i + 1) * size) // out)
        matrix[i, lo:hi] = 1.0 / (hi - lo)
    return matrix


def embedding(input, weight):
    """Rows of `weight` (num_embeddings, dim) picked by integer ids in [0, num_embeddings)
    (a negative id is an error, as PyTorch's); the gradient scatter-adds."""
    return take(weight, input, axis=0, wrap_negative=False)


def one_hot(tensor, num_classes):
    """PyTorch's one_hot: int64, a trailing class axis."""
    return _one_hot(tensor, num_classes, dtype="int64")


def dropout(input, p=0.5, training=True):
    """Zero each element with probability p and scale the rest by 1 / (1 - p)."""
    p = probability_argument(p, "p", "dropout")
    if not training or p == 0:
        return input
    if p == 1:
        return input * 0
    keep = uniform_like(input) >= p
    return where(keep, input * (1.0 / (1.0 - p)), 0)


def dropout2d(input, p=0.5, training=True):
    """Zero whole channels with probability p (one draw per sample and channel of an
    (N, C, H, W) input) and scale the rest by 1 / (1 - p). A 3-D input is read as
    (N, C, L), as PyTorch reads it today (its warning says this will change)."""
    p = probability_argument(p, "p", "dropout2d")
    input = as_tensor(input)
    if input.ndim not in (3, 4):
        raise ShapeError(f"expects a 4-D (N, C, H, W) or 3-D (N, C, L) input, got "
                         f"{format_shape(input.shape)}", op="dropout2d", loc=user_location())
    if not training or p == 0:
        return input
    if p == 1:
        return input * 0
    first = input[(slice(None), slice(None)) + (slice(0, 1),) * (input.ndim - 2)]
    keep = uniform_like(first) >= p                       # (N, C, 1, 1): one draw a channel
    return where(keep, input * (1.0 / (1.0 - p)), 0)


def _normalized(x, axes, eps):
    mu = mean(x, axes, keepdims=True)
    centred = x - mu
    var = mean(centred * centred, axes, keepdims=True)
    return centred * rsqrt(var + eps), mu, var


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalize over the trailing `normalized_shape` axes, then scale and shift."""
    shape = shape_argument(normalized_shape, "normalized_shape", "layer_norm")
    if tuple(input.shape[input.ndim - len(shape):]) != shape:
        raise ShapeError(f"normalized_shape {shape} does not end input shape "
                         f"{format_shape(input.shape)}", op="layer_norm", loc=user_location())
    axes = tuple(range(input.ndim - len(shape), input.ndim))
    y, _, _ = _normalized(input, axes, eps)
    if weight is not None:
        y = y * weight
    return y if bias is None else y + bias


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Normalize (N, C, *) input over each sample's groups of C / num_groups channels
    (and every position), then scale and shift per channel by weight and bias (C,)."""
    input = as_tensor(input)
    groups = _check_group_norm(input, num_groups, weight, bias, eps)
    channels, axes = input.shape[1], tuple(range(2, input.ndim))
    param_shape = (1, channels) + (1,) * len(axes)

    def group_mean(t):
        """The mean over each group of t (N, C, *), as (N, C, 1, ...): every channel
        of a group has the same count, so it is the mean of its channels' means."""
        per_channel = mean(t, axes) if axes else t                      # (N, C)
        grouped = reshape(per_channel, (-1, groups, channels // groups))
        spread = broadcast_to(mean(grouped, 2, keepdims=True),
                              (input.shape[0],) + grouped.shape[1:])
        return reshape(spread, (-1,) + param_shape[1:])

    centred = input - group_mean(input)
    y = centred * rsqrt(group_mean(centred * centred) + eps)
    if weight is not None:
        y = y * reshape(weight, param_shape)
    return y if bias is None else y + reshape(bias, param_shape)


def _check_group_norm(input, num_groups, weight, bias, eps):
    groups = arguments.int_argument(num_groups, "num_groups", "group_norm", minimum=1)
    non_negative_number(eps, "eps", "group_norm")
    channels = input.shape[1] if input.ndim >= 2 else None
    if channels is None or channels % groups:
        raise ShapeError(f"expects input (N, C, *) with C known and divisible by num_groups "
                         f"{groups}, got {format_shape(input.shape)}", op="group_norm",
                         loc=user_location())
    for name, param in (("weight", weight), ("bias", bias)):
        if param is not None and tuple(param.shape) != (channels,):
            raise ShapeError(f"{name} of shape {format_shape(param.shape)} does not fit "
                             f"{channels} channels of input {format_shape(input.shape)}",
                             op="group_norm", loc=user_location())
    return groups


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Batch normalization over N (and H, W): batch statistics in training, running
    ones otherwise.

    In training, every executable that computes the output also updates the
    running statistics from this call's batch (a side update, as PyTorch's in
    place one); if one layer is called several times in training mode, each
    call's output carries its own update, and an executable computing several
    of them applies them in call order. Training needs more than one value per
    channel (the unbiased variance divides by count - 1): a count statically 1
    raises a GraphcError here; with a None batch dimension fed one sample of a
    (N, C) input, the output is 0 and running_var becomes NaN (PyTorch raises
    at run time), so train with batches of at least 2 (`drop_last=True`).
    """
    if input.ndim not in (2, 3, 4):
        raise ShapeError(f"input must be 2-D, 3-D or 4-D, got {format_shape(input.shape)}",
                         op="batch_norm", loc=user_location())
    _check_batch_norm_arguments(running_mean, running_var, training, momentum, eps)
    axes = (0,) + tuple(range(2, input.ndim))
    param_shape = (1, -1) + (1,) * (input.ndim - 2)
    if training:
        _check_more_than_one_value_per_channel(input, axes)
        y, mu, var = _normalized(input, axes, eps)
        if running_mean is not None:
            _record_running_stats(input, y, axes, mu, var, running_mean, running_var, momentum)
    else:
        scale = reshape(rsqrt(running_var + eps), param_shape)
        y = (input - reshape(running_mean, param_shape)) * scale
    if weight is not None:
        y = y * reshape(weight, param_shape)
    return y if bias is None else y + reshape(bias, param_shape)


def _check_batch_norm_arguments(running_mean, running_var, training, momentum, eps):
    if not training and (running_mean is None or running_var is None):
        raise ArgumentError("evaluation (training=False) needs running_mean and running_var",
                            op="batch_norm", loc=user_location())
    if (running_mean is None) != (running_var is None):
        raise ArgumentError("running_mean and running_var are given together or not at all",
                            op="batch_norm", loc=user_location())
    for name, stat in (("running_mean", running_mean), ("running_var", running_var)):
        if training and stat is not None and getattr(stat, "op", None) != "variable":
            raise ArgumentError(f"{name} must be a gc.variable in training (this call updates "
                                f"it), got {stat!r}; pass None to normalize with the batch's "
                                "statistics only", op="batch_norm", loc=user_location())
    probability_argument(momentum, "momentum", "batch_norm")
    non_negative_number(eps, "eps", "batch_norm")


def _check_more_than_one_value_per_channel(x, axes):
    dims = [x.shape[a] for a in axes]
    if None not in dims and int(np.prod(dims)) == 1:
        raise GraphcError(f"expected more than 1 value per channel when training, got input "
                          f"of shape {format_shape(x.shape)} (use a batch of at least 2, or "
                          "eval mode)", op="batch_norm", loc=user_location())


def _record_running_stats(x, y, axes, mu, var, running_mean, running_var, momentum):
    """Side updates of the running statistics, anchored at this call's output `y`."""
    from graphc.autodiff import stop_gradient
    n = size(x, axes, dtype=x.dtype)
    flat_mu = stop_gradient(reshape(mu, (-1,)))
    unbiased = stop_gradient(reshape(var, (-1,)) * n / (n - 1))
    graph = y.graph
    graph.add_side_update(running_mean.node, y.node,
                          lambda old: old * (1 - momentum) + flat_mu * momentum)
    graph.add_side_update(running_var.node, y.node,
                          lambda old: old * (1 - momentum) + unbiased * momentum)


# Last: attention.py builds on the functions above (it imports this module).
from graphc.nn.attention import scaled_dot_product_attention  # noqa: E402
