"""gc.optim.lr_scheduler: epoch-based schedules equal the closed forms of
PyTorch's docs, set the optimizer's learning-rate variables, and resume from
state dicts."""
import math

import numpy as np
import pytest

import graphc as gc
from graphc.optim import SGD, Adam, OptimizerError
from graphc.optim.lr_scheduler import (ChainedScheduler, CosineAnnealingLR, ExponentialLR,
                                       LinearLR, MultiStepLR, ReduceLROnPlateau, StepLR)


def make_optimizer(lr=0.1, **options):
    w = gc.variable(np.ones(3, "float32"), name="w")
    return SGD([w], lr=lr, **options)


def rates(scheduler, epochs):
    """The rate of each group at epochs 0 .. epochs-1 (construction sets epoch 0)."""
    seen = [scheduler.get_last_lr()]
    for _ in range(epochs - 1):
        scheduler.step()
        seen.append(scheduler.get_last_lr())
    return seen


def test_step_lr_decays_by_gamma_every_step_size_epochs():
    optimizer = make_optimizer(0.1)
    seen = rates(StepLR(optimizer, step_size=3, gamma=0.5), 10)
    expected = [0.1] * 3 + [0.05] * 3 + [0.025] * 3 + [0.0125]
    assert [r[0] for r in seen] == pytest.approx(expected, rel=1e-12)
    assert optimizer.lr == pytest.approx(0.0125, rel=1e-12)


def test_multistep_and_exponential_lr_follow_their_closed_forms():
    multistep = MultiStepLR(make_optimizer(1.0), milestones=[5, 2], gamma=0.1)
    assert [r[0] for r in rates(multistep, 7)] == pytest.approx(
        [1, 1, 0.1, 0.1, 0.1, 0.01, 0.01], rel=1e-12)
    exponential = ExponentialLR(make_optimizer(2.0), gamma=0.5)
    assert [r[0] for r in rates(exponential, 5)] == pytest.approx(
        [2, 1, 0.5, 0.25, 0.125], rel=1e-12)


def test_cosine_annealing_follows_the_closed_form_and_its_landmarks():
    base, eta_min, t_max = 0.1, 0.01, 8
    seen = [r[0] for r in rates(CosineAnnealingLR(make_optimizer(base), t_max, eta_min), 17)]
    closed_form = [eta_min + (base - eta_min) * (1 + math.cos(math.pi * t / t_max)) / 2
                   for t in range(17)]
    assert seen == pytest.approx(closed_form, rel=1e-12)
    assert seen[0] == pytest.approx(base)                         # start
    assert seen[4] == pytest.approx((base + eta_min) / 2)         # half way
    assert seen[8] == pytest.approx(eta_min)                      # bottom at T_max
    assert seen[16] == pytest.approx(base)                        # back up at 2 T_max


def test_scheduler_sets_the_learning_rate_variable_of_every_group():
    w = gc.variable(np.ones(2, "float32"), name="w")
    b = gc.variable(np.ones(2, "float32"), name="b")
    optimizer = Adam([{"params": [w]}, {"params": [b], "lr": 0.5}], lr=0.1)
    scheduler = StepLR(optimizer, step_size=1, gamma=0.1)
    scheduler.step()
    assert scheduler.get_last_lr() == pytest.approx([0.01, 0.05], rel=1e-12)
    held = [float(g.lr_variable.value) for g in optimizer.param_groups]
    assert held == [np.float32(0.01), np.float32(0.05)]
    assert scheduler.base_lrs == [0.1, 0.5]


def test_scheduled_rate_is_used_by_the_compiled_step():
    optimizer = make_optimizer(1.0)
    w = optimizer.params[0]
    step = gc.compile([], updates=optimizer.minimize(gc.sum(w)))   # gradient 1: w -= lr
    scheduler = ExponentialLR(optimizer, gamma=0.5)
    values = []
    for _ in range(4):
        step()
        scheduler.step()
        values.append(float(w.value[0]))
    assert values == [0.0, -0.5, -0.75, -0.875]
    assert step.stats["signatures"] == 1


def test_state_dicts_resume_schedule_and_rate_exactly():
    optimizer = make_optimizer(0.1, momentum=0.9)
    scheduler = CosineAnnealingLR(optimizer, T_max=10)
    for _ in range(4):
        scheduler.step()
    saved = scheduler.state_dict(), optimizer.state_dict()
    uninterrupted = rates(scheduler, 4)

    fresh_optimizer = SGD(optimizer.params, lr=0.1, momentum=0.9)
    fresh = CosineAnnealingLR(fresh_optimizer, T_max=10)
    fresh.load_state_dict(saved[0])
    fresh_optimizer.load_state_dict(saved[1])
    assert fresh.last_epoch == 4
    assert fresh_optimizer.lr == saved[1]["param_groups"][0]["lr"] == saved[0]["_last_lr"][0]
    assert rates(fresh, 4) == uninterrupted


def test_step_with_an_epoch_jumps_there():
    scheduler = StepLR(make_optimizer(1.0), step_size=2, gamma=0.5)
    scheduler.step(7)
    assert scheduler.last_epoch == 7 and scheduler.get_last_lr() == [0.125]


BAD_SCHEDULES = {
    "step_size 0": (lambda o: StepLR(o, step_size=0), "StepLR: step_size must be an int > 0"),
    "gamma": (lambda o: ExponentialLR(o, gamma=-1), "ExponentialLR: gamma must be > 0"),
    "T_max": (lambda o: CosineAnnealingLR(o, T_max=0), "CosineAnnealingLR: T_max must be > 0"),
    "milestone": (lambda o: MultiStepLR(o, milestones=[1.5]), "MultiStepLR: each milestone"),
    "not an optimizer": (lambda o: StepLR(object(), 2), "StepLR: needs a gc.optim optimizer"),
    "resume without initial_lr": (lambda o: StepLR(o, 2, last_epoch=3),
                                  "StepLR: resuming at last_epoch != -1 needs 'initial_lr'"),
}


@pytest.mark.parametrize("name", list(BAD_SCHEDULES))
def test_bad_schedule_names_the_scheduler_and_the_users_line(name):
    make, message = BAD_SCHEDULES[name]
    optimizer = make_optimizer()
    with pytest.raises(OptimizerError, match=message) as error:
        make(optimizer)
    assert error.value.loc.file == __file__
    assert optimizer.lr == 0.1                        # untouched


# -- LinearLR and ReduceLROnPlateau -----------------------------------------------------------

def test_linear_lr_warms_up_over_total_iters_then_stays():
    seen = rates(LinearLR(make_optimizer(0.3), start_factor=0.25, total_iters=3), 6)
    want = [0.3 * f for f in (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)]
    np.testing.assert_allclose([r[0] for r in seen], want, rtol=1e-12)


def plateau_rates(scheduler, metrics):
    seen = []
    for metric in metrics:
        scheduler.step(metric)
        seen.append(scheduler.get_last_lr()[0])
    return seen


def test_reduce_on_plateau_follows_pytorchs_rules():
    """Traced by hand with PyTorch's algorithm: a relative threshold of 10%, patience 1,
    cooldown 1, a floor of 0.03."""
    scheduler = ReduceLROnPlateau(make_optimizer(0.1), factor=0.5, patience=1, threshold=0.1,
                                  cooldown=1, min_lr=0.03)
    seen = plateau_rates(scheduler, [10, 9.5, 9.2, 8.0, 8.5, 8.4, 8.3, 8.2, 1.0])
    np.testing.assert_allclose(seen, [0.1, 0.1, 0.05, 0.05, 0.05, 0.03, 0.03, 0.03, 0.03])
    assert scheduler.best == 1.0 and scheduler.last_epoch == 9
    maximize = ReduceLROnPlateau(make_optimizer(1.0), mode="max", patience=0,
                                 threshold=0.5, threshold_mode="abs")
    np.testing.assert_allclose(plateau_rates(maximize, [1, 1.4, 1.6, 2.2]), [1, 0.1, 0.1, 0.1])


def test_reduce_on_plateau_takes_a_compiled_steps_loss():
    """A compiled step returns its loss as a 0-d array (PyTorch's step takes a 0-d
    tensor): the same rates as for Python floats."""
    metrics = [1.0, 2.0, 2.0, 0.5]
    arrays = [np.float32(metrics[0]), np.array(metrics[1], "float32"),
              np.array([metrics[2]]), np.array([[metrics[3]]], "float64")]
    assert plateau_rates(ReduceLROnPlateau(make_optimizer(0.1), patience=0), arrays) == \
        plateau_rates(ReduceLROnPlateau(make_optimizer(0.1), patience=0), metrics)
    w = gc.variable(np.ones(3, "float32"), name="w")
    optimizer = gc.optim.SGD([w], lr=0.1)
    (loss,) = gc.compile([gc.sum(w * w)], inputs=[], device="reference")()
    scheduler = ReduceLROnPlateau(optimizer)
    scheduler.step(loss)
    assert np.ndim(loss) == 0 and scheduler.best == 3.0


def test_reduce_on_plateau_sets_the_compiled_rate_and_resumes_from_its_state():
    optimizer = make_optimizer(0.1)
    scheduler = ReduceLROnPlateau(optimizer, patience=0)
    plateau_rates(scheduler, [1.0, 2.0])
    assert optimizer.param_groups[0].lr_variable.value == np.float32(0.01)
    state = scheduler.state_dict()
    again = ReduceLROnPlateau(make_optimizer(0.01), patience=0)
    again.load_state_dict(state)
    resumed, uninterrupted = plateau_rates(again, [3.0]), plateau_rates(scheduler, [3.0])
    np.testing.assert_allclose(resumed + uninterrupted, [0.001, 0.001], rtol=1e-12)


@pytest.mark.parametrize("make, message", [
    (lambda o: ReduceLROnPlateau(o, factor=1.0), r"factor must be in \[0, 1\)"),
    (lambda o: ReduceLROnPlateau(o, mode="avg"), "mode must be 'min' or 'max'"),
    (lambda o: ReduceLROnPlateau(o, min_lr=[0.1, 0.2]), "min_lr has 2 entries for 1 groups"),
    (lambda o: ReduceLROnPlateau(o).step("low"), "step needs the epoch's metric as a number"),
    (lambda o: ReduceLROnPlateau(o).step(np.ones(2)), "or an array of one number, got array"),
    (lambda o: LinearLR(o, start_factor=0), r"start_factor must be in \(0, 1\]"),
])
def test_bad_plateau_and_linear_arguments_are_refused(make, message):
    with pytest.raises(OptimizerError, match=message) as error:
        make(make_optimizer())
    assert error.value.loc.file == __file__


# -- refused steps and states change nothing ------------------------------------------------

def test_a_schedule_whose_next_rate_overflows_float32_refuses_and_stays():
    optimizer = make_optimizer(1.0)
    scheduler = ExponentialLR(optimizer, gamma=1e30)
    scheduler.step()                                           # 1e30 still fits
    with pytest.raises(OptimizerError, match=r"ExponentialLR: the learning rate at epoch 2 "
                                             r"would be 1e\+60 .* the schedule stays at epoch 1"):
        scheduler.step()
    with pytest.raises(OptimizerError, match="at epoch 50 would be inf"):
        scheduler.step(50)                                     # beyond any Python float
    assert scheduler.last_epoch == 1 and scheduler.get_last_lr() == [1e30]
    assert optimizer.param_groups[0].lr_variable.value == np.float32(1e30)


@pytest.mark.parametrize("epoch", ["a", -10, 2.5, True])
def test_step_to_a_bad_epoch_is_refused_and_changes_nothing(epoch):
    optimizer = make_optimizer(1.0)
    scheduler = StepLR(optimizer, step_size=2, gamma=0.5)
    scheduler.step(3)
    with pytest.raises(OptimizerError, match="StepLR: step\\(epoch\\): epoch must be an int >= 0"):
        scheduler.step(epoch)
    assert scheduler.last_epoch == 3 and optimizer.lr == 0.5
    scheduler.step()
    assert scheduler.get_last_lr() == [0.25]


@pytest.mark.parametrize("state, message", [
    (None, "load_state_dict needs the dict from state_dict\\(\\), got a NoneType"),
    ({"last_epoch": "x"}, "'last_epoch' must be an int >= 0, got 'x'"),
    ({"last_epoch": -3}, "'last_epoch' must be an int >= 0, got -3"),
    ({"base_lrs": [0.1, 0.2]}, "'base_lrs' must be a list of 1 learning rates"),
    ({"base_lrs": [1e39]}, "'base_lrs' must be a list of 1 learning rates"),
    ({"step_size": 0}, "'step_size' must be an int > 0"),
    ({"gamma": "fast"}, "'gamma' must be a number > 0"),
    ({"last_epoch": 4, "gamma": None}, "'gamma' must be a number > 0"),
])
def test_a_bad_scheduler_state_is_refused_before_anything_is_set(state, message):
    scheduler = StepLR(make_optimizer(1.0), step_size=2, gamma=0.5)
    before = scheduler.state_dict()
    with pytest.raises(OptimizerError, match="StepLR: .*" + message):
        scheduler.load_state_dict(state)
    assert scheduler.state_dict() == before
    scheduler.step()
    assert scheduler.get_last_lr() == [1.0]


def test_a_bad_plateau_state_is_refused():
    scheduler = ReduceLROnPlateau(make_optimizer())
    with pytest.raises(OptimizerError, match="ReduceLROnPlateau: .*'mode' must be 'min' or 'max'"):
        scheduler.load_state_dict({"mode": "avg"})
    assert scheduler.mode == "min"


def test_multistep_milestones_must_be_a_list():
    with pytest.raises(OptimizerError, match="MultiStepLR: milestones must be a list of ints "
                                             ">= 0, got None") as error:
        MultiStepLR(make_optimizer(), None)
    assert error.value.loc.file == __file__


# -- several schedulers on one optimizer -----------------------------------------------------

def test_two_schedulers_stepped_together_compose_as_pytorchs():
    # PyTorch 2.13 gives 0.1, 0.2, 0.175, 0.125, 0.0625 (each step multiplies the rate by
    # its factor); closed forms overwriting each other lost the warm-up
    optimizer = make_optimizer(1.0)
    warm_up = LinearLR(optimizer, start_factor=0.1, total_iters=3)
    decay = ExponentialLR(optimizer, gamma=0.5)
    seen = [optimizer.lr]
    for _ in range(6):
        warm_up.step()
        decay.step()
        seen.append(optimizer.lr)
    expected = [(0.1 + 0.9 * min(e, 3) / 3) * 0.5 ** e for e in range(7)]
    assert seen == pytest.approx(expected, rel=1e-6)
    assert decay.get_last_lr() == pytest.approx([expected[-1]], rel=1e-12)


def test_chained_scheduler_steps_its_schedulers_and_resumes_from_its_state():
    def chain(optimizer):
        return ChainedScheduler([StepLR(optimizer, step_size=2, gamma=0.5),
                                 MultiStepLR(optimizer, milestones=[3], gamma=0.1)])
    optimizer = make_optimizer(1.0)
    chained = chain(optimizer)
    seen = [r[0] for r in rates(chained, 6)]
    assert seen == pytest.approx([0.5 ** (e // 2) * 0.1 ** (e >= 3) for e in range(6)],
                                 rel=1e-6)
    resumed = chain(make_optimizer(1.0))
    resumed.load_state_dict(chained.state_dict())
    chained.step()
    resumed.step()
    assert resumed.get_last_lr() == pytest.approx(chained.get_last_lr(), rel=1e-12)


def test_a_scheduler_no_longer_referenced_stops_contributing():
    import gc as garbage
    optimizer = make_optimizer(1.0)
    StepLR(optimizer, step_size=1, gamma=0.5).step()       # made, stepped, dropped
    garbage.collect()
    decay = ExponentialLR(optimizer, gamma=0.9)
    decay.step()
    assert optimizer.lr == pytest.approx(0.9, rel=1e-6)


@pytest.mark.parametrize("schedulers", [[], "StepLR", [ReduceLROnPlateau]])
def test_chained_scheduler_refuses_what_is_not_a_list_of_epoch_schedulers(schedulers):
    optimizer = make_optimizer()
    if schedulers == [ReduceLROnPlateau]:
        schedulers = [ReduceLROnPlateau(optimizer)]
    with pytest.raises(OptimizerError, match="ChainedScheduler needs a non-empty list"):
        ChainedScheduler(schedulers)


def test_chained_scheduler_refuses_schedulers_of_two_optimizers():
    a, b = make_optimizer(), make_optimizer()
    with pytest.raises(OptimizerError, match="share one optimizer"):
        ChainedScheduler([StepLR(a, 2), StepLR(b, 2)])


def test_chained_scheduler_refusing_a_state_changes_no_scheduler():
    optimizer = make_optimizer(1.0)
    first, second = StepLR(optimizer, 2, gamma=0.5), ExponentialLR(optimizer, gamma=0.9)
    chained = ChainedScheduler([first, second])
    saved = chained.state_dict()
    chained.step()
    bad = {"_schedulers": [saved["_schedulers"][0], dict(saved["_schedulers"][1], gamma=-1)]}
    with pytest.raises(OptimizerError, match="gamma"):
        chained.load_state_dict(bad)
    assert first.last_epoch == second.last_epoch == 1
