"""The tutorial's image-classification CNN, on the ten MNIST digits.

    [Conv2d(3x3, padding 1) -> ReLU -> MaxPool2d(2)] x 2 -> Flatten
    -> Linear -> ReLU -> Dropout -> Linear(10), cross entropy, SGD with momentum.

The MNIST test set (../shared/data/mnist) is the only MNIST here: its first
8,000 images train, its last 2,000 are held out.

    python examples/mnist_cnn.py [--epochs 8] [--limit 500] [--device cpu]
"""
import os
import time

import graphc as gc
import graphc.nn as nn
from _common import limited, loaders, parse, parser, report, require, run


class CNN(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(32 * 7 * 7, 128), nn.ReLU(), nn.Dropout(0.25),
            nn.Linear(128, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))


def mnist(folder, limit):
    """(train, held-out) pairs (x, y): the first 8,000 test-set images vs the last 2,000."""
    x, y = gc.data.load_mnist(require(os.path.join(folder, "mnist")))
    train_set = limited(x[:8000], y[:8000], limit)
    return train_set, limited(x[8000:], y[8000:], limit, held_out=True)


def train(args):
    start = time.perf_counter()
    gc.manual_seed(args.seed)
    train_set, test_set = mnist(args.data, args.limit)
    print(f"{len(train_set[1])} training images, {len(test_set[1])} held out")
    train_loader, test_loader = loaders(train_set, test_set, args.batch_size, args.seed)

    model = CNN()
    optimizer = gc.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    trainer = gc.train.Trainer(model, gc.nn.cross_entropy, optimizer, device=args.device)
    trainer.fit(train_loader, epochs=args.epochs)
    return report(trainer.evaluate(test_loader), time.perf_counter() - start)


def main(argv=None):
    args = parse(parser(__doc__.splitlines()[0], epochs=8, batch_size=64, lr=0.05), argv)
    return run(train, args)


if __name__ == "__main__":
    main()
