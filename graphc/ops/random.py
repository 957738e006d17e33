"""Random draws from a counter-based generator: value i of a draw is a pure
function of (seed, counter, i), so every device draws the same numbers.

Each random node has its own `seed` (from graphc's seeded generator when it is
built) and reads the graph's int64 counter variable, which every executable
that draws advances by one after each call: a new call, new numbers; the same
seed and counter, the same numbers; a checkpoint of the counter resumes them.

The bits come from SplitMix64 (Steele, Lea and Flood 2014): 64-bit
multiply-xorshift steps that the CPU and GPU backends can emit as is.
"""
import numpy as np

from graphc.ops.registry import SOURCE, register_op

# SplitMix64's constants, and the shift and scale that make 24-bit floats (the CPU
# and CUDA kernels, runtime/*/random*.py, import these)
GOLDEN = np.uint64(0x9E3779B97F4A7C15)
MIX1 = np.uint64(0xBF58476D1CE4E5B9)
MIX2 = np.uint64(0x94D049BB133111EB)
SHIFT30, SHIFT27, SHIFT31, SHIFT40 = (np.uint64(s) for s in (30, 27, 31, 40))
UNIT = 2.0 ** -24


def splitmix64(z):
    """The SplitMix64 finalizer of a uint64 array."""
    z = z + GOLDEN
    z = (z ^ (z >> SHIFT30)) * MIX1
    z = (z ^ (z >> SHIFT27)) * MIX2
    return z ^ (z >> SHIFT31)


def uniform_bits(seed, counter, count, stream=0):
    """`count` floats in [0, 1) with 24 random bits each, as float64."""
    key = splitmix64(np.array([seed], np.uint64) ^ splitmix64(np.array([counter], np.uint64)))
    index = np.arange(count, dtype=np.uint64) * np.uint64(2) + np.uint64(stream)
    return (splitmix64(key + index) >> SHIFT40).astype(np.float64) * UNIT


def _shape(like, shape):
    return like[0].shape if like else tuple(shape)


@register_op("random_uniform", SOURCE, shape_only=(1,), is_random=True)
class RandomUniform:
    """Uniform in [low, high)."""
    def infer(counter, *like, shape, seed, low, high, dtype): return _shape(like, shape), dtype

    def reference(counter, *like, shape, seed, low, high, dtype):
        shape = _shape(like, shape)
        u = uniform_bits(seed, int(counter), int(np.prod(shape)))
        return (low + (high - low) * u).reshape(shape)

    def grad(y, dy, counter, *like, **attrs): return [None] * (1 + len(like))


@register_op("random_normal", SOURCE, shape_only=(1,), is_random=True)
class RandomNormal:
    """Normal with mean `mean` and standard deviation `std` (Box-Muller)."""
    def infer(counter, *like, shape, seed, mean, std, dtype): return _shape(like, shape), dtype

    def reference(counter, *like, shape, seed, mean, std, dtype):
        shape = _shape(like, shape)
        n = int(np.prod(shape))
        u1 = 1.0 - uniform_bits(seed, int(counter), n, stream=0)     # (0, 1]
        u2 = uniform_bits(seed, int(counter), n, stream=1)
        z = np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)
        return (mean + std * z).reshape(shape)

    def grad(y, dy, counter, *like, **attrs): return [None] * (1 + len(like))


