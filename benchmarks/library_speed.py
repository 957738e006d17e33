"""Speed of the CPU library kernels on W2's conv, pool and linear shapes.

Times graphc's NumPy references against the njit kernels (median of
--repeats runs after one warm-up call that also compiles) in three thread
set-ups (runtime/cpu/library.py's docstring): "numba" (BLAS on one thread,
prange on all cores, conv work split into one chunk per thread), "blas"
(Numba on one thread, BLAS on all cores, one chunk) and "both" (both pools
on all cores, the set-up to avoid), each in a fresh process. Prints markdown
tables of the median (and minimum) in ms, and the load average: the machine
is shared, so rerun when the load is high.

    python benchmarks/library_speed.py [--repeats 10] [--dtype float32]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numba
import numpy as np

import graphc as gc
from graphc.ops.conv import (conv2d_grad_input_reference, conv2d_grad_weight_reference,
                             conv2d_reference)
from graphc.runtime.cpu import library as L

CONVS = {"conv1": ((64, 1, 28, 28), (32, 1, 3, 3)), "conv2": ((64, 32, 26, 26), (64, 32, 3, 3))}
POOL = (64, 64, 24, 24)
LINEAR = ((64, 9216), (9216, 128))
ATTRS = (1, 1, 0, 0, 1, 1, 1)           # sh, sw, ph, pw, dh, dw, groups
CONV_NAMES = [f"{conv} {part}" for conv in CONVS for part in ("forward", "grad input", "grad weight")]


def timed(fn, repeats):
    """'median (min)' of `repeats` calls in ms, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return f"{1e3 * statistics.median(times):.3g} ({1e3 * min(times):.3g})"


MODES = ("numba", "blas", "both")


def set_mode(mode, cores):
    numba.set_num_threads(1 if mode == "blas" else cores)
    L.set_blas_threads(1 if mode == "numba" else cores)
    return 1 if mode == "blas" else cores           # conv work chunks


def conv_cases(rng, dtype):
    """name -> (reference, kernel(variant, chunks)) for each conv op of CONVS."""
    cases = {}
    kw = dict(stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1)
    for name, (xs, ws) in CONVS.items():
        x, w = rng.standard_normal(xs).astype(dtype), rng.standard_normal(ws).astype(dtype)
        y = np.empty((xs[0], ws[0], xs[2] - 2, xs[3] - 2), dtype)
        dy = rng.standard_normal(y.shape).astype(dtype)
        dx, dw = np.empty_like(x), np.empty_like(w)
        parts = [("forward", "conv2d", (x, w, y), lambda x=x, w=w: conv2d_reference(x, w, **kw)),
                 ("grad input", "conv2d_grad_input", (dy, w, dx),
                  lambda dy=dy, w=w, x=x: conv2d_grad_input_reference(dy, w, x.shape[2:], **kw)),
                 ("grad weight", "conv2d_grad_weight", (x, dy, dw),
                  lambda x=x, dy=dy, w=w: conv2d_grad_weight_reference(x, dy, w.shape[2:], **kw))]
        for part, op, args, reference in parts:
            def kernel(variant, chunks, op=op, args=args, shapes=(x.shape, w.shape, y.shape),
                       works={}):
                fn = getattr(L, L.conv_kernel_name(op, variant))
                if variant == "direct":
                    return fn(*args, *ATTRS)
                if (variant, chunks) not in works:
                    shape = L.conv_workspace_shape(op, variant, *shapes, chunks, padding=(0, 0))
                    works[variant, chunks] = np.empty(shape, dtype)
                return fn(*args, *ATTRS, works[variant, chunks])
            cases[f"{name} {part}"] = (reference, kernel)
    return cases


def other_cases(rng, dtype):
    """name -> (reference, kernel)."""
    ops = gc.ops.OPS
    pk = dict(kernel=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1))
    x = rng.standard_normal(POOL).astype(dtype)
    y = np.empty(POOL[:2] + (POOL[2] // 2, POOL[3] // 2), dtype)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = np.empty_like(x)
    a, b = (rng.standard_normal(s).astype(dtype) for s in LINEAR)
    out = np.empty((a.shape[0], b.shape[1]), dtype)
    g = rng.standard_normal(out.shape).astype(dtype)
    da, db = np.empty_like(a), np.empty_like(b)
    logits, probs = rng.standard_normal((64, 10)).astype(dtype), np.empty((64, 10), dtype)
    return {
        "max_pool2d": (lambda: ops["max_pool2d"].reference(x, **pk),
                       lambda: L.max_pool2d(x, y, 2, 2, 2, 2, 0, 0, 1, 1)),
        "max_pool2d_grad": (lambda: ops["max_pool2d_grad"].reference(x, dy, **pk),
                            lambda: L.max_pool2d_grad(x, dy, dx, 2, 2, 2, 2, 0, 0, 1, 1)),
        "linear a@b (64x9216x128)": (lambda: a @ b, lambda: L.matmul(a, b, out)),
        "linear g@b.T": (lambda: g @ b.T, lambda: L.matmul(g, b.T, da)),
        "linear a.T@g": (lambda: a.T @ g, lambda: L.matmul(a.T, g, db)),
        "log_softmax (64x10)": (lambda: ops["log_softmax"].reference(logits, axis=-1),
                                lambda: L.log_softmax_rows(logits, probs)),
    }


def run(mode, repeats, dtype):
    """{op: {column: 'median (min)'}} for one thread set-up ('reference': NumPy's)."""
    rng, cores = np.random.default_rng(0), numba.config.NUMBA_NUM_THREADS
    chunks = set_mode(mode, cores) if mode != "reference" else 1
    results = {}
    for name, (ref, kernel) in conv_cases(rng, dtype).items():
        results[name] = ({"ref": timed(ref, repeats)} if mode == "reference" else
                         {variant: timed(lambda v=variant: kernel(v, chunks), repeats)
                          for variant in ("gemm", "runs", "winograd", "direct")})
    for name, (ref, kernel) in other_cases(rng, dtype).items():
        if mode == "reference":
            results[name] = {"ref": timed(ref, repeats)}
        else:
            results[name] = {"gemm": timed(kernel, repeats)}
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--mode", help="time one set-up in this process and print JSON")
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(run(args.mode, args.repeats, args.dtype)))
        return
    # One fresh process per set-up: BLAS workers left spinning by an earlier set-up (or by
    # NumPy's own OpenBLAS) would otherwise steal the second core from prange.
    load = os.getloadavg()[0]
    res = {}
    for mode in ("reference",) + MODES:
        command = [sys.executable, __file__, "--mode", mode, "--repeats", str(args.repeats),
                   "--dtype", args.dtype]
        res[mode] = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
    print(f"{args.dtype}, {numba.config.NUMBA_NUM_THREADS} threads, median (min) of {args.repeats} "
          f"runs in ms, one process per column; load average {load:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after\n")
    print("| op | NumPy reference | gemm, numba | gemm, blas | gemm, both | winograd, numba "
          "| direct, numba | direct, 1 thread |")
    print("|---|---|---|---|---|---|---|---|")
    for name in CONV_NAMES:
        cells = [res["reference"][name]["ref"]] + [res[m][name]["gemm"] for m in MODES]
        cells += [res["numba"][name]["winograd"], res["numba"][name]["direct"],
                  res["blas"][name]["direct"]]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print("\n| op | NumPy reference | njit, numba | njit, blas | njit, both |")
    print("|---|---|---|---|---|")
    for name in res["reference"]:
        if name not in CONV_NAMES:
            cells = [res["reference"][name]["ref"]] + [res[m][name]["gemm"] for m in MODES]
            print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
