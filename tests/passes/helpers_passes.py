"""Shared tools for the pass tests: build a concrete Program from user tensors,
count its ops, and check that two programs compute the same values on the
reference backend."""
import numpy as np

from graphc.program import specialize
from graphc.runtime.reference import BACKEND


def program_of(outputs, inputs=(), feeds_shapes=None, updates=None):
    """A concrete Program computing `outputs` (a Tensor or list) from `inputs`.

    feeds_shapes: one concrete shape per input (default: the declared shapes).
    updates: {variable tensor: value tensor}.
    """
    outputs = [outputs] if not isinstance(outputs, (list, tuple)) else list(outputs)
    inputs = list(inputs)
    pairs = [(v.node, value.node) for v, value in (updates or {}).items()]
    roots = [o.node for o in outputs] + [value for _, value in pairs]
    graph = (outputs or [v for v, _ in (updates or {}).items()])[0].graph
    nodes = graph.ancestors(roots) | {p.node for p in inputs} | {v for v, _ in pairs}
    shapes = feeds_shapes if feeds_shapes is not None else [p.shape for p in inputs]
    return specialize(sorted(nodes, key=lambda n: n.id), [p.node for p in inputs],
                      [o.node for o in outputs], pairs, [tuple(s) for s in shapes])


def count_ops(program, name):
    """How many nodes of op `name` the program's graph holds."""
    return sum(1 for node in program.graph if node.op.name == name)


def count_live_ops(program, name):
    """How many nodes of op `name` an output or update value depends on."""
    live = program.graph.ancestors(program.roots())
    return sum(1 for node in live if node.op.name == name)


def run(program, feeds=()):
    """(outputs, new values of updated variables) on the reference backend."""
    with np.errstate(all="ignore"):
        return BACKEND.build(program).run(list(feeds))


def assert_same_values(before, after, feeds=(), rtol=1e-6, atol=1e-6):
    """Both programs give the same outputs and update values (dtype, shape, value)."""
    out_before, new_before = run(before, feeds)
    out_after, new_after = run(after, feeds)
    assert len(out_before) == len(out_after) and len(new_before) == len(new_after)
    for a, b in zip(out_before + new_before, out_after + new_after):
        a, b = np.asarray(a), np.asarray(b)
        assert a.dtype == b.dtype and a.shape == b.shape, (a.dtype, a.shape, b.dtype, b.shape)
        np.testing.assert_allclose(b, a, rtol=rtol, atol=atol, equal_nan=True)
    return out_after


def rng(seed=0):
    return np.random.default_rng(seed)


def floats(*shape, seed=0):
    """Seeded standard-normal float32 data of `shape`."""
    return rng(seed).standard_normal(shape).astype("float32")
