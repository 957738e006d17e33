"""A View as JSON, for other tools.

    {"format": "graphc-viz", "version": 1, "stage": ..., "title": [...],
     "nodes":    [{"id", "label", "role", "kind", "group", "info": {name, op, shape, ...}}],
     "edges":    [{"source", "target", "bytes", "count", "reason"}],
     "clusters": [{"id", "label", "members", "info", "code"}]}

Guarantees: the nodes and edges are exactly the view's (for an uncollapsed
graph stage: one node per graph node, one edge per producer-consumer pair);
`bytes` is null where a dimension is unknown.
"""
import json

FORMAT, VERSION = "graphc-viz", 1


def view_data(view):
    return {
        "format": FORMAT, "version": VERSION, "stage": view.stage, "title": view.title,
        "nodes": [{"id": n.id, "label": n.label, "role": n.role, "kind": n.kind,
                   "group": list(n.group), "info": n.info} for n in view.nodes.values()],
        "edges": [{"source": e.source, "target": e.target, "bytes": e.nbytes,
                   "count": e.count, "reason": e.reason} for e in view.edges],
        "clusters": [{"id": c.id, "label": c.label, "members": c.members, "info": c.info,
                      "code": c.code} for c in view.clusters],
    }


def render_json(view):
    return json.dumps(view_data(view), indent=1) + "\n"
