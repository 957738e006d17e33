"""Compile every kernel of a program to PTX for a GPU architecture, without a GPU.

The simulator runs kernels as Python, which accepts code the CUDA compiler
rejects (a type that does not unify, a NumPy call numba.cuda lacks). This
compiles each generated loop kernel (and its tail) and each library kernel
the program launches with `numba.cuda.compile_ptx`, which needs NVVM (a CUDA
toolkit, or pip's `cuda-toolkit[nvvm]`) but no device and no driver. Run it
in a process where numba.cuda is not the simulator:

    from graphc.runtime.cuda.ptx import compile_program
    compile_program(program, cc=(9, 0))     # {kernel name: PTX text}
"""
import contextlib

import numpy as np
from numba import cuda, from_dtype, typeof, types

from graphc.runtime.cache import runtime_fingerprint
from graphc.runtime.cpu.backend import _identifier, ensure_planned
from graphc.runtime.cuda.codegen import PRELUDE, render_loop
from graphc.runtime.cuda.library import SUPPORTED, LibraryCall, Operand, c_strides, unsupported

ERR = types.Array(types.int64, 1, "C")


def _array(dtype):
    return types.Array(from_dtype(np.dtype(dtype)), 1, "C")


def _host_array(node):
    return np.zeros(max(1, int(np.prod(node.shape, dtype=np.int64))), node.dtype)


def _library_signatures(node):
    """[(py_func, argument types)] for the kernels a library node launches: the backend's
    own launches, built on host arrays, typed as numba.cuda types their device twins."""
    operands = [None if slot in node.op.shape_only else
                Operand(_host_array(x), x.shape, c_strides(x.shape))
                for slot, x in enumerate(node.inputs)]
    library = LibraryCall(np.ascontiguousarray, lambda size, dtype: np.zeros(size, dtype))
    launches = library.prepare(node, operands, _host_array(node), np.zeros(3, np.int64), 0)
    return [(kernel.py_func, tuple(typeof(arg) for arg in args))
            for kernel, _, _, args in launches]


class _Architecture:
    """What numba.cuda asks the current device for when it compiles a device function
    (the scalar overloads): with no GPU, the architecture being compiled for."""

    def __init__(self, cc):
        self.compute_capability = tuple(cc)


@contextlib.contextmanager
def _no_device(cc):
    from numba.cuda import dispatcher
    found = getattr(dispatcher, "get_current_device", None)
    if found is None:                   # pragma: no cover (another numba.cuda layout)
        yield
        return
    dispatcher.get_current_device = lambda: _Architecture(cc)
    try:
        yield
    finally:
        dispatcher.get_current_device = found


def compile_program(program, cc=(9, 0)):
    """{kernel name: PTX} for every kernel the CUDA backend would launch for `program`."""
    fusion, _ = ensure_planned(program, inplace_variables=True)
    namespace = {}
    sources, compiled = [], {}
    jobs = []
    for kernel in fusion.kernels:
        if kernel.library is not None:
            if kernel.library.op.name not in SUPPORTED:
                raise unsupported(kernel.library)
            for function, signature in dict.fromkeys(_library_signatures(kernel.library)):
                jobs.append((f"{kernel.name}:{function.__name__}", function, signature))
        if any(n in kernel.level for n in kernel.nodes):
            loop = render_loop(kernel, fusion, _identifier(kernel.name))
            sources.append(loop.source)
            signature = tuple([_array(n.dtype) for n in loop.inputs + loop.outputs]
                              + [_array(np.int64)] * len(loop.tables) + [ERR]
                              + [_array(d) for d in loop.partials])
            for name in filter(None, (loop.name, loop.tail)):
                jobs.append((name, name, signature))
    prelude = PRELUDE.format(runtime=runtime_fingerprint())
    exec(compile(prelude + "\n\n".join(sources), "<graphc cuda kernels>", "exec"), namespace)
    with _no_device(cc):
        for name, function, signature in jobs:
            if isinstance(function, str):
                function = namespace[function].py_func
            ptx, _ = cuda.compile_ptx(function, signature, cc=cc)
            compiled[name] = ptx
    return compiled
