"""Each test builds in a fresh graph, so tests never see each other's nodes."""
import os
import sys

import pytest

import graphc as gc

sys.path.insert(0, os.path.dirname(__file__))   # for `import helpers`


@pytest.fixture(autouse=True)
def fresh_graph():
    with gc.Graph("test") as graph:
        yield graph
