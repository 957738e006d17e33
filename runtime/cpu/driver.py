"""The CPU backend's whole-step driver: every kernel of the step in schedule order
on views of the arena (DESIGN.md, "Runtime"), as a list of Calls that
runtime/cpu/step_program.py lays out and runs in one njit call: one Python call
per step.

    run_program(program, arena, addresses, err, <feeds...>) -> (site, code)

`addresses` holds the data addresses of the step's other arrays: its statics
(array constants, gather tables, partial sums, conv work arrays: `Driver.statics`),
then the variables' storage (`Driver.variables`). `Driver.bases` names the
step's arrays in the program's base order: the arena, those, err, the feeds.

Each Call is one kernel on its arguments: views of the step's arrays at offsets,
shapes and strides fixed by the memory plan (runtime/cpu/step_views.py), int64
attributes (strides, paddings, axes), float64 constants. The generated module
ends with them as a listing (`Driver.source`), one line per call:

    #   12: k12_matmul_add(@arena+1024:float32:8192:4:C, 3, @table0+0:int64:64:8:C)

Each kernel runs as the Python driver runs it: its library call (the njit
kernels of runtime/cpu/library.py, the same choice of kernel as
runtime/cpu/dispatch.py) then its loop function on flat views. A call that can
fail (a loop's one_hot label check, take, take_grad) carries a check: a nonzero
code stops the step with (site, code) at once, site numbering `Driver.sites`,
so that Python raises the same RuntimeFailure as before.

With check_numerics, after each kernel the step returns (site, 1) at the first
output holding a NaN or an Inf, and Python names the node (CpuPlan._check).

`build_driver` gives None (the plan keeps its Python driver) for a graph with
a library op that only NumPy's reference runs (argmax, pad, max_pool2d_select,
mixed dtypes, 4-D matmul, ...).
slice_grad, which dispatch.py leaves to the reference, is a zero fill and a
slice assignment here (the same values).
"""
import numba
import numpy as np

from graphc.runtime.cpu.conv_variants import conv_steps, conv_variant, conv_workspace_shape
from graphc.runtime.cpu.dispatch import _conv_ints, _pool_ints
from graphc.runtime.cpu.library import block_count, concat_views, draw_arguments, matmul_kernel
from graphc.runtime.cpu.step_program import Call
from graphc.runtime.cpu.step_views import View
from graphc.runtime.cpu.views import aligned_empty

CONV_OPS = ("conv2d", "conv2d_grad_input", "conv2d_grad_weight")
POOL_OPS = ("max_pool2d", "max_pool2d_grad", "avg_pool2d", "avg_pool2d_grad")
HEADER = ("\n# the step: each kernel call in schedule order, on views of its arrays\n"
          "# (@array+byte offset:dtype:shape:strides:layout; runtime/cpu/step_program.py)\n")


class Unsupported(Exception):
    """The step cannot run as one njit function."""


class Driver:
    """The rendered `step` and what to pass it."""

    def __init__(self, source, calls, bases, feeds, variables, statics, sites):
        self.source = source            # the program's listing, for the generated module
        self.calls = calls              # the step program's Calls, in schedule order
        self.bases = bases              # the names of the step's arrays, in base order
        self.feeds = feeds              # placeholder nodes, in program.inputs order
        self.variables = variables      # variable nodes whose storage the step uses
        self.statics = statics          # constants, gather tables, conv work arrays
        # site number - 1 -> ("loop", LoopSource, kernel) | ("take", node) | ("check", kernel)
        self.sites = sites


def partial_sums(loop):
    """The `partials` array of a loop kernel run in chunks (runtime/cpu/chunked.py): a
    slot per sum across its loop for each of the most threads Numba can run."""
    return np.zeros(numba.config.NUMBA_NUM_THREADS * loop.partials, np.float64)


def build_driver(plan):
    """The Driver of `plan` (a CpuPlan), or None."""
    try:
        return _Renderer(plan).render()
    except Unsupported:
        return None


class _Renderer:
    def __init__(self, plan):
        self.plan, self.fusion, self.memory = plan, plan.fusion, plan.memory
        self.lines = []
        self.views = {}             # node -> its View (runtime/cpu/step_views.py)
        self.feeds = list(plan.program.inputs)
        self.variables, self.statics = [], []
        self.static_names = []
        self.sites = []
        self.calls = []             # the program's Calls (runtime/cpu/step_program.py)
        self.err = View.contiguous("err", 0, np.int64, (1,))

    # -- values ------------------------------------------------------------------------
    def static(self, array, prefix):
        """The View of a C-contiguous array the step holds (a table, a work array, ...)."""
        name = f"{prefix}{len(self.statics)}"
        self.statics.append(array)
        self.static_names.append(name)
        return View.contiguous(name, 0, array.dtype, array.shape)

    def call(self, function, args, chunks=0, site=0, check=None):
        """`function(*args)` as the program's next Call (runtime/cpu/step_program.py);
        args each a View, an int, a float or a tuple of Views; with `chunks`, a loop
        kernel's function(chunk, start, stop, *args) over [0, chunks) on every thread
        (runtime/cpu/chunks.py). Lists it, with the failure `check` stops at."""
        self.calls.append(Call(function, tuple(args), chunks, site, check))
        texts = []
        for arg in args:
            if isinstance(arg, View):
                texts.append(arg.text())
            elif isinstance(arg, tuple):
                texts.append("(" + "|".join(v.text() for v in arg) + ")")
            else:
                texts.append(repr(arg))
        line = f"{function}({', '.join(texts)})"
        if chunks:
            line += f" in {chunks} chunks"
        if check:
            line += f"  -> site {site} when {'err[0]' if check == 'err' else 'its result'} != 0"
        self.lines.append(f"#   {len(self.calls)}: {line}")

    def value(self, node):
        """The View of node's array in the step."""
        if node in self.views:
            return self.views[node]
        if node in self.fusion.aliases:
            base = self.value(node.inputs[0])
            if node.op.name == "transpose":
                if len(node.shape) != 2 or base.layout != "C" or \
                        tuple(node.attrs["axes"]) != (1, 0):
                    raise Unsupported("transpose alias")
                view = base.transposed()
            elif node.op.name in ("reshape", "expand_dims", "squeeze"):
                if base.layout != "C":
                    raise Unsupported("reshape of a non-contiguous view")
                view = base.reshaped(node.shape)
            else:
                raise Unsupported(f"alias {node.op.name}")
            self.views[node] = view
            return view
        where = self.memory.location(node)
        kind = where[0]
        if kind == "arena":
            view = View.contiguous("arena", where[1], node.dtype, node.shape)
        elif kind == "variable":
            variable = where[1]
            if variable not in self.variables:
                self.variables.append(variable)
            view = View.contiguous(f"var{self.variables.index(variable)}", 0, node.dtype,
                                   node.shape)
        elif kind == "input":
            view = View.contiguous(f"feed{self.feeds.index(where[1])}", 0, node.dtype,
                                   node.shape)
        elif kind == "constant":
            value = np.ascontiguousarray(node.attrs["value"], dtype=node.dtype)
            name = self.static(value.reshape(value.shape or (1,)), "const").base
            view = View.contiguous(name, 0, node.dtype, node.shape)
        else:   # pragma: no cover
            raise Unsupported(kind)
        self.views[node] = view
        return view

    def contiguous(self, node):
        """node's View, C-contiguous. Fusion materializes a transpose that anything
        but a matmul reads (in a loop kernel), so no other operand is an F view; one
        that were would leave the step to the Python driver."""
        view = self.value(node)
        if view.layout != "C":
            raise Unsupported("a non-contiguous operand")
        return view

    def flat(self, node, start=0):
        return self.contiguous(node).flat(start)

    # -- kernels -----------------------------------------------------------------------
    def render(self):
        plan = self.plan
        for kernel in self.fusion.kernels:
            if kernel.library is not None:
                self.library(kernel.library)
            if kernel in plan.loops:
                loop = plan.loops[kernel]
                args = [self.flat(n, offset) for n, offset in zip(loop.inputs, loop.offsets)]
                args += [self.flat(n) for n in loop.outputs]
                args += [self.static(t, "table") for t in loop.tables]
                if loop.partials:
                    args.append(self.static(partial_sums(loop), "partials"))
                checked = {}        # a failure (a label out of range) is a code in err
                if loop.error_checks:
                    self.sites.append(("loop", loop, kernel))
                    checked = {"site": len(self.sites), "check": "err"}
                self.call(loop.name, args + [self.err], loop.chunks or 0,
                          **({} if loop.tail else checked))
                if loop.tail:       # what follows the loop, after every chunk
                    self.call(loop.name, [-1, 0, 0] + args + [self.err], **checked)
            if plan.check_numerics:
                self.check_numerics(kernel)
        addressed = self.static_names + [f"var{i}" for i in range(len(self.variables))]
        bases = ["arena", *addressed, "err", *(f"feed{i}" for i in range(len(self.feeds)))]
        source = (HEADER + f"# bases: {', '.join(bases)}\n" + "\n".join(self.lines) + "\n")
        return Driver(source, self.calls, bases, self.feeds, self.variables,
                      tuple(self.statics), self.sites)

    def check_numerics(self, kernel):
        """Return at the first output of `kernel` holding a NaN or an Inf (site "check":
        Python then names the node, as the Python driver's check does)."""
        checked = [n for n in kernel.outputs if np.dtype(n.dtype) in (np.float32, np.float64)
                   and (n in self.memory.buffers or n in self.memory.variable_storage)]
        if not checked:
            return
        self.sites.append(("check", kernel))
        for node in checked:
            self.call(f"_lib.nonfinite{8 * np.dtype(node.dtype).itemsize}", [self.flat(node)],
                      site=len(self.sites), check="result")

    def library(self, node):
        name = node.op.name
        if name == "slice_grad":
            return self.slice_grad(node)
        out = self.value(node)
        floats = [i for i in node.inputs if np.dtype(i.dtype).kind == "f"]
        if np.dtype(node.dtype).kind != "f" or any(np.dtype(i.dtype) != np.dtype(node.dtype)
                                                    for i in floats):
            raise Unsupported("dtypes")
        if out.layout != "C":   # pragma: no cover (library outputs are buffers)
            raise Unsupported("output layout")
        if name == "matmul":
            self.matmul(node, out)
        elif name in CONV_OPS:
            self.conv(node, out)
        elif name in POOL_OPS:
            self.pool(node, out)
        elif name == "concatenate":
            self.concatenate(node, out)
        elif name in ("random_uniform", "random_normal"):
            seed, params = draw_arguments(node)
            blocks = block_count(int(np.prod(node.shape)))
            if blocks:
                self.call(f"_lib.{name}_parts", [
                    self.flat(node.inputs[0]), self.static(seed, "seed"),
                    self.static(params, "draw"), out.flat()], chunks=blocks)
        elif name in ("take", "take_grad"):     # returns the position of a bad index + 1
            values, indices = node.inputs[:2]
            self.sites.append(("take", node))
            self.call(f"_lib.{name}", [
                self.contiguous(values), self.contiguous(indices), out,
                node.attrs["axis"], int(node.attrs["wrap_negative"])],
                site=len(self.sites), check="result")
        else:
            raise Unsupported(name)

    def matmul(self, node, out):
        a, b = node.inputs
        ndim = len(node.shape)
        if len(a.shape) != ndim or len(b.shape) != ndim or ndim not in (2, 3):
            raise Unsupported("matmul rank")
        views = []
        for x in (a, b):
            view = self.value(x)
            if view.layout != "C" and not (view.layout == "F" and ndim == 2):
                raise Unsupported("matmul layout")
            views.append(view)
        operands = [view.any_layout() for view in views]
        threads = numba.get_num_threads()
        if ndim == 3:
            batch = node.shape[0]
            if batch and threads > 1:
                self.call("_lib.matmul_batched_parts", [*operands, out], chunks=batch)
            else:
                self.call("_lib.matmul_batched_parts", [0, 0, batch, *operands, out])
            return
        # the split over the threads is chosen now: only the kernel it needs compiles;
        # a split runs as parts launched over the threads (runtime/cpu/library.py)
        (m, k), n = a.shape, b.shape[1]
        vector = views[0].layout == out.layout == "C"     # (b: C or F, checked above)
        name, blocks = matmul_kernel(m, k, n, threads, vector)
        if name == "matmul_by_depth":
            scratch = self.static(np.empty((blocks - 1, m, n), node.dtype), "scratch")
            self.call("_lib.matmul_by_depth_parts", [*operands, out, scratch], chunks=blocks)
            self.call("_lib.matmul_by_depth_finish", [*operands, out, scratch])
        elif name in ("matmul_by_rows", "matmul_by_columns"):
            self.call(f"_lib.{name}_parts", [*operands, out, blocks], chunks=blocks)
        else:   # (a vector's split stays a prange: through the launcher W5 ran 1.06-1.12x)
            self.call(f"_lib.{name}", [*operands, out, blocks])

    def pool(self, node, out):
        """A pooling kernel over the images, split over the threads by the program's
        launcher (runtime/cpu/pool.py)."""
        name, attrs = node.op.name, node.attrs
        if name.startswith("max"):
            operands = [self.contiguous(i) for i in node.inputs]
            extra = list(attrs["dilation"])
        else:
            operands = [self.contiguous(node.inputs[0])]
            extra = [attrs["count_include_pad"], attrs["divisor_override"] or 0]
        if node.shape[0]:       # (no images: nothing to write)
            self.call(f"_lib.{name}_images", [*operands, out, *_pool_ints(attrs), *extra],
                      chunks=node.shape[0])

    def conv(self, node, out):
        name = node.op.name
        first, second = node.inputs
        x_shape, w_shape, y_shape = {
            "conv2d": (first.shape, second.shape, node.shape),
            "conv2d_grad_input": (node.shape, second.shape, first.shape),
            "conv2d_grad_weight": (first.shape, node.shape, second.shape)}[name]
        args = [self.contiguous(first), self.contiguous(second), out, *_conv_ints(node.attrs)]
        variant = conv_variant(name, x_shape, w_shape, y_shape, node.attrs)
        parts = numba.get_num_threads()
        if variant != "direct":
            shape = conv_workspace_shape(name, variant, x_shape, w_shape, y_shape,
                                         chunks=parts, padding=node.attrs["padding"],
                                         stride=node.attrs["stride"])
            work = aligned_empty(int(np.prod(shape)) * np.dtype(node.dtype).itemsize)
            args.append(self.static(work.view(node.dtype).reshape(shape), "work"))
        for function, chunks in conv_steps(name, variant, x_shape, w_shape, parts):
            self.call(f"_lib.{function}", args, chunks=chunks)

    def concatenate(self, node, out):
        axis = node.attrs["axis"]
        before, after = concat_views(node.shape, axis)
        out3 = out.reshaped((before, node.shape[axis], after))
        views, offsets = [], [0]
        for piece in node.inputs:
            size = piece.shape[axis]
            views.append(self.contiguous(piece).reshaped((before, size, after)))
            offsets.append(offsets[-1] + size)
        runs = [self.arena_run(piece) for piece in node.inputs]
        if sum(run is not None for run in runs) > 2:
            self.concat_runs(node, out3, runs, views, offsets)
        else:   # one call over the tuple of pieces (all C-contiguous, of one dtype)
            starts = self.static(np.array(offsets[:-1], np.int64), "starts")
            self.call("_lib.concat_pieces", [out3, tuple(views), starts])

    def arena_run(self, piece):
        """The element offset of `piece` in the arena if it is a C-contiguous run of it
        (an arena buffer or a reshape of one), else None."""
        view = self.value(piece)
        if view.base != "arena" or view.layout != "C" or view.offset % view.itemsize:
            return None
        return view.offset // view.itemsize

    def concat_runs(self, node, out3, runs, views, offsets):
        """A concatenate whose pieces are mostly runs of the arena: those in one call
        of _lib.concat_runs, typed by three int arrays (a tuple of W3's 50 stacked
        states as pieces took seconds to compile), the others one call each."""
        axis, dtype = node.attrs["axis"], np.dtype(node.dtype)
        inside = [k for k, run in enumerate(runs) if run is not None]
        source = View.contiguous("arena", 0, dtype, (self.memory.arena_bytes // dtype.itemsize,))
        table = lambda values, prefix: self.static(np.array(values, np.int64), prefix)  # noqa: E731
        self.call("_lib.concat_runs", [
            out3, source, table([runs[k] for k in inside], "runs"),
            table([node.inputs[k].shape[axis] for k in inside], "sizes"),
            table([offsets[k] for k in inside], "starts")])
        for k, run in enumerate(runs):
            if run is None:
                self.call("_lib.concat_piece", [out3, views[k], offsets[k]])

    def slice_grad(self, node):
        index = node.attrs["index"]
        out = self.value(node)
        if len(node.shape) == 0 or len(index) != len(node.shape):
            raise Unsupported("slice_grad rank")
        if any(slice(*triple).indices(dim)[2] < 0 for dim, triple in zip(node.shape, index)):
            raise Unsupported("slice_grad with a negative step")
        self.call("_lib._fill", [out, 0.0])
        self.call("_lib.assign", [out.sliced(index), self.contiguous(node.inputs[0])])
