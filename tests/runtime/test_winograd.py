"""Winograd F(2x2, 3x3) conv kernels (runtime/cpu/winograd.py) against the references.

Outputs and work arrays start full of NaN, so a kernel that skips an element or
reads scratch it did not write fails. The cases cover even and odd output
sizes (a half-empty last tile row and column), zero, one and two of padding,
one input channel, and more threads' chunks than images.
"""
import re

import numpy as np
import pytest

import graphc as gc
from graphc.ops.conv import (conv2d_grad_input_reference, conv2d_grad_weight_reference,
                             conv2d_reference)
from graphc.runtime.cpu import library as L
from graphc.runtime.cpu import winograd as W

# x shape, output channels, padding
CASES = {
    "even, no padding": ((3, 4, 10, 8), 5, (0, 0)),
    "odd outputs, padded": ((2, 3, 7, 9), 4, (1, 1)),
    "padding 2 by 1": ((2, 2, 5, 6), 3, (2, 1)),
    "one input channel": ((3, 1, 6, 6), 2, (1, 0)),
}
TOLERANCE = {np.float32: dict(rtol=1e-4, atol=1e-5), np.float64: dict(rtol=1e-10, atol=1e-10)}


def case(name, dtype):
    xs, out_ch, padding = CASES[name]
    rng = np.random.default_rng(0)
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal((out_ch, xs[1], 3, 3)).astype(dtype)
    attrs = dict(stride=(1, 1), padding=padding, dilation=(1, 1), groups=1)
    y = conv2d_reference(x, w, **attrs)
    dy = rng.standard_normal(y.shape).astype(dtype)
    return x, w, dy, attrs, (1, 1, *padding, 1, 1, 1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("chunks", [1, 4])
def test_winograd_conv2d_and_gradients_match_references(name, dtype, chunks):
    x, w, dy, attrs, ints = case(name, dtype)
    for kernel, out, expected in run_three(x, w, dy, attrs, ints, chunks):
        np.testing.assert_allclose(out, expected, **TOLERANCE[dtype], err_msg=kernel.__name__)


def run_three(x, w, dy, attrs, ints, chunks):
    """[(kernel, its result, the reference's)] for the forward and both gradients, each
    run on an output and a work array full of NaN."""
    shape = W.winograd_workspace_shape(x.shape, w.shape, dy.shape, chunks)
    results = []
    for kernel, args, expected in [
            (L.conv2d_winograd, (x, w), conv2d_reference(x, w, **attrs)),
            (L.conv2d_grad_input_winograd, (dy, w),
             conv2d_grad_input_reference(dy, w, x.shape[2:], **attrs)),
            (L.conv2d_grad_weight_winograd, (x, dy),
             conv2d_grad_weight_reference(x, dy, w.shape[2:], **attrs))]:
        out = np.full(expected.shape, np.nan, x.dtype)
        kernel(*args, out, *ints, np.full(shape, np.nan, x.dtype))
        results.append((kernel, out, expected))
    return results


def test_winograd_rounding_at_w2s_conv2_size_stays_near_float64():
    """The transforms add up to 9 terms before the channel sums: at W2's conv2 (32
    channels, 24x24 outputs), float32 stays within 1e-6 of the float64 result,
    relative to the largest output (measured: 2.5e-7; im2col + GEMM 3.6e-7)."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 32, 26, 26)).astype(np.float32)
    w = (rng.standard_normal((64, 32, 3, 3)) / 17).astype(np.float32)
    expected = conv2d_reference(x.astype(np.float64), w.astype(np.float64), stride=(1, 1),
                                padding=(0, 0), dilation=(1, 1), groups=1)
    out = np.empty(expected.shape, np.float32)
    work = np.empty(W.winograd_workspace_shape(x.shape, w.shape, out.shape, 2), np.float32)
    L.conv2d_winograd(x, w, out, 1, 1, 0, 0, 1, 1, 1, work)
    assert np.abs(out - expected).max() / np.abs(expected).max() < 1e-6


@pytest.mark.parametrize("channels, variant", [(32, "winograd"), (16, "runs")])
def test_compiled_3x3_conv_runs_winograd_from_32_channels_and_matches_reference(channels,
                                                                                 variant):
    """32 -> 32 channels at 10x10 (4 x 4 tiles) is the smallest shape conv_variant sends
    to Winograd; with 16 the GEMM of shifted runs is faster. The compiled step calls
    the three kernels and agrees with the reference device, forward and both
    gradients."""
    x = gc.placeholder((2, channels, 10, 10), name="x")
    w = gc.placeholder((channels, channels, 3, 3), name="w")
    y = gc.nn.functional.conv2d(x, w, padding=1)
    loss = gc.sum(gc.tanh(y))
    outputs = [loss] + gc.grad(loss, [x, w])
    rng = np.random.default_rng(2)
    feeds = [(rng.standard_normal(s) / 8).astype(np.float32) for s in (x.shape, w.shape)]
    step = gc.compile(outputs, inputs=[x, w], device="cpu")
    got = step(*feeds)
    source = next(iter(step._plans.values())).source
    for kernel in ("conv2d", "conv2d_grad_input", "conv2d_grad_weight"):    # over the threads
        assert re.search(rf"_lib\.{kernel}_{variant}_parts\(.*\) in \d+ chunks", source)
    expected = gc.compile(outputs, inputs=[x, w], device="reference")(*feeds)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("special", [-np.inf, np.inf, np.nan])
@pytest.mark.parametrize("chunks", [1, 4])
def test_an_infinite_or_nan_input_gives_the_direct_sums_infinities_not_nan(special, chunks):
    """The transforms add and subtract neighbours, so one infinite input made NaN of
    every output near it (inf - inf); the reference's there are +-inf. The kernels
    compute such an image again directly: every output, and both gradients, equal
    the reference's, NaN where its are. Image 1 of 2 holds the value (in x, and in
    dy for the input gradient); the others stay Winograd's."""
    x, w, dy, attrs, ints = case("odd outputs, padded", np.float32)
    x, dy = x.copy(), dy.copy()
    x[1, 2, 3, 4] = special
    dy[1, 0, 2, 5] = special
    for kernel, out, expected in run_three(x, w, dy, attrs, ints, chunks):
        assert not np.isfinite(expected).all()
        np.testing.assert_allclose(out, expected, **TOLERANCE[np.float32],
                                   err_msg=kernel.__name__)
