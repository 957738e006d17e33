"""Losses with torch.nn.functional's signatures and defaults, and their modules
(`gc.nn.CrossEntropyLoss()`, ...), as a ported `criterion = nn.X()` expects.

Each is a composition of graphc ops, so it differentiates to any order and
fuses like the rest of the graph. Where a textbook formula would make a NaN
(log 0 times 0, e.g. a saturated float32 sigmoid of exactly 1.0 in binary
cross-entropy), the log is guarded on both sides of a `where`, so neither the
value nor the gradient of the branch not taken is NaN.
"""
import numpy as np

from graphc import dtypes
from graphc.errors import ArgumentError, DtypeError, ShapeError, user_location
from graphc.graph import format_shape
from graphc.nn.arguments import int_argument, non_negative_number, probability_argument
from graphc.nn.module import Module
from graphc.ops.elementwise import abs, cast, exp, log, maximum, softplus, where
from graphc.ops.reduce import mean, sum
from graphc.ops.rules import broadcasts_to
from graphc.ops.shape import one_hot, transpose
from graphc.ops.source import size
from graphc.tensor import Tensor, apply, as_tensor

__all__ = [
    "cross_entropy", "nll_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits",
    "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "kl_div",
    "CrossEntropyLoss", "NLLLoss", "BCELoss", "BCEWithLogitsLoss", "MSELoss", "L1Loss",
    "SmoothL1Loss", "HuberLoss", "KLDivLoss",
]
LOG_FLOOR = -100.0      # PyTorch's binary cross-entropy clamps its logs here


# -- arguments ---------------------------------------------------------------------------

def _reduce(loss, reduction, name, batch=None):
    if reduction == "mean":
        return mean(loss)
    if reduction == "sum":
        return sum(loss)
    if reduction == "none":
        return loss
    if reduction == "batchmean" and batch is not None:
        return sum(loss) / batch
    allowed = "'mean', 'sum', 'none'" + (" or 'batchmean'" if batch is not None else "")
    raise ArgumentError(f"reduction must be {allowed}, got {reduction!r}", op=name,
                        loc=user_location())


def _same_sizes(shape, other):
    """Equal shapes, a None size matching any."""
    return len(shape) == len(other) and all(
        a is None or b is None or a == b for a, b in zip(shape, other))


def _shape_of(x):
    return x.shape if isinstance(x, Tensor) else np.shape(x)


def _check_same_shapes(input, target, name):
    """PyTorch's losses of input and target of one shape refuse to broadcast them."""
    shapes = _shape_of(input), _shape_of(target)
    if not _same_sizes(*shapes):
        raise ShapeError(f"input {format_shape(shapes[0])} and target "
                         f"{format_shape(shapes[1])} must have the same shape", op=name,
                         loc=user_location())


def _weight_like(weight, input, shape, what, name):
    """`weight` as a tensor of input's dtype that broadcasts to `shape` (None stays None)."""
    if weight is None:
        return None
    if not isinstance(weight, Tensor):
        weight = np.asarray(weight, dtype=input.dtype)
    elif weight.dtype != input.dtype:
        raise DtypeError(f"{what} must have the input's dtype {input.dtype}, got "
                         f"{weight.dtype}", op=name, loc=user_location())
    if not broadcasts_to(weight.shape, shape):
        raise ShapeError(f"{what} {format_shape(weight.shape)} does not broadcast to input "
                         f"{format_shape(shape)}", op=name, loc=user_location())
    return as_tensor(weight)


def _class_weight(weight, input, name):
    """A per-class weight (C,) for input (N, C, ...), as a tensor of input's dtype."""
    classes = input.shape[1]
    if weight is not None and _shape_of(weight) != (classes,):
        raise ShapeError(f"weight {format_shape(_shape_of(weight))} must have one value per "
                         f"class, ({classes},), for input {format_shape(input.shape)}", op=name,
                         loc=user_location())
    return _weight_like(weight, input, (classes,), "weight", name)


def _guarded_log(x):
    """max(log x, LOG_FLOOR), with value and gradient finite at x <= 0."""
    positive = x > 0
    return maximum(where(positive, log(where(positive, x, 1)), LOG_FLOOR), LOG_FLOOR)


# -- classification ----------------------------------------------------------------------

def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0):
    """Softmax cross-entropy of logits (N, C[, d...]) against integer labels (N[, d...])
    or class probabilities of the logits' shape, as PyTorch's: per-class `weight`, labels
    equal to `ignore_index` left out (of the mean's denominator too), `label_smoothing`
    mixing the targets with the uniform distribution."""
    input, target = as_tensor(input), as_tensor(target)
    smoothing = probability_argument(label_smoothing, "label_smoothing", "cross_entropy")
    if input.ndim >= 2 and dtypes.is_float(target.dtype) and _same_sizes(target.shape,
                                                                         input.shape):
        return _soft_cross_entropy(input, target, weight, reduction, smoothing)
    _check_labels(input, target, "cross_entropy", "logits")
    logp = apply("log_softmax", input, axis=1)
    return _class_nll(logp, target, weight, ignore_index, reduction, smoothing, "cross_entropy")


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    """Negative log-likelihood of log-probabilities (N, C[, d...]) (log_softmax's output)
    against integer labels (N[, d...]), with cross_entropy's weight and ignore_index."""
    input, target = as_tensor(input), as_tensor(target)
    _check_labels(input, target, "nll_loss", "log-probabilities")
    return _class_nll(input, target, weight, ignore_index, reduction, 0.0, "nll_loss")


def _check_labels(input, target, name, what):
    labels_shape = input.shape[:1] + input.shape[2:] if input.ndim >= 2 else None
    if labels_shape is None or not _same_sizes(target.shape, labels_shape):
        expected = "(N, ...)" if labels_shape is None else format_shape(labels_shape)
        raise ShapeError(f"{what} {format_shape(input.shape)} and labels "
                         f"{format_shape(target.shape)}: expected {what} (N, C, ...) and "
                         f"labels {expected} (or class probabilities of the input's shape)",
                         op=name, loc=user_location())
    if not dtypes.is_int(target.dtype):
        raise DtypeError(f"labels must be integer class indices, got {target.dtype} ({what} "
                         f"{format_shape(input.shape)}, labels {format_shape(target.shape)})",
                         op=name, loc=user_location())


def _classes_last(logp):
    """(N, C, d...) -> (N, d..., C)."""
    if logp.ndim == 2:
        return logp
    return transpose(logp, (0,) + tuple(range(2, logp.ndim)) + (1,))


def _class_nll(logp, target, weight, ignore_index, reduction, smoothing, name):
    ignore_index = int_argument(ignore_index, "ignore_index", name)
    classes = logp.shape[1]
    weight = _class_weight(weight, logp, name)
    logp = _classes_last(logp)
    kept = target != ignore_index
    # where, not a product with a 0/1 one-hot: 0 * log 0 would make a masked logit's NaN
    picked = one_hot(where(kept, target, 0), classes, dtype="bool")
    kept = cast(kept, logp.dtype)
    share = kept if weight is None else sum(where(picked, weight, 0), axis=-1) * kept
    loss = -sum(where(picked, logp, 0), axis=-1) * share
    if smoothing:
        uniform = -sum(logp if weight is None else logp * weight, axis=-1) * kept
        loss = (1 - smoothing) * loss + (smoothing / classes) * uniform
    if reduction == "mean":
        return sum(loss) / sum(share)
    return _reduce(loss, reduction, name)


def _soft_cross_entropy(input, target, weight, reduction, smoothing):
    classes = input.shape[1]
    weight = _class_weight(weight, input, "cross_entropy")
    logp = _classes_last(apply("log_softmax", input, axis=1))
    target = _classes_last(target)
    if smoothing:
        target = target * (1 - smoothing) + smoothing / classes
    terms = where(target != 0, target * logp, 0)     # a masked (-inf) logit of target 0: 0
    terms = terms if weight is None else terms * weight
    return _reduce(-sum(terms, axis=-1), reduction, "cross_entropy")


def binary_cross_entropy(input, target, weight=None, reduction="mean"):
    """BCE of probabilities, its logs clamped at -100 as PyTorch's (so a probability of
    exactly 0 or 1 gives a finite loss; prefer the with-logits form for stability)."""
    _check_same_shapes(input, target, "binary_cross_entropy")
    input = as_tensor(input)
    loss = -(target * _guarded_log(input) + (1 - target) * _guarded_log(1 - input))
    weight = _weight_like(weight, input, input.shape, "weight", "binary_cross_entropy")
    return _reduce(loss if weight is None else loss * weight, reduction,
                   "binary_cross_entropy")


def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean",
                                     pos_weight=None):
    """Sigmoid + binary cross-entropy in one stable expression (as PyTorch).

    Written with softplus (log(1 + e^x), whose gradient is sigmoid) so the
    gradient is exactly sigmoid(x) - target everywhere, x = 0 included.
    """
    name = "binary_cross_entropy_with_logits"
    _check_same_shapes(input, target, name)
    input = as_tensor(input)
    if pos_weight is None:
        loss = softplus(input) - target * input
    else:
        pos_weight = _weight_like(pos_weight, input, input.shape, "pos_weight", name)
        loss = (1 - target) * input + (1 + (pos_weight - 1) * target) * softplus(-input)
    weight = _weight_like(weight, input, input.shape, "weight", name)
    return _reduce(loss if weight is None else loss * weight, reduction, name)


def kl_div(input, target, reduction="mean", log_target=False):
    """KL(target || exp(input)) pointwise, input log-probabilities: target * (log target -
    input), 0 where target is 0 (or its log, with log_target, is -inf). reduction=
    "batchmean" divides the sum by the batch size (the mathematical KL divergence;
    PyTorch's "mean" averages over every element)."""
    _check_same_shapes(input, target, "kl_div")
    input, target = as_tensor(input), as_tensor(target)
    p = exp(target) if log_target else target
    log_p = where(p > 0, target, 0) if log_target else log(where(p > 0, target, 1))
    loss = where(p > 0, p * (log_p - input), 0)         # PyTorch: NaN for a log_target of -inf
    batch = size(input, 0, dtype=input.dtype) if input.ndim else 1    # (a None batch too)
    return _reduce(loss, reduction, "kl_div", batch=batch)


# -- regression --------------------------------------------------------------------------

def mse_loss(input, target, reduction="mean"):
    _check_same_shapes(input, target, "mse_loss")
    diff = input - target
    return _reduce(diff * diff, reduction, "mse_loss")


def l1_loss(input, target, reduction="mean"):
    _check_same_shapes(input, target, "l1_loss")
    return _reduce(abs(input - target), reduction, "l1_loss")


def smooth_l1_loss(input, target, reduction="mean", beta=1.0):
    """0.5 d^2 / beta where |d| < beta, |d| - 0.5 beta elsewhere (beta 0: L1)."""
    _check_same_shapes(input, target, "smooth_l1_loss")
    beta = non_negative_number(beta, "beta", "smooth_l1_loss")
    d = abs(input - target)
    if beta == 0:
        return _reduce(d, reduction, "smooth_l1_loss")
    return _reduce(where(d < beta, (0.5 / beta) * d * d, d - 0.5 * beta), reduction,
                   "smooth_l1_loss")


def huber_loss(input, target, reduction="mean", delta=1.0):
    """0.5 d^2 where |d| < delta, delta (|d| - 0.5 delta) elsewhere."""
    _check_same_shapes(input, target, "huber_loss")
    delta = non_negative_number(delta, "delta", "huber_loss")
    if delta == 0:
        raise ArgumentError("delta must be > 0, got 0", op="huber_loss", loc=user_location())
    d = abs(input - target)
    return _reduce(where(d < delta, 0.5 * d * d, delta * (d - 0.5 * delta)), reduction,
                   "huber_loss")


# -- modules ------------------------------------------------------------------------------

class _Loss(Module):
    """A loss function as a module (torch.nn's criteria): options set once, then
    `criterion(input, target)`. PyTorch's deprecated size_average and reduce must be
    left None (use reduction)."""
    function = None

    def __init__(self, size_average=None, reduce=None, **options):
        super().__init__()
        if size_average is not None or reduce is not None:
            raise ArgumentError("size_average and reduce are deprecated in PyTorch and not "
                                "taken here: use reduction='mean', 'sum' or 'none'",
                                op=type(self).__name__, loc=user_location())
        self.options = options

    def forward(self, input, target):
        return type(self).function(input, target, **self.options)

    def extra_repr(self):
        return ", ".join(f"{k}={v!r}" for k, v in self.options.items()
                         if not (k == "reduction" and v == "mean"))


def underlying_function(loss_fn):
    """The loss function behind a loss module (the trainer infers its task from it)."""
    return type(loss_fn).function if isinstance(loss_fn, _Loss) else loss_fn


class CrossEntropyLoss(_Loss):
    function = staticmethod(cross_entropy)

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None,
                 reduction="mean", label_smoothing=0.0):
        super().__init__(size_average, reduce, weight=weight, ignore_index=ignore_index,
                         reduction=reduction, label_smoothing=label_smoothing)


class NLLLoss(_Loss):
    function = staticmethod(nll_loss)

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None,
                 reduction="mean"):
        super().__init__(size_average, reduce, weight=weight, ignore_index=ignore_index,
                         reduction=reduction)


class BCELoss(_Loss):
    function = staticmethod(binary_cross_entropy)

    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, weight=weight, reduction=reduction)


class BCEWithLogitsLoss(_Loss):
    function = staticmethod(binary_cross_entropy_with_logits)

    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean",
                 pos_weight=None):
        super().__init__(size_average, reduce, weight=weight, reduction=reduction,
                         pos_weight=pos_weight)


class MSELoss(_Loss):
    function = staticmethod(mse_loss)

    def __init__(self, size_average=None, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction=reduction)


class L1Loss(_Loss):
    function = staticmethod(l1_loss)

    def __init__(self, size_average=None, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction=reduction)


class SmoothL1Loss(_Loss):
    function = staticmethod(smooth_l1_loss)

    def __init__(self, size_average=None, reduce=None, reduction="mean", beta=1.0):
        super().__init__(size_average, reduce, reduction=reduction, beta=beta)


class HuberLoss(_Loss):
    function = staticmethod(huber_loss)

    def __init__(self, reduction="mean", delta=1.0):
        super().__init__(reduction=reduction, delta=delta)


class KLDivLoss(_Loss):
    function = staticmethod(kl_div)

    def __init__(self, size_average=None, reduce=None, reduction="mean", log_target=False):
        super().__init__(size_average, reduce, reduction=reduction, log_target=log_target)
