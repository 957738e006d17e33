"""Checkpoints: one .npz that resumes training exactly.

Layout (every array under its own key; everything else as JSON in "meta"):

    model/<name>        every variable of the model (parameters and buffers),
                        named as Module.named_variables() names them
    optimizer/<p>/<s>   the optimizer's state (momentum buffers, moments, step
                        counters); its learning rates and hyperparameters in meta
    graph/rng_counter   the dropout counter (graphc/random.py), and any other
                        variable the trainer's graphs read (graph/<its name>)
    early_stopping/<name>  the best weights early stopping keeps
    meta                the format, the epoch, the dropout seed, the inputs, the
                        task, the history, and the states of the scheduler, the
                        training loader and early stopping

Guarantee: a trainer built as the saving one was (same model class, optimizer,
loader) that loads the file and trains on gives bit for bit the variables the
uninterrupted run would have, on the same device. Loading checks the meta
entries, the inputs and every array before it writes any variable: a mismatch
raises one CheckpointError (naming the missing, unexpected and mis-shaped
variables, or the inputs the model does not take) and changes nothing.
"""
import contextlib
import json
import os
import zipfile

import numpy as np

from graphc.errors import GraphcError, user_location
from graphc.graph import format_shape
from graphc.ops.rules import is_count
from graphc.train.batches import TASKS, InputSpec
from graphc.train.callbacks import History
from graphc.train.errors import CheckpointError

FORMAT = "graphc.train.checkpoint/1"


# -- which variables --------------------------------------------------------------------
def _graph_variables(trainer):
    """{"graph/...": tensor} for what the built graphs read beyond model and optimizer."""
    if trainer._built is None:
        return {}
    owned = {v.node for v in trainer.model.variables()}
    if trainer.optimizer is not None:
        owned |= {v.node for v in trainer.optimizer.variables()}
    counter = trainer.graph.rng_counter
    found = {}
    for step in (trainer.train_step, trainer.eval_step):
        for var in step.variables:
            if var.node not in owned:
                key = "rng_counter" if var.node is counter else var.name
                found["graph/" + key] = var
    return found


def _checked_variables(trainer):
    """{key: tensor} of the model and graph variables a checkpoint holds."""
    found = {"model/" + name: var for name, var in trainer.model.named_variables()}
    found.update(_graph_variables(trainer))
    return found


def snapshot(trainer):
    """Copies of every variable the trainer can change, for restore_snapshot.

    Copies, not the arrays themselves: the cpu backend updates a variable's
    array in place, so a kept array would already hold the step's result."""
    tensors = list(_checked_variables(trainer).values())
    if trainer.optimizer is not None:
        tensors += trainer.optimizer.variables()
    return [(t.node.attrs["state"], t.node.attrs["state"].value.copy()) for t in tensors]


def restore_snapshot(saved):
    """Every variable bit for bit as snapshot() found it."""
    for state, value in saved:
        state.value = value


# -- saving -----------------------------------------------------------------------------
def save(trainer, path):
    """Write the trainer's state to `path` (replaced atomically). A path that
    cannot be written raises CheckpointError and leaves no file behind."""
    path = writable_path(path, "save_checkpoint")
    arrays = {key: var.value for key, var in _checked_variables(trainer).items()}
    optimizer = None
    if trainer.optimizer is not None:
        state = trainer.optimizer.state_dict()
        arrays.update(("optimizer/" + key, value) for key, value in state.pop("state").items())
        optimizer = state
    stopping = trainer.early_stopping
    if stopping is not None and stopping.best_state:
        arrays.update(("early_stopping/" + k, v) for k, v in stopping.best_state.items())
    loader = trainer._train_loader
    meta = {
        "format": FORMAT, "epoch": trainer.epoch, "seed": trainer.seed,
        "inputs": [s.to_json() for s in trainer.specs] if trainer.specs else None,
        "task": trainer.task, "num_classes": trainer.num_classes, "optimizer": optimizer,
        "scheduler": trainer.scheduler.state_dict() if trainer.scheduler else None,
        "loader": loader.state_dict() if hasattr(loader, "state_dict") else None,
        "early_stopping": stopping.state_dict() if stopping is not None else None,
        "history": list(trainer.history),
    }
    arrays["meta"] = np.array(json.dumps(meta, default=_plain))
    _write_atomically(path, arrays)


def writable_path(path, op):
    """`path` as a str, or a CheckpointError when it is no path, names a folder, or
    lies in a folder that does not exist (checked before anything is written)."""
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise CheckpointError(f"needs the path of a checkpoint file, got a "
                              f"{type(path).__name__}", op=op, loc=user_location())
    path = os.fsdecode(path)
    if os.path.isdir(path):
        _fail(path, "it is a folder; a checkpoint needs a file path such as "
                    f"'{os.path.join(path, 'run.npz')}'", op)
    folder = os.path.dirname(path) or os.curdir
    if not os.path.isdir(folder):
        _fail(path, f"its folder '{folder}' does not exist", op)
    return path


def _write_atomically(path, arrays):
    """np.savez into `path`.partial, then rename it to `path`: an old file stays whole
    until the new one is. On failure the .partial file is removed; an OSError is
    raised as a CheckpointError naming the path."""
    partial = path + ".partial"
    try:
        with open(partial, "wb") as file:
            np.savez(file, **arrays)
        os.replace(partial, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.remove(partial)
        if isinstance(error, OSError):
            _fail(path, f"cannot write it ({error.strerror or error})", "save_checkpoint")
        raise


def _plain(value):
    """JSON for NumPy scalars and arrays in states and history records."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot store a {type(value).__name__} in a checkpoint")


# -- loading ----------------------------------------------------------------------------
_REBUILT_FIELDS = ("seed", "specs", "task", "num_classes")    # what building may change


def load(trainer, path):
    """Restore the state `save` wrote (see the module docstring)."""
    arrays, meta = _read(path)
    _check_meta(path, meta)
    previous = {name: getattr(trainer, name) for name in _REBUILT_FIELDS}
    try:
        _load_variables(trainer, path, arrays, meta)
    except Exception:
        _restore_graphs(trainer, previous)
        raise
    trainer.epoch, trainer.history = int(meta["epoch"]), History(meta["history"])
    best = {k[len("early_stopping/"):]: v for k, v in arrays.items()
            if k.startswith("early_stopping/")}
    loaded_lrs = trainer.optimizer is not None and meta["optimizer"] is not None
    trainer._pending = {
        "loader": meta["loader"], "scheduler": meta["scheduler"],
        "lrs": [g.lr for g in trainer.optimizer.param_groups] if loaded_lrs else None,
        "early_stopping": (meta["early_stopping"], best) if meta["early_stopping"] else None}


def _restore_graphs(trainer, previous):
    """The trainer's inputs, seed and task as they were, and its graphs built for them."""
    for name, value in previous.items():
        setattr(trainer, name, value)
    if trainer.specs is not None:
        trainer.build(trainer.specs)
    else:
        trainer._built = None


def _load_variables(trainer, path, arrays, meta):
    """Build the graphs as the saving trainer had them, check, then assign."""
    if meta["inputs"] is not None:
        trainer.seed = int(meta["seed"])
        _build_for(trainer, path, [InputSpec.from_json(item) for item in meta["inputs"]])
        if meta["num_classes"] != trainer.num_classes:
            _fail(path, f"it is for {meta['num_classes']} classes ({meta['task']}), this "
                        f"model has {trainer.num_classes} ({trainer.task})")
    expected = _checked_variables(trainer)
    if meta["inputs"] is None:
        expected = {k: v for k, v in expected.items() if not k.startswith("graph/")}
    _check_fit(path, expected, {k: v for k, v in arrays.items()
                                if k.startswith(("model/", "graph/"))})
    saved = snapshot(trainer)
    try:
        for key, var in expected.items():
            var.node.attrs["state"].assign(arrays[key])
        if trainer.optimizer is not None and meta["optimizer"] is not None:
            state = {k[len("optimizer/"):]: v for k, v in arrays.items()
                     if k.startswith("optimizer/")}
            trainer.optimizer.load_state_dict({**meta["optimizer"], "state": state})
    except GraphcError as error:
        restore_snapshot(saved)
        _fail(path, f"the optimizer state does not fit: {error.message}")


def _build_for(trainer, path, specs):
    """trainer.build(specs), a CheckpointError when the model does not take those inputs."""
    known = trainer.specs
    try:
        trainer.build(specs)
    except GraphcError as error:
        why = f"{error.op}: {error.message}" if error.op else error.message
        takes = f"; this trainer takes {_describe_specs(known)}" if known else ""
        _fail(path, f"it is for inputs {_describe_specs(specs)}, which this model does not "
                    f"take ({why}){takes}")


def _describe_specs(specs):
    return ", ".join(repr(spec) for spec in specs)


def _read(path):
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise CheckpointError(f"needs the path of a checkpoint file, got a "
                              f"{type(path).__name__}", op="load_checkpoint", loc=user_location())
    try:
        with _open_npz(path) as data:
            arrays = {key: data[key] for key in data.files}
    except FileNotFoundError:
        _fail(path, "no such file")
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        _fail(path, f"not a readable .npz file ({str(error) or type(error).__name__})")
    try:
        meta = json.loads(str(arrays.pop("meta")))
        assert meta["format"] == FORMAT
    except Exception:
        _fail(path, f"not a graphc trainer checkpoint (no '{FORMAT}' meta entry)")
    return arrays, meta


def _open_npz(path):
    data = np.load(os.fspath(path), allow_pickle=False)
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ValueError("it holds one array, as np.save writes, not an .npz archive")
    return data


def _is_input_json(item):
    """[shape, dtype] as InputSpec.to_json writes it, such as [[None, 8], "float32"]."""
    if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], list)
            and isinstance(item[1], str)):
        return False
    try:
        np.dtype(item[1])
    except TypeError:
        return False
    return all(d is None or is_count(d) for d in item[0])


def _none_or(check):
    return lambda value: value is None or check(value)


_META_ENTRIES = {       # every entry save() writes: (check, what it must be)
    "epoch": (is_count, "an int >= 0"),
    "seed": (is_count, "an int >= 0"),
    "inputs": (_none_or(lambda v: isinstance(v, list) and all(map(_is_input_json, v))),
               "null or a list of [shape, dtype] pairs"),
    "task": (_none_or(lambda v: v in TASKS), f"null or one of {TASKS}"),
    "num_classes": (_none_or(is_count), "null or an int >= 0"),
    "optimizer": (_none_or(lambda v: isinstance(v, dict)), "null or a dict"),
    "scheduler": (_none_or(lambda v: isinstance(v, dict)), "null or a dict"),
    "loader": (_none_or(lambda v: isinstance(v, dict)), "null or a dict"),
    "early_stopping": (_none_or(lambda v: isinstance(v, dict)), "null or a dict"),
    "history": (lambda v: isinstance(v, list) and all(isinstance(r, dict) for r in v),
                "a list of epoch records (dicts)"),
}


def _check_meta(path, meta):
    """Every meta entry present and of the kind save() writes, before anything changes."""
    missing = [key for key in _META_ENTRIES if key not in meta]
    if missing:
        _fail(path, f"its meta lacks the entries {missing} (a damaged file, or not written by "
                    "save_checkpoint)")
    for key, (ok, rule) in _META_ENTRIES.items():
        if not ok(meta[key]):
            _fail(path, f"its meta entry '{key}' holds {meta[key]!r:.60}; expected {rule}")


def _check_fit(path, expected, saved):
    """One CheckpointError listing every missing, unexpected and mis-shaped variable."""
    missing = sorted(k.split("/", 1)[1] for k in set(expected) - set(saved))
    unexpected = sorted(k.split("/", 1)[1] for k in set(saved) - set(expected))
    misfit = []
    for key in (k for k in expected if k in saved):          # in the model's order
        want, got = expected[key], saved[key]
        if got.shape != want.shape or (got.dtype.kind == "f") != (want.dtype.kind == "f"):
            misfit.append(f"{key.split('/', 1)[1]}: checkpoint {format_shape(got.shape)} "
                          f"{got.dtype}, model {format_shape(want.shape)} {want.dtype}")
    problems = ([f"missing variables {missing}"] if missing else []) + (
        [f"unexpected variables {unexpected}"] if unexpected else []) + (
        ["mis-shaped variables: " + "; ".join(misfit)] if misfit else [])
    if problems:
        _fail(path, "it does not fit this model: " + ", ".join(problems))


def _fail(path, message, op="load_checkpoint"):
    raise CheckpointError(f"checkpoint '{os.fspath(path)}': {message}",
                          op=op, loc=user_location())


def apply_pending(trainer):
    """Hand the loaded loader, scheduler and early-stopping states to those fit() got."""
    pending = trainer._pending
    loader_state = pending.pop("loader", None)
    if loader_state is not None and hasattr(trainer._train_loader, "load_state_dict"):
        trainer._train_loader.load_state_dict(loader_state)
    scheduler_state, lrs = pending.pop("scheduler", None), pending.pop("lrs", None)
    if scheduler_state is not None and trainer.scheduler is not None:
        trainer.scheduler.load_state_dict(scheduler_state)
        for group, lr in zip(trainer.optimizer.param_groups, lrs or []):
            group["lr"] = lr                # a scheduler made after loading reset them
    stopping = pending.pop("early_stopping", None)
    if stopping is not None and trainer.early_stopping is not None:
        trainer.early_stopping.load_state_dict(*stopping)
