"""Library kernels of the CUDA backend: each opaque op of the fused program as
launches of numba.cuda kernels, one module per concept:

    matmul.py   matmul: shared-memory tiles, batched and broadcast (the GEMM that
                conv uses too)
    conv.py     conv2d, conv2d_grad_input, conv2d_grad_weight: im2col + GEMM
    pool.py     max/avg pooling, their gradients, max_pool2d_select
    index.py    take, take_grad (scatter-add), argmax, argmin
    layout.py   concatenate, pad, slice_grad (strided copies), and how kernels
                see values (Operand)
    rng.py      random_uniform, random_normal (the references' counter-based
                generator, bit for bit)

`LibraryCall.prepare(node, operands, out, err, index)` turns a node into
launches [(kernel, grid, block, args)], computed once per plan. Operands are
`Operand`s (a flat device array, a shape, element strides); the ops that read
C order only get a strided operand copied into a contiguous scratch array
first (one gather launch). An op with no kernel here raises a CompileError
naming it when the plan is built: never a silent fallback to the host.
"""
import numpy as np

from graphc.errors import CompileError
from graphc.runtime.cuda import conv, index, layout, matmul, pool, rng
from graphc.runtime.cuda.index import NO_INDEX_ERROR  # noqa: F401 (for backend.py)
from graphc.runtime.cuda.layout import (Operand, c_strides, gather_launch,  # noqa: F401
                                        gather_table)

BUILDERS = {
    "matmul": matmul.matmul,
    "conv2d": conv.conv2d, "conv2d_grad_input": conv.conv2d_grad_input,
    "conv2d_grad_weight": conv.conv2d_grad_weight,
    "max_pool2d": pool.max_pool2d_op, "max_pool2d_grad": pool.max_pool2d_grad_op,
    "max_pool2d_select": pool.max_pool2d_select_op,
    "avg_pool2d": pool.avg_pool2d_op, "avg_pool2d_grad": pool.avg_pool2d_grad_op,
    "take": index.take_op, "take_grad": index.take_grad_op,
    "argmax": index.arg_reduce_op, "argmin": index.arg_reduce_op,
    "concatenate": layout.concatenate, "pad": layout.pad, "slice_grad": layout.slice_grad,
    "random_uniform": rng.random_uniform_op, "random_normal": rng.random_normal_op,
}
SUPPORTED = tuple(BUILDERS)
# the ops whose kernels read their operands through strides (the rest get C order)
STRIDED_OPERANDS = ("matmul", "argmax", "argmin", "concatenate", "pad", "slice_grad")


def unsupported(node):
    """The error for a library op the CUDA backend has no kernel for."""
    return CompileError(f'device="cuda" cannot run {node.op.name}: the CUDA backend has no '
                        f'kernel for it; node {node.name} of shape {node.shape}; use '
                        f'device="cpu" for this program', op=node.op.name, loc=node.loc)


class LibraryCall:
    """Launches of one plan's library nodes.

    upload(host array) -> a device copy (the plan's small tables);
    allocate(size, dtype) -> a flat device array of bytes the plan keeps, from which
    `allocate` below carves each node's scratch."""

    def __init__(self, upload, allocate):
        self.upload = upload
        self._allocate = allocate
        self._free, self._held = [], []     # scratch bases: free for the next node; this one's

    def scratch_bytes(self):
        """The bytes of scratch the plan holds (every node's, shared)."""
        return sum(base.size for base in self._free + self._held)

    def allocate(self, size, dtype):
        """A flat scratch array for the node being prepared (its im2col columns, partial
        products, contiguous copies). Nodes share scratch: a step's launches run in
        order, so a node's scratch is dead once its own launches are done; within a
        node every array is distinct. (W2: conv2's three 42 MB column buffers are one.)"""
        dtype = np.dtype(dtype)
        nbytes = max(1, int(size)) * dtype.itemsize
        fits = [k for k, base in enumerate(self._free) if base.size >= nbytes]
        if fits:                            # the smallest that fits
            base = self._free.pop(min(fits, key=lambda k: self._free[k].size))
        else:
            base = self._allocate(nbytes, np.dtype(np.uint8))
        self._held.append(base)
        return base[:nbytes].view(dtype)

    def prepare(self, node, operands, out, err, index):
        build = BUILDERS.get(node.op.name)
        if build is None:
            raise unsupported(node)
        launches = []
        try:
            if node.op.name not in STRIDED_OPERANDS:
                operands = [self._contiguous(x, launches, err) for x in operands]
            return launches + build(self, node, operands, out, err, index)
        finally:                            # this node's scratch is free for the next one
            self._free += self._held
            self._held = []

    def _contiguous(self, operand, launches, err):
        """`operand` in C order: itself, or a scratch copy made by a gather launch."""
        if operand is None or operand.contiguous:
            return operand
        if layout.size_of(operand.shape) == 0:
            return Operand(operand.flat, operand.shape, c_strides(operand.shape))
        copy = self.allocate(layout.size_of(operand.shape), operand.flat.dtype)
        table = self.upload(gather_table(operand))
        launches.append(gather_launch(operand.flat, table, copy, err))
        return Operand(copy, operand.shape, c_strides(operand.shape))
