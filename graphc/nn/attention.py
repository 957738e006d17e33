"""Attention as PyTorch 2.13 has it: `scaled_dot_product_attention` (exported by
gc.nn.functional) and the `MultiheadAttention` module.

Both compute softmax(Q K^T * scale + mask) V with batched matmuls over (N, H, L, D)
operands. Masks come in two kinds: a bool tensor says which (query, key) pairs take
part, a float tensor is added to the scores. They mean opposite things in the two
APIs, as in PyTorch: in `scaled_dot_product_attention` a bool True takes part, in
`MultiheadAttention` (attn_mask, key_padding_mask) a bool True is left out.

A query that no key may attend to (every score masked out) gets zero weights and a
zero output, with zero gradients, as PyTorch 2.13's scaled_dot_product_attention
(PyTorch's MultiheadAttention gives NaN there when need_weights=True, zeros when not;
graphc gives zeros in both).
"""
import math

import numpy as np

from graphc import dtypes
from graphc.errors import ArgumentError, DtypeError, ShapeError, user_location
from graphc.graph import format_shape
from graphc.nn import arguments, functional as F
from graphc.nn import init
from graphc.nn.layers import Linear, _array, _fail
from graphc.nn.module import Module, module_dtype
from graphc.ops.elementwise import cast, logical_and, logical_not, where
from graphc.ops.linalg import matmul
from graphc.ops.reduce import amax, mean
from graphc.ops.rules import broadcast_shapes
from graphc.ops.shape import expand_dims, reshape, squeeze, swapaxes, transpose
from graphc.ops.source import constant, variable
from graphc.tensor import as_tensor

__all__ = ["MultiheadAttention"]

_SDPA = "scaled_dot_product_attention"


def _refuse(message, op, error=ShapeError):
    raise error(message, op=op, loc=user_location())


# -- the shared core ------------------------------------------------------------------

def _masked_softmax(scores):
    """Softmax over the last axis where a row whose scores are all -inf gives zeros
    (not NaN), and no NaN reaches the gradient."""
    dead = amax(scores, -1, keepdims=True) == -np.inf
    weights = F.softmax(where(dead, 0.0, scores), -1)
    return where(dead, 0.0, weights)


def _attend(q, k, v, scale, keep=None, bias=None, dropout_p=0.0):
    """(softmax(q k^T * scale + bias, -inf where not keep) @ v, the weights after
    dropout). q (..., L, D), k (..., S, D), v (..., S, Dv); keep (bool) and bias
    broadcast to (..., L, S); either may be None. Dropout draws whenever dropout_p > 0."""
    scores = matmul(q * scale, swapaxes(k, -1, -2))
    if bias is not None:
        scores = scores + bias
    if keep is not None:
        scores = where(keep, scores, -np.inf)
    masked = keep is not None or bias is not None
    weights = _masked_softmax(scores) if masked else F.softmax(scores, -1)
    weights = F.dropout(weights, dropout_p, True)
    return matmul(weights, v), weights


def _causal(length, source, op):
    """The (L, S) bool mask keeping key j for query i when j <= i (top-left aligned)."""
    if length is None or source is None:
        _refuse("is_causal needs static query and key lengths, got "
                f"L={length}, S={source}", op)
    return constant(np.tril(np.ones((length, source), bool)))


def _mask_parts(mask, dtype, keep_when, op, name):
    """(keep, bias) for `mask`: a bool mask keeps where it equals `keep_when`, a float
    mask is added (cast to the scores' dtype); anything else is a DtypeError."""
    if dtypes.is_bool(mask.dtype):
        return (mask if keep_when else logical_not(mask)), None
    if mask.dtype.kind != "f":
        _refuse(f"{name} must be bool or floating point, got {mask.dtype}", op, DtypeError)
    return None, cast(mask, dtype)


def _combine(parts):
    """Merge (keep, bias) pairs: keeps with logical and, biases with +."""
    keep = bias = None
    for k, b in parts:
        if k is not None:
            keep = k if keep is None else logical_and(keep, k)
        if b is not None:
            bias = b if bias is None else bias + b
    return keep, bias


# -- the function -----------------------------------------------------------------------

def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0,
                                 is_causal=False, scale=None, enable_gqa=False):
    """PyTorch's: softmax(query @ key^T * scale + mask) @ value over the last two axes.

    query (..., L, E), key (..., S, E), value (..., S, Ev) -> (..., L, Ev); leading
    axes broadcast. attn_mask broadcasts to (..., L, S): bool True takes part, a float
    mask is added. is_causal keeps key j for query i when j <= i and refuses an
    attn_mask (ArgumentError, as PyTorch's documentation says). scale defaults to
    1 / sqrt(E). Dropout (dropout_p > 0) draws at every call, training or not, as
    PyTorch's; pass 0 in evaluation. A query row with no key left gives zeros.
    """
    query, key, value = as_tensor(query), as_tensor(key), as_tensor(value)
    dropout_p = arguments.probability_argument(dropout_p, "dropout_p", _SDPA)
    if enable_gqa:
        _refuse("enable_gqa=True is not supported", _SDPA, ArgumentError)
    _check_operands(query, key, value)
    length, source = query.shape[-2], key.shape[-2]
    scale = 1 / math.sqrt(query.shape[-1]) if scale is None else \
        arguments.non_negative_number(scale, "scale", _SDPA)
    keep = bias = None
    if is_causal:
        if attn_mask is not None:
            _refuse("is_causal=True and an attn_mask cannot be given together", _SDPA,
                    ArgumentError)
        keep = _causal(length, source, _SDPA)
    elif attn_mask is not None:
        attn_mask = as_tensor(attn_mask)
        _check_broadcast(attn_mask, query.shape[:-2] + (length, source))
        keep, bias = _mask_parts(attn_mask, query.dtype, True, _SDPA, "attn_mask")
    return _attend(query, key, value, scale, keep, bias, dropout_p)[0]


def _check_operands(query, key, value):
    if min(query.ndim, key.ndim, value.ndim) < 2:
        _refuse("query, key and value need at least 2 dimensions, got "
                f"{_shapes(query, key, value)}", _SDPA)
    if not _fits(query.shape[-1], key.shape[-1]) or not _fits(key.shape[-2], value.shape[-2]):
        _refuse("expects query (..., L, E), key (..., S, E), value (..., S, Ev), got "
                f"{_shapes(query, key, value)}", _SDPA)
    if query.shape[-1] is None:
        _refuse(f"the feature size E of query must be static, got {_shapes(query)}", _SDPA)


def _check_broadcast(mask, shape):
    try:
        out = broadcast_shapes(mask.shape, shape)
    except ShapeError:
        out = None
    if out is None or len(out) != len(shape) or not all(map(_fits, out, shape)):
        _refuse(f"attn_mask of shape {format_shape(mask.shape)} does not broadcast to the "
                f"attention scores' shape {format_shape(shape)}", _SDPA)


def _fits(size, expected):
    """Sizes agree unless one is unknown (None)."""
    return size is None or expected is None or size == expected


def _shapes(*tensors):
    return ", ".join(format_shape(t.shape) for t in tensors)


# -- the module -------------------------------------------------------------------------

class NonDynamicallyQuantizableLinear(Linear):
    """Linear under the name PyTorch gives MultiheadAttention's out_proj (for repr)."""


class MultiheadAttention(Module):
    """PyTorch's MultiheadAttention: heads of size embed_dim // num_heads over projections
    of query, key and value, concatenated and projected by `out_proj`.

    Parameters as PyTorch's: in_proj_weight (3E, E) when kdim == vdim == embed_dim, else
    q_proj_weight (E, E), k_proj_weight (E, kdim), v_proj_weight (E, vdim), all
    xavier_uniform; in_proj_bias (3E,) zeros; out_proj.weight (E, E) as Linear's init,
    out_proj.bias zeros. Inputs are (L, N, E) (batch_first: (N, L, E)) or unbatched
    (L, E). `forward` returns (output, weights): weights (N, L, S) averaged over the
    heads, (N, H, L, S) with average_attn_weights=False, None with need_weights=False.
    Dropout of the weights only in training.
    """

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False,
                 add_zero_attn=False, kdim=None, vdim=None, batch_first=False, dtype=None):
        super().__init__()
        name = type(self).__name__
        self.embed_dim = arguments.int_argument(embed_dim, "embed_dim", name, minimum=1)
        self.kdim = self._dim(kdim, "kdim")
        self.vdim = self._dim(vdim, "vdim")
        self._qkv_same_embed_dim = self.kdim == self.embed_dim == self.vdim
        self.num_heads = arguments.int_argument(num_heads, "num_heads", name, minimum=1)
        self.dropout = arguments.probability_argument(dropout, "dropout", name)
        self.batch_first = batch_first
        self.head_dim = self.embed_dim // self.num_heads
        if self.head_dim * self.num_heads != self.embed_dim:
            _fail(self, f"embed_dim {self.embed_dim} must be divisible by num_heads "
                        f"{self.num_heads}", ArgumentError)
        if add_bias_kv or add_zero_attn:
            _fail(self, "add_bias_kv and add_zero_attn are not supported", ArgumentError)
        self.bias_k = self.bias_v = None
        self.add_zero_attn = False
        self._make_weights(module_dtype(dtype), bias)

    def _dim(self, value, name):
        if value is None:
            return self.embed_dim
        return arguments.int_argument(value, name, type(self).__name__, minimum=1)

    def _make_weights(self, dtype, bias):
        e = self.embed_dim
        xavier = lambda cols: init.xavier_uniform_(_array(self, (e, cols), dtype))  # noqa: E731
        if self._qkv_same_embed_dim:
            weight = init.xavier_uniform_(_array(self, (3 * e, e), dtype))
            self.in_proj_weight = variable(weight, name="in_proj_weight")
            self.q_proj_weight = self.k_proj_weight = self.v_proj_weight = None
        else:
            self.in_proj_weight = None
            self.q_proj_weight = variable(xavier(e), name="q_proj_weight")
            self.k_proj_weight = variable(xavier(self.kdim), name="k_proj_weight")
            self.v_proj_weight = variable(xavier(self.vdim), name="v_proj_weight")
        self.in_proj_bias = variable(_array(self, (3 * e,), dtype, 0.0),
                                     name="in_proj_bias") if bias else None
        self.out_proj = NonDynamicallyQuantizableLinear(e, e, bias=bias, dtype=dtype)
        if bias:
            init.zeros_(self.out_proj.bias)

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True,
                attn_mask=None, average_attn_weights=True, is_causal=False):
        """(attn_output shaped as query, attn_weights or None); see the class docstring."""
        query, key, value = as_tensor(query), as_tensor(key), as_tensor(value)
        batched = self._check_inputs(query, key, value)
        if is_causal and attn_mask is None:
            _fail(self, "is_causal is a hint that attn_mask is the causal mask: pass the "
                        "attn_mask too", ArgumentError)
        q, k, v = (self._batch_first(x, batched) for x in (query, key, value))
        keep, bias = self._masks(attn_mask, key_padding_mask, q, k, batched)
        q, k, v = self._heads(q, k, v, query is key is value)
        dropout_p = self.dropout if self.training else 0.0
        out, weights = _attend(q, k, v, 1 / math.sqrt(self.head_dim), keep, bias, dropout_p)
        out = self._restore_layout(self.out_proj(self._merge_heads(out)), batched)
        return out, self._returned_weights(weights, need_weights, average_attn_weights,
                                           batched)

    def _check_inputs(self, query, key, value):
        """Shapes as PyTorch checks them; whether the input is batched."""
        if query.ndim not in (2, 3) or key.ndim != query.ndim or value.ndim != query.ndim:
            _fail(self, "expects query, key and value all 3-D (batched) or all 2-D "
                        f"(unbatched), got {_shapes(query, key, value)}")
        dims = zip((query, key, value), (self.embed_dim, self.kdim, self.vdim))
        if not all(_fits(x.shape[-1], d) for x, d in dims):
            _fail(self, f"expects query, key and value with {self.embed_dim}, {self.kdim} and "
                        f"{self.vdim} features, got {_shapes(query, key, value)}")
        batch_axis = 0 if self.batch_first else 1
        seq_axis = (1 - batch_axis) if query.ndim == 3 else 0
        if not _fits(key.shape[seq_axis], value.shape[seq_axis]) or query.ndim == 3 and not (
                _fits(query.shape[batch_axis], key.shape[batch_axis])
                and _fits(key.shape[batch_axis], value.shape[batch_axis])):
            _fail(self, "key and value must have the same length, and query, key and value "
                        f"the same batch size, got {_shapes(query, key, value)}")
        return query.ndim == 3

    def _batch_first(self, x, batched):
        """x as (N, L, features)."""
        if not batched:
            return expand_dims(x, 0)
        return x if self.batch_first else transpose(x, (1, 0, 2))

    def _restore_layout(self, x, batched):
        """x (N, L, features) back in the input's layout."""
        if not batched:
            return squeeze(x, 0)
        return x if self.batch_first else transpose(x, (1, 0, 2))

    def _heads(self, q, k, v, same):
        """The three input projections, each split into heads (N, H, L, head_dim); one
        matmul when query, key and value are one tensor."""
        e = self.embed_dim
        b = self.in_proj_bias
        biases = [None] * 3 if b is None else [b[:e], b[e:2 * e], b[2 * e:]]
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight
            if same:        # (N, L, 3, H, hd) -> (3, N, H, L, hd): slices of the first axis
                qkv = transpose(self._split_heads(F.linear(q, w, b), 3), (2, 0, 3, 1, 4))
                return qkv[0], qkv[1], qkv[2]
            weights = [w[:e], w[e:2 * e], w[2 * e:]]
        else:
            weights = [self.q_proj_weight, self.k_proj_weight, self.v_proj_weight]
        return tuple(transpose(self._split_heads(F.linear(x, w, bias)), (0, 2, 1, 3))
                     for x, w, bias in zip((q, k, v), weights, biases))

    def _split_heads(self, x, parts=1):
        """(N, L, parts * E) -> (N, L, parts, H, head_dim), without the parts axis if 1."""
        n, length, _ = x.shape
        if n is None and length is None:
            _fail(self, "needs a static batch size or sequence length, got both unknown")
        shape = (-1 if n is None else n, -1 if length is None else length) + (
            (parts,) if parts > 1 else ()) + (self.num_heads, self.head_dim)
        return reshape(x, shape)

    def _merge_heads(self, x):
        """(N, H, L, head_dim) -> (N, L, E)."""
        n, _, length, _ = x.shape
        shape = (-1 if n is None else n, -1 if length is None else length, self.embed_dim)
        return reshape(transpose(x, (0, 2, 1, 3)), shape)

    def _masks(self, attn_mask, key_padding_mask, q, k, batched):
        """(keep, bias) broadcasting to (N, H, L, S) from PyTorch's attn_mask ((L, S) or
        (N*H, L, S)) and key_padding_mask ((N, S)); bool True means left out."""
        n, length, source = q.shape[0], q.shape[1], k.shape[1]
        parts = []
        if attn_mask is not None:
            attn_mask = as_tensor(attn_mask)
            heads = self.num_heads * (n if batched else 1)
            if attn_mask.ndim == 2 and _all_fit(attn_mask.shape, (length, source)):
                mask = attn_mask
            elif attn_mask.ndim == 3 and _all_fit(attn_mask.shape, (heads, length, source)):
                mask = reshape(attn_mask, (-1, self.num_heads, length, source))
            else:
                _fail(self, f"attn_mask of shape {format_shape(attn_mask.shape)}; expected "
                            f"{format_shape((length, source))} or "
                            f"{format_shape((heads, length, source))}")
            parts.append(_mask_parts(mask, q.dtype, False, type(self).__name__, "attn_mask"))
        if key_padding_mask is not None:
            kpm = as_tensor(key_padding_mask)
            expected = (n, source) if batched else (source,)
            if not _all_fit(kpm.shape, expected):
                _fail(self, f"key_padding_mask of shape {format_shape(kpm.shape)}; expected "
                            f"{format_shape(expected)}")
            kpm = expand_dims(expand_dims(kpm, 1), 1) if batched else kpm   # (N, 1, 1, S)
            parts.append(_mask_parts(kpm, q.dtype, False, type(self).__name__,
                                     "key_padding_mask"))
        return _combine(parts)

    def _returned_weights(self, weights, need_weights, average, batched):
        if not need_weights:
            return None
        weights = mean(weights, 1) if average else weights
        return weights if batched else squeeze(weights, 0)


def _all_fit(shape, expected):
    return len(shape) == len(expected) and all(map(_fits, shape, expected))
