"""The runtime's njit functions loaded from Numba's cache without its registry refresh.

On a cache hit, Numba's `Dispatcher.compile` first calls the target context's
`refresh()`, which imports and installs every implementation registry Numba
has: about 0.25 s of a warm process's first step (W1's: 0.35-0.39 s with it,
0.13-0.16 without), paid at the first njit function loaded. Loading needs
none of them: a cached overload is machine code, its CPython wrapper
included. It needs Numba's runtime (NRT) to have registered its symbols, or
LLVM aborts the process. `load_cached` does what `Dispatcher.compile` does on a
hit, without the refresh; on a miss the caller compiles, and Numba's compiler
refreshes the context then, as always.

Used for every kernel the step program calls (step_program.compiled), for
`run_program` itself before the step's first call, and for the njit helpers
called from Python while a plan is built (conv_runs.runs_workspace).
"""
import inspect

from numba.core.caching import Cache
from numba.core.compiler_lock import global_compiler_lock
from numba.core.runtime import rtsys


def load_cached(dispatcher, argtypes):
    """Whether `dispatcher` now has its overload for the Numba types `argtypes`: compiled
    before in this process, or loaded from Numba's cache here. False: not cached."""
    argtypes = tuple(argtypes)
    with global_compiler_lock:
        if argtypes in dispatcher.overloads:
            return True
        cache, context = dispatcher._cache, dispatcher.targetctx
        if not isinstance(cache, Cache):        # (caching off: Numba's NullCache)
            return False
        rtsys.initialize(context)
        with cache._guard_against_spurious_io_errors():
            result = cache._load_overload(argtypes, context)
        if result is None:
            return False
        dispatcher._cache_hits[argtypes] += 1
        if not result.objectmode:
            context.insert_user_function(result.entry_point, result.fndesc, [result.library])
        dispatcher.add_overload(result)
        return True


def load_for_call(dispatcher, *arguments):
    """load_cached for the types Numba gives `arguments` when Python calls `dispatcher`
    (the arguments of a `*parameter` folded into one tuple, as Numba's call does)."""
    parameters = list(inspect.signature(dispatcher.py_func).parameters.values())
    if parameters and parameters[-1].kind is inspect.Parameter.VAR_POSITIONAL:
        fixed = len(parameters) - 1
        arguments = (*arguments[:fixed], tuple(arguments[fixed:]))
    return load_cached(dispatcher, [dispatcher.typeof_pyval(a) for a in arguments])
