"""What the trainer feeds: input specs, and batches checked against them.

A batch is a tuple of arrays from a loader: the model's inputs, then the
labels. Every check names the batch and the array, so a bad loader fails
with one clear `TrainError` before anything runs.
"""
import numpy as np

from graphc import dtypes
from graphc.errors import user_location
from graphc.graph import format_shape
from graphc.ops.rules import is_count
from graphc.tensor import Tensor
from graphc.train.errors import TrainError

TASKS = ("multiclass", "binary", "regression")  # what labels mean: a class, 0/1, targets


class InputSpec:
    """One model input: its shape with the batch dimension None, and its dtype."""

    def __init__(self, shape, dtype):
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)

    def to_json(self):
        return [list(self.shape), self.dtype.name]

    @classmethod
    def from_json(cls, item):
        return cls(item[0], item[1])

    def __eq__(self, other):
        return (self.shape, self.dtype) == (other.shape, other.dtype)

    def __repr__(self):
        return f"{format_shape(self.shape)} {self.dtype}"


def fail(message, op):
    raise TrainError(message, op=op, loc=user_location())


def specs_from_argument(inputs, op="Trainer"):
    """InputSpecs from `inputs=`: None (decided by the first batch), a placeholder,
    a per-sample shape such as (784,), or a list of either."""
    if inputs is None:
        return None
    items = [inputs] if isinstance(inputs, Tensor) or _is_shape(inputs) else list(inputs)
    specs = []
    for item in items:
        if isinstance(item, Tensor):
            if item.op != "placeholder" or not item.shape or item.shape[0] is not None:
                fail(f"inputs: {item.name} must be a placeholder whose first (batch) "
                     f"dimension is None, got {item.op} {format_shape(item.shape)}", op)
            specs.append(InputSpec(item.shape, item.dtype))
        elif _is_shape(item):
            specs.append(InputSpec((None,) + tuple(int(d) for d in item), "float32"))
        else:
            fail(f"inputs must be per-sample shapes such as (784,) or placeholders with "
                 f"a None batch dimension, got {item!r:.80}", op)
    return specs


def _is_shape(value):
    return isinstance(value, tuple) and all(
        isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in value)


def specs_from_batch(arrays, float_dtype, op):
    """InputSpecs for the model inputs of a first batch: floats as the model's
    parameters, integers as int64, the batch dimension None."""
    specs = []
    for i, array in enumerate(arrays):
        if array.ndim == 0:
            fail(f"inputs[{i}] of the first batch is a scalar; a batch needs a first "
                 "(sample) axis", op)
        kind = array.dtype.kind
        if kind == "f":
            dtype = float_dtype
        elif kind in "iu":
            dtype = np.int64
        elif kind == "b":
            dtype = np.bool_
        else:
            fail(f"inputs[{i}] of the first batch has dtype {array.dtype}; the model needs "
                 "numbers", op)
        specs.append(InputSpec((None,) + array.shape[1:], dtype))
    return specs


def split_batch(batch, n_inputs, index, op, labelled=True):
    """(inputs, labels or None) of a loader batch, as arrays of one length.

    n_inputs None (the model is not built yet): every array but the labels is
    an input. labelled=False: labels may follow the inputs and are ignored."""
    if isinstance(batch, np.ndarray):
        batch = (batch,)
    if not isinstance(batch, (tuple, list)):
        fail(f"batch {index} of the loader is a {type(batch).__name__}; expected a tuple "
             "(inputs..., labels) of arrays", op)
    arrays = [np.asarray(a) for a in batch]
    if n_inputs is None:
        n_inputs = max(len(arrays) - 1, 1) if labelled or len(arrays) > 1 else len(arrays)
    want = n_inputs + 1 if labelled else n_inputs
    if len(arrays) < want or (labelled and len(arrays) != want) or not arrays:
        what = f"{n_inputs} input(s) and the labels" if labelled else f"{n_inputs} input(s)"
        fail(f"batch {index} of the loader holds {len(arrays)} arrays; expected {what}", op)
    used = arrays[:want]
    lengths = {len(a) if a.ndim else None for a in used}
    if len(lengths) != 1 or None in lengths:
        shapes = ", ".join(format_shape(a.shape) for a in used)
        fail(f"batch {index} of the loader holds arrays of shapes {shapes}: each needs "
             "the same first (sample) dimension", op)
    return arrays[:n_inputs], (arrays[n_inputs] if labelled else None)


def check_inputs(inputs, specs, index, op):
    """Raise a TrainError unless each input fits its spec (trailing shape, kind)."""
    for i, (array, spec) in enumerate(zip(inputs, specs)):
        fits = array.ndim == len(spec.shape) and all(
            d is None or d == a for d, a in zip(spec.shape, array.shape))
        if not fits:
            fail(f"batch {index}: inputs[{i}] has shape {format_shape(array.shape)}, but the "
                 f"model was built for {spec!r} (N = batch size)", op)
        if _kind(array.dtype) != _kind(spec.dtype):
            fail(f"batch {index}: inputs[{i}] has dtype {array.dtype}, but the model was "
                 f"built for {spec.dtype}", op)


def _kind(dtype):
    return {"u": "i"}.get(np.dtype(dtype).kind, np.dtype(dtype).kind)


def check_labels(labels, num_classes, index, op):
    """Labels as int64 (N,), or a TrainError naming the bad value.

    Class labels must be whole numbers in [0, num_classes); a binary task
    (num_classes 2) takes 0/1 (or False/True) labels, of shape (N,) or (N, 1)."""
    if num_classes == 2 and labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        fail(f"batch {index}: labels have shape {format_shape(labels.shape)}; expected one "
             "class label per sample, shape (N,)", op)
    if labels.dtype.kind == "f":
        if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)):
            fail(f"batch {index}: labels hold non-integer values such as "
                 f"{labels[labels != np.round(labels)][:1]}; expected class indices", op)
    elif labels.dtype.kind not in "iub":
        fail(f"batch {index}: labels have dtype {labels.dtype}; expected class indices", op)
    labels = labels.astype(np.int64)
    bad = labels[(labels < 0) | (labels >= num_classes)]
    if bad.size:
        allowed = "0 or 1 (a binary task)" if num_classes == 2 else f"in [0, {num_classes})"
        fail(f"batch {index}: label {bad[0]} is out of range: the model has {num_classes} "
             f"classes, so labels must be {allowed}", op)
    return labels


def array_batches(data, batch_size, op):
    """Batches (tuples) of an array or a tuple of arrays, in order, for predict()."""
    if not is_count(batch_size) or batch_size < 1:
        fail(f"batch_size must be an int >= 1, got {batch_size!r:.60}", op)
    arrays = [np.asarray(a) for a in (data if isinstance(data, tuple) else (data,))]
    if any(a.ndim == 0 for a in arrays) or len({len(a) for a in arrays}) != 1:
        fail("predict needs arrays with one first (sample) dimension, got shapes "
             + ", ".join(format_shape(a.shape) for a in arrays), op)
    n = len(arrays[0])
    return [tuple(a[i:i + batch_size] for a in arrays) for i in range(0, n, batch_size)]


def float_dtype_of(model):
    """The dtype float inputs are fed as: the model's first float parameter's."""
    for param in model.parameters():
        if dtypes.is_float(param.dtype):
            return param.dtype
    return np.dtype("float32")
