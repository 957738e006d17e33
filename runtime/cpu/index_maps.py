"""Index maps: which flat element of a buffer each point of a loop reads.

The CPU code generator (runtime/cpu/codegen.py) finds them at compile time. An
`Ids` is the map from the points of a loop level to the flat (C order) indices of
the value they read. It is kept as the views that produce it: the NumPy
references of the view ops (and broadcasts) between the value and the loop,
applied to an array of the value's shape. An affine map (`offset + i0*s0 +
...`, written into the loop) is read off the strides of a probe array put
through those views, so no index array is built for it: W4's 4M-element kernels
made index arrays, and building them took 2.4 s of a 2.9 s first step with a
warm cache. A map the views cannot give as a view of the probe (a reshape of a
transposed value, one_hot's label index) is materialized as an array of flat
indices and becomes a gather table when it is not affine.
"""
import numpy as np

from graphc.passes.kernels import VIEW_OPS, apply_view


class Ids:
    """The flat indices into a value of `value_shape`, arranged in the loop level's
    `shape`: `views(A)` of any array A of value_shape is A's elements at those indices.
    `table`, when given, is those indices as an array (and `views` is unused)."""

    def __init__(self, value_shape, shape, views=(), table=None):
        self.value_shape, self.shape = value_shape and tuple(value_shape), tuple(shape)
        self.views, self.table = tuple(views), table
        self._affine = None

    @classmethod
    def of(cls, table):
        """Ids given as an array of flat indices."""
        table = np.asarray(table, dtype=np.int64)
        return cls(None, table.shape, table=table)

    def apply(self, array):
        for view in self.views:
            array = view(array)
        return array

    def materialize(self):
        """The flat indices as an int64 array of the level's shape."""
        if self.table is None:
            source = np.arange(int(np.prod(self.value_shape)), dtype=np.int64).reshape(self.value_shape)
            self.table = np.ascontiguousarray(self.apply(source))
        return self.table

    def affine(self):
        """(offset, strides) with ids[i] == offset + sum(i_d * strides[d]), or None;
        a stride is 0 on an axis of size 1 or less."""
        if self._affine is None:
            found = self._probe() if self.table is None else None
            self._affine = found or _affine_of_array(self.materialize()) or False
        return self._affine or None

    def _probe(self):
        if 0 in self.shape:
            return 0, (0,) * len(self.shape)
        probe = np.empty(self.value_shape, np.uint8)      # pages never touched
        view = self.apply(probe)
        start, address = probe.ctypes.data, view.ctypes.data
        if view.shape != self.shape or not start <= address < start + max(probe.nbytes, 1):
            return None                                     # a copy: not a view of the probe
        return address - start, tuple(s if n > 1 else 0 for s, n in zip(view.strides, self.shape))

    def signature(self):
        """A hashable summary (exact for affine maps)."""
        found = self.affine()
        if found:
            return ("affine", self.shape, found)
        return ("table", self.shape, hash(self.materialize().tobytes()))

    def same_as(self, other):
        if self.shape != other.shape:
            return False
        mine, theirs = self.affine(), other.affine()
        if mine and theirs:
            return mine == theirs
        return np.array_equal(self.materialize(), other.materialize())


def identity(shape):
    """Each point of a level of `shape` reads the element with its own flat index."""
    return Ids(shape, shape)


def operand_ids(node, slot, ids):
    """The Ids into operand `slot` of `node` for node's elements `ids`."""
    operand = node.inputs[slot]
    if node.op.name == "one_hot":
        return Ids.of(ids.materialize() // node.shape[-1])
    if node.op.name in VIEW_OPS:
        def view(x):
            return apply_view(node, x)
    elif operand.shape == node.shape == ids.value_shape:
        return ids          # an elementwise operand of the same shape: the same elements
    else:
        def view(x):
            return np.broadcast_to(x, node.shape)
    if ids.table is not None or np.prod(node.shape) != np.prod(ids.value_shape):
        mapped = np.ascontiguousarray(view(np.arange(int(np.prod(operand.shape)), dtype=np.int64)
                                           .reshape(operand.shape)))
        return Ids.of(mapped.reshape(-1)[ids.materialize()])
    steps = [view]
    if tuple(node.shape) != ids.value_shape:
        steps.append(lambda x: x.reshape(ids.value_shape))
    return Ids(operand.shape, ids.shape, steps + list(ids.views))


def _affine_of_array(ids):
    """(offset, strides) of an index array, or None."""
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
