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
the kernel through the step program's chunk thunk of the kernel's signature
(runtime/cpu/thunks.py),

    thunk(block, chunk, start, stop) -> kernel(chunk, start, stop, *arguments)

where `block` holds the kernel's address and its arguments (the Python driver
and `profile()` run a one-call program: runtime/cpu/python_call.py). The call
returns after every range has run. A kernel with a tail (what follows its
loop) is then called once more, with chunk -1, by the caller.

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
