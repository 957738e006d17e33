"""gc.metrics against hand-computed cases and brute-force definitions."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import graphc as gc
from graphc.metrics import (accuracy, classification_report, confusion_matrix,
                            precision_recall_f1)


def test_accuracy_and_confusion_matrix_by_hand():
    y_true, y_pred = [2, 0, 2, 2, 0, 1], [0, 0, 2, 2, 0, 2]
    assert accuracy(y_true, y_pred) == pytest.approx(4 / 6)
    np.testing.assert_array_equal(confusion_matrix(y_true, y_pred),
                                  [[2, 0, 0], [0, 0, 1], [1, 0, 2]])
    assert confusion_matrix([0, 1], [1, 1], num_classes=4).shape == (4, 4)


def test_scores_are_reduced_to_labels():
    scores = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert accuracy([1, 0, 0], scores) == pytest.approx(2 / 3)
    probabilities = np.array([0.2, 0.6, 0.5, 0.49])
    assert accuracy([0, 1, 1, 1], probabilities, threshold=0.5) == pytest.approx(3 / 4)
    assert accuracy([1.0, 0.0], np.array([1.0, 1.0])) == 0.5        # whole-number floats
    with pytest.raises(gc.GraphcError, match="threshold="):
        accuracy([0, 1], probabilities[:2])


def test_sklearn_documented_multiclass_example():
    y_true, y_pred = [0, 1, 2, 0, 1, 2], [0, 2, 1, 0, 0, 1]
    assert precision_recall_f1(y_true, y_pred, "macro") == pytest.approx((2 / 9, 1 / 3, 4 / 15))
    assert precision_recall_f1(y_true, y_pred, "micro") == pytest.approx((1 / 3,) * 3)
    assert precision_recall_f1(y_true, y_pred, "weighted") == pytest.approx((2 / 9, 1 / 3, 4 / 15))
    precision, recall, f1 = precision_recall_f1(y_true, y_pred, None)
    np.testing.assert_allclose(precision, [2 / 3, 0, 0])
    np.testing.assert_allclose(recall, [1, 0, 0])
    np.testing.assert_allclose(f1, [0.8, 0, 0])


def test_binary_uses_the_positive_class():
    y_true, y_pred = [0, 1, 1, 0, 1], [1, 1, 0, 0, 1]
    assert precision_recall_f1(y_true, y_pred, "binary") == pytest.approx((2 / 3,) * 3)
    p, r, f = precision_recall_f1(y_true, y_pred, "binary", pos_label=0)
    assert (p, r, f) == pytest.approx((1 / 2, 1 / 2, 1 / 2))
    with pytest.raises(gc.GraphcError, match="two classes"):
        precision_recall_f1([0, 1, 2], [0, 1, 2], "binary")


def test_zero_division_values():
    # class 1 never occurs and is never predicted: every ratio is 0/0
    for zero_division, macro in ((0, 0.5), (1, 1.0), (np.nan, 1.0)):
        p, r, f = precision_recall_f1([0, 0], [0, 0], None, num_classes=2,
                                      zero_division=zero_division)
        np.testing.assert_array_equal(p, [1, zero_division])
        np.testing.assert_array_equal(f, [1, zero_division])
        assert precision_recall_f1([0, 0], [0, 0], "macro", num_classes=2,
                                   zero_division=zero_division)[0] == macro
    # class 1 occurs but is never predicted: precision 0/0, recall 0, F1 0 (not 0/0)
    p, r, f = precision_recall_f1([0, 1], [0, 0], None, zero_division=1)
    np.testing.assert_array_equal(p, [0.5, 1.0])
    np.testing.assert_array_equal(r, [1.0, 0.0])
    np.testing.assert_allclose(f, [2 / 3, 0.0])


def test_classification_report_dict_and_sklearn_table():
    report = classification_report([0, 1, 2, 2, 2], [0, 0, 2, 2, 1],
                                   target_names=["class 0", "class 1", "class 2"])
    assert report["class 2"] == pytest.approx({"precision": 1.0, "recall": 2 / 3,
                                               "f1-score": 0.8, "support": 3})
    assert report["accuracy"] == pytest.approx(0.6)
    assert report["weighted avg"]["f1-score"] == pytest.approx((2 / 3 + 0 + 3 * 0.8) / 5)
    assert str(report) == (
        "              precision    recall  f1-score   support\n\n"
        "     class 0       0.50      1.00      0.67         1\n"
        "     class 1       0.00      0.00      0.00         1\n"
        "     class 2       1.00      0.67      0.80         3\n\n"
        "    accuracy                           0.60         5\n"
        "   macro avg       0.50      0.56      0.49         5\n"
        "weighted avg       0.70      0.60      0.61         5\n")


@pytest.mark.parametrize("y_true, y_pred, kwargs, match", [
    ([0, 1], [0], {}, "2 labels but y_pred has 1"),
    ([], [], {}, "zero samples"),
    ([0, 3], [0, 1], {"num_classes": 3}, r"label 3 is outside \[0, 3\)"),
    ([0, -1], [0, 1], {}, "non-negative"),
    ([0, 1], [0, 1], {"average": "mean"}, "average must be"),
])
def test_bad_inputs_are_graphc_errors(y_true, y_pred, kwargs, match):
    with pytest.raises(gc.GraphcError, match=match):
        precision_recall_f1(y_true, y_pred, **kwargs)


def brute_force(y_true, y_pred, labels, zero_division):
    """Per-class (precision, recall, f1, support) by counting, sample by sample."""
    rows = []
    for c in labels:
        tp = fp = fn = 0
        for t, p in zip(y_true, y_pred):
            tp += t == c and p == c
            fp += t != c and p == c
            fn += t == c and p != c
        precision = tp / (tp + fp) if tp + fp else zero_division
        recall = tp / (tp + fn) if tp + fn else zero_division
        if tp + fp + fn == 0:
            f1 = zero_division
        elif tp == 0:
            f1 = 0.0
        else:
            f1 = 2 * precision * recall / (precision + recall)
        rows.append((precision, recall, f1, tp + fn))
    return rows


def brute_average(rows, weighted):
    """Means over classes of the values that are not nan, weighted by support if
    asked and if those classes have any (else plain means), as sklearn's."""
    averages = []
    for k in range(3):
        pairs = [(row[k], row[3] if weighted else 1) for row in rows if not math.isnan(row[k])]
        if sum(w for _, w in pairs) == 0:
            pairs = [(v, 1) for v, _ in pairs]
        total = sum(w for _, w in pairs)
        averages.append(sum(v * w for v, w in pairs) / total if pairs else math.nan)
    return averages


@settings(max_examples=60, deadline=None)
@given(data=st.data(), k=st.integers(1, 6), n=st.integers(1, 40),
       zero_division=st.sampled_from([0, 1, np.nan]), fixed_classes=st.booleans())
def test_matches_brute_force_definitions(data, k, n, zero_division, fixed_classes):
    labels_strategy = st.lists(st.integers(0, k - 1), min_size=n, max_size=n)
    y_true, y_pred = data.draw(labels_strategy), data.draw(labels_strategy)
    num_classes = k if fixed_classes else None
    labels = range(k) if fixed_classes else sorted(set(y_true) | set(y_pred))
    rows = brute_force(y_true, y_pred, labels, zero_division)
    args = dict(num_classes=num_classes, zero_division=zero_division)
    per_class = precision_recall_f1(y_true, y_pred, None, **args)
    for k_metric in range(3):
        np.testing.assert_allclose(per_class[k_metric], [row[k_metric] for row in rows])
    np.testing.assert_allclose(precision_recall_f1(y_true, y_pred, "macro", **args),
                               brute_average(rows, weighted=False))
    np.testing.assert_allclose(precision_recall_f1(y_true, y_pred, "weighted", **args),
                               brute_average(rows, weighted=True))
    exact = np.mean(np.array(y_true) == np.array(y_pred))
    np.testing.assert_allclose(precision_recall_f1(y_true, y_pred, "micro", **args), [exact] * 3)
    assert accuracy(y_true, y_pred) == pytest.approx(exact)
    matrix = confusion_matrix(y_true, y_pred, num_classes=num_classes)
    for (i, j), count in np.ndenumerate(matrix):
        assert count == sum(t == i and p == j for t, p in zip(y_true, y_pred))
