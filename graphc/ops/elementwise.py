"""Elementwise ops: unary math, binary arithmetic with NumPy broadcasting,
comparisons, logic, where, cast and stop_gradient, with their public functions.

`scalar` is the expression fusion emits per element ({0}, {1}, ... are the
operands); the CPU backend swaps exp/log/tanh/sigmoid/erf for vectorizable
float32 approximations. `costly = True` marks a scalar of many instructions (a
transcendental): a kernel that needs its value in two passes over a row keeps
it rather than computing it again (runtime/cpu/kept_values.py). Gradients may
have the output's (broadcast) shape:
the autodiff engine sums them back to each operand's shape.
"""
import numpy as np
import scipy     # scipy.special loads on first use: it was a quarter of `import graphc`

from graphc import dtypes
from graphc.errors import ArgumentError, DtypeError
from graphc.graph import format_shape
from graphc.ops.registry import ELEMENTWISE, register_op
from graphc.ops.rules import (blamed_on, broadcast_shapes, constant_value, float_unary, real_number,
                              same_as_input)
from graphc.tensor import apply

SQRT_2_OVER_PI = float(np.sqrt(2.0 / np.pi))
INV_SQRT_2PI = float(1.0 / np.sqrt(2.0 * np.pi))
INV_SQRT_2 = float(1.0 / np.sqrt(2.0))
GELU_TANH_COEF = 0.044715


def numeric_unary(x, **_):
    """Type rule of a unary op on any non-bool tensor."""
    if dtypes.is_bool(x.dtype):
        raise DtypeError("expects a numeric tensor, got bool")
    return x.shape, x.dtype


def arithmetic(a, b, **_):
    return broadcast_shapes(a.shape, b.shape), dtypes.promote(a.dtype, b.dtype)


def non_bool_arithmetic(a, b, **_):
    """Type rule of subtract: NumPy has no bool - bool (is it xor, or a - b as ints?)."""
    shape, dtype = arithmetic(a, b)
    if dtypes.is_bool(dtype):
        raise DtypeError("bool - bool is not defined (as in NumPy): use logical_xor, or "
                         "cast the operands to an integer dtype first")
    return shape, dtype


def comparison(a, b, **_):
    return broadcast_shapes(a.shape, b.shape), dtypes.bool_


# -- unary --------------------------------------------------------------------------

@register_op("negative", ELEMENTWISE)
class Negative:
    """y = -x"""
    infer = numeric_unary
    reference = np.negative
    def grad(y, dy, x): return [-dy]
    scalar = "(-{0})"


@register_op("abs", ELEMENTWISE)
class Abs:
    """y = |x|; gradient sign(x) (0 at 0)."""
    infer = numeric_unary
    reference = np.abs
    def grad(y, dy, x): return [dy * sign(x)]
    scalar = "abs({0})"


@register_op("sign", ELEMENTWISE)
class Sign:
    """y = -1, 0 or 1; gradient zero."""
    infer = numeric_unary
    reference = np.sign
    def grad(y, dy, x): return [None]
    scalar = "sign({0})"


@register_op("square", ELEMENTWISE)
class Square:
    """y = x * x"""
    infer = numeric_unary
    reference = np.square
    def grad(y, dy, x): return [dy * (2 * x)]
    scalar = "({0} * {0})"


@register_op("exp", ELEMENTWISE)
class Exp:
    """y = e^x"""
    infer = float_unary
    reference = np.exp
    def grad(y, dy, x): return [dy * y]
    scalar = "exp({0})"
    costly = True


@register_op("log", ELEMENTWISE)
class Log:
    """y = ln x (-inf at 0, NaN below)."""
    infer = float_unary
    reference = np.log
    def grad(y, dy, x): return [dy / x]
    scalar = "log({0})"
    costly = True


@register_op("log1p", ELEMENTWISE)
class Log1p:
    """y = ln(1 + x), accurate near 0."""
    infer = float_unary
    reference = np.log1p
    def grad(y, dy, x): return [dy / (1 + x)]
    scalar = "log1p({0})"
    costly = True


@register_op("expm1", ELEMENTWISE)
class Expm1:
    """y = e^x - 1, accurate near 0 (ELU's negative side)."""
    infer = float_unary
    reference = np.expm1
    def grad(y, dy, x): return [dy * exp(x)]      # not y + 1: that is 0 below -17 in float32
    scalar = "expm1({0})"
    costly = True


@register_op("sqrt", ELEMENTWISE)
class Sqrt:
    """y = sqrt(x)"""
    infer = float_unary
    reference = np.sqrt
    def grad(y, dy, x): return [dy * 0.5 / y]
    scalar = "sqrt({0})"


@register_op("rsqrt", ELEMENTWISE)
class Rsqrt:
    """y = 1 / sqrt(x)"""
    infer = float_unary
    def reference(x): return 1 / np.sqrt(x)
    def grad(y, dy, x): return [dy * -0.5 * y * y * y]
    scalar = "rsqrt({0})"


@register_op("tanh", ELEMENTWISE)
class Tanh:
    """y = tanh(x)"""
    infer = float_unary
    reference = np.tanh
    def grad(y, dy, x): return [dy * (1 - y * y)]
    scalar = "tanh({0})"
    costly = True


@register_op("sigmoid", ELEMENTWISE)
class Sigmoid:
    """y = 1 / (1 + e^-x)"""
    infer = float_unary
    def reference(x): return scipy.special.expit(x)
    def grad(y, dy, x): return [dy * y * (1 - y)]
    scalar = "sigmoid({0})"
    costly = True


@register_op("erf", ELEMENTWISE)
class Erf:
    """y = erf(x)"""
    infer = float_unary
    def reference(x): return scipy.special.erf(x)
    def grad(y, dy, x): return [dy * (2 / np.sqrt(np.pi)) * exp(-x * x)]
    scalar = "erf({0})"
    costly = True


@register_op("relu", ELEMENTWISE)
class Relu:
    """y = max(x, 0); gradient 0 at 0, as PyTorch."""
    infer = numeric_unary
    def reference(x): return np.maximum(x, 0)
    def grad(y, dy, x): return [where(x > 0, dy, 0)]
    scalar = "relu({0})"


@register_op("leaky_relu", ELEMENTWISE)
class LeakyRelu:
    """y = x if x > 0 else negative_slope * x"""
    infer = float_unary
    def reference(x, *, negative_slope): return np.where(x > 0, x, x * negative_slope)
    def grad(y, dy, x, *, negative_slope): return [where(x > 0, dy, dy * negative_slope)]
    scalar = "leaky_relu({0}, {negative_slope})"


@register_op("gelu", ELEMENTWISE)
class Gelu:
    """y = x * Phi(x) (approximate="none") or its tanh approximation ("tanh")."""
    infer = float_unary

    # the tanh form as x * sigmoid(2 z): (1 + tanh z) / 2 = sigmoid(2 z) without the
    # cancellation of 1 + tanh z (float32 gave 0 for x <= -5, where y is -2.2e-7)

    def reference(x, *, approximate):
        if approximate == "tanh":
            inner = SQRT_2_OVER_PI * (x + GELU_TANH_COEF * x ** 3)
            return x * scipy.special.expit(2 * inner)
        return 0.5 * x * (1 + scipy.special.erf(x * INV_SQRT_2))

    def grad(y, dy, x, *, approximate):
        if approximate == "tanh":
            s = sigmoid(2 * SQRT_2_OVER_PI * (x + GELU_TANH_COEF * x * x * x))  # y's, shared
            slope = SQRT_2_OVER_PI * (1 + 3 * GELU_TANH_COEF * x * x)
            return [dy * (s + 2 * x * (s * (1 - s)) * slope)]
        cdf = 0.5 * (1 + erf(x * INV_SQRT_2))
        return [dy * (cdf + x * INV_SQRT_2PI * exp(-0.5 * x * x))]

    scalar = "gelu_{approximate}({0})"
    costly = True


@register_op("softplus", ELEMENTWISE)
class Softplus:
    """y = log(1 + e^(beta x)) / beta, linear where beta x > threshold (as PyTorch)."""
    infer = float_unary

    def reference(x, *, beta, threshold):
        z = beta * x
        smooth = (np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))) / beta
        return np.where(z > threshold, x, smooth)

    def grad(y, dy, x, *, beta, threshold):
        return [where(x * beta > threshold, dy, dy * sigmoid(x * beta))]

    scalar = "softplus({0}, {beta}, {threshold})"
    costly = True


@register_op("stop_gradient", ELEMENTWISE)
class StopGradient:
    """y = x; no gradient flows through."""
    infer = same_as_input
    def reference(x): return x
    def grad(y, dy, x): return [None]
    scalar = "{0}"


@register_op("cast", ELEMENTWISE)
class Cast:
    """y = x converted to `dtype` (NumPy's astype)."""
    def infer(x, *, dtype): return x.shape, dtype
    def reference(x, *, dtype): return x.astype(dtype)

    def grad(y, dy, x, *, dtype):
        return [cast(dy, x.dtype) if dtypes.is_float(x.dtype) else None]

    scalar = "{dtype}({0})"


# -- binary -------------------------------------------------------------------------

@register_op("add", ELEMENTWISE)
class Add:
    """y = a + b"""
    infer = arithmetic
    reference = np.add
    def grad(y, dy, a, b): return [dy, dy]
    scalar = "({0} + {1})"


@register_op("subtract", ELEMENTWISE)
class Subtract:
    """y = a - b"""
    infer = non_bool_arithmetic
    reference = np.subtract
    def grad(y, dy, a, b): return [dy, -dy]
    scalar = "({0} - {1})"


@register_op("multiply", ELEMENTWISE)
class Multiply:
    """y = a * b"""
    infer = arithmetic
    reference = np.multiply
    def grad(y, dy, a, b): return [dy * b, dy * a]
    scalar = "({0} * {1})"


@register_op("divide", ELEMENTWISE)
class Divide:
    """y = a / b (true division: integers give float32)."""
    def infer(a, b):
        shape, dtype = arithmetic(a, b)
        return shape, dtype if dtypes.is_float(dtype) else dtypes.DEFAULT_FLOAT
    reference = np.true_divide
    def grad(y, dy, a, b): return [dy / b, -dy * y / b]
    scalar = "({0} / {1})"


def integer_power(a, b):
    """Power's scalar for two integers, as the compiled kernels compute it: a negative
    exponent truncates as the reference's does (Numba's own gives INT_MIN for 0)."""
    if b >= 0:
        return a ** b
    if a == 1:
        return a
    if a == -1:
        return a if b & 1 else -a
    return a - a


@register_op("power", ELEMENTWISE)
class Power:
    """y = a ** b; the exponent's gradient is taken as 0 where a <= 0, the base's as 0
    where b == 0 (also at a == 0, as PyTorch's). Integers to a
    negative power truncate as PyTorch's do (1 ** -n = 1, (-1) ** -n = +-1, else 0);
    a negative constant integer exponent is refused when the graph is built."""
    def infer(a, b):
        shape, dtype = arithmetic(a, b)
        exponent = constant_value(b)
        if dtypes.is_int(dtype) and exponent is not None and (exponent < 0).any():
            raise DtypeError(f"integer base ({a.dtype}, shape {format_shape(a.shape)}) to the "
                             f"negative exponent {exponent.min()}: the result is not an "
                             "integer; cast the base to a float dtype first")
        return shape, dtype

    def reference(a, b):
        if not dtypes.is_int(np.result_type(a, b)) or (b >= 0).all():
            return np.power(a, b)
        inverse = np.where(a == -1, 1 - 2 * (b & 1), a == 1)      # a ** b for b < 0
        return np.where(b < 0, inverse, np.power(a, np.maximum(b, 0)))

    def grad(y, dy, a, b):
        safe_log = log(where(a > 0, a, 1))
        da = b * a ** (b - 1)
        exponent = constant_value(b.node)
        if exponent is None or (exponent == 0).any():       # 0 * 0 ** -1 is NaN: as
            da = where(b == 0, 0, da)                       # PyTorch, d(a ** 0) = 0
        return [dy * da, dy * y * safe_log]

    scalar = "power({0}, {1})"
    costly = True


@register_op("maximum", ELEMENTWISE)
class Maximum:
    """y = max(a, b); ties send the gradient to a."""
    infer = arithmetic
    reference = np.maximum
    def grad(y, dy, a, b): return [where(a >= b, dy, 0), where(a >= b, 0, dy)]
    scalar = "maximum({0}, {1})"


@register_op("minimum", ELEMENTWISE)
class Minimum:
    """y = min(a, b); ties send the gradient to a."""
    infer = arithmetic
    reference = np.minimum
    def grad(y, dy, a, b): return [where(a <= b, dy, 0), where(a <= b, 0, dy)]
    scalar = "minimum({0}, {1})"


def _comparison(name, ufunc, symbol, truth=False):
    """A bool-valued binary op; `truth` compares the operands' truth values (logical ops)."""
    operands = ("bool({0})", "bool({1})") if truth else ("{0}", "{1}")
    definition = type(name, (), {
        "__doc__": f"y = a {symbol} b (bool)",
        "infer": staticmethod(comparison),
        "reference": staticmethod(ufunc),
        "scalar": f"({operands[0]} {symbol} {operands[1]})",
    })
    return register_op(name, ELEMENTWISE)(definition)


Equal = _comparison("equal", np.equal, "==")
NotEqual = _comparison("not_equal", np.not_equal, "!=")
Less = _comparison("less", np.less, "<")
LessEqual = _comparison("less_equal", np.less_equal, "<=")
Greater = _comparison("greater", np.greater, ">")
GreaterEqual = _comparison("greater_equal", np.greater_equal, ">=")
LogicalAnd = _comparison("logical_and", np.logical_and, "&", truth=True)
LogicalOr = _comparison("logical_or", np.logical_or, "|", truth=True)
LogicalXor = _comparison("logical_xor", np.logical_xor, "!=", truth=True)


@register_op("logical_not", ELEMENTWISE)
class LogicalNot:
    """y = not x (bool)"""
    def infer(x): return x.shape, dtypes.bool_
    reference = np.logical_not
    scalar = "(not {0})"


@register_op("where", ELEMENTWISE)
class Where:
    """y = a where cond else b, with broadcasting of all three."""
    def infer(cond, a, b):
        if not dtypes.is_bool(cond.dtype):
            raise DtypeError(f"condition must be bool, got {cond.dtype} (compare it first)")
        return broadcast_shapes(cond.shape, a.shape, b.shape), dtypes.promote(a.dtype, b.dtype)
    reference = np.where
    def grad(y, dy, cond, a, b): return [None, where(cond, dy, 0), where(cond, 0, dy)]
    scalar = "where({0}, {1}, {2})"


# -- public functions -----------------------------------------------------------------

def _unary(name):
    def function(x):
        return apply(name, x)
    function.__name__ = name
    function.__doc__ = f"Elementwise {name} (see gc.ops.OPS['{name}'])."
    return function


negative, abs, sign, square = (_unary(n) for n in ("negative", "abs", "sign", "square"))
exp, expm1, log, log1p, sqrt, rsqrt = (
    _unary(n) for n in ("exp", "expm1", "log", "log1p", "sqrt", "rsqrt"))
tanh, sigmoid, erf, relu = (_unary(n) for n in ("tanh", "sigmoid", "erf", "relu"))
stop_gradient, logical_not = _unary("stop_gradient"), _unary("logical_not")
absolute = abs


def _binary(name):
    def function(x1, x2):
        return apply(name, x1, x2)
    function.__name__ = name
    function.__doc__ = f"Elementwise {name} with NumPy broadcasting."
    return function


add, subtract, multiply, divide, power = (
    _binary(n) for n in ("add", "subtract", "multiply", "divide", "power"))
maximum, minimum = _binary("maximum"), _binary("minimum")
equal, not_equal, less, less_equal, greater, greater_equal = (
    _binary(n) for n in ("equal", "not_equal", "less", "less_equal", "greater", "greater_equal"))
logical_and, logical_or, logical_xor = (
    _binary(n) for n in ("logical_and", "logical_or", "logical_xor"))
true_divide = divide


def where(condition, x, y):
    return apply("where", condition, x, y)


@blamed_on("cast")
def cast(x, dtype):
    dtype = dtypes.as_dtype(dtype)
    if hasattr(x, "dtype") and x.dtype == dtype:
        return x
    return apply("cast", x, dtype=dtype)


@blamed_on("leaky_relu")
def leaky_relu(x, negative_slope=0.01):
    return apply("leaky_relu", x, negative_slope=real_number(negative_slope, "negative_slope"))


@blamed_on("gelu")
def gelu(x, approximate="none"):
    if approximate not in ("none", "tanh"):
        raise ArgumentError(f"approximate must be 'none' or 'tanh', got {approximate!r}")
    return apply("gelu", x, approximate=approximate)


@blamed_on("softplus")
def softplus(x, beta=1.0, threshold=20.0):
    return apply("softplus", x, beta=real_number(beta, "beta"),
                 threshold=real_number(threshold, "threshold"))


def clip(x, a_min, a_max):
    """NumPy's clip, as maximum then minimum; a bound of None is no bound."""
    if a_min is not None:
        x = maximum(x, a_min)
    return x if a_max is None else minimum(x, a_max)
