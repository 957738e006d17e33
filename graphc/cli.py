"""The `graphc` command (also `python -m graphc`).

    graphc train [--model cnn|mlp|rnn|lstm|gru|transformer] [--data PATH] [--epochs N] ...
    graphc info
    graphc cache [info|path|clear]
    graphc viz SCRIPT.py [--stage STAGE ...] [-o OUT] [-- ARGS...]

`main(argv)` returns the exit status: 0 on success, 1 when the data, a file
or the training refused (a `gc.GraphcError` or an `OSError`), 2 for a bad
argument. Either failure is one line on stderr, `graphc: error: ...`; any
other exception is a bug and keeps its traceback.
"""
import argparse
import json
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

DEFAULT_EPOCHS = {"images": 3, "sentences": 6}
DEFAULT_LR = {"adam": 2e-3, "sgd": 0.05}
MAX_MATRIX = 20                 # classes; a bigger confusion matrix is only in metrics.json
PICTURES = [    # (the trainer's executable, file, gc.viz stage, what it shows)
    ("train_step", "train_step_fused.svg", "fused", "the training step's kernels"),
    ("train_step", "train_step_fused.html", "fused", "the same, with details"),
    ("train_step", "train_step_memory.svg", "memory", "its memory plan"),
    ("eval_step", "model_built.svg", "built", "the model as built")]


GLOBAL_OPTIONS = ("-h", "--help", "--version")


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line: `graphc: error: ...`, status 2."""

    def error(self, message):
        print(f"graphc: error: {self.prog}: {message} (see '{self.prog} --help')",
              file=sys.stderr)
        sys.exit(2)


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or not np.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def parser():
    p = _Parser(prog="graphc", description="graphc: a static-graph deep-learning compiler.")
    p.add_argument("--version", action="version", version=f"graphc {_version()}")
    commands = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_train(commands)
    info = commands.add_parser("info", help="versions, threads, BLAS, CUDA and the cache",
                               description="Print graphc's version, its dependencies' "
                               "versions, Numba's threads, the BLAS, CUDA and the cache.")
    info.set_defaults(run=run_info)
    cache = commands.add_parser("cache", help="the compile cache: info, path or clear",
                                description="Show (info, the default), print (path) or "
                                "empty (clear) the compile cache folder ($GRAPHC_CACHE_DIR).")
    cache.add_argument("action", nargs="?", default="info", choices=("info", "path", "clear"))
    cache.set_defaults(run=run_cache)
    commands.add_parser("viz", help="run a script and dump pictures of every graph it "
                        "compiles (see 'graphc viz --help')", add_help=False)
    return p


def _add_train(commands):
    from graphc.cli_models import MODELS
    t = commands.add_parser(
        "train", help="train a small model and report its metrics",
        description="Train a small model, report accuracy, precision, recall and F1 on "
        "held-out data, and write a checkpoint and pictures of the compiled step to --out. "
        "With no arguments: a small CNN on generated shapes (no download).")
    t.add_argument("--model", choices=MODELS, help="cnn or mlp for images; rnn, lstm, gru or "
                   "transformer for sentences (default: cnn for images, lstm for sentences)")
    t.add_argument("--data", metavar="PATH", help="a folder of MNIST idx files, a labelled-"
                   "sentences .txt file (sentence<TAB>label lines) or a folder of them, or an "
                   "image folder with one subfolder per class (default: generated shapes)")
    t.add_argument("--epochs", type=_positive_int, help="default: %s" % ", ".join(
        f"{v} for {k}" for k, v in DEFAULT_EPOCHS.items()))
    t.add_argument("--batch-size", type=_positive_int, default=32, help="default: 32")
    t.add_argument("--optimizer", choices=("adam", "sgd"), default="adam",
                   help="adam, or sgd with momentum 0.9 (default: adam)")
    t.add_argument("--lr", type=_positive_float, help="learning rate (default: %s)" % ", ".join(
        f"{v} for {k}" for k, v in DEFAULT_LR.items()))
    t.add_argument("--device", choices=("cpu", "cuda", "reference"), default="cpu",
                   help="cpu: the compiler; cuda: its numba.cuda kernels (a GPU, or Numba's "
                   "simulator with NUMBA_ENABLE_CUDASIM=1); reference: the NumPy "
                   "interpreter (default: cpu)")
    t.add_argument("--seed", type=int, default=0, help="seeds the weights, the split and "
                   "the shuffling (default: 0)")
    t.add_argument("--out", default="graphc-run", metavar="DIR", help="where the checkpoint, "
                   "metrics and pictures go (default: ./graphc-run)")
    t.add_argument("--limit", type=_positive_int, metavar="N",
                   help="use at most N samples in all (train and test)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar nor "
                   "per-epoch lines")
    t.set_defaults(run=run_train)


# -- train --------------------------------------------------------------------------
def run_train(args):
    """Train, report, write the outputs; returns 0."""
    import graphc as gc
    from graphc import cli_models
    started = time.perf_counter()
    Path(args.out).mkdir(parents=True, exist_ok=True)      # a bad --out fails before training
    gc.manual_seed(args.seed)
    data = cli_models.load_data(args.data, args.limit, args.seed)
    model_name = args.model or ("lstm" if data.kind == "sentences" else "cnn")
    model = cli_models.build_model(model_name, data)
    epochs = args.epochs or DEFAULT_EPOCHS[data.kind]
    lr = args.lr or DEFAULT_LR[args.optimizer]
    optimizer = (gc.optim.Adam(model.parameters(), lr=lr) if args.optimizer == "adam" else
                 gc.optim.SGD(model.parameters(), lr=lr, momentum=0.9))
    trainer = gc.train.Trainer(model, gc.nn.cross_entropy, optimizer, device=args.device,
                               seed=args.seed)
    train_loader = gc.data.DataLoader(data.train, batch_size=args.batch_size, shuffle=True,
                                      seed=args.seed)
    test_loader = gc.data.DataLoader(data.test, batch_size=250)
    print(f"data:   {data.description}: {len(data.train[1])} train, {len(data.test[1])} test")
    print(f"model:  {model_name}, {cli_models.count_parameters(model):,} parameters; "
          f"{args.optimizer} lr {lr:g}, batch {args.batch_size}, {epochs} epoch(s), "
          f"device {args.device}")
    print("training" + (" (the first epoch includes compiling the step)"
                        if args.device != "reference" else "") + "...", flush=True)
    fit_start = time.perf_counter()
    trainer.fit(train_loader, epochs, val_loader=test_loader, progress=not args.no_progress)
    fit_seconds = time.perf_counter() - fit_start
    scores = trainer.evaluate(test_loader)
    print(f"trained in {fit_seconds:.1f} s\n")
    print(format_scores(scores, data.classes))
    written = write_outputs(trainer, data, scores, Path(args.out))
    print(f"wrote to {args.out}:")
    for path, note in written:
        print(f"  {path.name:<24} {note}")
    print(f"done in {time.perf_counter() - started:.1f} s")
    return 0


def format_scores(scores, classes):
    """The held-out metrics as text: macro averages, the per-class table, the
    confusion matrix (rows: true class, columns: predicted)."""
    lines = [f"test metrics ({scores['samples']} held-out samples):"]
    lines += [f"  {name:<10} {scores[key]:.4f}" + ("  (macro)" if key != "accuracy" else "")
              for name, key in (("accuracy", "accuracy"), ("precision", "precision"),
                                ("recall", "recall"), ("f1", "f1"))]
    support = scores["confusion_matrix"].sum(axis=1)
    width = max(len(c) for c in classes + ["class"])
    lines += ["", f"  {'class':<{width}} {'precision':>9} {'recall':>9} {'f1':>9} "
                  f"{'support':>8}"]
    for i, name in enumerate(classes):
        lines.append(f"  {name:<{width}} {scores['precision_per_class'][i]:>9.4f} "
                     f"{scores['recall_per_class'][i]:>9.4f} "
                     f"{scores['f1_per_class'][i]:>9.4f} {support[i]:>8}")
    matrix = scores["confusion_matrix"]
    if len(classes) > MAX_MATRIX:
        return "\n".join(lines + ["", f"  confusion matrix: {len(classes)} classes, too many "
                                   "to print (see metrics.json)"]) + "\n"
    lines += ["", "  confusion matrix (rows: true class, columns: predicted)"]
    cell = max(4, len(str(matrix.max())) + 1)
    lines.append("  " + " " * (width + 4) + "".join(f"{j:>{cell}}" for j in range(len(classes))))
    for i, name in enumerate(classes):
        lines.append(f"  {name:<{width}} {i:>3}" + "".join(f"{v:>{cell}}" for v in matrix[i]))
    return "\n".join(lines) + "\n"


def write_outputs(trainer, data, scores, out):
    """Write the checkpoint, the metrics, the vocabulary (text) and the pictures
    gc.viz can draw for this device; [(path, note)] of what was written."""
    import graphc as gc
    out.mkdir(parents=True, exist_ok=True)
    written = []
    trainer.save_checkpoint(out / "checkpoint.npz")
    written.append((out / "checkpoint.npz", "every variable, optimizer state included"))
    metrics = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in scores.items()}
    (out / "metrics.json").write_text(json.dumps({"classes": data.classes, **metrics},
                                                 indent=1) + "\n")
    written.append((out / "metrics.json", "the test metrics"))
    if data.vocabulary is not None:
        data.vocabulary.save(out / "vocabulary.json")
        written.append((out / "vocabulary.json", "the tokens, in id order"))
    for step, name, stage, note in PICTURES:
        try:
            written.append((gc.viz.save(getattr(trainer, step), out / name, stage=stage), note))
        except gc.GraphcError as e:
            print(f"  (no {name}: {_one_line(e)})")
    return written


# -- info and cache -----------------------------------------------------------------
def run_info(args):
    """Print one `name  value` line per fact; returns 0."""
    import numba
    import llvmlite
    from graphc.runtime import cache
    from graphc.runtime.cpu import blas
    rows = [("graphc", f"{_version()} ({Path(__file__).parent})"),
            ("python", f"{platform.python_version()} ({sys.executable})"),
            ("numpy", np.__version__), ("numba", numba.__version__),
            ("llvmlite", llvmlite.__version__),
            ("threads", f"{numba.get_num_threads()} (numba; threading layer "
                        f"{_threading_layer()})"),
            ("blas", {"mkl": "MKL", "openblas": "OpenBLAS (SciPy's)"}.get(blas.BLAS, blas.BLAS)),
            ("cuda", _cuda()),
            ("cache", f"{cache.cache_dir()} ({_cache_summary()})")]
    for name, value in rows:
        print(f"{name:<9} {value}")
    return 0


def _threading_layer():
    import numba
    try:
        return numba.threading_layer()
    except ValueError:                  # no parallel region has run yet
        return f"not started; requested {numba.config.THREADING_LAYER}"


def _cuda():
    """'available (device name)' or 'not available (why)'; never raises."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from numba import cuda
            if not cuda.is_available():
                return "not available (no CUDA driver or GPU found by numba.cuda)"
            name = cuda.get_current_device().name      # bytes in numba, str in numba-cuda
            return f"available ({name.decode(errors='replace') if isinstance(name, bytes) else name})"
    except ImportError as e:
        return f"not available (numba.cuda cannot be imported: {e}; pip install numba-cuda)"
    except Exception as e:       # noqa: BLE001 (a broken driver must not break `info`)
        return f"not available ({type(e).__name__}: {_one_line(e)})"


def _cache_summary():
    from graphc.runtime import cache
    folder = cache.cache_dir()
    modules = len(list(folder.glob("graphc_step_*.py"))) if folder.is_dir() else 0
    return f"{_size(cache.size_bytes())}, {modules} compiled module(s)"


def run_cache(args):
    """info: folder and size; path: the folder; clear: remove graphc's entries in it.
    Returns 0."""
    from graphc.runtime import cache
    folder = cache.cache_dir()
    if args.action == "path":
        print(folder)
    elif args.action == "info":
        print(f"{folder} ({_cache_summary()})")
    else:
        print(f"cleared {folder} ({_size(cache.clear())} removed; any other files there "
              "stay)")
    return 0


def _size(n):
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024


def _version():
    import graphc
    return graphc.__version__


# -- entry point --------------------------------------------------------------------
def _one_line(error, located=False):
    """The error's message on one line. A GraphcError's `at file:line` is left out
    unless `located`: it points into graphc when the command made the call, into
    the user's script under `graphc viz`."""
    from graphc.errors import GraphcError
    if isinstance(error, GraphcError):
        text = f"{error.op}: {error.message}" if error.op else str(error.message)
        if located and error.loc is not None:
            text += f" (at {error.loc})"
    elif isinstance(error, OSError) and error.strerror:
        text = error.strerror + (f": {error.filename}" if error.filename else "")
    else:
        text = str(error) or type(error).__name__
    return " ".join(text.split())


def main(argv=None):
    """Run the command line `argv` (default sys.argv[1:]); returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    from graphc.errors import GraphcError
    try:
        if argv[:1] == ["viz"]:
            from graphc.viz import cli as viz_cli
            return viz_cli.main(argv[1:], parser_class=_Parser)
        if argv and argv[0].startswith("-") and argv[0] not in GLOBAL_OPTIONS:
            parser().error(f"unrecognized option {argv[0]}")    # (argparse names COMMAND)
        args = parser().parse_args(argv)
        return args.run(args)
    except (GraphcError, OSError) as e:
        print(f"graphc: error: {_one_line(e, located=argv[:1] == ['viz'])}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("graphc: interrupted", file=sys.stderr)
        return 130
