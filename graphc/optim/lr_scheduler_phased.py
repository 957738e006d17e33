"""More of torch.optim.lr_scheduler: schedules from user functions (LambdaLR,
MultiplicativeLR), PolynomialLR, the one-cycle policy (OneCycleLR) and phases
of other schedulers (SequentialLR). Import them from gc.optim.lr_scheduler.

They follow the design of lr_scheduler.py: each sets the parameter groups'
learning-rate variables (compiled steps use the new rate from their next call,
without recompiling), composes with the other schedulers of its optimizer as
the initial rate times each one's factor, refuses a bad argument, epoch or
state with an OptimizerError that names it and changes nothing, and resumes
exactly from state_dict() (plain JSON values, as the Trainer's checkpoints
store them).

Where PyTorch's values differ, on purpose:
- LambdaLR, OneCycleLR and SequentialLR at a milestone set the rate to a closed
  form in PyTorch, so PyTorch's ChainedScheduler drops the factors of the
  schedulers stepped before them; here every live scheduler's factor
  multiplies in, in any order.
- OneCycleLR(cycle_momentum=True) is refused (see OneCycleLR).
"""
import bisect
import math
import types
import weakref

from graphc.errors import user_location
from graphc.ops.rules import is_count
from graphc.optim.lr_scheduler import (_SCHEDULERS, ChainedScheduler, LRScheduler,
                                       ReduceLROnPlateau, _in_range, _is_list_of, _is_number)
from graphc.optim.optimizer import is_valid_lr


def _finite_nonnegative(value):
    return _is_number(value) and math.isfinite(value) and value >= 0


class _FunctionSchedule(LRScheduler):
    """LambdaLR and MultiplicativeLR: one function of the epoch per group, whose
    state (as PyTorch's) keeps None for a function and the attributes of a
    callable object."""

    _transient = LRScheduler._transient + ("lr_lambdas", "_cache")

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        loc = user_location()
        self._check_optimizer(optimizer, last_epoch, loc)
        groups = len(optimizer.param_groups)
        if isinstance(lr_lambda, (list, tuple)):
            if len(lr_lambda) != groups:
                self._fail(f"expected {groups} lr_lambdas (one per parameter group), got "
                           f"{len(lr_lambda)}", loc)
            functions = list(lr_lambda)
        else:
            functions = [lr_lambda] * groups
        for function in functions:
            if not callable(function):
                self._fail(f"lr_lambda must be a function of the epoch (or a list of them, "
                           f"one per group), got {function!r:.60}", loc)
        self.lr_lambdas = functions
        super().__init__(optimizer, last_epoch)

    def _value(self, group, epoch, loc):
        """lr_lambdas[group](epoch), or an OptimizerError when it is not a number >= 0."""
        value = self.lr_lambdas[group](epoch)
        if not _finite_nonnegative(value):
            self._fail(f"lr_lambda of group {group} returned {value!r:.60} at epoch {epoch}; "
                       f"it must return a finite number >= 0; the schedule stays at epoch "
                       f"{self.last_epoch}", loc)
        return float(value)

    def _checked_rate(self, lr, epoch, loc):
        if not is_valid_lr(lr):
            self._fail(f"the learning rate at epoch {epoch} would be {lr:.4g}, which the "
                       f"float32 learning rate cannot hold; the schedule stays at epoch "
                       f"{self.last_epoch}", loc)
        return lr

    def state_dict(self):
        state = super().state_dict()
        state["lr_lambdas"] = [None if isinstance(fn, types.FunctionType) or
                               not hasattr(fn, "__dict__") else dict(fn.__dict__)
                               for fn in self.lr_lambdas]
        return state

    def _checked_state(self, state_dict, loc):
        saved = state_dict.get("lr_lambdas") if isinstance(state_dict, dict) else None
        if saved is not None and not _is_list_of(
                saved, lambda v: v is None or isinstance(v, dict), len(self.lr_lambdas)):
            self._fail(f"load_state_dict: 'lr_lambdas' must be a list of {len(self.lr_lambdas)} "
                       f"entries, each None or a dict, got {saved!r:.60}; nothing was loaded",
                       loc)
        entries = super()._checked_state(state_dict, loc)
        entries.pop("lr_lambdas", None)
        return entries, saved or []

    def _apply_state(self, checked):
        entries, saved = checked
        super()._apply_state(entries)
        self.__dict__.pop("_cache", None)
        for function, attributes in zip(self.lr_lambdas, saved):
            if attributes is not None and hasattr(function, "__dict__"):
                function.__dict__.update(attributes)


class LambdaLR(_FunctionSchedule):
    """`LambdaLR(optimizer, lr_lambda, last_epoch=-1)`: lr = initial_lr * lr_lambda(epoch),
    with one function, or a list of them, one per parameter group (each called once
    per step). The functions are not saved (as PyTorch's: state_dict() holds None for
    a function, the attributes of a callable object), so a resumed LambdaLR needs
    the same functions."""

    def _own_lrs(self, epoch, loc):
        values = [self._value(group, epoch, loc) for group in range(len(self.base_lrs))]
        self._pending = values
        return [self._checked_rate(base * value, epoch, loc)
                for base, value in zip(self.base_lrs, values)]

    def _commit(self, epoch, lrs):
        super()._commit(epoch, lrs)
        self._cache = (epoch, self.__dict__.pop("_pending"))

    def factor(self, group):
        if group >= len(self.base_lrs):
            return 1.0
        epoch, values = getattr(self, "_cache", (None, None))
        if epoch != self.last_epoch:            # loaded from a state: ask the function
            return self._value(group, self.last_epoch, user_location())
        return values[group]


class MultiplicativeLR(_FunctionSchedule):
    """`MultiplicativeLR(optimizer, lr_lambda, last_epoch=-1)`: each step to epoch e > 0
    multiplies the rate by lr_lambda(e) (so lr = initial_lr * lr_lambda(1) * ... *
    lr_lambda(e)); as PyTorch, step(e) multiplies by lr_lambda(e) once. The
    products so far are in state_dict() ("factors"), so a resumed run calls no
    function for the epochs already done."""

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        self.factors = [1.0] * (len(optimizer.param_groups)
                                if hasattr(optimizer, "param_groups") else 0)
        super().__init__(optimizer, lr_lambda, last_epoch)

    def _own_lrs(self, epoch, loc):
        factors = [f * self._value(group, epoch, loc) if epoch > 0 else f
                   for group, f in enumerate(self.factors)]
        self._pending = factors
        return [self._checked_rate(base * f, epoch, loc)
                for base, f in zip(self.base_lrs, factors)]

    def _commit(self, epoch, lrs):
        super()._commit(epoch, lrs)
        self.factors = self.__dict__.pop("_pending")

    def factor(self, group):
        return self.factors[group] if group < len(self.factors) else 1.0

    def _state_rule(self, key, groups):
        if key == "factors":
            return (lambda v: _is_list_of(v, _finite_nonnegative, groups),
                    f"a list of {groups} finite numbers >= 0")
        return super()._state_rule(key, groups)


class PolynomialLR(LRScheduler):
    """`PolynomialLR(optimizer, total_iters=5, power=1.0, last_epoch=-1)`:
    lr = initial_lr * (1 - min(epoch, total_iters) / total_iters) ** power,
    0 from epoch total_iters on (power > 0)."""

    def __init__(self, optimizer, total_iters=5, power=1.0, last_epoch=-1):
        loc = user_location()
        self._check("total_iters", total_iters, lambda v: v == int(v) and v > 0, "an int > 0",
                    loc)
        self._check("power", power, lambda v: math.isfinite(v) and v >= 0, "a number >= 0",
                    loc)
        self.total_iters, self.power = int(total_iters), float(power)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, epoch):
        return base_lr * (1.0 - min(self.total_iters, epoch) / self.total_iters) ** self.power

    def _state_rule(self, key, groups):
        if key == "power":
            return _finite_nonnegative, "a finite number >= 0"
        return super()._state_rule(key, groups)


class OneCycleLR(LRScheduler):
    """`OneCycleLR(optimizer, max_lr, total_steps=None, epochs=None, steps_per_epoch=None,
    pct_start=0.3, anneal_strategy='cos', cycle_momentum=False, base_momentum=0.85,
    max_momentum=0.95, div_factor=25.0, final_div_factor=1e4, three_phase=False,
    last_epoch=-1)`: torch.optim.lr_scheduler.OneCycleLR's rates, step for step.

    Each group starts at initial_lr = max_lr / div_factor (written into the group,
    with max_lr and min_lr = initial_lr / final_div_factor, as PyTorch does), rises
    to max_lr over the first pct_start * total_steps steps and anneals to min_lr by
    step total_steps - 1 ("cos" or "linear"); three_phase goes back down to
    initial_lr before annealing to min_lr. total_steps defaults to epochs *
    steps_per_epoch. Step once per batch (the Trainer steps its scheduler once per
    epoch: give it total_steps = epochs there). A step past total_steps is refused.

    cycle_momentum defaults to False here (True in PyTorch) and True is refused:
    graphc builds momentum (SGD's momentum, Adam's beta1) into the compiled update
    graph as a constant, so it cannot change between steps; only the learning rate
    is a variable. A port that relied on momentum cycling trains with constant
    momentum (base_momentum and max_momentum are accepted and unused).
    """

    def __init__(self, optimizer, max_lr, total_steps=None, epochs=None, steps_per_epoch=None,
                 pct_start=0.3, anneal_strategy="cos", cycle_momentum=False, base_momentum=0.85,
                 max_momentum=0.95, div_factor=25.0, final_div_factor=1e4, three_phase=False,
                 last_epoch=-1):
        loc = user_location()
        self._check_optimizer(optimizer, last_epoch, loc)
        self.total_steps = self._total_steps(total_steps, epochs, steps_per_epoch, loc)
        self._check("pct_start", pct_start, lambda v: 0 <= v <= 1, "a number in [0, 1]", loc)
        if anneal_strategy not in ("cos", "linear"):
            self._fail(f"anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}", loc)
        if cycle_momentum is not False:
            self._fail(f"cycle_momentum={cycle_momentum!r} is not supported: graphc builds the "
                       "momentum (SGD's momentum, Adam's beta1) into the compiled update graph, "
                       "so it cannot cycle; pass cycle_momentum=False (the rate still cycles)",
                       loc)
        for name, value in (("div_factor", div_factor), ("final_div_factor", final_div_factor)):
            self._check(name, value, lambda v: math.isfinite(v) and v > 0, "a number > 0", loc)
        if not isinstance(three_phase, bool):
            self._fail(f"three_phase must be True or False, got {three_phase!r}", loc)
        groups = optimizer.param_groups
        if last_epoch == -1:
            max_lrs = self._max_lrs(max_lr, len(groups), loc)
            initial = [m / div_factor for m in max_lrs]
            rates = list(zip(initial, max_lrs, [i / final_div_factor for i in initial]))
        elif any(k not in g for g in groups for k in ("initial_lr", "max_lr", "min_lr")):
            self._fail("resuming at last_epoch != -1 needs 'initial_lr', 'max_lr' and "
                       "'min_lr' in every parameter group (or load_state_dict)", loc)
        else:
            rates = [(g["initial_lr"], g["max_lr"], g["min_lr"]) for g in groups]
        self.pct_start, self.anneal_strategy = float(pct_start), anneal_strategy
        self.div_factor, self.final_div_factor = float(div_factor), float(final_div_factor)
        self.three_phase, self.cycle_momentum = three_phase, False
        self.max_lrs, self.min_lrs = [r[1] for r in rates], [r[2] for r in rates]
        for group, (initial, top, bottom) in zip(groups, rates):
            group["initial_lr"], group["max_lr"], group["min_lr"] = initial, top, bottom
        super().__init__(optimizer, last_epoch)

    def _total_steps(self, total_steps, epochs, steps_per_epoch, loc):
        if total_steps is not None:
            self._check("total_steps", total_steps, lambda v: v == int(v) and v > 0,
                        "an int > 0", loc)
            return int(total_steps)
        if epochs is None or steps_per_epoch is None:
            self._fail("needs total_steps, or epochs and steps_per_epoch", loc)
        self._check("epochs", epochs, lambda v: v == int(v) and v > 0, "an int > 0", loc)
        self._check("steps_per_epoch", steps_per_epoch, lambda v: v == int(v) and v > 0,
                    "an int > 0", loc)
        return int(epochs) * int(steps_per_epoch)

    def _max_lrs(self, max_lr, groups, loc):
        values = list(max_lr) if isinstance(max_lr, (list, tuple)) else [max_lr] * groups
        if len(values) != groups:
            self._fail(f"expected {groups} values for max_lr (one per parameter group), got "
                       f"{len(values)}", loc)
        for value in values:
            if not is_valid_lr(value):
                self._fail(f"max_lr must be a learning rate (a finite number >= 0), got "
                           f"{value!r:.60}", loc)
        return [float(v) for v in values]

    def _phases(self):
        """[(end_step, start, end)]: PyTorch's phases; start/end index (initial, max, min)."""
        total, pct = self.total_steps, self.pct_start
        if self.three_phase:
            return [(float(pct * total) - 1, 0, 1), (float(2 * pct * total) - 2, 1, 0),
                    (total - 1, 0, 2)]
        return [(float(pct * total) - 1, 0, 1), (total - 1, 1, 2)]

    def _lr_of(self, group, epoch):
        if epoch > self.total_steps:
            return math.nan
        rates = (self.base_lrs[group], self.max_lrs[group], self.min_lrs[group])
        phases, start_step = self._phases(), 0.0
        for i, (end_step, start, end) in enumerate(phases):
            if epoch <= end_step or i == len(phases) - 1:
                pct = (epoch - start_step) / (end_step - start_step)
                return self._anneal(rates[start], rates[end], pct)
            start_step = end_step

    def _anneal(self, start, end, pct):
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        # step total_steps (past the end: no optimizer step uses its rate) extrapolates
        # below min_lr in PyTorch, to a negative rate here refused: it stays at min_lr
        return (end - start) * min(pct, 1.0) + start

    def _own_lrs(self, epoch, loc):
        if epoch > self.total_steps:
            self._fail(f"tried to step to step {epoch}, past total_steps={self.total_steps}; "
                       f"the schedule stays at step {self.last_epoch}", loc)
        return super()._own_lrs(epoch, loc)

    _RULES = {
        "total_steps": (lambda v: is_count(v) and v > 0, "an int > 0"),
        "pct_start": (_in_range(0, 1), "a number in [0, 1]"),
        "anneal_strategy": (lambda v: v in ("cos", "linear"), "'cos' or 'linear'"),
        "cycle_momentum": (lambda v: v is False, "False"),
        "three_phase": (lambda v: isinstance(v, bool), "True or False"),
        "div_factor": (_in_range(0, math.inf, closed_low=False), "a number > 0"),
        "final_div_factor": (_in_range(0, math.inf, closed_low=False), "a number > 0"),
    }

    def _state_rule(self, key, groups):
        if key == "max_lrs":
            return (lambda v: _is_list_of(v, is_valid_lr, groups),
                    f"a list of {groups} learning rates (finite numbers >= 0)")
        return self._RULES.get(key) or super()._state_rule(key, groups)


class SequentialLR(LRScheduler):
    """`SequentialLR(optimizer, schedulers, milestones)`: schedulers[0] until epoch
    milestones[0], then schedulers[1] from its own epoch 0, and so on, as PyTorch's.

    Each phase's scheduler runs its schedule from its initial rate, at epochs
    counted from its milestone; a MultiplicativeLR phase continues from the rate
    the phase before left (PyTorch's step(0) keeps the current rate for it). The
    schedulers it holds compose with the optimizer's other schedulers only
    through it. state_dict() holds theirs.
    """

    def __init__(self, optimizer, schedulers, milestones, last_epoch=-1):
        loc = user_location()
        self._check_optimizer(optimizer, last_epoch, loc)
        if last_epoch != -1:
            self._fail(f"last_epoch must be -1 (resume with load_state_dict), got {last_epoch}",
                       loc)
        schedulers = self._checked_schedulers(optimizer, schedulers, loc)
        self._milestones = self._checked_milestones(milestones, len(schedulers), loc)
        self.optimizer, self._schedulers = optimizer, schedulers
        self.last_epoch, self._start_factors = -1, [1.0] * len(schedulers[0]._last_lr)
        epochs = [scheduler.last_epoch for scheduler in schedulers]
        for scheduler in schedulers:        # PyTorch: their construction's step undone
            scheduler._container, scheduler.last_epoch = self, -1
        try:
            self.step()
        except BaseException:
            for scheduler, epoch in zip(schedulers, epochs):
                scheduler.__dict__.pop("_container", None)
                scheduler.last_epoch = epoch
            raise
        _SCHEDULERS.setdefault(optimizer, []).append(weakref.ref(self))

    def _checked_schedulers(self, optimizer, schedulers, loc):
        if not isinstance(schedulers, (list, tuple)) or not schedulers:
            self._fail(f"schedulers must be a non-empty list of schedulers, got "
                       f"{schedulers!r:.60}", loc)
        for index, scheduler in enumerate(schedulers):
            if not isinstance(scheduler, LRScheduler):
                why = (" (it steps on a metric)" if isinstance(scheduler, ReduceLROnPlateau)
                       else " (give its schedulers to one SequentialLR, or chain SequentialLRs)"
                       if isinstance(scheduler, ChainedScheduler) else "")
                self._fail(f"schedulers[{index}] is a {type(scheduler).__name__}, not an "
                           f"epoch scheduler{why}", loc)
            if scheduler.optimizer is not optimizer:
                self._fail(f"schedulers[{index}] belongs to another optimizer", loc)
            if scheduler._container is not None or schedulers.index(scheduler) != index:
                self._fail(f"schedulers[{index}] ({type(scheduler).__name__}) is already in a "
                           "SequentialLR", loc)
        return list(schedulers)

    def _checked_milestones(self, milestones, count, loc):
        if not _is_list_of(milestones, lambda v: is_count(v) and v > 0, count - 1) or any(
                a >= b for a, b in zip(milestones, milestones[1:])):
            self._fail(f"milestones must be {count - 1} increasing ints > 0 (one fewer than "
                       f"the schedulers), got {milestones!r:.60}", loc)
        return [int(m) for m in milestones]

    def _phase(self, epoch):
        """(index of the scheduler running at `epoch`, its own epoch)."""
        index = bisect.bisect_right(self._milestones, epoch)
        return index, epoch - (self._milestones[index - 1] if index else 0)

    def step(self):
        """The next epoch, from the scheduler of its phase."""
        loc = user_location()
        epoch = self.last_epoch + 1
        index, local = self._phase(epoch)
        scheduler = self._schedulers[index]
        starts = self._start_factors
        if local == 0 and index > 0:            # a new phase: from the initial rate, or on
            keeps = isinstance(scheduler, MultiplicativeLR)
            starts = [self.factor(g) if keeps else 1.0 for g in range(len(starts))]
        own = [start * lr for start, lr in zip(starts, scheduler._own_lrs(local, loc))]
        lrs = self._chained(own, epoch, loc)
        scheduler._commit(local, lrs)
        self._start_factors = starts
        self._commit(epoch, lrs)
        self._apply(lrs)

    def factor(self, group):
        index, _ = self._phase(self.last_epoch)
        if group >= len(self._start_factors):
            return 1.0
        return self._start_factors[group] * self._schedulers[index].factor(group)

    _transient = LRScheduler._transient + ("_schedulers",)

    def state_dict(self):
        return {**super().state_dict(),
                "_schedulers": [s.state_dict() for s in self._schedulers]}

    def _checked_state(self, state_dict, loc):
        states = state_dict.get("_schedulers") if isinstance(state_dict, dict) else None
        if not isinstance(states, list) or len(states) != len(self._schedulers):
            self._fail(f"load_state_dict needs the dict from state_dict() with "
                       f"{len(self._schedulers)} scheduler states, got {state_dict!r:.80}", loc)
        entries = super()._checked_state(
            {k: v for k, v in state_dict.items() if k != "_schedulers"}, loc)
        if "_milestones" in entries:
            self._checked_milestones(entries["_milestones"], len(self._schedulers), loc)
        return entries, [s._checked_state(state, loc)
                         for s, state in zip(self._schedulers, states)]

    def _apply_state(self, checked):
        entries, children = checked
        super()._apply_state(entries)
        for scheduler, child in zip(self._schedulers, children):
            scheduler._apply_state(child)

    def _state_rule(self, key, groups):
        if key == "_start_factors":
            return (lambda v: _is_list_of(v, _finite_nonnegative, len(self._start_factors)),
                    f"a list of {len(self._start_factors)} finite numbers >= 0")
        if key == "_last_lr":
            groups = len(self._start_factors)
        return super()._state_rule(key, groups)
