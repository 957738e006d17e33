"""gc.grad tags the nodes it makes; roles follow copies and lowered nodes."""
import graphc as gc
from graphc.program import specialize
from graphc.viz.roles import RoleBook, built_roles


def test_grad_marks_the_nodes_it_creates_and_nothing_else():
    x = gc.placeholder((3,), name="x")
    y = gc.sum(gc.tanh(x))
    before = set(x.graph.nx.nodes)
    (g,) = gc.grad(y, [x])
    made = set(x.graph.nx.nodes) - before
    assert made and all(n.role == "backward" for n in made)
    assert all(n.role is None for n in before)
    z = g * 2.0                                 # built after grad returned
    assert z.node.role is None


def test_copies_keep_the_role():
    x = gc.placeholder((3,), name="x")
    y = gc.sum(x * x)
    (g,) = gc.grad(y, [x])
    nodes = sorted(x.graph.ancestors([g.node]), key=lambda n: n.id)
    program = specialize(nodes, [x.node], [g.node], [], [(3,)])
    copies = {n.name: n.role for n in program.graph.topological()}
    assert copies == {n.name: n.role for n in nodes}


def test_role_book_answers_for_derived_names():
    x = gc.placeholder((3,), name="x")
    y = gc.mean(gc.exp(x))
    roles = built_roles(list(x.graph.nx.nodes), [y.node], [])
    book = RoleBook(roles)

    class Derived:
        name, role = y.node.name + "_sum_s", None
    assert book(Derived) == "forward"


def test_without_outputs_everything_is_forward():
    x = gc.placeholder((3,), name="x")
    y = gc.exp(x)
    assert set(built_roles([x.node, y.node], [], []).values()) == {"forward"}
