"""Weight initializers (torch.nn.init's names), drawn from `gc.random.generator()`.

Each function fills its target in place and returns it. The target is a
NumPy array or a graphc variable (then the variable is assigned the new
value), so `init.zeros_(model.fc.bias)` works as in PyTorch. Draws come from
graphc's seeded generator, so `gc.manual_seed(s)` makes every initial weight
reproducible.
"""
import math

import numpy as np

from graphc.errors import GraphcError, ShapeError, user_location
from graphc.random import generator
from graphc.tensor import Tensor

__all__ = ["calculate_gain", "uniform_", "normal_", "constant_", "zeros_", "ones_",
           "kaiming_uniform_", "kaiming_normal_", "xavier_uniform_", "xavier_normal_"]


def _fill(target, make):
    """Write make(shape) into target (array or variable); return target."""
    if isinstance(target, Tensor):
        target.assign(make(target.shape))
    else:
        target[...] = make(target.shape)
    return target


def _fans(shape, what):
    if len(shape) < 2:
        raise ShapeError(f"fan in and fan out need at least 2 dimensions, got shape {shape}",
                         op=what, loc=user_location())
    receptive = int(np.prod(shape[2:], dtype=np.int64))
    return shape[1] * receptive, shape[0] * receptive


def calculate_gain(nonlinearity, param=None):
    """PyTorch's recommended gain for a nonlinearity."""
    if nonlinearity in ("linear", "conv2d", "sigmoid", "identity"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise GraphcError(f"unknown nonlinearity {nonlinearity!r}", op="calculate_gain",
                      loc=user_location())


def uniform_(target, a=0.0, b=1.0):
    """U(a, b)."""
    return _fill(target, lambda shape: generator().uniform(a, b, shape))


def normal_(target, mean=0.0, std=1.0):
    """N(mean, std^2)."""
    return _fill(target, lambda shape: generator().normal(mean, std, shape))


def constant_(target, val):
    return _fill(target, lambda shape: np.full(shape, val))


def zeros_(target):
    return constant_(target, 0.0)


def ones_(target):
    return constant_(target, 1.0)


def _kaiming_std(shape, a, mode, nonlinearity, what):
    if mode not in ("fan_in", "fan_out"):
        raise GraphcError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}", op=what,
                          loc=user_location())
    fan_in, fan_out = _fans(tuple(shape), what)
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan) if fan else 0.0


def kaiming_uniform_(target, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    """U(-bound, bound), bound = gain * sqrt(3 / fan). With a=sqrt(5) (PyTorch's
    Linear and Conv2d default) the bound is 1 / sqrt(fan_in)."""
    bound = math.sqrt(3.0) * _kaiming_std(target.shape, a, mode, nonlinearity,
                                          "kaiming_uniform_")
    return uniform_(target, -bound, bound)


def kaiming_normal_(target, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    """N(0, std^2), std = gain / sqrt(fan)."""
    return normal_(target, 0.0, _kaiming_std(target.shape, a, mode, nonlinearity,
                                             "kaiming_normal_"))


def xavier_uniform_(target, gain=1.0):
    """U(-bound, bound), bound = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(tuple(target.shape), "xavier_uniform_")
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(target, -bound, bound)


def xavier_normal_(target, gain=1.0):
    """N(0, std^2), std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(tuple(target.shape), "xavier_normal_")
    return normal_(target, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))
