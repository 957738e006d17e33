"""Inference latency at small batches, where fork/join and per-call costs show:

    mlp: W5's MLP as `workloads.mlp` builds it, `x @ w` with weights stored
         (in, out), the layout of the README's first example (benchmarks/run.py's
         W5 uses peers.py's PyTorch-style layout, `x @ w.T` with w (out, in));
    rnn: W3's recurrence forward (embedding, input projection, 50 tanh steps),
         no loss, returning the last state.

    python benchmarks/latency.py [--workload mlp|rnn] [--batch 1] [--calls N] [--rounds 9]
"""
import argparse
import statistics
import time

import numpy as np

import graphc as gc
import workloads


def mlp(batch):
    work = workloads.mlp(batch=batch, train=False)
    return work.compile(), work.feeds


def rnn(batch, steps=50, vocab=5000, embed=64, hidden=128):
    rng = np.random.default_rng(0)
    ids = gc.placeholder((batch, steps), "int64", name="ids")
    table = gc.variable(rng.standard_normal((vocab, embed)).astype(np.float32) * 0.1)
    w_ih = gc.variable(rng.standard_normal((hidden, embed)).astype(np.float32) * 0.1)
    w_hh = gc.variable(rng.standard_normal((hidden, hidden)).astype(np.float32) * 0.1)
    inputs = gc.nn.embedding(ids, table) @ w_ih.T
    h = gc.constant(np.zeros((batch, hidden), np.float32))
    for t in range(steps):
        h = gc.tanh(inputs[:, t] + h @ w_hh.T)
    return gc.compile([h], inputs=[ids]), [rng.integers(0, vocab, (batch, steps))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", choices=("mlp", "rnn"), default="mlp")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--calls", type=int, default=None, help="calls per round")
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    step, feeds = {"mlp": mlp, "rnn": rnn}[args.workload](args.batch)
    calls = args.calls or (5000 if args.workload == "mlp" else 200)
    for _ in range(calls // 2):                 # compile and warm up
        step(*feeds)
    times = []
    for _ in range(args.rounds):
        start = time.perf_counter()
        for _ in range(calls):
            step(*feeds)
        times.append((time.perf_counter() - start) / calls * 1e6)
    print(f"{args.workload} at batch {args.batch}: median {statistics.median(times):.1f} us "
          f"per call (min {min(times):.1f}) over {args.rounds} rounds of {calls} calls")


if __name__ == "__main__":
    main()
