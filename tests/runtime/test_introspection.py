"""What an executable tells about itself: `stats`, the optimized `graph`,
`fusion_report()`, `profile()`, and the errors of `check_numerics=True`.

The CPU tests use W1 (benchmarks/workloads.py's MLP training step) at batch 8;
every test has its own empty cache folder, so each compiles afresh.
"""
import inspect
import re
from pathlib import Path

import numpy as np
import pytest

import graphc as gc
from helpers import load_workloads
from graphc.errors import RuntimeFailure
from graphc.runtime.reference import NumericsError

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve()


workloads = load_workloads()


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def mlp_step(batch=8):
    w = workloads.mlp(batch=batch)
    return w, w.compile(device="cpu")


def snapshot(step):
    return {name: np.array(value, copy=True) for name, value in step.state_dict().items()}


def assert_same_state(a, b):
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def line_above():
    """The caller's line number minus one."""
    return inspect.currentframe().f_back.f_lineno - 1


# -- stats, graph, fusion report -------------------------------------------------------

def test_stats_after_the_first_call_describe_kernels_memory_and_compile(own_cache):
    w, step = mlp_step()
    assert step.stats == {"device": "cpu", "compile_seconds": 0.0, "signatures": 0}
    loss = step(*w.feeds)
    assert np.isfinite(loss).all()
    stats = step.stats
    kernels = step.program.fusion.kernels
    assert stats["kernels"] == len(kernels) > 0
    assert stats["generated_kernels"] + stats["library_kernels"] >= stats["kernels"]
    assert stats["library_kernels"] == 8  # 3 forward matmuls, 3 weight and 2 input gradients
    assert stats["lower_bound"] <= stats["arena_bytes"] <= stats["naive_bytes"]
    assert stats["arena_bytes"] <= 1.10 * stats["lower_bound"]
    assert stats["compile_seconds"] > 0
    assert stats["cache_hit"] is False            # an empty cache folder
    assert isinstance(stats["cache_hit"], bool)
    assert Path(stats["module"]).parent == own_cache
    assert stats["signatures"] == 1
    step(*w.feeds)                                # same shapes: no new signature
    assert step.stats["signatures"] == 1


def test_graph_is_the_optimized_graph_with_composite_ops_lowered():
    w, step = mlp_step()
    assert step.graph is None                     # nothing compiled yet
    step(*w.feeds)
    ops = {node.op.name for node in step.graph}
    assert not ops & {"softmax", "log_softmax", "mean", "cross_entropy", "logsumexp"}
    assert {"matmul", "max", "exp", "log", "sum", "relu"} <= ops
    # the reference device runs the graph as built
    reference = w.compile(device="reference")
    reference(*w.feeds)
    assert "log_softmax" in {node.op.name for node in reference.graph}


def test_fusion_report_names_every_kernel_and_why_edges_were_not_fused():
    w, step = mlp_step()
    assert step.fusion_report().startswith("no fusion")
    step(*w.feeds)
    report = step.fusion_report()
    lines = report.splitlines()
    for kernel in step.program.fusion.kernels:
        assert any(line.startswith(f"{kernel.name}: domain") for line in lines), kernel.name
    assert "not fused:" in lines
    reasons = lines[lines.index("not fused:") + 1:]
    assert reasons
    for line in reasons:
        assert re.fullmatch(r"    \w+ -> \w+: \S.*", line), line
    assert "    relu -> matmul_1: matmul is a library call reading buffers" in reasons


def test_fusion_report_on_the_reference_device_says_there_is_no_fusion():
    x = gc.placeholder((4,), name="x")
    step = gc.compile(gc.sum(x * 2.0), inputs=[x], device="reference")
    step(np.ones(4, np.float32))
    assert step.fusion_report().startswith("no fusion")


# -- profile ---------------------------------------------------------------------------

def test_profile_times_every_kernel_in_schedule_order():
    w, step = mlp_step()
    step(*w.feeds)
    profile = step.profile(*w.feeds, repeats=3)
    names = [kernel.name for kernel in step.program.fusion.kernels]
    assert [name for name, _, _ in profile.rows] == names
    assert all(seconds >= 0 for _, _, seconds in profile.rows)
    assert profile.repeats == 3
    assert profile.total == pytest.approx(sum(seconds for _, _, seconds in profile.rows))
    text = str(profile)
    assert "total" in text.splitlines()[-1] and "median of 3 runs" in text
    for name in names:
        assert any(line.startswith(name[:40]) for line in text.splitlines()), name
    assert "matmul" in profile.rows[0][1]


def test_profile_changes_no_variable_and_is_not_a_step():
    """An executable profiled before and between its calls computes exactly what
    a fresh, never profiled executable of the same model computes."""
    w, step = mlp_step()
    initial = snapshot(step)
    step.profile(*w.feeds, repeats=3)             # compiles, then runs kernel by kernel
    assert_same_state(snapshot(step), initial)
    first = step(*w.feeds)
    after_first = snapshot(step)
    step.profile(*w.feeds, repeats=2)             # after variables were written (in place)
    assert_same_state(snapshot(step), after_first)
    second = step(*w.feeds)

    with gc.Graph("fresh"):
        fresh_w, fresh = mlp_step()               # same seed: the same initial values
        assert_same_state(snapshot(fresh), initial)
        fresh_first, fresh_second = fresh(*fresh_w.feeds), fresh(*fresh_w.feeds)
    np.testing.assert_allclose(first, fresh_first, rtol=1e-6)
    np.testing.assert_allclose(second, fresh_second, rtol=1e-6)
    assert float(second[0]) < float(first[0])     # the step did train
    final = snapshot(step)
    for name, value in snapshot(fresh).items():
        np.testing.assert_allclose(final[name], value, rtol=1e-5, atol=1e-7, err_msg=name)


# -- check_numerics --------------------------------------------------------------------

@pytest.mark.parametrize("device", ["cpu", "reference"])
def test_check_numerics_names_the_log_of_zero_and_the_line_that_wrote_it(device):
    x = gc.placeholder((4,), name="x")
    planted = gc.log(x - x)
    line = line_above()
    loss = gc.sum(planted * 2.0 + x)
    step = gc.compile(loss, inputs=[x], device=device, check_numerics=True)
    with pytest.raises(gc.GraphcError) as info:
        step(np.arange(4, dtype=np.float32))
    error = info.value
    assert isinstance(error, NumericsError) and isinstance(error, RuntimeFailure)
    assert error.op == "log"
    assert f"node {planted.name} produced Inf" in str(error)
    assert Path(error.loc.file).resolve() == HERE and error.loc.line == line
    assert f":{line}: planted = gc.log(x - x)" in str(error)
    if device == "cpu":         # the checks run inside the njit step
        assert step.stats["driver"] == "njit"


def _planted_training_step(device):
    """A training step (SGD on w and b for sum(tanh(x @ w + b)^2)) that also keeps a
    running sum of log(z) in a variable s. On the CPU the log is fused into the
    kernel that computes s's new value, which without check_numerics that kernel
    writes into s's storage in place (as another kernel writes w's)."""
    r = np.random.default_rng(0)
    x = gc.placeholder((4, 3), name="x")
    z = gc.placeholder((4, 2), name="z")
    w = gc.variable(r.standard_normal((3, 2)).astype(np.float32), name="w")
    b = gc.variable(np.full(2, 0.5, np.float32), name="b")
    s = gc.variable(np.float32(1.0), name="s", trainable=False)
    h = gc.tanh(x @ w + b)
    loss = gc.sum(h * h)
    gw, gb = gc.grad(loss, [w, b])
    planted = gc.log(z)
    line = line_above()
    updates = {w: w - 0.1 * gw, b: b - 0.1 * gb, s: s + gc.sum(planted)}
    step = gc.compile(loss, inputs=[x, z], updates=updates, device=device,
                      check_numerics=True)
    return step, planted, line, r.standard_normal((4, 3)).astype(np.float32)


@pytest.mark.parametrize("device", ["cpu", "reference"])
def test_a_failing_checked_training_step_leaves_every_variable_unchanged(device):
    step, planted, line, x = _planted_training_step(device)
    before = snapshot(step)
    z = np.ones((4, 2), np.float32)
    z[1, 0] = 0.0
    with pytest.raises(NumericsError) as info:
        step(x, z)
    assert info.value.op == "log" and f"node {planted.name} produced Inf" in str(info.value)
    assert Path(info.value.loc.file).resolve() == HERE and info.value.loc.line == line
    assert_same_state(snapshot(step), before)

    # the failed call did not count: a good call trains from the initial values
    z = np.linspace(0.5, 2.0, 8, dtype=np.float32).reshape(4, 2)
    w0, b0 = before["w"].astype(np.float64), before["b"].astype(np.float64)
    t = np.tanh(x @ w0 + b0)
    upstream = 2 * t * (1 - t * t)
    loss = step(x, z)
    np.testing.assert_allclose(loss, np.sum(t * t), rtol=1e-5)
    after = snapshot(step)
    np.testing.assert_allclose(after["w"], w0 - 0.1 * x.T @ upstream, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(after["b"], b0 - 0.1 * upstream.sum(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(after["s"], 1.0 + np.log(z.astype(np.float64)).sum(), rtol=1e-5)


@pytest.mark.parametrize("repeats", [0, -1, 2.5, True])
def test_profile_refuses_a_repeat_count_that_is_not_a_positive_int(repeats):
    w, step = mlp_step()
    with pytest.raises(gc.ArgumentError, match="repeats must be a positive int"):
        step.profile(*w.feeds, repeats=repeats)
