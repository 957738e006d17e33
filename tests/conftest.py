"""Each test builds in a fresh graph, so tests never see each other's nodes.

The default device of the suite is "reference" (the semantics): a test of a
compiling device names it (device="cpu"). `GRAPHC_DEVICE=cpu python -m pytest`
runs every test that does not name a device on the CPU compiler instead.
"""
import os
import sys

os.environ.setdefault("GRAPHC_DEVICE", "reference")

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

import graphc as gc  # noqa: E402

# CI explores the same examples every run (a failure there is reproducible, never a
# coin toss); locally each run draws new ones, so the search keeps widening.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

sys.path.insert(0, os.path.dirname(__file__))   # for `import helpers`


@pytest.fixture(autouse=True)
def fresh_graph():
    with gc.Graph("test") as graph:
        yield graph
