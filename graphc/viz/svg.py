"""A View as SVG: drawn by Graphviz's `dot` when it is installed, else by the
pure-Python layered layout (layout.py).

    engine="auto"      Graphviz if `shutil.which("dot")` finds it, else Python
    engine="python"    always the pure-Python renderer
    engine="graphviz"  Graphviz, or an error when it is missing

Guarantees: well-formed XML (an <svg> root in the SVG namespace); each view
node is a <g class="node" id=NODE_ID> and each cluster a <g class="cluster"
id=CLUSTER_ID> (Graphviz keeps the ids DOT passes it); a legend with one
entry per role present and the view's title.
"""
import shutil
import subprocess
from xml.sax.saxutils import escape, quoteattr

from graphc.errors import GraphcError
from graphc.viz.dot import render_dot, shorten, tooltip
from graphc.viz.layout import LINE_HEIGHT, PAD, layout_view
from graphc.viz.model import ROLE_COLORS, ROLE_STROKES

ENGINES = ("auto", "python", "graphviz")
MARGIN, HEADER_LINE = 16, 16
STYLE = """
  text { font-family: Helvetica, Arial, sans-serif; font-size: 11px; fill: #111827; }
  .title { font-size: 13px; font-weight: bold; }
  .node text.head { font-weight: bold; }
  .edge path { fill: none; stroke: #9ca3af; stroke-width: 1; }
  .edge.unfused path { stroke: #b45309; stroke-dasharray: 4 3; }
  .edge text { font-size: 8px; fill: #4b5563; }
  .cluster rect { fill: #fafafa; stroke: #9ca3af; }
  .cluster text { font-size: 10px; fill: #374151; }
  .node, .cluster { cursor: pointer; }
"""


def graphviz_available():
    return shutil.which("dot") is not None


def render_svg(view, engine="auto"):
    if engine not in ENGINES:
        raise GraphcError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}", op="viz")
    if engine == "graphviz" and not graphviz_available():
        raise GraphcError("engine='graphviz' but Graphviz's `dot` is not on PATH "
                          "(use engine='python' or 'auto')", op="viz")
    if engine != "python" and graphviz_available():
        return _graphviz(view)
    return python_svg(view)


def _graphviz(view):
    result = subprocess.run([shutil.which("dot"), "-Tsvg"], input=render_dot(view).encode(),
                            capture_output=True, timeout=600)
    if result.returncode != 0:
        raise GraphcError(f"Graphviz failed: {result.stderr.decode(errors='replace')[:500]}",
                          op="viz")
    text = result.stdout.decode()
    return text[text.index("<svg"):]        # without the XML prolog and DOCTYPE


def python_svg(view):
    """The SVG drawn with the pure-Python layout."""
    layout = layout_view(view)
    boxes = layout.nodes
    curves = [(edge, _curve(boxes[edge.source], boxes[edge.target])) for edge in view.edges]
    xs = [x for _, points in curves for x, _ in points]
    left = min([0.0] + xs)                  # curves may bow out beyond the boxes
    right = max([layout.width, _legend_width(view)] + xs)
    header = (len(view.title) + 1) * HEADER_LINE + MARGIN
    width = right - left + 2 * MARGIN
    height = layout.height + header + 2 * MARGIN
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
           f'viewBox="0 0 {width:.0f} {height:.0f}">',
           f"<style>{STYLE}</style>",
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
           'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#9ca3af"/>'
           '</marker></defs>',
           f'<rect width="{width:.0f}" height="{height:.0f}" fill="white"/>']
    out += _header(view)
    out.append(f'<g transform="translate({MARGIN - left:.1f},{header})">')
    for cluster in view.clusters:
        out.append(_cluster(cluster, layout.clusters[cluster.id]))
    for edge, points in curves:
        out.append(_edge(edge, points))
    for node in view.nodes.values():
        out.append(_node(node, boxes[node.id]))
    out.append("</g></svg>")
    return "\n".join(out) + "\n"


def _header(view):
    out = []
    y = MARGIN + 12
    for i, line in enumerate(view.title):
        cls = ' class="title"' if i == 0 else ""
        out.append(f'<text x="{MARGIN}" y="{y}"{cls}>{escape(line)}</text>')
        y += HEADER_LINE
    x = MARGIN
    out.append('<g class="legend">')
    for role in view.roles:
        out.append(f'<rect x="{x}" y="{y - 10}" width="12" height="12" rx="2" '
                   f'fill="{ROLE_COLORS[role]}" stroke="{ROLE_STROKES[role]}"/>'
                   f'<text x="{x + 16}" y="{y}">{role}</text>')
        x += 24 + 7 * len(role)
    out.append("</g>")
    return out


def _legend_width(view):
    widths = [7 * len(line) for line in view.title]
    widths.append(sum(24 + 7 * len(r) for r in view.roles))
    return max(widths)


def _cluster(cluster, box):
    lines = "".join(f'<text x="{box.x + 8:.1f}" y="{box.y + 14 + i * LINE_HEIGHT:.1f}">'
                    f"{escape(line)}</text>" for i, line in enumerate(cluster.label))
    return (f'<g class="cluster" id={quoteattr(cluster.id)}><title>{escape(tooltip(cluster.info))}'
            f'</title><rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.w:.1f}" '
            f'height="{box.h:.1f}" rx="6"/>{lines}</g>')


def _node(node, box):
    fill = ROLE_COLORS.get(node.role, ROLE_COLORS[None])
    stroke = ROLE_STROKES.get(node.role, ROLE_STROKES[None])
    if node.kind == "source":
        shape = (f'<ellipse cx="{box.cx:.1f}" cy="{box.y + box.h / 2:.1f}" rx="{box.w / 2:.1f}" '
                 f'ry="{box.h / 2:.1f}" fill="{fill}" stroke="{stroke}"/>')
    else:
        dash = ' stroke-dasharray="4 2"' if node.kind == "buffer" else ""
        width = 2.2 if node.kind == "scope" else 1.2
        shape = (f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.w:.1f}" height="{box.h:.1f}" '
                 f'rx="4" fill="{fill}" stroke="{stroke}" stroke-width="{width}"{dash}/>')
    texts = []
    for i, line in enumerate(node.label):
        y = box.y + PAD / 2 + LINE_HEIGHT * (i + 0.75)
        cls = ' class="head"' if i == 0 else ""
        texts.append(f'<text x="{box.cx:.1f}" y="{y:.1f}" text-anchor="middle"{cls}>'
                     f"{escape(line)}</text>")
    return (f'<g class="node" id={quoteattr(node.id)}><title>{escape(tooltip(node.info))}</title>'
            f'{shape}{"".join(texts)}</g>')


def _curve(a, b):
    """Cubic Bezier points from the bottom of box a to the top of box b. An edge
    that skips layers bows out sideways (towards b, more the longer it is) so it
    does not run through the boxes between; one going up loops out to the right."""
    x0, y0, x1, y1 = a.cx, a.y + a.h, b.cx, b.y
    span = y1 - y0
    if span <= 0:
        return [(x0, y0), (x0 + 80, y0 + 60), (x1 + 80, y1 - 60), (x1, y1)]
    if span <= 2.5 * LINE_HEIGHT * 2:       # to the next layer
        return [(x0, y0), (x0, y0 + span / 2), (x1, y1 - span / 2), (x1, y1)]
    side = 1 if x1 >= x0 else -1
    bow = side * min(30 + 0.12 * span, 240)
    return [(x0, y0), (x0 + bow, y0 + span * 0.3), (x1 + bow, y1 - span * 0.3), (x1, y1)]


def _edge(edge, points):
    (x0, y0), c0, c1, (x1, y1) = points
    path = f"M{x0:.1f},{y0:.1f} C{c0[0]:.1f},{c0[1]:.1f} {c1[0]:.1f},{c1[1]:.1f} {x1:.1f},{y1:.1f}"
    t = 0.5 if y1 - y0 <= 2.5 * LINE_HEIGHT * 2 else 0.85     # long edges: near the target
    u = 1 - t
    mx = u ** 3 * x0 + 3 * u * u * t * c0[0] + 3 * u * t * t * c1[0] + t ** 3 * x1
    my = u ** 3 * y0 + 3 * u * u * t * c0[1] + 3 * u * t * t * c1[1] + t ** 3 * y1
    label = edge.label if not edge.reason else f"{edge.label} · {shorten(edge.reason, 40)}"
    cls = "edge unfused" if edge.reason else "edge"
    title = escape(f"{edge.source} -> {edge.target}: {edge.label}"
                   + (f"\nnot fused: {edge.reason}" if edge.reason else ""))
    text = f'<text x="{mx + 3:.1f}" y="{my:.1f}">{escape(label.strip(" ·"))}</text>' \
        if label.strip() else ""
    return (f'<g class="{cls}"><title>{title}</title><path d="{path}" '
            f'marker-end="url(#arrow)"/>{text}</g>')
