"""The generated module's loop kernels: Numba dispatchers that compile through
runtime/cpu/kernel_ir.py, with a cache of their own, and through Numba otherwise.

`@loop_kernel(...)` (the generated source's decorator, with njit's options)
makes a `LoopKernel`. Its `compile(argtypes)` is what the step program
(runtime/cpu/step_program.py's `compiled`) and the compile helper call: it lowers the function's syntax tree to LLVM IR and has Numba's code
library optimize and compile it; only a kernel the lowering does not support
(`kernel_ir.Unsupported`, or a parallel=True kernel) is compiled by Numba, and
cached by Numba, as before.

A lowered kernel's object code is cached in the cache folder's `kernels/`,
named by a digest of the kernel's text without its name (codegen.py's
`source_key`), the runtime's fingerprint, the argument types, the options and
the machine (Numba's `magic_tuple`, the numba and llvmlite versions), not by
its module: a graph that differs in one layer, or in its learning rate (a
literal in the update kernels), loads the kernels it shares with a graph
compiled before. An entry is a SHA-256 of its payload, then the payload (the
symbol, Numba's serialized library): a truncated or corrupt entry fails the
check and is compiled again, never loaded; entries are written to a
temporary file and renamed, so two processes compiling one kernel each write
a whole entry.
"""
import hashlib
import inspect
import os
import pickle
import tempfile
from types import SimpleNamespace

import llvmlite
import numba
from numba import types
from numba.core import sigutils
from numba.core.compiler_lock import global_compiler_lock
from numba.core.registry import CPUDispatcher

from graphc.runtime.cache import cache_dir, runtime_fingerprint
from graphc.runtime.cpu import kernel_ir

LOWER = True        # False: every kernel compiles through Numba (tests compare the two)
KERNELS = "kernels"     # the cache folder's subfolder of lowered kernels


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
        path = self._entry_path(digest)
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
        key = repr((self.source_key or (self.py_func.__module__, self.py_func.__name__),
                    runtime_fingerprint(), argtypes, options,
                    self.targetctx.codegen().magic_tuple(), numba.__version__,
                    llvmlite.__version__))
        return hashlib.sha256(key.encode()).hexdigest()[:24]

    def _entry_path(self, digest):
        """Where the cache entry of `digest` lives: None for a kernel not cached."""
        if self.source_key is None or not hasattr(self._cache, "_cache_path"):
            return None
        return cache_dir() / KERNELS / f"{digest}.irk"


def save_entry(path, symbol, library):
    """Write `library` (compiled, defining `symbol`) as the cache entry at `path`."""
    payload = pickle.dumps((symbol, library.serialize_using_object_code()))
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(handle, "wb") as file:
        file.write(hashlib.sha256(payload).digest() + payload)
    os.replace(temporary, path)


def load_entry(codegen, path):
    """(symbol, library) of the entry at `path`; None (and the entry deleted) when it is
    absent, truncated, corrupt or unloadable."""
    if path is None or not path.is_file():
        return None
    try:
        data = path.read_bytes()
        checksum, payload = data[:32], data[32:]
        if hashlib.sha256(payload).digest() != checksum:
            raise ValueError("checksum")
        symbol, serialized = pickle.loads(payload)
        library = codegen.unserialize_library(serialized)
        if not library.get_pointer_to_function(symbol):
            raise ValueError("symbol")
    except Exception:       # noqa: BLE001 (any bad entry: compile again)
        path.unlink(missing_ok=True)
        return None
    return symbol, library
