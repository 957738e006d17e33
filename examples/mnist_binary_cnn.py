"""The tutorial's binary SimpleCNN, ported line by line: MNIST digits 0 vs 1.

    Conv2d(1, 32, 3) -> ReLU -> view(-1, 32*26*26) -> Linear(32*26*26, 128)
    -> Linear(128, 1) -> sigmoid, binary cross-entropy, SGD with momentum 0.9.

The MNIST test set (../shared/data/mnist) is the only MNIST here: its first
8,000 images train, its last 2,000 are held out (the 0s and 1s of each part).

    python examples/mnist_binary_cnn.py [--epochs 2] [--limit 500] [--device cpu]
"""
import os
import time

import numpy as np

import graphc as gc
import graphc.nn as nn
from _common import limited, loaders, parse, parser, report, require, run


class SimpleCNN(nn.Module):
    def __init__(self):
        super(SimpleCNN, self).__init__()
        self.conv1 = nn.Conv2d(1, 32, kernel_size=3)
        self.fc1 = nn.Linear(32 * 26 * 26, 128)
        self.fc2 = nn.Linear(128, 1)

    def forward(self, x):
        x = gc.relu(self.conv1(x))
        x = x.reshape(-1, 32 * 26 * 26)
        x = self.fc1(x)
        x = self.fc2(x)
        return gc.sigmoid(x)


def zeros_and_ones(folder, limit):
    """(train, held-out) pairs (x, y) of the 0s and 1s: first 8,000 images vs the rest."""
    x, y = gc.data.load_mnist(require(os.path.join(folder, "mnist")))
    parts = []
    for part, held_out in ((slice(0, 8000), False), (slice(8000, None), True)):
        keep = np.isin(y[part], (0, 1))
        parts.append(limited(x[part][keep], y[part][keep], limit, held_out))
    return parts


def train(args):
    start = time.perf_counter()
    gc.manual_seed(args.seed)
    train_set, test_set = zeros_and_ones(args.data, args.limit)
    print(f"{len(train_set[1])} training images, {len(test_set[1])} held out (0 vs 1)")
    train_loader, test_loader = loaders(train_set, test_set, args.batch_size, args.seed)

    model = SimpleCNN()
    criterion = gc.nn.binary_cross_entropy
    optimizer = gc.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    trainer = gc.train.Trainer(model, criterion, optimizer, device=args.device)
    trainer.fit(train_loader, epochs=args.epochs)
    return report(trainer.evaluate(test_loader), time.perf_counter() - start)


def main(argv=None):
    args = parse(parser(__doc__.splitlines()[0], epochs=2, batch_size=32, lr=0.01), argv)
    return run(train, args)


if __name__ == "__main__":
    main()
