"""The compile helper (runtime/cpu/precompile.py): a second process compiles a cold
step's kernels (loop and library), and the step loads them from the caches
instead of compiling them: so the helper must compile each for exactly the types
the step passes (the step program's Calls give them: runtime/cpu/step_program.py). Every test
uses its own empty cache folder."""
import numpy as np
import pytest

from graphc.runtime.cpu import precompile
from helpers import load_workloads

workloads = load_workloads()


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path))
    return tmp_path


def _built_not_run(work, monkeypatch, helper):
    """The executable and its plan, compiled for the feeds' shapes but not yet run."""
    monkeypatch.setenv("GRAPHC_COMPILE_HELPER", "1" if helper else "0")
    step = work.compile(device="cpu")
    return step, step._plan(tuple(np.shape(f) for f in work.feeds))


def test_kernels_the_helper_compiled_are_loaded_by_the_step_not_compiled(folder, monkeypatch):
    """The helper runs to its end before the step's program is built: every callee the step
    compiles anew in this process comes from the helper's cache entries."""
    work = workloads.mlp(batch=8)
    step, plan = _built_not_run(work, monkeypatch, helper=True)
    start, asked, before = precompile.start, [], {}

    def start_and_finish(path, callees):
        asked.extend(callees)
        before.update({(k, argtypes): argtypes in k.overloads for k, argtypes in callees})
        helper = start(path, callees)
        assert helper is not None and helper.wait(timeout=300) == 0
        return helper

    monkeypatch.setattr(precompile, "start", start_and_finish)
    step(*work.feeds)
    new = [(k, argtypes) for k, argtypes in asked if not before[k, argtypes]]
    assert len(asked) >= precompile.MIN_KERNELS
    assert any(k.py_func.__module__ == plan.module.__name__ for k, _ in new)    # loop kernels
    for kernel, argtypes in new:
        assert kernel.stats.cache_hits[argtypes] >= 1, kernel.py_func.__name__
        assert not kernel.stats.cache_misses[argtypes], kernel.py_func.__name__


def test_a_new_module_with_enough_kernels_starts_the_helper_and_the_first_step_stops_it(
        folder, monkeypatch):
    work = workloads.mlp(batch=8)
    step, plan = _built_not_run(work, monkeypatch, helper=True)
    started, start = [], precompile.start
    monkeypatch.setattr(precompile, "start", lambda *a: started.append(start(*a)) or started[-1])
    step(*work.feeds)
    (helper,) = started
    assert helper is not None and plan.helper is None
    assert helper.poll() is not None        # stopped and reaped


@pytest.mark.parametrize("why", ["turned off", "few kernels"])
def test_no_helper_when_turned_off_or_for_a_small_step(folder, monkeypatch, why):
    work = workloads.mlp(batch=8) if why == "turned off" else workloads.fusion(n=64)
    step, _ = _built_not_run(work, monkeypatch, helper=why != "turned off")
    started, start = [], precompile.start
    monkeypatch.setattr(precompile, "start", lambda *a: started.append(start(*a)) or started[-1])
    step(*work.feeds)
    assert started == [None]
