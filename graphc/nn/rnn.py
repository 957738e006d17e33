"""`RNN`, `LSTM` and `GRU` with PyTorch's arguments, weights, shapes and results.

The sequence is unrolled when the graph is built, so its length must be
static; the batch may be None. Each layer projects the inputs of all time
steps with one matmul (x @ W_ih.T plus the biases that can be folded there:
b_ih + b_hh, except GRU's b_hn, which sits inside r * (...) and is added per
step), then runs the recurrence step by step (only h @ W_hh.T per step), and
passes its outputs to the next layer (through dropout in training, if
`dropout` > 0).

Weights per layer k, as PyTorch: weight_ih_lk (G*hidden, input), weight_hh_lk
(G*hidden, hidden), bias_ih_lk and bias_hh_lk (G*hidden,), with G = 1 (RNN),
4 (LSTM, gates in the order i, f, g, o) or 3 (GRU, gates r, z, n), all
U(-1/sqrt(hidden), 1/sqrt(hidden)). A bidirectional layer has a second set,
named with the suffix _reverse, run over the sequence from its end; the two
directions' outputs are concatenated (the next layer's input has 2*hidden
features) and the final states are ordered layer by layer, forward first.

`RNNCell`, `LSTMCell` and `GRUCell` run one step, with PyTorch's weight names
weight_ih, weight_hh, bias_ih, bias_hh and the same gates and init. Layers and
cells share the equations: `_Recurrence` and its subclasses `_Elman`, `_LSTMGates`
and `_GRUGates` hold them; `_RNNBase` unrolls them over a sequence, `_RNNCellBase`
runs them once.
"""
import math

import numpy as np

from graphc.errors import GraphcError, ShapeError, user_location
from graphc.graph import format_shape
from graphc.nn import functional as F
from graphc.nn.arguments import int_argument, probability_argument
from graphc.nn import init
from graphc.nn.module import Module, module_dtype
from graphc.ops.elementwise import relu, sigmoid, tanh
from graphc.ops.shape import concatenate, expand_dims, pad, squeeze, stack, transpose
from graphc.ops.source import variable
from graphc.tensor import as_tensor

__all__ = ["RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell"]


def _uniform_weights(module, shapes, dtype):
    """Set each {name: shape} as a variable drawn from U(-1/sqrt(hidden), 1/sqrt(hidden)),
    in order (PyTorch's init of every recurrent weight and bias)."""
    bound = 1 / math.sqrt(module.hidden_size)
    for name, shape in shapes.items():
        value = init.uniform_(np.empty(shape, dtype), -bound, bound)
        setattr(module, name, variable(value, name=name))


class _Recurrence:
    """The equations of one step, shared by the layers and the cells (mixed into a
    Module that sets hidden_size): Elman's with G = 1 gate by default."""
    _gates = 1

    def _fail(self, message, error=ShapeError):
        raise error(message, op=type(self).__name__, loc=user_location())

    def _project(self, x, w_ih, b_ih, b_hh):
        """(x @ W_ih.T plus the biases folded there, the bias each step adds itself)."""
        projected = x @ transpose(w_ih)
        folded, step_bias = self._fold(b_ih, b_hh) if self.bias else (None, None)
        return (projected if folded is None else projected + folded), step_bias

    def _fold(self, b_ih, b_hh):
        """(what is added to the input projection, what each step adds): here b_ih + b_hh,
        all folded into the projection."""
        return b_ih + b_hh, None

    def _advance(self, projected, w_hh_t, step_bias, state):
        """The state tuple after one step from x_t's projection; state None: zeros."""
        recurrent = None if state is None else state[0] @ w_hh_t
        return self._step(projected, recurrent, step_bias, state)

    def _step(self, projected, recurrent, step_bias, state):
        """The state tuple after one step, from x_t's projection (N, G*hidden),
        h_{t-1} @ W_hh.T and the previous state (both None while the state is zeros)."""
        return self._cell(projected if recurrent is None else projected + recurrent, state)

    def _split_gates(self, part):
        """part (N, G*hidden) as G tensors (N, hidden) in the gates' order; G Nones for None."""
        size = self.hidden_size
        if part is None:
            return [None] * self._gates
        return [part[:, j * size:(j + 1) * size] for j in range(self._gates)]

    def _state_parts(self, hx):
        """hx as the list of state tensors: h_0 alone (RNN, GRU)."""
        if isinstance(hx, (tuple, list)):
            self._fail(f"the initial state is one tensor h_0, got a {type(hx).__name__} of "
                       f"{len(hx)}", GraphcError)
        return [as_tensor(hx)]

    def _state_result(self, parts):
        return parts[0]


class _Elman(_Recurrence):
    """h_t = act(x_t @ W_ih.T + b_ih + h_{t-1} @ W_hh.T + b_hh), act tanh or relu."""

    def _check_nonlinearity(self, nonlinearity):
        if nonlinearity not in ("tanh", "relu"):
            self._fail(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}",
                       GraphcError)
        return nonlinearity

    def _cell(self, pre, state):
        return ((tanh if self.nonlinearity == "tanh" else relu)(pre),)


class _LSTMGates(_Recurrence):
    """Gates i, f, g, o: c_t = f * c_{t-1} + i * g, h_t = o * tanh(c_t); state (h, c)."""
    _gates = 4

    def _cell(self, pre, state):
        i, f, g, o = self._split_gates(pre)
        i, f, g, o = sigmoid(i), sigmoid(f), tanh(g), sigmoid(o)
        c = i * g if state is None else f * state[1] + i * g
        return o * tanh(c), c

    def _state_parts(self, hx):
        if not isinstance(hx, (tuple, list)) or len(hx) != 2:
            self._fail(f"the initial state of an {type(self).__name__} is a pair (h_0, c_0)",
                       GraphcError)
        return [as_tensor(part) for part in hx]

    def _state_result(self, parts):
        return tuple(parts)


class _GRUGates(_Recurrence):
    """Gates r, z, n: n = tanh(x_t @ W_in.T + b_in + r * (h_{t-1} @ W_hn.T + b_hn)),
    h_t = (1 - z) * n + z * h_{t-1}."""
    _gates = 3

    def _fold(self, b_ih, b_hh):
        """b_hh folds into the projection for r and z only; b_hn is added per step."""
        size = self.hidden_size
        return b_ih + pad(b_hh[:2 * size], (0, size)), b_hh[2 * size:]

    def _step(self, projected, recurrent, b_hn, state):
        x_r, x_z, x_n = self._split_gates(projected)
        h_r, h_z, h_n = self._split_gates(recurrent)
        r, z = sigmoid(_sum(x_r, h_r)), sigmoid(_sum(x_z, h_z))
        hidden_n = _sum(h_n, b_hn)
        n = tanh(x_n if hidden_n is None else x_n + r * hidden_n)
        return ((1 - z) * n if state is None else n + z * (state[0] - n),)   # (1-z)n + zh


class _RNNBase(_Recurrence, Module):
    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, dtype=None):
        super().__init__()
        name = type(self).__name__
        self.input_size = int_argument(input_size, "input_size", name, minimum=1)
        self.hidden_size = int_argument(hidden_size, "hidden_size", name, minimum=1)
        self.num_layers = int_argument(num_layers, "num_layers", name, minimum=1)
        self.dropout = probability_argument(dropout, "dropout", name)
        self.bias, self.batch_first = bias, batch_first
        self.bidirectional = bool(bidirectional)
        self._make_weights(module_dtype(dtype))

    @property
    def _layer_names(self):
        """Per layer, its directions' weight suffixes: l0, l0_reverse, l1, ..."""
        suffixes = ("", "_reverse") if self.bidirectional else ("",)
        return [[f"l{k}{s}" for s in suffixes] for k in range(self.num_layers)]

    def _make_weights(self, dtype):
        rows = self._gates * self.hidden_size
        inner = self.hidden_size * (2 if self.bidirectional else 1)
        for k, names in enumerate(self._layer_names):
            for layer in names:
                shapes = {f"weight_ih_{layer}": (rows, self.input_size if k == 0 else inner),
                          f"weight_hh_{layer}": (rows, self.hidden_size)}
                if self.bias:
                    shapes.update({f"bias_ih_{layer}": (rows,), f"bias_hh_{layer}": (rows,)})
                _uniform_weights(self, shapes, dtype)

    def forward(self, input, hx=None):
        """(output, final states): output (L, N, D*hidden), or (N, L, D*hidden) with
        batch_first; final states (D*num_layers, N, hidden), D = 2 if bidirectional
        else 1. Unbatched input (L, input_size) gives results without the N axis."""
        input = as_tensor(input)
        if input.ndim not in (2, 3) or input.shape[-1] != self.input_size:
            self._fail(f"expects input (L, N, {self.input_size})" + (
                " with batch_first" if self.batch_first else "") + ", or unbatched "
                f"(L, {self.input_size}); got {format_shape(input.shape)}")
        batched = input.ndim == 3
        seq = transpose(input, (1, 0, 2)) if batched and self.batch_first else input
        seq = seq if batched else expand_dims(seq, 1)
        if seq.shape[0] is None or seq.shape[0] == 0:
            self._fail("the sequence length must be static and positive, got input "
                       f"{format_shape(input.shape)}")
        states = iter(self._initial_states(hx, batched))
        finals = []
        for k, names in enumerate(self._layer_names):
            if k > 0 and self.training and self.dropout > 0:
                seq = F.dropout(seq, self.dropout, True)
            outputs = []
            for direction, layer in enumerate(names):
                with seq.graph.name_scope(layer):
                    output, final = self._layer(layer, seq, next(states), reverse=direction == 1)
                outputs.append(output)
                finals.append(final)
            seq = outputs[0] if len(outputs) == 1 else concatenate(outputs, axis=-1)
        return self._package(seq, finals, batched)

    def _package(self, seq, finals, batched):
        output = transpose(seq, (1, 0, 2)) if self.batch_first and batched else seq
        parts = [stack(part, 0) for part in zip(*finals)]    # (num_layers, N, hidden) each
        if not batched:
            output, parts = squeeze(output, 1), [squeeze(p, 1) for p in parts]
        return output, self._state_result(parts)

    def _layer(self, layer, seq, state, reverse=False):
        """Run `layer` (l0, l0_reverse, ...) over seq (L, N, features), from its end if
        `reverse`: its outputs (L, N, hidden) in the sequence's order and final state."""
        w_hh_t = transpose(getattr(self, f"weight_hh_{layer}"))
        projected, step_bias = self._project(
            seq, getattr(self, f"weight_ih_{layer}"), getattr(self, f"bias_ih_{layer}", None),
            getattr(self, f"bias_hh_{layer}", None))
        outputs = []
        steps = range(seq.shape[0])
        for t in reversed(steps) if reverse else steps:
            state = self._advance(projected[t], w_hh_t, step_bias, state)
            outputs.append(state[0])
        return stack(outputs[::-1] if reverse else outputs, 0), state

    def _initial_states(self, hx, batched):
        """Per layer and direction: a tuple of (N, hidden) tensors, or None for zeros."""
        count = self.num_layers * (2 if self.bidirectional else 1)
        if hx is None:
            return [None] * count
        parts = self._state_parts(hx)
        expected = (count, None, self.hidden_size) if batched else (count, self.hidden_size)
        for part in parts:
            if len(part.shape) != len(expected) or any(
                    e is not None and d is not None and d != e
                    for d, e in zip(part.shape, expected)):
                self._fail(f"initial state of shape {format_shape(part.shape)}; expected "
                           f"{format_shape(expected)}")
        parts = [p if batched else expand_dims(p, 1) for p in parts]
        return [tuple(p[k] for p in parts) for k in range(count)]

    def extra_repr(self):
        text = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        if not self.bias:
            text += ", bias=False"
        if self.batch_first:
            text += ", batch_first=True"
        text += f", dropout={self.dropout}" if self.dropout else ""
        return text + (", bidirectional=True" if self.bidirectional else "")


class RNN(_Elman, _RNNBase):
    """Elman RNN: h_t = act(x_t @ W_ih.T + b_ih + h_{t-1} @ W_hh.T + b_hh), act
    tanh or relu. `rnn(x, h0=None)` returns (output, h_n)."""

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, dtype=None):
        self.nonlinearity = self._check_nonlinearity(nonlinearity)
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, dtype)

    def extra_repr(self):
        text = super().extra_repr()
        return text + (", nonlinearity='relu'" if self.nonlinearity == "relu" else "")


class LSTM(_LSTMGates, _RNNBase):
    """LSTM with gates i, f, g, o: c_t = f * c_{t-1} + i * g, h_t = o * tanh(c_t).
    `lstm(x, (h0, c0)=None)` returns (output, (h_n, c_n))."""


class GRU(_GRUGates, _RNNBase):
    """GRU with gates r, z, n: n = tanh(x_t @ W_in.T + b_in + r * (h_{t-1} @ W_hn.T
    + b_hn)), h_t = (1 - z) * n + z * h_{t-1}. `gru(x, h0=None)` returns (output, h_n)."""


class _RNNCellBase(_Recurrence, Module):
    """One step of a recurrent layer: `cell(input, hx=None)` with input (N, input_size),
    or unbatched (input_size,); hx and the result (N, hidden_size) or (hidden_size,)."""

    def __init__(self, input_size, hidden_size, bias=True, dtype=None):
        super().__init__()
        name = type(self).__name__
        self.input_size = int_argument(input_size, "input_size", name, minimum=1)
        self.hidden_size = int_argument(hidden_size, "hidden_size", name, minimum=1)
        self.bias = bool(bias)
        rows = self._gates * self.hidden_size
        shapes = {"weight_ih": (rows, self.input_size), "weight_hh": (rows, self.hidden_size)}
        if self.bias:
            shapes.update({"bias_ih": (rows,), "bias_hh": (rows,)})
        _uniform_weights(self, shapes, module_dtype(dtype))

    def forward(self, input, hx=None):
        input = as_tensor(input)
        if input.ndim not in (1, 2) or input.shape[-1] != self.input_size:
            self._fail(f"expects input (N, {self.input_size}) or unbatched "
                       f"({self.input_size},), got {format_shape(input.shape)}")
        batched = input.ndim == 2
        state = self._cell_state(hx, batched)
        projected, step_bias = self._project(input if batched else expand_dims(input, 0),
                                             self.weight_ih, getattr(self, "bias_ih", None),
                                             getattr(self, "bias_hh", None))
        state = self._advance(projected, transpose(self.weight_hh), step_bias, state)
        return self._state_result([s if batched else squeeze(s, 0) for s in state])

    def _cell_state(self, hx, batched):
        """hx as a tuple of (N, hidden) tensors, or None for zeros."""
        if hx is None:
            return None
        parts = self._state_parts(hx)
        expected = (None, self.hidden_size) if batched else (self.hidden_size,)
        for part in parts:
            if part.ndim != len(expected) or part.shape[-1] != self.hidden_size:
                self._fail(f"state of shape {format_shape(part.shape)}; expected "
                           f"{format_shape(expected)} for input that is "
                           + ("batched" if batched else "unbatched"))
        return tuple(p if batched else expand_dims(p, 0) for p in parts)

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")


class RNNCell(_Elman, _RNNCellBase):
    """One Elman step: h' = act(x @ W_ih.T + b_ih + h @ W_hh.T + b_hh), act tanh or relu."""

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", dtype=None):
        self.nonlinearity = self._check_nonlinearity(nonlinearity)
        super().__init__(input_size, hidden_size, bias, dtype)

    def extra_repr(self):
        text = super().extra_repr()
        return text + (", nonlinearity=relu" if self.nonlinearity == "relu" else "")


class LSTMCell(_LSTMGates, _RNNCellBase):
    """One LSTM step (gates i, f, g, o, as LSTM's): `cell(x, (h, c)=None)` returns
    (h', c')."""


class GRUCell(_GRUGates, _RNNCellBase):
    """One GRU step (gates r, z, n, as GRU's): `cell(x, h=None)` returns h'."""


def _sum(a, b):
    """a + b, where None stands for zeros."""
    return b if a is None else a if b is None else a + b
