"""Fusion's legality rules: may a node join a kernel, and at which level.

`fit(fusion, kernel, node)` answers for passes/fuse.py, with the reason when
the answer is no (the fusion report shows it for the edge). The rules:
- a node joins at ELEMENT when its shape is the kernel's domain, at ROW when
  it is one of the kernel's row shapes and reads no ELEMENT value, at SCALAR
  when it is a single value computed from SCALAR values (or, in a domain of one
  point, from no ELEMENT value: a SCALAR node there read ELEMENT values that the
  loop never computed for it, a NameError in the generated code);
- a reduction joins only over an ELEMENT (of the domain's shape) or ROW value of
  the kernel, over the kernel's own reduce axes (or all axes);
- nothing reads a full reduction of its own kernel before it is complete, an
  ELEMENT value through a view (it would index other points), nor a row value
  through a view that reorders rows;
- an inlined operand, recomputed at the point being evaluated, may read the
  kernel's own values only at that same point (`safe_inlining`);
- no join may make two kernels depend on each other (`would_cycle`);
- a value compared with its own max or min (max's and min's gradients: which
  elements attain it) is a buffer, computed once: the reduction and the
  comparison read the same rounding (`must_be_buffer`). Computed twice, in two
  passes or two kernels, `contract` and `reassoc` may round it differently in
  each (they did: one rounding fused into an FMA, the other not), and no
  element equals the max.
These rules only say what is legal; fuse.py decides what to join.
"""
import numpy as np

from graphc.ops.registry import ELEMENTWISE
from graphc.passes.kernels import (BUFFER_OPS, ELEMENT, LOOP_REDUCTIONS, ROW, SCALAR, VIEW_OPS,
                                   apply_view)

COMPARISONS = ("equal", "not_equal", "less", "less_equal", "greater", "greater_equal")
EXTREMA = ("max", "min")


def fit(fusion, kernel, node):
    """(level, None) if `node` may join `kernel`, else (None, reason)."""
    if would_cycle(fusion, kernel, node):
        return None, "joining would create a cycle between kernels"
    levels = [_level_in(kernel, i) for i in node.inputs if fusion.kernel_of.get(i) is kernel
              and i not in kernel.inlined]
    if not safe_inlining(fusion, kernel, node):
        return None, "an inlined operand would read this kernel's values at other points"
    if node.op.name in LOOP_REDUCTIONS:
        source = node.inputs[0]
        if fusion.kernel_of.get(source) is not kernel:
            return None, "reduces a buffer"
        if compared_with_own_extremum(fusion.program.graph, node):
            return None, "a max/min compared with its operand reads it as a buffer"
        return _reduction_fit(kernel, source, node, _level_in(kernel, source))
    single_point = not kernel.domain or _is_single(kernel.domain)
    if _is_single(node.shape) and levels and (
            SCALAR in levels or single_point and ELEMENT not in levels):
        return SCALAR, None
    if SCALAR in levels:
        return None, "reads a full reduction of its own kernel, which must finish first"
    if node.shape == kernel.domain:
        for operand, level in zip(node.inputs, [_level_in(kernel, i) for i in node.inputs]):
            if level == ROW and not _broadcasts_as_row(kernel, operand.shape):
                return None, f"reads row value {operand.name} with a shape that is not per-row"
        if node.op.name in VIEW_OPS and ROW not in levels:
            return None, "a view that changes the indexing of the kernel's values"
        return ELEMENT, None
    if node.shape in kernel.row_shapes() and ELEMENT not in levels:
        if node.op.name in VIEW_OPS and ROW in levels and not _keeps_order(node):
            return None, "a view that reads the kernel's row values at other rows"
        return ROW, None
    return None, (f"shape {node.shape} does not fit kernel domain {kernel.domain}"
                  + (f" (rows over axes {kernel.reduce_axes})" if kernel.reduce_axes else ""))


def _reduction_fit(kernel, source, node, level):
    axes = node.attrs["axis"]
    if level == ELEMENT and source.shape != kernel.domain:
        # an inlined operand of another shape (x in broadcast_to(x)): the loop's points
        # are not its elements (an IndexError rendering, or sums counted twice)
        return None, f"reduces a value of shape {source.shape}, not the domain's"
    if level == ELEMENT:
        result = reduction_level(kernel, source, node)
        return (result, None) if result else (None, f"reduces axes {axes} but the kernel "
                                                    f"reduces rows over {kernel.reduce_axes}")
    if level == ROW and _is_single(node.shape):
        return SCALAR, None
    return None, "reduces a value that is not per-element or per-row"


def reduction_level(kernel, source, node):
    """The level of a reduction of an ELEMENT value of `kernel`, or None if it does not fit."""
    axes = tuple(node.attrs["axis"])
    if len(axes) == len(source.shape):
        return SCALAR
    return ROW if kernel.reduce_axes in (None, axes) else None


def safe_inlining(fusion, kernel, node):
    """Inlined nodes are recomputed at the point being evaluated, so one may read the
    kernel's own values only through elementwise ops at the domain's shape."""
    stack = [(i, True) for i in node.inputs
             if i in fusion.free or (i in kernel.inlined and fusion.kernel_of.get(i) is kernel)]
    seen = set()
    while stack:
        current, same_point = stack.pop()
        if (current, same_point) in seen:
            continue
        seen.add((current, same_point))
        if current in fusion.free or current in kernel.inlined:
            keeps = same_point and current.op.kind == ELEMENTWISE and current.shape == kernel.domain
            stack.extend((i, keeps) for i in current.inputs)
        elif current in kernel.level:
            if not (same_point and current.shape == kernel.domain
                    and kernel.level[current] == ELEMENT):
                return False
    return True


def _keeps_order(view):
    """Whether element i of `view` is element i of its operand (a reshape, squeeze or
    expand_dims; not a transpose or slice, which read other rows)."""
    operand = view.inputs[0]
    size = int(np.prod(operand.shape, dtype=np.int64))
    if int(np.prod(view.shape, dtype=np.int64)) != size:
        return False
    flat = np.arange(size).reshape(operand.shape)
    return np.array_equal(np.asarray(apply_view(view, flat)).reshape(-1),
                          np.arange(size))


def _is_single(shape):
    return all(d == 1 for d in shape)


def _level_in(kernel, node):
    if node in kernel.level:
        return kernel.level[node]
    return ELEMENT if node in kernel.inlined else None


def _broadcasts_as_row(kernel, shape):
    padded = (1,) * (len(kernel.domain) - len(shape)) + tuple(shape)
    if len(padded) != len(kernel.domain):
        return False
    return all((p == 1) if a in kernel.reduce_axes else p in (d, 1) and (p == d or d == 1)
               for a, (p, d) in enumerate(zip(padded, kernel.domain)))


def would_cycle(fusion, kernel, node):
    """Would `kernel` computing `node` read (through free nodes and aliases) a buffer
    written by a kernel that depends on `kernel`?"""
    owners = {writer_of(fusion, leaf) for leaf in buffer_leaves(fusion, node)}
    return depends_on(fusion, owners - {None, kernel}, kernel)


def depends_on(fusion, kernels, target):
    """Whether a kernel of `kernels` reads, directly or through other kernels, what
    `target` writes. A path to `target` only meets kernels ranked above it
    (`kernel_ranks`), so the walk skips the others: a 400-step LSTM's fusion asked
    11,000 times, and each walk went through most of its 1,600 kernels."""
    rank = kernel_ranks(fusion)
    floor = rank[target]
    seen, stack = set(), [k for k in kernels if rank[k] >= floor]
    while stack:
        k = stack.pop()
        if k is target:
            return True
        if k not in seen:
            seen.add(k)
            stack.extend(d for d in k.deps if rank[d] >= floor)
    return False


def kernel_ranks(fusion):
    """{kernel: rank}, each kernel's rank above those of the kernels it reads (a
    topological numbering). It is kept while it holds: a new kernel ranks above all
    (`add_kernel`); a dependency that breaks it (`add_dependency`), or a merge
    (`forget_ranks`), makes the next call number every kernel again, deps first."""
    if fusion.rank is None:
        rank, top = {}, -1
        for root in fusion.kernels:
            if root in rank:
                continue
            rank[root] = None                   # None: on the walk, not yet ranked
            stack = [(root, iter(root.deps))]
            while stack:
                kernel, deps = stack[-1]
                dep = next((d for d in deps if d not in rank), None)
                if dep is None:
                    stack.pop()
                    top += 1
                    rank[kernel] = top
                else:
                    rank[dep] = None
                    stack.append((dep, iter(dep.deps)))
        fusion.rank, fusion.rank_top = rank, top
    return fusion.rank


def add_kernel(fusion, kernel):
    """A new kernel (no dependencies and no readers yet) ranks above every other."""
    if fusion.rank is not None:
        fusion.rank_top += 1
        fusion.rank[kernel] = fusion.rank_top


def add_dependency(fusion, kernel, owner):
    """`kernel` reads what `owner` writes."""
    kernel.deps.add(owner)
    if fusion.rank is not None and fusion.rank[owner] >= fusion.rank[kernel]:
        fusion.rank = None


def forget_ranks(fusion):
    """The dependencies changed more than `add_dependency` tracks (a merge)."""
    fusion.rank = None


def buffer_leaves(fusion, node):
    """The buffers a node reads, looking through free nodes."""
    leaves, stack, seen = set(), list(node.inputs), set()
    while stack:
        operand = stack.pop()
        if operand in seen:
            continue
        seen.add(operand)
        if operand in fusion.free:
            stack.extend(operand.inputs)
        else:
            leaves.add(operand)
    return leaves


def writer_of(fusion, node):
    """The kernel that writes node's buffer (through aliases), or None for sources."""
    while node in fusion.aliases:
        node = node.inputs[0]
    return fusion.kernel_of.get(node) if node not in fusion.free else None


def must_be_buffer(graph):
    """The computed values that some comparison compares with their own max or min
    (through views on either side): fusion writes each to memory once."""
    return {_below_views(reduction.inputs[0]) for reduction in graph.nx.nodes
            if compared_with_own_extremum(graph, reduction)}


def compared_with_own_extremum(graph, reduction):
    """Whether `reduction` is a max or min of a computed value that a comparison
    reads beside that value (a buffer's elements read the same every time)."""
    if reduction.op.name not in EXTREMA:
        return False
    source = _below_views(reduction.inputs[0])
    if source is None:
        return False
    readers = set(graph.users(reduction.inputs[0])) | set(graph.users(source))
    return any(reader.op.name in COMPARISONS and any(
        _reads_through_views(operand, reduction) for operand in reader.inputs)
        for reader in readers)


def _below_views(node):
    """The computed node under a chain of views, or None if that is a buffer."""
    while node.op.name in VIEW_OPS:
        node = node.inputs[0]
    return None if node.op.name in BUFFER_OPS else node


def _reads_through_views(node, target):
    while node is not target and node.op.name in VIEW_OPS:
        node = node.inputs[0]
    return node is target
