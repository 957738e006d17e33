"""The sgemm every float32 GEMM of the CPU backend calls: MKL's when the optional
`mkl` package is installed (`pip install graphc[mkl]`), SciPy's bundled
OpenBLAS otherwise.

    gemm(a, b, out, beta)       # out = a @ b + beta * out, float32, 2-D

Float32 `a` and `b` may be any 2-D arrays with one unit stride (C- or
F-ordered, row blocks, transposes): BLAS reads them in place through its
transpose flags and leading dimensions; `out` needs unit column stride (a
ValueError otherwise: no float32 np.dot fallback, whose compile alone took
4 s). Other dtypes go through `np.dot`, beta applied by hand.

The chosen library's `cblas_sgemm` is bound to the symbol `graphc_cblas_sgemm`
when this module is imported, before any kernel that calls it is compiled or
loaded from Numba's cache (the cached code refers to the symbol by name, so
it works with whichever library the next process binds). Its own threads are
set to one: Numba's pool does the parallel work (runtime/cpu/library.py).
$GRAPHC_BLAS=openblas forces the fallback; =mkl fails loudly without MKL.
"""
import ctypes
import functools
import glob
import importlib.metadata
import os
import re
import sys

import llvmlite.binding as llvm
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from graphc.runtime.cpu.views import any_layout

SYMBOL = "graphc_cblas_sgemm"
ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112
MKL_CBWR_AUTO, MKL_CBWR_STRICT = 2, 0x10000

_i32, _f32 = types.int32, types.float32
_cblas_sgemm = types.ExternalFunction(SYMBOL, types.void(
    _i32, _i32, _i32, _i32, _i32, _i32, _f32, types.voidptr, _i32, types.voidptr, _i32,
    _f32, types.voidptr, _i32))


def _mkl_library():
    """MKL's single dynamic library (libmkl_rt), or None: first the files the `mkl`
    package lists (whatever their version suffix: MKL 2025 ships libmkl_rt.so.2,
    2026 libmkl_rt.so.3), then the lib folders of the venv, the base install and the
    user site (conda and other installs without pip's metadata)."""
    for path in _mkl_runtime_paths():
        try:
            return ctypes.CDLL(path)
        except OSError:
            continue
    return None


def _mkl_runtime_paths():
    try:
        listed = [str(f.locate()) for f in importlib.metadata.files("mkl") or ()
                  if _is_mkl_runtime(f.name)]
    except importlib.metadata.PackageNotFoundError:
        listed = []
    import site
    prefixes = [sys.prefix, sys.base_prefix, site.getuserbase()]     # venv, base, --user
    folders = [os.path.join(p, sub) for p in dict.fromkeys(prefixes)
               for sub in ("lib", os.path.join("Library", "bin"))]
    found = [os.path.join(folder, name) for folder in folders if os.path.isdir(folder)
             for name in os.listdir(folder) if _is_mkl_runtime(name)]
    return sorted(listed, reverse=True) + sorted(found, reverse=True)    # newest first


def _is_mkl_runtime(name):
    return re.fullmatch(r"libmkl_rt\.so(\.\d+)*|libmkl_rt(\.\d+)*\.dylib|mkl_rt(\.\d+)*\.dll",
                        name) is not None


@functools.lru_cache(maxsize=None)
def _scipy_openblas():
    import scipy
    root = os.path.dirname(scipy.__file__)
    for path in sorted(glob.glob(os.path.join(root, os.pardir, "scipy.libs", "*openblas*"))):
        lib = ctypes.CDLL(path)
        if hasattr(lib, "scipy_openblas_set_num_threads"):
            return lib
    return None


def set_blas_threads(n):
    """Set the thread count of SciPy's OpenBLAS (which njit's np.dot calls for
    float64); False if it cannot be set. MKL, when bound, runs one thread."""
    lib = _scipy_openblas()
    if lib is None:
        return False
    lib.scipy_openblas_set_num_threads(int(n))
    return True


def blas_threads():
    """The thread count of SciPy's OpenBLAS (None if unknown)."""
    lib = _scipy_openblas()
    return None if lib is None else lib.scipy_openblas_get_num_threads()


@functools.lru_cache(maxsize=None)
def bind():
    """Bind the sgemm symbol once; returns which BLAS: "mkl" or "openblas"."""
    choice = os.environ.get("GRAPHC_BLAS", "auto").lower()
    mkl = _mkl_library() if choice in ("auto", "mkl") else None
    if mkl is not None:
        mkl.MKL_Set_Num_Threads(1)
        # bitwise the same results whatever the operands' alignment (arena views
        # and separate arrays, one process and the next): exact checkpoint resumes
        mkl.MKL_CBWR_Set(MKL_CBWR_AUTO | MKL_CBWR_STRICT)
        function, name = mkl.cblas_sgemm, "mkl"
    elif choice == "mkl":
        raise ImportError("GRAPHC_BLAS=mkl but MKL's libmkl_rt was not found: "
                          "pip install 'graphc[mkl]'")
    else:
        openblas = _scipy_openblas()
        if openblas is None:
            raise ImportError("SciPy's bundled OpenBLAS was not found (scipy.libs)")
        function, name = openblas.scipy_cblas_sgemm, "openblas"
    llvm.add_symbol(SYMBOL, ctypes.cast(function, ctypes.c_void_p).value)
    return name


BLAS = bind()


@intrinsic
def _address(typingctx, array):
    """The data pointer of `array` as a void*."""
    if not isinstance(array, types.Array):
        return None

    def codegen(context, builder, signature, args):
        data = cgutils.create_struct_proxy(array)(context, builder, value=args[0]).data
        return builder.bitcast(data, ir.IntType(8).as_pointer())

    return types.voidptr(array), codegen


@njit(cache=True)
def _operand(x):
    """(transpose flag, leading dimension) of a 2-D float32 operand, or (0, 0) if
    neither stride is one element."""
    rows, cols = x.shape
    if x.strides[1] == 4 or cols == 1:
        return NO_TRANS, max(x.strides[0] // 4, cols, 1)
    if x.strides[0] == 4 or rows == 1:
        return TRANS, max(x.strides[1] // 4, rows, 1)
    return 0, 0


def gemm(a, b, out, beta):
    """out = a @ b + beta * out (see the module docstring)."""
    out[...] = a @ b + beta * out


@overload(gemm)
def _gemm(a, b, out, beta):
    if all(isinstance(x, types.Array) and x.dtype == types.float32 and x.ndim == 2
           for x in (a, b, out)):
        # every layout combination calls one compiled function
        return lambda a, b, out, beta: _sgemm(any_layout(a), any_layout(b), any_layout(out),
                                              beta)
    if isinstance(out, types.Array) and out.layout != "C":     # np.dot's `out` must be C
        return lambda a, b, out, beta: _dot_into_view(a, b, out, beta)
    return lambda a, b, out, beta: _dot_beta(a, b, out, beta)


@njit(cache=True)
def _sgemm(a, b, out, beta):
    m, k = a.shape
    n = b.shape[1]
    if m == 0 or n == 0:
        return
    if k == 0:      # an empty sum (a zero-size batch's weight gradient): out = beta * out
        for i in range(m):
            for j in range(n):
                out[i, j] = 0.0 if beta == 0 else beta * out[i, j]
        return
    ta, lda = _operand(a)
    tb, ldb = _operand(b)
    if ta == 0 or tb == 0 or (out.strides[1] != 4 and n > 1):
        raise ValueError("gemm: a float32 operand without a unit stride")
    ldc = max(out.strides[0] // 4, n, 1)
    _cblas_sgemm(ROW_MAJOR, ta, tb, m, n, k, np.float32(1.0), _address(a), lda,
                 _address(b), ldb, np.float32(beta), _address(out), ldc)


@njit(cache=True)
def _dot_into_view(a, b, out, beta):
    # np.dot needs contiguous operands (it would copy them anyway, with a warning);
    # with beta = 0, as in BLAS, out is not read (it may hold NaN)
    product = np.dot(np.ascontiguousarray(a), np.ascontiguousarray(b))
    if beta == 0:
        out[...] = product
    else:
        out[...] = product + beta * out


@njit(cache=True)
def _dot_beta(a, b, out, beta):
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)     # (see _dot_into_view)
    if beta == 0:
        np.dot(a, b, out)
    else:
        out[...] = np.dot(a, b) + beta * out
