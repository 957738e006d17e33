"""The memory picture: the arena of a memory plan (passes/memplan.py) as SVG.

x is the schedule (kernel i runs at step i; the last column is the copy-out
after the last kernel), y the arena offset (bytes, drawn to scale from the
top). Each buffer is a rectangle over its live interval [start, end] and
its bytes [offset, offset + nbytes), coloured by the role of the value it
holds; a buffer that took another's bytes in place is hatched and names it.
The title gives the arena, naive and lower-bound bytes; a dashed line marks
the lower bound.

Guarantees: one <g class="buffer" id="buf_N"> per arena buffer of the plan;
well-formed SVG; `memory_data` lists the same buffers as JSON.
"""
from xml.sax.saxutils import escape, quoteattr

from graphc.graph import format_shape
from graphc.viz.model import ROLE_COLORS, ROLE_STROKES, ROLES, format_bytes

PLOT_HEIGHT, LEFT, TOP, BOTTOM, RIGHT = 520, 90, 70, 150, 24


def buffer_id(node):
    return f"buf_{node.id}"


def memory_data(program, role_of):
    """The plan as plain data: steps, buffers and totals."""
    plan, kernels = program.memory, program.fusion.kernels
    buffers = []
    for node, b in sorted(plan.buffers.items(), key=lambda item: (item[1].offset, item[1].start)):
        buffers.append({"id": buffer_id(node), "node": node.name, "op": node.op.name,
                        "shape": format_shape(node.shape), "dtype": str(node.dtype),
                        "offset": b.offset, "bytes": b.nbytes, "start": b.start, "end": b.end,
                        "shares": b.shares.name if b.shares is not None else None,
                        "role": role_of(node),
                        "source line": f"{node.loc.file}:{node.loc.line}" if node.loc else ""})
    return {"format": "graphc-viz", "version": 1, "stage": "memory",
            "steps": [k.name for k in kernels] + ["copy-out"],
            "arena_bytes": plan.arena_bytes, "naive_bytes": plan.naive_bytes,
            "lower_bound": plan.lower_bound, "buffers": buffers,
            "variable_writes": [{"variable": v.name, "value": u.name, "how": how}
                                for v, u, how in plan.writes]}


def memory_title(data):
    ratio = data["arena_bytes"] / data["lower_bound"] if data["lower_bound"] else 1.0
    inplace = sum(1 for b in data["buffers"] if b["shares"])
    return [f"memory plan: arena {format_bytes(data['arena_bytes'])} ({data['arena_bytes']} B), "
            f"naive {format_bytes(data['naive_bytes'])}, lower bound "
            f"{format_bytes(data['lower_bound'])} ({ratio:.3f}x)",
            f"{len(data['buffers'])} buffers, {inplace} in place, "
            f"{len(data['steps']) - 1} kernels"]


def memory_svg(program, role_of):
    data = memory_data(program, role_of)
    columns = len(data["steps"])
    col = max(24.0, min(90.0, 1100.0 / columns))
    width = LEFT + columns * col + RIGHT
    height = TOP + PLOT_HEIGHT + BOTTOM
    scale = PLOT_HEIGHT / max(data["arena_bytes"], 1)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height}" '
           f'viewBox="0 0 {width:.0f} {height}">',
           "<style>text { font-family: Helvetica, Arial, sans-serif; font-size: 10px; }"
           " .title { font-size: 13px; font-weight: bold; } .buffer { cursor: pointer; }</style>",
           '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
           'patternTransform="rotate(45)"><line x1="0" y1="0" x2="0" y2="6" stroke="#374151" '
           'stroke-width="1.2" stroke-opacity="0.45"/></pattern></defs>',
           f'<rect width="{width:.0f}" height="{height}" fill="white"/>']
    title = memory_title(data)
    out.append(f'<text x="12" y="20" class="title">{escape(title[0])}</text>')
    out.append(f'<text x="12" y="36">{escape(title[1])}</text>')
    out += _legend(data, 12, 54)
    out += _axes(data, col, scale)
    for b in data["buffers"]:
        out.append(_buffer(b, col, scale))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _legend(data, x, y):
    out = []
    for role in [r for r in ROLES if any(b["role"] == r for b in data["buffers"])]:
        out.append(f'<rect x="{x}" y="{y - 9}" width="11" height="11" fill="{ROLE_COLORS[role]}" '
                   f'stroke="{ROLE_STROKES[role]}"/><text x="{x + 15}" y="{y}">{role}</text>')
        x += 22 + 6 * len(role)
    out.append(f'<rect x="{x}" y="{y - 9}" width="11" height="11" fill="url(#hatch)" '
               f'stroke="#374151"/><text x="{x + 15}" y="{y}">in place (shares a buffer)</text>')
    return out


def _axes(data, col, scale):
    out = [f'<rect x="{LEFT}" y="{TOP}" width="{col * len(data["steps"]):.1f}" '
           f'height="{PLOT_HEIGHT}" fill="#fafafa" stroke="#d1d5db"/>']
    arena = data["arena_bytes"]
    for i in range(5):
        value = arena * i / 4
        y = TOP + value * scale
        out.append(f'<text x="{LEFT - 6}" y="{y + 3:.1f}" text-anchor="end">'
                   f"{escape(format_bytes(int(value)))}</text>")
    bottom = TOP + PLOT_HEIGHT
    for i, name in enumerate(data["steps"]):
        x = LEFT + (i + 0.5) * col
        out.append(f'<text transform="translate({x + 3:.1f},{bottom + 8}) rotate(50)">'
                   f"{escape(f'{i}: {name}'[:28])}</text>")
    if data["lower_bound"]:
        y = TOP + data["lower_bound"] * scale
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + col * len(data["steps"]):.1f}" '
                   f'y2="{y:.1f}" stroke="#b91c1c" stroke-dasharray="5 3"/>'
                   f'<text x="{LEFT + 4}" y="{y - 3:.1f}" fill="#b91c1c">lower bound</text>')
    out.append(f'<text x="14" y="{TOP + PLOT_HEIGHT / 2:.0f}" transform="rotate(-90 14 '
               f'{TOP + PLOT_HEIGHT / 2:.0f})" text-anchor="middle">arena offset</text>')
    return out


def _buffer(b, col, scale):
    x = LEFT + b["start"] * col + 1
    w = (b["end"] - b["start"] + 1) * col - 2
    y = TOP + b["offset"] * scale
    h = max(b["bytes"] * scale, 1.5)
    fill, stroke = ROLE_COLORS.get(b["role"], ROLE_COLORS[None]), ROLE_STROKES.get(b["role"])
    tip = (f"{b['node']} = {b['op']} {b['shape']} {b['dtype']}\n{b['bytes']} B at offset "
           f"{b['offset']}, steps [{b['start']}, {b['end']}]"
           + (f"\nin place of {b['shares']}" if b["shares"] else ""))
    parts = [f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" fill="{fill}" '
             f'stroke="{stroke}"/>']
    if b["shares"]:
        parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" '
                     'fill="url(#hatch)"/>')
    text = b["node"] + (f" (in place of {b['shares']})" if b["shares"] else "")
    if h >= 11 and w >= 6 * min(len(text), 8):
        shown = text if len(text) * 6 <= w else text[:max(int(w / 6) - 1, 1)] + "…"
        baseline = y + min(h / 2 + 3, 12)
        parts.append(f'<text x="{x + 3:.1f}" y="{baseline:.1f}">{escape(shown)}</text>')
    return (f'<g class="buffer" id={quoteattr(b["id"])}><title>{escape(tip)}</title>'
            f'{"".join(parts)}</g>')
