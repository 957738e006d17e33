"""Parallel loop kernels without a parfor each: one `launch` splits a kernel's
outer loop over Numba's threads.

Numba compiles a `prange` kernel about three times as long as the same loop
serial: its parfor passes outline the loop body as a gufunc and compile it
again, with a scheduler and two wrappers. The Transformer's 30 parallel loop
kernels took 18.6 s of its 25 s cold first step; the same kernels serial took
6.9 s. So a parallel loop kernel is rendered serial over one chunk of its
outer loop (runtime/cpu/chunked.py),

    def k3(chunk, start, stop, a0, a1, o_a2, err):
        for i0 in range(start, stop):
            ...

and `launch`, one parfor compiled once per runtime version, gives each of
Numba's threads one equal range, as a prange's static schedule does, and its
number (`chunk`: a sum across the loop keeps a partial per chunk). It calls
the kernel through a thunk,

    thunk(arguments, chunk, start, stop) -> kernel(chunk, start, stop, *arguments)

where `arguments` points at the kernel's arguments: for the step program, the
call's block, read by the chunk thunk of the kernel's signature
(runtime/cpu/thunks.py); from Python (`run_in_chunks`: the Python driver,
`profile()`), the caller's copy on its stack, read by a thunk its code
generation emits beside the call (`emit_chunked_call`), which calls the
kernel through its own symbol (runtime/cpu/native_call.py). Either way the
call returns after every range has run. A kernel with a tail (what follows
its loop) is then called once more, with chunk -1, by the caller.

A kernel cannot raise (its only failure, an index out of range, is a code in
`err`), so the thunk drops the status Numba's calling convention returns.
"""
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

BYTE_POINTER = ir.IntType(8).as_pointer()
THUNK_TYPE = ir.FunctionType(ir.VoidType(), [BYTE_POINTER] + [ir.IntType(64)] * 3)
RANGE = (types.int64, types.int64, types.int64)     # chunk, start, stop
LAUNCH_ARGS = (types.int64, types.int64, types.int64)


@intrinsic
def _invoke(typingctx, thunk, arguments, chunk, start, stop):
    """thunk(arguments, chunk, start, stop), both addresses given as integers."""
    def codegen(context, builder, signature, args):
        address, data, *bounds = args
        function = builder.inttoptr(address, THUNK_TYPE.as_pointer())
        builder.call(function, [builder.inttoptr(data, BYTE_POINTER), *bounds])
        return context.get_dummy_value()
    return types.void(*[types.int64] * 5), codegen


@intrinsic
def _threads(typingctx):
    """numba.get_num_threads() through the threading layer's symbol, as a parfor reads
    it (Numba does not cache a function calling get_num_threads itself)."""
    def codegen(context, builder, signature, args):
        int64 = ir.IntType(64)
        function = cgutils.get_or_insert_function(builder.module, ir.FunctionType(int64, []),
                                                  "get_num_threads")
        return builder.call(function, [])
    return types.int64(), codegen


@njit(parallel=True, cache=True)
def launch(thunk, arguments, count):
    """thunk(arguments, chunk, start, stop) over [0, count), one equal range per thread
    (chunk: its number, below the thread count)."""
    chunks = min(_threads(), count)
    for chunk in prange(chunks):
        _invoke(thunk, arguments, chunk, chunk * count // chunks,
                (chunk + 1) * count // chunks)


def kernel_types(argtypes):
    """The argument types of a chunk kernel called on arguments of `argtypes`."""
    return RANGE + tuple(argtypes)


def emit_chunked_call(context, builder, symbol, argtypes, values, count, bind,
                      arguments_of=None):
    """Code for kernel(chunk, start, stop, *arguments) over [0, count) on every thread, the
    kernel bound to `symbol` for `kernel_types(argtypes)`; `bind(symbol, dispatcher,
    argtypes)` binds the launcher too. The arguments are `values`, or
    `arguments_of(context, builder, values)` built inside the thunk (the step's views
    of its bases: the step's own function stays small). Returns the launcher's
    status."""
    module = builder.module
    struct = ir.LiteralStructType([value.type for value in values])
    name = f"{symbol}_thunk"
    thunk = module.globals.get(name) or _thunk(context, module, name, symbol, argtypes,
                                               struct, arguments_of)
    slot = cgutils.alloca_once(builder, struct)
    for k, value in enumerate(values):
        builder.store(value, cgutils.gep_inbounds(builder, slot, 0, k))
    launcher = f"{symbol}_launch"
    bind(launcher, launch, LAUNCH_ARGS)
    function_type = context.call_conv.get_function_type(types.none, LAUNCH_ARGS)
    callee = cgutils.get_or_insert_function(module, function_type, launcher)
    int64 = ir.IntType(64)
    status, _ = context.call_conv.call_function(
        builder, callee, types.none, LAUNCH_ARGS,
        [builder.ptrtoint(thunk, int64), builder.ptrtoint(slot, int64), count])
    return status


def _thunk(context, module, name, symbol, argtypes, struct, arguments_of):
    """The module's function `name`: (values, chunk, start, stop) -> symbol(chunk,
    start, stop, *arguments_of(values))."""
    thunk = ir.Function(module, THUNK_TYPE, name)
    thunk.linkage = "internal"
    builder = ir.IRBuilder(thunk.append_basic_block())
    data, *bounds = thunk.args
    slot = builder.bitcast(data, struct.as_pointer())
    values = [builder.load(cgutils.gep_inbounds(builder, slot, 0, k))
              for k in range(len(struct.elements))]
    if arguments_of is not None:
        values = arguments_of(context, builder, values)
    signature = kernel_types(argtypes)
    function_type = context.call_conv.get_function_type(types.none, signature)
    callee = cgutils.get_or_insert_function(module, function_type, symbol)
    context.call_conv.call_function(builder, callee, types.none, signature,
                                    [*bounds, *values])
    builder.ret_void()
    return thunk


@intrinsic
def _call_in_chunks(typingctx, kernel, count, arguments):
    """kernel(chunk, start, stop, *arguments) over [0, count) on every thread
    (`arguments` a tuple)."""
    if not isinstance(kernel, types.Dispatcher):
        return None
    from graphc.runtime.cpu.native_call import bind, symbol_for
    argtypes = tuple(arguments.types)
    function = kernel.dispatcher.py_func
    symbol = symbol_for(f"graphc_chunks_{function.__module__}_{function.__name__}", argtypes)
    bind(symbol, kernel.dispatcher, kernel_types(argtypes))

    def codegen(context, builder, signature, args):
        values = cgutils.unpack_tuple(builder, args[2], len(argtypes))
        status = emit_chunked_call(context, builder, symbol, argtypes, values,
                                   context.cast(builder, args[1], count, types.int64), bind)
        with cgutils.if_unlikely(builder, status.is_error):
            context.call_conv.return_status_propagate(builder, status)
        return context.get_dummy_value()
    return types.none(kernel, count, arguments), codegen


@njit
def run_in_chunks(kernel, count, *arguments):
    """From Python: kernel(chunk, start, stop, *arguments) over [0, count) on every
    thread."""
    _call_in_chunks(kernel, count, arguments)
