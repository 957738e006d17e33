"""What dropout costs a CPU training step: W1 (benchmarks/workloads.py) against W1
with dropout(0.2) after its first layer, timed in turn in one process.

    python benchmarks/dropout_step.py [--steps 300]

Prints each step's median time and the ratio, and which driver ran each step
(both should be "njit": the random draw runs inside the compiled step).
"""
import argparse
import statistics
import time

import numpy as np

import graphc as gc
import workloads


def build(dropout):
    """W1's step (784-512-256-10, batch 128, SGD with momentum), optionally with dropout."""
    rng = np.random.default_rng(0)
    x = gc.placeholder((None, 784), name="x")
    y = gc.placeholder((None,), "int64", name="y")
    h, p1 = workloads._linear(rng, x, 784, 512, "fc1")
    h = gc.relu(h)
    if dropout:
        h = gc.nn.dropout(h, p=0.2)
    h, p2 = workloads._linear(rng, h, 512, 256, "fc2")
    logits, p3 = workloads._linear(rng, gc.relu(h), 256, 10, "fc3")
    params = p1 + p2 + p3
    loss = gc.nn.cross_entropy(logits, y)
    updates = workloads.sgd_momentum(params, gc.grad(loss, params))
    step = gc.compile([loss], inputs=[x, y], updates=updates, device="cpu")
    feeds = [rng.standard_normal((128, 784)).astype(np.float32), rng.integers(0, 10, 128)]
    return step, feeds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    steps = {}
    for name, dropout in (("W1", False), ("W1 + dropout", True)):
        with gc.Graph(name):
            step, feeds = build(dropout)
            for _ in range(3):
                step(*feeds)
            steps[name] = (step, feeds)
    times = {name: [] for name in steps}
    for _ in range(args.steps):
        for name, (step, feeds) in steps.items():
            start = time.perf_counter()
            step(*feeds)
            times[name].append(time.perf_counter() - start)
    medians = {name: 1e3 * statistics.median(t) for name, t in times.items()}
    for name, (step, _) in steps.items():
        print(f"{name:14s} {medians[name]:.3f} ms per step ({step.stats['driver']} driver)")
    print(f"ratio {medians['W1 + dropout'] / medians['W1']:.3f}")


if __name__ == "__main__":
    main()
