"""W1's training step (benchmarks/workloads.py: Linear-ReLU-Linear-ReLU-Linear,
cross-entropy, SGD with momentum 0.9) at a size the CUDA simulator runs in a
second: 12-8-6-4, batch 8."""
import numpy as np

import graphc as gc
from helpers import load_workloads

workloads = load_workloads()


def mlp(sizes=(12, 8, 6, 4), batch=8, seed=0):
    """(workload, feeds) built in the current default graph."""
    rng = np.random.default_rng(seed)
    x = gc.placeholder((None, sizes[0]), name="x")
    y = gc.placeholder((None,), "int64", name="y")
    h, params = x, []
    for i, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:])):
        bound = 1 / np.sqrt(fan_in)
        w = gc.variable(rng.uniform(-bound, bound, (fan_in, fan_out)).astype("float32"),
                        name=f"fc{i + 1}_w")
        b = gc.variable(rng.uniform(-bound, bound, fan_out).astype("float32"), name=f"fc{i + 1}_b")
        h = (gc.relu(h) if i else h) @ w + b
        params += [w, b]
    loss = gc.nn.cross_entropy(h, y)
    updates = workloads.sgd_momentum(params, gc.grad(loss, params))
    feeds = [rng.standard_normal((batch, sizes[0])).astype("float32"),
             rng.integers(0, sizes[-1], batch)]
    return workloads.Workload("W1 small", [x, y], feeds, [loss], params, updates), feeds
