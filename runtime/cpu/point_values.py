"""What a node is at a kernel's loop point (a mixin of the CPU LoopRenderer in
runtime/cpu/codegen.py; the CUDA renderer inherits it): a buffer read through
its index map (an affine subscript, or a gather table), a placed node's
variable, an inlined node's scalar expression, a view read through, or a
placed value computed again where a view reads it at another point.
"""
import math
import re

import numpy as np

from graphc.passes.kernels import ELEMENT, ROW, SCALAR, VIEW_OPS
from graphc.runtime.cpu.index_maps import Ids, identity, operand_ids
from graphc.runtime.cpu.scalar import cast_name


def literal(value, dtype):
    """A typed literal of `dtype` for generated code."""
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return "True" if bool(value) else "False"
    if dtype.kind == "f":
        value = float(value)
        text = "np.inf" if value == math.inf else "-np.inf" if value == -math.inf else \
            "np.nan" if value != value else repr(value)
        return f"np.{dtype.name}({text})"
    return f"np.{dtype.name}({int(value)})"


# ops whose scalar expression is already of the node's dtype (a comparison's bool,
# a cast's constructor, where's selected operand)
EXACT_TYPED = frozenset({"equal", "not_equal", "less", "less_equal", "greater",
                         "greater_equal", "logical_and", "logical_or", "logical_xor",
                         "logical_not", "cast", "where"})


class PointValues:
    """For LoopRenderer (which provides the kernel, the names and the blocks)."""

    # -- evaluation spaces -----------------------------------------------------------------
    def axes_of(self, level):
        return {ELEMENT: tuple(range(len(self.domain))), ROW: self.kept, SCALAR: ()}[level]

    def identity_ids(self, level):
        return identity(tuple(self.domain[a] for a in self.axes_of(level)))

    def index_expr(self, ids, level, block):
        """An expression for ids at the current loop point; a gather table if not affine."""
        found = ids.affine()
        if found is None:
            table = self.fresh("tbl")
            self.tables.append((table, ids.materialize().reshape(-1)))
            return f"{table}[{self.subscript(self.identity_ids(level), level, block)}]"
        return self.affine_expr(found, level)

    def affine_expr(self, found, level):
        offset, strides = found
        terms = [str(offset)] if offset else []
        terms += self.axis_terms(self.axes_of(level), strides)
        return " + ".join(terms) or "0"

    def read(self, node, ids, level, block):
        """`arg[index]` reading node's buffer. With OFFSET_VIEWS, an affine read's constant
        offset is written relative to its argument's lowest (a marker that `function`
        resolves) and the caller passes the buffer from that element on, so kernels
        that differ only in where they read (an unrolled loop's x[:, t]) compile once."""
        arg = self.arg(node)
        found = ids.affine() if self.OFFSET_VIEWS else None
        offsets = self.read_offsets.setdefault(arg, [])
        if found is None:
            offsets.append(0)
            return f"{arg}[{self.subscript(ids, level, block)}]"
        offsets.append(found[0])
        index = self.affine_expr((0, found[1]), level)
        return f"{arg}[{self.INDEX_CAST}(<<{arg}:{found[0]}>>{index})]"

    def resolve_offsets(self, lines):
        """(lines with read offsets relative to each argument's base, the bases)."""
        bases = {arg: min(offsets) for arg, offsets in self.read_offsets.items()}

        def relative(match):
            offset = int(match.group(2)) - bases[match.group(1)]
            return f"{offset} + " if offset else ""
        return [re.sub(r"<<(\w+):(\d+)>>", relative, line) for line in lines], bases

    def subscript(self, ids, level, block):
        """index_expr as an array subscript, cast by INDEX_CAST."""
        return f"{self.INDEX_CAST}({self.index_expr(ids, level, block)})"

    # -- values ------------------------------------------------------------------------------
    def value(self, node, level, ids, block):
        """Expression for node's elements `ids` (over the level's loop point)."""
        if node in self.kernel.level and node not in self.inlined:
            if level == ELEMENT == self.kernel.level[node] and \
                    not ids.same_as(self.identity_ids(ELEMENT)):
                # a view (transpose) reads this point's value elsewhere: compute it there
                return self.recompute(node, level, ids, block)
            return self.var(node)
        if node.op.name == "constant" and node.attrs["value"].size == 1:
            return literal(node.attrs["value"].reshape(-1)[0], node.dtype)
        transparent = node in self.inlined or node in self.fusion.aliases
        key = (node, ids.signature(), level)
        if key in block.memo:
            return block.memo[key]
        if not transparent:
            text = self.read(node, ids, level, block)
        elif node.op.name in VIEW_OPS:
            text = self.value(node.inputs[0], level, operand_ids(node, 0, ids), block)
        else:
            text = self.fresh()
            block.emit(f"{text} = {self.expression(node, level, ids, block)}")
        block.memo[key] = text
        return text

    def expression(self, node, level, ids, block):
        """The scalar expression computing `node` at the loop point."""
        if node.op.name == "full":
            return literal(node.attrs["value"], node.dtype)
        if node.op.name == "one_hot":
            return self.one_hot(node, level, ids, block)
        operands = [self.operand(node, slot, level, ids, block) for slot in range(len(node.inputs))]
        attrs = {k: self.attr_text(v, node) for k, v in node.attrs.items()}
        text = node.op.scalar.format(*operands, **attrs)
        if node.dtype.kind in "biu" and node.dtype.itemsize < 8 and \
                node.op.name not in EXACT_TYPED:
            # Numba widens narrow ints and bools (int32 * int32 is an int64, True + True
            # is 2); NumPy keeps the dtype, wrapping around: so does the cast
            text = f"{cast_name(node.dtype)}({text})"
        return text

    def operand(self, node, slot, level, ids, block):
        operand = node.inputs[slot]
        if operand in self.kernel.level and operand not in self.inlined:
            # (a placed view of a per-row value is a level cast: the row's value; a node
            # recomputed at another point reads its per-element operands there too)
            per_element = self.kernel.level[operand] == ELEMENT
            reads_elsewhere = node not in self.kernel.level or node in self.inlined or (
                (node.op.name in VIEW_OPS or self.recomputing) and per_element)
            if reads_elsewhere and not self.at_same_point(node, slot, level, ids):
                return self.recompute(operand, level, operand_ids(node, slot, ids), block)
            return self.var(operand)
        return self.value(operand, level, operand_ids(node, slot, ids), block)

    def at_same_point(self, node, slot, level, ids):
        operand = node.inputs[slot]
        if level == SCALAR and self.kernel.level[operand] == ELEMENT and \
                all(d == 1 for d in self.domain):
            # a domain of one point: the epilogue reads the value the element stage
            # computed (computing it again read a variable that stage had updated in place)
            return True
        own = self.identity_ids(self.kernel.level[operand])
        return level == self.kernel.level[operand] and operand_ids(node, slot, ids).same_as(own)

    def recompute(self, node, level, ids, block):
        """A per-element value of this kernel needed at another point (an inlined view
        reads it there) is computed again at that point from its operands."""
        if self.kernel.level[node] != ELEMENT or self.is_reduction(node):
            raise AssertionError(f"fusion placed a reader of {node.name} in {self.name} "
                                 "that needs it at another point")
        key = ("recompute", node, ids.signature(), level)
        if key not in block.memo:
            self.recomputing += 1
            if node.op.name in VIEW_OPS:
                block.memo[key] = self.operand(node, 0, level, ids, block)
            else:
                name = self.fresh()
                block.emit(f"{name} = {self.expression(node, level, ids, block)}")
                block.memo[key] = name
            self.recomputing -= 1
        return block.memo[key]

    def attr_text(self, value, node):
        if isinstance(value, np.dtype):
            return cast_name(value)
        if isinstance(value, float):
            return literal(value, node.dtype if node.dtype.kind == "f" else np.float64)
        return str(value)

    def one_hot(self, node, level, ids, block):
        classes = node.attrs["num_classes"]
        label = self.value(node.inputs[0], level, Ids.of(ids.materialize() // classes), block)
        klass = self.index_expr(Ids.of(ids.materialize() % classes), level, block)
        self.error_checks.append(node)
        name = self.fresh("lab")
        block.emit(f"{name} = {label}")
        block.emit(f"if {name} < 0 or {name} >= {classes}:")
        block.emit(f"    err[0] = 1 + {len(self.error_checks) - 1}")
        return f"{cast_name(node.dtype)}({name} == {klass})"
