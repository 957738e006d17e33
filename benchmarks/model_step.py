"""One step of a model beyond BENCHMARKS.md's workloads: graphc's cpu device against
PyTorch eager, each in a worker process, one step of each in turn, median step time of
each:

    python benchmarks/model_step.py --peers-python VENV/bin/python [--model M] [--steps 50]
    python benchmarks/model_step.py --other-path DIR [--model M] [--steps 50]

The second form steps this checkout's graphc against another version's (DIR holds its
`graphc` package, as for benchmarks/paired_steps.py) instead of PyTorch.

Models:
- transformer: a training step of a 2-layer TransformerEncoder (d_model 128, 4 heads,
  feed-forward 512, dropout 0.1, batch_first; batch 32 x 64 tokens; MSE loss; Adam);
- transformer-eval: the same encoder's forward in eval mode (PyTorch: inference_mode,
  its fused fast path);
- lenet: a training step of LeNet-5 on (256, 1, 28, 28) images (convs 1 -> 6 with
  padding 2 and 6 -> 16, 5x5, max pooling, 400-120-84-10, cross-entropy, SGD with
  momentum 0.9);
- resnet: a training step of a CIFAR ResNet-14 on (64, 3, 32, 32) images (a 3x3 stem to
  16 channels, three stages of two basic blocks with 16, 32 and 64 channels, the last two
  starting with stride 2 and a 1x1 projection, batch norm, global average pooling,
  cross-entropy, SGD with momentum 0.9 and weight decay 5e-4);
- resnet-eval: the same network's forward in eval mode.
VENV holds torch (benchmarks/run.py's peers venv). Both use two threads.
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

from in_turn import start_workers, step_in_turn

BATCH, TOKENS, D_MODEL, HEADS, FEED_FORWARD, LAYERS = 32, 64, 128, 4, 512, 2
IMAGES = 256
CIFAR_IMAGES = 64
MODELS = ("transformer", "transformer-eval", "lenet", "resnet", "resnet-eval")


def batch():
    data = np.random.default_rng(0)
    return (data.standard_normal((BATCH, TOKENS, D_MODEL)).astype("float32"),
            data.standard_normal((BATCH, TOKENS, D_MODEL)).astype("float32"))


def images(shape=(IMAGES, 1, 28, 28)):
    data = np.random.default_rng(0)
    return data.standard_normal(shape).astype("float32"), data.integers(0, 10, shape[0])


def lenet(nn):
    """LeNet-5 from `nn`: torch.nn and graphc.nn name the same layers alike."""
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                         nn.Linear(84, 10))


def resnet(nn, relu):
    """A CIFAR ResNet-14 from `nn` and its `relu` function (torch's or graphc's)."""
    class Block(nn.Module):
        def __init__(self, inputs, outputs, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(inputs, outputs, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(outputs)
            self.conv2 = nn.Conv2d(outputs, outputs, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(outputs)
            self.shortcut = nn.Identity()
            if stride != 1 or inputs != outputs:
                self.shortcut = nn.Sequential(nn.Conv2d(inputs, outputs, 1, stride, bias=False),
                                              nn.BatchNorm2d(outputs))

        def forward(self, x):
            out = relu(self.bn1(self.conv1(x)))
            return relu(self.bn2(self.conv2(out)) + self.shortcut(x))

    stages = [Block(16, 16, 1), Block(16, 16, 1), Block(16, 32, 2), Block(32, 32, 1),
              Block(32, 64, 2), Block(64, 64, 1)]
    return nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                         *stages, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))


def torch_step(model_name):
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(2)
    torch.manual_seed(0)
    nn = torch.nn
    if model_name == "lenet":
        model = lenet(nn)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        x, target = (torch.tensor(a) for a in images())
        loss_of = F.cross_entropy
    elif model_name.startswith("resnet"):
        model = resnet(nn, F.relu)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
        x, target = (torch.tensor(a) for a in images((CIFAR_IMAGES, 3, 32, 32)))
        loss_of = F.cross_entropy
    else:
        layer = nn.TransformerEncoderLayer(D_MODEL, HEADS, FEED_FORWARD, 0.1, batch_first=True)
        model = nn.TransformerEncoder(layer, LAYERS, enable_nested_tensor=False)
        optimizer = torch.optim.Adam(model.parameters(), 1e-3)
        x, target = (torch.tensor(a) for a in batch())
        loss_of = F.mse_loss
    if model_name.endswith("-eval"):
        model.eval()

        def forward():
            with torch.inference_mode():
                return float(model(x).flatten()[0])
        return forward

    def step():
        optimizer.zero_grad()
        loss = loss_of(model(x), target)
        loss.backward()
        optimizer.step()
        return loss.item()
    return step


def graphc_step(model_name):
    import graphc as gc
    gc.manual_seed(0)
    nn = gc.nn
    if model_name == "lenet":
        model = lenet(nn)
        x = gc.placeholder((IMAGES, 1, 28, 28), name="x")
        target = gc.placeholder((IMAGES,), "int64", name="target")
        loss = nn.functional.cross_entropy(model(x), target)
        optimizer = gc.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        feeds = images()
    elif model_name.startswith("resnet"):
        model = resnet(nn, nn.functional.relu)
        x = gc.placeholder((CIFAR_IMAGES, 3, 32, 32), name="x")
        feeds = images((CIFAR_IMAGES, 3, 32, 32))
        if model_name == "resnet-eval":
            model.eval()
            forward = gc.compile([model(x)], inputs=[x])
            return lambda: float(forward(feeds[0])[0].flat[0])
        target = gc.placeholder((CIFAR_IMAGES,), "int64", name="target")
        loss = nn.functional.cross_entropy(model(x), target)
        optimizer = gc.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    else:
        layer = nn.TransformerEncoderLayer(D_MODEL, HEADS, FEED_FORWARD, 0.1, batch_first=True)
        model = nn.TransformerEncoder(layer, LAYERS)
        x = gc.placeholder((BATCH, TOKENS, D_MODEL), name="x")
        target = gc.placeholder((BATCH, TOKENS, D_MODEL), name="target")
        feeds = batch()
        if model_name == "transformer-eval":
            model.eval()
            forward = gc.compile([model(x)], inputs=[x])
            return lambda: float(forward(feeds[0])[0][0, 0, 0])
        loss = nn.mse_loss(model(x), target)
        optimizer = gc.optim.Adam(model.parameters(), lr=1e-3)
    step = gc.compile([loss], inputs=[x, target], updates=optimizer.minimize(loss))
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
    against = parser.add_mutually_exclusive_group(required=True)
    against.add_argument("--peers-python", help="a Python with torch")
    against.add_argument("--other-path", help="PYTHONPATH of another graphc to compare")
    parser.add_argument("--model", default="transformer", choices=MODELS)
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args()
    if args.other_path:
        this, other = "graphc", "other"
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        command = [sys.executable, __file__, "--serve", "graphc", args.model]
        workers = start_workers({this: command, other: command}, **{
            this: {"cwd": here},
            other: {"cwd": args.other_path,
                    "env": dict(os.environ, PYTHONPATH=args.other_path)}})
    else:
        this, other = "graphc", "torch"
        workers = start_workers({name: [python, __file__, "--serve", name, args.model]
                                 for name, python in ((other, args.peers_python),
                                                      (this, sys.executable))})
    times = step_in_turn(workers, args.steps)
    medians = {name: statistics.median(t) * 1e3 for name, t in times.items()}
    for name, ms in medians.items():
        print(f"{name:7s} median step {ms:8.1f} ms")
    ratios = [a / b for a, b in zip(times[this], times[other])]
    print(f"{this} / {other} {medians[this] / medians[other]:.2f} (median of the per-step "
          f"ratios {statistics.median(ratios):.3f})")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        serve(lambda: (torch_step if sys.argv[2] == "torch" else graphc_step)(sys.argv[3]))
    else:
        main()
