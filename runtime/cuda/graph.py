"""A step's kernel launches, recorded once as a CUDA graph and replayed each call.

A plan's launches are the same on every call: each argument is a view of the
arena, a feed buffer, a variable's device copy or a table, all allocated when
the plan is built (variables are uploaded into their copies, never
reallocated). So the plan records the launch sequence once by stream capture
and later calls launch the recording: one driver call per step instead of one
numba.cuda launch per kernel, which costs microseconds of Python each (W1's
step launches 18 kernels, W3's 364).

Order: the plan's stream is a blocking stream, so the synchronous feed copies
before it and the output copies after it (numba.cuda's legacy default stream)
are ordered with the graph's kernels, as with launches.

Capture needs the CUDA driver API through NVIDIA's Python bindings
(cuda-bindings, which numba-cuda uses). Without them, under the simulator, or
with `GRAPHC_CUDA_GRAPHS=0`, the plan launches kernel by kernel
(`wanted()`); so does a plan whose recording failed, after one warning. The
results are the same either way.
"""
import os


class CaptureFailed(RuntimeError):
    """The driver refused a step of recording or replaying a graph."""


def wanted(simulated):
    """Whether plans should record their launches (not on the simulator, not when off)."""
    return not simulated and os.environ.get("GRAPHC_CUDA_GRAPHS", "1") != "0"


def driver_api():
    """The CUDA driver API module of NVIDIA's bindings (cuda-bindings, or cuda-python < 12.6)."""
    try:
        from cuda.bindings import driver
    except ImportError:
        from cuda import cuda as driver
    return driver


def stream_handle(stream):
    """A numba.cuda stream's CUstream as an integer."""
    handle = stream.handle
    return int(getattr(handle, "value", handle) or 0)


def _call(driver, name, *args):
    """driver.name(*args), its CUresult checked; the remaining results (one unwrapped)."""
    result = getattr(driver, name)(*args)
    status, rest = result[0], result[1:]
    if int(status) != 0:
        raise CaptureFailed(f"{name} returned {status}")
    return rest[0] if len(rest) == 1 else rest


class StepGraph:
    """An instantiated recording of launches on one stream; `launch()` replays it."""

    def __init__(self, driver, executable, stream):
        self.driver, self.executable, self.stream = driver, executable, stream

    @classmethod
    def record(cls, stream, launches, driver=None):
        """Capture `launches` ([(configured kernel, args)], each configured on `stream`)
        without running them, and instantiate the graph."""
        driver = driver or driver_api()
        handle = driver.CUstream(stream_handle(stream))
        relaxed = driver.CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_RELAXED
        _call(driver, "cuStreamBeginCapture", handle, relaxed)
        try:
            for launch, args in launches:
                launch(*args)
        except BaseException:
            driver.cuStreamEndCapture(handle)      # leave the stream usable; graph dropped
            raise
        graph = _call(driver, "cuStreamEndCapture", handle)
        try:
            executable = _call(driver, "cuGraphInstantiate", graph, 0)
        finally:
            driver.cuGraphDestroy(graph)           # the executable keeps its own copy
        return cls(driver, executable, handle)

    def launch(self):
        _call(self.driver, "cuGraphLaunch", self.executable, self.stream)

    def __del__(self):
        try:
            self.driver.cuGraphExecDestroy(self.executable)
        except Exception:       # interpreter shutdown: the driver may be gone
            pass
