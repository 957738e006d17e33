"""runtime/cpu/chunks.py and chunked.py: a parallel loop kernel runs in chunks of its
outer loop, one equal range per thread, through one launcher compiled once (not a
parfor each); a sum across the loop adds up the chunks' partial sums in a tail."""
import re

import numba
import numpy as np
import pytest
from numba import njit

import graphc as gc
from graphc.runtime.cpu import chunks
from graphc.runtime.cpu.python_call import PythonCall
from helpers_cpu import check, finite_values, parallel_loops, plan_of

THREADS = min(2, numba.config.NUMBA_NUM_THREADS)


@njit
def _cover(chunk, start, stop, hits, first, numbers):
    for i in range(start, stop):
        hits[i] += 1
        first[i] = start
        numbers[i] = chunk


@pytest.fixture
def threads():
    """Set Numba's thread count for one test; restored after."""
    before = numba.get_num_threads()
    yield numba.set_num_threads
    numba.set_num_threads(before)


@pytest.mark.parametrize("count", [1, 2, 3, 7, 1000])
@pytest.mark.parametrize("n_threads", sorted({1, THREADS}))
def test_every_point_runs_once_in_one_range_per_thread(threads, count, n_threads):
    threads(n_threads)
    hits, first = np.zeros(count, np.int64), np.full(count, -1, np.int64)
    numbers = np.full(count, -1, np.int64)
    PythonCall(_cover)(hits, first, numbers, chunks=count)
    assert (hits == 1).all()
    starts = sorted(set(first))
    assert len(starts) == min(n_threads, count)
    assert sorted(set(numbers)) == list(range(len(starts)))     # chunk k from start k
    sizes = np.diff(starts + [count])
    assert sizes.max() - sizes.min() <= 1        # equal ranges, as a static schedule


def test_the_launcher_is_cached_on_disk():
    """The launcher compiles once per runtime version, not once per process: Numba
    refuses to cache a function calling numba.get_num_threads(), so it reads the
    threading layer's symbol itself."""
    launch_types = (numba.int64,) * 3
    chunks.launch.compile(launch_types)
    assert chunks.launch._cache.cache_path is not None
    index = chunks.launch._cache._cache_file._load_index()
    assert launch_types in {key[0] for key in index}


def test_a_parallel_loop_kernel_takes_a_range_and_no_prange():
    """An element-wise kernel over (512, 160) points: `def k(chunk, start, stop, ...)` looping
    over range(start, stop), called by the step in chunks of its 81,920 points (its
    two axes are one loop)."""
    x = gc.placeholder((512, 160), name="x")
    step = check({"y": gc.sigmoid(x) * 2.0}, {x: finite_values("float32", (512, 160), seed=1)})
    source = plan_of(step).source
    assert "prange(" not in source
    assert "(chunk, start, stop, a0" in source and "in range(start, stop):" in source
    assert parallel_loops(source) == [512 * 160]


def test_kernels_of_one_body_and_different_sizes_share_a_function():
    """The outer count is the call's, not the function's: two updates of the same form
    over 401,408 and 131,072 points (W1's two weight updates) are one function."""
    rng = np.random.default_rng(2)
    a = gc.variable(rng.standard_normal((784, 512)).astype(np.float32), name="a")
    b = gc.variable(rng.standard_normal((512, 256)).astype(np.float32), name="b")
    step = gc.compile([], updates={a: a * 0.5 + 1.0, b: b * 0.5 + 1.0}, device="cpu")
    before = a.value.copy(), b.value.copy()
    step()
    np.testing.assert_allclose(a.value, before[0] * 0.5 + 1.0, rtol=1e-6)
    np.testing.assert_allclose(b.value, before[1] * 0.5 + 1.0, rtol=1e-6)
    plan = plan_of(step)
    assert plan.stats()["generated_kernels"] == 2 and plan.stats()["distinct_loops"] == 1
    assert sorted(parallel_loops(plan.source)) == [131072, 401408]


@pytest.mark.parametrize("n_threads", sorted({1, THREADS}))
def test_column_sums_in_chunks_keep_their_own_rows(threads, n_threads):
    """A bias gradient over (128, 1000): 8 blocks of 128 columns; each call in chunks
    keeps accumulators for its own columns only (from row0 on). Sums, maxima and the
    element output match the reference with one thread and with several."""
    threads(n_threads)
    value = finite_values("float32", (128, 1000), seed=3)
    x = gc.placeholder(value.shape, name="x")
    outputs = {"doubled": x * 2.0, "column sums": gc.sum(x, axis=0),
               "column max": gc.max(x, axis=0)}
    step = check(outputs, {x: value}, rtol=1e-5, atol=1e-5)
    source = plan_of(step).source
    assert "row0 = start * 128" in source and 8 in parallel_loops(source)


@pytest.mark.parametrize("n_threads", sorted({1, THREADS}))
def test_sums_across_the_loop_add_up_the_chunks_partial_sums(threads, n_threads):
    """A whole-tensor sum (long: float32 blocks into float64) and a mean of squares
    across the outer loop: each chunk stores its partial sums, the tail (chunk -1)
    adds them up, so every call, in the step and kernel by kernel (profile), gives
    the reference's sums."""
    threads(n_threads)
    value = finite_values("float32", (512, 160), seed=4)
    x = gc.placeholder(value.shape, name="x")
    outputs = {"total": gc.sum(gc.exp(x * 0.1)) * 1.0, "mean square": gc.mean(x * x)}
    step = check(outputs, {x: value}, rtol=1e-5)
    source = plan_of(step).source
    assert "prange(" not in source and "if chunk < 0:" in source
    assert "partials[chunk * 2 + 1] = acc1" in source
    first = step(value)
    step.profile(value, repeats=2)
    for again in (step(value), step(value)):
        assert [float(a) for a in again] == [float(a) for a in first]


@pytest.mark.skipif(THREADS < 2, reason="needs Numba to run two threads")
def test_a_call_on_fewer_threads_sees_no_partial_sum_of_the_last(threads):
    """The tail zeroes the slots it added: a call on one thread after a call on two
    must not add the second thread's partial sum from the call before."""
    value = finite_values("float32", (512, 160), seed=5)
    x = gc.placeholder(value.shape, name="x")
    step = gc.compile([gc.sum(x * x)], inputs=[x], device="cpu")
    threads(2)
    (on_two,) = step(value)
    threads(1)
    (on_one,) = step(value)
    assert "if chunk < 0:" in plan_of(step).source
    np.testing.assert_allclose(on_one, on_two, rtol=1e-6)
    np.testing.assert_allclose(on_one, np.sum(value.astype(np.float64) ** 2), rtol=1e-5)


def test_an_integer_sum_across_the_loop_keeps_its_prange():
    """The partial sums are float64 slots, which hold float accumulators exactly but not
    every int64: an integer sum across the loop stays a prange reduction."""
    value = np.arange(512 * 160, dtype=np.int64).reshape(512, 160) % 1000
    x = gc.placeholder(value.shape, "int64", name="x")
    step = check({"total": gc.sum(x * 3)}, {x: value})
    assert "prange(" in plan_of(step).source and "_kc(" not in plan_of(step).source


@pytest.mark.skipif(THREADS < 2, reason="needs 2 Numba threads to change the count")
def test_library_parts_planned_at_one_thread_count_run_the_same_at_another(threads):
    """A conv's work array has one row per thread counted when the plan is built (at
    the first call); its parts are those rows. A step planned at 2 threads and run
    at 1 computes the same bits (the same parts, in turn); one planned at 1 and run
    at 2 the same values up to the order of its weight gradients' sums (one part
    sums every image). Winograd, runs and direct convs, forward and gradients."""
    def build():
        gc.manual_seed(0)
        net = gc.nn.Sequential(gc.nn.Conv2d(32, 32, 3, padding=1), gc.nn.ReLU(),
                               gc.nn.Conv2d(32, 8, 3, groups=8), gc.nn.Flatten(),
                               gc.nn.Linear(8 * 10 * 10, 10))
        x = gc.placeholder((6, 32, 12, 12), name="x")
        y = gc.placeholder((6,), "int64", name="y")
        loss = gc.nn.functional.cross_entropy(net(x), y)
        return gc.compile([loss] + gc.grad(loss, list(net.parameters())), inputs=[x, y],
                          device="cpu")

    rng = np.random.default_rng(3)
    feeds = [rng.standard_normal((6, 32, 12, 12)).astype("float32"), rng.integers(0, 10, 6)]
    threads(2)
    with gc.Graph("planned at 2"):
        step = build()
        want = step(*feeds)
        threads(1)
        at_one = step(*feeds)
    with gc.Graph("planned at 1"):
        step_one = build()
        step_one(*feeds)                # the plan is built at 1 thread
        threads(2)
        at_two = step_one(*feeds)
    source = plan_of(step).source
    for kernel, parts in (("conv2d_winograd", 2), ("conv2d_grad_weight_winograd", 2),
                          ("conv2d_direct", 6)):      # (the direct conv's parts: images)
        assert re.search(rf"_lib\.{kernel}_parts\(.*\) in {parts} chunks", source)
    assert re.search(r"_lib\.conv2d_winograd_parts\(.*\) in 1 chunks", plan_of(step_one).source)
    for g, w in zip(at_one, want):
        np.testing.assert_array_equal(g, w)
    for g, w in zip(at_two, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
