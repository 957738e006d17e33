"""Memory planning: where every value of a fused program lives during a call.

Reads `program.fusion` (passes/fuse.py) and sets `program.memory`, a
`MemoryPlan`. Returns a report (arena, naive and lower-bound bytes, in-place
counts, variable copies).

Schedule: the kernels in fusion order; kernel i runs at step i. Step
n = len(kernels) is the copy-out after the last kernel (program outputs are
copied out, then the "copy" variable writes are done).

Buffers. Every kernel output gets a buffer of prod(shape) * itemsize bytes in
one arena, except update values written straight into their variable (below).
Placeholders (fed), variables (their own storage) and constants live outside
the arena. An alias (`fusion.aliases`: a zero-copy view) has no buffer of its
own: it is a view of its base (the first non-alias node down its input chain),
and its readers count as readers of the base. (An alias whose chain does not
end at a kernel output or a source is not a view; if a kernel lists it as an
output, it gets a buffer like any other output.)

Live interval of a node's buffer: [the step that writes it, the last step that
reads it (directly or through an alias)]; program outputs and values that are
copied into variables live to step n. A read is any operand slot of a kernel
node, shape-only slots included (so the runtime may always hand a kernel a
view of a live buffer).

Identity reads. Kernel k reads a value Y "identically at level L" (ELEMENT or
ROW; s = the number of points of that level: the domain's size, or the number
of rows) when Y has s elements and every in-kernel read of Y's data is by
  - the kernel's library call (it finishes before the loop starts), or
  - an elementwise node placed at level L with s elements (it reads Y at the
    point it computes: equal sizes leave no room for a broadcast), or
  - for L = ELEMENT, a loop reduction of Y itself (it reads its source point by
    point), or
  - an inlined elementwise node with s elements that is itself read
    identically at L;
no views, broadcasts, gathers (one_hot), other levels or aliases.

In-place reuse. At kernel i, an ELEMENT-level output O (placed, not inlined,
of the domain's size) takes the buffer of a value X (they then share it:
`Buffer.shares`) when all of:
  - X is the kernel's library output, or an arena buffer the kernel reads
    directly (no alias of X is read by kernel i);
  - X has the domain's size, O's itemsize and a non-empty buffer;
  - X dies at kernel i: no later kernel reads it or an alias of it, and it is
    neither a program output nor copied into a variable at step n (so a
    library output read outside its kernel is never taken);
  - the kernel runs its loop in one pass: no reduce axes, or no ELEMENT-level
    node reads a ROW-level node (the codegen then reads every point's inputs
    before it writes that point's outputs, in a single pass);
  - kernel i reads X identically at ELEMENT level;
  - each X is taken once, each O takes at most one X (the library output
    first, then the kernel's inputs in order).
matmul -> +bias -> relu thus writes relu over the matmul's buffer.

Variable updates in place. An update (variable v, value u) writes u straight
into v's storage (no arena buffer, no copy; `variable_writes[u] == "inplace"`)
when all of:
  (a) u is a kernel output of v's shape and dtype (kernel k), and no other
      variable already takes u;
  (b) every read of v's old value (by a kernel, directly or through an alias,
      shape-only operand slots excepted, or at step n as a program output or
      the source of a copy) happens at a step <= k, and the reads at step k
      are safe: u is not k's library output, and
        - u at SCALAR level: any read at step k is fine (the SCALAR epilogue,
          which writes u, runs after the loop, after the tail's reads);
        - u at ROW level: k reads v identically at ROW level (a row's outputs
          are written after all of that row's passes);
        - u at ELEMENT level: k runs in one pass and reads v identically at
          ELEMENT level;
        - and, for ROW and ELEMENT, no read of v through an alias at step k;
  (c) no kernel that can fail at run time runs at step >= k, so a failed call
      leaves the variables as they were. A kernel can fail when it checks
      index data (take, take_grad: indices in [-size, size), or [0, size) without
      wrap_negative; one_hot: labels
      in [0, classes)), unless a kernel strictly before it already checked the
      same indices node (through aliases) against a range no wider;
  (d) reads of u after step k (kernels, outputs, copies to other variables)
      are fine: they read the new value of v, which is u.
Otherwise u gets an arena buffer live to step n and the runtime copies it into
v after the last kernel (`variable_writes[u] == "copy"`); an update whose value
is not a kernel output (a variable, placeholder, constant or alias) is always
a copy. `memplan(program, inplace_variables=False)` makes every update a copy
(for a runtime that may stop after any kernel, as check_numerics does).

What the runtime must do: hand kernel k views of the arena at the planned
offsets, and the variable's own (C-contiguous, right dtype) storage as the
output of a value in `variable_storage`; after the last kernel, copy the
program outputs out of wherever they live (`location`), then read every copy
source of `plan.variable_copies`, then write them into the variables (a copy
may read a variable that another copy writes: a swap).

Offsets: groups of buffers that share (in-place chains) are placed largest
first (ties: earliest start), each at the best fit (smallest gap that holds
it) among the gaps left by the already placed groups whose live intervals
overlap its own, at 64-byte alignment; else above them all.

Numbers: naive_bytes is the sum of every arena buffer's size, each rounded up
to 64 bytes (one allocation per value); lower_bound is the peak, over steps,
of the bytes of the buffer groups live at that step; arena_bytes is the end of
the highest placed group, rounded up to 64.

Guarantees: two buffers whose live intervals overlap never overlap in the
arena unless one shares the other's buffer through an in-place pairing above;
lower_bound <= arena_bytes <= naive_bytes. Meaning unchanged; the graph and
the fusion are not modified.
"""
import collections
import itertools

import numpy as np

from graphc.ops.registry import ELEMENTWISE
from graphc.ops.shape import lowest_index
from graphc.passes.kernels import BUFFER_OPS, ELEMENT, LOOP_REDUCTIONS, ROW, SCALAR

ALIGNMENT = 64
INPLACE, COPY = "inplace", "copy"


def _align(n):
    return -(-n // ALIGNMENT) * ALIGNMENT


def _size(node):
    return int(np.prod(node.shape, dtype=np.int64))


def _nbytes(node):
    return _size(node) * np.dtype(node.dtype).itemsize


class Buffer:
    """A node's bytes in the arena: [offset, offset + nbytes), live over steps [start, end].
    `shares`: the node whose buffer this one took in place (None: its own)."""

    __slots__ = ("offset", "nbytes", "start", "end", "shares")

    def __init__(self, offset, nbytes, start, end, shares=None):
        self.offset, self.nbytes, self.start, self.end, self.shares = \
            offset, nbytes, start, end, shares

    def overlaps_in_time(self, other):
        return self.start <= other.end and other.start <= self.end

    def overlaps_in_memory(self, other):
        return self.offset < other.offset + other.nbytes and \
            other.offset < self.offset + self.nbytes

    def __repr__(self):
        shared = f", shares {self.shares.name}" if self.shares is not None else ""
        return f"<Buffer [{self.offset}, +{self.nbytes}) steps [{self.start}, {self.end}]{shared}>"


class MemoryPlan:
    """Where every value lives; see the module docstring for the rules.

    buffers:          kernel output node -> Buffer (arena values only)
    aliases:          alias node -> its base node (a view of the base's storage)
    inplace:          [(output, input)]: output took input's buffer
    variable_writes:  update value node -> "inplace" (written into a variable's storage,
                      `variable_storage[value]`) | "copy"
    variable_storage: update value node -> the variable whose storage it is written into
    writes:           [(variable, value, "inplace" | "copy")], one per program update, in
                      order (a value that updates two variables is written into at most
                      one of them; the others copy it from there)
    steps:            number of kernels; step `steps` is the copy-out
    fallible:         indices of the kernels that can fail at run time
    """

    def __init__(self, steps):
        self.steps = steps
        self.buffers = {}
        self.aliases = {}
        self.inplace = []
        self.variable_writes = {}
        self.variable_storage = {}
        self.writes = []
        self.fallible = []
        self.arena_bytes = self.naive_bytes = self.lower_bound = 0

    def root(self, node):
        """The node that owns the buffer `node` (an arena node or alias) lives in."""
        node = self.aliases.get(node, node)
        while node in self.buffers and self.buffers[node].shares is not None:
            node = self.buffers[node].shares
        return node

    def location(self, node):
        """("arena", offset, nbytes), ("variable", variable node) for a value written into a
        variable's storage or for a variable, ("input", placeholder) or ("constant", node);
        for an alias, the location of its base (the alias is a view of it)."""
        base = self.aliases.get(node, node)
        if base in self.buffers:
            buffer = self.buffers[base]
            return ("arena", buffer.offset, buffer.nbytes)
        if base in self.variable_storage:
            return ("variable", self.variable_storage[base])
        kinds = {"placeholder": "input", "variable": "variable", "constant": "constant"}
        if base.op.name not in kinds:
            raise ValueError(f"{node.name} has no storage in the memory plan")
        return (kinds[base.op.name], base)

    @property
    def variable_copies(self):
        """[(variable, value)]: the copies the runtime makes after the last kernel."""
        return [(variable, value) for variable, value, how in self.writes if how == COPY]

    def report(self):
        copies = len(self.variable_copies)
        return {"arena_bytes": self.arena_bytes, "naive_bytes": self.naive_bytes,
                "lower_bound": self.lower_bound, "buffers": len(self.buffers),
                "inplace": len(self.inplace), "variables_inplace": len(self.writes) - copies,
                "variable_copies": copies}

    def describe(self):
        """A text table: each arena buffer, then the variable writes and the totals."""
        rows = [("node", "steps", "offset", "bytes", "shares")]
        by_offset = sorted(self.buffers.items(), key=lambda item: (item[1].offset, item[1].start))
        for node, b in by_offset:
            rows.append((node.name, f"[{b.start}, {b.end}]", str(b.offset), str(b.nbytes),
                         b.shares.name if b.shares is not None else ""))
        widths = [max(len(r[c]) for r in rows) for c in range(5)]
        lines = ["  ".join(cell.ljust(w) if c in (0, 1, 4) else cell.rjust(w)
                           for c, (cell, w) in enumerate(zip(row, widths))).rstrip()
                 for row in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        for variable, value, how in self.writes:
            where = self.location(value)
            source = f"arena offset {where[1]}" if where[0] == "arena" else \
                f"{where[0]} {where[1].name}"
            lines.append(f"update {variable.name} <- {value.name}: " + (
                "written in place by its kernel" if how == INPLACE else
                f"copied from {source} after the last kernel"))
        ratio = self.arena_bytes / self.lower_bound if self.lower_bound else 1.0
        lines.append(f"arena {self.arena_bytes} bytes, lower bound {self.lower_bound} "
                     f"({ratio:.3f}x), naive {self.naive_bytes}; {self.steps} steps, "
                     f"{len(self.inplace)} in place, {len(self.variable_copies)} variable copies")
        return "\n".join(lines)

    def __repr__(self):
        return f"<MemoryPlan {self.report()}>"


def memplan(program, inplace_variables=True):
    """Plan the arena of `program` (already fused); `inplace_variables=False` makes every
    variable write a copy (for a runtime that may stop after a kernel, e.g. when it checks
    numerics)."""
    fusion = program.fusion
    kernels = fusion.kernels
    end = len(kernels)
    plan = MemoryPlan(end)
    aliases = fusion.aliases

    written = {}                                # kernel output -> the step writing it
    for i, kernel in enumerate(kernels):
        for node in kernel.outputs:
            written.setdefault(node, i)

    def chain_end(node):
        while node in aliases:
            node = node.inputs[0]
        return node

    # an alias whose chain ends at a buffer is a view of it (even when a kernel also
    # lists it as an output: an inlined view is not written); otherwise it is not a view
    plan.aliases = {a: chain_end(a) for a in aliases
                    if chain_end(a) in written or chain_end(a).op.name in BUFFER_OPS}
    step = {node: i for node, i in written.items() if node not in plan.aliases}

    def base(node):
        return plan.aliases.get(node, node)

    live_reads = collections.defaultdict(set)   # base -> steps reading it (any slot)
    data_reads = collections.defaultdict(set)   # base -> steps reading its data
    alias_reads = collections.defaultdict(set)  # base -> steps reading it through an alias
    for i, kernel in enumerate(kernels):
        members = set(kernel.all_nodes)
        for node in kernel.all_nodes:
            for slot, operand in enumerate(node.inputs):
                if operand in members:
                    continue
                root = base(operand)
                live_reads[root].add(i)
                if slot not in node.op.shape_only:
                    data_reads[root].add(i)
                    if operand is not root:
                        alias_reads[root].add(i)
    for node in program.outputs:
        live_reads[base(node)].add(end)
        data_reads[base(node)].add(end)
    for _, value in program.updates:
        if base(value) not in step:             # a copy from outside the arena
            data_reads[base(value)].add(end)

    # -- variable writes ------------------------------------------------------------
    plan.fallible = _fallible_kernels(kernels, base)
    last_fallible = max(plan.fallible, default=-1)
    for variable, value in program.updates:
        ok = inplace_variables and value in step and value not in plan.variable_storage \
            and value.shape == variable.shape and value.dtype == variable.dtype \
            and step[value] > last_fallible \
            and _safe_variable_write(kernels[step[value]], step[value], variable, value,
                                     data_reads[variable], alias_reads[variable])
        if ok:
            plan.variable_storage[value] = variable
        elif base(value) in step:
            live_reads[base(value)].add(end)    # copied out after the last kernel
        plan.writes.append((variable, value, INPLACE if ok else COPY))
        plan.variable_writes[value] = INPLACE if value in plan.variable_storage else COPY

    # -- buffers and in-place reuse -------------------------------------------------------
    for node, i in step.items():
        if node not in plan.variable_storage:
            plan.buffers[node] = Buffer(0, _nbytes(node), i, max(live_reads[node] | {i}))
    taken = set()
    for i, kernel in enumerate(kernels):
        if not _single_pass(kernel):
            continue
        domain = int(np.prod(kernel.domain, dtype=np.int64))
        members = set(kernel.all_nodes)
        candidates = [kernel.library] if kernel.library is not None else []
        candidates += [x for x in kernel.inputs if x not in plan.aliases]
        candidates = [x for x in candidates
                      if x in plan.buffers and x not in taken and plan.buffers[x].end == i
                      and _size(x) == domain and plan.buffers[x].nbytes > 0
                      and i not in alias_reads[x]
                      and _identity_reads(kernel, x, ELEMENT, domain, members)]
        for out in kernel.outputs:
            if out not in plan.buffers or out is kernel.library or out in kernel.inlined \
                    or kernel.level.get(out) != ELEMENT or _size(out) != domain:
                continue
            for x in candidates:
                if x not in taken and x.dtype.itemsize == out.dtype.itemsize:
                    taken.add(x)
                    plan.buffers[out].shares = x
                    plan.inplace.append((out, x))
                    break

    # -- offsets ----------------------------------------------------------------------------
    groups = collections.defaultdict(list)
    for node in plan.buffers:
        groups[plan.root(node)].append(node)
    spans = {root: (min(plan.buffers[m].start for m in members),
                    max(plan.buffers[m].end for m in members), plan.buffers[root].nbytes)
             for root, members in groups.items()}
    offsets = _place(spans)
    for root, members in groups.items():
        for node in members:
            plan.buffers[node].offset = offsets[root]
    plan.arena_bytes = _align(max((offsets[r] + s[2] for r, s in spans.items()), default=0))
    plan.naive_bytes = sum(_align(b.nbytes) for b in plan.buffers.values())
    change = [0] * (end + 2)                    # live bytes, as differences between steps
    for start, stop, nbytes in spans.values():
        change[start] += nbytes
        change[stop + 1] -= nbytes
    plan.lower_bound = max(itertools.accumulate(change), default=0)
    program.memory = plan
    return plan.report()


# -- rules ---------------------------------------------------------------------------------

def _single_pass(kernel):
    """The loop visits each point once: no ELEMENT node waits for a ROW value."""
    if kernel.reduce_axes is None:
        return True
    placed = {n: level for n, level in kernel.level.items() if n not in kernel.inlined}
    return not any(level == ELEMENT and any(placed.get(i) == ROW for i in node.inputs)
                   for node, level in placed.items())


def _identity_reads(kernel, node, level, size, members):
    """Every in-kernel read of `node`'s data happens at `level`, element p where the
    `size`-element values of that level compute their element p (see the docstring)."""
    if _size(node) != size:
        return False
    for reader in set(node.graph.users(node)) & members:
        if reader is kernel.library:
            continue
        slots = [s for s, i in enumerate(reader.inputs)
                 if i is node and s not in reader.op.shape_only]
        if not slots:
            continue
        if reader in kernel.inlined:
            ok = reader.op.kind == ELEMENTWISE and \
                _identity_reads(kernel, reader, level, size, members)
        elif reader.op.kind == ELEMENTWISE:
            ok = kernel.level.get(reader) == level and _size(reader) == size
        else:
            ok = level == ELEMENT and reader.op.name in LOOP_REDUCTIONS and slots == [0] \
                and kernel.level.get(reader) in (ROW, SCALAR)
        if not ok:
            return False
    return True


def _safe_variable_write(kernel, k, variable, value, reads, through_alias):
    """Rule (b): may `value`, computed by `kernel` (step k), overwrite `variable`?"""
    if any(s > k for s in reads):
        return False
    if k not in reads:
        return True
    if value is kernel.library:
        return False
    level = kernel.level.get(value)
    if level == SCALAR:
        return True
    if k in through_alias:
        return False
    members = set(kernel.all_nodes)
    if level == ROW:
        return _identity_reads(kernel, variable, ROW, _size(value), members)
    return level == ELEMENT and _single_pass(kernel) and \
        _identity_reads(kernel, variable, ELEMENT, _size(value), members)


def _index_checks(kernel, base):
    """(indices node, lo, hi): the kernel fails unless every index is in [lo, hi)."""
    checks = []
    for node in kernel.all_nodes:
        name = node.op.name
        if name == "one_hot":
            checks.append((base(node.inputs[0]), 0, node.attrs["num_classes"]))
        elif name in ("take", "take_grad"):
            source = node.inputs[0] if name == "take" else node
            axis = node.attrs["axis"] % len(source.shape)
            size = source.shape[axis]
            lowest = lowest_index(size, node.attrs["wrap_negative"])
            checks.append((base(node.inputs[1]), lowest, size))
    return checks


def _fallible_kernels(kernels, base):
    """Indices of the kernels with an index check that no earlier kernel made redundant."""
    done, fallible = [], []
    for i, kernel in enumerate(kernels):
        checks = _index_checks(kernel, base)
        if any(not any(node is n and lo <= l2 and h2 <= hi for n, l2, h2 in done)
               for node, lo, hi in checks):
            fallible.append(i)
        done.extend(checks)
    return fallible


def _place(spans):
    """Offsets for {key: (start, end, nbytes)}: largest first, best fit among the gaps
    left by the placed groups that are live at the same time, 64-byte aligned."""
    order = sorted(spans, key=lambda r: (-spans[r][2], spans[r][0], spans[r][1], r.id))
    placed = np.zeros((4, len(order)), np.int64)    # start, stop, low, high of each placed
    offsets = {}
    for count, key in enumerate(order):
        start, stop, nbytes = spans[key]
        starts, stops, lows, highs = placed[:, :count]
        live = (starts <= stop) & (start <= stops)
        offsets[key] = _best_fit(lows[live], highs[live], nbytes)
        placed[:, count] = start, stop, offsets[key], offsets[key] + nbytes
    return offsets


def _best_fit(lows, highs, nbytes):
    """The start of the smallest gap of at least `nbytes` below or between the busy
    ranges [lows, highs) (the first of equal ones), else the aligned end of them all."""
    order = np.lexsort((highs, lows))
    lows, ends = lows[order], -(-highs[order] // ALIGNMENT) * ALIGNMENT
    cursors = np.maximum.accumulate(np.concatenate(([0], ends)))   # before each range
    gaps = lows - cursors[:-1]
    fitting = np.flatnonzero(gaps >= nbytes)
    if fitting.size == 0:
        return int(cursors[-1])
    return int(cursors[fitting[np.argmin(gaps[fitting])]])
