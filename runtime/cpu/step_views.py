"""The arguments of the step's kernel calls, fixed before anything runs.

Every array a kernel of the step reads or writes is a view of an array the step
is given (the arena, a feed, a variable's storage, a constant, err) at an
offset, shape and strides that the memory plan fixes at compile time. A `View`
names that array (its `base`) and the rest; the step program
(runtime/cpu/step_program.py) writes each view's shape and strides once and its
data address (the base's, plus the offset) at each run, and the thunk of the
kernel's signature (runtime/cpu/thunks.py) hands the kernel an ordinary array.
The step's listing (the generated module's last lines) writes a view as

    @arena+1024:float32:64,128:512,4:C   the arena seen from byte 1024 as a
                                         (64, 128) float32 array of strides
                                         (512, 4), typed "C"
"""
from dataclasses import dataclass, replace

import numpy as np
from numba import from_dtype, types

from graphc.ops.shape import c_strides


def layout_of(shape, strides, itemsize):
    """"C" or "F" if an array of this shape and strides is contiguous that way (as
    NumPy decides: axes of length 1 do not count), else "A"."""
    def contiguous(order):
        step = itemsize
        for dim, stride in order:
            if dim != 1 and stride != step:
                return False
            step *= dim
        return True
    axes = list(zip(shape, strides))
    if contiguous(axes[::-1]):
        return "C"
    return "F" if contiguous(axes) else "A"


@dataclass(frozen=True)
class View:
    """bases[base] (a name in the step, or a position in the call) seen from byte
    `offset` as a `dtype` array of this shape and byte strides, typed `layout`."""
    base: object
    offset: int
    dtype: str
    shape: tuple
    strides: tuple
    layout: str

    @classmethod
    def contiguous(cls, base, offset, dtype, shape):
        dtype = np.dtype(dtype)
        shape = tuple(int(d) for d in shape) or (1,)
        return cls(base, int(offset), dtype.name, shape, c_strides(shape, dtype.itemsize), "C")

    @property
    def itemsize(self):
        return np.dtype(self.dtype).itemsize

    def reshaped(self, shape):
        assert self.layout == "C", self
        return View.contiguous(self.base, self.offset, self.dtype, shape)

    def flat(self, start=0):
        """The 1-D view, from element `start` on."""
        size = int(np.prod(self.shape))
        return View.contiguous(self.base, self.offset + start * self.itemsize, self.dtype,
                               (size - start,))

    def transposed(self):
        assert self.layout == "C" and len(self.shape) == 2, self
        return replace(self, shape=self.shape[::-1], strides=self.strides[::-1], layout="F")

    def any_layout(self):
        """Typed "A": one compile of a kernel for C and F operands alike."""
        return replace(self, layout="A")

    def sliced(self, index):
        """self[start:stop:step, ...] for one (start, stop, step) per axis, step > 0."""
        offset, shape, strides = self.offset, [], []
        for dim, stride, triple in zip(self.shape, self.strides, index):
            start, stop, step = slice(*triple).indices(dim)
            assert step > 0, triple
            offset += start * stride
            shape.append(len(range(start, stop, step)))
            strides.append(stride * step)
        layout = layout_of(shape, strides, self.itemsize)
        return replace(self, offset=offset, shape=tuple(shape), strides=tuple(strides),
                       layout=layout)

    def text(self):
        dims = ",".join(map(str, self.shape))
        strides = ",".join(map(str, self.strides))
        return f"@{self.base}+{self.offset}:{self.dtype}:{dims}:{strides}:{self.layout}"


def argument_type(argument):
    """The Numba type a kernel sees for one argument of a step's call."""
    if isinstance(argument, View):
        return types.Array(from_dtype(np.dtype(argument.dtype)), len(argument.shape),
                           argument.layout)
    if isinstance(argument, tuple):
        return types.UniTuple(argument_type(argument[0]), len(argument))
    return types.float64 if isinstance(argument, (float, np.floating)) else types.int64
