"""Algebraic simplification on a concrete program.

Guarantees, for every feed, the same outputs and updates (IEEE semantics
kept: no rewrite assumes finite values, so x * 0 and float x - x stay), and
afterwards none of these patterns remains:
- shape-only operands: once shapes are concrete, an op that read an
  operand's shape (sum_to, broadcast_to, reshape, full, random draws) takes
  the shape as an attribute and drops the false data dependency;
- identities: x + 0, x - 0, x * 1, x / 1, x ** 1, a reshape / broadcast_to /
  sum_to to x's own shape, an identity transpose, a cast to x's dtype,
  stop_gradient (autodiff is done), a reduction over size-1 axes with keepdims,
  a slice of everything, integer x - x;
- chains: -(-x), transpose of transpose, reshape of reshape, log(exp(x));
- stable forms: log(softmax(x)) -> log_softmax(x), log(sigmoid(x)) -> -softplus(-x);
- powers by 2, 0.5 and -0.5 become square, sqrt and rsqrt.
"""
import collections

import numpy as np

from graphc.ops.registry import OPS


def simplify(program):
    graph = program.graph
    counts = collections.Counter()
    changed = True
    while changed:
        changed = False
        for node in graph.topological():
            if node not in graph.nx:
                continue
            for rule in RULES:
                new = rule(node, graph)
                if new is None or new is node:
                    continue
                assert new.shape == node.shape and new.dtype == node.dtype, (rule, node, new)
                program.replace(node, new)
                if node not in program.roots():
                    graph.remove(node)
                counts[rule.__name__] += 1
                changed = True
                break
    return dict(counts)


def _add(graph, op, inputs, attrs, like):
    return graph.add(OPS[op], inputs, attrs, name=f"{like.name}_s", loc=like.loc)


def _constant_value(node):
    return node.attrs["value"] if node.op.name == "constant" else None


def _is_all(node, number):
    value = _constant_value(node)
    return value is not None and bool(np.all(value == number))


def _same_type(a, b):
    return a.shape == b.shape and a.dtype == b.dtype


# -- rules: each returns the node's replacement, or None ------------------------------

def static_shapes(node, graph):
    if not node.op.shape_only or len(node.inputs) <= max(node.op.shape_only):
        return None
    key = "newshape" if "newshape" in node.attrs else "shape" if "shape" in node.attrs else None
    if key is None:
        return None
    inputs = [i for k, i in enumerate(node.inputs) if k not in node.op.shape_only]
    return _add(graph, node.op.name, inputs, dict(node.attrs, **{key: node.shape}), node)


_UNIT = {"add": (0, 0), "subtract": (None, 0), "multiply": (1, 1), "divide": (None, 1),
         "power": (None, 1)}


def identity(node, graph):
    name, inputs = node.op.name, node.inputs
    if name == "subtract" and inputs[0] is inputs[1] and node.dtype.kind in "iu":
        return _add(graph, "full", [], {"shape": node.shape, "value": 0, "dtype": node.dtype}, node)
    if name in _UNIT:
        left_unit, right_unit = _UNIT[name]
        a, b = inputs
        if right_unit is not None and _is_all(b, right_unit) and _same_type(a, node):
            return a
        if left_unit is not None and _is_all(a, left_unit) and _same_type(b, node):
            return b
        return None
    if name in ("reshape", "broadcast_to", "sum_to", "cast", "transpose", "squeeze",
                "expand_dims", "stop_gradient", "slice") and _same_type(inputs[0], node):
        if name == "transpose" and node.attrs["axes"] != tuple(range(len(node.shape))):
            return None
        if name == "slice" and any(s[2] not in (None, 1) for s in node.attrs["index"]):
            return None
        return inputs[0]
    if name in ("sum", "mean", "max", "min", "prod", "logsumexp") and node.attrs["keepdims"] \
            and all(inputs[0].shape[a] == 1 for a in node.attrs["axis"]) \
            and _same_type(inputs[0], node):
        return inputs[0]
    return None


def double_negation(node, graph):
    if node.op.name == "negative" and node.inputs[0].op.name == "negative":
        return node.inputs[0].inputs[0]
    return None


def transpose_of_transpose(node, graph):
    if node.op.name != "transpose" or node.inputs[0].op.name != "transpose":
        return None
    inner = node.inputs[0]
    axes = tuple(inner.attrs["axes"][a] for a in node.attrs["axes"])
    source = inner.inputs[0]
    if axes == tuple(range(len(axes))):
        return source
    return _add(graph, "transpose", [source], {"axes": axes}, node)


def reshape_of_reshape(node, graph):
    if node.op.name != "reshape" or node.inputs[0].op.name != "reshape" or len(node.inputs) > 1:
        return None
    return _add(graph, "reshape", [node.inputs[0].inputs[0]], {"newshape": node.shape}, node)


def log_of_exp(node, graph):
    if node.op.name == "log" and node.inputs[0].op.name == "exp":
        return node.inputs[0].inputs[0]
    return None


def log_of_softmax(node, graph):
    if node.op.name == "log" and node.inputs[0].op.name == "softmax":
        inner = node.inputs[0]
        return _add(graph, "log_softmax", list(inner.inputs), dict(inner.attrs), node)
    return None


def log_of_sigmoid(node, graph):
    if node.op.name != "log" or node.inputs[0].op.name != "sigmoid":
        return None
    x = node.inputs[0].inputs[0]
    negated = _add(graph, "negative", [x], {}, node)
    softplus = _add(graph, "softplus", [negated], {"beta": 1.0, "threshold": 20.0}, node)
    return _add(graph, "negative", [softplus], {}, node)


_POWERS = {2.0: "square", 0.5: "sqrt", -0.5: "rsqrt"}


def power_by_constant(node, graph):
    """x ** 2 -> square(x), x ** 0.5 -> sqrt(x), x ** -0.5 -> rsqrt(x): exact, and
    vectorizable where a pow call is not."""
    if node.op.name != "power" or node.inputs[1].op.name != "constant" or \
            node.inputs[1].attrs["value"].size != 1:
        return None
    x, exponent = node.inputs[0], float(node.inputs[1].attrs["value"].reshape(-1)[0])
    op = _POWERS.get(exponent)
    if op is None or x.shape != node.shape or x.dtype != node.dtype or \
            (op != "square" and x.dtype.kind != "f"):
        return None
    return _add(graph, op, [x], {}, node)


RULES = [static_shapes, identity, double_negation, transpose_of_transpose,
         reshape_of_reshape, log_of_exp, log_of_softmax, log_of_sigmoid, power_by_constant]
