"""The CPU backend: fused loop kernels as generated Numba functions, library ops
(matmul, conv, pooling, gather, ...) through NumPy, run by a Python driver.

First slice of the design in DESIGN.md's "Runtime": the kernels are real
generated code; the per-step driver is still Python (one call per kernel)
and buffers are allocated per call. The njit driver over one arena, the
file cache and the njit library kernels come next.
"""
import time

import numpy as np

from graphc.errors import RuntimeFailure
from graphc.runtime.cache import load_module, purge_compiled
from graphc.runtime.cpu.codegen import SAFE_FASTMATH, render_loop
from graphc.runtime.cpu.dispatch import Library, one_thread_pool

BLAS_OPS = ("matmul", "conv2d", "conv2d_grad_input", "conv2d_grad_weight")
PRELUDE = """import numpy as np
from numba import njit, prange
from graphc.runtime.cpu.scalar import *
FASTMATH = {fastmath}
"""


def ensure_planned(program, inplace_variables):
    """Run the passes the CPU backend needs when the executable did not."""
    from graphc.passes.memplan import memplan
    if getattr(program, "fusion", None) is None:
        from graphc.passes.dce import dce
        from graphc.passes.fuse import fuse
        from graphc.passes.lower import lower
        lower(program)
        dce(program)
        fuse(program)
    if getattr(program, "memory", None) is None or not inplace_variables:
        memplan(program, inplace_variables=inplace_variables)
    return program.fusion, program.memory


class CpuPlan:
    def __init__(self, program, check_numerics):
        self.program = program
        self.check_numerics = check_numerics
        # check_numerics may stop after any kernel: then no variable is written in place
        self.fusion, self.memory = ensure_planned(program, inplace_variables=not check_numerics)
        self.library = Library()
        single_pool = one_thread_pool()
        self.arena = np.empty(self.memory.arena_bytes, np.uint8)
        self.storage = self._storage()
        start = time.perf_counter()
        self.loops = {}
        uses_blas = not single_pool and any(
            k.library is not None and k.library.op.name in BLAS_OPS for k in self.fusion.kernels)
        for kernel in self.fusion.kernels:
            if any(n in kernel.level for n in kernel.nodes):
                name = _identifier(kernel.name)
                self.loops[kernel] = render_loop(kernel, self.fusion, name,
                                                 allow_parallel=not uses_blas)
        fastmath = "{" + ", ".join(repr(f) for f in sorted(SAFE_FASTMATH)) + "}"
        self.source = PRELUDE.format(fastmath=fastmath) + "\n\n".join(
            loop.source for loop in self.loops.values())
        module, self.cache_hit = load_module(self.source)
        self.module, self.module_path = module, module.__file__
        self.loaded = set()         # kernels whose first call (cache load or compile) succeeded
        self.functions = {k: getattr(module, loop.name) for k, loop in self.loops.items()}
        self.render_seconds = time.perf_counter() - start

    # -- storage -------------------------------------------------------------------------
    def _storage(self):
        """node -> arena view, or the variable node whose storage it is written into."""
        storage = {}
        for kernel in self.fusion.kernels:
            for node in kernel.outputs:
                where = self.memory.location(node)
                if where[0] == "arena":
                    _, offset, nbytes = where
                    view = self.arena[offset:offset + nbytes].view(node.dtype)
                    storage[node] = view.reshape(node.shape)
                elif node in self.memory.variable_storage:
                    storage[node] = where[1]        # written into this variable's storage
        return storage

    def _bind(self, feeds, touch_variables=True):
        """Each kernel output's buffer for this call; with touch_variables=False values
        meant for a variable's storage go to scratch arrays instead (for profiling)."""
        values = dict(zip(self.program.inputs, feeds))
        for node, where in self.storage.items():
            if isinstance(where, np.ndarray):
                values[node] = where
            elif touch_variables:
                values[node] = where.attrs["state"].value
            else:
                values[node] = np.empty(node.shape, node.dtype)
        return values

    # -- running -------------------------------------------------------------------------
    def run(self, feeds):
        values = self._bind(feeds)
        for kernel in self.fusion.kernels:
            if kernel.library is not None:
                self._run_library(kernel.library, values)
            if kernel in self.functions:
                self._run_loop(kernel, values)
            if self.check_numerics:
                self._check(kernel, values)
        outputs = [np.array(self._get(n, values), copy=True) for n in self.program.outputs]
        return outputs, [self._get(v, values) for _, v in self.program.updates]

    def stats(self):
        return {**self.memory.report(),
                "kernels": len(self.fusion.kernels), "generated_kernels": len(self.loops),
                "cache_hit": self.cache_hit, "module": self.module_path,
                "library_kernels": sum(k.library is not None for k in self.fusion.kernels)}

    def profile(self, feeds, repeats):
        from graphc.runtime.profile import time_steps
        values = self._bind(feeds, touch_variables=False)
        steps = []
        for kernel in self.fusion.kernels:
            what = ", ".join(dict.fromkeys(n.op.name for n in kernel.all_nodes))

            def run(kernel=kernel):
                if kernel.library is not None:
                    self._run_library(kernel.library, values)
                if kernel in self.functions:
                    self._run_loop(kernel, values)
            steps.append((kernel.name, what, run))
        return time_steps(steps, repeats)

    def _get(self, node, values):
        if node in values:
            return values[node]
        name = node.op.name
        if name == "variable":
            return node.attrs["state"].value
        if name == "constant":
            return node.attrs["value"]
        if node not in self.fusion.aliases:
            raise AssertionError(f"{node.name} was read before any kernel computed it")
        # an alias: a zero-copy view of its operand
        value = node.op.reference(*[self._get(i, values) for i in node.inputs], **node.attrs)
        values[node] = value
        return value

    def _run_library(self, node, values):
        arrays = [self._get(i, values) for i in node.inputs]
        out = values[node]
        if self.library.run(node, arrays, out):
            return
        try:
            result = node.op.compute(arrays, node.attrs, node.dtype)
        except Exception as exc:
            raise RuntimeFailure(f"{type(exc).__name__}: {exc}", op=node.op.name,
                                 loc=node.loc) from None
        np.copyto(values[node], result)

    def _run_loop(self, kernel, values):
        loop = self.loops[kernel]
        flat = [np.ascontiguousarray(self._get(n, values)).reshape(-1) for n in loop.inputs]
        outs = [values[n].reshape(-1) for n in loop.outputs]
        err = np.zeros(1, np.int64)
        args = (*flat, *outs, *loop.tables, err)
        if kernel in self.loaded:
            self.functions[kernel](*args)
        else:
            self._first_call(kernel, args)
        if err[0]:
            node = loop.error_checks[err[0] - 1]
            raise RuntimeFailure(f"a label is out of range for {node.attrs['num_classes']} "
                                 "classes", op=node.op.name, loc=node.loc)

    def _first_call(self, kernel, args):
        """The first call loads cached machine code; a corrupt entry is purged and rebuilt."""
        try:
            self.functions[kernel](*args)
        except Exception:
            purge_compiled(self.module)
            self.functions[kernel](*args)
        self.loaded.add(kernel)

    def _check(self, kernel, values):
        for node in kernel.outputs:
            value = values.get(node)
            if value is not None and _nonfinite(value):
                from graphc.runtime.reference import NumericsError
                node, value = self._culprit(kernel, values) or (node, value)
                bad = "NaN" if np.isnan(value).any() else "Inf"
                raise NumericsError(f"node {node.name} produced {bad} (kernel {kernel.name})",
                                    op=node.op.name, loc=node.loc)

    def _culprit(self, kernel, values):
        """The kernel's first node (in the order it computes them) whose value is not
        finite, found by re-evaluating its nodes one by one with their NumPy
        references: a fused kernel only shows its outputs (log(x) fused into a sum
        makes the sum NaN, but the node to blame is the log)."""
        from graphc.runtime.cpu.codegen import _operands_first
        local = {}
        nodes = ([kernel.library] if kernel.library is not None else []) + \
            _operands_first(kernel.nodes)
        for node in nodes:
            arrays = [local[i] if i in local else self._get(i, values) for i in node.inputs]
            try:
                value = node.op.compute(arrays, node.attrs, node.dtype)
            except Exception:   # pragma: no cover (the kernel itself ran)
                return None
            if _nonfinite(value):
                return node, value
            local[node] = value
        return None


def _nonfinite(value):
    return value.dtype.kind == "f" and not np.isfinite(value).all()


def _identifier(name):
    return "".join(c if c.isalnum() else "_" for c in name)


class CpuBackend:
    name = "cpu"
    optimizes = True

    def build(self, program, check_numerics=False):
        return CpuPlan(program, check_numerics)


BACKEND = CpuBackend()
