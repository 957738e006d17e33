"""gc.nn functions, with torch.nn.functional's signatures (`axis` for `dim`).

Primitive ops (conv2d, pooling, softmax, activations) are registered in
graphc.ops; the rest here are compositions of them (losses, normalizations,
dropout, linear), so they differentiate to any order and fuse like any graph.
"""
import numpy as np

from graphc import dtypes
from graphc.errors import ArgumentError, DtypeError, GraphcError, ShapeError, user_location
from graphc.graph import format_shape
from graphc.nn.arguments import (conv_arguments, divisor_argument, pool_arguments,
                                 non_negative_number, probability_argument, shape_argument)
from graphc.ops.elementwise import (gelu, leaky_relu, relu, rsqrt, sigmoid, softplus, tanh,
                                    where)
from graphc.ops.linalg import matmul
from graphc.ops.reduce import mean, sum
from graphc.ops.shape import one_hot as _one_hot, reshape, take, transpose
from graphc.ops.source import size
from graphc.random import uniform_like
from graphc.tensor import Tensor, apply, as_tensor

__all__ = [
    "relu", "sigmoid", "tanh", "gelu", "leaky_relu", "softplus", "softmax", "log_softmax",
    "linear", "conv2d", "max_pool2d", "avg_pool2d", "embedding", "one_hot", "dropout",
    "batch_norm", "layer_norm", "cross_entropy", "binary_cross_entropy_with_logits",
    "binary_cross_entropy", "mse_loss",
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
        if any(t % 2 for t in total):
            raise ShapeError("padding='same' needs an odd (dilated) kernel", op="conv2d",
                             loc=user_location())
        padding = (total[0] // 2, total[1] // 2)
    out = apply("conv2d", input, weight, stride=stride, padding=padding,
                dilation=dilation, groups=groups)
    return out if bias is None else out + reshape(bias, (1, -1, 1, 1))


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


def _reduce(loss, reduction, name):
    if reduction == "mean":
        return mean(loss)
    if reduction == "sum":
        return sum(loss)
    if reduction == "none":
        return loss
    raise GraphcError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}",
                      op=name, loc=user_location())


def _same_sizes(shape, other):
    """Equal shapes, a None size matching any."""
    return len(shape) == len(other) and all(
        a is None or b is None or a == b for a, b in zip(shape, other))


def _shape_of(x):
    return x.shape if isinstance(x, Tensor) else np.shape(x)


def _check_same_shapes(input, target, name):
    """PyTorch's losses of input and target of one shape refuse to broadcast them."""
    shapes = _shape_of(input), _shape_of(target)
    if not _same_sizes(*shapes):
        raise ShapeError(f"input {format_shape(shapes[0])} and target "
                         f"{format_shape(shapes[1])} must have the same shape", op=name,
                         loc=user_location())


def cross_entropy(input, target, reduction="mean"):
    """Softmax cross-entropy of logits (N, C[, d...]) against integer labels (N[, d...])."""
    input, target = as_tensor(input), as_tensor(target)
    labels_shape = input.shape[:1] + input.shape[2:] if input.ndim >= 2 else None
    if labels_shape is None or not _same_sizes(target.shape, labels_shape):
        expected = "(N, ...)" if labels_shape is None else format_shape(labels_shape)
        raise ShapeError(f"logits {format_shape(input.shape)} and labels "
                         f"{format_shape(target.shape)}: expected logits (N, C, ...) and "
                         f"labels {expected}", op="cross_entropy", loc=user_location())
    if not dtypes.is_int(target.dtype):
        raise DtypeError(f"labels must be integer class indices, got {target.dtype} (logits "
                         f"{format_shape(input.shape)}, labels {format_shape(target.shape)})",
                         op="cross_entropy", loc=user_location())
    logp = log_softmax(input, axis=1)
    if input.ndim > 2:
        logp = transpose(logp, (0,) + tuple(range(2, input.ndim)) + (1,))
    picked = sum(_one_hot(target, input.shape[1], dtype=input.dtype) * logp, axis=-1)
    return _reduce(-picked, reduction, "cross_entropy")


def binary_cross_entropy_with_logits(input, target, reduction="mean", pos_weight=None):
    """Sigmoid + binary cross-entropy in one stable expression (as PyTorch).

    Written with softplus (log(1 + e^x), whose gradient is sigmoid) so the
    gradient is exactly sigmoid(x) - target everywhere, x = 0 included.
    """
    _check_same_shapes(input, target, "binary_cross_entropy_with_logits")
    if pos_weight is None:
        loss = softplus(input) - target * input
    else:
        loss = (1 - target) * input + (1 + (pos_weight - 1) * target) * softplus(-input)
    return _reduce(loss, reduction, "binary_cross_entropy_with_logits")


def binary_cross_entropy(input, target, reduction="mean", eps=1e-12):
    """BCE of probabilities (prefer the with-logits form for stability)."""
    from graphc.ops.elementwise import clip, log
    _check_same_shapes(input, target, "binary_cross_entropy")
    p = clip(input, eps, 1 - eps)
    return _reduce(-(target * log(p) + (1 - target) * log(1 - p)), reduction,
                   "binary_cross_entropy")


def mse_loss(input, target, reduction="mean"):
    _check_same_shapes(input, target, "mse_loss")
    diff = input - target
    return _reduce(diff * diff, reduction, "mse_loss")


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
