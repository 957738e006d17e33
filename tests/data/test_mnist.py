"""MNIST IDX files: the real test set, and broken files written here."""
import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

import graphc as gc
from graphc.data import DataError, load_mnist, load_mnist_idx, read_idx

DATA = Path(__file__).parents[2].parent / "shared" / "data"
MNIST = DATA / "mnist"
IMAGES, LABELS = MNIST / "t10k-images-idx3-ubyte.gz", MNIST / "t10k-labels-idx1-ubyte.gz"
needs_mnist = pytest.mark.skipif(not IMAGES.exists() or not LABELS.exists(),
                                 reason=f"the shared MNIST files are missing from {MNIST}")


def idx_bytes(array, magic):
    """An IDX file holding a uint8 array, with the given magic number."""
    array = np.asarray(array, np.uint8)
    return struct.pack(f">I{array.ndim}I", magic, *array.shape) + array.tobytes()


def write_pair(folder, images, labels, gz=False):
    opener = gzip.open if gz else open
    paths = folder / ("img.idx" + ".gz" * gz), folder / ("lbl.idx" + ".gz" * gz)
    for path, data in zip(paths, (idx_bytes(images, 2051), idx_bytes(labels, 2049))):
        with opener(path, "wb") as f:
            f.write(data)
    return paths


@needs_mnist
def test_real_test_set_loads_with_the_documented_counts():
    x, y = load_mnist_idx(IMAGES, LABELS)
    assert x.shape == (10000, 1, 28, 28) and x.dtype == np.float32
    assert y.shape == (10000,) and y.dtype == np.int64
    assert x.min() == 0.0 and x.max() == 1.0
    np.testing.assert_array_equal(np.bincount(y), [980, 1135, 1032, 1010, 982, 892, 958,
                                                   1028, 974, 1009])
    assert 0.1 < x.mean() < 0.15           # mostly background, strokes near 1


@needs_mnist
def test_real_test_set_raw_pixels_and_folder_helper():
    raw, y = load_mnist_idx(IMAGES, LABELS, normalize=False)
    assert raw.dtype == np.uint8 and raw.max() == 255
    x, y2 = load_mnist(MNIST)
    np.testing.assert_array_equal(x, raw.astype(np.float32) / 255)
    np.testing.assert_array_equal(y, y2)


@pytest.mark.parametrize("gz", [False, True])
def test_written_files_round_trip(tmp_path, gz):
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (5, 3, 4)), rng.integers(0, 10, 5)
    x, y = load_mnist_idx(*write_pair(tmp_path, images, labels, gz))
    np.testing.assert_allclose(x[:, 0], images / 255, rtol=1e-6)
    np.testing.assert_array_equal(y, labels)


def test_truncated_file_names_the_file_and_the_shortfall(tmp_path):
    images_path, labels_path = write_pair(tmp_path, np.zeros((4, 28, 28)), np.zeros(4))
    images_path.write_bytes(images_path.read_bytes()[:-100])
    with pytest.raises(DataError, match=r"img\.idx: truncated.*3136 bytes.*found 3036"):
        load_mnist_idx(images_path, labels_path)


def test_a_header_whose_dimensions_overflow_int64_is_a_data_error(tmp_path):
    path = tmp_path / "huge.idx"
    path.write_bytes(b"\0\0\x08\x04" + struct.pack(">4I", 65536, 65536, 65536, 65536))
    with pytest.raises(DataError, match=r"huge\.idx: truncated IDX file: dimensions \(65536, "
                                        r".*need 18446744073709551616 bytes of data, found 0"):
        read_idx(path)


def test_more_dimensions_than_an_array_has_is_a_data_error(tmp_path):
    path = tmp_path / "ndim255.idx"
    path.write_bytes(b"\0\0\x08\xff" + struct.pack(">I", 1) * 255 + b"\0")
    with pytest.raises(DataError, match=r"ndim255\.idx: corrupt IDX header: it declares "
                                        r"255 dimensions, but an array has at most 32"):
        read_idx(path)


def test_an_empty_array_too_large_to_index_is_a_data_error(tmp_path):
    path = tmp_path / "empty_huge.idx"
    path.write_bytes(b"\0\0\x08\x04" + struct.pack(">4I", 0, 2**32 - 1, 2**32 - 1, 2**32 - 1))
    with pytest.raises(DataError, match=r"empty_huge\.idx: corrupt IDX header: dimensions "
                                        r"\(0, 4294967295, .*too large to index"):
        read_idx(path)
    path.write_bytes(b"\0\0\x08\x02" + struct.pack(">2I", 0, 5))
    assert read_idx(path).shape == (0, 5)


def test_truncated_gzip_is_a_data_error(tmp_path):
    images_path, labels_path = write_pair(tmp_path, np.ones((4, 28, 28)), np.zeros(4), gz=True)
    images_path.write_bytes(images_path.read_bytes()[:30])
    with pytest.raises(DataError, match=r"img\.idx\.gz: corrupt or truncated gzip"):
        load_mnist_idx(images_path, labels_path)


def test_wrong_magic_number_names_the_file(tmp_path):
    images_path, labels_path = write_pair(tmp_path, np.zeros((2, 4, 4)), np.zeros(2))
    with pytest.raises(DataError, match=r"img\.idx: wrong magic number 2051.*expected 2049"):
        load_mnist_idx(images_path, images_path)     # the images file given as labels
    with pytest.raises(gc.GraphcError, match=r"lbl\.idx: wrong magic number 2049"):
        load_mnist_idx(labels_path, labels_path)


def test_missing_and_empty_files_give_one_clear_error(tmp_path):
    images_path, labels_path = write_pair(tmp_path, np.zeros((2, 4, 4)), np.zeros(2))
    with pytest.raises(DataError, match=r"file not found: .*nope\.gz\n  at ") as info:
        load_mnist_idx(tmp_path / "nope.gz", labels_path)
    assert info.value.loc.file == __file__
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(DataError, match=r"file is empty: .*empty\n  at "):
        load_mnist_idx(images_path, tmp_path / "empty")


def test_count_mismatch_and_label_range(tmp_path):
    images_path, labels_path = write_pair(tmp_path, np.zeros((3, 4, 4)), [1, 2])
    with pytest.raises(DataError, match="holds 3 images but .*lbl.idx holds 2 labels"):
        load_mnist_idx(images_path, labels_path)
    images_path, labels_path = write_pair(tmp_path, np.zeros((3, 4, 4)), [1, 12, 2])
    assert load_mnist_idx(images_path, labels_path)[1].tolist() == [1, 12, 2]
    with pytest.raises(DataError, match=r"lbl.idx: label 12 at index 1 is outside \[0, 10\)"):
        load_mnist_idx(images_path, labels_path, num_classes=10)


def test_bytes_beyond_the_dimensions_are_reported(tmp_path):
    path = tmp_path / "long.idx"
    path.write_bytes(idx_bytes(np.zeros(4), 2049) + b"\0\0")
    with pytest.raises(DataError, match="2 bytes beyond the 4"):
        read_idx(path, 2049)
