"""simplify: one test per rule, each with op counts before and after and the
same values on the reference backend; and the rewrites it must not make
because they would change IEEE results."""
import numpy as np
import pytest

import graphc as gc
from graphc.ops.shape import reshape_like
from graphc.passes.simplify import simplify
from graphc.tensor import apply
from helpers_passes import assert_same_values, count_live_ops, floats, program_of, rng, run


def simplified(outputs, inputs=(), shapes=None):
    """(program before, program after simplify, report)."""
    program = program_of(outputs, inputs, shapes)
    before = program.copy()
    report = simplify(program)
    return before, program, report


# -- static shapes: shape-only operands become attributes ------------------------------

def test_full_like_takes_a_static_shape_and_drops_its_operand():
    x = gc.placeholder((None, 3), name="x")
    before, after, report = simplified(gc.full_like(x, 2.5) * x, [x], [(4, 3)])
    full_before = [n for n in before.graph if n.op.name == "full"][0]
    full_after = [n for n in after.graph if n.op.name == "full"][0]
    assert len(full_before.inputs) == 1 and full_before.attrs["shape"] is None
    assert full_after.inputs == () and full_after.attrs["shape"] == (4, 3)
    assert report == {"static_shapes": 1}
    assert_same_values(before, after, [floats(4, 3)])


@pytest.mark.parametrize("op, key", [("sum_to", "shape"), ("broadcast_to", "shape")])
def test_like_operand_of_sum_to_and_broadcast_to_becomes_a_static_shape(op, key):
    big = gc.placeholder((None, 3), name="big")
    small = gc.placeholder((1, 3), name="small")
    source, like = (big, small) if op == "sum_to" else (small, big)
    y = apply(op, source, like, **{key: None})
    before, after, report = simplified(gc.exp(y), [big, small], [(4, 3), (1, 3)])
    node = [n for n in after.graph if n.op.name == op and n in after.graph.ancestors(after.roots())]
    assert len(node) == 1 and len(node[0].inputs) == 1
    assert node[0].attrs[key] == node[0].shape == ((1, 3) if op == "sum_to" else (4, 3))
    assert report == {"static_shapes": 1}
    assert_same_values(before, after, [floats(4, 3), floats(1, 3, seed=1)])


def test_reshape_like_takes_a_static_newshape():
    a = gc.placeholder((None, 6), name="a")
    like = gc.placeholder((None, 2, 3), name="like")
    before, after, report = simplified(gc.exp(reshape_like(a, like)), [a, like],
                                       [(4, 6), (4, 2, 3)])
    (reshape,) = [n for n in after.graph.ancestors(after.roots()) if n.op.name == "reshape"]
    assert [i.name for i in reshape.inputs] == ["a"]
    assert reshape.attrs["newshape"] == (4, 2, 3)
    assert report == {"static_shapes": 1}
    assert_same_values(before, after, [floats(4, 6), floats(4, 2, 3)])


# -- identities ---------------------------------------------------------------------------

IDENTITIES = {
    "x + 0": (lambda x: x + 0.0, "add"),
    "0 + x": (lambda x: 0.0 + x, "add"),
    "x - 0": (lambda x: x - 0.0, "subtract"),
    "x * 1": (lambda x: x * 1.0, "multiply"),
    "1 * x": (lambda x: 1.0 * x, "multiply"),
    "x / 1": (lambda x: x / 1.0, "divide"),
    "x ** 1": (lambda x: x ** 1, "power"),
    "reshape to own shape": (lambda x: gc.reshape(x, (-1, 3)), "reshape"),
    "broadcast_to own shape": (lambda x: gc.broadcast_to(x, (4, 3)), "broadcast_to"),
    "sum_to own shape": (lambda x: gc.sum_to(x, (4, 3)), "sum_to"),
    "identity transpose": (lambda x: gc.transpose(x, (0, 1)), "transpose"),
    "cast to same dtype": (lambda x: apply("cast", x, dtype=x.dtype), "cast"),
    "stop_gradient": (lambda x: gc.stop_gradient(x), "stop_gradient"),
    "slice of everything": (lambda x: x[0:4, 0:3], "slice"),
}


@pytest.mark.parametrize("name", list(IDENTITIES))
def test_identity_is_removed(name):
    build, op = IDENTITIES[name]
    x = gc.placeholder((None, 3), name="x")
    y = gc.exp(build(x))
    before, after, report = simplified(y, [x], [(4, 3)])
    assert count_live_ops(before, op) == 1
    assert count_live_ops(after, op) == 0
    (exp,) = [n for n in after.graph if n.op.name == "exp"]
    assert exp.inputs == tuple(after.inputs)          # exp now reads x itself
    assert report == {"identity": 1}
    feed = floats(4, 3)
    feed[0, 0] = np.inf
    feed[1, 1] = np.nan
    assert_same_values(before, after, [feed])


@pytest.mark.parametrize("reduction", ["sum", "mean", "max", "min", "prod", "logsumexp"])
def test_keepdims_reduction_over_size_one_axes_is_removed(reduction):
    x = gc.placeholder((4, 1, 3), name="x")
    y = getattr(gc, reduction)(x, axis=1, keepdims=True)
    before, after, report = simplified(y * 2.0, [x])
    assert count_live_ops(before, reduction) == 1
    assert count_live_ops(after, reduction) == 0
    assert report == {"identity": 1}
    assert_same_values(before, after, [floats(4, 1, 3)])


def test_reduction_over_a_larger_axis_or_without_keepdims_stays():
    x = gc.placeholder((4, 1, 3), name="x")
    y1 = gc.sum(x, axis=(1, 2), keepdims=True)      # axis 2 has 3 elements
    y2 = gc.sum(x, axis=1)                          # drops the axis: a new shape
    before, after, report = simplified([y1, y2], [x])
    assert count_live_ops(after, "sum") == count_live_ops(before, "sum") == 2
    assert report == {}
    assert_same_values(before, after, [floats(4, 1, 3)])


def test_reversing_slice_of_same_shape_stays():
    x = gc.placeholder((4, 3), name="x")
    before, after, report = simplified(x[::-1], [x])
    assert count_live_ops(after, "slice") == 1
    assert report == {}
    out = assert_same_values(before, after, [floats(4, 3)])
    np.testing.assert_array_equal(out[0], floats(4, 3)[::-1])


def test_integer_x_minus_x_becomes_zeros():
    x = gc.placeholder((4, 3), "int32", name="x")
    before, after, report = simplified((x - x) + x, [x])
    assert count_live_ops(before, "subtract") == 1
    assert count_live_ops(after, "subtract") == 0
    (full,) = [n for n in after.graph.ancestors(after.roots()) if n.op.name == "full"]
    assert full.attrs["value"] == 0 and full.dtype == np.int32 and full.shape == (4, 3)
    assert report == {"identity": 1}
    feed = rng(1).integers(-100, 100, (4, 3)).astype("int32")
    out = assert_same_values(before, after, [feed])
    np.testing.assert_array_equal(out[0], feed)


# -- rewrites that would change IEEE results are not made ----------------------------------

def test_float_x_minus_x_becomes_x_times_zero_nan_where_x_is_inf_or_nan():
    """Not 0: inf - inf is NaN. x * 0 is the same IEEE value (up to a zero's sign),
    in a form LLVM's reassoc keeps: with `acc += x - x` it cancelled the term, and
    the CPU's sum over inf - inf was 0 (found by probing)."""
    x = gc.placeholder((3,), name="x")
    before, after, report = simplified(x - x, [x])
    assert count_live_ops(after, "subtract") == 0 and count_live_ops(after, "multiply") == 1
    assert report == {"identity": 1}
    out = assert_same_values(before, after, [np.array([1.0, np.inf, np.nan], "float32")])
    assert np.isnan(out[0][1:]).all() and out[0][0] == 0


def test_x_plus_minus_x_becomes_x_times_zero_too():
    """Autodiff writes a + (-a) (std's gradient): reassoc folded it to 0 at inf."""
    x = gc.placeholder((3,), name="x")
    before, after, report = simplified([x + (-x), (-x) + x, x + (-(x * 2.0))], [x])
    assert report["identity"] == 2 and count_live_ops(after, "add") == 1
    out = assert_same_values(before, after, [np.array([1.0, np.inf, np.nan], "float32")])
    assert all(np.isnan(o[1:]).all() and o[0] == 0 for o in out[:2])


@pytest.mark.parametrize("device", ["reference", "cpu"])
def test_std_over_one_value_has_a_nan_gradient_on_every_device(device):
    """NumPy's: the std of one value is 0, whose sqrt has an infinite slope (fuzzing)."""
    x = gc.placeholder((1, 3), name="x")
    (dx,) = gc.grad(gc.sum(gc.std(x, axis=0)), [x])
    (value,) = gc.compile([dx], inputs=[x], device=device)(np.float32([[0.5, -1.0, 2.0]]))
    assert np.isnan(value).all()


@pytest.mark.parametrize("device", ["reference", "cpu"])
def test_a_sum_over_inf_minus_inf_is_nan_on_every_device(device):
    x = gc.placeholder((None,), name="x")
    y = gc.exp(x)
    step = gc.compile([gc.sum(y - y), gc.mean(x - x)], inputs=[x], device=device)
    assert all(np.isnan(v) for v in step(np.array([1.0, np.inf], "float32")))
    assert all(v == 0 for v in step(np.array([1.0, 2.0], "float32")))


def test_x_times_zero_stays_because_inf_times_zero_is_nan():
    x = gc.placeholder((3,), name="x")
    before, after, report = simplified(x * 0.0, [x])
    assert count_live_ops(after, "multiply") == 1
    assert report == {}
    out = assert_same_values(before, after, [np.array([2.0, np.inf, -1.0], "float32")])
    assert np.isnan(out[0][1])


def test_adding_zeros_that_broadcast_x_to_a_bigger_shape_stays():
    x = gc.placeholder((3,), name="x")
    y = x + gc.constant(np.zeros((4, 3), "float32"))
    before, after, report = simplified(y, [x])
    assert count_live_ops(after, "add") == 1
    assert after.outputs[0].shape == (4, 3)
    assert report == {}
    assert_same_values(before, after, [floats(3)])


# -- chains ------------------------------------------------------------------------------

def test_double_negation_is_removed():
    x = gc.placeholder((4, 3), name="x")
    before, after, report = simplified(gc.exp(-(-x)), [x])
    assert count_live_ops(before, "negative") == 2
    assert count_live_ops(after, "negative") == 0
    assert report == {"double_negation": 1}
    assert_same_values(before, after, [floats(4, 3)])


def test_transpose_of_transpose_composes_into_one():
    x = gc.placeholder((2, 3, 4), name="x")
    y = gc.transpose(gc.transpose(x, (1, 0, 2)), (0, 2, 1))
    before, after, report = simplified(gc.exp(y), [x])
    assert count_live_ops(before, "transpose") == 2
    assert count_live_ops(after, "transpose") == 1
    (t,) = [n for n in after.graph.ancestors(after.roots()) if n.op.name == "transpose"]
    assert t.attrs["axes"] == (1, 2, 0) and t.inputs == tuple(after.inputs)
    assert report == {"transpose_of_transpose": 1}
    assert_same_values(before, after, [floats(2, 3, 4)])


def test_transpose_of_its_inverse_disappears():
    x = gc.placeholder((2, 3, 4), name="x")
    y = gc.transpose(gc.transpose(x, (1, 2, 0)), (2, 0, 1))
    before, after, report = simplified(gc.exp(y), [x])
    assert count_live_ops(before, "transpose") == 2
    assert count_live_ops(after, "transpose") == 0
    assert report == {"transpose_of_transpose": 1}
    assert_same_values(before, after, [floats(2, 3, 4)])


def test_reshape_of_reshape_becomes_one_reshape():
    x = gc.placeholder((2, 6), name="x")
    y = gc.reshape(gc.reshape(x, (3, 4)), (4, 3))
    before, after, report = simplified(gc.exp(y), [x])
    assert count_live_ops(before, "reshape") == 2
    assert count_live_ops(after, "reshape") == 1
    (r,) = [n for n in after.graph.ancestors(after.roots()) if n.op.name == "reshape"]
    assert r.attrs["newshape"] == (4, 3) and r.inputs == tuple(after.inputs)
    assert report == {"reshape_of_reshape": 1}
    assert_same_values(before, after, [floats(2, 6)])


def test_log_of_exp_becomes_x():
    x = gc.placeholder((4, 3), name="x")
    before, after, report = simplified(gc.log(gc.exp(x)) * 2.0, [x])
    assert count_live_ops(before, "log") == count_live_ops(before, "exp") == 1
    assert count_live_ops(after, "log") == count_live_ops(after, "exp") == 0
    assert report == {"log_of_exp": 1}
    assert_same_values(before, after, [floats(4, 3)], rtol=1e-5, atol=1e-6)


# -- numerically stable forms ---------------------------------------------------------------

def test_log_of_softmax_becomes_log_softmax():
    x = gc.placeholder((4, 3), name="x")
    before, after, report = simplified(gc.log(gc.nn.softmax(x, axis=0)), [x])
    assert (count_live_ops(before, "log"), count_live_ops(before, "softmax"),
            count_live_ops(before, "log_softmax")) == (1, 1, 0)
    assert (count_live_ops(after, "log"), count_live_ops(after, "softmax"),
            count_live_ops(after, "log_softmax")) == (0, 0, 1)
    assert after.outputs[0].op.name == "log_softmax" and after.outputs[0].attrs["axis"] == 0
    assert report == {"log_of_softmax": 1}
    assert_same_values(before, after, [floats(4, 3)], rtol=1e-5, atol=1e-6)


def test_log_of_sigmoid_becomes_minus_softplus_of_minus_x():
    x = gc.placeholder((5,), name="x")
    before, after, report = simplified(gc.log(gc.sigmoid(x)), [x])
    assert (count_live_ops(before, "log"), count_live_ops(before, "sigmoid")) == (1, 1)
    assert (count_live_ops(after, "log"), count_live_ops(after, "sigmoid"),
            count_live_ops(after, "softplus"), count_live_ops(after, "negative")) == (0, 0, 1, 2)
    assert report == {"log_of_sigmoid": 1}
    assert_same_values(before, after, [np.array([-5, -1, 0, 1, 5], "float32")],
                       rtol=1e-5, atol=1e-6)


def test_log_of_sigmoid_stays_finite_where_the_original_underflows():
    x = gc.placeholder((2,), name="x")
    before, after, _ = simplified(gc.log(gc.sigmoid(x)), [x])
    feed = [np.array([-200.0, -30.0], "float32")]
    (original,), _ = run(before, feed)
    (stable,), _ = run(after, feed)
    assert original[0] == -np.inf
    np.testing.assert_allclose(stable, [-200.0, -30.0], rtol=1e-6)


# -- matmuls shaped for one GEMM ----------------------------------------------------------

def test_batched_operand_times_a_matrix_becomes_one_matmul_of_rows():
    x = gc.placeholder((4, 3, 5), name="x")
    w = gc.placeholder((5, 6), name="w")
    before, after, report = simplified(gc.tanh(x @ w), [x, w])
    (product,) = [n for n in after.graph.ancestors(after.roots()) if n.op.name == "matmul"]
    assert product.shape == (12, 6) and product.inputs[0].op.name == "reshape"
    assert report == {"batch_rows_of_matmul": 1, "elementwise_of_reshape": 1}
    (tanh,) = [n for n in after.graph.ancestors(after.roots()) if n.op.name == "tanh"]
    assert tanh.inputs == (product,)                    # the product's epilogue, at (12, 6)
    assert_same_values(before, after, [floats(4, 3, 5), floats(5, 6, seed=1)], rtol=1e-5)


@pytest.mark.parametrize("a_shape, b_shape, flat", [
    ((2, 3, 4, 5), (2, 3, 5, 6), ((6, 4, 5), (6, 5, 6))),      # attention's scores
    ((2, 3, 4, 5), (1, 1, 5, 6), ((6, 4, 5), (1, 5, 6))),      # a broadcast batch of one
    ((4, 5), (2, 5, 6), ((1, 4, 5), (2, 5, 6))),               # a matrix times a batch
    ((2, 4, 5, 7), (4, 7, 3), ((8, 5, 7), (8, 7, 3))),         # b broadcast over axis 0
], ids=["two batch axes", "batch of one", "matrix times batch", "partly broadcast"])
def test_product_over_batch_axes_becomes_one_batched_matmul(a_shape, b_shape, flat):
    a = gc.placeholder(a_shape, name="a")
    b = gc.placeholder(b_shape, name="b")
    before, after, report = simplified(gc.tanh(a @ b), [a, b])
    (product,) = [n for n in after.graph.ancestors(after.roots()) if n.op.name == "matmul"]
    assert tuple(i.shape for i in product.inputs) == flat
    assert report.get("batch_axes_of_matmul") == 1
    assert_same_values(before, after, [floats(*a_shape), floats(*b_shape, seed=1)], rtol=1e-5)


def test_product_whose_broadcast_copy_would_be_its_largest_array_stays():
    """b (1, 3, 5, 6) broadcast to (2, 3, 5, 6) would be larger than the product."""
    a = gc.placeholder((2, 1, 4, 5), name="a")
    b = gc.placeholder((1, 3, 5, 6), name="b")
    _, after, report = simplified(gc.tanh(a @ b), [a, b])
    (product,) = [n for n in after.graph.ancestors(after.roots()) if n.op.name == "matmul"]
    assert product.shape == (2, 3, 4, 6) and report == {}


def test_batch_sum_of_a_transposed_product_becomes_one_matmul():
    """The weight gradient of x @ W for a batched x: sum_b x_b^T @ dy_b."""
    x = gc.placeholder((4, 3, 5), name="x")
    dy = gc.placeholder((4, 3, 6), name="dy")
    batched = gc.matmul(gc.swapaxes(x, -1, -2), dy)
    before, after, report = simplified(gc.exp(apply("sum_to", batched, shape=(5, 6))), [x, dy])
    live = after.graph.ancestors(after.roots())
    (product,) = [n for n in live if n.op.name == "matmul"]
    assert product.shape == (5, 6) and product.inputs[0].shape == (5, 12)
    assert count_live_ops(after, "sum_to") == 0
    assert report == {"batch_sum_of_matmul": 1}
    assert_same_values(before, after, [floats(4, 3, 5), floats(4, 3, 6, seed=1)], rtol=1e-5)


def test_transpose_of_a_product_swaps_the_operands():
    a = gc.placeholder((4, 5), name="a")
    b = gc.placeholder((4, 6), name="b")
    before, after, report = simplified(gc.exp(gc.transpose(gc.transpose(a) @ b)), [a, b])
    (product,) = [n for n in after.graph.ancestors(after.roots()) if n.op.name == "matmul"]
    assert product.shape == (6, 5)
    assert [i.op.name for i in product.inputs] == ["transpose", "placeholder"]
    assert count_live_ops(after, "transpose") == 1
    assert report == {"transpose_of_matmul": 1, "transpose_of_transpose": 1}
    assert_same_values(before, after, [floats(4, 5), floats(4, 6, seed=1)], rtol=1e-5)


def test_transpose_of_a_product_read_elsewhere_stays():
    a = gc.placeholder((5, 4), name="a")
    b = gc.placeholder((4, 6), name="b")
    product = a @ b
    before, after, report = simplified(gc.exp(gc.transpose(product)) + 0.0 * product.T, [a, b])
    assert "transpose_of_matmul" not in report


def test_sum_of_products_becomes_one_product_of_stacked_rows():
    """sum_t P_t^T @ Q_t (an unrolled RNN's weight gradient) plus another term: one
    matmul of the stacked rows, and the P stack is the concatenate that already exists
    (in its order), so cse can share it."""
    ps = [gc.placeholder((3, 4), name=f"p{t}") for t in range(5)]
    qs = [gc.placeholder((3, 2), name=f"q{t}") for t in range(5)]
    existing = gc.concatenate([gc.expand_dims(p, 1) for p in ps], axis=1)
    momentum = gc.placeholder((4, 2), name="momentum")
    total = momentum
    for p, q in zip(reversed(ps), reversed(qs)):
        total = total + gc.transpose(p) @ q
    before, after, report = simplified([total, gc.sum(existing)], ps + qs + [momentum])
    live = after.graph.ancestors(after.roots())
    (product,) = [n for n in live if n.op.name == "matmul"]
    assert product.shape == (4, 2) and product.inputs[0].shape == (4, 15)
    concats = [n for n in live if n.op.name == "concatenate"]
    orders = {tuple(piece.inputs[0].name for piece in c.inputs) for c in concats}
    assert orders == {tuple(f"p{t}" for t in range(5)), tuple(f"q{t}" for t in range(5))}
    assert count_live_ops(after, "add") == 1
    assert report["sum_of_matmuls"] == 1
    feeds = [floats(3, 4, seed=t) for t in range(5)] + [floats(3, 2, seed=9 + t) for t in range(5)]
    assert_same_values(before, after, feeds + [floats(4, 2, seed=20)], rtol=1e-5)


def test_slices_of_an_unrolled_loop_stack_back_into_the_tensor():
    """expand_dims(x[:, t]) for t in order, concatenated on axis 1, is x; a partial run
    of slices is one slice; slices out of order stay a concatenate."""
    x = gc.placeholder((2, 4, 3), name="x")
    steps = [gc.expand_dims(x[:, t], 1) for t in range(4)]
    whole = gc.concatenate(steps, axis=1)
    middle = gc.concatenate(steps[1:3], axis=1)
    shuffled = gc.concatenate([steps[1], steps[0]], axis=1)
    before, after, report = simplified([gc.exp(whole), gc.exp(middle), gc.exp(shuffled)], [x])
    assert report["expand_dims_of_squeeze"] == 4 and report["concatenate_of_slices"] == 2
    exps = [n for n in after.roots()]
    assert exps[0].inputs[0] is after.inputs[0]
    assert exps[1].inputs[0].op.name == "slice"
    assert exps[2].inputs[0].op.name == "concatenate"
    assert_same_values(before, after, [floats(2, 4, 3)])


def test_input_projection_of_every_step_is_one_matmul():
    """x[:, t] @ W for every t -> (x @ W)[:, t]; with a step missing, nothing changes."""
    x = gc.placeholder((2, 4, 3), name="x")
    w = gc.placeholder((3, 5), name="w")
    every = [gc.tanh(x[:, t] @ w) for t in range(4)]
    before, after, report = simplified(every, [x, w])
    assert report["matmuls_of_slices"] == 4
    from graphc.passes.cse import cse
    cse(after)
    products = [n for n in after.graph.ancestors(after.roots()) if n.op.name == "matmul"]
    assert [p.shape for p in products] == [(8, 5)]
    assert_same_values(before, after, [floats(2, 4, 3), floats(3, 5, seed=1)], rtol=1e-5)
    _, _, partial = simplified(every[:3], [x, w])
    assert "matmuls_of_slices" not in partial


def test_slices_that_name_the_whole_inner_axis_make_one_matmul_too():
    """x[:, t, 0:K] @ W: the slice of x @ W is along axis 1 alone (x's explicit 0:K
    indexed (x @ W)'s N axis: an internal AssertionError at compile, found by probing)."""
    x = gc.placeholder((2, 3, 4), name="x")
    w = gc.placeholder((4, 5), name="w")
    before, after, report = simplified([x[:, t, 0:4] @ w for t in range(3)], [x, w])
    assert report["matmuls_of_slices"] == 3
    assert_same_values(before, after, [floats(2, 3, 4), floats(4, 5, seed=1)], rtol=1e-5)


def test_a_batched_weight_gradient_with_an_empty_axis_is_one_product_too():
    """The rows of (2, 3, 0) are (6, 0), not (-1, 0): reshape cannot infer -1 there
    (a ShapeError at compile, found by fuzzing)."""
    x, w = gc.placeholder((2, 3, 2), name="x"), gc.placeholder((2, 0), name="w")
    (dw,) = gc.grad(gc.sum(gc.matmul(x, w)), [w])
    before, after, report = simplified(dw, [x, w])
    assert report["batch_sum_of_matmul"] == 1
    (value,) = assert_same_values(before, after, [floats(2, 3, 2), floats(2, 0)])
    assert value.shape == (2, 0)


def test_stacked_products_with_one_matrix_are_one_product():
    """The input gradient of an unrolled x[:, t] @ W: stack(G_t @ W.T) = stack(G_t) @ W.T."""
    gs = [gc.placeholder((2, 5), name=f"g{t}") for t in range(3)]
    w = gc.placeholder((3, 5), name="w")
    stacked = gc.concatenate([gc.expand_dims(g @ gc.transpose(w), 1) for g in gs], axis=1)
    before, after, report = simplified(gc.exp(stacked), gs + [w])
    assert report["concatenate_of_matmuls"] == 1
    products = [n for n in after.graph.ancestors(after.roots()) if n.op.name == "matmul"]
    assert [p.shape for p in products] == [(6, 3)]
    feeds = [floats(2, 5, seed=t) for t in range(3)] + [floats(3, 5, seed=7)]
    assert_same_values(before, after, feeds, rtol=1e-5)



def test_a_linear_on_3d_input_keeps_bias_activation_and_residual_at_the_gemm_shape():
    x = gc.placeholder((4, 3, 5), name="x")
    w, b = gc.placeholder((5, 6), name="w"), gc.placeholder((6,), name="b")
    skip = gc.placeholder((4, 3, 6), name="skip")
    y = gc.relu(x @ w + b) + skip
    before, after, report = simplified(y, [x, w, b, skip])
    assert report["elementwise_of_reshape"] == 3
    (root,) = after.roots()
    assert root.op.name == "reshape" and root.inputs[0].op.name == "add"
    live = after.graph.ancestors(after.roots())
    assert {n.op.name: n.shape for n in live if n.op.name in ("add", "relu")} == \
        {"add": (12, 6), "relu": (12, 6)}
    feeds = [floats(4, 3, 5), floats(5, 6, seed=1), floats(6, seed=2), floats(4, 3, 6, seed=3)]
    assert_same_values(before, after, feeds)


def test_a_reshape_stays_above_an_operand_that_varies_along_its_regrouped_axes():
    x = gc.placeholder((4, 3, 5), name="x")
    w = gc.placeholder((5, 6), name="w")
    per_step = gc.placeholder((3, 1), name="per_step")     # varies along T, which rows merge
    before, after, report = simplified((x @ w) * per_step, [x, w, per_step])
    assert "elementwise_of_reshape" not in report
    feeds = [floats(4, 3, 5), floats(5, 6, seed=1), floats(3, 1, seed=2)]
    assert_same_values(before, after, feeds)
