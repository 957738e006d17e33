"""The Trainer with the schedules of lr_scheduler_phased.py (its checkpoints resume
them exactly) and with parameter groups added between fits (it builds its train
step again, so the new group trains)."""
import numpy as np
import pytest

import graphc as gc
from graphc.optim.lr_scheduler import (LambdaLR, MultiplicativeLR, OneCycleLR, PolynomialLR,
                                       SequentialLR)
from resume_run import final_state
from train_helpers import MLP, teacher_data

SCHEDULES = {
    "sequential": lambda o: SequentialLR(o, [LambdaLR(o, lambda e: (e + 1) / 2),
                                             MultiplicativeLR(o, lambda e: 0.7)], [1]),
    "one cycle": lambda o: OneCycleLR(o, max_lr=0.05, total_steps=4, pct_start=0.5),
    "polynomial": lambda o: PolynomialLR(o, total_iters=3, power=2.0),
}


def make_run(schedule, device="reference"):
    gc.manual_seed(3)
    model = MLP()
    optimizer = gc.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    x, y = teacher_data(48)
    data = gc.data.DataLoader((x, y), batch_size=16, shuffle=True)
    trainer = gc.train.Trainer(model, gc.nn.cross_entropy, optimizer, device=device)
    return trainer, data, SCHEDULES[schedule](optimizer)


@pytest.mark.parametrize("schedule", list(SCHEDULES))
def test_a_checkpoint_resumes_the_schedule_exactly(schedule, tmp_path):
    with gc.Graph("uninterrupted"):
        trainer, data, scheduler = make_run(schedule)
        history = trainer.fit(data, epochs=3, scheduler=scheduler, progress=False)
        want, lrs = final_state(trainer), [record["lr"] for record in history]
    with gc.Graph("interrupted"):
        trainer, data, scheduler = make_run(schedule)
        trainer.fit(data, epochs=2, scheduler=scheduler, checkpoint=tmp_path / "run.npz",
                    progress=False)
    with gc.Graph("resumed"):
        trainer, data, scheduler = make_run(schedule)
        trainer.load_checkpoint(tmp_path / "run.npz")
        history = trainer.fit(data, epochs=1, scheduler=scheduler, progress=False)
        got = final_state(trainer)
    assert [record["lr"] for record in history] == lrs
    assert len(set(lrs)) >= 2                           # the rate did change
    for key, value in want.items():
        np.testing.assert_array_equal(got[key], value, err_msg=key)


@pytest.mark.parametrize("device", ["reference", "cpu"])
def test_a_group_added_between_fits_trains_in_the_next_fit(device):
    gc.manual_seed(5)
    model = MLP(p=0.0)
    optimizer = gc.optim.SGD(model.fc2.parameters(), lr=0.1)        # fc1 frozen first
    trainer = gc.train.Trainer(model, gc.nn.cross_entropy, optimizer, device=device)
    x, y = teacher_data(32)
    data = gc.data.DataLoader((x, y), batch_size=16)
    frozen = model.fc1.weight.value.copy()
    trainer.fit(data, epochs=1, progress=False)
    np.testing.assert_array_equal(model.fc1.weight.value, frozen)
    with pytest.warns(UserWarning, match="a gc.train.Trainer does so at its next batch"):
        optimizer.add_param_group({"params": model.fc1.parameters(), "lr": 0.01})
    trainer.fit(data, epochs=1, progress=False)
    assert not np.array_equal(model.fc1.weight.value, frozen)
    new_lr = optimizer.param_groups[1].lr_variable
    assert any(v is new_lr for v in trainer.train_step.variables)
