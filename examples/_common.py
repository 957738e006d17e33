"""What the tutorial examples share: the command line, the data folder, the report.

Every example takes the same options (--epochs, --batch-size, --lr, --device,
--seed, --data, --limit), looks for the project's real data at
`../shared/data` next to the repository, and ends by printing the held-out
accuracy, precision, recall and F1. A missing data folder or a bad data file is
one clear line on stderr and exit status 1, never a traceback.
"""
import argparse
import os
import sys

import numpy as np

import graphc as gc

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.normpath(os.path.join(REPO, os.pardir, "shared", "data"))


def parser(description, epochs, batch_size, lr, data=DATA, data_help=None):
    """The examples' argparse parser with their common options and defaults."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--epochs", type=int, default=epochs, help=f"epochs (default {epochs})")
    p.add_argument("--batch-size", type=int, default=batch_size,
                   help=f"samples per batch (default {batch_size})")
    p.add_argument("--lr", type=float, default=lr, help=f"learning rate (default {lr})")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda", "reference"),
                   help="where gc.compile runs the steps (default cpu)")
    p.add_argument("--seed", type=int, default=0, help="seed of weights, split, shuffling")
    p.add_argument("--data", default=data, help=data_help or f"data folder (default {data})")
    p.add_argument("--limit", type=int, default=None,
                   help="at most this many training samples, and a quarter as many "
                        "held out (a quick run)")
    return p


def parse(p, argv, positive=("epochs", "batch_size", "limit")):
    """p.parse_args(argv), with the options named in `positive` (when given) >= 1."""
    args = p.parse_args(argv)
    for name in positive:
        value = getattr(args, name)
        if value is not None and value < 1:
            p.error(f"--{name.replace('_', '-')} must be a positive int, got {value}")
    return args


def fail(message):
    """Exit with one line on stderr, as argparse does for a bad argument."""
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "example"
    sys.exit(f"{name}: error: {message}")


def require(path, what="data folder"):
    """`path` if it exists, else exit with one clear line."""
    if not os.path.exists(path):
        fail(f"{what} not found: {path} (pass --data DIR)")
    return path


def run(main_body, args):
    """main_body(args) -> result, with graphc's errors (bad data, a device that is not
    there, ...) as one line."""
    try:
        return main_body(args)
    except gc.GraphcError as error:
        fail(str(error).splitlines()[0])


def limited(x, y, limit, held_out=False):
    """The first `limit` samples (a quarter as many when `held_out`; all when None)."""
    if limit is None:
        return x, y
    n = max(limit // 4, 1) if held_out else limit
    return x[:n], y[:n]


EVAL_BATCH = 512       # held-out batches: each new batch shape costs one more compile


def loaders(train, test, batch_size, seed):
    """A shuffled training loader and an in-order held-out loader."""
    return (gc.data.DataLoader(train, batch_size=batch_size, shuffle=True, seed=seed),
            gc.data.DataLoader(test, batch_size=EVAL_BATCH))


def report(scores, seconds):
    """Print the held-out metrics; returns them with the wall time, for tests."""
    print(f"held-out: accuracy {scores['accuracy']:.4f}  precision {scores['precision']:.4f}"
          f"  recall {scores['recall']:.4f}  f1 {scores['f1']:.4f}  "
          f"({scores['samples']} samples; {seconds:.1f} s in all)")
    print("confusion matrix (rows: true, columns: predicted):")
    print(np.array2string(np.asarray(scores["confusion_matrix"]), max_line_width=120))
    return dict(scores, seconds=seconds)
