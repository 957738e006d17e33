"""`RNN` and `LSTM` with PyTorch's arguments, weights, shapes and results.

The sequence is unrolled when the graph is built, so its length must be
static; the batch may be None. Each layer projects the inputs of all time
steps with one matmul (x @ W_ih.T + b_ih + b_hh), then runs the recurrence
step by step (only h @ W_hh.T per step), and passes its outputs to the next
layer (through dropout in training, if `dropout` > 0).

Weights per layer k, as PyTorch: weight_ih_lk (G*hidden, input), weight_hh_lk
(G*hidden, hidden), bias_ih_lk and bias_hh_lk (G*hidden,), with G = 1 (RNN)
or 4 (LSTM, gates in the order i, f, g, o), all U(-1/sqrt(hidden), 1/sqrt(hidden)).
"""
import math

import numpy as np

from graphc.errors import GraphcError, ShapeError, user_location
from graphc.graph import format_shape
from graphc.nn import functional as F
from graphc.nn import init
from graphc.nn.module import Module, module_dtype
from graphc.ops.elementwise import relu, sigmoid, tanh
from graphc.ops.shape import expand_dims, squeeze, stack, transpose
from graphc.ops.source import variable
from graphc.tensor import as_tensor

__all__ = ["RNN", "LSTM"]


class _RNNBase(Module):
    _gates = 1

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, dtype=None):
        super().__init__()
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        if bidirectional:
            self._fail("bidirectional=True is not supported", GraphcError)
        if num_layers < 1 or hidden_size < 1:
            self._fail("num_layers and hidden_size must be positive")
        if not 0 <= self.dropout <= 1:
            self._fail(f"dropout must be in [0, 1], got {dropout}", GraphcError)
        self._make_weights(module_dtype(dtype))

    def _make_weights(self, dtype):
        bound = 1 / math.sqrt(self.hidden_size)
        rows = self._gates * self.hidden_size
        for k in range(self.num_layers):
            shapes = {f"weight_ih_l{k}": (rows, self.input_size if k == 0 else self.hidden_size),
                      f"weight_hh_l{k}": (rows, self.hidden_size)}
            if self.bias:
                shapes.update({f"bias_ih_l{k}": (rows,), f"bias_hh_l{k}": (rows,)})
            for name, shape in shapes.items():
                value = init.uniform_(np.empty(shape, dtype), -bound, bound)
                setattr(self, name, variable(value, name=name))

    def _fail(self, message, error=ShapeError):
        raise error(message, op=type(self).__name__, loc=user_location())

    def forward(self, input, hx=None):
        """(output, final states): output (L, N, hidden), or (N, L, hidden) with
        batch_first; final states (num_layers, N, hidden). Unbatched input (L,
        input_size) gives results without the N axis."""
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
        states = self._initial_states(hx, batched)
        finals = []
        for k in range(self.num_layers):
            if k > 0 and self.training and self.dropout > 0:
                seq = F.dropout(seq, self.dropout, True)
            with seq.graph.name_scope(f"l{k}"):
                seq, final = self._layer(k, seq, states[k])
            finals.append(final)
        return self._package(seq, finals, batched)

    def _package(self, seq, finals, batched):
        output = transpose(seq, (1, 0, 2)) if self.batch_first and batched else seq
        parts = [stack(part, 0) for part in zip(*finals)]    # (num_layers, N, hidden) each
        if not batched:
            output, parts = squeeze(output, 1), [squeeze(p, 1) for p in parts]
        return output, self._state_result(parts)

    def _layer(self, k, seq, state):
        """Run layer k over seq (L, N, features): its outputs (L, N, hidden) and
        final state tuple."""
        w_hh_t = transpose(getattr(self, f"weight_hh_l{k}"))
        projected = seq @ transpose(getattr(self, f"weight_ih_l{k}"))
        if self.bias:
            bias = getattr(self, f"bias_ih_l{k}") + getattr(self, f"bias_hh_l{k}")
            projected = projected + bias
        outputs = []
        for t in range(seq.shape[0]):
            pre = projected[t] if state is None else projected[t] + state[0] @ w_hh_t
            state = self._cell(pre, state)
            outputs.append(state[0])
        return stack(outputs, 0), state

    def _initial_states(self, hx, batched):
        """Per layer: a tuple of (N, hidden) tensors, or None for zeros."""
        if hx is None:
            return [None] * self.num_layers
        parts = self._state_parts(hx)
        expected = (self.num_layers, None, self.hidden_size) if batched else \
            (self.num_layers, self.hidden_size)
        for part in parts:
            if len(part.shape) != len(expected) or any(
                    e is not None and d is not None and d != e
                    for d, e in zip(part.shape, expected)):
                self._fail(f"initial state of shape {format_shape(part.shape)}; expected "
                           f"{format_shape(expected)}")
        parts = [p if batched else expand_dims(p, 1) for p in parts]
        return [tuple(p[k] for p in parts) for k in range(self.num_layers)]

    def extra_repr(self):
        text = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        if not self.bias:
            text += ", bias=False"
        if self.batch_first:
            text += ", batch_first=True"
        return text + (f", dropout={self.dropout}" if self.dropout else "")


class RNN(_RNNBase):
    """Elman RNN: h_t = act(x_t @ W_ih.T + b_ih + h_{t-1} @ W_hh.T + b_hh), act
    tanh or relu. `rnn(x, h0=None)` returns (output, h_n)."""

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise GraphcError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}",
                              op="RNN", loc=user_location())
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, dtype)

    def _cell(self, pre, state):
        return ((tanh if self.nonlinearity == "tanh" else relu)(pre),)

    def _state_parts(self, hx):
        return [as_tensor(hx)]

    def _state_result(self, parts):
        return parts[0]

    def extra_repr(self):
        text = super().extra_repr()
        return text + (", nonlinearity='relu'" if self.nonlinearity == "relu" else "")


class LSTM(_RNNBase):
    """LSTM with gates i, f, g, o: c_t = f * c_{t-1} + i * g, h_t = o * tanh(c_t).
    `lstm(x, (h0, c0)=None)` returns (output, (h_n, c_n))."""
    _gates = 4

    def _cell(self, pre, state):
        size = self.hidden_size
        i, f, o = (sigmoid(pre[:, j * size:(j + 1) * size]) for j in (0, 1, 3))
        g = tanh(pre[:, 2 * size:3 * size])
        c = i * g if state is None else f * state[1] + i * g
        return o * tanh(c), c

    def _state_parts(self, hx):
        if not isinstance(hx, (tuple, list)) or len(hx) != 2:
            self._fail("the initial state of an LSTM is a pair (h_0, c_0)", GraphcError)
        return [as_tensor(part) for part in hx]

    def _state_result(self, parts):
        return tuple(parts)
