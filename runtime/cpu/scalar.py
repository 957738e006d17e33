"""The scalar functions that generated CPU kernels call, one per name used in
the ops' `scalar` templates (graphc/ops/elementwise.py).

Each is a plain Python function with a Numba `overload`, so the generated
source reads `exp(v3)` and Numba picks the implementation for v3's type at
compile time: a vectorizable float32 approximation where one exists
(runtime/cpu/approx.py), the exact libm call for float64. NaN propagates as
in NumPy (maximum(nan, 1) is nan).
"""
import math

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, overload
from numba.np.numpy_support import as_dtype

from graphc.ops.elementwise import integer_power

try:                                    # the float32 approximations, when present
    from graphc.runtime.cpu import approx as _approx
except ImportError:                     # pragma: no cover
    _approx = None

_F32_APPROX = {"exp": "exp_f32", "log": "log_f32", "tanh": "tanh_f32",
               "sigmoid": "sigmoid_f32", "erf": "erf_f32"}


def _stub(name):
    def function(*args):
        raise NotImplementedError(f"{name} is only callable from generated Numba code")
    function.__name__ = name
    return function


def _is_f32(x):
    return x == types.float32


# -- transcendentals: approximation for float32, libm for float64 ------------------------

def _sigmoid64(x):
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


_EXACT = {"exp": math.exp, "expm1": math.expm1, "log": math.log, "tanh": math.tanh, "erf": math.erf,
          "log1p": math.log1p, "sqrt": math.sqrt, "sigmoid": None}

exp, expm1, log, tanh, erf, log1p, sqrt, sigmoid = (
    _stub(n) for n in ("exp", "expm1", "log", "tanh", "erf", "log1p", "sqrt", "sigmoid"))


def _register_transcendental(stub, name):
    exact = _EXACT[name]

    @overload(stub)
    def impl(x):
        fast = getattr(_approx, _F32_APPROX.get(name, ""), None) if _approx else None
        if _is_f32(x) and fast is not None:
            return lambda x: fast(x)
        if name == "sigmoid":
            from numba import njit
            sig = njit(inline="always")(_sigmoid64)
            return lambda x: sig(x)
        if name == "log":
            return lambda x: math.log(x) if x > 0 else (-math.inf if x == 0 else math.nan)
        if name == "sqrt":
            return lambda x: math.sqrt(x) if x >= 0 else math.nan
        if name == "log1p":
            return lambda x: math.log1p(x) if x > -1 else (-math.inf if x == -1 else math.nan)
        return lambda x: exact(x)


for _name, _stubfn in (("exp", exp), ("expm1", expm1), ("log", log), ("tanh", tanh),
                       ("erf", erf), ("log1p", log1p), ("sqrt", sqrt), ("sigmoid", sigmoid)):
    _register_transcendental(_stubfn, _name)


# -- elementwise helpers -------------------------------------------------------------------

relu, maximum, minimum, sign, where, rsqrt, power = (
    _stub(n) for n in ("relu", "maximum", "minimum", "sign", "where", "rsqrt", "power"))
leaky_relu, gelu_none, gelu_tanh, softplus = (
    _stub(n) for n in ("leaky_relu", "gelu_none", "gelu_tanh", "softplus"))


def _const(numba_type, value):
    """`value` as a NumPy scalar of the numba type's dtype (so float32 math stays float32)."""
    return as_dtype(numba_type).type(value)


@overload(relu)
def _relu(x):
    zero = _const(x, 0)
    return lambda x: zero if x <= 0 else x


@overload(rsqrt)
def _rsqrt(x):
    one = _const(x, 1)
    return lambda x: one / sqrt(x)


@overload(maximum)
def _maximum(a, b):
    return lambda a, b: a if (a >= b or a != a) else b


@overload(minimum)
def _minimum(a, b):
    return lambda a, b: a if (a <= b or a != a) else b


# -- the combine step of max and min reductions ----------------------------------------

running_max, running_min = _stub("running_max"), _stub("running_min")


def _llvm_extremum(name):
    """llvm.maximum / llvm.minimum on two floats of one type: NaN wins, as in NumPy.
    It is the only NaN-propagating form LLVM vectorizes as a reduction without the
    nnan flag (graphc never sets it): `maximum`'s select made a softmax's row max
    loop scalar, 3.4x slower (360 against 106 us over 8,192 rows of 64; a
    whole-tensor max 12x)."""
    @intrinsic
    def extremum(typingctx, a, b):
        if a != b or not isinstance(a, types.Float):
            return None

        def codegen(context, builder, signature, args):
            kind = args[0].type
            fn = builder.module.declare_intrinsic(name, [kind],
                                                  ir.FunctionType(kind, [kind, kind]))
            return builder.call(fn, args)
        return a(a, b), codegen
    return extremum


_LLVM_MAXIMUM, _LLVM_MINIMUM = _llvm_extremum("llvm.maximum"), _llvm_extremum("llvm.minimum")


@overload(running_max)
def _running_max(acc, value):
    if isinstance(acc, types.Float) and acc == value:
        return lambda acc, value: _LLVM_MAXIMUM(acc, value)
    return lambda acc, value: acc if acc >= value else value


@overload(running_min)
def _running_min(acc, value):
    if isinstance(acc, types.Float) and acc == value:
        return lambda acc, value: _LLVM_MINIMUM(acc, value)
    return lambda acc, value: acc if acc <= value else value


@overload(power)
def _power(a, b):
    if isinstance(a, types.Integer) and isinstance(b, types.Integer):
        from numba import njit
        exact = njit(inline="always")(integer_power)
        return lambda a, b: exact(a, b)
    return lambda a, b: a ** b


@overload(sign)
def _sign(x):
    one, zero = _const(x, 1), _const(x, 0)
    return lambda x: one if x > 0 else (-one if x < 0 else (zero if x == 0 else x))


@overload(where)
def _where(c, a, b):
    return lambda c, a, b: a if c else b


@overload(leaky_relu)
def _leaky_relu(x, slope):
    return lambda x, slope: x if x > 0 else x * slope


@overload(gelu_none)
def _gelu_none(x):
    half, one, rsqrt2 = _const(x, 0.5), _const(x, 1), _const(x, 1 / math.sqrt(2))
    return lambda x: half * x * (one + erf(x * rsqrt2))


@overload(gelu_tanh)
def _gelu_tanh(x):
    c2, k = _const(x, 2 * math.sqrt(2 / math.pi)), _const(x, 0.044715)
    return lambda x: x * sigmoid(c2 * (x + k * x * x * x))     # = x (1 + tanh z) / 2


@overload(softplus)
def _softplus(x, beta, threshold):
    def impl(x, beta, threshold):
        z = beta * x
        if z > threshold:
            return x
        return (max(z, 0) + log1p(exp(-abs(z)))) / beta
    return impl


@intrinsic
def opaque(typingctx, n):
    """n, as a value LLVM cannot see (an empty inline-asm copy): a loop count that is
    not a compile-time constant. Inside a `prange` body LLVM fully unrolls a small
    constant loop around a vectorized inner loop, and compiling the result grows
    with the product: W2-like kernels over (512, 16, 784) points took 20 s to
    compile and ran no faster (210 against 215 us, paired) than with `opaque(16)`,
    which compiles in 0.7 s."""
    def codegen(context, builder, signature, args):
        fnty = ir.FunctionType(args[0].type, [args[0].type])
        return builder.asm(fnty, "", "=r,0", [args[0]], side_effect=False, name="opaque")
    return n(n), codegen


_FLOAT_BINOPS = ("fadd", "fsub", "fmul", "fdiv", "frem")


@intrinsic
def exact(typingctx, x):
    """x, rounded as written: the float operation computing it keeps only `nsz` of
    the kernel's fastmath flags (Numba's fastmath pass flags only unflagged
    operations), so LLVM cannot reassociate it. codegen.py marks every element value
    that reads a row value: log_softmax's (x - max) - log(sum) was rewritten as
    x - (max + log(sum)), which loses log(sum) against a large max; both operations
    need the mark (LLVM's rewrite checks only the outer one's flags). Unlike
    llvm.arithmetic.fence, it leaves the loop vectorizable."""
    def codegen(context, builder, signature, args):
        operation = args[0]     # (the argument expression's last operation, lowered)
        if isinstance(operation, ir.Instruction) and operation.opname in _FLOAT_BINOPS:
            operation.flags[:] = ["nsz"]
        return args[0]
    return x(x), codegen


def cast_name(dtype):
    """The NumPy constructor that casts a scalar to `dtype` in generated code."""
    return {"bool": "np.bool_"}.get(np.dtype(dtype).name, f"np.{np.dtype(dtype).name}")


NAMES = ["exp", "expm1", "log", "tanh", "erf", "log1p", "sqrt", "rsqrt", "sigmoid", "relu",
         "maximum", "minimum", "sign", "where", "leaky_relu", "gelu_none", "gelu_tanh",
         "softplus", "running_max", "running_min"]
