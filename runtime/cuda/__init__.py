"""The CUDA backend (device="cuda"): the fused kernels of passes/fuse.py as
numba.cuda kernels, parameters and optimizer state resident on the device.

    device.py    importing numba.cuda, the device-or-simulator check, launch
                 sizes, and every host<->device copy (counted)
    scalar.py    the scalar functions generated kernels call (exp, relu, ...)
    codegen.py   a fused loop kernel as CUDA source (grid-stride loops, block
                 tree reductions)
    library.py   the opaque ops: matmul (shared-memory tiles), take, take_grad
    memory.py    the device arena and the variables' device copies
    backend.py   CudaPlan: builds the above for a program and runs a step

Nothing here is imported by graphc's core: `device="cuda"` imports backend.py.
"""
