"""The back end: one backend per device, chosen by name.

A backend turns a concrete `Program` (graphc.program) into a plan whose
`run(feeds)` reads the variables' current values and returns (outputs, new
values of the updated variables); it never writes a variable itself: the
executable does that, atomically, once the whole call has succeeded.
"""
import importlib
import os

from graphc.errors import CompileError

# device name -> module defining `BACKEND`
BACKENDS = {
    "reference": "graphc.runtime.reference",
    "cpu": "graphc.runtime.cpu.backend",
    "cuda": "graphc.runtime.cuda.backend",
}
# the device gc.compile uses when none is given; $GRAPHC_DEVICE overrides it
DEFAULT_DEVICE = os.environ.get("GRAPHC_DEVICE", "cpu")


def backend(device=None, loc=None):
    """The backend object for `device` (None: DEFAULT_DEVICE)."""
    device = DEFAULT_DEVICE if device is None else device
    if device not in BACKENDS:
        raise CompileError(f"unknown device {device!r}; available: {', '.join(BACKENDS)}",
                           op="compile", loc=loc)
    return importlib.import_module(BACKENDS[device]).BACKEND
