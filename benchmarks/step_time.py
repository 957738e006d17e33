"""Median step time of benchmarks/workloads.py's W1-W4 in this process, for A/B runs of
two versions of graphc (alternate the processes; the other version through PYTHONPATH):

    python benchmarks/step_time.py --workloads mlp,cnn,rnn,fusion --steps 150
"""
import argparse
import os
import statistics
import sys
import time

import graphc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import workloads  # noqa: E402


def step_ms(name, steps):
    w = workloads.ALL[name]()
    step = w.compile()
    for _ in range(10):                 # compile, load, warm the caches
        step(*w.feeds)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step(*w.feeds)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default="mlp,cnn,rnn,fusion")
    parser.add_argument("--steps", type=int, default=150)
    args = parser.parse_args()
    names = args.workloads.split(",")
    unknown = [n for n in names if n not in workloads.ALL]
    if unknown:
        parser.error(f"unknown workloads {unknown}; choose from {sorted(workloads.ALL)}")
    print(graphc.__file__, " ".join(f"{n} {step_ms(n, args.steps):.3f} ms" for n in names))


if __name__ == "__main__":
    main()
