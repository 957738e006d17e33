"""Device memory of the CUDA backend: the arena, and the variables' device copies.

Arena: one `cuda.device_array` of bytes laid out by passes/memplan.py; each
buffer is a flat typed view of it (`Arena.view`).

Variables live on the device between calls. Each variable's state
(graphc.ops.source.VariableState) has one `DeviceVariable`, shared by every
CUDA plan that reads it (a training step and an evaluation executable see the
same device copy). A plan reads it through `current(state)`, which uploads
the host value only when the host holds a value the device copy has not seen;
after a step the plan writes the new value into the device copy and hands the
DeviceVariable back to the executable in place of a host array.

How the host learns the new value (graphc/ops/source.py):
`VariableState.keep_on_device(copy)` records that the newest value is on the
device (`state.device = copy`, `state.version += 1`), and reading
`state.value` then calls `copy.fetch()` once. `state.version` counts every
change of the value (assigning, and an in-place write by the CPU backend), so
a device copy is current while `state.device is copy` or its recorded version
equals the state's. Without that interface (`RESIDENT` False) the plan falls
back to downloading every updated variable each step (correct, not free) and
to comparing host values with the copy it last saw.
"""
import weakref

import numpy as np

from graphc.ops.source import VariableState
from graphc.runtime.cuda.device import copy_in, to_device, to_host

# graphc's VariableState keeps values on a device (the interface above)
RESIDENT = hasattr(VariableState, "keep_on_device")


class Arena:
    def __init__(self, cuda, nbytes):
        self.nbytes = int(nbytes)
        self.array = cuda.device_array(max(self.nbytes, 1), np.uint8)

    def view(self, offset, nbytes, dtype):
        """The flat `dtype` view of arena bytes [offset, offset + nbytes)."""
        return self.array[offset:offset + nbytes].view(np.dtype(dtype))


class DeviceVariable:
    """One variable's device copy (flat). `fetch()` is what the host calls to read it."""

    def __init__(self, state, array):
        self.state = weakref.ref(state)
        self.array = array                  # flat device array of the variable's dtype
        self.shape, self.dtype = state.value.shape, state.value.dtype
        self.version = None                 # the state's version this copy holds
        self.seen = None                    # without RESIDENT: a host copy of what it holds

    def fetch(self):
        """The device value as a host array (one device-to-host copy)."""
        value = to_host(self.array, "variable").reshape(self.shape)
        state = self.state()
        if state is not None:
            self.version = getattr(state, "version", None)
        return value


_COPIES = weakref.WeakKeyDictionary()      # VariableState -> DeviceVariable


def device_variable(cuda, state):
    """The device copy of `state`, current (uploaded only if the host changed it)."""
    copy = _COPIES.get(state)
    if copy is None:
        value = np.ascontiguousarray(state.value)
        copy = DeviceVariable(state, to_device(cuda, value.reshape(-1), "variable"))
        _mark_seen(copy, state, value)
        _COPIES[state] = copy
        return copy
    if RESIDENT:
        if getattr(state, "device", None) is copy:
            copy.version = state.version
        elif copy.version != state.version:
            value = state.value         # (fetches from another holder, if one has it)
            copy_in(copy.array, value.reshape(-1), "variable")
            copy.version = state.version
    else:
        value = state.value
        if copy.seen is None or value.shape != copy.seen.shape or \
                not np.array_equal(value, copy.seen, equal_nan=True):
            copy_in(copy.array, value.reshape(-1), "variable")
            _mark_seen(copy, state, value)
    return copy


def _mark_seen(copy, state, value):
    if RESIDENT:
        copy.version = state.version
    else:
        copy.seen = np.array(value, copy=True)


def after_write(copy, fetch_now):
    """What a plan returns for a variable it wrote on the device: the DeviceVariable
    (RESIDENT) or, without the interface, the new value fetched to the host."""
    if RESIDENT and not fetch_now:
        return copy
    value = copy.fetch()
    copy.seen = np.array(value, copy=True)
    return value
