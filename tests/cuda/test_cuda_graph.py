"""A CUDA step recorded once as a graph and replayed (runtime/cuda/graph.py).

The simulator has no graphs: there the recording is played by a stand-in that
keeps the captured launches and replays them, which checks what the plan does
around it (when it records, what it replays, what it does when recording
fails). The driver calls themselves are checked against a fake driver API, and
on a GPU the real recording is checked too."""
import types

import numpy as np
import pytest

import graphc as gc
from graphc.runtime.cuda import backend, device, graph

from cuda_env import SIMULATOR
from small_mlp import mlp

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning:numpy")


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path / "cache"))


class ReplayedList:
    """A stand-in graph: `record` keeps the launches (runs none), `launch` runs them all."""
    recorded = []

    def __init__(self, launches):
        self.launches, self.replays = launches, 0

    @classmethod
    def record(cls, stream, launches):
        made = cls(list(launches))
        cls.recorded.append(made)
        return made

    def launch(self):
        self.replays += 1
        for launch, args in self.launches:
            launch(*args)


def train(device_name, steps=4):
    with gc.Graph(device_name):
        workload, feeds = mlp()
        step = workload.compile(device=device_name)
        losses = [float(step(*feeds)[0]) for _ in range(steps)]
        plan = next(iter(step._plans.values())) if device_name == "cuda" else None
        return losses, [np.array(p.value) for p in workload.params], plan


def assert_equal_to_reference(losses, params):
    want_losses, want_params, _ = train("reference")
    np.testing.assert_allclose(losses, want_losses, rtol=1e-5)
    for got, want in zip(params, want_params):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_the_second_call_records_and_later_calls_replay(monkeypatch):
    monkeypatch.setattr(backend, "wanted", lambda simulated: True)
    monkeypatch.setattr(backend, "StepGraph", ReplayedList)
    monkeypatch.setattr(ReplayedList, "recorded", [])
    before = device.TRANSFERS.copy()
    losses, params, plan = train("cuda")
    assert_equal_to_reference(losses, params)
    assert ReplayedList.recorded == [plan.graph]         # recorded once, by this plan
    assert plan.graph.replays == 3                      # calls 2, 3 and 4
    # 21: 3 of them cross_entropy's ignore_index (the count of kept labels, the masked one-hot)
    assert len(plan.graph.launches) == plan.stats()["launches"] == 21
    assert plan.stats()["driver"] == "cuda graph"
    uploads = device.TRANSFERS["h2d", "variable"] - before["h2d", "variable"]
    assert uploads == len(plan.variables) == 12         # weights and velocities, once


def test_a_failed_recording_warns_once_and_launches_kernel_by_kernel(monkeypatch):
    attempts = []

    def refuse(stream, launches):
        attempts.append(len(launches))
        raise graph.CaptureFailed("cuStreamBeginCapture returned CUDA_ERROR_NOT_SUPPORTED")
    monkeypatch.setattr(backend, "wanted", lambda simulated: True)
    monkeypatch.setattr(backend.StepGraph, "record", staticmethod(refuse))
    with pytest.warns(RuntimeWarning, match="CUDA_ERROR_NOT_SUPPORTED.*kernel by kernel"):
        losses, params, plan = train("cuda")
    assert_equal_to_reference(losses, params)
    assert attempts == [21] and plan.graph is None and not plan.record


def test_graphs_are_off_under_the_simulator_and_on_request(monkeypatch):
    monkeypatch.delenv("GRAPHC_CUDA_GRAPHS", raising=False)
    assert graph.wanted(simulated=False) and not graph.wanted(simulated=True)
    monkeypatch.setenv("GRAPHC_CUDA_GRAPHS", "0")
    assert not graph.wanted(simulated=False)


def test_check_numerics_never_records(monkeypatch):
    monkeypatch.setattr(backend, "wanted", lambda simulated: True)
    with gc.Graph("numerics"):
        x = gc.placeholder((3,), name="x")
        step = gc.compile([gc.exp(x) * 2], inputs=[x], device="cuda", check_numerics=True)
        for _ in range(3):
            np.testing.assert_allclose(step(np.ones(3, np.float32))[0], 2 * np.e, rtol=1e-6)
        assert next(iter(step._plans.values())).graph is None


# -- the driver calls, against a fake driver API ---------------------------------------

class FakeDriver:
    """The parts of cuda.bindings.driver that graph.py calls; logs each call."""
    CUstreamCaptureMode = types.SimpleNamespace(CU_STREAM_CAPTURE_MODE_RELAXED="relaxed")

    def __init__(self, refuse=()):
        self.log, self.refuse = [], set(refuse)

    def CUstream(self, value):
        return ("stream", value)

    def __getattr__(self, name):
        if not name.startswith("cu"):
            raise AttributeError(name)
        results = {"cuStreamEndCapture": ("graph",), "cuGraphInstantiate": ("exec",)}

        def call(*args):
            self.log.append((name, *args))
            return (1 if name in self.refuse else 0,) + results.get(name, ())
        return call


def test_record_captures_the_launches_in_order_then_instantiates():
    fake, ran = FakeDriver(), []
    launches = [(lambda *a, k=k: ran.append((k, a)), (k, k + 1)) for k in range(3)]
    recorded = graph.StepGraph.record(types.SimpleNamespace(handle=7), launches, driver=fake)
    assert ran == [(0, (0, 1)), (1, (1, 2)), (2, (2, 3))]
    assert fake.log == [("cuStreamBeginCapture", ("stream", 7), "relaxed"),
                        ("cuStreamEndCapture", ("stream", 7)),
                        ("cuGraphInstantiate", "graph", 0), ("cuGraphDestroy", "graph")]
    recorded.launch()
    recorded.launch()
    assert fake.log[-2:] == [("cuGraphLaunch", "exec", ("stream", 7))] * 2
    del recorded
    assert fake.log[-1] == ("cuGraphExecDestroy", "exec")


def test_a_launch_failing_during_capture_ends_it_and_propagates():
    fake = FakeDriver()

    def broken():
        raise ValueError("bad argument")
    with pytest.raises(ValueError, match="bad argument"):
        graph.StepGraph.record(types.SimpleNamespace(handle=3), [(broken, ())], driver=fake)
    assert [entry[0] for entry in fake.log] == ["cuStreamBeginCapture", "cuStreamEndCapture"]


def test_a_refused_driver_call_names_it():
    fake = FakeDriver(refuse={"cuGraphInstantiate"})
    with pytest.raises(graph.CaptureFailed, match="cuGraphInstantiate returned 1"):
        graph.StepGraph.record(types.SimpleNamespace(handle=3), [], driver=fake)
    assert fake.log[-1] == ("cuGraphDestroy", "graph")      # the graph is not leaked


@pytest.mark.skipif(SIMULATOR, reason="needs a GPU: the simulator has no CUDA graphs")
def test_on_a_gpu_the_step_is_recorded_and_replayed_as_the_reference(monkeypatch):
    monkeypatch.delenv("GRAPHC_CUDA_GRAPHS", raising=False)
    losses, params, plan = train("cuda")
    assert isinstance(plan.graph, graph.StepGraph)
    assert_equal_to_reference(losses, params)
