"""The NumPy-named functions at gc.* (each defined beside its op in graphc.ops)."""
from graphc.autodiff import stop_gradient  # noqa: F401
from graphc.indexing import getitem  # noqa: F401
from graphc.ops.elementwise import (  # noqa: F401
    abs, absolute, add, cast, clip, divide, equal, erf, exp, expm1, gelu, greater, greater_equal,
    leaky_relu, less, less_equal, log, log1p, logical_and, logical_not, logical_or, logical_xor,
    maximum, minimum, multiply, negative, not_equal, power, relu, rsqrt, sigmoid, sign, softplus,
    sqrt, square, subtract, tanh, true_divide, where)
from graphc.ops.linalg import dot, matmul  # noqa: F401
from graphc.ops.reduce import (  # noqa: F401
    amax, amin, argmax, argmin, logsumexp, max, mean, min, prod, std, sum, sum_to, var)
from graphc.ops.shape import (  # noqa: F401
    broadcast_to, concatenate, expand_dims, one_hot, pad, reshape, squeeze, stack, swapaxes,
    take, transpose)
from graphc.ops.source import (  # noqa: F401
    arange, constant, full, full_like, ones, ones_like, placeholder, size, variable, zeros,
    zeros_like)
