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
equals the state's.
"""
import weakref

import numpy as np

from graphc.runtime.cuda.device import copy_in, to_device, to_host


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
        self.version = state.version        # the state's version this copy holds

    def fetch(self):
        """The device value as a host array (one device-to-host copy)."""
        value = to_host(self.array, "variable").reshape(self.shape)
        state = self.state()
        if state is not None:
            self.version = state.version
        return value


_COPIES = weakref.WeakKeyDictionary()      # VariableState -> DeviceVariable


def device_variable(cuda, state):
    """The device copy of `state`, current (uploaded only if the host changed it)."""
    copy = _COPIES.get(state)
    if copy is None:
        value = np.ascontiguousarray(state.value)
        copy = _COPIES[state] = DeviceVariable(state, to_device(cuda, value.reshape(-1),
                                                                "variable"))
    elif state.device is copy:
        copy.version = state.version
    elif copy.version != state.version:
        value = state.value             # (fetches from another holder, if one has it)
        copy_in(copy.array, value.reshape(-1), "variable")
        copy.version = state.version
    return copy


def after_write(copy, fetch_now):
    """What a plan returns for a variable it wrote on the device: the DeviceVariable
    (the host fetches it when it reads it), or with `fetch_now` its value on the host."""
    return copy.fetch() if fetch_now else copy
