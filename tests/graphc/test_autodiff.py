"""Autodiff semantics (DESIGN.md, "Autodiff"): zeros for unreached inputs,
stop_gradient, integer paths, broadcasting undone by summing, vector-Jacobian
products, accumulation, grad of grad, linear cost, None batch dimensions,
side updates, and gradient dtypes."""
import numpy as np
import pytest

import graphc as gc
from helpers import rng


def run(outputs, feeds=None):
    feeds = feeds or {}
    return gc.compile(outputs, inputs=list(feeds), device="reference")(*feeds.values())


def test_an_input_y_does_not_depend_on_gets_zeros_of_its_shape_and_dtype():
    x = gc.placeholder((3,), "float32", name="x")
    unused = gc.variable(np.ones((2, 5)), name="unused")          # float64
    batch = gc.placeholder((None, 4), "float32", name="batch")     # shape known when fed
    y = gc.sum(x * x)
    gx, gu, gb = gc.grad(y, [x, unused, batch])
    assert gu.shape == (2, 5) and gu.dtype == np.float64
    assert gb.shape == (None, 4) and gb.dtype == np.float32
    vx, vu, vb = gc.compile([gx, gu, gb], inputs=[x, batch], device="reference")(
        np.array([1.0, 2.0, 3.0], np.float32), np.ones((6, 4), np.float32))
    np.testing.assert_array_equal(vx, [2.0, 4.0, 6.0])
    assert vu.dtype == np.float64 and vu.shape == (2, 5) and not vu.any()
    assert vb.dtype == np.float32 and vb.shape == (6, 4) and not vb.any()


def test_stop_gradient_cuts_a_path():
    x = gc.placeholder((3,), "float64", name="x")
    y = gc.sum(x * gc.stop_gradient(x))
    data = np.array([1.5, -2.0, 3.0])
    value, g = run([y, gc.grad(y, x)], {x: data})
    assert value == pytest.approx(np.sum(data * data))
    np.testing.assert_allclose(g, data)                             # not 2x
    # a path cut everywhere leaves zeros
    cut = gc.grad(gc.sum(gc.stop_gradient(x) * 3.0), x)
    np.testing.assert_array_equal(run(cut, {x: data}), np.zeros(3))


def test_an_integer_valued_path_carries_no_gradient():
    x = gc.placeholder((4,), "float32", name="x")
    rounded = (x * 10.0).astype("int64").astype("float32")
    y = gc.sum(rounded * x)                                           # only the x factor counts
    g = gc.grad(y, x)
    data = np.array([0.25, 1.5, -0.75, 2.0], np.float32)
    np.testing.assert_allclose(run(g, {x: data}), np.trunc(data * 10.0), rtol=1e-6)
    through_int_only = gc.grad(gc.sum(rounded), x)
    np.testing.assert_array_equal(run(through_int_only, {x: data}), np.zeros(4, np.float32))


def test_broadcasting_is_undone_by_summing():
    m = gc.placeholder((3, 4), "float64", name="m")
    bias = gc.variable(np.zeros(4), name="bias")
    scale = gc.variable(np.ones((3, 1)), name="scale")
    y = (m + bias) * scale
    cotangent = rng(0).standard_normal((3, 4))
    data = rng(1).standard_normal((3, 4))
    g_bias, g_scale = gc.grad(y, [bias, scale], grad_y=gc.constant(cotangent))
    assert g_bias.shape == (4,) and g_scale.shape == (3, 1)
    vb, vs = run([g_bias, g_scale], {m: data})
    np.testing.assert_allclose(vb, cotangent.sum(axis=0))            # the column sum
    np.testing.assert_allclose(vs, (cotangent * data).sum(axis=1, keepdims=True))


def test_grad_y_gives_a_vector_jacobian_product():
    a = rng(2).standard_normal((3, 5))
    x = gc.placeholder((5,), "float64", name="x")
    v = gc.placeholder((3,), "float64", name="v")
    y = gc.tanh(gc.constant(a) @ x)                                   # J = diag(1 - y^2) A
    vjp = gc.grad(y, x, grad_y=v)
    xv, vv = rng(3).standard_normal(5), rng(4).standard_normal(3)
    expected = a.T @ (vv * (1 - np.tanh(a @ xv) ** 2))
    np.testing.assert_allclose(run(vjp, {x: xv, v: vv}), expected, rtol=1e-12)
    # a NumPy cotangent works too, and a wrongly shaped one is refused
    np.testing.assert_allclose(run(gc.grad(y, x, grad_y=vv), {x: xv}), expected, rtol=1e-12)
    with pytest.raises(gc.ShapeError, match=r"\(4,\).*\(3,\)"):
        gc.grad(y, x, grad_y=np.ones(4))


def test_grad_of_a_list_returns_a_list_and_of_a_tensor_returns_a_tensor():
    x = gc.placeholder((2,), "float64", name="x")
    y = gc.sum(x * x)
    single = gc.grad(y, x)
    listed = gc.grad(y, [x])
    tupled = gc.grad(y, (x, x))
    assert isinstance(single, gc.Tensor)
    assert isinstance(listed, list) and len(listed) == 1 and isinstance(listed[0], gc.Tensor)
    assert isinstance(tupled, list) and len(tupled) == 2
    data = np.array([1.0, -3.0])
    s, l0, t0, t1 = run([single, listed[0], *tupled], {x: data})
    for value in (s, l0, t0, t1):
        np.testing.assert_allclose(value, 2 * data)


def test_gradients_accumulate_over_every_use_of_a_node():
    x = gc.placeholder((4,), "float64", name="x")
    y = gc.sum(x * x + x)
    data = np.array([-1.0, 0.0, 0.5, 3.0])
    np.testing.assert_allclose(run(gc.grad(y, x), {x: data}), 2 * data + 1)
    h = gc.tanh(x)                                                     # one node, three uses
    z = gc.sum(h * h + h)
    t = np.tanh(data)
    np.testing.assert_allclose(run(gc.grad(z, x), {x: data}), (2 * t + 1) * (1 - t * t))


def test_grad_of_grad_gives_the_second_derivative():
    x = gc.placeholder((3,), "float64", name="x")
    y = gc.sum(x ** 3)
    first = gc.grad(y, x)
    second = gc.grad(gc.sum(first), x)
    third = gc.grad(gc.sum(second), x)
    data = np.array([-2.0, 0.5, 3.0])
    d1, d2, d3 = run([first, second, third], {x: data})
    np.testing.assert_allclose(d1, 3 * data ** 2)
    np.testing.assert_allclose(d2, 6 * data)
    np.testing.assert_allclose(d3, np.full(3, 6.0))


def _nodes_added_by_grad(n):
    with gc.Graph(f"chain{n}") as graph:
        x = gc.placeholder((8,), "float32", name="x")
        h = x
        for _ in range(n):
            h = gc.tanh(h)
        y = gc.sum(h)
        before = len(graph)
        gc.grad(y, x)
        return len(graph) - before


def test_the_gradient_graph_grows_linearly_with_the_chain():
    small, large = _nodes_added_by_grad(100), _nodes_added_by_grad(200)
    assert small <= 10 * 100
    assert large / small < 2.2


def test_grad_with_a_none_batch_dimension_is_right_for_every_batch_size():
    x = gc.placeholder((None, 4), "float32", name="x")
    w = gc.variable(rng(5).standard_normal((4, 3)).astype(np.float32), name="w")
    loss = gc.mean(gc.tanh(x @ w))
    gx, gw = gc.grad(loss, [x, w])
    assert gx.shape == (None, 4) and gw.shape == (4, 3)
    step = gc.compile([loss, gx, gw], inputs=[x], device="reference")
    wv = w.value.astype(np.float64)
    for rows in (5, 2):
        data = rng(rows).standard_normal((rows, 4)).astype(np.float32)
        lv, gxv, gwv = step(data)
        t = np.tanh(data.astype(np.float64) @ wv)
        upstream = (1 - t * t) / (rows * 3)                               # d mean / d (x @ w)
        assert lv == pytest.approx(t.mean(), rel=1e-5)
        assert gxv.shape == (rows, 4) and gxv.dtype == np.float32
        np.testing.assert_allclose(gxv, upstream @ wv.T, rtol=1e-4, atol=1e-7)
        np.testing.assert_allclose(gwv, data.T @ upstream, rtol=1e-4, atol=1e-7)
    assert step.stats["signatures"] == 2


def test_a_batch_norm_running_stats_update_joins_a_compiled_step_automatically():
    x = gc.placeholder((None, 3), "float32", name="x")
    gamma = gc.variable(np.ones(3, np.float32), name="gamma")
    running_mean = gc.variable(np.zeros(3, np.float32), name="running_mean")
    running_var = gc.variable(np.ones(3, np.float32), name="running_var")
    y = gc.nn.batch_norm(x, running_mean, running_var, gamma, None, training=True, momentum=0.1)
    loss = gc.mean(y * y * gc.constant(np.array([1.0, 2.0, 3.0], np.float32)))
    (g_gamma,) = gc.grad(loss, [gamma])
    step = gc.compile([loss], inputs=[x], updates={gamma: gamma - 0.1 * g_gamma},
                      device="reference")
    data = rng(6).standard_normal((8, 3)).astype(np.float32) * 2 + 1
    step(data)
    mean, var = data.mean(axis=0), data.var(axis=0, ddof=1)
    np.testing.assert_allclose(running_mean.value, 0.1 * mean, rtol=1e-5)
    np.testing.assert_allclose(running_var.value, 0.9 + 0.1 * var, rtol=1e-5)
    assert not np.array_equal(gamma.value, np.ones(3, np.float32))    # the user's update ran too
    step(data)
    np.testing.assert_allclose(running_mean.value, 0.19 * mean, rtol=1e-5)


def test_gradients_have_the_dtype_of_their_input():
    w = gc.variable(rng(8).standard_normal(3).astype(np.float32), name="w")
    c = gc.constant(np.array([1.0, 2.0, 3.0]))                          # float64
    y = gc.sum(w * c)
    assert y.dtype == np.float64
    gw, gc_ = gc.grad(y, [w, c])
    assert gw.dtype == np.float32 and gc_.dtype == np.float64
    vw, vc = run([gw, gc_])
    assert vw.dtype == np.float32 and vc.dtype == np.float64
    np.testing.assert_array_equal(vw, [1.0, 2.0, 3.0])
    np.testing.assert_allclose(vc, w.value, rtol=1e-7)


def _slice_grads(tensor):
    return [n for n in tensor.graph.ancestors([tensor.node]) if n.op.name == "slice_grad"]


def test_gradients_of_disjoint_slices_are_joined_into_one_concatenate():
    """An unrolled loop reading x[:, t]: one concatenate (zeros where no step read),
    not T zero-filled full-size tensors added up."""
    x = gc.placeholder((None, 7, 3), name="x")
    steps = [0, 1, 3, 4, 5]
    loss = sum(gc.sum(gc.tanh(x[:, t]) * (t + 1.0)) for t in steps)
    g = gc.grad(loss, x)
    assert g.node.op.name == "concatenate" and _slice_grads(g) == []
    xv = rng(3).standard_normal((2, 7, 3)).astype(np.float32)
    want = np.zeros_like(xv)
    for t in steps:
        want[:, t] = (t + 1.0) * (1 - np.tanh(xv[:, t]) ** 2)
    for device in ("reference", "cpu"):
        step = gc.compile(g, inputs=[x], device=device)
        np.testing.assert_allclose(step(xv), want, rtol=1e-5, atol=1e-6)
    assert step.stats["driver"] == "njit"       # concatenate runs inside the njit step


def test_overlapping_slices_keep_their_separate_gradients():
    x = gc.placeholder((6,), name="x")
    loss = gc.sum(x[0:4] * x[2:6])
    g = gc.grad(loss, x)
    assert len(_slice_grads(g)) == 2
    xv = np.arange(6, dtype=np.float32)
    want = np.zeros(6, np.float32)
    want[0:4] += xv[2:6]
    want[2:6] += xv[0:4]
    np.testing.assert_allclose(gc.compile(g, inputs=[x])(xv), want)
