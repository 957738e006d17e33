"""Array views for the njit step driver, built in place from constants.

The step reads every buffer as a view of the arena, reshapes values to flat
1-D for loop kernels and transposes matmul operands. Numba's own `.view`,
`.reshape` and `.T` are generic functions that the step would compile and
link once per call site (W1's step linked 98 of them: 0.5 MB of IR, seconds
of compile). These intrinsics emit the few instructions of each view
directly: the view shares its base's data and keeps its base alive.

    arena_view(arena, offset, "float32", "128,512")  # C view of arena bytes
    flat(x)                 # C-contiguous x as 1-D
    reshaped(x, "4,32")     # C-contiguous x with another shape
    transposed(x)           # 2-D x.T (C becomes F)
    any_layout(x)           # x typed as layout "A": one compile of a kernel for all
    as_contiguous(x)        # an "A" x that is C-contiguous, typed "C" again

Offsets and shapes are literals: the renderer knows them, and each view is
then a handful of constants. The caller guarantees they fit (the memory plan).
"""
import numpy as np
from llvmlite import ir
from numba import from_dtype, types
from numba.core import cgutils
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic
from numba.np.arrayobj import make_array, populate_array

CACHE_LINE = 64


def aligned_empty(nbytes, alignment=CACHE_LINE):
    """An uninitialized byte array whose first byte is `alignment`-aligned, for the
    arena and the conv kernels' work arrays. np.empty of a few MB is an mmap'd block
    16 bytes past a page: the plan's 64-byte aligned buffers would all start 16
    bytes into a cache line, every vector access would span two lines, and threads
    writing neighbouring blocks would share lines."""
    raw = np.empty(nbytes + alignment, np.uint8)
    start = -raw.ctypes.data % alignment
    return raw[start:start + nbytes]


def _dims(text):
    return tuple(int(d) for d in text.split(",") if d.strip())


def _c_strides(shape, itemsize):
    strides, step = [], itemsize
    for dim in reversed(shape):
        strides.append(step)
        step *= dim
    return tuple(reversed(strides))


def _build(context, builder, result_type, base, data, shape, strides):
    """A `result_type` array over `data` with `base`'s owner and parent."""
    intp = context.get_value_type(types.intp)
    itemsize = context.get_abi_sizeof(context.get_data_type(result_type.dtype))
    out = make_array(result_type)(context, builder)
    populate_array(out, data=data,
                   shape=[v if isinstance(v, ir.Value) else ir.Constant(intp, v) for v in shape],
                   strides=[v if isinstance(v, ir.Value) else ir.Constant(intp, v)
                            for v in strides],
                   itemsize=ir.Constant(intp, itemsize), meminfo=base.meminfo, parent=base.parent)
    return impl_ret_borrowed(context, builder, result_type, out._getvalue())


@intrinsic
def arena_view(typingctx, arena, offset, dtype, shape):
    if not (isinstance(offset, types.IntegerLiteral) and isinstance(dtype, types.StringLiteral)
            and isinstance(shape, types.StringLiteral)):
        return None
    element = from_dtype(np.dtype(dtype.literal_value))
    dims = _dims(shape.literal_value)
    result_type = types.Array(element, len(dims), "C")
    start = offset.literal_value

    def codegen(context, builder, signature, args):
        base = make_array(signature.args[0])(context, builder, args[0])
        raw = builder.gep(base.data, [ir.Constant(ir.IntType(64), start)])
        data = builder.bitcast(raw, context.get_data_type(element).as_pointer())
        itemsize = context.get_abi_sizeof(context.get_data_type(element))
        return _build(context, builder, result_type, base, data, dims, _c_strides(dims, itemsize))

    return result_type(arena, offset, dtype, shape), codegen


@intrinsic
def flat(typingctx, x):
    if not isinstance(x, types.Array) or x.layout != "C":
        return None
    result_type = types.Array(x.dtype, 1, "C")

    def codegen(context, builder, signature, args):
        base = make_array(x)(context, builder, args[0])
        return _build(context, builder, result_type, base, base.data, [base.nitems],
                      [base.itemsize])

    return result_type(x), codegen


@intrinsic
def reshaped(typingctx, x, shape):
    if not isinstance(x, types.Array) or x.layout != "C" or \
            not isinstance(shape, types.StringLiteral):
        return None
    dims = _dims(shape.literal_value)
    result_type = types.Array(x.dtype, len(dims), "C")

    def codegen(context, builder, signature, args):
        base = make_array(x)(context, builder, args[0])
        itemsize = context.get_abi_sizeof(context.get_data_type(x.dtype))
        return _build(context, builder, result_type, base, base.data, dims,
                      _c_strides(dims, itemsize))

    return result_type(x, shape), codegen


@intrinsic
def transposed(typingctx, x):
    if not isinstance(x, types.Array) or x.ndim != 2 or x.layout != "C":
        return None
    result_type = types.Array(x.dtype, 2, "F")

    def codegen(context, builder, signature, args):
        base = make_array(x)(context, builder, args[0])
        rows, cols = cgutils.unpack_tuple(builder, base.shape, 2)
        row_stride, col_stride = cgutils.unpack_tuple(builder, base.strides, 2)
        return _build(context, builder, result_type, base, base.data, [cols, rows],
                      [col_stride, row_stride])

    return result_type(x), codegen


def _itself(context, builder, signature, args):
    """Codegen of a view that is its argument, typed anew."""
    return impl_ret_borrowed(context, builder, signature.return_type, args[0])


@intrinsic
def any_layout(typingctx, x):
    """`x` itself, typed with layout "A" (strides read at run time), so a library
    kernel taking C- or F-ordered operands compiles once, not per combination."""
    if not isinstance(x, types.Array):
        return None
    return x.copy(layout="A")(x), _itself


@intrinsic
def as_contiguous(typingctx, x):
    """`x` typed as layout "C", for a library kernel that checked at run time that it
    is (its inner loops then index with constant strides, and vectorize)."""
    if not isinstance(x, types.Array):
        return None
    return x.copy(layout="C")(x), _itself
