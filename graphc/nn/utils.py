"""gc.nn.utils: gradient clipping, as torch.nn.utils does it, for a static graph.

PyTorch clips `.grad` in place between backward and the optimizer's step;
here the gradients are tensors, so the functions return clipped ones:

    grads = gc.grad(loss, params)
    clipped, total_norm = gc.nn.utils.clip_grad_norm(grads, max_norm=1.0)
    step = gc.compile([loss, total_norm], inputs=[x, y], updates=opt.updates(clipped))

or, the same in one call, `opt.minimize(loss, clip_grad_norm=1.0)`.

Gradients are a list (None entries stay None, as parameters the loss does not
reach) or a {param: gradient} dict (the result is a dict too).
"""
import math
import numbers

import numpy as np

from graphc import api
from graphc.errors import ArgumentError, DtypeError, user_location
from graphc.tensor import Tensor

EPS = 1e-6                  # torch.nn.utils.clip_grad_norm_'s: max_norm / (total + 1e-6)

__all__ = ["clip_grad_norm", "clip_grad_value"]


def clip_grad_norm(grads, max_norm, norm_type=2.0):
    """(clipped gradients, total norm): each gradient times min(1, max_norm / (total +
    1e-6)), where total is the `norm_type`-norm of all the gradients as one vector
    (float("inf"): the largest magnitude). Computed in float32, or float64 when
    every gradient is float64."""
    loc = user_location()
    check_clip_bound(max_norm, "max_norm", "clip_grad_norm", loc)
    if not isinstance(norm_type, numbers.Real) or isinstance(norm_type, bool) or \
            math.isnan(norm_type) or norm_type <= 0:
        raise ArgumentError(f"norm_type must be a positive number or inf, got {norm_type!r}",
                            op="clip_grad_norm", loc=loc)
    items, rebuild = _gradients(grads, "clip_grad_norm", loc)
    present = [g for g in items if g is not None]
    dtype = "float64" if present and all(g.dtype == np.float64 for g in present) else "float32"
    if not present:
        return rebuild(items), api.constant(np.zeros((), dtype))
    parts = [api.abs(g.astype(dtype)) for g in present]
    if math.isinf(norm_type):
        total = _fold(api.maximum, [api.max(p) for p in parts])
    elif norm_type == 2:
        total = api.sqrt(_fold(api.add, [api.sum(p * p) for p in parts]))
    else:
        total = _fold(api.add, [api.sum(p ** float(norm_type)) for p in parts]) \
            ** (1.0 / float(norm_type))
    scale = api.minimum(float(max_norm) / (total + EPS), 1.0)
    clipped = [None if g is None else g * scale.astype(g.dtype) for g in items]
    return rebuild(clipped), total


def clip_grad_value(grads, clip_value):
    """Each gradient's elements clamped to [-clip_value, clip_value]."""
    loc = user_location()
    check_clip_bound(clip_value, "clip_value", "clip_grad_value", loc)
    items, rebuild = _gradients(grads, "clip_grad_value", loc)
    value = float(clip_value)
    return rebuild([None if g is None else api.clip(g, -value, value) for g in items])


def _fold(combine, values):
    result = values[0]
    for value in values[1:]:
        result = combine(result, value)
    return result


def check_clip_bound(value, name, op, loc, error=ArgumentError):
    """A clipping bound (max_norm, clip_value) is a finite number >= 0, else `error`."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or \
            not math.isfinite(value) or value < 0:
        raise error(f"{name} must be a finite number >= 0, got {value!r}", op=op, loc=loc)


def _gradients(grads, op, loc):
    """(list of gradients, a function that puts a list back into the caller's form)."""
    if isinstance(grads, dict):
        keys = list(grads)
        items, rebuild = list(grads.values()), lambda values: dict(zip(keys, values))
    elif isinstance(grads, (list, tuple)):
        items, rebuild = list(grads), list
    elif isinstance(grads, Tensor):
        items, rebuild = [grads], list
    else:
        raise ArgumentError(f"gradients must be a list, a dict or a tensor, got a "
                            f"{type(grads).__name__}", op=op, loc=loc)
    for g in items:
        if g is not None and not isinstance(g, Tensor):
            raise ArgumentError(f"a gradient is a {type(g).__name__}, not a tensor", op=op,
                                loc=loc)
        if g is not None and np.dtype(g.dtype).kind != "f":
            raise DtypeError(f"gradient {g.name} is {g.dtype}, not a float tensor", op=op,
                             loc=loc)
    return items, rebuild
