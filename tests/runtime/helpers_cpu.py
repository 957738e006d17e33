"""Shared tools of the CPU backend's tests (test_cpu_*.py): compile one graph for
device="cpu" and device="reference", feed both the same arrays, compare every
output, gradients included.

Tolerance: float32 results must agree to rtol 1e-5, atol 1e-6 (the float32
approximations of exp/log/tanh/sigmoid/erf are within ~1e-6 relative of the
correctly rounded value, NumPy's float32 libm within an ulp or two). Sums over
many elements need more, because NumPy sums pairwise and the generated loops
sum sequentially (with `reassoc` allowed): the error of a float32 sum of n
terms grows like n * eps * sum(|terms|), so such comparisons say what they
loosen and why. Integer and bool results must be equal. NaN and Inf must be
in the same places (assert_allclose checks both).

Numba compiles every kernel on its first call (0.2-1 s each), so tests group
many ops into one graph (one fused kernel where possible) and parametrize by
op family, to keep failures readable and the files fast.
"""
import re

import numpy as np

import graphc as gc

RTOL, ATOL = 1e-5, 1e-6


def rng(seed=0):
    return np.random.default_rng(seed)


def assert_same(cpu, ref, what, rtol=RTOL, atol=ATOL):
    """cpu's value equals ref's: same shape and dtype; floats within tolerance,
    NaN and Inf in the same places; ints and bools exactly."""
    cpu, ref = np.asarray(cpu), np.asarray(ref)
    assert cpu.shape == ref.shape, f"{what}: shape {cpu.shape} != reference {ref.shape}"
    assert cpu.dtype == ref.dtype, f"{what}: dtype {cpu.dtype} != reference {ref.dtype}"
    if ref.dtype.kind == "f":
        np.testing.assert_allclose(cpu, ref, rtol=rtol, atol=atol, equal_nan=True, err_msg=what)
    else:
        np.testing.assert_array_equal(cpu, ref, err_msg=what)


def compile_both(outputs, inputs, **options):
    return (gc.compile(outputs, inputs=inputs, device="cpu", **options),
            gc.compile(outputs, inputs=inputs, device="reference", **options))


def check(outputs, feeds, rtol=RTOL, atol=ATOL):
    """Compile {label: tensor} for both devices, run on {placeholder: array}, compare.
    Returns the cpu executable (for inspecting its plan)."""
    labels, tensors = list(outputs), list(outputs.values())
    cpu_step, ref_step = compile_both(tensors, list(feeds))
    args = list(feeds.values())
    cpu, ref = cpu_step(*args), ref_step(*args)
    for label, c, r in zip(labels, cpu, ref):
        assert_same(c, r, label, rtol, atol)
    return cpu_step


def with_grads(outputs, wrt, seed=1):
    """outputs plus d(sum(out * w))/d x for every float output and every x in wrt
    (w a fixed random weight, so that every element's gradient is checked)."""
    result = dict(outputs)
    r = rng(seed)
    for label, out in outputs.items():
        if out.dtype.kind != "f":
            continue
        weight = gc.constant(r.standard_normal(out.shape).astype(out.dtype))
        grads = gc.grad(gc.sum(out * weight), list(wrt.values()))
        for name, g in zip(wrt, grads):
            result[f"d {label} / d {name}"] = g
    return result


def plan_of(step):
    """The one compiled plan of an executable."""
    assert len(step._plans) == 1
    return next(iter(step._plans.values()))


def parallel_loops(source):
    """The counts of a generated module's parallel loops: a prange's, or the range a
    loop kernel run in chunks is split over (the step listing's `... in <count> chunks`)."""
    return [int(n) for n in re.findall(r"prange\((\d+)\)", source) +
            re.findall(r" in (\d+) chunks$", source, re.MULTILINE)]


SPECIALS = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0, 1e-30,
            -1e-30, 1e-3, 30.0, -30.0, 100.0, -100.0, 88.0, -88.0, 3.0, -3.0, 0.1, 20.5]


def special_values(dtype, size=96, seed=0):
    """NaN, +-Inf, signed zeros, tiny and large values, then random ones."""
    values = np.array(SPECIALS, np.float64)
    rest = rng(seed).standard_normal(size - values.size) * 3
    return np.concatenate([values, rest]).astype(dtype).reshape(8, size // 8)


def finite_values(dtype, shape, seed=0, scale=2.0):
    return (rng(seed).standard_normal(shape) * scale).astype(dtype)
