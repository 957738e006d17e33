"""Adam and AdamW, with PyTorch's bias correction, (L2 or decoupled) weight
decay and the AMSGrad variant: the same update, formula for formula."""
import numbers

import numpy as np

from graphc.ops.elementwise import maximum, sqrt
from graphc.optim.optimizer import Optimizer, bias_correction, step_counter


class Adam(Optimizer):
    """`Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False)`.

    Per parameter p with gradient g, at step t = 1, 2, ..., as torch.optim.Adam's
    docs write it:

        g = g + weight_decay * p                   if weight_decay != 0
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        m_hat = m / (1 - beta1**t)
        v_max = max(v_max, v);  v_hat = v_max / (1 - beta2**t)    if amsgrad
        v_hat = v / (1 - beta2**t)                                otherwise
        p = p - lr * m_hat / (sqrt(v_hat) + eps)

    State: "step", "exp_avg" (m), "exp_avg_sq" (v), and "max_exp_avg_sq"
    (v_max) with amsgrad; all zero before the first step.
    """

    defaults = {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0,
                "amsgrad": False}

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad)

    def _check_hyperparameters(self, hyper, loc):
        betas = hyper["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            self._fail(f"betas must be a pair (beta1, beta2), got {betas!r}", loc)
        for i, beta in enumerate(betas):
            if isinstance(beta, bool) or not isinstance(beta, numbers.Real) or not 0 <= beta < 1:
                self._fail(f"invalid beta parameter at index {i}: {beta} (need 0 <= beta < 1)",
                           loc)
        hyper["betas"] = tuple(float(b) for b in betas)
        self._check_nonnegative(hyper, ("eps", "weight_decay"), loc)

    def _slots(self, param, hyper):
        zeros = np.zeros(param.shape, param.dtype)
        slots = step_counter({})
        slots.update(exp_avg=zeros, exp_avg_sq=zeros)
        if hyper["amsgrad"]:
            slots["max_exp_avg_sq"] = zeros
        return slots

    def _step(self, p, g, state, lr, hyper):
        if hyper["weight_decay"]:
            g = g + hyper["weight_decay"] * p
        return self._adam_step(p, g, state, lr, hyper)

    def _adam_step(self, p, g, state, lr, hyper):
        """The Adam update of p from gradient g (weight decay already applied)."""
        beta1, beta2 = hyper["betas"]
        t = state["step"] + 1
        m = beta1 * state["exp_avg"] + (1 - beta1) * g
        v = beta2 * state["exp_avg_sq"] + (1 - beta2) * (g * g)
        new_state = {"step": t, "exp_avg": m, "exp_avg_sq": v}
        m_hat = m / bias_correction(t, beta1, p.dtype)
        if hyper["amsgrad"]:
            v = new_state["max_exp_avg_sq"] = maximum(state["max_exp_avg_sq"], v)
        v_hat = v / bias_correction(t, beta2, p.dtype)
        return p - lr * m_hat / (sqrt(v_hat) + hyper["eps"]), new_state


class AdamW(Adam):
    """`AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False)`.

    Adam with decoupled weight decay, as torch.optim.AdamW's docs write it:
    first p = p * (1 - lr * weight_decay), then Adam's update of that p with
    the unmodified gradient g.
    """

    defaults = dict(Adam.defaults, weight_decay=1e-2)

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad)

    def _step(self, p, g, state, lr, hyper):
        if hyper["weight_decay"]:
            p = p * (1 - lr * hyper["weight_decay"])
        return self._adam_step(p, g, state, lr, hyper)
