"""Pipeline: records one PassRecord per pass with an independent snapshot,
stops where asked; compile(optimize=True) trains exactly as optimize=False
with a smaller graph."""
import numpy as np

import graphc as gc
from graphc.passes.pipeline import PassRecord, cleanup_pipeline, default_pipeline
from helpers_passes import assert_same_values, count_live_ops, count_ops, program_of, rng

PASSES = ["simplify", "cse", "fold", "dce"]
DEFAULT = PASSES + ["lower", "fuse", "memplan"]


def sample_program():
    """Something for every pass: log(sigmoid) to simplify, a duplicate exp,
    a constant product to fold, and the dead sigmoid that simplify leaves."""
    x = gc.placeholder((4, 3), name="x")
    y = gc.log(gc.sigmoid(x)) + gc.exp(x) * gc.exp(x) * (gc.constant(2.0) * gc.constant(3.0))
    return program_of(y, [x]), [rng(0).standard_normal((4, 3)).astype("float32")]


def test_cleanup_pipeline_runs_the_four_passes_in_order():
    assert cleanup_pipeline().names == PASSES


def test_default_pipeline_adds_lowering_fusion_and_memory_planning():
    assert default_pipeline().names == DEFAULT


def test_each_pass_leaves_a_record_with_its_report_and_snapshot():
    program, feeds = sample_program()
    before = program.copy()
    records = cleanup_pipeline().run(program)
    assert [r.name for r in records] == PASSES
    assert all(isinstance(r, PassRecord) and r.seconds >= 0 for r in records)
    assert records[0].report == {"log_of_sigmoid": 1}
    assert records[1].report == {"merged": 1}
    assert records[2].report == {"folded": 1}
    assert records[3].report["removed"] >= 3     # sigmoid, log, an exp, 2.0, 3.0 ...
    for record in records:
        assert_same_values(before, record.snapshot, feeds, rtol=1e-5)
    assert_same_values(before, program, feeds, rtol=1e-5)


def test_snapshots_are_independent_of_later_passes():
    program, _ = sample_program()
    records = cleanup_pipeline().run(program)
    after_simplify, after_cse = records[0].snapshot, records[1].snapshot
    # later passes removed these from the program, not from the snapshots
    assert count_ops(after_simplify, "sigmoid") == 1 and count_ops(program, "sigmoid") == 0
    assert count_ops(after_simplify, "exp") == 2 and count_ops(after_cse, "exp") == 1
    assert count_live_ops(after_cse, "multiply") == 3 and count_live_ops(program, "multiply") == 2
    for record in records:
        assert not set(record.snapshot.graph) & set(program.graph)
        assert record.snapshot.graph is not program.graph
    # 11 nodes built; simplify adds -softplus(-x) for log; cse merges an exp; fold swaps
    # 2.0 * 3.0 for 6.0; dce removes sigmoid, 2.0 and 3.0
    assert [len(r.snapshot.graph) for r in records] == [13, 12, 12, 9]
    assert len(program.graph) == 9


def test_stop_after_runs_no_later_pass():
    program, feeds = sample_program()
    before = program.copy()
    records = cleanup_pipeline().run(program, stop_after="cse")
    assert [r.name for r in records] == ["simplify", "cse"]
    assert count_live_ops(program, "multiply") == 3          # 2.0 * 3.0 not folded
    assert count_ops(program, "sigmoid") == 1                # dead, not removed
    assert_same_values(before, program, feeds, rtol=1e-5)


def test_snapshots_can_be_turned_off():
    program, _ = sample_program()
    records = cleanup_pipeline().run(program, snapshots=False)
    assert [r.snapshot for r in records] == [None] * 4



def structure(program):
    return [(n.name, n.op.name, tuple(i.name for i in n.inputs))
            for n in program.graph.topological()]


def test_snapshots_not_kept_are_replayed_on_first_request():
    program, _ = sample_program()
    kept = default_pipeline().run(program.copy(), stop_after="fuse")
    runs = []

    def fresh_copy():
        runs.append(1)
        return program.copy()
    lazy = default_pipeline().run(program.copy(), stop_after="fuse", snapshots=False,
                                  replay=fresh_copy)
    assert runs == [] and [r.name for r in lazy] == [r.name for r in kept]
    assert lazy[2].snapshot is not None and runs == [1]       # one replay fills them all
    for eager, replayed in zip(kept, lazy):
        assert structure(replayed.snapshot) == structure(eager.snapshot), eager.name
    assert runs == [1]


def test_an_executable_keeps_no_snapshot_copies_until_asked():
    x = gc.placeholder((None, 3), name="x")
    step = gc.compile([gc.sum(gc.exp(x) * 2.0)], inputs=[x], device="reference",
                      optimize=True)
    step(np.ones((2, 3), np.float32))
    assert all(r._snapshot is None for r in step.passes)
    assert [n.op.name for n in step.passes[-1].snapshot.graph.topological()] == \
        [n.op.name for n in step.program.graph.topological()]

# -- through gc.compile ------------------------------------------------------------------

def initial_weights():
    weights = np.random.default_rng(42)
    return {"w1": weights.standard_normal((8, 16)).astype("float32") * 0.3,
            "b1": np.zeros(16, "float32"),
            "w2": weights.standard_normal((16, 4)).astype("float32") * 0.3,
            "b2": np.zeros(4, "float32")}


def mlp_training_step(optimize):
    """A 2-layer MLP with cross-entropy and SGD, in its own graph (own variables)."""
    with gc.Graph(f"mlp_{optimize}"):
        x = gc.placeholder((None, 8), name="x")
        y = gc.placeholder((None,), "int64", name="y")
        w1, b1, w2, b2 = params = [gc.variable(value, name=name)
                                   for name, value in initial_weights().items()]
        hidden = gc.relu(x @ w1 + b1)
        loss = gc.nn.cross_entropy(hidden @ w2 + b2, y)
        grads = gc.grad(loss, params)
        step = gc.compile([loss], inputs=[x, y], device="reference", optimize=optimize,
                          updates={p: p - 0.1 * g for p, g in zip(params, grads)})
    return step, params


def test_optimized_training_step_matches_unoptimized_with_a_smaller_graph():
    data = rng(7)
    batches = [(data.standard_normal((6, 8)).astype("float32"),
                data.integers(0, 4, 6).astype("int64")) for _ in range(3)]
    plain, plain_params = mlp_training_step(optimize=False)
    optimized, optimized_params = mlp_training_step(optimize=True)
    plain_losses = [float(plain(xb, yb)[0]) for xb, yb in batches]
    optimized_losses = [float(optimized(xb, yb)[0]) for xb, yb in batches]
    np.testing.assert_allclose(optimized_losses, plain_losses, rtol=1e-5)
    start = initial_weights()
    for p, q in zip(plain_params, optimized_params):
        assert not np.allclose(p.value, start[p.name])       # the steps did update it
        np.testing.assert_allclose(q.value, p.value, rtol=1e-5, atol=1e-6)
    # (not fewer nodes: float32 log_softmax lowers to 10 nodes, its subtraction in float64)
    assert not {"log_softmax", "mean"} & {n.op.name for n in optimized.graph}
    assert [r.name for r in optimized.passes] == DEFAULT
    assert plain.passes == []
