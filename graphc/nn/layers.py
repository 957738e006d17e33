"""PyTorch's layers as graphc modules: same constructor arguments, defaults,
initializations and `repr`; each creates its variables when constructed and
builds nodes with gc.nn's functional ops when called.

Initial weights come from `gc.random.generator()` (see graphc.nn.init), so
`gc.manual_seed(s)` makes them reproducible. Every layer takes `dtype`
(float32 by default, or float64). Inputs that do not fit a layer raise a
`ShapeError` naming the layer and the user's line; constructor arguments of the
wrong kind or value (a negative size, a float kernel, stride 0) an `ArgumentError`.
"""
import math
import os

import numpy as np

from graphc import dtypes
from graphc.errors import ArgumentError, DtypeError, GraphcError, ShapeError, user_location
from graphc.graph import format_shape
from graphc.nn import arguments, functional as F
from graphc.nn import init
from graphc.nn.module import Module, module_dtype
from graphc.ops.elementwise import where
from graphc.ops.shape import expand_dims, reshape
from graphc.ops.source import variable
from graphc.autodiff import stop_gradient

__all__ = [
    "Identity", "Linear", "Conv1d", "Conv2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d",
    "Flatten", "Embedding",
    "BatchNorm1d", "BatchNorm2d", "LayerNorm", "GroupNorm", "Dropout", "Dropout2d",
]


def _fail(module, message, error=ShapeError):
    """Raise `error` naming the layer and the user's line."""
    raise error(message, op=type(module).__name__, loc=user_location())


def _expect_input(module, input, ndims, what, channels=None, axis=1):
    """Check input's rank is in `ndims` (None: any but 0) and its size on `axis`."""
    if input.ndim not in (ndims or range(1, input.ndim + 1)):
        _fail(module, f"expects a {what} input, got shape {format_shape(input.shape)}")
    size = input.shape[axis]
    if channels is not None and size is not None and size != channels:
        _fail(module, f"expects {channels} features on axis {axis % input.ndim}, got "
                      f"input of shape {format_shape(input.shape)}")


def _size(module, name, value):
    """A size argument (features, channels, rows) as an int >= 0, else an ArgumentError."""
    return arguments.int_argument(value, name, type(module).__name__, minimum=0)


def _physical_memory():
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return math.inf


def _array(module, shape, dtype, fill=None):
    """A new array for a variable (filled with `fill` if given); one larger than the
    machine's memory is an ArgumentError saying how many bytes it needs."""
    nbytes = math.prod(shape) * dtype.itemsize
    try:
        array = np.empty(shape, dtype) if nbytes <= _physical_memory() else None
    except (MemoryError, ValueError):
        array = None
    if array is None:
        _fail(module, f"a {dtype} array of shape {format_shape(shape)} needs {nbytes:,} bytes, "
                      "more than this machine can allocate", ArgumentError)
    if fill is not None:
        array.fill(fill)
    return array


def _uniform_bound_pair(module, weight_shape, fan_in, bias, dtype):
    """PyTorch's Linear/Conv init: kaiming_uniform(a=sqrt(5)) weight (bound
    1/sqrt(fan_in)), bias U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    weight = init.kaiming_uniform_(_array(module, weight_shape, dtype), a=math.sqrt(5))
    module.weight = variable(weight, name="weight")
    if bias:
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        module.bias = variable(init.uniform_(_array(module, weight_shape[:1], dtype),
                                             -bound, bound), name="bias")
    else:
        module.bias = None


class Identity(Module):
    """Returns its input (ignores constructor arguments, as torch's)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input


class Linear(Module):
    """y = x @ weight.T + bias; weight (out_features, in_features)."""

    def __init__(self, in_features, out_features, bias=True, dtype=None):
        super().__init__()
        self.in_features = _size(self, "in_features", in_features)
        self.out_features = _size(self, "out_features", out_features)
        _uniform_bound_pair(self, (self.out_features, self.in_features), self.in_features,
                            bias, module_dtype(dtype))

    def forward(self, input):
        _expect_input(self, input, None, "(..., in_features)", self.in_features, -1)
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class _ConvNd(Module):
    """A convolution layer: its arguments as tuples of one int per spatial axis,
    weight (out, in / groups, *kernel_size) and bias (out,) with PyTorch's init
    (kaiming_uniform(a=sqrt(5)), so bound 1/sqrt(fan_in) for both)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, padding_mode="zeros", dtype=None):
        super().__init__()
        self.in_channels = _size(self, "in_channels", in_channels)
        self.out_channels = _size(self, "out_channels", out_channels)
        name = type(self).__name__
        self.kernel_size = self._per_axis(kernel_size, "kernel_size", name, minimum=1)
        self.stride, self.padding, self.dilation, self.groups = arguments.conv_arguments(
            name, stride, padding, dilation, groups, self._per_axis)
        if padding_mode != "zeros":
            _fail(self, f"padding_mode {padding_mode!r} is not supported (only 'zeros')",
                  GraphcError)
        if self.in_channels % self.groups or self.out_channels % self.groups:
            _fail(self, f"in_channels {self.in_channels} and out_channels {self.out_channels} "
                        f"must be divisible by groups {self.groups}", ArgumentError)
        shape = (self.out_channels, self.in_channels // self.groups) + self.kernel_size
        _uniform_bound_pair(self, shape, int(np.prod(shape[1:])), bias, module_dtype(dtype))

    def forward(self, input):
        _expect_input(self, input, self._ranks, self._what, self.in_channels,
                      -1 - len(self.kernel_size))
        return self._conv(input, self.weight, self.bias, self.stride, self.padding,
                          self.dilation, self.groups)

    def extra_repr(self):
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}")
        axes = len(self.kernel_size)
        if self.padding != (0,) * axes:
            text += f", padding={self.padding!r}"
        if self.dilation != (1,) * axes:
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        return text + (", bias=False" if self.bias is None else "")


class Conv1d(_ConvNd):
    """1-D convolution over (N, C, L) input, or unbatched (C, L); weight
    (out, in / groups, k); kernel_size, stride, padding, dilation as tuples of one."""
    _ranks, _what = (2, 3), "3-D (N, C, L) or 2-D (C, L)"
    _conv = staticmethod(F.conv1d)

    _per_axis = staticmethod(arguments.single_argument)


class Conv2d(_ConvNd):
    """2-D convolution over NCHW input; weight (out, in / groups, kh, kw)."""
    _ranks, _what = (4,), "4-D (N, C, H, W)"
    _conv = staticmethod(F.conv2d)

    _per_axis = staticmethod(arguments.pair_argument)


class MaxPool2d(Module):
    """Max over kernel_size windows (stride defaults to kernel_size)."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
                 ceil_mode=False):
        super().__init__()
        arguments.pool_arguments(type(self).__name__, kernel_size, stride, padding, dilation,
                                 ceil_mode)
        self.kernel_size, self.padding, self.dilation = kernel_size, padding, dilation
        self.stride = kernel_size if stride is None else stride
        self.ceil_mode = ceil_mode
        if return_indices:
            _fail(self, "return_indices=True is not supported", GraphcError)

    def forward(self, input):
        _expect_input(self, input, (4,), "4-D (N, C, H, W)")
        return F.max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                            self.ceil_mode)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(Module):
    """Mean over kernel_size windows (stride defaults to kernel_size)."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
        super().__init__()
        arguments.pool_arguments(type(self).__name__, kernel_size, stride, padding,
                                 ceil_mode=ceil_mode)
        arguments.divisor_argument(divisor_override, type(self).__name__)
        self.kernel_size, self.padding, self.ceil_mode = kernel_size, padding, ceil_mode
        self.stride = kernel_size if stride is None else stride
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def forward(self, input):
        _expect_input(self, input, (4,), "4-D (N, C, H, W)")
        return F.avg_pool2d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed output size (an int or a pair; None keeps that size)."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, input):
        return F.adaptive_avg_pool2d(input, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class Flatten(Module):
    """Merge axes start_dim..end_dim into one (default: all but the batch axis)."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, input):
        shape, ndim = input.shape, max(input.ndim, 1)
        start, end = self.start_dim % ndim, self.end_dim % ndim
        if not (-ndim <= self.start_dim < ndim and -ndim <= self.end_dim < ndim) or start > end:
            _fail(self, f"cannot flatten axes {self.start_dim}..{self.end_dim} of shape "
                        f"{format_shape(shape)}")
        merged = shape[start:end + 1]
        size = None if None in merged else int(np.prod(merged, dtype=np.int64))
        newshape = shape[:start] + (size,) + shape[end + 1:]
        if newshape.count(None) > 1:
            _fail(self, f"cannot flatten shape {format_shape(shape)}: more than one axis "
                        "would be unknown")
        return reshape(input, newshape)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Embedding(Module):
    """Rows of weight (num_embeddings, embedding_dim), initialised N(0, 1), picked by
    integer ids. The padding_idx row starts at zero and gets no gradient."""

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, max_norm=None,
                 dtype=None):
        super().__init__()
        self.num_embeddings = _size(self, "num_embeddings", num_embeddings)
        self.embedding_dim = _size(self, "embedding_dim", embedding_dim)
        if padding_idx is not None:
            padding_idx = arguments.int_argument(padding_idx, "padding_idx", type(self).__name__)
            if not -self.num_embeddings <= padding_idx < self.num_embeddings:
                _fail(self, f"padding_idx {padding_idx} is out of range for "
                            f"{self.num_embeddings} embeddings", ArgumentError)
            padding_idx %= self.num_embeddings
        self.padding_idx = padding_idx
        if max_norm is not None:
            _fail(self, "max_norm is not supported", GraphcError)
        shape = (self.num_embeddings, self.embedding_dim)
        weight = init.normal_(_array(self, shape, module_dtype(dtype)))
        if padding_idx is not None:
            weight[padding_idx] = 0
        self.weight = variable(weight, name="weight")

    def forward(self, input):
        if not dtypes.is_int(input.dtype):
            _fail(self, f"expects integer ids, got {input.dtype}", DtypeError)
        out = F.embedding(input, self.weight)
        if self.padding_idx is None:
            return out
        # Same values, but no gradient reaches the padding row (as PyTorch).
        return where(expand_dims(input != self.padding_idx, -1), out, stop_gradient(out))

    def extra_repr(self):
        text = f"{self.num_embeddings}, {self.embedding_dim}"
        return text + (f", padding_idx={self.padding_idx}" if self.padding_idx is not None else "")


class _BatchNorm(Module):
    """Normalizes each channel (axis 1) with batch statistics in training and
    running ones in eval; a training graph updates running_mean, running_var and
    num_batches_tracked (non-trainable variables, PyTorch's buffers) every time it
    runs."""
    _dims, _what = (), ""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, dtype=None):
        super().__init__()
        self.num_features = _size(self, "num_features", num_features)
        self.affine, self.track_running_stats = affine, track_running_stats
        if momentum is None:
            _fail(self, "momentum=None (a cumulative average) is not supported", GraphcError)
        self.eps = arguments.non_negative_number(eps, "eps", type(self).__name__)
        self.momentum = arguments.probability_argument(momentum, "momentum", type(self).__name__)
        dtype, shape = module_dtype(dtype), (self.num_features,)
        self.weight = self.bias = self.running_mean = self.running_var = None
        self.num_batches_tracked = None                 # as PyTorch's without running stats
        if affine:
            self.weight = variable(_array(self, shape, dtype, 1.0), name="weight")
            self.bias = variable(_array(self, shape, dtype, 0.0), name="bias")
        if track_running_stats:
            self.running_mean = variable(_array(self, shape, dtype, 0.0), name="running_mean",
                                         trainable=False)
            self.running_var = variable(_array(self, shape, dtype, 1.0), name="running_var",
                                        trainable=False)
            self.num_batches_tracked = variable(np.zeros((), np.int64),
                                                name="num_batches_tracked", trainable=False)

    def forward(self, input):
        _expect_input(self, input, self._dims, self._what, self.num_features)
        batch_stats = self.training or not self.track_running_stats
        output = F.batch_norm(input, self.running_mean, self.running_var, self.weight,
                              self.bias, batch_stats, self.momentum, self.eps)
        if self.training and self.track_running_stats:     # as PyTorch's, in its state_dict
            output.graph.add_side_update(self.num_batches_tracked.node, output.node,
                                         lambda old: old + 1)
        return output

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch norm of (N, C) or (N, C, L) input."""
    _dims, _what = (2, 3), "2-D (N, C) or 3-D (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Batch norm of (N, C, H, W) input."""
    _dims, _what = (4,), "4-D (N, C, H, W)"


class LayerNorm(Module):
    """Normalizes over the trailing normalized_shape axes; weight ones, bias zeros."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True,
                 dtype=None):
        super().__init__()
        self.normalized_shape = arguments.shape_argument(normalized_shape, "normalized_shape",
                                                 type(self).__name__)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        dtype, shape = module_dtype(dtype), self.normalized_shape
        self.weight = self.bias = None
        if elementwise_affine:
            self.weight = variable(_array(self, shape, dtype, 1.0), name="weight")
            if bias:
                self.bias = variable(_array(self, shape, dtype, 0.0), name="bias")

    def forward(self, input):
        count = len(self.normalized_shape)
        if tuple(input.shape[input.ndim - count:]) != self.normalized_shape:
            _fail(self, f"input of shape {format_shape(input.shape)} does not end with "
                        f"normalized_shape {format_shape(self.normalized_shape)}")
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


class GroupNorm(Module):
    """Normalizes (N, C, *) input over each sample's groups of C / num_groups channels;
    with affine, weight (C,) ones and bias (C,) zeros scale and shift each channel."""

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, dtype=None):
        super().__init__()
        name = type(self).__name__
        self.num_groups = arguments.int_argument(num_groups, "num_groups", name, minimum=1)
        self.num_channels = _size(self, "num_channels", num_channels)
        if self.num_channels % self.num_groups:
            _fail(self, f"num_channels {self.num_channels} must be divisible by num_groups "
                        f"{self.num_groups}", ArgumentError)
        self.eps = arguments.non_negative_number(eps, "eps", name)
        self.affine = bool(affine)
        dtype, shape = module_dtype(dtype), (self.num_channels,)
        self.weight = self.bias = None
        if self.affine:
            self.weight = variable(_array(self, shape, dtype, 1.0), name="weight")
            self.bias = variable(_array(self, shape, dtype, 0.0), name="bias")

    def forward(self, input):
        _expect_input(self, input, range(2, max(input.ndim, 2) + 1), "(N, C, *)",
                      self.num_channels)
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"


class Dropout(Module):
    """In training, zero each element with probability p and scale the rest by
    1 / (1 - p), with a new mask at every call of the executable; identity in eval."""

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        arguments.probability_argument(p, "p", type(self).__name__)
        self.p, self.inplace = p, inplace

    def forward(self, input):
        return F.dropout(input, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


class Dropout2d(Dropout):
    """In training, zero whole channels of (N, C, H, W) input (or (N, C, L), as
    PyTorch reads a 3-D input today) with probability p and scale the rest by
    1 / (1 - p), with new draws at every call; identity in eval."""

    def forward(self, input):
        _expect_input(self, input, (3, 4), "4-D (N, C, H, W) or 3-D (N, C, L)")
        return F.dropout2d(input, self.p, self.training)
