"""Random draws on the CPU backend: random_uniform and random_normal as njit
kernels, the numbers of graphc/ops/random.py's references for the same seed
and counter (as the CUDA backend's runtime/cuda/rng.py).

Value i of a draw is a pure function of (seed, counter, i): the key is
splitmix64(seed ^ splitmix64(counter)), and the float of stream s at i is
(splitmix64(key + 2 i + s) >> 40) * 2^-24, in [0, 1) with 24 random bits.
The arithmetic is uint64 throughout (every constant a np.uint64: Numba turns
a uint64 mixed with an int64 into a float64), the floats are float64 as in
the reference, cast to the output's dtype on store, and nothing is compiled
with fast-math (a contracted multiply-add would round differently): uniform
draws equal the reference's bit for bit; normal draws (Box-Muller with the C
library's log, sqrt and cos against NumPy's) agree to within a few float64
ulps, so almost always exactly once cast to float32.

Each kernel takes the counter (a 1-element int64 array: the graph's counter
variable), the seed (a 1-element uint64 array), its two float64 parameters
(low, high or mean, std) and the flat output; blocks of elements are spread
over Numba's threads.
"""
import math

import numpy as np
from numba import njit, prange

from graphc.ops.random import GOLDEN, MIX1, MIX2, SHIFT27, SHIFT30, SHIFT31, SHIFT40, UNIT
from graphc.runtime.cpu.conv import PRANGE_ONLY

TWO, STREAM0, STREAM1 = np.uint64(2), np.uint64(0), np.uint64(1)
TAU = 2.0 * math.pi
BLOCK = 8192                # elements per task of the thread pool


@njit(cache=True)
def splitmix64(z):
    """The SplitMix64 finalizer of a uint64 (it wraps around, as NumPy's does)."""
    z = z + GOLDEN
    z = (z ^ (z >> SHIFT30)) * MIX1
    z = (z ^ (z >> SHIFT27)) * MIX2
    return z ^ (z >> SHIFT31)


@njit(cache=True)
def draw_key(seed, counter):
    return splitmix64(seed[0] ^ splitmix64(np.uint64(counter[0])))


@njit(cache=True)
def unit_float(key, i, stream):
    """Float i of `stream` for `key`: in [0, 1), 24 random bits, as float64."""
    return np.float64(splitmix64(key + np.uint64(i) * TWO + stream) >> SHIFT40) * UNIT


# Each draw has a `_parts` form over blocks [start, stop) of BLOCK values, which
# the step program launches over the threads (runtime/cpu/chunks.py: a parfor
# compiles about three times as long); the kernels run it in a `prange`.

def block_count(n):
    return (n + BLOCK - 1) // BLOCK


@njit(cache=True)
def random_uniform_parts(chunk, start, stop, counter, seed, params, out):
    """out[i] = low + (high - low) u_i (float64, then out's dtype)."""
    key = draw_key(seed, counter)
    low, span = params[0], params[1] - params[0]
    n = out.shape[0]
    for block in range(start, stop):
        for i in range(block * BLOCK, min(n, (block + 1) * BLOCK)):
            out[i] = low + span * unit_float(key, i, STREAM0)


@njit(parallel=PRANGE_ONLY, cache=True)
def random_uniform(counter, seed, params, out):
    for block in prange((out.shape[0] + BLOCK - 1) // BLOCK):
        random_uniform_parts(block, block, block + 1, counter, seed, params, out)


@njit(cache=True)
def random_normal_parts(chunk, start, stop, counter, seed, params, out):
    """out[i] = mean + std sqrt(-2 log(1 - u_i)) cos(2 pi v_i), u from stream 0, v from 1."""
    key = draw_key(seed, counter)
    mean, std = params[0], params[1]
    n = out.shape[0]
    for block in range(start, stop):
        for i in range(block * BLOCK, min(n, (block + 1) * BLOCK)):
            u1 = 1.0 - unit_float(key, i, STREAM0)
            u2 = unit_float(key, i, STREAM1)
            out[i] = mean + std * (math.sqrt(-2.0 * math.log(u1)) * math.cos(TAU * u2))


@njit(parallel=PRANGE_ONLY, cache=True)
def random_normal(counter, seed, params, out):
    for block in prange((out.shape[0] + BLOCK - 1) // BLOCK):
        random_normal_parts(block, block, block + 1, counter, seed, params, out)


def draw_arguments(node):
    """(seed, params) of a random node: a uint64 and a float64 array of 1 and 2 elements."""
    attrs = node.attrs
    pair = (attrs["low"], attrs["high"]) if node.op.name == "random_uniform" \
        else (attrs["mean"], attrs["std"])
    return np.array([attrs["seed"]], np.uint64), np.array(pair, np.float64)
