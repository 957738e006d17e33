"""Each test builds in a fresh graph, so tests never see each other's nodes."""
import os
import sys

import pytest
from hypothesis import settings

import graphc as gc

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
