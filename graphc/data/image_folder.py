"""ImageFolder: a dataset of images stored one subfolder per class (as torchvision's).

    root/cat/001.png, root/cat/002.png, root/dog/001.pgm, ...
    ds = ImageFolder(root, size=(32, 32))     # ds.classes == ["cat", "dog"]
    x, y = ds[np.arange(8)]                   # float32 (8, 3, 32, 32) in [0, 1], int64 (8,)

PNG, PGM/PPM and .npy are read without any imaging library; other formats
(JPEG, BMP, GIF, TIFF, WebP) need Pillow, and without it the folder is refused
at construction with an error naming the first such file.
"""
import os

import numpy as np

from graphc.data.errors import DataError
from graphc.data.mnist import read_bytes
from graphc.data.png import UnsupportedImage, decode_netpbm, decode_png

__all__ = ["ImageFolder", "load_image", "IMAGE_EXTENSIONS"]

NATIVE_EXTENSIONS = {".png": "PNG", ".pgm": "PGM", ".ppm": "PPM", ".pnm": "PNM", ".npy": "NPY"}
PILLOW_EXTENSIONS = {".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".gif": "GIF",
                     ".tif": "TIFF", ".tiff": "TIFF", ".webp": "WebP"}
IMAGE_EXTENSIONS = tuple(sorted({**NATIVE_EXTENSIONS, **PILLOW_EXTENSIONS}))


def _pillow():
    try:
        from PIL import Image
        return Image
    except ImportError:
        return None


def _format(path):
    return os.path.splitext(path)[1].lower()


def _check_readable(path):
    extension = _format(path)
    if extension in PILLOW_EXTENSIONS and _pillow() is None:
        raise DataError(f"{path}: {PILLOW_EXTENSIONS[extension]} images need Pillow, which "
                        f"is not installed; pip install pillow, or convert the images to "
                        f"PNG, PGM/PPM or .npy")


def _to_unit_float(pixels, scale):
    return pixels.astype(np.float32) / np.float32(scale)


def _with_pillow(path, reason):
    """The image read by Pillow, if it is installed; else the DataError `reason`."""
    image_module = _pillow()
    if image_module is None:
        raise reason
    try:
        with image_module.open(path) as image:
            rgb = image.convert("RGBA" if "A" in image.getbands() else "RGB")
            return np.asarray(rgb, dtype=np.float32) / np.float32(255.0)
    except (OSError, ValueError, SyntaxError, image_module.DecompressionBombError) as e:
        raise DataError(f"{reason} (and Pillow cannot read it either: {e})") from None


def _npy_hwc(path):
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise DataError(f"{path}: not a readable .npy array ({e})") from None
    if array.ndim == 2:
        array = array[:, :, None]
    elif array.ndim == 3 and array.shape[2] not in (1, 2, 3, 4) and array.shape[0] in (1, 3, 4):
        array = array.transpose(1, 2, 0)          # CHW -> HWC
    if array.ndim != 3 or array.shape[2] not in (1, 2, 3, 4) or array.dtype.kind not in "biuf":
        raise DataError(f"{path}: a .npy image must be numeric HW, HWC or CHW with 1-4 "
                        f"channels, got {array.dtype} of shape {array.shape}")
    if array.dtype.kind in "biu" and array.dtype != np.bool_:
        return _to_unit_float(array, np.iinfo(array.dtype).max)
    return array.astype(np.float32)               # floats are taken as already in [0, 1]


def _read_hwc(path):
    """(H, W, C) float32 in [0, 1], C = 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA)."""
    extension = _format(path)
    if extension == ".npy":
        return _npy_hwc(path)
    if extension not in NATIVE_EXTENSIONS:
        _check_readable(path)
        return _with_pillow(path, DataError(f"{path}: unsupported image format"))
    data = read_bytes(path, "image")
    try:
        if extension == ".png":
            pixels = decode_png(data, path)
            return _to_unit_float(pixels, 65535 if pixels.dtype == np.uint16 else 255)
        pixels, maxval = decode_netpbm(data, path)
        return _to_unit_float(pixels, maxval)
    except UnsupportedImage as reason:
        return _with_pillow(path, reason)


def _channels(hwc, grayscale):
    """Alpha dropped; gray -> RGB replicated, or RGB -> gray with ITU-R 601-2 luma."""
    if hwc.shape[2] in (2, 4):
        hwc = hwc[:, :, :-1]
    if grayscale and hwc.shape[2] == 3:
        luma = np.array([0.299, 0.587, 0.114], np.float32)
        return (hwc @ luma)[:, :, None]
    if not grayscale and hwc.shape[2] == 1:
        return np.repeat(hwc, 3, axis=2)
    return hwc


def _resize_nearest(hwc, size):
    height, width = hwc.shape[:2]
    rows = np.minimum(((np.arange(size[0]) + 0.5) * height / size[0]).astype(np.int64), height - 1)
    cols = np.minimum(((np.arange(size[1]) + 0.5) * width / size[1]).astype(np.int64), width - 1)
    return hwc[rows[:, None], cols[None, :]]


def load_image(path, size=None, grayscale=False):
    """One image as float32 CHW in [0, 1]: 1 channel if `grayscale`, else 3 (RGB);
    alpha is dropped; `size=(H, W)` resizes with nearest-neighbour sampling."""
    path = os.fspath(path)
    hwc = _channels(_read_hwc(path), grayscale)
    if size is not None:
        hwc = _resize_nearest(hwc, size)
    return np.ascontiguousarray(hwc.transpose(2, 0, 1), dtype=np.float32)


def _scan(root):
    """Sorted class names and (path, class index) for every image under each class folder."""
    if not os.path.isdir(root):
        raise DataError(f"ImageFolder root is not a folder: {root}")
    classes = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    if not classes:
        raise DataError(f"ImageFolder found no class subfolders in {root}")
    samples, empty = [], []
    for index, name in enumerate(classes):
        found = []
        for folder, subfolders, files in os.walk(os.path.join(root, name), followlinks=True):
            subfolders.sort()
            found += [(os.path.join(folder, f), index) for f in sorted(files)
                      if _format(f) in IMAGE_EXTENSIONS and not f.startswith(".")]
        if not found:
            empty.append(name)
        samples += found
    if empty:
        raise DataError(f"ImageFolder class folders with no images ({', '.join(IMAGE_EXTENSIONS)}"
                        f") in {root}: {', '.join(empty)}")
    return classes, samples


class ImageFolder:
    """Images in `root/<class name>/**`, classes numbered in sorted name order.

    `ds[i]` is `(image, label)`; `ds[index_array]` is `(images, labels)` stacked,
    so a DataLoader batches it. Images are float32 CHW in [0, 1] (see
    `load_image`), then passed through `transform` if given. Files with other
    extensions are ignored; hidden files and folders too.
    """

    def __init__(self, root, transform=None, size=None, grayscale=False):
        self.root, self.transform = os.fspath(root), transform
        self.size = None if size is None else (int(size[0]), int(size[1]))
        self.grayscale = grayscale
        self.classes, self.samples = _scan(self.root)
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)}
        self.targets = np.array([label for _, label in self.samples], dtype=np.int64)
        for path, _ in self.samples:
            _check_readable(path)

    def __len__(self):
        return len(self.samples)

    def load(self, i):
        """The image of sample i, transformed."""
        image = load_image(self.samples[i][0], self.size, self.grayscale)
        return image if self.transform is None else self.transform(image)

    def __getitem__(self, index):
        if np.ndim(index) == 0:
            return self.load(int(index)), int(self.targets[index])
        indices = np.asarray(index, dtype=np.int64).reshape(-1)
        images = [self.load(int(i)) for i in indices]
        for i, image in zip(indices[1:], images[1:]):
            if image.shape != images[0].shape:
                raise DataError(
                    f"ImageFolder cannot batch images of different shapes: "
                    f"{self.samples[int(indices[0])][0]} is {images[0].shape}, "
                    f"{self.samples[int(i)][0]} is {image.shape}; pass size=(H, W)")
        if not images:
            return np.zeros((0,), np.float32), self.targets[indices]
        return np.stack(images), self.targets[indices]
