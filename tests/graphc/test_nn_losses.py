"""gc.nn's losses (graphc/nn/losses.py) against NumPy float64 computations of
PyTorch's formulas, their gradients against finite differences, the loss
modules against their functions, and the arguments they refuse."""
import re

import numpy as np
import pytest

import graphc as gc
import helpers


np_log_softmax, np_softmax = helpers.np_log_softmax, helpers.np_softmax


def run(outputs, feeds=None):
    return helpers.evaluate(outputs, feeds)


# -- cross entropy and nll -----------------------------------------------------------------

def np_cross_entropy(logits, labels, reduction="mean"):
    logp = np_log_softmax(logits, axis=1)
    picked = np.take_along_axis(logp, np.expand_dims(labels, 1), axis=1)[:, 0]
    loss = -picked
    return {"mean": loss.mean(), "sum": loss.sum(), "none": loss}[reduction]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(5, 4), (3, 4, 6), (2, 3, 4, 2)])
def test_cross_entropy_matches_numpy(shape, reduction):
    r = helpers.rng(2)
    logits = r.standard_normal(shape) * 2
    labels = r.integers(0, shape[1], (shape[0],) + shape[2:])
    lp, yp = gc.placeholder(shape, "float64"), gc.placeholder(labels.shape, "int64")
    out = gc.nn.cross_entropy(lp, yp, reduction=reduction)
    got = run(out, {lp: logits, yp: labels})
    want = np_cross_entropy(logits, labels, reduction)
    assert np.shape(got) == np.shape(want) and out.shape == np.shape(want)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_cross_entropy_default_is_mean_over_batch_by_hand():
    # Uniform logits over 4 classes: every sample's loss is log 4.
    logits = np.zeros((3, 4), np.float32)
    got = run(gc.nn.cross_entropy(gc.constant(logits), gc.constant(np.array([0, 3, 1]))))
    assert got.shape == () and got.dtype == np.float32
    np.testing.assert_allclose(got, np.log(4.0), rtol=1e-6)


def test_cross_entropy_of_large_logits_stays_finite():
    logits = np.array([[1000., -1000., 0.], [0., 1000., 0.]], np.float32)
    got = run(gc.nn.cross_entropy(gc.constant(logits), gc.constant(np.array([1, 1])),
                                  reduction="none"))
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, [2000., 0.], atol=1e-3)


def test_cross_entropy_float32_matches_float64_computation():
    r = helpers.rng(3)
    logits = (r.standard_normal((8, 10)) * 4).astype(np.float32)
    labels = r.integers(0, 10, 8)
    got = run(gc.nn.cross_entropy(gc.constant(logits), gc.constant(labels)))
    np.testing.assert_allclose(got, np_cross_entropy(logits, labels), rtol=1e-5)


def test_cross_entropy_label_shape_mismatch_raises_shape_error():
    with pytest.raises(gc.ShapeError, match=r"cross_entropy.*\(4, 3\).*\(4, 1\)"):
        gc.nn.cross_entropy(gc.placeholder((4, 3)), gc.placeholder((4, 1), "int64"))


@pytest.mark.parametrize("logits,labels,expected", [
    ((5, 3), (2,), (5,)),
    ((2, 3, 4), (2, 5), (2, 4)),
])
def test_cross_entropy_batch_mismatch_names_cross_entropy_and_both_shapes(logits, labels,
                                                                         expected):
    shapes = (re.escape(str(s)) for s in (logits, labels, expected))
    want = r"cross_entropy: logits {} and labels {}: expected .* labels {}".format(*shapes)
    with pytest.raises(gc.ShapeError, match=want) as info:
        gc.nn.cross_entropy(gc.placeholder(logits), gc.placeholder(labels, "int64"))
    assert info.value.loc.file == __file__


def test_cross_entropy_of_one_dimensional_logits_and_probabilities_is_a_shape_error():
    with pytest.raises(gc.ShapeError, match=r"cross_entropy: logits \(5,\) .* \(N, C, ...\)"):
        gc.nn.cross_entropy(gc.placeholder((5,)), gc.placeholder((5,)))


def test_cross_entropy_float_labels_raise_dtype_error_naming_cross_entropy():
    with pytest.raises(gc.DtypeError, match=r"cross_entropy: labels must be integer class "
                                            r"indices, got float32"):
        gc.nn.cross_entropy(gc.placeholder((4, 3)), gc.placeholder((4,), "float32"))


def test_cross_entropy_accepts_labels_whose_batch_is_unknown():
    loss = gc.nn.cross_entropy(gc.placeholder((None, 3)), gc.placeholder((None,), "int64"))
    assert loss.shape == ()


def test_cross_entropy_bad_reduction_is_refused():
    with pytest.raises(gc.GraphcError, match="cross_entropy.*reduction"):
        gc.nn.cross_entropy(gc.placeholder((4, 3)), gc.placeholder((4,), "int64"),
                            reduction="avg")

def np_weighted_cross_entropy(logits, labels, weight, ignore_index, smoothing, reduction):
    """PyTorch's class-index cross-entropy: (N, C, d...) logits, (N, d...) labels."""
    logp = np.moveaxis(np_log_softmax(logits, 1), 1, -1)           # (N, d..., C)
    classes = logp.shape[-1]
    weight = np.ones(classes) if weight is None else weight
    kept = labels != ignore_index
    safe = np.where(kept, labels, 0)
    picked = np.take_along_axis(logp, safe[..., None], -1)[..., 0]
    share = weight[safe] * kept
    loss = (1 - smoothing) * -picked * share + smoothing / classes * -(logp * weight).sum(-1) * kept
    if reduction == "mean":
        return loss.sum() / share.sum()
    return {"sum": loss.sum(), "none": loss}[reduction]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shape", [(6, 4), (3, 4, 5)])
def test_cross_entropy_weight_ignore_index_and_label_smoothing_match_numpy(
        shape, weighted, smoothing, reduction):
    r = helpers.rng(30)
    logits = r.standard_normal(shape) * 2
    labels = r.integers(0, shape[1], (shape[0],) + shape[2:])
    labels.flat[::4] = -100                                         # PyTorch's default
    weight = r.uniform(0.5, 3.0, shape[1]) if weighted else None
    got = run(gc.nn.cross_entropy(gc.constant(logits), gc.constant(labels), weight=weight,
                                  reduction=reduction, label_smoothing=smoothing))
    want = np_weighted_cross_entropy(logits, labels, weight, -100, smoothing, reduction)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_cross_entropy_ignored_labels_are_left_out_of_the_mean_and_the_gradient():
    r = helpers.rng(31)
    logits, labels = r.standard_normal((5, 3)), np.array([2, -1, 0, -1, 1])
    lp = gc.placeholder((5, 3), "float64")
    loss = gc.nn.cross_entropy(lp, gc.constant(labels), ignore_index=-1)
    kept = gc.nn.cross_entropy(lp[::2], gc.constant(labels[::2]))
    (g,) = gc.grad(loss, [lp])
    got_loss, got_kept, got_g = run([loss, kept, g], {lp: logits})
    np.testing.assert_allclose(got_loss, got_kept, rtol=1e-13)
    np.testing.assert_array_equal(got_g[1::2], 0.0)
    want = (np_softmax(logits[::2], 1) - np.eye(3)[labels[::2]]) / 3
    np.testing.assert_allclose(got_g[::2], want, rtol=1e-12, atol=1e-15)


def test_cross_entropy_ignore_index_may_be_a_class():
    logits = helpers.rng(32).standard_normal((4, 3))
    labels = np.array([0, 1, 2, 1])
    got = run(gc.nn.cross_entropy(gc.constant(logits), gc.constant(labels), ignore_index=1))
    np.testing.assert_allclose(got, np_weighted_cross_entropy(logits, labels, None, 1, 0.0,
                                                              "mean"), rtol=1e-12)


@pytest.mark.parametrize("device", ["reference", "cpu"])
def test_cross_entropy_label_out_of_range_other_than_ignore_index_still_fails(device):
    x, y = gc.placeholder((None, 3)), gc.placeholder((None,), "int64")
    step = gc.compile(gc.nn.cross_entropy(x, y), inputs=[x, y], device=device)
    logits = np.zeros((2, 3), np.float32)
    np.testing.assert_allclose(step(logits, np.array([-100, 2])), np.log(3), rtol=1e-6)
    with pytest.raises(gc.RuntimeFailure):
        step(logits, np.array([3, 0]))


@pytest.mark.parametrize("device", ["reference", "cpu"])
def test_cross_entropy_of_masked_logits_is_finite_as_pytorchs(device):
    # -inf marks classes a sample cannot have (0 * -inf was NaN in every row)
    logits = np.array([[1, -np.inf, 2, -1e9], [-3.4e38, 0.5, -np.inf, 3],
                       [-np.inf, -np.inf, 1, -np.inf]], np.float32)
    labels, probabilities = np.array([0, 3, 2]), np.eye(4, dtype=np.float32)[[0, 3, 2]]
    x, y, p = gc.placeholder((3, 4)), gc.placeholder((3,), "int64"), gc.placeholder((3, 4))
    outputs = [gc.nn.cross_entropy(x, y, reduction="none"), gc.nn.cross_entropy(x, p),
               gc.nn.nll_loss(gc.nn.log_softmax(x, 1), y),
               gc.grad(gc.nn.cross_entropy(x, y), [x])[0]]
    each, soft, nll, grad = gc.compile(outputs, inputs=[x, y, p], device=device)(
        logits, labels, probabilities)
    want = np.log1p(np.exp(1.0)), np.log1p(np.exp(-2.5)), 0.0    # PyTorch: 1.3132616, ...
    np.testing.assert_allclose(each, want, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose([soft, nll], np.mean(want), rtol=1e-6)
    assert np.isfinite(grad).all() and (grad[2] == 0).all()


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.3])
def test_cross_entropy_of_class_probabilities_matches_numpy(smoothing, reduction):
    r = helpers.rng(33)
    logits, weight = r.standard_normal((2, 4, 3)), r.uniform(0.5, 2.0, 4)
    target = np_softmax(r.standard_normal((2, 4, 3)), 1)
    got = run(gc.nn.cross_entropy(gc.constant(logits), gc.constant(target), weight=weight,
                                  reduction=reduction, label_smoothing=smoothing))
    mixed = target * (1 - smoothing) + smoothing / 4
    loss = -(mixed * np_log_softmax(logits, 1) * weight[:, None]).sum(1)
    np.testing.assert_allclose(got, {"mean": loss.mean(), "sum": loss.sum(), "none": loss}[
        reduction], rtol=1e-12)


@pytest.mark.parametrize("weighted", [False, True])
def test_nll_loss_of_log_softmax_is_cross_entropy(weighted):
    r = helpers.rng(34)
    logits, labels = r.standard_normal((3, 5, 2)), r.integers(0, 5, (3, 2))
    labels[0, 0] = -100
    weight = r.uniform(0.5, 2.0, 5) if weighted else None
    x = gc.constant(logits)
    nll, ce = run([gc.nn.nll_loss(gc.nn.log_softmax(x, 1), gc.constant(labels), weight=weight),
                   gc.nn.cross_entropy(x, gc.constant(labels), weight=weight)])
    np.testing.assert_allclose(nll, ce, rtol=1e-13)
    np.testing.assert_allclose(nll, np_weighted_cross_entropy(logits, labels, weight, -100, 0.0,
                                                              "mean"), rtol=1e-12)


@pytest.mark.parametrize("soft", [False, True])
def test_cross_entropy_gradient_with_weight_smoothing_and_ignored_labels(soft):
    r = helpers.rng(35)
    logits, weight = r.standard_normal((5, 4)), r.uniform(0.5, 2.0, 4)
    target = np_softmax(r.standard_normal((5, 4)), 1) if soft else np.array([1, -100, 3, 0, 3])
    helpers.check_grad(lambda x, t: gc.nn.cross_entropy(x, t, weight=weight,
                                                        label_smoothing=0.1), [logits, target],
                       wrt=[0])


@pytest.mark.parametrize("arguments, error, words", [
    (dict(label_smoothing=1.5), gc.ArgumentError, r"label_smoothing must be a probability"),
    (dict(label_smoothing="0.1"), gc.ArgumentError, "label_smoothing"),
    (dict(weight=np.ones(4)), gc.ShapeError, r"weight \(4,\) .*one value per class, \(3,\)"),
    (dict(weight=gc.constant(np.ones(3, np.float64))), gc.DtypeError, "weight must have"),
    (dict(reduction="avg"), gc.ArgumentError, "reduction must be"),
    (dict(ignore_index=None), gc.ArgumentError, "ignore_index must be an int"),
])
def test_cross_entropy_refuses_bad_options_at_the_users_line(arguments, error, words):
    with pytest.raises(error, match=words) as info:
        gc.nn.cross_entropy(gc.placeholder((4, 3)), gc.placeholder((4,), "int64"), **arguments)
    assert "cross_entropy" in str(info.value) and info.value.loc.file == __file__


# -- binary cross entropy ------------------------------------------------------------------

def np_bce_with_logits(x, t, pos_weight=None):
    log_sig = -np.logaddexp(0.0, -x)              # log sigmoid(x)
    log_one_minus = -np.logaddexp(0.0, x)         # log(1 - sigmoid(x))
    pw = 1.0 if pos_weight is None else pos_weight
    return -(pw * t * log_sig + (1 - t) * log_one_minus)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("with_pos_weight", [False, True])
def test_bce_with_logits_matches_numpy(with_pos_weight, reduction):
    r = helpers.rng(4)
    x = r.standard_normal((6, 3)) * 3
    t = r.uniform(0, 1, (6, 3))
    pw = np.array([0.5, 1.0, 3.0]) if with_pos_weight else None
    out = gc.nn.binary_cross_entropy_with_logits(
        gc.constant(x), gc.constant(t), reduction=reduction,
        pos_weight=gc.constant(pw) if with_pos_weight else None)
    loss = np_bce_with_logits(x, t, pw)
    want = {"mean": loss.mean(), "sum": loss.sum(), "none": loss}[reduction]
    np.testing.assert_allclose(run(out), want, rtol=1e-12)


@pytest.mark.parametrize("with_pos_weight", [False, True])
def test_bce_with_logits_of_large_logits_stays_finite(with_pos_weight):
    x = np.array([1000., -1000., 1000., -1000., 50., -50.], np.float32)
    t = np.array([0., 1., 1., 0., 1., 0.], np.float32)
    pw = np.float32(2.0) if with_pos_weight else None
    got = run(gc.nn.binary_cross_entropy_with_logits(gc.constant(x), gc.constant(t),
                                                     reduction="none", pos_weight=pw))
    assert np.isfinite(got).all()
    wrong = 2000. if with_pos_weight else 1000.
    np.testing.assert_allclose(got, [1000., wrong, 0., 0., 0., 0.], atol=1e-6, rtol=1e-6)


def test_binary_cross_entropy_matches_numpy():
    r = helpers.rng(5)
    p, t = r.uniform(0.01, 0.99, (4, 5)), r.uniform(0, 1, (4, 5))
    loss = -(t * np.log(p) + (1 - t) * np.log(1 - p))
    got = run([gc.nn.binary_cross_entropy(gc.constant(p), gc.constant(t)),
               gc.nn.binary_cross_entropy(gc.constant(p), gc.constant(t), reduction="none")])
    np.testing.assert_allclose(got[0], loss.mean(), rtol=1e-12)
    np.testing.assert_allclose(got[1], loss, rtol=1e-12)


def test_binary_cross_entropy_of_saturated_probabilities_stays_finite():
    p = np.array([0., 1., 1., 0.])
    t = np.array([0., 1., 0., 1.])
    got = run(gc.nn.binary_cross_entropy(gc.constant(p), gc.constant(t), reduction="none"))
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got[:2], 0.0, atol=1e-9)
    assert (got[2:] > 20).all()        # -log(1e-12) ~ 27.6

@pytest.mark.parametrize("device", ["reference", "cpu"])
def test_binary_cross_entropy_of_float32_probabilities_exactly_zero_or_one(device):
    # a float32 sigmoid is exactly 1.0 above about 17: the loss was NaN there (0 * log 0)
    p, t = gc.placeholder((4,)), gc.placeholder((4,))
    loss = gc.nn.binary_cross_entropy(p, t, reduction="none")
    (g,) = gc.grad(gc.sum(loss), [p])
    got, grad = gc.compile([loss, g], inputs=[p, t], device=device)(
        np.array([1, 0, 1, 0], np.float32), np.array([1, 0, 0, 1], np.float32))
    np.testing.assert_array_equal(got, [0, 0, 100, 100])       # PyTorch clamps logs at -100
    assert np.isfinite(grad).all()
    np.testing.assert_array_equal(grad[:2], [-1, 1])           # d/dp of -log p, -log(1 - p)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_weight_rescales_each_element(reduction):
    r = helpers.rng(36)
    p, t, w = r.uniform(0.05, 0.95, (3, 4)), r.uniform(0, 1, (3, 4)), r.uniform(0, 2, 4)
    x = r.standard_normal((3, 4))
    got = run([gc.nn.binary_cross_entropy(gc.constant(p), gc.constant(t), weight=w,
                                          reduction=reduction),
               gc.nn.binary_cross_entropy_with_logits(gc.constant(x), gc.constant(t), weight=w,
                                                      reduction=reduction)])
    reduce = {"mean": np.mean, "sum": np.sum, "none": lambda v: v}[reduction]
    np.testing.assert_allclose(got[0], reduce(-w * (t * np.log(p) + (1 - t) * np.log(1 - p))),
                               rtol=1e-12)
    np.testing.assert_allclose(got[1], reduce(w * np_bce_with_logits(x, t)), rtol=1e-12)


# -- regression losses and kl_div --------------------------------------------------------------

def np_smooth_l1(d, beta):
    d = np.abs(d)
    return d if beta == 0 else np.where(d < beta, 0.5 * d * d / beta, d - 0.5 * beta)


def np_huber(d, delta):
    d = np.abs(d)
    return np.where(d < delta, 0.5 * d * d, delta * (d - 0.5 * delta))


REGRESSION = [
    ("l1_loss", {}, lambda d: np.abs(d)),
    ("smooth_l1_loss", {"beta": 0.5}, lambda d: np_smooth_l1(d, 0.5)),
    ("smooth_l1_loss", {"beta": 0.0}, lambda d: np_smooth_l1(d, 0.0)),
    ("huber_loss", {"delta": 2.0}, lambda d: np_huber(d, 2.0)),
]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name, options, reference", REGRESSION,
                         ids=[f"{n}{o}" for n, o, _ in REGRESSION])
def test_regression_losses_match_numpy_and_their_gradients(name, options, reference, reduction):
    r = helpers.rng(37)
    a, b = r.standard_normal((4, 5)) * 2, r.standard_normal((4, 5)) * 2
    loss = getattr(gc.nn, name)
    got = run(loss(gc.constant(a), gc.constant(b), reduction=reduction, **options))
    want = reference(a - b)
    np.testing.assert_allclose(got, {"mean": want.mean(), "sum": want.sum(), "none": want}[
        reduction], rtol=1e-12)
    helpers.check_grad(lambda x, y: loss(x, y, reduction=reduction, **options), [a, b])


def test_kl_div_batchmean_divides_by_a_batch_known_only_when_fed():
    x, t = gc.placeholder((None, 3), "float64"), gc.placeholder((None, 3), "float64")
    logq = np_log_softmax(helpers.rng(44).standard_normal((4, 3)), 1)
    p = np_softmax(helpers.rng(45).standard_normal((4, 3)), 1)
    got = run(gc.nn.kl_div(x, t, reduction="batchmean"), {x: logq, t: p})
    np.testing.assert_allclose(got, (p * (np.log(p) - logq)).sum() / 4, rtol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum", "batchmean", "none"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_matches_numpy_with_zero_targets_contributing_nothing(log_target, reduction):
    r = helpers.rng(38)
    logq = np_log_softmax(r.standard_normal((3, 4)), 1)
    p = np_softmax(r.standard_normal((3, 4)), 1)
    p[0, 1] = 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        target = np.log(p) if log_target else p
        pointwise = np.where(p > 0, p * (np.log(p) - logq), 0.0)
    got = run(gc.nn.kl_div(gc.constant(logq), gc.constant(target), reduction=reduction,
                           log_target=log_target))
    assert np.isfinite(got).all()
    want = {"mean": pointwise.mean(), "sum": pointwise.sum(), "batchmean": pointwise.sum() / 3,
            "none": pointwise}[reduction]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    if not log_target:
        helpers.check_grad(lambda x: gc.nn.kl_div(x, gc.constant(p), reduction="batchmean"),
                           [logq])


@pytest.mark.parametrize("call, words", [
    (lambda: gc.nn.huber_loss(gc.placeholder((3,)), gc.placeholder((3,)), delta=0.0),
     "delta must be > 0"),
    (lambda: gc.nn.smooth_l1_loss(gc.placeholder((3,)), gc.placeholder((3,)), beta=-1),
     "beta must be a finite number >= 0"),
    (lambda: gc.nn.kl_div(gc.placeholder((3,)), gc.placeholder((3,)), reduction="max"),
     "'batchmean'"),
    (lambda: gc.nn.mse_loss(gc.placeholder((3,)), gc.placeholder((3,)), reduction="batchmean"),
     "'mean', 'sum', 'none', got 'batchmean'"),
])
def test_regression_losses_refuse_bad_options(call, words):
    with pytest.raises(gc.ArgumentError, match=words):
        call()


# -- modules ------------------------------------------------------------------------------------

MODULES = [
    (gc.nn.CrossEntropyLoss, gc.nn.cross_entropy, dict(label_smoothing=0.1, ignore_index=0), "int"),
    (gc.nn.NLLLoss, gc.nn.nll_loss, dict(reduction="sum"), "int"),
    (gc.nn.BCELoss, gc.nn.binary_cross_entropy, dict(reduction="none"), "prob"),
    (gc.nn.BCEWithLogitsLoss, gc.nn.binary_cross_entropy_with_logits,
     dict(pos_weight=np.array([2.0, 1.0, 0.5])), "prob"),
    (gc.nn.MSELoss, gc.nn.mse_loss, {}, "real"),
    (gc.nn.L1Loss, gc.nn.l1_loss, dict(reduction="sum"), "real"),
    (gc.nn.SmoothL1Loss, gc.nn.smooth_l1_loss, dict(beta=0.3), "real"),
    (gc.nn.HuberLoss, gc.nn.huber_loss, dict(delta=0.5), "real"),
    (gc.nn.KLDivLoss, gc.nn.kl_div, dict(reduction="batchmean"), "prob"),
]


@pytest.mark.parametrize("module, function, options, target", MODULES,
                         ids=[m.__name__ for m, *_ in MODULES])
def test_loss_modules_compute_their_function_with_their_options(module, function, options,
                                                                target):
    r = helpers.rng(39)
    x = r.standard_normal((4, 3))
    y = {"int": r.integers(0, 3, 4), "prob": r.uniform(0.05, 0.95, (4, 3)),
         "real": r.standard_normal((4, 3))}[target]
    if module is gc.nn.BCELoss:
        x = r.uniform(0.05, 0.95, (4, 3))
    criterion = module(**options)
    got, want = run([criterion(gc.constant(x), gc.constant(y)),
                     function(gc.constant(x), gc.constant(y), **options)])
    np.testing.assert_array_equal(got, want)
    assert all(f"{k}=" in repr(criterion) for k in options if k != "pos_weight")


def test_loss_modules_refuse_pytorchs_deprecated_size_average_and_reduce():
    with pytest.raises(gc.ArgumentError, match="deprecated.*reduction"):
        gc.nn.CrossEntropyLoss(size_average=False)
    with pytest.raises(gc.ArgumentError, match="deprecated"):
        gc.nn.MSELoss(reduce=False)


def test_trainer_infers_the_task_from_a_loss_module():
    model = gc.nn.Linear(3, 2)
    assert gc.train.Trainer(model, gc.nn.CrossEntropyLoss()).task == "multiclass"
    bce = gc.train.Trainer(gc.nn.Linear(3, 1), gc.nn.BCELoss())
    assert (bce.task, bce.threshold) == ("binary", 0.5)
    assert gc.train.Trainer(gc.nn.Linear(3, 1), gc.nn.BCEWithLogitsLoss()).threshold == 0.0


# -- mse, shapes, gradients ---------------------------------------------------------------------

SHAPES = [(3, 5), (2, 3, 4)]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss_matches_numpy(reduction):
    r = helpers.rng(6)
    a, b = r.standard_normal((3, 4)), r.standard_normal((3, 4))
    sq = (a - b) ** 2
    want = {"mean": sq.mean(), "sum": sq.sum(), "none": sq}[reduction]
    got = run(gc.nn.mse_loss(gc.constant(a), gc.constant(b), reduction=reduction))
    np.testing.assert_allclose(got, want, rtol=1e-13)


LOSSES_OF_ONE_SHAPE = [gc.nn.mse_loss, gc.nn.binary_cross_entropy_with_logits,
                       gc.nn.binary_cross_entropy, gc.nn.l1_loss, gc.nn.smooth_l1_loss,
                       gc.nn.huber_loss, gc.nn.kl_div]


@pytest.mark.parametrize("loss", LOSSES_OF_ONE_SHAPE, ids=lambda f: f.__name__)
def test_losses_refuse_to_broadcast_input_and_target(loss):
    with pytest.raises(gc.ShapeError, match=rf"{loss.__name__}: input \(4, 1\) and target "
                                            r"\(4,\) must have the same shape") as info:
        loss(gc.placeholder((4, 1)), gc.placeholder((4,)))
    assert info.value.loc.file == __file__


@pytest.mark.parametrize("loss", LOSSES_OF_ONE_SHAPE, ids=lambda f: f.__name__)
def test_losses_accept_an_unknown_size_against_a_known_one(loss):
    assert loss(gc.placeholder((None, 3)), gc.placeholder((2, 3))).shape == ()


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(4, 5), (2, 3, 4)])
def test_cross_entropy_gradient_wrt_logits(shape, reduction):
    r = helpers.rng(22)
    logits = r.standard_normal(shape)
    labels = r.integers(0, shape[1], (shape[0],) + shape[2:])
    helpers.check_grad(lambda x, y: gc.nn.cross_entropy(x, y, reduction=reduction),
                       [logits, labels])


def test_cross_entropy_gradient_is_softmax_minus_one_hot_over_n():
    r = helpers.rng(23)
    logits, labels = r.standard_normal((4, 3)), np.array([0, 2, 1, 2])
    lp = gc.placeholder((4, 3), "float64")
    (g,) = gc.grad(gc.nn.cross_entropy(lp, gc.constant(labels)), [lp])
    want = (np_softmax(logits, 1) - np.eye(3)[labels]) / 4
    np.testing.assert_allclose(run(g, {lp: logits}), want, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("with_pos_weight", [False, True])
@pytest.mark.parametrize("shape", [(6,), (3, 4)])
def test_bce_with_logits_gradient(shape, with_pos_weight):
    r = helpers.rng(24)
    arrays = [r.standard_normal(shape) * 3, r.uniform(0, 1, shape)]
    if with_pos_weight:
        arrays.append(r.uniform(0.5, 3, shape[-1:]))

    def build(x, t, pw=None):
        return gc.nn.binary_cross_entropy_with_logits(x, t, pos_weight=pw)
    helpers.check_grad(build, arrays)


@pytest.mark.parametrize("shape", [(6,), (3, 4)])
def test_binary_cross_entropy_gradient(shape):
    r = helpers.rng(25)
    helpers.check_grad(gc.nn.binary_cross_entropy,
                       [r.uniform(0.05, 0.95, shape), r.uniform(0, 1, shape)])


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("shape", SHAPES)
def test_mse_loss_gradient(shape, reduction):
    r = helpers.rng(26)
    helpers.check_grad(lambda a, b: gc.nn.mse_loss(a, b, reduction=reduction),
                       [r.standard_normal(shape), r.standard_normal(shape)])

