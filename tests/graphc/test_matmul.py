"""gc.matmul and `@` follow np.matmul: 2-D, batched with broadcast batch
dimensions, 1-D operands promoted and their axis removed, integer dtypes;
gradients match central differences; misaligned shapes are shape errors."""
import numpy as np
import pytest

import graphc as gc
from helpers import check_grad, evaluate, rng


def data(shape, seed=0, dtype=np.float64):
    return rng(seed).standard_normal(shape).astype(dtype)


def both(a, b, use_operator):
    """(graphc's matmul, its static shape, np.matmul) for arrays a, b."""
    pa = gc.placeholder(a.shape, a.dtype, name="a")
    pb = gc.placeholder(b.shape, b.dtype, name="b")
    out = pa @ pb if use_operator else gc.matmul(pa, pb)
    return evaluate(out, {pa: a, pb: b}), out.shape, np.matmul(a, b)


SHAPES = [
    ((2, 3), (3, 4)),
    ((1, 1), (1, 1)),
    ((3, 1), (1, 2)),
    ((0, 3), (3, 2)),
    ((2, 0), (0, 3)),           # empty inner dimension: zeros
    ((4, 2, 3), (4, 3, 5)),
    ((4, 2, 3), (3, 5)),
    ((3, 5), (4, 5, 2)),
    ((2, 1, 3, 4), (5, 4, 2)),
    ((2, 3, 2, 4), (1, 3, 4, 2)),
    ((3,), (3, 4)),
    ((2, 3), (3,)),
    ((3,), (3,)),
    ((3,), (2, 3, 4)),
    ((2, 4, 3), (3,)),
]


@pytest.mark.parametrize("use_operator", [False, True], ids=["gc.matmul", "@"])
@pytest.mark.parametrize("sa, sb", SHAPES)
def test_matmul_matches_numpy(sa, sb, use_operator):
    a, b = data(sa, seed=1), data(sb, seed=2)
    value, static, expected = both(a, b, use_operator)
    assert static == expected.shape
    assert value.shape == expected.shape
    assert value.dtype == expected.dtype
    np.testing.assert_allclose(value, expected, rtol=1e-12, atol=1e-12)


def test_matmul_of_float32_operands_is_float32():
    a, b = data((2, 3), dtype=np.float32), data((3, 2), seed=1, dtype=np.float32)
    value, _, expected = both(a, b, True)
    assert value.dtype == np.float32
    np.testing.assert_allclose(value, expected, rtol=1e-5)


@pytest.mark.parametrize("sa, sb", [((2, 3), (3, 4)), ((2, 2, 3), (3,)), ((3,), (3,))])
def test_integer_matmul_is_exact(sa, sb):
    a = rng(3).integers(-50, 50, size=sa).astype(np.int64)
    b = rng(4).integers(-50, 50, size=sb).astype(np.int64)
    value, _, expected = both(a, b, True)
    assert value.dtype == np.int64
    np.testing.assert_array_equal(value, expected)


def test_int32_times_float64_promotes_to_float64():
    a = np.arange(6, dtype=np.int32).reshape(2, 3)
    b = data((3, 2))
    value, _, expected = both(a, b, True)
    assert value.dtype == np.float64
    np.testing.assert_allclose(value, expected)


def test_matmul_with_a_numpy_constant_on_either_side():
    a, w = data((2, 3)), data((3, 4), seed=1)
    x = gc.placeholder((2, 3), "float64", name="x")
    y = gc.placeholder((4, 2), "float64", name="y")
    left, right = evaluate([x @ w, w.T @ x.T], {x: a})
    np.testing.assert_allclose(left, a @ w)
    np.testing.assert_allclose(right, w.T @ a.T)
    (out,) = evaluate([gc.matmul(w, y)], {y: data((4, 2), seed=2)})
    np.testing.assert_allclose(out, w @ data((4, 2), seed=2))


# -- errors -----------------------------------------------------------------------------

@pytest.mark.parametrize("sa, sb", [((2, 3), (4, 5)), ((6, 2, 3), (6, 2, 3)),
                                    ((2, 1, 3, 4), (5, 3, 2))])
def test_misaligned_inner_dimensions_is_a_shape_error_naming_both_shapes(sa, sb):
    a = gc.placeholder(sa, name="a")
    b = gc.placeholder(sb, name="b")
    with pytest.raises(gc.ShapeError) as info:
        a @ b
    text = str(info.value)
    assert str(sa) in text and str(sb) in text
    assert f"{sa[-1]} != {sb[-2]}" in text
    assert info.value.op == "matmul"


@pytest.mark.parametrize("sa, sb", [((3,), (4, 5)), ((2, 3), (4,)), ((3,), (4,))])
def test_misaligned_vector_operand_is_a_shape_error_naming_the_users_shapes(sa, sb):
    a = gc.placeholder(sa, name="a")
    b = gc.placeholder(sb, name="b")
    with pytest.raises(gc.ShapeError) as info:
        gc.matmul(a, b)
    text = str(info.value)
    assert str(sa) in text and str(sb) in text


def test_batch_dimensions_that_do_not_broadcast_are_a_shape_error_naming_both_shapes():
    a = gc.placeholder((2, 3, 4), name="a")
    b = gc.placeholder((5, 4, 2), name="b")
    with pytest.raises(gc.ShapeError) as info:
        a @ b
    assert "(2, 3, 4)" in str(info.value) and "(5, 4, 2)" in str(info.value)


def test_matmul_with_a_scalar_is_a_shape_error():
    a = gc.placeholder((2, 3), name="a")
    with pytest.raises(gc.ShapeError, match="scalar"):
        gc.matmul(a, gc.constant(np.float32(2.0)))


def test_matmul_of_bool_matrices_is_a_dtype_error():
    a = gc.placeholder((2, 2), "bool", name="a")
    with pytest.raises(gc.DtypeError, match="bool"):
        a @ a


# -- gradients --------------------------------------------------------------------------

@pytest.mark.parametrize("sa, sb", [
    ((2, 3), (3, 4)),
    ((1, 2), (2, 1)),
    ((2, 1, 2, 3), (3, 3, 2)),      # batched, batch dims broadcast on both sides
    ((3, 2, 3), (3, 2)),            # batched @ shared matrix
    ((3,), (3, 2)),
    ((2, 3), (3,)),
    ((4,), (4,)),
    ((3,), (2, 3, 2)),
])
def test_matmul_gradient(sa, sb):
    check_grad(lambda a, b: a @ b, [data(sa, seed=1), data(sb, seed=2)])


def test_gradient_of_sum_of_matmul_is_row_and_column_sums():
    a_val, b_val = data((2, 3), seed=1), data((3, 4), seed=2)
    a = gc.placeholder((2, 3), "float64", name="a")
    b = gc.placeholder((3, 4), "float64", name="b")
    ga, gb = gc.grad(gc.sum(a @ b), [a, b])
    ga_v, gb_v = evaluate([ga, gb], {a: a_val, b: b_val})
    np.testing.assert_allclose(ga_v, np.broadcast_to(b_val.sum(1), (2, 3)))
    np.testing.assert_allclose(gb_v, np.broadcast_to(a_val.sum(0)[:, None], (3, 4)))


# -- unknown batch dimension ----------------------------------------------------------

def test_none_batch_placeholder_times_weights_has_static_shape_none_by_10():
    x = gc.placeholder((None, 784), name="x")
    w = gc.constant(data((784, 10), dtype=np.float32))
    y = x @ w
    assert y.shape == (None, 10)
    assert y.dtype == "float32"
    step = gc.compile(y, inputs=[x], device="reference")
    for batch in (2, 3):
        xv = data((batch, 784), seed=batch, dtype=np.float32)
        out = step(xv)
        assert out.shape == (batch, 10)
        np.testing.assert_allclose(out, xv @ w.value, rtol=1e-4, atol=1e-4)


def test_matmul_type_rule_gives_none_for_unknown_dimensions():
    a = gc.placeholder((None, 2, 3), name="a")
    b = gc.placeholder((3, None), name="b")
    assert (a @ b).shape == (None, 2, None)
    v = gc.placeholder((None,), name="v")
    m = gc.placeholder((4, None), name="m")
    assert (m @ v).shape == (4,)
    assert (v @ v).shape == ()
