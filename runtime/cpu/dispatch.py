"""Library calls of the CPU backend: each opaque op's njit kernel (runtime/cpu/
library.py) called on its arena buffer, or NumPy's reference where no kernel
fits (other ops, mixed dtypes, layouts the kernel does not take).

Threads: `one_thread_pool()` sets the BLAS that njit's np.dot calls to one
thread, so Numba's pool does all parallel work in a step (GEMMs split their
rows over it) and never fights OpenBLAS's spinning workers for the cores.
"""
import numba
import numpy as np

from graphc.errors import RuntimeFailure
from graphc.runtime.cpu import library

_pool_set = False


def one_thread_pool():
    """Make Numba's pool the only one; True if BLAS's own threads could be turned off."""
    global _pool_set
    if not _pool_set:
        _pool_set = library.set_blas_threads(1)
    return _pool_set


def _conv_ints(attrs):
    (sh, sw), (ph, pw), (dh, dw) = attrs["stride"], attrs["padding"], attrs["dilation"]
    return sh, sw, ph, pw, dh, dw, attrs["groups"]


def _pool_ints(attrs):
    (kh, kw), (sh, sw), (ph, pw) = attrs["kernel"], attrs["stride"], attrs["padding"]
    return kh, kw, sh, sw, ph, pw


class Library:
    """Calls one plan's library ops; keeps each conv's scratch space between calls."""

    def __init__(self):
        self.work = {}

    def run(self, node, arrays, out):
        """Compute `node` into `out` (a C-contiguous buffer). False: no kernel applies."""
        if out.dtype.kind != "f" or any(a.dtype != out.dtype for a in arrays
                                        if a.dtype.kind == "f"):
            return False
        call = getattr(self, "_" + node.op.name, None)
        return call is not None and call(node, arrays, out) is not False

    def _matmul(self, node, arrays, out):
        a, b = arrays
        if a.ndim != out.ndim or b.ndim != out.ndim or out.ndim not in (2, 3):
            return False
        layouts = [x.flags.c_contiguous or (x.ndim == 2 and x.flags.f_contiguous) for x in (a, b)]
        if not all(layouts):
            return False
        library.matmul_any_layout(a, b, out)

    def _conv(self, node, arrays, out, x_shape, w_shape, y_shape):
        name, attrs = node.op.name, node.attrs
        ints = _conv_ints(attrs)
        variant = library.conv_variant(name, x_shape, w_shape, y_shape, attrs)
        kernel = getattr(library, library.conv_kernel_name(name, variant))
        if variant == "direct":
            kernel(*arrays, out, *ints)
            return
        work = self.work.get(node)
        if work is None:
            shape = library.conv_workspace_shape(name, variant, x_shape, w_shape, y_shape,
                                                 chunks=numba.get_num_threads(),
                                                 padding=attrs["padding"],
                                                 stride=attrs["stride"])
            work = self.work[node] = np.empty(shape, out.dtype)
        kernel(*[np.ascontiguousarray(a) for a in arrays], out, *ints, work)

    def _conv2d(self, node, arrays, out):
        x, w = arrays
        self._conv(node, arrays, out, x.shape, w.shape, out.shape)

    def _conv2d_grad_input(self, node, arrays, out):
        dy, w = arrays
        self._conv(node, arrays, out, out.shape, w.shape, dy.shape)

    def _conv2d_grad_weight(self, node, arrays, out):
        x, dy = arrays
        self._conv(node, arrays, out, x.shape, out.shape, dy.shape)

    def _max_pool2d(self, node, arrays, out):
        (dh, dw) = node.attrs["dilation"]
        library.max_pool2d(np.ascontiguousarray(arrays[0]), out, *_pool_ints(node.attrs), dh, dw)

    def _max_pool2d_grad(self, node, arrays, out):
        (dh, dw) = node.attrs["dilation"]
        x, dy = (np.ascontiguousarray(a) for a in arrays)
        library.max_pool2d_grad(x, dy, out, *_pool_ints(node.attrs), dh, dw)

    def _avg_args(self, node):
        return (*_pool_ints(node.attrs), node.attrs["count_include_pad"],
                node.attrs["divisor_override"] or 0)

    def _avg_pool2d(self, node, arrays, out):
        library.avg_pool2d(np.ascontiguousarray(arrays[0]), out, *self._avg_args(node))

    def _avg_pool2d_grad(self, node, arrays, out):
        library.avg_pool2d_grad(np.ascontiguousarray(arrays[0]), out, *self._avg_args(node))

    def _concatenate(self, node, arrays, out):
        axis = node.attrs["axis"]
        before, after = library.concat_views(out.shape, axis)
        out3, offset = out.reshape((before, out.shape[axis], after)), 0
        for piece in arrays:
            size = piece.shape[axis]
            library.concat_piece(out3, np.ascontiguousarray(piece).reshape((before, size, after)),
                                 offset)
            offset += size

    def _random(self, node, arrays, out):
        seed, params = library.draw_arguments(node)
        kernel = getattr(library, node.op.name)
        kernel(np.asarray(arrays[0], np.int64).reshape(1), seed, params, out.reshape(-1))

    _random_uniform = _random_normal = _random

    def _take(self, node, arrays, out):
        self._checked(node, library.take, arrays, out)

    def _take_grad(self, node, arrays, out):
        self._checked(node, library.take_grad, arrays, out)

    def _checked(self, node, kernel, arrays, out):
        values, indices = (np.ascontiguousarray(a) for a in arrays[:2])
        code = kernel(values, indices, out, node.attrs["axis"], int(node.attrs["wrap_negative"]))
        if code:
            axis = node.attrs["axis"]
            size = (values if node.op.name == "take" else out).shape[axis]
            raise RuntimeFailure(f"index {indices.reshape(-1)[code - 1]} is out of range for "
                                 f"axis {axis} of size {size}", op=node.op.name, loc=node.loc)
