"""The graph's deterministic topological order (graphc/graph.py)."""
import networkx as nx
import pytest

import graphc as gc
from graphc.graph import Graph


def test_topological_order_is_networkxs_lexicographic_order_by_id_after_a_rewrite():
    """Of the nodes whose inputs are placed, the one created first; a node created
    after its user (a pass's rewrite) still comes before it."""
    with Graph("rewritten") as graph:
        x = gc.placeholder((3,), name="x")
        a = x + 1.0
        b = a * 2.0
        c = gc.exp(b) - a
        later = x - 3.0                     # created after b and c, then read by both
    graph.replace_all_uses(a.node, later.node)
    order = graph.topological()
    assert order == list(nx.lexicographical_topological_sort(graph.nx, key=lambda n: n.id))
    position = {node: k for k, node in enumerate(order)}
    assert all(position[i] < position[n] for n in order for i in n.inputs)
    assert position[later.node] < position[b.node] < position[c.node]
    assert a.node not in graph.ancestors([c.node])


def test_a_cycle_has_no_topological_order():
    with Graph("cyclic") as graph:
        x = gc.placeholder((3,), name="x")
        b = (x + 1.0) * 2.0
    graph.nx.add_edge(b.node, b.node.inputs[0])
    with pytest.raises(nx.NetworkXUnfeasible):
        graph.topological()
