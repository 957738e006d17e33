"""Common-subexpression elimination.

Guarantees: afterwards no two nodes have the same op, attributes and
operands, except random draws and graph inputs (placeholders, variables),
which are never merged. Meaning unchanged: scalar attributes compare by
type and exact value, so full(0.0) and full(-0.0) (equal in Python) stay apart.
"""
import numpy as np


def _mergeable(node):
    return not node.op.is_random and node.op.name not in ("placeholder", "variable")


def _exact(key):
    """The structural key with each scalar tagged by its type and floats by repr."""
    if isinstance(key, tuple):
        return tuple(_exact(k) for k in key)
    if isinstance(key, (float, np.floating)):
        return (type(key), repr(key))
    return (type(key), key)


def cse(program):
    seen, merged = {}, 0
    for node in program.graph.topological():
        if not _mergeable(node):
            continue
        key = _exact(node.structural_key())
        first = seen.setdefault(key, node)
        if first is not node:
            program.replace(node, first)
            program.graph.remove(node)
            merged += 1
    return {"merged": merged}


