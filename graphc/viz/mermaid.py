"""A View as Mermaid flowchart text (renders in GitHub and other Markdown viewers).

Guarantees: one Mermaid node statement `ID["label"]` per view node, on its
own line; one `subgraph` per cluster; one link per edge; roles as classes
(forward, backward, update), shown in a `legend` subgraph of one node per
role present (ids `legend_<role>`).
"""
from graphc.viz.model import ROLE_COLORS, ROLE_STROKES, ROLES

SHAPES = {"source": ('(["', '"])'), "scope": ('[["', '"]]')}


def escape(text):
    """Mermaid label text: quotes and angle brackets as entity codes."""
    return (str(text).replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;")
            .replace(">", "#gt;"))


def render_mermaid(view):
    lines = ["flowchart TD", f"  %% {escape(' / '.join(view.title))}"]
    for role in ROLES:
        lines.append(f"  classDef {role} fill:{ROLE_COLORS[role]},stroke:{ROLE_STROKES[role]}")
    clustered = view.cluster_of()
    for cluster in view.clusters:
        lines.append(f'  subgraph {cluster.id}["{escape(" · ".join(cluster.label))}"]')
        for member in cluster.members:
            lines.append("    " + _node(view.nodes[member]))
        lines.append("  end")
    for node in view.nodes.values():
        if node.id not in clustered:
            lines.append("  " + _node(node))
    for edge in view.edges:
        label = edge.label + (f" · not fused: {edge.reason}" if edge.reason else "")
        arrow = "-.->" if edge.reason else "-->"
        text = f'|"{escape(label)}"|' if label else ""
        lines.append(f"  {edge.source} {arrow}{text} {edge.target}")
    if view.roles:
        lines.append('  subgraph legend["legend"]')
        lines += [f'    legend_{role}["{role}"]:::{role}' for role in view.roles]
        lines.append("  end")
    for role in ROLES:
        ids = [n.id for n in view.nodes.values() if n.role == role]
        if ids:
            lines.append(f"  class {','.join(ids)} {role}")
    return "\n".join(lines) + "\n"


def _node(node):
    start, end = SHAPES.get(node.kind, ('["', '"]'))
    return f"{node.id}{start}{'<br/>'.join(escape(line) for line in node.label)}{end}"
