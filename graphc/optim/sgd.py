"""Stochastic gradient descent, with PyTorch's momentum, dampening, Nesterov
momentum and (L2) weight decay: the same update, formula for formula."""
import numpy as np

from graphc.ops.elementwise import where
from graphc.optim.optimizer import Optimizer, step_counter


class SGD(Optimizer):
    """`SGD(params, lr, momentum=0, dampening=0, weight_decay=0, nesterov=False)`.

    Per parameter p with gradient g, as torch.optim.SGD's docs write it:

        g = g + weight_decay * p                              if weight_decay != 0
        if momentum != 0:
            b = g                                             at the first step
            b = momentum * b + (1 - dampening) * g            at later steps
            g = g + momentum * b      if nesterov, else  g = b
        p = p - lr * g

    State: "momentum_buffer" when momentum != 0 (zeros before the first step),
    and a "step" counter when dampening != 0 too (to tell the first step).
    """

    defaults = {"lr": 1e-3, "momentum": 0.0, "dampening": 0.0, "weight_decay": 0.0,
                "nesterov": False}

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False):
        super().__init__(params, lr=lr, momentum=momentum, dampening=dampening,
                         weight_decay=weight_decay, nesterov=nesterov)

    def _check_hyperparameters(self, hyper, loc):
        self._check_nonnegative(hyper, ("momentum", "dampening", "weight_decay"), loc)
        if hyper["nesterov"] and (hyper["momentum"] <= 0 or hyper["dampening"] != 0):
            self._fail("Nesterov momentum needs momentum > 0 and dampening == 0 (got "
                       f"momentum={hyper['momentum']}, dampening={hyper['dampening']})", loc)

    def _slots(self, param, hyper):
        if not hyper["momentum"]:
            return {}
        slots = {"momentum_buffer": np.zeros(param.shape, param.dtype)}
        return step_counter(slots) if hyper["dampening"] else slots

    def _step(self, p, g, state, lr, hyper):
        momentum, dampening = hyper["momentum"], hyper["dampening"]
        new_state = {}
        if hyper["weight_decay"]:
            g = g + hyper["weight_decay"] * p
        if momentum:
            b = state["momentum_buffer"]
            if dampening:
                t = state["step"] + 1
                b = where(t > 1, momentum * b + (1 - dampening) * g, g)
                new_state["step"] = t
            else:
                b = momentum * b + g        # = g at the first step, as b starts at zero
            new_state["momentum_buffer"] = b
            g = g + momentum * b if hyper["nesterov"] else b
        return p - lr * g, new_state
