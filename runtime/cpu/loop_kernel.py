"""The generated module's loop kernels: Numba dispatchers that compile through
runtime/cpu/kernel_ir.py, with a cache of their own, and through Numba otherwise.

`@loop_kernel(...)` (the generated source's decorator, with njit's options)
makes a `LoopKernel`. Its `compile(argtypes)` is what the step program
(runtime/cpu/step_program.py's `compiled`) and the compile helper call: it lowers the function's syntax tree to LLVM IR and has Numba's code
library optimize and compile it; only a kernel the lowering does not support
(`kernel_ir.Unsupported`, or a parallel=True kernel) is compiled by Numba, and
cached by Numba, as before.

A lowered kernel's object code is cached in the cache folder's `kernels/`
(runtime/cpu/ir_cache.py), named by a digest of the kernel's text without its
name (codegen.py's `source_key`), the argument types and the options (and the
runtime and the machine), not by its module: a graph that differs in one
layer, or in its learning rate (a literal in the update kernels), loads the
kernels it shares with a graph compiled before.
"""
import inspect
from types import SimpleNamespace

from numba import types
from numba.core import sigutils
from numba.core.compiler_lock import global_compiler_lock
from numba.core.registry import CPUDispatcher

from graphc.runtime.cpu import kernel_ir
from graphc.runtime.cpu.ir_cache import entry_digest, entry_path, load_entry, save_entry

LOWER = True        # False: every kernel compiles through Numba (tests compare the two)


def loop_kernel(cache=False, source_key=None, **options):
    """Decorator: `function` as a LoopKernel with njit's `options`; `source_key` (a hash
    of its text without its name, from codegen.py) names its cache entries."""
    def decorate(function):
        kernel = LoopKernel(py_func=function, locals={},
                            targetoptions={**options, "nopython": True, "boundscheck": None})
        kernel.source_key = source_key
        if cache:
            kernel.enable_caching()
        return kernel
    return decorate


class Lowered:
    """A kernel compiled by kernel_ir: the fields of Numba's CompileResult that the
    runtime reads (step_program.compiled)."""
    objectmode = False
    entry_point = None          # (no CPython wrapper: call it through PythonCall)

    def __init__(self, library, symbol, argtypes):
        self.library = library
        self.signature = types.none(*argtypes)
        self.fndesc = SimpleNamespace(llvm_func_name=symbol)


class LoopKernel(CPUDispatcher):
    """A Numba dispatcher whose `compile` lowers the kernel with kernel_ir first."""

    unsupported = None          # why the last kernel_ir lowering was refused, if it was
    source_key = None           # the hash of its text (no entries without one)

    def compile(self, sig):
        argtypes = tuple(sigutils.normalize_signature(sig)[0])
        with global_compiler_lock:
            if argtypes in self.overloads:
                return self.overloads[argtypes].entry_point
            lowered = self._lowered(argtypes) if LOWER and \
                not self.targetoptions.get("parallel") else None
            if lowered is None:
                return super().compile(sig)
            self.overloads[argtypes] = lowered
            return None

    def _lowered(self, argtypes):
        """A Lowered from the cache or compiled now; None when kernel_ir refuses it."""
        digest = self._digest(argtypes)
        cached = self.source_key is not None and hasattr(self._cache, "_cache_path")
        path = entry_path(digest) if cached else None
        loaded = load_entry(self.targetctx.codegen(), path)
        if loaded is not None:
            self._cache_hits[argtypes] += 1         # (Numba's counters: `stats`)
            return Lowered(loaded[1], loaded[0], argtypes)
        function = self.py_func
        # the symbol names the entry: the same name is the same code
        symbol = f"graphc_ir_{digest}"
        flags = kernel_ir.compile_flags(self.targetoptions)
        context = kernel_ir.target_context(flags)
        library = context.codegen().create_library(symbol)
        library.enable_object_caching()
        try:
            with context.push_code_library(library):
                module = kernel_ir.lower_kernel(flags, inspect.getsource(function),
                                                function.__globals__, argtypes, symbol)
        except kernel_ir.Unsupported as why:
            self.unsupported = str(why)
            return None
        library.add_ir_module(module)
        library.finalize()
        if path is not None:
            self._cache_misses[argtypes] += 1
            save_entry(path, symbol, library)
        return Lowered(library, symbol, argtypes)

    def _digest(self, argtypes):
        options = sorted((name, sorted(value) if isinstance(value, (set, frozenset)) else value)
                         for name, value in self.targetoptions.items())
        return entry_digest(self.targetctx.codegen(), (
            self.source_key or (self.py_func.__module__, self.py_func.__name__), argtypes,
            options))
