"""Kernels as data: what the fusion pass (passes/fuse.py) produces and every
backend renders (runtime/cpu/codegen.py prints a kernel as a Numba function).

A kernel is at most one library call (an opaque op) followed by one loop nest
over a *domain* (a shape). Each loop node lives at a level: ELEMENT (every
point of the domain), ROW (one value per row spanned by the kernel's reduce
axes) or SCALAR (one value per kernel). `Fusion` holds the kernels in
schedule order, the aliases (zero-copy views, no kernel) and, for every
producer-consumer edge that was not fused, the reason.
"""
import numpy as np

ELEMENT, ROW, SCALAR = "element", "row", "scalar"

BUFFER_OPS = ("placeholder", "variable", "constant")
VIEW_OPS = ("reshape", "transpose", "broadcast_to", "expand_dims", "squeeze", "slice")
ALIAS_OPS = ("reshape", "expand_dims", "squeeze")
LOOP_REDUCTIONS = ("sum", "max", "min", "prod")


def apply_view(view, array):
    """The view node's reference applied to `array`, a stand-in for its first operand
    (index maps probe views this way); shape-only operands (broadcast_to's or
    reshape's `like`, before simplify makes their shapes attributes) by their shapes."""
    likes = [np.broadcast_to(np.zeros((), np.uint8), view.inputs[k].shape)
             for k in view.op.shape_only if k < len(view.inputs)]
    return view.op.reference(array, *likes, **view.attrs)


class Kernel:
    """Nodes run together: an optional library call, then one loop nest."""

    def __init__(self, index, domain, library=None):
        self.index, self.domain, self.library = index, tuple(domain), library
        self.reduce_axes = None     # the row reduction's axes, once a reduction sets them
        self.nodes = []             # loop nodes (and inlined free nodes), topological
        self.level = {}             # loop node -> ELEMENT / ROW / SCALAR
        self.inlined = set()        # free nodes recomputed here where they are read
        self.copies = {}            # free node owned by another kernel -> its copy here
        self.inputs, self.outputs = [], []
        self.deps = set()           # kernels whose outputs this one reads

    @property
    def name(self):
        ops = ([self.library.op.name] if self.library is not None else []) + [
            n.op.name for n in self.nodes if n not in self.inlined and n.op.name not in VIEW_OPS]
        return f"k{self.index}_" + "_".join(dict.fromkeys(ops[:4])) if ops else f"k{self.index}"

    @property
    def all_nodes(self):
        return ([self.library] if self.library is not None else []) + self.nodes

    def row_shapes(self):
        """The keepdims and squeezed shapes of a ROW value."""
        if self.reduce_axes is None:
            return ()
        keep = tuple(1 if a in self.reduce_axes else d for a, d in enumerate(self.domain))
        squeezed = tuple(d for a, d in enumerate(self.domain) if a not in self.reduce_axes)
        return (keep, squeezed)

    def describe(self):
        return (f"{self.name}: domain {self.domain}, reduce axes {self.reduce_axes}, "
                f"{len(self.all_nodes)} nodes, reads {[n.name for n in self.inputs]}, "
                f"writes {[n.name for n in self.outputs]}")

    def __repr__(self):
        return f"<Kernel {self.describe()}>"


class Fusion:
    """The pass's working state and result (stored on the program as `program.fusion`)."""

    def __init__(self, program):
        self.program = program
        self.kernels = []
        self.kernel_of = {}         # node -> Kernel (free nodes: the kernel that owns the copy)
        self.free = set()           # free nodes not yet placed
        self.aliases = set()        # view nodes that run as zero-copy views of a buffer
        self.reasons = {}           # (producer, consumer) -> why they are in different kernels
        self.refusals = {}          # node -> {kernel: why it could not join that kernel}
        self.originals = {}         # copy of a free node -> the node it copies
        self.free_depth = {}        # free node -> ops in its longest chain of free nodes
        self.leaves = {}            # kernel -> (its node count, what it reads): fuse.py
        self.rank = {}              # kernel -> a number below its readers' (None: stale;
        self.rank_top = -1          # fusion_legality.py's kernel_ranks), and the largest

    def report(self):
        return {"kernels": len(self.kernels), "aliases": len(self.aliases),
                "unfused_edges": len(self.reasons)}

    def describe(self):
        """The fusion report: each kernel with its nodes, then why each edge was not fused."""
        lines = []
        for kernel in self.kernels:
            lines.append(kernel.describe())
            for node in kernel.all_nodes:
                level = "library" if node is kernel.library else kernel.level.get(node, "inlined")
                where = f"  ({node.loc.file}:{node.loc.line})" if node.loc else ""
                lines.append(f"    {level:8} {node.describe()}{where}")
        if self.aliases:
            lines.append("aliases (zero-copy views): " + ", ".join(sorted(n.name for n in self.aliases)))
        lines.append("not fused:")
        for (producer, consumer), why in self.reasons.items():
            lines.append(f"    {producer.name} -> {consumer.name if consumer else 'a buffer'}: {why}")
        return "\n".join(lines)


def operands_first(nodes):
    """`nodes` reordered so that each comes after its operands among them, else as listed.

    Fusion lists a kernel's nodes in topological order, except that merging a kernel
    into a sibling that reads it (passes/fuse.py, _try_merge) appends the producer's
    nodes after their consumers; assigning in that order reads a value before it is set.
    """
    members, done, order = set(nodes), set(), []
    for start in nodes:
        stack = [(start, iter(start.inputs))]
        if start in done:
            continue
        done.add(start)
        while stack:
            node, operands = stack[-1]
            for operand in operands:
                if operand in members and operand not in done:
                    done.add(operand)
                    stack.append((operand, iter(operand.inputs)))
                    break
            else:
                stack.pop()
                order.append(node)
    return order
