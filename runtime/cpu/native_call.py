"""Calls from the njit step driver to its kernels through symbols, not linking.

A plain call from one njit function to another makes Numba link the callee's
code into the caller and optimize and compile the whole again: the step of
W2 compiled every conv and matmul kernel a second time (its cold compile went
from 5 s to 10 s). `call_with_views(kernel, symbol, "<arguments>", bases...)`
(arguments: runtime/cpu/step_views.py) instead compiles
(or loads from the cache) the kernel on its own, binds its machine code's
address to a process-wide symbol (llvmlite's `add_symbol`), and emits a call
of that symbol with Numba's calling convention; the step's own module holds
just its body.

The symbol is resolved when the step's machine code is loaded. A step loaded
from Numba's cache in a fresh process therefore needs its symbols bound first:
`save_callees` writes, beside the generated module, which kernel and argument
types each symbol stands for, and `bind_callees` binds them before the first
call. No record (or an unreadable one) means the step's cached code cannot be
trusted: the caller purges it and the step compiles again, inside
`compiled_not_loaded`: another process compiling the same step may write its
code to the cache at any moment, and code loaded without its record would call
unbound symbols (a segmentation fault).
"""
import contextlib
import hashlib
import importlib
import os
import pickle
import tempfile

import llvmlite.binding as llvm
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from graphc.runtime.cpu import chunks
from graphc.runtime.cpu.step_views import (argument_type, base_fields, build_argument,
                                            parse_arguments)

_bound = {}     # symbol -> (module name, function name, argument types)


def _symbol(prefix, argtypes):
    digest = hashlib.sha1(repr(argtypes).encode()).hexdigest()[:12]
    return f"{prefix}_{digest}"


def bind(symbol, dispatcher, argtypes):
    """Compile (or load) `dispatcher` for `argtypes` and bind its address to `symbol`."""
    argtypes = tuple(argtypes)
    dispatcher.compile(argtypes)
    result = dispatcher.overloads[argtypes]
    llvm.add_symbol(symbol, result.library.get_pointer_to_function(result.fndesc.llvm_func_name))
    function = dispatcher.py_func
    _bound[symbol] = (function.__module__, function.__name__, argtypes)
    return result.signature.return_type


@intrinsic
def call_with_views(typingctx, kernel, prefix, arguments, *bases):
    """kernel(*<the arguments the text names>) through the symbol `prefix_<hash of the
    argument types>`; the views of `bases` are built here (runtime/cpu/step_views.py)."""
    return _typed_call(kernel, prefix, arguments, bases, count=None)


@intrinsic
def call_with_views_in_chunks(typingctx, kernel, prefix, count, arguments, *bases):
    """kernel(chunk, start, stop, *<the arguments>) over [0, count) on every thread: a
    parallel loop kernel (runtime/cpu/chunks.py), otherwise as call_with_views."""
    if not isinstance(count, types.Integer):
        return None
    return _typed_call(kernel, prefix, arguments, bases, count=count)


def _typed_call(kernel, prefix, arguments, bases, count):
    """(signature, codegen) of a call_with_views, or of a call in chunks of [0, count)
    when `count` (the count's type) is given."""
    literal = (isinstance(prefix, types.StringLiteral)
               and isinstance(arguments, types.StringLiteral))
    if not literal or not isinstance(kernel, types.Dispatcher):
        return None
    parsed = parse_arguments(arguments.literal_value)
    argtypes = tuple(argument_type(a, bases) for a in parsed)
    symbol = _symbol(prefix.literal_value, argtypes)
    restype = bind(symbol, kernel.dispatcher,
                   argtypes if count is None else chunks.kernel_types(argtypes))
    first_base = 3 if count is None else 4

    def views(context, builder, base_values):
        fields = base_fields(context, builder, bases, base_values)
        return [build_argument(context, builder, a, base_values, bases, fields) for a in parsed]

    def codegen(context, builder, signature, llargs):
        base_values = [builder.extract_value(llargs[first_base], i) for i in range(len(bases))]
        if count is None:
            function_type = context.call_conv.get_function_type(restype, argtypes)
            callee = cgutils.get_or_insert_function(builder.module, function_type, symbol)
            status, result = context.call_conv.call_function(
                builder, callee, restype, argtypes, views(context, builder, base_values))
        else:   # the views are built in the thunk, on each thread
            size = context.cast(builder, llargs[2], count, types.int64)
            status = chunks.emit_chunked_call(context, builder, symbol, argtypes, base_values,
                                              size, bind, arguments_of=views)
            result = context.get_dummy_value()
        with cgutils.if_unlikely(builder, status.is_error):
            context.call_conv.return_status_propagate(builder, status)
        return result

    star = types.StarArgTuple.from_types(bases)
    if count is None:
        return restype(kernel, prefix, arguments, star), codegen
    return restype(kernel, prefix, count, arguments, star), codegen


def callees_path(module):
    return module.__file__ + ".callees"


def save_callees(module, prefix):
    """Record every bound symbol of `prefix` beside `module` (atomically)."""
    record = {s: entry for s, entry in _bound.items() if s.startswith(prefix)}
    path = callees_path(module)
    handle, temporary = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    try:
        with os.fdopen(handle, "wb") as file:
            pickle.dump((prefix, record), file)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def bind_callees(module, prefix):
    """Bind the symbols recorded for `module`; False if there is no usable record."""
    try:
        with open(callees_path(module), "rb") as file:
            saved_prefix, record = pickle.load(file)
        if saved_prefix != prefix or not record:
            return False
        for symbol, (module_name, function_name, argtypes) in record.items():
            owner = module if module_name == module.__name__ else \
                importlib.import_module(module_name)
            bind(symbol, getattr(owner, function_name), argtypes)
    except Exception:       # missing, truncated, stale: compile the step again
        return False
    return True


class _NeverLoads:
    """A dispatcher's Numba cache that never loads cached code; saves still go through."""

    def __init__(self, cache):
        self.cache = cache

    def load_overload(self, *args, **kwargs):
        return None

    def __getattr__(self, name):
        return getattr(self.cache, name)


@contextlib.contextmanager
def compiled_not_loaded(dispatcher):
    """Within: `dispatcher` compiles new signatures instead of loading them from the
    cache, so that compiling binds the symbols its code calls."""
    cache = dispatcher._cache
    dispatcher._cache = _NeverLoads(cache)
    try:
        yield
    finally:
        dispatcher._cache = cache
