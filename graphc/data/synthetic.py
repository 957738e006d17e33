"""The default dataset: procedurally drawn shapes, generated in NumPy (no download).

Ten classes of shapes, each drawn from a signed distance function (negative
inside the shape, in pixels) and anti-aliased over one pixel:

    0 disk          1 square        2 triangle      3 cross         4 horizontal bar
    5 vertical bar  6 diagonal      7 ring          8 two dots      9 L-shape

Each image draws its own centre, size, stroke thickness, rotation (a small
jitter for the oriented shapes, any angle for the round ones and the dots),
contrast, background level and Gaussian pixel noise, and a third of the
images carry a short distracting stroke. The classes are therefore told apart
by local structure at any position: a small CNN learns them easily, an MLP or
a linear model, which must learn every position separately, does clearly worse.
"""
import numpy as np

from graphc.data.errors import DataError

__all__ = ["shapes", "load_default", "SHAPE_CLASSES"]

SHAPE_CLASSES = ("disk", "square", "triangle", "cross", "horizontal bar", "vertical bar",
                 "diagonal", "ring", "two dots", "L-shape")
_ROUND = (0, 7, 8)                       # classes drawn at any rotation


def _box(u, v, half_u, half_v):
    return np.maximum(np.abs(u) - half_u, np.abs(v) - half_v)


def _disk(u, v, radius):
    return np.sqrt(u * u + v * v) - radius


def _triangle(u, v, s):
    """An upright equilateral triangle of circumradius s (image v points down)."""
    return np.maximum.reduce([v - s / 2, -0.866 * u - 0.5 * v - s / 2,
                              0.866 * u - 0.5 * v - s / 2])


def _sdf(label, u, v, s, t, flip):
    """Signed distance to shape `label` at (u, v) (pixels from its centre, rotated)."""
    if label == 0:
        return _disk(u, v, 0.8 * s)
    if label == 1:
        return _box(u, v, 0.75 * s, 0.75 * s)
    if label == 2:
        return _triangle(u, v, s)
    if label == 3:
        return np.minimum(_box(u, v, s, t / 2), _box(u, v, t / 2, s))
    if label == 4:
        return _box(u, v, s, t / 2)
    if label == 5:
        return _box(u, v, t / 2, s)
    if label == 6:
        along, across = (u + flip * v) * 0.7071, (v - flip * u) * 0.7071
        return _box(along, across, s, t / 2)
    if label == 7:
        return np.abs(_disk(u, v, 0.8 * s)) - t / 2
    if label == 8:
        radius = 0.4 * t + 1.2
        return np.minimum(_disk(u - 0.6 * s, v, radius), _disk(u + 0.6 * s, v, radius))
    return np.minimum(_box(u + 0.6 * s, v, t / 2, s), _box(u, v - s, 0.6 * s, t / 2))


def _column(a):
    """Per-image parameters as float32 (n, 1, 1), to broadcast over the pixels."""
    return np.asarray(a, np.float32)[:, None, None]


def _draw(labels, size, rng):
    """Anti-aliased shapes, float32 (n, size, size) in [0, 1]; `labels` sorted, so
    each class is one contiguous slice drawn by one vectorized call."""
    n, scale = len(labels), size / 28.0
    s = rng.uniform(6.0, 11.0, n) * scale
    t = rng.uniform(1.5, 3.5, n) * scale
    cx = rng.uniform(s + 1.0, size - s - 1.0)
    cy = rng.uniform(s + 1.0, size - s - 1.0)
    angle = np.where(np.isin(labels, _ROUND), rng.uniform(0, np.pi, n),
                     rng.uniform(-0.25, 0.25, n))
    flip = rng.choice([-1.0, 1.0], n)
    grid = np.arange(size, dtype=np.float32) + 0.5
    ink = np.empty((n, size, size), np.float32)
    bounds = np.searchsorted(labels, np.arange(11))
    for label in range(10):
        part = slice(bounds[label], bounds[label + 1])
        dx = grid[None, None, :] - _column(cx[part])
        dy = grid[None, :, None] - _column(cy[part])
        cos, sin = _column(np.cos(angle[part])), _column(np.sin(angle[part]))
        sdf = _sdf(label, cos * dx + sin * dy, cos * dy - sin * dx,
                   _column(s[part]), _column(t[part]), _column(flip[part]))
        np.clip(0.5 - sdf, 0.0, 1.0, out=ink[part])
    return ink


def _add_distractors(ink, rng):
    """Short thin strokes at random places on a third of the images, in place."""
    n, size = ink.shape[0], ink.shape[1]
    scale = size / 28.0
    cx, cy = rng.uniform(0, size, n), rng.uniform(0, size, n)
    angle = rng.uniform(0, np.pi, n)
    keep = rng.random(n) < 1 / 3
    grid = np.arange(size, dtype=np.float32) + 0.5
    dx, dy = grid[None, None, :] - _column(cx[keep]), grid[None, :, None] - _column(cy[keep])
    cos, sin = _column(np.cos(angle[keep])), _column(np.sin(angle[keep]))
    stroke = _box(cos * dx + sin * dy, cos * dy - sin * dx, 2.5 * scale, 0.6 * scale)
    ink[keep] = np.maximum(ink[keep], 0.7 * np.clip(0.5 - stroke, 0.0, 1.0))


def shapes(n, size=28, seed=0):
    """`n` images of the ten shape classes: x float32 (n, 1, size, size) in [0, 1],
    y int64 (n,). Classes are balanced (counts differ by at most one) and in random
    order; the same (n, size, seed) always gives the same arrays."""
    if not isinstance(n, (int, np.integer)) or n < 0:
        raise DataError(f"shapes: n must be a non-negative int, got {n!r}")
    if not isinstance(size, (int, np.integer)) or size < 12:
        raise DataError(f"shapes: size must be an int >= 12, got {size!r}")
    rng = np.random.default_rng(seed)
    y = np.arange(n, dtype=np.int64) * 10 // max(n, 1)          # sorted, balanced
    ink = _draw(y, size, rng)
    _add_distractors(ink, rng)
    contrast = _column(rng.uniform(0.6, 1.0, n))
    background = _column(rng.uniform(0.0, 0.2, n))
    noise = _column(rng.uniform(0.05, 0.2, n))
    x = rng.standard_normal(ink.shape, dtype=np.float32)
    x *= noise
    x += background
    x += contrast * ink
    np.clip(x, 0.0, 1.0, out=x)
    order = rng.permutation(n)
    return x[order, None], y[order]


def load_default(n_train=8000, n_test=2000, seed=0):
    """The `graphc train` default dataset: `(x_train, y_train), (x_test, y_test)` of
    `shapes`, one draw split in two, so both parts follow the same distribution."""
    x, y = shapes(n_train + n_test, seed=seed)
    return (x[:n_train], y[:n_train]), (x[n_train:], y[n_train:])
