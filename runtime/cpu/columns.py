"""Reductions over leading axes, rendered columns-inside (a mixin of the CPU
LoopRenderer in runtime/cpu/codegen.py).

A bias gradient sums a (B, F) tensor over its batch: the rows being reduced
are columns in memory, so the usual row-first loop strides a whole row per
element and never vectorizes. Here the reduced axes run outside and the kept
ones inside: one accumulator per row lives in an array, the inner loop is
unit-stride, and blocks of rows go to separate threads.
"""
import numpy as np

from graphc.passes.kernels import ROW, SCALAR

COLUMN_BLOCK = 128              # elements of the kept axes per block


class ColumnsInside:
    """render_columns for LoopRenderer (which provides the names, values and blocks)."""

    def reduces_leading_axes(self, passes, scalar_red):
        """A one-pass row reduction over leading axes (a bias gradient: the sum over the
        batch of a (B, F) tensor): rows are columns in memory, so render_columns."""
        return bool(self.reduced) and passes == 1 and not scalar_red and \
            self.reduced == tuple(range(len(self.reduced)))

    def render_columns(self, outputs, element_out, row_out, scalar_out, row_red):
        """The reduced axes outside and the kept axes inside, as memory runs: every row's
        accumulator lives in an array, and the inner loop is unit-stride (vectorized)
        where the row-first order strides by a whole row per element. The first kept
        axis is split into blocks of about COLUMN_BLOCK elements, split over the threads when
        large (runtime/cpu/chunks.py)."""
        first = self.kept[0]
        inner = int(np.prod([self.domain[a] for a in self.kept[1:]], dtype=np.int64))
        block = max(1, COLUMN_BLOCK // max(inner, 1))      # inner 0: an empty kernel
        blocks = -(-self.domain[first] // block)
        parallel = self.allow_parallel and blocks > 1 and self.large()
        chunks = blocks if parallel else None
        rows = int(np.prod([self.domain[a] for a in self.kept], dtype=np.int64))
        # a call in chunks keeps the accumulators of its own rows, from row0 on
        lines = [f"    row0 = start * {block * inner}" if chunks else "    row0 = 0"]
        size = f"min(stop * {block * inner}, {rows}) - row0" if chunks else str(rows)
        lines += [f"    {self.acc(r)}s = np.full({size}, {self.init(r)})" for r in row_red]
        loop = "range(start, stop)" if chunks else f"prange({blocks})" if parallel else \
            f"range({blocks})"
        lines.append(f"    for blk in {loop}:")
        lines.append(f"        lo, hi = blk * {block}, min((blk + 1) * {block}, "
                     f"{self.domain[first]})")
        body = self.new_block(2)
        for axis in self.reduced:
            body.emit(f"for i{axis} in range({self.domain[axis]}):")
            body.indent += 1
        row_index = self.subscript(self.identity_ids(ROW), ROW, body)
        slot = f"{row_index} - np.uint64(row0)"
        self.open_kept_loops(body)
        for red in row_red:
            body.emit(f"{self.acc(red)} = {self.acc(red)}s[{slot}]")
        self.render_elements(body, row_red, element_out)
        for red in row_red:
            body.emit(f"{self.acc(red)}s[{slot}] = {self.acc(red)}")
        body.indent = 2
        self.open_kept_loops(body)
        for red in row_red:
            body.emit(f"{self.var(red)} = "
                      f"{self.reduced_value(red, f'{self.acc(red)}s[{slot}]')}")
        for node in self.placed(ROW):
            if not self.is_reduction(node):
                self.assign(node, ROW, body)
        for node in row_out:
            body.emit(f"{self.arg_out(node)}[{row_index}] = {self.var(node)}")
        lines += body.lines
        tail = self.new_block(1)
        for node in self.placed(SCALAR):
            self.assign(node, SCALAR, tail)
        for node in scalar_out:
            tail.emit(f"{self.arg_out(node)}[0] = {self.var(node)}")
        if not chunks:
            return self.function(lines + tail.lines, outputs, parallel)
        return self.function(self.in_chunks(lines, tail.lines, []), outputs, parallel, chunks,
                             tail=bool(tail.lines))

    def open_kept_loops(self, block):
        """The kept axes' loops, the first over this block's range."""
        block.emit(f"for i{self.kept[0]} in range(lo, hi):")
        block.indent += 1
        for axis in self.kept[1:]:
            block.emit(f"for i{axis} in range({self.domain[axis]}):")
            block.indent += 1
