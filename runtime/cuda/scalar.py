"""The scalar functions that generated CUDA kernels call, one per name used in
the ops' `scalar` templates (graphc/ops/elementwise.py), as in
runtime/cpu/scalar.py: the source reads `exp(v3)` on both devices.

Each name is a plain Python function over NumPy scalars (what the CUDA
simulator runs: float32 stays float32) and, on a real GPU, has a numba.cuda
`overload` typed by its argument, so constants take the argument's dtype and
float32 math stays float32 (math.exp on float32 is libdevice's expf). NaN
propagates as in NumPy (maximum(nan, 1) is nan).
"""
import math

import numpy as np

from graphc.ops.elementwise import integer_power
from graphc.runtime.cuda.device import simulated

NAMES = ["exp", "expm1", "log", "tanh", "erf", "log1p", "sqrt", "rsqrt", "sigmoid", "relu",
         "maximum", "minimum", "sign", "where", "leaky_relu", "gelu_none", "gelu_tanh",
         "softplus", "power"]
__all__ = NAMES


def _of(x, value):
    """`value` in x's type (a NumPy scalar type in the simulator)."""
    return type(x)(value)


# -- Python versions (the simulator; NumPy scalars keep their dtype) ----------------------

def exp(x): return np.exp(x)
def expm1(x): return np.expm1(x)
def log(x): return np.log(x)
def tanh(x): return np.tanh(x)
def log1p(x): return np.log1p(x)
def sqrt(x): return np.sqrt(x)
def erf(x): return _of(x, math.erf(x))
def rsqrt(x): return _of(x, 1) / np.sqrt(x)
def relu(x): return _of(x, 0) if x <= 0 else x
def maximum(a, b): return a if (a >= b or a != a) else b
def minimum(a, b): return a if (a <= b or a != a) else b
def where(c, a, b): return a if c else b
def leaky_relu(x, slope): return x if x > 0 else x * slope


def power(a, b):
    """a ** b; integers to a negative power truncate (graphc.ops.elementwise.integer_power)."""
    if isinstance(a, np.integer) and isinstance(b, np.integer):
        return integer_power(a, b)
    return a ** b


def sigmoid(x):
    one = _of(x, 1)
    if x >= 0:
        return one / (one + np.exp(-x))
    z = np.exp(x)
    return z / (one + z)


def sign(x):
    one, zero = _of(x, 1), _of(x, 0)
    return one if x > 0 else (-one if x < 0 else (zero if x == 0 else x))


def gelu_none(x):
    return _of(x, 0.5) * x * (_of(x, 1) + erf(x * _of(x, 1 / math.sqrt(2))))


def gelu_tanh(x):
    c2, k = _of(x, 2 * math.sqrt(2 / math.pi)), _of(x, 0.044715)
    return x * sigmoid(c2 * (x + k * x * x * x))             # = x (1 + tanh z) / 2


def softplus(x, beta, threshold):
    z = beta * x
    if z > threshold:
        return x
    return (maximum(z, _of(z, 0)) + np.log1p(np.exp(-abs(z)))) / beta


# -- numba.cuda versions (a real GPU) ---------------------------------------------------

def _register_overloads():
    try:
        from numba.cuda.extending import overload as _overload    # numba-cuda
        target = {}
    except ImportError:                                     # pragma: no cover (Numba's built-in)
        from numba.extending import overload as _overload
        target = {"target": "cuda"}

    def overload(func):
        # inlined into the kernel (Numba IR): no device function to compile apart, which
        # also lets compile_ptx build a kernel without a GPU (runtime/cuda/ptx.py)
        return _overload(func, inline="always", **target)
    from numba.np.numpy_support import as_dtype

    def const(numba_type, value):
        return as_dtype(numba_type).type(value)

    @overload(exp)
    def _exp(x): return lambda x: math.exp(x)

    @overload(expm1)
    def _expm1(x): return lambda x: math.expm1(x)

    @overload(log)
    def _log(x): return lambda x: math.log(x)

    @overload(tanh)
    def _tanh(x): return lambda x: math.tanh(x)

    @overload(log1p)
    def _log1p(x): return lambda x: math.log1p(x)

    @overload(sqrt)
    def _sqrt(x): return lambda x: math.sqrt(x)

    @overload(erf)
    def _erf(x): return lambda x: math.erf(x)

    @overload(maximum)
    def _maximum(a, b):
        def impl(a, b):
            if a != a or a >= b:
                return a
            return b
        return impl

    @overload(minimum)
    def _minimum(a, b):
        def impl(a, b):
            if a != a or a <= b:
                return a
            return b
        return impl

    @overload(where)
    def _where(c, a, b): return lambda c, a, b: a if c else b

    @overload(power)
    def _power(a, b):
        from numba import types
        if isinstance(a, types.Integer) and isinstance(b, types.Integer):
            return integer_power
        return lambda a, b: a ** b

    @overload(leaky_relu)
    def _leaky_relu(x, slope): return lambda x, slope: x if x > 0 else x * slope

    @overload(rsqrt)
    def _rsqrt(x):
        one = const(x, 1)
        return lambda x: one / math.sqrt(x)

    @overload(relu)
    def _relu(x):
        zero = const(x, 0)
        return lambda x: zero if x <= zero else x

    @overload(sigmoid)
    def _sigmoid(x):
        one = const(x, 1)

        def impl(x):
            if x >= 0:
                return one / (one + math.exp(-x))
            z = math.exp(x)
            return z / (one + z)
        return impl

    @overload(sign)
    def _sign(x):
        one, zero = const(x, 1), const(x, 0)
        return lambda x: one if x > zero else (-one if x < zero else (zero if x == zero else x))

    @overload(gelu_none)
    def _gelu_none(x):
        half, one, r2 = const(x, 0.5), const(x, 1), const(x, 1 / math.sqrt(2))
        return lambda x: half * x * (one + math.erf(x * r2))

    @overload(gelu_tanh)
    def _gelu_tanh(x):
        c2, k = const(x, 2 * math.sqrt(2 / math.pi)), const(x, 0.044715)
        return lambda x: x * sigmoid(c2 * (x + k * x * x * x))

    @overload(softplus)
    def _softplus(x, beta, threshold):
        zero = const(x, 0)

        def impl(x, beta, threshold):
            z = beta * x
            if z > threshold:
                return x
            return (max(z, zero) + math.log1p(math.exp(-abs(z)))) / beta
        return impl


if not simulated():
    _register_overloads()
