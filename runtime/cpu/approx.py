"""Vectorizable float32 approximations of exp, log, tanh, sigmoid and erf.

The PyPI llvmlite has no SVML, so a loop calling `np.exp`/`np.tanh` on
float32 stays scalar (one libm call per element). The functions here contain
no calls and no data-dependent control flow that survives LLVM's
if-conversion: every special case is a select, so a plain

    @numba.njit(fastmath=SAFE_FASTMATH)
    def kernel(x, out):
        for i in range(x.shape[0]):
            out[i] = exp_f32(x[i])

becomes a 512/256-bit vector loop.

What a caller (the CPU code generator) must know:

- Arguments and results are float32. Pass float32 values (array elements,
  `np.float32(...)` constants); any other number is converted to float32
  first. Keep float64 kernels on libm (`np.exp` etc.).
- The functions are cached njit functions with their own flags
  (SAFE_FASTMATH), inlined into a caller by LLVM when it links them (Numba
  keeps a cached function's IR for linking): the loop above still
  vectorizes, and a process compiling new kernels loads them from the cache
  rather than compiling them. As `inline="always"` functions, inlined at the
  Numba-IR level, every process that lowered a kernel compiled them again
  (W3's cold first step 1.87-1.90 s, now 1.56-1.71). They are correct with
  SAFE_FASTMATH and with no fast-math at all, but never with `nnan`/`ninf`
  (the NaN and Inf selects would be folded away). The error-critical steps (range reduction,
  polynomials, exponent scaling) go through LLVM intrinsics (`llvm.fma`,
  `llvm.rint`) and integer bit operations that fast-math reassociation
  cannot reorder, so the accuracy does not depend on the caller's flags.
- Divisions go through `_div` (a plain LLVM fdiv): Python's `/` in njit
  code adds a zero-divisor check that raises, and that exception exit stops
  the loop vectorizer (unless the caller has error_model="numpy").
- `llvm.fma` is one instruction on any x86 CPU with FMA (all AVX2/AVX-512
  machines); on a CPU without it, it becomes a (slow, exact) libm `fmaf` call.

The errors quoted in each docstring are maximum relative errors against
float64 NumPy/SciPy (libm) on the same float32 inputs, over every float32
of the stated range (results below FLT_MIN count their error relative to
FLT_MIN, the precision a subnormal has); tests/runtime/test_approx.py
re-measures them on a subsample (every 7th to 13th float32) on every run. The
polynomial and rational coefficients are minimax fits in relative error
(Chebyshev-basis linear programming, Loeb iteration), rounded to float32.
"""
import numpy as np
import numba
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

__all__ = ["SAFE_FASTMATH", "exp_f32", "log_f32", "tanh_f32", "sigmoid_f32", "erf_f32"]

# Fast-math flags that keep NaN and Inf semantics: never nnan/ninf (isnan would fold to
# False), and not afn either (it let LLVM turn (-inf) ** 1.5 into NaN). Not arcp: a
# value a kernel computes again in a later pass over a row (max's gradient compares it
# with the row's max) must round the same way, and arcp let LLVM turn x / y into
# x * (1 / y) in one loop and not in another (max's gradient was 0 for 29% of inputs).
SAFE_FASTMATH = {"contract", "reassoc", "nsz"}

_F32 = ir.FloatType()
_I32 = ir.IntType(32)
_f32 = np.float32


# -- LLVM-level helpers (emitted inline; all of them vectorize) --------------

@intrinsic
def _fma(typingctx, a, b, c):
    """a * b + c with one rounding (llvm.fma.f32)."""
    if a == b == c == types.float32:
        def codegen(context, builder, sig, args):
            return builder.fma(*args)
        return types.float32(types.float32, types.float32, types.float32), codegen
    return None


@intrinsic
def _div(typingctx, a, b):
    """a / b as a plain IEEE division (Python's `/` in njit code checks for a
    zero divisor and raises, unless the caller has error_model="numpy")."""
    if a == b == types.float32:
        def codegen(context, builder, sig, args):
            return builder.fdiv(*args)
        return types.float32(types.float32, types.float32), codegen
    return None


@intrinsic
def _rint(typingctx, x):
    """x rounded to the nearest integer, ties to even (llvm.rint.f32)."""
    if x == types.float32:
        def codegen(context, builder, sig, args):
            fn = builder.module.declare_intrinsic("llvm.rint", [_F32])
            return builder.call(fn, args)
        return types.float32(types.float32), codegen
    return None


@intrinsic
def _ldexp(typingctx, p, n):
    """p * 2**n for p in [0.5, 2] and an integral float n in [-150, 128].

    n = n1 + n2 with n1 = n >> 1: n1 goes into p's exponent bits (p * 2**n1
    stays normal), n2 into a power of two, and a single multiplication makes
    the result, so overflow to inf and gradual underflow round correctly and
    no reassociation can split the scaling into an overflowing 2**n.
    """
    if p == n == types.float32:
        def codegen(context, builder, sig, args):
            p, n = args
            k = builder.fptosi(n, _I32)
            k1 = builder.ashr(k, ir.Constant(_I32, 1))
            k2 = builder.sub(k, k1)
            pbits = builder.bitcast(p, _I32)
            y = builder.bitcast(builder.add(pbits, builder.shl(k1, ir.Constant(_I32, 23))), _F32)
            s = builder.bitcast(builder.shl(builder.add(k2, ir.Constant(_I32, 127)),
                                            ir.Constant(_I32, 23)), _F32)
            return builder.fmul(y, s)
        return types.float32(types.float32, types.float32), codegen
    return None


@intrinsic
def _log_split(typingctx, x):
    """(m, e) with x = m * 2**e, m in [sqrt(1/2), sqrt(2)), for normal x > 0."""
    if x == types.float32:
        retty = types.UniTuple(types.float32, 2)

        def codegen(context, builder, sig, args):
            bits = builder.bitcast(args[0], _I32)
            off = ir.Constant(_I32, 0x3F3504F3)            # bits of sqrt(1/2)
            ix = builder.sub(bits, off)
            k = builder.ashr(ix, ir.Constant(_I32, 23))
            mbits = builder.add(builder.and_(ix, ir.Constant(_I32, 0x007FFFFF)), off)
            m = builder.bitcast(mbits, _F32)
            e = builder.sitofp(k, _F32)
            return context.make_tuple(builder, sig.return_type, [m, e])
        return retty(types.float32), codegen
    return None


# -- constants ----------------------------------------------------------------

_ZERO = _f32(0.0)
_ONE = _f32(1.0)
_TWO = _f32(2.0)
_HALF = _f32(0.5)
_INF = _f32(np.inf)
_NAN = _f32(np.nan)

# exp
_EXP_HI = _f32(89.0)      # exp(89) > FLT_MAX: overflows to inf in _ldexp
_EXP_LO = _f32(-104.0)    # exp(-104) < FLT_TRUE_MIN / 2: rounds to 0 in _ldexp
_LOG2E = _f32(1.4426950408889634)
_NEG_LN2_HI = _f32(-0.6931471805599453)
_NEG_LN2_LO = _f32(-(0.6931471805599453 - float(_f32(0.6931471805599453))))
# e**r = 1 + r + r**2 * q(r) on |r| <= ln2/2; fit error 3.1e-9
_E2 = _f32(0.4999999344721656)
_E3 = _f32(0.16666520632056642)
_E4 = _f32(0.041668388078016295)
_E5 = _f32(0.008368716814489198)
_E6 = _f32(0.001381460081624485)

# log
_FLT_MIN = _f32(1.1754943508222875e-38)
_TWO23 = _f32(8388608.0)
_LN2_HI = _f32(0.6931471805599453)
_LN2_LO = _f32(0.6931471805599453 - float(_f32(0.6931471805599453)))
# log1p(f) = f - f*f/2 + s * (f*f/2 + z * l(z)), s = f / (2 + f), z = s*s,
# |s| <= 0.1716; fit error (relative to log1p) 8.1e-10
_L1 = _f32(0.6666677644751186)
_L2 = _f32(0.3997753240746282)
_L3 = _f32(0.29871997388342514)

# tanh(x) = x * P(x*x) / Q(x*x) on |x| <= 9; fit error 2.1e-8
_TANH_SAT = _f32(9.0)
_TP0 = _f32(0.9999999794482975)
_TP1 = _f32(0.133810253407167)
_TP2 = _f32(0.003495587810637295)
_TP3 = _f32(2.060907830256242e-05)
_TP4 = _f32(1.3354657739830804e-08)
_TQ1 = _f32(0.4671434093128228)
_TQ2 = _f32(0.02587698090028116)
_TQ3 = _f32(0.0003285634355586456)
_TQ4 = _f32(7.776556402961977e-07)

# erf(x) = x * P(x*x) / Q(x*x) on |x| <= 4; fit error 2.5e-8
_ERF_SAT = _f32(4.0)      # erf(4) = 1 - 1.5e-8 rounds to 1.0f
_RP0 = _f32(1.1283791392966767)
_RP1 = _f32(0.19354587401447831)
_RP2 = _f32(0.053101859988932396)
_RP3 = _f32(0.0038833815361840754)
_RP4 = _f32(0.0002845672214474491)
_RP5 = _f32(1.9867818981398332e-06)
_RQ1 = _f32(0.5048581201577751)
_RQ2 = _f32(0.11535034214927573)
_RQ3 = _f32(0.015207324715432255)
_RQ4 = _f32(0.001185581203423617)
_RQ5 = _f32(3.742024027857406e-05)


# -- the approximations ---------------------------------------------------------

@numba.njit(cache=True, fastmath=SAFE_FASTMATH)
def exp_f32(x):
    """e**x in float32.

    Cody-Waite reduction x = n*ln2 + r (n = rint(x/ln2), r by two fmas), a
    degree-6 polynomial for e**r, and 2**n applied through the exponent bits.
    x is clamped to [-104, 89] first, so exp(x > 88.7228) = inf (IEEE
    overflow), exp(x < -103.97) = 0, results below FLT_MIN are correctly
    rounded subnormals (to within the polynomial's error), exp(+-inf) =
    inf / 0 and exp(nan) = nan.
    Measured max relative error over every float32 in [-87, 88]: 8.5e-8.
    """
    x = _f32(x)
    xc = x if x > _EXP_LO else _EXP_LO
    xc = xc if xc < _EXP_HI else _EXP_HI
    n = _rint(xc * _LOG2E)
    r = _fma(n, _NEG_LN2_HI, xc)
    r = _fma(n, _NEG_LN2_LO, r)
    q = _fma(_E6, r, _E5)
    q = _fma(q, r, _E4)
    q = _fma(q, r, _E3)
    q = _fma(q, r, _E2)
    p = _fma(q, r * r, r) + _ONE
    res = _ldexp(p, n)
    return x if x != x else res


@numba.njit(cache=True, fastmath=SAFE_FASTMATH)
def log_f32(x):
    """Natural logarithm in float32.

    x = 2**e * m with m in [sqrt(1/2), sqrt(2)) from the bits; log(m) =
    log1p(f), f = m - 1, from s = f / (2 + f) and a degree-3 polynomial in
    s*s (fdlibm's arrangement); then e*ln2 added by two fmas. Subnormal x is
    scaled by 2**23 first, so it is as accurate as normal x.
    log(0) = -inf, log(x < 0) = nan, log(inf) = inf, log(nan) = nan.
    Measured max relative error over every float32 in (0, 1e30], subnormals
    included: 1.24e-7.
    """
    x = _f32(x)
    tiny = x < _FLT_MIN
    xs = x * _TWO23
    xs = xs if tiny else x
    m, e = _log_split(xs)
    e = e - _f32(23.0) if tiny else e
    f = m - _ONE
    s = _div(f, _TWO + f)
    z = s * s
    rz = z * _fma(_fma(_L3, z, _L2), z, _L1)
    hf = _HALF * f * f
    lm = _fma(s, hf + rz, f - hf)
    res = _fma(e, _LN2_HI, _fma(e, _LN2_LO, lm))
    res = _NAN if x < _ZERO else res
    res = -_INF if x == _ZERO else res
    res = _INF if x == _INF else res
    return x if x != x else res


@numba.njit(cache=True, fastmath=SAFE_FASTMATH)
def tanh_f32(x):
    """Hyperbolic tangent in float32.

    x * P(x*x) / Q(x*x) with degree-4 P and Q (all coefficients positive, so
    the float32 Horner sums do not cancel), on x clamped to [-9, 9], the
    result clamped to [-1, 1], and an explicit +-1 for |x| >= 9 (tanh(9)
    rounds to 1 - 2**-24 in float32; without the saturation the derivative
    1 - tanh**2 of large inputs is badly wrong). tanh(+-inf) = +-1,
    tanh(nan) = nan. Odd bit for bit: tanh(-x) == -tanh(x).
    Measured max relative error over every float32 in [-10, 10]: 3.3e-7
    (largest near |x| = 8.5, where the float32 Horner sums and the division
    each round). Not monotone at the ulp level: consecutive inputs can step
    back by the evaluation error (a few ulp), though never by more than the
    error bound allows.
    """
    x = _f32(x)
    xc = x if x > -_TANH_SAT else -_TANH_SAT
    xc = xc if xc < _TANH_SAT else _TANH_SAT
    t = xc * xc
    p = _fma(_fma(_fma(_fma(_TP4, t, _TP3), t, _TP2), t, _TP1), t, _TP0)
    q = _fma(_fma(_fma(_fma(_TQ4, t, _TQ3), t, _TQ2), t, _TQ1), t, _ONE)
    res = _div(xc * p, q)
    res = res if res < _ONE else _ONE
    res = res if res > -_ONE else -_ONE
    res = _ONE if x >= _TANH_SAT else res
    res = -_ONE if x <= -_TANH_SAT else res
    return x if x != x else res


@numba.njit(cache=True, fastmath=SAFE_FASTMATH)
def sigmoid_f32(x):
    """Logistic sigmoid 1 / (1 + e**-x) in float32, through exp_f32.

    Relative error stays small for large negative x (no 1 - y cancellation);
    sigmoid(x) = 0 once e**-x overflows (x < -88.72, where the true value is
    below FLT_MIN), sigmoid(+inf) = 1, sigmoid(-inf) = 0, sigmoid(nan) = nan.
    Measured max relative error over every float32 in [-30, 30]: 1.5e-7.
    """
    x = _f32(x)
    return _div(_ONE, _ONE + exp_f32(-x))


@numba.njit(cache=True, fastmath=SAFE_FASTMATH)
def erf_f32(x):
    """Error function in float32.

    x * P(x*x) / Q(x*x) with degree-5 P and Q (all coefficients positive) on x
    clamped to [-4, 4], the result clamped to [-1, 1] and an explicit +-1 for
    |x| >= 4 (erf(4) rounds to 1.0f). erf(+-inf) = +-1, erf(nan) = nan; the
    error is relative down to x = 0 (erf(x) ~ 2x/sqrt(pi)). Odd bit for bit.
    Measured max relative error over every float32 in [-6, 6]: 3.5e-7. Like
    tanh_f32, not monotone at the ulp level.
    """
    x = _f32(x)
    xc = x if x > -_ERF_SAT else -_ERF_SAT
    xc = xc if xc < _ERF_SAT else _ERF_SAT
    t = xc * xc
    p = _fma(_fma(_fma(_fma(_fma(_RP5, t, _RP4), t, _RP3), t, _RP2), t, _RP1), t, _RP0)
    q = _fma(_fma(_fma(_fma(_fma(_RQ5, t, _RQ4), t, _RQ3), t, _RQ2), t, _RQ1), t, _ONE)
    res = _div(xc * p, q)
    res = res if res < _ONE else _ONE
    res = res if res > -_ONE else -_ONE
    res = _ONE if x >= _ERF_SAT else res
    res = -_ONE if x <= -_ERF_SAT else res
    return x if x != x else res
