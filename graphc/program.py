"""`Program`: what a backend is handed to run, with every shape concrete.

An executable specializes its graph once per signature of fed shapes (as
jax.jit does): the nodes are copied into a fresh graph with the placeholders'
concrete shapes, and every type rule runs again, so a mismatch between two
fed batch sizes is reported at the op and line where the shapes meet.
"""
from graphc.errors import GraphcError
from graphc.graph import Graph, format_shape


class Program:
    """A concrete graph and its interface.

    inputs:    placeholder nodes, in feed order
    outputs:   nodes whose values the call returns
    updates:   (variable node, value node) pairs, written after the call
    variables: every variable node the graph reads
    """

    def __init__(self, graph, inputs, outputs, updates):
        self.graph, self.inputs, self.outputs, self.updates = graph, inputs, outputs, updates
        self.variables = [n for n in graph.topological() if n.op.name == "variable"]

    def __repr__(self):
        return (f"<Program {len(self.graph)} nodes, {len(self.inputs)} inputs, "
                f"{len(self.outputs)} outputs, {len(self.updates)} updates>")


def specialize(nodes, inputs, outputs, updates, shapes):
    """Copy `nodes` (a closed set, in creation order) with inputs[i] of shape shapes[i]."""
    graph = Graph("specialized")
    copies = {}
    concrete = dict(zip(inputs, shapes))
    for node in sorted(nodes, key=lambda n: n.id):
        attrs = node.attrs
        if node in concrete:
            attrs = dict(attrs, shape=concrete[node])
        try:
            copies[node] = graph.copy_node(node, [copies[i] for i in node.inputs], attrs)
        except GraphcError as error:
            fed = ", ".join(f"{p.name}={format_shape(s)}" for p, s in concrete.items())
            error.message += f" (with fed shapes {fed})"
            error.args = (error._text(),)
            raise
    return Program(graph, [copies[p] for p in inputs], [copies[o] for o in outputs],
                   [(copies[v], copies[value]) for v, value in updates])
