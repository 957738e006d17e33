"""Array helpers of the CPU runtime: aligned buffers, and two intrinsics that retype
an array for the library kernels.

    aligned_empty(nbytes)   # the arena and the conv kernels' work arrays
    any_layout(x)           # x typed as layout "A": one compile of a kernel for all
    as_contiguous(x)        # an "A" x that is C-contiguous, typed "C" again

(The views the step program passes its kernels are built by their thunks:
runtime/cpu/step_views.py, thunks.py.)
"""
import numpy as np
from numba import types
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic

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
