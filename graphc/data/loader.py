"""Batches over in-memory datasets: ArrayDataset, Subset, random_split, DataLoader.

A dataset is either a tuple of equal-length NumPy arrays, e.g. `(x, y)`, or any
object with `__len__` and `__getitem__(index_array)` that returns a tuple of
arrays holding those samples (an `ArrayDataset`, a `Subset`, an `ImageFolder`).
A PyTorch-style dataset, whose `__getitem__` takes one int and returns one
sample, works too: the DataLoader asks it sample by sample and stacks them.
"""
import math
import numbers

import numpy as np

from graphc.data.errors import DataError
from graphc.ops.rules import is_count

__all__ = ["ArrayDataset", "Subset", "random_split", "DataLoader", "as_dataset"]


class ArrayDataset:
    """Equal-length arrays indexed together: `ds[idx]` is `(a[idx] for a in arrays)`."""

    def __init__(self, *arrays):
        if not arrays:
            raise DataError("a dataset needs at least one array")
        self.arrays = tuple(_as_array(a, i) for i, a in enumerate(arrays))
        for i, a in enumerate(self.arrays):
            if a.ndim == 0:
                raise DataError(f"dataset array {i} is a scalar; each array needs a first "
                                f"(sample) axis")
        lengths = [len(a) for a in self.arrays]
        if len(set(lengths)) > 1:
            described = ", ".join(f"array {i} has {n}" for i, n in enumerate(lengths))
            raise DataError(f"dataset arrays must have the same length (one row per "
                            f"sample), but {described}")

    def __len__(self):
        return len(self.arrays[0])

    def __getitem__(self, index):
        return tuple(a[index] for a in self.arrays)


def _as_array(values, index):
    try:
        return np.asarray(values)
    except ValueError:
        raise DataError(f"dataset array {index} is ragged: its rows have different lengths "
                        f"(every sample needs the same shape)") from None


def as_dataset(dataset):
    """An indexable dataset from a tuple/list of arrays, a single array, or a dataset."""
    if isinstance(dataset, (dict, str, bytes)):
        raise DataError(f"a dataset must be a tuple of arrays, such as (x, y), or have "
                        f"__len__ and __getitem__(index array); got a {type(dataset).__name__}"
                        + (" (pass its arrays as a tuple)" if isinstance(dataset, dict) else ""))
    if isinstance(dataset, (tuple, list)):
        return ArrayDataset(*dataset)
    if isinstance(dataset, np.ndarray):
        return ArrayDataset(dataset)
    if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
        raise DataError(f"a dataset must be a tuple of arrays or have __len__ and "
                        f"__getitem__, got {type(dataset).__name__}")
    return dataset


class Subset:
    """The samples of `dataset` at `indices`, in that order."""

    def __init__(self, dataset, indices):
        self.dataset = as_dataset(dataset)
        self.indices = _checked_indices(indices, len(self.dataset))

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, index):
        return self.dataset[self.indices[index]]


def _checked_indices(indices, n):
    """Subset indices as an int64 vector, or a DataError: ints in [-n, n)."""
    try:
        found = np.asarray(indices).reshape(-1)
    except ValueError:
        raise DataError("Subset indices must be a flat list of ints; got a ragged "
                        "list") from None
    if found.size and found.dtype.kind not in "iu":
        raise DataError(f"Subset indices must be ints, got {found.dtype} values such as "
                        f"{found[:1].tolist()[0]!r}")
    if found.size and (found.min() < -n or found.max() >= n):
        raise DataError(f"Subset indices must lie in [0, {n}), got "
                        f"{found.min()}..{found.max()}")
    return found.astype(np.int64)


def _is_size(value):
    """A length or a fraction for random_split: a finite number >= 0, not a bool."""
    return (not isinstance(value, bool) and isinstance(value, numbers.Real)
            and math.isfinite(value) and value >= 0)


def _split_lengths(n, fractions_or_lengths):
    if isinstance(fractions_or_lengths, (str, bytes, dict)) or \
            not hasattr(fractions_or_lengths, "__iter__"):
        raise DataError(f"random_split needs a list of lengths or fractions, got "
                        f"{fractions_or_lengths!r:.60}")
    parts = list(fractions_or_lengths)
    if not parts or not all(_is_size(p) for p in parts):
        raise DataError(f"random_split needs non-negative lengths or fractions, got {parts}")
    if all(isinstance(p, (int, np.integer)) for p in parts):
        if sum(parts) != n:
            raise DataError(f"random_split lengths {parts} sum to {sum(parts)}, but the "
                            f"dataset has {n} samples")
        return [int(p) for p in parts]
    if not math.isclose(sum(parts), 1.0, abs_tol=1e-6):
        raise DataError(f"random_split fractions {parts} must sum to 1, not {sum(parts)}")
    lengths = [int(math.floor(n * p)) for p in parts]
    for i in range(n - sum(lengths)):           # the remainder, round robin (as torch)
        lengths[i % len(lengths)] += 1
    return lengths


def random_split(dataset, fractions_or_lengths, seed=None):
    """Disjoint random Subsets covering the dataset, of the given lengths or fractions.

    Fractions are floored and the remainder handed out one by one from the first
    part, so `random_split(ds, [0.8, 0.2], seed=0)` always makes the same 80/20
    split. Without a seed the permutation comes from `gc.random.generator()`.
    """
    dataset = as_dataset(dataset)
    n = len(dataset)
    lengths = _split_lengths(n, fractions_or_lengths)
    order = _rng(seed).permutation(n)
    bounds = np.cumsum([0] + lengths)
    return [Subset(dataset, order[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


def _rng(seed):
    if seed is None:
        from graphc.random import generator   # late: graphc.random needs the graph module
        return generator()
    try:
        return np.random.default_rng(seed)
    except (TypeError, ValueError):
        raise DataError(f"random_split seed must be a non-negative int, got "
                        f"{seed!r:.60}") from None


def _draw_seed():
    return int(_rng(None).integers(0, 2 ** 62))


class DataLoader:
    """Mini-batches of a dataset, each a tuple of arrays.

    Guarantees: every epoch (every `iter(loader)`) yields each sample exactly once
    (all but the last `len(dataset) % batch_size` when `drop_last`), in batches
    of `batch_size` and a last smaller batch unless `drop_last`. With `shuffle`,
    the order of epoch `e` is a function of `(seed, e)` only, so epochs differ
    from each other, and a loader restored with `load_state_dict` replays the
    same orders; without a seed one is drawn from `gc.random.generator()`, so
    `gc.manual_seed` makes runs reproducible.
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, seed=None):
        self.dataset = as_dataset(dataset)
        if not is_count(batch_size) or batch_size < 1:
            raise DataError(f"DataLoader batch_size must be a positive int, got {batch_size!r}")
        if seed is not None and not is_count(seed):
            raise DataError(f"DataLoader seed must be a non-negative int, got {seed!r}")
        self.batch_size, self.shuffle, self.drop_last = int(batch_size), shuffle, drop_last
        self.seed = int(seed) if seed is not None else (_draw_seed() if shuffle else None)
        self._next_epoch = 0        # the epoch the next iter() starts
        self._resume = None         # (epoch, batches done) set by load_state_dict
        self._progress = None       # (epoch, batches done) of the running iteration
        self._per_sample = None     # whether the dataset takes one int index at a time

    def __len__(self):
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    @property
    def epoch(self):
        """The number of epochs started so far."""
        return self._next_epoch

    def order(self, epoch):
        """The sample indices of epoch `epoch`, in the order they are served."""
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, int(epoch)]).permutation(n)

    def __iter__(self):
        if self._resume is not None:
            (epoch, start), self._resume = self._resume, None
        else:
            epoch, start = self._next_epoch, 0
        self._next_epoch = epoch + 1
        return self._batches(epoch, start)

    def _batches(self, epoch, start):
        order, size = self.order(epoch), self.batch_size
        self._progress = (epoch, start)
        for b in range(start, len(self)):
            batch = self._fetch(order[b * size:(b + 1) * size])
            self._progress = (epoch, b + 1)
            yield tuple(batch) if isinstance(batch, (tuple, list)) else (batch,)
        self._progress = None

    def _fetch(self, indices):
        """The samples at `indices`: one call with the index array, or, for a dataset
        that fails on one (a PyTorch-style `__getitem__(int)`: a list indexed, an
        `if i >= len(self)` or an assert on the index), a call per sample, stacked.
        The first batch decides which, for good; a per-sample failure is the
        dataset's own error."""
        if not self._per_sample:
            try:
                batch = self.dataset[indices]
                self._per_sample = False
                return batch
            except Exception:       # noqa: BLE001 (any refusal of an index array)
                if self._per_sample is False:
                    raise
                self._per_sample = True
        return collate([self.dataset[int(i)] for i in indices], indices)

    def state_dict(self):
        """Where the loader stands: the epoch to serve next (or the one interrupted),
        how many of its batches were served, the shuffle seed and the dataset size."""
        if self._resume is not None:
            epoch, done = self._resume
        elif self._progress is not None and self._progress[1] < len(self):
            epoch, done = self._progress
        else:
            epoch, done = self._next_epoch, 0
        return {"epoch": int(epoch), "batches_done": int(done), "seed": self.seed,
                "num_samples": len(self.dataset)}

    def load_state_dict(self, state):
        """Continue as the loader that made `state`: the next `iter()` serves the rest
        of an interrupted epoch, or the next epoch, in the same order. Checks every
        entry before changing anything."""
        self._check_state(state)
        self.seed = None if state["seed"] is None else int(state["seed"])
        epoch, done = int(state["epoch"]), int(state["batches_done"])
        self._next_epoch, self._progress = epoch, None
        self._resume = (epoch, done) if done else None

    def _check_state(self, state):
        if not isinstance(state, dict):
            raise DataError(f"DataLoader.load_state_dict needs the dict from "
                            f"DataLoader.state_dict(), got a {type(state).__name__}")
        missing = {"epoch", "batches_done", "seed"} - set(state)
        if missing:
            raise DataError(f"DataLoader state lacks {sorted(missing)}; expected the dict "
                            f"from DataLoader.state_dict()")
        for key, may_be_none in (("epoch", False), ("batches_done", False), ("seed", True),
                                 ("num_samples", True)):
            value = state.get(key)
            if not (is_count(value) or (value is None and may_be_none)):
                raise DataError(f"DataLoader state '{key}' must be an int >= 0, got "
                                f"{value!r:.60}")
        if state.get("num_samples", len(self.dataset)) != len(self.dataset):
            raise DataError(f"DataLoader state is for a dataset of {state['num_samples']} "
                            f"samples, but this loader's has {len(self.dataset)}")
        if self.shuffle and state["seed"] is None:
            raise DataError("DataLoader state has no seed, but this loader shuffles")
        if state["batches_done"] and state["batches_done"] >= len(self):
            raise DataError(f"DataLoader state has {state['batches_done']} batches of its "
                            f"epoch done, but this loader's epochs have {len(self)} batches")


def collate(samples, indices):
    """One batch from samples of a PyTorch-style dataset (each a tuple of fields, or
    one field): a tuple with each field's values stacked along a new first axis."""
    fields = [tuple(s) if isinstance(s, (tuple, list)) else (s,) for s in samples]
    width = len(fields[0]) if fields else 0
    for sample, index in zip(fields, indices):
        if len(sample) != width:
            raise DataError(f"dataset[{index}] has {len(sample)} fields, but "
                            f"dataset[{indices[0]}] has {width}")
    batch = []
    for f in range(width):
        values = [np.asarray(sample[f]) for sample in fields]
        shapes = {v.shape for v in values}
        if len(shapes) > 1:
            raise DataError(f"field {f} of the samples {np.asarray(indices[:8]).tolist()} has shapes "
                            f"{sorted(shapes)}; every sample's field needs the same shape "
                            f"to stack into a batch")
        batch.append(np.stack(values))
    return tuple(batch)
