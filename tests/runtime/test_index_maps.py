"""Index maps (runtime/cpu/index_maps.py): the flat indices a loop reads through a
chain of views, found from a probe's strides, against the same indices computed by
applying each view's reference to an array of indices."""
import numpy as np
import pytest

import graphc as gc
from graphc.passes.kernels import VIEW_OPS
from graphc.runtime.cpu.index_maps import Ids, identity, operand_ids


def indices_through(node, slot, ids):
    """The specification: operand `slot`'s flat index for each of node's flat indices."""
    operand = node.inputs[slot]
    source = np.arange(int(np.prod(operand.shape)), dtype=np.int64).reshape(operand.shape)
    mapped = node.op.reference(source, **node.attrs) if node.op.name in VIEW_OPS \
        else np.broadcast_to(source, node.shape)
    return np.ascontiguousarray(mapped).reshape(-1)[ids]


def walk_to_leaf(top, level_shape):
    """(Ids, index array) from `top`'s elements at a level of `level_shape` down its
    first operands to the placeholder."""
    ids = identity(level_shape)
    array = np.arange(int(np.prod(level_shape)), dtype=np.int64).reshape(level_shape)
    node = top.node
    while node.inputs:
        ids, array = operand_ids(node, 0, ids), indices_through(node, 0, array)
        node = node.inputs[0]
    return ids, array


def _array_affine(array):
    return Ids.of(array).affine()


CHAINS = {
    "transpose": ((2, 3, 4), lambda x: gc.transpose(x, (2, 0, 1))),
    "reversed slice": ((5, 4), lambda x: x[::-1, 1:3]),
    "broadcast of a column": ((3, 1), lambda x: x + gc.zeros((3, 4))),
    "expand, squeeze, reshape": ((6,), lambda x: gc.reshape(gc.squeeze(gc.expand_dims(x, 0), 0), (2, 3))),
    "slice of a transpose": ((4, 6), lambda x: gc.transpose(x)[1:5:2]),
    "a new axis of size 1": ((6,), lambda x: gc.expand_dims(x, 0)),
}


@pytest.mark.parametrize("name", list(CHAINS))
def test_views_give_the_specified_indices_and_their_map_without_an_index_array(name):
    shape, build = CHAINS[name]
    top = build(gc.placeholder(shape, name="x"))
    ids, expected = walk_to_leaf(top, top.shape)
    found = ids.affine()
    assert found is not None and found == _array_affine(expected)
    assert ids.table is None                    # read off the probe's strides
    np.testing.assert_array_equal(ids.materialize(), expected)


def test_a_reshape_of_a_transpose_is_a_table_of_the_specified_indices():
    x = gc.placeholder((3, 4), name="x")
    top = gc.reshape(gc.transpose(x), (2, 6))
    ids, expected = walk_to_leaf(top, top.shape)
    assert ids.affine() is None and _array_affine(expected) is None
    np.testing.assert_array_equal(ids.materialize(), expected)


def test_a_level_shaped_unlike_the_value_it_reads():
    """A keepdims row value (4, 1) read at a row level of shape (4,)."""
    x = gc.placeholder((1, 4), name="x")
    top = gc.transpose(x)
    ids, expected = walk_to_leaf(top, (4,))
    assert ids.affine() == _array_affine(expected) == (0, (1,))
    np.testing.assert_array_equal(ids.materialize(), expected)


def test_equal_maps_are_equal_however_they_are_held():
    x = gc.placeholder((3, 4), name="x")
    double = gc.transpose(gc.transpose(x))
    ids, expected = walk_to_leaf(double, (3, 4))
    assert ids.same_as(identity((3, 4))) and Ids.of(expected).same_as(ids)
    assert not ids.same_as(walk_to_leaf(gc.transpose(x), (4, 3))[0])
    assert ids.signature() == identity((3, 4)).signature()


def test_a_chain_of_same_shaped_elementwise_ops_adds_no_views():
    """Each op of a deep chain used to add a broadcast view that every later signature
    replayed: code generation was quadratic in the chain's depth (26 s at 3,000 ops)."""
    x = gc.placeholder((3, 4), name="x")
    h = gc.transpose(x, (1, 0))
    for _ in range(50):
        h = gc.tanh(h * 0.5)
    ids, array = walk_to_leaf(h, (4, 3))
    assert len(ids.views) == 1                       # the transpose's, nothing per op
    np.testing.assert_array_equal(ids.materialize(), array)
