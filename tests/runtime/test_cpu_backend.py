"""The CPU backend (fused Numba kernels + library ops) against the reference
interpreter, which is the semantics: every test builds one graph, compiles it
for device="cpu" and device="reference", feeds both the same arrays and
compares every output, gradients included.

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
op family, to keep failures readable and the file fast.
"""
import inspect
import re
from pathlib import Path

import numpy as np
import pytest

import graphc as gc
from helpers import load_workloads

RTOL, ATOL = 1e-5, 1e-6
ROOT = Path(__file__).resolve().parents[2]


workloads = load_workloads()


# -- helpers ---------------------------------------------------------------------------

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


SPECIALS = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0, 1e-30,
            -1e-30, 1e-3, 30.0, -30.0, 100.0, -100.0, 88.0, -88.0, 3.0, -3.0, 0.1, 20.5]


def special_values(dtype, size=96, seed=0):
    """NaN, +-Inf, signed zeros, tiny and large values, then random ones."""
    values = np.array(SPECIALS, np.float64)
    rest = rng(seed).standard_normal(size - values.size) * 3
    return np.concatenate([values, rest]).astype(dtype).reshape(8, size // 8)


def finite_values(dtype, shape, seed=0, scale=2.0):
    return (rng(seed).standard_normal(shape) * scale).astype(dtype)


# -- elementwise -------------------------------------------------------------------------

UNARY = {
    "negative": gc.negative, "abs": gc.abs, "sign": gc.sign, "square": gc.square,
    "exp": gc.exp, "log": gc.log, "log1p": gc.log1p, "sqrt": gc.sqrt, "rsqrt": gc.rsqrt,
    "tanh": gc.tanh, "sigmoid": gc.sigmoid, "erf": gc.erf, "relu": gc.relu,
    "leaky_relu": lambda x: gc.leaky_relu(x, 0.1), "gelu": gc.gelu,
    "gelu_tanh": lambda x: gc.gelu(x, approximate="tanh"), "softplus": gc.softplus,
    "softplus_beta": lambda x: gc.softplus(x, beta=2.0, threshold=5.0),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_unary_math_with_nan_and_inf(dtype):
    """Every unary op on NaN, +-Inf, +-0 and ordinary values, in one fused kernel:
    NumPy's special values hold (relu(nan) is nan, exp(-inf) = 0, log(0) = -inf,
    sqrt(-1) is nan, sign(nan) is nan)."""
    value = special_values(dtype)
    x = gc.placeholder(value.shape, dtype, name="x")
    check({name: f(x) for name, f in UNARY.items()}, {x: value})


def test_unary_special_values_by_hand():
    """Pin by hand a few of NumPy's special values (the reference could be wrong too):
    relu(nan) and maximum(nan, 0) are nan, exp(-inf) = 0, log(0) = -inf, log(-1)
    is nan."""
    x = gc.placeholder((4,), name="x")
    value = np.array([np.nan, -np.inf, 0.0, -1.0], np.float32)
    cpu, _ = compile_both([gc.relu(x), gc.exp(x), gc.log(x), gc.maximum(x, 0.0)], [x])
    relu, exp, log, maximum = cpu(value)
    assert np.isnan(relu[0]) and np.isnan(maximum[0])
    assert exp[1] == 0.0 and log[2] == -np.inf and np.isnan(log[3])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_unary_gradients(dtype):
    """Gradients of every unary op (where differentiable), on finite values away
    from the kinks, and on the special values (NaN/Inf must land where the
    reference puts them)."""
    value = special_values(dtype, seed=3)
    x = gc.placeholder(value.shape, dtype, name="x")
    skip = {"sign"}     # no gradient
    outputs = {name: f(x) for name, f in UNARY.items() if name not in skip}
    check(with_grads(outputs, {"x": x}), {x: value})


BINARY = {
    "add": gc.add, "subtract": gc.subtract, "multiply": gc.multiply, "divide": gc.divide,
    "power": gc.power, "maximum": gc.maximum, "minimum": gc.minimum,
}


def test_binary_broadcasting_with_nan_and_inf():
    """(3, 1, 8) op (4, 8) -> (3, 4, 8), with NaN/Inf in both operands: maximum and
    minimum propagate NaN, inf - inf is nan, 1 / 0 is inf, 0 ** 0 is 1,
    negative ** fraction is nan.

    A constant exponent k + 1/2 is applied to |b| only: at -inf, x ** 0.5 is nan in
    NumPy (its sqrt fast path) but +inf in C's pow, and x ** 1.5 is +inf in NumPy
    but nan on the cpu device (test_power_of_minus_inf_by_a_half_integer)."""
    a_val = special_values("float32", 24, seed=1).reshape(3, 1, 8)
    b_val = special_values("float32", 32, seed=2).reshape(4, 8)[::-1].copy()
    a = gc.placeholder(a_val.shape, name="a")
    b = gc.placeholder(b_val.shape, name="b")
    outputs = {name: f(a, b) for name, f in BINARY.items()}
    outputs.update({"a * 2.0": a * 2.0, "2.0 - a": 2.0 - a, "a / 3": a / 3, "a ** 2": a ** 2,
                    "|b| ** 1.5": gc.abs(b) ** 1.5, "|b| ** 0.5": gc.abs(b) ** 0.5,
                    "3 ** b": 3.0 ** b, "clip": gc.clip(b, -1.0, 2.0)})
    check(outputs, {a: a_val, b: b_val})


def test_power_of_minus_inf_by_a_half_integer():
    x = gc.placeholder((2,), name="x")
    value = np.array([-np.inf, 4.0], np.float32)
    check({"x ** 1.5": x ** 1.5}, {x: value})


def test_binary_gradients_undo_broadcasting():
    """Gradients of the binary ops sum back over the broadcast axes (positive base
    for power so that its exponent gradient is defined)."""
    a_val = (np.abs(finite_values("float32", (3, 1, 8), seed=4)) + 0.5)
    b_val = finite_values("float32", (4, 8), seed=5)
    a = gc.placeholder(a_val.shape, name="a")
    b = gc.placeholder(b_val.shape, name="b")
    outputs = {name: f(a, b) for name, f in BINARY.items()}
    outputs["where"] = gc.where(a > b, a * b, b - a)
    check(with_grads(outputs, {"a": a, "b": b}), {a: a_val, b: b_val})


def test_integer_and_mixed_arithmetic():
    """int32 and int64 arithmetic (promotion to int64), true division of ints gives
    float32 (divide by zero included), ints mixed with floats, integer
    maximum/minimum/abs/sign/negative, int ** non-negative int."""
    i_val = rng(6).integers(-20, 20, (4, 6)).astype(np.int32)
    j_val = rng(7).integers(-5, 5, (6,)).astype(np.int64)
    p_val = rng(8).integers(0, 4, (4, 6)).astype(np.int64)
    f_val = finite_values("float32", (4, 6), seed=9)
    i = gc.placeholder(i_val.shape, "int32", name="i")
    j = gc.placeholder(j_val.shape, "int64", name="j")
    p = gc.placeholder(p_val.shape, "int64", name="p")
    f = gc.placeholder(f_val.shape, "float32", name="f")
    outputs = {
        "i + j": i + j, "i - j": i - j, "i * j": i * j, "i / j": i / j, "i / i": i / i,
        "i * 3": i * 3, "i + i": i + i, "max(i, j)": gc.maximum(i, j),
        "min(i, j)": gc.minimum(i, j), "abs(i)": gc.abs(i), "sign(j)": gc.sign(j),
        "-i": -i, "j ** p": j ** p, "i + f": i + f, "f * j": f * j, "i * 0.5": i * 0.5,
    }
    check(outputs, {i: i_val, j: j_val, p: p_val, f: f_val})


def test_comparisons_and_logical_ops():
    """Comparisons (NaN compares unequal to everything, != is True), with
    broadcasting, on floats and ints; logical and/or/xor/not on bools; where with
    all three operands broadcast."""
    a_val = special_values("float32", 32, seed=10).reshape(4, 8)
    b_val = np.array([np.nan, 0.0, 1.0, -np.inf, np.inf, -1.0, 0.5, 3.0], np.float32)
    k_val = rng(11).integers(-2, 3, (4, 8)).astype(np.int64)
    a = gc.placeholder(a_val.shape, name="a")
    b = gc.placeholder(b_val.shape, name="b")
    k = gc.placeholder(k_val.shape, "int64", name="k")
    p, q = a > b, k >= 0
    outputs = {
        "==": gc.equal(a, b), "!=": gc.not_equal(a, b), "<": a < b, "<=": a <= b,
        ">": a > b, ">=": a >= b, "k == 1": gc.equal(k, 1), "k < b": k < b,
        "and": gc.logical_and(p, q), "or": gc.logical_or(p, q), "xor": gc.logical_xor(p, q),
        "not": gc.logical_not(p), "where": gc.where(q, a, b),
        "where scalar": gc.where(p, 1.0, -1.0), "where int": gc.where(q, k, 7),
        "bool as float": gc.cast(p, "float32") + gc.cast(q, "float32"),
    }
    check(outputs, {a: a_val, b: b_val, k: k_val})


def test_logical_ops_on_numbers():
    k = gc.placeholder((4,), "int64", name="k")
    f = gc.placeholder((4,), name="f")
    check({"and": gc.logical_and(k, k + 1), "xor": gc.logical_xor(k, k * 2),
           "or": gc.logical_or(k, f)},
          {k: np.array([0, 1, 2, -1]), f: np.array([0.0, np.nan, 0.5, -0.0], np.float32)})


DTYPES = ["float32", "float64", "int32", "int64", "bool"]


def _cast_source(dtype):
    if dtype == "bool":
        return rng(12).integers(0, 2, (3, 8)).astype(bool)
    if dtype.startswith("int"):
        return rng(12).integers(-100, 100, (3, 8)).astype(dtype)
    value = finite_values(dtype, (3, 8), seed=12, scale=50.0)
    value.reshape(-1)[:6] = [0.0, -0.0, 0.5, -0.5, 1.5, -2.7]
    return value


@pytest.mark.parametrize("source", DTYPES)
def test_cast_to_every_dtype(source):
    """astype from `source` to every dtype (floats truncate toward zero into ints,
    nonzero is True, bool is 0/1), then used in arithmetic in the same kernel."""
    value = _cast_source(source)
    x = gc.placeholder(value.shape, source, name="x")
    outputs = {f"{source} -> {target}": gc.cast(x, target) for target in DTYPES}
    if source.startswith("float"):
        outputs["nan/inf -> bool"] = gc.cast(x / 0.0, "bool")
    outputs["cast then add"] = gc.cast(x, "float32") + 1.0
    check(outputs, {x: value})


def test_cast_gradient():
    value = finite_values("float32", (3, 8), seed=13)
    x = gc.placeholder(value.shape, name="x")
    outputs = {"f64": gc.cast(x, "float64") * 3.0, "f32": gc.cast(gc.cast(x, "float64"), "float32")}
    check(with_grads(outputs, {"x": x}), {x: value})


def test_mixed_float32_float64_and_scalars():
    """float32 with float64 promotes to float64; 0-d placeholders broadcast; a
    kernel's full reduction feeds a scalar output."""
    a_val = np.array([1, 2, 3, 4], np.float32) / 3
    d_val = np.array([0.1, 2.2, np.nan, -1.0])
    a = gc.placeholder((4,), name="a")
    d = gc.placeholder((4,), "float64", name="d")
    s = gc.placeholder((), name="s")
    outputs = {"a + d": a + d, "a * d": a * d, "where": gc.where(a > d, a, d),
               "maximum": gc.maximum(a, d), "exp(a) + d": gc.exp(a) + d, "s * a": s * a,
               "s + 1": s + 1.0, "exp(s)": gc.exp(s), "sum(a) * s": gc.sum(a) * s}
    check(outputs, {a: a_val, d: d_val, s: np.float32(2.5)})


# -- reductions --------------------------------------------------------------------------

REDUCTIONS = {"sum": gc.sum, "mean": gc.mean, "max": gc.max, "min": gc.min,
              "prod": gc.prod, "logsumexp": gc.logsumexp}
AXES = {"all": None, "leading": 0, "last": -1, "middle two": (1, 2), "outer two": (0, 3)}


@pytest.mark.parametrize("axes", list(AXES), ids=list(AXES))
def test_float_reductions(axes):
    """Every reduction over the axes, with and without keepdims, plus argmax and
    argmin (one axis or all); and their gradients. prod's operand is kept near 1
    so that it stays finite."""
    value = finite_values("float32", (3, 4, 5, 6), seed=14, scale=1.0)
    x = gc.placeholder(value.shape, name="x")
    axis = AXES[axes]
    outputs = {}
    for name, f in REDUCTIONS.items():
        operand = 1.0 + 0.1 * x if name == "prod" else x
        outputs[name] = f(operand, axis=axis)
        outputs[f"{name} keepdims"] = f(operand, axis=axis, keepdims=True)
    if axis is None or isinstance(axis, int):
        outputs["argmax"] = gc.argmax(x, axis=axis)
        outputs["argmin"] = gc.argmin(x, axis=axis, keepdims=axis is not None)
    check(with_grads(outputs, {"x": x}), {x: value})


def _scaled_by_full_max(x):
    return x - gc.max(x)


def _grad_of_full_max(x):
    return gc.grad(gc.max(x), [x])[0]


def _scaled_by_full_mean(x):
    return gc.mean(x) * x


def _softmax_1d(x):
    return gc.nn.softmax(gc.reshape(x, (-1,)), axis=0)


@pytest.mark.parametrize("build", [_scaled_by_full_max, _grad_of_full_max, _scaled_by_full_mean,
                                   _softmax_1d], ids=lambda b: b.__name__.strip("_"))
def test_element_reading_a_full_reduction_of_its_kernel(build):
    """An element-wise node reading a full (SCALAR) reduction over its own domain
    needs the reduction finished first. Fusion used to place both in one kernel
    (the generated loop read the sum before computing it: NotDefinedError 'v0');
    passes/fuse.py now keeps them apart."""
    value = finite_values("float32", (3, 4), seed=40)
    x = gc.placeholder(value.shape, name="x")
    check({build.__name__: build(x)}, {x: value})


def test_reductions_of_nan_inf():
    """max/min propagate NaN (NumPy), a row of -inf has max -inf, sums of inf and
    -inf are nan; logsumexp of a row of -inf is -inf and of a row holding +inf is
    +inf (SciPy; the lowering used to give nan: inf - inf); argmax of a row with
    NaN is the NaN's position (NumPy)."""
    value = np.array([[1.0, np.nan, 3.0], [-np.inf, -np.inf, -np.inf], [np.inf, 1.0, 2.0],
                      [0.0, -0.0, 5.0]], np.float32)
    without_nan = np.where(np.isnan(value), -np.inf, value)
    x = gc.placeholder(value.shape, name="x")
    z = gc.placeholder(value.shape, name="z")
    outputs = {}
    for axis in (None, 0, 1):
        for name in ("sum", "max", "min", "mean"):
            outputs[f"{name} axis {axis}"] = REDUCTIONS[name](x, axis=axis)
        outputs[f"argmax axis {axis}"] = gc.argmax(x, axis=axis)
        outputs[f"logsumexp axis {axis}"] = gc.logsumexp(x, axis=axis)
        outputs[f"logsumexp of infs axis {axis}"] = gc.logsumexp(z, axis=axis)
    check(outputs, {x: value, z: without_nan})


@pytest.mark.parametrize("dtype", ["int32", "int64", "bool"])
def test_int_and_bool_reductions(dtype):
    """sum/prod/max/min of ints keep the integer dtype as NumPy does (sum of bool
    counts), mean gives a float; argmax of ints (graphc's max, min and argmax take
    no bool, unlike NumPy's)."""
    if dtype == "bool":
        value = rng(15).integers(0, 2, (4, 5, 6)).astype(bool)
        names = ("sum", "mean")
    else:
        value = rng(15).integers(-3, 4, (4, 5, 6)).astype(dtype)
        names = ("sum", "max", "min", "mean", "prod")
    x = gc.placeholder(value.shape, dtype, name="x")
    outputs = {}
    for axis in (None, 0, 2, (0, 2)):
        for name in names:
            outputs[f"{name} axis {axis}"] = REDUCTIONS[name](x, axis=axis)
        if not isinstance(axis, tuple) and dtype != "bool":
            outputs[f"argmax axis {axis}"] = gc.argmax(x, axis=axis)
    check(outputs, {x: value})


def test_large_sum_tolerance():
    """A sum over n = 2**16 elements: NumPy sums float32 pairwise, the loop in its
    own order; rounding errors of random sign add up to about
    sqrt(n) * eps * sum|x| (1.5e-5 sum|x| here; the worst case, n * eps, is 4e-3),
    and the sum of random signs is far smaller than sum|x|, so the sum is compared
    to 1e-4 * sum|x|, and the mean of squares (no cancellation) to rtol 1e-4."""
    value = finite_values("float32", (1 << 16,), seed=16)
    x = gc.placeholder(value.shape, name="x")
    cpu, ref = compile_both([gc.sum(x), gc.mean(x * x)], [x])
    (s_cpu, m_cpu), (s_ref, m_ref) = cpu(value), ref(value)
    scale = float(np.abs(value).sum())
    assert abs(float(s_cpu) - float(s_ref)) <= 1e-4 * scale
    np.testing.assert_allclose(m_cpu, m_ref, rtol=1e-4)


def test_large_kernels_run_in_parallel():
    """Kernels over at least 2**16 points with no BLAS call in the step get a prange
    over their outer axis: element-wise, row reductions (softmax), column
    reductions, and a full sum (all sums: a prange reduction) must still match."""
    value = finite_values("float32", (512, 160), seed=41)
    x = gc.placeholder(value.shape, name="x")
    outputs = {"softmax": gc.nn.softmax(x, axis=-1), "column max": gc.max(x, axis=0),
               "sigmoid": gc.sigmoid(x) * 2.0, "row sums": gc.sum(x * x, axis=1)}
    step = check(with_grads(outputs, {"x": x}), {x: value})
    assert "prange(" in plan_of(step).source
    total = compile_both([gc.sum(gc.exp(x * 0.1))], [x])
    (cpu,), (ref,) = total[0](value), total[1](value)
    # a sum of 81920 positive terms, sequential per thread vs NumPy's pairwise
    np.testing.assert_allclose(cpu, ref, rtol=1e-4)


def test_loops_around_loops_inside_a_prange_body_have_hidden_counts():
    """A conv epilogue's shape, (images, channels, H * W) with a per-channel bias: LLVM
    fully unrolled the constant 16-channel loop around the vectorized 784-point loop,
    and compiling took 20 s. Its count is hidden (opaque(16)); the prange loop and
    the innermost loop keep their constants, and serial kernels keep every one."""
    def source(shape):
        x = gc.placeholder(shape, name="x")
        bias = gc.placeholder((shape[1], 1, 1), name="bias")
        feeds = {x: finite_values("float32", shape, seed=45),
                 bias: finite_values("float32", bias.shape, seed=46)}
        return plan_of(check({"relu": gc.nn.relu(x + bias)}, feeds)).source
    parallel = source((96, 16, 28, 28))
    assert "prange(96)" in parallel and "range(opaque(16))" in parallel
    assert "range(784)" in parallel and "opaque(784)" not in parallel
    serial = source((2, 16, 4, 4))
    assert "prange(" not in serial and "opaque(" not in serial


@pytest.mark.parametrize("shape", [(6, 5, 7), (256, 300)], ids=["serial", "parallel"])
def test_reductions_over_leading_axes_run_columns_inside(shape):
    """A bias gradient's shape: a row reduction over the leading axes, an element output
    written in the same kernel, and a per-row epilogue. The CPU renderer puts the kept
    axes inside (unit stride) with the accumulators in an array, in blocks that do not
    divide the kept axis (300 = 2 * 128 + 44); values must match the reference."""
    value = finite_values("float32", shape, seed=42)
    mask = rng(43).random(shape) > 0.3
    x = gc.placeholder(shape, name="x")
    keep = gc.placeholder(shape, "bool", name="keep")
    bias = gc.placeholder(shape[1:], name="bias")
    masked = gc.where(keep, x, 0.0)
    leading = tuple(range(len(shape) - 1))
    outputs = {"masked": masked * 2.0,
               "updated bias": bias - 0.01 * gc.sum(masked, axis=leading),
               "column max": gc.max(x, axis=0) + bias}
    feeds = {x: value, keep: mask, bias: finite_values("float32", shape[1:], seed=44)}
    step = check(outputs, feeds, rtol=1e-5, atol=1e-5)
    assert "acc0s = np.full(" in plan_of(step).source
    assert ("prange(" in plan_of(step).source) == (value.size >= 1 << 16)


def test_every_arena_buffer_starts_on_a_cache_line():
    """The plan places buffers at 64-byte offsets; the arena itself must start on a
    64-byte boundary too (np.empty of a few MB starts 16 bytes past a page), or every
    vector access spans two cache lines and threads share lines at block edges."""
    with gc.Graph("rnn"):
        work = workloads.rnn(batch=64, steps=3)
        step = work.compile(device="cpu")
    plan = step._plan(tuple(np.shape(f) for f in work.feeds))      # built, not run
    assert plan.arena.nbytes >= 1 << 20 and plan.arena.ctypes.data % 64 == 0
    views = [v for v in plan.storage.values() if isinstance(v, np.ndarray)]
    assert views and all(v.ctypes.data % 64 == 0 for v in views)


def test_adjacent_axes_that_run_through_memory_as_one_are_one_loop():
    """An (N, C, H, W) kernel: where every index map steps through H and W as one run,
    they are one loop over H * W points (a short W alone vectorizes badly); the bias
    read along C keeps N and C apart. A transposed read keeps its H and W apart,
    while N and C, still one run, merge. Values match the reference."""
    x_val, t_val = finite_values("float32", (3, 4, 5, 6), seed=50), \
        finite_values("float32", (3, 4, 6, 5), seed=51)
    x, t = gc.placeholder(x_val.shape, name="x"), gc.placeholder(t_val.shape, name="t")
    bias = gc.placeholder((4, 1, 1), name="bias")
    relu = gc.relu(x + bias)
    step = check({"relu": relu, "bias gradient": gc.sum(relu, axis=(0, 2, 3))},
                 {x: x_val, bias: finite_values("float32", (4, 1, 1), seed=52)})
    loops = re.findall(r"for i\d+ in p?range\((\d+)\)", plan_of(step).source)
    assert "30" in loops and "5" not in loops and "6" not in loops
    step = check({"sum": x * 2.0 + gc.transpose(t, (0, 1, 3, 2))}, {x: x_val, t: t_val})
    loops = re.findall(r"for i\d+ in p?range\((\d+)\)", plan_of(step).source)
    assert sorted(loops) == ["12", "5", "6"]


def test_transposed_read_of_a_value_the_kernel_also_writes():
    """exp(x) is written in x's layout by the kernel that reduces over its transpose
    (the gradient needs it): the transposed reads used to take the value computed at
    the loop's own point, x[i, j] for x[j, i] (found by the differential test)."""
    value = rng(0).uniform(-2, 2, (2, 2)).astype(np.float32)
    x = gc.placeholder(value.shape, name="x")
    e = gc.exp(gc.tanh(x))
    loss = gc.sum(gc.log(gc.nn.softmax(gc.transpose(e), axis=0)))
    check({"loss": loss, "d loss / d x": gc.grad(loss, [x])[0]}, {x: value})


def test_a_value_recomputed_at_a_transposed_point_reads_its_operands_there():
    """t / (1 + t*t) is written by the kernel (so are 1 + t*t and the transpose); the
    transpose recomputes the quotient at the transposed point and took the written
    denominator at its own point instead (found by the local differential test)."""
    x_val = np.array([0.5, -1.5], np.float32)
    c_val = np.array([[1.0], [-0.25]], np.float32)
    x, c = gc.placeholder(x_val.shape, name="x"), gc.placeholder(c_val.shape, name="c")
    t = x + c
    q = t / (1.0 + t * t)
    loss = gc.sum(gc.matmul(x, gc.transpose(q, (1, 0))))
    check({"loss": loss, "d loss / d x": gc.grad(loss, [x])[0]}, {x: x_val, c: c_val})


def test_a_value_computed_again_in_a_later_pass_rounds_the_same():
    """max's gradient compares x / (1 + x*x), computed again in each pass over the row,
    with the row's max from the first pass: with `arcp`, LLVM divided in one loop and
    multiplied by a reciprocal in another, no element equalled the max, and the
    gradient was 0 for 58 of 200 random rows (found by the local differential test)."""
    values = rng(5).uniform(-2, 2, (200, 1, 5)).astype(np.float32)
    x = gc.placeholder((1, 5), name="x")
    loss = gc.sum(gc.max(x / (1.0 + x * x), axis=1))
    cpu, ref = compile_both([gc.grad(loss, [x])[0]], [x])
    wrong = [v for v in values if not np.allclose(cpu(v)[0], ref(v)[0], atol=1e-6)]
    assert not wrong, f"{len(wrong)} of {len(values)} rows, first {wrong[0]}"


def test_an_element_value_read_through_an_inlined_node_waits_for_its_row_pass():
    """The max's gradient divides by the count of ties (a second pass over the row)
    and reaches the written gradient only through a node fusion inlined: the write
    was placed in the first pass, before the count existed (a Numba NotDefinedError;
    found by the differential test)."""
    value = np.array([[[1.0, -1.0], [0.5, 2.0]]], np.float32)      # a tie in row 0
    x = gc.placeholder(value.shape, name="x")
    a = gc.abs(x)
    loss = gc.sum(gc.max(a, axis=2)) + 0.5 * gc.sum(gc.abs(gc.reshape(a + 0.0, (4,))))
    check({"loss": loss, "d loss / d x": gc.grad(loss, [x])[0]}, {x: value})


def test_an_element_value_read_through_a_view_waits_for_its_row_pass():
    """logsumexp's gradient reads exp(x - lse) through a reshape of lse, computed
    after the row's sum pass; the gradient was written in the first pass."""
    value = rng(3).uniform(-2, 2, (1, 1, 4)).astype(np.float32)
    w_value = rng(4).uniform(-2, 2, (4, 1)).astype(np.float32)
    x, w = gc.placeholder(value.shape, name="x"), gc.placeholder(w_value.shape, name="w")
    loss = gc.sum(gc.matmul(gc.logsumexp(x, axis=(), keepdims=False), w))
    check({"loss": loss, "d loss / d x": gc.grad(loss, [x])[0]}, {x: value, w: w_value})


def test_norms_and_losses():
    """batch_norm in training (rows over the non-contiguous axes 0, 2, 3),
    layer_norm, mse, BCE with logits (with pos_weight), BCE of probabilities;
    forward and gradients."""
    x_val = finite_values("float32", (4, 3, 5, 6), seed=42)
    p_val = finite_values("float32", (8, 5), seed=43)
    t_val = rng(44).random((8, 5)).astype(np.float32)
    x = gc.placeholder(x_val.shape, name="x")
    w = gc.placeholder((3,), name="w")
    b = gc.placeholder((3,), name="b")
    p = gc.placeholder(p_val.shape, name="p")
    t = gc.placeholder(t_val.shape, name="t")
    running_mean = gc.variable(np.zeros(3, np.float32), name="running_mean")
    running_var = gc.variable(np.ones(3, np.float32), name="running_var")
    outputs = {
        "batch_norm": gc.nn.batch_norm(x, running_mean, running_var, w, b, training=True),
        "layer_norm": gc.nn.layer_norm(x, (5, 6)),
        "mse": gc.nn.mse_loss(p, t),
        "bce logits": gc.nn.binary_cross_entropy_with_logits(p, t),
        "bce pos_weight": gc.nn.binary_cross_entropy_with_logits(p, t, pos_weight=2.0),
        "bce": gc.nn.binary_cross_entropy(gc.sigmoid(p), t),
    }
    feeds = {x: x_val, w: np.array([1.0, 2.0, 3.0], np.float32),
             b: np.array([0.1, 0.2, 0.3], np.float32), p: p_val, t: t_val}
    check(with_grads(outputs, {"x": x, "w": w, "b": b, "p": p}), feeds)


@pytest.mark.parametrize("axis", [1, -1, 0])
def test_softmax_log_softmax_cross_entropy(axis):
    """softmax and log_softmax over any axis (with a row holding -inf and a large
    value), cross-entropy of (N, C) and (N, C, d) logits, forward and gradient."""
    value = finite_values("float32", (6, 5, 4), seed=17, scale=3.0)
    value[0, 0, 0] = -np.inf
    value[1, 1, 1] = 80.0
    labels2 = rng(18).integers(0, 5, (6,))
    labels3 = rng(19).integers(0, 5, (6, 4))
    x = gc.placeholder(value.shape, name="x")
    y2 = gc.placeholder((6,), "int64", name="y2")
    y3 = gc.placeholder((6, 4), "int64", name="y3")
    finite = gc.where(gc.equal(x, -np.inf), 0.0, x)
    outputs = {"softmax": gc.nn.softmax(x, axis=axis),
               "log_softmax": gc.nn.log_softmax(finite, axis=axis)}
    feeds = {x: value}
    if axis == 1:
        outputs["ce 2d"] = gc.nn.cross_entropy(finite[:, :, 0], y2)
        outputs["ce 3d"] = gc.nn.cross_entropy(finite, y3)
        outputs["ce sum"] = gc.nn.cross_entropy(finite[:, :, 1], y2, reduction="sum")
        outputs["ce none"] = gc.nn.cross_entropy(finite, y3, reduction="none")
        feeds.update({y2: labels2, y3: labels3})
    check(with_grads(outputs, {"x": x}), feeds)


# -- views -------------------------------------------------------------------------------

def test_views_in_loop_kernels():
    """Views read through index maps inside fused kernels: transpose,
    broadcast_to, reshape, slices with steps and negative indices,
    expand_dims/squeeze, getitem h[:, t]; and their gradients (slice_grad,
    sum_to, transposes back)."""
    value = finite_values("float32", (4, 6, 5), seed=20)
    row = finite_values("float32", (5,), seed=21)
    x = gc.placeholder(value.shape, name="x")
    r = gc.placeholder(row.shape, name="r")
    outputs = {
        "transpose": gc.transpose(x, (2, 0, 1)) * 2.0,
        ".T": x.T + 1.0,
        "broadcast_to": gc.broadcast_to(r, (3, 4, 5)) * 3.0,
        "broadcast in binary": x * r,
        "reshape": gc.reshape(x * 1.0, (6, 20)) - 1.0,
        "slice steps": x[::2, 1::3, ::-1] * 2.0,
        "slice negative": x[-3:-1, ::-2, -1] + 1.0,
        "slice stop": x[1:, :4:2, 2:4] * x[:3, 1:5:2, 0:2],
        "expand_dims": gc.expand_dims(r, 0) + gc.expand_dims(x[:, 0, :], 1),
        "squeeze": gc.squeeze(x[:, 2:3, :], 1) * 2.0,
        "h[:, t]": x[:, 3] * 2.0 + x[:, 4],
        "swapaxes": gc.swapaxes(x, 0, 1) + 1.0,
    }
    check(with_grads(outputs, {"x": x, "r": r}), {x: value, r: row})


def test_reshape_of_transpose_uses_a_gather_table():
    """A reshape of a transposed tensor is not affine in the loop indices: the
    kernel reads it through a gather table (checked in the plan), and matches."""
    value = finite_values("float32", (4, 6, 5), seed=22)
    x = gc.placeholder(value.shape, name="x")
    y = gc.reshape(gc.transpose(x * 2.0, (1, 0, 2)), (24, 5))
    out = gc.exp(gc.reshape(gc.transpose(x, (2, 1, 0)), (10, 12))) + 1.0
    step = check({"reshape of transpose": y + 1.0, "exp": out}, {x: value})
    plan = plan_of(step)
    reshaping = [loop for kernel, loop in plan.loops.items()
                 if any(n.op.name == "reshape" and n.inputs[0].op.name == "transpose"
                        for n in kernel.nodes)]
    assert reshaping, plan.source
    assert all(loop.tables for loop in reshaping), "no gather table:\n" + plan.source
    check(with_grads({"y": y + 1.0, "out": out}, {"x": x}), {x: value})


# -- regressions: graphs behind bugs found here (fixed in runtime/cpu/codegen.py, which
# now renders any kernel fusion hands it in operand order, computes a node both inlined
# and placed once, and returns only the buffers it writes; and in passes/fuse.py) -----

def _exp_and_its_gradient():
    """exp(x) is returned and read by its gradient: fusion merged the two kernels
    and listed the gradient's multiply before the exp it reads (fixed in codegen:
    nodes are rendered operands first)."""
    x = gc.placeholder((2, 6), name="x")
    y = gc.exp(x)
    return [y, gc.grad(gc.sum(y * 3.0), [x])[0]], [x]


def _divide_and_its_gradient():
    """a / b returned and inlined into its own gradient's reduction: fusion listed it
    twice, inlined and placed (codegen: duplicate argument; fixed: placed wins)."""
    a = gc.placeholder((3, 1, 6), name="a")
    b = gc.placeholder((4, 6), name="b")
    y = a / b
    return [y] + gc.grad(gc.sum(y * 2.0), [a, b]), [a, b]


def _reshape_inlined_and_aliased():
    """reshape(x) inlined into a reduction kernel and read by matmul as an alias: the
    reduction kernel listed it as an output it never wrote, so matmul read an
    uninitialized buffer (fixed: a loop's outputs are the values it computes)."""
    x = gc.placeholder((2, 6), name="x")
    w = gc.placeholder((4, 2), name="w")
    r = gc.reshape(x, (3, 4))
    return [gc.sum(r * 2.0), r @ w], [x, w]


def _matmul_by_own_transposed_abs():
    """x @ abs(x).T: fusion promoted the transpose of abs (read by matmul) to a value
    the kernel computes at each point, and the kernel wrote abs untransposed (found
    by the differential test; fixed: a promoted view may not read its kernel's values)."""
    x = gc.placeholder((2, 2), name="x")
    w = gc.placeholder((2, 2), name="w")
    return [gc.sum(x @ gc.swapaxes(gc.abs(x), -1, -2)) + gc.sum(w)], [x, w]


def _view_of_an_inlined_copy_read_by_matmul():
    """expand_dims of a free node that a kernel had inlined (as a private copy) was taken
    for a view of a buffer, and matmul read memory nobody wrote (found by the
    differential test; fixed: an inlined copy is not a buffer)."""
    x = gc.placeholder((4,), name="x")
    w = gc.placeholder((4, 5), name="w")
    t = x * 2.5
    s = gc.nn.log_softmax(gc.tanh(gc.abs(t) + t) @ w, axis=0)
    return [gc.sum(t @ gc.tanh(s + w))], [x, w]


def _three_reductions_of_one_comparison():
    """g = x > y read by three reductions over two axes: the second kernel inlined a
    copy of where(g, x, 0) whose operand was the first kernel's clone of g, read as a
    buffer no kernel writes (an uninitialized bool buffer, then an assertion;
    fixed in passes/fuse.py)."""
    x = gc.placeholder((3, 4), name="x")
    y = gc.placeholder((3, 4), name="y")
    g = x > y
    p = gc.where(g, x, 0.0)
    return [gc.sum(gc.where(g, y, 0.0), axis=0), gc.sum(p, axis=1), gc.sum(p * y, axis=0)], [x, y]


@pytest.mark.parametrize("build", [_exp_and_its_gradient, _divide_and_its_gradient,
                                   _reshape_inlined_and_aliased, _matmul_by_own_transposed_abs,
                                   _view_of_an_inlined_copy_read_by_matmul,
                                   _three_reductions_of_one_comparison],
                         ids=lambda b: b.__name__.strip("_"))
def test_fusion_shapes_that_broke_the_cpu_device(build):
    outputs, inputs = build()
    # the second input, a divisor in one graph, is kept away from 0
    feeds = {p: finite_values("float32", p.shape, seed=45 + i) + 5.0 * (i == 1)
             for i, p in enumerate(inputs)}
    check({f"output {i}": o for i, o in enumerate(outputs)}, feeds)


def test_variables_are_kernel_arguments_read_at_each_call():
    """A variable's value is read when the step runs, not baked into the generated
    code: changing it between calls changes the result, and a new compile after
    the change generates the same source (so the cache key does not depend on it)."""
    x_val = finite_values("float32", (3, 4), seed=47)
    x = gc.placeholder(x_val.shape, name="x")
    w = gc.variable(np.full((4,), 2.0, np.float32), name="w")
    out = gc.exp(x * w) + w
    cpu, ref = compile_both([out], [x])
    first = cpu(x_val)[0]
    w.node.attrs["state"].value = np.array([1.0, -1.0, 0.5, 0.0], np.float32)
    second, expected = cpu(x_val)[0], ref(x_val)[0]
    assert_same(second, expected, "after the variable changed")
    assert not np.allclose(first, second)
    again = gc.compile([out], inputs=[x], device="cpu")
    assert_same(again(x_val)[0], expected, "a new compile")
    assert plan_of(again).source == plan_of(cpu).source


def test_outputs_over_an_input_buffer_are_written_through_the_input():
    """Where the memory plan writes an output over an input (W3's tanh over its matmul's
    buffer, each SGD update over its variable and velocity), the loop stores through
    the input's argument: one pointer, so LLVM vectorizes the loop. Passed as two
    arguments for one buffer, its run-time overlap check failed and W3's tanh loop ran
    scalar (31 us against 4). test_workload_training_matches checks the values."""
    with gc.Graph("rnn"):
        work = workloads.rnn(batch=4, steps=6)
        step = work.compile(device="cpu")
        step(*work.feeds)
    plan = plan_of(step)
    through = {}
    for kernel, loop in plan.loops.items():
        pairs = re.findall(r"# (o_a\d+) is written through (a\d+)", loop.source)
        body = loop.source.split("\ndef ", 1)[1]
        for out, source in pairs:
            assert f"{out}[" not in body and re.search(rf"\b{source}\[[^\]]*\] = ", body)
        through[kernel] = pairs
    tanh = [k for k in plan.loops  # (the first step's h0 @ w_hh is folded away)
            if k.library is not None and any(n.op.name == "tanh" for n in k.nodes)]
    updates = [k for k in plan.loops
               if any(plan.memory.location(o)[0] == "variable" for o in k.outputs)]
    assert tanh and updates
    assert all(through[k] for k in tanh + updates)


# -- library ops -------------------------------------------------------------------------

def test_matmul_shapes_and_epilogues():
    """2-D, batched (with batch broadcasting), matrix @ vector, vector @ matrix,
    vector @ vector, transposed operands; with a bias + relu epilogue; gradients."""
    r = rng(23)
    arrays = {"a": r.standard_normal((5, 7)), "b": r.standard_normal((7, 3)),
              "ba": r.standard_normal((2, 4, 5, 7)), "bb": r.standard_normal((4, 7, 3)),
              "v": r.standard_normal((7,)), "w": r.standard_normal((5,)),
              "bias": r.standard_normal((3,))}
    arrays = {k: v.astype(np.float32) for k, v in arrays.items()}
    ph = {k: gc.placeholder(v.shape, name=k) for k, v in arrays.items()}
    a, b, ba, bb, v, w, bias = (ph[k] for k in arrays)
    outputs = {
        "2-D": a @ b, "batched": ba @ bb, "batched x 2-D": ba @ b, "matrix @ vector": a @ v,
        "vector @ matrix": w @ a, "vector @ vector": v @ v, "transposed": a.T.T @ (b.T).T,
        "a @ a.T": a @ a.T, "bias relu": gc.relu(a @ b + bias),
    }
    check(with_grads(outputs, {k: p for k, p in ph.items()}),
          {p: arrays[k] for k, p in ph.items()})


def test_attention_products_over_two_batch_axes_run_in_the_njit_step():
    """Multi-head attention's (B, H, T, D) products, forward and backward, are batched
    GEMMs over B * H (simplify's batch_axes_of_matmul), so the step keeps its njit
    driver; values and gradients are the reference's."""
    batch, steps, heads, width = 2, 5, 3, 4
    r = rng(29)
    arrays = {n: r.standard_normal((batch, steps, heads * width)).astype(np.float32) for n in "qkv"}
    ph = {n: gc.placeholder(a.shape, name=n) for n, a in arrays.items()}
    q, k, v = (gc.transpose(gc.reshape(ph[n], (batch, steps, heads, width)), (0, 2, 1, 3))
               for n in "qkv")
    scores = gc.matmul(q, gc.swapaxes(k, -1, -2)) / np.sqrt(width)
    attention = gc.matmul(gc.nn.softmax(scores, axis=-1), v)
    step = check(with_grads({"attention": attention}, ph), {ph[n]: arrays[n] for n in "qkv"})
    plan = plan_of(step)
    products = [n for n in plan.program.graph.ancestors(plan.program.roots()) if n.op.name == "matmul"]
    assert len(products) == 6 and all(len(n.shape) == 3 for n in products)
    assert plan.driver is not None


def test_a_partly_broadcast_batched_product_runs_in_the_njit_step():
    """b (4, 7, 3) is broadcast over a's first batch axis, then one batched GEMM."""
    r = rng(30)
    arrays = {"a": r.standard_normal((2, 4, 5, 7)), "b": r.standard_normal((4, 7, 3))}
    ph = {k: gc.placeholder(v.shape, name=k) for k, v in arrays.items()}
    step = check(with_grads({"a @ b": gc.tanh(ph["a"] @ ph["b"])}, ph),
                 {ph[k]: v.astype(np.float32) for k, v in arrays.items()})
    plan = plan_of(step)
    products = [n for n in plan.program.graph.ancestors(plan.program.roots()) if n.op.name == "matmul"]
    assert products and all(len(n.shape) <= 3 for n in products)
    assert plan.driver is not None


CONV_CASES = {
    "plain": dict(stride=1, padding=0, dilation=1, groups=1),
    "stride 2 padding 1": dict(stride=2, padding=1, dilation=1, groups=1),
    "dilation 2 padding (2, 1)": dict(stride=1, padding=(2, 1), dilation=2, groups=1),
    "groups 2 stride (1, 2)": dict(stride=(1, 2), padding=1, dilation=1, groups=2),
    "depthwise": dict(stride=1, padding=1, dilation=1, groups=4),
}


@pytest.mark.parametrize("case", list(CONV_CASES), ids=list(CONV_CASES))
def test_conv2d_bias_relu(case):
    """conv2d with stride/padding/dilation/groups, + bias + relu epilogue, and the
    gradients with respect to input, weight and bias (conv2d_grad_input/weight)."""
    attrs = CONV_CASES[case]
    groups = attrs["groups"]
    x_val = finite_values("float32", (2, 4, 9, 8), seed=24, scale=1.0)
    w_val = finite_values("float32", (6 if groups != 4 else 4, 4 // groups, 3, 3), seed=25,
                          scale=0.5)
    b_val = finite_values("float32", (w_val.shape[0],), seed=26)
    x = gc.placeholder(x_val.shape, name="x")
    w = gc.placeholder(w_val.shape, name="w")
    b = gc.placeholder(b_val.shape, name="b")
    outputs = {"conv relu": gc.relu(gc.nn.conv2d(x, w, b, **attrs)),
               "conv": gc.nn.conv2d(x, w, None, **attrs)}
    # the weight gradient sums ~140 float32 products per entry; BLAS and the NumPy
    # reference add them in different orders (measured: up to 9e-5 relative)
    check(with_grads(outputs, {"x": x, "w": w, "b": b}), {x: x_val, w: w_val, b: b_val},
          rtol=2e-4, atol=1e-5)


def test_pooling():
    """max_pool2d (kernel/stride/padding/dilation) and avg_pool2d (padding counted or
    not), forward and gradient; ties in max pooling go to the first maximum."""
    value = finite_values("float32", (2, 3, 9, 8), seed=27)
    value[0, 0, :2, :2] = 1.0       # a tie
    x = gc.placeholder(value.shape, name="x")
    outputs = {
        "max 2": gc.nn.max_pool2d(x, 2),
        "max 3 s2 p1": gc.nn.max_pool2d(x, 3, stride=2, padding=1),
        "max dilation": gc.nn.max_pool2d(x, 2, stride=1, dilation=2),
        "avg 2": gc.nn.avg_pool2d(x, 2),
        "avg 3 s2 p1": gc.nn.avg_pool2d(x, 3, stride=2, padding=1),
        "avg no pad count": gc.nn.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False),
        "relu(max)": gc.relu(gc.nn.max_pool2d(x, 2)) * 2.0,
    }
    check(with_grads(outputs, {"x": x}), {x: value})


def test_embedding_take_and_gradient():
    """embedding / take along axes 0 and 1 (repeated ids), and the scatter-add
    gradient into the table."""
    table_val = finite_values("float32", (10, 4), seed=28)
    ids_val = np.array([[1, 3, 3], [0, 9, 1]], np.int64)
    idx_val = np.array([3, 0, 3, 1], np.int32)
    table = gc.placeholder(table_val.shape, name="table")
    ids = gc.placeholder(ids_val.shape, "int64", name="ids")
    idx = gc.placeholder(idx_val.shape, "int32", name="idx")
    outputs = {"embedding": gc.nn.embedding(ids, table) * 2.0,
               "take axis 1": gc.take(table, idx, axis=1),
               "take flat": gc.take(table, ids),
               "getitem tensor": table[idx] + 1.0}
    check(with_grads(outputs, {"table": table}), {table: table_val, ids: ids_val, idx: idx_val})


def test_concatenate_stack_pad():
    """concatenate (any axis), stack, pad with a constant, and their gradients."""
    a_val = finite_values("float32", (3, 4), seed=29)
    b_val = finite_values("float32", (3, 2), seed=30)
    a = gc.placeholder(a_val.shape, name="a")
    b = gc.placeholder(b_val.shape, name="b")
    outputs = {
        "concat axis 1": gc.concatenate([a, b * 2.0, a], axis=1),
        "concat axis 0": gc.concatenate([a.T, b.T], axis=0) + 1.0,
        "stack": gc.stack([a, a * a], axis=1),
        "pad": gc.pad(a, ((1, 2), (0, 3)), constant_values=-1.5),
        "pad int width": gc.exp(gc.pad(b, 1)),
    }
    check(with_grads(outputs, {"a": a, "b": b}), {a: a_val, b: b_val})


def test_one_hot():
    """one_hot of int32/int64 labels (float and int dtypes), fused with arithmetic."""
    labels_val = np.array([[0, 3, 1], [2, 2, 4]], np.int64)
    small_val = np.array([1, 0, 2], np.int32)
    labels = gc.placeholder(labels_val.shape, "int64", name="labels")
    small = gc.placeholder(small_val.shape, "int32", name="small")
    outputs = {"float": gc.one_hot(labels, 5), "int64": gc.nn.one_hot(labels, 5),
               "int32 labels": gc.one_hot(small, 3, dtype="float64") * 2.0,
               "bool": gc.one_hot(small, 4, dtype="bool"),
               "sum": gc.sum(gc.one_hot(labels, 6), axis=-1)}
    check(outputs, {labels: labels_val, small: small_val})


def test_dropout_masks_match_for_the_same_seed():
    """Random ops draw from a counter-based generator: cpu and reference give the
    same dropout mask for the same seed and counter, on every call (the rng
    counter advances the same way on both)."""
    value = finite_values("float32", (8, 16), seed=31)
    x = gc.placeholder(value.shape, name="x")
    outputs = [gc.nn.dropout(x, 0.3), gc.random.uniform((5, 3), seed=7),
               gc.random.normal((4,), seed=8), gc.nn.dropout(x, 0.5) * 2.0 + 1.0]
    counter = gc.default_graph().rng_counter.attrs["state"]
    cpu_step, ref_step = compile_both(outputs, [x])
    masks = []
    for _ in range(2):
        start = counter.value.copy()
        cpu = cpu_step(value)
        after_cpu = counter.value.copy()
        counter.value = start
        ref = ref_step(value)
        assert after_cpu == counter.value == start + 1
        for i, (c, r) in enumerate(zip(cpu, ref)):
            assert_same(c, r, f"random output {i}")
        masks.append(cpu[0] == 0)
    assert 0 < masks[0].mean() < 0.6
    assert not np.array_equal(masks[0], masks[1]), "a new mask every call"


# -- training: the workloads ------------------------------------------------------------

def _train(build, device, steps):
    with gc.Graph(f"{device}"):
        work = build()
        step = work.compile(device=device)
        losses = [step(*work.feeds) for _ in range(steps)]
        values = {v.name: v.value.copy() for v in step.variables}
    return losses, values


WORKLOADS = {
    "W1 mlp": (lambda: workloads.mlp(batch=16), 3, RTOL, ATOL),
    "W2 cnn": (lambda: workloads.cnn(batch=4), 3, RTOL, ATOL),
    "W3 rnn": (lambda: workloads.rnn(batch=4, steps=6), 3, RTOL, ATOL),
    "W4 fusion": (lambda: workloads.fusion(n=4096), 1, RTOL, 1e-5),
}


@pytest.mark.parametrize("name", list(WORKLOADS))
def test_workload_training_matches(name):
    """Train each workload on both devices (separate graphs built from the same seed)
    and compare every output of every step and every variable afterwards
    (parameters and velocities), 3 steps.

    W4 runs one step only: its loss is a sum over 4096 elements, so one update
    moves a from 1.5 to -15.8 and b from 0.25 to -22.6, and later steps evaluate
    gelu' deep in its tail, where 1 + tanh(u) cancels and any float32 difference
    is amplified without bound. Even in step 1 dx = a * gelu'(x a + b) needs atol
    1e-5: gelu' = 0.5 (1 + t) + 0.5 x (1 - t^2) s' amplifies the error of the
    float32 tanh approximation (5e-7) by |x| s' (about 10 at x = -4); measured
    3.3e-6."""
    build, steps, rtol, atol = WORKLOADS[name]
    cpu_losses, cpu_values = _train(build, "cpu", steps)
    ref_losses, ref_values = _train(build, "reference", steps)
    for i, (c, r) in enumerate(zip(cpu_losses, ref_losses)):
        for j, (cv, rv) in enumerate(zip(c, r)):
            assert_same(cv, rv, f"{name} step {i} output {j}", rtol, atol)
    assert cpu_values.keys() == ref_values.keys()
    assert any("velocity" in k for k in cpu_values)
    for key in ref_values:
        assert_same(cpu_values[key], ref_values[key], f"{name} variable {key}", rtol, atol)


# -- errors and specialization ------------------------------------------------------------

@pytest.mark.parametrize("device", ["cpu", "reference"])
def test_label_out_of_range_raises_and_keeps_variables(device):
    """A label outside [0, C) in cross_entropy (one_hot inside) raises a GraphcError
    naming one_hot, and the failed training step leaves every variable (weights
    and velocities) as it was; a good batch still trains afterwards."""
    work = workloads.mlp(batch=16)
    step = work.compile(device=device)
    x, labels = work.feeds
    step(x, labels)
    before = {v.name: v.value.copy() for v in step.variables}
    for bad in (10, -1):
        wrong = labels.copy()
        wrong[5] = bad
        with pytest.raises(gc.GraphcError, match="one_hot"):
            step(x, wrong)
        for v in step.variables:
            np.testing.assert_array_equal(v.value, before[v.name], err_msg=v.name)
    step(x, labels)
    assert not np.array_equal(step.variables[0].value, before[step.variables[0].name])


def test_one_hot_out_of_range_alone():
    labels = gc.placeholder((3,), "int64", name="labels")
    cpu, ref = compile_both([gc.one_hot(labels, 4) * 2.0], [labels])
    for step in (cpu, ref):
        with pytest.raises(gc.GraphcError, match="one_hot"):
            step(np.array([0, 4, 1]))


def test_check_numerics_names_the_node_and_line():
    """check_numerics=True on the cpu device stops at the kernel producing NaN and
    names the node (log of a negative), not the sum it is fused into, with the
    user's source line, as the reference device does."""
    x = gc.placeholder((4,), name="x")
    y = x * 2.0
    line = inspect.currentframe().f_lineno + 1
    z = gc.log(y - 1.0)
    out = gc.sum(z * 3.0)
    cpu, ref = compile_both(out, [x], check_numerics=True)
    good = np.array([1.0, 2.0, 3.0, 4.0], np.float32)
    assert_same(cpu(good), ref(good), "finite input")
    bad = np.array([1.0, -2.0, 3.0, 4.0], np.float32)
    for step in (cpu, ref):
        with pytest.raises(gc.GraphcError) as info:
            step(bad)
        message = str(info.value)
        assert info.value.op == "log" and "NaN" in message, message
        assert f"{Path(__file__).name}:{line}" in message, message


def test_none_batch_dimension_compiles_two_signatures():
    """A placeholder with a None batch dimension fed two batch sizes compiles two
    plans, and each matches the reference (a training step: the variables it
    updates are compared after each call)."""
    def build():
        x = gc.placeholder((None, 6), name="x")
        y = gc.placeholder((None,), "int64", name="y")
        w = gc.variable(finite_values("float32", (6, 3), seed=32), name="w")
        logits = gc.relu(x @ w) - gc.mean(x, axis=1, keepdims=True)
        loss = gc.nn.cross_entropy(logits, y)
        (gw,) = gc.grad(loss, [w])
        return x, y, w, loss, {w: w - 0.1 * gw}

    batches = [(finite_values("float32", (n, 6), seed=n), rng(n).integers(0, 3, n))
               for n in (8, 3, 8)]
    results = {}
    for device in ("cpu", "reference"):
        with gc.Graph(device):
            x, y, w, loss, updates = build()
            step = gc.compile([loss, gc.nn.softmax(x @ w)], inputs=[x, y], updates=updates,
                              device=device)
            outs = []
            for xb, yb in batches:
                outs.append(step(xb, yb) + [w.value.copy()])
            results[device] = outs
            if device == "cpu":
                assert len(step._plans) == 2 and step.stats["signatures"] == 2
    for i, (c, r) in enumerate(zip(results["cpu"], results["reference"])):
        for j, (cv, rv) in enumerate(zip(c, r)):
            assert_same(cv, rv, f"call {i} value {j}")
