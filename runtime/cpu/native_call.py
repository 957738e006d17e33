"""A kernel's native function: its address, to call it without linking its code.

A plain call from one njit function to another makes Numba link the callee's
code into the caller and optimize and compile the whole again (W2's step, when
it was an njit function calling its kernels so, compiled every conv and matmul
kernel a second time). `compiled` gives the address of a kernel's own machine
code, compiled (or loaded from the cache) on its own: the step program calls
it through a thunk (runtime/cpu/step_program.py); `bind` gives it a
process-wide symbol (llvmlite's `add_symbol`) for generated code that calls it
by name (runtime/cpu/chunks.py's `run_in_chunks`).
"""
import hashlib

import llvmlite.binding as llvm


def symbol_for(prefix, argtypes):
    """A symbol name for the kernel of `prefix` compiled for `argtypes`."""
    digest = hashlib.sha1(repr(argtypes).encode()).hexdigest()[:12]
    return f"{prefix}_{digest}"


def compiled(dispatcher, argtypes):
    """(address, return type) of `dispatcher`'s native function for `argtypes`, compiled
    (or loaded) now if need be."""
    argtypes = tuple(argtypes)
    dispatcher.compile(argtypes)
    result = dispatcher.overloads[argtypes]
    address = result.library.get_pointer_to_function(result.fndesc.llvm_func_name)
    return address, result.signature.return_type


def bind(symbol, dispatcher, argtypes):
    """Compile (or load) `dispatcher` for `argtypes` and bind its address to `symbol`;
    its return type."""
    address, restype = compiled(dispatcher, argtypes)
    llvm.add_symbol(symbol, address)
    return restype
