"""gc.optim: SGD, Adam and AdamW against NumPy float64 re-implementations of
PyTorch's documented algorithms, the learning rate as a variable, state dicts,
and the errors bad input raises."""
import numpy as np
import pytest

import graphc as gc
from graphc.optim import SGD, Adam, AdamW, OptimizerError
from graphc.optim.lr_scheduler import StepLR

RTOL, ATOL = 1e-5, 1e-6          # float32 parameters against a float64 reference
N, D, K = 8, 3, 2                # linear regression: X (N, D) @ W (D, K) + b (K,) ~ Y


# -- PyTorch's algorithms in NumPy float64, from the torch.optim docs' pseudocode --------

def sgd_reference(p, g, state, lr, momentum=0.0, dampening=0.0, weight_decay=0.0,
                  nesterov=False):
    if weight_decay != 0:
        g = g + weight_decay * p
    if momentum != 0:
        if "momentum_buffer" not in state:
            b = g.copy()
        else:
            b = momentum * state["momentum_buffer"] + (1 - dampening) * g
        state["momentum_buffer"] = b
        g = g + momentum * b if nesterov else b
    return p - lr * g


def adam_reference(p, g, state, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                   amsgrad=False, decoupled=False):
    beta1, beta2 = betas
    t = state["step"] = state.get("step", 0) + 1
    if decoupled:
        p = p * (1 - lr * weight_decay)          # AdamW
    elif weight_decay != 0:
        g = g + weight_decay * p                 # Adam
    m = state["exp_avg"] = beta1 * state.get("exp_avg", 0) + (1 - beta1) * g
    v = state["exp_avg_sq"] = beta2 * state.get("exp_avg_sq", 0) + (1 - beta2) * g ** 2
    m_hat = m / (1 - beta1 ** t)
    if amsgrad:
        v = state["max_exp_avg_sq"] = np.maximum(state.get("max_exp_avg_sq", 0), v)
    v_hat = v / (1 - beta2 ** t)
    return p - lr * m_hat / (np.sqrt(v_hat) + eps)


def adamw_reference(p, g, state, lr, weight_decay=1e-2, **options):
    return adam_reference(p, g, state, lr, weight_decay=weight_decay, decoupled=True, **options)


REFERENCES = {SGD: sgd_reference, Adam: adam_reference, AdamW: adamw_reference}


# -- the problem ------------------------------------------------------------------------

class Regression:
    """mean((X @ W + b - Y)**2) in graphc, its NumPy gradient, and seeded batches."""

    def __init__(self, seed=0, dtype="float32"):
        rng = np.random.default_rng(seed)
        self.W = gc.variable(rng.standard_normal((D, K)).astype(dtype), name="fc.weight")
        self.b = gc.variable(rng.standard_normal(K).astype(dtype), name="fc.bias")
        self.x = gc.placeholder((None, D), dtype, name="x")
        self.y = gc.placeholder((None, K), dtype, name="y")
        self.loss = gc.mean((self.x @ self.W + self.b - self.y) ** 2)
        self.batches = [(rng.standard_normal((N, D)).astype(dtype),
                         rng.standard_normal((N, K)).astype(dtype)) for _ in range(8)]

    @property
    def params(self):
        return [self.W, self.b]

    def numpy_grads(self, values, batch):
        X, Y = (a.astype(np.float64) for a in batch)
        W, b = values
        r = X @ W + b - Y
        return [2 / r.size * X.T @ r, 2 / r.size * r.sum(0)]


def train_both(problem, optimizer, reference, steps, lr_schedule=None):
    """Run `steps` graphc steps and the reference's; yield both after each step."""
    step = gc.compile([problem.loss], inputs=[problem.x, problem.y],
                      updates=optimizer.minimize(problem.loss))
    values = [p.value.astype(np.float64) for p in problem.params]
    states = [{} for _ in values]
    for i in range(steps):
        batch = problem.batches[i]
        grads = problem.numpy_grads(values, batch)
        values = [reference(p, g, s, optimizer.lr) for p, g, s in zip(values, grads, states)]
        step(*batch)
        yield step, values, states


def assert_agree(problem, optimizer, values, states):
    saved = optimizer.state_dict()["state"]
    for param, value, state in zip(problem.params, values, states):
        np.testing.assert_allclose(param.value, value, rtol=RTOL, atol=ATOL, err_msg=param.name)
        for slot, expected in state.items():
            np.testing.assert_allclose(saved[f"{param.name}/{slot}"], expected, rtol=RTOL,
                                       atol=ATOL, err_msg=f"{param.name}/{slot}")


CASES = [
    (SGD, {"lr": 0.1}),
    (SGD, {"lr": 0.1, "weight_decay": 0.1}),
    (SGD, {"lr": 0.05, "momentum": 0.9}),
    (SGD, {"lr": 0.05, "momentum": 0.9, "dampening": 0.5}),
    (SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    (SGD, {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.1}),
    (SGD, {"lr": 0.05, "momentum": 0.8, "dampening": 0.3, "weight_decay": 0.2}),
    (Adam, {"lr": 0.01}),
    (Adam, {"lr": 0.05, "betas": (0.5, 0.9), "eps": 1e-3}),
    (Adam, {"lr": 0.01, "weight_decay": 0.1}),
    (Adam, {"lr": 0.01, "amsgrad": True}),
    (Adam, {"lr": 0.01, "amsgrad": True, "weight_decay": 0.1, "betas": (0.8, 0.9)}),
    (AdamW, {"lr": 0.01}),
    (AdamW, {"lr": 0.01, "weight_decay": 0.5}),
    (AdamW, {"lr": 0.02, "weight_decay": 0.1, "amsgrad": True, "betas": (0.8, 0.95)}),
]


@pytest.mark.parametrize("optimizer_class, options", CASES,
                         ids=[f"{c.__name__}-{o}" for c, o in CASES])
def test_five_steps_match_pytorch_algorithm(optimizer_class, options):
    problem = Regression()
    optimizer = optimizer_class(problem.params, **options)
    reference_options = {k: v for k, v in options.items() if k != "lr"}
    reference = lambda p, g, s, lr: REFERENCES[optimizer_class](  # noqa: E731
        p, g, s, lr, **reference_options)
    for _, values, states in train_both(problem, optimizer, reference, steps=5):
        assert_agree(problem, optimizer, values, states)


def test_adam_on_float64_parameters_stays_float64_and_matches():
    problem = Regression(dtype="float64")
    optimizer = Adam(problem.params, lr=0.25, amsgrad=True)
    for _, values, _ in train_both(problem, optimizer, adam_reference, steps=3):
        assert problem.W.value.dtype == np.float64
        np.testing.assert_allclose(problem.W.value, values[0], rtol=1e-7)


# -- the update dict ------------------------------------------------------------------------

def test_minimize_updates_every_parameter_and_state_variable():
    problem = Regression()
    optimizer = Adam(problem.params, amsgrad=True)
    updates = optimizer.minimize(problem.loss)
    assert set(updates) == set(problem.params) | set(optimizer.state_variables())
    names = [v.name for v in optimizer.state_variables()]
    assert names == [f"{p}/{slot}" for p in ("fc.weight", "fc.bias")
                     for slot in ("step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq")]
    assert all(not v.node.attrs["state"].trainable for v in optimizer.variables())
    assert [v.name for v in optimizer.variables()[-1:]] == ["Adam/lr"]


def test_sgd_without_momentum_keeps_no_state():
    problem = Regression()
    optimizer = SGD(problem.params, lr=0.1)
    assert optimizer.state_variables() == []
    assert set(optimizer.minimize(problem.loss)) == set(problem.params)


def test_parameter_the_loss_does_not_use_is_left_alone():
    problem = Regression()
    unused = gc.variable(np.ones(3, "float32"), name="unused")
    optimizer = SGD(problem.params + [unused], lr=0.1, momentum=0.9, weight_decay=0.5)
    updates = optimizer.minimize(problem.loss)
    assert unused not in updates
    assert not any(v.name.startswith("unused/") for v in updates)
    gc.compile([problem.loss], updates=updates)(*problem.batches[0])
    np.testing.assert_array_equal(unused.value, np.ones(3))


def test_updates_from_clipped_gradients_list_and_dict():
    problem = Regression()
    optimizer = SGD(problem.params, lr=0.1, momentum=0.5)
    grads = gc.grad(problem.loss, problem.params)
    clipped = [gc.clip(g, -0.05, 0.05) for g in grads]
    from_list = optimizer.updates(clipped)
    from_dict = optimizer.updates({problem.W: clipped[0], problem.b: None})
    assert set(from_dict) == {problem.W, optimizer.state_variables()[0]}
    step = gc.compile([problem.loss], updates=from_list)
    values = [p.value.astype(np.float64) for p in problem.params]
    states = [{}, {}]
    for batch in problem.batches[:3]:
        grads = [np.clip(g, -0.05, 0.05) for g in problem.numpy_grads(values, batch)]
        values = [sgd_reference(p, g, s, 0.1, momentum=0.5)
                  for p, g, s in zip(values, grads, states)]
        step(*batch)
    assert_agree(problem, optimizer, values, states)


def test_module_like_object_gives_its_parameters():
    problem = Regression()

    class Model:
        def parameters(self):
            return iter(problem.params)

    assert SGD(Model(), lr=0.1).params == problem.params
    assert Adam([{"params": Model()}]).params == problem.params


def test_param_groups_use_their_own_rates():
    problem = Regression()
    optimizer = SGD([{"params": [problem.W]}, {"params": [problem.b], "lr": 0.01}],
                    lr=0.1, momentum=0.9)
    assert [g["lr"] for g in optimizer.param_groups] == [0.1, 0.01]
    step = gc.compile([problem.loss], updates=optimizer.minimize(problem.loss))
    values = [p.value.astype(np.float64) for p in problem.params]
    states = [{}, {}]
    for batch in problem.batches[:3]:
        grads = problem.numpy_grads(values, batch)
        values = [sgd_reference(p, g, s, lr, momentum=0.9)
                  for p, g, s, lr in zip(values, grads, states, (0.1, 0.01))]
        step(*batch)
    assert_agree(problem, optimizer, values, states)
    with pytest.raises(OptimizerError, match="different learning rates"):
        optimizer.lr
    with pytest.raises(OptimizerError, match="'momentum' is built into the update graph"):
        optimizer.param_groups[0]["momentum"] = 0.5


# -- the learning rate is a variable ----------------------------------------------------------

def _rate_change_run(change_rate):
    """Compile once, step, change the rate, step: returns (executable, plans, W before/after)."""
    problem = Regression()
    optimizer = SGD(problem.params, lr=0.1)
    step = gc.compile([problem.loss], inputs=[problem.x, problem.y],
                      updates=optimizer.minimize(problem.loss))
    step(*problem.batches[0])
    plans = dict(step._plans)
    change_rate(optimizer)
    before = [p.value.astype(np.float64) for p in problem.params]
    step(*problem.batches[1])
    grad_W = problem.numpy_grads(before, problem.batches[1])[0]
    assert step._plans == plans and step.stats["signatures"] == 1      # no recompile
    return (problem.W.value - before[0]) / -grad_W


def test_setting_lr_changes_the_rate_of_a_compiled_step_without_recompiling():
    def set_rate(optimizer):
        optimizer.lr = 0.025
        assert optimizer.lr == 0.025
    used_rate = _rate_change_run(set_rate)
    np.testing.assert_allclose(used_rate, 0.025, rtol=1e-4)


def test_scheduler_step_changes_the_rate_of_a_compiled_step_without_recompiling():
    used_rate = _rate_change_run(lambda optimizer: StepLR(optimizer, 1, gamma=0.3).step())
    np.testing.assert_allclose(used_rate, 0.1 * 0.3, rtol=1e-4)


# -- state dicts -----------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda ps: SGD(ps, lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01),
    lambda ps: Adam(ps, lr=0.01, amsgrad=True),
    lambda ps: AdamW(ps, lr=0.01),
], ids=["SGD", "Adam", "AdamW"])
def test_state_dict_round_trip_resumes_exactly(make):
    problem = Regression()
    optimizer = make(problem.params)
    step = gc.compile([problem.loss], updates=optimizer.minimize(problem.loss))
    for batch in problem.batches[:3]:
        step(*batch)
    saved_params = [p.value for p in problem.params]
    saved = optimizer.state_dict()
    optimizer.lr = optimizer.lr / 2
    for batch in problem.batches[3:6]:
        step(*batch)
    uninterrupted = [p.value for p in problem.params]

    for param, value in zip(problem.params, saved_params):
        param.assign(value)
    fresh = make(problem.params)
    fresh.load_state_dict(saved)
    fresh.lr = fresh.lr / 2
    resumed = gc.compile([problem.loss], updates=fresh.minimize(problem.loss))
    for batch in problem.batches[3:6]:
        resumed(*batch)
    for param, expected in zip(problem.params, uninterrupted):
        np.testing.assert_array_equal(param.value, expected)


def test_load_state_dict_checks_everything_before_writing_anything():
    problem = Regression()
    optimizer = Adam(problem.params, lr=0.01)
    gc.compile([problem.loss], updates=optimizer.minimize(problem.loss))(*problem.batches[0])
    saved = optimizer.state_dict()
    broken = dict(saved, state=dict(saved["state"]))
    broken["state"]["fc.bias/exp_avg"] = np.zeros(5, "float32")
    before = {v.name: v.value for v in optimizer.variables()}
    with pytest.raises(OptimizerError, match="Adam: state 'fc.bias/exp_avg' is \\(5,\\)"):
        optimizer.load_state_dict(broken)
    del broken["state"]["fc.bias/exp_avg"]
    with pytest.raises(OptimizerError, match="no entry 'fc.bias/exp_avg'"):
        optimizer.load_state_dict(broken)
    with pytest.raises(OptimizerError, match="does not match"):
        Adam(problem.params, lr=0.01, betas=(0.8, 0.9)).load_state_dict(saved)
    with pytest.raises(OptimizerError, match="needs a SGD state dict"):
        SGD(problem.params).load_state_dict(saved)
    after = {v.name: v.value for v in optimizer.variables()}
    assert all(np.array_equal(before[k], after[k]) for k in before)


# -- errors ----------------------------------------------------------------------------------------

def _variable():
    return gc.variable(np.ones(2, "float32"), name="w")


def _variable_in_another_graph():
    with gc.Graph("other"):
        return gc.variable(np.ones(2, "float32"), name="v")


BAD_INPUTS = {
    "empty": (lambda: SGD([], lr=0.1), "SGD: got an empty parameter list"),
    "placeholder": (lambda: Adam([gc.placeholder((2,), name="p")]), "Adam: p is a placeholder"),
    "array": (lambda: SGD([np.ones(2)], lr=0.1), "SGD: parameters must be variable tensors"),
    "not trainable": (lambda: AdamW([gc.variable(np.ones(2), name="frozen", trainable=False)]),
                      "AdamW: variable frozen is not trainable"),
    "integer": (lambda: SGD([gc.variable(np.ones(2, "int64"), name="n")]),
                "SGD: variable n has dtype int64"),
    "twice": (lambda: SGD([_variable()] * 2), "SGD: variable w is given twice"),
    "two graphs": (lambda: SGD([_variable(), _variable_in_another_graph()]),
                   "SGD: parameters w and v belong to different graphs"),
    "mixed groups": (lambda: SGD([_variable(), {"params": []}]),
                     "SGD: params mixes parameter-group dicts and tensors"),
    "a dict": (lambda: Adam({"w": _variable()}), "Adam: params must be a list of variables"),
    "negative lr": (lambda: SGD([_variable()], lr=-0.1), "SGD: invalid learning rate -0.1"),
    "nan lr": (lambda: Adam([_variable()], lr=float("nan")), "Adam: invalid learning rate nan"),
    "beta 1": (lambda: Adam([_variable()], betas=(0.9, 1.0)),
               "Adam: invalid beta parameter at index 1: 1.0"),
    "negative beta": (lambda: AdamW([_variable()], betas=(-0.1, 0.9)),
                      "AdamW: invalid beta parameter at index 0"),
    "one beta": (lambda: Adam([_variable()], betas=0.9), "Adam: betas must be a pair"),
    "eps": (lambda: Adam([_variable()], eps=-1e-8), "Adam: invalid eps"),
    "momentum": (lambda: SGD([_variable()], lr=0.1, momentum=-0.9), "SGD: invalid momentum"),
    "nesterov": (lambda: SGD([_variable()], lr=0.1, nesterov=True),
                 "SGD: Nesterov momentum needs momentum > 0"),
    "unknown option": (lambda: SGD([{"params": [_variable()], "betas": (0.9, 0.99)}]),
                       "SGD: unknown hyperparameters \\['betas'\\]"),
}


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_input_names_the_optimizer_and_the_users_line(name):
    make, message = BAD_INPUTS[name]
    with pytest.raises(OptimizerError, match=message) as error:
        make()
    assert isinstance(error.value, gc.GraphcError)
    assert error.value.loc.file == __file__


def test_lr_reads_the_variable_when_it_was_assigned_directly():
    optimizer = SGD([_variable()], lr=0.1)
    assert optimizer.lr == 0.1                       # the exact rate set, not float32(0.1)
    optimizer.param_groups[0].lr_variable.assign(np.float32(0.5))   # e.g. a loaded checkpoint
    assert optimizer.lr == 0.5 and optimizer.param_groups[0]["lr"] == 0.5


def test_failed_construction_adds_nothing_to_the_graph(fresh_graph):
    w, b = _variable(), gc.variable(np.ones(3, "float32"), name="b")
    nodes = len(fresh_graph)
    with pytest.raises(OptimizerError, match="Adam: invalid beta parameter at index 0: 2"):
        Adam([{"params": [w]}, {"params": [b], "betas": (2, 0.9)}], amsgrad=True)
    assert len(fresh_graph) == nodes


def test_bad_use_after_construction_names_the_optimizer():
    problem = Regression()
    optimizer = SGD(problem.params, lr=0.1)
    with pytest.raises(OptimizerError, match="SGD: invalid learning rate -1"):
        optimizer.lr = -1
    assert optimizer.lr == 0.1
    with pytest.raises(OptimizerError, match="SGD: minimize needs a scalar loss"):
        optimizer.minimize(problem.x @ problem.W)
    with pytest.raises(OptimizerError, match="SGD: got 1 gradients for 2 parameters"):
        optimizer.updates([problem.W])
    with pytest.raises(OptimizerError, match=r"gradient of fc.bias \(\(2,\) float32\) is \(3, 2\)"):
        optimizer.updates([problem.W, problem.W])


def test_a_rate_beyond_float32_is_refused_and_the_rate_stays():
    with pytest.raises(OptimizerError, match=r"SGD: invalid learning rate 1e\+39: the rate is "
                                             r"held in a float32 variable, where it would be inf"):
        SGD([_variable()], lr=1e39)
    optimizer = SGD([_variable()], lr=0.1)
    for bad in (1e39, 10 ** 400):
        with pytest.raises(OptimizerError, match="SGD: invalid learning rate"):
            optimizer.lr = bad
    with pytest.raises(OptimizerError, match="where it would be inf"):
        optimizer.param_groups[0]["lr"] = 1e39
    assert optimizer.lr == 0.1
    assert optimizer.param_groups[0].lr_variable.value == np.float32(0.1)


def _without(mapping, key):
    return {k: v for k, v in mapping.items() if k != key}


def test_a_malformed_state_dict_names_what_is_missing_and_changes_nothing():
    optimizer = SGD([_variable()], lr=0.1, momentum=0.9)
    saved = optimizer.state_dict()
    group = saved["param_groups"][0]
    cases = [
        (_without(saved, "param_groups"), "the state dict has no 'param_groups'"),
        (_without(saved, "state"), "the state dict has no 'state'"),
        (dict(saved, state=None), "the state dict's 'state' is a NoneType, not a dict"),
        (dict(saved, param_groups=[_without(group, "lr")]),
         r"parameter group 0 of the state dict lacks \['lr'\]"),
        (dict(saved, param_groups=[dict(group, params=None)]),
         "parameter group 0 of the state dict lacks a list of params"),
        (dict(saved, param_groups=[dict(group, lr=1e39)]), "invalid learning rate 1e\\+39"),
    ]
    optimizer.lr = 0.5
    for broken, message in cases:
        with pytest.raises(OptimizerError, match="SGD: .*" + message):
            optimizer.load_state_dict(broken)
    assert optimizer.lr == 0.5


# -- device="cpu" ---------------------------------------------------------------------------------

def test_cpu_sgd_momentum_and_adam_steps_equal_the_reference():
    problem = Regression()
    sgd = SGD([problem.W], lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)
    adam = Adam([problem.b], lr=0.01, amsgrad=True, weight_decay=0.01)
    updates = {**sgd.minimize(problem.loss), **adam.minimize(problem.loss)}
    steps = {device: gc.compile([problem.loss], inputs=[problem.x, problem.y],
                                updates=updates, device=device) for device in ("cpu", "reference")}
    initial = steps["reference"].state_dict()
    assert set(initial) >= {v.name for v in sgd.variables() + adam.variables()}
    results = {}
    for device, step in steps.items():
        steps["reference"].load_state_dict(initial)
        losses = [step(*batch) for batch in problem.batches[:3]]
        results[device] = losses, steps["reference"].state_dict()
    np.testing.assert_allclose(results["cpu"][0], results["reference"][0], rtol=1e-5)
    for name, value in results["reference"][1].items():
        np.testing.assert_allclose(results["cpu"][1][name], value, rtol=1e-5, atol=1e-7,
                                   err_msg=name)
    assert not np.array_equal(results["cpu"][1]["fc.bias"], initial["fc.bias"])
    sgd.lr, adam.lr = 0.0, 0.0                      # read by the compiled cpu step too
    params = [p.value for p in problem.params]
    steps["cpu"](*problem.batches[3])
    for param, value in zip(problem.params, params):
        np.testing.assert_array_equal(param.value, value)
