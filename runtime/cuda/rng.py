"""Random draws on the CUDA backend: random_uniform and random_normal, the same
numbers as graphc/ops/random.py's references (and so as the CPU backend, which
runs those references) for the same seed and counter.

Value i of a draw is a pure function of (seed, counter, i): the key is
splitmix64(seed ^ splitmix64(counter)), and the float of stream s at i is
(splitmix64(key + 2 i + s) >> 40) * 2^-24, in [0, 1) with 24 random bits.
The arithmetic is uint64 throughout (every constant a np.uint64, so numba.cuda
never mixes signed and unsigned), and the floats are float64 as in the
reference, cast to the output's dtype once on store: uniform draws equal the
reference's bit for bit; normal draws (Box-Muller, libdevice's log, sqrt and
cos against NumPy's) agree to within a few float64 ulps.

One thread per element, grid-stride; the counter is read on the device (the
graph's counter variable, advanced after each call by the executable's update).
"""
import math

import numpy as np
from numba import cuda

from graphc.ops.random import GOLDEN, MIX1, MIX2, SHIFT27, SHIFT30, SHIFT31, SHIFT40, UNIT
from graphc.runtime.cuda.device import LIMITS, grid_for

TWO, STREAM0, STREAM1 = np.uint64(2), np.uint64(0), np.uint64(1)
TAU = 2.0 * math.pi


@cuda.jit(device=True)
def splitmix64(z):
    """The SplitMix64 finalizer of a uint64 (it wraps around, as on the host)."""
    z = z + GOLDEN
    z = (z ^ (z >> SHIFT30)) * MIX1
    z = (z ^ (z >> SHIFT27)) * MIX2
    return z ^ (z >> SHIFT31)


@cuda.jit(device=True)
def draw_key(seed, counter):
    return splitmix64(seed ^ splitmix64(np.uint64(counter[0])))


@cuda.jit(device=True)
def unit_float(key, i, stream):
    """Float i of `stream` for `key`: in [0, 1), 24 random bits, as float64."""
    return np.float64(splitmix64(key + np.uint64(i) * TWO + stream) >> SHIFT40) * UNIT


@cuda.jit
def random_uniform(counter, seed, low, high, out, err):
    """out[i] = low + (high - low) u_i (float64, then out's dtype)."""
    if err[0] != 0:
        return
    key = draw_key(seed, counter)
    i = cuda.grid(1)
    while i < out.shape[0]:
        out[i] = low + (high - low) * unit_float(key, i, STREAM0)
        i += cuda.gridsize(1)


@cuda.jit
def random_normal(counter, seed, mean, std, out, err):
    """out[i] = mean + std sqrt(-2 log(1 - u_i)) cos(2 pi v_i), u from stream 0, v from 1."""
    if err[0] != 0:
        return
    key = draw_key(seed, counter)
    i = cuda.grid(1)
    while i < out.shape[0]:
        u1 = 1.0 - unit_float(key, i, STREAM0)
        u2 = unit_float(key, i, STREAM1)
        out[i] = mean + std * (math.sqrt(-2.0 * math.log(u1)) * math.cos(TAU * u2))
        i += cuda.gridsize(1)


def _draw(kernel, node, operands, out, err, a, b):
    counter = operands[0]
    threads = LIMITS.threads
    return [(kernel, grid_for(out.size, threads), threads,
             (counter.flat, np.uint64(node.attrs["seed"]), float(a), float(b), out, err))]


def random_uniform_op(ctx, node, operands, out, err, index):
    return _draw(random_uniform, node, operands, out, err, node.attrs["low"], node.attrs["high"])


def random_normal_op(ctx, node, operands, out, err, index):
    return _draw(random_normal, node, operands, out, err, node.attrs["mean"], node.attrs["std"])
