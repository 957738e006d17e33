"""The arguments of the njit step's kernel calls, fixed before anything runs.

Every array a kernel of the step reads or writes is a view of an array the step
is given (the arena, a feed, a variable's storage, a constant) at an offset,
shape and strides that the memory plan fixes at compile time. So each call of
the step names its arguments as text, and `call_with_views`
(runtime/cpu/native_call.py) builds them inside that one call: the step has no
array variables, and one statement per kernel.

    @0+1024:float32:64,128:512,4:C   bases[0] seen from byte 1024 as a (64, 128)
                                     float32 array of strides (512, 4), typed "C"
    $2                               bases[2] as it is
    #3                               the int64 3
    %0.0                             the float64 0.0
    (@0+0:float32:8:4:C|@0+32:float32:8:4:C)   a tuple of views

`View` is one such view on the renderer's side (runtime/cpu/driver.py), where
`base` names an array of the step; `parse_arguments` reads the text back on the
intrinsic's side, where `base` is a position in the call's bases. A base is an
array, whose owner (meminfo) each view of it keeps, or an integer: the data
address of an array the step is given by address (its views have no owner;
the caller keeps the array alive). Either way the callee sees an ordinary array.

Before, each view was a statement of its own (`_view`, `_flat`, `_reshaped`,
...): W3's step had 973 statements for its 217 kernel calls (now 223), and
Numba's typing, reference counting and lowering of them took most of its 8.4 s
compile.
"""
from dataclasses import dataclass, replace

import numpy as np
from llvmlite import ir
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

    def text(self, position):
        dims = ",".join(map(str, self.shape))
        strides = ",".join(map(str, self.strides))
        return f"@{position}+{self.offset}:{self.dtype}:{dims}:{strides}:{self.layout}"


@dataclass(frozen=True)
class Base:
    """bases[base] (a name in the step, or a position in the call) passed as it is."""
    base: object


def _parse_view(token):
    position, rest = token[1:].split("+", 1)
    offset, dtype, dims, strides, layout = rest.split(":")
    numbers = lambda text: tuple(int(v) for v in text.split(","))   # noqa: E731
    return View(int(position), int(offset), dtype, numbers(dims), numbers(strides), layout)


def parse_arguments(text):
    """The arguments the text names: View, Base, int, float or a tuple of Views."""
    arguments = []
    for token in text.split():
        kind = token[0]
        if kind == "@":
            arguments.append(_parse_view(token))
        elif kind == "$":
            arguments.append(Base(int(token[1:])))
        elif kind == "#":
            arguments.append(int(token[1:]))
        elif kind == "%":
            arguments.append(float(token[1:]))
        elif kind == "(":
            arguments.append(tuple(_parse_view(t) for t in token[1:-1].split("|")))
        else:
            raise ValueError(f"not a step argument: {token!r}")
    return arguments


def argument_type(argument, base_types):
    """The Numba type a kernel sees for one parsed argument."""
    if isinstance(argument, View):
        return types.Array(from_dtype(np.dtype(argument.dtype)), len(argument.shape),
                           argument.layout)
    if isinstance(argument, Base):
        return base_types[argument.base]
    if isinstance(argument, tuple):
        return types.UniTuple(argument_type(argument[0], base_types), len(argument))
    return types.float64 if isinstance(argument, float) else types.int64


def base_fields(context, builder, base_types, bases):
    """(meminfo, parent, data as i8*) of each base, for `build_argument`: an array's
    own, or for an integer (an array's data address) no owner and that address."""
    fields = []
    byte_pointer = ir.IntType(8).as_pointer()
    for array_type, value in zip(base_types, bases):
        if isinstance(array_type, types.Integer):
            null = ir.Constant(byte_pointer, None)
            fields.append((null, null, builder.inttoptr(value, byte_pointer)))
            continue
        if not isinstance(array_type, types.Array):
            fields.append(None)
            continue
        model = context.data_model_manager[array_type]
        meminfo, parent, data = (builder.extract_value(value, model.get_field_position(name))
                                 for name in ("meminfo", "parent", "data"))
        fields.append((meminfo, parent, builder.bitcast(data, byte_pointer)))
    return fields


def build_argument(context, builder, argument, bases, base_types, fields):
    """The LLVM value of one parsed argument; `bases` are the call's base arrays,
    `fields` their base_fields."""
    if isinstance(argument, Base):
        return bases[argument.base]
    if isinstance(argument, tuple):
        values = [build_argument(context, builder, a, bases, base_types, fields)
                  for a in argument]
        return context.make_tuple(builder, argument_type(argument, base_types), values)
    if not isinstance(argument, View):
        return context.get_constant(argument_type(argument, base_types), argument)
    array_type = argument_type(argument, base_types)
    meminfo, parent, raw = fields[argument.base]
    intp = context.get_value_type(types.intp)
    model = context.data_model_manager[array_type]
    constants = {"nitems": ir.Constant(intp, int(np.prod(argument.shape))),
                 "itemsize": ir.Constant(intp, argument.itemsize),
                 "shape": ir.Constant(ir.ArrayType(intp, len(argument.shape)), argument.shape),
                 "strides": ir.Constant(ir.ArrayType(intp, len(argument.strides)),
                                        argument.strides)}
    struct = context.get_value_type(array_type)
    members = [ir.Constant(element, None) for element in struct.elements]
    for name, constant in constants.items():
        members[model.get_field_position(name)] = constant
    value = ir.Constant(struct, members)
    data = builder.bitcast(builder.gep(raw, [ir.Constant(intp, argument.offset)]),
                           context.get_data_type(array_type.dtype).as_pointer())
    for name, field in (("meminfo", meminfo), ("parent", parent), ("data", data)):
        value = builder.insert_value(value, field, model.get_field_position(name))
    return value
