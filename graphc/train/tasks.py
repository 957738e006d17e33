"""What a Trainer's labels mean, task by task, and the scores evaluate() reports.

- "multiclass": a class index per sample (int64 (N,)); logits (N, C); scored by
  accuracy, precision, recall, F1 (macro and per class), the confusion matrix.
- "binary": 0/1 per sample; one logit per sample, (N,) or (N, 1).
- "regression": a target of the model's output shape per sample, (N, ...) as
  floats (a (N,) target for an (N, 1) output is taken as (N, 1), where PyTorch
  would broadcast it to (N, N) with a warning); scored by MAE, MSE, RMSE and R^2
  (over every target value: 1 - residual sum of squares / total sum of squares).
"""
import numbers

import numpy as np

from graphc import metrics as gc_metrics
from graphc.graph import format_shape
from graphc.nn import functional as F
from graphc.train.batches import fail

REGRESSION_LOSSES = (F.mse_loss, F.l1_loss, F.smooth_l1_loss, F.huber_loss)
CLASSIFICATION_SCORES = ("loss", "accuracy", "precision", "recall", "f1", "samples")
REGRESSION_SCORES = ("loss", "mae", "mse", "rmse", "r2", "samples")
LOWER_IS_BETTER = ("loss", "mae", "mse", "rmse")


def scalar_scores(task):
    """The names of evaluate()'s one-number scores for `task` (an epoch record's val_)."""
    return REGRESSION_SCORES if task == "regression" else CLASSIFICATION_SCORES


def lower_is_better(key):
    """Whether a record key ("val_loss", "train_mae", "r2") improves downwards; None
    for a metric of the user's."""
    name = key.split("_", 1)[1] if key.startswith(("val_", "train_")) else key
    if name in LOWER_IS_BETTER:
        return True
    return False if name in CLASSIFICATION_SCORES + REGRESSION_SCORES else None


def check_targets(targets, shape, dtype, index, op):
    """Regression targets as `dtype` of `shape` (N first), or a TrainError."""
    trailing = tuple(shape[1:])
    if targets.ndim == 1 and trailing == (1,):
        targets = targets[:, None]
    if targets.shape[1:] != trailing:
        outputs = "(" + ", ".join(["N"] + [str(d) for d in trailing]) + ")"
        fail(f"batch {index}: targets have shape {format_shape(targets.shape)}; the model "
             f"outputs {outputs} (N = batch size), and a regression target has the output's "
             "shape", op)
    if targets.dtype.kind not in "fiub":
        fail(f"batch {index}: targets have dtype {targets.dtype}; expected numbers", op)
    return targets.astype(dtype, copy=False)


def regression_scores(y_true, y_pred, loss):
    """MAE, MSE, RMSE and R^2 over every value, in float64."""
    error = np.asarray(y_pred, np.float64) - np.asarray(y_true, np.float64)
    mse = float(np.mean(error ** 2)) if error.size else float("nan")
    spread = float(np.sum((y_true - np.mean(y_true)) ** 2)) if error.size else 0.0
    r2 = 1.0 - float(np.sum(error ** 2)) / spread if spread > 0 else float("nan")
    return {"loss": float(loss), "mae": float(np.mean(np.abs(error))) if error.size else
            float("nan"), "mse": mse, "rmse": mse ** 0.5, "r2": r2,
            "samples": int(len(y_true))}


def classification_scores(y_true, y_pred, loss, num_classes):
    """Accuracy, macro and per-class precision, recall and F1, the confusion matrix."""
    k = num_classes
    per_class = gc_metrics.precision_recall_f1(y_true, y_pred, average=None, num_classes=k)
    macro = gc_metrics.precision_recall_f1(y_true, y_pred, average="macro", num_classes=k)
    return {"loss": float(loss), "accuracy": gc_metrics.accuracy(y_true, y_pred),
            "precision": macro[0], "recall": macro[1], "f1": macro[2],
            "precision_per_class": per_class[0], "recall_per_class": per_class[1],
            "f1_per_class": per_class[2],
            "confusion_matrix": gc_metrics.confusion_matrix(y_true, y_pred, num_classes=k),
            "samples": int(len(y_true))}


def check_metrics(metrics, op):
    """metrics: None or {name: fn(y_true, y_pred) -> number}."""
    if metrics is not None and (not isinstance(metrics, dict) or
                                not all(map(callable, metrics.values()))):
        fail(f"metrics must be a dict {{name: fn(y_true, y_pred) -> number}}, got "
             f"{metrics!r:.60}", op)


def metric_value(name, value, op="evaluate"):
    """A metric's result as a float, or a TrainError naming the metric."""
    number = value.item() if isinstance(value, np.ndarray) and value.size == 1 else value
    if isinstance(number, (numbers.Real, np.bool_)):
        return float(number)
    fail(f"metric '{name}' returned {value!r:.60} (a {type(value).__name__}); a metric must "
         "return a number", op)
