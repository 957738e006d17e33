"""How long building and differentiating a big graph takes.

An Elman RNN (embedding 64, hidden 128, tanh) unrolled over 200 steps, a
linear head and BCE-with-logits loss, then gc.grad for every parameter.
Target (issue 2): under 2 seconds. Prints the median of several repeats.

    python benchmarks/graph_build_rnn.py [--steps 200] [--hidden 128] [--repeats 5]
"""
import argparse
import statistics
import time

import numpy as np

import graphc as gc


def build_and_differentiate(steps, hidden, embed=64, vocab=5000):
    rng = np.random.default_rng(0)
    with gc.Graph("rnn") as graph:
        ids = gc.placeholder((None, steps), "int64", name="ids")
        labels = gc.placeholder((None,), "float32", name="labels")
        table = gc.variable(rng.normal(0, 1, (vocab, embed)).astype(np.float32), name="embedding")
        w_ih = gc.variable(rng.normal(0, 0.1, (embed, hidden)).astype(np.float32), name="w_ih")
        w_hh = gc.variable(rng.normal(0, 0.1, (hidden, hidden)).astype(np.float32), name="w_hh")
        b_h = gc.variable(np.zeros(hidden, np.float32), name="b_h")
        w_out = gc.variable(rng.normal(0, 0.1, (hidden, 1)).astype(np.float32), name="w_out")
        x = gc.nn.embedding(ids, table)                     # (N, T, E)
        h = gc.zeros((1, hidden))
        for t in range(steps):
            h = gc.tanh(x[:, t] @ w_ih + h @ w_hh + b_h)
        logits = gc.reshape(h @ w_out, (-1,))
        loss = gc.nn.binary_cross_entropy_with_logits(logits, labels)
        params = [table, w_ih, w_hh, b_h, w_out]
        grads = gc.grad(loss, params)
        return len(graph), grads


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        nodes, _ = build_and_differentiate(args.steps, args.hidden)
        times.append(time.perf_counter() - start)
    print(f"RNN {args.steps} steps, hidden {args.hidden}: {nodes} nodes built and differentiated")
    print(f"seconds: median {statistics.median(times):.3f}, min {min(times):.3f}, "
          f"max {max(times):.3f} over {args.repeats} runs (target < 2 s)")


if __name__ == "__main__":
    main()
