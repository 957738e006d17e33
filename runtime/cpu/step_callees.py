"""The kernels a step will compile, and for which argument types, found without
compiling anything.

The njit step (runtime/cpu/driver.py) is straight-line code: views of the
arena, then `_call(kernel, symbol, (args...))` for each kernel, in schedule
order. Typing the step compiles every kernel it calls, one after another.
`step_callees` instead runs the step's Python body on stand-ins that carry only
a Numba type: each view intrinsic gives the type its own typing rule gives
(runtime/cpu/views.py's, called directly, so the two cannot disagree), and each
`_call` records (kernel, argument types). The compile helper
(runtime/cpu/precompile.py) compiles that list from the end while the step
compiles from the start.

A construct the stand-ins do not model (`Unmodelled`, or a type Numba's
typing refuses) ends the list: it is then the calls before it. A wrong guess
costs only the helper's time: the step compiles for the types it really has.
"""
import operator
import types as pytypes

from numba import typeof, types
from numba.core.registry import cpu_target

from graphc.runtime.cpu import views


class Unmodelled(Exception):
    """The step does something the stand-ins cannot type."""


class Typed:
    """A value of the step during the abstract run: only its Numba type. Every test
    of a value (`err[0] != 0`, `code != 0`) is false: the run takes the path of a
    step that succeeds."""

    def __init__(self, numba_type):
        self.type = numba_type

    def __getitem__(self, index):
        index_type = _index_type(index)
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


def _index_type(index):
    if isinstance(index, tuple):
        return types.BaseTuple.from_types([_index_type(i) for i in index])
    if isinstance(index, slice):
        return types.slice3_type if index.step is not None else types.slice2_type
    return _type(index)


def _type(value):
    """The Numba type the step's code gives `value` as an argument."""
    if isinstance(value, Typed):
        return value.type
    if isinstance(value, (int, str)) and not isinstance(value, bool):
        return types.literal(value)
    if isinstance(value, tuple):
        return types.BaseTuple.from_types([types.unliteral(_type(v)) for v in value])
    return typeof(value)


def _intrinsic(intrinsic):
    """A stand-in for a view intrinsic: its own typing rule, applied to types."""
    def typed(*args):
        found = intrinsic._defn(cpu_target.typing_context, *[_type(a) for a in args])
        if found is None:
            raise Unmodelled(f"{intrinsic._name} of {[_type(a) for a in args]}")
        return Typed(found[0].return_type)
    return typed


class _NumPy:
    """The one NumPy function a step calls on arrays."""

    @staticmethod
    def ascontiguousarray(x):
        return Typed(x.type.copy(layout="C"))


def step_callees(module, argtypes):
    """[(kernel dispatcher, argument types)] that `module.step` calls with arguments of
    `argtypes`, first call first, each pair once."""
    found = []

    def call(kernel, prefix, args):
        entry = (kernel, tuple(types.unliteral(_type(a)) for a in args))
        if entry not in found:
            found.append(entry)
        return Typed(types.int64)

    cpu_target.typing_context.refresh()     # (its registries load on first use)
    step = module.step.py_func
    scope = dict(step.__globals__, _call=call, np=_NumPy, _view=_intrinsic(views.arena_view),
                 _flat=_intrinsic(views.flat), _reshaped=_intrinsic(views.reshaped),
                 _T=_intrinsic(views.transposed), _any=_intrinsic(views.any_layout))
    abstract = pytypes.FunctionType(step.__code__, scope, closure=step.__closure__)
    try:
        abstract(*[Typed(t) for t in argtypes])
    except Exception:       # noqa: BLE001 (Unmodelled, or Numba refusing a type: stop here)
        pass
    return found
