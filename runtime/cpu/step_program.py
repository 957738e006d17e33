"""The step as a program: its kernel calls as data, run by one njit function compiled
once per runtime, not a function compiled per graph.

The step (runtime/cpu/driver.py) is straight-line: each kernel in schedule order
on views of the step's arrays whose offsets, shapes and strides the memory plan
fixes. `build_program` lays those calls out in one int64 array,

    header     bases, relocations, calls: where each starts and how many
    bases      the data address of each array of the step, written by each run:
               the arena, the addresses array's entries (statics, variables),
               err, the feeds
    relocations (word, base, offset): block word = base's address + offset
    calls      (thunk, chunk count, block, site, check) each
    blocks     each call's kernel address and arguments (runtime/cpu/thunks.py)

and `run_program(program, arena, addresses, err, *feeds)` runs it: it writes the
bases, relocates the views' data addresses, then calls each kernel through the
thunk of its signature (chunks.launch for a loop kernel run in chunks). A call
that can fail stops the step with (site, code), as the rendered check says:
"result", the kernel returned a nonzero code (take's index check, a NaN found
by check_numerics' scan); "err", the kernel set err[0] (a label out of range).
The kernels' own exceptions propagate, as Numba's would.

Before, the step was a generated njit function, one intrinsic call per kernel:
Numba typed, lowered and optimized it for each graph, W3's 217 calls in about
2.3 s of its 3.5 s cold first step, and each later process loaded its cached
code. The program needs the kernels and a thunk per signature, both cached and
shared between graphs.
"""
from dataclasses import dataclass

import numpy as np
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from graphc.runtime.cpu import chunks, library
from graphc.runtime.cpu.loop_kernel import LoopKernel
from graphc.runtime.cpu.numba_cache import load_cached
from graphc.runtime.cpu.step_views import View, argument_type
from graphc.runtime.cpu.thunks import CHUNKED, PLAIN, thunk_address

HEADER = 6          # bases count, bases at, relocations count, at, calls count, at
RECORD = 5          # thunk, chunk count (0: a plain call), block at, site, check
NO_CHECK, CHECK_RESULT, CHECK_ERR = 0, 1, 2
CHECKS = {None: NO_CHECK, "result": CHECK_RESULT, "err": CHECK_ERR}


@dataclass
class Call:
    """One kernel call of the step: `function` (a loop kernel's name in the generated
    module, `_lib.<name>` of runtime/cpu/library.py, or a dispatcher) on `arguments`
    (Views of the step's arrays by name, ints, floats, tuples of Views); with
    `chunks`, a loop kernel over [0, chunks) on every thread; `check` ("result" or
    "err") stops the step with (site, code) when it fails."""
    function: object
    arguments: tuple
    chunks: int = 0
    site: int = 0
    check: str = None

    def kernel(self, module):
        if not isinstance(self.function, str):     # (runtime/cpu/python_call.py's)
            return self.function
        if self.function.startswith("_lib."):
            return getattr(library, self.function[len("_lib."):])
        return getattr(module, self.function)

    def argtypes(self):
        """The kernel's argument types (a chunk kernel's without chunk, start, stop)."""
        return tuple(argument_type(a) for a in self.arguments)

    def compile_types(self):
        """The argument types the kernel is compiled for."""
        argtypes = self.argtypes()
        return chunks.kernel_types(argtypes) if self.chunks else argtypes


def kernels(calls, module):
    """[(kernel dispatcher, argument types)] of `calls`, first call first, each once
    (what the compile helper compiles: runtime/cpu/precompile.py)."""
    found = []
    for call in calls:
        entry = (call.kernel(module), call.compile_types())
        if entry not in found:
            found.append(entry)
    return found


def compiled(dispatcher, argtypes):
    """(address, return type) of `dispatcher`'s native function for `argtypes`, compiled
    (or loaded) now if need be: the kernel's own machine code, called through a thunk,
    not linked into a caller (a plain njit-to-njit call makes Numba link the callee's
    code into the caller and optimize it all again)."""
    argtypes = tuple(argtypes)
    if not isinstance(dispatcher, LoopKernel):     # (a loop kernel has a cache of its own)
        load_cached(dispatcher, argtypes)
    dispatcher.compile(argtypes)
    result = dispatcher.overloads[argtypes]
    address = result.library.get_pointer_to_function(result.fndesc.llvm_func_name)
    return address, result.signature.return_type


def build_program(calls, module, bases):
    """The int64 program of `calls`, whose Views name their arrays by `bases` (the
    step's array names in base order); compiles (or loads) every kernel and thunk."""
    position = {name: k for k, name in enumerate(bases)}
    blocks, relocations, records = [], [], []
    for call in calls:
        dispatcher, compile_types = call.kernel(module), call.compile_types()
        address, restype = compiled(dispatcher, compile_types)
        kind = CHUNKED if call.chunks else PLAIN
        thunk = thunk_address(kind, restype, call.argtypes())
        records.append((thunk, call.chunks, len(blocks), call.site, CHECKS[call.check]))
        blocks.append(address)
        for argument in call.arguments:
            _lay_out(argument, blocks, relocations, position)
    bases_at = HEADER
    relocations_at = bases_at + len(bases)
    calls_at = relocations_at + 3 * len(relocations)
    blocks_at = calls_at + RECORD * len(records)
    program = np.zeros(blocks_at + len(blocks), np.int64)
    program[:HEADER] = (len(bases), bases_at, len(relocations), relocations_at,
                        len(records), calls_at)
    relocations = np.array(relocations, np.int64).reshape(-1, 3)
    relocations[:, 0] += blocks_at                  # (word: in the program, not the blocks)
    program[relocations_at:calls_at] = relocations.reshape(-1)
    records = np.array(records, np.int64).reshape(-1, RECORD)
    records[:, 2] += blocks_at
    program[calls_at:blocks_at] = records.reshape(-1)
    program[blocks_at:] = blocks
    return program


def _lay_out(argument, blocks, relocations, position):
    """Append `argument`'s words to `blocks` (a View's data address as a relocation)."""
    if isinstance(argument, tuple):
        for view in argument:
            _lay_out(view, blocks, relocations, position)
    elif isinstance(argument, View):
        relocations.append((len(blocks), position[argument.base], argument.offset))
        blocks.extend([0, *argument.shape, *argument.strides])
    elif isinstance(argument, (float, np.floating)):
        blocks.append(int(np.float64(argument).view(np.int64)))
    else:
        blocks.append(int(argument))


@intrinsic
def _call(typingctx, thunk, block):
    """thunk(block): a plain thunk's call (runtime/cpu/thunks.py); its result, or the
    kernel's exception raised."""
    def codegen(context, builder, signature, args):
        address, data = args
        thunk_type = context.call_conv.get_function_type(types.int64, (types.int64,))
        function = builder.inttoptr(address, thunk_type.as_pointer())
        status, result = context.call_conv.call_function(
            builder, function, types.int64, (types.int64,), [data])
        with cgutils.if_unlikely(builder, status.is_error):
            context.call_conv.return_status_propagate(builder, status)
        return result
    return types.int64(types.int64, types.int64), codegen


@intrinsic
def _store_data_addresses(typingctx, program, at, arrays):
    """program[at + k] = arrays[k].ctypes.data for each array of the tuple `arrays`."""
    def codegen(context, builder, signature, args):
        words = context.make_array(program)(context, builder, args[0]).data
        for k, array_type in enumerate(arrays):
            array = context.make_array(array_type)(
                context, builder, builder.extract_value(args[2], k))
            slot = builder.gep(words, [builder.add(args[1], context.get_constant(types.intp, k))])
            builder.store(builder.ptrtoint(array.data, slot.type.pointee), slot)
        return context.get_dummy_value()
    return types.none(program, at, arrays), codegen


@njit(cache=True)
def run_program(program, arena, addresses, err, *feeds):
    """Run the step `program` (build_program) on these arrays: (0, 0), or (site, code)
    of the first call that failed."""
    if program[0] != 2 + addresses.size + len(feeds):      # (its bases would overrun)
        raise ValueError("the step program was built for other arrays")
    bases = program[1]
    program[bases] = arena.ctypes.data
    for k in range(addresses.size):
        program[bases + 1 + k] = addresses[k]
    program[bases + 1 + addresses.size] = err.ctypes.data
    _store_data_addresses(program, bases + 2 + addresses.size, feeds)
    relocations = program[3]
    for r in range(relocations, relocations + 3 * program[2], 3):
        program[program[r]] = program[bases + program[r + 1]] + program[r + 2]
    origin = program.ctypes.data
    err[0] = 0
    calls = program[5]
    for c in range(calls, calls + RECORD * program[4], RECORD):
        block = origin + 8 * program[c + 2]
        result = 0
        if program[c + 1] > 0:
            chunks.launch(program[c], block, program[c + 1])
        else:
            result = _call(program[c], block)
        check = program[c + 4]
        if check == CHECK_RESULT and result != 0:
            return program[c + 3], result
        if check == CHECK_ERR and err[0] != 0:
            return program[c + 3], err[0]
    return 0, 0
