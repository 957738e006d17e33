"""Algebraic simplification on a concrete program.

Guarantees, for every feed, the same outputs and updates (IEEE semantics
kept: no rewrite assumes finite values, so x * 0 stays, and float x - x and
x + (-x) become x * 0, NaN where x is Inf or NaN, which LLVM's reassoc flag
keeps), and
afterwards none of these patterns remains:
- shape-only operands: once shapes are concrete, an op that read an
  operand's shape (sum_to, broadcast_to, reshape, full, random draws) takes
  the shape as an attribute and drops the false data dependency;
- identities: x + 0, x - 0, x * 1, x / 1, x ** 1, a reshape / broadcast_to /
  sum_to to x's own shape, an identity transpose, a cast to x's dtype,
  stop_gradient (autodiff is done), a reduction over size-1 axes with keepdims,
  a slice of everything, integer x - x;
- chains: -(-x), transpose of transpose, reshape of reshape, log(exp(x)),
  expand_dims(squeeze(x)) on the same axes, a concatenate of consecutive
  slices of one tensor (the slice they make up);
- stable forms: log(softmax(x)) -> log_softmax(x), log(sigmoid(x)) -> -softplus(-x);
- powers by 2, 0.5 and -0.5 become square, sqrt and rsqrt;
- matmuls shaped for one GEMM: a batched operand times a matrix is one matmul
  of the batch's rows (x @ W with x (B, T, K)); a product over several batch
  axes (attention's (B, H, T, D) @ (B, H, D, T)) or of operands of different
  ranks is one batched matmul over the flattened batch; the sum over the batch of
  a^T @ d (that product's weight gradient) is one matmul of the rows; the
  transpose of a matrix product is the product of the transposes the other way
  round (W.T's gradient, written in W's own layout by the GEMM itself); a sum
  of products P_i^T @ Q_i (an unrolled RNN's weight gradient, one per step)
  is one product of the stacked P_i and Q_i; x[:, t] @ W for every t (an
  unrolled RNN's input projection) is (x @ W)[:, t], one product, and the
  stack of G_t @ W over t (its input gradient) is the product of the stack;
- a reshape that regroups leading axes moves below the elementwise ops that
  read it (a Linear on 3-D input: bias and activation at the GEMM's shape).
"""
import collections

import numpy as np

from graphc.ops.registry import ELEMENTWISE, OPS, SOURCE


def simplify(program):
    graph = program.graph
    counts = collections.Counter()
    changed = True
    while changed:
        changed = False
        live = graph.ancestors(program.roots())     # (a rewrite leaves its old operands dead)
        for node in graph.topological():
            if node not in graph.nx or node not in live:
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


def _cancelling_operand(node):
    """x for a float x - x, x + (-x) or (-x) + x of x's own shape; else None."""
    if node.dtype.kind != "f" or node.op.name not in ("subtract", "add"):
        return None
    a, b = node.inputs
    if node.op.name == "subtract":
        pair = (a, b)
    elif b.op.name == "negative":
        pair = (a, b.inputs[0])
    elif a.op.name == "negative":
        pair = (b, a.inputs[0])
    else:
        return None
    same = pair[0] is pair[1] and pair[0].shape == node.shape and pair[0].dtype == node.dtype
    return pair[0] if same else None


def identity(node, graph):
    name, inputs = node.op.name, node.inputs
    if name == "subtract" and inputs[0] is inputs[1] and node.dtype.kind in "iu":
        return _add(graph, "full", [], {"shape": node.shape, "value": 0, "dtype": node.dtype}, node)
    cancelled = _cancelling_operand(node)
    if cancelled is not None:
        # x * 0: NaN where x is Inf or NaN, as x - x, but a form LLVM's reassoc keeps (it
        # cancelled `acc + (x - x)` to acc in a reduction, and x + (-x) to 0: a sum over
        # inf - inf gave 0, and std's gradient over one value 0 where NumPy's is NaN)
        zero = _add(graph, "constant", [], {"value": np.zeros((), node.dtype)}, node)
        return _add(graph, "multiply", [cancelled, zero], {}, node)
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


def expand_dims_of_squeeze(node, graph):
    if node.op.name == "expand_dims" and node.inputs[0].op.name == "squeeze" and \
            _same_type(node.inputs[0].inputs[0], node):
        return node.inputs[0].inputs[0]
    return None


def _slab_of(node, axis):
    """(source, start, stop) if `node` slices one unit-step range of `axis` alone."""
    if node.op.name != "slice":
        return None
    source, index = node.inputs[0], node.attrs["index"]
    for a, (start, stop, step) in enumerate(index):
        if a != axis and slice(start, stop, step).indices(source.shape[a]) != \
                (0, source.shape[a], 1):
            return None
    start, stop, step = slice(*index[axis]).indices(source.shape[axis])
    return (source, start, stop) if step == 1 and stop > start else None


def concatenate_of_slices(node, graph):
    """concatenate(x[.., a:b], x[.., b:c], ...) along the sliced axis -> x[.., a:..]."""
    if node.op.name != "concatenate" or None in node.shape:
        return None
    axis = node.attrs["axis"]
    slabs = [_slab_of(piece, axis) for piece in node.inputs]
    if None in slabs or len({s[0] for s in slabs}) != 1 or \
            any(a[2] != b[1] for a, b in zip(slabs, slabs[1:])):
        return None
    source, start, stop = slabs[0][0], slabs[0][1], slabs[-1][2]
    if source.dtype != node.dtype:
        return None
    index = [(None, None, None)] * len(node.shape)
    index[axis] = (start, stop, 1)
    return _add(graph, "slice", [source], {"index": tuple(index)}, node)


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
    """x ** 2 -> square(x), x ** 0.5 -> sqrt(x), x ** -0.5 -> rsqrt(x): vectorizable
    where a pow call is not, and exact but at x = -0 and -inf, where pow gives +0 and
    +inf (** 0.5) or +inf and 0 (** -0.5), sqrt -0 and NaN, rsqrt -inf and NaN (as
    torch.sqrt and torch.rsqrt do; a variance plus eps never is either)."""
    if node.op.name != "power" or node.inputs[1].op.name != "constant" or \
            node.inputs[1].attrs["value"].size != 1:
        return None
    x, exponent = node.inputs[0], float(node.inputs[1].attrs["value"].reshape(-1)[0])
    op = _POWERS.get(exponent)
    if op is None or x.shape != node.shape or x.dtype != node.dtype or \
            (op != "square" and x.dtype.kind != "f"):
        return None
    return _add(graph, op, [x], {}, node)



def elementwise_of_reshape(node, graph):
    """e(reshape(x), y, ...) -> reshape(e(x, y', ...)) when the reshape splits leading
    axes of x and each other operand either broadcasts over those axes (a bias) or has
    the node's shape (reshaped alike). A Linear on (N, T, D) input is one GEMM of the
    rows reshaped back to 3-D: this brings its bias and activation to the GEMM's
    shape, so fusion runs them as the GEMM's epilogue. Each rewrite lowers the rank of
    an elementwise node, so rewriting ends."""
    if node.op.kind != ELEMENTWISE:
        return None
    reshaped = next((i for i in node.inputs if i.op.name == "reshape" and len(i.inputs) == 1
                     and i.shape == node.shape and i.inputs[0].op.kind != SOURCE), None)
    if reshaped is None:
        return None
    rows = reshaped.inputs[0].shape
    common = 0
    while common < min(len(rows), len(node.shape)) and \
            rows[-1 - common] == node.shape[-1 - common]:
        common += 1
    if not 0 < common < len(rows) < len(node.shape):
        return None
    plan = [_as_rows(operand, reshaped, node.shape, rows, common) for operand in node.inputs]
    if None in plan:
        return None
    operands = [operand if shape is None else
                _add(graph, "reshape", [operand], {"newshape": shape}, node)
                for operand, shape in plan]
    inner = _add(graph, node.op.name, operands, dict(node.attrs), node)
    return _add(graph, "reshape", [inner], {"newshape": node.shape}, node)


def _as_rows(operand, reshaped, shape, rows, common):
    """(tensor, None or the shape to reshape it to) that reads at `rows` as `operand`
    reads at `shape`; None if it varies along the split axes."""
    if operand is reshaped:
        return reshaped.inputs[0], None
    if operand.shape == shape:
        return operand, rows
    first = next((a for a, d in enumerate(operand.shape) if d != 1), len(operand.shape))
    trailing = tuple(operand.shape[first:])
    if len(trailing) > common:
        return None
    return operand, (trailing if len(operand.shape) > len(rows) else None)


def _only_user(node, graph, user):
    return graph.users(node) == [user]


def _same_value(a, b):
    """a and b compute one value: the same node, or one op on the same operands (cse
    has not merged them yet: each step's gradient transposes W anew)."""
    return a is b or a.structural_key() == b.structural_key()


def _swaps_last_two(node):
    axes = node.attrs["axes"]
    n = len(axes)
    return n >= 2 and tuple(axes) == tuple(range(n - 2)) + (n - 1, n - 2)


def _rows_shape(shape):
    """(rows, last) of a concrete shape, its leading axes flattened: counted, not -1,
    which a last axis of 0 leaves undetermined (a ShapeError)."""
    return (int(np.prod(shape[:-1], dtype=np.int64)), shape[-1])


def batch_rows_of_matmul(node, graph):
    """x @ W, x (..., M, K) and W (K, N): one (prod(...) M, K) @ (K, N) GEMM."""
    if node.op.name != "matmul":
        return None
    a, b = node.inputs
    if len(b.shape) != 2 or len(a.shape) < 3 or None in a.shape:
        return None
    rows = _add(graph, "reshape", [a], {"newshape": _rows_shape(a.shape)}, node)
    product = _add(graph, "matmul", [rows, b], {}, node)
    return _add(graph, "reshape", [product], {"newshape": node.shape}, node)


def batch_axes_of_matmul(node, graph):
    """a @ b over several batch axes, or with operands of different ranks: one
    (P, M, K) @ (P, K, N) product over the flattened batch P, reshaped back. An
    operand whose batch axes are all 1 stays a batch of one (the product broadcasts
    it); one broadcast over only some batch axes is broadcast to the whole batch
    first, unless that copy would be larger than the product and both operands."""
    if node.op.name != "matmul" or len(node.shape) < 3 or None in node.shape:
        return None
    a, b = node.inputs
    if len(b.shape) == 2 or len(a.shape) == len(b.shape) == 3:
        return None             # batch_rows_of_matmul's, or already one batched product
    if any(user.op.name == "sum_to" and len(user.shape) == 2 for user in graph.users(node)):
        return None             # batch_sum_of_matmul makes it one GEMM
    batch = tuple(node.shape[:-2])
    largest = max(_size(node.shape), _size(a.shape), _size(b.shape))
    partial = [x for x in (a, b) if _batch_of(x, batch) not in (batch, (1,) * len(batch))]
    if any(_size(batch + tuple(x.shape[-2:])) > largest for x in partial):
        return None
    operands = []
    for x in (a, b):
        if x in partial:
            x = _add(graph, "broadcast_to", [x], {"shape": batch + tuple(x.shape[-2:])}, node)
        flat = (_size(_batch_of(x, batch)),) + tuple(x.shape[-2:])
        operands.append(_add(graph, "reshape", [x], {"newshape": flat}, node))
    product = _add(graph, "matmul", operands, {}, node)
    return _add(graph, "reshape", [product], {"newshape": node.shape}, node)


def _batch_of(x, batch):
    """x's batch axes, padded with leading 1s to len(batch)."""
    own = tuple(x.shape[:-2])
    return (1,) * (len(batch) - len(own)) + own


def _size(shape):
    return int(np.prod(shape, dtype=np.int64))


def batch_sum_of_matmul(node, graph):
    """sum over the batch of swapaxes(a) @ d, a (..., T, K) and d (..., T, N): the
    contraction runs over the batch and T together, so it is one (K, B T) @ (B T, N)."""
    if node.op.name != "sum_to" or len(node.shape) != 2 or node.inputs[0].op.name != "matmul":
        return None
    product = node.inputs[0]
    x, d = product.inputs
    batch = product.shape[:-2]
    if not batch or product.shape[-2:] != node.shape or x.op.name != "transpose" or \
            not _swaps_last_two(x) or x.inputs[0].shape[:-2] != batch or \
            d.shape[:-2] != batch or None in d.shape or not _only_user(product, graph, node):
        return None
    a = x.inputs[0]
    rows_a = _add(graph, "reshape", [a], {"newshape": _rows_shape(a.shape)}, node)
    rows_d = _add(graph, "reshape", [d], {"newshape": _rows_shape(d.shape)}, node)
    a_t = _add(graph, "transpose", [rows_a], {"axes": (1, 0)}, node)
    return _add(graph, "matmul", [a_t, rows_d], {}, node)


def _step_slice(node):
    """(x, start, stop) if node is x[:, t] or x[:, a:b] of a 3-D x; else None."""
    if node.op.name == "squeeze" and node.attrs["axis"] == (1,):
        node = node.inputs[0]
    slab = _slab_of(node, 1)
    return slab if slab is not None and len(slab[0].shape) == 3 else None


def matmuls_of_slices(node, graph):
    """x[:, t] @ W for every t of x's axis 1 (each its own matmul) -> (x @ W)[:, t]."""
    if node.op.name != "matmul" or len(node.shape) != 2 or _step_slice(node.inputs[0]) is None:
        return None
    a, w = node.inputs
    x, start, stop = _step_slice(a)
    covered = set()
    for sibling in graph.users(w):
        if sibling.op.name != "matmul" or sibling.inputs[1] is not w:
            continue
        rows = sibling.inputs[0]
        if rows.op.name == "reshape" and rows.inputs[0] is x:     # (x @ W) made already
            covered.update(range(x.shape[1]))
        slab = _step_slice(rows)
        if slab is not None and slab[0] is x:
            covered.update(range(slab[1], slab[2]))
    if None in x.shape or covered != set(range(x.shape[1])) or len(covered) < 2:
        return None
    whole = batch_rows_of_matmul(_add(graph, "matmul", [x, w], {}, node), graph)
    full = (None, None, None)        # x's last axis (K) is not whole's (N): not x's index
    index = (full, (start, stop, 1), full)
    step = _add(graph, "slice", [whole], {"index": index}, node)
    return _add(graph, "squeeze", [step], {"axis": (1,)}, node) if a.op.name == "squeeze" \
        else step


def concatenate_of_matmuls(node, graph):
    """concatenate(expand_dims(G_t @ W, 1) for t, axis=1) -> stack(G_t) @ W."""
    if node.op.name != "concatenate" or node.attrs["axis"] != 1 or len(node.inputs) < 2 or \
            None in node.shape:
        return None
    products = [p.inputs[0] for p in node.inputs
                if p.op.name == "expand_dims" and p.attrs["axis"] == (1,)]
    if len(products) != len(node.inputs) or any(
            p.op.name != "matmul" or len(p.shape) != 2 or
            not _same_value(p.inputs[1], products[0].inputs[1]) or not _only_user(p, graph, q)
            for p, q in zip(products, node.inputs)):
        return None
    pieces = [_add(graph, "expand_dims", [p.inputs[0]], {"axis": (1,)}, node) for p in products]
    stack = _add(graph, "concatenate", pieces, {"axis": 1}, node)
    return batch_rows_of_matmul(_add(graph, "matmul", [stack, products[0].inputs[1]], {}, node),
                                graph)


def transpose_of_matmul(node, graph):
    """(a @ b).T -> b.T @ a.T for matrices, when nothing else reads a @ b."""
    if node.op.name != "transpose" or len(node.shape) != 2 or node.attrs["axes"] != (1, 0):
        return None
    product = node.inputs[0]
    if product.op.name != "matmul" or len(product.shape) != 2 or \
            not _only_user(product, graph, node):
        return None
    a, b = product.inputs
    b_t = _add(graph, "transpose", [b], {"axes": (1, 0)}, node)
    a_t = _add(graph, "transpose", [a], {"axes": (1, 0)}, node)
    return _add(graph, "matmul", [b_t, a_t], {}, node)


def _add_tree_leaves(node, graph):
    """The terms of the sum that `node` tops: adds of its shape read by nothing else
    are looked through."""
    leaves, stack = [], [node]
    while stack:
        current = stack.pop()
        if current is node or (current.op.name == "add" and _same_type(current, node)
                               and len(graph.users(current)) == 1):
            stack.extend(reversed(current.inputs))
        else:
            leaves.append(current)
    return leaves


def _stack_order(rows, graph):
    """`rows` in the order of an existing concatenate of them (expand_dims on axis 1,
    what autodiff builds for an unrolled loop's x[:, t] gradient), so that cse
    shares it; slices x[:, t] by t, so that they stack back into x; else as given."""
    for user in graph.users(rows[0]):
        if user.op.name == "expand_dims" and user.attrs["axis"] == (1,):
            for concat in graph.users(user):
                pieces = [p.inputs[0] if p.op.name == "expand_dims" else None
                          for p in concat.inputs]
                if concat.op.name == "concatenate" and concat.attrs["axis"] == 1 and \
                        len(pieces) == len(rows) and set(pieces) == set(rows):
                    return pieces
    starts = [_slab_of(r.inputs[0], 1) if r.op.name == "squeeze" and r.attrs["axis"] == (1,)
              else None for r in rows]
    if None not in starts:          # x[:, t] for several t: in order, they stack back into x
        return [rows[i] for i in sorted(range(len(rows)), key=lambda i: starts[i][1:])]
    return rows


def _stacked_rows(parts, node, graph):
    """(n * rows, cols) of n (rows, cols) matrices, row-major over (rows, n)."""
    pieces = [_add(graph, "expand_dims", [p], {"axis": (1,)}, node) for p in parts]
    stack = _add(graph, "concatenate", pieces, {"axis": 1}, node)
    return _add(graph, "reshape", [stack], {"newshape": _rows_shape(stack.shape)}, node)


def sum_of_matmuls(node, graph):
    """P_1^T @ Q_1 + ... + P_n^T @ Q_n (same shapes) -> [P_1; ..; P_n]^T @ [Q_1; ..; Q_n],
    with the rows stacked in one order for both (the sum does not depend on it)."""
    if node.op.name != "add" or len(node.shape) != 2 or None in node.shape or any(
            u.op.name == "add" and _same_type(u, node) for u in graph.users(node)):
        return None
    groups = {}
    for leaf in _add_tree_leaves(node, graph):
        transposed = leaf.op.name == "matmul" and leaf.inputs[0].op.name == "transpose" and \
            len(leaf.inputs[0].shape) == 2 and len(graph.users(leaf)) == 1
        key = (leaf.inputs[0].inputs[0].shape, leaf.inputs[1].shape) if transposed else None
        groups.setdefault(key, []).append(leaf)
    terms = groups.pop(None, [])
    if not groups or max(len(g) for g in groups.values()) < 2:
        return None
    for leaves in groups.values():
        if len(leaves) == 1:
            terms += leaves
            continue
        ps = [leaf.inputs[0].inputs[0] for leaf in leaves]
        qs = [leaf.inputs[1] for leaf in leaves]
        if len(set(ps)) == len(ps):
            q_of = dict(zip(ps, qs))
            ps = _stack_order(ps, graph)
            qs = [q_of[p] for p in ps]
        p_t = _add(graph, "transpose", [_stacked_rows(ps, node, graph)], {"axes": (1, 0)}, node)
        terms.append(_add(graph, "matmul", [p_t, _stacked_rows(qs, node, graph)], {}, node))
    total = terms[0]
    for term in terms[1:]:
        total = _add(graph, "add", [total, term], {}, node)
    return total


RULES = [static_shapes, identity, double_negation, transpose_of_transpose,
         reshape_of_reshape, expand_dims_of_squeeze, concatenate_of_slices, log_of_exp, log_of_softmax, log_of_sigmoid, power_by_constant,
         batch_rows_of_matmul, batch_axes_of_matmul, batch_sum_of_matmul, matmuls_of_slices, concatenate_of_matmuls,
         transpose_of_matmul,
         sum_of_matmuls, elementwise_of_reshape]
