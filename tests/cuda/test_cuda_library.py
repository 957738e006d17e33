"""The CUDA backend's library kernels beyond matmul and take (runtime/cuda/conv.py,
pool.py, rng.py, layout.py, index.py), forward values and gradients against
device="reference" at small shapes. Every output has more elements than one
simulator launch covers (2 blocks of 16 threads), so the grid-stride loops run.
"""
import numpy as np
import pytest

import graphc as gc
from graphc.errors import CompileError
from graphc.ops.random import uniform_bits
from graphc.runtime.cuda.library import LibraryCall

from compare import RNG, check, data, launched

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")
CONV_TOL = {"rtol": 1e-5, "atol": 1e-5}     # GEMM sums in another order than einsum's


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path / "cache"))


# -- conv -----------------------------------------------------------------------------

@pytest.mark.parametrize("options", [
    {},
    {"stride": (2, 1), "padding": (1, 2), "dilation": (1, 2)},
    {"groups": 2, "padding": 1},
])
def test_conv2d_and_both_gradients_equal_the_reference(options):
    x = gc.placeholder((2, 4, 6, 5), name="x")
    w = gc.placeholder((6, 4 // options.get("groups", 1), 3, 2), name="w")
    y = gc.nn.conv2d(x, w, **options)
    dx, dw = gc.grad(gc.sum(y * gc.constant(data(*y.shape))), [x, w])
    plan = check([y, dx, dw], {x: data(2, 4, 6, 5), w: data(*w.shape)}, **CONV_TOL)
    assert launched(plan) == ["im2col", "matmul",          # y
                              "matmul", "col2im",          # dx: w^T dy, then col2im
                              "im2col", "matmul", "sum_parts"]   # dw: per image, summed


def test_conv_nodes_share_their_scratch():
    """A step's launches run in order, so the column buffers of its three convs of
    the same geometry are one buffer; the weight gradient's per-image parts are its
    own (they live beside its columns)."""
    x = gc.placeholder((2, 4, 6, 5), name="x")
    w = gc.placeholder((6, 4, 3, 2), name="w")
    y = gc.nn.conv2d(x, w)
    dx, dw = gc.grad(gc.sum(y * gc.constant(data(*y.shape))), [x, w])
    plan = check([y, dx, dw], {x: data(2, 4, 6, 5), w: data(*w.shape)}, **CONV_TOL)
    col = 2 * 4 * 3 * 2 * 4 * 4 * 4             # n C kh kw ho wo float32s, in bytes
    parts = 2 * 6 * 4 * 3 * 2 * 4               # one dw per image
    assert plan.stats()["scratch_bytes"] == col + parts


def test_conv2d_float64_and_a_depthwise_conv():
    x = gc.placeholder((2, 3, 5, 5), "float64", name="x")
    w = gc.placeholder((3, 1, 3, 3), "float64", name="w")
    y = gc.nn.conv2d(x, w, padding=1, groups=3)
    check([y] + gc.grad(gc.sum(y ** 2.0), [x, w]),
          {x: data(2, 3, 5, 5, dtype="float64"), w: data(3, 1, 3, 3, dtype="float64")})


def test_conv_grad_of_grad():
    x = gc.placeholder((1, 2, 5, 4), name="x")
    w = gc.placeholder((3, 2, 2, 2), name="w")
    (dx,) = gc.grad(gc.sum(gc.nn.conv2d(x, w) ** 2.0), [x])
    check(gc.grad(gc.sum(dx * dx), [x, w]), {x: data(1, 2, 5, 4), w: data(3, 2, 2, 2)},
          rtol=1e-4, atol=1e-4)


# -- pooling --------------------------------------------------------------------------

def pool_input():
    """Values with ties, a NaN, and a window of -inf only (the first two rows)."""
    feed = np.round(data(2, 2, 7, 6), 1)
    feed[0, 0, 2, 2] = np.nan
    feed[1, 1, :2, :2] = -np.inf
    return feed


@pytest.mark.parametrize("options", [{"kernel_size": 2},
                                     {"kernel_size": 3, "stride": 2, "padding": 1},
                                     {"kernel_size": (2, 3), "stride": 1, "dilation": (2, 1)}])
def test_max_pool_its_gradient_and_select_keep_ties_nan_and_inf_rules(options):
    x = gc.placeholder((2, 2, 7, 6), name="x")
    y = gc.nn.max_pool2d(x, **options)
    g = gc.constant(data(*y.shape))
    (dx,) = gc.grad(gc.sum(y * g), [x])
    (dg,) = gc.grad(gc.sum(dx * dx), [g])         # grad of grad: max_pool2d_select
    plan = check([y, dx, dg], {x: pool_input()})
    assert {"max_pool2d", "max_pool2d_grad", "max_pool2d_select"} <= set(launched(plan))


@pytest.mark.parametrize("options", [{"kernel_size": 2},
                                     {"kernel_size": 3, "stride": 2, "padding": 1},
                                     {"kernel_size": 3, "stride": 1, "padding": 1,
                                      "count_include_pad": False},
                                     {"kernel_size": 2, "stride": 1, "divisor_override": 3}])
def test_avg_pool_and_its_gradient(options):
    x = gc.placeholder((2, 2, 6, 5), name="x")
    y = gc.nn.avg_pool2d(x, **options)
    g = gc.placeholder(y.shape, name="g")          # (a constant dy would be folded)
    (dx,) = gc.grad(gc.sum(y * g), [x])
    plan = check([y, dx], {x: data(2, 2, 6, 5), g: data(*y.shape)})
    assert launched(plan) == ["avg_pool2d", "avg_pool2d_grad"]


# -- random ---------------------------------------------------------------------------

def draws(build, device, calls=2):
    """`calls` calls of an executable of build()'s outputs in a graph of its own
    (a fresh counter: the draws of two devices line up)."""
    with gc.Graph(device):
        step = gc.compile(build(), inputs=[], device=device)
        return [step() for _ in range(calls)]


def test_random_draws_are_the_references_bit_for_bit_and_advance_per_call():
    def build():
        return [gc.random.uniform((5, 9), low=-1.0, high=3.0, seed=7),
                gc.random.normal((41,), mean=1.0, std=2.0, seed=2 ** 63 + 11),
                gc.random.uniform((3, 13), dtype="float64", seed=0),
                gc.random.bernoulli(0.3, (37,), seed=5)]
    want, got = draws(build, "reference"), draws(build, "cuda")
    for w, g in zip(sum(want, []), sum(got, [])):
        assert g.dtype == w.dtype
        np.testing.assert_array_equal(g, w)
    assert not np.array_equal(got[0][0], got[1][0])      # a new call, new numbers
    u = uniform_bits(7, 0, 45).reshape(5, 9)             # the generator, by hand
    np.testing.assert_array_equal(got[0][0], (-1.0 + 4.0 * u).astype("float32"))


def test_dropout_masks_and_gradient_equal_the_references():
    feed = data(6, 7)

    def build():
        gc.manual_seed(3)                   # the dropout node's seed
        x = gc.constant(feed)
        y = gc.nn.dropout(x, p=0.4)
        return [y, gc.grad(gc.sum(y * y), [x])[0]]
    for want, got in zip(draws(build, "reference"), draws(build, "cuda")):
        for w, g in zip(want, got):
            np.testing.assert_allclose(g, w, rtol=1e-6, atol=0)
        assert (got[0] == 0).sum() > 5


def test_a_seed_outside_uint64_is_refused_when_the_op_is_built():
    """(graphc/random.py checks it, before any device sees the seed.)"""
    with gc.Graph("bad seed"):
        with pytest.raises(gc.GraphcError, match=r"random_uniform: seed must be an integer"):
            gc.random.uniform((3,), seed=-1)


# -- concatenate, pad, slice_grad -----------------------------------------------------

def test_concatenate_pieces_in_any_layout_and_its_gradient():
    a, b = gc.placeholder((3, 4), name="a"), gc.placeholder((4, 5), name="b")
    joined = gc.concatenate([a, gc.transpose(b) * 2.0, a[:, ::-1] + 1.0], axis=0)
    wide = gc.concatenate([a, gc.transpose(b)[:3]], axis=1)
    (da,) = gc.grad(gc.sum(joined * joined) + gc.sum(wide), [a])
    check([joined, wide, da], {a: data(3, 4), b: data(4, 5)})


def test_pad_with_a_value_and_int_dtypes():
    x, k = gc.placeholder((3, 5), name="x"), gc.placeholder((4, 3), "int64", name="k")
    padded = gc.pad(x, ((1, 2), (0, 3)), constant_values=-1.5)
    (dx,) = gc.grad(gc.sum(padded * padded), [x])
    check([padded, dx, gc.pad(k, ((2, 0), (1, 1)), constant_values=7)],
          {x: data(3, 5), k: RNG.integers(-9, 9, (4, 3))})


def test_slice_grad_with_steps_negative_steps_and_integer_indices():
    x = gc.placeholder((5, 6, 2), name="x")
    parts = [x[::-2, 1:5, :], x[1, ::3], x[:, -1:0:-1, 1]]
    loss = sum(gc.sum(p * p * float(i + 1)) for i, p in enumerate(parts))
    plan = check(gc.grad(loss, [x]), {x: data(5, 6, 2)})
    assert "place" in launched(plan)


# -- argmax / argmin ------------------------------------------------------------------

def test_argmax_argmin_along_axes_and_flattened_first_of_ties_and_nan():
    x = gc.placeholder((4, 5, 3), name="x")
    feed = np.round(data(4, 5, 3), 0)                    # many ties
    feed[2, 3:, 1], feed[1, :, 2] = np.nan, 0.0      # two NaNs: the first one wins
    t = gc.transpose(x, (2, 0, 1))
    check([gc.argmax(x, axis=1), gc.argmin(x, axis=0, keepdims=True), gc.argmax(x),
           gc.argmin(x), gc.argmax(t, axis=2), gc.argmin(x * 1.0, axis=2)], {x: feed})


def test_argmax_argmin_of_ints():
    k = gc.placeholder((3, 6), "int64", name="k")
    check([gc.argmax(k, axis=1), gc.argmin(k.astype("int32"), axis=0)],
          {k: RNG.integers(-3, 3, (3, 6))})


# -- operands and errors --------------------------------------------------------------

def test_a_transposed_view_read_by_take_is_copied_to_c_order_first():
    a, b = gc.placeholder((5, 4), name="a"), gc.placeholder((5, 3), name="b")
    t = gc.transpose(a)                      # an alias (matmul reads it in place)
    ids = gc.constant(np.array([3, 0, 0, 2]))
    plan = check([t @ b, gc.take(t, ids, axis=0)], {a: data(5, 4), b: data(5, 3)})
    assert launched(plan) == ["matmul", "gather", "take"]


class _FutureOp:
    """A library node the CUDA backend has no kernel for."""
    class op:
        name, shape_only = "fft2", ()
    name, shape, loc, inputs = "fft2_1", (4, 4), None, ()


def test_an_op_without_a_cuda_kernel_raises_naming_it():
    library = LibraryCall(upload=None, allocate=None)
    with pytest.raises(CompileError, match=r'fft2: device="cuda" cannot run fft2: the CUDA '
                                           r"backend has no kernel for it; node fft2_1"):
        library.prepare(_FutureOp, [], None, None, 0)
