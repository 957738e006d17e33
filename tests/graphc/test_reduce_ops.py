"""Reductions (DESIGN.md, "Ops" and "Testing"): sum, mean, max, min, prod,
logsumexp, argmax, argmin, var, std and sum_to against NumPy/SciPy over every
kind of axis, with keepdims, on size-1 and empty shapes; their dtype rules and
errors; and float64 gradient checks against central differences."""
import contextlib
import warnings

import numpy as np
import pytest

import graphc as gc
from helpers import check_grad, evaluate, rng

F32 = dict(rtol=1e-6, atol=1e-6)
F64 = dict(rtol=1e-12, atol=1e-12)


def run(build, x):
    ph = gc.placeholder(x.shape, x.dtype, name="x")
    out = build(ph)
    return out, np.asarray(evaluate(out, {ph: x}))


# (shape, axis) cases: None, int, negative int, tuples (also negative, unsorted), size-1 axes
CASES = [
    ((), None), ((), ()),
    ((5,), None), ((5,), 0), ((5,), -1),
    ((3, 4), None), ((3, 4), 0), ((3, 4), 1), ((3, 4), -1), ((3, 4), (0, 1)), ((3, 4), (-1, 0)),
    ((2, 3, 4), None), ((2, 3, 4), 1), ((2, 3, 4), -3), ((2, 3, 4), (0, 2)),
    ((2, 3, 4), (2, -2)), ((2, 3, 4), ()),
    ((1, 5), 0), ((1, 5), None), ((4, 1, 3), 1), ((4, 1, 3), (0, 1)), ((1, 1), (0, 1)),
]

REDUCTIONS = [
    ("sum", gc.sum, np.sum),
    ("mean", gc.mean, np.mean),
    ("max", gc.max, np.max),
    ("min", gc.min, np.min),
    ("prod", gc.prod, np.prod),
    ("logsumexp", gc.logsumexp, lambda x, **kw: np.log(np.sum(np.exp(x), **kw))),
]


@pytest.mark.parametrize("keepdims", [False, True], ids=["nokeep", "keep"])
@pytest.mark.parametrize("shape,axis", CASES, ids=[f"{s}-{a}" for s, a in CASES])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name,build,expect", REDUCTIONS, ids=[r[0] for r in REDUCTIONS])
def test_float_reduction_matches_numpy(name, build, expect, dtype, shape, axis, keepdims):
    x = rng(len(shape)).uniform(0.5, 1.5, shape).astype(dtype)
    out, value = run(lambda t: build(t, axis=axis, keepdims=keepdims), x)
    want = np.asarray(expect(x.astype(np.float64), axis=axis, keepdims=keepdims))
    assert out.shape == want.shape and out.dtype == np.dtype(dtype)
    assert value.shape == want.shape and value.dtype == np.dtype(dtype)
    np.testing.assert_allclose(value, want, rtol=1e-5 if dtype == "float32" else 1e-12)


@pytest.mark.parametrize("name,build,expect", [r for r in REDUCTIONS if r[0] != "logsumexp"],
                         ids=[r[0] for r in REDUCTIONS if r[0] != "logsumexp"])
@pytest.mark.parametrize("axis", [None, 0, 1, (0, 1)])
def test_integer_reduction_matches_numpy(name, build, expect, axis):
    x = np.array([[3, -1, 2], [4, 5, -2]], np.int32)
    _, value = run(lambda t: build(t, axis=axis), x)
    want = expect(x.astype(np.int64), axis=axis)
    np.testing.assert_allclose(value, want, rtol=1e-6)


def test_reduction_hand_values():
    x = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert run(gc.sum, x)[1] == 21.0
    np.testing.assert_array_equal(run(lambda t: gc.sum(t, axis=0), x)[1], [5.0, 7.0, 9.0])
    np.testing.assert_array_equal(run(lambda t: gc.mean(t, axis=1), x)[1], [2.0, 5.0])
    np.testing.assert_array_equal(run(lambda t: gc.max(t, axis=-1, keepdims=True), x)[1],
                                  [[3.0], [6.0]])
    np.testing.assert_array_equal(run(lambda t: gc.min(t, axis=0), x)[1], [1.0, 2.0, 3.0])
    assert run(gc.prod, x)[1] == 720.0
    np.testing.assert_allclose(run(lambda t: gc.logsumexp(t, axis=1), np.zeros((2, 4)))[1],
                               [np.log(4.0)] * 2, **F64)


def test_logsumexp_is_stable_for_large_inputs():
    x = np.array([[1000.0, 1000.0], [-1000.0, -1001.0]])
    _, value = run(lambda t: gc.logsumexp(t, axis=1), x)
    np.testing.assert_allclose(value, [1000.0 + np.log(2.0), -1000.0 + np.log1p(np.exp(-1.0))],
                               **F64)


@pytest.mark.parametrize("name,build,expect", [("sum", gc.sum, np.sum),
                                               ("prod", gc.prod, np.prod),
                                               ("mean", gc.mean, np.mean)],
                         ids=lambda v: v if isinstance(v, str) else "")
@pytest.mark.parametrize("shape,axis,keepdims", [
    ((0,), None, False), ((0, 3), None, False), ((0, 3), 0, False), ((0, 3), 0, True),
    ((0, 3), 1, False), ((3, 0), 0, True), ((2, 0, 4), (1, 2), False),
], ids=str)
def test_empty_reductions_follow_numpy(name, build, expect, shape, axis, keepdims):
    x = np.zeros(shape, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"), _quiet():
        want = np.asarray(expect(x, axis=axis, keepdims=keepdims))
        out, value = run(lambda t: build(t, axis=axis, keepdims=keepdims), x)
    assert out.shape == want.shape and value.shape == want.shape
    np.testing.assert_array_equal(value, want)        # sum 0, prod 1, mean NaN (nan == nan)


@contextlib.contextmanager
def _quiet():
    """Silence NumPy's 'mean of empty slice' warnings (the result is NaN, as NumPy's)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def test_logsumexp_of_a_scalar_or_over_no_axes_is_the_input():
    # (scipy's logsumexp returns shape (1,) for a 0-d input; graphc keeps NumPy's ())
    for axis, keepdims in [(None, False), (None, True), ((), False)]:
        out, value = run(lambda t: gc.logsumexp(t, axis=axis, keepdims=keepdims),
                         np.array(0.75))
        assert out.shape == () and value.shape == () and value == 0.75
    x = rng(9).standard_normal((2, 3))
    out, value = run(lambda t: gc.logsumexp(t, axis=()), x)
    assert out.shape == (2, 3)
    np.testing.assert_allclose(value, x, **F64)


def test_logsumexp_over_an_empty_axis_is_minus_inf():
    out, value = run(lambda t: gc.logsumexp(t, axis=0), np.zeros((0, 3)))
    assert out.shape == (3,)
    np.testing.assert_array_equal(value, [-np.inf] * 3)
    out, value = run(gc.logsumexp, np.zeros((0, 3)))     # every axis (scipy raised)
    assert out.shape == () and value == -np.inf


@pytest.mark.parametrize("device", ["reference", "cpu"])
def test_softmaxes_and_logsumexp_over_an_empty_axis_agree_on_every_device(device):
    x = gc.placeholder((None, 3), name="x")
    outputs = [gc.logsumexp(x, axis=0), gc.logsumexp(x, axis=0, keepdims=True),
               gc.nn.softmax(x, axis=0), gc.nn.log_softmax(x, axis=0), gc.nn.softmax(x, axis=1)]
    got = gc.compile(outputs, inputs=[x], device=device)(np.zeros((0, 3), np.float32))
    np.testing.assert_array_equal(got[0], np.full(3, -np.inf, np.float32))
    np.testing.assert_array_equal(got[1], np.full((1, 3), -np.inf, np.float32))
    assert [g.shape for g in got[2:]] == [(0, 3)] * 3
    assert all(g.dtype == np.float32 for g in got)


def test_sum_and_prod_of_empty_are_the_identities():
    _, s = run(gc.sum, np.zeros((0, 3), np.float32))
    _, p = run(gc.prod, np.zeros((0, 3), np.float32))
    assert s == 0.0 and p == 1.0


@pytest.mark.parametrize("build", [gc.max, gc.min], ids=["max", "min"])
def test_max_and_min_over_an_empty_axis_raise_shape_error(build):
    x = gc.placeholder((0, 3), "float32")
    with pytest.raises(gc.ShapeError):
        build(x)
    with pytest.raises(gc.ShapeError):
        build(x, axis=0)
    with pytest.raises(gc.ShapeError):
        build(x, axis=(0, 1), keepdims=True)


@pytest.mark.parametrize("build", [gc.max, gc.min], ids=["max", "min"])
def test_max_over_a_non_empty_axis_of_an_empty_tensor_is_empty(build):
    x = np.zeros((0, 3), np.float32)
    out, value = run(lambda t: build(t, axis=1), x)
    assert out.shape == (0,) and value.shape == (0,)


@pytest.mark.parametrize("build", [gc.sum, gc.max, gc.mean, gc.argmax],
                         ids=["sum", "max", "mean", "argmax"])
@pytest.mark.parametrize("axis", [2, -3, 5])
def test_out_of_range_axis_raises_shape_error(build, axis):
    with pytest.raises(gc.ShapeError):
        build(gc.placeholder((3, 4)), axis=axis)


@pytest.mark.parametrize("build", [gc.sum, gc.max, gc.prod, gc.logsumexp],
                         ids=["sum", "max", "prod", "logsumexp"])
def test_repeated_axis_raises_shape_error(build):
    with pytest.raises(gc.ShapeError):
        build(gc.placeholder((3, 4)), axis=(1, -1))


# -- dtypes ------------------------------------------------------------------------------

def test_sum_of_int32_is_int64():
    x = np.array([2 ** 30, 2 ** 30, 2 ** 30], np.int32)      # overflows int32
    out, value = run(gc.sum, x)
    assert out.dtype == np.int64 and value.dtype == np.int64
    assert value == 3 * 2 ** 30


def test_sum_of_bool_counts_as_int64():
    x = np.array([[True, False, True], [True, True, False]])
    out, value = run(lambda t: gc.sum(t, axis=1), x)
    assert out.dtype == np.int64
    np.testing.assert_array_equal(value, [2, 2])


def test_prod_of_int32_is_int64():
    x = np.array([2 ** 20, 2 ** 20], np.int32)
    out, value = run(gc.prod, x)
    assert out.dtype == np.int64 and value == 2 ** 40


@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_mean_of_int_is_float32(dtype):
    x = np.array([[1, 2], [4, 4]], dtype)
    out, value = run(lambda t: gc.mean(t, axis=0), x)
    assert out.dtype == np.float32 and value.dtype == np.float32
    np.testing.assert_array_equal(value, [2.5, 3.0])


@pytest.mark.parametrize("device", ["reference", "cpu"])
def test_mean_of_int_sums_exactly_then_divides_in_float64(device):
    """As NumPy's: 16777217 is not a float32, so adding float32 casts gave 0, not 0.5."""
    x = gc.placeholder((2,), "int32")
    (value,) = gc.compile([gc.mean(x)], inputs=[x], device=device)(
        np.array([16777217, -16777216], np.int32))
    assert value == np.float32(0.5)


@pytest.mark.parametrize("device", ["reference", "cpu"])
def test_var_with_ddof_at_least_n_is_inf_as_numpy(device):
    x = gc.placeholder((3,), "float32")
    out = gc.compile([gc.var(x, ddof=5), gc.std(x, ddof=3)], inputs=[x], device=device)(
        np.array([1, 2, 3], np.float32))
    with np.errstate(divide="ignore", invalid="ignore"):
        want = [np.var([1, 2, 3], ddof=5), np.std([1, 2, 3], ddof=3)]
    assert np.isinf(want).all() and np.array_equal(np.asarray(out, np.float64), want)


@pytest.mark.parametrize("device", ["reference", "cpu"])
@pytest.mark.parametrize("axis", [None, 1, 0])
def test_prod_gradient_is_the_product_of_the_others_at_zeros_too(device, axis):
    """PyTorch's rule: y / x was 0 / 0 = NaN at a zero; with one zero in a row its
    gradient is the others' product, with two every gradient there is 0."""
    value = np.array([[0., 2., 3.], [4., 0., 0.], [1., 2., 3.]])
    x = gc.placeholder(value.shape, "float64")
    (dx,) = gc.grad(gc.sum(gc.prod(x, axis=axis) * 1.5), [x])
    (got,) = gc.compile([dx], inputs=[x], device=device)(value)
    want = np.zeros_like(value)
    for i in np.ndindex(value.shape):
        step = np.zeros_like(value)
        step[i] = 1e-6
        want[i] = 1.5 * (np.sum(np.prod(value + step, axis=axis))
                         - np.sum(np.prod(value - step, axis=axis))) / 2e-6
    np.testing.assert_allclose(got, want, atol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64"])
def test_max_min_keep_the_input_dtype_and_float_sums_keep_theirs(dtype):
    x = gc.placeholder((3, 4), dtype)
    assert gc.max(x, axis=0).dtype == np.dtype(dtype)
    assert gc.min(x).dtype == np.dtype(dtype)
    if dtype.startswith("float"):
        assert gc.sum(x).dtype == np.dtype(dtype)
        assert gc.mean(x).dtype == np.dtype(dtype)
        assert gc.logsumexp(x).dtype == np.dtype(dtype)


def test_logsumexp_of_integers_is_a_dtype_error():
    with pytest.raises(gc.DtypeError):
        gc.logsumexp(gc.placeholder((3,), "int32"))


def test_max_of_bool_is_a_dtype_error():
    with pytest.raises(gc.DtypeError):
        gc.max(gc.placeholder((3,), "bool"))


def test_tensor_methods_build_the_same_reductions():
    x = gc.placeholder((2, 3), "float64")
    ys = [x.sum(), x.sum(1, keepdims=True), x.mean(0), x.max(-1), x.min()]
    assert [y.op for y in ys] == ["sum", "sum", "mean", "max", "min"]
    v = rng(1).standard_normal((2, 3))
    got = gc.compile(ys, inputs=[x], device="reference")(v)
    want = [v.sum(), v.sum(1, keepdims=True), v.mean(0), v.max(-1), v.min()]
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, **F64)


# -- argmax / argmin -----------------------------------------------------------------------

ARG_CASES = [((5,), None), ((5,), 0), ((5,), -1), ((3, 4), None), ((3, 4), 0), ((3, 4), 1),
             ((3, 4), -2), ((2, 3, 4), 1), ((2, 3, 4), -1), ((1, 4), 0), ((4, 1), 1),
             ((0, 3), 1), ((), None)]


@pytest.mark.parametrize("keepdims", [False, True], ids=["nokeep", "keep"])
@pytest.mark.parametrize("shape,axis", ARG_CASES, ids=[f"{s}-{a}" for s, a in ARG_CASES])
@pytest.mark.parametrize("dtype", ["float32", "int32"])
@pytest.mark.parametrize("name,build,expect", [("argmax", gc.argmax, np.argmax),
                                               ("argmin", gc.argmin, np.argmin)],
                         ids=["argmax", "argmin"])
def test_arg_reduction_matches_numpy(name, build, expect, dtype, shape, axis, keepdims):
    x = rng(2).integers(-3, 4, shape).astype(dtype)      # ties: the first index wins
    out, value = run(lambda t: build(t, axis=axis, keepdims=keepdims), x)
    want = expect(x, axis=axis, keepdims=keepdims)
    assert out.shape == want.shape and out.dtype == np.int64
    assert value.dtype == np.int64
    np.testing.assert_array_equal(value, want)


def test_argmax_and_argmin_pick_the_first_of_ties():
    x = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 0.0, 0.0]])
    _, amax = run(lambda t: gc.argmax(t, axis=1), x)
    _, amin = run(lambda t: gc.argmin(t, axis=1), x)
    _, flat = run(gc.argmax, x)
    assert amax.tolist() == [1, 0] and amin.tolist() == [3, 2] and int(flat) == 1


@pytest.mark.parametrize("build", [gc.argmax, gc.argmin], ids=["argmax", "argmin"])
def test_arg_reduction_of_an_empty_axis_raises_shape_error(build):
    x = gc.placeholder((0, 3), "float32")
    with pytest.raises(gc.ShapeError):
        build(x)
    with pytest.raises(gc.ShapeError):
        build(x, axis=0)


# -- var / std --------------------------------------------------------------------------

VAR_CASES = [((6,), None), ((3, 4), None), ((3, 4), 0), ((3, 4), -1), ((2, 3, 4), (0, 2)),
             ((4, 1, 3), 1), ((1, 5), 0)]


@pytest.mark.parametrize("ddof", [0, 1])
@pytest.mark.parametrize("keepdims", [False, True], ids=["nokeep", "keep"])
@pytest.mark.parametrize("shape,axis", VAR_CASES, ids=[f"{s}-{a}" for s, a in VAR_CASES])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name,build,expect", [("var", gc.var, np.var), ("std", gc.std, np.std)],
                         ids=["var", "std"])
def test_var_and_std_match_numpy(name, build, expect, dtype, shape, axis, keepdims, ddof):
    x = rng(3).standard_normal(shape).astype(dtype)
    out, value = run(lambda t: build(t, axis=axis, keepdims=keepdims, ddof=ddof), x)
    with np.errstate(divide="ignore", invalid="ignore"), _quiet():
        want = np.asarray(expect(x.astype(np.float64), axis=axis, keepdims=keepdims, ddof=ddof))
    assert out.shape == want.shape and out.dtype == np.dtype(dtype)
    assert value.dtype == np.dtype(dtype)
    np.testing.assert_allclose(value, want, rtol=1e-5 if dtype == "float32" else 1e-12,
                               atol=1e-6 if dtype == "float32" else 1e-12)


def test_var_and_std_hand_values():
    x = np.array([[1.0, 3.0], [2.0, 6.0]])
    _, v = run(lambda t: gc.var(t, axis=1), x)
    _, s = run(lambda t: gc.std(t, axis=0, ddof=1), x)
    np.testing.assert_allclose(v, [1.0, 4.0], **F64)
    np.testing.assert_allclose(s, [np.sqrt(0.5), np.sqrt(4.5)], **F64)


def test_var_with_a_none_batch_dimension_uses_the_fed_size():
    x = gc.placeholder((None, 3), "float64")
    v = rng(4).standard_normal((5, 3))
    y = gc.var(x, axis=0)
    assert y.shape == (3,)
    np.testing.assert_allclose(evaluate(y, {x: v}), np.var(v, axis=0), **F64)
    np.testing.assert_allclose(evaluate(gc.mean(x), {x: v[:2]}), np.mean(v[:2]), **F64)


# -- sum_to -------------------------------------------------------------------------------

SUM_TO = [((3, 4), (4,)), ((3, 4), (1, 4)), ((3, 4), (3, 1)), ((3, 4), ()), ((3, 4), (3, 4)),
          ((2, 3, 4), (3, 1)), ((2, 3, 4), (2, 1, 4)), ((2, 1, 4), (1, 4)), ((5,), (1,)),
          ((0, 3), (3,)), ((1, 1), (1,))]


def numpy_sum_to(x, target):
    lead = x.ndim - len(target)
    axes = tuple(range(lead)) + tuple(lead + i for i, t in enumerate(target)
                                      if t == 1 and x.shape[lead + i] != 1)
    return np.sum(x, axis=axes, keepdims=True).reshape(target)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32"])
@pytest.mark.parametrize("shape,target", SUM_TO, ids=str)
def test_sum_to_matches_numpy(shape, target, dtype):
    x = (rng(5).standard_normal(shape) * 4).astype(dtype)
    out, value = run(lambda t: gc.sum_to(t, target), x)
    want = numpy_sum_to(x, target)
    assert out.shape == tuple(target) and out.dtype == np.dtype(dtype)
    assert value.shape == tuple(target) and value.dtype == np.dtype(dtype)
    np.testing.assert_allclose(value, want, rtol=1e-5 if dtype == "float32" else 1e-12)
    # sum_to undoes broadcast_to: broadcasting back and summing again is the same
    assert np.broadcast_to(want, shape).shape == shape


def test_sum_to_hand_values():
    x = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(run(lambda t: gc.sum_to(t, (3,)), x)[1], [3.0, 5.0, 7.0])
    np.testing.assert_array_equal(run(lambda t: gc.sum_to(t, (2, 1)), x)[1], [[3.0], [12.0]])
    assert run(lambda t: gc.sum_to(t, ()), x)[1] == 15.0


@pytest.mark.parametrize("shape,target", [((3, 4), (3,)), ((3, 4), (2, 4)), ((4,), (3, 4)),
                                          ((3, 4), (5, 1))], ids=str)
def test_sum_to_a_shape_that_does_not_broadcast_raises_shape_error(shape, target):
    with pytest.raises(gc.ShapeError):
        gc.sum_to(gc.placeholder(shape), target)


# -- gradients (float64, central differences) ------------------------------------------------

GRAD_CASES = [((5,), None, False), ((3, 4), None, True), ((3, 4), 0, False), ((3, 4), -1, True),
              ((2, 3, 4), (0, 2), False), ((2, 3, 4), 1, True), ((2, 1, 3), (1, 2), False),
              ((), None, False)]
GRAD_REDUCTIONS = [("sum", gc.sum), ("mean", gc.mean), ("max", gc.max), ("min", gc.min),
                   ("prod", gc.prod), ("logsumexp", gc.logsumexp)]


def distinct(shape, seed):
    """Distinct values of both signs with |x| >= 0.5, well apart (no ties for max/min)."""
    n = int(np.prod(shape, dtype=np.int64))
    values = (rng(seed).permutation(n) - n / 2 + 0.25) * 0.3
    values = np.sign(values) * (np.abs(values) + 0.5)
    return values.reshape(shape)


@pytest.mark.parametrize("shape,axis,keepdims", GRAD_CASES, ids=str)
@pytest.mark.parametrize("name,build", GRAD_REDUCTIONS, ids=[g[0] for g in GRAD_REDUCTIONS])
def test_reduction_gradient_matches_central_differences(name, build, shape, axis, keepdims):
    x = distinct(shape, seed=len(shape))
    check_grad(lambda t: build(t, axis=axis, keepdims=keepdims), [x], tol=1e-6)


@pytest.mark.parametrize("ddof", [0, 1])
@pytest.mark.parametrize("shape,axis,keepdims", [c for c in GRAD_CASES if c[0] != ()], ids=str)
@pytest.mark.parametrize("name,build", [("var", gc.var), ("std", gc.std)], ids=["var", "std"])
def test_var_std_gradient_matches_central_differences(name, build, shape, axis, keepdims, ddof):
    x = rng(7).standard_normal(shape)
    check_grad(lambda t: build(t, axis=axis, keepdims=keepdims, ddof=ddof), [x], tol=1e-6)


@pytest.mark.parametrize("shape,target", [s for s in SUM_TO if 0 not in s[0]], ids=str)
def test_sum_to_gradient_matches_central_differences(shape, target):
    x = rng(8).standard_normal(shape)
    check_grad(lambda t: gc.sum_to(t, target), [x], tol=1e-6)


def test_max_gradient_is_shared_evenly_among_ties():
    x = gc.placeholder((2, 3), "float64")
    g_max = gc.grad(gc.sum(gc.max(x, axis=1)), x)
    g_min = gc.grad(gc.min(x), x)
    v = np.array([[1.0, 4.0, 4.0], [2.0, 2.0, 2.0]])
    gm, gn = gc.compile([g_max, g_min], inputs=[x], device="reference")(v)
    np.testing.assert_allclose(gm, [[0.0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]], **F64)
    np.testing.assert_allclose(gn, [[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]], **F64)


def test_sum_and_mean_gradient_hand_values_with_a_none_dimension():
    x = gc.placeholder((None, 2), "float64")
    gs = gc.grad(gc.sum(x * 3.0), x)
    gm = gc.grad(gc.mean(x), x)
    vs, vm = gc.compile([gs, gm], inputs=[x], device="reference")(np.ones((4, 2)))
    np.testing.assert_allclose(vs, np.full((4, 2), 3.0), **F64)
    np.testing.assert_allclose(vm, np.full((4, 2), 1 / 8), **F64)
