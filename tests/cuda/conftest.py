"""The CUDA backend's tests: on a real GPU when there is one, else under Numba's
CUDA simulator (NUMBA_ENABLE_CUDASIM=1), at small shapes.

Numba reads NUMBA_ENABLE_CUDASIM when numba is imported, and the other test
folders import numba first in the same pytest process. So this file (loaded
while pytest collects, before any test runs) sets the variable and reloads
Numba's configuration before anything imports numba.cuda; the variable stays
set, because Numba's compiler reloads its configuration on each compile. If
numba.cuda was imported before this runs (a plugin, `-p`), or numba-cuda is
missing, every test here is skipped with the reason, never silently; the
same tests run unchanged on a GPU. Every test here is marked `cuda`
(`pytest -m cuda` runs only them).
"""
import os
import sys

import pytest

from cuda_env import SIMULATOR, WHY_NOT     # first: it sets the simulator up

HERE = os.path.dirname(os.path.abspath(__file__))


def pytest_configure(config):
    config.addinivalue_line("markers", "cuda: a test of the CUDA backend (simulator or GPU)")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if str(item.path).startswith(HERE):
            item.add_marker(pytest.mark.cuda)
            if WHY_NOT:
                item.add_marker(pytest.mark.skip(reason=WHY_NOT))


@pytest.fixture(autouse=True)
def quick_thread_switches():
    """The simulator runs each CUDA thread as a Python thread, and its block manager
    polls them holding the GIL: with Python's default 5 ms switch interval every
    syncthreads costs milliseconds (measured: a 3-step MLP run, 14 s against 3 s)."""
    if not SIMULATOR:
        yield
        return
    before = sys.getswitchinterval()
    sys.setswitchinterval(5e-5)
    try:
        yield
    finally:
        sys.setswitchinterval(before)
