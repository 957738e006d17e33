"""The CPU backend's whole-step driver (runtime/cpu/driver.py, run as a program by
runtime/cpu/step_program.py) against its Python driver: both call the same kernels
in the same order on the same buffers, so every output and every variable must be
bit-identical.

Each workload is compiled twice (backend.NJIT_DRIVER on, then off) in separate
graphs built from the same seed, and trained for 3 steps.
"""
from pathlib import Path

import numpy as np
import pytest

import graphc as gc
from helpers import load_workloads, small_workloads
from graphc.runtime.cpu import backend
from graphc.runtime.cpu.step_program import RECORD

ROOT = Path(__file__).resolve().parents[2]


workloads = load_workloads()

WORKLOADS = small_workloads()


def _plan(step):
    (plan,) = step._plans.values()
    return plan


def _train(build, njit_driver, monkeypatch, steps=3):
    monkeypatch.setattr(backend, "NJIT_DRIVER", njit_driver)
    with gc.Graph(f"driver={njit_driver}"):
        work = build()
        step = work.compile(device="cpu")
        results = []
        for _ in range(steps):
            out = step(*work.feeds)
            results.append([np.array(o) for o in (out if isinstance(out, list) else [out])])
        values = {v.name: v.value.copy() for v in step.variables}
    return _plan(step), results, values


def _assert_identical(a, b):
    (_, outs_a, vars_a), (_, outs_b, vars_b) = a, b
    assert len(outs_a) == len(outs_b)
    for i, (xs, ys) in enumerate(zip(outs_a, outs_b)):
        for j, (x, y) in enumerate(zip(xs, ys)):
            assert x.dtype == y.dtype and np.array_equal(x, y, equal_nan=True), f"step {i} output {j}"
    assert vars_a.keys() == vars_b.keys()
    for key in vars_a:
        assert np.array_equal(vars_a[key], vars_b[key], equal_nan=True), key


@pytest.mark.parametrize("name", list(WORKLOADS))
def test_workload_matches_python_driver(name, monkeypatch):
    with_driver = _train(WORKLOADS[name], True, monkeypatch)
    without = _train(WORKLOADS[name], False, monkeypatch)
    assert with_driver[0].driver is not None and with_driver[0].stats()["driver"] == "njit"
    assert without[0].driver is None and without[0].stats()["driver"] == "python"
    _assert_identical(with_driver, without)


def test_stacked_states_are_copied_from_the_arena_in_one_call(monkeypatch):
    """An unrolled RNN stacks its states for the weight gradient: the pieces that are
    arena buffers go through one concat_runs call, the initial state (a constant)
    through concat_piece; the same values as the Python driver's."""
    build = lambda: workloads.rnn(batch=2, steps=6)     # noqa: E731
    with_driver = _train(build, True, monkeypatch)
    source = with_driver[0].driver.source
    assert "_lib.concat_runs" in source
    _assert_identical(with_driver, _train(build, False, monkeypatch))


def test_concatenate_of_arena_runs_and_a_constant_matches_the_reference():
    value = np.arange(6, dtype=np.float32).reshape(2, 3) / 5
    x = gc.placeholder((2, 3), name="x")
    pieces = [gc.constant(np.ones((2, 3), np.float32)), x * 2.0, x + 1.0, gc.exp(x)]
    stacked = gc.concatenate(pieces, axis=1) * 3.0
    step = gc.compile([stacked], inputs=[x], device="cpu")
    (got,) = step(value)
    source = _plan(step).driver.source
    assert "_lib.concat_runs" in source and "_lib.concat_piece(" in source
    (expected,) = gc.compile([stacked], inputs=[x], device="reference")(value)
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def _random_graph():
    x = gc.placeholder((None, 16), name="x")
    w = gc.variable(np.linspace(-1, 1, 16 * 4, dtype=np.float32).reshape(16, 4), name="w")
    h = gc.relu(x @ w) + gc.argmax(x, axis=1).astype("float32")[:, None]
    loss = gc.sum(h * h)
    (g,) = gc.grad(loss, [w])
    feeds = [np.arange(2 * 16, dtype=np.float32).reshape(2, 16) / 7]
    return workloads.Workload("argmax", [x], feeds, [loss, h], [w], {w: w - 0.01 * g})


def test_the_step_is_a_program_of_kernel_calls_through_few_thunks(monkeypatch):
    """W3's step (at a reduced size) is data, not a function compiled per graph
    (runtime/cpu/step_program.py): a call per loop kernel (two for one with a tail) and
    per library op, in schedule order, each through the thunk of its signature,
    which the unrolled steps' calls share."""
    plan = _train(WORKLOADS["W3 rnn"], True, monkeypatch, steps=1)[0]
    calls = plan.driver.calls
    expected = []
    for kernel in plan.fusion.kernels:
        if kernel.library is not None:
            expected.append("_lib")
        if kernel in plan.loops:
            expected += [plan.loops[kernel].name] * (2 if plan.loops[kernel].tail else 1)
    assert [c.function.split(".")[0] for c in calls] == expected
    program = plan.step_program
    calls_at, count = program[5], program[4]
    thunks = set(program[calls_at:calls_at + RECORD * count:RECORD])
    assert count == len(calls) and len(thunks) <= 12 < count
    assert not hasattr(plan.module, "step")         # nothing compiled per graph


def test_the_step_takes_variables_and_statics_by_address():
    """Each array argument cost Numba an unboxing and reference counting (ResNet-14's
    170 made its step compile in 6.5 s instead of 2): the step is given the arena,
    one array of addresses, the feeds and err. A variable assigned a new array between
    calls is read and updated at its new address."""
    x = gc.placeholder((4, 3), name="x")
    w = gc.variable(np.ones((3, 2), np.float32), name="w")
    b = gc.variable(np.zeros(2, np.float32), name="b")
    loss = gc.sum(gc.tanh(x @ w + b))
    gw, gb = gc.grad(loss, [w, b])
    step = gc.compile([loss], inputs=[x], updates={w: w - 0.1 * gw, b: b - 0.1 * gb},
                      device="cpu")
    feed = np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 3)
    step(feed)
    driver = _plan(step).driver
    assert driver.bases == ["arena", *[f"const{i}" for i in range(len(driver.statics))],
                            "var0", "var1", "err", "feed0"]
    w.assign(np.full((3, 2), 0.5, np.float32))     # a new array, at another address
    state, bias = w.node.attrs["state"], b.value
    new_array = state.value
    (got,) = step(feed)
    z = np.tanh(feed @ np.full((3, 2), 0.5) + bias)
    expected_w = 0.5 - 0.1 * feed.T @ (1 - z * z)
    np.testing.assert_allclose(got, z.sum(), rtol=1e-5)
    assert state.value is new_array                     # updated in place, at its address
    np.testing.assert_allclose(w.value, expected_w, rtol=1e-5)


def test_fallback_op_keeps_the_python_driver(monkeypatch):
    """argmax runs through NumPy's reference: no njit driver, same results."""
    with_flag = _train(_random_graph, True, monkeypatch)
    without = _train(_random_graph, False, monkeypatch)
    assert with_flag[0].driver is None
    _assert_identical(with_flag, without)


def test_bad_label_raises_and_keeps_variables(monkeypatch):
    """An out-of-range one_hot label stops the njit step with the Python driver's error,
    before any variable is written; a good batch still trains afterwards."""
    monkeypatch.setattr(backend, "NJIT_DRIVER", True)
    work = workloads.mlp(batch=8)
    step = work.compile(device="cpu")
    step(*work.feeds)
    assert _plan(step).driver is not None
    before = {v.name: v.value.copy() for v in step.variables}
    x, y = work.feeds
    bad = y.copy()
    bad[3] = 10
    with pytest.raises(gc.GraphcError, match="one_hot"):
        step(x, bad)
    for v in step.variables:
        assert np.array_equal(v.value, before[v.name]), v.name
    step(x, y)
    assert any(not np.array_equal(v.value, before[v.name]) for v in step.variables)
