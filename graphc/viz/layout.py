"""A layered (Sugiyama-style) layout in pure Python, on networkx: no Graphviz.

Stages, each linear in the graph's size per sweep, so 2,000 nodes take well
under a second:
1. layers: the longest path from the sources, then each item as late as its
   readers allow; cycles (possible between scope boxes) are broken by taking
   the strongly connected components in topological order and leaving the
   edges that go back inside one out of the layering;
2. order within a layer: barycenter sweeps, down then up, a few rounds;
3. x: each node pulled towards the mean x of its neighbours, overlaps
   resolved left to right, alternately from predecessors and successors;
4. y: layers stacked, each as tall as its tallest item.
Clusters are laid out first, inside, and then placed as one big item, so a
cluster's rectangle never overlaps another item.

Guarantees: items of one layer never overlap; every item lies in
[0, width] x [0, height]; the same input gives the same layout.
"""
import networkx as nx

CHAR_WIDTH, LINE_HEIGHT, PAD = 6.4, 14, 8
RANK_SEP, NODE_SEP, CLUSTER_PAD = 34, 16, 10
SWEEPS = 4


class Box:
    """A rectangle: top-left (x, y), width w, height h."""

    __slots__ = ("x", "y", "w", "h")

    def __init__(self, x, y, w, h):
        self.x, self.y, self.w, self.h = x, y, w, h

    @property
    def cx(self):
        return self.x + self.w / 2

    def __repr__(self):
        return f"<Box {self.x:.0f},{self.y:.0f} {self.w:.0f}x{self.h:.0f}>"


class Layout:
    """Boxes of the nodes and clusters of a View, and the drawing's size."""

    def __init__(self, nodes, clusters, width, height):
        self.nodes, self.clusters, self.width, self.height = nodes, clusters, width, height


def measure(label):
    """(width, height) of a box holding these lines of text."""
    width = max((len(line) for line in label), default=1) * CHAR_WIDTH + 2 * PAD
    return max(width, 40.0), LINE_HEIGHT * max(len(label), 1) + PAD


def layout_view(view):
    """Positions for every node and cluster of `view`."""
    cluster_of = view.cluster_of()
    index = {node_id: i for i, node_id in enumerate(view.nodes)}
    inner, sizes, label_height = {}, {}, {}
    for cluster in view.clusters:
        members = sorted(cluster.members, key=index.get)
        positions, (w, h) = layered(members, _edges_within(view, set(members)),
                                    {m: measure(view.nodes[m].label) for m in members})
        inner[cluster.id] = positions
        label_height[cluster.id] = LINE_HEIGHT * len(cluster.label) + PAD
        label_width = max(len(line) for line in cluster.label) * CHAR_WIDTH
        sizes[cluster.id] = (max(w, label_width) + 2 * CLUSTER_PAD,
                             h + 2 * CLUSTER_PAD + label_height[cluster.id])
    item_of = {n: cluster_of.get(n, n) for n in view.nodes}
    order = list(dict.fromkeys(item_of[n] for n in view.nodes))
    for node_id in view.nodes:
        if node_id not in cluster_of:
            sizes[node_id] = measure(view.nodes[node_id].label)
    outer_edges = list(dict.fromkeys((item_of[e.source], item_of[e.target]) for e in view.edges
                                     if item_of[e.source] != item_of[e.target]))
    placed, (width, height) = layered(order, outer_edges, sizes)
    nodes, clusters = {}, {}
    for item, (x, y) in placed.items():
        w, h = sizes[item]
        if item in inner:
            clusters[item] = Box(x, y, w, h)
            top = y + CLUSTER_PAD + label_height[item]
            for member, (mx, my) in inner[item].items():
                mw, mh = measure(view.nodes[member].label)
                nodes[member] = Box(x + CLUSTER_PAD + mx, top + my, mw, mh)
        else:
            nodes[item] = Box(x, y, w, h)
    return Layout(nodes, clusters, width, height)


def _edges_within(view, members):
    return list(dict.fromkeys((e.source, e.target) for e in view.edges
                              if e.source in members and e.target in members))


def layered(order, edges, sizes):
    """({item: (x, y) of its top-left corner}, (width, height)) for items in `order`."""
    if not order:
        return {}, (0.0, 0.0)
    order = _acyclic_order(order, edges)
    rank = {item: i for i, item in enumerate(order)}
    dag = nx.DiGraph()
    dag.add_nodes_from(order)
    dag.add_edges_from((u, v) for u, v in edges if rank[u] < rank[v])
    layers = _assign_layers(dag, order)
    _order_layers(dag, layers)
    x = _assign_x(dag, layers, sizes)
    positions, y = {}, 0.0
    for layer in layers:
        height = max(sizes[item][1] for item in layer)
        for item in layer:
            w, h = sizes[item]
            positions[item] = (x[item] - w / 2, y + (height - h) / 2)
        y += height + RANK_SEP
    left = min(px for px, _ in positions.values())
    positions = {item: (px - left, py) for item, (px, py) in positions.items()}
    width = max(px + sizes[item][0] for item, (px, _) in positions.items())
    return positions, (width, y - RANK_SEP)


def _acyclic_order(order, edges):
    """`order` made topological where the graph allows: strongly connected components
    in topological order (ties: the earliest item first), each in the given order."""
    graph = nx.DiGraph()
    graph.add_nodes_from(order)
    graph.add_edges_from((u, v) for u, v in edges if u != v)
    rank = {item: i for i, item in enumerate(order)}
    condensed = nx.condensation(graph)
    members = condensed.graph["mapping"]
    first = {c: min(rank[i] for i in condensed.nodes[c]["members"]) for c in condensed}
    component_rank = {c: i for i, c in enumerate(
        nx.lexicographical_topological_sort(condensed, key=first.get))}
    return sorted(order, key=lambda item: (component_rank[members[item]], rank[item]))


def _assign_layers(dag, order):
    """Longest path from the sources, then each node as late as its readers allow
    (so a value sits just above its first reader, not at the top)."""
    layer = {}
    for item in order:                  # a topological order of `dag`
        layer[item] = max((layer[p] + 1 for p in dag.predecessors(item)), default=0)
    for item in reversed(order):
        readers = [layer[s] for s in dag.successors(item)]
        if readers:
            layer[item] = max(layer[item], min(readers) - 1)
    layers = [[] for _ in range(max(layer.values()) + 1)]
    for item in order:
        layers[layer[item]].append(item)
    return [layer for layer in layers if layer]


def _order_layers(dag, layers):
    """Barycenter sweeps; positions are fractions of the layer's length."""
    position = {}

    def remember(layer):
        for i, item in enumerate(layer):
            position[item] = (i + 0.5) / len(layer)

    for layer in layers:
        remember(layer)
    for _ in range(SWEEPS):
        for neighbours, sequence in ((dag.predecessors, layers[1:]),
                                     (dag.successors, layers[-2::-1])):
            for layer in sequence:
                def barycenter(item):
                    near = [position[n] for n in neighbours(item)]
                    return sum(near) / len(near) if near else position[item]
                layer.sort(key=barycenter)
                remember(layer)


def _assign_x(dag, layers, sizes):
    """Centers: packed first, then pulled towards neighbours without overlapping."""
    x = {}
    for layer in layers:
        cursor = 0.0
        for item in layer:
            w = sizes[item][0]
            x[item] = cursor + w / 2
            cursor += w + NODE_SEP
    for _ in range(SWEEPS):
        for neighbours, sequence in ((dag.predecessors, layers), (dag.successors, layers[::-1])):
            for layer in sequence:
                wanted = []
                for item in layer:
                    near = [x[n] for n in neighbours(item)]
                    wanted.append(sum(near) / len(near) if near else x[item])
                for item, center in zip(layer, _pack(wanted, [sizes[i][0] for i in layer])):
                    x[item] = center
    return x


def _pack(wanted, widths):
    """Centers as close to `wanted` as the order and NODE_SEP allow."""
    n = len(wanted)
    left = [0.0] * n
    for i in range(n):
        left[i] = wanted[i] - widths[i] / 2
        if i:
            left[i] = max(left[i], left[i - 1] + widths[i - 1] + NODE_SEP)
    right = [0.0] * n
    for i in range(n - 1, -1, -1):
        right[i] = wanted[i] - widths[i] / 2
        if i < n - 1:
            right[i] = min(right[i], right[i + 1] - widths[i] - NODE_SEP)
    centers = [(a + b) / 2 + w / 2 for a, b, w in zip(left, right, widths)]
    for i in range(1, n):
        low = centers[i - 1] + widths[i - 1] / 2 + NODE_SEP + widths[i] / 2
        centers[i] = max(centers[i], low)
    return centers
