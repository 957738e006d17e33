"""gc.random: the counter-based generator (SplitMix64 reimplemented here with
plain Python ints), distributions, seeds, and the graph's rng_counter."""
import math

import numpy as np
import pytest

import graphc as gc
from graphc.ops.random import splitmix64, uniform_bits

MASK = 2 ** 64 - 1


def py_splitmix64(z):
    """SplitMix64's step (Steele, Lea and Flood 2014), from scratch in Python ints."""
    z = (z + 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def py_uniform(seed, counter, index, stream=0):
    """Value `index` of a draw: 24 high bits of the mixed (key + 2 index + stream)."""
    key = py_splitmix64(seed ^ py_splitmix64(counter))
    return (py_splitmix64((key + 2 * index + stream) & MASK) >> 40) * 2.0 ** -24


def py_normal(seed, counter, index):
    u1 = 1.0 - py_uniform(seed, counter, index, 0)
    u2 = py_uniform(seed, counter, index, 1)
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


def test_python_splitmix64_reproduces_the_published_sequence():
    # The SplitMix64 generator seeded with 0 starts 0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4.
    assert py_splitmix64(0) == 0xE220A8397B1DCDAF
    assert py_splitmix64(0x9E3779B97F4A7C15) == 0x6E789E6AA1B965F4


@pytest.mark.parametrize("z", [0, 1, 12345, 2 ** 63 + 7, MASK])
def test_splitmix64_matches_python_ints(z):
    assert int(splitmix64(np.array([z], np.uint64))[0]) == py_splitmix64(z)


@pytest.mark.parametrize("seed,counter", [(0, 0), (42, 0), (42, 3), (2 ** 62 - 1, 123456789)])
@pytest.mark.parametrize("stream", [0, 1])
def test_uniform_bits_matches_python_splitmix64(seed, counter, stream):
    bits = uniform_bits(seed, counter, 1000, stream=stream)
    assert bits.dtype == np.float64 and bits.shape == (1000,)
    for i in (0, 1, 2, 7, 500, 999):
        assert bits[i] == py_uniform(seed, counter, i, stream)


def test_uniform_draws_are_the_python_values_for_their_seed_and_counter():
    u = gc.random.uniform((2, 3), low=-1.0, high=3.0, dtype="float64", seed=987)
    step = gc.compile(u, device="reference")
    for counter in range(2):
        got = step()
        want = [-1.0 + 4.0 * py_uniform(987, counter, i) for i in range(6)]
        np.testing.assert_array_equal(got.reshape(-1), want)


def test_normal_draws_are_the_python_box_muller_values():
    n = gc.random.normal((5,), mean=2.0, std=3.0, dtype="float64", seed=31)
    got = gc.compile(n, device="reference")()
    np.testing.assert_allclose(got, [2.0 + 3.0 * py_normal(31, 0, i) for i in range(5)],
                               rtol=1e-14)


# -- distributions -------------------------------------------------------------------------

N = 100_000


def _draw(tensor):
    return gc.compile(tensor, device="reference")()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_uniform_is_in_range_with_right_mean_and_std(dtype):
    x = _draw(gc.random.uniform((N,), low=-2.0, high=3.0, dtype=dtype, seed=1))
    assert x.dtype == np.dtype(dtype) and x.shape == (N,)
    assert x.min() >= -2.0 and x.max() < 3.0
    assert abs(x.mean() - 0.5) < 0.03                       # std error 0.0046
    assert abs(x.std() - 5 / math.sqrt(12)) < 0.02
    assert len(np.unique(x)) > 0.99 * N                     # not a short cycle


def test_uniform_defaults_to_unit_interval_float32():
    x = _draw(gc.random.uniform((N,), seed=2))
    assert x.dtype == np.float32
    assert x.min() >= 0.0 and x.max() < 1.0
    assert abs(x.mean() - 0.5) < 0.01
    # Every tenth of the interval gets about a tenth of the draws.
    counts = np.histogram(x, bins=10, range=(0, 1))[0]
    assert np.all(np.abs(counts / N - 0.1) < 0.01)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_normal_has_right_mean_and_std(dtype):
    x = _draw(gc.random.normal((N,), mean=1.0, std=2.0, dtype=dtype, seed=3))
    assert x.dtype == np.dtype(dtype) and np.isfinite(x).all()
    assert abs(x.mean() - 1.0) < 0.04                       # std error 0.0063
    assert abs(x.std() - 2.0) < 0.03
    z = (x - 1.0) / 2.0
    assert abs(np.mean(np.abs(z) < 1) - 0.6827) < 0.01      # the 68% rule


@pytest.mark.parametrize("p", [0.0, 0.3, 1.0])
def test_bernoulli_is_true_with_probability_p(p):
    x = _draw(gc.random.bernoulli(p, (N,), seed=4))
    assert x.dtype == np.bool_ and x.shape == (N,)
    assert abs(x.mean() - p) < 0.01


def test_uniform_like_takes_the_fed_shape_and_dtype():
    xp = gc.placeholder((None, 3), "float64")
    u = gc.random.uniform_like(xp, low=5.0, high=6.0, seed=5)
    out = gc.compile(u, inputs=[xp], device="reference")(np.zeros((4, 3)))
    assert out.shape == (4, 3) and out.dtype == np.float64
    assert ((out >= 5) & (out < 6)).all()


def test_normal_like_takes_the_fed_shape_and_dtype():
    xp = gc.placeholder((None, 2), "float32")
    out = gc.compile(gc.random.normal_like(xp, seed=6), inputs=[xp],
                     device="reference")(np.zeros((7, 2), np.float32))
    assert out.shape == (7, 2) and out.dtype == np.float32
    assert len(np.unique(out)) == 14


# -- seeds ------------------------------------------------------------------------------------

def _in_fresh_graph(make, calls=1):
    with gc.Graph("fresh"):
        step = gc.compile(make(), device="reference")
        return [step() for _ in range(calls)]


def test_same_explicit_seed_gives_same_numbers_in_fresh_graphs():
    a = _in_fresh_graph(lambda: gc.random.normal((50,), seed=77), calls=2)
    b = _in_fresh_graph(lambda: gc.random.normal((50,), seed=77), calls=2)
    c = _in_fresh_graph(lambda: gc.random.normal((50,), seed=78), calls=2)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])


def test_same_manual_seed_gives_same_numbers_in_fresh_graphs():
    def draw(seed):
        gc.manual_seed(seed)
        return _in_fresh_graph(lambda: gc.random.uniform((50,)))[0]
    np.testing.assert_array_equal(draw(5), draw(5))
    assert not np.array_equal(draw(5), draw(6))


def test_two_random_nodes_in_one_graph_draw_different_numbers():
    gc.manual_seed(0)
    a, b = gc.random.uniform((100,)), gc.random.uniform((100,))
    x, y = gc.compile([a, b], device="reference")()
    assert not np.array_equal(x, y)


# -- the counter --------------------------------------------------------------------------------

def test_consecutive_calls_draw_different_numbers():
    step = gc.compile(gc.random.uniform((100,), seed=8), device="reference")
    draws = [step() for _ in range(3)]
    assert not np.array_equal(draws[0], draws[1])
    assert not np.array_equal(draws[1], draws[2])
    assert not np.array_equal(draws[0], draws[2])


def test_rng_counter_advances_by_one_per_call(fresh_graph):
    u = gc.random.uniform((3,), seed=9)
    n = gc.random.normal((3,), seed=10)
    counter = fresh_graph.rng_counter.tensor
    assert counter.dtype == "int64" and counter.shape == ()
    step = gc.compile([u, n], device="reference")    # two random nodes, one counter
    assert counter.value == 0
    for k in range(1, 4):
        step()
        assert counter.value == k
        assert step.state_dict()["rng_counter"] == k


def test_an_executable_that_draws_nothing_leaves_the_counter(fresh_graph):
    gc.random.uniform((3,), seed=11)
    plain = gc.compile(gc.constant(np.ones(2)) * 2, device="reference")
    np.testing.assert_array_equal(plain(), [2.0, 2.0])
    assert fresh_graph.rng_counter.tensor.value == 0


def test_assigning_the_counter_back_reproduces_an_earlier_draw(fresh_graph):
    step = gc.compile(gc.random.normal((20,), seed=12), device="reference")
    draws = [step() for _ in range(3)]
    counter = fresh_graph.rng_counter.tensor
    counter.assign(0)
    np.testing.assert_array_equal(step(), draws[0])
    assert counter.value == 1
    np.testing.assert_array_equal(step(), draws[1])
    counter.assign(2)
    np.testing.assert_array_equal(step(), draws[2])


def test_loading_the_counter_from_a_state_dict_resumes_the_sequence():
    step = gc.compile(gc.random.uniform((20,), seed=13), device="reference")
    step()
    checkpoint = step.state_dict()
    assert checkpoint == {"rng_counter": 1}
    later = [step() for _ in range(2)]
    step.load_state_dict(checkpoint)
    np.testing.assert_array_equal(step(), later[0])
    np.testing.assert_array_equal(step(), later[1])


def test_executables_of_one_graph_share_the_counter(fresh_graph):
    u = gc.random.uniform((10,), seed=14)
    first, second = gc.compile(u, device="reference"), gc.compile(u * 1, device="reference")
    a = first()
    b = second()                                     # sees counter 1
    assert not np.array_equal(a, b)
    fresh_graph.rng_counter.tensor.assign(1)
    np.testing.assert_array_equal(first(), b)


@pytest.mark.parametrize("seed", [-1, 2 ** 64, 1.5, "7", True])
def test_a_seed_outside_the_64_bit_range_is_refused_where_it_is_given(seed):
    with pytest.raises(gc.GraphcError, match=r"random_uniform: seed must be an integer in "
                                             r"\[0, 2\*\*64\)") as info:
        gc.random.uniform((3,), seed=seed)
    assert info.value.loc is not None and info.value.loc.file == __file__
    with pytest.raises(gc.GraphcError, match="manual_seed: seed must be"):
        gc.manual_seed(seed)


@pytest.mark.parametrize("seed", [0, 2 ** 64 - 1, np.uint64(2 ** 63)])
def test_seeds_at_the_ends_of_the_range_draw_the_same_numbers_on_every_device(seed):
    def first_draw(device):         # a fresh graph each: its random counter starts at 0
        with gc.Graph(device):
            (values,) = gc.compile([gc.random.uniform((4,), seed=seed)], device=device)()
        return values
    ref, cpu = first_draw("reference"), first_draw("cpu")
    assert np.all((0 <= ref) & (ref < 1)) and np.array_equal(ref, cpu)
