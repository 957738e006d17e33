"""runtime/cpu/blas.py: the sgemm every float32 GEMM calls, on strided operands."""
import importlib.metadata
import os
import subprocess
import sys

import numpy as np
import pytest
from numba import njit

from graphc.runtime.cpu import blas


@njit
def gemm_views(a, b, out, beta):
    blas.gemm(a, b, out, beta)


def random(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


OPERANDS = {
    "C @ C": lambda a, b: (a, b),
    "F @ C": lambda a, b: (np.asfortranarray(a), b),
    "C @ F": lambda a, b: (a, np.asfortranarray(b)),
    "a.T @ b.T": lambda a, b: (np.ascontiguousarray(a.T).T, np.ascontiguousarray(b.T).T),
    "row block of a.T": lambda a, b: (np.ascontiguousarray(
        np.vstack([a, a]).T).T[3:3 + a.shape[0]], b),
}


@pytest.mark.parametrize("layout", list(OPERANDS))
def test_gemm_reads_every_unit_stride_layout_in_place(layout):
    a, b = OPERANDS[layout](random((7, 5), 1), random((5, 4), 2))
    out = np.full((7, 4), np.nan, np.float32)
    gemm_views(a, b, out, 0.0)
    np.testing.assert_allclose(out, np.asarray(a, np.float64) @ b, rtol=1e-5, atol=1e-5)


def test_gemm_with_beta_one_accumulates_into_a_row_block_of_out():
    a, b = random((3, 6), 3), random((6, 4), 4)
    out = random((5, 4), 5)
    before = out.copy()
    gemm_views(a, b, out[1:4], 1.0)
    want = before.copy()
    want[1:4] += np.asarray(a, np.float64) @ b
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)


def test_gemm_of_other_dtypes_uses_numpy_and_float32_needs_a_unit_stride():
    a, b = random((6, 6), 6).astype(np.float64), random((12, 3), 7).astype(np.float64)
    out = np.zeros((6, 3))
    gemm_views(a[::2], b[::2], out[:3], 0.0)                # float64: np.dot
    np.testing.assert_allclose(out[:3], a[::2] @ b[::2])
    f32 = random((8, 8), 8)
    with pytest.raises(ValueError, match="unit stride"):
        gemm_views(f32[::2, ::2], f32[::2, ::2], np.zeros((4, 4), np.float32), 0.0)


@pytest.mark.parametrize("beta", [0.0, 2.0])
def test_gemm_over_an_empty_inner_dimension_scales_out(beta):
    """k == 0 (a zero-size batch's weight gradient): an empty sum, as NumPy gives; with
    beta = 0 out is not read (it may hold NaN)."""
    out = np.full((3, 4), np.nan if beta == 0 else 1.5, np.float32)
    gemm_views(np.zeros((3, 0), np.float32), np.zeros((0, 4), np.float32), out, beta)
    np.testing.assert_array_equal(out, np.full((3, 4), 0.0 if beta == 0 else 3.0))


def test_a_linear_layer_trains_on_an_empty_batch_as_the_reference_does():
    import graphc as gc
    results = {}
    for device in ("cpu", "reference"):
        with gc.Graph(device):
            x = gc.placeholder((None, 3), name="x")
            w = gc.variable(np.ones((3, 2), np.float32), name="w")
            loss = gc.sum(x @ w)
            (g,) = gc.grad(loss, [w])
            step = gc.compile([loss, g], inputs=[x], device=device)
            results[device] = step(np.zeros((0, 3), np.float32))
    for got, want in zip(results["cpu"], results["reference"]):
        np.testing.assert_array_equal(got, want)
    assert results["cpu"][1].shape == (3, 2) and not results["cpu"][1].any()


CHILD = """
import numpy as np
from graphc.runtime.cpu import blas, library
a = np.random.default_rng(0).standard_normal((64, 48)).astype(np.float32)
b = np.random.default_rng(1).standard_normal((48, 32)).astype(np.float32)
out = np.empty((64, 32), np.float32)
library.matmul(a, b, out)
print(blas.BLAS, float(np.abs(out - a.astype(np.float64) @ b).max()))
"""


def test_openblas_can_be_forced_and_agrees():
    """GRAPHC_BLAS picks the library in a fresh process (the symbol is bound at import)."""
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                          env=dict(os.environ, GRAPHC_BLAS="openblas"), timeout=300)
    name, error = done.stdout.split()
    assert name == "openblas" and float(error) < 1e-4, done.stderr[-2000:]


def _mkl_installed():
    try:
        importlib.metadata.distribution("mkl")
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


@pytest.mark.skipif(os.environ.get("GRAPHC_BLAS", "auto") != "auto",
                    reason="GRAPHC_BLAS forces the choice in this environment")
def test_the_default_is_mkl_when_the_mkl_package_is_installed():
    """Whatever version suffix its libmkl_rt has (MKL 2026 ships .so.3): a loader that
    looked only for .so.2 fell back to OpenBLAS without a word. Without the package
    in this environment, a libmkl_rt in the base install's or the user's lib folder
    (a venv made from a Python with mkl) is used too."""
    if _mkl_installed():
        assert blas.BLAS == "mkl"
    else:
        assert blas.BLAS == ("mkl" if blas._mkl_runtime_paths() else "openblas")


@pytest.mark.parametrize("name, runtime", [
    ("libmkl_rt.so", True), ("libmkl_rt.so.2", True), ("libmkl_rt.so.3", True),
    ("libmkl_rt.2.dylib", True), ("mkl_rt.3.dll", True),
    ("libmkl_rt.a", False), ("mkl_rt.lib", False), ("libmkl_rt_ilp64.so.3", False)])
def test_mkl_runtime_library_names(name, runtime):
    assert blas._is_mkl_runtime(name) is runtime
