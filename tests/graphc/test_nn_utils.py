"""gc.nn.utils: gradient clipping with torch.nn.utils's formulas (checked against
NumPy), and in the optimizer's minimize (the Trainer's: tests/train); bad
arguments refused."""
import numpy as np
import pytest

import graphc as gc

RNG = np.random.default_rng(3)


def torch_clip(grads, max_norm, norm_type):
    """torch.nn.utils.clip_grad_norm_'s arithmetic, in float64."""
    flat = np.concatenate([np.abs(g).reshape(-1) for g in grads]).astype(np.float64)
    total = flat.max() if np.isinf(norm_type) else (flat ** norm_type).sum() ** (1 / norm_type)
    scale = min(max_norm / (total + 1e-6), 1.0)
    return [g * scale for g in grads], total


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, float("inf")])
@pytest.mark.parametrize("max_norm", [0.5, 1e6])           # clipped; left as they are
def test_clip_grad_norm_scales_every_gradient_by_one_factor(norm_type, max_norm):
    values = [RNG.standard_normal((4, 3)).astype("float32"),
              RNG.standard_normal(5).astype("float32")]
    grads = [gc.constant(v) for v in values]
    clipped, total = gc.nn.utils.clip_grad_norm(grads, max_norm, norm_type=norm_type)
    got = gc.compile(clipped + [total], inputs=[], device="reference")()
    want, want_total = torch_clip(values, max_norm, norm_type)
    np.testing.assert_allclose(got[-1], want_total, rtol=1e-6)
    for g, w in zip(got[:-1], want):
        assert g.dtype == np.float32
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-7)
    if max_norm == 1e6:
        for g, v in zip(got[:-1], values):
            np.testing.assert_array_equal(g, v)


def test_none_gradients_stay_none_and_a_dict_stays_a_dict():
    w = gc.variable(np.ones(3, "float32"), name="w")
    g = gc.constant(np.full(3, 4.0, "float32"))
    clipped, total = gc.nn.utils.clip_grad_norm([g, None], 1.0)
    assert clipped[1] is None
    as_dict, _ = gc.nn.utils.clip_grad_norm({w: g}, 1.0)
    assert list(as_dict) == [w]
    value, norm = gc.compile([as_dict[w], total], inputs=[], device="reference")()
    np.testing.assert_allclose(norm, np.sqrt(48.0), rtol=1e-6)
    np.testing.assert_allclose(value, 4.0 / (np.sqrt(48.0) + 1e-6), rtol=1e-6)
    nothing, zero = gc.nn.utils.clip_grad_norm([None], 1.0)
    assert nothing == [None] and gc.compile([zero], inputs=[], device="reference")()[0] == 0


def test_clip_grad_value_clamps_each_element():
    value = np.array([-3.0, -0.2, 0.0, 0.4, 2.0], "float32")
    (clipped,) = gc.nn.utils.clip_grad_value([gc.constant(value)], 0.5)
    got = gc.compile([clipped], inputs=[], device="reference")()[0]
    np.testing.assert_array_equal(got, np.clip(value, -0.5, 0.5))


def quadratic(device):
    """One SGD step (lr 1) on loss = sum((w - target)^2), gradients clipped to norm 1."""
    with gc.Graph(device):
        w = gc.variable(np.zeros(4, "float32"), name="w")
        target = np.array([3.0, -4.0, 0.0, 12.0], "float32")     # |grad| = 2 * 13 = 26
        loss = gc.sum((w - target) ** 2)
        opt = gc.optim.SGD([w], lr=1.0)
        gc.compile([loss], inputs=[], updates=opt.minimize(loss, clip_grad_norm=1.0),
                   device=device)()
        return w.value, target


@pytest.mark.parametrize("device", ["reference", "cpu"])
def test_minimize_clips_before_the_update(device):
    new, target = quadratic(device)
    np.testing.assert_allclose(new, target / 13 * (26 / (26 + 1e-6)), rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(new), 1.0, rtol=1e-5)


@pytest.mark.parametrize("call, message", [
    (lambda g: gc.nn.utils.clip_grad_norm(g, -1.0), r"max_norm must be a finite number >= 0"),
    (lambda g: gc.nn.utils.clip_grad_norm(g, float("nan")), "max_norm must be a finite"),
    (lambda g: gc.nn.utils.clip_grad_norm(g, 1.0, norm_type=0), "norm_type must be a positive"),
    (lambda g: gc.nn.utils.clip_grad_norm(g[0].value, 1.0), "must be a list, a dict or a tensor"),
    (lambda g: gc.nn.utils.clip_grad_norm([np.ones(2)], 1.0), "a gradient is a ndarray"),
    (lambda g: gc.nn.utils.clip_grad_value(g, -0.1), "clip_value must be a finite number"),
])
def test_bad_arguments_are_refused_naming_the_users_line(call, message):
    grads = [gc.constant(np.ones(2, "float32"))]
    with pytest.raises(gc.errors.ArgumentError, match=message) as info:
        call(grads)
    assert isinstance(info.value, (TypeError, ValueError))
    assert info.value.loc is not None and info.value.loc.file == __file__


def test_an_integer_gradient_is_a_dtype_error():
    with pytest.raises(gc.errors.DtypeError, match="int64, not a float tensor") as info:
        gc.nn.utils.clip_grad_norm([gc.constant(np.ones(2, "int64"))], 1.0)
    assert info.value.loc.file == __file__


def test_a_caller_may_raise_its_own_error_for_a_bad_bound():
    class OwnError(gc.GraphcError):
        pass

    with pytest.raises(OwnError, match="Trainer: clip_grad_norm must be a finite number"):
        gc.nn.utils.check_clip_bound(-1, "clip_grad_norm", "Trainer", None, OwnError)
