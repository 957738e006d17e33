"""gc.metrics: classification metrics on NumPy arrays, with scikit-learn's semantics.

Inputs are 1-D arrays (or lists) of integer class labels 0..K-1. `y_pred` may
also be scores: a 2-D array (N, K) of per-class scores or probabilities is
reduced with argmax; a 1-D float array of scores is binarized with `threshold`
(`score >= threshold` -> 1). A 1-D float array without a threshold is accepted
only if it holds whole numbers.

The classes are 0..num_classes-1 when `num_classes` is given (a label outside
raises), else the sorted labels present in y_true or y_pred (as scikit-learn's
`labels=None`). A ratio whose denominator is zero (precision of a class never
predicted, recall of a class that never occurs, F1 with no TP, FP or FN) takes
the value `zero_division` (0, 1 or nan; nan values are left out of averages).
"""
import numpy as np

from graphc.data.errors import DataError

__all__ = ["accuracy", "confusion_matrix", "precision_recall_f1", "classification_report",
           "ClassificationReport"]

_AVERAGES = ("macro", "micro", "weighted", "binary", None)


def as_labels(y, name="y", threshold=None):
    """Integer labels (int64, 1-D) from labels, per-class scores (argmax) or scores
    binarized at `threshold`."""
    y = np.asarray(y)
    if y.ndim == 2:
        if y.shape[1] == 1 and threshold is not None:
            y = y[:, 0]
        else:
            return np.argmax(y, axis=1).astype(np.int64) if y.shape[0] else \
                np.zeros(0, np.int64)
    if y.ndim != 1:
        raise DataError(f"{name} must be 1-D labels or 2-D (N, classes) scores, "
                        f"got shape {y.shape}")
    if threshold is not None:
        return (y >= threshold).astype(np.int64)
    if y.dtype.kind == "b":
        return y.astype(np.int64)
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
            raise DataError(f"{name} holds non-integer values; pass threshold= to binarize "
                            f"scores, or 2-D scores to take the argmax")
    elif y.dtype.kind not in "iu":
        raise DataError(f"{name} must hold integer labels, got dtype {y.dtype}")
    return y.astype(np.int64)


def _pair(y_true, y_pred, threshold=None):
    t = as_labels(y_true, "y_true")
    p = as_labels(y_pred, "y_pred", threshold)
    if len(t) != len(p):
        raise DataError(f"y_true has {len(t)} labels but y_pred has {len(p)}")
    if len(t) == 0:
        raise DataError("metrics of zero samples are undefined (y_true is empty)")
    return t, p


def _classes(t, p, num_classes):
    """The class labels the metrics are over, checked against num_classes."""
    low = min(t.min(), p.min())
    if low < 0:
        raise DataError(f"labels must be non-negative class indices, found {low}")
    if num_classes is None:
        return np.union1d(t, p)
    high = max(t.max(), p.max())
    if high >= num_classes:
        raise DataError(f"label {high} is outside [0, {num_classes}) (num_classes="
                        f"{num_classes})")
    return np.arange(num_classes)


def accuracy(y_true, y_pred, threshold=None):
    """The fraction of samples whose predicted label equals the true one."""
    t, p = _pair(y_true, y_pred, threshold)
    return float(np.mean(t == p))


def confusion_matrix(y_true, y_pred, num_classes=None, threshold=None):
    """int64 (K, K): entry [i, j] counts samples of true class i predicted as j.

    K is num_classes, else 1 + the largest label seen (so row i is class i)."""
    t, p = _pair(y_true, y_pred, threshold)
    classes = _classes(t, p, num_classes)
    k = int(num_classes if num_classes is not None else classes.max() + 1)
    return np.bincount(t * k + p, minlength=k * k).reshape(k, k).astype(np.int64)


def _ratio(numerator, denominator, zero_division):
    numerator, denominator = np.asarray(numerator, float), np.asarray(denominator, float)
    out = np.full(numerator.shape, float(zero_division))
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def _counts(t, p, classes):
    """Per-class true positives, false positives, false negatives (= support - tp)."""
    tp = np.array([np.sum((t == c) & (p == c)) for c in classes], dtype=np.int64)
    predicted = np.array([np.sum(p == c) for c in classes], dtype=np.int64)
    support = np.array([np.sum(t == c) for c in classes], dtype=np.int64)
    return tp, predicted - tp, support - tp, support


def _scores(tp, fp, fn, zero_division):
    precision = _ratio(tp, tp + fp, zero_division)
    recall = _ratio(tp, tp + fn, zero_division)
    f1 = _ratio(2 * tp, 2 * tp + fp + fn, zero_division)
    return precision, recall, f1


def _average(values, weights):
    """Mean of the non-nan values, weighted if weights are given and not all zero
    (sklearn's _nanaverage); nan if every value is nan."""
    keep = ~np.isnan(values)
    if not keep.any():
        return float("nan")
    if weights is None or weights[keep].sum() == 0:
        return float(values[keep].mean())
    return float(np.average(values[keep], weights=weights[keep]))


def _check_zero_division(zero_division):
    if zero_division == "warn":
        return 0.0
    if not (zero_division in (0, 1) or np.isnan(zero_division)):
        raise DataError(f"zero_division must be 0, 1 or nan, got {zero_division!r}")
    return float(zero_division)


def precision_recall_f1(y_true, y_pred, average="macro", num_classes=None, zero_division=0,
                        pos_label=1, threshold=None):
    """(precision, recall, f1), as sklearn's precision_recall_fscore_support.

    average: "macro" (unweighted mean over classes), "weighted" (mean weighted by
    each class's support), "micro" (from the summed counts; equals accuracy for
    single-label data), "binary" (class `pos_label` only; at most two classes
    allowed), or None (one value per class, arrays in the order of the classes,
    see the module docstring). Floats otherwise.
    """
    if average not in _AVERAGES:
        raise DataError(f"average must be one of {_AVERAGES}, got {average!r}")
    zero_division = _check_zero_division(zero_division)
    t, p = _pair(y_true, y_pred, threshold)
    classes = _classes(t, p, num_classes)
    if average == "binary":
        present = np.union1d(t, p)
        if len(present) > 2:
            raise DataError(f"average='binary' needs two classes, found labels "
                            f"{present.tolist()}; choose average='macro', 'micro', "
                            f"'weighted' or None")
        if len(present) == 2 and pos_label not in present:
            raise DataError(f"pos_label={pos_label} is not one of the labels "
                            f"{present.tolist()}")
        classes = np.array([pos_label])
    tp, fp, fn, support = _counts(t, p, classes)
    if average == "micro":
        tp, fp, fn = tp.sum(keepdims=True), fp.sum(keepdims=True), fn.sum(keepdims=True)
    precision, recall, f1 = _scores(tp, fp, fn, zero_division)
    if average is None:
        return precision, recall, f1
    weights = support if average == "weighted" else None
    return tuple(_average(v, weights) for v in (precision, recall, f1))


class ClassificationReport(dict):
    """sklearn's `classification_report(output_dict=True)` dict; `str()` (and
    `.table`) is the printable table."""

    table = ""

    def __str__(self):
        return self.table


def _table(report, names, digits):
    """The table sklearn's classification_report prints, character for character."""
    width = max([len(n) for n in names] + [len("weighted avg"), digits])
    head = ["precision", "recall", "f1-score", "support"]
    lines = [" " * width + " " + "".join(f" {h:>9}" for h in head), ""]

    def row(name, stats):
        values = "".join(f" {stats[k]:>9.{digits}f}" for k in ("precision", "recall", "f1-score"))
        return f"{name:>{width}} {values} {stats['support']:>9}"

    lines += [row(n, report[n]) for n in names] + [""]
    support = report["macro avg"]["support"]
    lines.append(f"{'accuracy':>{width}} " + " " * 20 +
                 f" {report['accuracy']:>9.{digits}f} {support:>9}")
    lines += [row(n, report[n]) for n in ("macro avg", "weighted avg")]
    return "\n".join(lines) + "\n"


def classification_report(y_true, y_pred, num_classes=None, target_names=None, digits=2,
                          zero_division=0, threshold=None):
    """Per-class precision, recall, F1 and support, accuracy, and the macro and
    weighted averages: a dict keyed as sklearn's (class name -> {"precision",
    "recall", "f1-score", "support"}, "accuracy", "macro avg", "weighted avg")
    whose `str()` is the table sklearn prints."""
    t, p = _pair(y_true, y_pred, threshold)
    classes = _classes(t, p, num_classes)
    names = [str(c) for c in classes] if target_names is None else list(target_names)
    if len(names) != len(classes):
        raise DataError(f"target_names has {len(names)} names for {len(classes)} classes")
    args = dict(num_classes=num_classes, zero_division=zero_division)
    per_class = precision_recall_f1(t, p, average=None, **args)
    _, _, _, support = _counts(t, p, classes)
    report = ClassificationReport()
    for i, name in enumerate(names):
        report[name] = {"precision": float(per_class[0][i]), "recall": float(per_class[1][i]),
                        "f1-score": float(per_class[2][i]), "support": int(support[i])}
    report["accuracy"] = accuracy(t, p)
    for key, average in (("macro avg", "macro"), ("weighted avg", "weighted")):
        values = precision_recall_f1(t, p, average=average, **args)
        report[key] = dict(zip(("precision", "recall", "f1-score"), values),
                           support=int(len(t)))
    report.table = _table(report, names, digits)
    return report
