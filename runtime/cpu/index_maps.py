"""Index maps: which flat element of a buffer each point of a loop reads.

The CPU code generator (runtime/cpu/codegen.py) finds them with NumPy at
compile time: it applies each view's (or broadcast's) reference to an array
of flat indices. An affine map is written into the loop as `c + i0*s0 + ...`;
any other becomes a gather table.
"""
import numpy as np

from graphc.passes.kernels import VIEW_OPS


def affine(ids):
    """(offset, strides) with ids[i] == offset + sum(i_d * strides[d]), or None."""
    ids = np.asarray(ids)
    if ids.size == 0:
        return 0, (0,) * ids.ndim
    offset = int(ids.reshape(-1)[0])
    strides = []
    for axis, n in enumerate(ids.shape):
        if n > 1:
            step = np.take(ids, 1, axis=axis).reshape(-1)[0] - offset
            strides.append(int(step))
        else:
            strides.append(0)
    expected = np.full(ids.shape, offset, np.int64)
    for axis, stride in enumerate(strides):
        shape = [1] * ids.ndim
        shape[axis] = ids.shape[axis]
        expected = expected + (np.arange(ids.shape[axis]) * stride).reshape(shape)
    return (offset, tuple(strides)) if np.array_equal(expected, ids) else None


def operand_ids(node, slot, ids):
    """Flat indices into operand `slot` of `node` for each flat index of node in `ids`."""
    operand = node.inputs[slot]
    source = np.arange(int(np.prod(operand.shape)), dtype=np.int64).reshape(operand.shape)
    if node.op.name == "one_hot":
        return ids // node.shape[-1]
    if node.op.name in VIEW_OPS:
        mapped = node.op.reference(source, **node.attrs)
    else:
        mapped = np.broadcast_to(source, node.shape)
    return np.ascontiguousarray(mapped).reshape(-1)[ids]


def signature(ids):
    """A hashable summary of an index map (exact for affine maps)."""
    found = affine(ids)
    return ("affine", ids.shape, found) if found else ("table", ids.shape, hash(ids.tobytes()))
