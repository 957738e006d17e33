"""The CPU backend (fused Numba kernels + library ops) against the reference
interpreter, which is the semantics: views, regressions, library ops, the
workloads' training steps, errors and shape specialization. Elementwise ops and
reductions have their own files (test_cpu_elementwise.py, test_cpu_reductions.py);
the shared tools and tolerances are in helpers_cpu.py.
"""
import inspect
import re
from pathlib import Path

import numpy as np
import pytest

import graphc as gc
from helpers import load_workloads
from helpers_cpu import (ATOL, RTOL, assert_same, check, compile_both, finite_values,
                         plan_of, rng, with_grads)

ROOT = Path(__file__).resolve().parents[2]


workloads = load_workloads()


# -- views -------------------------------------------------------------------------------

def test_views_in_loop_kernels():
    """Views read through index maps inside fused kernels: transpose,
    broadcast_to, reshape, slices with steps and negative indices,
    expand_dims/squeeze, getitem h[:, t]; and their gradients (slice_grad,
    sum_to, transposes back)."""
    value = finite_values("float32", (4, 6, 5), seed=20)
    row = finite_values("float32", (5,), seed=21)
    x = gc.placeholder(value.shape, name="x")
    r = gc.placeholder(row.shape, name="r")
    outputs = {
        "transpose": gc.transpose(x, (2, 0, 1)) * 2.0,
        ".T": x.T + 1.0,
        "broadcast_to": gc.broadcast_to(r, (3, 4, 5)) * 3.0,
        "broadcast in binary": x * r,
        "reshape": gc.reshape(x * 1.0, (6, 20)) - 1.0,
        "slice steps": x[::2, 1::3, ::-1] * 2.0,
        "slice negative": x[-3:-1, ::-2, -1] + 1.0,
        "slice stop": x[1:, :4:2, 2:4] * x[:3, 1:5:2, 0:2],
        "expand_dims": gc.expand_dims(r, 0) + gc.expand_dims(x[:, 0, :], 1),
        "squeeze": gc.squeeze(x[:, 2:3, :], 1) * 2.0,
        "h[:, t]": x[:, 3] * 2.0 + x[:, 4],
        "swapaxes": gc.swapaxes(x, 0, 1) + 1.0,
    }
    check(with_grads(outputs, {"x": x, "r": r}), {x: value, r: row})


def test_reshape_of_transpose_uses_a_gather_table():
    """A reshape of a transposed tensor is not affine in the loop indices: the
    kernel reads it through a gather table (checked in the plan), and matches."""
    value = finite_values("float32", (4, 6, 5), seed=22)
    x = gc.placeholder(value.shape, name="x")
    y = gc.reshape(gc.transpose(x * 2.0, (1, 0, 2)), (24, 5))
    out = gc.exp(gc.reshape(gc.transpose(x, (2, 1, 0)), (10, 12))) + 1.0
    step = check({"reshape of transpose": y + 1.0, "exp": out}, {x: value})
    plan = plan_of(step)
    reshaping = [loop for kernel, loop in plan.loops.items()
                 if any(n.op.name == "reshape" and n.inputs[0].op.name == "transpose"
                        for n in kernel.nodes)]
    assert reshaping, plan.source
    assert all(loop.tables for loop in reshaping), "no gather table:\n" + plan.source
    check(with_grads({"y": y + 1.0, "out": out}, {"x": x}), {x: value})


# -- regressions: graphs behind bugs found here (fixed in runtime/cpu/codegen.py, which
# now renders any kernel fusion hands it in operand order, computes a node both inlined
# and placed once, and returns only the buffers it writes; and in passes/fuse.py) -----

def _exp_and_its_gradient():
    """exp(x) is returned and read by its gradient: fusion merged the two kernels
    and listed the gradient's multiply before the exp it reads (fixed in codegen:
    nodes are rendered operands first)."""
    x = gc.placeholder((2, 6), name="x")
    y = gc.exp(x)
    return [y, gc.grad(gc.sum(y * 3.0), [x])[0]], [x]


def _divide_and_its_gradient():
    """a / b returned and inlined into its own gradient's reduction: fusion listed it
    twice, inlined and placed (codegen: duplicate argument; fixed: placed wins)."""
    a = gc.placeholder((3, 1, 6), name="a")
    b = gc.placeholder((4, 6), name="b")
    y = a / b
    return [y] + gc.grad(gc.sum(y * 2.0), [a, b]), [a, b]


def _reshape_inlined_and_aliased():
    """reshape(x) inlined into a reduction kernel and read by matmul as an alias: the
    reduction kernel listed it as an output it never wrote, so matmul read an
    uninitialized buffer (fixed: a loop's outputs are the values it computes)."""
    x = gc.placeholder((2, 6), name="x")
    w = gc.placeholder((4, 2), name="w")
    r = gc.reshape(x, (3, 4))
    return [gc.sum(r * 2.0), r @ w], [x, w]


def _matmul_by_own_transposed_abs():
    """x @ abs(x).T: fusion promoted the transpose of abs (read by matmul) to a value
    the kernel computes at each point, and the kernel wrote abs untransposed (found
    by the differential test; fixed: a promoted view may not read its kernel's values)."""
    x = gc.placeholder((2, 2), name="x")
    w = gc.placeholder((2, 2), name="w")
    return [gc.sum(x @ gc.swapaxes(gc.abs(x), -1, -2)) + gc.sum(w)], [x, w]


def _view_of_an_inlined_copy_read_by_matmul():
    """expand_dims of a free node that a kernel had inlined (as a private copy) was taken
    for a view of a buffer, and matmul read memory nobody wrote (found by the
    differential test; fixed: an inlined copy is not a buffer)."""
    x = gc.placeholder((4,), name="x")
    w = gc.placeholder((4, 5), name="w")
    t = x * 2.5
    s = gc.nn.log_softmax(gc.tanh(gc.abs(t) + t) @ w, axis=0)
    return [gc.sum(t @ gc.tanh(s + w))], [x, w]


def _three_reductions_of_one_comparison():
    """g = x > y read by three reductions over two axes: the second kernel inlined a
    copy of where(g, x, 0) whose operand was the first kernel's clone of g, read as a
    buffer no kernel writes (an uninitialized bool buffer, then an assertion;
    fixed in passes/fuse.py)."""
    x = gc.placeholder((3, 4), name="x")
    y = gc.placeholder((3, 4), name="y")
    g = x > y
    p = gc.where(g, x, 0.0)
    return [gc.sum(gc.where(g, y, 0.0), axis=0), gc.sum(p, axis=1), gc.sum(p * y, axis=0)], [x, y]


@pytest.mark.parametrize("build", [_exp_and_its_gradient, _divide_and_its_gradient,
                                   _reshape_inlined_and_aliased, _matmul_by_own_transposed_abs,
                                   _view_of_an_inlined_copy_read_by_matmul,
                                   _three_reductions_of_one_comparison],
                         ids=lambda b: b.__name__.strip("_"))
def test_fusion_shapes_that_broke_the_cpu_device(build):
    outputs, inputs = build()
    # the second input, a divisor in one graph, is kept away from 0
    feeds = {p: finite_values("float32", p.shape, seed=45 + i) + 5.0 * (i == 1)
             for i, p in enumerate(inputs)}
    check({f"output {i}": o for i, o in enumerate(outputs)}, feeds)


def test_variables_are_kernel_arguments_read_at_each_call():
    """A variable's value is read when the step runs, not baked into the generated
    code: changing it between calls changes the result, and a new compile after
    the change generates the same source (so the cache key does not depend on it)."""
    x_val = finite_values("float32", (3, 4), seed=47)
    x = gc.placeholder(x_val.shape, name="x")
    w = gc.variable(np.full((4,), 2.0, np.float32), name="w")
    out = gc.exp(x * w) + w
    cpu, ref = compile_both([out], [x])
    first = cpu(x_val)[0]
    w.node.attrs["state"].value = np.array([1.0, -1.0, 0.5, 0.0], np.float32)
    second, expected = cpu(x_val)[0], ref(x_val)[0]
    assert_same(second, expected, "after the variable changed")
    assert not np.allclose(first, second)
    again = gc.compile([out], inputs=[x], device="cpu")
    assert_same(again(x_val)[0], expected, "a new compile")
    assert plan_of(again).source == plan_of(cpu).source


def test_outputs_over_an_input_buffer_are_written_through_the_input():
    """Where the memory plan writes an output over an input (W3's tanh over its matmul's
    buffer, each SGD update over its variable and velocity), the loop stores through
    the input's argument: one pointer, so LLVM vectorizes the loop. Passed as two
    arguments for one buffer, its run-time overlap check failed and W3's tanh loop ran
    scalar (31 us against 4). test_workload_training_matches checks the values."""
    with gc.Graph("rnn"):
        work = workloads.rnn(batch=4, steps=6)
        step = work.compile(device="cpu")
        step(*work.feeds)
    plan = plan_of(step)
    through = {}
    for kernel, loop in plan.loops.items():
        pairs = re.findall(r"# (o_a\d+) is written through (a\d+)", loop.source)
        body = loop.source.split("\ndef ", 1)[1]
        for out, source in pairs:
            assert f"{out}[" not in body and re.search(rf"\b{source}\[[^\]]*\] = ", body)
        through[kernel] = pairs
    tanh = [k for k in plan.loops  # (the first step's h0 @ w_hh is folded away)
            if k.library is not None and any(n.op.name == "tanh" for n in k.nodes)]
    updates = [k for k in plan.loops
               if any(plan.memory.location(o)[0] == "variable" for o in k.outputs)]
    assert tanh and updates
    assert all(through[k] for k in tanh + updates)


def test_a_row_value_reading_a_promoted_element_value_through_inlined_ops():
    """Found by probing (2026-12-07): `add` was free (recomputed where read), then
    promoted to a written ELEMENT value of the kernel that inlined it, while a row
    node of that kernel (the gradient's squeeze over a reduced axis of size 1) read
    it through inlined ops; the row loop read the value the element loop left in
    its variable, a wrong gradient with no error. The promotion now sees `add` as
    placed, and refuses."""
    p, q = gc.placeholder((3,), name="p"), gc.placeholder((2, 1), name="q")
    added = gc.expand_dims(gc.expand_dims(p, 0) + p, 0)          # (1, 1, 3)
    t = gc.tanh(added) - q
    (dp,) = gc.grad(gc.sum(t), [p])
    check({"t": t, "dp": dp}, {p: np.array([0.1, 0.2, 0.3], "float32"),
                               q: np.array([[0.5], [1.0]], "float32")})


@pytest.mark.parametrize("device", ["reference", "cpu"])
def test_a_zero_d_variables_old_value_is_read_after_its_in_place_update(device):
    """Found by fuzzing (2026-12-08): one kernel over a 0-d variable wrote its update
    in place, then its epilogue computed v * v again from the updated v (-0.5
    where the reference gives 4). The epilogue reads the element stage's value."""
    with gc.Graph():
        v = gc.variable(np.float32(2.0))
        t = gc.sum(v * v)
        loss = gc.mean(-v) + t * 1.5
        step = gc.compile([t, loss], updates={v: v - 1.0}, device=device)
        assert [float(a) for a in step()] == [4.0, 4.0] and v.value == 1.0
        assert [float(a) for a in step()] == [1.0, 0.5] and v.value == 0.0


def test_a_zero_d_value_reshaped_to_one_element_and_reduced_again():
    """Found by the differential test (hypothesis): in a kernel over one point (a 0-d
    domain), single-element nodes reading its per-element values were placed as
    after-the-loop (SCALAR) values without a full reduction to follow; the loop never
    computed what they read (NameError in the generated code). They are per-element
    values there now, and the reshape to (1,) reads the kernel's buffer."""
    x = gc.placeholder((), name="x")
    half = gc.max(x / 2.0)
    loss = gc.sum(gc.max(gc.reshape(half, (1,))))
    step = check(with_grads({"loss": loss, "half == half": gc.cast(half == half, "float32")},
                            {"x": x}), {x: np.float32(1.5)})
    for kernel in next(iter(step._plans.values())).fusion.kernels:
        if not kernel.domain:
            assert set(kernel.level.values()) <= {"element"}, kernel.describe()


# -- library ops -------------------------------------------------------------------------

def test_matmul_shapes_and_epilogues():
    """2-D, batched (with batch broadcasting), matrix @ vector, vector @ matrix,
    vector @ vector, transposed operands; with a bias + relu epilogue; gradients."""
    r = rng(23)
    arrays = {"a": r.standard_normal((5, 7)), "b": r.standard_normal((7, 3)),
              "ba": r.standard_normal((2, 4, 5, 7)), "bb": r.standard_normal((4, 7, 3)),
              "v": r.standard_normal((7,)), "w": r.standard_normal((5,)),
              "bias": r.standard_normal((3,))}
    arrays = {k: v.astype(np.float32) for k, v in arrays.items()}
    ph = {k: gc.placeholder(v.shape, name=k) for k, v in arrays.items()}
    a, b, ba, bb, v, w, bias = (ph[k] for k in arrays)
    outputs = {
        "2-D": a @ b, "batched": ba @ bb, "batched x 2-D": ba @ b, "matrix @ vector": a @ v,
        "vector @ matrix": w @ a, "vector @ vector": v @ v, "transposed": a.T.T @ (b.T).T,
        "a @ a.T": a @ a.T, "bias relu": gc.relu(a @ b + bias),
    }
    check(with_grads(outputs, {k: p for k, p in ph.items()}),
          {p: arrays[k] for k, p in ph.items()})


@pytest.mark.parametrize("threads", [1, 2])
def test_every_split_of_a_matmul_runs_in_the_step_as_the_reference(threads, monkeypatch):
    """The plan picks each product's split over the threads (library.matmul_kind) and
    the step launches its `_parts` over them (a deep product's slices add up in a
    scratch array after): by rows, by columns, by depth, and a batch; a vector
    (split and not) and one call are plain calls. With one thread every product is one call (or the batch's
    parts in one plain call)."""
    import numba
    monkeypatch.setattr(numba, "get_num_threads", lambda: threads)
    r = rng(29)
    shapes = {"rows": ((64, 96), (96, 40)), "columns": ((8, 300), (300, 1200)),
              "depth": ((40, 2050), (2050, 24)), "vector": ((1, 600), (600, 700)),
              "vector, one block": ((1, 30), (30, 10)), "one call": ((5, 7), (7, 3)),
              "batch": ((6, 5, 7), (6, 7, 3))}
    feeds, outputs = {}, {}
    for label, (left, right) in shapes.items():
        a, b = gc.placeholder(left, name="a"), gc.placeholder(right, name="b")
        feeds[a], feeds[b] = (r.standard_normal(s).astype(np.float32) for s in (left, right))
        outputs[label] = a @ b
    step = check(outputs, feeds, rtol=1e-4, atol=1e-4)
    source = next(iter(step._plans.values())).source
    if threads == 1:
        assert "in 2 chunks" not in source and "by_depth" not in source
        return
    for kernel in ("by_rows", "by_columns", "by_depth", "batched"):
        assert re.search(rf"_lib\.matmul_{kernel}_parts\(.*\) in \d+ chunks", source), kernel
    assert "_lib.matmul_by_depth_finish(" in source and "_lib.matmul_one_call(" in source
    assert re.search(r"_lib\.matmul_vector\(.*, 2\)", source)      # split in its prange


def test_attention_products_over_two_batch_axes_run_in_the_njit_step():
    """Multi-head attention's (B, H, T, D) products, forward and backward, are batched
    GEMMs over B * H (simplify's batch_axes_of_matmul), so the step keeps its njit
    driver; values and gradients are the reference's."""
    batch, steps, heads, width = 2, 5, 3, 4
    r = rng(29)
    arrays = {n: r.standard_normal((batch, steps, heads * width)).astype(np.float32) for n in "qkv"}
    ph = {n: gc.placeholder(a.shape, name=n) for n, a in arrays.items()}
    q, k, v = (gc.transpose(gc.reshape(ph[n], (batch, steps, heads, width)), (0, 2, 1, 3))
               for n in "qkv")
    scores = gc.matmul(q, gc.swapaxes(k, -1, -2)) / np.sqrt(width)
    attention = gc.matmul(gc.nn.softmax(scores, axis=-1), v)
    step = check(with_grads({"attention": attention}, ph), {ph[n]: arrays[n] for n in "qkv"})
    plan = plan_of(step)
    products = [n for n in plan.program.graph.ancestors(plan.program.roots()) if n.op.name == "matmul"]
    assert len(products) == 6 and all(len(n.shape) == 3 for n in products)
    assert plan.driver is not None


def test_a_partly_broadcast_batched_product_runs_in_the_njit_step():
    """b (4, 7, 3) is broadcast over a's first batch axis, then one batched GEMM."""
    r = rng(30)
    arrays = {"a": r.standard_normal((2, 4, 5, 7)), "b": r.standard_normal((4, 7, 3))}
    ph = {k: gc.placeholder(v.shape, name=k) for k, v in arrays.items()}
    step = check(with_grads({"a @ b": gc.tanh(ph["a"] @ ph["b"])}, ph),
                 {ph[k]: v.astype(np.float32) for k, v in arrays.items()})
    plan = plan_of(step)
    products = [n for n in plan.program.graph.ancestors(plan.program.roots()) if n.op.name == "matmul"]
    assert products and all(len(n.shape) <= 3 for n in products)
    assert plan.driver is not None


CONV_CASES = {
    "plain": dict(stride=1, padding=0, dilation=1, groups=1),
    "stride 2 padding 1": dict(stride=2, padding=1, dilation=1, groups=1),
    "dilation 2 padding (2, 1)": dict(stride=1, padding=(2, 1), dilation=2, groups=1),
    "groups 2 stride (1, 2)": dict(stride=(1, 2), padding=1, dilation=1, groups=2),
    "depthwise": dict(stride=1, padding=1, dilation=1, groups=4),
    "depthwise unpadded": dict(stride=1, padding=0, dilation=1, groups=4),
}


@pytest.mark.parametrize("case", list(CONV_CASES), ids=list(CONV_CASES))
def test_conv2d_bias_relu(case):
    """conv2d with stride/padding/dilation/groups, + bias + relu epilogue, and the
    gradients with respect to input, weight and bias (conv2d_grad_input/weight)."""
    attrs = CONV_CASES[case]
    groups = attrs["groups"]
    x_val = finite_values("float32", (2, 4, 9, 8), seed=24, scale=1.0)
    w_val = finite_values("float32", (6 if groups != 4 else 4, 4 // groups, 3, 3), seed=25,
                          scale=0.5)
    b_val = finite_values("float32", (w_val.shape[0],), seed=26)
    x = gc.placeholder(x_val.shape, name="x")
    w = gc.placeholder(w_val.shape, name="w")
    b = gc.placeholder(b_val.shape, name="b")
    outputs = {"conv relu": gc.relu(gc.nn.conv2d(x, w, b, **attrs)),
               "conv": gc.nn.conv2d(x, w, None, **attrs)}
    # the weight gradient sums ~140 float32 products per entry; BLAS and the NumPy
    # reference add them in different orders (measured: up to 9e-5 relative)
    step = check(with_grads(outputs, {"x": x, "w": w, "b": b}), {x: x_val, w: w_val, b: b_val},
                 rtol=2e-4, atol=1e-5)
    if groups == 4:     # the direct kernels' parts, over images (over output channels)
        source = next(iter(step._plans.values())).source
        for kernel, count in (("conv2d", 2), ("conv2d_grad_weight", 4)):
            assert re.search(rf"_lib\.{kernel}_direct_parts\(.*\) in {count} chunks", source)


def test_pooling():
    """max_pool2d (kernel/stride/padding/dilation) and avg_pool2d (padding counted or
    not), forward and gradient; ties in max pooling go to the first maximum."""
    value = finite_values("float32", (2, 3, 9, 8), seed=27)
    value[0, 0, :2, :2] = 1.0       # a tie
    x = gc.placeholder(value.shape, name="x")
    outputs = {
        "max 2": gc.nn.max_pool2d(x, 2),
        "max 3 s2 p1": gc.nn.max_pool2d(x, 3, stride=2, padding=1),
        "max dilation": gc.nn.max_pool2d(x, 2, stride=1, dilation=2),
        "avg 2": gc.nn.avg_pool2d(x, 2),
        "avg 3 s2 p1": gc.nn.avg_pool2d(x, 3, stride=2, padding=1),
        "avg no pad count": gc.nn.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False),
        "relu(max)": gc.relu(gc.nn.max_pool2d(x, 2)) * 2.0,
    }
    check(with_grads(outputs, {"x": x}), {x: value})


def test_pooling_kernels_run_their_images_in_chunks_over_the_threads():
    """The step program launches each pooling kernel over the images (one range per
    thread: runtime/cpu/chunks.py), not a parfor of its own; an image more than
    threads, and a single image, give the reference's values."""
    for images in (5, 1):
        value = finite_values("float32", (images, 2, 6, 6), seed=29)
        x = gc.placeholder(value.shape, name="x")
        biggest, mean = gc.nn.max_pool2d(x, 2), gc.nn.avg_pool2d(x, 3, stride=1)
        # (squares: a constant cotangent would fold avg_pool2d_grad away)
        (grad,) = gc.grad(gc.sum(biggest * biggest) + gc.sum(mean * mean), [x])
        step = check({"max": biggest, "avg": mean, "grad": grad}, {x: value})
        source = plan_of(step).source
        for kernel in ("max_pool2d", "max_pool2d_grad", "avg_pool2d", "avg_pool2d_grad"):
            assert re.search(rf"{kernel}_images\(.*\) in {images} chunks", source), source


def test_embedding_take_and_gradient():
    """embedding / take along axes 0 and 1 (repeated ids), and the scatter-add
    gradient into the table."""
    table_val = finite_values("float32", (10, 4), seed=28)
    ids_val = np.array([[1, 3, 3], [0, 9, 1]], np.int64)
    idx_val = np.array([3, 0, 3, 1], np.int32)
    table = gc.placeholder(table_val.shape, name="table")
    ids = gc.placeholder(ids_val.shape, "int64", name="ids")
    idx = gc.placeholder(idx_val.shape, "int32", name="idx")
    outputs = {"embedding": gc.nn.embedding(ids, table) * 2.0,
               "take axis 1": gc.take(table, idx, axis=1),
               "take flat": gc.take(table, ids),
               "getitem tensor": table[idx] + 1.0}
    check(with_grads(outputs, {"table": table}), {table: table_val, ids: ids_val, idx: idx_val})


def test_concatenate_stack_pad():
    """concatenate (any axis), stack, pad with a constant, and their gradients."""
    a_val = finite_values("float32", (3, 4), seed=29)
    b_val = finite_values("float32", (3, 2), seed=30)
    a = gc.placeholder(a_val.shape, name="a")
    b = gc.placeholder(b_val.shape, name="b")
    outputs = {
        "concat axis 1": gc.concatenate([a, b * 2.0, a], axis=1),
        "concat axis 0": gc.concatenate([a.T, b.T], axis=0) + 1.0,
        "stack": gc.stack([a, a * a], axis=1),
        "pad": gc.pad(a, ((1, 2), (0, 3)), constant_values=-1.5),
        "pad int width": gc.exp(gc.pad(b, 1)),
    }
    check(with_grads(outputs, {"a": a, "b": b}), {a: a_val, b: b_val})


def test_one_hot():
    """one_hot of int32/int64 labels (float and int dtypes), fused with arithmetic."""
    labels_val = np.array([[0, 3, 1], [2, 2, 4]], np.int64)
    small_val = np.array([1, 0, 2], np.int32)
    labels = gc.placeholder(labels_val.shape, "int64", name="labels")
    small = gc.placeholder(small_val.shape, "int32", name="small")
    outputs = {"float": gc.one_hot(labels, 5), "int64": gc.nn.one_hot(labels, 5),
               "int32 labels": gc.one_hot(small, 3, dtype="float64") * 2.0,
               "bool": gc.one_hot(small, 4, dtype="bool"),
               "sum": gc.sum(gc.one_hot(labels, 6), axis=-1)}
    check(outputs, {labels: labels_val, small: small_val})


def test_dropout_masks_match_for_the_same_seed():
    """Random ops draw from a counter-based generator: cpu and reference give the
    same dropout mask for the same seed and counter, on every call (the rng
    counter advances the same way on both)."""
    value = finite_values("float32", (8, 16), seed=31)
    x = gc.placeholder(value.shape, name="x")
    outputs = [gc.nn.dropout(x, 0.3), gc.random.uniform((5, 3), seed=7),
               gc.random.normal((4,), seed=8), gc.nn.dropout(x, 0.5) * 2.0 + 1.0]
    counter = gc.default_graph().rng_counter.attrs["state"]
    cpu_step, ref_step = compile_both(outputs, [x])
    masks = []
    for _ in range(2):
        start = counter.value.copy()
        cpu = cpu_step(value)
        after_cpu = counter.value.copy()
        counter.value = start
        ref = ref_step(value)
        assert after_cpu == counter.value == start + 1
        for i, (c, r) in enumerate(zip(cpu, ref)):
            assert_same(c, r, f"random output {i}")
        masks.append(cpu[0] == 0)
    assert 0 < masks[0].mean() < 0.6
    assert not np.array_equal(masks[0], masks[1]), "a new mask every call"


# -- training: the workloads ------------------------------------------------------------

def _train(build, device, steps):
    with gc.Graph(f"{device}"):
        work = build()
        step = work.compile(device=device)
        losses = [step(*work.feeds) for _ in range(steps)]
        values = {v.name: v.value.copy() for v in step.variables}
    return losses, values


WORKLOADS = {
    "W1 mlp": (lambda: workloads.mlp(batch=16), 3, RTOL, ATOL),
    "W2 cnn": (lambda: workloads.cnn(batch=4), 3, RTOL, ATOL),
    "W3 rnn": (lambda: workloads.rnn(batch=4, steps=6), 3, RTOL, ATOL),
    "W4 fusion": (lambda: workloads.fusion(n=4096), 1, RTOL, 1e-5),
}


@pytest.mark.parametrize("name", list(WORKLOADS))
def test_workload_training_matches(name):
    """Train each workload on both devices (separate graphs built from the same seed)
    and compare every output of every step and every variable afterwards
    (parameters and velocities), 3 steps.

    W4 runs one step only: its loss is a sum over 4096 elements, so one update
    moves a from 1.5 to -15.8 and b from 0.25 to -22.6, and later steps evaluate
    gelu' deep in its tail, where 1 + tanh(u) cancels and any float32 difference
    is amplified without bound. Even in step 1 dx = a * gelu'(x a + b) needs atol
    1e-5: gelu' = 0.5 (1 + t) + 0.5 x (1 - t^2) s' amplifies the error of the
    float32 tanh approximation (5e-7) by |x| s' (about 10 at x = -4); measured
    3.3e-6."""
    build, steps, rtol, atol = WORKLOADS[name]
    cpu_losses, cpu_values = _train(build, "cpu", steps)
    ref_losses, ref_values = _train(build, "reference", steps)
    for i, (c, r) in enumerate(zip(cpu_losses, ref_losses)):
        for j, (cv, rv) in enumerate(zip(c, r)):
            assert_same(cv, rv, f"{name} step {i} output {j}", rtol, atol)
    assert cpu_values.keys() == ref_values.keys()
    assert any("velocity" in k for k in cpu_values)
    for key in ref_values:
        assert_same(cpu_values[key], ref_values[key], f"{name} variable {key}", rtol, atol)


# -- errors and specialization ------------------------------------------------------------

@pytest.mark.parametrize("device", ["cpu", "reference"])
def test_label_out_of_range_raises_and_keeps_variables(device):
    """A label outside [0, C) in cross_entropy (one_hot inside) raises a GraphcError
    naming one_hot, and the failed training step leaves every variable (weights
    and velocities) as it was; a good batch still trains afterwards."""
    work = workloads.mlp(batch=16)
    step = work.compile(device=device)
    x, labels = work.feeds
    step(x, labels)
    before = {v.name: v.value.copy() for v in step.variables}
    for bad in (10, -1):
        wrong = labels.copy()
        wrong[5] = bad
        with pytest.raises(gc.GraphcError, match="one_hot"):
            step(x, wrong)
        for v in step.variables:
            np.testing.assert_array_equal(v.value, before[v.name], err_msg=v.name)
    step(x, labels)
    assert not np.array_equal(step.variables[0].value, before[step.variables[0].name])


def test_one_hot_out_of_range_alone():
    labels = gc.placeholder((3,), "int64", name="labels")
    cpu, ref = compile_both([gc.one_hot(labels, 4) * 2.0], [labels])
    for step in (cpu, ref):
        with pytest.raises(gc.GraphcError, match="one_hot"):
            step(np.array([0, 4, 1]))


def test_check_numerics_names_the_node_and_line():
    """check_numerics=True on the cpu device stops at the kernel producing NaN and
    names the node (log of a negative), not the sum it is fused into, with the
    user's source line, as the reference device does."""
    x = gc.placeholder((4,), name="x")
    y = x * 2.0
    line = inspect.currentframe().f_lineno + 1
    z = gc.log(y - 1.0)
    out = gc.sum(z * 3.0)
    cpu, ref = compile_both(out, [x], check_numerics=True)
    good = np.array([1.0, 2.0, 3.0, 4.0], np.float32)
    assert_same(cpu(good), ref(good), "finite input")
    bad = np.array([1.0, -2.0, 3.0, 4.0], np.float32)
    for step in (cpu, ref):
        with pytest.raises(gc.GraphcError) as info:
            step(bad)
        message = str(info.value)
        assert info.value.op == "log" and "NaN" in message, message
        assert f"{Path(__file__).name}:{line}" in message, message


def test_none_batch_dimension_compiles_two_signatures():
    """A placeholder with a None batch dimension fed two batch sizes compiles two
    plans, and each matches the reference (a training step: the variables it
    updates are compared after each call)."""
    def build():
        x = gc.placeholder((None, 6), name="x")
        y = gc.placeholder((None,), "int64", name="y")
        w = gc.variable(finite_values("float32", (6, 3), seed=32), name="w")
        logits = gc.relu(x @ w) - gc.mean(x, axis=1, keepdims=True)
        loss = gc.nn.cross_entropy(logits, y)
        (gw,) = gc.grad(loss, [w])
        return x, y, w, loss, {w: w - 0.1 * gw}

    batches = [(finite_values("float32", (n, 6), seed=n), rng(n).integers(0, 3, n))
               for n in (8, 3, 8)]
    results = {}
    for device in ("cpu", "reference"):
        with gc.Graph(device):
            x, y, w, loss, updates = build()
            step = gc.compile([loss, gc.nn.softmax(x @ w)], inputs=[x, y], updates=updates,
                              device=device)
            outs = []
            for xb, yb in batches:
                outs.append(step(xb, yb) + [w.value.copy()])
            results[device] = outs
            if device == "cpu":
                assert len(step._plans) == 2 and step.stats["signatures"] == 2
    for i, (c, r) in enumerate(zip(results["cpu"], results["reference"])):
        for j, (cv, rv) in enumerate(zip(c, r)):
            assert_same(cv, rv, f"call {i} value {j}")


def test_a_kernel_of_many_arguments_compiles_without_numba_warnings():
    """Numba types a call of 27 or more arguments through its experimental first-class
    functions and warns, printing the step's whole line (seen with Adam's step counters
    of a 29-parameter transformer)."""
    import warnings
    counters = [gc.variable(np.zeros((), np.int64), name=f"t{i}") for i in range(30)]
    step = gc.compile([], inputs=[], updates={t: t + 1 for t in counters}, device="cpu")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        step()
        step()
    assert [str(w.message) for w in caught] == []
    assert [int(t.value) for t in counters] == [2] * 30


def test_gradients_compile_without_the_optimizing_passes():
    """optimize=False keeps gc.grad's broadcast_to(dy, like=x) and reshape(dy, like=x),
    whose shapes are operands until simplify runs: the index maps called their
    references without them (a raw TypeError on any reduction's gradient)."""
    x = gc.placeholder((2, 3, 4), name="x")
    outputs = with_grads({"sum": gc.sum(gc.exp(x)), "mean": gc.mean(x * x, axis=1),
                          "reshape": gc.reshape(gc.tanh(x), (6, 4)),
                          "broadcast": x[:, :1] * gc.sum(x, axis=(0, 1))}, {"x": x})
    labels, tensors = list(outputs), list(outputs.values())
    feed = rng(7).standard_normal((2, 3, 4)).astype(np.float32)
    cpu = gc.compile(tensors, inputs=[x], device="cpu", optimize=False)(feed)
    ref = gc.compile(tensors, inputs=[x], device="reference", optimize=False)(feed)
    for label, c, r in zip(labels, cpu, ref):
        assert_same(c, r, label, RTOL, ATOL)
