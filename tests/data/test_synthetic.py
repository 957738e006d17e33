"""The generated default dataset: determinism, balance, and how separable it is."""
import numpy as np
import pytest

from graphc.data import SHAPE_CLASSES, DataError, load_default, shapes


def test_shapes_dtypes_and_range():
    x, y = shapes(250, seed=3)
    assert x.shape == (250, 1, 28, 28) and x.dtype == np.float32
    assert y.shape == (250,) and y.dtype == np.int64
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert len(SHAPE_CLASSES) == 10
    x40, _ = shapes(10, size=40)
    assert x40.shape == (10, 1, 40, 40)


def test_same_seed_same_data_other_seed_other_data():
    a, b, c = shapes(100, seed=1), shapes(100, seed=1), shapes(100, seed=2)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize("n", [10, 95, 1003])
def test_classes_are_balanced_and_shuffled(n):
    _, y = shapes(n, seed=0)
    counts = np.bincount(y, minlength=10)
    assert counts.sum() == n and counts.max() - counts.min() <= 1
    assert not np.all(np.diff(y) >= 0)                 # not sorted by class


def test_every_image_has_a_shape_brighter_than_its_background():
    x, _ = shapes(300, seed=4)
    flat = x.reshape(300, -1)
    bright = np.percentile(flat, 99, axis=1) - np.median(flat, axis=1)
    assert np.all(bright > 0.2)


def nearest_centroid_accuracy(train, test):
    (x, y), (xt, yt) = train, test
    x, xt = x.reshape(len(x), -1), xt.reshape(len(xt), -1)
    centroids = np.stack([x[y == c].mean(axis=0) for c in range(10)])
    distances = ((xt[:, None, :] - centroids[None]) ** 2).sum(axis=2)
    return np.mean(distances.argmin(axis=1) == yt)


def test_classes_are_distinguishable_but_not_by_templates_alone():
    train, test = load_default(n_train=2000, n_test=1000, seed=0)
    accuracy = nearest_centroid_accuracy(train, test)
    assert 0.3 < accuracy < 0.8                        # chance is 0.1; measured about 0.47


def test_load_default_splits_one_draw():
    (x, y), (xt, yt) = load_default(n_train=80, n_test=20, seed=5)
    assert (x.shape[0], xt.shape[0], y.shape[0], yt.shape[0]) == (80, 20, 80, 20)
    xa, ya = shapes(100, seed=5)
    np.testing.assert_array_equal(np.concatenate([x, xt]), xa)
    np.testing.assert_array_equal(np.concatenate([y, yt]), ya)


@pytest.mark.parametrize("n, size", [(-1, 28), (10, 8), (2.5, 28)])
def test_bad_arguments_are_data_errors(n, size):
    with pytest.raises(DataError):
        shapes(n, size=size)
