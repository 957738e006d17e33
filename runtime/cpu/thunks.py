"""Thunks: one native function per kernel signature that calls a kernel on arguments
laid out in memory, so that the step program (runtime/cpu/step_program.py) calls
every kernel the same way.

A call's block is a run of int64 words: the kernel's address, then each argument
in turn,

    array          data address, shape..., strides...   (1 + 2 ndim words)
    int64          its value
    float64        its bits
    tuple          its arrays, one after another

A plain thunk, `thunk(block) -> int64` in Numba's calling convention, reads them,
calls the kernel in Numba's calling convention (an array as a struct without an
owner: the step keeps its memory alive) and returns the kernel's result as an
int64 (0 for none, 1 for True), or the kernel's exception, as Numba propagates it.
A chunk thunk, `thunk(block, chunk, start, stop)` (runtime/cpu/chunks.py's thunk
type), calls kernel(chunk, start, stop, *arguments): chunks.launch runs it on every
thread.

A thunk depends only on the kernel's argument and return types, so few are needed
(W3's 217 calls need 10) and they are shared by every graph: each is compiled once
and cached in the cache folder's `kernels/`, as lowered loop kernels are
(runtime/cpu/ir_cache.py).
"""

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.compiler_lock import global_compiler_lock
from numba.core.registry import cpu_target
from numba.np.arrayobj import populate_array

from graphc.runtime.cpu import chunks
from graphc.runtime.cpu.ir_cache import entry_digest, entry_path, load_entry, save_entry

WORD = ir.IntType(64)
PLAIN, CHUNKED = "plain", "chunked"
_compiled = {}      # (kind, restype, argtypes) -> (library, address)
counts = {"loaded": 0, "compiled": 0}       # thunks loaded from the cache / compiled


def thunk_address(kind, restype, argtypes):
    """The address of the thunk calling kernels of `argtypes` returning `restype`
    (`kind`: PLAIN or CHUNKED, whose kernels take chunk, start, stop first)."""
    key = (kind, restype, tuple(argtypes))
    with global_compiler_lock:
        if key not in _compiled:
            _compiled[key] = _load_or_compile(*key)
        return _compiled[key][1]


def _load_or_compile(kind, restype, argtypes):
    context = cpu_target.target_context
    codegen = context.codegen()
    name = f"graphc_thunk_{entry_digest(codegen, (kind, restype, argtypes))}"
    path = entry_path(name)
    loaded = load_entry(codegen, path)
    if loaded is not None:
        library = loaded[1]
        counts["loaded"] += 1
    else:
        context.refresh()       # (a process that only loaded code has not: numba_cache.py)
        library = codegen.create_library(name)
        library.enable_object_caching()
        module = context.create_module(name)
        emit = _emit_plain if kind == PLAIN else _emit_chunked
        emit(context, module, name, restype, argtypes)
        library.add_ir_module(module)
        library.finalize()
        save_entry(path, name, library)
        counts["compiled"] += 1
    return library, library.get_pointer_to_function(name)


def _read_arguments(context, builder, argtypes, block, first):
    """The kernel's arguments (LLVM values of `argtypes`) from the words of `block`
    (an i64*) from word `first` on."""
    position = first

    def word():
        nonlocal position
        value = builder.load(builder.gep(block, [ir.Constant(WORD, position)]))
        position += 1
        return value

    def argument(argtype):
        if isinstance(argtype, types.Array):
            array = context.make_array(argtype)(context, builder)
            data_type = context.get_data_type(argtype.dtype).as_pointer()
            data = builder.inttoptr(word(), data_type)
            shape = [word() for _ in range(argtype.ndim)]
            strides = [word() for _ in range(argtype.ndim)]
            itemsize = context.get_constant(types.intp, np.dtype(str(argtype.dtype)).itemsize)
            populate_array(array, data=data, shape=shape, strides=strides,
                           itemsize=itemsize, meminfo=None)
            return array._getvalue()
        if isinstance(argtype, types.UniTuple):
            items = [argument(argtype.dtype) for _ in range(argtype.count)]
            return context.make_tuple(builder, argtype, items)
        if argtype == types.float64:
            return builder.bitcast(word(), ir.DoubleType())
        if argtype == types.int64:
            return word()
        raise TypeError(f"a step argument of type {argtype}")   # pragma: no cover

    return [argument(t) for t in argtypes]


def _as_word(context, builder, restype, value):
    if restype == types.none:
        return ir.Constant(WORD, 0)
    return context.cast(builder, value, restype, types.int64)


def _emit_plain(context, module, name, restype, argtypes):
    """thunk(block) -> kernel(*arguments) as an int64, or its exception."""
    function = ir.Function(module, context.call_conv.get_function_type(
        types.int64, (types.int64,)), name)
    builder = ir.IRBuilder(function.append_basic_block())
    [address] = context.call_conv.get_arguments(function)
    block = builder.inttoptr(address, WORD.as_pointer())
    kernel_type = context.call_conv.get_function_type(restype, argtypes)
    kernel = builder.inttoptr(builder.load(block), kernel_type.as_pointer())
    status, result = context.call_conv.call_function(
        builder, kernel, restype, argtypes, _read_arguments(context, builder, argtypes, block, 1))
    with cgutils.if_unlikely(builder, status.is_error):
        context.call_conv.return_status_propagate(builder, status)
    context.call_conv.return_value(builder, _as_word(context, builder, restype, result))


def _emit_chunked(context, module, name, restype, argtypes):
    """thunk(block, chunk, start, stop) -> kernel(chunk, start, stop, *arguments) (a
    chunk kernel cannot raise: runtime/cpu/chunks.py)."""
    function = ir.Function(module, chunks.THUNK_TYPE, name)
    builder = ir.IRBuilder(function.append_basic_block())
    data, *bounds = function.args
    block = builder.bitcast(data, WORD.as_pointer())
    signature = chunks.kernel_types(argtypes)
    kernel_type = context.call_conv.get_function_type(restype, signature)
    kernel = builder.inttoptr(builder.load(block), kernel_type.as_pointer())
    context.call_conv.call_function(
        builder, kernel, restype, signature,
        [*bounds, *_read_arguments(context, builder, argtypes, block, 1)])
    builder.ret_void()
