"""Step time of two versions of graphc side by side: two worker processes, this
checkout's graphc and another one's (through PYTHONPATH), stepping one workload in
turn, so that a slow phase of a shared machine hits both alike:

    python benchmarks/paired_steps.py --other-path DIR [--workload W] [--rounds 200]

DIR holds the other version's `graphc` package (a checkout's, or a folder of links to
it). Workloads: benchmarks/workloads.py's mlp, cnn, rnn, fusion (W1-W4) and latency
(W5: the MLP at batch 1, forward only). Prints each version's median and the median
of the per-round ratios (this / other).
"""
import argparse
import os
import statistics
import sys
import time

from in_turn import start_workers, step_in_turn

HERE = os.path.dirname(os.path.abspath(__file__))


def serve(name):
    """Worker: build and warm up, then time `inner` steps per line read."""
    sys.path.insert(0, HERE)
    import workloads
    latency = name == "latency"
    work = workloads.mlp(batch=1, train=False) if latency else workloads.ALL[name]()
    step = work.compile()
    for _ in range(20):
        step(*work.feeds)
    print("ready", flush=True)
    inner = 200 if latency else 5
    for _ in sys.stdin:
        start = time.perf_counter()
        for _ in range(inner):
            step(*work.feeds)
        print((time.perf_counter() - start) / inner, flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--other-path", required=True, help="PYTHONPATH of the other graphc")
    parser.add_argument("--workload", default="mlp",
                        choices=("mlp", "cnn", "rnn", "fusion", "latency"))
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    environments = {"this": dict(os.environ),
                    "other": dict(os.environ, PYTHONPATH=args.other_path)}
    workers = start_workers(
        {name: [sys.executable, __file__, "--serve", args.workload] for name in environments},
        **{name: {"env": env, "cwd": os.path.dirname(HERE) if name == "this" else args.other_path}
           for name, env in environments.items()})
    times = step_in_turn(workers, args.rounds)
    scale, unit = (1e6, "us") if args.workload == "latency" else (1e3, "ms")
    ratios = [a / b for a, b in zip(times["this"], times["other"])]
    print(f"{args.workload}: this {statistics.median(times['this']) * scale:.2f} {unit}, "
          f"other {statistics.median(times['other']) * scale:.2f} {unit}, median ratio "
          f"this / other {statistics.median(ratios):.3f} over {args.rounds} rounds")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        serve(sys.argv[2])
    else:
        main()
