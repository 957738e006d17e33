"""Learning-rate schedules, epoch-based as in torch.optim.lr_scheduler.

A scheduler sets each parameter group's learning rate (a variable, so
compiled executables use the new rate from their next call, without
recompiling). Construction sets epoch 0's rate; each `step()` advances one
epoch; `get_last_lr()` returns the rates it last set, one per group.
`ReduceLROnPlateau` is the exception, as in PyTorch: `step(metric)` cuts
the rates when the metric stops improving (no closed form).

Guarantee: after `step()` the rate of a group is the closed form of PyTorch's
docs at `last_epoch`, from the group's initial rate. (PyTorch mostly updates
recursively from the current rate, which gives the same values unless
something else changes the rate in between; here the schedule wins.)

Several schedulers on one optimizer compose as PyTorch's do when each is
stepped (a LinearLR warm-up with an ExponentialLR decay, or ChainedScheduler):
the rate is the initial rate times each live scheduler's factor at its own
epoch (its closed form over the initial rate). That is PyTorch's chained
value for every scheduler here but CosineAnnealingLR with eta_min > 0, whose
recursive form PyTorch chains differently, and those that set a closed form in
PyTorch (LambdaLR, OneCycleLR, SequentialLR at a milestone; see
lr_scheduler_phased.py). A ReduceLROnPlateau cut lasts until
another scheduler's next step, which sets the rate from its closed form.

LambdaLR, MultiplicativeLR, PolynomialLR, OneCycleLR and SequentialLR live in
lr_scheduler_phased.py and are imported from here. A scheduler made before
`optimizer.add_param_group` leaves the new group's rate alone (its factor for
that group is 1); one made after schedules it too.
"""
import bisect
import math
import numbers
import weakref

import numpy as np

from graphc.errors import user_location
from graphc.ops.rules import is_count
from graphc.optim.optimizer import FLOAT32_MAX, Optimizer, OptimizerError, is_valid_lr


_SCHEDULERS = weakref.WeakKeyDictionary()    # optimizer -> its schedulers (weak references)


def _others_on(optimizer, scheduler):
    """The live schedulers of `optimizer` that compose with `scheduler`, oldest first: not
    itself, nor the SequentialLR holding it, nor one a SequentialLR holds (it speaks for
    its phases)."""
    while scheduler._container is not None:
        scheduler = scheduler._container
    alive = [ref() for ref in _SCHEDULERS.get(optimizer, [])]
    return [other for other in alive
            if other is not None and other is not scheduler and other._container is None]


class LRScheduler:
    """Base class: subclasses give `lr_at(base_lr, epoch)`, the closed form (or
    `_lr_of(group, epoch)` when each group has its own schedule)."""

    _container = None               # the SequentialLR holding this one, if any
    _transient = ("optimizer", "_container", "_pending")    # never in state_dict()

    def __init__(self, optimizer, last_epoch=-1):
        loc = user_location()
        self._check_optimizer(optimizer, last_epoch, loc)
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
        _SCHEDULERS.setdefault(optimizer, []).append(weakref.ref(self))

    def lr_at(self, base_lr, epoch):
        raise NotImplementedError

    def step(self, epoch=None):
        """Advance to the next epoch (or to `epoch`) and set every group's rate; an
        epoch or a rate that cannot be raises OptimizerError and changes nothing."""
        loc = user_location()
        if epoch is None:
            epoch = self.last_epoch + 1
        elif not is_count(epoch):
            self._fail(f"step(epoch): epoch must be an int >= 0, got {epoch!r}", loc)
        epoch = int(epoch)
        lrs = self._chained(self._own_lrs(epoch, loc), epoch, loc)
        self._commit(epoch, lrs)
        self._apply(lrs)

    def _own_lrs(self, epoch, loc):
        """This schedule's rates at `epoch`, one per group it knows, each checked."""
        return [self._next_lr(group, epoch, loc) for group in range(len(self.base_lrs))]

    def _chained(self, lrs, epoch, loc):
        """`lrs` times the factors of the other schedulers of the optimizer, checked."""
        for other in _others_on(self.optimizer, self):
            lrs = [lr * other.factor(i) for i, lr in enumerate(lrs)]
        for lr in lrs:
            if not is_valid_lr(lr):
                self._fail(f"the learning rate at epoch {epoch}, chained with the other "
                           f"schedulers of this optimizer, would be {lr:.4g}; the schedule "
                           f"stays at epoch {self.last_epoch}", loc)
        return lrs

    def _commit(self, epoch, lrs):
        """Record a step whose rates were all checked (subclasses keep more)."""
        self.last_epoch, self._last_lr = epoch, lrs

    def _apply(self, lrs):
        for group, lr in zip(self.optimizer.param_groups, lrs):
            group["lr"] = lr

    def _lr_of(self, group, epoch):
        """Group `group`'s rate at `epoch`."""
        return self.lr_at(self.base_lrs[group], epoch)

    def _next_lr(self, group, epoch, loc):
        """_lr_of(group, epoch), or an OptimizerError when the lr variable cannot hold it."""
        try:
            lr = self._lr_of(group, epoch)
        except (OverflowError, ZeroDivisionError):
            lr = math.inf
        if not is_valid_lr(lr):
            self._fail(f"the learning rate at epoch {epoch} would be {lr:.4g} (from "
                       f"{self.base_lrs[group]:.4g}), which the float32 learning rate cannot "
                       f"hold (it must be finite and >= 0, at most {FLOAT32_MAX:.4g}); the "
                       f"schedule stays at epoch {self.last_epoch}", loc)
        return lr

    def factor(self, group):
        """What this schedule multiplies group `group`'s initial rate by at its epoch
        (1 for a group added to the optimizer after this scheduler was made)."""
        if group >= len(self.base_lrs):
            return 1.0
        base = self.base_lrs[group]
        return self._lr_of(group, self.last_epoch) / base if base > 0 else 1.0

    def get_last_lr(self):
        """The rates the last `step()` set, one per parameter group."""
        return list(self._last_lr)

    def state_dict(self):
        """Everything but the optimizer (whose own state_dict holds its rates)."""
        return {key: (list(value) if isinstance(value, list) else value)
                for key, value in self.__dict__.items() if key not in self._transient}

    def load_state_dict(self, state_dict):
        """Resume the schedule: the next `step()` continues from the saved epoch.
        Checks every entry before setting any."""
        self._apply_state(self._checked_state(state_dict, user_location()))

    def _checked_state(self, state_dict, loc):
        """The entries of `state_dict` to set, or an OptimizerError naming a bad one."""
        if not isinstance(state_dict, dict):
            self._fail(f"load_state_dict needs the dict from state_dict(), got a "
                       f"{type(state_dict).__name__}", loc)
        unknown = sorted(set(state_dict) - set(self.state_dict()))
        if unknown:
            self._fail(f"unknown state entries {unknown}", loc)
        groups = len(getattr(self, "base_lrs", self.optimizer.param_groups))
        for key, value in state_dict.items():
            ok, rule = self._state_rule(key, groups)
            if not ok(value):
                self._fail(f"load_state_dict: '{key}' must be {rule}, got {value!r:.60}; "
                           "nothing was loaded", loc)
        return {key: list(value) if isinstance(value, (list, tuple)) else value
                for key, value in state_dict.items()}

    def _apply_state(self, entries):
        self.__dict__.update(entries)

    def _state_rule(self, key, groups):
        if key == "last_epoch" and self._container is not None:     # a phase not yet begun
            return (lambda v: is_count(v + 1) if _is_number(v) else False), "an int >= -1"
        return _state_rule(key, groups)

    def _check_optimizer(self, optimizer, last_epoch, loc):
        if not isinstance(optimizer, Optimizer):
            self._fail(f"needs a gc.optim optimizer, got a {type(optimizer).__name__}", loc)
        if not isinstance(last_epoch, int) or isinstance(last_epoch, bool) or last_epoch < -1:
            self._fail(f"last_epoch must be an int >= -1, got {last_epoch!r}", loc)

    def _fail(self, message, loc):
        raise OptimizerError(message, op=type(self).__name__, loc=loc)

    def _check(self, name, value, ok, rule, loc):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not ok(value):
            self._fail(f"{name} must be {rule}, got {value!r}", loc)


def _is_number(value):
    return not isinstance(value, bool) and isinstance(value, numbers.Real)


def _is_list_of(value, ok, length=None):
    return (isinstance(value, (list, tuple)) and all(ok(v) for v in value)
            and length in (None, len(value)))


def _in_range(low, high, closed_low=True, closed_high=True):
    """A check that a value is a number in [low, high] (or open at either end)."""
    def ok(value):
        return (_is_number(value) and (value >= low if closed_low else value > low)
                and (value <= high if closed_high else value < high))
    return ok


_COUNT = (is_count, "an int >= 0")
_POSITIVE_COUNT = (lambda v: is_count(v) and v > 0, "an int > 0")
_POSITIVE = (_in_range(0, math.inf, closed_low=False), "a number > 0")
_NONNEGATIVE = (_in_range(0, math.inf), "a number >= 0")
_RATE_LISTS = ("base_lrs", "_last_lr", "min_lrs")
_STATE_RULES = {        # what load_state_dict accepts for each scheduler's entries
    "last_epoch": _COUNT, "num_bad_epochs": _COUNT, "cooldown_counter": _COUNT,
    "patience": _COUNT, "cooldown": _COUNT,
    "step_size": _POSITIVE_COUNT, "total_iters": _POSITIVE_COUNT,
    "gamma": _POSITIVE, "T_max": _POSITIVE,
    "eta_min": _NONNEGATIVE, "threshold": _NONNEGATIVE, "eps": _NONNEGATIVE,
    "start_factor": (_in_range(0, 1, closed_low=False), "a number in (0, 1]"),
    "end_factor": (_in_range(0, 1), "a number in [0, 1]"),
    "factor": (_in_range(0, 1, closed_high=False), "a number in [0, 1)"),
    "best": (lambda v: _is_number(v) and not math.isnan(v), "a number"),
    "milestones": (lambda v: _is_list_of(v, is_count), "a list of ints >= 0"),
    "mode": (lambda v: isinstance(v, str) and v in ("min", "max"), "'min' or 'max'"),
    "threshold_mode": (lambda v: isinstance(v, str) and v in ("rel", "abs"), "'rel' or 'abs'"),
}


def _state_rule(key, groups):
    """(check, description) of the values load_state_dict accepts for entry `key`."""
    if key in _RATE_LISTS:
        return (lambda v: _is_list_of(v, is_valid_lr, groups),
                f"a list of {groups} learning rates (finite numbers >= 0)")
    return _STATE_RULES.get(key, (lambda v: True, "anything"))


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
        if isinstance(milestones, (str, bytes)) or not hasattr(milestones, "__iter__"):
            self._fail(f"milestones must be a list of ints >= 0, got {milestones!r:.60}", loc)
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


class LinearLR(LRScheduler):
    """lr = base_lr * (start_factor + (end_factor - start_factor) * min(epoch, total_iters)
    / total_iters): a linear warm-up (or decay) over `total_iters` epochs, then flat."""

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5,
                 last_epoch=-1):
        loc = user_location()
        self._check("start_factor", start_factor, lambda v: 0 < v <= 1, "in (0, 1]", loc)
        self._check("end_factor", end_factor, lambda v: 0 <= v <= 1, "in [0, 1]", loc)
        self._check("total_iters", total_iters, lambda v: v == int(v) and v > 0, "an int > 0",
                    loc)
        self.start_factor, self.end_factor = float(start_factor), float(end_factor)
        self.total_iters = int(total_iters)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, epoch):
        done = min(epoch, self.total_iters) / self.total_iters
        return base_lr * (self.start_factor + (self.end_factor - self.start_factor) * done)


class ReduceLROnPlateau:
    """Multiply every group's rate by `factor` (not below `min_lr`) once the metric
    given to `step(metric)` has not improved for more than `patience` epochs;
    torch.optim.lr_scheduler.ReduceLROnPlateau's rules and defaults: mode "min" or
    "max", improvement relative ("rel": by more than threshold * best) or absolute
    ("abs"), `cooldown` epochs without counting after a cut, cuts smaller than
    `eps` skipped."""

    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4,
                 threshold_mode="rel", cooldown=0, min_lr=0.0, eps=1e-8):
        loc = user_location()
        if not isinstance(optimizer, Optimizer):
            self._fail(f"needs a gc.optim optimizer, got a {type(optimizer).__name__}", loc)
        if mode not in ("min", "max") or threshold_mode not in ("rel", "abs"):
            self._fail(f"mode must be 'min' or 'max' and threshold_mode 'rel' or 'abs', got "
                       f"{mode!r} and {threshold_mode!r}", loc)
        check = self._check
        check("factor", factor, lambda v: 0 <= v < 1, "in [0, 1)", loc)
        check("patience", patience, lambda v: v == int(v) and v >= 0, "an int >= 0", loc)
        check("cooldown", cooldown, lambda v: v == int(v) and v >= 0, "an int >= 0", loc)
        check("threshold", threshold, lambda v: v >= 0, ">= 0", loc)
        check("eps", eps, lambda v: v >= 0, ">= 0", loc)
        groups = optimizer.param_groups
        min_lrs = list(min_lr) if isinstance(min_lr, (list, tuple)) else [min_lr] * len(groups)
        if len(min_lrs) != len(groups):
            self._fail(f"min_lr has {len(min_lrs)} entries for {len(groups)} groups", loc)
        for value in min_lrs:
            check("min_lr", value, lambda v: v >= 0, ">= 0", loc)
        self.optimizer = optimizer
        self.mode, self.threshold_mode = mode, threshold_mode
        self.factor, self.patience, self.cooldown = float(factor), int(patience), int(cooldown)
        self.threshold, self.eps = float(threshold), float(eps)
        self.min_lrs = [float(v) for v in min_lrs]
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = self.cooldown_counter = 0
        self.last_epoch = 0
        self._last_lr = [group["lr"] for group in groups]

    def step(self, metric):
        """One epoch's end, with the metric it reached (a validation loss, say)."""
        loc = user_location()
        if isinstance(metric, np.ndarray) and metric.size == 1 and metric.dtype.kind in "fiu":
            metric = metric.reshape(()).item()      # a compiled step's loss, say: 0-d
        if isinstance(metric, bool) or not isinstance(metric, numbers.Real):
            self._fail(f"step needs the epoch's metric as a number or an array of one "
                       f"number, got {metric!r:.80}", loc)
        current = float(metric)
        self.last_epoch += 1
        if self._better(current):
            self.best, self.num_bad_epochs = current, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            for group, floor in zip(self.optimizer.param_groups, self.min_lrs):
                old = group["lr"]
                new = max(old * self.factor, floor)
                if old - new > self.eps:
                    group["lr"] = new
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _better(self, current):
        sign = 1.0 if self.mode == "min" else -1.0
        if self.threshold_mode == "rel":
            bound = self.best * (1 - sign * self.threshold)
        else:
            bound = self.best - sign * self.threshold
        return current < bound if self.mode == "min" else current > bound

    _transient, _container = LRScheduler._transient, None
    get_last_lr = LRScheduler.get_last_lr
    state_dict = LRScheduler.state_dict
    load_state_dict = LRScheduler.load_state_dict
    _checked_state, _apply_state = LRScheduler._checked_state, LRScheduler._apply_state
    _state_rule = LRScheduler._state_rule
    _fail, _check = LRScheduler._fail, LRScheduler._check


class ChainedScheduler:
    """Steps several schedulers of one optimizer together, so that one object can be
    given where one scheduler is expected (Trainer(scheduler=...)); their rates
    compose (see the module docstring)."""

    def __init__(self, schedulers, optimizer=None):
        loc = user_location()
        schedulers = list(schedulers) if isinstance(schedulers, (list, tuple)) else None
        if not schedulers or not all(isinstance(s, LRScheduler) for s in schedulers):
            raise OptimizerError("ChainedScheduler needs a non-empty list of schedulers "
                                 "(ReduceLROnPlateau steps on a metric: keep it apart)",
                                 op="ChainedScheduler", loc=loc)
        optimizer = optimizer or schedulers[0].optimizer
        if any(s.optimizer is not optimizer for s in schedulers):
            raise OptimizerError("ChainedScheduler's schedulers must share one optimizer",
                                 op="ChainedScheduler", loc=loc)
        self.optimizer, self._schedulers = optimizer, schedulers

    def step(self):
        for scheduler in self._schedulers:
            scheduler.step()

    def get_last_lr(self):
        return self._schedulers[-1].get_last_lr()

    def state_dict(self):
        return {"_schedulers": [s.state_dict() for s in self._schedulers]}

    def load_state_dict(self, state_dict):
        """Each scheduler's state, all checked before any is set: a refused call
        changes nothing."""
        states = state_dict.get("_schedulers") if isinstance(state_dict, dict) else None
        if not isinstance(states, list) or len(states) != len(self._schedulers):
            raise OptimizerError(f"load_state_dict needs the dict from state_dict() with "
                                 f"{len(self._schedulers)} scheduler states, got "
                                 f"{state_dict!r:.80}", op="ChainedScheduler",
                                 loc=user_location())
        loc = user_location()
        checked = [s._checked_state(state, loc) for s, state in zip(self._schedulers, states)]
        for scheduler, entries in zip(self._schedulers, checked):
            scheduler._apply_state(entries)


# the schedules of lr_scheduler_phased.py, importable from here as from PyTorch's module
from graphc.optim.lr_scheduler_phased import (LambdaLR, MultiplicativeLR, OneCycleLR,  # noqa: E402
                                              PolynomialLR, SequentialLR)

__all__ = ["LRScheduler", "StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR",
           "LinearLR", "ReduceLROnPlateau", "ChainedScheduler", "LambdaLR", "MultiplicativeLR",
           "OneCycleLR", "PolynomialLR", "SequentialLR"]
