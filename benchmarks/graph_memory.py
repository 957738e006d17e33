"""Memory a process keeps per distinct graph it compiled and ran: N small training
steps (a 64-h-10 MLP with cross-entropy and SGD, h = 9 ... 8 + N) compiled and run
once each; prints the resident memory grown per graph after the first.

    python benchmarks/graph_memory.py [--graphs 30] [--cache DIR]

With a new cache folder every graph compiles cold; run it a second time with the
same --cache for the warm figure.
"""
import argparse
import gc as collector
import os
import tempfile

import numpy as np


def resident_mb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


def train_once(gc, hidden):
    with gc.Graph(f"hidden {hidden}"):
        x = gc.placeholder((32, 64), name="x")
        y = gc.placeholder((32,), "int64", name="y")
        w1 = gc.variable(np.full((64, hidden), 0.01, np.float32), name="w1")
        w2 = gc.variable(np.full((hidden, 10), 0.01, np.float32), name="w2")
        loss = gc.nn.cross_entropy(gc.relu(x @ w1) @ w2, y)
        g1, g2 = gc.grad(loss, [w1, w2])
        step = gc.compile([loss], inputs=[x, y], updates={w1: w1 - 0.1 * g1, w2: w2 - 0.1 * g2})
        step(np.ones((32, 64), np.float32), np.zeros(32, np.int64))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graphs", type=int, default=30)
    parser.add_argument("--cache", help="the compile cache folder (default: a new one)")
    args = parser.parse_args()
    os.environ["GRAPHC_CACHE_DIR"] = args.cache or tempfile.mkdtemp(prefix="graphc-memory-")
    import graphc as gc
    train_once(gc, 8)
    collector.collect()
    start = resident_mb()
    for hidden in range(9, 9 + args.graphs):
        train_once(gc, hidden)
    collector.collect()
    print(f"{args.graphs} graphs: {(resident_mb() - start) / args.graphs:.2f} MB each")


if __name__ == "__main__":
    main()
