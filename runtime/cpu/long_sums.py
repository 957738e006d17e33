"""Long float32 sums, accurate without losing float32's vector width (a mixin of
the CPU LoopRenderer in runtime/cpu/codegen.py).

A float32 accumulator's error grows with the count of terms: a batch norm's
mean over a million values of 1e4 + N(0, 1) was off by 2, its variance by a
factor 0.4, and a whole-tensor sum changed from call to call. A sum of
WIDE_SUM_MIN terms or more therefore accumulates in float64, but in two
levels: blocks of at most SUM_BLOCK terms sum in float32 (so the loop keeps
float32's vector width: accumulating every term in float64 made W4, whose
loop also computes a gelu, 1.4-1.7x slower), and each block's partial sum is
added to the float64 accumulator. One unit-stride loop over a row (a layer
norm's) is left in float32: its vector lanes are partial sums already (rows of
a million values 1e4 + N(0, 1) came within 2 float32 ulps), unless a long
whole-kernel sum splits that loop into blocks.
"""
import numpy as np

from graphc.passes.kernels import SCALAR

WIDE_SUM_MIN = 1 << 12          # float32 sums of this many terms accumulate in float64
SUM_BLOCK = 1 << 12             # ... from float32 partial sums of about this many


class LongSums:
    """For LoopRenderer (which provides the names, the domain and the loops)."""

    def accumulates_wide(self, red):
        """Whether float32 sum `red` accumulates in float64 (see the module docstring)."""
        if red.op.name != "sum" or np.dtype(red.dtype) != np.float32:
            return False
        if self.kernel.level[red] == SCALAR:
            axes = range(len(self.domain))
        elif self.columns_inside or not self.reduces_one_memory_run() or \
                self.row_loop_in_blocks():
            axes = self.reduced
        else:
            return False
        return int(np.prod([self.domain[a] for a in axes], dtype=np.int64)) >= WIDE_SUM_MIN

    def row_loop_in_blocks(self):
        """Whether a long whole-kernel float32 sum splits the rows' loop into blocks:
        then a row's sum over one memory run is not its vector lanes' partial sums but
        one float32 sum of the blocks' (2e-4 relative over a row of a million values
        of 1e4 + N(0, 1)), so it takes float64 partials too."""
        size = int(np.prod(self.domain, dtype=np.int64))
        return size >= WIDE_SUM_MIN and any(
            level == SCALAR and node.op.name == "sum" and np.dtype(node.dtype) == np.float32
            for node, level in self.kernel.level.items())

    def reduces_one_memory_run(self):
        """Whether a row's reduced points are one loop over the innermost axes (the loop
        vectorizes: a layer norm's row), not strided or nested loops (a batch norm's)."""
        loops = self.loop_axes(self.reduced)
        if len(loops) != 1:
            return False
        return self.collapse.get(loops[0], (loops[0],))[-1] == len(self.domain) - 1

    def reduced_value(self, red, acc=None):
        """The reduction's result in its own dtype, from its accumulator."""
        acc = acc or self.acc(red)
        return f"np.float32({acc})" if self.accumulates_wide(red) else acc

    def partial(self, red):
        """The float32 partial sum `red` adds its terms to, if it has one."""
        return red in self.blocked or red in self.row_blocked

    def open_blocks(self, axis, loops, blocks):
        """A kernel's parallel loop (no reduced axes: a whole-tensor sum, W4's) as blocks
        (`blocks`: the loop over them) of about SUM_BLOCK terms, each with float32
        partial sums (`self.blocked`), added to the float64 accumulators after it."""
        block, extent = self.block_size(loops), self.extent(axis)
        return ([f"    for blk in {blocks}:"] +
                ["        " + line for line in self.partials_start(self.blocked)] +
                ["        " + _block_range(axis, "blk", block, extent)])

    def block_size(self, loops):
        return max(1, SUM_BLOCK // int(np.prod([self.extent(a) for a in loops[1:]])))

    def block_count(self, axis, loops):
        return -(-self.extent(axis) // self.block_size(loops))

    def close_blocks(self):
        return ["        " + line for line in self.partials_end(self.blocked)]

    def open_partial_sums(self, row, axis):
        """The innermost reduced loop, for a row whose long sums (`self.row_blocked`)
        take float32 partial sums: one per run of this loop, or per SUM_BLOCK terms of
        a longer one (each loop of blocks named apart: Numba's parfor pass refused two
        loops of one name in a prange body)."""
        extent = self.extent(axis)
        blocks = extent > SUM_BLOCK
        name = f"blk{self.acc(self.row_blocked[0])[3:]}"
        if blocks:
            row.emit(f"for {name} in range({-(-extent // SUM_BLOCK)}):")
            row.indent += 1
        for line in self.partials_start(self.row_blocked):
            row.emit(line)
        row.emit(_block_range(axis, name, SUM_BLOCK, extent) if blocks else
                 f"for i{axis} in range({extent}):")
        row.indent += 1

    def partials_start(self, reds):
        return [f"p{self.acc(r)} = np.float32(0.0)" for r in reds]

    def partials_end(self, reds):
        return [f"{self.acc(r)} += np.float64(p{self.acc(r)})" for r in reds]

    def close_partial_sums(self, row):
        """After the innermost loop (or block): its partial sums into the accumulators."""
        if self.row_blocked:
            row.indent -= 1
            for line in self.partials_end(self.row_blocked):
                row.emit(line)
        self.row_blocked = []


def _block_range(axis, block_var, block, extent):
    """The loop over block `block_var`'s points of axis `axis`."""
    return (f"for i{axis} in range({block_var} * {block}, "
            f"min({block_var} * {block} + {block}, {extent})):")
