"""An MLP on graphc's default dataset: ten classes of generated shapes, 28x28.

    Flatten -> Linear(784, 256) -> ReLU -> Dropout -> Linear(256, 128) -> ReLU
    -> Linear(128, 10), cross entropy, Adam.

The dataset is drawn by graphc.data.synthetic.load_default (8,000 training
and 2,000 held-out images; nothing to download). A shape can sit anywhere in
the image and an MLP must learn every position separately: it does clearly
worse here than a CNN (see `graphc train`). With --data DIR it trains on an
image folder instead (one subfolder per class, as torchvision's ImageFolder),
read in grayscale at 28x28 and split 80/20.

    python examples/mlp_default.py [--epochs 10] [--limit 500] [--data DIR]
"""
import time

import graphc as gc
import graphc.nn as nn
from _common import limited, loaders, parse, parser, report, require, run


class MLP(nn.Module):
    def __init__(self, in_features=28 * 28, hidden=(256, 128), num_classes=10):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_features, hidden[0]), nn.ReLU(), nn.Dropout(0.2),
            nn.Linear(hidden[0], hidden[1]), nn.ReLU(),
            nn.Linear(hidden[1], num_classes))

    def forward(self, x):
        return self.layers(x)


def images(folder, seed):
    """(train, held-out, class names): the generated shapes, or an image folder's."""
    if folder is None:
        train_set, test_set = gc.data.load_default(seed=seed)
        return train_set, test_set, gc.data.SHAPE_CLASSES
    dataset = gc.data.ImageFolder(require(folder), size=(28, 28), grayscale=True)
    train_part, test_part = gc.data.random_split(dataset, [0.8, 0.2], seed=seed)
    return train_part[:], test_part[:], dataset.classes


def train(args):
    start = time.perf_counter()
    gc.manual_seed(args.seed)
    (x, y), (x_test, y_test), classes = images(args.data, args.seed)
    train_set = limited(x, y, args.limit)
    test_set = limited(x_test, y_test, args.limit, held_out=True)
    print(f"{len(train_set[1])} training images, {len(test_set[1])} held out, "
          f"classes: {', '.join(classes)}")
    train_loader, test_loader = loaders(train_set, test_set, args.batch_size, args.seed)

    model = MLP(num_classes=len(classes))
    optimizer = gc.optim.Adam(model.parameters(), lr=args.lr)
    trainer = gc.train.Trainer(model, gc.nn.cross_entropy, optimizer, device=args.device)
    trainer.fit(train_loader, epochs=args.epochs)
    return report(trainer.evaluate(test_loader), time.perf_counter() - start)


def main(argv=None):
    p = parser(__doc__.splitlines()[0], epochs=10, batch_size=64, lr=1e-3, data=None,
               data_help="an image folder to train on instead of the generated shapes")
    return run(train, parse(p, argv))


if __name__ == "__main__":
    main()
