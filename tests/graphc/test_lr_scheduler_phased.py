"""LambdaLR, MultiplicativeLR, PolynomialLR, OneCycleLR and SequentialLR: step by
step against torch_lr_emulation.py (PyTorch's schedulers re-written in Python),
chained, resumed from state dicts, refusing bad input, and used by a compiled
step."""
import json
import math

import numpy as np
import pytest

import graphc as gc
import torch_lr_emulation as torch_like
from graphc.optim import SGD, Adam, OptimizerError
from graphc.optim.lr_scheduler import (ChainedScheduler, CosineAnnealingLR, ExponentialLR,
                                       LambdaLR, LinearLR, MultiplicativeLR, OneCycleLR,
                                       PolynomialLR, ReduceLROnPlateau, SequentialLR, StepLR)

REL = 1e-12


def make_optimizer(*lrs, cls=SGD):
    groups = [{"params": [gc.variable(np.ones(3, "float32"), name=f"w{i}")], "lr": lr}
              for i, lr in enumerate(lrs or (0.1,))]
    return cls(groups)


def run(scheduler, steps):
    """get_last_lr() after construction and after each of `steps` steps."""
    seen = [list(scheduler.get_last_lr())]
    for _ in range(steps):
        scheduler.step()
        seen.append(list(scheduler.get_last_lr()))
    return seen


def same_rates(ours, make_ours, make_torch, steps, lrs=(0.1,)):
    """Our schedule equals the emulated PyTorch one, step by step, every group."""
    optimizer = make_optimizer(*lrs)
    emulated = make_torch(torch_like.Optimizer(*lrs))
    got, want = run(make_ours(optimizer), steps), run(emulated, steps)
    np.testing.assert_allclose(got, want, rtol=REL, atol=1e-15)
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx(want[-1], rel=REL)
    return got


# -- one schedule, step by step ----------------------------------------------------------

def test_lambda_lr_multiplies_the_initial_rate_by_the_function_per_group():
    warm, decay = (lambda e: min(1.0, (e + 1) / 4)), (lambda e: 0.9 ** e)
    got = same_rates("LambdaLR", lambda o: LambdaLR(o, [warm, decay]),
                     lambda o: torch_like.LambdaLR(o, [warm, decay]), 8, lrs=(0.1, 1.0))
    assert got[2] == pytest.approx([0.1 * 3 / 4, 0.81], rel=REL)


def test_multiplicative_lr_multiplies_the_rate_at_each_step():
    got = same_rates("MultiplicativeLR", lambda o: MultiplicativeLR(o, lambda e: 1 - 0.1 * e),
                     lambda o: torch_like.MultiplicativeLR(o, lambda e: 1 - 0.1 * e), 6)
    assert got[3][0] == pytest.approx(0.1 * 0.9 * 0.8 * 0.7, rel=REL)


@pytest.mark.parametrize("power", [1.0, 2.0, 0.5])
def test_polynomial_lr_decays_to_zero_at_total_iters_and_stays(power):
    got = same_rates("PolynomialLR", lambda o: PolynomialLR(o, total_iters=4, power=power),
                     lambda o: torch_like.PolynomialLR(o, total_iters=4, power=power), 7)
    assert got[4:] == [[0.0]] * 4


@pytest.mark.parametrize("options", [
    {"total_steps": 10},
    {"epochs": 3, "steps_per_epoch": 4, "pct_start": 0.25, "anneal_strategy": "linear"},
    {"total_steps": 12, "three_phase": True, "div_factor": 10.0, "final_div_factor": 100.0},
    {"total_steps": 7, "pct_start": 0.0},
])
def test_one_cycle_lr_follows_pytorchs_phases(options):
    steps = options.get("total_steps") or options["epochs"] * options["steps_per_epoch"]
    got = same_rates("OneCycleLR", lambda o: OneCycleLR(o, [1.0, 0.2], **options),
                     lambda o: torch_like.OneCycleLR(o, [1.0, 0.2], **options), steps - 1,
                     lrs=(0.5, 0.5))
    if options.get("pct_start", 0.3):
        assert got[0] == pytest.approx([1.0 / options.get("div_factor", 25.0),
                                        0.2 / options.get("div_factor", 25.0)], rel=REL)


def test_one_cycle_lr_writes_the_group_keys_and_landmarks_as_pytorch():
    optimizer = make_optimizer(0.5)
    scheduler = OneCycleLR(optimizer, max_lr=2.0, total_steps=10)
    group = optimizer.param_groups[0]
    assert (group["initial_lr"], group["max_lr"], group["min_lr"]) == (0.08, 2.0, 0.08 / 1e4)
    seen = [r[0] for r in run(scheduler, 9)]
    assert seen[0] == pytest.approx(0.08, rel=REL)
    assert seen[2] == pytest.approx(2.0, rel=REL)                          # peak at 0.3*10-1
    assert seen[9] == pytest.approx(0.08 / 1e4, rel=REL)                   # min at total-1
    with pytest.raises(OptimizerError, match=r"OneCycleLR: tried to step to step 11, past "
                                             r"total_steps=10; the schedule stays at step 10"):
        scheduler.step()
        scheduler.step()
    assert scheduler.last_epoch == 10


@pytest.mark.parametrize("strategy", ["cos", "linear"])
def test_one_cycle_lr_steps_to_total_steps_as_a_training_loop_does(strategy):
    """A loop of total_steps batches calls step() total_steps times: the last one
    (whose rate no step uses) extrapolated a negative linear rate and was refused
    (found by probing); it stays at min_lr now. Only a step past it is refused."""
    scheduler = OneCycleLR(make_optimizer(0.5), max_lr=0.1, total_steps=10,
                           anneal_strategy=strategy)
    for _ in range(10):
        scheduler.step()
    assert scheduler.last_epoch == 10 and scheduler.get_last_lr()[0] > 0
    with pytest.raises(OptimizerError, match="past total_steps=10"):
        scheduler.step()


# -- sequences and chains ----------------------------------------------------------------

def test_sequential_lr_switches_at_the_milestones_as_pytorch():
    def ours(o):
        return SequentialLR(o, [LinearLR(o, start_factor=0.1, total_iters=3),
                                CosineAnnealingLR(o, T_max=4, eta_min=0.001),
                                ExponentialLR(o, gamma=0.5)], milestones=[3, 7])

    def torch(o):
        return torch_like.SequentialLR(o, [torch_like.LinearLR(o, start_factor=0.1,
                                                               total_iters=3),
                                           torch_like.CosineAnnealingLR(o, 4, 0.001),
                                           torch_like.ExponentialLR(o, 0.5)], [3, 7])
    got = same_rates("SequentialLR", ours, torch, 11, lrs=(1.0, 0.3))
    assert got[3] == pytest.approx([1.0, 0.3], rel=REL)          # cosine from its top
    assert got[7] == pytest.approx([1.0, 0.3], rel=REL)          # exponential from base


def test_sequential_lr_of_the_new_schedules_and_a_multiplicative_phase():
    def ours(o):
        return SequentialLR(o, [LambdaLR(o, lambda e: (e + 1) / 3), PolynomialLR(o, 3, 2.0),
                                MultiplicativeLR(o, lambda e: 0.5)], milestones=[2, 4])

    def torch(o):
        return torch_like.SequentialLR(o, [torch_like.LambdaLR(o, lambda e: (e + 1) / 3),
                                           torch_like.PolynomialLR(o, 3, 2.0),
                                           torch_like.MultiplicativeLR(o, lambda e: 0.5)],
                                       [2, 4])
    got = same_rates("SequentialLR", ours, torch, 7)
    assert got[4][0] == pytest.approx(0.1 * (2 / 3) ** 2, rel=REL)   # continues from there


@pytest.mark.parametrize("pair", ["polynomial+exponential", "multiplicative+step",
                                  "sequential+exponential"])
def test_chained_schedulers_compose_as_pytorchs(pair):
    """(A sequence of one phase: at a milestone PyTorch sets the next phase's closed form,
    dropping the factors of the others, where graphc keeps them; see the next test.)"""
    def build(m, o):
        first = {"polynomial+exponential": lambda: m.PolynomialLR(o, 5, 2.0),
                 "multiplicative+step": lambda: m.MultiplicativeLR(o, lambda e: 0.9),
                 "sequential+exponential": lambda: m.SequentialLR(
                     o, [m.LinearLR(o, 0.25, 1.0, 3)], [])}[pair]()
        second = (m.StepLR(o, 3, 0.1) if pair == "multiplicative+step"
                  else m.ExponentialLR(o, 0.8))
        return m.ChainedScheduler([first, second])
    same_rates("chain", lambda o: build(gc.optim.lr_scheduler, o),
               lambda o: build(torch_like, o), 8, lrs=(1.0, 0.5))


def test_overwriting_schedules_chained_multiply_by_the_others_factors():
    """PyTorch's LambdaLR, OneCycleLR and SequentialLR at a milestone set the rate to a
    closed form, so its ChainedScheduler drops the factors of the schedulers stepped
    before them; here every live scheduler's factor multiplies in."""
    optimizer = make_optimizer(1.0)
    chained = ChainedScheduler([ExponentialLR(optimizer, 0.5), LambdaLR(optimizer,
                                                                        lambda e: e + 1)])
    seen = [r[0] for r in run(chained, 4)]
    assert seen == pytest.approx([(e + 1) * 0.5 ** e for e in range(5)], rel=REL)
    optimizer = make_optimizer(1.0)
    chained = ChainedScheduler([SequentialLR(optimizer, [LinearLR(optimizer, 0.25, 1.0, 2),
                                                         StepLR(optimizer, 2, 0.5)], [2]),
                                ExponentialLR(optimizer, 0.8)])
    seen = [r[0] for r in run(chained, 4)]
    assert seen == pytest.approx([0.25, 0.625 * 0.8, 0.8 ** 2, 0.8 ** 3, 0.5 * 0.8 ** 4],
                                 rel=REL)


def test_schedules_in_a_sequence_do_not_compose_with_each_other_only_through_it():
    optimizer = make_optimizer(1.0)
    first, second = ExponentialLR(optimizer, 0.5), StepLR(optimizer, 1, 0.1)
    sequence = SequentialLR(optimizer, [first, second], milestones=[2])
    decay = ExponentialLR(optimizer, 0.9)              # outside: composes with the sequence
    decay.step()
    assert optimizer.lr == pytest.approx(1.0 * 0.9, rel=REL)
    sequence.step()
    assert optimizer.lr == pytest.approx(0.5 * 0.9, rel=REL)
    sequence.step()
    assert optimizer.lr == pytest.approx(1.0 * 0.9, rel=REL)   # StepLR at its epoch 0


# -- state dicts -------------------------------------------------------------------------

class Halving:
    """A callable object: its attributes are saved, as PyTorch's LambdaLR saves them."""

    def __init__(self):
        self.rate = 0.5

    def __call__(self, epoch):
        return self.rate ** epoch


MAKERS = {
    "lambda": lambda o: LambdaLR(o, [lambda e: 1 / (e + 1), Halving()]),
    "multiplicative": lambda o: MultiplicativeLR(o, lambda e: 0.9 if e % 2 else 0.5),
    "polynomial": lambda o: PolynomialLR(o, total_iters=6, power=1.5),
    "one cycle": lambda o: OneCycleLR(o, max_lr=[1.0, 2.0], total_steps=9, three_phase=True),
    "sequential": lambda o: SequentialLR(o, [LinearLR(o, 0.5, total_iters=2),
                                             MultiplicativeLR(o, lambda e: 0.8),
                                             OneCycleLR(o, 1.0, total_steps=5)], [3, 5]),
    "chained": lambda o: ChainedScheduler([LambdaLR(o, lambda e: 1 / (e + 1)),
                                           PolynomialLR(o, 8, 1.0)]),
}


@pytest.mark.parametrize("name", list(MAKERS))
def test_state_dict_through_json_resumes_exactly(name):
    optimizer = make_optimizer(0.1, 0.2)
    scheduler = MAKERS[name](optimizer)
    run(scheduler, 3)
    saved = json.loads(json.dumps([scheduler.state_dict(), optimizer.state_dict()]))
    uninterrupted = run(scheduler, 5)
    again = make_optimizer(0.1, 0.2)
    resumed = MAKERS[name](again)
    resumed.load_state_dict(saved[0])
    again.load_state_dict({**saved[1], "state": {}})
    assert run(resumed, 5)[1:] == uninterrupted[1:]
    assert [g.lr_variable.value for g in again.param_groups] == \
        [g.lr_variable.value for g in optimizer.param_groups]


def test_lambda_lr_saves_no_function_but_a_callable_objects_attributes():
    optimizer = make_optimizer(1.0, 1.0)
    halving = Halving()
    state = LambdaLR(optimizer, [lambda e: 1.0, halving]).state_dict()
    assert state["lr_lambdas"] == [None, {"rate": 0.5}]
    other = Halving()
    other.rate = 0.1
    resumed = LambdaLR(make_optimizer(1.0, 1.0), [lambda e: 1.0, other])
    resumed.load_state_dict(state)
    assert other.rate == 0.5


@pytest.mark.parametrize("name, state, message", [
    ("multiplicative", {"factors": [1.0]}, "'factors' must be a list of 2 finite numbers"),
    ("lambda", {"lr_lambdas": [None]}, "'lr_lambdas' must be a list of 2 entries"),
    ("one cycle", {"anneal_strategy": "exp"}, "'anneal_strategy' must be 'cos' or 'linear'"),
    ("one cycle", {"max_lrs": [1.0, -2.0]}, "'max_lrs' must be a list of 2 learning rates"),
    ("polynomial", {"power": -1}, "'power' must be a finite number >= 0"),
    ("sequential", {"_schedulers": [{}, {}]}, "with 3 scheduler states"),
    ("sequential", {"_milestones": [5, 3], "_schedulers": [{}, {}, {}]},
     "milestones must be 2 increasing ints > 0"),
])
def test_a_bad_state_is_refused_and_changes_nothing(name, state, message):
    optimizer = make_optimizer(0.1, 0.2)
    scheduler = MAKERS[name](optimizer)
    scheduler.step()
    before = json.dumps(scheduler.state_dict())
    with pytest.raises(OptimizerError, match=message):
        scheduler.load_state_dict(state)
    assert json.dumps(scheduler.state_dict()) == before


def test_a_sequence_refusing_one_inner_state_loads_none():
    optimizer = make_optimizer(0.1, 0.2)
    sequence = MAKERS["sequential"](optimizer)
    state = sequence.state_dict()
    run(sequence, 2)
    before = json.dumps(sequence.state_dict())
    state["_schedulers"][2]["total_steps"] = 0
    with pytest.raises(OptimizerError, match="OneCycleLR: .*'total_steps' must be an int > 0"):
        sequence.load_state_dict(state)
    assert json.dumps(sequence.state_dict()) == before


# -- bad arguments -----------------------------------------------------------------------

BAD = {
    "lambda count": (lambda o: LambdaLR(o, [abs]), "LambdaLR: expected 2 lr_lambdas .*got 1"),
    "lambda not callable": (lambda o: LambdaLR(o, 0.5), "LambdaLR: lr_lambda must be a "
                                                        "function .*got 0.5"),
    "multiplicative count": (lambda o: MultiplicativeLR(o, [abs] * 3), "expected 2 lr_lambdas"),
    "polynomial iters": (lambda o: PolynomialLR(o, total_iters=0),
                         "PolynomialLR: total_iters must be an int > 0, got 0"),
    "polynomial power": (lambda o: PolynomialLR(o, power=-2.0),
                         "PolynomialLR: power must be a number >= 0, got -2.0"),
    "one cycle steps": (lambda o: OneCycleLR(o, 1.0), "OneCycleLR: needs total_steps, or "
                                                      "epochs and steps_per_epoch"),
    "one cycle total": (lambda o: OneCycleLR(o, 1.0, total_steps=2.5),
                        "OneCycleLR: total_steps must be an int > 0, got 2.5"),
    "one cycle epochs": (lambda o: OneCycleLR(o, 1.0, epochs=0, steps_per_epoch=3),
                         "OneCycleLR: epochs must be an int > 0, got 0"),
    "one cycle pct": (lambda o: OneCycleLR(o, 1.0, 10, pct_start=1.5),
                      r"OneCycleLR: pct_start must be a number in \[0, 1\], got 1.5"),
    "one cycle anneal": (lambda o: OneCycleLR(o, 1.0, 10, anneal_strategy="exp"),
                         "OneCycleLR: anneal_strategy must be 'cos' or 'linear', got 'exp'"),
    "one cycle max_lr": (lambda o: OneCycleLR(o, [1.0], 10),
                         "OneCycleLR: expected 2 values for max_lr .*got 1"),
    "one cycle bad max_lr": (lambda o: OneCycleLR(o, -1.0, 10),
                             "OneCycleLR: max_lr must be a learning rate .*got -1.0"),
    "one cycle div": (lambda o: OneCycleLR(o, 1.0, 10, div_factor=0),
                      "OneCycleLR: div_factor must be a number > 0, got 0"),
    "one cycle momentum": (lambda o: OneCycleLR(o, 1.0, 10, cycle_momentum=True),
                           "OneCycleLR: cycle_momentum=True is not supported: graphc builds "
                           "the momentum"),
    "sequential empty": (lambda o: SequentialLR(o, [], []), "SequentialLR: schedulers must be "
                                                            "a non-empty list"),
    "sequential milestones": (lambda o: SequentialLR(o, [StepLR(o, 2), StepLR(o, 3)], [0]),
                              r"SequentialLR: milestones must be 1 increasing ints > 0 .*got "
                              r"\[0\]"),
    "sequential count": (lambda o: SequentialLR(o, [StepLR(o, 2)], [3]),
                         "SequentialLR: milestones must be 0 increasing"),
    "sequential plateau": (lambda o: SequentialLR(o, [ReduceLROnPlateau(o)], []),
                           r"SequentialLR: schedulers\[0\] is a ReduceLROnPlateau, not an "
                           r"epoch scheduler \(it steps on a metric\)"),
    "sequential optimizer": (lambda o: SequentialLR(o, [StepLR(make_optimizer(), 2)], []),
                             r"SequentialLR: schedulers\[0\] belongs to another optimizer"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_arguments_name_the_scheduler_and_the_value_and_change_nothing(name):
    make, message = BAD[name]
    optimizer = make_optimizer(0.1, 0.2)
    with pytest.raises(OptimizerError, match=message) as error:
        make(optimizer)
    assert error.value.loc.file == __file__
    if not name.startswith("sequential"):        # the inner schedulers set the rate
        assert [g["lr"] for g in optimizer.param_groups] == [0.1, 0.2]
        assert all("initial_lr" not in g for g in optimizer.param_groups)


def test_a_scheduler_already_in_a_sequence_is_refused():
    optimizer = make_optimizer(1.0)
    inner = StepLR(optimizer, 2)
    SequentialLR(optimizer, [inner], [])
    with pytest.raises(OptimizerError, match=r"schedulers\[0\] \(StepLR\) is already in"):
        SequentialLR(optimizer, [inner], [])


@pytest.mark.parametrize("value", [None, "x", -1.0, math.nan, math.inf])
def test_a_function_returning_a_bad_factor_is_refused_and_the_schedule_stays(value):
    optimizer = make_optimizer(1.0)
    scheduler = LambdaLR(optimizer, lambda e: value if e == 2 else 0.5)
    scheduler.step()
    with pytest.raises(OptimizerError, match="LambdaLR: lr_lambda of group 0 returned .* at "
                                             "epoch 2; it must return a finite number >= 0; "
                                             "the schedule stays at epoch 1"):
        scheduler.step()
    assert scheduler.last_epoch == 1 and optimizer.lr == 0.5


def test_momentum_is_not_cycled_and_the_docstring_says_why():
    assert "cycle_momentum defaults to False here" in OneCycleLR.__doc__
    optimizer = make_optimizer(0.1, cls=Adam)
    OneCycleLR(optimizer, 1.0, total_steps=4).step()
    assert optimizer.param_groups[0]["betas"] == (0.9, 0.999)


# -- compiled steps use the scheduled rate ---------------------------------------------

@pytest.mark.parametrize("device", ["reference", "cpu"])
def test_compiled_step_follows_one_cycle_and_sequential_rates(device):
    """The gradient of sum(w) is 1, so each call moves w by minus the rate it used."""
    w = gc.variable(np.zeros(2, "float32"), name="w")
    optimizer = SGD([w], lr=1.0)
    step = gc.compile([], updates=optimizer.minimize(gc.sum(w)), device=device)
    one_cycle = OneCycleLR(optimizer, max_lr=0.5, total_steps=6, anneal_strategy="linear")
    expected, seen, rates = np.float32(0), [], []
    for i in range(6):
        rates.append(optimizer.lr)
        expected = np.float32(expected - np.float32(optimizer.lr))   # w - lr * 1, in float32
        step()
        seen.append((w.value[0], expected))
        if i < 5:                       # steps 0 .. total_steps - 1
            one_cycle.step()
    assert [got for got, _ in seen] == [want for _, want in seen]
    assert rates[1] > rates[0] and rates[5] < rates[1] and rates[0] == pytest.approx(0.02)
    assert step.stats["signatures"] == 1                            # never recompiled

    v = gc.variable(np.zeros(2, "float32"), name="v")
    optimizer = SGD([v], lr=1.0)
    step = gc.compile([], updates=optimizer.minimize(gc.sum(v)), device=device)
    sequence = SequentialLR(optimizer, [LambdaLR(optimizer, lambda e: 0.5),
                                        PolynomialLR(optimizer, total_iters=2)], [2])
    for _ in range(5):
        step()
        sequence.step()
    assert v.value[0] == np.float32(-(0.5 + 0.5 + 1.0 + 0.5 + 0.0))
