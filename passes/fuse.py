"""Fusion: group the nodes of a lowered program into kernels (as data).

A kernel is at most one library call (an opaque op: matmul, conv, pooling,
gather...) followed by one loop nest over a *domain* (a shape). Inside the
loop, each node lives at a level:
- ELEMENT: computed at every point of the domain (its shape is the domain's);
- ROW: one value per row, where a row is the set of points that the kernel's
  reduce axes R span (reductions over R produce them; keepdims or not);
- SCALAR: one value per kernel (full reductions and what follows from them).
A row's elements may be visited in several passes (x - max(x) needs the max
first); a SCALAR value computed by the kernel feeds only SCALAR nodes.

Rules (after TVM's FuseOps and Inductor's scheduler), legality kept apart
from profitability (the legality rules: passes/fusion_legality.py):
- a node joins the kernel of an operand when its level and shape fit there
  (elementwise and view epilogues, reductions absorbing their producers,
  library ops absorbing an elementwise epilogue over their output);
- nodes computed only from buffers by elementwise ops and views are *free*:
  they are inlined into each kernel that reads them (recomputed; cloned so
  each graph node belongs to one kernel), or materialized by a kernel of
  their own when a library op or the caller needs them as a buffer;
- a chain of reshapes over a buffer is an *alias*: a view, no kernel;
- nothing fuses into a library op's operands, and no fusion may create a
  cycle between kernels;
- a kernel's size is bounded (MAX_FREE_DEPTH, MAX_KERNEL_NODES,
  MAX_SIBLING_READS below): a very long chain or a merge of very many
  siblings is split over several kernels.
Every producer-consumer edge between two kernels gets a reason.

Guarantees: every non-source node is in exactly one kernel or is an alias;
kernels are listed in an order that runs each after every kernel it reads;
the graph's meaning is unchanged (only free nodes are cloned).
"""
import networkx as nx

from graphc.ops.registry import ELEMENTWISE
from graphc.passes.fusion_legality import (add_dependency, add_kernel, buffer_leaves,
                                           depends_on, fit, forget_ranks, must_be_buffer,
                                           reduction_level, safe_inlining, would_cycle,
                                           writer_of)
from graphc.passes.kernels import (  # noqa: F401  (the kernel vocabulary, re-exported)
    ALIAS_OPS, BUFFER_OPS, ELEMENT, LOOP_REDUCTIONS, ROW, SCALAR, VIEW_OPS, Fusion, Kernel)

# Profitability limits on a kernel's size (each measured on the CPU backend):
MAX_FREE_DEPTH = 64         # ops in one chain of free nodes that a kernel inlines
MAX_KERNEL_NODES = 512      # one loop body: at ~1,500 ops LLVM stopped vectorizing it
MAX_SIBLING_READS = 32      # buffers read by a kernel that horizontal fusion grows:
                            # Numba's compile time grows faster than its arguments


def fuse(program):
    fusion = Fusion(program)
    graph = program.graph
    computed_once = must_be_buffer(graph)
    for node in graph.topological():
        if node.op.name in BUFFER_OPS:
            continue
        if _is_library(node):
            _start_library_kernel(fusion, node)
        elif _is_free(fusion, node) and node not in computed_once:
            _make_free(fusion, node)
        elif not _join_operand_kernel(fusion, node):
            if _is_pointwise(node) and node not in computed_once:
                _make_free(fusion, node)    # reads other kernels' outputs as buffers
            else:
                _start_loop_kernel(fusion, node)
    for root in program.roots():
        if root in fusion.free:
            _materialize(fusion, root, "the caller reads it")
    _merge_siblings(fusion)
    _finish(fusion)
    program.fusion = fusion
    return fusion.report()


# -- classification ---------------------------------------------------------------------

def _is_library(node):
    if node.op.is_random:
        return True
    return not _is_pointwise(node) and node.op.name not in LOOP_REDUCTIONS


def _is_pointwise(node):
    """Computed per output element from its operands' elements (one_hot: from the index)."""
    return node.op.kind == ELEMENTWISE or node.op.name in VIEW_OPS + ("full", "one_hot")


def _is_free(fusion, node):
    """Computable anywhere from buffers: elementwise ops and views over buffers/free nodes."""
    if not _is_pointwise(node):
        return False
    return all(i.op.name in BUFFER_OPS or i in fusion.free or i in fusion.aliases
               for i in node.inputs)


def _make_free(fusion, node):
    """Mark `node` free, first writing out the operands that would make its chain of
    free nodes deeper than MAX_FREE_DEPTH: a kernel nests one expression per inlined
    op, so code generation recurses that deep, and one loop body of thousands of ops
    compiled slower and ran slower than NumPy."""
    def depth():
        return 1 + max((fusion.free_depth[i] for i in node.inputs if i in fusion.free),
                       default=0)
    if depth() > MAX_FREE_DEPTH:
        for operand in node.inputs:
            if operand in fusion.free and fusion.free_depth[operand] >= MAX_FREE_DEPTH:
                _materialize(fusion, operand, f"a chain of more than {MAX_FREE_DEPTH} "
                                              "inlined ops is cut here", consumer=node)
    fusion.free.add(node)
    fusion.free_depth[node] = depth()


def _is_buffer(fusion, node):
    """Written to memory: a source, an alias of one, or a value a kernel writes (not a
    free node, nor a copy a kernel only inlines)."""
    owner = fusion.kernel_of.get(node)
    return node.op.name in BUFFER_OPS or node in fusion.aliases or (
        owner is not None and node not in fusion.free and node not in owner.inlined)


# -- kernels ----------------------------------------------------------------------------

def _new_kernel(fusion, domain, library=None):
    kernel = Kernel(len(fusion.kernels), domain, library)
    fusion.kernels.append(kernel)
    add_kernel(fusion, kernel)
    return kernel


def _start_library_kernel(fusion, node):
    for operand in node.inputs:
        if operand in fusion.free:
            _materialize_below_reshapes(fusion, operand, node)
            if _aliasable(fusion, operand, node):
                _make_alias(fusion, operand)
            else:
                _materialize(fusion, operand, f"{node.op.name} reads its operands from buffers",
                             consumer=node)
    kernel = _new_kernel(fusion, node.shape, library=node)
    fusion.kernel_of[node] = kernel
    _note_reads(fusion, kernel, node, f"{node.op.name} is a library call reading buffers")


def _start_loop_kernel(fusion, node):
    if _join_sibling_kernel(fusion, node):
        return
    if node.op.name in LOOP_REDUCTIONS:
        source = node.inputs[0]
        kernel = _new_kernel(fusion, source.shape)
        level = reduction_level(kernel, source, node)
        if source in fusion.free:
            _inline(fusion, kernel, source)
    else:
        kernel, level = _new_kernel(fusion, node.shape), ELEMENT
    _place(fusion, kernel, node, level)


def _materialize(fusion, node, why, consumer=None):
    """A free node needed as a buffer: computed by the kernel that already inlines it,
    a sibling kernel, or one of its own."""
    fusion.free.discard(node)
    owner = fusion.kernel_of.get(node)
    if owner is not None and node in owner.inlined:
        if node.shape == owner.domain and safe_inlining(fusion, owner, node) \
                and _promote(fusion, owner, node):
            fusion.reasons.setdefault((node, None), why)
            return
        # the copy becomes the buffer; the original stays free, recomputed by every
        # kernel that inlines it (a kernel made later must inline it too, not read it)
        fusion.free.add(node)
        node = _clone_for_reader(fusion, node, consumer)
    if _join_sibling_kernel(fusion, node):
        fusion.reasons.setdefault((node, None), why)
        return
    kernel = _new_kernel(fusion, node.shape)
    for operand in node.inputs:
        if operand in fusion.free:
            _inline(fusion, kernel, operand)
    _place(fusion, kernel, node, ELEMENT)
    fusion.reasons.setdefault((node, None), why)


def _clone_for_reader(fusion, node, consumer):
    """A copy of a node some kernel inlines, to be materialized for one library op
    (`consumer`) or, without one, for the program's outputs and updates."""
    graph, program = fusion.program.graph, fusion.program
    copy = graph.copy_node(node, [fusion.originals.get(i, i) for i in node.inputs])
    copy.name = f"{node.name}_buf"
    fusion.originals[copy] = fusion.originals.get(node, node)
    if consumer is not None:
        for slot, operand in enumerate(consumer.inputs):
            if operand is node:
                _rewire(graph, consumer, slot, copy)
    else:
        program.outputs = [copy if o is node else o for o in program.outputs]
        program.updates = [(v, copy if value is node else value) for v, value in program.updates]
    return copy


def _aliasable(fusion, node, consumer):
    """A zero-copy view of a buffer, no kernel: a chain of reshape-like views,
    or (for matmul, which takes transposed operands) a 2-D transpose."""
    if consumer.op.name == "matmul" and node.op.name == "transpose" and len(node.shape) == 2:
        node = node.inputs[0]
    while node.op.name in ALIAS_OPS and len(node.inputs) == 1 and not _is_buffer(fusion, node):
        node = node.inputs[0]
    return _is_buffer(fusion, node)


def _materialize_below_reshapes(fusion, operand, consumer):
    """A library op reading reshapes of a free value that no kernel computes yet: that
    value becomes the buffer and the reshapes an alias of it. Attention's heads,
    (B, T, 3, H, D) -> (B, H, T, D) -> (B * H, T, D) for a batched matmul, are then
    copied by a kernel over (B, H, T, D), whose reads are affine, not over
    (B * H, T, D), which read through a gather table: q's copy in the transformer of
    benchmarks/model_step.py took 50-53 us, against 95-104."""
    value = operand
    while value.op.name in ALIAS_OPS and len(value.inputs) == 1 and value in fusion.free:
        value = value.inputs[0]
    if value is not operand and value in fusion.free and value not in fusion.kernel_of:
        _materialize(fusion, value, f"{consumer.op.name} reads it through reshapes")


def _make_alias(fusion, node):
    while node in fusion.free:
        fusion.free.discard(node)
        fusion.aliases.add(node)
        node = node.inputs[0]


def _inline(fusion, kernel, node):
    """Pull a free node (and its free operands) into `kernel`, cloning it if it is taken."""
    if fusion.kernel_of.get(node) is kernel:
        return node
    if node in kernel.copies:
        return kernel.copies[node]
    if node in fusion.kernel_of and _share_instead(fusion, kernel, node):
        return node
    if node in fusion.kernel_of:
        original = node
        # the copy reads the originals of its operands: the owner may have rewired
        # them to its own private copies
        operands = [fusion.originals.get(i, i) for i in node.inputs]
        node = fusion.program.graph.copy_node(node, operands)
        node.name = f"{node.name}_k{kernel.index}"
        kernel.copies[original] = node
        fusion.originals[node] = original
    fusion.kernel_of[node] = kernel
    kernel.inlined.add(node)
    _inline_operands(fusion, kernel, node)
    kernel.nodes.append(node)
    _note_reads(fusion, kernel, node, None)
    return node


def _cheap(fusion, node):
    """Cheap enough to recompute in each kernel that reads it: a view, a fill, or one
    elementwise op over buffers."""
    return node.op.name in VIEW_OPS + ("full",) or not any(i in fusion.free for i in node.inputs)


def _share_instead(fusion, kernel, node):
    """Profitability: a free node that is not cheap and is already inlined by another
    kernel is written once by that kernel (promoted to ELEMENT there) and read as a
    buffer here, instead of being recomputed. (Recomputation also need not give the
    same bits under fast-math, which broke max's gradient: x == max(x) must hold.)"""
    owner = fusion.kernel_of[node]
    if _cheap(fusion, node) or node not in owner.inlined or node.shape != owner.domain \
            or not safe_inlining(fusion, owner, node) or depends_on(fusion, [owner], kernel):
        return False
    if not _promote(fusion, owner, node):
        return False
    fusion.free.discard(node)
    add_dependency(fusion, kernel, owner)
    return True


def _promote(fusion, owner, node):
    """Make a node `owner` inlines a placed ELEMENT value of it (computed once per point
    and written), unless an inlined reader needs it at other points."""
    if node.op.name in VIEW_OPS and any(i in owner.level for i in node.inputs):
        return False                            # it would read its operand at other points
    was_free = node in fusion.free      # a free node is recomputed: the check would see
    fusion.free.discard(node)           # through it, to the buffers it reads
    owner.inlined.discard(node)
    owner.level[node] = ELEMENT
    if all(safe_inlining(fusion, owner, n) for n in list(owner.level)):
        return True
    del owner.level[node]
    owner.inlined.add(node)
    if was_free:
        fusion.free.add(node)
    return False


def _inline_operands(fusion, kernel, node):
    for slot, operand in enumerate(node.inputs):
        if operand in fusion.free:
            copy = _inline(fusion, kernel, operand)
            if copy is not operand:
                _rewire(fusion.program.graph, node, slot, copy)


def _rewire(graph, consumer, slot, new):
    old = consumer.inputs[slot]
    consumer.inputs = consumer.inputs[:slot] + (new,) + consumer.inputs[slot + 1:]
    slots = graph.nx.edges[old, consumer]["slots"]
    slots.remove(slot)
    if not slots:
        graph.nx.remove_edge(old, consumer)
    graph._link(new, consumer, slot)


def _place(fusion, kernel, node, level):
    if level == ROW and node.op.name in LOOP_REDUCTIONS:
        kernel.reduce_axes = tuple(node.attrs["axis"])
    fusion.kernel_of[node] = kernel
    kernel.level[node] = level
    _inline_operands(fusion, kernel, node)
    kernel.nodes.append(node)
    _note_reads(fusion, kernel, node, None)


def _note_reads(fusion, kernel, node, why):
    for operand in node.inputs:
        owner = writer_of(fusion, operand)
        if owner is not None and owner is not kernel:
            add_dependency(fusion, kernel, owner)
            fusion.reasons.setdefault((operand, node), why or _refusal(fusion, owner, node))


def _join_sibling_kernel(fusion, node):
    """Horizontal fusion: a node computed from buffers (through free nodes) joins a
    kernel that loops over the same domain and reads some of the same buffers."""
    reduction = node.op.name in LOOP_REDUCTIONS
    domain = node.inputs[0].shape if reduction else node.shape
    leaves = buffer_leaves(fusion, node)
    for kernel in reversed(fusion.kernels):
        if kernel.domain != domain or len(kernel.nodes) >= MAX_KERNEL_NODES:
            continue
        reads = _kernel_leaves(fusion, kernel)
        if not leaves & (reads | set(kernel.level)) or len(reads | leaves) > MAX_SIBLING_READS:
            continue
        if would_cycle(fusion, kernel, node):
            continue
        if not safe_inlining(fusion, kernel, node):
            continue
        if reduction and fusion.kernel_of.get(node.inputs[0]) is not kernel:
            level = reduction_level(kernel, node.inputs[0], node)
        else:
            level, _ = fit(fusion, kernel, node)
        if level is not None:
            source = node.inputs[0]
            if reduction and source in fusion.free:
                _inline(fusion, kernel, source)
            _place(fusion, kernel, node, level)
            return True
    return False


def _kernel_leaves(fusion, kernel):
    """What `kernel` reads (its nodes' operands that it does not compute; do not
    change the set). Kept until a node joins it, the only way its nodes, their
    operands or their owners change while fusion runs (a merge that fails restores
    the nodes it added): the sibling search asked 86,000 times for a 400-step LSTM."""
    count, leaves = fusion.leaves.get(kernel, (-1, None))
    if count != len(kernel.nodes):
        leaves = set()
        for node in kernel.all_nodes:
            leaves |= {i for i in node.inputs if fusion.kernel_of.get(i) is not kernel}
        fusion.leaves[kernel] = (len(kernel.nodes), leaves)
    return leaves


# -- joining an operand's kernel ----------------------------------------------------------------

def _join_operand_kernel(fusion, node):
    """Place `node` in the kernel of one of its operands if legal; False if none fits."""
    refusals = {}
    candidates = []
    for operand in node.inputs:
        kernel = fusion.kernel_of.get(operand)
        if kernel is not None and operand not in fusion.free and kernel not in candidates:
            candidates.append(kernel)
    for kernel in sorted(candidates, key=lambda k: -k.index):
        level, why = fit(fusion, kernel, node) if len(kernel.nodes) < MAX_KERNEL_NODES else \
            (None, f"the kernel holds {MAX_KERNEL_NODES} nodes, the most one loop body holds")
        if level is not None:
            _place(fusion, kernel, node, level)
            return True
        refusals[kernel] = why
    fusion.refusals[node] = refusals
    return False


def _refusal(fusion, owner, node):
    why = fusion.refusals.get(node, {}).get(owner)
    return why or f"{node.op.name} joined the kernel of another operand"


# -- merging kernels over the same domain ---------------------------------------------------------

def _merge_siblings(fusion):
    """Greedy fusion depends on visiting order; afterwards, merge a loop kernel into an
    earlier kernel over the same domain when it reads it or shares its inputs and
    every node still fits."""
    def related(a, b):
        return a in b.deps or b in a.deps or \
            bool(_kernel_leaves(fusion, a) & _kernel_leaves(fusion, b))

    merged = True
    while merged:
        merged = False
        for later in [k for k in fusion.kernels if k.library is None]:
            for earlier in fusion.kernels:
                if earlier is not later and earlier.domain == later.domain \
                        and related(earlier, later) and _try_merge(fusion, earlier, later):
                    merged = True
                    break
            if merged:
                break


def _try_merge(fusion, into, other):
    if other in into.deps or len(into.nodes) + len(other.nodes) > MAX_KERNEL_NODES:
        return False
    reads = _kernel_leaves(fusion, into) | _kernel_leaves(fusion, other)
    if len(reads - set(into.all_nodes) - set(other.all_nodes)) > MAX_SIBLING_READS:
        return False
    if depends_on(fusion, other.deps - {into}, into) or \
            depends_on(fusion, into.deps - {other}, other):
        return False
    saved = (dict(fusion.kernel_of), dict(into.level), list(into.nodes), into.reduce_axes,
             set(into.inlined))
    for node in other.nodes:
        fusion.kernel_of[node] = into
        into.nodes.append(node)
        if node in other.inlined:
            into.inlined.add(node)
            continue
        level, _ = fit(fusion, into, node)
        if level is None or not safe_inlining(fusion, into, node):
            fusion.kernel_of, into.level, into.nodes, into.reduce_axes, into.inlined = saved
            return False
        if level == ROW and node.op.name in LOOP_REDUCTIONS:
            into.reduce_axes = tuple(node.attrs["axis"])
        into.level[node] = level
    into.deps = (into.deps | other.deps) - {into, other}
    forget_ranks(fusion)
    fusion.kernels.remove(other)
    for kernel in fusion.kernels:
        if other in kernel.deps:
            kernel.deps = (kernel.deps - {other}) | ({into} if kernel is not into else set())
    fusion.reasons = {edge: why for edge, why in fusion.reasons.items()
                      if not (fusion.kernel_of.get(edge[0]) is into
                              and fusion.kernel_of.get(edge[1]) is into)}
    return True


# -- results ----------------------------------------------------------------------------

def _finish(fusion):
    _recompute_deps(fusion)
    roots = set(fusion.program.roots())
    for kernel in fusion.kernels:
        mine = set(kernel.all_nodes)
        reads, writes = [], []
        for node in kernel.all_nodes:
            for operand in node.inputs:
                if operand not in mine and operand not in reads:
                    reads.append(operand)
            readers = fusion.program.graph.users(node)
            if node is kernel.library or node in roots or any(
                    fusion.kernel_of.get(u) is not kernel for u in readers):
                writes.append(node)
        kernel.inputs, kernel.outputs = reads, writes
    fusion.kernels = _schedule(fusion.kernels)
    for position, kernel in enumerate(fusion.kernels):
        kernel.index = position


def _recompute_deps(fusion):
    """Each kernel's dependencies from the final placement (through aliases)."""
    forget_ranks(fusion)
    for kernel in fusion.kernels:
        kernel.deps = set()
        for node in kernel.all_nodes:
            for operand in node.inputs:
                owner = writer_of(fusion, operand)
                if owner is not None and owner is not kernel:
                    kernel.deps.add(owner)
    dag = nx.DiGraph()
    dag.add_nodes_from(fusion.kernels)
    dag.add_edges_from((dep, kernel) for kernel in fusion.kernels for dep in kernel.deps)
    if not nx.is_directed_acyclic_graph(dag):
        cycle = [edge[0].name for edge in nx.find_cycle(dag)]
        raise AssertionError(f"fusion made a cycle through {', '.join(cycle)}")


def _schedule(kernels):
    """Kernels ordered so that each runs after every kernel it reads from."""
    ordered, placed = [], set()

    def visit(kernel):
        if kernel in placed:
            return
        placed.add(kernel)
        for dep in sorted(kernel.deps, key=lambda k: k.index):
            visit(dep)
        ordered.append(kernel)

    for kernel in kernels:
        visit(kernel)
    return ordered
