"""Fixtures shared by the viz tests: W1's training step compiled once on cpu."""
import pytest

import graphc as gc
from helpers import load_workloads


class Compiled:
    def __init__(self, step, workload, graph):
        self.step, self.workload, self.graph = step, workload, graph


@pytest.fixture(scope="session")
def w1():
    """W1 (the MLP training step, batch 8) compiled with device="cpu" and called once."""
    with gc.Graph("w1") as graph:
        workload = load_workloads().mlp(batch=8)
        step = workload.compile(device="cpu")
        step(*workload.feeds)
    return Compiled(step, workload, graph)
