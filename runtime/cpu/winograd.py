"""Winograd F(2x2, 3x3): conv2d and both its gradients with 2.25x fewer multiplies.

For 3x3 kernels at stride 1, dilation 1, one group. Each 2x2 output tile comes
from the 4x4 input tile under it (tiles of one image overlap by two rows and
columns), as in Lavin and Gray, "Fast Algorithms for Convolutional Neural
Networks" (2015):

    Y = A^T [ sum_c (G w G^T) * (B^T d B) ] A          (* elementwise, 4x4)

The 16 entries of the 4x4 product are 16 independent sums over channels, so
the forward is 16 GEMMs per image, M[e] = U[e] @ V[e] with
U[e] = (G w G^T)[e] of shape (out, in) and V[e] = (B^T d B)[e] of shape
(in, tiles): 16 multiplies per tile and channel pair where im2col + GEMM does
36. Both gradients are the exact adjoints of the same linear maps, with the
same GEMM sizes:

    input:   dM = A dY A^T,   dV[e] = U[e]^T @ dM[e],   dx = sum over tiles of B dV B^T
    weight:  dU[e] = sum over tiles dM[e] @ V[e]^T,     dw = G^T dU G

The kernels take the same arguments as runtime/cpu/conv.py's GEMM kernels, a
`work` array included (size it with `winograd_workspace_shape`). Rounding: the
transforms add and subtract up to 9 terms before the channel sums, so results
differ from the direct sum by a few float32 ulps of the operands' magnitudes
(tests bound it against float64 NumPy).

Infinities: the transforms add and subtract neighbouring values, so an
infinite input gives inf - inf = NaN where the direct sum gives +-inf. An
image whose Winograd result holds a NaN is computed again by conv.py's direct
kernels (their serial `_parts` forms), whose NaNs are the reference's: the
forward and input gradient per image, the weight gradient whole. The check is a
compare per output value in the loops that write them. (The parallel direct
kernels, compiled into these three, took 7.7 s of a fresh runtime's first W2
step.)
"""
from numba import njit, prange

from graphc.runtime.cpu.blas import gemm
from graphc.runtime.cpu.conv import (PRANGE_ONLY, _add, _copy, _fill, _has_nan,
                                     conv2d_direct_parts, conv2d_grad_input_direct_parts,
                                     conv2d_grad_weight_direct_parts)


def winograd_applies(w_shape, stride, dilation, groups):
    """True where the Winograd kernels compute this conv2d: 3x3, stride 1, dilation 1,
    one group (any padding)."""
    return (tuple(w_shape[2:]) == (3, 3) and tuple(stride) == (1, 1)
            and tuple(dilation) == (1, 1) and groups == 1)


def tile_grid(y_shape):
    """(rows, columns) of 2x2 output tiles for an output of y_shape (a half-empty last
    row or column when odd)."""
    return (y_shape[2] + 1) // 2, (y_shape[3] + 1) // 2


def winograd_workspace_shape(x_shape, w_shape, y_shape, chunks=1):
    """(chunks, elements) of the `work` array of the three Winograd kernels."""
    out_ch, in_ch = w_shape[:2]
    th, tw = tile_grid(y_shape)
    tiles, plane = th * tw, (2 * th + 2) * (2 * tw + 2)    # the padded input plane
    return chunks, 16 * (out_ch * in_ch + in_ch * tiles + out_ch * tiles) + plane + 4 * tiles


@njit(cache=True)
def _regions(work, p, out_ch, in_ch, th, tw):
    """Row p of `work` as (U, V, M, plane): U flat (out x 16 x in elements), V (in, 16,
    tiles), M (out, 16, tiles) and the rest, a scratch plane (row 0's U is the one the
    forward and input gradient read); `_quad` finds a (4, tiles) array past the plane."""
    row, tiles = work[p], th * tw
    a = 16 * out_ch * in_ch
    b = a + 16 * in_ch * tiles
    c = b + 16 * out_ch * tiles
    return (row[:a], row[a:b].reshape((in_ch, 16, tiles)),
            row[b:c].reshape((out_ch, 16, tiles)), row[c:])


@njit(cache=True)
def _quad(plane, th, tw):
    """The (4, tiles) scratch after the padded plane: one 2x2 output tile per column."""
    start = (2 * th + 2) * (2 * tw + 2)
    return plane[start:start + 4 * th * tw].reshape((4, th * tw))


# -- the 1-D transforms (each 2-D transform applies one to columns, then rows) -------

@njit(inline="always")
def _g(a, b, c):
    """G [a, b, c], G = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]]
    (in float64: the weight transforms are small)."""
    return a * 1.0, (a + b + c) * 0.5, (a - b + c) * 0.5, c * 1.0


@njit(inline="always")
def _gt(a, b, c, d):
    """G^T [a, b, c, d]."""
    return a + (b + c) * 0.5, (b - c) * 0.5, (b + c) * 0.5 + d      # float64 too


@njit(inline="always")
def _bt(a, b, c, d):
    """B^T [a, b, c, d], B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]."""
    return a - c, b + c, c - b, b - d


@njit(inline="always")
def _b(a, b, c, d):
    """B [a, b, c, d]."""
    return a, b - c + d, b + c - a, -d


@njit(inline="always")
def _at(a, b, c, d):
    """A^T [a, b, c, d], A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]."""
    return a + b + c, b - c - d


@njit(inline="always")
def _a(a, b):
    """A [a, b]."""
    return a, a + b, a - b, -b


# -- weights -----------------------------------------------------------------------

@njit(cache=True)
def _weight_transform(w, u, transposed):
    """u[o, 4 r + k, c] = (G w[o, c] G^T)[r, k]; transposed, u[c, 4 r + k, o] (not
    through a transposed view: transpose with axes compiles Numba's shape-mismatch
    message, 1.5 s of a fresh runtime)."""
    for o in range(w.shape[0]):
        for c in range(w.shape[1]):
            g = w[o, c]
            k0 = _g(g[0, 0], g[1, 0], g[2, 0])
            k1 = _g(g[0, 1], g[1, 1], g[2, 1])
            k2 = _g(g[0, 2], g[1, 2], g[2, 2])
            for r in range(4):
                values = _g(k0[r], k1[r], k2[r])
                for k in range(4):
                    if transposed:
                        u[c, 4 * r + k, o] = values[k]
                    else:
                        u[o, 4 * r + k, c] = values[k]


@njit(cache=True)
def _weight_transform_adjoint(du, dw):
    """dw[o, c] = G^T du[o, :, c] G, the adjoint of _weight_transform."""
    for o in range(dw.shape[0]):
        for c in range(dw.shape[1]):
            k0 = _gt(du[o, 0, c], du[o, 4, c], du[o, 8, c], du[o, 12, c])
            k1 = _gt(du[o, 1, c], du[o, 5, c], du[o, 9, c], du[o, 13, c])
            k2 = _gt(du[o, 2, c], du[o, 6, c], du[o, 10, c], du[o, 14, c])
            k3 = _gt(du[o, 3, c], du[o, 7, c], du[o, 11, c], du[o, 15, c])
            for i in range(3):
                dw[o, c, i, 0], dw[o, c, i, 1], dw[o, c, i, 2] = _gt(k0[i], k1[i], k2[i], k3[i])


# -- inputs: x -> V and its adjoint dV -> dx ----------------------------------------

@njit(cache=True)
def _input_tiles(x, b, ph, pw, th, tw, v, plane):
    """v[c, 4 r + k, ty tw + tx] = (B^T d B)[r, k], d the 4x4 tile of image b,
    channel c at (2 ty - ph, 2 tx - pw) (zero outside the image)."""
    h, wd = x.shape[2], x.shape[3]
    fits = ph == 0 and pw == 0 and 2 * th + 2 <= h and 2 * tw + 2 <= wd
    padded = plane[:(2 * th + 2) * (2 * tw + 2)].reshape((2 * th + 2, 2 * tw + 2))
    for c in range(x.shape[1]):
        src = x[b, c]
        if not fits:
            _fill(padded, 0)
            for y in range(h):
                _copy(padded[ph + y, pw:pw + wd], src[y])
            src = padded
        for ty in range(th):
            r0, r1, r2, r3 = src[2 * ty], src[2 * ty + 1], src[2 * ty + 2], src[2 * ty + 3]
            for tx in range(tw):
                j, t = 2 * tx, ty * tw + tx
                c0 = _bt(r0[j], r1[j], r2[j], r3[j])
                c1 = _bt(r0[j + 1], r1[j + 1], r2[j + 1], r3[j + 1])
                c2 = _bt(r0[j + 2], r1[j + 2], r2[j + 2], r3[j + 2])
                c3 = _bt(r0[j + 3], r1[j + 3], r2[j + 3], r3[j + 3])
                for r in range(4):
                    row = _bt(c0[r], c1[r], c2[r], c3[r])
                    for k in range(4):
                        v[c, 4 * r + k, t] = row[k]


@njit(cache=True)
def _input_tiles_adjoint(dv, dx, b, ph, pw, th, tw, plane):
    """dx[b] = the sum over tiles of B dv B^T, each placed where _input_tiles read it
    (the parts on padding dropped). Returns whether dx[b] holds a NaN (overlapping
    tiles add into it, so its values are checked once complete)."""
    nan = False
    h, wd = dx.shape[2], dx.shape[3]
    fits = ph == 0 and pw == 0 and 2 * th + 2 == h and 2 * tw + 2 == wd
    padded = plane[:(2 * th + 2) * (2 * tw + 2)].reshape((2 * th + 2, 2 * tw + 2))
    for c in range(dx.shape[1]):
        dst = dx[b, c] if fits else padded
        _fill(dst, 0)
        for ty in range(th):
            for tx in range(tw):
                t = ty * tw + tx
                k0 = _b(dv[c, 0, t], dv[c, 4, t], dv[c, 8, t], dv[c, 12, t])
                k1 = _b(dv[c, 1, t], dv[c, 5, t], dv[c, 9, t], dv[c, 13, t])
                k2 = _b(dv[c, 2, t], dv[c, 6, t], dv[c, 10, t], dv[c, 14, t])
                k3 = _b(dv[c, 3, t], dv[c, 7, t], dv[c, 11, t], dv[c, 15, t])
                for r in range(4):
                    row = _b(k0[r], k1[r], k2[r], k3[r])
                    for k in range(4):
                        dst[2 * ty + r, 2 * tx + k] += row[k]
        if not fits:
            for y in range(h):
                _copy(dx[b, c, y], padded[ph + y, pw:pw + wd])
        nan |= _has_nan(dx[b, c])
    return nan


# -- outputs: M -> y and its adjoint dy -> dM ---------------------------------------

@njit(cache=True)
def _output_tiles(m, y, b, th, tw, plane):
    """y[b, o, 2 ty + i, 2 tx + j] = (A^T m A)[i, j], m the 4x4 of tile ty tw + tx.
    All of a channel's tiles are computed first, as vectors along the tiles (the 16
    planes are contiguous along them), then placed: twice as fast as tile by tile.
    Returns whether a value written is NaN."""
    ho, wo = y.shape[2], y.shape[3]
    fits = 2 * th == ho and 2 * tw == wo
    tile_plane = plane[:4 * th * tw].reshape((2 * th, 2 * tw))
    quad = _quad(plane, th, tw)
    nan = False
    for o in range(y.shape[1]):
        mo = m[o]
        for t in range(th * tw):
            k0 = _at(mo[0, t], mo[4, t], mo[8, t], mo[12, t])
            k1 = _at(mo[1, t], mo[5, t], mo[9, t], mo[13, t])
            k2 = _at(mo[2, t], mo[6, t], mo[10, t], mo[14, t])
            k3 = _at(mo[3, t], mo[7, t], mo[11, t], mo[15, t])
            q0, q1 = _at(k0[0], k1[0], k2[0], k3[0])
            q2, q3 = _at(k0[1], k1[1], k2[1], k3[1])
            quad[0, t], quad[1, t], quad[2, t], quad[3, t] = q0, q1, q2, q3
            nan |= (q0 != q0) | (q1 != q1) | (q2 != q2) | (q3 != q3)
        dst = y[b, o] if fits else tile_plane
        for ty in range(th):
            top, bottom = dst[2 * ty], dst[2 * ty + 1]
            for tx in range(tw):
                t = ty * tw + tx
                top[2 * tx], top[2 * tx + 1] = quad[0, t], quad[1, t]
                bottom[2 * tx], bottom[2 * tx + 1] = quad[2, t], quad[3, t]
        if not fits:
            for i in range(ho):
                _copy(y[b, o, i], tile_plane[i, :wo])
    return nan


@njit(cache=True)
def _output_tiles_adjoint(dy, b, th, tw, dm, plane):
    """dm[o, 4 r + k, ty tw + tx] = (A g A^T)[r, k], g the 2x2 tile of dy[b, o]
    at (2 ty, 2 tx) (zero past the edge): the adjoint of _output_tiles."""
    ho, wo = dy.shape[2], dy.shape[3]
    fits = 2 * th == ho and 2 * tw == wo
    tile_plane = plane[:4 * th * tw].reshape((2 * th, 2 * tw))
    for o in range(dy.shape[1]):
        src = dy[b, o]
        if not fits:
            _fill(tile_plane, 0)
            for i in range(ho):
                _copy(tile_plane[i, :wo], src[i])
            src = tile_plane
        for ty in range(th):
            for tx in range(tw):
                t = ty * tw + tx
                c0 = _a(src[2 * ty, 2 * tx], src[2 * ty + 1, 2 * tx])
                c1 = _a(src[2 * ty, 2 * tx + 1], src[2 * ty + 1, 2 * tx + 1])
                for r in range(4):
                    row = _a(c0[r], c1[r])
                    for k in range(4):
                        dm[o, 4 * r + k, t] = row[k]


# -- the kernels -------------------------------------------------------------------
#
# Each kernel is a `_parts` function, serial over parts [start, stop) of its work
# (part p: images p, p + P, ... with P = work.shape[0], in work row p), which the
# step program launches over the threads (runtime/cpu/chunks.py), with a serial
# `_setup` before it or `_finish` after it where one is needed
# (conv_variants.py's `conv_steps`). The kernels themselves run the parts in a
# `prange`, for Python callers: a parfor compiles about three times as long.

@njit(cache=True)
def _tile_counts(y):
    return (y.shape[2] + 1) // 2, (y.shape[3] + 1) // 2


@njit(cache=True)
def conv2d_winograd_setup(x, w, out, sh, sw, ph, pw, dh, dw, groups, work):
    """U, the weights' transform, into work row 0, where every part reads it."""
    th, tw = _tile_counts(out)
    u = _regions(work, 0, w.shape[0], w.shape[1], th, tw)[0]
    _weight_transform(w, u.reshape((w.shape[0], 16, w.shape[1])), False)


@njit(cache=True)
def conv2d_winograd_parts(chunk, start, stop, x, w, out, sh, sw, ph, pw, dh, dw, groups,
                          work):
    n, in_ch, out_ch = x.shape[0], x.shape[1], w.shape[0]
    th, tw = _tile_counts(out)
    parts = work.shape[0]
    u = _regions(work, 0, out_ch, in_ch, th, tw)[0].reshape((out_ch, 16, in_ch))
    for p in range(start, stop):
        v, m, plane = _regions(work, p, out_ch, in_ch, th, tw)[1:]
        for b in range(p, n, parts):
            _input_tiles(x, b, ph, pw, th, tw, v, plane)
            for e in range(16):
                gemm(u[:, e], v[:, e], m[:, e], 0.0)
            if _output_tiles(m, out, b, th, tw, plane):     # an infinity met another
                conv2d_direct_parts(0, b, b + 1, x, w, out, 1, 1, ph, pw, 1, 1, 1)


@njit(parallel=PRANGE_ONLY, cache=True)
def conv2d_winograd(x, w, out, sh, sw, ph, pw, dh, dw, groups, work):
    n, in_ch, out_ch = x.shape[0], x.shape[1], w.shape[0]
    th, tw = _tile_counts(out)
    conv2d_winograd_setup(x, w, out, sh, sw, ph, pw, dh, dw, groups, work)
    if n >= work.shape[0]:
        for p in prange(work.shape[0]):
            conv2d_winograd_parts(p, p, p + 1, x, w, out, sh, sw, ph, pw, dh, dw, groups, work)
        return
    # fewer images than threads (inference): split each image's 16 GEMMs
    u, v, m, plane = _regions(work, 0, out_ch, in_ch, th, tw)
    u = u.reshape((out_ch, 16, in_ch))
    for b in range(n):
        _input_tiles(x, b, ph, pw, th, tw, v, plane)
        for e in prange(16):
            gemm(u[:, e], v[:, e], m[:, e], 0.0)
        if _output_tiles(m, out, b, th, tw, plane):
            conv2d_direct_parts(0, b, b + 1, x, w, out, 1, 1, ph, pw, 1, 1, 1)


@njit(cache=True)
def conv2d_grad_input_winograd_setup(dy, w, out, sh, sw, ph, pw, dh, dw, groups, work):
    """U^T into work row 0, so that the GEMMs read it untransposed (MKL: 112 against
    134 us per image)."""
    th, tw = _tile_counts(dy)
    ut = _regions(work, 0, w.shape[0], w.shape[1], th, tw)[0]
    _weight_transform(w, ut.reshape((w.shape[1], 16, w.shape[0])), True)


@njit(cache=True)
def conv2d_grad_input_winograd_parts(chunk, start, stop, dy, w, out, sh, sw, ph, pw, dh, dw,
                                     groups, work):
    n, out_ch, in_ch = dy.shape[0], dy.shape[1], w.shape[1]
    th, tw = _tile_counts(dy)
    parts = work.shape[0]
    ut = _regions(work, 0, out_ch, in_ch, th, tw)[0].reshape((in_ch, 16, out_ch))
    for p in range(start, stop):
        v, m, plane = _regions(work, p, out_ch, in_ch, th, tw)[1:]
        for b in range(p, n, parts):
            _output_tiles_adjoint(dy, b, th, tw, m, plane)
            for e in range(16):
                gemm(ut[:, e], m[:, e], v[:, e], 0.0)
            if _input_tiles_adjoint(v, out, b, ph, pw, th, tw, plane):
                conv2d_grad_input_direct_parts(0, b, b + 1, dy, w, out, 1, 1, ph, pw, 1, 1, 1)


@njit(parallel=PRANGE_ONLY, cache=True)
def conv2d_grad_input_winograd(dy, w, out, sh, sw, ph, pw, dh, dw, groups, work):
    conv2d_grad_input_winograd_setup(dy, w, out, sh, sw, ph, pw, dh, dw, groups, work)
    for p in prange(work.shape[0]):
        conv2d_grad_input_winograd_parts(p, p, p + 1, dy, w, out, sh, sw, ph, pw, dh, dw,
                                         groups, work)


@njit(cache=True)
def conv2d_grad_weight_winograd_parts(chunk, start, stop, x, dy, out, sh, sw, ph, pw, dh, dw,
                                      groups, work):
    """Part p sums its images' dU in work row p."""
    n, out_ch, in_ch = x.shape[0], out.shape[0], out.shape[1]
    th, tw = _tile_counts(dy)
    parts = work.shape[0]
    for p in range(start, stop):
        du, v, m, plane = _regions(work, p, out_ch, in_ch, th, tw)
        _fill(du, 0)
        du = du.reshape((out_ch, 16, in_ch))
        for b in range(p, n, parts):
            _input_tiles(x, b, ph, pw, th, tw, v, plane)
            _output_tiles_adjoint(dy, b, th, tw, m, plane)
            for e in range(16):
                gemm(m[:, e], v[:, e].T, du[:, e], 1.0)


@njit(cache=True)
def conv2d_grad_weight_winograd_finish(x, dy, out, sh, sw, ph, pw, dh, dw, groups, work):
    """dw = G^T (the parts' dU summed) G; the direct kernel's if it holds a NaN."""
    out_ch, in_ch = out.shape[0], out.shape[1]
    th, tw = _tile_counts(dy)
    du = _regions(work, 0, out_ch, in_ch, th, tw)[0]
    for p in range(1, work.shape[0]):
        _add(du, _regions(work, p, out_ch, in_ch, th, tw)[0])
    _weight_transform_adjoint(du.reshape((out_ch, 16, in_ch)), out)
    for o in range(out_ch):
        for c in range(in_ch):
            if _has_nan(out[o, c]):
                conv2d_grad_weight_direct_parts(0, 0, out_ch, x, dy, out, 1, 1, ph, pw, 1, 1, 1)
                return


@njit(parallel=PRANGE_ONLY, cache=True)
def conv2d_grad_weight_winograd(x, dy, out, sh, sw, ph, pw, dh, dw, groups, work):
    for p in prange(work.shape[0]):
        conv2d_grad_weight_winograd_parts(p, p, p + 1, x, dy, out, sh, sw, ph, pw, dh, dw,
                                          groups, work)
    conv2d_grad_weight_winograd_finish(x, dy, out, sh, sw, ph, pw, dh, dw, groups, work)
