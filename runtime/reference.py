"""The reference interpreter: each node's NumPy reference, one node at a time.

This is the semantics every other device must match. It is deliberately
simple: no fusion, no memory planning, values held in a dict until the end.
"""
import numpy as np

from graphc.errors import GraphcError, RuntimeFailure


class NumericsError(RuntimeFailure):
    """check_numerics: a node produced NaN or Inf."""


class ReferencePlan:
    def __init__(self, program, check_numerics):
        self.program = program
        self.check_numerics = check_numerics
        self.variables = program.variables
        self.order = [n for n in program.graph.topological()
                      if n.op.name not in ("placeholder", "variable")]

    def run(self, feeds):
        values = dict(zip(self.program.inputs, feeds))
        values.update((v, v.attrs["state"].value) for v in self.variables)
        for node in self.order:
            values[node] = self._evaluate(node, [values[i] for i in node.inputs])
        outputs = [np.array(values[n], copy=True) for n in self.program.outputs]
        return outputs, [values[v] for _, v in self.program.updates]

    def _evaluate(self, node, arrays):
        try:
            value = node.op.compute(arrays, node.attrs, node.dtype)
        except GraphcError as error:
            raise error.located(node.op.name, node.loc) from None
        except Exception as exc:   # NumPy's own complaint about concrete values
            raise RuntimeFailure(f"{type(exc).__name__}: {exc}", op=node.op.name,
                                 loc=node.loc) from None
        if self.check_numerics and value.dtype.kind == "f" and not np.isfinite(value).all():
            bad = "NaN" if np.isnan(value).any() else "Inf"
            raise NumericsError(f"node {node.name} produced {bad}", op=node.op.name, loc=node.loc)
        return value


    def stats(self):
        return {"kernels": len(self.order)}

    def profile(self, feeds, repeats):
        from graphc.runtime.profile import time_steps
        values = dict(zip(self.program.inputs, feeds))
        values.update((v, v.attrs["state"].value) for v in self.variables)

        def step(node):
            def run():
                values[node] = self._evaluate(node, [values[i] for i in node.inputs])
            return run
        return time_steps([(n.name, n.op.name, step(n)) for n in self.order], repeats)


class ReferenceBackend:
    name = "reference"
    optimizes = False           # the semantics: the graph exactly as built

    def build(self, program, check_numerics=False):
        return ReferencePlan(program, check_numerics)


BACKEND = ReferenceBackend()
