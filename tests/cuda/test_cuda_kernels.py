"""Every kernel kind of the CUDA backend against device="reference", at small
shapes (the simulator runs each CUDA thread as a Python thread).

Shapes are chosen larger than one launch covers under the simulator's limits
(2 blocks of at most 16 threads), so grid-stride loops, several rows per block
and several partials per scalar reduction all run. Tolerances: compare.py.
The library ops other than matmul and take: test_cuda_library.py.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

import graphc as gc
from graphc.errors import RuntimeFailure
from graphc.runtime.cuda import device

from compare import RNG, check, data, library_launches
from cuda_env import GPU

# the simulator computes on NumPy scalars, which warn on NaN and Inf where a GPU is silent
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path / "cache"))


def loops(plan):
    return list(plan.loops.values())


def test_elementwise_kernel_is_a_grid_stride_loop_over_every_point():
    x, b = gc.placeholder((5, 9), name="x"), gc.placeholder((9,), name="b")
    plan = check([(x * b + 1.0) / (gc.abs(b) + 0.5), x - 2.0 * b],
                 {x: data(5, 9), b: data(9)})
    (loop,) = loops(plan)
    assert loop.tail is None and loop.grid * loop.threads < 45    # the loop strides


def test_unary_activations_and_transcendentals():
    x = gc.placeholder((4, 11), name="x")
    feed = data(4, 11) * 3
    feed[0, :3] = [np.nan, np.inf, -np.inf]
    pos = gc.abs(x) + 0.25
    plan = check([gc.exp(x), gc.expm1(x), gc.log(pos), gc.tanh(x), gc.sigmoid(x), gc.erf(x),
                  gc.log1p(pos), gc.sqrt(pos), gc.rsqrt(pos), gc.relu(x), gc.leaky_relu(x, 0.1),
                  gc.gelu(x), gc.gelu(x, approximate="tanh"), gc.softplus(x), gc.sign(x),
                  -x, x ** 2.0], {x: feed}, rtol=2e-5)
    assert plan.stats()["kernels"] == 1


def test_power_of_floats_and_of_integers_to_negative_powers():
    x, y = gc.placeholder((5,), name="x"), gc.placeholder((5,), name="y")
    b, e = gc.placeholder((6,), "int64", name="b"), gc.placeholder((6,), "int64", name="e")
    check([x ** y, b ** e], {x: np.abs(data(5)) + 0.5, y: data(5) * 3,
                             b: np.array([0, 2, 1, -1, -1, 3]), e: np.array([-1, -1, -3, -3, -2, 2])})


def test_binary_comparisons_where_and_casts_keep_dtypes_and_nan():
    a, b = gc.placeholder((6, 5), name="a"), gc.placeholder((5,), name="b")
    fa, fb = data(6, 5), data(5)
    fa[0, 0], fb[1] = np.nan, np.nan
    check([gc.maximum(a, b), gc.minimum(a, b), gc.where(a > b, a, 0.0), a >= b,
           gc.logical_and(a > 0, b < 0), (a * 4).astype("int64"), a.astype("float64") * 3,
           gc.cast(a > 0, "float32")], {a: fa, b: fb})


@pytest.mark.parametrize("reduce", ["sum", "max", "min", "prod"])
def test_row_reductions_over_last_and_first_axes(reduce):
    x = gc.placeholder((7, 21), name="x")
    fn = getattr(gc, reduce)
    feed = 1 + 0.1 * data(7, 21) if reduce == "prod" else data(7, 21)
    plan = check([fn(x, axis=1), fn(x, axis=0, keepdims=True)], {x: feed})
    assert all(loop.tail is None for loop in loops(plan))     # rows only: no tail kernel


def test_row_reduction_over_two_axes_of_a_3d_value():
    x = gc.placeholder((3, 4, 5), name="x")
    check([gc.sum(x * x, axis=(0, 2)), gc.max(x, axis=(1, 2), keepdims=True)],
          {x: data(3, 4, 5)})


def test_softmax_rows_take_two_passes_reading_the_block_reduced_values():
    x = gc.placeholder((6, 19), name="x")
    check([gc.nn.softmax(x, axis=1), gc.nn.log_softmax(x, axis=1), gc.logsumexp(x, axis=1)],
          {x: 5 * data(6, 19)})


def test_scalar_reductions_use_block_partials_and_a_tail_kernel():
    x = gc.placeholder((9, 13), name="x")
    plan = check([gc.sum(x), gc.max(x), gc.mean(x * x), gc.min(x) * 2.0],
                 {x: data(9, 13)})
    tails = [loop for loop in loops(plan) if loop.tail]
    assert tails and all(loop.grid > 1 and loop.partials for loop in tails)


def test_a_threads_long_float32_sums_add_in_float64_and_round_once():
    """2**24 first, then ones: a float32 accumulator drops every 1 added to it (its
    ulp there is 2); in float64 the sums are exact, then rounded once, as the
    reference's. Rows long enough that each thread adds WIDE_THREAD_TERMS terms."""
    from graphc.runtime.cuda.codegen import WIDE_THREAD_TERMS
    n = device.LIMITS.threads * WIDE_THREAD_TERMS
    x = gc.placeholder((2, n), name="x")
    feed = np.ones((2, n), np.float32)
    feed[:, 0] = 2.0 ** 24
    outputs = [gc.sum(x, axis=1), gc.sum(x), gc.mean(x, axis=1)]
    plan = check(outputs, {x: feed}, rtol=0, atol=0)
    got = gc.compile(outputs, inputs=[x], device="cuda")(feed)
    assert got[0].tolist() == [np.float32(2.0 ** 24 + n - 1)] * 2
    wide = [loop for loop in loops(plan) if "nbt.float64)" in loop.source]
    assert wide and any(np.dtype(d) == np.float64 for loop in wide for d in loop.partials)


def test_one_point_kernels_compute_their_scalar_nodes_without_a_reduction():
    """A vector product, an argmin plus one, a 0-d value times two: SCALAR nodes with
    no SCALAR reduction were refused (an AssertionError at compile; 42 of 250 fuzzed
    graphs). The thread of the one point computes them after its loop."""
    x, y = gc.placeholder((3,), name="x"), gc.placeholder((3,), name="y")
    product = gc.matmul(x, y)
    check([product, product * 2.0, gc.expand_dims(gc.argmin(x), 0) + 1,
           gc.sum(x) * 0.0 + gc.reshape(x[1:2], ()) * 2.0],
          {x: data(3), y: data(3)})


def test_a_tail_kernels_scalar_nodes_compute_the_element_values_they_read():
    """softmax over one value whose input is also fetched: the tail kernel read the
    main kernel's variable (a NameError; found by fuzzing). A 0-d variable updated
    in place while the loss reads it stays the reference's."""
    x = gc.placeholder((1,), name="x")
    t = x * 2.0
    check([gc.nn.softmax(t, axis=0), t, gc.logsumexp(t), gc.logsumexp(gc.reshape(t, ()))],
          {x: data(1)})
    results = {}
    for name in ("reference", "cuda"):
        v = gc.variable(np.float32(2.0))
        loss = gc.mean(-v) + gc.sum(v * v) * 1.5
        step = gc.compile([gc.sum(v * v), loss], updates={v: v - 1.0}, device=name)
        results[name] = [float(a) for a in step() + step()] + [float(v.value)]
    assert results["cuda"] == results["reference"] == [4.0, 4.0, 1.0, 0.5, 0.0]


def test_reductions_over_no_axes_are_their_operand():
    """mean and logsumexp with axis=() reduced over every axis (found by fuzzing)."""
    x = gc.placeholder((2, 3), name="x")
    check([gc.mean(x, axis=()), gc.logsumexp(x, axis=()), gc.sum(x, axis=()) * 2.0],
          {x: data(2, 3)})


def test_int_and_bool_reductions():
    x = gc.placeholder((5, 8), "int64", name="x")
    check([gc.sum(x, axis=1), gc.max(x), gc.sum(x > 0, axis=0)],
          {x: RNG.integers(-50, 50, (5, 8))})


def test_non_affine_view_reads_through_a_gather_table():
    x = gc.placeholder((4, 6), name="x")
    y = gc.reshape(gc.transpose(x), (3, 8)) * 2.0 + 1.0
    plan = check([y], {x: data(4, 6)})
    assert any(loop.tables for loop in loops(plan))


def test_cross_entropy_one_hot_and_its_label_check():
    logits, labels = gc.placeholder((8, 5), name="logits"), gc.placeholder((8,), "int64", name="y")
    loss = gc.nn.cross_entropy(logits, labels)
    feeds = {logits: data(8, 5), labels: RNG.integers(0, 5, 8)}
    check([loss, gc.grad(loss, [logits])[0]], feeds)
    step = gc.compile([loss], inputs=[logits, labels], device="cuda")
    want = step(*feeds.values())[0]
    with pytest.raises(RuntimeFailure, match="one_hot: a label is out of range for 5 classes"):
        step(feeds[logits], np.array([0, 1, 2, 3, 4, 5, 0, 1]))
    assert step(*feeds.values())[0] == want           # the error flag was reset


def test_check_numerics_names_the_node_and_profile_times_each_kernel():
    x = gc.placeholder((3, 4), name="x")
    y = gc.sum(gc.log(x), axis=1)
    step = gc.compile([y, x @ gc.transpose(x)], inputs=[x], device="cuda", check_numerics=True)
    step(np.ones((3, 4), "float32"))
    with pytest.raises(gc.GraphcError, match="produced NaN"):
        step(-np.ones((3, 4), "float32"))
    rows = step.profile(np.ones((3, 4), "float32"), repeats=2).rows
    assert [name for name, _, _ in rows] == [k.name for k in step.program.fusion.kernels]


@pytest.mark.parametrize("shapes", [((5, 7), (7, 6)), ((3, 5, 7), (3, 7, 2)),
                                    ((2, 1, 3, 4), (5, 4, 3))])
def test_matmul_tiles_batches_and_broadcasts(shapes):
    a, b = gc.placeholder(shapes[0], name="a"), gc.placeholder(shapes[1], name="b")
    check([a @ b], {a: data(*shapes[0]), b: data(*shapes[1])})


@pytest.mark.parametrize("transpose_a, transpose_b", [(False, False), (True, True)])
def test_matmul_blocks_edges_and_a_split_k_in_either_layout(transpose_a, transpose_b,
                                                             monkeypatch):
    """The simulator's sizes (on a GPU too): blocks of 16 x 16 outputs (4 x 4 threads of
    4 x 4 registers), k split when the grid has under 4 blocks. 37 x 33 outputs: 3 x 3
    blocks with ragged edges, k = 45 whole; 5 x 6 from k = 200: one block, k split in 4."""
    monkeypatch.setattr(device.LIMITS, "tile", 4)
    monkeypatch.setattr(device.LIMITS, "gemm_blocks", 4)
    for (m, k, n), splits in [((37, 45, 33), 1), ((5, 200, 6), 4)]:
        a = gc.placeholder((k, m) if transpose_a else (m, k), name="a")
        b = gc.placeholder((n, k) if transpose_b else (k, n), name="b")
        product = (gc.transpose(a) if transpose_a else a) @ \
            (gc.transpose(b) if transpose_b else b)
        feeds = {a: data(*a.shape), b: data(*b.shape)}
        plan = check([product], feeds, rtol=1e-5, atol=1e-5)
        launches = library_launches(plan)
        assert [name for name, _ in launches] == ["matmul"] + ["sum_parts"] * (splits > 1)
        assert launches[0][1] == (-(-n // 16), -(-m // 16), splits)


def test_matmul_reads_a_transposed_operand_in_place_and_fuses_its_epilogue():
    a, b, c = (gc.placeholder(s, name=n) for s, n in (((6, 5), "a"), ((6, 3), "b"), ((3,), "c")))
    plan = check([gc.relu(gc.transpose(a) @ b + c)], {a: data(6, 5), b: data(6, 3), c: data(3)})
    assert plan.stats()["kernels"] == 1 and plan.fusion.aliases


def test_one_kernel_launched_with_two_grids_keeps_each_launchs_grid():
    """The simulator's kernel[grid, block] configures the kernel object itself: launches
    configured in advance must not share one configuration."""
    a, b = gc.placeholder((9, 7), name="a"), gc.placeholder((7, 10), name="b")
    c, d = gc.placeholder((2, 3), name="c"), gc.placeholder((3, 2), name="d")
    plan = check([a @ b, c @ d], {a: data(9, 7), b: data(7, 10), c: data(2, 3), d: data(3, 2)})
    assert plan.stats()["library_kernels"] == 2     # one matmul kernel, two grids


def test_int64_matmul():
    a, b = gc.placeholder((3, 4), "int64", name="a"), gc.placeholder((4, 5), "int64", name="b")
    check([a @ b], {a: RNG.integers(-9, 9, (3, 4)), b: RNG.integers(-9, 9, (4, 5))})


def test_take_and_take_grad_scatter_add_repeated_and_negative_indices():
    table = gc.placeholder((7, 3), name="table")
    ids = gc.placeholder((2, 5), "int64", name="ids")
    picked = gc.take(table, ids, axis=0)
    loss = gc.sum(picked * picked)
    feeds = {table: data(7, 3), ids: np.array([[0, 2, 2, -1, 6], [2, 0, 5, 5, 5]])}
    columns = gc.take(table, gc.constant(np.array([2, -1, 0, 2])), axis=1)
    check([picked, gc.grad(loss, [table])[0], columns], feeds)
    step = gc.compile([picked], inputs=[table, ids], device="cuda")
    with pytest.raises(RuntimeFailure, match="index 7 is out of range for axis 0 of size 7"):
        step(feeds[table], np.array([[0, 1, 7, 2, 9], [0, 0, 0, 0, 0]]))


def test_embedding_refuses_a_negative_id_in_take_and_its_gradient():
    table = gc.placeholder((7, 3), name="table")
    ids = gc.placeholder((4,), "int64", name="ids")
    picked = gc.nn.functional.embedding(ids, table)
    (grad,) = gc.grad(gc.sum(picked * picked), [table])
    for outputs in ([picked], [grad]):
        step = gc.compile(outputs, inputs=[table, ids], device="cuda")
        with pytest.raises(RuntimeFailure, match="index -2 is out of range for axis 0 of size 7"):
            step(data(7, 3), np.array([0, 6, -2, 1]))


@pytest.mark.skipif(GPU, reason="this machine has a GPU: device='cuda' does not fail here")
def test_without_gpu_or_simulator_cuda_raises_and_names_the_simulator():
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    code = ("import graphc as gc\nx = gc.placeholder((2,))\n"
            "try:\n    gc.compile([x * 2], inputs=[x], device='cuda')\n"
            "except gc.GraphcError as e:\n    print(type(e).__name__, e)\n")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.startswith("CompileError compile: device=\"cuda\""), out.stderr
    assert "NUMBA_ENABLE_CUDASIM=1" in out.stdout and "<string>:4" in out.stdout


def _nvvm_missing():
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    probe = ("from numba import cuda\n"
             "cuda.compile_ptx(lambda x: None, 'void(float32[::1])', cc=(9, 0))\n")
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True,
                         text=True, timeout=120)
    return out.returncode != 0 and (out.stderr.strip().splitlines() or ["?"])[-1]


def test_every_kernel_of_training_steps_and_library_ops_compiles_for_sm90():
    """The simulator runs Python, which accepts code numba.cuda rejects: compile the real
    thing (PTX for an H100/H200) without a GPU: W1 and W2 steps, an embedding, and every
    other library op (ptx_step.py). Only the random draws use float64 (as the reference
    does) and an integer power (Numba's int ** int goes through float64 pow, as it
    did before power() had its own scalar). Needs NVVM (cuda-toolkit[nvvm])."""
    missing = _nvvm_missing()
    if missing:
        pytest.skip(f"NVVM unavailable for compile_ptx ({missing}); "
                    "pip install 'numba-cuda[cu13]' to run this check")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    script = os.path.join(os.path.dirname(__file__), "ptx_step.py")
    out = subprocess.run([sys.executable, script], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    # 106: 6 of them the count and masked one-hot of cross_entropy's ignore_index (W1, W2)
    assert "compiled 106 kernels, 3 using float64: ['ops_k13_random_uniform_greater_equal_" \
        "where_multiply:random_uniform', 'ops_k4_random_normal:random_normal', " \
        "'pow_k1_power']" in out.stdout, out.stdout
