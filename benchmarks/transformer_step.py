"""One training step of a 2-layer TransformerEncoder (d_model 128, 4 heads, feed-forward
512, dropout 0.1, batch_first; batch 32 x 64 tokens; MSE loss; Adam): graphc's cpu
device against PyTorch eager, each in a worker process, one step of each in turn,
median step time of each:

    python benchmarks/transformer_step.py --peers-python VENV/bin/python [--steps 50]

VENV holds torch (benchmarks/run.py's peers venv). Both use two threads.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

import numpy as np

BATCH, TOKENS, D_MODEL, HEADS, FEED_FORWARD, LAYERS = 32, 64, 128, 4, 512, 2


def batch():
    data = np.random.default_rng(0)
    return (data.standard_normal((BATCH, TOKENS, D_MODEL)).astype("float32"),
            data.standard_normal((BATCH, TOKENS, D_MODEL)).astype("float32"))


def torch_step():
    import torch
    torch.set_num_threads(2)
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(D_MODEL, HEADS, FEED_FORWARD, 0.1,
                                             batch_first=True)
    model = torch.nn.TransformerEncoder(layer, LAYERS, enable_nested_tensor=False)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    x, target = (torch.tensor(a) for a in batch())

    def step():
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), target)
        loss.backward()
        optimizer.step()
        return loss.item()
    return step


def graphc_step():
    import graphc as gc
    gc.manual_seed(0)
    layer = gc.nn.TransformerEncoderLayer(D_MODEL, HEADS, FEED_FORWARD, 0.1, batch_first=True)
    model = gc.nn.TransformerEncoder(layer, LAYERS)
    x = gc.placeholder((BATCH, TOKENS, D_MODEL), name="x")
    target = gc.placeholder((BATCH, TOKENS, D_MODEL), name="target")
    loss = gc.nn.mse_loss(model(x), target)
    optimizer = gc.optim.Adam(model.parameters(), lr=1e-3)
    step = gc.compile([loss], inputs=[x, target], updates=optimizer.minimize(loss))
    feeds = batch()
    return lambda: float(step(*feeds)[0])


def serve(make_step):
    """Worker: build, warm up, then one timed step per line read."""
    step = make_step()
    for _ in range(5):
        step()
    print("ready", flush=True)
    for _ in sys.stdin:
        start = time.perf_counter()
        loss = step()
        print(f"{time.perf_counter() - start} {loss}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers-python", required=True, help="a Python with torch")
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args()
    workers = {name: subprocess.Popen([python, __file__, "--serve", name], text=True,
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE)
               for name, python in (("torch", args.peers_python), ("graphc", sys.executable))}
    for worker in workers.values():
        if worker.stdout.readline().strip() != "ready":
            raise SystemExit("a worker failed to start")
    times = {name: [] for name in workers}
    for i in range(args.steps):
        for name in (("torch", "graphc") if i % 2 else ("graphc", "torch")):
            workers[name].stdin.write("step\n")
            workers[name].stdin.flush()
            times[name].append(float(workers[name].stdout.readline().split()[0]))
    for worker in workers.values():
        worker.stdin.close()
        worker.wait()
    medians = {name: statistics.median(t) * 1e3 for name, t in times.items()}
    for name, ms in medians.items():
        print(f"{name:7s} median step {ms:8.1f} ms")
    print(f"graphc / torch {medians['graphc'] / medians['torch']:.2f}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        serve(torch_step if sys.argv[2] == "torch" else graphc_step)
    else:
        main()
