"""W2's training step (benchmarks/workloads.py: conv 3x3, ReLU, conv 3x3, ReLU,
max pool 2, Linear, ReLU, Linear, cross-entropy, SGD with momentum 0.9) at a
size the CUDA simulator runs in seconds: 1 -> 2 -> 3 channels on 8x8 images,
3 * 2 * 2 = 12 -> 5 -> 4, batch 2."""
import numpy as np

import graphc as gc
from helpers import load_workloads

workloads = load_workloads()


def cnn(batch=2, image=8, channels=(1, 2, 3), hidden=5, classes=4, seed=0):
    """(workload, feeds) built in the current default graph."""
    rng = np.random.default_rng(seed)

    def uniform(shape, fan_in):
        bound = 1 / np.sqrt(fan_in)
        return gc.variable(rng.uniform(-bound, bound, shape).astype("float32"))

    c0, c1, c2 = channels
    x = gc.placeholder((None, c0, image, image), name="x")
    y = gc.placeholder((None,), "int64", name="y")
    w1, b1 = uniform((c1, c0, 3, 3), 9 * c0), uniform((c1,), 9 * c0)
    w2, b2 = uniform((c2, c1, 3, 3), 9 * c1), uniform((c2,), 9 * c1)
    flat = c2 * ((image - 4) // 2) ** 2
    w3, b3 = uniform((flat, hidden), flat), uniform((hidden,), flat)
    w4, b4 = uniform((hidden, classes), hidden), uniform((classes,), hidden)
    h = gc.relu(gc.nn.conv2d(x, w1, b1))
    h = gc.relu(gc.nn.conv2d(h, w2, b2))
    h = gc.reshape(gc.nn.max_pool2d(h, 2), (-1, flat))
    logits = gc.relu(h @ w3 + b3) @ w4 + b4
    loss = gc.nn.cross_entropy(logits, y)
    params = [w1, b1, w2, b2, w3, b3, w4, b4]
    updates = workloads.sgd_momentum(params, gc.grad(loss, params))
    feeds = [rng.standard_normal((batch, c0, image, image)).astype("float32"),
             rng.integers(0, classes, batch)]
    return workloads.Workload("W2 small", [x, y], feeds, [loss], params, updates), feeds
