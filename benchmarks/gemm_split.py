"""How W1's five GEMMs scale from one thread to two, with the BLAS this process bound.

For each GEMM of W1's step (BENCHMARKS.md: 784-512-256-10, batch 128), the
median time of one call on one thread; split into two row blocks or two
column blocks of the output, one single-threaded GEMM per Numba thread (what
runtime/cpu/library.matmul does); and two independent copies of the whole
GEMM at once, one per thread. The last shows what the machine allows: if two
copies take longer than one, no split of one GEMM can reach 2x.

    python benchmarks/gemm_split.py [--rounds 9]          # GRAPHC_BLAS=openblas to compare
"""
import argparse
import statistics
import time

import numpy as np
from numba import njit, prange

from graphc.runtime.cpu import blas

REPS = 100


@njit
def one(a, b, out, reps):
    for _ in range(reps):
        blas.gemm(a, b, out, 0.0)


@njit(parallel=True)
def row_blocks(a, b, out, reps):
    m = a.shape[0]
    for _ in range(reps):
        for p in prange(2):
            blas.gemm(a[p * m // 2:(p + 1) * m // 2], b, out[p * m // 2:(p + 1) * m // 2], 0.0)


@njit(parallel=True)
def column_blocks(a, b, out, reps):
    n = b.shape[1]
    for _ in range(reps):
        for p in prange(2):
            lo, hi = p * n // 32 * 16, (p + 1) * n // 32 * 16
            blas.gemm(a, b[:, lo:hi], out[:, lo:hi], 0.0)


@njit(parallel=True)
def two_copies(a, b, out, a2, b2, out2, reps):
    for _ in range(reps):
        for p in prange(2):
            if p == 0:
                blas.gemm(a, b, out, 0.0)
            else:
                blas.gemm(a2, b2, out2, 0.0)


def w1_gemms(rng):
    """name -> (a, b, out) as W1's step multiplies them (transposes as views)."""
    def normal(*shape):
        return rng.standard_normal(shape).astype(np.float32)
    x, w1, h1, w2, h2 = (normal(128, 784), normal(784, 512), normal(128, 512),
                         normal(512, 256), normal(128, 256))
    return {"x @ w1 (forward)": (x, w1), "h1 @ w2 (forward)": (h1, w2),
            "dh2 @ w2.T (input grad)": (h2, w2.T), "h1.T @ dh2 (weight grad)": (h1.T, h2),
            "x.T @ dh1 (weight grad)": (x.T, h1)}


def median_us(fn, args, rounds):
    fn(*args, 2)                    # compile and warm up
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn(*args, REPS)
        times.append((time.perf_counter() - start) / REPS * 1e6)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    blas.set_blas_threads(1)
    print(f"BLAS: {blas.BLAS}; us per GEMM, median of {args.rounds} rounds of {REPS} calls\n")
    print("| GEMM | GFLOP/s, 1 thread | 1 thread | 2 row blocks | 2 column blocks | "
          "best speed-up | 2 copies at once / 1 |")
    print("|---|---|---|---|---|---|---|")
    for name, (a, b) in w1_gemms(np.random.default_rng(0)).items():
        out = np.empty((a.shape[0], b.shape[1]), np.float32)
        copies = (np.array(a, order="K"), np.array(b, order="K"), out.copy())
        single = median_us(one, (a, b, out), args.rounds)
        rows = median_us(row_blocks, (a, b, out), args.rounds)
        columns = median_us(column_blocks, (a, b, out), args.rounds)
        both = median_us(two_copies, (a, b, out, *copies), args.rounds)
        gflops = 2 * a.shape[0] * a.shape[1] * b.shape[1] / single / 1e3
        print(f"| {name} | {gflops:.0f} | {single:.0f} | {rows:.0f} | {columns:.0f} | "
              f"{single / min(rows, columns):.2f} | {both / single:.2f} |")


if __name__ == "__main__":
    main()
