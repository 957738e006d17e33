"""`Trainer`: PyTorch's training loop for a gc.nn model, compiled once.

The trainer builds two graphs over the model's variables, the first time it
sees data (or from `inputs=`): a training step (forward in train mode, loss,
the optimizer's updates) and an evaluation step (forward in eval mode:
dropout off, batch norm on its running statistics). Placeholders leave the
batch dimension None, so a last partial batch costs one more compiled shape,
never a rebuild. Dropout masks are seeded by `seed` (saved in checkpoints),
so a run resumed from a checkpoint draws the masks the uninterrupted run
would have.

Tasks: "multiclass" (logits (N, C), cross entropy, argmax), "binary" (one
logit per sample, (N,) or (N, 1), BCE with logits, positive when the logit is
above `threshold`, 0 by default; 0.5 when the loss is gc.nn.binary_cross_entropy
of probabilities) and "regression" (float targets of the output's shape, scored
by MAE, MSE, RMSE and R^2; tasks.py). The task is inferred from the loss (MSE,
L1, smooth L1 and Huber mean regression) or the logits' shape.
"""
import contextlib
import time

import numpy as np

from graphc import random as gc_random
from graphc.errors import user_location
from graphc.executable import compile as gc_compile
from graphc.graph import format_shape
from graphc.nn import functional as F
from graphc.nn.losses import underlying_function
from graphc.nn.module import Module
from graphc.nn.utils import check_clip_bound
from graphc.ops.elementwise import cast
from graphc.ops.rules import is_count
from graphc.ops.shape import reshape
from graphc.ops.source import placeholder
from graphc.optim.lr_scheduler import ReduceLROnPlateau
from graphc.optim.optimizer import Optimizer
from graphc.tensor import Tensor
from graphc.train import batches, checkpoint as checkpoints, tasks
from graphc.train.callbacks import EpochProgress, History, describe
from graphc.train.errors import TrainError

TASKS = batches.TASKS
_BINARY_LOSSES = (F.binary_cross_entropy_with_logits, F.binary_cross_entropy)
TRAIN_RECORD_KEYS = frozenset({"epoch", "lr", "train_loss", "train_accuracy", "samples",
                               "train_seconds", "samples_per_second", "seconds"})


class Trainer:
    """Trains, evaluates and checkpoints `model` (a gc.nn.Module).

    loss_fn(logits, target) -> scalar: default cross entropy (multiclass) or
    BCE with logits (binary); optimizer: a gc.optim optimizer over the model's
    parameters (None for a trainer that only evaluates); inputs: per-sample
    shapes or placeholders (default: taken from the first batch); device: as
    gc.compile's; metrics: extra {name: fn(y_true, y_pred_labels) -> float}
    that evaluate() adds; seed: the dropout masks' seed (default: drawn from
    gc.random's generator, so gc.manual_seed fixes it); clip_grad_norm: clip
    the gradients to this total 2-norm before each update (as calling
    torch.nn.utils.clip_grad_norm_ before optimizer.step()); scheduler_metric:
    what a ReduceLROnPlateau scheduler steps on after each epoch, a metric of
    evaluate() or an epoch record's key ("loss": the validation loss, or the
    training loss when fit has no val_loader; "accuracy" needs mode="max").
    """

    def __init__(self, model, loss_fn=None, optimizer=None, inputs=None, device=None,
                 task=None, threshold=None, metrics=None, scheduler=None, seed=None,
                 clip_grad_norm=None, scheduler_metric="loss"):
        loc = user_location()
        if not isinstance(model, Module):
            raise TrainError(f"model must be a gc.nn.Module, got a {type(model).__name__}",
                             op="Trainer", loc=loc)
        if optimizer is not None and not isinstance(optimizer, Optimizer):
            raise TrainError(f"optimizer must be a gc.optim optimizer, got a "
                             f"{type(optimizer).__name__}", op="Trainer", loc=loc)
        if task not in TASKS + (None,):
            raise TrainError(f"task must be one of {TASKS} or None, got {task!r}",
                             op="Trainer", loc=loc)
        tasks.check_metrics(metrics, "Trainer")
        if seed is not None and not is_count(seed):
            raise TrainError(f"seed must be an int >= 0, got {seed!r:.60}", op="Trainer", loc=loc)
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        self.device, self.scheduler, self.extra_metrics = device, scheduler, dict(metrics or {})
        if clip_grad_norm is not None:
            check_clip_bound(clip_grad_norm, "clip_grad_norm", "Trainer", loc, TrainError)
        self.clip_grad_norm = clip_grad_norm
        self.scheduler_metric = scheduler_metric
        kind = underlying_function(loss_fn)         # a loss module's function
        self.task = task or ("binary" if kind in _BINARY_LOSSES else
                             "multiclass" if kind is F.cross_entropy else
                             "regression" if kind in tasks.REGRESSION_LOSSES else None)
        self.threshold = threshold if threshold is not None else (
            0.5 if kind is F.binary_cross_entropy else 0.0)
        self.seed = int(gc_random.generator().integers(0, 2 ** 62)) if seed is None else int(seed)
        self.specs, self.num_classes = batches.specs_from_argument(inputs), None
        self.target = None              # a regression's (shape, dtype) of targets, once built
        self.epoch, self.history = 0, History()
        self.early_stopping = None
        self.train_step = self.eval_step = None     # Executables, once built
        self._built = None              # (specs, seed, optimizer groups) the graphs are for
        self._pending = {}              # checkpoint state waiting for fit()'s loader etc.
        self._train_loader = None

    # -- building -------------------------------------------------------------------
    @property
    def graph(self):
        variables = self.model.variables()
        if not variables:
            raise TrainError("the model has no variables", op="Trainer", loc=user_location())
        return variables[0].graph

    def build(self, specs=None):
        """Build the train and eval graphs for `specs` (default: the known inputs);
        a no-op when they are built for these inputs and this seed."""
        specs = specs or self.specs
        groups = len(self.optimizer.param_groups) if self.optimizer else 0
        if self._built == (specs, self.seed, groups):   # add_param_group: build again
            return
        self.specs = specs
        graph = self.graph
        with graph, _seeded_generator(self.seed):
            xs = [placeholder(s.shape, s.dtype, name=f"input{i}" if i else "input")
                  for i, s in enumerate(specs)]
            mode = self.model.training
            try:
                with graph.name_scope("train"):
                    train_logits = self._outputs(xs, training=True)
                labels = self._labels_placeholder(train_logits)
                with graph.name_scope("train"):
                    train_loss = self._loss(train_logits, labels)
                    updates = self.optimizer.minimize(
                        train_loss, clip_grad_norm=self.clip_grad_norm) if self.optimizer else {}
                with graph.name_scope("eval"):
                    eval_logits = self._outputs(xs, training=False)
                    eval_loss = self._loss(eval_logits, labels)
            finally:
                self.model.train(mode)
        feeds = xs + [labels]
        self.train_step = gc_compile([train_loss, train_logits], inputs=feeds,
                                      updates=updates, device=self.device)
        self.eval_step = gc_compile([eval_logits, eval_loss], inputs=feeds, device=self.device)
        self._batch_norms = [v for name, v in self.model.named_buffers()
                             if name.endswith("running_var")]
        self._built = (specs, self.seed, groups)

    def _outputs(self, xs, training):
        """The model's output as the task reads it, in train or eval mode."""
        self.model.train(training)
        logits = self.model(*xs)
        if not isinstance(logits, Tensor):
            self._fail(f"the model returned a {type(logits).__name__}; the trainer needs "
                       "one output tensor: logits (N, classes) or (N,), or a regression's "
                       "predictions")
        self._settle_task(logits)
        if self.task == "binary" and logits.ndim == 2:
            return reshape(logits, (-1,))
        return logits

    def _labels_placeholder(self, logits):
        """Class labels int64 (N,), or a regression's targets shaped as its outputs."""
        if self.task != "regression":
            return placeholder((None,), "int64", name="labels")
        self.target = ((None,) + tuple(logits.shape[1:]), logits.dtype)
        return placeholder(*self.target, name="targets")

    def _loss(self, logits, labels):
        target = cast(labels, logits.dtype) if self.task == "binary" else labels
        loss_fn = self.loss_fn or {"multiclass": F.cross_entropy, "regression": F.mse_loss}.get(
            self.task, F.binary_cross_entropy_with_logits)
        loss = loss_fn(logits, target)
        if not isinstance(loss, Tensor) or loss.shape != ():
            self._fail(f"loss_fn must return a scalar tensor, got {loss!r:.80}")
        return loss

    def _settle_task(self, logits):
        shape = logits.shape
        if self.task == "regression":
            if logits.ndim < 1 or None in shape[1:]:
                self._fail(f"a regression needs outputs (N, ...) of known trailing dims; "
                           f"the model outputs {format_shape(shape)}")
            return
        binary_shaped = logits.ndim == 1 or (logits.ndim == 2 and shape[1] == 1)
        if logits.ndim not in (1, 2) or (logits.ndim == 2 and shape[1] is None):
            self._fail(f"the model's output has shape {format_shape(shape)}; expected logits "
                       "(N, classes) or (N,)")
        if self.task is None:
            self.task = "binary" if binary_shaped else "multiclass"
        if self.task == "binary" and not binary_shaped:
            self._fail(f"a binary task needs one logit per sample, (N,) or (N, 1); the model "
                       f"outputs {format_shape(shape)}")
        if self.task == "multiclass" and (binary_shaped or shape[1] < 2):
            self._fail(f"a multiclass task needs logits (N, classes >= 2); the model outputs "
                       f"{format_shape(shape)} (use task='binary' for one logit)")
        self.num_classes = 2 if self.task == "binary" else int(shape[1])

    def _fail(self, message, op="Trainer"):
        raise TrainError(message, op=op, loc=user_location())

    def _ensure_built(self, first_inputs, op):
        if self.specs is None:
            dtype = batches.float_dtype_of(self.model)
            self.specs = batches.specs_from_batch(first_inputs, dtype, op)
        self.build()

    # -- training -------------------------------------------------------------------
    def fit(self, train_loader, epochs=1, val_loader=None, early_stopping=None,
            scheduler=None, checkpoint=None, progress=True):
        """Train for `epochs` more epochs; returns the History (every epoch so far).

        After each epoch: validation metrics (when val_loader is given), the
        scheduler's step, early stopping's check, and a checkpoint written to
        `checkpoint` (a path) when given: the state to resume from, so the last
        epoch's weights even when early stopping then restores the best ones.
        Stops early when `early_stopping` says so. A loader state loaded from a
        checkpoint applies to this `train_loader`, a scheduler state to `scheduler`.
        Arguments are checked before any training: the loaders, the metric early
        stopping watches (one the epoch records will hold) and the checkpoint path.
        """
        if self.optimizer is None:
            self._fail("fit needs an optimizer (Trainer(..., optimizer=...))", op="fit")
        if not isinstance(epochs, int) or epochs < 0:
            self._fail(f"epochs must be an int >= 0, got {epochs!r}", op="fit")
        self._check_loader(train_loader, "fit", "train_loader")
        if val_loader is not None:
            self._check_loader(val_loader, "fit", "val_loader")
        if early_stopping is not None:
            self._check_early_stopping(early_stopping, val_loader)
        self._plateau_key(scheduler or self.scheduler, val_loader is not None)
        if checkpoint is not None:
            checkpoints.writable_path(checkpoint, "fit")
        self.scheduler = scheduler or self.scheduler
        self.early_stopping = early_stopping
        self._train_loader = train_loader
        checkpoints.apply_pending(self)
        for _ in range(epochs):
            record = self._run_epoch(train_loader, val_loader, progress)
            self.history.append(record)
            stop = early_stopping.update(record, self.model) if early_stopping else False
            if checkpoint is not None:
                self.save_checkpoint(checkpoint)
            if progress:
                EpochProgress.write(describe(record))
            if stop:
                break
        if early_stopping is not None:
            early_stopping.restore(self.model)
        return self.history

    def _check_early_stopping(self, stopping, val_loader):
        """Refuse, before training, a metric that the epoch records will not hold."""
        if val_loader is None and stopping.metric not in TRAIN_RECORD_KEYS:
            self._fail(f"early stopping on '{stopping.metric}' needs val_loader= (without "
                       f"one, the epoch records hold {sorted(TRAIN_RECORD_KEYS)})", op="fit")
        stopping.key(dict.fromkeys(self._record_keys(val_loader is not None)))

    def _plateau_key(self, scheduler, validated):
        """The record key a ReduceLROnPlateau `scheduler` steps on (None for another
        scheduler); refuses, before training, a key the records will not hold and a
        mode that reads the metric the wrong way round (a loss with mode="max")."""
        if not isinstance(scheduler, ReduceLROnPlateau):
            return None
        metric, keys = self.scheduler_metric, self._record_keys(validated)
        key = next((k for k in ("val_" + str(metric), "train_" + str(metric), metric)
                    if k in keys), None)
        if key is None:
            self._fail(f"scheduler_metric {metric!r}: the epoch records hold only "
                       f"{sorted(keys)}", op="fit")
        lower_is_better = tasks.lower_is_better(key)
        if lower_is_better is not None and lower_is_better != (scheduler.mode == "min"):
            better, way = ("min", "lower") if lower_is_better else ("max", "higher")
            self._fail(f"ReduceLROnPlateau(mode={scheduler.mode!r}) would step on '{key}', "
                       f"which is better when {way}: use mode={better!r}, or "
                       "Trainer(scheduler_metric=...) to step on another metric", op="fit")
        return key

    def _record_keys(self, validated):
        """The keys of each epoch record fit() writes (with a val_loader or without)."""
        train_keys = set(TRAIN_RECORD_KEYS) - ({"train_accuracy"} if self.task == "regression"
                                               else set())
        if not validated:
            return train_keys
        return train_keys | {"val_" + name for name in tasks.scalar_scores(self.task)} | {
            "val_" + name for name in self.extra_metrics}

    def _check_loader(self, loader, op, name="loader"):
        """Refuse what is not a loader: None, an array, a tuple of arrays (a dataset)."""
        if isinstance(loader, np.ndarray) or (
                isinstance(loader, tuple) and any(isinstance(a, np.ndarray) for a in loader)):
            what = (f"an array of shape {format_shape(loader.shape)}"
                    if isinstance(loader, np.ndarray) else f"a tuple of {len(loader)} arrays")
        elif not _is_iterable(loader):
            what = f"a {type(loader).__name__}"
        else:
            return
        self._fail(f"{name} is {what}; {op} needs a loader of (inputs..., labels) batches or "
                   "a list of such batches, e.g. gc.data.DataLoader((x, y), batch_size=32)",
                   op=op)

    def _run_epoch(self, train_loader, val_loader, progress):
        start = time.perf_counter()
        lr = self.optimizer.param_groups[0]["lr"]
        bar = EpochProgress(_length(train_loader), self.epoch + 1, progress)
        try:
            for index, batch in enumerate(train_loader):
                inputs, labels = self._checked(batch, index, "fit")
                loss, logits = self._train_batch(inputs, labels, index)
                bar.update(len(labels), loss, None if self.task == "regression" else
                           np.sum(self._labels_of(logits) == labels))
        finally:
            summary = bar.close()
        if summary["samples"] == 0:
            self._fail("the training loader yielded no batches", op="fit")
        self.epoch += 1
        record = {"epoch": self.epoch, "lr": float(lr), **summary}
        if val_loader is not None:
            scores = self.evaluate(val_loader)
            record.update((f"val_{k}", v) for k, v in scores.items() if np.ndim(v) == 0)
        if isinstance(self.scheduler, ReduceLROnPlateau):    # as PyTorch: step(val_loss)
            self.scheduler.step(record[self._plateau_key(self.scheduler, val_loader is not None)])
        elif self.scheduler is not None:
            self.scheduler.step()
        record["seconds"] = time.perf_counter() - start
        return record

    def _checked(self, batch, index, op, labelled=True):
        n_inputs = len(self.specs) if self.specs is not None else None
        inputs, labels = batches.split_batch(batch, n_inputs, index, op, labelled)
        self._ensure_built(inputs, op)
        batches.check_inputs(inputs, self.specs, index, op)
        if labels is not None and self.task == "regression":
            labels = tasks.check_targets(labels, *self.target, index, op)
        elif labels is not None:
            labels = batches.check_labels(labels, self.num_classes, index, op)
        return inputs, labels

    def _train_batch(self, inputs, labels, index):
        """One optimizer step. A batch norm fed one value per channel (a batch of one
        (N, C) sample) or none (an empty batch) would leave running_var NaN: refused,
        every variable (model, optimizer, dropout counter) bit for bit as before."""
        if len(labels) == 0 and not self._batch_norms:
            self._fail(f"batch {index} holds no samples: a step over none has no loss (the "
                       "mean is 0 / 0); nothing was trained on it", op="fit")
        if len(labels) > 1 or not self._batch_norms:
            return self.train_step(*inputs, labels)
        saved = checkpoints.snapshot(self)
        loss, logits = self.train_step(*inputs, labels)
        broken = [v.name for v in self._batch_norms if not np.all(np.isfinite(v.value))]
        if broken:
            checkpoints.restore_snapshot(saved)
            self._fail(_too_small_for_batch_norm(index, len(labels), broken[0]), op="fit")
        return loss, logits

    # -- evaluation -----------------------------------------------------------------
    def evaluate(self, loader):
        """Metrics of the model in eval mode over every batch of `loader`.

        {"loss", "accuracy", "precision", "recall", "f1" (macro averages over the
        classes), "precision_per_class", "recall_per_class", "f1_per_class",
        "confusion_matrix" ([true, predicted] counts), "samples"} (a regression:
        {"loss", "mae", "mse", "rmse", "r2", "samples"}) plus the trainer's extra
        metrics, fn(y_true, y_pred); computed by gc.metrics and tasks.py.
        """
        self._check_loader(loader, "evaluate")
        logits, labels, loss_sum = [], [], 0.0
        for index, batch in enumerate(loader):
            inputs, y = self._checked(batch, index, "evaluate")
            out, loss = self.eval_step(*inputs, y)
            logits.append(out)
            labels.append(y)
            loss_sum += float(loss) * len(y)
        if not labels:
            self._fail("the loader yielded no batches", op="evaluate")
        y_true = np.concatenate(labels)
        y_pred = self._labels_of(np.concatenate(logits))
        loss = loss_sum / len(y_true)
        scores = tasks.regression_scores(y_true, y_pred, loss) if self.task == "regression" \
            else tasks.classification_scores(y_true, y_pred, loss, self.num_classes)
        for name, fn in self.extra_metrics.items():
            scores[name] = tasks.metric_value(name, fn(y_true, y_pred))
        return scores

    def predict(self, data, output="labels", batch_size=256):
        """The model's predictions (eval mode) for an array (or a tuple of arrays, one
        per input) or a loader's batches: "labels" (int64), "logits" or
        "probabilities" (softmax, or sigmoid of binary logits); a regression's
        outputs for "labels" and "logits"."""
        if output not in ("labels", "logits", "probabilities"):
            self._fail(f"output must be 'labels', 'logits' or 'probabilities', got {output!r}",
                       op="predict")
        if output == "probabilities" and self.task == "regression":
            self._fail("a regression has no probabilities; use output='labels'", op="predict")
        is_arrays = isinstance(data, (np.ndarray, tuple))
        if not is_arrays and not _is_iterable(data):
            self._fail(f"predict needs an array, a tuple of arrays (one per input) or a "
                       f"loader, got a {type(data).__name__}", op="predict")
        source = batches.array_batches(data, batch_size, "predict") if is_arrays else data
        n_inputs = (len(data) if isinstance(data, tuple) else 1) if is_arrays else None
        if n_inputs is not None and self.specs is not None:
            self._check_input_count(n_inputs)
        outs = []
        for index, batch in enumerate(source):
            if self.specs is None and n_inputs is not None:
                self._ensure_built(list(batch), "predict")
            inputs, _ = self._checked(batch, index, "predict", labelled=False)
            zeros = self._unused_labels(len(inputs[0]))
            outs.append(self.eval_step(*inputs, zeros)[0])
        if not outs:
            self._fail("predict got no samples", op="predict")
        logits = np.concatenate(outs)
        if output == "labels":
            return self._labels_of(logits)
        if output == "logits":
            return logits
        return self._probabilities(logits)

    def _check_input_count(self, given):
        """Refuse predict's arrays unless there is one per model input."""
        expected = len(self.specs)
        if given != expected:
            self._fail(f"the model takes {expected} input(s), but predict got {given} "
                       "array(s); pass one array per input (a tuple of arrays for several)",
                       op="predict")

    def _unused_labels(self, n):
        """Labels for the eval step's loss where there are none (predict)."""
        if self.task == "regression":
            shape, dtype = self.target
            return np.zeros((n,) + shape[1:], dtype)
        return np.zeros(n, np.int64)

    def _labels_of(self, logits):
        if self.task == "regression":
            return logits
        if self.task == "binary":
            return (logits > self.threshold).astype(np.int64)
        return np.argmax(logits, axis=1).astype(np.int64)

    def _probabilities(self, logits):
        if self.task == "binary":
            if underlying_function(self.loss_fn) is F.binary_cross_entropy:
                return logits                               # the model outputs probabilities
            return 1.0 / (1.0 + np.exp(-logits))
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)

    # -- checkpoints ----------------------------------------------------------------
    def save_checkpoint(self, path):
        """Write one .npz holding every variable of the model and the optimizer, the
        dropout counter, and the scheduler's, loader's and early stopping's state,
        the epoch and the history (see graphc.train.checkpoint). A path that cannot
        be written (a folder, a missing folder) raises CheckpointError, no file left."""
        checkpoints.save(self, path)

    def load_checkpoint(self, path):
        """Restore what save_checkpoint wrote. The loader's and the scheduler's state
        apply to those of the next fit() (or to those already known). Checks
        everything before writing any variable; a mismatch raises CheckpointError."""
        checkpoints.load(self, path)


def _is_iterable(loader):
    """Whether a for loop can run over `loader` (asked without starting an epoch)."""
    return hasattr(loader, "__iter__") or hasattr(loader, "__getitem__")


def _too_small_for_batch_norm(index, size, norm):
    """Why training batch `index` of `size` (0 or 1) samples is refused by batch norm `norm`."""
    if size == 0:
        return (f"batch {index} holds no samples, which gives batch norm ({norm}) no values "
                "per channel in training; use batches of at least 2")
    return (f"batch {index} holds 1 sample, which gives batch norm ({norm}) one value per "
            "channel in training; use batches of at least 2 (DataLoader(..., drop_last=True))")


def _length(loader):
    try:
        return len(loader)
    except TypeError:
        return None


@contextlib.contextmanager
def _seeded_generator(seed):
    """Inside, graphc's generator draws as if just seeded with `seed`; after, it
    continues where it was (so building the graphs does not move its stream)."""
    generator = gc_random.generator()
    outer = generator.bit_generator.state
    generator.bit_generator.state = np.random.default_rng(seed).bit_generator.state
    try:
        yield
    finally:
        generator.bit_generator.state = outer

