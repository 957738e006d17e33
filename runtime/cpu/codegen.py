"""Render the loop part of a fused kernel (passes/fuse.py) as one Python function
that runtime/cpu/loop_kernel.py compiles (lowered to LLVM IR by kernel_ir.py).

The function takes every buffer flattened (1-D, C order) and loops over the
kernel's domain: kept axes outside (the first one split over the threads when
the work is large: runtime/cpu/chunked.py), reduced axes inside, once per
pass. Values are plain local variables: a per-element value lives for one
point, a per-row value for one row, a scalar for the call.

Reads of buffers and of inlined nodes (runtime/cpu/point_values.py) go
through index maps computed with NumPy at compile time
(runtime/cpu/index_maps.py): the flat index of the
operand element each loop point needs is found by applying each view's (or
broadcast's) reference to an array of indices. An affine map becomes
`buf[c + i0*s0 + ...]` with literal strides (so LLVM vectorizes the inner
loop); any other map becomes a gather table passed as an argument. Adjacent
axes that every map walks as one run are one loop (runtime/cpu/collapse.py);
an output the memory plan places over an input is stored through the
input's argument (`write_in_place`).
"""
import hashlib
import math
import re

import numpy as np

from graphc.passes.kernels import ELEMENT, ROW, SCALAR, VIEW_OPS, operands_first
from graphc.runtime.cpu.approx import SAFE_FASTMATH  # noqa: F401  (re-exported)
from graphc.runtime.cpu.chunked import InChunks
from graphc.runtime.cpu.collapse import CollapsedAxes
from graphc.runtime.cpu.columns import ColumnsInside
from graphc.runtime.cpu.hoisted_subscripts import hoist_subscripts
from graphc.runtime.cpu.kept_values import KeptValues
from graphc.runtime.cpu.long_sums import LongSums
from graphc.runtime.cpu.point_values import PointValues, literal

PARALLEL_MIN_ELEMENTS = 1 << 16
FULLY_UNROLLED = (16, 64)    # row lengths LLVM unrolls completely (LoopRenderer.row_count)
REDUCE_INIT = {"sum": 0, "prod": 1, "max": -math.inf, "min": math.inf}


class LoopSource:
    """The rendered function and how to call it."""

    def __init__(self, name, source, inputs, outputs, tables, error_checks, key=None,
                 offsets=None, chunks=None, partials=0, tail=False):
        self.name, self.source = name, source
        self.chunks = chunks            # the outer loop's count if it runs in chunks
        self.partials = partials        # then: the sums across it (a slot each per thread)
        self.tail = tail                # and whether a call with chunk -1 follows them
        self.key = key                  # the function without its name: equal keys, one compile
        self.inputs = inputs            # nodes whose buffers are passed, in order
        # each input is passed flattened from this element on (LoopRenderer.read)
        self.offsets = offsets or [0] * len(inputs)
        self.outputs = outputs          # nodes written, in order
        self.tables = tables            # int64 gather tables passed after the outputs
        self.error_checks = error_checks  # one_hot nodes whose labels are range-checked


class _Block:
    """Statements at one nesting depth, with memoized reads."""

    def __init__(self, indent):
        self.indent, self.lines, self.memo = indent, [], {}

    def emit(self, text):
        self.lines.append("    " * self.indent + text)


class LoopRenderer(PointValues, ColumnsInside, CollapsedAxes, LongSums, KeptValues, InChunks):
    # Every subscript is unsigned: a signed one makes Numba emit a negative-index
    # wraparound that LLVM cannot remove inside a prange body, and the inner loop stays
    # scalar (measured: W1's 401k-element update, 800 us -> 100 us on one thread).
    INDEX_CAST = "np.uint64"
    OFFSET_VIEWS = True
    # an element value that reads a row value (x - max, (x - max) - log(sum)) is rounded
    # as written (scalar.py's `exact`): fastmath reassociated log_softmax's into
    # x - (max + log(sum)), whose rounding lost log(sum) against a large max
    EXACT = "exact({})"

    def __init__(self, kernel, fusion, name, allow_parallel, in_place=None, collapse=None):
        self.kernel, self.fusion, self.name = kernel, fusion, name
        self.allow_parallel = allow_parallel
        self.hide_counts = False        # set by render: loops inside a parallel loop
        self.in_place = in_place or {}  # output -> the input whose buffer it overwrites
        self.collapse = collapse or {}  # head axis -> adjacent axes run as one loop
        self.maps_seen = []             # every affine map's strides, by axis
        self.columns_inside = False
        self.blocked, self.row_blocked = [], []     # sums with float32 partials (long_sums.py)
        self.recomputing = 0            # > 0 while a placed node is computed at another point
        self.kept_in, self.first_use = {}, {}       # values kept between passes (kept_values.py)
        self.domain = kernel.domain
        self.reduced = tuple(kernel.reduce_axes or ())
        self.kept = tuple(a for a in range(len(self.domain)) if a not in self.reduced)
        self.args = {}              # buffer node -> argument name
        self.tables = []
        self.error_checks = []
        self.read_offsets = {}      # argument -> the constant offsets of its reads
        self.counter = 0
        self.stage = {}
        self.local = {}             # node -> its number in this kernel (stable names)
        self.order = operands_first(kernel.nodes)
        # A free node that fusion inlined here and later placed here (a caller needs it
        # as a buffer) is computed once per point as a placed value, not recomputed.
        self.inlined = {n for n in kernel.inlined if n not in kernel.level}

    # -- names -------------------------------------------------------------------------
    def var(self, node):
        return f"v{self.local.setdefault(node, len(self.local))}"

    def fresh(self, prefix="t"):
        self.counter += 1
        return f"{prefix}{self.counter}"

    def arg(self, node):
        """Arguments are numbered, not named after nodes: kernels that differ only in
        which nodes they read have the same source and compile once."""
        return self.args.setdefault(node, f"a{len(self.args)}")

    # -- structure ---------------------------------------------------------------------------
    def placed(self, level=None):
        k = self.kernel
        return [n for n in self.order if n in k.level and n not in self.inlined
                and (level is None or k.level[n] == level)]

    def is_reduction(self, node):
        return node.op.name in REDUCE_INIT

    def compute_stages(self):
        """stage[node]: the pass over a row after which node can be computed (a row
        reduction ends the pass its input is computed in). An inlined node, recomputed
        where it is read, and a view, read through, pass on the stages of what they
        read."""
        def stage_of(node):
            if node not in self.stage and (node in self.inlined or node.op.name in VIEW_OPS):
                self.stage[node] = max((stage_of(i) for i in node.inputs), default=0)
            return self.stage.get(node, 0)

        for node in self.placed():
            if self.is_reduction(node) and self.kernel.level[node] == ROW:
                self.stage[node] = stage_of(node.inputs[0]) + 1
            else:
                self.stage[node] = max((stage_of(i) for i in node.inputs), default=0)

    def levels(self):
        """Stages the kernel's nodes, then sorts what the loop writes and reduces by level:
        (outputs, element_out, row_out, scalar_out, row_red, scalar_red,
        scalar_from_element, scalar_from_row, passes over a row). Every backend's
        renderer starts from these."""
        self.compute_stages()
        k = self.kernel
        # only what the loop computes: an inlined node listed as an output (an alias or
        # a node another kernel materializes) must not come back as an unwritten buffer
        outputs = [n for n in dict.fromkeys(k.outputs) if n is not k.library
                   and n in k.level and n not in self.inlined]
        element_out = [n for n in outputs if k.level.get(n) == ELEMENT]
        row_out = [n for n in outputs if k.level.get(n) == ROW]
        scalar_out = [n for n in outputs if k.level.get(n) == SCALAR]
        reductions = [n for n in self.placed() if self.is_reduction(n)]
        row_red = [n for n in reductions if k.level[n] == ROW]
        scalar_red = [n for n in reductions if k.level[n] == SCALAR]
        scalar_from_element = [n for n in scalar_red if self.level_of(n.inputs[0]) == ELEMENT]
        scalar_from_row = [n for n in scalar_red if self.level_of(n.inputs[0]) == ROW]
        passes = 1 + max([self.stage.get(n, 0) for n in element_out]
                         + [self.stage.get(n.inputs[0], 0) for n in row_red + scalar_from_element],
                         default=0)
        return (outputs, element_out, row_out, scalar_out, row_red, scalar_red,
                scalar_from_element, scalar_from_row, passes)

    def render(self):
        (outputs, element_out, row_out, scalar_out, row_red, scalar_red, scalar_from_element,
         scalar_from_row, passes) = self.levels()
        k = self.kernel
        if self.reduces_leading_axes(passes, scalar_red):
            self.columns_inside = True
            return self.render_columns(outputs, element_out, row_out, scalar_out, row_red)

        top = _Block(1)
        for red in scalar_red:
            top.emit(f"{self.acc(red)} = {self.init(red)}")
        parallel = self.allow_parallel and bool(self.kept) and \
            all(r.op.name == "sum" for r in scalar_red) and self.large()
        # a kept axis of one point gets no loop (a prange(1) ran a whole kernel on one
        # thread: attention's value heads, sliced from (3, B, H, T, D))
        unit = [a for a in self.loop_axes(self.kept) if self.extent(a) == 1]
        loops = [a for a in self.loop_axes(self.kept) if a not in unit]
        self.blocked = [r for r in scalar_red if parallel and not self.reduced
                        and self.accumulates_wide(r)]   # else blocked in the row's loop
        body_depth = 1 + len(loops) + bool(self.blocked)
        lines = list(top.lines) + [f"    i{axis} = 0" for axis in unit]
        self.hide_counts = parallel
        chunks = self.chunk_count(parallel, loops, scalar_red)     # else a prange (chunked.py)
        inner = len(self.loop_axes(self.reduced))
        for depth, axis in enumerate(loops):
            if depth == 0 and self.blocked:
                lines += self.open_blocks(axis, loops, "range(start, stop)" if chunks else
                                          f"prange({self.block_count(axis, loops)})")
                continue
            count = self.count(axis, depth > 0 and (depth < len(loops) - 1 or inner > 0))
            loop = "range" if depth or not parallel else "prange"
            if depth == 0 and chunks:
                loop, count = "range", "start, stop"
            lines.append("    " * (1 + depth + bool(self.blocked)) +
                         f"for i{axis} in {loop}({count}):")
        row = _Block(body_depth)
        self.choose_kept(passes, [self.pass_members(stage, element_out, row_red,
                                                    scalar_from_element)
                                  for stage in range(passes)])
        for stage in range(passes):
            self.render_pass(stage, row, element_out, row_red, scalar_from_element)
            for node in self.placed(ROW):
                if not self.is_reduction(node) and self.stage[node] == stage + 1:
                    self.assign(node, ROW, row)
        for node in row_out:
            row.emit(f"{self.arg_out(node)}[{self.subscript(self.identity_ids(ROW), ROW, row)}]"
                     f" = {self.var(node)}")
        for red in scalar_from_row:
            row.emit(self.combine(red, self.var(red.inputs[0]) if red.inputs[0] in k.level
                                  else self.value(red.inputs[0], ROW, self.identity_ids(ROW), row)))
        lines += row.lines or ["    " * body_depth + "pass"]
        lines += self.close_blocks()
        tail = _Block(1)
        for node in self.placed(SCALAR):
            if self.is_reduction(node):
                tail.emit(f"{self.var(node)} = {self.reduced_value(node)}")
            else:
                self.assign(node, SCALAR, tail)
        for node in scalar_out:
            tail.emit(f"{self.arg_out(node)}[0] = {self.var(node)}")
        if not chunks:
            return self.function(lines + tail.lines, outputs, parallel)
        return self.function(self.in_chunks(lines, tail.lines, scalar_red), outputs, parallel,
                             chunks, partials=len(scalar_red), tail=bool(tail.lines))

    def new_block(self, indent):
        return _Block(indent)

    def large(self):
        """Whether the kernel's domain is worth a parallel loop."""
        return int(np.prod(self.domain)) >= PARALLEL_MIN_ELEMENTS

    def level_of(self, node):
        if node in self.kernel.level and node not in self.inlined:
            return self.kernel.level[node]
        return ELEMENT

    def render_elements(self, row, accumulate, writes, stage=0):
        """The body at one element of pass `stage`: the values needed (kept ones loaded:
        kept_values.py), then the reductions fed and the element outputs written (shared
        by every backend's loop over a row)."""
        element = _Block(row.indent)
        loaded = self.loaded_in(stage)
        for node in self.needed_elements(accumulate, writes, loaded):
            if node in loaded:
                element.emit(f"{self.var(node)} = {self.kept_slot(node, element)}")
            else:
                self.assign(node, ELEMENT, element)
        identity = self.identity_ids(ELEMENT)
        for red in accumulate:
            element.emit(self.combine(red, self.reduction_input(red, element, identity)))
        for node in self.stored_in(stage):
            element.emit(f"{self.kept_slot(node, element)} = {self.var(node)}")
        for node in writes:
            element.emit(f"{self.arg_out(node)}[{self.subscript(identity, ELEMENT, element)}]"
                         f" = {self.var(node)}")
        row.lines += element.lines

    def render_pass(self, stage, row, element_out, row_red, scalar_from_element):
        """One pass over the reduced points of a row (or the one point of an element
        kernel): the row reductions it feeds start, each point's values are computed,
        accumulated and written, and the reductions end. Backends differ only in how
        they loop over the points (`open_reduced_loop`, `close_reduced_loop`) and end a
        reduction (`end_row_reduction`)."""
        accumulate, writes = self.pass_members(stage, element_out, row_red, scalar_from_element)
        if not accumulate and not writes:
            return
        started = [red for red in row_red if self.stage.get(red.inputs[0], 0) == stage]
        for red in started:
            row.emit(f"{self.acc(red)} = {self.init(red)}")
        depth = row.indent
        self.open_reduced_loop(row, accumulate)
        self.render_elements(row, accumulate, writes, stage)
        self.close_reduced_loop(row)
        row.indent = depth
        for red in started:
            self.end_row_reduction(row, red)

    def open_reduced_loop(self, row, accumulate=()):
        """The loops over a row's reduced points (the innermost one in blocks, with
        partial sums, for long float32 sums: runtime/cpu/long_sums.py)."""
        axes = self.loop_axes(self.reduced)
        self.row_blocked = [r for r in accumulate if axes and self.accumulates_wide(r)]
        for depth, axis in enumerate(axes):
            if depth == len(axes) - 1 and self.row_blocked:
                self.open_partial_sums(row, axis)
                continue
            innermost = depth == len(axes) - 1
            count = self.row_count(axis) if innermost and self.kept else \
                self.count(axis, not innermost)
            row.emit(f"for i{axis} in range({count}):")
            row.indent += 1

    def count(self, axis, around_a_loop):
        """The loop count of `axis`: hidden from LLVM (scalar.py's `opaque`) for a loop
        around another loop in a prange body, whose full unrolling made compiles take
        20 s."""
        extent = self.extent(axis)
        return f"opaque({extent})" if around_a_loop and self.hide_counts else str(extent)

    def row_count(self, axis):
        """The count of a row's innermost reduced loop: hidden from LLVM for
        FULLY_UNROLLED extents. LLVM unrolls such a loop completely before it would
        vectorize it and the result runs scalar: a sum of squares over rows of 16-64
        took 2.2-5.6x as long as with the count hidden, a softmax 1.4-2.5x (extents of
        8 and below, and of 96 and up, ran faster with the count shown)."""
        extent = self.extent(axis)
        hide = FULLY_UNROLLED[0] <= extent <= FULLY_UNROLLED[1]
        return f"opaque({extent})" if hide else str(extent)

    def close_reduced_loop(self, row):
        self.close_partial_sums(row)

    def end_row_reduction(self, row, red):
        row.emit(f"{self.var(red)} = {self.reduced_value(red)}")

    def pass_members(self, stage, element_out, row_red, scalar_from_element):
        """(the reductions pass `stage` accumulates, the element outputs it writes)."""
        in_pass = lambda node: self.stage.get(node, 0) == stage  # noqa: E731
        return ([r for r in row_red + scalar_from_element if in_pass(r.inputs[0])],
                [n for n in element_out if in_pass(n)])

    def needed_elements(self, consumers, writes, loaded=()):
        """Placed ELEMENT nodes the consumers need, in kernel order (a `loaded` one is
        needed, but not what it is computed from)."""
        needed, seen = set(), set()
        stack = list(writes) + [r.inputs[0] for r in consumers]
        while stack:
            node = stack.pop()
            if node in seen:
                continue
            seen.add(node)
            if node in self.inlined:        # recomputed where read: look through it
                stack.extend(node.inputs)
            elif self.kernel.level.get(node) == ELEMENT:
                needed.add(node)
                if node not in loaded:
                    stack.extend(node.inputs)
        return [n for n in self.placed(ELEMENT) if n in needed]

    def reduction_input(self, red, block, identity):
        source = red.inputs[0]
        if source in self.kernel.level and source not in self.inlined:
            return self.var(source)
        return self.value(source, ELEMENT, identity, block)

    def assign(self, node, level, block):
        ids = self.identity_ids(level)
        if node.op.name in VIEW_OPS:
            text = self.operand(node, 0, level, ids, block)
        else:
            text = self.expression(node, level, ids, block)
            if level == ELEMENT and self.reads_row(node):
                text = self.EXACT.format(text)
        block.emit(f"{self.var(node)} = {text}")

    def reads_row(self, node):
        """Whether `node` reads a ROW value of this kernel (a reduction over its rows, or
        a value computed from one), directly or through the inlined nodes it reads."""
        return any(self.level_of(i) == ROW or i in self.inlined and self.reads_row(i)
                   for i in node.inputs)

    def init(self, red):
        start = REDUCE_INIT[red.op.name]
        if red.dtype.kind in "iu" and math.isinf(start):
            info = np.iinfo(red.dtype)
            start = info.min if start < 0 else info.max
        return literal(start, np.float64 if self.accumulates_wide(red) else red.dtype)

    def acc(self, red):
        return "acc" + self.var(red)[1:]

    # a reduction's step; max and min through scalar.py's running_max / running_min,
    # which LLVM vectorizes (NaN-propagating, as the reference)
    COMBINE = {"sum": "{acc} += {value}", "prod": "{acc} *= {value}",
               "max": "{acc} = running_max({acc}, {value})",
               "min": "{acc} = running_min({acc}, {value})"}

    def combine(self, red, value):
        acc = ("p" if self.partial(red) else "") + self.acc(red)
        return self.COMBINE[red.op.name].format(acc=acc, value=value)

    def arg_out(self, node):
        return "o_" + self.arg(node)

    def write_in_place(self, body, outputs, bases):
        """Stores to an output that shares an input's buffer (`in_place`) written through
        the input's argument, when it is passed from its first element: LLVM then sees
        one pointer read and written at one index and vectorizes the loop. With two
        arguments its run-time overlap check fails and the loop runs scalar (W3's tanh
        step: 31 us against 4). The output's own argument stays, unused."""
        through = {}
        for out in outputs:
            source = self.in_place.get(out)
            if source in self.args and source not in outputs and source.dtype == out.dtype \
                    and not bases.get(self.args[source]):
                through[self.arg_out(out)] = self.args[source]
        for name, source in through.items():
            body = [re.sub(rf"\b{name}\[", f"{source}[", line) for line in body]
        return body, through

    def function(self, body, outputs, parallel, chunks=None, partials=0, tail=False):
        """The njit function of `body`: parallel (a prange), or over one chunk of its
        outer loop's `chunks` points (runtime/cpu/chunked.py), or serial."""
        body, bases = self.resolve_offsets(body)
        body, through = self.write_in_place(body, outputs, bases)
        body = hoist_subscripts(body)
        inputs = [n for n in self.args if n not in outputs]
        params = ["chunk", "start", "stop"] * bool(chunks) + [self.args[n] for n in inputs] + \
            [self.arg_out(n) for n in outputs] + [name for name, _ in self.tables] + \
            ["partials"] * bool(partials) + ["err"]
        parallel = parallel and not chunks
        nodes = ", ".join(n.name for n in self.kernel.all_nodes[:12])
        comment = f"# kernel {self.name}: {nodes}" + \
            (" ..." if len(self.kernel.all_nodes) > 12 else "")
        arguments = "# " + ", ".join(f"{self.args[n]}: {n.name}" for n in self.args) + \
            "".join(f"\n# {out} is written through {source} (one buffer)"
                    for out, source in through.items())
        options = (f"fastmath=FASTMATH, parallel={parallel}, error_model='numpy', cache=True, "
                   "no_cfunc_wrapper=True, no_cpython_wrapper=True")
        # the kernel's cache entry is named by its text, not its module's (loop_kernel.py)
        text = "\n".join([options, f"def _({', '.join(params)}):"] + body)
        source_key = hashlib.sha256(text.encode()).hexdigest()[:24]
        definition = "\n".join(
            [f"@loop_kernel({options},", f"             source_key='{source_key}')",
             f"def {self.name}({', '.join(params)}):"] + body) + "\n"
        return LoopSource(self.name, comment + "\n" + arguments + "\n" + definition, inputs,
                          outputs, [table for _, table in self.tables], list(self.error_checks),
                          key=definition.replace(f"def {self.name}(", "def _(", 1),
                          offsets=[bases.get(self.args[n], 0) for n in inputs], chunks=chunks,
                          partials=partials, tail=tail)


def render_loop(kernel, fusion, name, allow_parallel=True, in_place=None):
    """The source of `kernel`'s loop as an njit function named `name`; `in_place` maps
    an output to the input whose memory the plan gave it (LoopRenderer.write_in_place).

    allow_parallel=False keeps every loop serial: when the step also calls a
    threaded BLAS, Numba's pool and BLAS's spinning threads fight for the cores
    (measured: W1's step went from 2.6 ms to 220 ms with both).
    """
    renderer = LoopRenderer(kernel, fusion, name, allow_parallel, in_place)
    loop = renderer.render()
    collapse = {} if renderer.columns_inside else renderer.collapsible_groups()
    if not collapse:
        return loop
    return LoopRenderer(kernel, fusion, name, allow_parallel, in_place, collapse).render()
