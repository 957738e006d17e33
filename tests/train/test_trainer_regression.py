"""Trainer on a regression: float targets of the model's output shape, MSE (or L1,
smooth L1, Huber) inferred from the loss, scored by MAE, MSE, RMSE and R^2."""
import numpy as np
import pytest

import graphc as gc
from graphc.train import tasks


def linear_data(n=256, seed=0, outputs=2):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3)).astype("float32")
    w = np.array([[1.0, -2.0], [0.5, 0.0], [-1.0, 3.0]], "float32")[:, :outputs]
    return x, (x @ w + 0.25).astype("float32")


def trainer_for(loss_fn=gc.nn.mse_loss, outputs=2, device="reference", lr=0.1, **kwargs):
    gc.manual_seed(0)
    model = gc.nn.Linear(3, outputs)
    return gc.train.Trainer(model, loss_fn, gc.optim.SGD(model.parameters(), lr=lr),
                            device=device, **kwargs), model


@pytest.mark.parametrize("device", ["reference", "cpu"])
def test_a_linear_regression_fits_and_is_scored_by_mae_mse_rmse_r2(device):
    x, y = linear_data()
    trainer, model = trainer_for(device=device)
    assert trainer.task == "regression"
    history = trainer.fit(gc.data.DataLoader((x, y), batch_size=32), epochs=20,
                          val_loader=gc.data.DataLoader((x, y), batch_size=64), progress=False)
    scores = trainer.evaluate(gc.data.DataLoader((x, y), batch_size=100))
    assert set(scores) == set(tasks.REGRESSION_SCORES) and scores["samples"] == 256
    predictions = trainer.predict(x)
    error = predictions.astype(np.float64) - y
    np.testing.assert_allclose(scores["mse"], np.mean(error ** 2), rtol=1e-6)
    np.testing.assert_allclose(scores["mae"], np.mean(np.abs(error)), rtol=1e-6)
    np.testing.assert_allclose(scores["rmse"], np.sqrt(scores["mse"]), rtol=1e-12)
    np.testing.assert_allclose(
        scores["r2"], 1 - np.sum(error ** 2) / np.sum((y - y.mean()) ** 2), rtol=1e-6)
    np.testing.assert_allclose(scores["loss"], scores["mse"], rtol=1e-5)    # MSE's mean
    assert scores["r2"] > 0.999 and history["val_mse"][-1] < history["val_mse"][0] / 100
    assert "train_accuracy" not in history[-1] and predictions.shape == y.shape
    np.testing.assert_allclose(model.weight.value, [[1.0, 0.5, -1.0], [-2.0, 0.0, 3.0]],
                               atol=1e-2)


def test_cpu_and_reference_train_the_same_regression():
    x, y = linear_data(96)
    weights = []
    for device in ("reference", "cpu"):
        trainer, model = trainer_for(gc.nn.L1Loss(), device=device)
        trainer.fit(gc.data.DataLoader((x, y), batch_size=32), epochs=2, progress=False)
        weights.append([np.array(p.value) for p in model.parameters()])
    for ref, cpu in zip(*weights):
        np.testing.assert_allclose(cpu, ref, rtol=1e-5, atol=1e-6)


def test_one_output_takes_targets_of_shape_n_as_n_by_one():
    """PyTorch's MSE of (N, 1) against (N,) broadcasts to (N, N) with a warning, a
    classic bug; the trainer reads (N,) targets as (N, 1)."""
    x, y = linear_data(64, outputs=1)
    flat, column = (trainer_for(outputs=1)[0] for _ in range(2))
    flat.fit(gc.data.DataLoader((x, y[:, 0]), batch_size=16), epochs=2, progress=False)
    column.fit(gc.data.DataLoader((x, y), batch_size=16), epochs=2, progress=False)
    assert flat.history["train_loss"] == column.history["train_loss"]


def test_targets_of_another_shape_are_refused_naming_both():
    x, y = linear_data(32)
    trainer, _ = trainer_for()
    with pytest.raises(gc.GraphcError, match=r"batch 0: targets have shape \(32, 3\); the "
                                             r"model outputs \(N, 2\)"):
        trainer.fit([(x, np.zeros((32, 3), "float32"))], progress=False)


def test_early_stopping_and_plateau_read_regression_scores_the_right_way():
    x, y = linear_data(64)
    stopping = gc.train.EarlyStopping("mae", patience=1)
    assert stopping.mode == "min" and gc.train.EarlyStopping("r2").mode == "max"
    trainer, model = trainer_for(lr=0.05)
    scheduler = gc.optim.lr_scheduler.ReduceLROnPlateau(trainer.optimizer, mode="max")
    trainer.scheduler, trainer.scheduler_metric = scheduler, "r2"
    history = trainer.fit(gc.data.DataLoader((x, y), batch_size=16), epochs=3,
                          val_loader=gc.data.DataLoader((x, y), batch_size=64),
                          early_stopping=stopping, progress=False)
    assert scheduler.best == max(history["val_r2"])
    trainer.scheduler_metric = "mae"
    with pytest.raises(gc.GraphcError, match="would step on 'val_mae', which is better when "
                                             "lower"):
        trainer.fit(gc.data.DataLoader((x, y), batch_size=16), epochs=1,
                    val_loader=gc.data.DataLoader((x, y), batch_size=64), progress=False)


def test_a_regression_checkpoint_resumes_exactly(tmp_path):
    x, y = linear_data(64)
    whole, _ = trainer_for(gc.nn.HuberLoss())
    whole.fit(gc.data.DataLoader((x, y), batch_size=16, shuffle=True, seed=1), epochs=3,
              progress=False)
    first, _ = trainer_for(gc.nn.HuberLoss())
    first.fit(gc.data.DataLoader((x, y), batch_size=16, shuffle=True, seed=1), epochs=1,
              progress=False)
    first.save_checkpoint(tmp_path / "run.npz")
    resumed, model = trainer_for(gc.nn.HuberLoss())
    resumed.load_checkpoint(tmp_path / "run.npz")
    resumed.fit(gc.data.DataLoader((x, y), batch_size=16, shuffle=True, seed=1), epochs=2,
                progress=False)
    assert resumed.history["train_loss"] == whole.history["train_loss"]
    with pytest.raises(gc.GraphcError, match="a regression has no probabilities"):
        resumed.predict(x, output="probabilities")
