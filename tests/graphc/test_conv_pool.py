"""conv2d, max_pool2d and avg_pool2d: values against naive loop references written
here (independent of graphc's einsum references), gradients against finite
differences, grad of grad through conv2d, and bad-input errors."""
import numpy as np
import pytest

import graphc as gc
import helpers


# -- naive references: one output element at a time ---------------------------------

def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def out_size(size, k, s, p, d):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def naive_conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    n_, c_, h_, w_ = x.shape
    o_, cg, kh, kw = w.shape
    assert c_ == cg * groups
    ho, wo = out_size(h_, kh, sh, ph, dh), out_size(w_, kw, sw, pw, dw)
    og = o_ // groups
    y = np.zeros((n_, o_, ho, wo), np.float64)
    for n in range(n_):
        for o in range(o_):
            g = o // og
            for oh in range(ho):
                for ow in range(wo):
                    acc = 0.0
                    for c in range(cg):
                        for i in range(kh):
                            for j in range(kw):
                                r, q = oh * sh - ph + i * dh, ow * sw - pw + j * dw
                                if 0 <= r < h_ and 0 <= q < w_:
                                    acc += float(x[n, g * cg + c, r, q]) * float(w[o, c, i, j])
                    y[n, o, oh, ow] = acc + (float(b[o]) if b is not None else 0.0)
    return y


def _windows(shape, kernel, stride, padding, dilation):
    """Yield (n, c, oh, ow, [(r, q) in-bounds positions], window size)."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = map(_pair, (kernel, stride, padding, dilation))
    n_, c_, h_, w_ = shape
    ho, wo = out_size(h_, kh, sh, ph, dh), out_size(w_, kw, sw, pw, dw)
    for n in range(n_):
        for c in range(c_):
            for oh in range(ho):
                for ow in range(wo):
                    inside = [(oh * sh - ph + i * dh, ow * sw - pw + j * dw)
                              for i in range(kh) for j in range(kw)]
                    inside = [(r, q) for r, q in inside if 0 <= r < h_ and 0 <= q < w_]
                    yield n, c, oh, ow, inside, kh * kw


def naive_max_pool2d(x, kernel, stride=None, padding=0, dilation=1):
    stride = kernel if stride is None else stride
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = map(_pair, (kernel, stride, padding, dilation))
    ho, wo = out_size(x.shape[2], kh, sh, ph, dh), out_size(x.shape[3], kw, sw, pw, dw)
    y = np.zeros(x.shape[:2] + (ho, wo), np.float64)
    for n, c, oh, ow, inside, _ in _windows(x.shape, kernel, stride, padding, dilation):
        y[n, c, oh, ow] = max(float(x[n, c, r, q]) for r, q in inside)
    return y


def naive_avg_pool2d(x, kernel, stride=None, padding=0, count_include_pad=True,
                     divisor_override=None):
    stride = kernel if stride is None else stride
    (kh, kw), (sh, sw), (ph, pw) = map(_pair, (kernel, stride, padding))
    ho, wo = out_size(x.shape[2], kh, sh, ph, 1), out_size(x.shape[3], kw, sw, pw, 1)
    y = np.zeros(x.shape[:2] + (ho, wo), np.float64)
    for n, c, oh, ow, inside, size in _windows(x.shape, kernel, stride, padding, 1):
        total = sum(float(x[n, c, r, q]) for r, q in inside)
        if divisor_override:
            divisor = divisor_override
        elif count_include_pad:
            divisor = size
        else:
            divisor = len(inside)
        y[n, c, oh, ow] = total / divisor
    return y


def test_naive_conv_reference_matches_hand_values():
    # 1x1x3x3 input, 2x2 kernel of ones: each output is the sum of a 2x2 block.
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    w = np.ones((1, 1, 2, 2))
    np.testing.assert_array_equal(naive_conv2d(x, w), [[[[8, 12], [20, 24]]]])


# -- conv2d values --------------------------------------------------------------------

CONV_CONFIGS = [
    # (x shape, w shape, kwargs)
    ((2, 3, 5, 6), (4, 3, 3, 3), dict()),
    ((2, 3, 6, 7), (4, 3, 3, 3), dict(stride=2, padding=1)),
    ((1, 2, 5, 6), (3, 2, 3, 2), dict(stride=(2, 1), padding=(1, 2))),
    ((1, 2, 7, 7), (2, 2, 3, 3), dict(dilation=2, padding=2)),
    ((2, 4, 5, 5), (6, 2, 3, 3), dict(groups=2, padding=1)),
    ((1, 4, 5, 6), (8, 1, 3, 3), dict(groups=4, padding=1)),            # depthwise x2
    ((1, 4, 8, 7), (4, 2, 3, 2), dict(stride=2, padding=(1, 0), dilation=(2, 1), groups=2)),
    ((1, 2, 4, 4), (3, 2, 1, 1), dict(stride=2)),                        # 1x1 kernel
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("use_bias", [False, True])
@pytest.mark.parametrize("xs,ws,kwargs", CONV_CONFIGS)
def test_conv2d_matches_naive_loops(xs, ws, kwargs, use_bias, dtype):
    r = helpers.rng(1)
    x = r.standard_normal(xs).astype(dtype)
    w = r.standard_normal(ws).astype(dtype)
    b = r.standard_normal(ws[0]).astype(dtype) if use_bias else None
    xp, wp = gc.placeholder(xs, dtype), gc.placeholder(ws, dtype)
    bp = gc.placeholder((ws[0],), dtype) if use_bias else None
    y = gc.nn.conv2d(xp, wp, bp, **kwargs)
    feeds = {xp: x, wp: w, **({bp: b} if use_bias else {})}
    got = helpers.evaluate(y, feeds)
    want = naive_conv2d(x, w, b, **kwargs)
    assert y.dtype == dtype and got.dtype == np.dtype(dtype)
    assert got.shape == want.shape
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


@pytest.mark.parametrize("xs,ws,kwargs", CONV_CONFIGS)
def test_conv2d_static_shape_follows_output_formula(xs, ws, kwargs):
    y = gc.nn.conv2d(gc.placeholder(xs, "float32"), gc.placeholder(ws, "float32"), **kwargs)
    s, p, d = (_pair(kwargs.get(k, v)) for k, v in (("stride", 1), ("padding", 0), ("dilation", 1)))
    expected = (xs[0], ws[0]) + tuple(
        (xs[2 + i] + 2 * p[i] - d[i] * (ws[2 + i] - 1) - 1) // s[i] + 1 for i in (0, 1))
    assert y.shape == expected


def test_conv2d_batch_dimension_may_be_unknown():
    x = gc.placeholder((None, 3, 6, 6), "float32")
    y = gc.nn.conv2d(x, gc.placeholder((5, 3, 3, 3), "float32"), stride=2, padding=1)
    assert y.shape == (None, 5, 3, 3)


@pytest.mark.parametrize("kernel,dilation",
                         [((3, 3), 1), ((5, 3), 1), ((3, 3), 2), ((1, 5), (1, 2))])
def test_conv2d_same_padding_keeps_spatial_size(kernel, dilation):
    r = helpers.rng(2)
    x = r.standard_normal((1, 2, 6, 7))
    w = r.standard_normal((3, 2) + kernel)
    y = gc.nn.conv2d(gc.constant(x), gc.constant(w), padding="same", dilation=dilation)
    assert y.shape == (1, 3, 6, 7)
    d = _pair(dilation)
    pad = tuple(d[i] * (kernel[i] - 1) // 2 for i in (0, 1))
    np.testing.assert_allclose(helpers.evaluate(y), naive_conv2d(x, w, padding=pad, dilation=d),
                               rtol=1e-12, atol=1e-12)


def test_conv2d_valid_padding_is_no_padding():
    r = helpers.rng(3)
    x, w = r.standard_normal((2, 2, 5, 6)), r.standard_normal((3, 2, 3, 2))
    y = gc.nn.conv2d(gc.constant(x), gc.constant(w), padding="valid", stride=(1, 2))
    assert y.shape == (2, 3, 3, 3)
    np.testing.assert_allclose(helpers.evaluate(y), naive_conv2d(x, w, stride=(1, 2)),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kernel,dilation", [((2, 2), 1), ((4, 3), (1, 2)), ((2, 5), (3, 1))])
def test_conv2d_same_padding_with_an_even_kernel_pads_the_extra_row_after(kernel, dilation):
    # PyTorch's rule: of an odd total padding, the larger half goes after
    r = helpers.rng(4)
    x, w = r.standard_normal((2, 3, 7, 8)), r.standard_normal((4, 3) + kernel)
    d = _pair(dilation)
    total = [d[i] * (kernel[i] - 1) for i in (0, 1)]
    padded = np.pad(x, ((0, 0), (0, 0), (total[0] // 2, total[0] - total[0] // 2),
                        (total[1] // 2, total[1] - total[1] // 2)))
    y = gc.nn.conv2d(gc.constant(x), gc.constant(w), padding="same", dilation=dilation)
    assert y.shape == (2, 4, 7, 8)
    np.testing.assert_allclose(helpers.evaluate(y), naive_conv2d(padded, w, dilation=d),
                               rtol=1e-12, atol=1e-12)
    helpers.check_grad(lambda t: gc.nn.conv2d(t, gc.constant(w), padding="same",
                                              dilation=dilation), [x[:1]])


def test_conv2d_same_padding_with_stride_is_refused():
    with pytest.raises(gc.ShapeError, match="conv2d.*stride 1"):
        gc.nn.conv2d(gc.placeholder((1, 1, 4, 4)), gc.placeholder((1, 1, 3, 3)), padding="same",
                     stride=2)


def test_conv2d_promotes_mixed_float_dtypes():
    y = gc.nn.conv2d(gc.placeholder((1, 1, 4, 4), "float32"),
                     gc.placeholder((1, 1, 3, 3), "float64"))
    assert y.dtype == "float64"


# -- conv2d bad input -----------------------------------------------------------------

def _shape_text(shape):
    return str(tuple(shape))


@pytest.mark.parametrize("xs,ws,kwargs", [
    ((2, 3, 5, 5), (4, 2, 3, 3), dict()),                 # channel mismatch
    ((2, 4, 5, 5), (4, 4, 3, 3), dict(groups=2)),         # mismatch once grouped
    ((3, 5, 5), (4, 3, 3, 3), dict()),                    # 3-D input
    ((1, 3, 2, 2), (4, 3, 5, 5), dict(padding=1)),        # kernel larger than padded input
    ((1, 3, 4, 4), (4, 3, 3, 3), dict(dilation=3)),       # dilated kernel too large
])
def test_conv2d_bad_shapes_raise_shape_error_naming_op_and_both_shapes(xs, ws, kwargs):
    x, w = gc.placeholder(xs, "float32"), gc.placeholder(ws, "float32")
    with pytest.raises(gc.ShapeError) as info:
        gc.nn.conv2d(x, w, **kwargs)
    message = str(info.value)
    assert "conv2d" in message
    assert _shape_text(xs) in message, message
    assert _shape_text(ws) in message, message
    assert __file__ in message          # the user's line


def test_conv2d_integer_input_raises_dtype_error():
    with pytest.raises(gc.DtypeError, match="conv2d.*int64"):
        gc.nn.conv2d(gc.placeholder((1, 1, 4, 4), "int64"), gc.placeholder((1, 1, 3, 3), "float32"))


# -- pooling values --------------------------------------------------------------------

POOL_CONFIGS = [
    # (x shape, kernel, stride, padding)
    ((2, 3, 6, 6), 2, 2, 0),          # non-overlapping
    ((2, 2, 7, 7), 3, 2, 0),          # overlapping
    ((1, 2, 7, 6), 3, 2, 1),          # overlapping, padded
    ((1, 2, 5, 6), (2, 3), (1, 2), (1, 1)),
    ((1, 1, 6, 6), 2, None, 1),       # stride defaults to the kernel
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("xs,kernel,stride,padding", POOL_CONFIGS)
def test_max_pool2d_matches_naive_loops(xs, kernel, stride, padding, dtype):
    x = helpers.rng(4).standard_normal(xs).astype(dtype)
    xp = gc.placeholder(xs, dtype)
    y = gc.nn.max_pool2d(xp, kernel, stride, padding)
    got = helpers.evaluate(y, {xp: x})
    want = naive_max_pool2d(x, kernel, stride, padding)
    assert y.shape == want.shape and got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got, want.astype(dtype))


@pytest.mark.parametrize("xs,kernel,stride,padding,dilation", [
    ((1, 2, 7, 7), 2, 1, 0, 2),
    ((1, 1, 9, 8), 3, 2, 1, 2),
    ((2, 1, 7, 8), (2, 3), (2, 1), (1, 1), (3, 2)),
])
def test_max_pool2d_with_dilation_matches_naive_loops(xs, kernel, stride, padding, dilation):
    x = helpers.rng(5).standard_normal(xs)
    y = gc.nn.max_pool2d(gc.constant(x), kernel, stride, padding, dilation)
    want = naive_max_pool2d(x, kernel, stride, padding, dilation)
    assert y.shape == want.shape
    np.testing.assert_array_equal(helpers.evaluate(y), want)


@pytest.mark.parametrize("device", ["reference", "cpu"])
def test_max_pool2d_propagates_nan_and_its_first_nan_takes_the_gradient(device):
    # PyTorch's rule: a window holding a NaN is NaN (it used to be dropped, hiding divergence)
    x = np.array([[[[np.nan, 1, 2], [0.5, -1, 3]], [[1, np.nan, np.nan], [7, 0, 2]]]],
                 np.float32)
    xp = gc.placeholder(x.shape)
    y = gc.nn.max_pool2d(xp, 2, 1)
    (g,) = gc.grad(gc.sum(y), [xp])
    got, grad = gc.compile([y, g], inputs=[xp], device=device)(x)
    np.testing.assert_array_equal(got, [[[[np.nan, 3]], [[np.nan, np.nan]]]])
    np.testing.assert_array_equal(grad, [[[[1, 0, 0], [0, 0, 1]], [[0, 2, 0], [0, 0, 0]]]])


def test_max_pool2d_padding_never_wins_over_negative_values():
    x = -1.0 - np.arange(16.0).reshape(1, 1, 4, 4)       # all negative
    got = helpers.evaluate(gc.nn.max_pool2d(gc.constant(x), 3, 1, 1))
    assert (got < 0).all()
    np.testing.assert_array_equal(got, naive_max_pool2d(x, 3, 1, 1))


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("xs,kernel,stride,padding", POOL_CONFIGS)
def test_avg_pool2d_matches_naive_loops(xs, kernel, stride, padding, dtype, count_include_pad):
    x = helpers.rng(6).standard_normal(xs).astype(dtype)
    xp = gc.placeholder(xs, dtype)
    y = gc.nn.avg_pool2d(xp, kernel, stride, padding, count_include_pad=count_include_pad)
    got = helpers.evaluate(y, {xp: x})
    want = naive_avg_pool2d(x, kernel, stride, padding, count_include_pad)
    assert y.shape == want.shape and got.dtype == np.dtype(dtype)
    tol = 1e-6 if dtype == "float32" else 1e-13
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def test_avg_pool2d_count_include_pad_changes_border_values_by_hand():
    x = np.ones((1, 1, 2, 2))
    # kernel 2, stride 1, padding 1: a 3x3 output; corners see 1 real element,
    # edges 2, the centre 4 (of 4 window positions).
    with_pad = helpers.evaluate(gc.nn.avg_pool2d(gc.constant(x), 2, 1, 1))
    without = helpers.evaluate(gc.nn.avg_pool2d(gc.constant(x), 2, 1, 1, count_include_pad=False))
    np.testing.assert_allclose(with_pad[0, 0],
                               [[0.25, 0.5, 0.25], [0.5, 1, 0.5], [0.25, 0.5, 0.25]])
    np.testing.assert_allclose(without[0, 0], np.ones((3, 3)))


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("xs,kernel,stride,padding",
                         [((1, 2, 6, 6), 2, 2, 0), ((1, 2, 7, 7), 3, 2, 1)])
def test_avg_pool2d_divisor_override_divides_every_window_by_it(xs, kernel, stride, padding,
                                                                count_include_pad):
    x = helpers.rng(7).standard_normal(xs)
    y = gc.nn.avg_pool2d(gc.constant(x), kernel, stride, padding,
                         count_include_pad=count_include_pad, divisor_override=5)
    want = naive_avg_pool2d(x, kernel, stride, padding, count_include_pad, divisor_override=5)
    np.testing.assert_allclose(helpers.evaluate(y), want, rtol=1e-13, atol=1e-13)


def test_pool_padding_larger_than_half_kernel_is_refused():
    with pytest.raises(gc.ArgumentError, match="max_pool2d.*padding"):
        gc.nn.max_pool2d(gc.placeholder((1, 1, 6, 6)), 2, 2, 2)
    with pytest.raises(gc.ArgumentError, match="avg_pool2d.*padding"):
        gc.nn.avg_pool2d(gc.placeholder((1, 1, 6, 6)), 3, 1, 2)


def test_pool_of_3d_input_raises_shape_error_with_shape():
    with pytest.raises(gc.ShapeError, match=r"max_pool2d.*\(3, 6, 6\)"):
        gc.nn.max_pool2d(gc.placeholder((3, 6, 6)), 2)



# -- argument checks (kernel, stride, padding, dilation, groups, divisor) ------------------

X4 = (1, 1, 4, 4)


@pytest.mark.parametrize("call,words", [
    (lambda x: gc.nn.max_pool2d(x, 2, dilation=0), r"max_pool2d: dilation must be positive, got 0"),
    (lambda x: gc.nn.max_pool2d(x, 2, stride=0), r"max_pool2d: stride must be positive, got 0"),
    (lambda x: gc.nn.max_pool2d(x, 0), r"max_pool2d: kernel_size must be positive, got 0"),
    (lambda x: gc.nn.max_pool2d(x, 2, padding=-1), r"max_pool2d: padding must be non-negative"),
    (lambda x: gc.nn.max_pool2d(x, 2.0), r"max_pool2d: kernel_size must be an int or a pair"),
    (lambda x: gc.nn.avg_pool2d(x, (2, 0)), r"avg_pool2d: kernel_size must be positive"),
    (lambda x: gc.nn.avg_pool2d(x, 2, divisor_override=0),
     r"avg_pool2d: divisor_override must be positive, got 0"),
    (lambda x: gc.nn.avg_pool2d(x, 2, divisor_override=-2),
     r"avg_pool2d: divisor_override must be positive, got -2"),
    (lambda x: gc.nn.avg_pool2d(x, 2, divisor_override=1.5),
     r"avg_pool2d: divisor_override must be an int, got 1.5"),
    (lambda x: gc.nn.conv2d(x, gc.placeholder((1, 1, 3, 3)), stride=0),
     r"conv2d: stride must be positive, got 0"),
    (lambda x: gc.nn.conv2d(x, gc.placeholder((1, 1, 3, 3)), padding=-1),
     r"conv2d: padding must be non-negative, got -1"),
    (lambda x: gc.nn.conv2d(x, gc.placeholder((1, 1, 3, 3)), groups=1.0),
     r"conv2d: groups must be an int, got 1.0"),
])
def test_functional_pool_and_conv_arguments_are_checked(call, words):
    with pytest.raises(gc.ArgumentError, match=words) as info:
        call(gc.placeholder(X4))
    assert info.value.loc.file == __file__


@pytest.mark.parametrize("make,words", [
    (lambda: gc.nn.MaxPool2d(2, dilation=0), r"MaxPool2d: dilation must be positive, got 0"),
    (lambda: gc.nn.MaxPool2d(2, stride=0), r"MaxPool2d: stride must be positive, got 0"),
    (lambda: gc.nn.MaxPool2d(2, padding=-1), r"MaxPool2d: padding must be non-negative"),
    (lambda: gc.nn.MaxPool2d(2, padding=2),
     r"MaxPool2d: padding \(2, 2\) must be at most half the kernel \(2, 2\)"),
    (lambda: gc.nn.AvgPool2d(0), r"AvgPool2d: kernel_size must be positive, got 0"),
    (lambda: gc.nn.AvgPool2d(2, divisor_override=0),
     r"AvgPool2d: divisor_override must be positive, got 0"),
    (lambda: gc.nn.Conv2d(1, 2, 0), r"Conv2d: kernel_size must be positive, got 0"),
    (lambda: gc.nn.Conv2d(1, 2, 3, stride=0), r"Conv2d: stride must be positive, got 0"),
    (lambda: gc.nn.Conv2d(1, 2, 3, dilation=0), r"Conv2d: dilation must be positive, got 0"),
    (lambda: gc.nn.Conv2d(1, 2, 3, padding=-1), r"Conv2d: padding must be non-negative"),
    (lambda: gc.nn.Conv2d(1, 2, 3, padding="full"), r"Conv2d: padding must be 'valid', 'same'"),
    (lambda: gc.nn.Conv2d(1, 2, (3, 3, 3)), r"Conv2d: kernel_size must be an int or a pair"),
])
def test_pool_and_conv_modules_check_arguments_when_constructed(make, words):
    with pytest.raises(gc.ArgumentError, match=words) as info:
        make()
    assert info.value.loc.file == __file__


@pytest.mark.parametrize("op,attrs,words", [
    ("max_pool2d", dict(dilation=(0, 1)), r"max_pool2d: .*dilation \(0, 1\) must be positive"),
    ("avg_pool2d", dict(count_include_pad=True, divisor_override=0),
     r"avg_pool2d: divisor_override must be a positive int, got 0"),
])
def test_pool_ops_refuse_bad_attributes_given_directly(op, attrs, words):
    from graphc.tensor import apply
    with pytest.raises(gc.ArgumentError, match=words):
        apply(op, gc.placeholder(X4), kernel=(2, 2), stride=(2, 2), padding=(0, 0), **attrs)


def test_numpy_integer_kernel_stride_and_dilation_are_accepted():
    x = helpers.rng(8).standard_normal(X4)
    y = gc.nn.MaxPool2d(np.int64(2))(gc.constant(x))
    np.testing.assert_array_equal(helpers.evaluate(y), naive_max_pool2d(x, 2, 2, 0))
    w = helpers.rng(9).standard_normal((1, 1, 3, 3))
    z = gc.nn.conv2d(gc.constant(x), gc.constant(w), stride=np.int64(1),
                     dilation=(np.int32(1), 1))
    np.testing.assert_allclose(helpers.evaluate(z), naive_conv2d(x, w), rtol=1e-12)
    assert gc.nn.Conv2d(1, 2, np.int64(3)).kernel_size == (3, 3)


# -- max pool tie-breaking (hand values) -----------------------------------------------

def _pool_value_and_grad(x, dy, *args):
    xp = gc.placeholder(x.shape, "float64")
    y = gc.nn.max_pool2d(xp, *args)
    (dx,) = gc.grad(gc.sum(y * gc.constant(dy)), [xp])
    return helpers.evaluate([y, dx], {xp: x})


def test_max_pool2d_tie_sends_gradient_to_first_maximum_non_overlapping():
    x = np.array([[[[2., 7., 7., 1.],
                    [7., 0., 1., 1.],
                    [3., 3., 4., 4.],
                    [3., 3., 4., 4.]]]])
    dy = np.array([[[[10., 20.], [30., 40.]]]])
    y, dx = _pool_value_and_grad(x, dy, 2, 2)
    np.testing.assert_array_equal(y, [[[[7., 7.], [3., 4.]]]])
    # Row-major first maximum in each window gets all of its gradient.
    np.testing.assert_array_equal(dx, [[[[0., 10., 20., 0.],
                                         [0., 0., 0., 0.],
                                         [30., 0., 40., 0.],
                                         [0., 0., 0., 0.]]]])


def test_max_pool2d_tie_sends_gradient_to_first_maximum_overlapping():
    # kernel (1, 2), stride 1 over [4, 4, 4, 1]: windows {0,1}, {1,2}, {2,3}.
    x = np.array([[[[4., 4., 4., 1.]]]])
    dy = np.array([[[[1., 10., 100.]]]])
    y, dx = _pool_value_and_grad(x, dy, (1, 2), 1)
    np.testing.assert_array_equal(y, [[[[4., 4., 4.]]]])
    np.testing.assert_array_equal(dx, [[[[1., 10., 100., 0.]]]])


def test_max_pool2d_gradient_accumulates_where_windows_share_the_maximum():
    # kernel 3 stride 2 on 5x5: the centre 9 is in all four windows.
    x = np.zeros((1, 1, 5, 5))
    x[0, 0, 2, 2] = 9.0
    dy = np.array([[[[1., 2.], [3., 4.]]]])
    y, dx = _pool_value_and_grad(x, dy, 3, 2)
    np.testing.assert_array_equal(y, np.full((1, 1, 2, 2), 9.0))
    want = np.zeros((1, 1, 5, 5))
    want[0, 0, 2, 2] = 10.0
    np.testing.assert_array_equal(dx, want)


# -- gradients --------------------------------------------------------------------------

GRAD_CONV_CONFIGS = [
    ((2, 2, 5, 5), (3, 2, 3, 3), dict(stride=2, padding=1)),
    ((1, 4, 6, 5), (4, 2, 3, 2), dict(padding=(1, 2), groups=2)),
    ((1, 2, 7, 6), (2, 1, 3, 3), dict(dilation=2, padding=1, groups=2)),
    ((2, 3, 6, 6), (3, 1, 2, 2), dict(stride=(2, 1), dilation=(1, 2), groups=3)),   # depthwise
]


@pytest.mark.parametrize("xs,ws,kwargs", GRAD_CONV_CONFIGS)
def test_conv2d_gradients_wrt_input_weight_bias_match_finite_differences(xs, ws, kwargs):
    r = helpers.rng(8)
    arrays = [r.standard_normal(xs), r.standard_normal(ws), r.standard_normal(ws[0])]
    helpers.check_grad(lambda x, w, b: gc.nn.conv2d(x, w, b, **kwargs), arrays, tol=1e-6)


def test_conv2d_gradient_of_mixed_dtypes_has_each_operands_dtype():
    x, w = gc.placeholder((1, 1, 4, 4), "float32"), gc.placeholder((1, 1, 3, 3), "float64")
    gx, gw = gc.grad(gc.sum(gc.nn.conv2d(x, w)), [x, w])
    assert (gx.dtype, gw.dtype) == ("float32", "float64")
    assert (gx.shape, gw.shape) == (x.shape, w.shape)


@pytest.mark.parametrize("xs,kernel,stride,padding,dilation", [
    ((2, 2, 6, 6), 2, 2, 0, 1),         # non-overlapping
    ((1, 2, 7, 7), 3, 2, 1, 1),         # overlapping, padded
    ((1, 1, 7, 6), (2, 3), 1, (1, 1), (2, 1)),
])
def test_max_pool2d_gradient_matches_finite_differences(xs, kernel, stride, padding, dilation):
    # Distinct values 0.1 apart: no near-ties for the finite differences to cross.
    x = helpers.rng(9).permutation(int(np.prod(xs))).reshape(xs) * 0.1
    helpers.check_grad(lambda t: gc.nn.max_pool2d(t, kernel, stride, padding, dilation), [x])


@pytest.mark.parametrize("count_include_pad,divisor_override", [(True, None), (False, None),
                                                                (True, 3)])
@pytest.mark.parametrize("xs,kernel,stride,padding", [
    ((2, 2, 6, 6), 2, 2, 0),            # non-overlapping
    ((1, 2, 7, 7), 3, 2, 1),            # overlapping, padded
])
def test_avg_pool2d_gradient_matches_finite_differences(xs, kernel, stride, padding,
                                                        count_include_pad, divisor_override):
    x = helpers.rng(10).standard_normal(xs)
    helpers.check_grad(lambda t: gc.nn.avg_pool2d(t, kernel, stride, padding,
                                                  count_include_pad=count_include_pad,
                                                  divisor_override=divisor_override), [x])


# -- grad of grad: conv2d_grad_input / conv2d_grad_weight / avg_pool2d_grad ------------

@pytest.mark.parametrize("xs,ws,kwargs", GRAD_CONV_CONFIGS[:3])
def test_conv2d_hessian_vector_product_matches_gradient_differences(xs, ws, kwargs):
    r = helpers.rng(11)
    # tanh makes the Hessian depend on x and w, not only their cross terms.
    helpers.check_hvp(lambda x, w: gc.tanh(gc.nn.conv2d(x, w, **kwargs)),
                      [r.standard_normal(xs) * 0.5, r.standard_normal(ws) * 0.5])


@pytest.mark.parametrize("xs,ws,kwargs", GRAD_CONV_CONFIGS[:2])
def test_conv2d_gradient_ops_have_correct_gradients(xs, ws, kwargs):
    """d/d(x, w, u) of <conv2d_grad_input(u, w), a> + <conv2d_grad_weight(x, u), c>."""
    r = helpers.rng(12)
    x, w = r.standard_normal(xs), r.standard_normal(ws)
    u = r.standard_normal(naive_conv2d(x, w, **kwargs).shape)

    def build(xv, wv, u):
        gx, gw = gc.grad(gc.sum(gc.nn.conv2d(xv, wv, **kwargs) * u), [xv, wv])
        assert (gx.op, gw.op) == ("conv2d_grad_input", "conv2d_grad_weight")
        return gc.sum(gc.tanh(gx)) + gc.sum(gc.tanh(gw))

    helpers.check_grad(build, [x, w, u])


def test_avg_pool2d_hessian_vector_product_matches_gradient_differences():
    x = helpers.rng(13).standard_normal((1, 2, 7, 7))
    helpers.check_hvp(lambda t: gc.nn.avg_pool2d(t, 3, 2, 1) ** 2, [x])


# -- grad of grad through max pooling ------------------------------------------------------

def _distinct(shape, seed):
    values = np.random.default_rng(seed).permutation(int(np.prod(shape))).astype(np.float64)
    return (values / values.size - 0.5).reshape(shape)


@pytest.mark.parametrize("kernel, stride, padding", [(2, 2, 0), (3, 2, 1)])
def test_max_pool_hessian_vector_product_matches_differences(kernel, stride, padding):
    from helpers import check_hvp
    x = _distinct((2, 2, 6, 6), seed=3)
    check_hvp(lambda t: gc.tanh(gc.nn.max_pool2d(gc.exp(t), kernel, stride, padding)), [x])


def test_max_pool_select_gradient_in_g_matches_differences():
    from helpers import check_grad
    x = _distinct((1, 2, 5, 5), seed=4)
    g = np.random.default_rng(5).standard_normal((1, 2, 5, 5))
    attrs = dict(kernel=(3, 3), stride=(2, 2), padding=(1, 1), dilation=(1, 1))
    from graphc.tensor import apply
    check_grad(lambda a, b: apply("max_pool2d_select", gc.stop_gradient(a), b, **attrs), [x, g],
               wrt=[1])


def test_max_pool_select_picks_g_at_each_windows_first_maximum():
    x = np.array([[[[1.0, 3.0], [3.0, 0.0]]]])
    g = np.array([[[[10.0, 20.0], [30.0, 40.0]]]])
    from graphc.tensor import apply
    from helpers import evaluate
    xs, gs = gc.placeholder(x.shape, "float64"), gc.placeholder(g.shape, "float64")
    out = apply("max_pool2d_select", xs, gs, kernel=(2, 2), stride=(2, 2), padding=(0, 0),
                dilation=(1, 1))
    (value,) = evaluate([out], {xs: x, gs: g})
    assert value.reshape(-1).tolist() == [20.0]      # the first 3 (row-major) wins the tie
