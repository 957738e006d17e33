"""`Program`: what a backend is handed to run, with every shape concrete.

An executable specializes its graph once per signature of fed shapes (as
jax.jit does): the nodes are copied into a fresh graph with the placeholders'
concrete shapes, and every type rule runs again, so a mismatch between two
fed batch sizes is reported at the op and line where the shapes meet.
"""
from graphc.errors import GraphcError, ShapeError, user_location
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

    @property
    def variables(self):
        return [n for n in self.graph.topological() if n.op.name == "variable"]

    def replace(self, old, new):
        """Every use of `old` (by nodes, outputs and update values) becomes `new`."""
        self.graph.replace_all_uses(old, new)
        self.outputs = [new if o is old else o for o in self.outputs]
        self.updates = [(v, new if value is old else value) for v, value in self.updates]

    def roots(self):
        """The nodes a call must compute: outputs and update values."""
        return self.outputs + [value for _, value in self.updates]

    def copy(self):
        """An independent copy (same ops, names, lines and variable states)."""
        nodes = self.graph.topological()
        return specialize(nodes, self.inputs, self.outputs, self.updates,
                          [n.shape for n in self.inputs], name=self.graph.name)

    def __repr__(self):
        return (f"<Program {len(self.graph)} nodes, {len(self.inputs)} inputs, "
                f"{len(self.outputs)} outputs, {len(self.updates)} updates>")


def specialize(nodes, inputs, outputs, updates, shapes, name="specialized"):
    """Copy `nodes` (a closed set, in topological order) with inputs[i] of shape shapes[i]."""
    graph = Graph(name)
    copies = {}
    concrete = dict(zip(inputs, shapes))
    for node in nodes:
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
    for var, value in updates:
        _check_update_shape(var, copies[value], concrete)
    return Program(graph, [copies[p] for p in inputs], [copies[o] for o in outputs],
                   [(copies[v], copies[value]) for v, value in updates])


def _check_update_shape(var, value, concrete):
    """A new value must have its variable's shape: gc.compile let a None size (a batch)
    stand for the variable's size, and the feeds may not make it so."""
    if tuple(value.shape) != tuple(var.shape):
        fed = ", ".join(f"{p.name}={format_shape(s)}" for p, s in concrete.items())
        raise ShapeError(f"update of variable '{var.name}' of shape {format_shape(var.shape)} "
                         f"with a value of shape {format_shape(value.shape)} (with fed shapes "
                         f"{fed}); nothing was updated", op="compile", loc=user_location())
