"""Shape (injective) ops and gathers: each reference matches NumPy on several
shapes (size-1 and empty included), each gradient matches central differences
in float64, and the type rules give the right static shapes, with None where a
size is unknown until run time (DESIGN.md, "Ops" and "Testing")."""
import numpy as np
import pytest

import graphc as gc
from helpers import check_grad, evaluate, rng


def data(shape, seed=0, dtype=np.float64):
    return rng(seed).standard_normal(shape).astype(dtype)


def run(build, *arrays):
    """build(*placeholders) evaluated on the reference device with `arrays` fed."""
    phs = [gc.placeholder(a.shape, a.dtype, name=f"x{i}") for i, a in enumerate(arrays)]
    out = build(*phs)
    return evaluate(out, dict(zip(phs, arrays)))


def assert_same(actual, expected):
    """Equal values, shape and dtype."""
    expected = np.asarray(expected)
    assert actual.shape == expected.shape
    assert actual.dtype == expected.dtype
    np.testing.assert_array_equal(actual, expected)


# -- reshape ----------------------------------------------------------------------------

@pytest.mark.parametrize("shape, newshape", [
    ((2, 3), (3, 2)),
    ((2, 3), (6,)),
    ((2, 3, 4), (-1, 4)),
    ((2, 3, 4), (4, -1, 2)),
    ((6,), (1, 6, 1)),
    ((1,), ()),
    ((0, 3), (3, 0)),
    ((0, 3), (-1, 3)),
])
def test_reshape_matches_numpy(shape, newshape):
    x = data(shape)
    out = run(lambda a: gc.reshape(a, newshape), x)
    assert_same(out, x.reshape(newshape))


def test_reshape_type_rule_resolves_minus_one():
    a = gc.placeholder((2, 3, 4), name="a")
    assert gc.reshape(a, (-1, 4)).shape == (6, 4)
    assert gc.reshape(a, (2, -1)).shape == (2, 12)
    assert gc.reshape(a, 24).shape == (24,)


def test_reshape_of_a_none_batch_with_minus_one_runs_any_batch_size_in_one_executable():
    x = gc.placeholder((None, 1, 28, 28), name="x")
    flat = gc.reshape(x, (-1, 784))
    assert flat.shape == (None, 784)
    step = gc.compile(flat, inputs=[x], device="reference")
    for batch in (3, 5):
        images = data((batch, 1, 28, 28), seed=batch, dtype=np.float32)
        out = step(images)
        assert_same(out, images.reshape(-1, 784))


def test_reshape_to_an_incompatible_size_is_a_shape_error_naming_both_shapes():
    a = gc.placeholder((2, 3), name="a")
    with pytest.raises(gc.ShapeError) as info:
        gc.reshape(a, (4, 2))
    assert "(2, 3)" in str(info.value) and "(4, 2)" in str(info.value)
    assert info.value.op == "reshape"


def test_reshape_with_minus_one_that_does_not_divide_is_a_shape_error_naming_both_shapes():
    a = gc.placeholder((2, 3), name="a")
    with pytest.raises(gc.ShapeError) as info:
        gc.reshape(a, (4, -1))
    assert "(2, 3)" in str(info.value) and "(4, -1)" in str(info.value)


def test_reshape_with_two_unknown_dimensions_is_a_shape_error():
    a = gc.placeholder((2, 3, 4), name="a")
    with pytest.raises(gc.ShapeError, match="one dimension"):
        gc.reshape(a, (-1, -1))


@pytest.mark.parametrize("shape, newshape", [((2, 3), (3, 2)), ((2, 3, 2), (-1, 2))])
def test_reshape_gradient(shape, newshape):
    check_grad(lambda a: gc.reshape(a, newshape), [data(shape)])


def test_reshape_gradient_with_unknown_batch_dimension_runs_for_any_batch():
    x = gc.placeholder((None, 2, 3), "float64", name="x")
    w = data((6,), seed=4)
    y = gc.sum(gc.reshape(x, (-1, 6)) * gc.constant(w))
    (g,) = gc.grad(y, [x])
    assert g.shape == (None, 2, 3)
    step = gc.compile(g, inputs=[x], device="reference")
    for batch in (1, 4):
        out = step(data((batch, 2, 3)))
        np.testing.assert_allclose(out, np.broadcast_to(w.reshape(2, 3), (batch, 2, 3)))


# -- transpose and swapaxes -----------------------------------------------------------

@pytest.mark.parametrize("shape, axes", [
    ((2, 3), None),
    ((2, 3, 4), None),
    ((2, 3, 4), (1, 0, 2)),
    ((2, 3, 4), (2, 0, 1)),
    ((2, 3, 4), (-1, 0, 1)),
    ((1, 0, 3), (2, 1, 0)),
    ((5,), None),
])
def test_transpose_matches_numpy(shape, axes):
    x = data(shape)
    out = run(lambda a: gc.transpose(a, axes), x)
    assert_same(out, np.transpose(x, axes))


def test_transpose_with_axes_that_are_not_a_permutation_is_a_shape_error():
    a = gc.placeholder((2, 3, 4), name="a")
    with pytest.raises(gc.ShapeError, match=r"\(2, 3, 4\)"):
        gc.transpose(a, (0, 0, 1))


@pytest.mark.parametrize("shape, axes", [((2, 3), None), ((2, 3, 2), (2, 0, 1))])
def test_transpose_gradient(shape, axes):
    check_grad(lambda a: gc.transpose(a, axes), [data(shape)])


@pytest.mark.parametrize("shape, a1, a2", [((2, 3, 4), 0, 2), ((2, 3, 4), -1, -2),
                                           ((2, 3), 0, 0), ((4, 1, 2), 1, 0)])
def test_swapaxes_matches_numpy(shape, a1, a2):
    x = data(shape)
    out = run(lambda a: gc.swapaxes(a, a1, a2), x)
    assert_same(out, np.swapaxes(x, a1, a2))


@pytest.mark.parametrize("shape, a1, a2", [((2, 3, 2), 0, 2), ((3, 2), -1, -2)])
def test_swapaxes_gradient(shape, a1, a2):
    check_grad(lambda a: gc.swapaxes(a, a1, a2), [data(shape)])


# -- broadcast_to ---------------------------------------------------------------------

@pytest.mark.parametrize("shape, target", [
    ((3,), (2, 3)),
    ((1, 3), (4, 3)),
    ((2, 1), (2, 5)),
    ((), (2, 2)),
    ((1,), (0,)),
    ((3, 1, 2), (2, 3, 4, 2)),
])
def test_broadcast_to_matches_numpy(shape, target):
    x = data(shape)
    out = run(lambda a: gc.broadcast_to(a, target), x)
    assert_same(out, np.broadcast_to(x, target))


def test_broadcast_to_an_incompatible_shape_is_a_shape_error_naming_both_shapes():
    a = gc.placeholder((2, 3), name="a")
    with pytest.raises(gc.ShapeError) as info:
        gc.broadcast_to(a, (2, 4))
    assert "(2, 3)" in str(info.value) and "(2, 4)" in str(info.value)


def test_broadcast_to_a_none_size_keeps_the_inputs_size_for_any_batch():
    x = gc.placeholder((None, 3, 1), name="x")
    y = gc.broadcast_to(x, (None, 3, 4))
    assert y.shape == (None, 3, 4)
    step = gc.compile(y, inputs=[x], device="reference")
    for batch in (2, 5):
        v = data((batch, 3, 1), seed=batch, dtype=np.float32)
        assert_same(step(v), np.broadcast_to(v, (batch, 3, 4)))
    known = gc.placeholder((2, 1), name="known")
    assert gc.broadcast_to(known, (None, 3)).shape == (2, 3)


def test_broadcast_to_a_none_size_with_no_input_dimension_is_a_shape_error():
    x = gc.placeholder((3,), name="x")
    with pytest.raises(gc.ShapeError, match=r"\(None, 3\)"):
        gc.broadcast_to(x, (None, 3))


@pytest.mark.parametrize("shape, target", [((3,), (2, 3)), ((2, 1), (3, 2, 4)), ((), (2, 2))])
def test_broadcast_to_gradient_sums_over_the_broadcast_axes(shape, target):
    check_grad(lambda a: gc.broadcast_to(a, target), [data(shape)])


# -- expand_dims and squeeze ----------------------------------------------------------

@pytest.mark.parametrize("shape, axis", [
    ((2, 3), 0),
    ((2, 3), 2),
    ((2, 3), -1),
    ((2, 3), (0, 2)),
    ((2, 3), (-1, 0)),
    ((2, 3), (1, -2)),
    ((), 0),
    ((0, 2), (1,)),
])
def test_expand_dims_matches_numpy(shape, axis):
    x = data(shape)
    out = run(lambda a: gc.expand_dims(a, axis), x)
    assert_same(out, np.expand_dims(x, axis))


def test_expand_dims_out_of_range_axis_is_a_shape_error():
    a = gc.placeholder((2, 3), name="a")
    with pytest.raises(gc.ShapeError, match="axis 4"):
        gc.expand_dims(a, 4)


@pytest.mark.parametrize("axis", [(0, 0), (1, -3)])
def test_expand_dims_with_a_repeated_axis_is_a_shape_error(axis):
    a = gc.placeholder((2, 3), name="a")
    with pytest.raises(gc.ShapeError, match="repeated axis"):
        gc.expand_dims(a, axis)


@pytest.mark.parametrize("shape, axis", [((2, 3), -1), ((3,), (0, 2))])
def test_expand_dims_gradient(shape, axis):
    check_grad(lambda a: gc.expand_dims(a, axis), [data(shape)])


@pytest.mark.parametrize("shape, axis", [
    ((1, 3, 1), None),
    ((1, 3, 1), 0),
    ((1, 3, 1), -1),
    ((1, 3, 1), (0, 2)),
    ((1, 1), None),
    ((2, 3), None),
    ((1, 0, 1), 2),
])
def test_squeeze_matches_numpy(shape, axis):
    x = data(shape)
    out = run(lambda a: gc.squeeze(a, axis), x)
    assert_same(out, np.squeeze(x, axis))


def test_squeezing_an_axis_that_is_not_size_one_is_a_shape_error_naming_it():
    a = gc.placeholder((1, 3, 1), name="a")
    with pytest.raises(gc.ShapeError) as info:
        gc.squeeze(a, 1)
    assert "axis 1" in str(info.value) and "(1, 3, 1)" in str(info.value)
    assert info.value.op == "squeeze"


def test_squeeze_with_a_repeated_axis_is_a_shape_error():
    a = gc.placeholder((1, 3), name="a")
    with pytest.raises(gc.ShapeError, match="repeated axis"):
        gc.squeeze(a, (0, -2))


def test_squeeze_none_keeps_unknown_dimensions():
    a = gc.placeholder((None, 1, 4, 1), name="a")
    assert gc.squeeze(a).shape == (None, 4)


@pytest.mark.parametrize("shape, axis", [((1, 3, 1), None), ((2, 1, 2), 1)])
def test_squeeze_gradient(shape, axis):
    check_grad(lambda a: gc.squeeze(a, axis), [data(shape)])


# -- concatenate and stack ------------------------------------------------------------

@pytest.mark.parametrize("shapes, axis", [
    ([(2, 3), (4, 3)], 0),
    ([(2, 3), (2, 1), (2, 2)], 1),
    ([(2, 3), (2, 1)], -1),
    ([(2, 3, 4), (2, 2, 4)], 1),
    ([(0, 3), (2, 3)], 0),
    ([(3,)], 0),
])
def test_concatenate_matches_numpy(shapes, axis):
    xs = [data(s, seed=i) for i, s in enumerate(shapes)]
    out = run(lambda *ts: gc.concatenate(ts, axis=axis), *xs)
    assert_same(out, np.concatenate(xs, axis=axis))


def test_concatenate_of_mixed_dtypes_promotes_like_numpy():
    a = np.arange(6, dtype=np.int32).reshape(2, 3)
    b = data((1, 3), dtype=np.float32)
    out = run(lambda x, y: gc.concatenate([x, y], axis=0), a, b)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.concatenate([a, b]).astype(np.float32))


def test_concatenate_of_int32_and_float64_gives_float64():
    a = np.arange(3, dtype=np.int32)
    b = data((2,), dtype=np.float64)
    out = run(lambda x, y: gc.concatenate([x, y]), a, b)
    assert_same(out, np.concatenate([a, b]))


def test_concatenate_of_shapes_that_differ_off_the_axis_is_a_shape_error_naming_them():
    a = gc.placeholder((2, 3), name="a")
    b = gc.placeholder((2, 4), name="b")
    with pytest.raises(gc.ShapeError) as info:
        gc.concatenate([a, b], axis=0)
    assert "(2, 3)" in str(info.value) and "(2, 4)" in str(info.value)


def test_concatenate_type_rule_gives_none_for_an_unknown_axis_size():
    a = gc.placeholder((None, 3), name="a")
    b = gc.placeholder((2, 3), name="b")
    assert gc.concatenate([a, b], axis=0).shape == (None, 3)
    assert gc.concatenate([a, a], axis=1).shape == (None, 6)


@pytest.mark.parametrize("shapes, axis", [([(2, 3), (1, 3)], 0), ([(2, 1), (2, 3), (2, 2)], -1)])
def test_concatenate_gradient_splits_back_to_each_input(shapes, axis):
    xs = [data(s, seed=i) for i, s in enumerate(shapes)]
    check_grad(lambda *ts: gc.concatenate(ts, axis=axis), xs)


@pytest.mark.parametrize("shape, n, axis", [((2, 3), 3, 0), ((2, 3), 2, 1), ((2, 3), 2, -1),
                                            ((4,), 1, 0), ((), 3, 0)])
def test_stack_matches_numpy(shape, n, axis):
    xs = [data(shape, seed=i) for i in range(n)]
    out = run(lambda *ts: gc.stack(ts, axis=axis), *xs)
    assert_same(out, np.stack(xs, axis=axis))


@pytest.mark.parametrize("shape, axis", [((2, 3), 0), ((3,), -1)])
def test_stack_gradient(shape, axis):
    xs = [data(shape, seed=i) for i in range(3)]
    check_grad(lambda *ts: gc.stack(ts, axis=axis), xs)


# -- pad --------------------------------------------------------------------------------

@pytest.mark.parametrize("shape, width, value", [
    ((3,), 2, 0),
    ((2, 3), 1, 0),
    ((2, 3), (1, 2), 0),
    ((2, 3), ((0, 1), (2, 0)), 0),
    ((2, 3), ((1, 1), (0, 0)), 7.5),
    ((1, 2, 2), ((0, 0), (1, 0), (0, 3)), -1.0),
    ((0, 2), 1, 3.0),
])
def test_pad_matches_numpy(shape, width, value):
    x = data(shape)
    out = run(lambda a: gc.pad(a, width, constant_values=value), x)
    assert_same(out, np.pad(x, width, constant_values=value))


def test_pad_of_an_int_array_keeps_its_dtype():
    x = np.arange(6, dtype=np.int32).reshape(2, 3)
    out = run(lambda a: gc.pad(a, 1, constant_values=9), x)
    assert_same(out, np.pad(x, 1, constant_values=9))


def test_pad_type_rule_grows_known_dimensions_and_keeps_unknown_ones():
    a = gc.placeholder((None, 3), name="a")
    assert gc.pad(a, ((1, 2), (0, 4))).shape == (None, 7)


@pytest.mark.parametrize("shape, width", [((3,), (2, 1)), ((2, 3), ((1, 0), (0, 2))),
                                          ((2, 2), 1)])
def test_pad_gradient_is_the_unpadded_slice(shape, width):
    check_grad(lambda a: gc.pad(a, width, constant_values=3.0), [data(shape)])


# -- take, one_hot, embedding ---------------------------------------------------------

@pytest.mark.parametrize("shape, indices, axis", [
    ((5, 3), [0, 4, 2], 0),
    ((5, 3), [2, 2, 0, 2], 1),
    ((5, 3), [[0, 1], [4, 4]], 0),
    ((2, 4, 3), [[3, 0], [1, 1], [2, 3]], 1),
    ((5, 3), [14, 0, 7], None),
    ((5, 3), [[1, 13]], None),
    ((5, 3), [-1, 0], 0),
    ((5, 3), 3, 0),
    ((5, 3), np.zeros((0,), np.int64), 0),
])
def test_take_matches_numpy(shape, indices, axis):
    x = data(shape)
    idx = np.asarray(indices, dtype=np.int64)
    out = run(lambda a, i: gc.take(a, i, axis=axis), x, idx)
    assert_same(out, np.take(x, idx, axis=axis))


def test_take_type_rule_puts_the_index_shape_at_the_axis():
    a = gc.placeholder((5, 3, 4), name="a")
    i = gc.placeholder((None, 2), "int64", name="i")
    assert gc.take(a, i, axis=1).shape == (5, None, 2, 4)
    assert gc.take(a, i).shape == (None, 2)
    b = gc.placeholder((None, 3), name="b")
    assert gc.take(b, i, axis=1).shape == (None, None, 2)


def test_take_with_float_indices_is_a_dtype_error():
    a = gc.placeholder((5, 3), name="a")
    i = gc.placeholder((2,), "float32", name="i")
    with pytest.raises(gc.DtypeError, match="float32"):
        gc.take(a, i, axis=0)


@pytest.mark.parametrize("shape, indices, axis", [
    ((4, 3), [0, 2, 2, 3, 0, 2], 0),
    ((3, 4), [[1, 1], [3, 1]], 1),
    ((2, 3), [5, 5, 0], None),
])
def test_take_gradient_scatter_adds_repeated_indices(shape, indices, axis):
    idx = np.asarray(indices, dtype=np.int64)
    check_grad(lambda a, i: gc.take(a, i, axis=axis), [data(shape), idx], wrt=[0])


def test_take_gradient_counts_each_repeat_of_an_index():
    a = gc.placeholder((4, 2), "float64", name="a")
    i = gc.constant(np.array([1, 1, 1, 3], np.int64))
    (g,) = gc.grad(gc.sum(gc.take(a, i, axis=0)), [a])
    out = evaluate(g, {a: data((4, 2))})
    np.testing.assert_array_equal(out, [[0, 0], [3, 3], [0, 0], [1, 1]])


@pytest.mark.parametrize("labels, classes, dtype", [
    ([0, 2, 1], 3, "float32"),
    ([[1, 0], [3, 3]], 4, "float64"),
    ([0], 1, "int64"),
    (np.zeros((0,), np.int64), 5, "float32"),
])
def test_one_hot_matches_comparison_with_arange(labels, classes, dtype):
    y = np.asarray(labels, dtype=np.int64)
    out = run(lambda t: gc.one_hot(t, classes, dtype=dtype), y)
    assert_same(out, (y[..., None] == np.arange(classes)).astype(dtype))


def test_one_hot_of_int32_labels():
    y = np.array([3, 0], np.int32)
    out = run(lambda t: gc.one_hot(t, 4), y)
    assert_same(out, np.eye(4, dtype=np.float32)[y])


def test_one_hot_type_rule_appends_the_class_axis():
    t = gc.placeholder((None, 7), "int64", name="t")
    y = gc.one_hot(t, 10, dtype="float64")
    assert y.shape == (None, 7, 10)
    assert y.dtype == "float64"


@pytest.mark.parametrize("bad", [5, -1])
def test_one_hot_of_an_out_of_range_label_is_an_error_naming_the_label(bad):
    t = gc.placeholder((3,), "int64", name="t")
    step = gc.compile(gc.one_hot(t, 5), inputs=[t], device="reference")
    with pytest.raises(gc.GraphcError) as info:
        step(np.array([0, bad, 2], np.int64))
    assert str(bad) in str(info.value) and "5" in str(info.value)
    assert "one_hot" in str(info.value)


def test_one_hot_of_float_labels_is_a_dtype_error():
    t = gc.placeholder((3,), "float32", name="t")
    with pytest.raises(gc.DtypeError, match="float32"):
        gc.one_hot(t, 4)


def test_embedding_picks_rows_of_the_weight():
    ids = np.array([[0, 3, 3], [2, 0, 1]], np.int64)
    weight = data((4, 5), dtype=np.float32)
    out = run(gc.nn.embedding, ids, weight)
    assert_same(out, weight[ids])


@pytest.mark.parametrize("ids", [[1, 1, 0, 1], [[2, 2], [0, 2], [2, 1]]])
def test_embedding_gradient_wrt_weight_scatter_adds_repeated_ids(ids):
    ids = np.asarray(ids, np.int64)
    check_grad(gc.nn.embedding, [ids, data((3, 2))], wrt=[1])


# -- Tensor methods -------------------------------------------------------------------

def test_tensor_reshape_method_takes_a_tuple_or_separate_ints():
    x = data((2, 3, 4))
    out = run(lambda a: [a.reshape(4, 6), a.reshape((6, -1)), a.reshape(-1)], x)
    assert_same(out[0], x.reshape(4, 6))
    assert_same(out[1], x.reshape(6, -1))
    assert_same(out[2], x.reshape(-1))


def test_tensor_transpose_methods_and_T():
    x = data((2, 3, 4))
    out = run(lambda a: [a.T, a.transpose(), a.transpose(1, 0, 2), a.transpose((2, 0, 1))], x)
    assert_same(out[0], x.T)
    assert_same(out[1], x.transpose())
    assert_same(out[2], x.transpose(1, 0, 2))
    assert_same(out[3], x.transpose((2, 0, 1)))


def test_tensor_flatten_and_astype():
    x = data((2, 3), dtype=np.float32) * 3
    out = run(lambda a: [a.flatten(), a.astype("int32"), a.astype("float64")], x)
    assert_same(out[0], x.flatten())
    assert_same(out[1], x.astype(np.int32))
    assert_same(out[2], x.astype(np.float64))


def test_tensor_method_gradients():
    check_grad(lambda a: a.T.reshape(3, 2).flatten() * 2.0, [data((2, 3))])
    check_grad(lambda a: a.transpose(1, 0, 2).astype("float64"), [data((2, 3, 2), seed=1)])


# -- static shapes with unknown dimensions --------------------------------------------

def test_type_rules_give_none_for_unknown_dimensions():
    x = gc.placeholder((None, 3, 1), name="x")
    assert gc.reshape(x, (-1, 3)).shape == (None, 3)
    assert gc.reshape(x, (None, 3)).shape == (None, 3)
    assert gc.transpose(x).shape == (1, 3, None)
    assert gc.swapaxes(x, 0, 1).shape == (3, None, 1)
    assert gc.expand_dims(x, 1).shape == (None, 1, 3, 1)
    assert gc.squeeze(x, -1).shape == (None, 3)
    assert gc.broadcast_to(x, (None, 3, 4)).shape == (None, 3, 4)
    assert gc.pad(x, 1).shape == (None, 5, 3)
    assert gc.stack([x, x], axis=1).shape == (None, 2, 3, 1)
    assert x.T.shape == (1, 3, None)
    assert x.flatten().shape == (None,)


def test_shape_ops_on_an_unknown_batch_run_for_two_batch_sizes():
    x = gc.placeholder((None, 3), name="x")
    ys = [gc.transpose(x), gc.pad(x, ((0, 1), (1, 0))), gc.concatenate([x, x], axis=0),
          gc.expand_dims(x, 1), gc.take(x, gc.constant(np.array([2, 0])), axis=1)]
    step = gc.compile(ys, inputs=[x], device="reference")
    for batch in (2, 5):
        v = data((batch, 3), seed=batch, dtype=np.float32)
        out = step(v)
        assert_same(out[0], v.T)
        assert_same(out[1], np.pad(v, ((0, 1), (1, 0))))
        assert_same(out[2], np.concatenate([v, v]))
        assert_same(out[3], v[:, None])
        assert_same(out[4], v[:, [2, 0]])
