"""Early stopping on a validation metric: it stops after `patience` epochs
without improvement and restores the best epoch's weights. The metric here is
scripted (an extra metric that returns set values), so the test decides which
epoch is best."""
import numpy as np
import pytest

import graphc as gc
from train_helpers import MLP, loader, teacher_data


def scripted_run(values, stopping, epochs=10):
    """Fit with a validation metric "scripted" that returns `values` epoch by epoch;
    returns (history, the model's weights as each epoch ended, the final weights)."""
    model = MLP()
    weights = []

    def scripted(y_true, y_pred):
        weights.append(model.state_dict())          # evaluate runs after the epoch's training
        return values[len(weights) - 1]

    opt = gc.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    trainer = gc.train.Trainer(model, gc.nn.cross_entropy, opt, device="reference",
                               metrics={"scripted": scripted})
    x, y = teacher_data(64)
    history = trainer.fit(loader(x, y, 32, shuffle=True), epochs, val_loader=loader(x, y, 64),
                          early_stopping=stopping, progress=False)
    return history, weights, model.state_dict()


def assert_same_weights(got, want):
    for name, value in want.items():
        np.testing.assert_array_equal(got[name], value, err_msg=name)


def test_stops_after_patience_epochs_without_improvement_and_restores_the_best():
    stopping = gc.train.EarlyStopping("scripted", patience=2, mode="max")
    history, weights, final = scripted_run([0.2, 0.6, 0.5, 0.6, 0.3, 0.9], stopping)
    assert len(history) == 5                        # epochs 3, 4, 5 did not beat 0.6
    assert (stopping.best, stopping.best_epoch, stopping.stopped_epoch) == (0.6, 2, 5)
    assert_same_weights(final, weights[1])
    assert history["val_scripted"] == [0.2, 0.6, 0.5, 0.6, 0.3]
    assert history.best("val_scripted")["epoch"] == 2


def test_min_mode_and_min_delta():
    stopping = gc.train.EarlyStopping("scripted", patience=1, mode="min", min_delta=0.05)
    history, weights, final = scripted_run([1.0, 0.9, 0.88, 0.87, 0.5], stopping)
    assert len(history) == 4                        # 0.88 and 0.87 are within min_delta
    assert stopping.best_epoch == 2
    assert_same_weights(final, weights[1])


def test_without_restore_best_the_last_weights_stay():
    stopping = gc.train.EarlyStopping("scripted", patience=0, restore_best=False)
    history, weights, final = scripted_run([0.5, 0.4, 0.9], stopping)
    assert len(history) == 2
    assert_same_weights(final, weights[-1])


def test_training_to_the_end_restores_the_best_epoch_too():
    stopping = gc.train.EarlyStopping("scripted", patience=5)
    history, weights, final = scripted_run([0.1, 0.7, 0.3], stopping, epochs=3)
    assert len(history) == 3 and stopping.stopped_epoch is None
    assert_same_weights(final, weights[1])


def test_mode_is_min_for_losses_by_default():
    assert gc.train.EarlyStopping("loss").mode == "min"
    assert gc.train.EarlyStopping("accuracy").mode == "max"


def test_a_validation_metric_without_val_loader_is_refused_before_training():
    model = MLP()
    opt = gc.optim.SGD(model.parameters(), lr=0.1)
    trainer = gc.train.Trainer(model, gc.nn.cross_entropy, opt, device="reference")
    x, y = teacher_data(32)
    with pytest.raises(gc.train.TrainError, match="early stopping on 'accuracy' needs "
                                                  "val_loader="):
        trainer.fit(loader(x, y, 32), 3, early_stopping=gc.train.EarlyStopping("accuracy"),
                    progress=False)
    assert trainer.epoch == 0
    trainer.fit(loader(x, y, 32), 2, early_stopping=gc.train.EarlyStopping("train_loss"),
                progress=False)
    assert trainer.epoch == 2


def test_an_unknown_metric_names_the_ones_there_are():
    with pytest.raises(gc.train.TrainError, match=r"early stopping on 'f2', but the epoch "
                                                  r"records only \[.*'val_f1'"):
        scripted_run([0.1], gc.train.EarlyStopping("f2"))
    with pytest.raises(gc.train.TrainError, match="mode must be 'min' or 'max'"):
        gc.train.EarlyStopping("accuracy", mode="up")


def test_an_unknown_metric_with_a_val_loader_is_refused_before_training():
    model = MLP()
    opt = gc.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    trainer = gc.train.Trainer(model, gc.nn.cross_entropy, opt, device="reference")
    x, y = teacher_data(32)
    before = model.state_dict()
    with pytest.raises(gc.train.TrainError, match=r"early stopping on 'val_acc', but the epoch "
                                                  r"records only \[.*'val_accuracy'"):
        trainer.fit(loader(x, y, 32), 3, val_loader=loader(x, y, 32),
                    early_stopping=gc.train.EarlyStopping("val_acc"), progress=False)
    assert trainer.epoch == 0 and not trainer.history and trainer.specs is None
    assert_same_weights(model.state_dict(), before)


def test_every_key_of_an_epoch_record_can_be_watched():
    model = MLP()
    opt = gc.optim.SGD(model.parameters(), lr=0.1)
    trainer = gc.train.Trainer(model, gc.nn.cross_entropy, opt, device="reference",
                               metrics={"errors": lambda t, p: float(np.sum(t != p))})
    x, y = teacher_data(32)
    for validated in (False, True):
        history = trainer.fit(loader(x, y, 32), 1, val_loader=loader(x, y, 32) if validated
                              else None, progress=False)
        assert set(history[-1]) == trainer._record_keys(validated)
    trainer.fit(loader(x, y, 32), 1, val_loader=loader(x, y, 32),
                early_stopping=gc.train.EarlyStopping("errors"), progress=False)
