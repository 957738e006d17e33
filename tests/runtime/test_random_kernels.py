"""The CPU backend's random draws (runtime/cpu/random.py) against the reference
(graphc/ops/random.py): uniform bit for bit, normal within float64 rounding;
and a step with dropout runs as one njit step, drawing what the reference
draws."""
import re

import numpy as np
import pytest

import graphc as gc
from graphc.ops.random import RandomNormal, RandomUniform
from graphc.runtime.cpu import backend
from graphc.runtime.cpu.random import BLOCK, random_normal, random_uniform

SIZES = [1, 7, BLOCK, 2 * BLOCK + 5]           # one block, a partial one, several


def draw(kernel, n, dtype, seed, counter, pair):
    out = np.full(n, np.nan, dtype)
    kernel(np.array([counter], np.int64), np.array([seed], np.uint64),
           np.array(pair, np.float64), out)
    return out


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("seed, counter", [(0, 0), (2 ** 64 - 1, 3), (12345, 2 ** 40)])
def test_uniform_draws_equal_the_reference_bit_for_bit(n, dtype, seed, counter):
    got = draw(random_uniform, n, dtype, seed, counter, (-2.0, 3.5))
    want = RandomUniform.reference(counter, shape=(n,), seed=seed, low=-2.0, high=3.5,
                                   dtype=dtype).astype(dtype)
    assert np.array_equal(got, want)


@pytest.mark.parametrize("n", SIZES)
def test_normal_draws_equal_the_reference_to_float64_rounding(n):
    want = RandomNormal.reference(9, shape=(n,), seed=77, mean=0.5, std=2.0, dtype="float64")
    got = draw(random_normal, n, "float64", 77, 9, (0.5, 2.0))
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)   # libm's log, cos, sqrt
    got32 = draw(random_normal, n, "float32", 77, 9, (0.5, 2.0))
    assert np.mean(got32 == want.astype(np.float32)) > 0.999


def mlp_with_dropout(seed=0):
    rng = np.random.default_rng(seed)
    x, y = gc.placeholder((None, 20), name="x"), gc.placeholder((None,), "int64", name="y")
    w1 = gc.variable(rng.standard_normal((20, 32)).astype("float32") * 0.2, name="w1")
    w2 = gc.variable(rng.standard_normal((32, 5)).astype("float32") * 0.2, name="w2")
    hidden = gc.nn.dropout(gc.relu(x @ w1), p=0.3)
    noisy = hidden + gc.random.normal_like(hidden, std=0.01)
    loss = gc.nn.cross_entropy(noisy @ w2, y)
    g1, g2 = gc.grad(loss, [w1, w2])
    feeds = [rng.standard_normal((16, 20)).astype("float32"), rng.integers(0, 5, 16)]
    return [loss], [x, y], {w1: w1 - 0.1 * g1, w2: w2 - 0.1 * g2}, feeds, (w1, w2)


def train(device, steps=3):
    with gc.Graph(device):
        gc.manual_seed(4)
        outputs, inputs, updates, feeds, params = mlp_with_dropout()
        step = gc.compile(outputs, inputs=inputs, updates=updates, device=device)
        losses = [float(step(*feeds)[0]) for _ in range(steps)]
        return losses, [np.array(p.value) for p in params], step


@pytest.mark.parametrize("njit_driver", [True, False])
def test_a_step_with_dropout_and_noise_trains_as_the_reference(njit_driver, monkeypatch):
    monkeypatch.setattr(backend, "NJIT_DRIVER", njit_driver)
    want_losses, want_params, _ = train("reference")
    losses, params, step = train("cpu")
    assert step.stats["driver"] == ("njit" if njit_driver else "python")
    np.testing.assert_allclose(losses, want_losses, rtol=1e-5)
    for got, want in zip(params, want_params):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("draw_like", [gc.random.uniform_like, gc.random.normal_like])
def test_a_step_draws_many_blocks_over_the_threads_as_the_reference(draw_like):
    """A draw of several BLOCKs runs as its `_parts` kernel launched over the threads
    (each thread a range of blocks): every value equals the reference's."""
    def first_draw(device):
        with gc.Graph(device):
            gc.manual_seed(11)
            x = gc.placeholder((3 * BLOCK + 5,), "float64", name="x")
            step = gc.compile([x + draw_like(x)], inputs=[x], device=device)
            return step(np.zeros(x.shape, np.float64))[0], step

    want, _ = first_draw("reference")
    got, step = first_draw("cpu")
    source = next(iter(step._plans.values())).source
    assert re.search(r"_lib\.random_(uniform|normal)_parts\(.*\) in 4 chunks", source)
    assert np.abs(want).max() > 0
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)
