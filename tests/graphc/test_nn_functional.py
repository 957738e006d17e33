"""gc.nn functions against NumPy float64 computations (PyTorch's formulas), the
running statistics of batch norm, dropout's masks, and gradients."""
import os
import subprocess
import sys

import numpy as np
import pytest

import graphc as gc
import helpers


np_log_softmax, np_softmax = helpers.np_log_softmax, helpers.np_softmax


def run(outputs, feeds=None):
    return helpers.evaluate(outputs, feeds)


# -- softmax / log_softmax ----------------------------------------------------------------

@pytest.mark.parametrize("axis", [-1, 0, 1])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_and_log_softmax_match_numpy(axis, dtype):
    x = (helpers.rng(0).standard_normal((3, 4, 5)) * 3).astype(dtype)
    xp = gc.placeholder(x.shape, dtype)
    s, ls = run([gc.nn.softmax(xp, axis), gc.nn.log_softmax(xp, axis)], {xp: x})
    assert s.dtype == ls.dtype == np.dtype(dtype)
    tol = 1e-6 if dtype == "float32" else 1e-13
    np.testing.assert_allclose(s, np_softmax(x, axis), rtol=tol, atol=tol)
    np.testing.assert_allclose(ls, np_log_softmax(x, axis), rtol=tol, atol=tol)
    np.testing.assert_allclose(s.sum(axis=axis), 1.0, rtol=tol)


def test_softmax_defaults_to_last_axis():
    x = helpers.rng(1).standard_normal((2, 6))
    np.testing.assert_allclose(run(gc.nn.softmax(gc.constant(x))), np_softmax(x, -1), rtol=1e-13)


def test_softmax_of_large_logits_stays_finite():
    x = np.array([[1000., 0., -1000.], [1000., 1000., 999.]], np.float32)
    s, ls = run([gc.nn.softmax(gc.constant(x)), gc.nn.log_softmax(gc.constant(x))])
    assert np.isfinite(s).all() and np.isfinite(ls).all()
    np.testing.assert_allclose(s[0], [1., 0., 0.], atol=1e-7)
    np.testing.assert_allclose(ls[0], [0., -1000., -2000.], rtol=1e-6)
    e = np.exp(-1.0)
    np.testing.assert_allclose(s[1], [1 / (2 + e), 1 / (2 + e), e / (2 + e)], rtol=1e-6)
    np.testing.assert_allclose(s.sum(axis=-1), 1.0, rtol=1e-6)


def test_softmax_bad_axis_raises_shape_error():
    with pytest.raises(gc.ShapeError, match="softmax"):
        gc.nn.softmax(gc.placeholder((2, 3)), axis=2)


# -- linear, embedding ------------------------------------------------------------------------

@pytest.mark.parametrize("with_bias", [False, True])
def test_linear_is_input_times_weight_transposed_plus_bias(with_bias):
    r = helpers.rng(7)
    x, w, b = r.standard_normal((2, 3, 5)), r.standard_normal((4, 5)), r.standard_normal(4)
    y = gc.nn.linear(gc.constant(x), gc.constant(w), gc.constant(b) if with_bias else None)
    assert y.shape == (2, 3, 4)
    np.testing.assert_allclose(run(y), x @ w.T + (b if with_bias else 0), rtol=1e-12)


def test_embedding_picks_rows_of_the_table():
    table = np.arange(20.0).reshape(5, 4)
    ids = np.array([[0, 4, 4], [2, 1, 0]])
    idp = gc.placeholder(ids.shape, "int64")
    y = gc.nn.embedding(idp, gc.constant(table))
    assert y.shape == (2, 3, 4)
    np.testing.assert_array_equal(run(y, {idp: ids}), table[ids])


def test_embedding_gradient_scatter_adds_repeated_ids():
    table = gc.placeholder((5, 3), "float64")
    ids = gc.constant(np.array([1, 3, 1, 1]))
    (g,) = gc.grad(gc.sum(gc.nn.embedding(ids, table)), [table])
    want = np.zeros((5, 3))
    want[1], want[3] = 3.0, 1.0
    np.testing.assert_array_equal(run(g, {table: np.zeros((5, 3))}), want)


# -- layer norm ---------------------------------------------------------------------------------

def np_layer_norm(x, k, weight=None, bias=None, eps=1e-5):
    axes = tuple(range(x.ndim - k, x.ndim))
    mu = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    y = (x - mu) / np.sqrt(var + eps)
    if weight is not None:
        y = y * weight
    return y if bias is None else y + bias


@pytest.mark.parametrize("normalized_shape", [5, (4, 5)])
@pytest.mark.parametrize("affine", [False, True])
def test_layer_norm_matches_numpy(normalized_shape, affine):
    r = helpers.rng(8)
    x = r.standard_normal((3, 4, 5)) * 2 + 1
    ns = (normalized_shape,) if isinstance(normalized_shape, int) else normalized_shape
    w, b = (r.standard_normal(ns), r.standard_normal(ns)) if affine else (None, None)
    y = gc.nn.layer_norm(gc.constant(x), normalized_shape,
                         gc.constant(w) if affine else None, gc.constant(b) if affine else None)
    np.testing.assert_allclose(run(y), np_layer_norm(x, len(ns), w, b), rtol=1e-10, atol=1e-12)


def test_layer_norm_eps_is_added_to_the_variance():
    x = np.array([[1.0, 3.0]])               # mean 2, variance 1
    y = run(gc.nn.layer_norm(gc.constant(x), 2, eps=3.0))
    np.testing.assert_allclose(y, [[-0.5, 0.5]], rtol=1e-13)


def test_layer_norm_accepts_a_numpy_integer_normalized_shape():
    x = helpers.rng(40).standard_normal((2, 4))
    got = run(gc.nn.layer_norm(gc.constant(x), np.int64(4)))
    want = (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_layer_norm_wrong_normalized_shape_raises_shape_error():
    with pytest.raises(gc.ShapeError, match=r"layer_norm.*\(3,\).*\(2, 4\)"):
        gc.nn.layer_norm(gc.placeholder((2, 4)), 3)


# -- batch norm ----------------------------------------------------------------------------------

def np_batch_stats(x):
    axes = (0,) + tuple(range(2, x.ndim))
    return x.mean(axis=axes), x.var(axis=axes), x.var(axis=axes, ddof=1)


def _bshape(x):
    return (1, -1) + (1,) * (x.ndim - 2)


@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 5), (4, 3, 2, 3)])
def test_batch_norm_training_uses_batch_stats_and_updates_running_stats(shape):
    r = helpers.rng(9)
    c, momentum, eps = shape[1], 0.2, 1e-5
    rm0, rv0 = r.standard_normal(c).astype(np.float32), r.uniform(0.5, 2, c).astype(np.float32)
    running_mean = gc.variable(rm0, name="running_mean", trainable=False)
    running_var = gc.variable(rv0, name="running_var", trainable=False)
    w, b = r.standard_normal(c).astype(np.float32), r.standard_normal(c).astype(np.float32)
    xp = gc.placeholder(shape, "float32")
    y = gc.nn.batch_norm(xp, running_mean, running_var, gc.constant(w), gc.constant(b),
                         training=True, momentum=momentum, eps=eps)
    step = gc.compile(y, inputs=[xp], device="reference")

    expected_mean, expected_var = rm0.astype(np.float64), rv0.astype(np.float64)
    for call in range(2):
        x = (r.standard_normal(shape) * 3 + 2).astype(np.float32)
        out = step(x)
        mu, var, unbiased = np_batch_stats(x.astype(np.float64))
        want = ((x - mu.reshape(_bshape(x))) / np.sqrt(var.reshape(_bshape(x)) + eps)
                * w.reshape(_bshape(x)) + b.reshape(_bshape(x)))
        np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-4)
        expected_mean = (1 - momentum) * expected_mean + momentum * mu
        expected_var = (1 - momentum) * expected_var + momentum * unbiased
        np.testing.assert_allclose(running_mean.value, expected_mean, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(running_var.value, expected_var, rtol=1e-5, atol=1e-6)
        assert running_mean.value.dtype == np.float32


def test_batch_norm_running_var_is_unbiased_by_hand():
    # One channel, batch [0, 2]: mean 1, biased var 1, unbiased var 2.
    rm = gc.variable(np.zeros(1), trainable=False)
    rv = gc.variable(np.ones(1), trainable=False)
    xp = gc.placeholder((2, 1), "float64")
    y = gc.nn.batch_norm(xp, rm, rv, training=True, momentum=0.5, eps=0.0)
    out = gc.compile(y, inputs=[xp], device="reference")(np.array([[0.0], [2.0]]))
    np.testing.assert_allclose(out, [[-1.0], [1.0]])
    np.testing.assert_allclose(rm.value, [0.5])           # 0.5 * 0 + 0.5 * 1
    np.testing.assert_allclose(rv.value, [1.5])           # 0.5 * 1 + 0.5 * 2


@pytest.mark.parametrize("shape", [(5, 3), (2, 3, 4, 4)])
def test_batch_norm_eval_uses_running_stats_and_leaves_them(shape):
    r = helpers.rng(10)
    c, eps = shape[1], 1e-3
    rm0, rv0 = r.standard_normal(c), r.uniform(0.5, 2, c)
    rm, rv = gc.variable(rm0, trainable=False), gc.variable(rv0, trainable=False)
    w, b = r.standard_normal(c), r.standard_normal(c)
    x = r.standard_normal(shape)
    xp = gc.placeholder(shape, "float64")
    y = gc.nn.batch_norm(xp, rm, rv, gc.constant(w), gc.constant(b), training=False, eps=eps)
    out = gc.compile(y, inputs=[xp], device="reference")(x)
    s = _bshape(x)
    want = (x - rm0.reshape(s)) / np.sqrt(rv0.reshape(s) + eps) * w.reshape(s) + b.reshape(s)
    np.testing.assert_allclose(out, want, rtol=1e-12)
    np.testing.assert_array_equal(rm.value, rm0)
    np.testing.assert_array_equal(rv.value, rv0)



def test_batch_norm_training_refuses_running_stats_that_are_not_variables():
    """Constants or placeholders as running stats were accepted, then every executable
    died with a raw KeyError: a side update needs a variable to write."""
    x = gc.placeholder((4, 3), name="x")
    stats = gc.constant(np.zeros(3, np.float32)), gc.placeholder((3,), name="rv")
    with pytest.raises(gc.ArgumentError, match="running_mean must be a gc.variable") as error:
        gc.nn.batch_norm(x, *stats, training=True)
    assert error.value.loc.line is not None
    y = gc.nn.batch_norm(x, *stats, training=False)          # evaluation only reads them
    out = gc.compile(y, inputs=[x, stats[1]], device="reference")(np.ones((4, 3), np.float32),
                                                                  np.full(3, 3.0, np.float32))
    np.testing.assert_allclose(out, np.full((4, 3), 1 / np.sqrt(3 + 1e-5)), rtol=1e-6)

def _bn_twice(momentum=0.5):
    """One batch-norm layer (one pair of running stats) called on two placeholders."""
    rm = gc.variable(np.zeros(2), name="running_mean", trainable=False)
    rv = gc.variable(np.ones(2), name="running_var", trainable=False)
    x1, x2 = gc.placeholder((4, 2), "float64"), gc.placeholder((4, 2), "float64")
    y1 = gc.nn.batch_norm(x1, rm, rv, training=True, momentum=momentum)
    y2 = gc.nn.batch_norm(x2, rm, rv, training=True, momentum=momentum)
    return rm, rv, (x1, y1), (x2, y2)


def test_batch_norm_called_twice_first_output_updates_from_first_batch():
    rm, rv, (x1, y1), _ = _bn_twice()
    x = helpers.rng(20).standard_normal((4, 2)) + 3
    gc.compile(y1, inputs=[x1], device="reference")(x)
    np.testing.assert_allclose(rm.value, 0.5 * x.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(rv.value, 0.5 + 0.5 * x.var(axis=0, ddof=1), rtol=1e-12)


def test_batch_norm_called_twice_second_output_updates_from_second_batch():
    rm, _, _, (x2, y2) = _bn_twice()
    x = helpers.rng(21).standard_normal((4, 2)) - 1
    gc.compile(y2, inputs=[x2], device="reference")(x)
    np.testing.assert_allclose(rm.value, 0.5 * x.mean(axis=0), rtol=1e-12)


def test_batch_norm_called_twice_in_one_executable_updates_in_call_order():
    rm, rv, (x1, y1), (x2, y2) = _bn_twice(momentum=0.25)
    r = helpers.rng(22)
    a, b = r.standard_normal((4, 2)), r.standard_normal((4, 2)) * 2
    gc.compile([y1, y2], inputs=[x1, x2], device="reference")(a, b)
    after_first = 0.25 * a.mean(axis=0)
    np.testing.assert_allclose(rm.value, 0.75 * after_first + 0.25 * b.mean(axis=0),
                               rtol=1e-12)
    var_first = 0.75 + 0.25 * a.var(axis=0, ddof=1)
    np.testing.assert_allclose(rv.value, 0.75 * var_first + 0.25 * b.var(axis=0, ddof=1),
                               rtol=1e-12)


@pytest.mark.parametrize("shape", [(1, 3), (1, 3, 1), (1, 3, 1, 1)])
def test_batch_norm_training_with_one_value_per_channel_is_refused(shape):
    rm, rv = gc.variable(np.zeros(3), trainable=False), gc.variable(np.ones(3), trainable=False)
    with pytest.raises(gc.GraphcError, match=r"batch_norm: expected more than 1 value per "
                                             r"channel when training, got input of shape"):
        gc.nn.batch_norm(gc.placeholder(shape), rm, rv, training=True)


def test_batch_norm_one_sample_is_fine_in_eval_and_with_spatial_values():
    rm, rv = gc.variable(np.zeros(3), trainable=False), gc.variable(np.ones(3), trainable=False)
    gc.nn.batch_norm(gc.placeholder((1, 3)), rm, rv, training=False)
    gc.nn.batch_norm(gc.placeholder((1, 3, 2, 2)), rm, rv, training=True)


def test_batch_norm_none_batch_fed_one_sample_gives_zeros_and_nan_running_var():
    # As documented: the count is only known at run time, so it is not refused.
    rm = gc.variable(np.zeros(2), trainable=False)
    rv = gc.variable(np.ones(2), trainable=False)
    xp = gc.placeholder((None, 2), "float64")
    y = gc.nn.batch_norm(xp, rm, rv, training=True)
    out = gc.compile(y, inputs=[xp], device="reference")(np.array([[1.0, 2.0]]))
    np.testing.assert_array_equal(out, [[0.0, 0.0]])
    np.testing.assert_allclose(rm.value, [0.1, 0.2])
    assert np.isnan(rv.value).all()


# -- dropout ---------------------------------------------------------------------------------------

def test_dropout_not_training_is_identity():
    x = helpers.rng(11).standard_normal((4, 5))
    xp = gc.placeholder(x.shape, "float64")
    y = gc.nn.dropout(xp, 0.5, training=False)
    np.testing.assert_array_equal(run(y, {xp: x}), x)


def _dropout_step(p, shape=(200, 500), dtype="float32"):
    xp = gc.placeholder(shape, dtype)
    return gc.compile(gc.nn.dropout(xp, p), inputs=[xp], device="reference")


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_zeroes_about_p_and_scales_survivors(p):
    x = np.ones((200, 500), np.float32)
    out = _dropout_step(p)(x)
    dropped = np.mean(out == 0)
    assert abs(dropped - p) < 0.01, dropped           # 100k draws: std < 0.0016
    survivors = out[out != 0]
    np.testing.assert_allclose(survivors, 1 / (1 - p), rtol=1e-6)
    assert abs(out.mean() - 1.0) < 0.05                # unbiased in expectation


def test_dropout_draws_a_new_mask_on_each_call():
    step = _dropout_step(0.5)
    x = np.ones((200, 500), np.float32)
    masks = [step(x) != 0 for _ in range(3)]
    for a in range(3):
        for b in range(a + 1, 3):
            assert not np.array_equal(masks[a], masks[b])
            assert abs(np.mean(masks[a] == masks[b]) - 0.5) < 0.01    # independent


def test_dropout_p_one_zeroes_everything():
    x = helpers.rng(12).standard_normal((3, 4))
    np.testing.assert_array_equal(run(gc.nn.dropout(gc.constant(x), 1.0)), np.zeros((3, 4)))


def test_dropout_probability_out_of_range_is_refused():
    with pytest.raises(gc.GraphcError, match="dropout.*1.5"):
        gc.nn.dropout(gc.placeholder((2,)), 1.5)


@pytest.mark.parametrize("p", ["a", None, float("nan"), -0.1])
def test_dropout_probability_that_is_not_a_number_in_range_is_an_argument_error(p):
    with pytest.raises(gc.ArgumentError, match=r"dropout: p must be a probability in \[0, 1\]"):
        gc.nn.dropout(gc.placeholder((2,)), p)

_DROPOUT_SCRIPT = """
import numpy as np, graphc as gc
gc.manual_seed(1234)
with gc.Graph("child"):
    x = gc.placeholder((64, 50), "float32")
    step = gc.compile(gc.nn.dropout(x, 0.5), inputs=[x], device="reference")
    ones = np.ones((64, 50), np.float32)
    bits = np.concatenate([np.packbits(step(ones) != 0) for _ in range(2)])
print(bits.tobytes().hex())
"""


def _masks_in_fresh_graph(seed):
    gc.manual_seed(seed)
    with gc.Graph("fresh"):
        x = gc.placeholder((64, 50), "float32")
        step = gc.compile(gc.nn.dropout(x, 0.5), inputs=[x], device="reference")
        ones = np.ones((64, 50), np.float32)
        return [step(ones) != 0 for _ in range(2)]


def test_dropout_same_manual_seed_gives_same_masks_in_fresh_graphs():
    first, second = _masks_in_fresh_graph(1234), _masks_in_fresh_graph(1234)
    other = _masks_in_fresh_graph(4321)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], first[1])       # still a new mask per call
    assert not np.array_equal(first[0], other[0])       # another seed, other masks


def test_dropout_same_manual_seed_gives_same_masks_in_fresh_processes():
    outputs = []
    for hash_seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed)
        done = subprocess.run([sys.executable, "-c", _DROPOUT_SCRIPT], capture_output=True,
                              text=True, env=env, timeout=60)
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout.strip())
    assert outputs[0] == outputs[1]
    here = np.concatenate([np.packbits(m) for m in _masks_in_fresh_graph(1234)])
    assert outputs[0] == here.tobytes().hex()


# -- gradients ------------------------------------------------------------------------------------

SHAPES = [(3, 5), (2, 3, 4)]


@pytest.mark.parametrize("axis", [-1, 0, 1])
@pytest.mark.parametrize("shape", SHAPES)
def test_softmax_gradient(shape, axis):
    x = helpers.rng(20).standard_normal(shape)
    helpers.check_grad(lambda t: gc.nn.softmax(t, axis), [x])


@pytest.mark.parametrize("axis", [-1, 0])
@pytest.mark.parametrize("shape", SHAPES)
def test_log_softmax_gradient(shape, axis):
    x = helpers.rng(21).standard_normal(shape)
    helpers.check_grad(lambda t: gc.nn.log_softmax(t, axis), [x])


@pytest.mark.parametrize("shape,normalized", [((3, 5), (5,)), ((2, 3, 4), (3, 4))])
def test_layer_norm_gradient_wrt_input_weight_bias(shape, normalized):
    r = helpers.rng(27)
    helpers.check_grad(lambda x, w, b: gc.nn.layer_norm(x, normalized, w, b),
                       [r.standard_normal(shape), r.standard_normal(normalized),
                        r.standard_normal(normalized)])


@pytest.mark.parametrize("shape", [(6, 3), (3, 2, 3, 2)])
def test_batch_norm_training_gradient_wrt_input_weight_bias(shape):
    r = helpers.rng(28)
    c = shape[1]
    helpers.check_grad(lambda x, w, b: gc.nn.batch_norm(x, None, None, w, b, training=True),
                       [r.standard_normal(shape), r.standard_normal(c), r.standard_normal(c)])


def test_batch_norm_training_gradient_ignores_running_stat_updates():
    r = helpers.rng(29)
    rm = gc.variable(np.zeros(3), trainable=False)
    rv = gc.variable(np.ones(3), trainable=False)
    helpers.check_grad(lambda x: gc.nn.batch_norm(x, rm, rv, training=True),
                       [r.standard_normal((5, 3))])


@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize("shape", [(4, 5), (2, 3, 5)])
def test_linear_gradient(shape, with_bias):
    r = helpers.rng(30)
    arrays = [r.standard_normal(shape), r.standard_normal((3, 5))]
    if with_bias:
        arrays.append(r.standard_normal(3))
    helpers.check_grad(gc.nn.linear, arrays)


@pytest.mark.parametrize("shape", [(4,), (2, 3)])
def test_embedding_gradient_wrt_table(shape):
    r = helpers.rng(33)
    ids = r.integers(0, 4, shape)
    helpers.check_grad(lambda i, w: gc.nn.embedding(i, w), [ids, r.standard_normal((4, 3))])


@pytest.mark.parametrize("arguments, words", [
    (dict(running_mean=None, running_var=None), "needs running_mean and running_var"),
    (dict(running_var=None, training=True), "together or not at all"),
    (dict(eps=-1e-3), "eps must be a finite number >= 0"),
    (dict(momentum=1.5), "momentum must be a probability")])
def test_batch_norm_refuses_arguments_it_cannot_use(arguments, words):
    x = gc.placeholder((4, 3), name="x")
    stats = dict(running_mean=gc.variable(np.zeros(3, np.float32)),
                 running_var=gc.variable(np.ones(3, np.float32)))
    with pytest.raises(gc.ArgumentError, match=words) as info:
        gc.nn.functional.batch_norm(x, **dict(stats, **arguments))
    assert "batch_norm" in str(info.value) and "test_nn_functional.py" in str(info.value)


@pytest.mark.parametrize("arguments", [dict(eps=-1e-5), dict(momentum=2.0)])
def test_batch_norm_modules_refuse_bad_eps_and_momentum(arguments):
    with pytest.raises(gc.ArgumentError, match="BatchNorm2d"):
        gc.nn.BatchNorm2d(3, **arguments)


@pytest.mark.parametrize("device", ["reference", "cpu"])
def test_embedding_refuses_negative_ids_and_changes_no_weight(device):
    """PyTorch's embedding refuses a negative id (gc.take wraps it, as NumPy does); the
    failed training step leaves the table as it was, even though its update is planned
    in place."""
    with gc.Graph(device):
        ids = gc.placeholder((None,), "int64", name="ids")
        table = gc.variable(np.arange(10, dtype=np.float32).reshape(5, 2), name="table")
        loss = gc.sum(gc.nn.functional.embedding(ids, table) ** 2)
        (g,) = gc.grad(loss, [table])
        step = gc.compile([loss], inputs=[ids], updates={table: table - 0.1 * g}, device=device)
        before = table.value.copy()
        with pytest.raises(gc.RuntimeFailure, match="index -1 is out of range for axis 0 of size 5"):
            step(np.array([0, -1]))
        np.testing.assert_array_equal(table.value, before)
        (wrapped,) = gc.compile([gc.take(table, ids, axis=0)], inputs=[ids], device=device)(
            np.array([-1]))
        np.testing.assert_array_equal(wrapped, before[[4]])
        step(np.array([0, 4]))
        assert not np.array_equal(table.value, before)
