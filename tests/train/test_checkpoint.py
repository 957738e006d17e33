"""Checkpoints: a run resumed in a fresh process equals the uninterrupted run
exactly; a checkpoint that does not fit fails with one clear error and
changes nothing."""
import errno
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import graphc as gc
from resume_run import final_state, make_run
from train_helpers import MLP, loader, teacher_data

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.mark.parametrize("device", ["reference", "cpu"])
def test_resume_in_a_fresh_process_equals_three_uninterrupted_epochs(device, tmp_path):
    with gc.Graph("uninterrupted"):
        trainer, data, scheduler = make_run(device)
        trainer.fit(data, epochs=3, scheduler=scheduler, progress=False)
        want = final_state(trainer)
    with gc.Graph("interrupted"):
        trainer, data, scheduler = make_run(device)
        trainer.fit(data, epochs=2, scheduler=scheduler, progress=False)
        trainer.save_checkpoint(tmp_path / "run.npz")
        after_two = final_state(trainer)
    out = tmp_path / "resumed.npz"
    child = subprocess.run([sys.executable, os.path.join(HERE, "resume_run.py"), device,
                            str(tmp_path / "run.npz"), str(out)],
                           capture_output=True, text=True, timeout=120)
    assert child.returncode == 0, child.stderr[-3000:]
    with np.load(out) as got:
        assert sorted(got.files) == sorted(want)
        for key, value in want.items():
            np.testing.assert_array_equal(got[key], value, err_msg=key)
    assert want["rng_counter"] == 18                    # 6 steps an epoch, dropout in each
    assert not np.array_equal(after_two["model/fc1.weight"], want["model/fc1.weight"])
    assert want["optimizer/Adam/lr"] == np.float32(0.01 * 0.5 ** 3)


def _trained(tmp_path, model=None, optimizer="sgd", epochs=1):
    model = model or MLP()
    opt = (gc.optim.SGD(model.parameters(), lr=0.1, momentum=0.9) if optimizer == "sgd"
           else gc.optim.Adam(model.parameters(), lr=0.01))
    trainer = gc.train.Trainer(model, gc.nn.cross_entropy, opt, device="reference")
    x, y = teacher_data(64)
    trainer.fit(loader(x, y, 16, shuffle=True), epochs=epochs, progress=False,
                checkpoint=tmp_path / "ckpt.npz")
    return trainer


def test_checkpoint_holds_every_variable_and_the_loop_state(tmp_path):
    trainer = _trained(tmp_path, epochs=2)
    with np.load(tmp_path / "ckpt.npz") as saved:
        keys = set(saved.files)
        meta = json.loads(str(saved["meta"]))
    assert {"model/" + k for k in trainer.model.state_dict()} < keys
    assert {"optimizer/" + p.name + "/momentum_buffer" for p in trainer.model.parameters()} < keys
    assert "graph/rng_counter" in keys
    assert meta["epoch"] == 2 and len(meta["history"]) == 2
    assert meta["loader"]["epoch"] == 2 and meta["loader"]["batches_done"] == 0
    assert meta["optimizer"]["param_groups"][0]["lr"] == 0.1
    assert meta["inputs"] == [[[None, 8], "float32"]] and meta["num_classes"] == 3


def test_loading_restores_weights_epoch_and_history_in_the_same_process(tmp_path):
    trainer = _trained(tmp_path)
    saved = trainer.model.state_dict()
    trainer.fit(loader(*teacher_data(64), 16), epochs=1, progress=False)
    trainer.load_checkpoint(tmp_path / "ckpt.npz")
    for name, value in trainer.model.state_dict().items():
        np.testing.assert_array_equal(value, saved[name])
    assert trainer.epoch == 1 and len(trainer.history) == 1


class Wider(MLP):
    def __init__(self):
        super().__init__(hidden=16)


class Deeper(MLP):
    def __init__(self):
        super().__init__()
        self.fc3 = gc.nn.Linear(3, 3)

    def forward(self, x):
        return self.fc3(super().forward(x))


class Renamed(gc.nn.Module):
    def __init__(self):
        super().__init__()
        self.body = MLP()

    def forward(self, x):
        return self.body(x)


def _fresh_trainer(model):
    opt = gc.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    return gc.train.Trainer(model, gc.nn.cross_entropy, opt, device="reference")


@pytest.mark.parametrize("model_class, message", [
    (Wider, r"mis-shaped variables: fc1.weight: checkpoint \(32, 8\) float32, model \(16, 8\) "
            r"float32; fc1.bias: checkpoint \(32,\)"),
    (Deeper, r"missing variables \['fc3.bias', 'fc3.weight'\]"),
    (Renamed, r"missing variables \['body.bn.bias', .*unexpected variables \['bn.bias'"),
])
def test_checkpoint_of_another_model_is_refused_and_changes_nothing(tmp_path, model_class,
                                                                    message):
    _trained(tmp_path)
    trainer = _fresh_trainer(model_class())
    before, seed = trainer.model.state_dict(), trainer.seed
    with pytest.raises(gc.train.CheckpointError, match="ckpt.npz': it does not fit this "
                                                       "model: .*" + message):
        trainer.load_checkpoint(tmp_path / "ckpt.npz")
    for name, value in trainer.model.state_dict().items():
        np.testing.assert_array_equal(value, before[name])
    assert trainer.epoch == 0 and trainer.seed == seed


def test_checkpoint_of_another_optimizer_is_refused_and_changes_nothing(tmp_path):
    _trained(tmp_path, optimizer="adam")
    trainer = _fresh_trainer(MLP())
    before = trainer.model.state_dict()
    with pytest.raises(gc.train.CheckpointError, match="the optimizer state does not fit: "
                                                       "load_state_dict needs a SGD state"):
        trainer.load_checkpoint(tmp_path / "ckpt.npz")
    for name, value in trainer.model.state_dict().items():
        np.testing.assert_array_equal(value, before[name])


def test_missing_or_foreign_checkpoint_file_is_one_clear_error(tmp_path):
    trainer = _fresh_trainer(MLP())
    with pytest.raises(gc.GraphcError, match="checkpoint '.*nothing.npz': no such file"):
        trainer.load_checkpoint(tmp_path / "nothing.npz")
    np.savez(tmp_path / "other.npz", w=np.zeros(3))
    with pytest.raises(gc.train.CheckpointError, match="not a graphc trainer checkpoint"):
        trainer.load_checkpoint(tmp_path / "other.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(gc.train.CheckpointError, match="not a readable .npz file"):
        trainer.load_checkpoint(tmp_path / "text.npz")


def _unchanged(trainer, before):
    for name, value in trainer.model.state_dict().items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)


def test_checkpoint_for_other_inputs_is_refused_and_the_trainer_still_trains(tmp_path):
    _trained(tmp_path)                                  # a model taking 8 features
    trainer = _fresh_trainer(MLP(features=5))
    before, seed = trainer.model.state_dict(), trainer.seed
    with pytest.raises(gc.train.CheckpointError, match=r"ckpt.npz': it is for inputs "
                                                       r"\(None, 8\) float32, which this model "
                                                       r"does not take \(Linear: expects 5"):
        trainer.load_checkpoint(tmp_path / "ckpt.npz")
    _unchanged(trainer, before)
    assert (trainer.seed, trainer.specs, trainer.epoch) == (seed, None, 0)
    assert trainer.num_classes is None
    x, y = teacher_data(16, features=5)
    history = trainer.fit([(x, y)], 1, progress=False)
    assert trainer.epoch == 1 and np.isfinite(history[-1]["train_loss"])


def test_checkpoint_for_other_inputs_leaves_a_built_trainer_as_it_was(tmp_path):
    _trained(tmp_path)
    trainer = _fresh_trainer(MLP(features=5))
    x, y = teacher_data(16, features=5)
    trainer.fit([(x, y)], 1, progress=False)
    before, specs = trainer.model.state_dict(), trainer.specs
    with pytest.raises(gc.train.CheckpointError, match=r"does not take .*; this trainer takes "
                                                       r"\(None, 5\) float32"):
        trainer.load_checkpoint(tmp_path / "ckpt.npz")
    _unchanged(trainer, before)
    assert trainer.specs == specs and trainer.epoch == 1
    trainer.fit([(x, y)], 1, progress=False)
    assert trainer.epoch == 2


@pytest.mark.parametrize("entry", ["epoch", "history", "seed", "inputs", "loader"])
def test_checkpoint_whose_meta_lacks_an_entry_is_refused_before_anything_is_set(tmp_path,
                                                                               entry):
    _trained(tmp_path)
    with np.load(tmp_path / "ckpt.npz") as saved:
        arrays = dict(saved)
    meta = json.loads(str(arrays["meta"]))
    del meta[entry]
    np.savez(tmp_path / "damaged.npz", **dict(arrays, meta=np.array(json.dumps(meta))))
    trainer = _fresh_trainer(MLP())
    before = trainer.model.state_dict()
    with pytest.raises(gc.train.CheckpointError, match=f"damaged.npz': its meta lacks the "
                                                       f"entries \\['{entry}'\\]"):
        trainer.load_checkpoint(tmp_path / "damaged.npz")
    _unchanged(trainer, before)
    assert trainer.epoch == 0 and trainer.specs is None and not trainer.history


@pytest.mark.parametrize("entry, value, message", [
    ("epoch", "two", "its meta entry 'epoch' holds 'two'; expected an int >= 0"),
    ("task", "bogus", r"its meta entry 'task' holds 'bogus'; expected null or one of "
                      r"\('multiclass', 'binary', 'regression'\)"),
])
def test_checkpoint_meta_of_the_wrong_kind_is_refused(tmp_path, entry, value, message):
    _trained(tmp_path)
    with np.load(tmp_path / "ckpt.npz") as saved:
        arrays = dict(saved)
    meta = dict(json.loads(str(arrays["meta"])), **{entry: value})
    np.savez(tmp_path / "damaged.npz", **dict(arrays, meta=np.array(json.dumps(meta))))
    trainer = _fresh_trainer(MLP())
    before = trainer.model.state_dict()
    with pytest.raises(gc.train.CheckpointError, match=message):
        trainer.load_checkpoint(tmp_path / "damaged.npz")
    _unchanged(trainer, before)
    assert trainer.epoch == 0 and trainer.specs is None and trainer.task == "multiclass"


def test_a_checkpoint_path_that_cannot_be_written_is_refused_and_leaves_no_file(tmp_path):
    trainer = _trained(tmp_path)                        # wrote tmp_path / "ckpt.npz"
    with pytest.raises(gc.train.CheckpointError, match=re.escape(
            f"save_checkpoint: checkpoint '{tmp_path}': it is a folder")):
        trainer.save_checkpoint(tmp_path)
    with pytest.raises(gc.train.CheckpointError, match="folder '.*missing' does not exist"):
        trainer.save_checkpoint(tmp_path / "missing" / "run.npz")
    with pytest.raises(gc.train.CheckpointError, match="save_checkpoint: needs the path"):
        trainer.save_checkpoint(None)
    assert sorted(os.listdir(tmp_path)) == ["ckpt.npz"]
    assert not os.path.exists(f"{tmp_path}.partial")


def test_fit_refuses_a_checkpoint_path_before_training(tmp_path):
    trainer = _fresh_trainer(MLP())
    before = trainer.model.state_dict()
    x, y = teacher_data(32)
    with pytest.raises(gc.train.CheckpointError, match="fit: checkpoint '.*': it is a folder"):
        trainer.fit(loader(x, y, 16), 1, checkpoint=tmp_path, progress=False)
    _unchanged(trainer, before)
    assert trainer.epoch == 0 and not trainer.history


def test_a_failed_write_keeps_the_old_checkpoint_and_leaves_no_partial_file(tmp_path,
                                                                           monkeypatch):
    trainer = _trained(tmp_path)
    old = (tmp_path / "ckpt.npz").read_bytes()

    def disk_full(file, **arrays):
        file.write(b"half a checkpoint")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", disk_full)
    with pytest.raises(gc.train.CheckpointError, match=r"ckpt.npz': cannot write it \(No "
                                                       r"space left on device\)"):
        trainer.save_checkpoint(tmp_path / "ckpt.npz")
    assert sorted(os.listdir(tmp_path)) == ["ckpt.npz"]
    assert (tmp_path / "ckpt.npz").read_bytes() == old


def test_an_empty_file_an_npy_file_or_no_path_is_a_checkpoint_error(tmp_path):
    trainer = _fresh_trainer(MLP())
    (tmp_path / "empty.npz").write_bytes(b"")
    with pytest.raises(gc.train.CheckpointError, match="empty.npz': not a readable .npz file"):
        trainer.load_checkpoint(tmp_path / "empty.npz")
    np.save(tmp_path / "one.npy", np.ones(3))
    with pytest.raises(gc.train.CheckpointError, match="one.npy': not a readable .npz file "
                                                       r"\(it holds one array, as np.save"):
        trainer.load_checkpoint(tmp_path / "one.npy")
    with pytest.raises(gc.train.CheckpointError, match="load_checkpoint: needs the path of a "
                                                       "checkpoint file, got a NoneType"):
        trainer.load_checkpoint(None)


def test_early_stopping_state_resumes_from_a_checkpoint(tmp_path):
    trainer = _fresh_trainer(MLP())
    x, y = teacher_data(64)
    stopping = gc.train.EarlyStopping("loss", patience=5)
    trainer.fit(loader(x, y, 32), 2, val_loader=loader(x, y, 64), early_stopping=stopping,
                checkpoint=tmp_path / "ckpt.npz", progress=False)
    fresh = _fresh_trainer(MLP())
    fresh.load_checkpoint(tmp_path / "ckpt.npz")
    resumed = gc.train.EarlyStopping("loss", patience=5)
    fresh.fit(loader(x, y, 32), 0, val_loader=loader(x, y, 64), early_stopping=resumed,
              progress=False)
    assert (resumed.best, resumed.best_epoch, resumed.wait) == (
        stopping.best, stopping.best_epoch, stopping.wait)
    for name, value in stopping.best_state.items():
        np.testing.assert_array_equal(resumed.best_state[name], value)
