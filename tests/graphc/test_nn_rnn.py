"""gc.nn.RNN, gc.nn.LSTM and gc.nn.GRU against a float64 NumPy loop of PyTorch's
equations (with the modules' own weights); PyTorch's names, shapes and results;
gradients of the parameters against central finite differences; the CPU
compiler against the reference for a training step."""
import math

import numpy as np
import pytest
from helpers import central_differences, check_grad, evaluate, relative_error, rng

import graphc as gc
from graphc import nn

F64 = "float64"


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def np_cell(module, from_input, from_hidden, h, c):
    """One step of PyTorch's equations: (h, c), from x_t @ W_ih.T + b_ih and
    h @ W_hh.T + b_hh kept apart (GRU's n gate needs them apart)."""
    if isinstance(module, nn.GRU):
        (x_r, x_z, x_n), (h_r, h_z, h_n) = (np.split(a, 3, axis=1)
                                            for a in (from_input, from_hidden))
        r, z = sigmoid(x_r + h_r), sigmoid(x_z + h_z)
        n = np.tanh(x_n + r * h_n)
        return (1 - z) * n + z * h, c
    pre = from_input + from_hidden
    if isinstance(module, nn.LSTM):
        i, f, g, o = np.split(pre, 4, axis=1)
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        return sigmoid(o) * np.tanh(c), c
    return (np.tanh(pre) if module.nonlinearity == "tanh" else np.maximum(pre, 0)), c


def np_recurrent(module, x, h0=None, c0=None):
    """PyTorch's RNN/LSTM/GRU equations, step by step: (output, h_n, c_n)."""
    params = {name: p.value for name, p in module.named_parameters()}
    seq = x.transpose(1, 0, 2) if module.batch_first else x
    hidden, batch = module.hidden_size, seq.shape[1]
    finals_h, finals_c = [], []
    for k in range(module.num_layers):
        h = np.zeros((batch, hidden)) if h0 is None else h0[k]
        c = np.zeros((batch, hidden)) if c0 is None else c0[k]
        b_ih, b_hh = (params.get(f"bias_{kind}_l{k}", 0.0) for kind in ("ih", "hh"))
        outputs = []
        for x_t in seq:
            h, c = np_cell(module, x_t @ params[f"weight_ih_l{k}"].T + b_ih,
                           h @ params[f"weight_hh_l{k}"].T + b_hh, h, c)
            outputs.append(h)
        seq = np.stack(outputs)
        finals_h.append(h)
        finals_c.append(c)
    output = seq.transpose(1, 0, 2) if module.batch_first else seq
    return output, np.stack(finals_h), np.stack(finals_c)


def run_module(module, x, state=None):
    """Build module(x[, state]) with x's batch axis unknown; run on the reference device."""
    shape = list(x.shape)
    shape[0 if module.batch_first else 1] = None
    ph = gc.placeholder(shape, F64, name="x")
    feeds = {ph: x}
    if state is not None:
        state_phs = [gc.placeholder(s.shape, F64) for s in state]
        feeds.update(zip(state_phs, state))
        state = state_phs[0] if len(state_phs) == 1 else tuple(state_phs)
    output, final = module(ph) if state is None else module(ph, state)
    finals = list(final) if isinstance(final, tuple) else [final]
    return evaluate([output] + finals, feeds)


# -- values ---------------------------------------------------------------------------------

@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("with_state", [False, True])
def test_lstm_matches_numpy_loop(batch_first, with_state):
    lstm = nn.LSTM(3, 4, num_layers=2, batch_first=batch_first, dtype=F64)
    x = rng(1).standard_normal((2, 5, 3) if batch_first else (5, 2, 3))
    state = (rng(2).standard_normal((2, 2, 4)), rng(3).standard_normal((2, 2, 4)))
    expected = np_recurrent(lstm, x, *(state if with_state else ()))
    got = run_module(lstm, x, state if with_state else None)
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn_matches_numpy_loop(batch_first, nonlinearity):
    rnn = nn.RNN(3, 4, num_layers=3, nonlinearity=nonlinearity, batch_first=batch_first,
                 dtype=F64)
    x = rng(4).standard_normal((2, 6, 3) if batch_first else (6, 2, 3))
    h0 = rng(5).standard_normal((3, 2, 4))
    for state in (None, (h0,)):
        output, h_n, _ = np_recurrent(rnn, x, *(state or ()))
        got_output, got_h_n = run_module(rnn, x, state)
        np.testing.assert_allclose(got_output, output, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(got_h_n, h_n, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("with_state", [False, True])
def test_gru_matches_numpy_loop(batch_first, with_state):
    gru = nn.GRU(3, 4, num_layers=2, batch_first=batch_first, dtype=F64)
    x = rng(12).standard_normal((2, 5, 3) if batch_first else (5, 2, 3))
    h0 = rng(13).standard_normal((2, 2, 4))
    output, h_n, _ = np_recurrent(gru, x, h0 if with_state else None)
    got_output, got_h_n = run_module(gru, x, (h0,) if with_state else None)
    np.testing.assert_allclose(got_output, output, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got_h_n, h_n, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("with_state", [False, True])
def test_gru_b_hn_is_scaled_by_the_reset_gate(with_state):
    """Zero weights, biases making r = 0.5 and z = 0.25: one step gives
    h = 0.75 * tanh(b_in + 0.5 * b_hn) + 0.25 * h0, so b_hn is not folded with b_in."""
    gru = nn.GRU(2, 1, dtype=F64)
    gru.load_state_dict({"weight_ih_l0": np.zeros((3, 2)), "weight_hh_l0": np.zeros((3, 1)),
                         "bias_ih_l0": np.array([1.0, -math.log(3) - 2, 0.5]),
                         "bias_hh_l0": np.array([-1.0, 2.0, 0.8])})
    h0 = np.full((1, 1, 1), 0.6 if with_state else 0.0)
    _, h_n = run_module(gru, np.ones((1, 1, 2)), (h0,) if with_state else None)
    np.testing.assert_allclose(h_n, 0.75 * np.tanh(0.5 + 0.5 * 0.8) + 0.25 * h0, rtol=1e-12)


@pytest.mark.parametrize("cls", [nn.RNN, nn.GRU])
def test_without_bias_matches_numpy_loop(cls):
    module = cls(2, 3, num_layers=2, bias=False, dtype=F64)
    assert [name for name, _ in module.named_parameters()] == [
        "weight_ih_l0", "weight_hh_l0", "weight_ih_l1", "weight_hh_l1"]
    x = rng(6).standard_normal((4, 1, 2))
    h0 = rng(14).standard_normal((2, 1, 3))
    for state in (None, (h0,)):
        expected = np_recurrent(module, x, *(state or ()))[:2]
        for e, g in zip(expected, run_module(module, x, state)):
            np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cls", [nn.LSTM, nn.GRU])
@pytest.mark.parametrize("batch_first", [False, True])
def test_h_n_is_the_last_output_of_the_last_layer(cls, batch_first):
    module = cls(2, 3, num_layers=2, batch_first=batch_first, dtype=F64)
    x = rng(7).standard_normal((4, 5, 2))
    output, *finals = run_module(module, x)
    last = output[:, -1] if batch_first else output[-1]
    np.testing.assert_array_equal(finals[0][-1], last)
    assert output.shape == (4, 5, 3)
    assert len(finals) == (2 if cls is nn.LSTM else 1)
    for final in finals:
        assert final.shape == (2, 4 if batch_first else 5, 3)


@pytest.mark.parametrize("cls", [nn.LSTM, nn.GRU])
def test_unbatched_input_gives_results_without_batch_axis(cls):
    module = cls(2, 3, num_layers=2, dtype=F64)
    x = rng(8).standard_normal((4, 2))
    ph = gc.placeholder(x.shape, F64)
    output, final = module(ph)
    got = evaluate([output] + (list(final) if cls is nn.LSTM else [final]), {ph: x})
    expected = np_recurrent(module, x[:, None])
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g, e[:, 0], rtol=1e-10)
    assert got[0].shape == (4, 3) and got[1].shape == (2, 3)


@pytest.mark.parametrize("cls", [nn.LSTM, nn.GRU])
def test_dropout_between_layers_only_in_training(cls):
    module = cls(2, 3, num_layers=2, dropout=1.0, dtype=F64)
    x = rng(9).standard_normal((3, 2, 2))
    train_output = run_module(module, x)[0]
    eval_output = run_module(module.eval(), x)[0]
    np.testing.assert_allclose(eval_output, np_recurrent(module, x)[0], rtol=1e-10)
    # dropout 1.0 zeroes the first layer's output: the second layer sees zeros
    second = cls(3, 3, dtype=F64)
    second.load_state_dict({k.replace("l1", "l0"): v for k, v in module.state_dict().items()
                            if k.endswith("l1")})
    zeros = np.zeros((3, 2, 3))
    np.testing.assert_allclose(train_output, np_recurrent(second, zeros)[0], rtol=1e-10)


# -- names, shapes, init -----------------------------------------------------------------------

def test_weights_have_pytorch_names_shapes_and_order():
    lstm = nn.LSTM(5, 7, num_layers=2)
    shapes = [(name, p.shape) for name, p in lstm.named_parameters()]
    assert shapes == [
        ("weight_ih_l0", (28, 5)), ("weight_hh_l0", (28, 7)), ("bias_ih_l0", (28,)),
        ("bias_hh_l0", (28,)), ("weight_ih_l1", (28, 7)), ("weight_hh_l1", (28, 7)),
        ("bias_ih_l1", (28,)), ("bias_hh_l1", (28,))]
    assert nn.RNN(5, 7).weight_hh_l0.shape == (7, 7)
    assert repr(nn.LSTM(5, 7, 2, batch_first=True)) == "LSTM(5, 7, num_layers=2, batch_first=True)"


def test_gru_weights_have_pytorch_names_shapes_and_order():
    gru = nn.GRU(5, 7, num_layers=2, bias=True)
    assert {name: value.shape for name, value in gru.state_dict().items()} == {
        "weight_ih_l0": (21, 5), "weight_hh_l0": (21, 7), "bias_ih_l0": (21,),
        "bias_hh_l0": (21,), "weight_ih_l1": (21, 7), "weight_hh_l1": (21, 7),
        "bias_ih_l1": (21,), "bias_hh_l1": (21,)}
    assert [name for name, _ in gru.named_parameters()] == list(gru.state_dict())
    assert repr(nn.GRU(5, 7, 2, batch_first=True, dropout=0.5)) == \
        "GRU(5, 7, num_layers=2, batch_first=True, dropout=0.5)"
    assert repr(nn.GRU(5, 7, bias=False)) == "GRU(5, 7, bias=False)"


@pytest.mark.parametrize("cls", [nn.LSTM, nn.GRU])
def test_init_is_uniform_in_inverse_sqrt_hidden_and_seeded(cls):
    gc.manual_seed(3)
    a = cls(10, 100)
    gc.manual_seed(3)
    b = cls(10, 100)
    bound = 1 / math.sqrt(100)
    for p, q in zip(a.parameters(), b.parameters()):
        assert 0.95 * bound < np.abs(p.value).max() <= bound
        np.testing.assert_array_equal(p.value, q.value)


# -- gradients ------------------------------------------------------------------------------

def check_parameter_grads(module, x, tol=1e-6):
    """gc.grad of a random projection of (output, final states) w.r.t. every
    parameter, against central differences taken by assigning the variable."""
    ph = gc.placeholder(x.shape, F64)
    output, final = module(ph)
    outs = [output] + (list(final) if isinstance(final, tuple) else [final])
    loss = sum(gc.sum(o * gc.constant(rng(20 + i).standard_normal(o.shape)))
               for i, o in enumerate(outs))
    params = module.parameters()
    analytic = evaluate(gc.grad(loss, params), {ph: x})
    value = gc.compile(loss, inputs=[ph])
    for param, grad in zip(params, analytic):
        start = param.value

        def loss_at(array):
            param.assign(array)
            return float(value(x))
        numeric = central_differences(loss_at, [start], 0, 1e-6)
        param.assign(start)
        assert relative_error(grad, numeric) < tol, param.name


def test_lstm_parameter_gradients_match_finite_differences():
    gc.manual_seed(1)
    check_parameter_grads(nn.LSTM(3, 2, num_layers=2, dtype=F64),
                          rng(10).standard_normal((3, 2, 3)))


def test_gru_parameter_gradients_match_finite_differences():
    gc.manual_seed(4)
    check_parameter_grads(nn.GRU(3, 2, num_layers=2, dtype=F64),
                          rng(15).standard_normal((3, 2, 3)))


def test_gru_input_and_initial_state_gradients_match_finite_differences():
    gc.manual_seed(5)
    gru = nn.GRU(2, 3, num_layers=2, batch_first=True, dtype=F64)

    def output_and_h_n(x, h0):
        output, h_n = gru(x, h0)
        return gc.concatenate([output.flatten(), h_n.flatten()])
    check_grad(output_and_h_n, [rng(16).standard_normal((2, 4, 2)),
                                rng(17).standard_normal((2, 2, 3))])


def test_rnn_parameter_gradients_match_finite_differences():
    gc.manual_seed(2)
    check_parameter_grads(nn.RNN(2, 3, num_layers=2, batch_first=True, dtype=F64),
                          rng(11).standard_normal((2, 3, 2)))


# -- errors ----------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", [nn.LSTM, nn.GRU])
@pytest.mark.parametrize("shape", [(5, 2, 4), (5, 2, 3, 1), (None, 2, 3)])
def test_bad_input_shape_names_the_module(cls, shape):
    module = cls(3, 4)
    with pytest.raises(gc.ShapeError, match=cls.__name__) as info:
        module(gc.placeholder(shape))
    assert "test_nn_rnn.py" in str(info.value)


def test_bad_initial_state_is_an_error():
    rnn, x = nn.RNN(3, 4, num_layers=2), gc.placeholder((5, 2, 3))
    with pytest.raises(gc.ShapeError, match="initial state"):
        rnn(x, gc.placeholder((1, 2, 4)))
    with pytest.raises(gc.GraphcError, match="pair"):
        nn.LSTM(3, 4)(x, gc.placeholder((1, 2, 4)))
    with pytest.raises(gc.GraphcError, match="nonlinearity"):
        nn.RNN(3, 4, nonlinearity="sigmoid")


def test_bad_gru_initial_state_names_the_module_shapes_and_line():
    gru, x = nn.GRU(3, 4, num_layers=2), gc.placeholder((5, 2, 3))
    with pytest.raises(gc.ShapeError, match=r"GRU.*\(1, 2, 4\); expected \(2, None, 4\)") as info:
        gru(x, gc.placeholder((1, 2, 4)))
    assert "test_nn_rnn.py" in str(info.value)
    h0 = gc.placeholder((2, 2, 4))
    with pytest.raises(gc.GraphcError, match="GRU: the initial state is one tensor h_0, got a "
                       "tuple of 2"):
        gru(x, (h0, h0))


@pytest.mark.parametrize("cls", [nn.RNN, nn.LSTM, nn.GRU])
@pytest.mark.parametrize("arguments, words", [
    (dict(dropout=1.5), "dropout must be a probability in [0, 1]"),
    (dict(num_layers=0), "num_layers must be positive"),
    (dict(num_layers=1.5), "num_layers must be an int"),
    (dict(hidden_size=4.5), "hidden_size must be an int"),
    (dict(input_size=-3), "input_size must be positive")])
def test_bad_constructor_arguments_name_the_module(cls, arguments, words):
    arguments = dict(dict(input_size=3, hidden_size=4), **arguments)
    with pytest.raises(gc.GraphcError) as info:
        cls(**arguments)
    assert cls.__name__ in str(info.value) and words in str(info.value)
    assert "test_nn_rnn.py" in str(info.value)


# -- bidirectional ------------------------------------------------------------------------------

def copy_direction(bidirectional, suffix, into):
    """Set `into`'s layer-0 weights from one direction of a one-layer bidirectional module."""
    for name, param in into.named_parameters():
        param.assign(getattr(bidirectional, name + suffix).value)


@pytest.mark.parametrize("cls", [nn.RNN, nn.LSTM, nn.GRU])
def test_bidirectional_is_a_forward_pass_and_a_pass_over_the_reversed_sequence(cls):
    # PyTorch's layout: outputs [forward, reverse] on the feature axis, h_n [forward, reverse]
    both = cls(3, 4, bidirectional=True, dtype=F64)
    forward, backward = cls(3, 4, dtype=F64), cls(3, 4, dtype=F64)
    copy_direction(both, "", forward)
    copy_direction(both, "_reverse", backward)
    x = rng(30).standard_normal((5, 2, 3))
    got = run_module(both, x)
    ahead, behind = run_module(forward, x), run_module(backward, x[::-1].copy())
    np.testing.assert_allclose(got[0], np.concatenate([ahead[0], behind[0][::-1]], -1),
                               rtol=1e-13)
    for state, a, b in zip(got[1:], ahead[1:], behind[1:]):
        np.testing.assert_allclose(state, np.concatenate([a, b]), rtol=1e-13)


def test_bidirectional_weights_have_pytorch_names_shapes_and_order():
    gru = nn.GRU(5, 7, num_layers=2, bidirectional=True)
    names = [(name, p.shape) for name, p in gru.named_parameters()]
    assert [n for n, _ in names[:8]] == [
        "weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "weight_ih_l0_reverse",
        "weight_hh_l0_reverse", "bias_ih_l0_reverse", "bias_hh_l0_reverse"]
    assert dict(names)["weight_ih_l1"] == dict(names)["weight_ih_l1_reverse"] == (21, 14)
    assert repr(gru) == "GRU(5, 7, num_layers=2, bidirectional=True)"


def test_bidirectional_two_layers_shapes_initial_state_and_gradients():
    gc.manual_seed(2)
    lstm = nn.LSTM(3, 2, num_layers=2, batch_first=True, bidirectional=True, dtype=F64)
    x = rng(31).standard_normal((2, 4, 3))
    h0, c0 = rng(32).standard_normal((2, 4, 2, 2))
    output, h_n, c_n = run_module(lstm, x, (h0, c0))
    assert output.shape == (2, 4, 4) and h_n.shape == c_n.shape == (4, 2, 2)
    np.testing.assert_allclose(h_n[2], output[:, -1, :2], rtol=1e-13)     # last layer forward
    np.testing.assert_allclose(h_n[3], output[:, 0, 2:], rtol=1e-13)      # ... and reverse
    with pytest.raises(gc.ShapeError, match=r"LSTM: initial state of shape \(2, 2, 2\); "
                                            r"expected \(4, None, 2\)"):
        lstm(gc.constant(x), (gc.constant(h0[:2]), gc.constant(c0[:2])))
    check_parameter_grads(lstm, x)


# -- the CPU compiler ---------------------------------------------------------------------------

def test_gru_training_steps_on_cpu_equal_the_reference():
    """Two SGD steps of a float32 GRU with h0 fed: same losses and weights, float32 tolerance."""
    gc.manual_seed(6)
    gru = nn.GRU(3, 5, num_layers=2, batch_first=True)
    x, h0 = gc.placeholder((None, 4, 3), name="x"), gc.placeholder((2, None, 5), name="h0")
    output, h_n = gru(x, h0)
    loss = gc.mean(output * output) + gc.mean(gc.sigmoid(h_n))
    updates = gc.optim.SGD(gru.parameters(), lr=0.5).minimize(loss)
    steps = {device: gc.compile([loss], inputs=[x, h0], updates=updates, device=device)
             for device in ("cpu", "reference")}
    batches = [(rng(30 + i).standard_normal((3, 4, 3)).astype("float32"),
                rng(40 + i).standard_normal((2, 3, 5)).astype("float32")) for i in range(2)]
    initial = gru.state_dict()
    results = {}
    for device, step in steps.items():
        gru.load_state_dict(initial)
        results[device] = [step(*batch) for batch in batches], gru.state_dict()
    np.testing.assert_allclose(results["cpu"][0], results["reference"][0], rtol=1e-5)
    for name, value in results["reference"][1].items():
        assert not np.allclose(value, initial[name], rtol=1e-3), name
        np.testing.assert_allclose(results["cpu"][1][name], value, rtol=1e-4, atol=1e-6,
                                   err_msg=name)
