"""runtime/cpu/step_callees.py: the kernels a step calls, and their argument types,
found without compiling, must be exactly what typing the step compiles (the
record `save_callees` writes after a real compile). The compile helper compiles
this list; a wrong entry would be compiled for nothing, a missing one left to
the step."""
import pickle

import numpy as np
import pytest

import graphc as gc
from graphc.runtime.cpu import native_call, precompile
from graphc.runtime.cpu.step_callees import Typed, step_callees
from helpers import load_workloads, small_workloads
from numba import types

workloads = load_workloads()


@pytest.fixture(autouse=True)
def folder(tmp_path, monkeypatch):
    """An empty cache folder: every step here is a new module."""
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path))


def _slices_and_concat():
    x = gc.placeholder((4, 8), name="x")
    w = gc.variable(np.linspace(-1, 1, 32, dtype=np.float32).reshape(4, 8), name="w")
    y = x * w
    parts = gc.concatenate([y[:, 1:5], gc.exp(y[:, ::3]), gc.constant(np.ones((4, 2), "float32"))],
                           axis=1)
    loss = gc.sum(parts * parts)
    (g,) = gc.grad(loss, [w])
    feeds = [np.arange(32, dtype=np.float32).reshape(4, 8) / 9]
    return workloads.Workload("slices", [x], feeds, [loss], [w], {w: w - 0.1 * g})


def _dropout():
    gc.manual_seed(3)
    x = gc.placeholder((8, 16), name="x")
    w = gc.variable(np.linspace(-1, 1, 64, dtype=np.float32).reshape(16, 4), name="w")
    loss = gc.sum(gc.nn.functional.dropout(gc.relu(x @ w), p=0.3))
    (g,) = gc.grad(loss, [w])
    return workloads.Workload("dropout", [x], [np.ones((8, 16), np.float32)], [loss], [w],
                              {w: w - 0.1 * g})


GRAPHS = {**small_workloads(),      # (W3: take and concatenate)
          "slices with steps, concatenate": _slices_and_concat,
          "dropout (random draws)": _dropout}


def _predicted_and_recorded(build, monkeypatch, **options):
    """What the plan asked the helper to compile, and what the step's compile recorded,
    as sets of (module name, function name, argument types)."""
    asked = []
    monkeypatch.setattr(precompile, "start", lambda path, callees: asked.append(callees))
    with gc.Graph("callees"):
        work = build()
        step = work.compile(device="cpu", **options)
        step(*work.feeds)
    (plan,) = step._plans.values()
    assert plan.driver is not None and len(asked) == 1
    with open(native_call.callees_path(plan.module), "rb") as file:
        _, record = pickle.load(file)
    predicted = [(k.py_func.__module__, k.py_func.__name__, argtypes) for k, argtypes in asked[0]]
    assert len(predicted) == len(set(predicted))            # each callee once
    return set(predicted), set(record.values())


@pytest.mark.parametrize("name", list(GRAPHS))
def test_predicted_callees_are_what_the_step_compiles(name, monkeypatch):
    predicted, recorded = _predicted_and_recorded(GRAPHS[name], monkeypatch)
    assert predicted == recorded
    assert any(module.endswith(".library") for module, _, _ in recorded) or name == "W4 fusion"


def test_check_numerics_steps_are_predicted_too(monkeypatch):
    predicted, recorded = _predicted_and_recorded(GRAPHS["W1 mlp"], monkeypatch,
                                                  check_numerics=True)
    assert predicted == recorded
    assert any(function.startswith("nonfinite") for _, function, _ in recorded)


def test_a_construct_the_stand_ins_do_not_model_ends_the_list_there():
    class Module:
        """A step that calls one kernel, then indexes with a float (untypable)."""

    def kernel(x):
        return 0

    kernel.py_func = kernel

    def step(arena, err):
        _k(kernel, "s", "$0", arena)            # noqa: F821 (bound by step_callees)
        arena[0.5]
        _k(kernel, "s", "$0", err)              # noqa: F821
    step.py_func = step
    Module.step = step
    arena = types.Array(types.uint8, 1, "C")
    found = step_callees(Module, [arena, types.Array(types.int64, 1, "C")])
    assert found == [(kernel, (arena,))]


def test_every_test_of_a_value_takes_the_path_of_a_step_that_succeeds():
    code = Typed(types.int64)
    assert not (code != 0) and not code
