"""What every picture is printed from: a `View`, a neutral description of a
drawing (nodes, edges, clusters, a title and a legend) that knows nothing of
DOT, SVG or Mermaid. The stages (stages.py, fused.py) build views from graphs;
the printers (dot.py, svg.py, mermaid.py, json_format.py, html.py) render them.

Guarantees: node ids are unique strings made of letters, digits and '_'
(safe as DOT, SVG and Mermaid identifiers); every edge joins two nodes of the
view; a node is a member of at most one cluster.
"""
import numpy as np

from graphc.graph import format_shape

FORWARD, BACKWARD, UPDATE = "forward", "backward", "update"
ROLES = (FORWARD, BACKWARD, UPDATE)
ROLE_COLORS = {FORWARD: "#dbeafe", BACKWARD: "#fde2e4", UPDATE: "#dcfce7", None: "#f3f4f6"}
ROLE_STROKES = {FORWARD: "#3b6fb6", BACKWARD: "#b4424f", UPDATE: "#2f8a4a", None: "#6b7280"}
SOURCE_OPS = ("placeholder", "variable", "constant")


class VNode:
    """One drawn box: a graph node, or a collapsed scope ("scope" kind).

    kind:  "op", "source" (placeholder, variable, constant), "scope", or "buffer"
           (a node a kernel reads from memory without computing it)
    label: lines of text drawn in the box
    group: the scope path used to collapse it (a tuple of names)
    info:  {field: text} for the side panel and JSON
    """

    def __init__(self, id, label, role=None, kind="op", group=(), info=None, node=None):
        self.id, self.label, self.role, self.kind = id, list(label), role, kind
        self.group, self.info, self.node = tuple(group), dict(info or {}), node

    def __repr__(self):
        return f"<VNode {self.id} {' | '.join(self.label)}>"


class VEdge:
    """A value flowing from `source` to `target`: its bytes, and (fused stage) why
    the producer and the consumer were not fused; `count` > 1 for merged edges."""

    def __init__(self, source, target, nbytes=None, reason=None, count=1):
        self.source, self.target, self.nbytes = source, target, nbytes
        self.reason, self.count = reason, count

    @property
    def label(self):
        text = format_bytes(self.nbytes)
        if self.count > 1:
            text = f"{self.count} values, {text}" if text else f"{self.count} values"
        return text

    def __repr__(self):
        return f"<VEdge {self.source} -> {self.target} {self.label}>"


class VCluster:
    """A box around nodes (a kernel): `members` are node ids; `info` as for nodes,
    `code` the generated source shown in the side panel."""

    def __init__(self, id, label, members, info=None, code=None):
        self.id, self.label, self.members = id, list(label), list(members)
        self.info, self.code = dict(info or {}), code


class View:
    """A drawing: `nodes` {id: VNode} in a topological order where the graph has one,
    `edges`, `clusters`, a `title` (list of lines) and the stage it shows."""

    def __init__(self, stage, title, nodes=(), edges=(), clusters=()):
        self.stage, self.title = stage, list(title)
        self.nodes = {n.id: n for n in nodes}
        self.edges, self.clusters = list(edges), list(clusters)

    @property
    def roles(self):
        """The roles present, in legend order."""
        present = {n.role for n in self.nodes.values()}
        return [r for r in ROLES if r in present]

    def cluster_of(self):
        """{node id: cluster id}."""
        return {m: c.id for c in self.clusters for m in c.members}

    def __repr__(self):
        return (f"<View {self.stage}: {len(self.nodes)} nodes, {len(self.edges)} edges, "
                f"{len(self.clusters)} clusters>")


# -- describing graph nodes ----------------------------------------------------------------

def node_id(node):
    return f"n{node.id}"


def nbytes(node):
    """Bytes of the node's value, or None while a dimension is unknown."""
    if any(d is None for d in node.shape):
        return None
    return int(np.prod(node.shape, dtype=np.int64)) * np.dtype(node.dtype).itemsize


def format_bytes(n):
    if n is None:
        return ""
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def type_text(node):
    return f"{format_shape(node.shape)} {node.dtype}"


def node_label(node):
    """Op, shape and dtype; a source shows its name first (x, fc1_w, ...)."""
    if node.op.name in SOURCE_OPS:
        return [node.name, node.op.name, type_text(node)]
    return [node.op.name, type_text(node)]


def node_info(node, role):
    loc = f"{node.loc.file}:{node.loc.line}" if node.loc is not None else ""
    info = {"name": node.name, "op": node.op.name, "shape": format_shape(node.shape),
            "dtype": str(node.dtype), "bytes": format_bytes(nbytes(node)),
            "source line": loc, "scope": node.scope, "role": role or ""}
    return {k: v for k, v in info.items() if v != ""}


def vnode(node, role, kind=None):
    kind = kind or ("source" if node.op.name in SOURCE_OPS else "op")
    return VNode(node_id(node), node_label(node), role, kind, scope_group(node, role),
                 node_info(node, role), node)


def scope_group(node, role):
    """The path a node collapses along: its name scope; gradients under "grad" and
    unscoped update expressions under "update", so a training step folds into a
    few boxes."""
    parts = tuple(p for p in node.scope.split("/") if p) if node.scope else ()
    if role == BACKWARD:
        return ("grad",) + parts
    if role == UPDATE and not parts and node.op.name not in ("placeholder", "variable"):
        return ("update",)
    return parts


def graph_edges(nodes):
    """One VEdge per producer -> consumer pair among `nodes` (operand slots merged)."""
    inside = set(nodes)
    edges = []
    for node in nodes:
        for producer in dict.fromkeys(node.inputs):
            if producer in inside:
                edges.append(VEdge(node_id(producer), node_id(node), nbytes(producer)))
    return edges
