"""Accuracy, special values and vectorization of the float32 approximations in
graphc.runtime.cpu.approx.

Error metric: |approx - ref| / max(|ref|, FLT_MIN), where ref is the float64
function of the same float32 input. Above FLT_MIN that is the plain relative
error; below it (subnormal results, which carry only absolute precision) the
floor FLT_MIN makes it an absolute error, so a correctly rounded subnormal
counts as at most 6e-8.

The reference is float64 libm (`math.exp` etc., called inside njit so that a
billion-point check takes seconds, not minutes); test_reference_matches_numpy
checks it against NumPy/SciPy float64 on the same kind of inputs.

Sampling, to keep this file well under 60 s on 2 cores: the domains are
walked over their float32 bit patterns with a stride (every 7th float32 for
tanh and erf, every 11th or 13th for the others: 0.75e9 points in all), plus
20M evenly spaced points in [-87, 88] for exp. The
errors quoted in approx.py's docstrings were measured with stride 1 (every
float32 of each domain); each test prints its measured maximum and records it
with pytest's `record_property`.
"""
import functools
import math
import re
from concurrent.futures import ThreadPoolExecutor

import llvmlite.binding as llvm
import numba
import numpy as np
import pytest
import scipy.special

from graphc.runtime.cpu import approx
from graphc.runtime.cpu.approx import SAFE_FASTMATH

FLT_MIN = float(np.finfo(np.float32).tiny)
CHUNK = 1 << 20

# name -> (accuracy bound of the issue, float64 reference usable inside njit)


@numba.njit(inline="always")
def _sigmoid64(x):
    return 1.0 / (1.0 + math.exp(-x))


FUNCS = {
    "exp": (5e-7, math.exp),
    "log": (1e-6, math.log),
    "tanh": (5e-7, math.tanh),
    "sigmoid": (5e-7, _sigmoid64),
    "erf": (1e-6, math.erf),
}
NUMPY_REF = {
    "exp": np.exp, "log": np.log, "tanh": np.tanh, "erf": scipy.special.erf,
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
}


def approx_fn(name):
    return getattr(approx, f"{name}_f32")


@functools.lru_cache(maxsize=None)
def loop_kernel(name, fastmath=True):
    """The loop the code generator emits: out[i] = f(x[i]) over float32."""
    fn = approx_fn(name)

    @numba.njit(fastmath=SAFE_FASTMATH if fastmath else False, nogil=True)
    def kernel(x, out):
        for i in range(x.shape[0]):
            out[i] = fn(x[i])
    return kernel


@functools.lru_cache(maxsize=None)
def error_kernel(name):
    ref = FUNCS[name][1]

    @numba.njit(nogil=True)
    def kernel(x, out):
        worst, at = 0.0, 0
        for i in range(x.shape[0]):
            r = ref(np.float64(x[i]))
            err = abs(np.float64(out[i]) - r) / max(abs(r), FLT_MIN)
            if err > worst or err != err:        # a NaN error is the worst
                worst, at = err, i
        return worst, at
    return kernel


def run(name, x, fastmath=True):
    out = np.empty_like(x)
    loop_kernel(name, fastmath)(x, out)
    return out


def bits(v):
    return int(np.float32(v).view(np.int32))


def _bit_chunk(start, stop, stride, negate):
    x = np.arange(start, stop, stride, dtype=np.int32).view(np.float32)
    return -x if negate else x


def bit_pattern_chunks(lo, hi, stride, offset=0, negate=False):
    """Every `stride`-th float32 in [lo, hi] (0 <= lo <= hi) by bit pattern,
    as functions making one chunk each (so that only the chunks in flight
    are in memory)."""
    lo_bits, hi_bits = bits(lo) + offset, bits(hi)
    for start in range(lo_bits, hi_bits + 1, CHUNK * stride):
        stop = min(start + CHUNK * stride, hi_bits + 1)
        yield functools.partial(_bit_chunk, start, stop, stride, negate)


def _linspace_chunk(lo, hi, n, start):
    idx = np.arange(start, min(start + CHUNK, n), dtype=np.float64)
    return (lo + (hi - lo) * idx / (n - 1)).astype(np.float32)


def linspace_chunks(lo, hi, n):
    for start in range(0, n, CHUNK):
        yield functools.partial(_linspace_chunk, lo, hi, n, start)


def _worse(err, worst):
    """err > worst, NaN being the worst of all."""
    return err != err or (worst == worst and err > worst)


def max_error(name, chunks, fastmath=True):
    """(max error, where, points checked) of the vectorized loop over the chunks;
    two threads (the kernels release the GIL)."""
    kernel, check = loop_kernel(name, fastmath), error_kernel(name)
    one = np.ones(4, np.float32)
    check(one, run(name, one, fastmath))        # compile before threading

    def work(make_chunk):
        x = make_chunk()
        out = np.empty_like(x)
        kernel(x, out)
        err, at = check(x, out)
        return err, float(x[at]), x.size

    worst, where, count = 0.0, None, 0
    with ThreadPoolExecutor(2) as pool:      # map() submits every chunk at once:
        for err, at, size in pool.map(work, chunks):     # chunks are made lazily
            count += size
            if _worse(err, worst):
                worst, where = err, at
    return worst, where, count


# domain of each accuracy check: (lo, hi, stride, signs) over bit patterns;
# tanh and erf are odd by construction (test_odd_symmetry checks it bit for bit),
# so their negative half is not measured again
DOMAINS = {
    "exp": [(0.0, 88.0, 11, "+"), (0.0, 87.0, 11, "-")],
    "log": [(1e-45, 1e30, 13, "+")],               # subnormals included
    "tanh": [(0.0, 10.0, 7, "+")],
    "sigmoid": [(0.0, 30.0, 13, "+-")],
    "erf": [(0.0, 6.0, 7, "+")],
}


@pytest.mark.parametrize("name", list(FUNCS))
def test_max_relative_error(name, record_property):
    bound = FUNCS[name][0]
    results = []
    for lo, hi, stride, signs in DOMAINS[name]:
        if "+" in signs:
            results.append(max_error(name, bit_pattern_chunks(lo, hi, stride)))
        if "-" in signs:    # on a different subset of the patterns
            results.append(max_error(
                name, bit_pattern_chunks(lo, hi, stride, offset=stride // 2, negate=True)))
    if name == "exp":   # the dense sample: 20M evenly spaced float32
        results.append(max_error(name, linspace_chunks(-87.0, 88.0, 20_000_000)))
    worst, where, _ = max(results, key=lambda r: math.inf if r[0] != r[0] else r[0])
    count = sum(r[2] for r in results)
    print(f"\n{name}_f32: max relative error {worst:.3g} at x={where!r} "
          f"over {count:,} float32 inputs (bound {bound:g})")
    record_property(f"{name}_max_rel_err", worst)
    assert worst <= bound, (name, worst, where)


@pytest.mark.parametrize("name", list(FUNCS))
def test_caller_without_fastmath(name):
    """Inlined into a caller with no fast-math, the accuracy is the same."""
    for lo, hi, _, signs in DOMAINS[name]:
        for sign in signs:
            worst, where, _ = max_error(
                name, bit_pattern_chunks(lo, hi, 997, negate=sign == "-"), fastmath=False)
            assert worst <= FUNCS[name][0], (name, worst, where)


INF, NAN = np.inf, np.nan
F32_MAX = float(np.finfo(np.float32).max)
REF = None      # expected value: the float64 reference of the float32 input
SPECIAL = {
    "exp": [(-INF, 0.0), (INF, INF), (NAN, NAN), (0.0, 1.0), (-0.0, 1.0), (88.7, REF),
            (88.72283, REF), (88.7229, INF), (89.0, INF), (1000.0, INF), (F32_MAX, INF),
            (-87.3, REF), (-100.0, REF),                     # subnormal results
            (-103.98, 0.0), (-104.0, 0.0), (-1000.0, 0.0), (-F32_MAX, 0.0)],
    "log": [(0.0, -INF), (-0.0, -INF), (-1.0, NAN), (-INF, NAN), (-1e-45, NAN), (INF, INF),
            (NAN, NAN), (1.0, 0.0), (1e-45, REF), (1e-40, REF), (1.1754944e-38, REF),
            (F32_MAX, REF), (0.5, REF), (2.0, REF)],
    "tanh": [(INF, 1.0), (-INF, -1.0), (NAN, NAN), (0.0, 0.0), (9.0, 1.0), (-9.0, -1.0),
             (20.0, 1.0), (-20.0, -1.0), (F32_MAX, 1.0), (1e-30, REF), (1e-45, REF),
             (8.99, REF), (-8.99, REF), (0.5, REF)],
    "sigmoid": [(INF, 1.0), (-INF, 0.0), (NAN, NAN), (0.0, 0.5), (100.0, 1.0),
                (-100.0, 0.0), (-30.0, REF), (30.0, REF), (-88.0, REF)],
    "erf": [(INF, 1.0), (-INF, -1.0), (NAN, NAN), (0.0, 0.0), (4.0, 1.0), (-4.0, -1.0),
            (10.0, 1.0), (-10.0, -1.0), (F32_MAX, 1.0), (1e-30, REF), (1e-45, REF),
            (3.99, REF), (0.5, REF)],
}


@pytest.mark.parametrize("name", list(FUNCS))
@pytest.mark.parametrize("fastmath", [True, False])
def test_special_values(name, fastmath):
    xs = np.array([x for x, _ in SPECIAL[name]], np.float32)
    got = run(name, xs, fastmath)
    assert got.dtype == np.float32
    for x, g, (_, w) in zip(xs, got.astype(np.float64), SPECIAL[name]):
        if w is REF:     # finite: within the bound, or one subnormal ulp
            w = float(NUMPY_REF[name](np.float64(x)))
            assert abs(g - w) <= FUNCS[name][0] * abs(w) or abs(g - w) <= 2.0 ** -149, (name, x, g, w)
        else:            # exact
            assert g == w or (np.isnan(w) and np.isnan(g)), (name, x, g, w)


@pytest.mark.parametrize("name,hi", [("tanh", 10.0), ("erf", 6.0)])
def test_odd_symmetry(name, hi):
    """f(-x) == -f(x) bit for bit (every 101st float32 of the domain, and beyond)."""
    for make_chunk in bit_pattern_chunks(0.0, hi, 101):
        x = make_chunk()
        assert np.array_equal(run(name, -x), -run(name, x)), name
    x = np.array([hi, 20.0, np.inf, 3e38], np.float32)
    assert np.array_equal(run(name, -x), -run(name, x)), name


def test_scalar_calls_from_python_and_float64_arguments():
    """Called directly (or with a float64), the functions convert to float32."""
    for name in FUNCS:
        fn = approx_fn(name)
        assert fn(np.float32(0.5)) == run(name, np.array([0.5], np.float32))[0]
        assert fn(0.5) == fn(np.float32(0.5))


def test_saturation_bounds():
    """tanh and erf never leave [-1, 1] (so 1 - tanh**2 >= 0), and sigmoid stays in [0, 1]."""
    x = np.linspace(-12, 12, 2_000_001).astype(np.float32)
    for name in ("tanh", "erf", "sigmoid"):
        y = run(name, x)
        assert y.min() >= (0.0 if name == "sigmoid" else -1.0) and y.max() <= 1.0, name
    t = run("tanh", x)
    assert np.all(1 - t * t >= 0)
    assert np.all(t[np.abs(x) >= 9] == np.sign(x[np.abs(x) >= 9]))


@pytest.mark.parametrize("name,lo,hi", [("exp", -87, 88), ("log", 1e-30, 1e30),
                                        ("sigmoid", -30, 30)])
def test_monotone_on_consecutive_floats(name, lo, hi):
    """Spot checks: non-decreasing over 4000 consecutive float32 around 500
    points of the range. (tanh and erf are not monotone at the ulp level: the
    rational's float32 evaluation error of one to a few ulp exceeds what they
    gain per input ulp, so consecutive outputs can step back by that much;
    the next test checks the order they do keep.)"""
    centres = np.geomspace(lo, hi, 500) if name == "log" else np.linspace(lo, hi, 500)
    for c in centres:
        b = bits(abs(c))
        w = np.arange(max(b - 2000, 0), b + 2000, dtype=np.int32).view(np.float32)
        x = np.sort(np.float32(np.sign(c) or 1.0) * w)
        y = run(name, x)
        assert np.all(np.diff(y.astype(np.float64)) >= 0), (name, c)


@pytest.mark.parametrize("name", list(FUNCS))
def test_monotone_on_resolvable_steps(name):
    """f(x) <= f(x + h) for random pairs whose true rise exceeds twice the
    error bound (where the error bound says nothing, no order is promised)."""
    rng = np.random.default_rng(0)
    lo, hi = {"exp": (-87, 88), "log": (1e-30, 1e30), "tanh": (-9, 9),
              "sigmoid": (-30, 30), "erf": (-4, 4)}[name]
    if name == "log":
        x = np.exp(rng.uniform(np.log(lo), np.log(hi), 200_000))
    else:
        x = rng.uniform(lo, hi, 200_000)
    x = x.astype(np.float32)
    x2 = (x.astype(np.float64) + np.abs(x) * 10.0 ** rng.uniform(-6, -1, x.size)).astype(np.float32)
    ref = NUMPY_REF[name]
    f1, f2 = ref(x.astype(np.float64)), ref(x2.astype(np.float64))
    resolvable = (f2 - f1) > 2.0 * FUNCS[name][0] * np.maximum(np.abs(f1), np.abs(f2))
    assert resolvable.sum() > 10_000
    y1, y2 = run(name, x[resolvable]), run(name, x2[resolvable])
    assert np.all(y2 >= y1), name


def test_reference_matches_numpy():
    """The libm float64 reference used above equals NumPy/SciPy float64."""
    rng = np.random.default_rng(1)
    for name, (_, ref) in FUNCS.items():
        x = rng.uniform(-20, 20, 100_000).astype(np.float32)
        if name == "log":
            x = np.abs(x) + np.float32(1e-3)
        out = np.asarray(NUMPY_REF[name](x.astype(np.float64)), np.float32)
        err, _ = error_kernel(name)(x, out)
        assert err <= 6e-8, name      # at most float32 rounding of the same value


def _host_has(*features):
    host = llvm.get_host_cpu_features()
    return all(host.get(f, False) for f in features)


@pytest.mark.parametrize("name", list(FUNCS))
def test_loop_vectorizes(name):
    """The loop compiles to packed float32 FMAs (256- or 512-bit) with no
    remaining call to the scalar llvm.fma/libm: the function was inlined and
    the loop vectorized. Checked where the host has AVX2 and FMA (on other
    CPUs only that it runs)."""
    kernel = loop_kernel(name)
    x = np.linspace(0.1, 3, 100).astype(np.float32)
    kernel(x, np.empty_like(x))
    if not _host_has("avx2", "fma"):
        return
    asm = kernel.inspect_asm(kernel.signatures[0])
    assert re.search(r"vfmadd\w*ps\s+[^\n]*%[yz]mm", asm), name
    # Numba calls libm through a register loaded with `movabsq $expf, ...`
    assert not re.search(r"\b(fmaf|expf|logf|tanhf|erff|rintf)\b", asm), name
