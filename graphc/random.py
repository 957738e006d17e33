"""graphc's seeded generator and the public random functions (gc.random.*).

`gc.manual_seed(s)` fixes every seed graphc picks afterwards: those of random
nodes (dropout masks) and, for the nn modules, initial weights.
"""
import numpy as np

from graphc import dtypes
from graphc.errors import GraphcError, user_location
from graphc.graph import default_graph
from graphc.ops.registry import OPS
from graphc.ops.source import VariableState
from graphc.tensor import Tensor, apply

_generator = np.random.default_rng(0)


def manual_seed(seed):
    """Reseed graphc's generator (as torch.manual_seed)."""
    global _generator
    _generator = np.random.default_rng(_checked(seed, "manual_seed"))


def generator():
    """The NumPy Generator graphc draws seeds and initial weights from."""
    return _generator


def _seed(seed, op):
    return int(_generator.integers(0, 2 ** 62)) if seed is None else _checked(seed, op)


def _checked(seed, op):
    """`seed` as a Python int, or a GraphcError: the generator mixes seeds as 64-bit
    unsigned words, so a seed outside [0, 2**64) would fail only when drawn."""
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) \
            or not 0 <= int(seed) < 2 ** 64:
        raise GraphcError(f"seed must be an integer in [0, 2**64), got {seed!r}", op=op,
                          loc=user_location())
    return int(seed)


def counter(graph):
    """The graph's int64 random counter variable (created on first use)."""
    if graph.rng_counter is None:
        state = VariableState(np.zeros((), np.int64), "rng_counter", trainable=False)
        graph.rng_counter = graph.add(OPS["variable"], (), {"state": state}, name="rng_counter")
        state.name = graph.rng_counter.name
    return graph.rng_counter.tensor


def _draw(op, shape, like, dtype, seed, **params):
    graph = like.graph if isinstance(like, Tensor) else default_graph()
    operands = (counter(graph),) + ((like,) if like is not None else ())
    return apply(op, *operands, shape=None if like is not None else tuple(shape),
                 seed=_seed(seed, op), dtype=dtypes.as_dtype(dtype), **params)


def uniform(shape, low=0.0, high=1.0, dtype="float32", seed=None):
    """Uniform numbers in [low, high), new at every call of the executable."""
    return _draw("random_uniform", shape, None, dtype, seed, low=float(low), high=float(high))


def uniform_like(x, low=0.0, high=1.0, seed=None):
    return _draw("random_uniform", None, x, x.dtype, seed, low=float(low), high=float(high))


def normal(shape, mean=0.0, std=1.0, dtype="float32", seed=None):
    """Normal numbers, new at every call of the executable."""
    return _draw("random_normal", shape, None, dtype, seed, mean=float(mean), std=float(std))


def normal_like(x, mean=0.0, std=1.0, seed=None):
    return _draw("random_normal", None, x, x.dtype, seed, mean=float(mean), std=float(std))


def bernoulli(p, shape, seed=None):
    """True with probability p (bool)."""
    return uniform(shape, seed=seed) < p
