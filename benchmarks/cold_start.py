"""A cold first step: graphc's compile cache empty, one model built, compiled and
stepped once in this process; prints the seconds each part took.

    python benchmarks/cold_start.py [--model M] [--cache DIR] [--steps K]

Models: the workloads W1-W4 (mlp, cnn, rnn, fusion; benchmarks/workloads.py),
benchmarks/model_step.py's (transformer, transformer-eval, lenet, resnet,
resnet-eval) and lstm (nn.LSTM(32, 128) unrolled over 100 steps, batch 32, a
Linear on the last step, MSE, Adam). The cache is a new temporary folder unless
--cache names one (a second run with the same folder is a warm start). Time the
whole process from outside to include Python's and graphc's imports, e.g.
`/usr/bin/time -v python benchmarks/cold_start.py --model rnn`. Runtime kernels
(runtime/cpu/library.py) are cached by Numba beside graphc's sources, so they
are warm after graphc's first run on a machine.
"""
import argparse
import os
import sys
import tempfile
import time

start = time.perf_counter()
WORKLOADS = ("mlp", "cnn", "rnn", "fusion")


def lstm_step(gc):
    import numpy as np
    batch, steps, features, hidden = 32, 100, 32, 128
    gc.manual_seed(0)
    lstm, head = gc.nn.LSTM(features, hidden, batch_first=True), gc.nn.Linear(hidden, 1)
    x = gc.placeholder((batch, steps, features), name="x")
    y = gc.placeholder((batch, 1), name="y")
    out, _ = lstm(x)
    loss = gc.nn.mse_loss(head(out[:, -1]), y)
    params = list(lstm.parameters()) + list(head.parameters())
    step = gc.compile([loss], inputs=[x, y], updates=gc.optim.Adam(params).minimize(loss))
    data = np.random.default_rng(0)
    feeds = [data.standard_normal(s).astype("float32") for s in (x.shape, y.shape)]
    return lambda: step(*feeds)


def build(model):
    import graphc as gc
    if model in WORKLOADS:
        import workloads
        work = workloads.ALL[model]()
        step = work.compile()
        return lambda: step(*work.feeds)
    if model == "lstm":
        return lstm_step(gc)
    import model_step
    return model_step.graphc_step(model)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="rnn", choices=WORKLOADS + ("lstm",) + (
        "transformer", "transformer-eval", "lenet", "resnet", "resnet-eval"))
    parser.add_argument("--cache", help="the compile cache folder (default: a new one)")
    parser.add_argument("--steps", type=int, default=1, help="steps after the first")
    args = parser.parse_args()
    os.environ["GRAPHC_CACHE_DIR"] = args.cache or tempfile.mkdtemp(prefix="graphc-cold-")
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    imported = time.perf_counter()
    __import__("graphc")
    built = time.perf_counter()
    step = build(args.model)
    compiled = time.perf_counter()
    step()
    first = time.perf_counter()
    for _ in range(args.steps):
        step()
    done = time.perf_counter()
    print(f"{args.model}: import {built - imported:.2f} s, build and compile "
          f"{compiled - built:.2f} s, first step {first - compiled:.2f} s, "
          f"then {(done - first) / max(args.steps, 1) * 1e3:.1f} ms a step; "
          f"{done - start:.2f} s in all")


if __name__ == "__main__":
    main()
