"""The CPU backend's whole-step driver: one njit function, `step`, appended to the
generated module, that calls every kernel of the step in schedule order on
views of the arena (DESIGN.md, "Runtime"): one Python call per step.

    step(arena, <feeds...>, <variables' storage...>, <array constants...>,
         <gather tables...>, <conv work arrays...>, ints, err) -> (site, code)

Inside, each arena buffer is `_view(arena, offset, "float32", "64,128")` (a 0-d
value its 1-element 1-D view), each alias a `_reshaped`/`_T` view of its base
(intrinsics of runtime/cpu/views.py), and every kernel is called through
`_call(kernel, "<symbol>", (args...))` (runtime/cpu/native_call.py): the
step's own compiled code stays small. Each kernel runs as the Python driver
runs it: its library call (the njit
kernels of runtime/cpu/library.py, the same choice of kernel as
runtime/cpu/dispatch.py) then its loop function on flat views. Integer
attributes (strides, paddings, axes) are read from the int64 array `ints`, not
written as literals: Numba compiles a kernel once per literal value it is
called with, so literals made every new conv configuration a new compile.
After a kernel that can fail (a loop's one_hot label check, take,
take_grad) a nonzero code returns (site, code) at once, site numbering
`Driver.sites`, so that Python raises the same RuntimeFailure as before.

With check_numerics, after each kernel the step returns (site, 1) at the first
output holding a NaN or an Inf, and Python names the node (CpuPlan._check).

`render_driver` gives None (the plan keeps its Python driver) for a graph with
a library op that only NumPy's reference runs (argmax, pad, max_pool2d_select,
mixed dtypes, 4-D matmul, ...).
slice_grad, which dispatch.py leaves to the reference, is a zero fill and a
slice assignment here (the same values).
"""
import numba
import numpy as np

from graphc.runtime.cpu.conv_variants import conv_kernel_name, conv_variant, conv_workspace_shape
from graphc.runtime.cpu.dispatch import _conv_ints, _pool_ints
from graphc.runtime.cpu.library import concat_views, draw_arguments
from graphc.runtime.cpu.views import aligned_empty

CONV_OPS = ("conv2d", "conv2d_grad_input", "conv2d_grad_weight")
HEADER = ("\nfrom graphc.runtime.cpu import library as _lib\n"
          "from graphc.runtime.cpu.native_call import call_native as _call\n"
          "from graphc.runtime.cpu.views import arena_view as _view, flat as _flat, "
          "reshaped as _reshaped, transposed as _T, any_layout as _any\n\n")
SYMBOLS = "SYMBOL_PREFIX"     # replaced by the backend with one unique to the whole module


class Unsupported(Exception):
    """The step cannot run as one njit function."""


class Driver:
    """The rendered `step` and what to pass it."""

    def __init__(self, source, feeds, variables, statics, sites):
        self.source = source
        self.feeds = feeds              # placeholder nodes, in program.inputs order
        self.variables = variables      # variable nodes whose storage is passed
        self.statics = statics          # constants, gather tables, conv work arrays
        # site number - 1 -> ("loop", LoopSource, kernel) | ("take", node) | ("check", kernel)
        self.sites = sites


def render_driver(plan):
    """The source of the njit `step` for `plan` (a CpuPlan), or None."""
    driver = build_driver(plan)
    return None if driver is None else driver.source


def build_driver(plan):
    try:
        return _Renderer(plan).render()
    except Unsupported:
        return None


def _dims(shape):
    return ",".join(str(int(d)) for d in shape)


class _Renderer:
    def __init__(self, plan):
        self.plan, self.fusion, self.memory = plan, plan.fusion, plan.memory
        self.lines = []
        self.names = {}             # node -> (local name, layout "C" | "F")
        self.flats = {}             # array's local name -> local name of its 1-D view
        self.feeds = list(plan.program.inputs)
        self.variables, self.constants, self.statics = [], [], []
        self.static_names = []
        self.sites = []
        self.ints = []              # every integer attribute, read as ints[i]
        self.counter = 0
        self.calls = 0

    # -- values ------------------------------------------------------------------------
    def emit(self, text):
        self.lines.append("    " + text)

    def fresh(self, prefix):
        self.counter += 1
        return f"{prefix}{self.counter}"

    def static(self, array, prefix):
        name = f"{prefix}{len(self.statics)}"
        self.statics.append(array)
        self.static_names.append(name)
        return name

    def call(self, function, args):
        """`function(*args)` through its own symbol (runtime/cpu/native_call.py)."""
        self.calls += 1
        return f'_call({function}, "{SYMBOLS}_{self.calls}", ({", ".join(args)},))'

    def int_args(self, values):
        """`ints[i], ...` for these integers: typed int64, not literals."""
        start = len(self.ints)
        self.ints.extend(int(v) for v in values)
        return ", ".join(f"ints[{i}]" for i in range(start, len(self.ints)))

    def value(self, node):
        """(name, layout) of node's array in the driver (emitting its view once)."""
        if node in self.names:
            return self.names[node]
        if node in self.fusion.aliases:
            base, layout = self.value(node.inputs[0])
            name = self.fresh("a")
            if node.op.name == "transpose":
                if len(node.shape) != 2 or layout != "C" or tuple(node.attrs["axes"]) != (1, 0):
                    raise Unsupported("transpose alias")
                self.emit(f"{name} = _T({base})")
                layout = "F"
            elif node.op.name in ("reshape", "expand_dims", "squeeze"):
                if layout != "C":
                    raise Unsupported("reshape of a non-contiguous view")
                shape = node.shape if len(node.shape) else (1,)
                self.emit(f'{name} = _reshaped({base}, "{_dims(shape)}")')
            else:
                raise Unsupported(f"alias {node.op.name}")
            self.names[node] = (name, layout)
            return self.names[node]
        where = self.memory.location(node)
        kind = where[0]
        if kind == "arena":
            offset = where[1]
            name = self.fresh("b")
            dtype, shape = np.dtype(node.dtype).name, node.shape or (1,)
            self.emit(f'{name} = _view(arena, {offset}, "{dtype}", "{_dims(shape)}")')
        elif kind == "variable":
            variable = where[1]
            if variable not in self.variables:
                self.variables.append(variable)
            name = f"var{self.variables.index(variable)}"
        elif kind == "input":
            name = f"feed{self.feeds.index(where[1])}"
        elif kind == "constant":
            value = np.ascontiguousarray(node.attrs["value"], dtype=node.dtype)
            name = self.static(value.reshape(value.shape or (1,)), "const")
        else:   # pragma: no cover
            raise Unsupported(kind)
        self.names[node] = (name, "C")
        return self.names[node]

    def contiguous(self, node):
        name, layout = self.value(node)
        return name if layout == "C" else f"np.ascontiguousarray({name})"

    def flat(self, node):
        """A 1-D view of node's array, emitted once and reused by every later kernel
        (each statement of the step costs Numba compile time); a non-contiguous
        value is copied at each use instead, since its base may change between uses."""
        name, layout = self.value(node)
        if layout != "C":
            return f"_flat(np.ascontiguousarray({name}))"
        if name not in self.flats:
            self.flats[name] = self.fresh("f")
            self.emit(f"{self.flats[name]} = _flat({name})")
        return self.flats[name]

    # -- kernels -----------------------------------------------------------------------
    def render(self):
        plan = self.plan
        for kernel in self.fusion.kernels:
            if kernel.library is not None:
                self.library(kernel.library)
            if kernel in plan.loops:
                loop = plan.loops[kernel]
                args = [self.flat(n) + (f"[{offset}:]" if offset else "")
                        for n, offset in zip(loop.inputs, loop.offsets)]
                args += [self.flat(n) for n in loop.outputs]
                args += [self.static(t, "table") for t in loop.tables]
                self.emit(self.call(loop.name, args + ["err"]))
                if loop.error_checks:
                    self.sites.append(("loop", loop, kernel))
                    self.emit("if err[0] != 0:")
                    self.emit(f"    return {len(self.sites)}, err[0]")
            if plan.check_numerics:
                self.check_numerics(kernel)
        # every output and update value must have storage the caller can read
        self.static(np.array(self.ints or [0], np.int64), "ints")
        self.static_names[-1] = "ints"
        params = ["arena"] + [f"feed{i}" for i in range(len(self.feeds))] + \
            [f"var{i}" for i in range(len(self.variables))] + self.static_names + ["err"]
        body = ["@njit(cache=True)", f"def step({', '.join(params)}):", "    err[0] = 0"] + \
            self.lines + ["    return 0, 0"]
        source = HEADER + "# the whole step: each kernel in schedule order\n" + "\n".join(body) + "\n"
        return Driver(source, self.feeds, self.variables, tuple(self.statics), self.sites)

    def check_numerics(self, kernel):
        """Return at the first output of `kernel` holding a NaN or an Inf (site "check":
        Python then names the node, as the Python driver's check does)."""
        checked = [n for n in kernel.outputs if np.dtype(n.dtype) in (np.float32, np.float64)
                   and (n in self.memory.buffers or n in self.memory.variable_storage)]
        if not checked:
            return
        self.sites.append(("check", kernel))
        tests = " or ".join(self.call(f"_lib.nonfinite{8 * np.dtype(n.dtype).itemsize}",
                                      [self.flat(n)]) for n in checked)
        self.emit(f"if {tests}:")
        self.emit(f"    return {len(self.sites)}, 1")

    def library(self, node):
        name = node.op.name
        if name == "slice_grad":
            return self.slice_grad(node)
        out_name, out_layout = self.value(node)
        floats = [i for i in node.inputs if np.dtype(i.dtype).kind == "f"]
        if np.dtype(node.dtype).kind != "f" or any(np.dtype(i.dtype) != np.dtype(node.dtype)
                                                    for i in floats):
            raise Unsupported("dtypes")
        if out_layout != "C":   # pragma: no cover (library outputs are buffers)
            raise Unsupported("output layout")
        if name == "matmul":
            a, b = node.inputs
            ndim = len(node.shape)
            if len(a.shape) != ndim or len(b.shape) != ndim or ndim not in (2, 3):
                raise Unsupported("matmul rank")
            args = []
            for x in (a, b):
                x_name, layout = self.value(x)
                if layout != "C" and not (layout == "F" and ndim == 2):
                    raise Unsupported("matmul layout")
                args.append(x_name)
            self.emit(self.call("_lib.matmul", [f"_any({args[0]})", f"_any({args[1]})", out_name]))
        elif name in CONV_OPS:
            first, second = node.inputs
            x_shape, w_shape, y_shape = {
                "conv2d": (first.shape, second.shape, node.shape),
                "conv2d_grad_input": (node.shape, second.shape, first.shape),
                "conv2d_grad_weight": (first.shape, node.shape, second.shape)}[name]
            ints = self.int_args(_conv_ints(node.attrs))
            operands = f"{self.contiguous(first)}, {self.contiguous(second)}, {out_name}"
            variant = conv_variant(name, x_shape, w_shape, y_shape, node.attrs)
            kernel = f"_lib.{conv_kernel_name(name, variant)}"
            if variant == "direct":
                self.emit(self.call(kernel, [operands, ints]))
            else:
                shape = conv_workspace_shape(name, variant, x_shape, w_shape, y_shape,
                                             chunks=numba.get_num_threads())
                work = aligned_empty(int(np.prod(shape)) * np.dtype(node.dtype).itemsize)
                work = self.static(work.view(node.dtype).reshape(shape), "work")
                self.emit(self.call(kernel, [operands, ints, work]))
        elif name in ("max_pool2d", "max_pool2d_grad"):
            dh, dw = node.attrs["dilation"]
            ints = self.int_args((*_pool_ints(node.attrs), dh, dw))
            operands = ", ".join(self.contiguous(i) for i in node.inputs)
            self.emit(self.call(f"_lib.{name}", [operands, out_name, ints]))
        elif name in ("avg_pool2d", "avg_pool2d_grad"):
            attrs = node.attrs
            ints = self.int_args((*_pool_ints(attrs), attrs["count_include_pad"],
                                  attrs["divisor_override"] or 0))
            self.emit(self.call(f"_lib.{name}", [self.contiguous(node.inputs[0]), out_name, ints]))
        elif name == "concatenate":
            axis = node.attrs["axis"]
            before, after = concat_views(node.shape, axis)
            out3 = self.fresh("c")
            self.emit(f'{out3} = _reshaped({out_name}, "{before},{node.shape[axis]},{after}")')
            views, offsets = [], [0]
            for piece in node.inputs:
                size = piece.shape[axis]
                views.append(f'_reshaped({self.contiguous(piece)}, "{before},{size},{after}")')
                offsets.append(offsets[-1] + size)
            runs = [self.arena_run(piece) for piece in node.inputs]
            if sum(run is not None for run in runs) > 2:
                self.concat_runs(node, out3, runs, views, offsets)
            elif len({(np.dtype(p.dtype), self.value(p)[1]) for p in node.inputs}) == 1:
                # one call over a tuple of same-typed pieces (the step compiles faster)
                starts = self.static(np.array(offsets[:-1], np.int64), "starts")
                pieces = f"({', '.join(views)},)"
                self.emit(self.call("_lib.concat_pieces", [out3, pieces, starts]))
            else:
                for view, offset in zip(views, offsets):
                    self.emit(self.call("_lib.concat_piece", [out3, view, self.int_args([offset])]))
        elif name in ("random_uniform", "random_normal"):
            seed, params = draw_arguments(node)
            counter, _ = self.value(node.inputs[0])
            self.emit(self.call(f"_lib.{name}", [
                f"_flat({counter})", self.static(seed, "seed"), self.static(params, "draw"),
                f"_flat({out_name})"]))
        elif name in ("take", "take_grad"):
            values, indices = node.inputs[:2]
            code = self.fresh("code")
            self.emit(f"{code} = " + self.call(f"_lib.{name}", [
                self.contiguous(values), self.contiguous(indices), out_name,
                self.int_args([node.attrs["axis"], int(node.attrs["wrap_negative"])])]))
            self.sites.append(("take", node))
            self.emit(f"if {code} != 0:")
            self.emit(f"    return {len(self.sites)}, {code}")
        else:
            raise Unsupported(name)

    def arena_run(self, piece):
        """The element offset of `piece` in the arena if it is a C-contiguous run of it
        (an arena buffer or a reshape of one), else None."""
        where, (_, layout) = self.memory.location(piece), self.value(piece)
        itemsize = np.dtype(piece.dtype).itemsize
        if where[0] != "arena" or layout != "C" or where[1] % itemsize:
            return None
        return where[1] // itemsize

    def concat_runs(self, node, out3, runs, views, offsets):
        """A concatenate whose pieces are mostly runs of the arena: those in one call
        of _lib.concat_runs, typed by three int arrays (a tuple of W3's 50 stacked
        states as pieces took seconds to compile), the others one call each."""
        axis, dtype = node.attrs["axis"], np.dtype(node.dtype)
        inside = [k for k, run in enumerate(runs) if run is not None]
        source = self.fresh("s")
        self.emit(f'{source} = _view(arena, 0, "{dtype.name}", '
                  f'"{self.memory.arena_bytes // dtype.itemsize}")')
        table = lambda values, prefix: self.static(np.array(values, np.int64), prefix)  # noqa: E731
        self.emit(self.call("_lib.concat_runs", [
            out3, source, table([runs[k] for k in inside], "runs"),
            table([node.inputs[k].shape[axis] for k in inside], "sizes"),
            table([offsets[k] for k in inside], "starts")]))
        for k, run in enumerate(runs):
            if run is None:
                self.emit(self.call("_lib.concat_piece", [out3, views[k],
                                                          self.int_args([offsets[k]])]))

    def slice_grad(self, node):
        index = node.attrs["index"]
        out_name, _ = self.value(node)
        if len(node.shape) == 0 or len(index) != len(node.shape):
            raise Unsupported("slice_grad rank")
        parts = []
        for dim, triple in zip(node.shape, index):
            start, stop, step = slice(*triple).indices(dim)
            if step < 0:
                raise Unsupported("slice_grad with a negative step")
            parts.append(f"{start}:{max(start, stop)}:{step}")
        self.emit(self.call("_lib._fill", [out_name, "0.0"]))
        self.emit(self.call("_lib.assign", [f"{out_name}[{', '.join(parts)}]",
                                            self.contiguous(node.inputs[0])]))
