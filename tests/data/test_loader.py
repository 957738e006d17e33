"""DataLoader, ArrayDataset, Subset and random_split."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import graphc as gc
from graphc.data import ArrayDataset, DataError, DataLoader, Subset, random_split


def dataset(n, seed=0):
    """x[i] = (i, -i) and y[i] = 10 * i, so a batch tells which samples it holds."""
    x = np.stack([np.arange(n), -np.arange(n)], axis=1).astype(np.float32)
    return x, np.arange(n, dtype=np.int64) * 10


def served(loader):
    """The sample ids of one epoch, batch by batch (checking x and y stay paired)."""
    batches = []
    for xb, yb in loader:
        np.testing.assert_array_equal(xb[:, 0].astype(np.int64) * 10, yb)
        batches.append(yb // 10)
    return batches


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 60), batch_size=st.integers(1, 17), shuffle=st.booleans(),
       drop_last=st.booleans())
def test_an_epoch_serves_every_sample_once_in_batches(n, batch_size, shuffle, drop_last):
    loader = DataLoader(dataset(n), batch_size, shuffle=shuffle, drop_last=drop_last, seed=3)
    batches = served(loader)
    full, rest = divmod(n, batch_size)
    expected_sizes = [batch_size] * full + ([rest] if rest and not drop_last else [])
    assert [len(b) for b in batches] == expected_sizes
    assert len(loader) == len(expected_sizes)
    ids = np.concatenate(batches) if batches else np.zeros(0, np.int64)
    assert len(set(ids.tolist())) == len(ids)
    if not drop_last:
        np.testing.assert_array_equal(np.sort(ids), np.arange(n))
    if not shuffle:
        np.testing.assert_array_equal(ids, np.arange(len(ids)))


def test_last_partial_batch_is_kept_unless_drop_last():
    x, y = dataset(10)
    assert [len(b) for b in served(DataLoader((x, y), batch_size=4))] == [4, 4, 2]
    assert [len(b) for b in served(DataLoader((x, y), batch_size=4, drop_last=True))] == [4, 4]
    assert len(DataLoader((x, y), batch_size=4)) == 3
    assert len(DataLoader((x, y), batch_size=4, drop_last=True)) == 2


def test_same_seed_same_orders_and_each_epoch_a_new_order():
    a = DataLoader(dataset(50), batch_size=8, shuffle=True, seed=7)
    b = DataLoader(dataset(50), batch_size=8, shuffle=True, seed=7)
    a1, a2 = np.concatenate(served(a)), np.concatenate(served(a))
    np.testing.assert_array_equal(a1, np.concatenate(served(b)))
    np.testing.assert_array_equal(a2, np.concatenate(served(b)))
    assert not np.array_equal(a1, a2)
    other = DataLoader(dataset(50), batch_size=8, shuffle=True, seed=8)
    assert not np.array_equal(a1, np.concatenate(served(other)))


def test_without_seed_gc_manual_seed_makes_shuffles_reproducible():
    gc.manual_seed(123)
    first = np.concatenate(served(DataLoader(dataset(40), 5, shuffle=True)))
    gc.manual_seed(123)
    again = np.concatenate(served(DataLoader(dataset(40), 5, shuffle=True)))
    np.testing.assert_array_equal(first, again)


def test_resumed_loader_continues_with_the_same_epoch_orders():
    original = DataLoader(dataset(30), batch_size=4, shuffle=True, seed=11)
    served(original)
    state = original.state_dict()
    assert state["epoch"] == 1 and state["batches_done"] == 0
    expected = [served(original) for _ in range(2)]
    resumed = DataLoader(dataset(30), batch_size=4, shuffle=True, seed=99)
    resumed.load_state_dict(state)
    for epoch in expected:
        for got, want in zip(served(resumed), epoch):
            np.testing.assert_array_equal(got, want)


def test_state_saved_mid_epoch_resumes_at_the_next_batch():
    original = DataLoader(dataset(30), batch_size=4, shuffle=True, seed=5)
    reference = served(DataLoader(dataset(30), batch_size=4, shuffle=True, seed=5))
    iterator = iter(original)
    next(iterator), next(iterator), next(iterator)
    state = original.state_dict()
    assert (state["epoch"], state["batches_done"]) == (0, 3)
    resumed = DataLoader(dataset(30), batch_size=4, shuffle=True)
    resumed.load_state_dict(state)
    rest = served(resumed)
    assert len(rest) == len(reference) - 3
    for got, want in zip(rest, reference[3:]):
        np.testing.assert_array_equal(got, want)
    assert resumed.state_dict()["epoch"] == 1


def test_state_of_another_dataset_size_is_refused():
    state = DataLoader(dataset(30), 4, shuffle=True, seed=1).state_dict()
    with pytest.raises(DataError, match="30 samples.*has 31"):
        DataLoader(dataset(31), 4, shuffle=True, seed=1).load_state_dict(state)


def test_arrays_of_different_lengths_are_refused():
    x, y = dataset(10)
    with pytest.raises(gc.GraphcError, match="same length.*array 0 has 10, array 1 has 9"):
        DataLoader((x, y[:9]), batch_size=2)


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, True])
def test_bad_batch_size_is_refused(batch_size):
    with pytest.raises(DataError, match="batch_size"):
        DataLoader(dataset(4), batch_size)


@pytest.mark.parametrize("call", [
    lambda: DataLoader(dataset(4), batch_size=0),
    lambda: DataLoader(dataset(4), shuffle=True, seed=-1),
    lambda: DataLoader((np.zeros(4), np.zeros(3))),
    lambda: DataLoader(None),
    lambda: random_split(dataset(10), [0.5, 0.6]),
    lambda: random_split(dataset(10), [-1, 11]),
    lambda: Subset(dataset(10), [10]),
    lambda: DataLoader(dataset(4), 2).load_state_dict({"epoch": 0}),
    lambda: DataLoader(dataset(4), 2).load_state_dict(DataLoader(dataset(5), 2).state_dict()),
])
def test_data_errors_name_the_users_line(call):
    with pytest.raises(DataError, match=r"\n  at .*test_loader\.py:\d+") as info:
        call()
    assert info.value.loc.file == __file__


def test_an_object_dataset_is_indexed_with_index_arrays():
    class Squares:
        def __len__(self):
            return 7

        def __getitem__(self, index):
            index = np.asarray(index)
            return index ** 2, index

    batches = list(DataLoader(Squares(), batch_size=3))
    assert [len(b[0]) for b in batches] == [3, 3, 1]
    np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), np.arange(7) ** 2)


class PyTorchStyle:
    """A map-style dataset as PyTorch users write them: one int in, one sample
    out (a list of rows, a Python int label), counting its calls."""

    def __init__(self, n):
        self.rows = [[float(i), -float(i)] for i in range(n)]
        self.calls = 0

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        self.calls += 1
        return np.asarray(self.rows[i], np.float32), 10 * i


def test_a_pytorch_style_dataset_is_served_sample_by_sample_and_stacked():
    data = PyTorchStyle(11)
    loader = DataLoader(data, batch_size=4, shuffle=True, seed=3)
    got = served(loader)
    assert sorted(np.concatenate(got).tolist()) == list(range(11))
    assert [len(b) for b in got] == [4, 4, 3]
    assert data.calls == 1 + 11         # the first batch's index array, refused, then each
    xb, yb = next(iter(loader))
    assert xb.shape == (4, 2) and xb.dtype == np.float32 and yb.dtype.kind == "i"
    same = DataLoader(ArrayDataset(*dataset(11)), batch_size=4, shuffle=True, seed=3)
    assert [b.tolist() for b in served(same)] == [b.tolist() for b in got]   # same order


def test_a_pytorch_style_dataset_trains_like_its_arrays():
    x, y = np.random.default_rng(0).standard_normal((24, 3)).astype("float32"), \
        np.arange(24) % 2

    class Samples:
        def __len__(self):
            return 24

        def __getitem__(self, i):
            return x[i].tolist(), int(y[i])

    def trained(data):
        gc.manual_seed(0)
        model = gc.nn.Linear(3, 2)
        trainer = gc.train.Trainer(model, gc.nn.cross_entropy,
                                   gc.optim.SGD(model.parameters(), lr=0.5), device="reference")
        trainer.fit(DataLoader(data, batch_size=8), epochs=2, progress=False)
        return [np.array(p.value) for p in model.parameters()]

    for a, b in zip(trained(Samples()), trained((x, y))):
        np.testing.assert_allclose(a, b, rtol=1e-6)


@pytest.mark.parametrize("check", ["raise", "assert"])
def test_a_pytorch_style_dataset_that_checks_its_index_is_served_too(check):
    """`if i >= len(self): raise IndexError` on an index array is NumPy's ValueError
    (the truth value of an array), an assert an AssertionError: found by probing."""
    class Checked:
        def __len__(self):
            return 10

        def __getitem__(self, i):
            if check == "raise" and i >= len(self):
                raise IndexError(i)
            assert check == "raise" or 0 <= i < len(self)
            return np.full(3, i, np.float32), i

    batches = list(DataLoader(Checked(), batch_size=4))
    assert [b[1].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]

    class Broken(Checked):
        def __getitem__(self, i):
            raise RuntimeError("the file is missing")

    with pytest.raises(RuntimeError, match="the file is missing"):
        next(iter(DataLoader(Broken(), batch_size=4)))


def test_samples_that_do_not_stack_are_refused_naming_them():
    class Ragged:
        rows = [[0.0], [0.0, 1.0], [0.0, 1.0, 2.0]]

        def __len__(self):
            return 3

        def __getitem__(self, i):
            return self.rows[i], i

    with pytest.raises(DataError, match=r"field 0 of the samples \[0, 1, 2\] has shapes "
                                        r"\[\(1,\), \(2,\), \(3,\)\]"):
        next(iter(DataLoader(Ragged(), batch_size=3)))


def test_a_single_array_yields_one_element_tuples():
    (batch,) = next(iter(DataLoader(np.arange(5), batch_size=5)))
    np.testing.assert_array_equal(batch, np.arange(5))


def test_random_split_fractions_are_disjoint_seeded_and_cover_everything():
    x, y = dataset(101)
    train, test = random_split((x, y), [0.8, 0.2], seed=0)
    assert (len(train), len(test)) == (81, 20)
    ids = np.concatenate([train[np.arange(len(train))][1], test[np.arange(len(test))][1]])
    np.testing.assert_array_equal(np.sort(ids) // 10, np.arange(101))
    again, _ = random_split((x, y), [0.8, 0.2], seed=0)
    np.testing.assert_array_equal(again.indices, train.indices)
    other, _ = random_split((x, y), [0.8, 0.2], seed=1)
    assert not np.array_equal(other.indices, train.indices)


def test_random_split_lengths_and_bad_arguments():
    parts = random_split(ArrayDataset(np.arange(10)), [3, 3, 4], seed=2)
    assert [len(p) for p in parts] == [3, 3, 4]
    with pytest.raises(DataError, match="sum to 9"):
        random_split(ArrayDataset(np.arange(10)), [3, 3, 3])
    with pytest.raises(DataError, match="sum to 1"):
        random_split(ArrayDataset(np.arange(10)), [0.5, 0.4])


def test_subset_of_subset_feeds_a_loader():
    x, y = dataset(20)
    evens = Subset((x, y), np.arange(0, 20, 2))
    tail = Subset(evens, [7, 8, 9])
    (_, yb), = list(DataLoader(tail, batch_size=8))
    np.testing.assert_array_equal(yb // 10, [14, 16, 18])
    with pytest.raises(DataError, match=r"\[0, 20\)"):
        Subset((x, y), [0, 20])


@pytest.mark.parametrize("data, message", [
    (([[1.0], [1.0, 2.0]], [0, 1]), "dataset array 0 is ragged: its rows have different lengths"),
    ({"x": np.zeros((4, 2))}, "a dataset must be a tuple of arrays.*got a dict"),
    ("abc", "a dataset must be a tuple of arrays.*got a str"),
])
def test_a_ragged_list_or_a_dict_is_not_a_dataset(data, message):
    with pytest.raises(DataError, match=message):
        DataLoader(data, batch_size=2)


@pytest.mark.parametrize("state, message", [
    (None, "load_state_dict needs the dict from DataLoader.state_dict\\(\\), got a NoneType"),
    ({"epoch": "a", "batches_done": 0, "seed": 1}, "state 'epoch' must be an int >= 0, got 'a'"),
    ({"epoch": 0, "batches_done": -3, "seed": 1}, "'batches_done' must be an int >= 0, got -3"),
    ({"epoch": None, "batches_done": 0, "seed": 1}, "'epoch' must be an int >= 0, got None"),
    ({"epoch": 0, "batches_done": 100, "seed": 1},
     "100 batches of its epoch done, but this loader's epochs have 5 batches"),
    ({"epoch": 0, "batches_done": 0, "seed": "x"}, "'seed' must be an int >= 0, got 'x'"),
    ({"epoch": 1, "batches_done": 2, "seed": None}, "has no seed, but this loader shuffles"),
])
def test_a_bad_loader_state_is_refused_and_changes_nothing(state, message):
    loader, untouched = (DataLoader(dataset(20), 4, shuffle=True, seed=1) for _ in range(2))
    served(loader), served(untouched)
    with pytest.raises(DataError, match=message):
        loader.load_state_dict(state)
    assert loader.state_dict() == untouched.state_dict()
    np.testing.assert_array_equal(served(loader), served(untouched))       # epoch 1, in full


@pytest.mark.parametrize("indices, message", [
    ([0.5], "Subset indices must be ints, got float64 values such as 0.5"),
    (["a"], "Subset indices must be ints"),
    ([None], "Subset indices must be ints, got object values such as None"),
    ([[0], [1, 2]], "Subset indices must be a flat list of ints"),
])
def test_subset_indices_must_be_ints(indices, message):
    with pytest.raises(DataError, match=message):
        Subset(dataset(4), indices)


@pytest.mark.parametrize("parts, message", [
    (["a"], r"random_split needs non-negative lengths or fractions, got \['a'\]"),
    ([float("nan"), 1.0], "random_split needs non-negative lengths or fractions"),
    (None, "random_split needs a list of lengths or fractions, got None"),
    (0.5, "random_split needs a list of lengths or fractions, got 0.5"),
])
def test_random_split_refuses_what_is_not_lengths_or_fractions(parts, message):
    with pytest.raises(DataError, match=message):
        random_split(dataset(10), parts)


def test_random_split_refuses_a_bad_seed():
    with pytest.raises(DataError, match="random_split seed must be a non-negative int, got 'a'"):
        random_split(dataset(10), [5, 5], seed="a")
