"""runtime/cpu/python_call.py: loop kernels have no CPython wrapper, and PythonCall
calls their native code from Python through a one-call step program, on the
arrays and numbers it is given, in chunks on every thread when asked."""
import numba
import numpy as np
import pytest
from numba import njit

import graphc as gc
from graphc.runtime.cpu import backend, loop_kernel
from graphc.runtime.cpu.loop_kernel import Lowered
from graphc.runtime.cpu.python_call import PythonCall


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _scaled_rows(chunk, start, stop, x, mask, table, partials, scale, err):
    """Every kind of argument a loop kernel takes: int64 bounds, float32, bool and int64
    arrays, a 2-D partial sums array and a float scalar."""
    for i in range(start, stop):
        for j in range(x.shape[1]):
            if mask[i * x.shape[1] + j]:
                partials[chunk, table[j]] += x[i, j] * scale
    if stop - start > 100:
        err[0] = 7


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _raising(x):
    if x[0] < 0:
        raise ValueError("negative")
    x[0] += 1


def test_python_call_passes_every_kind_of_argument():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 5)).astype(np.float32)
    mask = (rng.random(30) > 0.3)
    table = np.array([2, 0, 1, 2, 0], np.int64)
    partials = np.zeros((3, 3), np.float64)
    err = np.zeros(1, np.int64)
    call = PythonCall(_scaled_rows)
    call(1, 2, 5, x, mask, table, partials, 0.5, err)
    expected = np.zeros((3, 3))
    for i in range(2, 5):
        for j in range(5):
            if mask[i * 5 + j]:
                expected[1, table[j]] += x[i, j] * 0.5
    np.testing.assert_allclose(partials, expected, rtol=1e-6)
    assert err[0] == 0
    call(0, 0, 101, np.zeros((101, 5), np.float32), np.zeros(505, bool), table, partials,
         1.0, err)
    assert err[0] == 7
    assert len(_scaled_rows.overloads) == 1     # (x of another shape: the same types)
    assert len(call.programs) == 2              # (but another program)


def test_a_chunked_call_runs_the_kernel_over_every_chunk():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((40, 5)).astype(np.float32)
    table = np.array([0, 1, 2, 0, 1], np.int64)
    partials = np.zeros((numba.config.NUMBA_NUM_THREADS, 3), np.float64)
    PythonCall(_scaled_rows)(x, np.ones(200, bool), table, partials, 2.0, np.zeros(1, np.int64),
                             chunks=40)
    expected = np.zeros(3)
    np.add.at(expected, np.tile(table, 40), 2.0 * x.reshape(-1).astype(np.float64))
    np.testing.assert_allclose(partials.sum(axis=0), expected, rtol=1e-5)
    assert np.count_nonzero(partials.any(axis=1)) == min(numba.get_num_threads(), 40)


def test_a_kernel_error_is_the_kernels_exception_not_a_crash():
    call = PythonCall(_raising)
    x = np.array([1.0])
    call(x)
    assert x[0] == 2.0
    with pytest.raises(ValueError, match="negative"):
        call(np.array([-1.0]))


def _mlp():
    x = gc.placeholder((16, 8), name="x")
    w = gc.variable(np.linspace(-1, 1, 32, dtype=np.float32).reshape(8, 4), name="w")
    loss = gc.sum(gc.tanh(gc.matmul(x, w)) ** 2)
    (g,) = gc.grad(loss, [w])
    return x, w, loss, g


@pytest.mark.parametrize("njit_driver, lower", [(True, True), (False, True), (True, False)])
def test_generated_kernels_have_no_cpython_wrapper(njit_driver, lower, monkeypatch, tmp_path):
    """Lowered to IR (runtime/cpu/kernel_ir.py) or compiled by Numba, a loop kernel has
    no CPython wrapper; the Python driver and profile() still run it, through
    PythonCall."""
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(backend, "NJIT_DRIVER", njit_driver)
    monkeypatch.setattr(loop_kernel, "LOWER", lower)
    with gc.Graph(f"wrapperless {njit_driver} {lower}"):
        x, w, loss, g = _mlp()
        step = gc.compile([loss, g], [x], device="cpu")
        reference = gc.compile([loss, g], [x], device="reference")
    feeds = [np.random.default_rng(1).standard_normal((16, 8)).astype(np.float32)]
    for got, want in zip(step(*feeds), reference(*feeds)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert step.profile(*feeds, repeats=2)
    (plan,) = step._plans.values()
    assert plan.stats()["driver"] == ("njit" if njit_driver else "python")
    compiled = [r for f in plan.functions.values() for r in f.overloads.values()]
    assert compiled and all(isinstance(r, Lowered) == lower for r in compiled)
    for result in compiled:
        if not lower:       # (Numba's name for the wrapper it did not build)
            wrapper = result.fndesc.llvm_cpython_wrapper_name
            assert result.library.get_pointer_to_function(wrapper) == 0
