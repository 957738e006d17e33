"""`gc.viz.summary(executable)`: the kernels of a compiled step as a text table.

One row per kernel in schedule order: its ops, its domain (the loop's shape),
the bytes it reads and writes and, given a profile (`executable.profile(...)`),
its share of the step's time. A device that runs node by node (the
reference interpreter) lists its nodes instead.
"""
from graphc.errors import ArgumentError, user_location
from graphc.graph import format_shape
from graphc.passes.kernels import VIEW_OPS
from graphc.viz.model import format_bytes, nbytes

HEADER = ("#", "kernel", "ops", "shape", "reads", "writes", "time")


def summary(executable, profile=None):
    """The table as text; `profile` is what `executable.profile(...)` returned."""
    from graphc.executable import Executable
    if not isinstance(executable, Executable):
        raise ArgumentError(f"expects a compiled executable (what gc.compile returns), "
                            f"got {executable!r}: compile it and call it once first",
                            op="summary", loc=user_location())
    if executable.program is None:
        return "not compiled yet: call the executable once (or profile it) first"
    return program_summary(executable.program, executable.stats, profile)


def program_summary(program, stats, profile=None):
    """The table of a compiled `program`, with the executable's `stats`."""
    times = {name: seconds for name, _, seconds in profile.rows} if profile is not None else {}
    total = sum(times.values()) or None
    fusion = getattr(program, "fusion", None)
    if fusion is not None:
        rows = [_kernel_row(k, times, total) for k in fusion.kernels]
        what = f"step: {len(fusion.kernels)} kernels"
    else:
        nodes = [n for n in program.graph.topological()
                 if n.op.name not in ("placeholder", "variable")]
        rows = [_node_row(i, n, times, total) for i, n in enumerate(nodes)]
        what = f"step: {len(nodes)} nodes run one by one ({stats.get('device')})"
    footer = [what]
    if "arena_bytes" in stats:
        footer.append(f"arena {format_bytes(stats['arena_bytes'])}, lower bound "
                      f"{format_bytes(stats['lower_bound'])}, naive "
                      f"{format_bytes(stats['naive_bytes'])}")
    if total:
        footer.append(f"profiled: {total * 1e6:.1f} us per step (median of {profile.repeats})")
    return "\n".join(_table([HEADER] + rows) + footer)


def _kernel_row(kernel, times, total):
    ops = [n.op.name for n in kernel.all_nodes if n.op.name not in VIEW_OPS]
    ops = ", ".join(dict.fromkeys(ops)) or "views"
    reads = sum(nbytes(n) or 0 for n in kernel.inputs)
    writes = sum(nbytes(n) or 0 for n in kernel.outputs)
    return (str(kernel.index), kernel.name, _clip(ops, 48), format_shape(kernel.domain),
            format_bytes(reads), format_bytes(writes), _share(times.get(kernel.name), total))


def _node_row(index, node, times, total):
    return (str(index), node.name, node.op.name, format_shape(node.shape), "",
            format_bytes(nbytes(node)), _share(times.get(node.name), total))


def _share(seconds, total):
    if seconds is None or not total:
        return ""
    return f"{seconds / total:6.1%}"


def _clip(text, width):
    return text if len(text) <= width else text[:width - 1] + "…"


def _table(rows):
    widths = [max(len(r[c]) for r in rows) for c in range(len(HEADER))]
    right = {0, 4, 5, 6}
    lines = []
    for row in rows:
        cells = [cell.rjust(w) if c in right else cell.ljust(w)
                 for c, (cell, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines

