"""The stages a picture can show, and how to get each from what the user holds.

    built      the graph as the user built it (no node made by gc.grad, nor one
               that reads such a node)
    autodiff   the whole graph after gc.grad: forward, backward and update parts
    <pass>     the program after each pass of graphc.passes.pipeline's default
               pipeline (simplify, cse, fold, dce, lower, fuse, memplan)
    fused      one cluster per kernel (fused.py)
    memory     the memory plan (memory.py; SVG, HTML or JSON only)

`Subject` wraps a Tensor, a list of Tensors, a Graph, a Program or an
Executable. The pass stages of an executable are the snapshots its last
compile recorded; for anything else (or an executable whose device runs no
passes) the default pipeline runs on a copy, which needs concrete shapes.
"""
from graphc.errors import GraphcError
from graphc.graph import Graph
from graphc.program import Program, specialize
from graphc.tensor import Tensor
from graphc.viz.model import BACKWARD, View, graph_edges, vnode
from graphc.viz.roles import RoleBook, built_roles

BUILT, AUTODIFF, FUSED, MEMORY = "built", "autodiff", "fused", "memory"


def pass_names():
    from graphc.passes.pipeline import default_pipeline
    return default_pipeline().names


def stage_names():
    """Every stage, in pipeline order."""
    return [BUILT, AUTODIFF, *pass_names(), FUSED, MEMORY]


class Subject:
    """What a picture is drawn from: the built nodes, the interface, and (once
    needed) the pipeline's records, the final program and the backend's plan."""

    def __init__(self, nodes, outputs, updates, inputs=None, executable=None, program=None,
                 records=None, final=None, plan=None):
        self.nodes = sorted(nodes, key=lambda n: n.id)
        self.outputs, self.updates = list(outputs), list(updates)
        self.inputs, self.executable = inputs, executable
        self.program = program              # a Program given as such: drawn as it is
        self.roles = built_roles(self.nodes, self.outputs, self.updates)
        self.role_of = RoleBook(self.roles)
        self._records = records or None     # what the compile recorded, if it ran passes
        self._final, self._plan = final, plan

    @property
    def compiled(self):
        """True when the pass records and the final program come from a real compile."""
        return self._records is not None and self._final is not None

    def pipeline(self):
        """(pass records, final program): the compile's own, else the default
        pipeline run on a concrete copy."""
        if not self.compiled:
            from graphc.passes.pipeline import default_pipeline
            program = self._concrete_program()
            self._records, self._final = default_pipeline().run(program), program
        return self._records, self._final

    def final_program(self):
        if self.program is not None and getattr(self.program, "fusion", None) is not None:
            return self.program
        return self.pipeline()[1]

    def plan(self):
        """The backend's plan of the final program (for generated source), or None."""
        return self._plan if self._plan is not None and self._plan.program is self._final \
            else None

    def _concrete_program(self):
        exe = self.executable
        base = exe.program if exe is not None and exe.program is not None else self.program
        if base is not None:
            return base.copy()
        inputs = self.inputs if self.inputs is not None else [
            n for n in self.nodes if n.op.name == "placeholder"]
        open_dims = [p.name for p in inputs if None in p.shape]
        if open_dims:
            raise GraphcError(f"the pass stages need concrete shapes, but placeholder(s) "
                              f"{', '.join(open_dims)} leave a dimension open: compile the "
                              "graph, call it once, and draw the executable", op="viz")
        return specialize(self.nodes, inputs, self.outputs, self.updates,
                          [p.shape for p in inputs], name="viz")


def executable_subject(exe, plan=None):
    """The Subject of an executable; `plan`: the backend plan just built (else the one
    of its last call)."""
    if plan is None:
        plan = next((p for p in exe._plans.values() if p.program is exe.program), None)
    final = plan.program if plan is not None else None
    return Subject(exe._nodes, exe._outputs, exe._updates, inputs=exe._inputs, executable=exe,
                   records=exe.passes if final is not None else None, final=final, plan=plan)


def subject_of(obj):
    """A Subject for a Tensor, a list of Tensors, a Graph, a Program or an Executable."""
    from graphc.executable import Executable
    if isinstance(obj, Executable):
        return executable_subject(obj)
    if isinstance(obj, Tensor) or (isinstance(obj, (list, tuple)) and obj
                                   and all(isinstance(t, Tensor) for t in obj)):
        tensors = [obj] if isinstance(obj, Tensor) else list(obj)
        graph = tensors[0].graph
        roots = [t.node for t in tensors]
        return Subject(graph.ancestors(roots), roots, [])
    if isinstance(obj, Graph):
        nodes = list(obj.nx.nodes)
        return Subject(nodes, [n for n in nodes if not obj.users(n)], [])
    if isinstance(obj, Program):
        return Subject(obj.graph.topological(), obj.outputs, obj.updates, inputs=obj.inputs,
                       program=obj)
    raise GraphcError(f"gc.viz draws a Tensor, a list of Tensors, a Graph, a Program or an "
                      f"Executable, not a {type(obj).__name__}", op="viz")


def default_stage(subject):
    """fused for an executable compiled with passes (or a fused Program), else the
    whole graph (autodiff)."""
    if subject.compiled or getattr(subject.program, "fusion", None) is not None:
        return FUSED
    return AUTODIFF


def check_stage(stage):
    names = stage_names()
    if stage not in names:
        raise GraphcError(f"unknown stage {stage!r}; the stages are: {', '.join(names)}",
                          op="viz")


# -- graph stages ----------------------------------------------------------------------

def graph_view(subject, stage):
    """The View of a graph stage (built, autodiff or a pass's snapshot)."""
    check_stage(stage)
    if stage == BUILT:
        nodes = _before_autodiff(subject.nodes)
        return _view(stage, nodes, subject.roles.get, ["as built", _count(nodes)])
    if stage == AUTODIFF:
        return _view(stage, subject.nodes, subject.roles.get,
                     ["after autodiff", _count(subject.nodes)])
    records, _ = subject.pipeline()
    record = next((r for r in records if r.name == stage), None)
    if record is None or record.snapshot is None:
        raise GraphcError(f"no snapshot after pass {stage!r} (the pipeline ran: "
                          f"{', '.join(r.name for r in records) or 'nothing'})", op="viz")
    nodes = record.snapshot.graph.topological()
    report = ", ".join(f"{k} {v}" for k, v in record.report.items())
    return _view(stage, nodes, subject.role_of,
                 [f"after {stage}" + (f": {report}" if report else ""), _count(nodes)])


def _before_autodiff(nodes):
    """Nodes that neither gc.grad made nor read anything it made."""
    tainted = set()
    for node in nodes:              # creation order is topological
        if node.role == BACKWARD or any(i in tainted for i in node.inputs):
            tainted.add(node)
    return [n for n in nodes if n not in tainted]


def _count(nodes):
    return f"{len(nodes)} nodes"


def _view(stage, nodes, role_of, title):
    vnodes = [vnode(n, role_of(n)) for n in nodes]
    return View(stage, title, vnodes, graph_edges(nodes))
