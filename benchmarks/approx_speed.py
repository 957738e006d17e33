"""Speed of the float32 approximations (graphc.runtime.cpu.approx) against libm.

Times a 4M-element float32 loop `out[i] = f(x[i])` in njit (fastmath =
SAFE_FASTMATH) with each approximation, and the same loop calling np.exp,
np.log, np.tanh, math.erf (and 1 / (1 + np.exp(-x)) for sigmoid) inside njit;
median of 20 runs each. Prints a table of ms and speedups, and the vector
width LLVM chose for each loop (from the generated assembly).

    python benchmarks/approx_speed.py [--n 4194304] [--repeats 20]
    python benchmarks/approx_speed.py --compare-widths

--compare-widths reruns the table in child processes with NUMBA_CPU_FEATURES
set to the host's features plus "+prefer-256-bit" and "-prefer-256-bit" (the
module itself never reads environment variables).
"""
import argparse
import math
import os
import re
import statistics
import subprocess
import sys
import time

import numba
import numpy as np

from graphc.runtime.cpu.approx import (SAFE_FASTMATH, erf_f32, exp_f32, log_f32, sigmoid_f32,
                                       tanh_f32)

_ONE = np.float32(1.0)


def _loop(fn):
    @numba.njit(fastmath=SAFE_FASTMATH, error_model="numpy")
    def kernel(x, out):
        for i in range(x.shape[0]):
            out[i] = fn(x[i])
    return kernel


@numba.njit(inline="always")
def _np_exp(x):
    return np.exp(x)


@numba.njit(inline="always")
def _np_log(x):
    return np.log(x)


@numba.njit(inline="always")
def _np_tanh(x):
    return np.tanh(x)


@numba.njit(inline="always")
def _math_erf(x):
    return np.float32(math.erf(x))


@numba.njit(inline="always")
def _np_sigmoid(x):
    return _ONE / (_ONE + np.exp(-x))


# name: (input range, approximation, libm baseline, baseline's label)
CASES = {
    "exp": ((-87.0, 88.0), exp_f32, _np_exp, "np.exp"),
    "log": ((1e-3, 1e3), log_f32, _np_log, "np.log"),
    "tanh": ((-10.0, 10.0), tanh_f32, _np_tanh, "np.tanh"),
    "sigmoid": ((-30.0, 30.0), sigmoid_f32, _np_sigmoid, "1/(1+np.exp(-x))"),
    "erf": ((-6.0, 6.0), erf_f32, _math_erf, "math.erf"),
}


def vector_width(kernel):
    """The widest packed float32 instruction in the kernel's assembly
    ('512-bit', '256-bit', '128-bit' or 'scalar'), with '+libm' when it still
    calls a libm function (Numba calls them through a register loaded with
    `movabsq $expf`)."""
    asm = kernel.inspect_asm(kernel.signatures[0])
    width = "scalar"
    for reg, label in (("zmm", "512-bit"), ("ymm", "256-bit"), ("xmm", "128-bit")):
        if re.search(r"\bv?(fmadd\w*|mul|add|div|movu)ps\s+[^\n]*%" + reg, asm):
            width = label
            break
    if re.search(r"\b(expf|logf|tanhf|erff|fmaf|exp|log|tanh|erf)\b", asm):
        width += "+libm"
    return width


def median_ms(kernel, x, out, repeats):
    kernel(x, out)                                       # compile and warm up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        kernel(x, out)
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def table(n, repeats):
    rng = np.random.default_rng(0)
    features = os.environ.get("NUMBA_CPU_FEATURES")
    print(f"n = {n:,} float32, median of {repeats} runs, fastmath = SAFE_FASTMATH; "
          f"NUMBA_CPU_FEATURES {'set: ...' + features[-20:] if features else 'not set'}")
    print(f"{'function':9} {'approx ms':>10} {'vector':>13} {'libm ms':>9} {'vector':>13} "
          f"{'speedup':>8}  baseline")
    for name, ((lo, hi), fast, slow, label) in CASES.items():
        if name == "log":
            x = np.exp(rng.uniform(np.log(lo), np.log(hi), n)).astype(np.float32)
        else:
            x = rng.uniform(lo, hi, n).astype(np.float32)
        out = np.empty_like(x)
        k_fast, k_slow = _loop(fast), _loop(slow)
        t_fast = median_ms(k_fast, x, out, repeats)
        t_slow = median_ms(k_slow, x, out, repeats)
        print(f"{name:9} {t_fast:10.2f} {vector_width(k_fast):>13} {t_slow:9.2f} "
              f"{vector_width(k_slow):>13} {t_slow / t_fast:7.1f}x  {label}")
    # the memory floor: a plain copy loop over the same arrays
    k_copy = _loop(_identity)
    print(f"{'copy':9} {median_ms(k_copy, x, out, repeats):10.2f} {vector_width(k_copy):>13}"
          f"   (out[i] = x[i]: the memory-bound floor)")


@numba.njit(inline="always")
def _identity(x):
    return x


def compare_widths(n, repeats):
    import llvmlite.binding as llvm
    host = llvm.get_host_cpu_features().flatten()
    host = ",".join(f for f in host.split(",") if not f.endswith("prefer-256-bit"))
    for extra in ("", "+prefer-256-bit", "-prefer-256-bit"):
        env = dict(os.environ)
        env.pop("NUMBA_CPU_FEATURES", None)
        if extra:
            env["NUMBA_CPU_FEATURES"] = f"{host},{extra}"
        print(f"\n== NUMBA_CPU_FEATURES: {'host + ' + extra if extra else 'not set (host default)'}",
              flush=True)
        subprocess.run([sys.executable, __file__, "--n", str(n), "--repeats", str(repeats)],
                       env=env, check=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4 * 1024 * 1024)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--compare-widths", action="store_true",
                        help="rerun with NUMBA_CPU_FEATURES +/-prefer-256-bit")
    args = parser.parse_args()
    if args.compare_widths:
        compare_widths(args.n, args.repeats)
    else:
        table(args.n, args.repeats)


if __name__ == "__main__":
    main()
