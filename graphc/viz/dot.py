"""A View as Graphviz DOT text.

Guarantees: one DOT node per view node (named by its id, with `id=` set so
that Graphviz's SVG keeps the same element ids), one DOT edge per view edge,
one `cluster_*` subgraph per view cluster and no other cluster; the legend
and title are the graph's label (an HTML-like table), not extra nodes.
"""
from graphc.viz.model import ROLE_COLORS, ROLE_STROKES

SHAPES = {"op": "box", "source": "ellipse", "buffer": "box", "scope": "box3d"}
STYLES = {"op": "rounded,filled", "source": "filled", "buffer": "rounded,filled,dashed",
          "scope": "filled"}


def quote(text):
    """A DOT double-quoted string."""
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def html_escape(text):
    return (str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def render_dot(view):
    lines = [f"digraph {quote(view.stage)} {{",
             "  graph [rankdir=TB, fontname=\"Helvetica\", fontsize=11, labelloc=t, "
             f"nodesep=0.25, ranksep=0.35, label={_legend(view)}];",
             "  node [fontname=\"Helvetica\", fontsize=10, penwidth=1.2];",
             "  edge [fontname=\"Helvetica\", fontsize=8, color=\"#6b7280\", "
             "fontcolor=\"#4b5563\", arrowsize=0.6];"]
    clustered = set()
    for cluster in view.clusters:
        lines.append(f"  subgraph {cluster.id} {{")
        lines.append(f"    graph [id={quote(cluster.id)}, label={quote(_lines(cluster.label))}, "
                     "style=\"rounded,filled\", fillcolor=\"#fafafa\", color=\"#9ca3af\", "
                     "fontsize=10, labeljust=l];")
        for member in cluster.members:
            lines.append(f"    {member};")
            clustered.add(member)
        lines.append("  }")
    for node in view.nodes.values():
        lines.append(f"  {node.id} [{_node_attrs(node)}];")
    for edge in view.edges:
        lines.append(f"  {edge.source} -> {edge.target} [{_edge_attrs(edge)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _lines(label):
    return "\n".join(label)


def _node_attrs(node):
    attrs = {"id": node.id, "label": _lines(node.label),
             "shape": SHAPES.get(node.kind, "box"), "style": STYLES.get(node.kind, "filled"),
             "fillcolor": ROLE_COLORS.get(node.role, ROLE_COLORS[None]),
             "color": ROLE_STROKES.get(node.role, ROLE_STROKES[None]),
             "tooltip": tooltip(node.info)}
    return ", ".join(f"{k}={quote(v)}" for k, v in attrs.items())


def _edge_attrs(edge):
    attrs = {"label": edge.label}
    if edge.reason:
        attrs["label"] = f"{edge.label}\n{shorten(edge.reason, 40)}".strip()
        attrs["tooltip"] = edge.reason
        attrs["style"] = "dashed"
        attrs["color"] = "#b45309"
    return ", ".join(f"{k}={quote(v)}" for k, v in attrs.items())


def tooltip(info):
    return "\n".join(f"{k}: {v}" for k, v in info.items())


def shorten(text, width):
    return text if len(text) <= width else text[:width - 1] + "…"


def _legend(view):
    """The title and one coloured cell per role present, as an HTML-like label."""
    span = max(1, len(view.roles))
    title = "".join(f"<TR><TD COLSPAN=\"{span}\">{html_escape(line)}</TD></TR>"
                    for line in view.title)
    cells = "".join(f"<TD BGCOLOR=\"{ROLE_COLORS[role]}\">{role}</TD>" for role in view.roles)
    legend = f"<TR>{cells}</TR>" if cells else ""
    return f"<<TABLE BORDER=\"0\" CELLSPACING=\"4\">{title}{legend}</TABLE>>"
