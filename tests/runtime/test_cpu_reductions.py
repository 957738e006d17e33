"""The CPU backend's reductions, norms and losses against the reference
interpreter: axes, NaN and Inf, integer sums, parallel and multi-pass row
kernels, and how their loops are laid out (tolerances: helpers_cpu.py)."""
import re

import numpy as np
import pytest

import graphc as gc
from helpers import load_workloads
from helpers_cpu import (check, compile_both, finite_values, parallel_loops, plan_of, rng,
                         with_grads)

workloads = load_workloads()


# -- reductions --------------------------------------------------------------------------

REDUCTIONS = {"sum": gc.sum, "mean": gc.mean, "max": gc.max, "min": gc.min,
              "prod": gc.prod, "logsumexp": gc.logsumexp}
AXES = {"all": None, "leading": 0, "last": -1, "middle two": (1, 2), "outer two": (0, 3)}


@pytest.mark.parametrize("axes", list(AXES), ids=list(AXES))
def test_float_reductions(axes):
    """Every reduction over the axes, with and without keepdims, plus argmax and
    argmin (one axis or all); and their gradients. prod's operand is kept near 1
    so that it stays finite."""
    value = finite_values("float32", (3, 4, 5, 6), seed=14, scale=1.0)
    x = gc.placeholder(value.shape, name="x")
    axis = AXES[axes]
    outputs = {}
    for name, f in REDUCTIONS.items():
        operand = 1.0 + 0.1 * x if name == "prod" else x
        outputs[name] = f(operand, axis=axis)
        outputs[f"{name} keepdims"] = f(operand, axis=axis, keepdims=True)
    if axis is None or isinstance(axis, int):
        outputs["argmax"] = gc.argmax(x, axis=axis)
        outputs["argmin"] = gc.argmin(x, axis=axis, keepdims=axis is not None)
    check(with_grads(outputs, {"x": x}), {x: value})


def _scaled_by_full_max(x):
    return x - gc.max(x)


def _grad_of_full_max(x):
    return gc.grad(gc.max(x), [x])[0]


def _scaled_by_full_mean(x):
    return gc.mean(x) * x


def _softmax_1d(x):
    return gc.nn.softmax(gc.reshape(x, (-1,)), axis=0)


@pytest.mark.parametrize("build", [_scaled_by_full_max, _grad_of_full_max, _scaled_by_full_mean,
                                   _softmax_1d], ids=lambda b: b.__name__.strip("_"))
def test_element_reading_a_full_reduction_of_its_kernel(build):
    """An element-wise node reading a full (SCALAR) reduction over its own domain
    needs the reduction finished first. Fusion used to place both in one kernel
    (the generated loop read the sum before computing it: NotDefinedError 'v0');
    passes/fuse.py now keeps them apart."""
    value = finite_values("float32", (3, 4), seed=40)
    x = gc.placeholder(value.shape, name="x")
    check({build.__name__: build(x)}, {x: value})


@pytest.mark.parametrize("shape, axis", [((2, 2, 0), 0), ((2, 0, 3), 0), ((2, 2, 0), (0, 1))])
def test_leading_axis_reductions_of_empty_tensors(shape, axis):
    """Rows of zero columns: a ZeroDivisionError while rendering (found by fuzzing)."""
    x = gc.placeholder(shape, name="x")
    check({"sum": gc.sum(x, axis=axis), "mean": gc.mean(x, axis=axis)},
          {x: np.zeros(shape, np.float32)})


def test_reductions_of_nan_inf():
    """max/min propagate NaN (NumPy), a row of -inf has max -inf, sums of inf and
    -inf are nan; logsumexp of a row of -inf is -inf and of a row holding +inf is
    +inf (SciPy; the lowering used to give nan: inf - inf); argmax of a row with
    NaN is the NaN's position (NumPy)."""
    value = np.array([[1.0, np.nan, 3.0], [-np.inf, -np.inf, -np.inf], [np.inf, 1.0, 2.0],
                      [0.0, -0.0, 5.0]], np.float32)
    without_nan = np.where(np.isnan(value), -np.inf, value)
    x = gc.placeholder(value.shape, name="x")
    z = gc.placeholder(value.shape, name="z")
    outputs = {}
    for axis in (None, 0, 1):
        for name in ("sum", "max", "min", "mean"):
            outputs[f"{name} axis {axis}"] = REDUCTIONS[name](x, axis=axis)
        outputs[f"argmax axis {axis}"] = gc.argmax(x, axis=axis)
        outputs[f"logsumexp axis {axis}"] = gc.logsumexp(x, axis=axis)
        outputs[f"logsumexp of infs axis {axis}"] = gc.logsumexp(z, axis=axis)
    check(outputs, {x: value, z: without_nan})


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("length", [7, 16, 33, 64, 100, 4099])
def test_max_and_min_find_a_nan_in_any_vector_lane(length, dtype):
    """max and min accumulate through llvm.maximum / llvm.minimum, which LLVM
    vectorizes: a NaN in any lane of the vectors, or in the remainder loop, is the
    result (as NumPy's); rows of -inf and of +inf keep them; and one NaN in a
    whole-tensor reduction of 100k values is found wherever it is."""
    rows = length + 3
    value = finite_values(dtype, (rows, length), seed=70, scale=10.0)
    for row in range(length):
        value[row, row] = np.nan                    # row r: a NaN at column r
    value[length] = -np.inf
    value[length + 1] = np.inf
    x = gc.placeholder(value.shape, dtype, name="x")
    check({"max": gc.max(x, axis=1), "min": gc.min(x, axis=1)}, {x: value})
    flat = finite_values(dtype, (100_003,), seed=71)
    y = gc.placeholder(flat.shape, dtype, name="y")
    cpu, ref = compile_both([gc.max(y), gc.min(y)], [y])
    for position in (0, 5, 17, 50_001, 100_002):
        holed = flat.copy()
        holed[position] = np.nan
        assert all(np.isnan(v) for v in cpu(holed)), position
    np.testing.assert_array_equal(cpu(flat), ref(flat))


def test_row_loops_llvm_would_unroll_have_hidden_counts():
    """A row reduction's innermost loop hides its count for rows of 16-64 points,
    which LLVM otherwise unrolled fully and ran scalar; shorter and longer rows keep
    their constants."""
    def inner_count(length):
        value = finite_values("float32", (300, length), seed=72)
        x = gc.placeholder(value.shape, name="x")
        source = plan_of(check({"sum": gc.sum(x * x, axis=1)}, {x: value})).source
        return re.search(r"for i1 in range\((.*)\):", source).group(1)
    assert [inner_count(n) for n in (10, 16, 64, 65)] == \
        ["10", "opaque(16)", "opaque(64)", "65"]


@pytest.mark.parametrize("dtype", ["int32", "int64", "bool"])
def test_int_and_bool_reductions(dtype):
    """sum/prod/max/min of ints keep the integer dtype as NumPy does (sum of bool
    counts), mean gives a float; argmax of ints (graphc's max, min and argmax take
    no bool, unlike NumPy's)."""
    if dtype == "bool":
        value = rng(15).integers(0, 2, (4, 5, 6)).astype(bool)
        names = ("sum", "mean")
    else:
        value = rng(15).integers(-3, 4, (4, 5, 6)).astype(dtype)
        names = ("sum", "max", "min", "mean", "prod")
    x = gc.placeholder(value.shape, dtype, name="x")
    outputs = {}
    for axis in (None, 0, 2, (0, 2)):
        for name in names:
            outputs[f"{name} axis {axis}"] = REDUCTIONS[name](x, axis=axis)
        if not isinstance(axis, tuple) and dtype != "bool":
            outputs[f"argmax axis {axis}"] = gc.argmax(x, axis=axis)
    check(outputs, {x: value})


def test_large_sum_tolerance():
    """A sum over n = 2**16 elements: NumPy sums float32 pairwise, the loop in its
    own order; rounding errors of random sign add up to about
    sqrt(n) * eps * sum|x| (1.5e-5 sum|x| here; the worst case, n * eps, is 4e-3),
    and the sum of random signs is far smaller than sum|x|, so the sum is compared
    to 1e-4 * sum|x|, and the mean of squares (no cancellation) to rtol 1e-4."""
    value = finite_values("float32", (1 << 16,), seed=16)
    x = gc.placeholder(value.shape, name="x")
    cpu, ref = compile_both([gc.sum(x), gc.mean(x * x)], [x])
    (s_cpu, m_cpu), (s_ref, m_ref) = cpu(value), ref(value)
    scale = float(np.abs(value).sum())
    assert abs(float(s_cpu) - float(s_ref)) <= 1e-4 * scale
    np.testing.assert_allclose(m_cpu, m_ref, rtol=1e-4)


def test_large_kernels_run_in_parallel():
    """Kernels over at least 2**16 points with no BLAS call in the step run their outer
    axis on every thread (in chunks: runtime/cpu/chunked.py): element-wise, row
    reductions (softmax), column reductions, and a full sum (the chunks' partial sums
    added up after them) must still match."""
    value = finite_values("float32", (512, 160), seed=41)
    x = gc.placeholder(value.shape, name="x")
    outputs = {"softmax": gc.nn.softmax(x, axis=-1), "column max": gc.max(x, axis=0),
               "sigmoid": gc.sigmoid(x) * 2.0, "row sums": gc.sum(x * x, axis=1)}
    step = check(with_grads(outputs, {"x": x}), {x: value})
    assert 512 in parallel_loops(plan_of(step).source)
    total = compile_both([gc.sum(gc.exp(x * 0.1))], [x])
    (cpu,), (ref,) = total[0](value), total[1](value)
    assert parallel_loops(plan_of(total[0]).source) == [20]      # blocks of 4,096 terms
    # a sum of 81920 positive terms, sequential per thread vs NumPy's pairwise
    np.testing.assert_allclose(cpu, ref, rtol=1e-4)


def test_loops_around_loops_inside_a_prange_body_have_hidden_counts():
    """A conv epilogue's shape, (images, channels, H * W) with a per-channel bias: LLVM
    fully unrolled the constant 16-channel loop around the vectorized 784-point loop,
    and compiling took 20 s. Its count is hidden (opaque(16)); the innermost loop
    keeps its constant, the parallel loop runs in chunks of its 96 images, and serial
    kernels keep every constant."""
    def source(shape):
        x = gc.placeholder(shape, name="x")
        bias = gc.placeholder((shape[1], 1, 1), name="bias")
        feeds = {x: finite_values("float32", shape, seed=45),
                 bias: finite_values("float32", bias.shape, seed=46)}
        return plan_of(check({"relu": gc.nn.relu(x + bias)}, feeds)).source
    parallel = source((96, 16, 28, 28))
    assert parallel_loops(parallel) == [96] and "range(opaque(16))" in parallel
    assert "range(784)" in parallel and "opaque(784)" not in parallel
    serial = source((2, 16, 4, 4))
    assert parallel_loops(serial) == [] and "opaque(" not in serial


@pytest.mark.parametrize("shape", [(6, 5, 7), (256, 300)], ids=["serial", "parallel"])
def test_reductions_over_leading_axes_run_columns_inside(shape):
    """A bias gradient's shape: a row reduction over the leading axes, an element output
    written in the same kernel, and a per-row epilogue. The CPU renderer puts the kept
    axes inside (unit stride) with the accumulators in an array, in blocks that do not
    divide the kept axis (300 = 2 * 128 + 44); values must match the reference."""
    value = finite_values("float32", shape, seed=42)
    mask = rng(43).random(shape) > 0.3
    x = gc.placeholder(shape, name="x")
    keep = gc.placeholder(shape, "bool", name="keep")
    bias = gc.placeholder(shape[1:], name="bias")
    masked = gc.where(keep, x, 0.0)
    leading = tuple(range(len(shape) - 1))
    outputs = {"masked": masked * 2.0,
               "updated bias": bias - 0.01 * gc.sum(masked, axis=leading),
               "column max": gc.max(x, axis=0) + bias}
    feeds = {x: value, keep: mask, bias: finite_values("float32", shape[1:], seed=44)}
    step = check(outputs, feeds, rtol=1e-5, atol=1e-5)
    assert "acc0s = np.full(" in plan_of(step).source
    assert bool(parallel_loops(plan_of(step).source)) == (value.size >= 1 << 16)


def test_every_arena_buffer_starts_on_a_cache_line():
    """The plan places buffers at 64-byte offsets; the arena itself must start on a
    64-byte boundary too (np.empty of a few MB starts 16 bytes past a page), or every
    vector access spans two cache lines and threads share lines at block edges."""
    with gc.Graph("rnn"):
        work = workloads.rnn(batch=64, steps=3)
        step = work.compile(device="cpu")
    plan = step._plan(tuple(np.shape(f) for f in work.feeds))      # built, not run
    assert plan.arena.nbytes >= 1 << 20 and plan.arena.ctypes.data % 64 == 0
    views = [v for v in plan.storage.values() if isinstance(v, np.ndarray)]
    assert views and all(v.ctypes.data % 64 == 0 for v in views)


def test_adjacent_axes_that_run_through_memory_as_one_are_one_loop():
    """An (N, C, H, W) kernel: where every index map steps through H and W as one run,
    they are one loop over H * W points (a short W alone vectorizes badly); the bias
    read along C keeps N and C apart. A transposed read keeps its H and W apart,
    while N and C, still one run, merge. Values match the reference."""
    x_val, t_val = finite_values("float32", (3, 4, 5, 6), seed=50), \
        finite_values("float32", (3, 4, 6, 5), seed=51)
    x, t = gc.placeholder(x_val.shape, name="x"), gc.placeholder(t_val.shape, name="t")
    bias = gc.placeholder((4, 1, 1), name="bias")
    relu = gc.relu(x + bias)
    step = check({"relu": relu, "bias gradient": gc.sum(relu, axis=(0, 2, 3))},
                 {x: x_val, bias: finite_values("float32", (4, 1, 1), seed=52)})
    loops = re.findall(r"for i\d+ in p?range\((?:opaque\()?(\d+)\)", plan_of(step).source)
    assert "30" in loops and "5" not in loops and "6" not in loops
    step = check({"sum": x * 2.0 + gc.transpose(t, (0, 1, 3, 2))}, {x: x_val, t: t_val})
    loops = re.findall(r"for i\d+ in p?range\((?:opaque\()?(\d+)\)", plan_of(step).source)
    assert sorted(loops) == ["12", "5", "6"]


def test_transposed_read_of_a_value_the_kernel_also_writes():
    """exp(x) is written in x's layout by the kernel that reduces over its transpose
    (the gradient needs it): the transposed reads used to take the value computed at
    the loop's own point, x[i, j] for x[j, i] (found by the differential test)."""
    value = rng(0).uniform(-2, 2, (2, 2)).astype(np.float32)
    x = gc.placeholder(value.shape, name="x")
    e = gc.exp(gc.tanh(x))
    loss = gc.sum(gc.log(gc.nn.softmax(gc.transpose(e), axis=0)))
    check({"loss": loss, "d loss / d x": gc.grad(loss, [x])[0]}, {x: value})


def test_a_value_recomputed_at_a_transposed_point_reads_its_operands_there():
    """t / (1 + t*t) is written by the kernel (so are 1 + t*t and the transpose); the
    transpose recomputes the quotient at the transposed point and took the written
    denominator at its own point instead (found by the local differential test)."""
    x_val = np.array([0.5, -1.5], np.float32)
    c_val = np.array([[1.0], [-0.25]], np.float32)
    x, c = gc.placeholder(x_val.shape, name="x"), gc.placeholder(c_val.shape, name="c")
    t = x + c
    q = t / (1.0 + t * t)
    loss = gc.sum(gc.matmul(x, gc.transpose(q, (1, 0))))
    check({"loss": loss, "d loss / d x": gc.grad(loss, [x])[0]}, {x: x_val, c: c_val})


def test_a_value_computed_again_in_a_later_pass_rounds_the_same():
    """max's gradient compares x / (1 + x*x), computed again in each pass over the row,
    with the row's max from the first pass: with `arcp`, LLVM divided in one loop and
    multiplied by a reciprocal in another, no element equalled the max, and the
    gradient was 0 for 58 of 200 random rows (found by the local differential test)."""
    values = rng(5).uniform(-2, 2, (200, 1, 5)).astype(np.float32)
    x = gc.placeholder((1, 5), name="x")
    loss = gc.sum(gc.max(x / (1.0 + x * x), axis=1))
    cpu, ref = compile_both([gc.grad(loss, [x])[0]], [x])
    wrong = [v for v in values if not np.allclose(cpu(v)[0], ref(v)[0], atol=1e-6)]
    assert not wrong, f"{len(wrong)} of {len(values)} rows, first {wrong[0]}"


@pytest.mark.parametrize("extremum", [gc.max, gc.min])
@pytest.mark.parametrize("axis", [1, None], ids=["rows", "all"])
def test_a_value_compared_with_its_own_max_is_computed_once(extremum, axis):
    """max's gradient compares exp(a) * b + c with the row's max. Computed again in the
    pass that writes the gradient, where its product had a second use, contract +
    reassoc left the product unfused there but fused into an FMA in the max's pass:
    14 of 64 rows had no element equal to their max and a zero gradient. Fusion now
    writes such a value once and both passes read it (passes/fusion_legality.py)."""
    shape = (64, 595)
    a, b, c = (gc.placeholder(shape, name=n) for n in "abc")
    y = extremum(gc.exp(a) * b + c, axis=axis)
    grads = gc.grad(gc.sum(y), [a, b])
    feeds = {p: finite_values("float32", shape, seed=seed, scale=1.0)
             for seed, p in enumerate((a, b, c))}
    step = check({"y": y, "d y / d a": grads[0], "d y / d b": grads[1]}, feeds,
                 rtol=1e-5, atol=1e-5)
    gradient = step(*feeds.values())[1].reshape(64 if axis else 1, -1)
    assert (np.count_nonzero(gradient, axis=1) >= 1).all()


def test_an_element_value_read_through_an_inlined_node_waits_for_its_row_pass():
    """The max's gradient divides by the count of ties (a second pass over the row)
    and reaches the written gradient only through a node fusion inlined: the write
    was placed in the first pass, before the count existed (a Numba NotDefinedError;
    found by the differential test)."""
    value = np.array([[[1.0, -1.0], [0.5, 2.0]]], np.float32)      # a tie in row 0
    x = gc.placeholder(value.shape, name="x")
    a = gc.abs(x)
    loss = gc.sum(gc.max(a, axis=2)) + 0.5 * gc.sum(gc.abs(gc.reshape(a + 0.0, (4,))))
    check({"loss": loss, "d loss / d x": gc.grad(loss, [x])[0]}, {x: value})


def test_an_element_value_read_through_a_view_waits_for_its_row_pass():
    """logsumexp's gradient reads exp(x - lse) through a reshape of lse, computed
    after the row's sum pass; the gradient was written in the first pass."""
    value = rng(3).uniform(-2, 2, (1, 1, 4)).astype(np.float32)
    w_value = rng(4).uniform(-2, 2, (4, 1)).astype(np.float32)
    x, w = gc.placeholder(value.shape, name="x"), gc.placeholder(w_value.shape, name="w")
    loss = gc.sum(gc.matmul(gc.logsumexp(x, axis=(), keepdims=False), w))
    check({"loss": loss, "d loss / d x": gc.grad(loss, [x])[0]}, {x: value, w: w_value})


def test_norms_and_losses():
    """batch_norm in training (rows over the non-contiguous axes 0, 2, 3),
    layer_norm, mse, BCE with logits (with pos_weight), BCE of probabilities;
    forward and gradients."""
    x_val = finite_values("float32", (4, 3, 5, 6), seed=42)
    p_val = finite_values("float32", (8, 5), seed=43)
    t_val = rng(44).random((8, 5)).astype(np.float32)
    x = gc.placeholder(x_val.shape, name="x")
    w = gc.placeholder((3,), name="w")
    b = gc.placeholder((3,), name="b")
    p = gc.placeholder(p_val.shape, name="p")
    t = gc.placeholder(t_val.shape, name="t")
    running_mean = gc.variable(np.zeros(3, np.float32), name="running_mean")
    running_var = gc.variable(np.ones(3, np.float32), name="running_var")
    outputs = {
        "batch_norm": gc.nn.batch_norm(x, running_mean, running_var, w, b, training=True),
        "layer_norm": gc.nn.layer_norm(x, (5, 6)),
        "mse": gc.nn.mse_loss(p, t),
        "bce logits": gc.nn.binary_cross_entropy_with_logits(p, t),
        "bce pos_weight": gc.nn.binary_cross_entropy_with_logits(p, t, pos_weight=2.0),
        "bce": gc.nn.binary_cross_entropy(gc.sigmoid(p), t),
    }
    feeds = {x: x_val, w: np.array([1.0, 2.0, 3.0], np.float32),
             b: np.array([0.1, 0.2, 0.3], np.float32), p: p_val, t: t_val}
    check(with_grads(outputs, {"x": x, "w": w, "b": b, "p": p}), feeds)


@pytest.mark.parametrize("axis", [1, -1, 0])
def test_softmax_log_softmax_cross_entropy(axis):
    """softmax and log_softmax over any axis (with a row holding -inf and a large
    value), cross-entropy of (N, C) and (N, C, d) logits, forward and gradient."""
    value = finite_values("float32", (6, 5, 4), seed=17, scale=3.0)
    value[0, 0, 0] = -np.inf
    value[1, 1, 1] = 80.0
    labels2 = rng(18).integers(0, 5, (6,))
    labels3 = rng(19).integers(0, 5, (6, 4))
    x = gc.placeholder(value.shape, name="x")
    y2 = gc.placeholder((6,), "int64", name="y2")
    y3 = gc.placeholder((6, 4), "int64", name="y3")
    finite = gc.where(gc.equal(x, -np.inf), 0.0, x)
    outputs = {"softmax": gc.nn.softmax(x, axis=axis),
               "log_softmax": gc.nn.log_softmax(finite, axis=axis)}
    feeds = {x: value}
    if axis == 1:
        outputs["ce 2d"] = gc.nn.cross_entropy(finite[:, :, 0], y2)
        outputs["ce 3d"] = gc.nn.cross_entropy(finite, y3)
        outputs["ce sum"] = gc.nn.cross_entropy(finite[:, :, 1], y2, reduction="sum")
        outputs["ce none"] = gc.nn.cross_entropy(finite, y3, reduction="none")
        feeds.update({y2: labels2, y3: labels3})
    check(with_grads(outputs, {"x": x}), feeds)


# -- long float32 sums ---------------------------------------------------------------------

@pytest.mark.parametrize("device", ["reference", "cpu"])
def test_long_float32_sums_are_as_accurate_as_float64_rounded(device):
    # a million values 1e4 + N(0, 1): float32 accumulators were off by 2 in the mean, so a
    # batch norm's variance came out 0.4x and its outputs had std 0.43
    value = (1e4 + rng(40).standard_normal((64, 2, 64, 128))).astype(np.float32)
    x = gc.placeholder(value.shape, name="x")
    columns = gc.placeholder((1 << 20, 4), name="columns")
    column_value = (100 + rng(41).random((1 << 20, 4))).astype(np.float32)
    outputs = [gc.sum(x), gc.mean(x, axis=(0, 2, 3)), gc.var(x, axis=(0, 2, 3)),
               gc.sum(columns, axis=0)]
    got = gc.compile(outputs, inputs=[x, columns], device=device)(value, column_value)
    wide = value.astype(np.float64)
    want = [wide.sum(), wide.mean(axis=(0, 2, 3)), wide.var(axis=(0, 2, 3)),
            column_value.astype(np.float64).sum(axis=0)]
    # the variance subtracts the float32 mean (rounded twice: the sum, then / n), whose
    # error squared is 1e-6 of it at worst
    for g, w, rtol in zip(got, want, [2e-7, 2e-7, 1e-6, 2e-7]):
        np.testing.assert_allclose(g, w, rtol=rtol)


@pytest.mark.parametrize("shape, axis, wide", [
    ((8192, 4), 0, True),           # strided: one float32 lane adds 8192 terms
    ((10, 4), 0, False),            # short
    ((4, 8192), 1, False),          # a unit-stride row: the vector lanes are partial sums
    ((64, 4, 64), (0, 2), True)])   # nested loops, as a batch norm's statistics
def test_only_long_float32_sums_that_do_not_vectorize_accumulate_in_float64(shape, axis, wide):
    x = gc.placeholder(shape, name="x")
    step = gc.compile(gc.sum(x, axis=axis), device="cpu")
    value = rng(42).random(shape).astype(np.float32)
    np.testing.assert_allclose(step(value), value.astype(np.float64).sum(axis), rtol=2e-7)
    assert ("np.float64(0.0)" in plan_of(step).source) == wide


def test_a_row_sum_beside_a_whole_sum_in_its_kernel_stays_accurate():
    """The whole sum splits the rows' loop into blocks, so a row over one memory run
    is no longer its vector lanes' partial sums: it was one float32 sum of the
    blocks', 2e-4 relative over 1M values of 1e4 + N(0, 1) (found by fuzzing)."""
    value = (1e4 + rng(44).standard_normal((2, 1 << 18))).astype(np.float32)
    x = gc.placeholder(value.shape, name="x")
    step = gc.compile([gc.sum(x, axis=1), gc.sum(x)], device="cpu")
    rows, whole = step(value)
    np.testing.assert_allclose(rows, value.astype(np.float64).sum(1), rtol=2e-7)
    np.testing.assert_allclose(whole, value.astype(np.float64).sum(), rtol=2e-7)


@pytest.mark.parametrize("offset", [1e4, 1e5])
def test_log_softmax_and_cross_entropy_of_offset_logits_keep_their_digits(offset):
    # fastmath's reassociation rewrote (x - max) - log(sum) as x - (max + log(sum)), and
    # the float32 max + log(sum) lost the digits: 4e-5 relative at 1e4 (PyTorch: 7e-8)
    value = (offset + rng(43).standard_normal((16, 1000))).astype(np.float32)
    labels = np.arange(16) * 7
    x, y = gc.placeholder(value.shape, name="x"), gc.placeholder((16,), "int64", name="y")
    loss = gc.nn.cross_entropy(x, y)
    (grad,) = gc.grad(loss, [x])
    got = gc.compile([gc.nn.log_softmax(x, axis=1), loss, grad], device="cpu")(value, labels)
    wide = value.astype(np.float64)
    log_p = wide - wide.max(1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(1, keepdims=True))
    np.testing.assert_allclose(got[0], log_p, rtol=0, atol=2e-6)
    np.testing.assert_allclose(got[1], -log_p[np.arange(16), labels].mean(), rtol=1e-6)
    want = (np.exp(log_p) - np.eye(1000)[labels]) / 16
    np.testing.assert_allclose(got[2], want, rtol=0, atol=1e-7)
    # the loss alone: no element output of log_softmax's kernel could hold x - max
    (alone,) = gc.compile([loss], device="cpu")(value, labels)
    np.testing.assert_allclose(alone, -log_p[np.arange(16), labels].mean(), rtol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("top", [1e15, 1e20])
def test_log_softmax_of_a_tied_huge_maximum_is_minus_log_of_the_ties(dtype, top):
    """k elements tied at the row's max have log-probability -log k whatever the max:
    x - max is 0 for them. Reassociated into x - (max + log(sum)), the sum rounded
    away against a max of 1e15 (0 came out, in float32 and float64)."""
    value = np.full((3, 8), top, dtype)
    value[1, 3:] = -top                 # 3 tied, 5 far below
    value[2, :] = np.arange(8) - 20.0   # ordinary logits
    value[2, 5] = value[2, 6] = 7.5
    x, y = gc.placeholder(value.shape, dtype, name="x"), gc.placeholder((3,), "int64", name="y")
    labels = np.array([0, 1, 5])
    loss = gc.nn.cross_entropy(x, y)
    wide = value.astype(np.float64)
    want = wide - wide.max(1, keepdims=True)
    want -= np.log(np.exp(want).sum(1, keepdims=True))
    assert want[0, 0] == -np.log(8) and want[1, 0] == -np.log(3)
    log_p, both = gc.compile([gc.nn.log_softmax(x, axis=1), loss], device="cpu")(value, labels)
    (alone,) = gc.compile([loss], device="cpu")(value, labels)
    np.testing.assert_allclose(log_p, want, rtol=1e-6)
    for got in (both, alone):
        np.testing.assert_allclose(got, -want[[0, 1, 2], labels].mean(), rtol=1e-6)


def test_exact_keeps_an_operation_out_of_reassociation_and_its_loop_vectorized():
    """scalar.exact under Numba's own compile (kernel_ir's lowering is covered above):
    with the kernel's fastmath flags, (x - m) - s became x - (m + s) and lost s against
    m = 1e15; marked exact it stays as written, and the loop still runs on vectors
    (llvm.arithmetic.fence would have made it scalar)."""
    from numba import njit
    from graphc.runtime.cpu.approx import SAFE_FASTMATH
    from graphc.runtime.cpu.scalar import exact

    def centered(x, m, s, out):
        for i in range(x.shape[0]):
            out[i] = exact(exact(x[i] - m) - s)

    def reassociated(x, m, s, out):
        for i in range(x.shape[0]):
            out[i] = (x[i] - m) - s

    x, out = np.full(1024, 1e15, np.float32), np.empty(1024, np.float32)
    for function, want in [(centered, -np.log(np.float32(8))), (reassociated, 0.0)]:
        kernel = njit(fastmath=SAFE_FASTMATH)(function)
        kernel(x, np.float32(1e15), np.log(np.float32(8)), out)
        np.testing.assert_array_equal(out, np.float32(want))
        assert re.search(r"fsub [a-z ]*<\d+ x float>", kernel.inspect_llvm(kernel.signatures[0]))
