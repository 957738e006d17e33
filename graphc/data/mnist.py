"""MNIST-style IDX files (plain or gzip), read and checked.

An IDX file is a big-endian header (two zero bytes, a type code, the number of
dimensions, then one int32 per dimension) followed by the values, row-major.
MNIST's images are type 0x08 (uint8) with 3 dimensions (magic 2051), its labels
uint8 with 1 dimension (magic 2049).
"""
import gzip
import math
import os
import struct
import zlib

import numpy as np

from graphc.data.errors import DataError

__all__ = ["read_idx", "load_mnist_idx", "load_mnist"]

_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049
MAX_NDIM = 32       # the most dimensions a NumPy array has (NumPy 1's limit; 2 allows 64)


def read_bytes(path, what="data"):
    """The file's bytes, gunzipped when it is gzip; DataError if missing, empty or corrupt."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DataError(f"{what} file not found: {path}")
    if os.path.isdir(path):
        raise DataError(f"{what} path is a folder, not a file: {path}")
    with open(path, "rb") as f:
        raw = f.read()
    if not raw:
        raise DataError(f"{what} file is empty: {path}")
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(f"{path}: corrupt or truncated gzip data ({e})") from None
        if not raw:
            raise DataError(f"{what} file is empty (after gunzip): {path}")
    return raw


def read_idx(path, magic=None):
    """The array stored in an IDX file; `magic`, if given, is the header to expect."""
    path = os.fspath(path)
    raw = read_bytes(path, "IDX")
    if len(raw) < 4:
        raise DataError(f"{path}: truncated IDX file: {len(raw)} bytes, shorter than the "
                        f"4-byte magic number")
    (found,) = struct.unpack(">I", raw[:4])
    type_code, ndim = raw[2], raw[3]
    if magic is not None and found != magic:
        raise DataError(f"{path}: wrong magic number {found} (0x{found:08x}); expected "
                        f"{magic} (0x{magic:08x}). Is this the right IDX file?")
    if raw[:2] != b"\0\0" or type_code not in _IDX_TYPES or ndim == 0:
        raise DataError(f"{path}: not an IDX file (magic number 0x{found:08x})")
    if ndim > MAX_NDIM:
        raise DataError(f"{path}: corrupt IDX header: it declares {ndim} dimensions, but an "
                        f"array has at most {MAX_NDIM}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header: {len(raw)} bytes, the header "
                        f"of {ndim} dimensions needs {header}")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(_IDX_TYPES[type_code])
    expected = math.prod(dims) * dtype.itemsize      # Python ints: no overflow
    found_bytes = len(raw) - header
    if found_bytes < expected:
        raise DataError(f"{path}: truncated IDX file: dimensions {dims} need {expected} "
                        f"bytes of data, found {found_bytes}")
    if found_bytes > expected:
        raise DataError(f"{path}: corrupt IDX file: {found_bytes - expected} bytes beyond "
                        f"the {expected} that dimensions {dims} need")
    if not _indexable(dims, dtype):
        raise DataError(f"{path}: corrupt IDX header: dimensions {dims} describe an empty "
                        f"array too large to index")
    return np.frombuffer(raw, dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def _indexable(dims, dtype):
    """Whether NumPy can make an array of shape `dims` (one with a zero dimension too:
    it refuses any whose non-zero dimensions multiply past the largest index)."""
    nonzero = math.prod(d for d in dims if d) * dtype.itemsize
    return nonzero <= np.iinfo(np.intp).max


def load_mnist_idx(images_path, labels_path, normalize=True, num_classes=None):
    """MNIST images and labels from IDX files (plain or .gz).

    Returns `(x, y)`: x of shape (N, 1, rows, cols), float32 in [0, 1] when
    `normalize` (else the raw uint8 pixels), and y int64 of shape (N,). Raises
    DataError naming the file if either is missing, truncated, has the wrong
    magic number or dimensions, if the counts differ, or if `num_classes` is
    given and a label lies outside [0, num_classes).
    """
    images = read_idx(images_path, IMAGES_MAGIC)
    labels = read_idx(labels_path, LABELS_MAGIC)
    if images.shape[1] == 0 or images.shape[2] == 0:
        raise DataError(f"{os.fspath(images_path)}: images of size {images.shape[1:]} "
                        f"hold no pixels")
    if len(images) != len(labels):
        raise DataError(f"{os.fspath(images_path)} holds {len(images)} images but "
                        f"{os.fspath(labels_path)} holds {len(labels)} labels")
    y = labels.astype(np.int64)
    if num_classes is not None and len(y):
        bad = np.flatnonzero((y < 0) | (y >= num_classes))
        if bad.size:
            raise DataError(f"{os.fspath(labels_path)}: label {y[bad[0]]} at index "
                            f"{bad[0]} is outside [0, {num_classes}) ({bad.size} such labels)")
    x = images[:, None, :, :]
    return (x.astype(np.float32) / np.float32(255.0) if normalize else x), y


def load_mnist(folder, split="t10k", normalize=True):
    """`load_mnist_idx` on `{split}-images-idx3-ubyte[.gz]` and its labels in `folder`."""
    def find(stem):
        for name in (stem + ".gz", stem):
            candidate = os.path.join(os.fspath(folder), name)
            if os.path.exists(candidate):
                return candidate
        raise DataError(f"MNIST file not found: {os.path.join(os.fspath(folder), stem)}"
                        f"[.gz]")
    return load_mnist_idx(find(f"{split}-images-idx3-ubyte"),
                          find(f"{split}-labels-idx1-ubyte"), normalize, num_classes=10)
