"""gc.data: datasets, loaders and the generated default dataset (plain NumPy, no graph).

    from graphc.data import DataLoader, load_default
    (x, y), (x_test, y_test) = load_default()
    for xb, yb in DataLoader((x, y), batch_size=64, shuffle=True, seed=0):
        ...

Every failure caused by the data (a missing, empty or corrupt file, a label out
of range, arrays of different lengths) raises `DataError`, a `gc.GraphcError`.
"""
from graphc.data.errors import DataError
from graphc.data.image_folder import IMAGE_EXTENSIONS, ImageFolder, load_image
from graphc.data.loader import ArrayDataset, DataLoader, Subset, as_dataset, random_split
from graphc.data.mnist import load_mnist, load_mnist_idx, read_idx
from graphc.data.png import decode_netpbm, decode_png
from graphc.data.synthetic import SHAPE_CLASSES, load_default, shapes
from graphc.data.text import PAD, UNK, Tokenizer, Vocabulary, load_labelled_sentences

__all__ = [
    "DataError", "ArrayDataset", "Subset", "DataLoader", "random_split", "as_dataset",
    "read_idx", "load_mnist_idx", "load_mnist", "load_labelled_sentences", "Tokenizer",
    "Vocabulary", "PAD", "UNK", "ImageFolder", "load_image", "decode_png", "decode_netpbm",
    "IMAGE_EXTENSIONS", "shapes", "load_default", "SHAPE_CLASSES",
]
