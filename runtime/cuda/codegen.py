"""Render the loop part of a fused kernel (passes/fuse.py) as numba.cuda kernels.

The kernel description, the index maps (affine reads and gather tables) and
the scalar expressions are runtime/cpu/codegen.py's: `CudaLoopRenderer`
subclasses its `LoopRenderer` and changes only how the loops are printed.

- No reduce axes ("element" kernels): one thread per point of the domain, in
  a grid-stride loop over the flat point index.
- Reduce axes ("row" kernels): one block per row, grid-stride over the rows.
  The block's threads stride over the row's reduced points (`j`); each row
  reduction ends with a tree reduction in shared memory whose result every
  thread of the block then reads (a later pass needs it: x - max(x)).
  Per-row values are computed by every thread; thread 0 writes them.
- SCALAR reductions: each thread accumulates its points (or rows), each block
  tree-reduces its threads and writes one partial per block; a second kernel
  of one block, `<name>_tail`, reduces the partials and computes the SCALAR
  nodes. No atomics: the order of the sums is the same on every run.
- A float32 sum of which one thread adds WIDE_THREAD_TERMS terms or more (long
  rows) accumulates in float64, through the tree and the partials, and is
  rounded once (the CPU's long sums: runtime/cpu/long_sums.py).

Errors: a one_hot label out of range sets err[0] (1 + the check's number in
`error_checks`) and err[1] (1 + the kernel's index). Every kernel starts by
returning when err[0] is set, so nothing runs after a kernel that failed (the
memory plan writes variables in place only after every kernel that can fail).
"""
import numpy as np

from graphc.passes.kernels import ELEMENT, ROW, SCALAR
from graphc.runtime.cpu.codegen import LoopRenderer, LoopSource, _Block
from graphc.runtime.cpu.index_maps import operand_ids
from graphc.runtime.cpu.scalar import cast_name
from graphc.runtime.cuda.device import LIMITS

PRELUDE = """# compiled against graphc's runtime {runtime} (runtime/cache.py)
import numpy as np
from numba import cuda
from numba import types as nbt
from graphc.runtime.cuda.scalar import *
"""

WIDE_THREAD_TERMS = 256       # a thread adding this many float32 terms adds them in float64

MERGE = {"sum": "({0} + {1})", "prod": "({0} * {1})", "max": "maximum({0}, {1})",
         "min": "minimum({0}, {1})"}


class CudaLoopSource(LoopSource):
    """A rendered kernel (and its tail) and how to launch it.

    grid, threads:  the main kernel's launch; the tail runs as 1 block of tail_threads
    partials:       dtypes of the per-block partial arrays passed after `err`
    tail:           the tail kernel's name, or None (no SCALAR reduction)
    """

    def __init__(self, base, grid, threads, partials, tail, tail_threads):
        super().__init__(base.name, base.source, base.inputs, base.outputs, base.tables,
                         base.error_checks, base.key)
        self.grid, self.threads, self.partials = grid, threads, partials
        self.tail, self.tail_threads = tail, tail_threads


def _pow2_at_least(n):
    return 1 << max(0, int(n) - 1).bit_length()


def _type_name(dtype):
    return "boolean" if np.dtype(dtype).kind == "b" else np.dtype(dtype).name


class CudaLoopRenderer(LoopRenderer):
    INDEX_CAST = ""             # subscripts as the CPU renderer writes them, uncast
    OFFSET_VIEWS = False        # and every buffer passed whole
    COMBINE = {**LoopRenderer.COMBINE, "max": "{acc} = maximum({acc}, {value})",
               "min": "{acc} = minimum({acc}, {value})"}    # scalar.py's, on both sides
    EXACT = "{}"                # numba.cuda compiles without fastmath: all rounds as written
    def __init__(self, kernel, fusion, name):
        super().__init__(kernel, fusion, name, allow_parallel=False)
        self.rows = bool(self.reduced)          # one block per row, else one thread per point
        self.row_count = int(np.prod([self.domain[a] for a in self.kept], dtype=np.int64))
        self.row_size = int(np.prod([self.domain[a] for a in self.reduced], dtype=np.int64))
        if self.rows:
            self.threads = min(LIMITS.threads, _pow2_at_least(self.row_size))
            self.grid = max(1, min(LIMITS.blocks, self.row_count))
        else:
            self.threads = min(LIMITS.threads, _pow2_at_least(self.row_count))
            self.grid = max(1, min(LIMITS.blocks, -(-self.row_count // self.threads)))
        self.shared = {}            # dtype name -> shared array name (in the function rendered now)

    def accumulates_wide(self, red):
        """Whether float32 sum `red` accumulates in float64: when one thread adds
        WIDE_THREAD_TERMS terms or more (a batch norm's rows of a million values on 256
        threads: 4,096 each), as the CPU's long sums do. The block's tree reduction, the
        partials and the tail then work in float64 too; the result is rounded once. A
        thread's float64 add costs nothing that shows in a loop bound by memory."""
        if red.op.name != "sum" or np.dtype(red.dtype) != np.float32:
            return False
        return self.terms_per_thread(red) >= WIDE_THREAD_TERMS

    def terms_per_thread(self, red):
        """The most terms of `red` that one thread adds before the block's tree."""
        per_row = -(-self.row_size // self.threads) if self.rows else 1
        if self.kernel.level[red] != SCALAR:
            return per_row
        if self.rows:
            return -(-self.row_count // self.grid) * per_row
        return -(-self.row_count // (self.grid * self.threads))

    def acc_dtype(self, red):
        return np.float64 if self.accumulates_wide(red) else red.dtype

    # -- pieces ---------------------------------------------------------------------------
    def one_hot(self, node, level, ids, block):
        text = super().one_hot(node, level, ids, block)
        block.emit(f"    err[1] = {self.kernel.index + 1}")     # inside the label check's `if`
        return text

    def expression(self, node, level, ids, block):
        """As on the CPU; `where` casts both branches to its dtype (numba.cuda unifies a
        float32 branch with an int64 one as float64, and FP64 is slow on most GPUs)."""
        if node.op.name != "where":
            return super().expression(node, level, ids, block)
        cond, a, b = (self.operand(node, slot, level, ids, block) for slot in range(3))
        cast = cast_name(node.dtype)
        return f"where({cond}, {cast}({a}), {cast}({b}))"

    def shared_array(self, dtype):
        name = _type_name(dtype)
        return self.shared.setdefault(name, f"sh_{name}")

    def operand(self, node, slot, level, ids, block):
        """As the CPU's, but a SCALAR node (of a one-point kernel) computes the ELEMENT
        values it reads again: the tail kernel that runs it never defined them (a
        NameError: softmax over one value whose input is also fetched)."""
        operand = node.inputs[slot]
        if level == SCALAR and self.kernel.level.get(operand) == ELEMENT and \
                operand not in self.inlined:
            return self.recompute(operand, level, operand_ids(node, slot, ids), block)
        return super().operand(node, slot, level, ids, block)

    def block_reduce(self, block, acc, red, threads):
        """acc = the reduction of acc over the block's threads (every thread gets it)."""
        sh = self.shared_array(self.acc_dtype(red))
        merge = MERGE[red.op.name].format(f"{sh}[tid]", f"{sh}[tid + s]")
        block.emit(f"{sh}[tid] = {acc}")
        block.emit("cuda.syncthreads()")
        block.emit(f"s = {threads // 2}")
        block.emit("while s > 0:")
        block.emit("    if tid < s:")
        block.emit(f"        {sh}[tid] = {merge}")
        block.emit("    cuda.syncthreads()")
        block.emit("    s //= 2")
        block.emit(f"{acc} = {sh}[0]")
        block.emit("cuda.syncthreads()")       # before the shared array is written again

    def decompose(self, block, flat, axes):
        """i<axis> for each of `axes` from the C-order flat index `flat` over them."""
        if not axes:
            return
        if len(axes) == 1:
            block.emit(f"i{axes[0]} = {flat}")
            return
        block.emit(f"q = {flat}")
        for axis in reversed(axes[1:]):
            block.emit(f"i{axis} = q % {self.domain[axis]}")
            block.emit(f"q = q // {self.domain[axis]}")
        block.emit(f"i{axes[0]} = q")

    def guard(self, fallible):
        """Return at once when an earlier kernel failed (err[0] set). A kernel that can
        fail itself reads err once per block (through shared memory), so that all of a
        block's threads take the same branch before its first syncthreads."""
        if not fallible:
            return ["    if err[0] != 0:", "        return"]
        return ["    guard = cuda.shared.array(1, nbt.int64)",
                "    if tid == 0:",
                "        guard[0] = err[0]",
                "    cuda.syncthreads()",
                "    if guard[0] != 0:",
                "        return"]

    # -- structure ------------------------------------------------------------------------
    def render(self):
        (outputs, element_out, row_out, scalar_out, row_red, scalar_red, scalar_from_element,
         scalar_from_row, passes) = self.levels()
        k = self.kernel
        lone_scalars = any(k.level[n] == SCALAR for n in self.placed()) and not scalar_red
        if lone_scalars and not all(d == 1 for d in self.domain):
            raise AssertionError(f"{self.name}: SCALAR nodes without a SCALAR reduction")

        top = _Block(1)
        for red in scalar_red:
            top.emit(f"{self.acc(red)} = {self.init(red)}")
        T = self.threads
        if self.rows:
            top.emit("row = np.int64(cuda.blockIdx.x)")
            step = "np.int64(cuda.gridDim.x)"
        else:
            top.emit(f"row = np.int64(cuda.blockIdx.x) * {T} + tid")
            step = f"np.int64(cuda.gridDim.x) * {T}"
        top.emit(f"while row < {self.row_count}:")
        row = _Block(2)
        self.decompose(row, "row", self.kept)
        for stage in range(passes):
            self.render_pass(stage, row, element_out, row_red, scalar_from_element)
            for node in self.placed(ROW):
                if not self.is_reduction(node) and self.stage[node] == stage + 1:
                    self.assign(node, ROW, row)
        by_first = "if tid == 0:" if self.rows else None
        writes = [f"{self.arg_out(n)}[{self.index_expr(self.identity_ids(ROW), ROW, row)}]"
                  f" = {self.var(n)}" for n in row_out]
        writes += [self.combine(red, self.var(red.inputs[0]) if red.inputs[0] in k.level
                                else self.value(red.inputs[0], ROW, self.identity_ids(ROW), row))
                   for red in scalar_from_row]
        if writes and by_first:
            # a row value may be written into a variable that this row's threads still read
            # (memplan writes in place at ROW level): wait until every thread is done
            row.emit("cuda.syncthreads()")
            row.emit(by_first)
            writes = ["    " + w for w in writes]
        for line in writes:
            row.emit(line)
        row.emit(f"row += {step}")
        body = top.lines + row.lines
        end = _Block(1)
        if lone_scalars:        # one point (a vector product's, a 0-d draw's): its thread
            self.lone_scalar_epilogue(end, scalar_out)      # computes them after the loop
        for n, red in enumerate(scalar_red):
            self.block_reduce(end, self.acc(red), red, T)
            end.emit("if tid == 0:")
            end.emit(f"    p{n}[cuda.blockIdx.x] = {self.acc(red)}")
        body += end.lines
        main_shared, self.shared = self.shared, {}
        tail_body, tail_threads = None, 1
        if scalar_red:
            tail_threads = min(LIMITS.threads, _pow2_at_least(self.grid))
            tail_body = self.tail_body(scalar_red, scalar_out, tail_threads)
        # both kernels take every argument either one reads: render both bodies first
        fallible = bool(self.error_checks)
        main = self.function(self.name, body, outputs, scalar_red, fallible, T, main_shared)
        source, key = main.source, main.key
        if tail_body is not None:
            tail = self.function(self.name + "_tail", tail_body, outputs, scalar_red, False,
                                 tail_threads, self.shared)
            source, key = source + "\n\n" + tail.source, key + tail.key
        base = LoopSource(self.name, source, main.inputs, outputs, main.tables,
                          list(self.error_checks), key=key)
        return CudaLoopSource(base, self.grid, T, [self.acc_dtype(r) for r in scalar_red],
                              self.name + "_tail" if tail_body else None, tail_threads)

    def open_reduced_loop(self, row, accumulate=()):
        """A row's reduced points are shared by the block's threads (an element
        kernel's one point needs no loop)."""
        if self.rows:
            row.emit("j = tid")
            row.emit(f"while j < {self.row_size}:")
            row.indent += 1
            self.decompose(row, "j", self.reduced)

    def close_reduced_loop(self, row):
        if self.rows:
            row.emit(f"j += {self.threads}")

    def end_row_reduction(self, row, red):
        self.block_reduce(row, self.acc(red), red, self.threads)
        row.emit(f"{self.var(red)} = {self.reduced_value(red)}")

    def lone_scalar_epilogue(self, end, scalar_out):
        """SCALAR nodes of a one-point kernel with no reduction to wait for: the thread
        that computed the point (block 0's first) computes them after its loop."""
        end.emit("if cuda.blockIdx.x == 0 and tid == 0:")
        inner = _Block(2)
        for node in self.placed(SCALAR):
            self.assign(node, SCALAR, inner)
        for node in scalar_out:
            inner.emit(f"{self.arg_out(node)}[0] = {self.var(node)}")
        end.lines += inner.lines or ["        pass"]

    def tail_body(self, scalar_red, scalar_out, threads):
        """One block: reduce each SCALAR reduction's partials, then the SCALAR nodes."""
        tail = _Block(1)
        for n, red in enumerate(scalar_red):
            acc = self.acc(red)
            tail.emit(f"{acc} = {self.init(red)}")
            tail.emit("b = tid")
            tail.emit(f"while b < p{n}.shape[0]:")
            tail.emit("    " + self.combine(red, f"p{n}[b]"))
            tail.emit(f"    b += {threads}")
            self.block_reduce(tail, acc, red, threads)
        for node in self.placed(SCALAR):
            if self.is_reduction(node):
                tail.emit(f"{self.var(node)} = {self.reduced_value(node)}")
            else:
                self.assign(node, SCALAR, tail)
        if scalar_out:
            tail.emit("if tid == 0:")
            for node in scalar_out:
                tail.emit(f"    {self.arg_out(node)}[0] = {self.var(node)}")
        return tail.lines

    def function(self, name, body, outputs, scalar_red, fallible, threads, shared):
        """The kernel `name`; a loop's kernels all take the same arguments."""
        inputs = [n for n in self.args if n not in outputs]
        params = [self.args[n] for n in inputs] + [self.arg_out(n) for n in outputs] + \
            [table for table, _ in self.tables] + ["err"] + \
            [f"p{n}" for n in range(len(scalar_red))]
        nodes = ", ".join(n.name for n in self.kernel.all_nodes[:12])
        comment = f"# kernel {name}: {nodes}" + \
            (" ..." if len(self.kernel.all_nodes) > 12 else "")
        arguments = "# " + ", ".join(f"{self.args[n]}: {n.name}" for n in self.args)
        head = ["    tid = np.int64(cuda.threadIdx.x)"] + self.guard(fallible) + [
            f"    {array} = cuda.shared.array({threads}, nbt.{dtype})"
            for dtype, array in shared.items()]
        definition = "\n".join(["@cuda.jit", f"def {name}({', '.join(params)}):"]
                               + head + body) + "\n"
        return LoopSource(name, comment + "\n" + arguments + "\n" + definition, inputs,
                          outputs, [table for _, table in self.tables], list(self.error_checks),
                          key=definition.replace(f"def {name}(", "def _(", 1))


def render_loop(kernel, fusion, name):
    """`kernel`'s loop as numba.cuda source (a CudaLoopSource)."""
    return CudaLoopRenderer(kernel, fusion, name).render()
