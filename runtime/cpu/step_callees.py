"""The kernels a step will compile, and for which argument types, found without
compiling anything.

The njit step (runtime/cpu/driver.py) is straight-line code: one
`_k(kernel, symbol, "<arguments>", bases...)` per kernel, in schedule order
(`_kc(kernel, symbol, count, ...)` for a loop kernel run in chunks: it records
the kernel and runtime/cpu/chunks.py's `launch`).
Typing the step compiles every kernel it calls, one after another.
`step_callees` instead runs the step's Python body on stand-ins that carry only
a Numba type: each `_k` records (kernel, argument types), the types read from
its arguments' text by the function the intrinsic itself uses
(runtime/cpu/step_views.py's `argument_type`), so the two cannot disagree. The
compile helper (runtime/cpu/precompile.py) compiles that list from the end
while the step compiles from the start.

A construct the stand-ins do not model (`Unmodelled`, or a type Numba's
typing refuses) ends the list: it is then the calls before it. A wrong guess
costs only the helper's time: the step compiles for the types it really has.
"""
import operator
import types as pytypes

from numba import typeof, types
from numba.core.registry import cpu_target

from graphc.runtime.cpu import chunks
from graphc.runtime.cpu.step_views import argument_type, parse_arguments


class Unmodelled(Exception):
    """The step does something the stand-ins cannot type."""


class Typed:
    """A value of the step during the abstract run: only its Numba type. Every test
    of a value (`err[0] != 0`, `code != 0`) is false: the run takes the path of a
    step that succeeds."""

    def __init__(self, numba_type):
        self.type = numba_type

    def __getitem__(self, index):
        index_type = _type(index)
        signature = cpu_target.typing_context.resolve_function_type(
            operator.getitem, (self.type, index_type), {})
        if signature is None:
            raise Unmodelled(f"{self.type}[{index_type}]")
        return Typed(signature.return_type)

    def __setitem__(self, index, value):
        pass

    def __ne__(self, other):
        return False

    def __bool__(self):
        return False


def _type(value):
    """The Numba type the step's code gives `value` (an index or a base array)."""
    if isinstance(value, Typed):
        return value.type
    if isinstance(value, int) and not isinstance(value, bool):
        return types.literal(value)
    return typeof(value)


def step_callees(module, argtypes):
    """[(kernel dispatcher, argument types)] that `module.step` calls with arguments of
    `argtypes`, first call first, each pair once."""
    found = []

    def record(entry):
        if entry not in found:
            found.append(entry)

    def types_of(arguments, bases):
        base_types = [_type(b) for b in bases]
        return tuple(argument_type(a, base_types) for a in parse_arguments(arguments))

    def call(kernel, prefix, arguments, *bases):
        record((kernel, types_of(arguments, bases)))
        return Typed(types.int64)

    def call_in_chunks(kernel, prefix, count, arguments, *bases):
        record((kernel, chunks.kernel_types(types_of(arguments, bases))))
        record((chunks.launch, chunks.LAUNCH_ARGS))

    cpu_target.typing_context.refresh()     # (its registries load on first use)
    step = module.step.py_func
    scope = dict(step.__globals__, _k=call, _kc=call_in_chunks)
    abstract = pytypes.FunctionType(step.__code__, scope, closure=step.__closure__)
    try:
        abstract(*[Typed(t) for t in argtypes])
    except Exception:       # noqa: BLE001 (Unmodelled, or Numba refusing a type: stop here)
        pass
    return found
