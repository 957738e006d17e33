"""gc.nn's activations (the functions, graphc/nn/functional.py, and the modules,
graphc/nn/activations.py) against NumPy float64 computations of PyTorch's formulas,
their gradients against finite differences, and adaptive average pooling."""
import numpy as np
import pytest
from scipy import special

import graphc as gc
import helpers

SHAPES = [(3, 5), (2, 3, 4)]


def run(outputs, feeds=None):
    return helpers.evaluate(outputs, feeds)


def np_softplus(x):
    with np.errstate(invalid="ignore"):         # NaN in, NaN out
        return np.logaddexp(0.0, x)


# (name, gc function, NumPy reference, PyTorch's gradient at the kinks (x, dy/dx) or ())
ACTIVATIONS = [
    ("silu", gc.nn.silu, lambda x: x / (1 + np.exp(-x)), ()),
    ("mish", gc.nn.mish, lambda x: x * np.tanh(np_softplus(x)), ()),
    ("logsigmoid", gc.nn.logsigmoid, lambda x: -np_softplus(-x), ()),
    ("elu", lambda x: gc.nn.elu(x, 0.7), lambda x: np.where(x > 0, x, 0.7 * np.expm1(x)),
     ((0.0, 0.7),)),
    ("hardtanh", lambda x: gc.nn.hardtanh(x, -0.5, 2.0), lambda x: np.clip(x, -0.5, 2.0),
     ((-0.5, 0.0), (2.0, 0.0))),
    ("relu6", gc.nn.relu6, lambda x: np.clip(x, 0, 6), ((0.0, 0.0), (6.0, 0.0))),
]
IDS = [a[0] for a in ACTIVATIONS]


@pytest.mark.parametrize("device", ["reference", "cpu"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name, function, reference, kinks", ACTIVATIONS, ids=IDS)
def test_activations_match_numpy_nan_included(name, function, reference, kinks, dtype, device):
    x = np.concatenate([np.linspace(-8, 8, 33), [-100.0, 100.0, np.nan]]).astype(dtype)
    xp = gc.placeholder(x.shape, dtype)
    got = gc.compile(function(xp), inputs=[xp], device=device)(x)
    assert got.dtype == np.dtype(dtype)
    tol = 2e-6 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(got, reference(x.astype(np.float64)), rtol=tol, atol=tol)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name, function, reference, kinks", ACTIVATIONS, ids=IDS)
def test_activation_gradients_match_central_differences(name, function, reference, kinks,
                                                        shape):
    x = helpers.rng(40).standard_normal(shape) * 4
    for kink, _ in kinks:                       # away from the kinks
        x = np.where(np.abs(x - kink) < 1e-3, kink + 0.5, x)
    helpers.check_grad(function, [x])


@pytest.mark.parametrize("device", ["reference", "cpu"])
@pytest.mark.parametrize("name, function, reference, kinks",
                         [a for a in ACTIVATIONS if a[3]], ids=[a[0] for a in ACTIVATIONS if a[3]])
def test_activation_gradients_at_their_kinks_are_pytorchs(name, function, reference, kinks,
                                                          device):
    x = gc.placeholder((len(kinks),), "float64")
    (g,) = gc.grad(gc.sum(function(x)), [x])
    got = gc.compile(g, inputs=[x], device=device)(np.array([k for k, _ in kinks]))
    np.testing.assert_allclose(got, [slope for _, slope in kinks], rtol=1e-12)


@pytest.mark.parametrize("device", ["reference", "cpu"])
def test_elu_gradient_of_large_inputs_is_finite(device):
    # e^x of the branch not taken must not reach the gradient (0 * inf)
    x = gc.placeholder((3,))
    (g,) = gc.grad(gc.sum(gc.nn.elu(x)), [x])
    got = gc.compile(g, inputs=[x], device=device)(np.array([100.0, 1000.0, -100.0], np.float32))
    np.testing.assert_allclose(got, [1.0, 1.0, np.exp(-100.0)], rtol=1e-6, atol=1e-45)


def test_hardtanh_refuses_bounds_that_cross():
    with pytest.raises(gc.ArgumentError, match="hardtanh: min_val 2 must not exceed max_val 1"):
        gc.nn.hardtanh(gc.placeholder((3,)), 2.0, 1.0)
    with pytest.raises(gc.ArgumentError, match="elu: alpha must be a real number") as info:
        gc.nn.elu(gc.placeholder((3,)), alpha="1")
    assert info.value.loc.file == __file__


MODULES = [
    (gc.nn.SiLU(), gc.nn.silu, "SiLU()"),
    (gc.nn.Mish(), gc.nn.mish, "Mish()"),
    (gc.nn.LogSigmoid(), gc.nn.logsigmoid, "LogSigmoid()"),
    (gc.nn.ELU(alpha=0.5), lambda x: gc.nn.elu(x, 0.5), "ELU(alpha=0.5)"),
    (gc.nn.Hardtanh(-2.0, 3.0), lambda x: gc.nn.hardtanh(x, -2.0, 3.0),
     "Hardtanh(min_val=-2.0, max_val=3.0)"),
    (gc.nn.ReLU6(), gc.nn.relu6, "ReLU6()"),
    (gc.nn.Softplus(beta=2.0, threshold=10.0), lambda x: gc.nn.softplus(x, 2.0, 10.0),
     "Softplus(beta=2.0, threshold=10.0)"),
]


@pytest.mark.parametrize("ndim, axis", [(1, 0), (2, 1), (3, 0), (4, 1)])
def test_softmax_without_dim_takes_pytorchs_implicit_axis_and_warns(ndim, axis):
    x = helpers.rng(44).standard_normal((2, 3, 4, 5)[:ndim])
    for module, function in ((gc.nn.Softmax(), gc.nn.softmax),
                             (gc.nn.LogSoftmax(), gc.nn.log_softmax)):
        with pytest.warns(UserWarning, match="Implicit dimension choice .* deprecated"):
            y = module(gc.constant(x))
        np.testing.assert_array_equal(*run([y, function(gc.constant(x), axis)]))
    assert repr(gc.nn.Softmax()) == "Softmax(dim=None)"


@pytest.mark.parametrize("module, function, text", MODULES, ids=[m[2] for m in MODULES])
def test_activation_modules_call_their_function(module, function, text):
    x = gc.constant(helpers.rng(41).standard_normal((3, 4)) * 4)
    got, want = run([module(x), function(x)])
    np.testing.assert_array_equal(got, want)
    assert repr(module) == text


def test_gelu_and_leaky_relu_match_numpy():
    x = np.linspace(-4, 4, 17)
    xc = gc.constant(x)
    exact, approx, leaky = run([gc.nn.gelu(xc), gc.nn.gelu(xc, approximate="tanh"),
                                gc.nn.leaky_relu(xc, 0.2)])
    np.testing.assert_allclose(exact, x * 0.5 * (1 + special.erf(x / np.sqrt(2))), rtol=1e-12,
                               atol=1e-15)
    tanh_form = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))
    np.testing.assert_allclose(approx, tanh_form, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(leaky, np.where(x > 0, x, 0.2 * x))


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("shape", SHAPES)
def test_gelu_gradient(shape, approximate):
    x = helpers.rng(31).standard_normal(shape) * 2
    helpers.check_grad(lambda t: gc.nn.gelu(t, approximate=approximate), [x])


@pytest.mark.parametrize("slope", [0.01, 0.3])
@pytest.mark.parametrize("shape", SHAPES)
def test_leaky_relu_gradient(shape, slope):
    x = helpers.rng(32).standard_normal(shape)
    x = np.where(np.abs(x) < 1e-3, 0.5, x)       # away from the kink
    helpers.check_grad(lambda t: gc.nn.leaky_relu(t, slope), [x])


# -- adaptive average pooling --------------------------------------------------------------

def np_adaptive_avg_pool2d(x, out):
    """PyTorch's bins: rows floor(i H / out) to ceil((i + 1) H / out)."""
    (h, w), (oh, ow) = x.shape[2:], out
    y = np.empty(x.shape[:2] + (oh, ow))
    for i in range(oh):
        for j in range(ow):
            rows = slice(i * h // oh, -(-(i + 1) * h // oh))
            cols = slice(j * w // ow, -(-(j + 1) * w // ow))
            y[:, :, i, j] = x[:, :, rows, cols].mean(axis=(2, 3))
    return y


@pytest.mark.parametrize("output_size, out", [
    (1, (1, 1)), ((2, 5), (2, 5)), ((3, 4), (3, 4)), ((7, 3), (7, 3)), ((None, 4), (6, 4)),
    (6, (6, 6)), ((4, 10), (4, 10))])
def test_adaptive_avg_pool2d_matches_pytorchs_bins_and_its_gradient(output_size, out):
    x = helpers.rng(42).standard_normal((2, 3, 6, 10))
    got = run(gc.nn.adaptive_avg_pool2d(gc.constant(x), output_size))
    np.testing.assert_allclose(got, np_adaptive_avg_pool2d(x, out), rtol=1e-12)
    helpers.check_grad(lambda t: gc.nn.adaptive_avg_pool2d(t, output_size), [x[:1, :2]])


def test_adaptive_avg_pool2d_module_on_the_cpu_device_and_with_unknown_batch():
    x = gc.placeholder((None, 2, 5, 7))
    pool = gc.nn.AdaptiveAvgPool2d((2, 3))
    assert repr(pool) == "AdaptiveAvgPool2d(output_size=(2, 3))"
    feed = helpers.rng(43).standard_normal((3, 2, 5, 7)).astype(np.float32)
    got = gc.compile(pool(x), inputs=[x], device="cpu")(feed)
    np.testing.assert_allclose(got, np_adaptive_avg_pool2d(feed.astype(np.float64), (2, 3)),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape, output_size, error, words", [
    ((2, 3, 4), 2, gc.ShapeError, r"\(N, C, H, W\) input"),
    ((2, 3, 4, 4), (2, 2, 2), gc.ArgumentError, "an int or a pair"),
    ((2, 3, 4, 4), 0, gc.ArgumentError, "output_size"),
])
def test_adaptive_avg_pool2d_refuses_bad_input(shape, output_size, error, words):
    with pytest.raises(error, match=words):
        gc.nn.adaptive_avg_pool2d(gc.placeholder(shape), output_size)
