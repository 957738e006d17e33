"""Constant folding with the ops' NumPy references.

Guarantees: afterwards no node other than a source has only constant
operands, except random draws and results that would bloat the graph
(more than `MAX_GROWTH` elements beyond what their operands hold, such
as a large zeros/ones/full or a broadcast of a scalar). Meaning unchanged:
the folded value is exactly what the reference interpreter computes.
"""
import numpy as np

from graphc.ops.registry import OPS

MAX_GROWTH = 1024       # elements a fold may add to the graph's constants


def _is_constant(node):
    return node.op.name == "constant"


def _foldable(node):
    if node.op.is_random or node.op.name in ("placeholder", "variable", "constant"):
        return False
    return all(_is_constant(i) or k in node.op.shape_only for k, i in enumerate(node.inputs))


def fold(program):
    folded = 0
    graph = program.graph
    for node in graph.topological():
        if not _foldable(node):
            continue
        held = sum(i.attrs["value"].size for i in node.inputs if _is_constant(i))
        if int(np.prod(node.shape)) > held + MAX_GROWTH:
            continue
        arrays = [i.attrs["value"] if _is_constant(i) else np.empty(i.shape, i.dtype)
                  for i in node.inputs]
        with np.errstate(all="ignore"):      # 1/0 folds to inf, as it would run
            value = node.op.compute(arrays, node.attrs, node.dtype)
        constant = graph.add(OPS["constant"], (), {"value": np.array(value)},
                             name=f"{node.name}_folded", loc=node.loc)
        program.replace(node, constant)
        graph.remove(node)
        folded += 1
    return {"folded": folded}
