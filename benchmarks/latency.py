"""Batch-1 inference latency of W5's MLP as `workloads.mlp` builds it: `x @ w` with
weights stored (in, out), the layout of the README's first example. (benchmarks/run.py's
W5 uses peers.py's PyTorch-style layout, `x @ w.T` with w (out, in).)

    python benchmarks/latency.py [--calls 5000] [--rounds 9]     # median us per call
"""
import argparse
import statistics
import time

import workloads


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    work = workloads.mlp(batch=1, train=False)
    step, (x,) = work.compile(), work.feeds
    for _ in range(args.calls // 2):            # compile and warm up
        step(x)
    times = []
    for _ in range(args.rounds):
        start = time.perf_counter()
        for _ in range(args.calls):
            step(x)
        times.append((time.perf_counter() - start) / args.calls * 1e6)
    print(f"W5 with (in, out) weights: median {statistics.median(times):.1f} us per call "
          f"(min {min(times):.1f}) over {args.rounds} rounds of {args.calls} calls")


if __name__ == "__main__":
    main()
