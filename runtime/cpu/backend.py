"""The CPU backend: fused loop kernels as generated Numba functions, library ops
as njit kernels (runtime/cpu/library.py: matmul, conv, pooling, gather, ...),
every buffer a view of one arena laid out by the memory plan.

A step runs as one njit call of its program (runtime/cpu/driver.py renders
its kernel calls, runtime/cpu/step_program.py runs them), each kernel in
order (with check_numerics, a check after each). A step the njit driver
cannot express (a library op only NumPy's reference runs) runs through the
Python driver here instead: one Python call per kernel, same kernels, same
arena. The generated module is cached by runtime/cache.py.
"""
import operator
import os
import time

import numpy as np

from graphc.errors import RuntimeFailure
from graphc.passes.kernels import operands_first
from graphc.runtime.cache import load_module, purge_compiled, runtime_fingerprint
from graphc.runtime.cpu import precompile
from graphc.runtime.cpu.codegen import SAFE_FASTMATH, render_loop
from graphc.runtime.cpu.dispatch import Library, one_thread_pool
from graphc.runtime.cpu.driver import build_driver, partial_sums
from graphc.runtime.cpu.numba_cache import load_for_call
from graphc.runtime.cpu.python_call import PythonCall
from graphc.runtime.cpu.step_program import build_program, run_program
from graphc.runtime.cpu.step_program import kernels as step_kernels
from graphc.runtime.cpu.views import aligned_empty

# "njit": one njit call per step (runtime/cpu/driver.py); "python": one Python call
# per kernel (for debugging, and what a step the njit driver cannot express runs)
NJIT_DRIVER = os.environ.get("GRAPHC_CPU_DRIVER", "njit") == "njit"

BLAS_OPS = ("matmul", "conv2d", "conv2d_grad_input", "conv2d_grad_weight")
PRELUDE = """# compiled against graphc's runtime {runtime} (runtime/cache.py)
import numpy as np
from numba import prange
from graphc.runtime.cpu.loop_kernel import loop_kernel
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
    def __init__(self, program, check_numerics, njit_driver=None):
        self.program = program
        self.check_numerics = check_numerics
        # check_numerics may stop after any kernel: then no variable is written in place
        self.fusion, self.memory = ensure_planned(program, inplace_variables=not check_numerics)
        self.library = Library()
        single_pool = one_thread_pool()
        self.arena = aligned_empty(self.memory.arena_bytes)
        self.err = np.zeros(1, np.int64)
        self.storage = self._storage()
        start = time.perf_counter()
        self.loops = {}
        uses_blas = not single_pool and any(
            k.library is not None and k.library.op.name in BLAS_OPS for k in self.fusion.kernels)
        first_of = {}               # function key -> the loop that defines it
        for kernel in self.fusion.kernels:
            if any(n in kernel.level for n in kernel.nodes):
                name = _identifier(kernel.name)
                loop = render_loop(kernel, self.fusion, name, allow_parallel=not uses_blas,
                                   in_place=self._in_place(kernel))
                # structurally equal kernels (an unrolled RNN's steps) share one function
                loop.name = first_of.setdefault(loop.key, loop).name
                self.loops[kernel] = loop
        fastmath = "{" + ", ".join(repr(f) for f in sorted(SAFE_FASTMATH)) + "}"
        prelude = PRELUDE.format(fastmath=fastmath, runtime=runtime_fingerprint())
        self.source = prelude + "\n\n".join(loop.source for loop in first_of.values())
        # the whole-step driver's calls (runtime/cpu/driver.py), None: the Python driver runs
        use_driver = NJIT_DRIVER if njit_driver is None else njit_driver
        self.driver = build_driver(self) if use_driver else None
        if self.driver is not None:
            self.source += "\n" + self.driver.source
        module, self.cache_hit = load_module(self.source)
        self.module, self.module_path = module, module.__file__
        self.helper = None          # compiles half of a new module's kernels (_first_step)
        self.loaded = set()         # kernels whose first call (cache load or compile) succeeded
        self.partials = {}          # kernel -> the Python driver's partial sums array
        self.functions = {k: getattr(module, loop.name) for k, loop in self.loops.items()}
        # the same functions called from Python (they have no CPython wrapper)
        native = {name: PythonCall(getattr(module, name)) for name in
                  {loop.name for loop in self.loops.values()}}
        self.from_python = {k: native[loop.name] for k, loop in self.loops.items()}
        self.step_program = None    # the int64 step program, built by the first step
        self._fetch = self._fetchers() if self.driver is not None else None
        self._states = [v.attrs["state"] for v in self.driver.variables] if self.driver else []
        if self.driver is not None:     # the step's statics, then its variables, by address
            statics = [a.ctypes.data for a in self.driver.statics]
            self.addresses = np.array(statics + [0] * len(self._states), np.int64)
            self._addressed = [None] * len(self._states)   # the variables' arrays there
        self.render_seconds = time.perf_counter() - start

    # -- storage -------------------------------------------------------------------------
    def _in_place(self, kernel):
        """output -> the loop's input (not a view) whose memory the plan gave it: the
        library output or an arena buffer it took over (passes/memplan.py), or a
        variable it updates."""
        inputs = [x for x in [kernel.library, *kernel.inputs]
                  if x is not None and x not in self.fusion.aliases]
        where = {x: self.memory.location(x) for x in inputs}
        found = {}
        for out in kernel.outputs:
            if out is kernel.library:
                continue
            here = self.memory.location(out)
            found[out] = next((x for x in inputs if where[x] == here and x.dtype == out.dtype),
                              None)
        return {out: x for out, x in found.items() if x is not None}

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
            else:   # a copy of the variable, read and written in its place
                values[node] = values[where] = where.attrs["state"].value.copy()
        return values

    def _fetchers(self):
        """How the njit driver's run reads each output and update value: a static arena
        view, ("variable", node), ("feed", index), or None (through _bind and _get); as
        ([(output node, how)], [(update value node, how)])."""
        static = {n: v for n, v in self.storage.items() if isinstance(v, np.ndarray)}
        fetch = {}
        for node in [*self.program.outputs, *(v for _, v in self.program.updates)]:
            where = self.memory.location(node)
            plain = node not in self.fusion.aliases
            if where[0] == "arena":
                fetch[node] = self._get(node, static)
            elif where[0] == "variable" and plain:
                fetch[node] = ("variable", where[1])
            elif where[0] == "input" and plain:
                fetch[node] = ("feed", self.program.inputs.index(where[1]))
            else:
                fetch[node] = None
        updates = [v for _, v in self.program.updates]
        return ([(n, fetch[n]) for n in self.program.outputs], [(n, fetch[n]) for n in updates])

    # -- running -------------------------------------------------------------------------
    quiet_fp = True     # the njit step raises no NumPy warnings; the rest runs under errstate

    def run(self, feeds):
        if self.driver is not None:
            result = self._run_driver(feeds)
            if result is not None:
                return result
        with np.errstate(all="ignore"):
            return self._run_python(feeds)

    def _run_python(self, feeds):
        """The Python driver: one call per kernel."""
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

    def _run_driver(self, feeds):
        """One call of the step program; None when a variable's storage is not C-contiguous
        (then the Python driver runs this step)."""
        driver = self.driver
        variables = [state.value for state in self._states]
        if not all(map(operator.is_, variables, self._addressed)):
            if not all(value.flags.c_contiguous for value in variables):
                return None
            first = len(driver.statics)
            self.addresses[first:] = [value.ctypes.data for value in variables]
            self._addressed = variables     # (kept alive while the step has their addresses)
        # one specialization of the step: writable feeds (a read-only one is another type)
        if not all(f.flags.writeable for f in feeds):
            feeds = [f if f.flags.writeable else f.copy() for f in feeds]
        if self.step_program is not None:
            site, code = run_program(self.step_program, self.arena, self.addresses, self.err,
                                     *feeds)
        else:
            site, code = self._first_step(feeds)
        if site:
            with np.errstate(all="ignore"):
                self._driver_failure(driver.sites[site - 1], code, feeds)
        outputs, updates = self._fetch
        return ([np.array(self._fetched(node, how, feeds), copy=True) for node, how in outputs],
                [self._fetched(node, how, feeds) for node, how in updates])

    def _fetched(self, node, how, feeds):
        """The value of an output or update after the njit step (see _fetchers)."""
        if isinstance(how, np.ndarray):
            return how
        if how is None:
            return self._get(node, self._bind(feeds))
        if how[0] == "variable":
            return how[1].attrs["state"].value
        return feeds[how[1]]

    def _first_step(self, feeds):
        """The step's first call: compile (or load) its kernels and thunks and build its
        program (runtime/cpu/step_program.py), then run it. A new module's kernels
        compile from both ends, the last half in a helper process."""
        calls = self.driver.calls
        if not self.cache_hit:
            self.helper = precompile.start(self.module_path, step_kernels(calls, self.module))
        try:
            try:
                program = build_program(calls, self.module, self.driver.bases)
            except Exception:       # Numba's cached code of a kernel failed to load
                purge_compiled(self.module)
                program = build_program(calls, self.module, self.driver.bases)
        finally:
            precompile.stop(self.helper)
            self.helper = None
        self.step_program = program
        arguments = (program, self.arena, self.addresses, self.err, *feeds)
        load_for_call(run_program, *arguments)
        return run_program(*arguments)

    def _driver_failure(self, site, code, feeds):
        if site[0] == "check":
            self._check(site[1], self._bind(feeds))
            raise AssertionError(f"{site[1].name}: the step saw a NaN or Inf the check "
                                 "does not")      # pragma: no cover
        if site[0] == "loop":
            node = site[1].error_checks[code - 1]
            raise RuntimeFailure(f"a label is out of range for {node.attrs['num_classes']} "
                                 "classes", op=node.op.name, loc=node.loc)
        node = site[1]
        indices = self._get(node.inputs[1], self._bind(feeds))
        axis = node.attrs["axis"]
        size = (node.inputs[0] if node.op.name == "take" else node).shape[axis]
        raise RuntimeFailure(f"index {np.asarray(indices).reshape(-1)[code - 1]} is out of "
                             f"range for axis {axis} of size {size}", op=node.op.name, loc=node.loc)

    def stats(self):
        return {**self.memory.report(),
                "kernels": len(self.fusion.kernels),
                "generated_kernels": len(self.loops),
                "distinct_loops": len({loop.name for loop in self.loops.values()}),
                "cache_hit": self.cache_hit, "module": self.module_path,
                "driver": "njit" if self.driver is not None else "python",
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
        flat = [np.ascontiguousarray(self._get(n, values)).reshape(-1)[offset:]
                for n, offset in zip(loop.inputs, loop.offsets)]
        outs = [values[n].reshape(-1) for n in loop.outputs]
        err = np.zeros(1, np.int64)
        partials = [self.partials.setdefault(kernel, partial_sums(loop))] if loop.partials else []
        args = (*flat, *outs, *loop.tables, *partials, err)
        if kernel in self.loaded:
            self._call_loop(kernel, args)
        else:
            self._first_call(kernel, args)
        if err[0]:
            node = loop.error_checks[err[0] - 1]
            raise RuntimeFailure(f"a label is out of range for {node.attrs['num_classes']} "
                                 "classes", op=node.op.name, loc=node.loc)

    def _first_call(self, kernel, args):
        """The first call loads cached machine code; a corrupt entry is purged and rebuilt."""
        try:
            self._call_loop(kernel, args)
        except Exception:
            purge_compiled(self.module)
            self._call_loop(kernel, args)
        self.loaded.add(kernel)

    def _call_loop(self, kernel, args):
        """The loop function on `args`, in chunks on every thread if it runs so (then its
        tail, if it has one: runtime/cpu/chunked.py)."""
        loop, function = self.loops[kernel], self.from_python[kernel]
        function(*args, chunks=loop.chunks or 0)
        if loop.chunks and loop.tail:
            function(-1, 0, 0, *args)

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
        local = {}
        nodes = ([kernel.library] if kernel.library is not None else []) + \
            operands_first(kernel.nodes)
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
