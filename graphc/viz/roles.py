"""Which part of a training step a node belongs to: forward, backward or update.

Backward nodes are the ones gc.grad created (it tags them: `node.role ==
"backward"`, kept by every copy). The rest is told apart by structure:
forward nodes feed an output or a gradient; update nodes feed only the
update expressions (an optimizer's arithmetic, its velocities, its learning
rate). Passes make new nodes (lowering, simplification, folding) that carry
no tag; they take the role of the node they were derived from, found by name
(a pass names a derived node after its origin: `log_softmax_max`,
`add_3_s`, `mul_folded`).
"""
from graphc.viz.model import BACKWARD, FORWARD, UPDATE


def built_roles(nodes, outputs, updates):
    """{node: role} for a graph as built; `updates` are (variable, value) pairs."""
    backward = {n for n in nodes if n.role == BACKWARD}
    seen = set()
    stack = list(outputs) + list(backward)
    while stack:
        node = stack.pop()
        if node not in seen:
            seen.add(node)
            stack.extend(node.inputs)
    forward = seen - backward
    roles = {}
    for node in nodes:
        roles[node] = BACKWARD if node in backward else FORWARD if node in forward else UPDATE
    if not outputs and not updates and not backward:
        return {node: FORWARD for node in nodes}
    return roles


class RoleBook:
    """Roles by node name, taken from the graph as built; answers for copies of it
    (passes' snapshots, the optimized program) and for nodes passes derived."""

    def __init__(self, roles):
        self.by_name = {node.name: role for node, role in roles.items()}

    def __call__(self, node):
        role = self.by_name.get(node.name)
        if role is not None:
            return role
        origin = _origin(node.name, self.by_name)
        if origin is not None:
            return self.by_name[origin]
        return BACKWARD if node.role == BACKWARD else FORWARD


def _origin(name, known):
    """The longest known name that `name` extends with '_suffix' parts."""
    parts = name.split("_")
    for cut in range(len(parts) - 1, 0, -1):
        candidate = "_".join(parts[:cut])
        if candidate in known:
            return candidate
    return None
