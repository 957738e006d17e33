"""`gc.compile` and `Executable`: the calling convention every device shares.

An executable is called with NumPy arrays (positionally in `inputs` order, by
placeholder name, or as one dict), checks every feed before running, returns
NumPy arrays, and holds variables between calls. Updates are atomic: every
output and new value is computed from the old values first, then all are
written, so a failed call leaves every variable as it was. Calls from several
threads run one at a time (`_ONE_STEP_AT_A_TIME`).
"""
import logging
import numbers
import threading
import time

import numpy as np

from graphc import dtypes, runtime
from graphc.errors import (ArgumentError, CompileError, DtypeError, FeedError, GraphcError,
                           ShapeError, user_location)
from graphc.graph import format_shape
from graphc.program import specialize
from graphc.tensor import Tensor, as_node

# Steps run one at a time in a process: executables share variables (a train and
# an eval step) and each runs over its own arena, so calls from several threads
# (a server's pool) would interleave their writes. The step program's run holds the GIL,
# but fetching outputs, writing updates and the Python driver do not. Re-entrant, so
# a thread that holds it (load_state_dict, profile) never waits for itself.
_ONE_STEP_AT_A_TIME = threading.RLock()

log = logging.getLogger("graphc")


def compile(outputs, inputs=None, updates=None, device=None, check_numerics=False,
            optimize=None):
    """Compile `outputs` (a Tensor or a list of them) into an `Executable`.

    inputs:  the placeholders, in the order a call feeds them (default: every
             placeholder the outputs need, in creation order)
    updates: {variable: new value} written after each call
    device:  "cpu" (the default: fused Numba kernels), "reference" (NumPy, node
             by node: the semantics); None: $GRAPHC_DEVICE, else "cpu"
    optimize: run the pass pipeline before the backend (default: what the
             device does; the reference device runs the graph as built)
    """
    loc = user_location()
    single = isinstance(outputs, Tensor)
    if not single and not isinstance(outputs, (list, tuple)):
        raise CompileError(f"outputs must be a Tensor or a list of Tensors, got "
                           f"{type(outputs).__name__}", op="compile", loc=loc)
    output_list = [outputs] if single else list(outputs)
    for i, out in enumerate(output_list):
        if not isinstance(out, Tensor):
            raise CompileError(f"outputs[{i}] is a {type(out).__name__}, not a Tensor",
                               op="compile", loc=loc)
    update_pairs = _update_pairs(updates or {}, loc)
    graph = (output_list or [v.tensor for v, _ in update_pairs] or [None])[0]
    graph = graph.graph if graph is not None else None
    update_pairs += _side_updates(graph, output_list, update_pairs)
    update_pairs += _rng_update(graph, output_list, update_pairs)
    roots = [o.node for o in output_list] + [value for _, value in update_pairs]
    nodes = graph.ancestors(roots + [var for var, _ in update_pairs]) if graph is not None else set()
    inputs = _input_placeholders(inputs, nodes, loc)
    nodes |= set(inputs)                # fed even if nothing reads them
    backend = runtime.backend(device, loc)
    optimize = backend.optimizes if optimize is None else bool(optimize)
    return Executable(nodes, inputs, [o.node for o in output_list], update_pairs,
                      backend, single, check_numerics, optimize)


def _update_pairs(updates, loc):
    if not isinstance(updates, dict):
        raise CompileError(f"updates must be a dict {{variable: new value}}, got "
                           f"{type(updates).__name__}", op="compile", loc=loc)
    pairs = []
    for var, value in updates.items():
        if not isinstance(var, Tensor) or var.op != "variable":
            what = f"{var.name} is a {var.op} node" if isinstance(var, Tensor) else repr(var)
            raise CompileError(f"update of a non-variable: {what}", op="compile", loc=loc)
        try:
            value = as_node(value, var.graph, like=var.node)
        except GraphcError as error:
            error.message = f"the new value of variable '{var.name}': {error.message}"
            raise error.located("compile", loc) from None
        if len(value.shape) != len(var.shape) or any(
                d is not None and d != v for d, v in zip(value.shape, var.shape)):
            made = f" (the value is {value.name}, made at {value.loc})" if value.loc else ""
            raise ShapeError(f"update of variable '{var.name}' of shape {format_shape(var.shape)} "
                             f"with a value of shape {format_shape(value.shape)}{made}",
                             op="compile", loc=loc)
        if value.dtype != var.dtype:
            raise DtypeError(f"update of variable '{var.name}' of dtype {var.dtype} with a "
                             f"value of dtype {value.dtype} (use .astype)", op="compile", loc=loc)
        pairs.append((var.node, value))
    return pairs


def _side_updates(graph, outputs, pairs):
    """Updates that ops registered as side effects (batch norm's running stats)."""
    if graph is None or not graph.side_updates:
        return []
    needed = graph.ancestors([o.node for o in outputs] + [v for _, v in pairs])
    return graph.side_update_pairs(needed, taken={var for var, _ in pairs})


def _rng_update(graph, outputs, pairs):
    """Advance the random counter after each call that draws random numbers."""
    counter = graph.rng_counter if graph is not None else None
    if counter is None or counter not in graph.ancestors([o.node for o in outputs]
                                                         + [v for _, v in pairs]):
        return []
    return [(counter, (counter.tensor + 1).node)]


def _input_placeholders(inputs, nodes, loc):
    needed = sorted((n for n in nodes if n.op.name == "placeholder"), key=lambda n: n.id)
    if inputs is None:
        return needed
    if not isinstance(inputs, (Tensor, list, tuple)):
        raise CompileError(f"inputs must be a list of placeholders, got "
                           f"{type(inputs).__name__}", op="compile", loc=loc)
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    for i, ph in enumerate(inputs):
        if not isinstance(ph, Tensor) or ph.op != "placeholder":
            what = f"a {ph.op} node ({ph.name})" if isinstance(ph, Tensor) else repr(ph)
            raise CompileError(f"inputs[{i}] must be a placeholder, got {what}",
                               op="compile", loc=loc)
        if any(other is ph for other in inputs[:i]):
            raise CompileError(f"placeholder '{ph.name}' is listed twice in inputs "
                               f"(inputs[{inputs.index(ph)}] and inputs[{i}])",
                               op="compile", loc=loc)
    given = {ph.node for ph in inputs}
    for ph in needed:
        if ph not in given:
            raise CompileError(f"placeholder '{ph.name}' ({format_shape(ph.shape)} {ph.dtype}) "
                               "is needed by the outputs but is not in inputs",
                               op="compile", loc=loc)
    return [ph.node for ph in inputs]


class Executable:
    """A compiled computation: call it with arrays, get arrays back."""

    def __init__(self, nodes, inputs, outputs, updates, backend, single, check_numerics,
                 optimize):
        self._nodes = sorted(nodes, key=lambda n: n.id)     # creation order is topological
        self._inputs, self._outputs = inputs, outputs
        self._updates, self._backend, self._single = updates, backend, single
        self._check_numerics, self._optimize = check_numerics, optimize
        self._plans = {}
        self.program = None
        self.passes = []            # PassRecords of the last compiled signature
        self.stats = {"device": backend.name, "compile_seconds": 0.0, "signatures": 0}

    @property
    def inputs(self):
        return [p.tensor for p in self._inputs]

    @property
    def variables(self):
        found = {n for n in self._nodes if n.op.name == "variable"}
        return [n.tensor for n in sorted(found, key=lambda n: n.id)]

    @property
    def graph(self):
        """The graph last run (specialized to the last fed shapes)."""
        return self.program.graph if self.program else None

    def __call__(self, *args, **kwargs):
        feeds = self._bind(args, kwargs)
        with _ONE_STEP_AT_A_TIME:
            return self._run(feeds)

    def _run(self, feeds):
        plan = self._plan(tuple(tuple(a.shape) for a in feeds))
        if getattr(plan, "quiet_fp", False):        # it silences NumPy's warnings itself
            results, new_values = plan.run(feeds)
        else:
            with np.errstate(all="ignore"):
                results, new_values = plan.run(feeds)
        # every new value is staged before any is written: one may be another's old value
        staged = []
        for (var, _), value in zip(self._updates, new_values):
            state = var.attrs["state"]
            if hasattr(value, "fetch"):             # stays on a device (runtime/cuda)
                staged.append((state, value))
            elif value is state.value:              # written in place (runtime/cpu)
                staged.append((state, None))
            else:
                staged.append((state, np.array(value, dtype=var.dtype)))
        for state, value in staged:
            if value is None:
                state.version += 1
            elif hasattr(value, "fetch"):
                state.keep_on_device(value)
            else:
                state.value = value
        return results[0] if self._single else results

    def _plan(self, signature):
        plan = self._plans.get(signature)
        if plan is None:
            start = time.perf_counter()
            log.debug("compiling for new shapes: %s", ", ".join(
                f"{p.name}={format_shape(s)}" for p, s in zip(self._inputs, signature)))
            def specialized():
                return specialize(self._nodes, self._inputs, self._outputs, self._updates,
                                  signature)
            program = specialized()
            if self._optimize:       # the passes' snapshots are made when a picture asks
                from graphc.passes.pipeline import default_pipeline
                self.passes = default_pipeline().run(program, snapshots=False,
                                                     replay=specialized)
            plan = self._backend.build(program, check_numerics=self._check_numerics)
            self._plans[signature] = plan
            self.stats["compile_seconds"] += time.perf_counter() - start
            self.stats["signatures"] = len(self._plans)
            self.stats.update(plan.stats())
            from graphc.viz.dump import dump_if_requested   # GRAPHC_DUMP=DIR: write every stage
            dump_if_requested(self, plan)
        self.program = plan.program
        return plan

    # -- introspection -----------------------------------------------------------------
    def profile(self, *args, repeats=10, **kwargs):
        """Run the step `repeats` times kernel by kernel and time each kernel.

        Variables are not updated. Returns a `Profile` (print it for a table).
        """
        if isinstance(repeats, bool) or not isinstance(repeats, numbers.Integral) or repeats < 1:
            raise ArgumentError(f"repeats must be a positive int, got {repeats!r}",
                                op="profile", loc=user_location())
        feeds = self._bind(args, kwargs)
        with _ONE_STEP_AT_A_TIME, np.errstate(all="ignore"):
            plan = self._plan(tuple(tuple(a.shape) for a in feeds))
            return plan.profile(feeds, repeats)

    def fusion_report(self):
        """Which nodes became which kernel, and why each unfused edge was not fused."""
        fusion = getattr(self.program, "fusion", None) if self.program else None
        if fusion is None:
            return "no fusion: the graph was not compiled yet, or this device runs node by node"
        return fusion.describe()

    # -- feeds --------------------------------------------------------------------------
    def _bind(self, args, kwargs):
        """The feeds in `inputs` order, each checked; errors name the user's line."""
        if not kwargs and len(args) == len(self._inputs) and all(map(_ready, self._inputs,
                                                                      args)):
            return list(args)               # the per-call fast path: nothing to convert
        if any(isinstance(a, dict) for a in args):
            if len(args) > 1 or kwargs:
                raise FeedError("feed either one dict or arrays (by position or name), not "
                                f"both: got a dict and {len(args) - 1 + len(kwargs)} other "
                                "feed(s); put every feed in the dict", op="call",
                                loc=user_location())
            kwargs = {k.name if isinstance(k, Tensor) else k: v for k, v in args[0].items()}
            args = ()
        names = [p.name for p in self._inputs]
        if len(args) > len(names):
            raise FeedError(f"expected at most {len(names)} feeds ({', '.join(names)}), "
                            f"got {len(args)}", op="call", loc=user_location())
        values = dict(zip(names, args))
        for name, value in kwargs.items():
            if name not in names:
                raise FeedError(f"unknown feed '{name}'; the inputs are: {', '.join(names)}",
                                op="call", loc=user_location())
            if name in values:
                raise FeedError(f"placeholder '{name}' fed twice", op="call",
                                loc=user_location())
            values[name] = value
        feeds = []
        for ph in self._inputs:
            if ph.name not in values:
                raise FeedError(f"missing feed for placeholder '{ph.name}' "
                                f"({format_shape(ph.shape)} {ph.dtype})", op="call",
                                loc=user_location())
            value = values[ph.name]
            if _ready(ph, value):
                feeds.append(value)
            elif _is_device_array(value):
                feeds.append(self._device_feed(ph, value))
            else:
                feeds.append(_validate_feed(ph, value))
        return feeds

    def _device_feed(self, ph, value):
        """A CUDA array fed to a device that reads them in place of a host copy
        (runtime/cuda: a device-to-device copy into the feed's buffer), checked as a
        host array is, but never converted."""
        loc = user_location()
        accept = getattr(self._backend, "device_feed", None)
        if accept is None:
            raise FeedError(f"{_where(ph)} was fed a CUDA array ({type(value).__name__}); "
                            f'device="{self._backend.name}" reads host arrays: copy it to the '
                            "host first (numba.cuda: .copy_to_host(); torch: .cpu().numpy())",
                            op="call", loc=loc)
        array = accept(value)
        if array.dtype != ph.dtype:
            raise FeedError(f"{_where(ph)} expects dtype {ph.dtype}, got a CUDA array of "
                            f"{array.dtype} (device arrays are not converted: convert it on "
                            "the device)", op="call", loc=loc)
        _check_shape(ph, tuple(array.shape), loc)
        if not array.is_c_contiguous():
            raise FeedError(f"{_where(ph)}: a CUDA array feed must be C-contiguous "
                            f"(got strides {tuple(array.strides)})", op="call", loc=loc)
        return array

    # -- state ----------------------------------------------------------------------------
    def state_dict(self):
        """{variable name: a copy of its value} for every variable this executable reads."""
        with _ONE_STEP_AT_A_TIME:           # not halfway through another thread's update
            return {v.name: v.value for v in self.variables}

    def load_state_dict(self, state, strict=True):
        """Set variables from {name: array}; checks every entry before writing any."""
        by_name = {v.name: v for v in self.variables}
        loc = user_location()
        if not isinstance(state, dict):
            raise ArgumentError(f"state must be a dict {{variable name: array}} (as "
                                f"state_dict() returns), got {type(state).__name__}",
                                op="load_state_dict", loc=loc)
        if strict:
            missing = sorted(set(by_name) - set(state))
            unknown = sorted(set(state) - set(by_name))
            if missing or unknown:
                raise GraphcError(f"state dict mismatch: missing {missing}, unknown {unknown}",
                                  op="load_state_dict", loc=loc)
        staged = []
        for name, value in state.items():
            if name in by_name:
                holder = by_name[name].node.attrs["state"]
                probe = type(holder)(holder.value, holder.name, holder.trainable)
                probe.assign(value, loc=loc)
                staged.append((holder, probe.value))
        with _ONE_STEP_AT_A_TIME:
            for holder, value in staged:
                holder.value = value


def _ready(ph, value):
    """Whether `value` is already what _validate_feed would return (the per-call fast path)."""
    return (type(value) is np.ndarray and value.dtype == ph.dtype and value.flags.c_contiguous
            and value.ndim == len(ph.shape)
            and all(d is None or d == a for d, a in zip(ph.shape, value.shape)))


def _is_device_array(value):
    """A CUDA array: numba.cuda's (`__cuda_ndarray__`), or CuPy's, torch's, ... (the CUDA
    array interface)."""
    return getattr(value, "__cuda_ndarray__", False) is True or \
        hasattr(value, "__cuda_array_interface__")


def _where(ph):
    return f"placeholder '{ph.name}' (declared at {ph.loc})" if ph.loc else \
        f"placeholder '{ph.name}'"


def _check_shape(ph, shape, loc):
    if len(shape) != len(ph.shape) or any(
            d is not None and d != a for d, a in zip(ph.shape, shape)):
        raise FeedError(f"{_where(ph)} expects shape {format_shape(ph.shape)}, got "
                        f"{format_shape(shape)}", op="call", loc=loc)


def _validate_feed(ph, value):
    """The fed value as a contiguous array of the placeholder's dtype, or a FeedError."""
    loc = user_location()
    expected = f"{format_shape(ph.shape)} {ph.dtype}"
    try:
        array = np.asarray(value)
    except Exception as exc:   # ragged lists and other unconvertible things
        raise FeedError(f"{_where(ph)} expects {expected}; got an unconvertible "
                        f"{type(value).__name__} ({exc})", op="call", loc=loc) from None
    kind = {"u": "i"}.get(array.dtype.kind, array.dtype.kind)
    if kind not in "fib" or kind != ph.dtype.kind:
        raise FeedError(f"{_where(ph)} expects dtype {ph.dtype}, got {array.dtype}",
                        op="call", loc=loc)
    _check_shape(ph, array.shape, loc)
    return _converted(ph, array, loc)


def _converted(ph, array, loc):
    """`array` as a contiguous array of the placeholder's dtype, holding the same values:
    no silent wrap-around of integers (checked before converting) and no finite
    float64 value that became inf as float32 (checked after). Feeds of the
    placeholder's own dtype or one that always fits (int32 into int64) are not scanned."""
    try:
        dtypes.check_fits(array, ph.dtype)
        with np.errstate(over="ignore"):        # an overflow is refused just below, by name
            # ascontiguousarray turns a 0-d array into shape (1,): reshape back
            converted = np.ascontiguousarray(array, dtype=ph.dtype).reshape(array.shape)
        if converted.dtype != array.dtype:
            dtypes.check_no_overflow(array, converted)
    except GraphcError as error:
        raise FeedError(f"{_where(ph)}: {error.message}",
                        op="call", loc=loc) from None
    return converted
