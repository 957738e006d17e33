"""Per-epoch bookkeeping: `History`, `EarlyStopping` and the progress bar."""
import math
import sys
import time

from tqdm import tqdm

from graphc.errors import user_location
from graphc.train import tasks
from graphc.train.errors import TrainError


class History(list):
    """One dict per epoch: "epoch", "train_loss", "train_accuracy", "lr", "seconds",
    "samples_per_second", and "val_<metric>" when there is a validation loader.

    `history["val_accuracy"]` is that column as a list (None where absent)."""

    def __getitem__(self, key):
        if isinstance(key, str):
            return [record.get(key) for record in self]
        return super().__getitem__(key)

    def best(self, key, mode="max"):
        """The record with the best `key` (the first of equals)."""
        values = [(r[key], i) for i, r in enumerate(self) if r.get(key) is not None]
        if not values:
            raise TrainError(f"no epoch recorded '{key}'", op="History.best", loc=user_location())
        pick = max(values, key=lambda v: (v[0], -v[1])) if mode == "max" else min(values)
        return self[pick[1]]


class EarlyStopping:
    """Stop training when a validation metric stops improving.

    metric: a key of the epoch records: "accuracy" means "val_accuracy" (any
    metric of `Trainer.evaluate`, or "train_loss" and other record keys).
    mode: "max" or "min" (None: "min" for losses, else "max").
    patience: epochs without an improvement of more than `min_delta` before
    stopping. restore_best: at the end of `fit`, set the model's variables
    (parameters and buffers; not the optimizer's state) to those of the best
    epoch. Its state (best value, epoch, weights) is saved in checkpoints.
    """

    def __init__(self, metric="accuracy", patience=3, mode=None, min_delta=0.0,
                 restore_best=True):
        mode = mode or ("min" if "loss" in metric or tasks.lower_is_better(metric) else "max")
        if mode not in ("min", "max"):
            raise TrainError(f"mode must be 'min' or 'max', got {mode!r}", op="EarlyStopping",
                             loc=user_location())
        if not isinstance(patience, int) or patience < 0:
            raise TrainError(f"patience must be an int >= 0, got {patience!r}",
                             op="EarlyStopping", loc=user_location())
        self.metric, self.patience, self.mode = metric, patience, mode
        self.min_delta, self.restore_best = abs(float(min_delta)), restore_best
        self.best, self.best_epoch, self.wait, self.best_state = None, None, 0, None
        self.stopped_epoch = None

    def key(self, record):
        """The record key this metric reads ("accuracy" -> "val_accuracy")."""
        for key in (self.metric, "val_" + self.metric):
            if key in record:
                return key
        validated = any(key.startswith("val_") for key in record)
        hint = "" if validated else " (pass val_loader= for validation metrics)"
        raise TrainError(f"early stopping on '{self.metric}', but the epoch records only "
                         f"{sorted(record)}{hint}", op="EarlyStopping", loc=user_location())

    def _improved(self, value):
        if self.best is None:
            return not math.isnan(value)
        if self.mode == "max":
            return value > self.best + self.min_delta
        return value < self.best - self.min_delta

    def update(self, record, model):
        """Note this epoch's record; True when training should stop."""
        value = float(record[self.key(record)])
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, record["epoch"], 0
            if self.restore_best:
                self.best_state = model.state_dict()
            return False
        self.wait += 1
        if self.wait > self.patience:
            self.stopped_epoch = record["epoch"]
            return True
        return False

    def restore(self, model):
        """Set the model back to the best epoch's variables (when restore_best)."""
        if self.restore_best and self.best_state is not None:
            model.load_state_dict(self.best_state)

    def state_dict(self):
        """The JSON-able state; the best weights are `best_state` (arrays)."""
        return {"metric": self.metric, "mode": self.mode, "best": self.best,
                "best_epoch": self.best_epoch, "wait": self.wait}

    def load_state_dict(self, state, best_state=None):
        if (state["metric"], state["mode"]) != (self.metric, self.mode):
            raise TrainError(f"early stopping state is for {state['mode']} '{state['metric']}'"
                             f", this one watches {self.mode} '{self.metric}'",
                             op="EarlyStopping", loc=user_location())
        self.best, self.best_epoch, self.wait = state["best"], state["best_epoch"], state["wait"]
        self.best_state = best_state or None


class EpochProgress:
    """A tqdm bar over one epoch's batches, with loss and samples/s; shown only on
    a terminal, after `delay` seconds (so short epochs print nothing)."""

    def __init__(self, total, epoch, enabled, delay=0.5):
        self.samples, self.loss_sum, self.correct = 0, 0.0, 0     # correct None: not counted
        self.start = time.perf_counter()
        tty = enabled and sys.stderr.isatty()
        self.bar = tqdm(total=total, desc=f"epoch {epoch}", unit="batch", leave=False,
                        disable=not tty, delay=delay, dynamic_ncols=True)

    def update(self, n, loss, correct):
        self.samples += n
        self.loss_sum += float(loss) * n
        self.correct = None if correct is None else self.correct + int(correct)
        self.bar.update(1)
        self.bar.set_postfix({"loss": f"{self.mean_loss:.4f}",
                              "samples/s": f"{self.samples / self.seconds:.0f}"}, refresh=False)

    @property
    def seconds(self):
        return max(time.perf_counter() - self.start, 1e-9)

    @property
    def mean_loss(self):
        return self.loss_sum / max(self.samples, 1)

    @staticmethod
    def write(line):
        """Print a line (an epoch's summary) without breaking a bar on screen."""
        tqdm.write(line)

    def close(self):
        self.bar.close()
        accuracy = {} if self.correct is None else {
            "train_accuracy": self.correct / max(self.samples, 1)}
        return {"train_loss": self.mean_loss, **accuracy,
                "samples": self.samples, "train_seconds": self.seconds,
                "samples_per_second": self.samples / self.seconds}


def describe(record):
    """One line for an epoch record: losses and metrics, rate, speed, time."""
    keys = ["train_loss", "train_accuracy"] + [
        k for k in record if k.startswith("val_") and k != "val_samples"]
    parts = [f"epoch {record['epoch']}"] + [
        f"{k} {record[k]:.4f}" for k in keys if isinstance(record.get(k), (int, float))]
    parts += [f"lr {record['lr']:.3g}", f"{record['samples_per_second']:.0f} samples/s",
              f"{record['seconds']:.2f} s"]
    return "  ".join(parts)
