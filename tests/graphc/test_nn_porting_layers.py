"""gc.nn.GroupNorm / group_norm, Dropout2d / dropout2d, Conv1d / conv1d and the
recurrent cells RNNCell, LSTMCell, GRUCell: values against float64 NumPy
versions of PyTorch's formulas (with the modules' own weights), gradients
against central differences, the CPU compiler against the reference,
PyTorch's parameter names, shapes and init, and errors naming the module."""
import math

import numpy as np
import pytest
from helpers import central_differences, check_grad, evaluate, relative_error, rng

import graphc as gc
from graphc import nn

F64 = "float64"


def cpu_matches_reference(outputs, feeds, rtol=2e-4, atol=1e-5):
    """The outputs on device='cpu' equal those on 'reference' within float32 tolerance
    (random draws too: both run from the same rng counter)."""
    reference = gc.compile(outputs, inputs=list(feeds), device="reference")
    cpu = gc.compile(outputs, inputs=list(feeds), device="cpu")
    counter = next(iter(feeds)).graph.rng_counter
    start = None if counter is None else counter.attrs["state"].value.copy()
    expected = reference(*feeds.values())
    if counter is not None:
        counter.attrs["state"].value = start
    got = cpu(*feeds.values())
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g, e, rtol=rtol, atol=atol)
    return expected


def loss_of(outputs):
    """A random projection of the outputs to a scalar (an unknown axis: shared weights)."""
    outputs = outputs if isinstance(outputs, (tuple, list)) else [outputs]
    shapes = [tuple(1 if d is None else d for d in o.shape) for o in outputs]
    return sum(gc.sum(o * gc.constant(rng(40 + i).standard_normal(shape).astype(o.dtype)))
               for i, (o, shape) in enumerate(zip(outputs, shapes)))


# -- GroupNorm ----------------------------------------------------------------------------

def np_group_norm(x, groups, weight, bias, eps=1e-5):
    n, c = x.shape[:2]
    grouped = x.reshape(n, groups, -1)
    mu, var = grouped.mean(-1, keepdims=True), grouped.var(-1, keepdims=True)
    y = ((grouped - mu) / np.sqrt(var + eps)).reshape(x.shape)
    shape = (1, c) + (1,) * (x.ndim - 2)
    if weight is not None:
        y = y * weight.reshape(shape)
    return y if bias is None else y + bias.reshape(shape)


@pytest.mark.parametrize("shape,groups", [((3, 6), 2), ((2, 6, 5), 3), ((2, 4, 3, 3), 4),
                                          ((2, 4, 3, 3), 1)])
def test_group_norm_module_matches_numpy(shape, groups):
    norm = nn.GroupNorm(groups, shape[1], eps=1e-3, dtype=F64)
    norm.weight.assign(rng(1).standard_normal(shape[1]))
    norm.bias.assign(rng(2).standard_normal(shape[1]))
    x = rng(3).standard_normal(shape) * 2 + 1
    ph = gc.placeholder((None,) + shape[1:], F64)
    expected = np_group_norm(x, groups, norm.weight.value, norm.bias.value, 1e-3)
    np.testing.assert_allclose(evaluate(norm(ph), {ph: x}), expected, rtol=1e-10, atol=1e-12)


def test_group_norm_without_affine_and_with_unknown_length():
    norm = nn.GroupNorm(2, 4, affine=False, dtype=F64)
    assert norm.variables() == [] and norm.weight is None
    x = rng(4).standard_normal((3, 4, 7))
    ph = gc.placeholder((None, 4, None), F64)
    np.testing.assert_allclose(evaluate(norm(ph), {ph: x}), np_group_norm(x, 2, None, None),
                               rtol=1e-10, atol=1e-12)


def test_group_norm_init_names_and_repr_follow_pytorch():
    norm = nn.GroupNorm(3, 6)
    assert list(norm.state_dict()) == ["weight", "bias"]
    assert norm.weight.value.tolist() == [1.0] * 6 and norm.bias.value.tolist() == [0.0] * 6
    assert norm.weight.dtype == np.float32
    assert repr(norm) == "GroupNorm(3, 6, eps=1e-05, affine=True)"


@pytest.mark.parametrize("shape", [(2, 4, 3), (2, 6, 2, 2)])
def test_group_norm_gradient_wrt_input_weight_bias(shape):
    c = shape[1]
    check_grad(lambda x, w, b: nn.group_norm(x, 2, w, b),
               [rng(5).standard_normal(shape), rng(6).standard_normal(c),
                rng(7).standard_normal(c)])


def test_group_norm_on_cpu_matches_reference_with_gradients():
    norm = nn.GroupNorm(2, 4)
    norm.weight.assign(rng(8).standard_normal(4))
    x = gc.placeholder((None, 4, 5, 5), name="x")
    out = norm(x)
    loss = loss_of(out)
    feeds = {x: rng(9).standard_normal((3, 4, 5, 5)).astype("float32")}
    cpu_matches_reference([out] + gc.grad(loss, [x] + norm.parameters()), feeds)


@pytest.mark.parametrize("make,error,words", [
    (lambda: nn.GroupNorm(3, 4), gc.ArgumentError,
     r"GroupNorm: num_channels 4 must be divisible by num_groups 3"),
    (lambda: nn.GroupNorm(0, 4), gc.ArgumentError, r"GroupNorm: num_groups must be positive"),
    (lambda: nn.GroupNorm(2, 4, eps=-1), gc.ArgumentError, r"GroupNorm: eps must be a finite"),
    (lambda: nn.GroupNorm(2, 4)(gc.placeholder((2, 6, 3))), gc.ShapeError,
     r"GroupNorm: expects 4 features on axis 1, got input of shape \(2, 6, 3\)"),
    (lambda: nn.GroupNorm(2, 4)(gc.placeholder((4,))), gc.ShapeError,
     r"GroupNorm: expects a \(N, C, \*\) input, got shape \(4,\)"),
    (lambda: nn.group_norm(gc.placeholder((2, 6)), 4), gc.ShapeError,
     r"group_norm: expects input \(N, C, \*\) with C known and divisible by num_groups 4, "
     r"got \(2, 6\)"),
    (lambda: nn.group_norm(gc.placeholder((2, 6)), 2, np.ones(3)), gc.ShapeError,
     r"group_norm: weight of shape \(3,\) does not fit 6 channels"),
])
def test_group_norm_refuses_what_does_not_fit(make, error, words):
    with pytest.raises(error, match=words) as info:
        make()
    assert info.value.loc.file == __file__


# -- Dropout2d ----------------------------------------------------------------------------

def test_dropout2d_zeroes_whole_channels_and_scales_the_rest():
    ph = gc.placeholder((None, 100, 3, 4), F64)
    x = rng(10).standard_normal((8, 100, 3, 4)) + 10             # never 0 itself
    out = evaluate(nn.Dropout2d(0.3)(ph), {ph: x})
    dropped = np.all(out == 0, axis=(2, 3))
    assert np.array_equal(dropped, np.any(out == 0, axis=(2, 3)))   # all of a channel or none
    assert abs(dropped.mean() - 0.3) < 0.05
    np.testing.assert_allclose(out[~dropped], x[~dropped] / 0.7, rtol=1e-12)


def test_dropout2d_reads_3d_input_as_n_c_l():
    ph = gc.placeholder((4, 50, 6), F64)
    out = evaluate(nn.functional.dropout2d(ph, 0.5), {ph: np.ones((4, 50, 6))})
    assert np.array_equal(np.all(out == 0, axis=2), np.any(out == 0, axis=2))
    assert 0.3 < np.all(out == 0, axis=2).mean() < 0.7


def test_dropout2d_is_identity_in_eval_and_for_p_zero_and_zero_for_p_one():
    ph = gc.placeholder((2, 3, 2, 2), F64)
    x = rng(11).standard_normal((2, 3, 2, 2))
    layer = nn.Dropout2d(0.5).eval()
    assert layer(ph) is ph and nn.Dropout2d(0.0)(ph) is ph
    np.testing.assert_array_equal(evaluate(nn.Dropout2d(1.0)(ph), {ph: x}), 0)
    assert repr(nn.Dropout2d(0.2)) == "Dropout2d(p=0.2, inplace=False)"


def test_dropout2d_draws_new_masks_per_call_and_repeats_them_after_manual_seed():
    def masks():
        with gc.Graph("fresh"):
            ph = gc.placeholder((16, 32, 2, 2), "float32")
            step = gc.compile(nn.Dropout2d(0.5)(ph), inputs=[ph], device="reference")
            ones = np.ones((16, 32, 2, 2), np.float32)
            return [step(ones) != 0 for _ in range(2)]
    gc.manual_seed(21)
    first, second = masks()
    gc.manual_seed(21)
    again = masks()
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(first, again[0])
    np.testing.assert_array_equal(second, again[1])


def test_dropout2d_on_cpu_draws_the_reference_masks_and_gradients():
    ph = gc.placeholder((None, 8, 3, 3), name="x")
    out = nn.Dropout2d(0.5)(ph)
    (grad,) = gc.grad(loss_of(out), [ph])
    x = rng(12).standard_normal((4, 8, 3, 3)).astype("float32")
    expected = cpu_matches_reference([out, grad], {ph: x}, rtol=1e-6, atol=0)
    dropped = np.all(expected[0] == 0, axis=(2, 3))
    assert np.all(expected[1][dropped] == 0) and np.all(expected[1][~dropped] != 0)


@pytest.mark.parametrize("make,error,words", [
    (lambda: nn.Dropout2d()(gc.placeholder((2, 3))), gc.ShapeError,
     r"Dropout2d: expects a 4-D \(N, C, H, W\) or 3-D \(N, C, L\) input, got shape \(2, 3\)"),
    (lambda: nn.Dropout2d(1.5), gc.ArgumentError, r"Dropout2d: p must be a probability"),
    (lambda: nn.functional.dropout2d(gc.placeholder((2, 3, 4, 5, 6)), 0.5), gc.ShapeError,
     r"dropout2d: expects a 4-D"),
])
def test_dropout2d_refuses_bad_input_and_p(make, error, words):
    with pytest.raises(error, match=words):
        make()


# -- Conv1d -------------------------------------------------------------------------------

def np_conv1d(x, w, b, stride, padding, dilation, groups):
    n, c, length = x.shape
    out_ch, cg, k = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding)))
    lo = (length + 2 * padding - dilation * (k - 1) - 1) // stride + 1
    y = np.zeros((n, out_ch, lo))
    per_group = out_ch // groups
    for o in range(out_ch):
        g = o // per_group
        for i in range(lo):
            taps = i * stride + dilation * np.arange(k)
            y[:, o, i] = np.sum(xp[:, g * cg:(g + 1) * cg][:, :, taps] * w[o], axis=(1, 2))
    return y + (0 if b is None else b.reshape(1, -1, 1))


@pytest.mark.parametrize("stride,padding,dilation,groups,bias", [
    (1, 0, 1, 1, True), (2, 1, 1, 1, True), ((2,), (2,), 2, 1, False), (1, 1, 1, 2, True),
    (3, 2, 2, 4, True)])
def test_conv1d_module_matches_numpy(stride, padding, dilation, groups, bias):
    conv = nn.Conv1d(4, 8, 3, stride, padding, dilation, groups, bias=bias, dtype=F64)
    x = rng(13).standard_normal((2, 4, 11))
    one = lambda v: v[0] if isinstance(v, tuple) else v  # noqa: E731
    expected = np_conv1d(x, conv.weight.value, conv.bias.value if bias else None, one(stride),
                         one(padding), one(dilation), groups)
    ph = gc.placeholder((None, 4, 11), F64)
    np.testing.assert_allclose(evaluate(conv(ph), {ph: x}), expected, rtol=1e-10, atol=1e-12)
    assert conv.weight.shape == (8, 4 // groups, 3)


def test_conv1d_same_valid_and_unbatched_input():
    w, b = rng(14).standard_normal((3, 2, 4)), rng(15).standard_normal(3)
    x = rng(16).standard_normal((2, 9))
    ph = gc.placeholder((2, 9), F64)
    same = nn.functional.conv1d(ph, w, b, padding="same")   # even kernel: the extra pad after
    valid = nn.functional.conv1d(ph, w, b, padding="valid")
    got_same, got_valid = evaluate([same, valid], {ph: x})
    padded = np.pad(x, ((0, 0), (1, 2)))[None]
    np.testing.assert_allclose(got_same, np_conv1d(padded, w, b, 1, 0, 1, 1)[0], rtol=1e-10)
    np.testing.assert_allclose(got_valid, np_conv1d(x[None], w, b, 1, 0, 1, 1)[0], rtol=1e-10)
    assert got_same.shape == (3, 9) and got_valid.shape == (3, 6)


def test_conv1d_init_names_shapes_and_repr_follow_pytorch():
    conv = nn.Conv1d(6, 32, 5, groups=2)
    bound = 1 / math.sqrt(3 * 5)
    assert list(conv.state_dict()) == ["weight", "bias"]
    assert conv.weight.shape == (32, 3, 5) and conv.bias.shape == (32,)
    for p in (conv.weight.value, conv.bias.value):
        assert 0.9 * bound < np.abs(p).max() <= bound
    assert conv.kernel_size == (5,) and conv.stride == (1,) and conv.padding == (0,)
    assert repr(nn.Conv1d(1, 2, 3, padding=1, bias=False)) == \
        "Conv1d(1, 2, kernel_size=(3,), stride=(1,), padding=(1,), bias=False)"


@pytest.mark.parametrize("stride,padding,dilation,groups", [(1, 1, 1, 1), (2, 0, 2, 2)])
def test_conv1d_gradient_wrt_input_weight_bias(stride, padding, dilation, groups):
    check_grad(lambda x, w, b: nn.conv1d(x, w, b, stride, padding, dilation, groups),
               [rng(17).standard_normal((2, 4, 7)), rng(18).standard_normal((4, 4 // groups, 2)),
                rng(19).standard_normal(4)])


def test_conv1d_on_cpu_matches_reference_with_gradients():
    conv = nn.Conv1d(3, 6, 3, stride=2, padding=1, groups=3)
    x = gc.placeholder((None, 3, 10), name="x")
    out = conv(x)
    outputs = [out] + gc.grad(loss_of(out), [x] + conv.parameters())
    cpu_matches_reference(outputs, {x: rng(20).standard_normal((2, 3, 10)).astype("float32")})


@pytest.mark.parametrize("make,error,words", [
    (lambda: nn.Conv1d(3, 4, 3)(gc.placeholder((2, 2, 8))), gc.ShapeError,
     r"Conv1d: expects 3 features on axis 1, got input of shape \(2, 2, 8\)"),
    (lambda: nn.Conv1d(3, 4, 3)(gc.placeholder((2, 3, 8, 8))), gc.ShapeError,
     r"Conv1d: expects a 3-D \(N, C, L\) or 2-D \(C, L\) input"),
    (lambda: nn.Conv1d(3, 4, (3, 3)), gc.ArgumentError,
     r"Conv1d: kernel_size must be an int or a tuple of one int, got \(3, 3\)"),
    (lambda: nn.Conv1d(4, 4, 3, groups=3), gc.ArgumentError, r"Conv1d: .*divisible by groups 3"),
    (lambda: nn.Conv1d(4, 4, 3, stride=0), gc.ArgumentError, r"Conv1d: stride must be positive"),
    (lambda: nn.conv1d(gc.placeholder((2, 3, 2)), np.ones((4, 3, 3))), gc.ShapeError,
     r"conv1d: input \(2, 3, 2\), weight \(4, 3, 3\) is too small"),
    (lambda: nn.conv1d(gc.placeholder((2, 4, 8)), np.ones((4, 3, 3))), gc.ShapeError,
     r"conv1d: input \(2, 4, 8\), weight \(4, 3, 3\) with groups=1"),
    (lambda: nn.conv1d(gc.placeholder((2, 3, 8)), np.ones((4, 3, 3)), np.ones(3)),
     gc.ShapeError, r"conv1d: bias of shape \(3,\) does not fit 4 output channels"),
    (lambda: nn.conv1d(gc.placeholder((2, 3, 8)), np.ones((4, 3, 3)), stride=2,
                       padding="same"), gc.ShapeError, r"conv1d: padding='same' needs stride 1"),
    (lambda: nn.conv1d(gc.placeholder((2, 3, 8), "int64"), np.ones((4, 3, 3))), gc.DtypeError,
     r"conv1d: input must be floating-point"),
])
def test_conv1d_refuses_what_does_not_fit(make, error, words):
    with pytest.raises(error, match=words) as info:
        make()
    assert info.value.loc.file == __file__


# -- RNNCell, LSTMCell, GRUCell -----------------------------------------------------------

def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def np_cell_step(cell, x, h, c=None):
    """PyTorch's documented cell equations with the cell's own weights."""
    p = {name: v.value for name, v in cell.named_parameters()}
    gi = x @ p["weight_ih"].T + p.get("bias_ih", 0.0)
    gh = h @ p["weight_hh"].T + p.get("bias_hh", 0.0)
    if isinstance(cell, nn.LSTMCell):
        i, f, g, o = np.split(gi + gh, 4, axis=-1)
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        return sigmoid(o) * np.tanh(c), c
    if isinstance(cell, nn.GRUCell):
        (i_r, i_z, i_n), (h_r, h_z, h_n) = np.split(gi, 3, -1), np.split(gh, 3, -1)
        r, z = sigmoid(i_r + h_r), sigmoid(i_z + h_z)
        n = np.tanh(i_n + r * h_n)
        return (1 - z) * n + z * h
    return np.tanh(gi + gh) if cell.nonlinearity == "tanh" else np.maximum(gi + gh, 0)


CELLS = [lambda **kw: nn.RNNCell(3, 4, **kw),
         lambda **kw: nn.RNNCell(3, 4, nonlinearity="relu", **kw),
         lambda **kw: nn.LSTMCell(3, 4, **kw), lambda **kw: nn.GRUCell(3, 4, **kw)]


def run_cell(cell, x, h, c):
    """cell(x, state) on the reference device, state None when h is None."""
    phs = [gc.placeholder(a.shape, F64) for a in (x, h, c) if a is not None]
    state = None if h is None else (tuple(phs[1:]) if c is not None else phs[1])
    out = cell(phs[0], state)
    outs = list(out) if isinstance(out, tuple) else [out]
    return evaluate(outs, dict(zip(phs, [a for a in (x, h, c) if a is not None])))


@pytest.mark.parametrize("make", CELLS)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("batch", [(2,), ()])
def test_cell_matches_numpy_with_and_without_state(make, bias, batch):
    cell = make(bias=bias, dtype=F64)
    lstm = isinstance(cell, nn.LSTMCell)
    x = rng(21).standard_normal(batch + (3,))
    h, c = rng(22).standard_normal(batch + (4,)), rng(23).standard_normal(batch + (4,))
    zeros = np.zeros(batch + (4,))
    for state in ((h, c if lstm else None), (None, None)):
        given = state[0] is not None
        expected = np_cell_step(cell, x, h if given else zeros, c if given else zeros)
        expected = list(expected) if lstm else [expected]
        got = run_cell(cell, x, *state)
        assert len(got) == len(expected)
        for e, g in zip(expected, got):
            assert g.shape == batch + (4,)
            np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cell_cls,layer_cls", [(nn.LSTMCell, nn.LSTM), (nn.GRUCell, nn.GRU),
                                                (nn.RNNCell, nn.RNN)])
def test_cell_equals_one_step_of_the_layer_with_the_same_weights(cell_cls, layer_cls):
    cell, layer = cell_cls(3, 4, dtype=F64), layer_cls(3, 4, dtype=F64)
    layer.load_state_dict({k + "_l0": v for k, v in cell.state_dict().items()})
    x = rng(24).standard_normal((1, 2, 3))
    h0 = rng(25).standard_normal((1, 2, 4))
    state = (h0, h0 * 0.5) if cell_cls is nn.LSTMCell else h0
    output, final = layer(gc.constant(x), tuple(map(gc.constant, state))
                          if isinstance(state, tuple) else gc.constant(state))
    cell_out = cell(gc.constant(x[0]), tuple(s[0] for s in map(gc.constant, state))
                    if isinstance(state, tuple) else gc.constant(state[0]))
    cell_h = cell_out[0] if isinstance(cell_out, tuple) else cell_out
    got, want = evaluate([cell_h, output[0]])
    np.testing.assert_allclose(got, want, rtol=1e-13)


@pytest.mark.parametrize("cls,gates", [(nn.RNNCell, 1), (nn.LSTMCell, 4), (nn.GRUCell, 3)])
def test_cell_names_shapes_and_init_follow_pytorch(cls, gates):
    cell = cls(10, 20)
    assert [(n, p.shape) for n, p in cell.named_parameters()] == [
        ("weight_ih", (gates * 20, 10)), ("weight_hh", (gates * 20, 20)),
        ("bias_ih", (gates * 20,)), ("bias_hh", (gates * 20,))]
    bound = 1 / math.sqrt(20)
    for p in cell.parameters():
        assert 0.9 * bound < np.abs(p.value).max() <= bound and p.dtype == np.float32
    assert list(cls(2, 3, bias=False).state_dict()) == ["weight_ih", "weight_hh"]
    assert repr(cls(2, 3, bias=False)) == f"{cls.__name__}(2, 3, bias=False)"


def check_cell_parameter_grads(cell, x, state):
    """gc.grad w.r.t. every parameter and the input and state, against central differences."""
    phs = [gc.placeholder(a.shape, F64) for a in [x] + state]
    out = cell(phs[0], tuple(phs[1:]) if len(phs) > 2 else phs[1])
    loss = loss_of(out)
    params = cell.parameters()
    feeds = dict(zip(phs, [x] + state))
    analytic = evaluate(gc.grad(loss, params + phs), feeds)
    value = gc.compile(loss, inputs=phs, device="reference")
    for param, grad in zip(params, analytic):
        start = param.value

        def loss_at(array):
            param.assign(array)
            return float(value(*feeds.values()))
        numeric = central_differences(loss_at, [start], 0, 1e-6)
        param.assign(start)
        assert relative_error(grad, numeric) < 1e-6, param.name
    for i, grad in enumerate(analytic[len(params):]):
        numeric = central_differences(lambda *a: float(value(*a)), [x] + state, i, 1e-6)
        assert relative_error(grad, numeric) < 1e-6, i


@pytest.mark.parametrize("make", CELLS)
def test_cell_gradients_match_finite_differences(make):
    gc.manual_seed(3)
    cell = make(dtype=F64)
    state = [rng(26).standard_normal((2, 4))]
    if isinstance(cell, nn.LSTMCell):
        state.append(rng(27).standard_normal((2, 4)))
    check_cell_parameter_grads(cell, rng(28).standard_normal((2, 3)), state)


def test_cells_unrolled_on_cpu_match_reference_with_gradients():
    gc.manual_seed(4)
    lstm, gru = nn.LSTMCell(3, 5), nn.GRUCell(5, 4)
    x = gc.placeholder((None, 6, 3), name="x")
    state, h = None, None
    for t in range(6):
        state = lstm(x[:, t], state)
        h = gru(state[0], h)
    params = lstm.parameters() + gru.parameters()
    outputs = [h] + gc.grad(loss_of(h), params)
    cpu_matches_reference(outputs, {x: rng(29).standard_normal((3, 6, 3)).astype("float32")})


@pytest.mark.parametrize("make,error,words", [
    (lambda: nn.LSTMCell(3, 4)(gc.placeholder((2, 5))), gc.ShapeError,
     r"LSTMCell: expects input \(N, 3\) or unbatched \(3,\), got \(2, 5\)"),
    (lambda: nn.GRUCell(3, 4)(gc.placeholder((2, 3)), gc.placeholder((2, 5))), gc.ShapeError,
     r"GRUCell: state of shape \(2, 5\); expected \(None, 4\) for input that is batched"),
    (lambda: nn.RNNCell(3, 4)(gc.placeholder((3,)), gc.placeholder((2, 4))), gc.ShapeError,
     r"RNNCell: state of shape \(2, 4\); expected \(4,\) for input that is unbatched"),
    (lambda: nn.LSTMCell(3, 4)(gc.placeholder((2, 3)), gc.placeholder((2, 4))), gc.GraphcError,
     r"LSTMCell: the initial state of an LSTMCell is a pair \(h_0, c_0\)"),
    (lambda: nn.GRUCell(3, 4)(gc.placeholder((2, 3)), (gc.placeholder((2, 4)),) * 2),
     gc.GraphcError, r"GRUCell: the initial state is one tensor h_0, got a tuple of 2"),
    (lambda: nn.LSTMCell(0, 4), gc.ArgumentError, r"LSTMCell: input_size must be positive"),
    (lambda: nn.GRUCell(3, 2.5), gc.ArgumentError, r"GRUCell: hidden_size must be an int"),
    (lambda: nn.RNNCell(3, 4, nonlinearity="gelu"), gc.GraphcError,
     r"RNNCell: nonlinearity must be 'tanh' or 'relu', got 'gelu'"),
])
def test_cells_refuse_what_does_not_fit(make, error, words):
    with pytest.raises(error, match=words) as info:
        make()
    assert info.value.loc.file == __file__
