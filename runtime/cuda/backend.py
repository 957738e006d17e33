"""The CUDA backend (device="cuda"): the fused program as numba.cuda kernels
launched by a Python driver, every buffer a view of one device arena,
parameters and optimizer state resident on the device between calls.

A step: copy the feeds into their device buffers, launch every kernel in
schedule order (loops from runtime/cuda/codegen.py, library ops from
runtime/cuda/library.py; from the second call on, one replay of the launches
recorded as a CUDA graph: runtime/cuda/graph.py), read the error flag back if
a kernel can fail, make the memory plan's variable copies on the device, copy
the outputs out.
Nothing else crosses the bus: variables are uploaded only when the host
changed them (runtime/cuda/memory.py). Importing this module without a GPU
(and without Numba's simulator) raises the CompileError that `device="cuda"`
reports.
"""
import os
import sys
import time
import warnings

import numpy as np

from graphc.errors import RuntimeFailure, SourceLocation
from graphc.errors import _INTERNAL_DIRS
from graphc.passes.kernels import ALIAS_OPS
from graphc.runtime.cache import load_module, runtime_fingerprint
from graphc.runtime.cpu.backend import _identifier, _nonfinite, ensure_planned
from graphc.runtime.cuda import device
from graphc.runtime.cuda.codegen import PRELUDE, render_loop
from graphc.runtime.cuda.graph import StepGraph, wanted
from graphc.runtime.cuda.library import (NO_INDEX_ERROR, SUPPORTED, LibraryCall, Operand,
                                         c_strides, gather_launch, gather_table, unsupported)
from graphc.runtime.cuda.memory import Arena, after_write, device_variable


def _caller():
    """The user's line that asked for device="cuda" (this module is imported by compile)."""
    frame = sys._getframe(1)
    while frame is not None:
        name = frame.f_code.co_filename
        module = frame.f_globals.get("__name__", "")
        if not name.startswith("<frozen") and not module.startswith("importlib") and \
                not os.path.abspath(name).startswith(_INTERNAL_DIRS):
            return SourceLocation(name, frame.f_lineno)
        frame = frame.f_back
    return None


cuda = device.load(loc=_caller())


class CudaPlan:
    def __init__(self, program, check_numerics):
        self.program = program
        self.check_numerics = check_numerics
        # check_numerics may stop after any kernel: then no variable is written in place
        self.fusion, self.memory = ensure_planned(program, inplace_variables=not check_numerics)
        for kernel in self.fusion.kernels:      # refuse what cannot run before allocating
            if kernel.library is not None and kernel.library.op.name not in SUPPORTED:
                raise unsupported(kernel.library)
        start = time.perf_counter()
        self.stream = cuda.stream()         # every launch; a blocking stream (graph.py)
        self.graph, self.calls = None, 0
        self.record = wanted(device.simulated()) and not check_numerics
        self.arena = Arena(cuda, self.memory.arena_bytes)
        self.err = device.to_device(cuda, np.array([0, 0, NO_INDEX_ERROR], np.int64), "error")
        self.feeds = [cuda.device_array(max(1, _size(p)), p.dtype) for p in program.inputs]
        self.constants = {}
        self.variables = {v: device_variable(cuda, v.attrs["state"]) for v in program.variables}
        self.loops, first_of = {}, {}
        for kernel in self.fusion.kernels:
            if any(n in kernel.level for n in kernel.nodes):
                loop = render_loop(kernel, self.fusion, _identifier(kernel.name))
                shared = first_of.setdefault(loop.key, loop)   # equal kernels: one function
                loop.name, loop.tail = shared.name, shared.tail
                self.loops[kernel] = loop
        prelude = PRELUDE.format(runtime=runtime_fingerprint())
        self.source = prelude + "\n\n" + "\n\n".join(loop.source for loop in first_of.values())
        self.module, self.cache_hit = load_module(self.source)
        self.library = LibraryCall(lambda table: device.to_device(cuda, table, "table"),
                                   lambda size, dtype: cuda.device_array(size, dtype))
        self.launches = []          # (kernel, [(function, grid, block, args)])
        for index, kernel in enumerate(self.fusion.kernels):
            self.launches.append((kernel, self._launches(index, kernel)))
        self.fallible = bool(self.memory.fallible) or any(
            loop.error_checks for loop in self.loops.values())
        self.render_seconds = time.perf_counter() - start

    # -- storage -------------------------------------------------------------------------
    def flat(self, node):
        """The flat device array holding `node`'s base (an alias's base's storage)."""
        where = self.memory.location(node)
        if where[0] == "arena":
            return self.arena.view(where[1], where[2], node.dtype)
        if where[0] == "variable":
            return self.variables[where[1]].array
        if where[0] == "input":
            return self.feeds[self.program.inputs.index(where[1])]
        base = where[1]
        if base not in self.constants:
            value = np.asarray(base.attrs["value"]).reshape(-1)
            self.constants[base] = device.to_device(cuda, value, "constant")
        return self.constants[base]

    def operand(self, node):
        """`node` as a library kernel reads it: its base's storage, shape, strides."""
        strides = c_strides(node.shape)
        view = node
        if node in self.memory.aliases and node.op.name == "transpose":
            inner = c_strides(node.inputs[0].shape)
            strides = tuple(inner[axis] for axis in node.attrs["axes"])
            view = node.inputs[0]
        base = self.memory.aliases.get(node, node)
        while view is not base:             # every other view on the way keeps C order
            if view.op.name not in ALIAS_OPS:
                raise AssertionError(f"{node.name}: a view through {view.op.name} "
                                     "is not a contiguous alias")
            view = view.inputs[0]
        return Operand(self.flat(node), node.shape, strides)

    # -- launches ------------------------------------------------------------------------
    def _launches(self, index, kernel):
        launches = []
        if kernel.library is not None:
            node = kernel.library
            operands = [None if slot in node.op.shape_only else self.operand(x)
                        for slot, x in enumerate(node.inputs)]
            launches += self.library.prepare(node, operands, self.flat(node), self.err, index)
        loop = self.loops.get(kernel)
        if loop is not None:
            partials = [cuda.device_array(loop.grid, dtype) for dtype in loop.partials]
            tables = [device.to_device(cuda, t, "table") for t in loop.tables]
            args = ([self.flat(n) for n in loop.inputs] + [self.flat(n) for n in loop.outputs]
                    + tables + [self.err] + partials)
            launches.append((getattr(self.module, loop.name), loop.grid, loop.threads, args))
            if loop.tail:
                launches.append((getattr(self.module, loop.tail), 1, loop.tail_threads, args))
        for _, _, _, args in launches:
            device.check_launch_args(args, kernel.name)
        return [(_configured(function, grid, block, self.stream), args)
                for function, grid, block, args in launches]

    # -- running -------------------------------------------------------------------------
    def run(self, feeds):
        for variable in self.variables:          # upload what the host changed, else nothing
            self.variables[variable] = device_variable(cuda, variable.attrs["state"])
        self._copy_feeds(feeds)
        self._launch_all()
        self.calls += 1
        if self.fallible:
            self._raise_if_failed(feeds)
        # outputs first: one that is a variable (or a view of it) is its value before this
        # step, and the copies below write the variables (memplan writes none in place
        # that an output reads)
        outputs = [self._fetch(node, feeds) for node in self.program.outputs]
        self._copy_variables()
        updates = [after_write(self.variables[var], self.check_numerics)
                   for var, _ in self.program.updates]
        return outputs, updates

    def _copy_feeds(self, feeds):
        """Each feed into its buffer: host arrays over the bus, CUDA arrays on the device."""
        for buffer, feed in zip(self.feeds, feeds):
            if feed.size and isinstance(feed, np.ndarray):
                device.copy_in(buffer[:feed.size], feed.reshape(-1), "feed")
            elif feed.size:
                device.copy_on_device(buffer[:feed.size], feed.reshape(feed.size), "feed")

    def _launch_all(self):
        """Every kernel in schedule order: replayed from the step's graph, else launched
        one by one. The graph is recorded on the second call (the first compiles and
        loads each kernel, which must not happen while the stream records)."""
        if self.graph is None and self.record and self.calls:
            try:
                self.graph = StepGraph.record(
                    self.stream, [launch for _, launches in self.launches for launch in launches])
            except Exception as exc:     # an old numba-cuda, a driver refusing capture
                self.record = False
                warnings.warn(f'device="cuda": recording the step as a CUDA graph failed '
                              f"({type(exc).__name__}: {exc}); launching kernel by kernel",
                              RuntimeWarning, stacklevel=2)
        if self.graph is not None:
            self.graph.launch()
            return
        for kernel, launches in self.launches:
            for launch, args in launches:
                launch(*args)
            if self.check_numerics:
                self._check(kernel)

    def _raise_if_failed(self, feeds):
        err = device.to_host(self.err, "error")
        if not err[0]:
            return
        device.copy_in(self.err, np.array([0, 0, NO_INDEX_ERROR], np.int64), "error")
        kernel = self.fusion.kernels[int(err[1]) - 1]
        loop = self.loops.get(kernel)
        if int(err[2]) != NO_INDEX_ERROR:         # take / take_grad: the first bad position
            node = kernel.library
            indices = self._host(node.inputs[1], feeds).reshape(-1)
            axis = node.attrs["axis"]
            size = (node.inputs[0] if node.op.name == "take" else node).shape[axis]
            raise RuntimeFailure(f"index {indices[int(err[2]) - 1]} is out of range for axis "
                                 f"{axis} of size {size}", op=node.op.name, loc=node.loc)
        node = loop.error_checks[int(err[0]) - 1]
        raise RuntimeFailure(f"a label is out of range for {node.attrs['num_classes']} classes",
                             op=node.op.name, loc=node.loc)

    def _copy_variables(self):
        """The memory plan's variable copies, on the device: every source is read (into a
        temporary where it is a variable that another copy writes) before any is written."""
        copies = self.memory.variable_copies
        targets = {variable for variable, _ in copies}
        staged = []
        for variable, value in copies:
            source = self.operand(value)
            where = self.memory.location(value)
            contiguous = source.strides == c_strides(source.shape)
            if contiguous and source.flat is self.variables[variable].array:
                continue
            if contiguous and not (where[0] == "variable" and where[1] in targets):
                staged.append((variable, source.flat))
                continue
            temporary = cuda.device_array(max(1, _size(value)), value.dtype)
            if contiguous:
                temporary.copy_to_device(source.flat)
            else:
                table = device.to_device(cuda, gather_table(source), "table")
                kernel, grid, block, args = gather_launch(source.flat, table, temporary,
                                                          self.err)
                kernel[grid, block](*args)
            staged.append((variable, temporary))
        for variable, flat in staged:
            self.variables[variable].array.copy_to_device(flat)

    def _fetch(self, node, feeds):
        """An output's value on the host (one device-to-host copy of its storage)."""
        where = self.memory.location(node)
        if where[0] in ("input", "constant"):
            return np.array(self._host(node, feeds), copy=True)
        source = self.operand(node)
        flat = device.to_host(source.flat, "output")      # a new host array
        if source.strides == c_strides(source.shape) and flat.size == _size(node):
            return flat.reshape(source.shape)             # (W4's dx: 16 MB not copied twice)
        itemsize = flat.dtype.itemsize
        value = np.lib.stride_tricks.as_strided(flat, source.shape,
                                                [s * itemsize for s in source.strides])
        return np.array(value, copy=True)

    def _host(self, node, feeds):
        """A fed or constant value (or a view of one) computed on the host."""
        if node.op.name == "placeholder":
            feed = feeds[self.program.inputs.index(node)]
            return feed if isinstance(feed, np.ndarray) else device.to_host(feed, "index")
        if node.op.name == "constant":
            return node.attrs["value"]
        if node.op.name == "variable":
            return node.attrs["state"].value
        if node in self.memory.aliases:
            return node.op.reference(*[self._host(i, feeds) for i in node.inputs], **node.attrs)
        return device.to_host(self.flat(node), "index").reshape(node.shape)

    def _check(self, kernel):
        """check_numerics: the first output of `kernel` holding NaN or Inf."""
        for node in kernel.outputs:
            if node not in self.memory.buffers and node not in self.memory.variable_storage:
                continue
            value = device.to_host(self.flat(node), "check")
            if _nonfinite(value):
                from graphc.runtime.reference import NumericsError
                bad = "NaN" if np.isnan(value).any() else "Inf"
                raise NumericsError(f"node {node.name} produced {bad} (kernel {kernel.name})",
                                    op=node.op.name, loc=node.loc)

    # -- introspection -------------------------------------------------------------------
    def stats(self):
        return {**self.memory.report(),
                "kernels": len(self.fusion.kernels),
                "generated_kernels": len(self.loops),
                "distinct_loops": len({loop.name for loop in self.loops.values()}),
                "launches": sum(len(launches) for _, launches in self.launches),
                "library_kernels": sum(k.library is not None for k in self.fusion.kernels),
                "scratch_bytes": self.library.scratch_bytes(),
                "cache_hit": self.cache_hit, "simulator": device.simulated(),
                "driver": "cuda graph" if self.record else "python"}

    def profile(self, feeds, repeats):
        """Each kernel's launches timed (synchronized); variables are restored after."""
        from graphc.runtime.profile import time_steps
        self._copy_feeds(feeds)
        saved = {v: cuda.device_array(copy.array.size, copy.array.dtype)
                 for v, copy in self.variables.items()}
        for variable, array in saved.items():
            array.copy_to_device(self.variables[variable].array)
        steps = []
        for kernel, launches in self.launches:
            def run(launches=launches):
                for launch, args in launches:
                    launch(*args)
                cuda.synchronize()
            what = ", ".join(dict.fromkeys(n.op.name for n in kernel.all_nodes))
            steps.append((kernel.name, what, run))
        try:
            return time_steps(steps, repeats)
        finally:
            for variable, array in saved.items():
                self.variables[variable].array.copy_to_device(array)
            device.copy_in(self.err, np.array([0, 0, NO_INDEX_ERROR], np.int64), "error")


def _configured(function, grid, block, stream):
    """`function[grid, block, stream]`, made once (it builds a launcher object on every
    call). The simulator's `kernel[grid, block]` configures the kernel object itself and
    returns it, so one kernel launched with two grids would keep the last: there,
    configure each launch anew."""
    if device.simulated():
        return lambda *args: function[grid, block, stream](*args)
    return function[grid, block, stream]


def _size(node):
    return int(np.prod(node.shape, dtype=np.int64))


class CudaBackend:
    name = "cuda"
    optimizes = True

    def build(self, program, check_numerics=False):
        return CudaPlan(program, check_numerics)

    def device_feed(self, value):
        """A CUDA array fed to a step, as a numba.cuda device array (not copied)."""
        return value if getattr(value, "__cuda_ndarray__", False) is True \
            else cuda.as_cuda_array(value)


BACKEND = CudaBackend()
