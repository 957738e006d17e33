"""gc.nn.RNN and gc.nn.LSTM against a float64 NumPy loop of PyTorch's equations
(with the modules' own weights); PyTorch's names, shapes and results;
gradients of the parameters against central finite differences."""
import math

import numpy as np
import pytest
from helpers import central_differences, evaluate, relative_error, rng

import graphc as gc
from graphc import nn

F64 = "float64"


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def np_recurrent(module, x, h0=None, c0=None):
    """PyTorch's RNN/LSTM equations, step by step: (output, h_n, c_n)."""
    lstm = isinstance(module, nn.LSTM)
    params = {name: p.value for name, p in module.named_parameters()}
    seq = x.transpose(1, 0, 2) if module.batch_first else x
    hidden, batch = module.hidden_size, seq.shape[1]
    finals_h, finals_c = [], []
    for k in range(module.num_layers):
        h = np.zeros((batch, hidden)) if h0 is None else h0[k]
        c = np.zeros((batch, hidden)) if c0 is None else c0[k]
        outputs = []
        for x_t in seq:
            pre = x_t @ params[f"weight_ih_l{k}"].T + h @ params[f"weight_hh_l{k}"].T
            if module.bias:
                pre = pre + params[f"bias_ih_l{k}"] + params[f"bias_hh_l{k}"]
            if lstm:
                i, f, g, o = np.split(pre, 4, axis=1)
                c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
                h = sigmoid(o) * np.tanh(c)
            else:
                h = np.tanh(pre) if module.nonlinearity == "tanh" else np.maximum(pre, 0)
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


def test_rnn_without_bias_matches_numpy_loop():
    rnn = nn.RNN(2, 3, bias=False, dtype=F64)
    assert [name for name, _ in rnn.named_parameters()] == ["weight_ih_l0", "weight_hh_l0"]
    x = rng(6).standard_normal((4, 1, 2))
    np.testing.assert_allclose(run_module(rnn, x)[0], np_recurrent(rnn, x)[0], rtol=1e-10)


@pytest.mark.parametrize("batch_first", [False, True])
def test_h_n_is_the_last_output_of_the_last_layer(batch_first):
    lstm = nn.LSTM(2, 3, num_layers=2, batch_first=batch_first, dtype=F64)
    x = rng(7).standard_normal((4, 5, 2))
    output, h_n, c_n = run_module(lstm, x)
    last = output[:, -1] if batch_first else output[-1]
    np.testing.assert_array_equal(h_n[-1], last)
    assert output.shape == (4, 5, 3)
    assert h_n.shape == c_n.shape == (2, 4 if batch_first else 5, 3)


def test_unbatched_input_gives_results_without_batch_axis():
    lstm = nn.LSTM(2, 3, num_layers=2, dtype=F64)
    x = rng(8).standard_normal((4, 2))
    ph = gc.placeholder(x.shape, F64)
    output, (h_n, c_n) = lstm(ph)
    got = evaluate([output, h_n, c_n], {ph: x})
    expected = np_recurrent(lstm, x[:, None])
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g, e[:, 0], rtol=1e-10)
    assert got[0].shape == (4, 3) and got[1].shape == (2, 3)


def test_dropout_between_layers_only_in_training():
    lstm = nn.LSTM(2, 3, num_layers=2, dropout=1.0, dtype=F64)
    x = rng(9).standard_normal((3, 2, 2))
    train_output = run_module(lstm, x)[0]
    eval_output = run_module(lstm.eval(), x)[0]
    np.testing.assert_allclose(eval_output, np_recurrent(lstm, x)[0], rtol=1e-10)
    # dropout 1.0 zeroes the first layer's output: the second layer sees zeros
    second = nn.LSTM(3, 3, dtype=F64)
    second.load_state_dict({k.replace("l1", "l0"): v for k, v in lstm.state_dict().items()
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


def test_init_is_uniform_in_inverse_sqrt_hidden_and_seeded():
    gc.manual_seed(3)
    a = nn.LSTM(10, 100)
    gc.manual_seed(3)
    b = nn.LSTM(10, 100)
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


def test_rnn_parameter_gradients_match_finite_differences():
    gc.manual_seed(2)
    check_parameter_grads(nn.RNN(2, 3, num_layers=2, batch_first=True, dtype=F64),
                          rng(11).standard_normal((2, 3, 2)))


# -- errors ----------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(5, 2, 4), (5, 2, 3, 1), (None, 2, 3)])
def test_bad_input_shape_names_the_module(shape):
    lstm = nn.LSTM(3, 4)
    with pytest.raises(gc.ShapeError, match="LSTM") as info:
        lstm(gc.placeholder(shape))
    assert "test_nn_rnn.py" in str(info.value)


def test_bad_initial_state_is_an_error():
    rnn, x = nn.RNN(3, 4, num_layers=2), gc.placeholder((5, 2, 3))
    with pytest.raises(gc.ShapeError, match="initial state"):
        rnn(x, gc.placeholder((1, 2, 4)))
    with pytest.raises(gc.GraphcError, match="pair"):
        nn.LSTM(3, 4)(x, gc.placeholder((1, 2, 4)))
    with pytest.raises(gc.GraphcError, match="nonlinearity"):
        nn.RNN(3, 4, nonlinearity="sigmoid")
