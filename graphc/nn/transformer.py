"""PyTorch 2.13's `TransformerEncoderLayer` and `TransformerEncoder`.

Same constructor arguments, defaults, submodule names (self_attn, linear1, dropout,
linear2, norm1, norm2, dropout1, dropout2; layers.0, layers.1, ...) and results as
PyTorch's slow path. Differences: PyTorch's evaluation fast path with a
src_key_padding_mask (nested tensors) returns zeros at the padded positions;
graphc returns what the slow path computes there. `enable_nested_tensor` and
`mask_check` are accepted and change nothing.
"""
import copy

from graphc.errors import ArgumentError
from graphc.graph import format_shape
from graphc.nn import arguments, functional as F
from graphc.nn.attention import MultiheadAttention, _all_fit
from graphc.nn.layers import Dropout, LayerNorm, Linear, _fail
from graphc.nn.containers import ModuleList
from graphc.nn.module import Module, module_dtype
from graphc.tensor import as_tensor

__all__ = ["TransformerEncoderLayer", "TransformerEncoder"]

_ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}


class TransformerEncoderLayer(Module):
    """Self-attention then a feed-forward block, each with dropout, a residual
    connection and a LayerNorm (after the residual; before the block with norm_first).

    src is (S, N, d_model) (batch_first: (N, S, d_model)) or unbatched (S, d_model);
    the output has its shape. src_mask and src_key_padding_mask are
    MultiheadAttention's attn_mask and key_padding_mask (bool True: left out).
    """

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu",
                 layer_norm_eps=1e-5, batch_first=False, norm_first=False, bias=True,
                 dtype=None):
        super().__init__()
        name = type(self).__name__
        self.d_model = arguments.int_argument(d_model, "d_model", name, minimum=1)
        feedforward = arguments.int_argument(dim_feedforward, "dim_feedforward", name,
                                             minimum=1)
        dropout = arguments.probability_argument(dropout, "dropout", name)
        eps = arguments.non_negative_number(layer_norm_eps, "layer_norm_eps", name)
        dtype = module_dtype(dtype)
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                            batch_first=batch_first, dtype=dtype)
        self.linear1 = Linear(d_model, feedforward, bias=bias, dtype=dtype)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(feedforward, d_model, bias=bias, dtype=dtype)
        self.norm_first = bool(norm_first)
        self.norm1 = LayerNorm(d_model, eps=eps, bias=bias, dtype=dtype)
        self.norm2 = LayerNorm(d_model, eps=eps, bias=bias, dtype=dtype)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.activation = self._activation(activation)
        self.batch_first = batch_first

    def _activation(self, activation):
        if isinstance(activation, str):
            if activation not in _ACTIVATIONS:
                _fail(self, f"activation should be 'relu' or 'gelu', not {activation!r}",
                      ArgumentError)
            return _ACTIVATIONS[activation]
        if not callable(activation):
            _fail(self, f"activation must be 'relu', 'gelu' or a callable, got "
                        f"{activation!r}", ArgumentError)
        return activation

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal=False):
        """norm_first: x + sa(norm1(x)), then + ff(norm2(.)); else norm1(x + sa(x)),
        then norm2(. + ff(.))."""
        src = as_tensor(src)
        if src.ndim not in (2, 3) or not _all_fit(src.shape[-1:], (self.d_model,)):
            order = "(N, S, d_model)" if self.batch_first else "(S, N, d_model)"
            _fail(self, f"expects src {order} or (S, d_model) with d_model={self.d_model}, "
                        f"got shape {format_shape(src.shape)}")
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            return x + self._ff_block(self.norm2(x))
        x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
        return self.norm2(x + self._ff_block(x))

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal):
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                           need_weights=False, is_causal=is_causal)[0]
        return self.dropout1(x)

    def _ff_block(self, x):
        x = self.linear2(self.dropout(self.activation(self.linear1(x))))
        return self.dropout2(x)


class TransformerEncoder(Module):
    """`num_layers` copies of `encoder_layer` (new variables holding its current
    values, as PyTorch's deep copies), applied in turn, then `norm` if given."""

    def __init__(self, encoder_layer, num_layers, norm=None, enable_nested_tensor=True,
                 mask_check=True):
        super().__init__()
        name = type(self).__name__
        if not isinstance(encoder_layer, Module):
            _fail(self, f"encoder_layer must be a Module, got {type(encoder_layer).__name__}",
                  ArgumentError)
        self.num_layers = arguments.int_argument(num_layers, "num_layers", name, minimum=0)
        self.layers = ModuleList([copy.deepcopy(encoder_layer) for _ in range(self.num_layers)])
        self.norm = norm
        self.enable_nested_tensor, self.mask_check = enable_nested_tensor, mask_check

    def forward(self, src, mask=None, src_key_padding_mask=None, is_causal=None):
        """Each layer's forward(output, src_mask=mask, src_key_padding_mask=...,
        is_causal=...), then norm. is_causal is a hint, as in PyTorch: the mask is used."""
        output = as_tensor(src)
        for layer in self.layers:
            output = layer(output, src_mask=mask, src_key_padding_mask=src_key_padding_mask,
                           is_causal=bool(is_causal))
        return output if self.norm is None else self.norm(output)

