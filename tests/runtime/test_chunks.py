"""runtime/cpu/chunks.py: a parallel loop kernel runs in chunks of its outer loop, one
equal range per thread, through one launcher compiled once (not a parfor each)."""
import numba
import numpy as np
import pytest
from numba import njit

import graphc as gc
from graphc.runtime.cpu import chunks
from graphc.runtime.cpu.chunks import run_in_chunks
from helpers_cpu import check, finite_values, parallel_loops, plan_of

THREADS = min(2, numba.config.NUMBA_NUM_THREADS)


@njit
def _cover(start, stop, hits, first):
    for i in range(start, stop):
        hits[i] += 1
        first[i] = start


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
    run_in_chunks(_cover, count, hits, first)
    assert (hits == 1).all()
    starts = sorted(set(first))
    assert len(starts) == min(n_threads, count)
    sizes = np.diff(starts + [count])
    assert sizes.max() - sizes.min() <= 1        # equal ranges, as a static schedule


def test_the_launcher_is_cached_on_disk():
    """The launcher compiles once per runtime version, not once per process: Numba
    refuses to cache a function calling numba.get_num_threads(), so it reads the
    threading layer's symbol itself."""
    chunks.launch.compile(chunks.LAUNCH_ARGS)
    assert chunks.launch._cache.cache_path is not None
    index = chunks.launch._cache._cache_file._load_index()
    assert chunks.LAUNCH_ARGS in {key[0] for key in index}


def test_a_parallel_loop_kernel_takes_a_range_and_no_prange():
    """An element-wise kernel over (512, 160) points: `def k(start, stop, ...)` looping
    over range(start, stop), called by the step in chunks of its 81,920 points (its
    two axes are one loop)."""
    x = gc.placeholder((512, 160), name="x")
    step = check({"y": gc.sigmoid(x) * 2.0}, {x: finite_values("float32", (512, 160), seed=1)})
    source = plan_of(step).source
    assert "prange(" not in source
    assert "(start, stop, a0" in source and "in range(start, stop):" in source
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


def test_a_scalar_after_the_loop_keeps_the_prange():
    """A whole-tensor sum reduces across the outer loop: its kernel stays a prange
    reduction (independent chunks cannot add to one accumulator)."""
    value = finite_values("float32", (512, 160), seed=4)
    x = gc.placeholder(value.shape, name="x")
    step = check({"total": gc.sum(gc.exp(x * 0.1)) * 1.0}, {x: value}, rtol=1e-4)
    source = plan_of(step).source
    assert "prange(" in source and "_kc(" not in source
