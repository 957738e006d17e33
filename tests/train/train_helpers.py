"""Data and models the trainer tests share; the resume test's child process
imports them too, so both processes build the very same run."""
import numpy as np

import graphc as gc


def teacher_data(n, features=8, classes=3, seed=0):
    """x (n, features) float32 and y = argmax(x @ W) for a fixed random W.

    The classes are linear regions, so the MLP below can fit them exactly:
    chance is 1 / classes, and a few epochs of SGD reach over 90% (measured)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, features)).astype(np.float32)
    w = np.random.default_rng(1234).standard_normal((features, classes))
    return x, np.argmax(x @ w, axis=1).astype(np.int64)


class MLP(gc.nn.Module):
    """Linear -> BatchNorm1d -> ReLU -> Dropout -> Linear: every kind of state."""

    def __init__(self, features=8, hidden=32, classes=3, p=0.2):
        super().__init__()
        self.fc1 = gc.nn.Linear(features, hidden)
        self.bn = gc.nn.BatchNorm1d(hidden)
        self.drop = gc.nn.Dropout(p)
        self.fc2 = gc.nn.Linear(hidden, classes)

    def forward(self, x):
        return self.fc2(self.drop(gc.nn.relu(self.bn(self.fc1(x)))))


def loader(x, y, batch_size=32, shuffle=False, seed=0, drop_last=False):
    return gc.data.DataLoader((x, y), batch_size=batch_size, shuffle=shuffle, seed=seed,
                              drop_last=drop_last)
