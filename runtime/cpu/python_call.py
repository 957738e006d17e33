"""Calls of a generated loop kernel from Python, without Numba's CPython wrapper.

The loop kernels are compiled with `no_cpython_wrapper=True`: the step program
calls them through thunks (runtime/cpu/step_program.py), and building,
optimizing and compiling a wrapper nothing calls was about a fifth of each
kernel's compile (ResNet-14's cold first step, compile helper off: 11.6-12.3 s
without the wrappers, 14.9-15.2 s with them). Calling such a dispatcher from
Python would jump to a null wrapper, so the Python driver, `profile()` and a
parallel kernel's tail call go through `NativeLoop`: it compiles (or loads) the
kernel for the arguments' types and calls its native code with ctypes, in
Numba's calling convention (a status, a return slot, an exception slot, then
each argument's data model flattened: an array is its meminfo, parent, size,
itemsize, data, shape and strides).
"""
import ctypes

from llvmlite import ir
from numba import typeof

_INTEGERS = {1: ctypes.c_bool, 8: ctypes.c_int8, 16: ctypes.c_int16, 32: ctypes.c_int32,
             64: ctypes.c_int64}


def _ctype(llvm_type):
    if isinstance(llvm_type, ir.PointerType):
        return ctypes.c_void_p
    if isinstance(llvm_type, ir.IntType):
        return _INTEGERS[llvm_type.width]
    if isinstance(llvm_type, ir.FloatType):
        return ctypes.c_float
    if isinstance(llvm_type, ir.DoubleType):
        return ctypes.c_double
    raise TypeError(f"no ctypes type for an argument of LLVM type {llvm_type}")


def _flattened(value):
    """`value` as the scalars its Numba data model passes: an array's meminfo and parent
    (none: the caller owns the array), size, itemsize, data, shape, strides."""
    if hasattr(value, "ctypes"):
        return (None, None, value.size, value.itemsize, value.ctypes.data,
                *value.shape, *value.strides)
    return (value,)


class NativeLoop:
    """A loop kernel callable from Python: `NativeLoop(dispatcher)(*arguments)`, one
    native function per tuple of argument types, compiled or loaded on first use."""

    def __init__(self, dispatcher):
        self.dispatcher = dispatcher
        self.functions = {}         # argument types -> ctypes function
        self._return_slot = ctypes.create_string_buffer(16)     # (a kernel returns None)
        self._exception_slot = ctypes.create_string_buffer(16)

    def __call__(self, *arguments):
        argtypes = tuple(typeof(a) for a in arguments)
        function = self.functions.get(argtypes) or self._native(argtypes)
        flat = [scalar for a in arguments for scalar in _flattened(a)]
        if function(self._return_slot, self._exception_slot, *flat):
            raise RuntimeError(f"loop kernel {self.dispatcher.py_func.__name__} failed")

    def _native(self, argtypes):
        self.dispatcher.compile(argtypes)
        result = self.dispatcher.overloads[argtypes]
        address = result.library.get_pointer_to_function(result.fndesc.llvm_func_name)
        llvm_type = self.dispatcher.targetctx.call_conv.get_function_type(
            result.signature.return_type, argtypes)
        prototype = ctypes.CFUNCTYPE(ctypes.c_int32, *[_ctype(t) for t in llvm_type.args])
        function = prototype(address)
        function.keepalive = result.library     # (its machine code)
        self.functions[argtypes] = function
        return function
