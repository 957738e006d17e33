"""The CPU library kernels (runtime/cpu/library.py) against graphc's NumPy references.

Outputs and scratch arrays start full of NaN, so a kernel that skips an
element of `out` or reads scratch it did not write fails. Few configurations,
each meaningful: compiling a kernel costs 1-3 s per dtype.
"""
import numpy as np
import pytest

import graphc as gc
from graphc.ops.conv import (conv2d_grad_input_reference, conv2d_grad_weight_reference,
                             conv2d_reference, output_size)
from graphc.runtime.cpu import library as L

TOLERANCE = {np.float32: dict(rtol=1e-4, atol=1e-5), np.float64: dict(rtol=1e-10, atol=1e-10)}
DTYPES = list(TOLERANCE)
OPS = gc.ops.OPS


def random(shape, dtype, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def nans(shape, dtype):
    return np.full(shape, np.nan, dtype)


def assert_close(actual, expected, dtype):
    np.testing.assert_allclose(actual, expected, **TOLERANCE[dtype])


# -- conv ----------------------------------------------------------------------------

# x shape, w shape, stride, padding, dilation, groups
CONVS = {
    "plain": ((2, 3, 7, 8), (4, 3, 3, 2), (1, 1), (0, 0), (1, 1), 1),
    "strided padded dilated grouped": ((2, 4, 9, 7), (6, 2, 3, 3), (2, 1), (1, 2), (1, 2), 2),
    "one channel strided": ((3, 1, 6, 6), (2, 1, 2, 3), (2, 3), (1, 1), (2, 1), 1),
    "depthwise padded": ((2, 3, 6, 5), (3, 1, 3, 3), (1, 1), (1, 1), (1, 1), 3),
}


def conv_case(name, dtype, cases=CONVS):
    xs, ws, stride, padding, dilation, groups = cases[name]
    hw = tuple(output_size(xs[2 + i], ws[2 + i], stride[i], padding[i], dilation[i]) for i in (0, 1))
    x, w = random(xs, dtype, 1), random(ws, dtype, 2)
    dy = random((xs[0], ws[0]) + hw, dtype, 3)
    attrs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    ints = (*stride, *padding, *dilation, groups)
    return x, w, dy, attrs, ints


def conv_work(op, x, w, dy, chunks):
    return nans(L.conv_workspace_shape(op, "gemm", x.shape, w.shape, dy.shape, chunks), x.dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", CONVS)
@pytest.mark.parametrize("chunks", [1, 2])
def test_gemm_conv2d_and_gradients_match_references(name, dtype, chunks):
    x, w, dy, attrs, ints = conv_case(name, dtype)
    y = nans(dy.shape, dtype)
    L.conv2d(x, w, y, *ints, conv_work("conv2d", x, w, dy, chunks))
    assert_close(y, conv2d_reference(x, w, **attrs), dtype)
    dx = nans(x.shape, dtype)
    L.conv2d_grad_input(dy, w, dx, *ints, conv_work("conv2d_grad_input", x, w, dy, chunks))
    assert_close(dx, conv2d_grad_input_reference(dy, w, x.shape[2:], **attrs), dtype)
    dw = nans(w.shape, dtype)
    L.conv2d_grad_weight(x, dy, dw, *ints, conv_work("conv2d_grad_weight", x, w, dy, chunks))
    assert_close(dw, conv2d_grad_weight_reference(x, dy, w.shape[2:], **attrs), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", CONVS)
def test_direct_conv2d_and_gradients_match_references(name, dtype):
    x, w, dy, attrs, ints = conv_case(name, dtype)
    y, dx, dw = nans(dy.shape, dtype), nans(x.shape, dtype), nans(w.shape, dtype)
    L.conv2d_direct(x, w, y, *ints)
    assert_close(y, conv2d_reference(x, w, **attrs), dtype)
    L.conv2d_grad_input_direct(dy, w, dx, *ints)
    assert_close(dx, conv2d_grad_input_reference(dy, w, x.shape[2:], **attrs), dtype)
    L.conv2d_grad_weight_direct(x, dy, dw, *ints)
    assert_close(dw, conv2d_grad_weight_reference(x, dy, w.shape[2:], **attrs), dtype)


# blocks of several images (LeNet's conv2 at batch 5: blocks of 3 and 2 images with 2
# chunks), unequal padding, dilation and groups; strides whose phases hold unequal
# numbers of rows and columns (odd padded sizes), a stride larger than the kernel
RUNS_CONVS = {
    **CONVS,
    "lenet conv2": ((5, 6, 14, 14), (16, 6, 5, 5), (1, 1), (0, 0), (1, 1), 1),
    "padded dilated grouped": ((3, 4, 9, 7), (6, 2, 3, 2), (1, 1), (2, 1), (2, 3), 2),
    "resnet downsampling": ((3, 4, 8, 8), (6, 4, 3, 3), (2, 2), (1, 1), (1, 1), 1),
    "odd strided padded dilated": ((2, 3, 11, 10), (4, 3, 3, 2), (3, 2), (2, 1), (2, 3), 1),
    "stride past the kernel": ((2, 2, 9, 9), (3, 2, 2, 2), (3, 3), (0, 1), (1, 1), 1),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", RUNS_CONVS)
@pytest.mark.parametrize("chunks", [1, 2])
def test_runs_conv2d_and_gradients_match_references(name, dtype, chunks):
    """conv_runs.py's kernels: columns from shifted runs of the padded (phase) planes,
    GEMMs over blocks of images. The work array starts full of NaN: the weight gradient's
    columns past each image's last run must be zeroed, not read."""
    x, w, dy, attrs, ints = conv_case(name, dtype, RUNS_CONVS)
    def work():
        return nans(L.conv_workspace_shape("conv2d", "runs", x.shape, w.shape, dy.shape, chunks,
                                           padding=attrs["padding"], stride=attrs["stride"]),
                    dtype)
    y, dx, dw = nans(dy.shape, dtype), nans(x.shape, dtype), nans(w.shape, dtype)
    L.conv2d_runs(x, w, y, *ints, work())
    assert_close(y, conv2d_reference(x, w, **attrs), dtype)
    L.conv2d_grad_input_runs(dy, w, dx, *ints, work())
    assert_close(dx, conv2d_grad_input_reference(dy, w, x.shape[2:], **attrs), dtype)
    L.conv2d_grad_weight_runs(x, dy, dw, *ints, work())
    assert_close(dw, conv2d_grad_weight_reference(x, dy, w.shape[2:], **attrs), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("stride", [(1, 1), (2, 2)])
def test_runs_gradients_put_nan_where_the_reference_does(dtype, stride):
    """An inf in x reaches dW only through the products it takes part in, a NaN in w
    reaches dX likewise: the columns between output rows, which hold neighbouring
    inputs (or their products with w), must not carry them (found by fuzzing:
    dW [inf nan inf nan] against the reference's [inf 27 inf 27])."""
    x = random((2, 3, 6, 7), dtype, 4)
    x[0, 1, 2, 0] = np.inf
    x[1, 2, 4, 6] = -np.inf
    w = random((4, 3, 2, 3), dtype, 5)
    w[1, 0, 0, 1] = np.nan
    attrs = dict(stride=stride, padding=(1, 0), dilation=(1, 1), groups=1)
    ints = (*stride, 1, 0, 1, 1, 1)
    hw = tuple(output_size(x.shape[2 + i], w.shape[2 + i], stride[i], (1, 0)[i], 1)
               for i in (0, 1))
    dy = random((2, 4) + hw, dtype, 6)
    work = nans(L.conv_workspace_shape("conv2d", "runs", x.shape, w.shape, dy.shape, 2,
                                       padding=(1, 0), stride=stride), dtype)
    dx, dw = nans(x.shape, dtype), nans(w.shape, dtype)
    L.conv2d_grad_input_runs(dy, w, dx, *ints, work)
    np.testing.assert_allclose(dx, conv2d_grad_input_reference(dy, w, x.shape[2:], **attrs),
                               equal_nan=True, **TOLERANCE[dtype])
    L.conv2d_grad_weight_runs(x, dy, dw, *ints, work)
    np.testing.assert_allclose(dw, conv2d_grad_weight_reference(x, dy, w.shape[2:], **attrs),
                               equal_nan=True, **TOLERANCE[dtype])


def test_runs_kernels_refuse_a_short_work_array():
    x, w, dy, attrs, ints = conv_case("odd strided padded dilated", np.float32, RUNS_CONVS)
    shape = L.conv_workspace_shape("conv2d", "runs", x.shape, w.shape, dy.shape, 1,
                                   padding=attrs["padding"], stride=attrs["stride"])
    y = nans(dy.shape, np.float32)
    with pytest.raises(ValueError, match="too small"):
        L.conv2d_runs(x, w, y, *ints, nans((1, shape[1] - 1), np.float32))
    with pytest.raises(ValueError, match="needs the conv's padding"):
        L.conv_workspace_shape("conv2d", "runs", x.shape, w.shape, dy.shape)


CONV_OPS = ("conv2d", "conv2d_grad_input", "conv2d_grad_weight")


def conv_attrs(groups=1, stride=(1, 1)):
    return dict(stride=stride, padding=(0, 0), dilation=(1, 1), groups=groups)


def test_variants_winograd_for_w2s_conv2_runs_for_conv1_direct_for_depthwise():
    def variants(x_shape, w_shape, y_shape, **attrs):
        return [L.conv_variant(op, x_shape, w_shape, y_shape, conv_attrs(**attrs))
                for op in CONV_OPS]
    assert variants((64, 32, 26, 26), (64, 32, 3, 3), (64, 64, 24, 24)) == ["winograd"] * 3
    # stride 1: one input channel (its input gradient sums one row per output
    # channel: row by row); 4x4 outputs (4 tiles per image); a 5x5 kernel
    assert variants((64, 1, 28, 28), (32, 1, 3, 3), (64, 32, 26, 26)) == ["runs", "gemm", "runs"]
    assert variants((8, 256, 6, 6), (256, 256, 3, 3), (8, 256, 4, 4)) == ["runs"] * 3
    assert variants((64, 32, 26, 26), (64, 32, 5, 5), (64, 64, 22, 22)) == ["runs"] * 3
    # strided: runs of phase planes; 1x1 (its rows are the input's own: no im2col to save)
    assert variants((64, 32, 26, 26), (64, 32, 3, 3), (64, 64, 12, 12),
                    stride=(2, 2)) == ["runs"] * 3
    assert variants((64, 32, 26, 26), (64, 32, 1, 1), (64, 64, 26, 26)) == ["gemm"] * 3
    assert variants((64, 32, 26, 26), (64, 32, 1, 1), (64, 64, 13, 13),
                    stride=(2, 2)) == ["gemm"] * 3
    depthwise = variants((64, 32, 26, 26), (32, 1, 3, 3), (64, 32, 24, 24), groups=32)
    assert depthwise == ["direct", "gemm", "direct"]


def test_conv_workspace_grows_with_chunks_and_names_kernels_without_one():
    shapes = ((64, 32, 26, 26), (64, 32, 3, 3), (64, 64, 24, 24))
    assert L.conv_workspace_shape("conv2d", "gemm", *shapes) == (1, 288 * 576)
    # columns, then the per-chunk dW the GEMMs accumulate into
    assert L.conv_workspace_shape("conv2d_grad_weight", "gemm", *shapes, chunks=2) == (
        2, 288 * 576 + 64 * 288)
    # U (64 x 16 x 32), V (32 x 16 x 144 tiles), M (64 x 16 x 144), a 26 x 26 plane,
    # and one 2x2 output per tile
    assert L.conv_workspace_shape("conv2d", "winograd", *shapes, chunks=2) == (
        2, 16 * (64 * 32 + 32 * 144 + 64 * 144) + 26 * 26 + 4 * 144)
    with pytest.raises(ValueError, match="direct kernel of 'conv2d'"):
        L.conv_workspace_shape("conv2d", "direct", *shapes)


# -- matmul --------------------------------------------------------------------------

@pytest.mark.parametrize("layout, dtype", [("C @ C", np.float32), ("C @ C", np.float64),
                                           ("F @ C", np.float32), ("C @ F", np.float64)])
def test_matmul_2d_reads_transposed_operands_in_place(layout, dtype):
    """Each layout pair is one more parallel compile (about a second), so once each.
    37 rows: uneven row blocks."""
    a, b = random((37, 120), dtype, 1), random((120, 120), dtype, 2)
    a = np.asfortranarray(a) if layout.startswith("F") else a
    b = np.asfortranarray(b) if layout.endswith("F") else b
    out = nans((37, 120), dtype)
    L.matmul(a, b, out)
    assert_close(out, OPS["matmul"].reference(a, b), dtype)


@pytest.mark.parametrize("rows", [1, 3, 40])
@pytest.mark.parametrize("b_layout", ["C", "F"])
@pytest.mark.parametrize("width", [10, 700])
def test_matmul_of_few_rows_splits_columns(rows, b_layout, width):
    """One row is a vector-matrix product (dot products of w's rows for a transposed
    PyTorch weight, rows of w scaled and added otherwise); a few rows of a wide
    product, or a product WIDE times wider than tall (40 x 700), split their
    columns over the threads. 700 columns: above the split threshold, in blocks of
    16 columns with a ragged last one."""
    a, b = random((rows, 300), np.float32, 1), random((300, width), np.float32, 2)
    b = np.asfortranarray(b) if b_layout == "F" else b
    out = nans((rows, width), np.float32)
    L.matmul(a, b, out)
    expected = OPS["matmul"].reference(a, b)   # sums of 300 products: absolute error scales
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-6 * np.abs(expected).max())


@pytest.mark.parametrize("b_layout", ["C", "F"])
def test_matmul_of_one_row_deep_and_narrow_computes_every_column(b_layout):
    """A batch of one through a deep layer with fewer than 64 outputs (a classifier head,
    4096 x 40): enough work to split, too few columns for a block per thread. It used
    to split into 0 blocks and leave `out` unwritten."""
    a, b = random((1, 4096), np.float32, 1), random((4096, 40), np.float32, 2)
    b = np.asfortranarray(b) if b_layout == "F" else b
    out = nans((1, 40), np.float32)
    L.matmul(a, b, out)
    expected = OPS["matmul"].reference(a, b)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-6 * np.abs(expected).max())

@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_a_row_times_a_c_ordered_weight_writes_only_its_column_block(dtype):
    """_axpy_rows (x @ w for one row, w stored (in, out)) sums in its own array and
    writes columns [lo, hi) of out, nothing else: each thread owns one block."""
    x, w = random((300,), dtype, 1), random((300, 70), dtype, 2)
    out = np.full(70, 7, dtype)
    L._axpy_rows(x, w, out, 16, 48)
    expected = OPS["matmul"].reference(x[None], w)[0]
    np.testing.assert_array_equal(out[:16], 7)
    np.testing.assert_array_equal(out[48:], 7)
    np.testing.assert_allclose(out[16:48], expected[16:48], rtol=1e-4,
                               atol=1e-6 * np.abs(expected).max())


@pytest.mark.parametrize("layout, dtype", [("F @ C", np.float32), ("C @ C", np.float64)])
def test_matmul_deeper_than_wide_sums_slices_of_the_shared_axis(layout, dtype):
    """A weight gradient over many samples (K = 2050 >> M, N) splits K over the threads
    and adds the partial products; `matmul_by_depth` itself with 3 uneven slices, whatever
    the thread count."""
    a, b = random((40, 2050), dtype, 1), random((2050, 24), dtype, 2)
    a = np.asfortranarray(a) if layout.startswith("F") else a
    expected = OPS["matmul"].reference(a, b)
    out = nans((40, 24), dtype)
    L.matmul(a, b, out)
    tolerance = dict(rtol=1e-4, atol=1e-6 * np.abs(expected).max()) if dtype == np.float32 \
        else TOLERANCE[dtype]
    np.testing.assert_allclose(out, expected, **tolerance)
    out = nans((40, 24), dtype)
    L.matmul_by_depth(a, b, out, 3)
    np.testing.assert_allclose(out, expected, **tolerance)

def test_matmul_of_one_row_reads_strided_operands_through_blas():
    """A row or a weight that is neither C- nor F-ordered is not the vector kernel's."""
    a = random((1, 600), np.float32, 1)[:, ::2]
    b = random((300, 80), np.float32, 2)
    out = nans((1, 80), np.float32)
    L.matmul(a, b, out)
    assert_close(out, OPS["matmul"].reference(a, b), np.float32)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batches", [(3, 3), (1, 3), (3, 1)])
def test_matmul_batched_broadcasts_a_batch_of_one(batches, dtype):
    a, b = random((batches[0], 5, 4), dtype, 1), random((batches[1], 4, 6), dtype, 2)
    out = nans((3, 5, 6), dtype)
    L.matmul(a, b, out)
    assert_close(out, OPS["matmul"].reference(a, b), dtype)


def test_blas_thread_count_can_be_set_and_read_back():
    before = L.blas_threads()
    try:
        assert L.set_blas_threads(1) and L.blas_threads() == 1
    finally:
        L.set_blas_threads(before)


# -- pooling -------------------------------------------------------------------------

# kernel, stride, padding, dilation
MAX_POOLS = {
    "non-overlapping": ((2, 2), (2, 2), (0, 0), (1, 1)),
    "tiling 3x2, rows left over": ((3, 2), (3, 2), (0, 0), (1, 1)),
    "overlapping padded": ((3, 3), (1, 2), (1, 1), (1, 1)),
    "dilated padded": ((2, 3), (2, 1), (1, 1), (2, 2)),
}


def pool_input(dtype, ties):
    x = random((2, 3, 9, 8), dtype)
    return np.round(x) if ties else x           # rounding makes most windows tie


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("name", MAX_POOLS)
def test_max_pool2d_and_gradient_match_references(name, ties, dtype):
    kernel, stride, padding, dilation = MAX_POOLS[name]
    attrs = dict(kernel=kernel, stride=stride, padding=padding, dilation=dilation)
    x = pool_input(dtype, ties)
    ref = OPS["max_pool2d"].reference(x, **attrs)
    y = nans(ref.shape, dtype)
    L.max_pool2d(x, y, *kernel, *stride, *padding, *dilation)
    assert_close(y, ref, dtype)
    dy, dx = random(ref.shape, dtype, 5), nans(x.shape, dtype)
    L.max_pool2d_grad(x, dy, dx, *kernel, *stride, *padding, *dilation)
    assert_close(dx, OPS["max_pool2d_grad"].reference(x, dy, **attrs), dtype)


@pytest.mark.parametrize("kernel, stride, padding", [((3, 3), (2, 2), (1, 1)),
                                                     ((3, 3), (3, 3), (0, 0))])   # tiling
def test_max_pool2d_gradient_of_an_all_minus_inf_window_goes_where_the_reference_sends_it(
        kernel, stride, padding):
    x = random((1, 1, 6, 6), np.float64)
    x[0, 0, :3, :3] = -np.inf
    x[0, 0, 4, 4] = np.nan                      # a NaN wins, as in PyTorch
    dilation = (1, 1)
    attrs = dict(kernel=kernel, stride=stride, padding=padding, dilation=dilation)
    ref = OPS["max_pool2d"].reference(x, **attrs)
    y, dy, dx = nans(ref.shape, np.float64), random(ref.shape, np.float64), nans(x.shape, np.float64)
    L.max_pool2d(x, y, *kernel, *stride, *padding, *dilation)
    L.max_pool2d_grad(x, dy, dx, *kernel, *stride, *padding, *dilation)
    np.testing.assert_array_equal(y, ref)
    np.testing.assert_array_equal(dx, OPS["max_pool2d_grad"].reference(x, dy, **attrs))


# kernel, stride, padding, count_include_pad, divisor_override
AVG_POOLS = {
    "non-overlapping": ((2, 2), (2, 2), (0, 0), 1, 0),
    "overlapping padded, count pad": ((3, 2), (1, 2), (1, 1), 1, 0),
    "overlapping padded, no pad": ((3, 2), (1, 2), (1, 1), 0, 0),
    "divisor override": ((3, 3), (2, 2), (1, 0), 0, 5),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", AVG_POOLS)
def test_avg_pool2d_and_gradient_match_references(name, dtype):
    kernel, stride, padding, include, override = AVG_POOLS[name]
    attrs = dict(kernel=kernel, stride=stride, padding=padding, count_include_pad=bool(include),
                 divisor_override=override or None)      # (the kernels' 0 is the op's None)
    x = random((2, 3, 9, 8), dtype)
    ref = OPS["avg_pool2d"].reference(x, **attrs)
    y = nans(ref.shape, dtype)
    L.avg_pool2d(x, y, *kernel, *stride, *padding, include, override)
    assert_close(y, ref, dtype)
    dy, dx = random(ref.shape, dtype, 5), nans(x.shape, dtype)
    L.avg_pool2d_grad(dy, dx, *kernel, *stride, *padding, include, override)
    assert_close(dx, OPS["avg_pool2d_grad"].reference(dy, input_hw=x.shape[2:], **attrs), dtype)


# -- gather / scatter / one_hot ------------------------------------------------------

INDICES = np.array([[0, 3, -1], [3, 3, 1]])     # repeated and negative


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_take_and_take_grad_match_references(axis, dtype):
    a = random((4, 5, 6), dtype)
    ref = OPS["take"].reference(a, INDICES, axis=axis, wrap_negative=True)
    out = nans(ref.shape, dtype)
    assert L.take(a, INDICES, out, axis, 1) == 0
    assert_close(out, ref, dtype)
    dy, da = random(ref.shape, dtype, 3), nans(a.shape, dtype)
    assert L.take_grad(dy, INDICES, da, axis, 1) == 0
    assert_close(da, OPS["take_grad"].reference(dy, INDICES, a, axis=axis, wrap_negative=True),
                 dtype)


def test_take_and_take_grad_report_the_first_out_of_range_index():
    a, indices = random((4, 3), np.float64), np.array([1, -4, 4, 9])
    assert L.take(a, indices, nans((4, 3), np.float64), 0, 1) == 3
    assert L.take_grad(random((4, 3), np.float64), indices, nans((4, 3), np.float64), 0, 1) == 3
    assert L.take(a, np.array([0, -5]), nans((2, 3), np.float64), 0, 1) == 2


def test_without_wrap_negative_a_negative_index_is_out_of_range():
    a, indices = random((4, 3), np.float64), np.array([1, 3, -1])
    assert L.take(a, indices, nans((3, 3), np.float64), 0, 0) == 3
    assert L.take_grad(random((3, 3), np.float64), indices, nans((4, 3), np.float64), 0, 0) == 3
    assert L.take(a, indices, nans((3, 3), np.float64), 0, 1) == 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_one_hot_matches_reference(dtype):
    labels = np.array([[2, 0, 3], [3, 1, 0]])
    out = nans((2, 3, 4), dtype)
    assert L.one_hot(labels, out) == 0
    np.testing.assert_array_equal(out, OPS["one_hot"].reference(labels, num_classes=4, dtype=dtype))


def test_one_hot_returns_one_plus_the_position_of_the_first_bad_label():
    assert L.one_hot(np.array([1, 0, 4, -1]), nans((4, 4), np.float32)) == 3
    assert L.one_hot(np.array([[1, -1], [5, 0]]), nans((2, 2, 4), np.float32)) == 2


# -- softmax -------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("log", [False, True])
def test_softmax_rows_match_references_even_for_huge_logits(log, dtype):
    x = random((5, 7), dtype) * 10
    x[1] += 1000                                # overflows exp without the max shift
    out = nans(x.shape, dtype)
    (L.log_softmax_rows if log else L.softmax_rows)(x, out)
    ref = OPS["log_softmax" if log else "softmax"].reference(x, axis=-1)
    assert np.isfinite(out).all()
    assert_close(out, ref, dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_nonfinite_finds_nan_and_both_infinities_and_nothing_else(dtype):
    """check_numerics' test inside the njit step, on the exponent bits."""
    kernel = L.nonfinite32 if dtype == "float32" else L.nonfinite64
    info = np.finfo(dtype)
    finite = np.array([0.0, -0.0, info.max, -info.max, info.tiny, info.tiny / 4, 1.0], dtype)
    assert not kernel(finite)
    for bad in (np.nan, np.inf, -np.inf):
        for where in (0, 3, 6):
            values = finite.copy()
            values[where] = bad
            assert kernel(values), (bad, where)
