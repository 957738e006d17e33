"""`Optimizer`: the base of gc.optim's optimizers.

An optimizer builds the graph of one training step's variable updates:
`opt.minimize(loss)` returns `{variable: new value}` for every parameter it
updates and for every state variable it keeps (momentum buffers, Adam's
moments, step counters), ready for `gc.compile(..., updates=...)`.

Guarantees:
- state variables are non-trainable `gc.variable`s named after their
  parameter and PyTorch's state names ("fc1.weight/momentum_buffer"), created
  once, when the optimizer is (or `add_param_group` adds their group); `minimize`
  may be called for several executables, which then share that state;
- each parameter group's learning rate is a float32 scalar variable, so
  `opt.lr = 0.01` (or a scheduler) changes the rate used by executables
  compiled before; the other hyperparameters are constants of the graph;
- a parameter the loss does not depend on (in PyTorch: its .grad is None) is
  left out of the updates: neither it nor its state changes;
- bad input raises `OptimizerError`, naming the optimizer and the user's line.

Subclasses declare their hyperparameters' defaults and checks, their state
slots, and `_step`: the update of one parameter, written as PyTorch's docs
write it.
"""
import math
import numbers
import warnings

import numpy as np

from graphc import dtypes
from graphc.autodiff import grad as _grad
from graphc.errors import GraphcError, user_location
from graphc.graph import format_shape
from graphc.nn.utils import clip_grad_norm as _clip_grad_norm
from graphc.ops.source import variable
from graphc.tensor import Tensor


class OptimizerError(GraphcError, ValueError):
    """Bad input to an optimizer or a learning-rate schedule."""


class ParamGroup:
    """Parameters sharing hyperparameters; reads like PyTorch's param-group dict.

    `group["lr"]`, `group["momentum"]`, `group["params"]`. Assigning
    `group["lr"]` assigns the group's learning-rate variable; the other
    hyperparameters are built into the graph and cannot change; other keys
    (a scheduler's "initial_lr") are free to set.
    """

    def __init__(self, owner, params, hyper, lr_variable):
        self.owner, self.params, self.hyper = owner, params, hyper
        self.lr_variable = lr_variable
        self._lr = float(hyper.pop("lr"))
        self._extra = {}

    @property
    def lr(self):
        """The rate last set, exactly; or the variable's value if it was assigned directly."""
        held = self.lr_variable.value
        return self._lr if np.float32(self._lr) == held else float(held)

    def set_lr(self, value, loc):
        self._lr = check_lr(value, self.owner, loc)
        self.lr_variable.assign(np.float32(self._lr))

    def __getitem__(self, key):
        if key == "lr":
            return self.lr
        if key == "params":
            return list(self.params)
        return self.hyper[key] if key in self.hyper else self._extra[key]

    def __setitem__(self, key, value):
        loc = user_location()
        if key == "lr":
            self.set_lr(value, loc)
        elif key in self.hyper or key == "params":
            raise OptimizerError(f"'{key}' is built into the update graph and cannot change; "
                                 "only 'lr' can (build a new optimizer)", op=self.owner, loc=loc)
        else:
            self._extra[key] = value

    def __contains__(self, key):
        return key in ("lr", "params") or key in self.hyper or key in self._extra

    def get(self, key, default=None):
        return self[key] if key in self else default

    def setdefault(self, key, default):
        if key not in self:
            self[key] = default
        return self[key]

    def keys(self):
        return ["params", "lr", *self.hyper, *self._extra]

    def __repr__(self):
        names = ", ".join(p.name for p in self.params)
        return f"ParamGroup(lr={self.lr}, {self.hyper}, params=[{names}])"


def check_lr(value, owner, loc):
    """The learning rate as a float, or an OptimizerError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not _is_finite(value):
        raise OptimizerError(f"invalid learning rate {value!r}: need a finite number",
                             op=owner, loc=loc)
    if value < 0:
        raise OptimizerError(f"invalid learning rate {value}: it must be >= 0", op=owner, loc=loc)
    if not fits_float32(value):
        raise OptimizerError(f"invalid learning rate {value!r}: the rate is held in a float32 "
                             f"variable, where it would be inf (float32 holds at most "
                             f"{FLOAT32_MAX:.4g})", op=owner, loc=loc)
    return float(value)


FLOAT32_MAX = float(np.finfo(np.float32).max)


def _is_finite(value):
    try:
        return math.isfinite(value)
    except OverflowError:           # an int too large for a float
        return False


def is_valid_lr(value):
    """True when check_lr accepts `value`: a number >= 0, finite as a float32."""
    return (not isinstance(value, bool) and isinstance(value, numbers.Real)
            and _is_finite(value) and value >= 0 and fits_float32(value))


def fits_float32(value):
    """True when the finite number `value` stays finite as a float32."""
    with np.errstate(over="ignore"):
        return bool(np.isfinite(np.float32(float(value))))


class Optimizer:
    """Base class: parameter groups, the learning-rate variables, state variables.

    Subclasses set `defaults` (hyperparameter -> default, "lr" included), and
    implement `_check_hyperparameters(hyper, loc)`, `_slots(param, hyper)`
    ({slot name: initial array}) and `_step(param, grad, state, lr, hyper)`
    (-> new param value, {slot name: new value}).
    """

    defaults = {}

    def __init__(self, params, **hyperparameters):
        loc = user_location()
        self.name = type(self).__name__
        raw_groups = self._raw_groups(params, loc)
        hypers = [self._group_hyperparameters(raw, hyperparameters, loc) for raw in raw_groups]
        self._graph = raw_groups[0]["params"][0].graph
        self.param_groups, self._state = [], {}
        with self._graph:         # every input checked: now create the variables
            for index, (raw, hyper) in enumerate(zip(raw_groups, hypers)):
                self.param_groups.append(self._new_group(index, len(raw_groups),
                                                         raw["params"], hyper))
        self.defaults = {**self.defaults, **hyperparameters}    # as PyTorch's: the given ones
        self._built_groups = 0          # groups in the updates minimize()/updates() built last

    def add_param_group(self, param_group):
        """Add a parameter group, as torch.optim.Optimizer.add_param_group: a dict with
        "params" and any hyperparameters; the others are the constructor's (its lr too,
        not a scheduled one). Refused if a parameter is already in a group. Its
        learning-rate and state variables are made now.

        Updates built before, and the steps compiled from them, do not update the new
        group (its parameters and state stay as they are; a UserWarning says so): call
        minimize() again and compile the step again. A gc.train.Trainer does that
        itself at its next batch.
        """
        loc = user_location()
        if not isinstance(param_group, dict) or "params" not in param_group:
            self._fail(f"add_param_group needs a dict with 'params', got {param_group!r:.60}", loc)
        params = _as_list(param_group["params"], self.name, loc)
        if not params:
            self._fail("add_param_group: the group's 'params' is empty", loc)
        known = {p: i for i, group in enumerate(self.param_groups) for p in group.params}
        for param in params:
            if isinstance(param, Tensor) and param in known:
                self._fail(f"variable {param.name} is already in parameter group "
                           f"{known[param]}: a parameter may be in one group only", loc)
        raw = self._raw_groups([{**param_group, "params": params}], loc)[0]
        if raw["params"][0].graph is not self._graph:
            self._fail(f"{raw['params'][0].name} is in another graph than the parameters", loc)
        hyper = self._group_hyperparameters(raw, self.defaults, loc)
        with self._graph:
            index = len(self.param_groups)
            self.param_groups.append(self._new_group(index, index + 1, raw["params"], hyper))
        if self._built_groups:
            warnings.warn(f"{self.name}.add_param_group: updates built before by minimize() "
                          f"or updates(), and the steps compiled from them, update only the "
                          f"first {self._built_groups} parameter groups; call minimize() "
                          f"again and compile the step again (a gc.train.Trainer does so "
                          f"at its next batch)", stacklevel=2)

    def _new_group(self, index, count, params, hyper):
        """A ParamGroup with its learning-rate variable, and its parameters' state variables."""
        lr_name = f"{self.name}/lr" if count == 1 else f"{self.name}/group{index}/lr"
        lr = variable(np.float32(hyper["lr"]), name=lr_name, trainable=False)
        group = ParamGroup(self.name, params, hyper, lr)
        for param in params:
            self._state[param] = {
                slot: variable(initial, name=f"{param.name}/{slot}", trainable=False)
                for slot, initial in self._slots(param, group.hyper).items()}
        return group

    # -- parameters --------------------------------------------------------------------
    def _raw_groups(self, params, loc):
        """[{"params": [variable tensors], hyperparameter: value}], checked."""
        items = _as_list(params, self.name, loc)
        if not items:
            raise OptimizerError("got an empty parameter list", op=self.name, loc=loc)
        if all(isinstance(item, dict) for item in items):
            groups = [dict(item) for item in items]
        elif any(isinstance(item, dict) for item in items):
            raise OptimizerError("params mixes parameter-group dicts and tensors",
                                 op=self.name, loc=loc)
        else:
            groups = [{"params": items}]
        seen = set()                    # every parameter so far, to refuse one given twice
        for index, group in enumerate(groups):
            if "params" not in group:
                raise OptimizerError(f"parameter group {index} has no 'params'",
                                     op=self.name, loc=loc)
            group["params"] = [self._check_param(p, seen, loc)
                               for p in _as_list(group["params"], self.name, loc)]
            if not group["params"]:
                raise OptimizerError(f"parameter group {index} is empty", op=self.name, loc=loc)
        first = groups[0]["params"][0]
        for param in (p for group in groups for p in group["params"]):
            if param.graph is not first.graph:
                raise OptimizerError(f"parameters {first.name} and {param.name} belong to "
                                     "different graphs", op=self.name, loc=loc)
        return groups

    def _check_param(self, param, seen, loc):
        if not isinstance(param, Tensor):
            raise OptimizerError(f"parameters must be variable tensors, got a "
                                 f"{type(param).__name__}", op=self.name, loc=loc)
        if param.op != "variable":
            raise OptimizerError(f"{param.name} is a {param.op} node, not a variable: only "
                                 "variables can be optimized", op=self.name, loc=loc)
        if not param.node.attrs["state"].trainable:
            raise OptimizerError(f"variable {param.name} is not trainable "
                                 "(made with trainable=False)", op=self.name, loc=loc)
        if not dtypes.is_float(param.dtype):
            raise OptimizerError(f"variable {param.name} has dtype {param.dtype}; only "
                                 "floating-point variables can be optimized", op=self.name, loc=loc)
        if param in seen:
            raise OptimizerError(f"variable {param.name} is given twice", op=self.name, loc=loc)
        seen.add(param)
        return param

    def _group_hyperparameters(self, raw, given, loc):
        unknown = sorted((set(raw) | set(given)) - set(self.defaults) - {"params"})
        if unknown:
            raise OptimizerError(f"unknown hyperparameters {unknown}; {self.name} takes "
                                 f"{sorted(self.defaults)}", op=self.name, loc=loc)
        hyper = {**self.defaults, **given, **{k: v for k, v in raw.items() if k != "params"}}
        hyper["lr"] = check_lr(hyper["lr"], self.name, loc)
        self._check_hyperparameters(hyper, loc)
        return hyper

    def _check_hyperparameters(self, hyper, loc):
        """Raise OptimizerError for a value PyTorch would reject."""

    def _check_nonnegative(self, hyper, keys, loc):
        for key in keys:
            value = hyper[key]
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0:
                self._fail(f"invalid {key} {value!r}: it must be a number >= 0", loc)
            hyper[key] = float(value)

    def _fail(self, message, loc):
        raise OptimizerError(message, op=self.name, loc=loc)

    @property
    def params(self):
        """Every parameter, group after group."""
        return [p for group in self.param_groups for p in group.params]

    # -- the learning rate -------------------------------------------------------------
    @property
    def lr(self):
        """The learning rate (all groups must share it; else use param_groups[i]["lr"])."""
        rates = {group.lr for group in self.param_groups}
        if len(rates) > 1:
            raise OptimizerError(f"the parameter groups have different learning rates "
                                 f"{[g.lr for g in self.param_groups]}; read "
                                 "param_groups[i]['lr']", op=self.name, loc=user_location())
        return rates.pop()

    @lr.setter
    def lr(self, value):
        """Set every group's rate; executables already compiled use it from their next call."""
        loc = user_location()
        check_lr(value, self.name, loc)
        for group in self.param_groups:
            group.set_lr(value, loc)

    # -- the update graph ----------------------------------------------------------------
    def minimize(self, loss, clip_grad_norm=None):
        """{variable: new value} for one step down the gradient of the scalar `loss`;
        with `clip_grad_norm`, the gradients are first clipped to that total 2-norm
        (gc.nn.utils.clip_grad_norm, as torch.nn.utils.clip_grad_norm_ before step())."""
        loc = user_location()
        if not isinstance(loss, Tensor) or loss.shape != ():
            what = (f"a tensor of shape {format_shape(loss.shape)}" if isinstance(loss, Tensor)
                    else f"a {type(loss).__name__}")
            self._fail(f"minimize needs a scalar loss tensor, got {what}", loc)
        if loss.graph is not self._graph:
            self._fail(f"the loss {loss.name} is in another graph than the parameters", loc)
        reached = loss.graph.ancestors([loss.node])
        params = [p for p in self.params if p.node in reached]
        grads = dict(zip(params, _grad(loss, params))) if params else {}
        if clip_grad_norm is not None and grads:
            with self._graph:
                grads, _ = _clip_grad_norm(grads, clip_grad_norm)
        return self._updates(grads, loc)

    def updates(self, grads):
        """{variable: new value} for given gradients: a list aligned with `params`, or
        {param: gradient}; a None (or absent) gradient leaves its parameter as it is."""
        loc = user_location()
        params = self.params
        if isinstance(grads, dict):
            unknown = [k for k in grads if not any(k is p for p in params)]
            if unknown:
                self._fail(f"gradients given for {_describe(unknown[0])}, which is not one "
                           "of this optimizer's parameters", loc)
        else:
            grads = _as_list(grads, self.name, loc)
            if len(grads) != len(params):
                self._fail(f"got {len(grads)} gradients for {len(params)} parameters", loc)
            grads = dict(zip(params, grads))
        for param, g in grads.items():
            self._check_grad(param, g, loc)
        return self._updates(grads, loc)

    def _check_grad(self, param, g, loc):
        if g is None:
            return
        if not isinstance(g, Tensor):
            self._fail(f"the gradient of {param.name} is a {type(g).__name__}, not a Tensor", loc)
        if g.shape != param.shape or g.dtype != param.dtype:
            self._fail(f"the gradient of {param.name} ({format_shape(param.shape)} "
                       f"{param.dtype}) is {format_shape(g.shape)} {g.dtype}", loc)
        if g.graph is not self._graph:
            self._fail(f"the gradient of {param.name} is in another graph", loc)

    def _updates(self, grads, loc):
        self._built_groups = len(self.param_groups)
        new = {}
        with self._graph:
            for group in self.param_groups:
                for param in group.params:
                    if grads.get(param) is None:
                        continue
                    state = self._state[param]
                    new[param], new_state = self._step(param, grads[param], state,
                                                       group.lr_variable, group.hyper)
                    new.update((state[slot], value) for slot, value in new_state.items())
        return new

    # -- state ---------------------------------------------------------------------------
    def state_variables(self):
        """The state variables (momentum buffers, moments, step counters), param by param."""
        return [var for p in self.params for var in self._state[p].values()]

    def variables(self):
        """Every variable the optimizer owns: its state, then each group's learning rate."""
        return self.state_variables() + [g.lr_variable for g in self.param_groups]

    def state_dict(self):
        """Hyperparameters and copies of the state values, to resume exactly.

        {"optimizer": name, "param_groups": [{"lr", hyperparameters, "params": [names]}],
         "state": {"<param name>/<slot>": array}}
        """
        groups = [{"lr": g.lr, **g.hyper, "params": [p.name for p in g.params]}
                  for g in self.param_groups]
        state = {f"{p.name}/{slot}": var.value
                 for p in self.params for slot, var in self._state[p].items()}
        return {"optimizer": self.name, "param_groups": groups, "state": state}

    def load_state_dict(self, state_dict):
        """Set the learning rates and state from `state_dict()` output.

        Parameters are matched by position (group by group), so the names may
        differ; the other hyperparameters must equal this optimizer's. Checks
        every entry before writing any.
        """
        loc = user_location()
        writes = self._checked_writes(state_dict, loc)
        for group, saved in zip(self.param_groups, state_dict["param_groups"]):
            group.set_lr(saved["lr"], loc)
        for var, value in writes:
            var.assign(value)

    def _checked_writes(self, state_dict, loc):
        if not isinstance(state_dict, dict) or state_dict.get("optimizer") != self.name:
            found = state_dict.get("optimizer") if isinstance(state_dict, dict) else state_dict
            self._fail(f"load_state_dict needs a {self.name} state dict, got {found!r:.60}", loc)
        self._check_layout(state_dict, loc)
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            self._fail(f"the state dict has {len(saved_groups)} parameter groups, this "
                       f"optimizer {len(self.param_groups)}", loc)
        writes = []
        for index, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            check_lr(saved["lr"], self.name, loc)
            differ = {k: (saved.get(k), v) for k, v in group.hyper.items()
                      if not _same_setting(saved.get(k), v)}
            if differ or len(saved["params"]) != len(group.params):
                self._fail(f"parameter group {index} does not match: hyperparameters (saved, "
                           f"here) {differ}, {len(saved['params'])} saved parameters, "
                           f"{len(group.params)} here", loc)
            for saved_name, param in zip(saved["params"], group.params):
                for slot, var in self._state[param].items():
                    writes.append((var, self._saved_value(state_dict["state"],
                                                          f"{saved_name}/{slot}", var, loc)))
        return writes

    def _check_layout(self, state_dict, loc):
        """The keys and containers of a state_dict() output, or an OptimizerError."""
        layout = "expected the dict from state_dict()"
        for key, kinds, kind in (("param_groups", (list, tuple), "list"),
                                 ("state", dict, "dict")):
            if key not in state_dict:
                self._fail(f"load_state_dict: the state dict has no '{key}'; {layout}", loc)
            if not isinstance(state_dict[key], kinds):
                self._fail(f"load_state_dict: the state dict's '{key}' is a "
                           f"{type(state_dict[key]).__name__}, not a {kind}; {layout}", loc)
        for index, group in enumerate(state_dict["param_groups"]):
            fields = group if isinstance(group, dict) else {}
            missing = [key for key in ("lr", "params") if key not in fields]
            if missing or not isinstance(fields["params"], (list, tuple)):
                self._fail(f"load_state_dict: parameter group {index} of the state dict lacks "
                           f"{missing or 'a list of params'}; {layout}", loc)

    def _saved_value(self, saved_state, key, var, loc):
        if key not in saved_state:
            self._fail(f"the state dict has no entry '{key}' (for {var.name})", loc)
        value = np.asarray(saved_state[key])
        if value.shape != var.shape or value.dtype.kind != var.dtype.kind:
            self._fail(f"state '{key}' is {format_shape(value.shape)} {value.dtype}; "
                       f"{var.name} is {format_shape(var.shape)} {var.dtype}", loc)
        return value

    def __repr__(self):
        groups = "\n".join(f"  {g!r}" for g in self.param_groups)
        return f"{self.name}(\n{groups}\n)"


def _as_list(params, owner, loc):
    """A list from a Module-like object (`.parameters()`), a Tensor, or an iterable."""
    if isinstance(params, Tensor):
        return [params]
    if callable(getattr(params, "parameters", None)):
        params = params.parameters()
    if isinstance(params, (dict, str)) or not hasattr(params, "__iter__"):
        raise OptimizerError(f"params must be a list of variables, a module with "
                             f".parameters(), or a list of parameter-group dicts; got a "
                             f"{type(params).__name__}", op=owner, loc=loc)
    return list(params)


def _same_setting(saved, here):
    """Equal hyperparameters; a pair saved as a list (JSON) equals the tuple."""
    if isinstance(saved, (list, tuple)) and isinstance(here, (list, tuple)):
        return tuple(saved) == tuple(here)
    return saved == here


def _describe(value):
    return value.name if isinstance(value, Tensor) else repr(value)


def step_counter(slots):
    """Add an int64 step counter ("step", as PyTorch names it) to a slot dict."""
    slots["step"] = np.zeros((), np.int64)
    return slots


def bias_correction(step, beta, dtype):
    """1 - beta**step, computed in float64 (beta**t loses digits in float32), as `dtype`."""
    return (1.0 - (beta ** step.astype("float64"))).astype(dtype)
