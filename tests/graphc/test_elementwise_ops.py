"""Elementwise ops (DESIGN.md, "Ops" and "Testing"): every reference, through the
public gc.* function on device="reference", against NumPy/SciPy or hand values
on scalar, 1-D, 2-D, broadcast, size-1 and empty shapes; the dtype rules; the
Python operators; and float64 gradient checks against central differences."""
import math

import numpy as np
import pytest
from scipy import special

import graphc as gc
from helpers import check_grad, evaluate, rng

SHAPES = [(), (5,), (3, 4), (1, 1), (2, 3, 4), (0, 3)]
F32 = dict(rtol=1e-6, atol=1e-6)
F64 = dict(rtol=1e-12, atol=1e-12)


def tol(dtype):
    return F32 if np.dtype(dtype) == np.float32 else F64


def run(build, *arrays):
    """build(*placeholders) evaluated on the reference device with `arrays` fed."""
    phs = [gc.placeholder(a.shape, a.dtype, name=f"x{i}") for i, a in enumerate(arrays)]
    out = build(*phs)
    value = evaluate(out, dict(zip(phs, arrays)))
    return out, np.asarray(value)


def data(shape, domain, dtype, seed=0):
    """Random values of `shape` inside the op's domain."""
    g = rng(seed)
    if domain == "positive":
        x = g.uniform(0.2, 3.0, shape)
    elif domain == "apart":                     # |x| > 0.1: away from kinks at 0
        x = g.choice([-1.0, 1.0], shape) * g.uniform(0.2, 2.0, shape)
    else:
        x = g.uniform(-3.0, 3.0, shape)
    return np.asarray(x, dtype=dtype)


def gelu_none(x):
    return x * 0.5 * (1.0 + special.erf(x / math.sqrt(2.0)))


def gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def softplus_np(x, beta, threshold):
    with np.errstate(over="ignore"):
        smooth = np.log1p(np.exp(beta * x)) / beta
    return np.where(beta * x > threshold, x, smooth)


# (id, gc builder, NumPy expectation, input domain)
UNARY = [
    ("negative", gc.negative, np.negative, "any"),
    ("abs", gc.abs, np.abs, "any"),
    ("sign", gc.sign, np.sign, "any"),
    ("square", gc.square, np.square, "any"),
    ("exp", gc.exp, np.exp, "any"),
    ("expm1", gc.expm1, np.expm1, "any"),
    ("log", gc.log, np.log, "positive"),
    ("log1p", gc.log1p, np.log1p, "positive"),
    ("sqrt", gc.sqrt, np.sqrt, "positive"),
    ("rsqrt", gc.rsqrt, lambda x: 1 / np.sqrt(x), "positive"),
    ("tanh", gc.tanh, np.tanh, "any"),
    ("sigmoid", gc.sigmoid, lambda x: 1 / (1 + np.exp(-x)), "any"),
    ("erf", gc.erf, special.erf, "any"),
    ("relu", gc.relu, lambda x: np.maximum(x, 0), "any"),
    ("leaky_relu", gc.leaky_relu, lambda x: np.where(x > 0, x, 0.01 * x), "any"),
    ("leaky_relu_0.2", lambda x: gc.leaky_relu(x, 0.2),
     lambda x: np.where(x > 0, x, 0.2 * x), "any"),
    ("gelu_none", gc.gelu, gelu_none, "any"),
    ("gelu_tanh", lambda x: gc.gelu(x, approximate="tanh"), gelu_tanh, "any"),
    ("softplus", gc.softplus, lambda x: softplus_np(x, 1.0, 20.0), "any"),
    ("softplus_beta2_thr1", lambda x: gc.softplus(x, beta=2.0, threshold=1.0),
     lambda x: softplus_np(x, 2.0, 1.0), "any"),
    ("stop_gradient", gc.stop_gradient, lambda x: x, "any"),
]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name,build,expect,domain", UNARY, ids=[u[0] for u in UNARY])
def test_unary_reference_matches_numpy(name, build, expect, domain, dtype, shape):
    x = data(shape, domain, dtype, seed=len(shape))
    out, value = run(build, x)
    want = np.asarray(expect(x.astype(np.float64)))
    assert out.shape == shape and out.dtype == np.dtype(dtype)
    assert value.shape == shape and value.dtype == np.dtype(dtype)
    np.testing.assert_allclose(value, want, **tol(dtype))


@pytest.mark.parametrize("name,build,x,want", [
    ("sigmoid", gc.sigmoid, [0.0, 2.0, -2.0], [0.5, 0.8807970779778823, 0.11920292202211755]),
    ("erf", gc.erf, [0.0, 0.5, -1.0], [0.0, 0.5204998778130465, -0.8427007929497149]),
    ("gelu_none", gc.gelu, [1.0, -1.0, 0.0], [0.8413447460685429, -0.15865525393145707, 0.0]),
    ("gelu_tanh", lambda t: gc.gelu(t, "tanh"), [1.0, -1.0],
     [0.8411919906082768, -0.15880800939172324]),
    ("softplus", gc.softplus, [0.0, 1.0, 30.0], [math.log(2.0), 1.3132616875182228, 30.0]),
    ("sign", gc.sign, [-2.5, 0.0, 3.0], [-1.0, 0.0, 1.0]),
    ("relu", gc.relu, [-1.0, 0.0, 2.0], [0.0, 0.0, 2.0]),
    ("rsqrt", gc.rsqrt, [4.0, 0.25], [0.5, 2.0]),
    ("log_of_zero_is_minus_inf", gc.log, [0.0, 1.0], [-np.inf, 0.0]),
], ids=lambda v: v if isinstance(v, str) else "")
def test_unary_hand_values(name, build, x, want):
    _, value = run(build, np.array(x, np.float64))
    np.testing.assert_allclose(value, want, rtol=1e-12, atol=1e-15)


def test_softplus_is_linear_above_the_threshold_in_beta_x():
    x = np.array([0.4, 0.6, 2.0, -3.0])
    _, value = run(lambda t: gc.softplus(t, beta=2.0, threshold=1.0), x)
    # 2 * 0.6 and 2 * 2.0 exceed 1: identity; the rest log(1 + e^(2x)) / 2
    np.testing.assert_allclose(value, [math.log1p(math.exp(0.8)) / 2, 0.6, 2.0,
                                       math.log1p(math.exp(-6.0)) / 2], rtol=1e-12)


def test_softplus_does_not_overflow_for_large_inputs_below_a_huge_threshold():
    x = np.array([100.0, 800.0, -800.0])
    _, value = run(lambda t: gc.softplus(t, threshold=1e9), x)
    np.testing.assert_allclose(value, [100.0, 800.0, 0.0], rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("build,expect", [
    (gc.negative, np.negative), (gc.abs, np.abs), (gc.sign, np.sign),
    (gc.square, np.square), (gc.relu, lambda x: np.maximum(x, 0)),
], ids=["negative", "abs", "sign", "square", "relu"])
@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_numeric_unary_ops_keep_integer_dtypes(build, expect, dtype):
    x = np.array([[-3, 0, 2], [5, -1, 7]], dtype)
    out, value = run(build, x)
    assert out.dtype == np.dtype(dtype) and value.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(value, expect(x))


@pytest.mark.parametrize("build", [gc.exp, gc.log, gc.sqrt, gc.tanh, gc.sigmoid, gc.erf,
                                   gc.gelu, gc.softplus, gc.leaky_relu],
                         ids=lambda f: getattr(f, "__name__", "op"))
def test_float_only_unary_ops_reject_integer_tensors(build):
    with pytest.raises(gc.DtypeError):
        build(gc.placeholder((3,), "int32"))


def test_numeric_unary_ops_reject_bool_tensors():
    b = gc.placeholder((3,), "bool")
    for build in (gc.negative, gc.abs, gc.square):
        with pytest.raises(gc.DtypeError):
            build(b)


def test_gelu_rejects_an_unknown_approximation():
    with pytest.raises(gc.GraphcError):
        gc.gelu(gc.placeholder((3,)), approximate="fast")


# -- cast and stop_gradient -------------------------------------------------------------

@pytest.mark.parametrize("x,dtype", [
    (np.array([1.7, -1.7, 0.0, 2.5], np.float32), "int32"),
    (np.array([1.7, -1.7, 0.0, 2.5], np.float64), "int64"),
    (np.array([1.5, 0.0, -2.0], np.float32), "bool"),
    (np.array([1, 0, -3], np.int32), "float64"),
    (np.array([1, 0, -3], np.int64), "bool"),
    (np.array([True, False]), "float32"),
    (np.array([True, False]), "int32"),
    (np.array([0.1, 1e10], np.float64), "float32"),
    (np.zeros((0, 3), np.float32), "int64"),
    (np.array(3.25, np.float32), "float64"),
], ids=lambda v: v if isinstance(v, str) else str(v.dtype))
def test_cast_matches_numpy_astype(x, dtype):
    out, value = run(lambda t: gc.cast(t, dtype), x)
    assert out.dtype == np.dtype(dtype) and out.shape == x.shape
    assert value.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(value, x.astype(dtype))


def test_cast_to_the_same_dtype_is_the_tensor_itself_and_astype_builds_a_cast():
    x = gc.placeholder((3,), "float32")
    assert gc.cast(x, "float32") is x
    y = x.astype("float64")
    assert y.op == "cast" and y.dtype == np.float64


def test_cast_to_an_unsupported_dtype_is_a_dtype_error():
    with pytest.raises(gc.DtypeError):
        gc.cast(gc.placeholder((3,)), "float16")


def test_stop_gradient_has_zero_gradient_but_keeps_the_value():
    x = gc.placeholder((2, 3), "float64")
    data_ = rng(1).standard_normal((2, 3))
    y = gc.stop_gradient(x * 3.0)
    g = gc.grad(gc.sum(y * x), x)          # only the un-stopped factor counts
    value, grad = gc.compile([y, g], inputs=[x], device="reference")(data_)
    np.testing.assert_allclose(value, data_ * 3.0, **F64)
    np.testing.assert_allclose(grad, data_ * 3.0, **F64)


# -- binary -----------------------------------------------------------------------------

PAIRS = [((), ()), ((5,), (5,)), ((3, 1), (4,)), ((2, 3, 4), (3, 1)), ((), (3, 4)),
         ((2, 1, 3), (4, 3)), ((1,), (1, 1)), ((0, 3), (3,)), ((1,), (0,))]

BINARY = [
    ("add", gc.add, np.add, "any", "any"),
    ("subtract", gc.subtract, np.subtract, "any", "any"),
    ("multiply", gc.multiply, np.multiply, "any", "any"),
    ("divide", gc.divide, np.divide, "any", "apart"),
    ("power", gc.power, np.power, "positive", "any"),
    ("maximum", gc.maximum, np.maximum, "any", "any"),
    ("minimum", gc.minimum, np.minimum, "any", "any"),
]


@pytest.mark.parametrize("sa,sb", PAIRS, ids=str)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name,build,expect,da,db", BINARY, ids=[b[0] for b in BINARY])
def test_binary_reference_matches_numpy_with_broadcasting(name, build, expect, da, db,
                                                          dtype, sa, sb):
    a, b = data(sa, da, dtype, seed=1), data(sb, db, dtype, seed=2)
    out, value = run(build, a, b)
    want = expect(a.astype(np.float64), b.astype(np.float64))
    assert out.shape == want.shape and out.dtype == np.dtype(dtype)
    assert value.shape == want.shape and value.dtype == np.dtype(dtype)
    np.testing.assert_allclose(value, want, rtol=1e-5 if dtype == "float32" else 1e-12,
                               atol=1e-6 if dtype == "float32" else 1e-12)


@pytest.mark.parametrize("name,build,expect", [
    ("add", gc.add, np.add), ("subtract", gc.subtract, np.subtract),
    ("multiply", gc.multiply, np.multiply), ("maximum", gc.maximum, np.maximum),
    ("minimum", gc.minimum, np.minimum), ("power", gc.power, np.power),
], ids=lambda v: v if isinstance(v, str) else "")
@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_integer_binary_ops_are_exact_and_keep_the_dtype(name, build, expect, dtype):
    a = np.array([[-3, 0, 2, 7], [5, -1, 4, 3]], dtype)
    b = np.array([2, 3, 0, 1], dtype)
    out, value = run(build, a, b)
    assert out.dtype == np.dtype(dtype) and value.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(value, expect(a, b))


def test_divide_of_integers_is_true_division_in_float32():
    a = np.array([7, -7, 1, 0], np.int32)
    b = np.array([2, 2, 3, 5], np.int64)
    out, value = run(gc.divide, a, b)
    assert out.dtype == np.float32 and value.dtype == np.float32
    np.testing.assert_allclose(value, [3.5, -3.5, 1 / 3, 0.0], **F32)


def test_divide_by_zero_follows_ieee():
    out, value = run(gc.divide, np.array([1.0, -1.0, 0.0]), np.array([0.0, 0.0, 0.0]))
    np.testing.assert_array_equal(value[:2], [np.inf, -np.inf])
    assert np.isnan(value[2])


def test_maximum_and_minimum_hand_values():
    a, b = np.array([1.0, -2.0, 3.0, 0.0]), np.array([2.0, -3.0, 3.0, -0.5])
    _, mx = run(gc.maximum, a, b)
    _, mn = run(gc.minimum, a, b)
    np.testing.assert_array_equal(mx, [2.0, -2.0, 3.0, 0.0])
    np.testing.assert_array_equal(mn, [1.0, -3.0, 3.0, -0.5])


def test_incompatible_shapes_raise_a_shape_error_naming_them():
    with pytest.raises(gc.ShapeError, match=r"\(3, ?4\).*\(5,?\)|\(5,?\).*\(3, ?4\)"):
        gc.add(gc.placeholder((3, 4)), gc.placeholder((5,)))


# -- comparisons and logic ----------------------------------------------------------------

COMPARISONS = [
    ("equal", gc.equal, np.equal), ("not_equal", gc.not_equal, np.not_equal),
    ("less", gc.less, np.less), ("less_equal", gc.less_equal, np.less_equal),
    ("greater", gc.greater, np.greater), ("greater_equal", gc.greater_equal, np.greater_equal),
]


@pytest.mark.parametrize("sa,sb", PAIRS, ids=str)
@pytest.mark.parametrize("dtype", ["float32", "int64"])
@pytest.mark.parametrize("name,build,expect", COMPARISONS, ids=[c[0] for c in COMPARISONS])
def test_comparisons_match_numpy_and_give_bool(name, build, expect, dtype, sa, sb):
    g = rng(3)
    a = g.integers(-2, 3, sa).astype(dtype)        # small integers: many ties
    b = g.integers(-2, 3, sb).astype(dtype)
    out, value = run(build, a, b)
    want = expect(a, b)
    assert out.dtype == np.bool_ and value.dtype == np.bool_
    assert out.shape == want.shape
    np.testing.assert_array_equal(value, want)


def test_comparison_of_mixed_dtypes_and_a_python_scalar():
    a = np.array([1, 2, 3], np.int32)
    b = np.array([1.0, 2.5, 2.0], np.float64)
    _, value = run(gc.less, a, b)
    np.testing.assert_array_equal(value, [False, True, False])
    _, value = run(lambda t: gc.greater_equal(t, 2), a)
    np.testing.assert_array_equal(value, [False, True, True])


LOGICAL = [("logical_and", gc.logical_and, np.logical_and),
           ("logical_or", gc.logical_or, np.logical_or),
           ("logical_xor", gc.logical_xor, np.logical_xor)]


@pytest.mark.parametrize("sa,sb", PAIRS, ids=str)
@pytest.mark.parametrize("name,build,expect", LOGICAL, ids=[c[0] for c in LOGICAL])
def test_logical_binary_ops_match_numpy(name, build, expect, sa, sb):
    g = rng(4)
    a, b = g.random(sa) < 0.5, g.random(sb) < 0.5
    out, value = run(build, np.asarray(a), np.asarray(b))
    assert out.dtype == np.bool_
    np.testing.assert_array_equal(value, expect(a, b))


def test_logical_truth_tables():
    a = np.array([False, False, True, True])
    b = np.array([False, True, False, True])
    assert run(gc.logical_and, a, b)[1].tolist() == [False, False, False, True]
    assert run(gc.logical_or, a, b)[1].tolist() == [False, True, True, True]
    assert run(gc.logical_xor, a, b)[1].tolist() == [False, True, True, False]
    assert run(gc.logical_not, a)[1].tolist() == [True, True, False, False]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_logical_not_matches_numpy(shape):
    x = np.asarray(rng(5).random(shape) < 0.5)
    out, value = run(gc.logical_not, x)
    assert out.dtype == np.bool_ and out.shape == shape
    np.testing.assert_array_equal(value, np.logical_not(x))


@pytest.mark.parametrize("sc,sa,sb", [
    ((), (), ()), ((4,), (4,), (4,)), ((3, 1), (4,), (3, 4)), ((2, 1, 1), (3, 1), (4,)),
    ((), (2, 3), ()), ((0, 3), (3,), (1,)),
], ids=str)
@pytest.mark.parametrize("dtype", ["float32", "int64"])
def test_where_matches_numpy_with_three_way_broadcasting(sc, sa, sb, dtype):
    g = rng(6)
    cond = np.asarray(g.random(sc) < 0.5)
    a = g.integers(-9, 9, sa).astype(dtype)
    b = g.integers(-9, 9, sb).astype(dtype)
    out, value = run(gc.where, cond, a, b)
    want = np.where(cond, a, b)
    assert out.shape == want.shape and out.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(value, want)


def test_where_promotes_its_branches_and_takes_python_scalars():
    cond = np.array([True, False, True])
    a = np.array([1, 2, 3], np.int32)
    b = np.array([0.5, 0.25, 0.125], np.float64)
    out, value = run(gc.where, cond, a, b)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(value, [1.0, 0.25, 3.0])
    x = gc.placeholder((3,), "float32")
    y = gc.where(x > 0, x, 0.0)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(evaluate(y, {x: np.array([-1, 2, -3], np.float32)}),
                                  [0.0, 2.0, 0.0])


@pytest.mark.parametrize("branch_dtype", ["float32", "float64", "int32"])
def test_a_python_scalar_branch_of_where_takes_the_other_branchs_dtype(branch_dtype):
    """Typed after the value, not the bool condition: `where(x > 0, dy, 0)` (every
    ReLU, max and dropout gradient) was an int64 0, and the float32 kernels around it
    computed in float64."""
    x = gc.placeholder((3,), branch_dtype)
    for y in (gc.where(x > 0, x, 0), gc.where(x > 0, 0, x)):
        (zero,) = [n for n in y.node.inputs if n.op.name == "constant"]
        assert zero.dtype == y.dtype == np.dtype(branch_dtype)
    mask = gc.placeholder((3,), "bool")
    assert gc.logical_and(mask, True).node.inputs[1].dtype == np.bool_


def test_where_needs_a_bool_condition():
    with pytest.raises(gc.DtypeError):
        gc.where(gc.placeholder((3,)), gc.placeholder((3,)), gc.placeholder((3,)))


@pytest.mark.parametrize("shape", [(), (7,), (3, 4), (0, 2)], ids=str)
@pytest.mark.parametrize("lo,hi", [(-0.5, 0.5), (0.0, 10.0), (-1.0, -1.0)])
def test_clip_with_scalar_bounds_matches_numpy(shape, lo, hi):
    x = data(shape, "any", "float32", seed=7)
    out, value = run(lambda t: gc.clip(t, lo, hi), x)
    assert out.dtype == np.float32 and out.shape == shape
    np.testing.assert_array_equal(value, np.clip(x, lo, hi))


def test_clip_with_broadcast_tensor_bounds_matches_numpy():
    x = data((3, 4), "any", "float64", seed=8)
    lo = np.array([-1.0, -0.5, 0.0, -2.0])
    hi = np.array([[0.5], [1.0], [2.0]])
    _, value = run(gc.clip, x, lo, hi)
    np.testing.assert_array_equal(value, np.clip(x, lo, hi))


def test_clip_of_integers_keeps_the_integer_dtype():
    x = np.array([-5, 0, 3, 9], np.int32)
    out, value = run(lambda t: gc.clip(t, 0, 4), x)
    assert out.dtype == np.int32 and value.dtype == np.int32
    np.testing.assert_array_equal(value, [0, 0, 3, 4])


# -- dtype rules --------------------------------------------------------------------------

def test_a_python_float_keeps_float32():
    x = gc.placeholder((3,), "float32")
    for y in (x * 2.0, 2.0 * x, x + 1.5, 1.5 - x, x / 3.0, x ** 2.0, gc.maximum(x, 0.5)):
        assert y.dtype == np.float32
    feed = np.array([1.0, 2.0, 3.0], np.float32)
    value = evaluate(x * 2.0, {x: feed})
    assert value.dtype == np.float32
    np.testing.assert_array_equal(value, feed * 2)


def test_a_python_int_keeps_the_tensor_dtype():
    for dtype in ("int32", "int64", "float32", "float64"):
        x = gc.placeholder((2,), dtype)
        assert (x + 2).dtype == np.dtype(dtype)
        assert (3 * x).dtype == np.dtype(dtype)
    x = gc.placeholder((2,), "int32")
    value = evaluate(x + 2, {x: np.array([1, -1], np.int32)})
    assert value.dtype == np.int32 and value.tolist() == [3, 1]


def test_int_tensor_times_a_python_float_is_float32():
    x = gc.placeholder((3,), "int32")
    y = x * 2.5
    assert y.dtype == np.float32
    value = evaluate(y, {x: np.array([1, 2, -3], np.int32)})
    assert value.dtype == np.float32
    np.testing.assert_array_equal(value, [2.5, 5.0, -7.5])
    assert (gc.placeholder((3,), "int64") + 0.5).dtype == np.float32


@pytest.mark.parametrize("da,db,want", [
    ("float32", "float64", "float64"), ("float64", "float32", "float64"),
    ("int32", "int64", "int64"), ("int64", "int32", "int64"),
    ("int32", "float32", "float32"), ("int64", "float32", "float32"),
    ("int32", "float64", "float64"), ("bool", "int32", "int32"), ("bool", "float32", "float32"),
    ("float32", "float32", "float32"), ("int32", "int32", "int32"),
])
def test_binary_promotion(da, db, want):
    a, b = gc.placeholder((2,), da), gc.placeholder((2,), db)
    for y in (a + b, b + a, a * b, gc.maximum(a, b), a - b):
        assert y.dtype == np.dtype(want)
    av, bv = np.array([1, 0]).astype(da), np.array([3, 1]).astype(db)
    value = evaluate(a + b, {a: av, b: bv})
    assert value.dtype == np.dtype(want)
    np.testing.assert_array_equal(value, av.astype(want) + bv.astype(want))


def test_float32_plus_float64_runs_in_float64():
    a, b = gc.placeholder((), "float32"), gc.placeholder((), "float64")
    value = evaluate(a + b, {a: np.float32(0.1), b: np.float64(1e-12)})
    assert value.dtype == np.float64
    assert value == pytest.approx(np.float64(np.float32(0.1)) + 1e-12, rel=1e-15, abs=0)


def test_divide_dtypes():
    assert (gc.placeholder((2,), "int32") / gc.placeholder((2,), "int32")).dtype == np.float32
    assert (gc.placeholder((2,), "int64") / 2).dtype == np.float32
    assert (gc.placeholder((2,), "float64") / 2).dtype == np.float64
    assert (gc.placeholder((2,), "float32") / gc.placeholder((2,), "float64")).dtype == np.float64


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64", "bool"])
def test_comparisons_and_logic_are_bool(dtype):
    a, b = gc.placeholder((2, 3), dtype), gc.placeholder((3,), dtype)
    for y in (a == b, a != b, a < b, a <= b, a > b, a >= b):
        assert y.dtype == np.bool_ and y.shape == (2, 3)
    c = gc.placeholder((3,), "bool")
    for y in (c & c, c | c, ~c, gc.logical_xor(c, c)):
        assert y.dtype == np.bool_ and y.shape == (3,)


# -- Python operators -----------------------------------------------------------------------

OPERATORS = [
    ("add", lambda a, b: a + b, np.add),
    ("subtract", lambda a, b: a - b, np.subtract),
    ("multiply", lambda a, b: a * b, np.multiply),
    ("divide", lambda a, b: a / b, np.divide),
    ("power", lambda a, b: a ** b, np.power),
    ("equal", lambda a, b: a == b, np.equal),
    ("not_equal", lambda a, b: a != b, np.not_equal),
    ("less", lambda a, b: a < b, np.less),
    ("less_equal", lambda a, b: a <= b, np.less_equal),
    ("greater", lambda a, b: a > b, np.greater),
    ("greater_equal", lambda a, b: a >= b, np.greater_equal),
]


@pytest.mark.parametrize("op_name,operator,expect", OPERATORS, ids=[o[0] for o in OPERATORS])
def test_python_operators_build_the_same_ops(op_name, operator, expect):
    a = np.array([[1.0, 2.0, 0.5], [3.0, 1.0, 2.0]])
    b = np.array([1.0, 0.5, 2.0])
    pa, pb = gc.placeholder(a.shape, "float64"), gc.placeholder(b.shape, "float64")
    y = operator(pa, pb)
    assert y.op == op_name
    np.testing.assert_allclose(evaluate(y, {pa: a, pb: b}), expect(a, b), **F64)


@pytest.mark.parametrize("op_name,operator,expect", [
    ("add", lambda s, t: s + t, lambda s, v: s + v),
    ("subtract", lambda s, t: s - t, lambda s, v: s - v),
    ("multiply", lambda s, t: s * t, lambda s, v: s * v),
    ("divide", lambda s, t: s / t, lambda s, v: s / v),
    ("power", lambda s, t: s ** t, lambda s, v: s ** v),
], ids=lambda v: v if isinstance(v, str) else "")
def test_reflected_operators_put_the_scalar_first(op_name, operator, expect):
    v = np.array([0.5, 1.0, 2.0])
    t = gc.placeholder((3,), "float64")
    y = operator(3.0, t)
    assert y.op == op_name and y.dtype == np.float64
    np.testing.assert_allclose(evaluate(y, {t: v}), expect(3.0, v), **F64)


def test_an_ndarray_on_the_left_defers_to_the_tensor():
    v = np.array([1.0, 2.0])
    t = gc.placeholder((2,), "float64")
    y = v - t
    assert y.op == "subtract"
    np.testing.assert_array_equal(evaluate(y, {t: np.array([0.5, 4.0])}), [0.5, -2.0])


def test_unary_operators_build_negative_abs_and_logical_not():
    t = gc.placeholder((3,), "float64")
    b = gc.placeholder((3,), "bool")
    neg, ab, inv = -t, abs(t), ~b
    assert (neg.op, ab.op, inv.op) == ("negative", "abs", "logical_not")
    assert +t is t
    v = np.array([-1.5, 0.0, 2.0])
    bv = np.array([True, False, True])
    nv, av, iv = gc.compile([neg, ab, inv], inputs=[t, b], device="reference")(v, bv)
    np.testing.assert_array_equal(nv, [1.5, -0.0, -2.0])
    np.testing.assert_array_equal(av, [1.5, 0.0, 2.0])
    np.testing.assert_array_equal(iv, [False, True, False])


def test_and_or_operators_build_logical_ops():
    a, b = gc.placeholder((4,), "bool"), gc.placeholder((4,), "bool")
    y_and, y_or = a & b, a | b
    assert (y_and.op, y_or.op) == ("logical_and", "logical_or")
    av = np.array([False, False, True, True])
    bv = np.array([False, True, False, True])
    va, vo = gc.compile([y_and, y_or], inputs=[a, b], device="reference")(av, bv)
    assert va.tolist() == [False, False, False, True]
    assert vo.tolist() == [False, True, True, True]


def test_a_tensor_has_no_truth_value():
    t = gc.placeholder((3,))
    with pytest.raises(gc.GraphcError):
        bool(t > 0)


# -- gradients (float64, central differences) ------------------------------------------------

GRAD_UNARY = [
    ("negative", gc.negative, "any"),
    ("abs", gc.abs, "apart"),
    ("sign", gc.sign, "apart"),
    ("square", gc.square, "any"),
    ("exp", gc.exp, "any"),
    ("expm1", gc.expm1, "any"),
    ("log", gc.log, "positive"),
    ("log1p", gc.log1p, "positive"),
    ("sqrt", gc.sqrt, "positive"),
    ("rsqrt", gc.rsqrt, "positive"),
    ("tanh", gc.tanh, "any"),
    ("sigmoid", gc.sigmoid, "any"),
    ("erf", gc.erf, "any"),
    ("relu", gc.relu, "apart"),
    ("leaky_relu", lambda x: gc.leaky_relu(x, 0.2), "apart"),
    ("gelu_none", gc.gelu, "any"),
    ("gelu_tanh", lambda x: gc.gelu(x, approximate="tanh"), "any"),
    ("softplus", gc.softplus, "any"),
    ("softplus_beta_threshold", lambda x: gc.softplus(x, beta=2.0, threshold=1.0), "apart"),
    ("cast_to_float64", lambda x: gc.cast(x * 1.0, "float64") * x, "any"),
    ("clip", lambda x: gc.clip(x, -0.05, 0.9), "apart"),
]


@pytest.mark.parametrize("shape", [(), (5,), (2, 3)], ids=str)
@pytest.mark.parametrize("name,build,domain", GRAD_UNARY, ids=[g[0] for g in GRAD_UNARY])
def test_unary_gradient_matches_central_differences(name, build, domain, shape):
    x = data(shape, domain, "float64", seed=11)
    if name == "softplus_beta_threshold":       # keep 2x away from the threshold 1
        x = np.where(np.abs(2 * x - 1.0) < 0.2, x + 0.3, x)
    if name == "clip":                          # keep x away from the bounds
        x = np.where(np.abs(x - 0.9) < 0.1, x + 0.3, x)
    check_grad(build, [x], tol=1e-6)


def test_unary_gradients_at_hand_points():
    x = gc.placeholder((3,), "float64")
    v = np.array([-2.0, 0.5, 3.0])
    grads = [gc.grad(gc.sum(f(x)), x) for f in (gc.relu, gc.abs, gc.sign, gc.sigmoid,
                                                lambda t: gc.leaky_relu(t, 0.1))]
    relu_g, abs_g, sign_g, sig_g, leaky_g = gc.compile(grads, inputs=[x],
                                                       device="reference")(v)
    np.testing.assert_array_equal(relu_g, [0.0, 1.0, 1.0])
    np.testing.assert_array_equal(abs_g, [-1.0, 1.0, 1.0])
    np.testing.assert_array_equal(sign_g, [0.0, 0.0, 0.0])
    s = 1 / (1 + np.exp(-v))
    np.testing.assert_allclose(sig_g, s * (1 - s), **F64)
    np.testing.assert_allclose(leaky_g, [0.1, 1.0, 1.0], **F64)


def test_relu_and_abs_gradients_at_zero_are_zero():
    x = gc.placeholder((1,), "float64")
    g_relu, g_abs = gc.compile([gc.grad(gc.sum(gc.relu(x)), x), gc.grad(gc.sum(gc.abs(x)), x)],
                               inputs=[x], device="reference")(np.zeros(1))
    assert g_relu.tolist() == [0.0] and g_abs.tolist() == [0.0]


def test_cast_gradient_is_cast_back_and_integer_casts_carry_none():
    x = gc.placeholder((3,), "float64")
    w = np.array([1.0, -2.0, 0.5], np.float32)
    g32 = gc.grad(gc.sum(gc.cast(x, "float32") * gc.constant(w)), x)
    gint = gc.grad(gc.sum(gc.cast(gc.cast(x, "int64"), "float64") * 2.0 + x), x)
    assert g32.dtype == np.float64
    v32, vint = gc.compile([g32, gint], inputs=[x], device="reference")(np.array([1.5, 2, 3]))
    assert v32.dtype == np.float64
    np.testing.assert_array_equal(v32, w.astype(np.float64))
    np.testing.assert_array_equal(vint, [1.0, 1.0, 1.0])


GRAD_PAIRS = [((3, 4), (4,)), ((2, 1, 3), (4, 3)), ((3, 4), (3, 4)), ((), (3,)), ((3, 1), ())]

GRAD_BINARY = [
    ("add", gc.add, "any", "any"),
    ("subtract", gc.subtract, "any", "any"),
    ("multiply", gc.multiply, "any", "any"),
    ("divide", gc.divide, "any", "apart"),
    ("power", gc.power, "positive", "any"),
    ("maximum", gc.maximum, "grid", "offgrid"),
    ("minimum", gc.minimum, "grid", "offgrid"),
]


def grad_data(shape, domain, seed):
    g = rng(seed)
    if domain == "grid":            # integers + small noise ...
        return g.integers(-3, 3, shape) + g.uniform(-0.1, 0.1, shape)
    if domain == "offgrid":         # ... half-integers + small noise: always >= 0.3 apart
        return g.integers(-3, 3, shape) + 0.5 + g.uniform(-0.1, 0.1, shape)
    return data(shape, domain, "float64", seed)


@pytest.mark.parametrize("sa,sb", GRAD_PAIRS, ids=str)
@pytest.mark.parametrize("name,build,da,db", GRAD_BINARY, ids=[g[0] for g in GRAD_BINARY])
def test_binary_gradient_matches_central_differences(name, build, da, db, sa, sb):
    a, b = grad_data(sa, da, seed=21), grad_data(sb, db, seed=22)
    check_grad(build, [a, b], tol=1e-6)


def test_power_gradient_with_a_constant_exponent_and_a_constant_base():
    x = data((2, 3), "positive", "float64", seed=23)
    check_grad(lambda t: t ** 3.0, [x], tol=1e-6)
    check_grad(lambda t: t ** -0.5, [x], tol=1e-6)
    check_grad(lambda t: 2.0 ** t, [x], tol=1e-6)


def test_power_exponent_gradient_is_zero_where_the_base_is_not_positive():
    a = gc.placeholder((3,), "float64")
    b = gc.placeholder((3,), "float64")
    gb = gc.grad(gc.sum(a ** b), b)
    value = gc.compile(gb, inputs=[a, b], device="reference")(
        np.array([-2.0, 0.0, 2.0]), np.array([2.0, 2.0, 3.0]))
    np.testing.assert_allclose(value, [0.0, 0.0, 8.0 * np.log(2.0)], **F64)


@pytest.mark.parametrize("device", ["reference", "cpu"])
def test_power_base_gradient_is_zero_where_the_exponent_is(device):
    """d(a ** 0)/da = 0 at a = 0 too (0 * 0 ** -1 was NaN), as PyTorch's; a constant
    exponent with no zero keeps the plain rule (no `where` in its graph)."""
    a, b = gc.placeholder((3,), "float64"), gc.placeholder((3,), "float64")
    grads = gc.grad(gc.sum(a ** b), [a]) + gc.grad(gc.sum(a ** 0.0), [a])
    ga, g0 = gc.compile(grads, inputs=[a, b], device=device)(
        np.array([0.0, 0.0, 2.0]), np.array([0.0, 2.0, 3.0]))
    np.testing.assert_allclose(ga, [0.0, 0.0, 12.0], **F64)
    np.testing.assert_array_equal(g0, [0.0, 0.0, 0.0])
    (plain,) = gc.grad(gc.sum(a ** 3.0), [a])
    assert "where" not in {n.op.name for n in plain.graph.ancestors([plain.node])}


def test_bool_minus_bool_is_refused_as_in_numpy():
    b = gc.placeholder((3,), "bool")
    with pytest.raises(gc.DtypeError, match="bool - bool is not defined"):
        b - b
    assert (b + b).dtype == np.bool_ and (b * b).dtype == np.bool_


def test_maximum_and_minimum_send_ties_to_the_first_operand():
    a, b = gc.placeholder((2,), "float64"), gc.placeholder((2,), "float64")
    grads = gc.grad(gc.sum(gc.maximum(a, b)), [a, b]) + gc.grad(gc.sum(gc.minimum(a, b)), [a, b])
    ga, gb, ha, hb = gc.compile(grads, inputs=[a, b], device="reference")(
        np.array([1.0, 2.0]), np.array([1.0, 3.0]))
    np.testing.assert_array_equal(ga, [1.0, 0.0])
    np.testing.assert_array_equal(gb, [0.0, 1.0])
    np.testing.assert_array_equal(ha, [1.0, 1.0])
    np.testing.assert_array_equal(hb, [0.0, 0.0])


@pytest.mark.parametrize("sc,sa,sb", [((3, 4), (3, 4), (3, 4)), ((3, 1), (4,), (3, 4)),
                                      ((2, 1, 1), (3, 1), (4,)), ((), (2,), (3, 1))], ids=str)
def test_where_gradient_matches_central_differences(sc, sa, sb):
    cond = np.asarray(rng(31).random(sc) < 0.5)
    a, b = data(sa, "any", "float64", 32), data(sb, "any", "float64", 33)
    check_grad(lambda c, x, y: gc.where(c, x, y) * gc.where(c, y, x), [cond, a, b], tol=1e-6)


def test_clip_gradient_with_broadcast_tensor_bounds():
    x = grad_data((3, 4), "grid", 41)
    lo = grad_data((4,), "offgrid", 42) - 1.0
    hi = lo + 2.0
    check_grad(gc.clip, [x, lo, hi], tol=1e-6)
