"""Whether the CUDA tests run on a GPU, under the simulator, or not at all (and why).

Imported first by tests/cuda/conftest.py, while pytest collects: without a GPU it
turns Numba's CUDA simulator on before anything imports numba.cuda."""
import ctypes
import os
import sys


def _has_gpu():
    """A CUDA driver that sees a device (asked through libcuda, not numba.cuda)."""
    try:
        driver = ctypes.CDLL("libcuda.so.1")
        count = ctypes.c_int(0)
        return driver.cuInit(0) == 0 and driver.cuDeviceGetCount(ctypes.byref(count)) == 0 \
            and count.value > 0
    except OSError:
        return False


GPU = _has_gpu()


def _load():
    """(numba.cuda or None, why not)."""
    if not GPU:
        if "numba.cuda" in sys.modules and not os.environ.get("NUMBA_ENABLE_CUDASIM"):
            return None, ("numba.cuda was imported without the simulator before tests/cuda "
                          "could enable it; run: NUMBA_ENABLE_CUDASIM=1 python -m pytest tests/cuda")
        os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
        from numba.core import config
        config.reload_config()
    try:
        from numba import cuda
    except Exception as exc:     # numba-cuda not installed, or no CUDA bindings
        return None, f"numba.cuda does not import ({exc}); pip install 'graphc[cuda]'"
    if not cuda.is_available():
        return None, "numba.cuda sees no GPU and the simulator is off"
    return cuda, None


CUDA, WHY_NOT = _load()
SIMULATOR = CUDA is not None and not GPU
