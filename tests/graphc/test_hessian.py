"""Grad of grad: Hessian-vector products built symbolically against differences
of the gradient, and second derivatives checked by hand."""
import numpy as np
import pytest

import graphc as gc
import helpers


def _derivatives(f, x0):
    """f(x0), f'(x0), f''(x0) for a scalar float64 function built with graph ops."""
    x = gc.placeholder((), "float64", name="x")
    y = f(x)
    d1 = gc.grad(y, x)
    d2 = gc.grad(d1, x)
    values = helpers.evaluate([y, d1, d2], {x: np.float64(x0)})
    assert [np.shape(v) for v in values] == [(), (), ()]     # scalars stay 0-d
    return [float(v) for v in values]


@pytest.mark.parametrize("x0,want", [(2.0, (8.0, 12.0, 12.0)), (3.0, (27.0, 27.0, 18.0)),
                                     (-1.0, (-1.0, 3.0, -6.0))])
def test_second_derivative_of_cube_by_hand(x0, want):
    assert _derivatives(lambda x: x ** 3, x0) == pytest.approx(want, rel=1e-12)


def test_third_derivative_of_cube_is_six():
    x = gc.placeholder((), "float64")
    d3 = gc.grad(gc.grad(gc.grad(x ** 3, x), x), x)
    assert float(helpers.evaluate(d3, {x: np.float64(5.0)})) == pytest.approx(6.0)


def test_second_derivative_of_tanh_by_hand():
    # d/dx tanh = 1 - t^2; d2/dx2 = -2 t (1 - t^2).
    t = np.tanh(0.7)
    assert _derivatives(gc.tanh, 0.7) == pytest.approx([t, 1 - t * t, -2 * t * (1 - t * t)],
                                                       rel=1e-12)


def test_second_derivative_of_product_is_mixed_partial():
    x, y = gc.placeholder((), "float64"), gc.placeholder((), "float64")
    gx = gc.grad(x * x * y, x)                 # 2 x y
    gxx, gxy = gc.grad(gx, [x, y])             # 2 y, 2 x
    out = helpers.evaluate([gxx, gxy], {x: np.float64(3.0), y: np.float64(5.0)})
    assert [float(v) for v in out] == [10.0, 6.0]


@pytest.mark.parametrize("shape", [(5,), (3, 4)])
def test_tanh_hvp(shape):
    helpers.check_hvp(gc.tanh, [helpers.rng(0).standard_normal(shape)])


@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((2, 3), (3,))])
def test_multiply_hvp(shapes):
    r = helpers.rng(1)
    helpers.check_hvp(lambda a, b: a * b * a, [r.standard_normal(s) for s in shapes])


@pytest.mark.parametrize("shapes", [((3, 4), (4, 2)), ((2, 3, 4), (4, 5))])
def test_matmul_hvp(shapes):
    r = helpers.rng(2)
    helpers.check_hvp(lambda a, b: gc.tanh(a @ b), [r.standard_normal(s) for s in shapes])


@pytest.mark.parametrize("shape", [(4, 5), (2, 3, 4)])
def test_softmax_cross_entropy_hvp_wrt_logits(shape):
    r = helpers.rng(3)
    labels = gc.constant(r.integers(0, shape[1], (shape[0],) + shape[2:]))
    helpers.check_hvp(lambda x: gc.nn.cross_entropy(x, labels), [r.standard_normal(shape)])


def test_softmax_cross_entropy_hessian_by_hand():
    # For one sample, the Hessian of CE w.r.t. logits is diag(p) - p p^T.
    logits = helpers.rng(4).standard_normal((1, 4))
    x = gc.placeholder((1, 4), "float64")
    ce = gc.nn.cross_entropy(x, gc.constant(np.array([2])))
    g = gc.grad(ce, x)
    rows = [gc.grad(g[0, i], x) for i in range(4)]
    hessian = np.concatenate(helpers.evaluate(rows, {x: logits}))
    p = np.exp(logits[0] - np.log(np.exp(logits[0]).sum()))
    np.testing.assert_allclose(hessian, np.diag(p) - np.outer(p, p), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("with_bias", [False, True])
def test_softmax_cross_entropy_through_linear_layer_hvp(with_bias):
    r = helpers.rng(5)
    labels = gc.constant(r.integers(0, 3, 6))
    arrays = [r.standard_normal((6, 4)), r.standard_normal((3, 4))]
    if with_bias:
        arrays.append(r.standard_normal(3))
    helpers.check_hvp(lambda x, *wb: gc.nn.cross_entropy(gc.nn.linear(x, *wb), labels), arrays)


def test_softmax_and_log_softmax_hvp():
    r = helpers.rng(6)
    helpers.check_hvp(lambda x: gc.nn.softmax(x, 0) * gc.nn.log_softmax(x, 1),
                      [r.standard_normal((3, 4))])


@pytest.mark.parametrize("xs,ws,kwargs", [
    ((2, 2, 5, 5), (3, 2, 3, 3), dict(stride=2, padding=1)),
    ((1, 4, 6, 5), (6, 2, 3, 2), dict(padding=(1, 0), groups=2)),
    ((1, 3, 7, 7), (3, 1, 3, 3), dict(stride=2, padding=2, dilation=2, groups=3)),
])
def test_conv2d_hvp(xs, ws, kwargs):
    r = helpers.rng(7)
    helpers.check_hvp(lambda x, w, b: gc.nn.softplus(gc.nn.conv2d(x, w, b, **kwargs)),
                      [r.standard_normal(xs), r.standard_normal(ws) * 0.5,
                       r.standard_normal(ws[0])])


def test_conv2d_hessian_wrt_input_is_zero_for_a_linear_loss():
    # sum(conv2d(x, w) * c) is linear in x: its x-x Hessian block vanishes,
    # while the x-w cross block does not.
    r = helpers.rng(8)
    x = gc.placeholder((1, 2, 4, 4), "float64")
    w = gc.placeholder((2, 2, 3, 3), "float64")
    y = gc.sum(gc.nn.conv2d(x, w, padding=1) * gc.constant(r.standard_normal((1, 2, 4, 4))))
    gx = gc.grad(y, x)
    v = gc.constant(r.standard_normal((1, 2, 4, 4)))
    hxx, hwx = gc.grad(gc.sum(gx * v), [x, w])
    out = helpers.evaluate([hxx, hwx], {x: r.standard_normal((1, 2, 4, 4)),
                                       w: r.standard_normal((2, 2, 3, 3))})
    np.testing.assert_array_equal(out[0], np.zeros((1, 2, 4, 4)))
    assert np.abs(out[1]).max() > 0.1
