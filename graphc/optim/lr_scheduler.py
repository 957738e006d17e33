"""Learning-rate schedules, epoch-based as in torch.optim.lr_scheduler.

A scheduler sets each parameter group's learning rate (a variable, so
compiled executables use the new rate from their next call, without
recompiling). Construction sets epoch 0's rate; each `step()` advances one
epoch; `get_last_lr()` returns the rates it last set, one per group.

Guarantee: after `step()` the rate of a group is the closed form of PyTorch's
docs at `last_epoch`, from the group's initial rate. (PyTorch mostly updates
recursively from the current rate, which gives the same values unless
something else changes the rate in between; here the schedule wins.)
"""
import bisect
import math
import numbers

from graphc.errors import user_location
from graphc.optim.optimizer import Optimizer, OptimizerError


class LRScheduler:
    """Base class: subclasses give `lr_at(base_lr, epoch)`, the closed form."""

    def __init__(self, optimizer, last_epoch=-1):
        loc = user_location()
        if not isinstance(optimizer, Optimizer):
            self._fail(f"needs a gc.optim optimizer, got a {type(optimizer).__name__}", loc)
        if not isinstance(last_epoch, int) or last_epoch < -1:
            self._fail(f"last_epoch must be an int >= -1, got {last_epoch!r}", loc)
        self.optimizer = optimizer
        groups = optimizer.param_groups
        if last_epoch == -1:
            for group in groups:
                group.setdefault("initial_lr", group["lr"])
        elif any("initial_lr" not in group for group in groups):
            self._fail("resuming at last_epoch != -1 needs 'initial_lr' in every parameter "
                       "group (or load_state_dict)", loc)
        self.base_lrs = [group["initial_lr"] for group in groups]
        self.last_epoch = last_epoch
        self.step()

    def lr_at(self, base_lr, epoch):
        raise NotImplementedError

    def step(self, epoch=None):
        """Advance to the next epoch (or to `epoch`) and set every group's rate."""
        self.last_epoch = self.last_epoch + 1 if epoch is None else epoch
        self._last_lr = [self.lr_at(base, self.last_epoch) for base in self.base_lrs]
        for group, lr in zip(self.optimizer.param_groups, self._last_lr):
            group["lr"] = lr

    def get_last_lr(self):
        """The rates the last `step()` set, one per parameter group."""
        return list(self._last_lr)

    def state_dict(self):
        """Everything but the optimizer (whose own state_dict holds its rates)."""
        return {key: (list(value) if isinstance(value, list) else value)
                for key, value in self.__dict__.items() if key != "optimizer"}

    def load_state_dict(self, state_dict):
        """Resume the schedule: the next `step()` continues from the saved epoch."""
        unknown = sorted(set(state_dict) - set(self.state_dict()))
        if unknown:
            self._fail(f"unknown state entries {unknown}", user_location())
        self.__dict__.update(state_dict)

    def _fail(self, message, loc):
        raise OptimizerError(message, op=type(self).__name__, loc=loc)

    def _check(self, name, value, ok, rule, loc):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not ok(value):
            self._fail(f"{name} must be {rule}, got {value!r}", loc)


class StepLR(LRScheduler):
    """lr = base_lr * gamma ** (epoch // step_size)."""

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        loc = user_location()
        self._check("step_size", step_size, lambda v: v == int(v) and v > 0, "an int > 0", loc)
        self._check("gamma", gamma, lambda v: v > 0, "> 0", loc)
        self.step_size, self.gamma = int(step_size), float(gamma)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, epoch):
        return base_lr * self.gamma ** (epoch // self.step_size)


class MultiStepLR(LRScheduler):
    """lr = base_lr * gamma ** (number of milestones <= epoch)."""

    def __init__(self, optimizer, milestones, gamma=0.1, last_epoch=-1):
        loc = user_location()
        milestones = list(milestones)
        for m in milestones:
            self._check("each milestone", m, lambda v: v == int(v) and v >= 0, "an int >= 0", loc)
        self._check("gamma", gamma, lambda v: v > 0, "> 0", loc)
        self.milestones, self.gamma = sorted(int(m) for m in milestones), float(gamma)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, epoch):
        return base_lr * self.gamma ** bisect.bisect_right(self.milestones, epoch)


class ExponentialLR(LRScheduler):
    """lr = base_lr * gamma ** epoch."""

    def __init__(self, optimizer, gamma, last_epoch=-1):
        self._check("gamma", gamma, lambda v: v > 0, "> 0", user_location())
        self.gamma = float(gamma)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, epoch):
        return base_lr * self.gamma ** epoch


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2."""

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):  # noqa: N803 (PyTorch's name)
        loc = user_location()
        self._check("T_max", T_max, lambda v: v > 0, "> 0", loc)
        self._check("eta_min", eta_min, lambda v: v >= 0, ">= 0", loc)
        self.T_max, self.eta_min = T_max, float(eta_min)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, epoch):
        cosine = (1 + math.cos(math.pi * epoch / self.T_max)) / 2
        return self.eta_min + (base_lr - self.eta_min) * cosine
