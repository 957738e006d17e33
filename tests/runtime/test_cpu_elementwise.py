"""The CPU backend's elementwise ops (math with NaN and Inf, broadcasting, integer
and mixed arithmetic, comparisons, casts) and their gradients against the
reference interpreter (tolerances: helpers_cpu.py)."""
import numpy as np
import pytest

import graphc as gc
from helpers_cpu import (check, compile_both, finite_values, parallel_loops, rng, special_values,
                         with_grads)


# -- elementwise -------------------------------------------------------------------------

UNARY = {
    "negative": gc.negative, "abs": gc.abs, "sign": gc.sign, "square": gc.square,
    "exp": gc.exp, "expm1": gc.expm1, "log": gc.log, "log1p": gc.log1p, "sqrt": gc.sqrt,
    "rsqrt": gc.rsqrt,
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


def test_narrow_integers_and_bools_wrap_as_numpy_inside_kernels():
    """Numba widens int32 * int32 to int64 and True + True to 2; a fused kernel's
    intermediate keeps its node's dtype, as NumPy's (found by probing: x * x > 0
    was True for an int32 product that wraps negative, sum(b + c) counted 2)."""
    x_val = np.array([50_000, 2 ** 31 - 1, -3], np.int32)
    b_val, c_val = np.array([1, 0, 1, 0], bool), np.array([1, 1, 0, 0], bool)
    x = gc.placeholder(x_val.shape, "int32", name="x")
    b, c = gc.placeholder((4,), "bool", name="b"), gc.placeholder((4,), "bool", name="c")
    outputs = {"x * x > 0": x * x > 0, "max(x * 2)": gc.max(x * 2),
               "sum(b + c)": gc.sum(b + c), "(b + c) * 5": (b + c) * 5,
               "sum(b * c)": gc.sum(b * c), "x + x": x + x,
               "mean(x)": gc.mean(x)}
    check(outputs, {x: x_val, b: b_val, c: c_val})
    assert np.array_equal(compile_both([x * x > 0], [x])[0](x_val)[0], [False, True, True])


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


def test_a_kept_axis_of_one_point_gets_no_loop():
    """A slice that keeps a leading axis of 1 (attention's value heads from (3, B, H, T,
    D)): the parallel loop goes to the first axis with more than one point; a
    prange(1) had run the whole kernel on one thread."""
    value = finite_values("float32", (16, 64, 3, 4, 32), seed=14)
    x = gc.placeholder(value.shape, name="x")
    heads = gc.transpose(x, (2, 0, 3, 1, 4))[2:3] * 2.0
    source = next(iter(check({"heads": heads}, {x: value})._plans.values())).source
    assert parallel_loops(source) == [16], source
