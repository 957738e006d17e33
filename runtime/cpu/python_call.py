"""Calls of a generated loop kernel from Python: one-call step programs.

The loop kernels are compiled with `no_cpython_wrapper=True`: the step program
calls them through thunks (runtime/cpu/step_program.py), and building,
optimizing and compiling a wrapper nothing calls was about a fifth of each
kernel's compile (ResNet-14's cold first step, compile helper off: 11.6-12.3 s
without the wrappers, 14.9-15.2 s with them). The Python driver and `profile()`
call them the way the step does: `PythonCall(dispatcher)(*arguments, chunks=n)`
lays out a program of one call whose views are the argument arrays themselves,
given by address, and runs it; with `chunks`, the kernel runs over [0, chunks)
on every thread, as in the step. A program is kept for each signature of the
arguments (an array's dtype, shape and strides, a number's value: an int is an
int64 argument, a float a float64 one).
"""
import numpy as np

from graphc.runtime.cpu.step_program import Call, build_program, run_program
from graphc.runtime.cpu.step_views import View, layout_of

_NO_ARENA = np.zeros(1, np.uint8)


def _signature(argument):
    if isinstance(argument, np.ndarray):     # (dtype.name would cost 2 us an array)
        return (argument.dtype, argument.shape, argument.strides)
    return (type(argument).__name__, argument)


class PythonCall:
    """A loop kernel callable from Python with arrays and integers."""

    def __init__(self, dispatcher):
        self.dispatcher = dispatcher
        self.programs = {}      # (chunks, argument signatures) -> (program, addresses)
        self.err = np.zeros(1, np.int64)

    def __call__(self, *arguments, chunks=0):
        key = (chunks, tuple(_signature(a) for a in arguments))
        if key not in self.programs:
            self.programs[key] = self._program(arguments, chunks)
        program, addresses = self.programs[key]
        addresses[:] = [a.ctypes.data for a in arguments if isinstance(a, np.ndarray)]
        run_program(program, _NO_ARENA, addresses, self.err)

    def _program(self, arguments, chunks):
        views, bases = [], []
        for argument in arguments:
            if isinstance(argument, np.ndarray):
                name = f"array{len(bases)}"
                bases.append(name)
                layout = layout_of(argument.shape, argument.strides, argument.itemsize)
                views.append(View(name, 0, argument.dtype.name, argument.shape or (1,),
                                  argument.strides or (argument.itemsize,), layout))
            elif isinstance(argument, (float, np.floating)):
                views.append(float(argument))
            else:
                views.append(int(argument))
        call = Call(self.dispatcher, tuple(views), chunks)
        program = build_program([call], None, ["arena", *bases, "err"])
        return program, np.zeros(len(bases), np.int64)
