"""The CUDA backend (device="cuda"): the fused kernels of passes/fuse.py as
numba.cuda kernels, parameters and optimizer state resident on the device.

    device.py    importing numba.cuda, the device-or-simulator check, launch
                 sizes, and every host<->device copy (counted)
    scalar.py    the scalar functions generated kernels call (exp, relu, ...)
    codegen.py   a fused loop kernel as CUDA source (grid-stride loops, block
                 tree reductions)
    library.py   the opaque ops as launches, one module per concept: matmul.py
                 (shared-memory tiles), conv.py (im2col + GEMM), pool.py,
                 index.py (take, take_grad, argmax/argmin), layout.py
                 (concatenate, pad, slice_grad), rng.py (random draws)
    memory.py    the device arena and the variables' device copies
    backend.py   CudaPlan: builds the above for a program and runs a step

Nothing here is imported by graphc's core: `device="cuda"` imports backend.py.
"""
