"""numba.cuda for the CUDA backend: the import, the device-or-simulator check,
launch sizes, and every copy between host and device (each one counted).

Without a GPU, Numba's CUDA simulator runs the same kernels as Python threads
(NUMBA_ENABLE_CUDASIM=1, read when numba is first imported): slow, so it is
for tests at small shapes, with small blocks (`LIMITS`).

Copies go through `to_device`, `copy_in`, `copy_on_device` and `to_host` only,
each tagged with what it moves (feed, output, variable, constant, table, error),
so a test can assert that a training step moves no parameter:
`TRANSFERS[("h2d", "variable")]`.
Kernels are launched with device arrays only (a host array passed to a kernel
would be copied behind the runtime's back: `check_launch_args` refuses it).
"""
import collections
import os

import numpy as np

from graphc.errors import CompileError

INSTALL = "pip install 'graphc[cuda]' (numba-cuda)"
SIMULATOR = ("to run the CUDA backend without a GPU, use Numba's CUDA simulator: set "
             "NUMBA_ENABLE_CUDASIM=1 in the environment before Python starts (it runs the "
             "kernels as Python, for tests at small shapes)")


def load(loc=None):
    """numba.cuda, or a CompileError saying why device="cuda" cannot run here."""
    try:
        from numba import cuda
    except Exception as exc:     # numba-cuda missing or broken (no CUDA bindings, ...)
        raise CompileError(f'device="cuda" needs numba.cuda, which does not import '
                           f"({type(exc).__name__}: {exc}); {INSTALL}; or {SIMULATOR}",
                           op="compile", loc=loc) from None
    if not cuda.is_available():
        raise CompileError('device="cuda": no CUDA GPU or driver found (numba.cuda.is_available() '
                           f"is False); {SIMULATOR}", op="compile", loc=loc)
    return cuda


def simulated():
    """True when numba.cuda (as imported in this process) is Numba's CUDA simulator."""
    from numba import cuda
    return cuda.is_available.__module__.endswith("simulator_init")


class Limits:
    """Launch sizes. threads: the most threads of a loop kernel's block (a power of two);
    blocks: the most blocks of a grid (grid-stride loops cover the rest); tile: the
    matmul block's side in threads (runtime/cuda/matmul.py); gemm_blocks: the blocks a
    matmul grid should have at least, else it splits its sum over k (2 per SM of the
    GPU)."""

    def __init__(self, threads, blocks, tile, gemm_blocks):
        self.threads, self.blocks, self.tile = threads, blocks, tile
        self.gemm_blocks = gemm_blocks

    def __repr__(self):
        return (f"Limits(threads={self.threads}, blocks={self.blocks}, tile={self.tile}, "
                f"gemm_blocks={self.gemm_blocks})")


def _default_limits():
    if simulated():     # every simulated thread is a Python thread: keep blocks tiny, but
        # grids of more than one block (grid strides) and matmuls that split k are tested
        return Limits(threads=16, blocks=2, tile=4, gemm_blocks=4)
    env = os.environ.get
    return Limits(threads=int(env("GRAPHC_CUDA_THREADS", 256)),
                  blocks=int(env("GRAPHC_CUDA_BLOCKS", 4096)), tile=16,
                  gemm_blocks=int(env("GRAPHC_CUDA_GEMM_BLOCKS", 0)) or _two_per_sm())


def _two_per_sm():
    """Two blocks per multiprocessor of the current GPU; 264 (an H100's or H200's 132
    SMs) where there is none to ask (compiling PTX without a driver)."""
    try:
        from numba import cuda
        return 2 * int(cuda.get_current_device().MULTIPROCESSOR_COUNT)
    except Exception:       # no driver or no device
        return 264


LIMITS = _default_limits()


def _lock_simulator_shared_arrays():
    """The simulator gives a block's threads one shared array per source line, made by
    the first thread that asks, with no lock: two threads asking at once can each make
    one, and the block then shares nothing (seen: a wrong weight in 1 W1 run of ~10).
    Same rule (file and line of the caller), under a lock."""
    import sys
    import threading

    from numba.core import types
    from numba.cuda.simulator import kernelapi
    from numba.np.numpy_support import as_dtype
    shared = kernelapi.FakeCUDAShared
    if getattr(shared, "graphc_locked", False):
        return
    original, lock = shared.array, threading.Lock()

    def array(self, shape, dtype, alignment=None):
        if shape == 0 or alignment is not None:        # dynamic shared memory; an error
            return original(self, shape, dtype, alignment)
        caller = sys._getframe(1)
        key = (caller.f_code.co_filename, caller.f_lineno)
        with lock:
            found = self._allocations.get(key)
            if found is None:
                dtype = as_dtype(dtype) if isinstance(dtype, types.Type) else dtype
                found = self._allocations[key] = np.empty(shape, dtype)
        return found

    shared.array, shared.graphc_locked = array, True


if simulated():
    _lock_simulator_shared_arrays()

# (direction, kind) -> number of copies; (direction, kind, "bytes") -> bytes
TRANSFERS = collections.Counter()


def _count(direction, kind, nbytes):
    TRANSFERS[direction, kind] += 1
    TRANSFERS[direction, kind, "bytes"] += int(nbytes)


def to_device(cuda, array, kind):
    """A new device array holding `array` (one host-to-device copy)."""
    array = np.ascontiguousarray(array)
    _count("h2d", kind, array.nbytes)
    return cuda.to_device(array)


def copy_in(device_array, array, kind):
    """Overwrite `device_array` with `array` (one host-to-device copy)."""
    array = np.ascontiguousarray(array).reshape(device_array.shape)
    _count("h2d", kind, array.nbytes)
    device_array.copy_to_device(array)


def copy_on_device(device_array, source, kind):
    """Overwrite `device_array` with the device array `source` (no copy over the bus)."""
    _count("d2d", kind, source.size * source.dtype.itemsize)
    device_array.copy_to_device(source)


def to_host(device_array, kind):
    """A host copy of `device_array` (one device-to-host copy; waits for the kernels)."""
    _count("d2h", kind, device_array.size * device_array.dtype.itemsize)
    return device_array.copy_to_host()


def check_launch_args(args, what):
    """Refuse a host array among a kernel's arguments (numba.cuda would copy it each launch)."""
    for arg in args:
        if isinstance(arg, np.ndarray):
            raise AssertionError(f"{what}: a host array of shape {arg.shape} passed to a kernel")


def grid_for(work, threads):
    """Blocks for `work` items at `threads` per block (grid-stride loops cover the rest)."""
    return max(1, min(LIMITS.blocks, -(-int(work) // threads)))
