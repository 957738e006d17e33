"""Collapsing name scopes into boxes, so that a big graph stays readable.

At depth d, every node with a scope path (`VNode.group`: its
`gc.name_scope` / module path; gradients under "grad", unscoped update
expressions under "update") is replaced by one box for the first d parts of
its path (all of it when shorter); unscoped nodes stay as they are. So depth
1 shows one box per top-level scope, and depth 2 opens each of them one
level. Edges between boxes are merged: one edge per pair, carrying the
number of distinct values that cross it and their total bytes.

Guarantees: the result draws every node of the view either as itself or
inside exactly one box; no edge joins a box to itself.
"""
import collections
import re
import zlib

from graphc.errors import GraphcError
from graphc.viz.model import ROLES, VEdge, View, VNode


def collapse(view, depth):
    """A View with scopes deeper than `depth` folded into boxes (None: unchanged)."""
    if depth is None:
        return view
    if view.clusters:
        raise GraphcError("depth folds name scopes of graph stages; the fused stage draws "
                          "every kernel (pass depth=None)", op="viz")
    if not isinstance(depth, int) or depth < 1:
        raise GraphcError(f"depth must be a positive int or None, got {depth!r}", op="viz")
    representative, members = {}, collections.defaultdict(list)
    for node in view.nodes.values():
        if node.group:
            path = "/".join(node.group[:depth])
            representative[node.id] = box_id(path)
            members[path].append(node)
        else:
            representative[node.id] = node.id
    boxes = {box_id(path): _box(path, nodes) for path, nodes in members.items()}
    drawn = []
    for node in view.nodes.values():        # boxes appear where their first member was
        rep = representative[node.id]
        if rep == node.id:
            drawn.append(node)
        elif rep in boxes:
            drawn.append(boxes.pop(rep))
    edges = _merge_edges(view.edges, representative)
    title = view.title + [f"scopes collapsed at depth {depth}: {len(drawn)} boxes"]
    return View(view.stage, title, drawn, edges)


def box_id(path):
    """A stable identifier: readable, and distinct for paths that differ in punctuation."""
    return "scope_" + re.sub(r"[^A-Za-z0-9_]", "_", path) + f"_{zlib.crc32(path.encode()):08x}"


def _box(path, nodes):
    roles = collections.Counter(n.role for n in nodes)
    role = max(ROLES, key=lambda r: roles.get(r, 0)) if any(roles.get(r) for r in ROLES) else None
    ops = collections.Counter(n.info.get("op", n.kind) for n in nodes)
    top = ", ".join(f"{op} x{count}" for op, count in ops.most_common(3))
    info = {"scope": path, "nodes": str(len(nodes)),
            "roles": ", ".join(f"{r} {c}" for r, c in roles.items() if r),
            "ops": ", ".join(f"{op} x{count}" for op, count in ops.most_common())}
    return VNode(box_id(path), [path, f"{len(nodes)} nodes", top], role, "scope",
                 tuple(path.split("/")), info)


def _merge_edges(edges, representative):
    """One edge per (box, box) pair: the number of distinct values crossing it and
    their total bytes (a value read twice across the boundary counts once)."""
    values = {}                                 # (rep, rep) -> {producer id: bytes}
    for edge in edges:
        key = (representative[edge.source], representative[edge.target])
        if key[0] != key[1]:
            values.setdefault(key, {})[edge.source] = edge.nbytes
    merged = []
    for (source, target), sizes in values.items():
        known = None if None in sizes.values() else sum(sizes.values())
        merged.append(VEdge(source, target, nbytes=known, count=len(sizes)))
    return merged
