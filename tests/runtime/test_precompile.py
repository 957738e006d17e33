"""The compile helper (runtime/cpu/precompile.py): a second process compiles a cold
step's loop kernels, and the step loads them from Numba's cache instead of
compiling them: so the helper must compile each for exactly the types the step
passes. Every test uses its own empty cache folder."""
import json
import subprocess
import sys

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
    work = workloads.mlp(batch=8)
    step, plan = _built_not_run(work, monkeypatch, helper=False)
    kernels = precompile.kernel_signatures(plan.loops.values())
    assert len(kernels) >= precompile.MIN_KERNELS
    request = json.dumps({"module": plan.module_path, "kernels": kernels})
    subprocess.run([sys.executable, "-m", "graphc.runtime.cpu.precompile"],
                   input=request.encode(), check=True, timeout=300)
    step(*work.feeds)
    for name, _ in kernels:
        stats = getattr(plan.module, name).stats
        assert sum(stats.cache_hits.values()) == 1, name
        assert not sum(stats.cache_misses.values()), name


def test_a_new_module_with_enough_kernels_starts_the_helper_and_the_first_step_stops_it(
        folder, monkeypatch):
    work = workloads.mlp(batch=8)
    step, plan = _built_not_run(work, monkeypatch, helper=True)
    helper = plan.helper
    assert helper is not None
    step(*work.feeds)
    assert plan.helper is None and helper.poll() is not None     # stopped and reaped


@pytest.mark.parametrize("why", ["turned off", "few kernels"])
def test_no_helper_when_turned_off_or_for_a_small_step(folder, monkeypatch, why):
    work = workloads.mlp(batch=8) if why == "turned off" else workloads.fusion(n=64)
    _, plan = _built_not_run(work, monkeypatch, helper=why != "turned off")
    assert plan.helper is None
