"""conv2d and its two gradients on the CUDA backend (NCHW / OIHW, PyTorch's
conventions): im2col into a scratch buffer, then runtime/cuda/matmul.py's GEMM
batched over (image, group).

The column buffer `col` of an input x (n, C, h, w) holds, for each image b,
the (C * kh * kw, ho * wo) matrix col[b, (c, i, j), (y, t)] =
x[b, c, y sh + i dh - ph, t sw + j dw - pw] (0 where that is padding); the
rows of group g are its channels' rows, one contiguous block.

- conv2d: y[b, g] (og, ho wo) = w[g] (og, cg kh kw) @ col[b, g].
- conv2d_grad_input: col[b, g] = w[g]^T @ dy[b, g] (w read transposed in
  place), then col2im: every dx element sums the column entries that read
  it (a gather, no atomics: the same result on every run).
- conv2d_grad_weight: part[b, g] = dy[b, g] @ col[b, g]^T per image (col read
  transposed in place), then dw = the sum of the parts over the images, in
  image order (one thread per weight element).

Every launch overwrites all of its output. The scratch arrays (n C kh kw ho wo
elements of col; the weight gradient's parts n O (C / groups) kh kw more; a
GEMM that splits k, its partial products: matmul.py) come from the plan's
scratch, allocated once when the plan is built and shared between library
nodes (runtime/cuda/library.py).
"""
import numpy as np
from numba import cuda

from graphc.runtime.cuda.device import LIMITS, grid_for
from graphc.runtime.cuda.layout import fill_launch, size_of
from graphc.runtime.cuda.matmul import gemm_launch, sum_launch


@cuda.jit
def im2col(x, col, count, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo, err):
    """col[b, (ch, i, j), (y, t)] = x[b, ch, y sh + i dh - ph, t sw + j dw - pw], or 0
    where that lies in the padding; `count` = n c kh kw ho wo elements."""
    if err[0] != 0:
        return
    q = cuda.grid(1)
    while q < count:
        t = q % wo
        y = (q // wo) % ho
        r = (q // (wo * ho)) % (c * kh * kw)
        b = q // (wo * ho * c * kh * kw)
        j = r % kw
        i = (r // kw) % kh
        ch = r // (kw * kh)
        iy = y * sh + i * dh - ph
        ix = t * sw + j * dw - pw
        if 0 <= iy < h and 0 <= ix < w:
            col[q] = x[((b * c + ch) * h + iy) * w + ix]
        else:
            col[q] = 0
        q += cuda.gridsize(1)


@cuda.jit
def col2im(col, dx, count, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo, zero, err):
    """dx[b, ch, iy, ix] = the sum, over the kernel offsets (i, j) in row-major order, of
    the column entry of (b, ch, i, j) at the output position that reads (iy, ix)."""
    if err[0] != 0:
        return
    q = cuda.grid(1)
    while q < count:
        ix = q % w
        iy = (q // w) % h
        plane = q // (w * h)            # b * c + ch
        acc = zero
        for i in range(kh):
            ny = iy + ph - i * dh
            if ny >= 0 and ny % sh == 0 and ny // sh < ho:
                for j in range(kw):
                    nx = ix + pw - j * dw
                    if nx >= 0 and nx % sw == 0 and nx // sw < wo:
                        row = (plane * kh + i) * kw + j      # (b, ch, i, j) of col
                        acc += col[(row * ho + ny // sh) * wo + nx // sw]
        dx[q] = acc
        q += cuda.gridsize(1)


def _launch(kernel, work, args):
    threads = LIMITS.threads
    return (kernel, grid_for(work, threads), threads, args)


class _Geometry:
    """A conv's sizes; the shapes are conv2d's input x, weight w and output y."""

    def __init__(self, node, x_shape, w_shape, y_shape):
        attrs = node.attrs
        self.n, self.c, self.h, self.w = x_shape
        self.out_ch, self.cg, self.kh, self.kw = w_shape
        self.ho, self.wo = y_shape[2:]
        self.groups = attrs["groups"]
        self.og = self.out_ch // self.groups
        self.k = self.cg * self.kh * self.kw                 # GEMM depth of a group
        self.hw = self.ho * self.wo
        self.window = (self.kh, self.kw) + tuple(attrs["stride"]) + tuple(attrs["padding"]) + \
            tuple(attrs["dilation"])
        self.image_col = self.groups * self.k * self.hw     # col elements of one image
        self.image_dy = self.out_ch * self.hw               # y (dy) elements of one image
        self.batches = np.arange(self.n * self.groups, dtype=np.int64)   # t = b groups + g

    def col_size(self):
        return self.n * self.c * self.kh * self.kw * self.hw

    def im2col(self, x, col, err):
        count = self.col_size()
        return [_launch(im2col, count, (x, col, count, self.c, self.h, self.w, *self.window,
                                        self.ho, self.wo, err))]

    def offsets(self, ctx, per_image, per_group):
        """The element offset of each (image, group) batch's matrix (per_image 0: the
        weights, the same for every image)."""
        images, groups = np.divmod(self.batches, self.groups)
        return ctx.upload(images * per_image + groups * per_group)


def conv2d(ctx, node, operands, out, err, index):
    x, w = operands
    g = _Geometry(node, x.shape, w.shape, node.shape)
    col = ctx.allocate(g.col_size(), node.dtype)
    return g.im2col(x.flat, col, err) + gemm_launch(
        ctx, node, w.flat, g.offsets(ctx, 0, g.og * g.k), (g.k, 1),
        col, g.offsets(ctx, g.image_col, g.k * g.hw), (g.hw, 1), out, (g.og, g.hw, g.k), err)


def conv2d_grad_input(ctx, node, operands, out, err, index):
    dy, w = operands
    g = _Geometry(node, node.shape, w.shape, dy.shape)
    col = ctx.allocate(g.col_size(), node.dtype)
    count = size_of(node.shape)
    zero = np.dtype(node.dtype).type(0)
    # col[b, g] (k, hw) = w[g]^T (k, og) @ dy[b, g] (og, hw); w[g] is (og, k) row-major
    return gemm_launch(
        ctx, node, w.flat, g.offsets(ctx, 0, g.og * g.k), (1, g.k),
        dy.flat, g.offsets(ctx, g.image_dy, g.og * g.hw), (g.hw, 1),
        col, (g.k, g.hw, g.og), err) + [
        _launch(col2im, count, (col, out, count, g.c, g.h, g.w, *g.window, g.ho, g.wo, zero,
                                err))]


def conv2d_grad_weight(ctx, node, operands, out, err, index):
    x, dy = operands
    g = _Geometry(node, x.shape, node.shape, dy.shape)
    col = ctx.allocate(g.col_size(), node.dtype)
    count = size_of(node.shape)                   # out_ch * k
    parts = ctx.allocate(max(1, g.n) * count, node.dtype)
    zero = np.dtype(node.dtype).type(0)
    if g.n == 0:                                  # no image: dw = 0
        return [fill_launch(out, zero, err)]
    # part[b, g] (og, k) = dy[b, g] (og, hw) @ col[b, g]^T (hw, k)
    return g.im2col(x.flat, col, err) + gemm_launch(
        ctx, node, dy.flat, g.offsets(ctx, g.image_dy, g.og * g.hw), (g.hw, 1),
        col, g.offsets(ctx, g.image_col, g.k * g.hw), (1, g.hw),
        parts, (g.og, g.k, g.hw), err) + [
        sum_launch(parts, out, count, node.dtype, err)]
