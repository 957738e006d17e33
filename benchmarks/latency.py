"""Inference latency at small batches, where fork/join and per-call costs show:

    mlp: W5's MLP as `workloads.mlp` builds it, `x @ w` with weights stored
         (in, out), the layout of the README's first example (benchmarks/run.py's
         W5 uses peers.py's PyTorch-style layout, `x @ w.T` with w (out, in));
    rnn: W3's recurrence alone (embedding, 50 tanh steps), returning the last state.

    python benchmarks/latency.py [--workload mlp|rnn] [--batch 1] [--calls N] [--rounds 9]
"""
import argparse
import statistics
import time

import workloads


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", choices=("mlp", "rnn"), default="mlp")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--calls", type=int, default=None, help="calls per round")
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    work = workloads.ALL[args.workload](batch=args.batch, train=False)
    step = work.compile()
    calls = args.calls or (5000 if args.workload == "mlp" else 200)
    for _ in range(calls // 2):                 # compile and warm up
        step(*work.feeds)
    times = []
    for _ in range(args.rounds):
        start = time.perf_counter()
        for _ in range(calls):
            step(*work.feeds)
        times.append((time.perf_counter() - start) / calls * 1e6)
    print(f"{args.workload} at batch {args.batch}: median {statistics.median(times):.1f} us "
          f"per call (min {min(times):.1f}) over {args.rounds} rounds of {calls} calls")


if __name__ == "__main__":
    main()
