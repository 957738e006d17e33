"""What `graphc train` trains: its small model zoo and the data sets it reads.

    data = load_data(path, limit=None, seed=0)      # None: the generated shapes
    model = build_model("cnn", data)    # cnn | mlp (images), rnn | lstm | gru | transformer (text)

`load_data` guarantees: a `TrainData` whose train and test parts are disjoint,
drawn by a seeded permutation (the same path, limit and seed always give the
same split), float32 images (N, C, H, W) in [0, 1] or int64 token ids (N, L),
int64 labels in [0, len(classes)); any problem with the path or the files is a
`gc.data.DataError` naming the path.
"""
import dataclasses
import os
import re

import numpy as np

import graphc as gc
from graphc.data import DataError

IMAGE_MODELS, TEXT_MODELS = ("cnn", "mlp"), ("rnn", "lstm", "gru", "transformer")
MODELS = IMAGE_MODELS + TEXT_MODELS
DEFAULT_TRAIN, DEFAULT_TEST = 8000, 2000        # the generated data set's sizes
TEST_FRACTION = 0.2
MAX_IMAGE_SIDE = 64                             # larger images are resized to 64x64
MAX_TOKENS = 32                                 # the unrolled RNN's length, at most
_MNIST = re.compile(r"^(?P<split>.+)-images-idx3-ubyte(\.gz)?$")


@dataclasses.dataclass
class TrainData:
    """A labelled data set split in two: kind "images" or "sentences"."""
    kind: str
    description: str
    train: tuple
    test: tuple
    classes: list
    vocabulary: object = None

    @property
    def sample_shape(self):
        return tuple(self.train[0].shape[1:])


# -- data ---------------------------------------------------------------------------
def load_data(path=None, limit=None, seed=0):
    """The data `graphc train --data PATH` means: None for the generated shapes, a
    folder of MNIST idx files, an idx images file, a labelled-sentences .txt file or
    a folder of them, or an image folder (one subfolder per class). At most `limit`
    samples in all, 80/20 between train and test unless the files split them."""
    if path is None:
        return _generated(limit, seed)
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DataError(f"data path not found: {path}")
    if os.path.isfile(path):
        match = _MNIST.match(os.path.basename(path))
        if match:
            return _mnist(os.path.dirname(path) or ".", [match["split"]], limit, seed)
        return _sentences([path], limit, seed)
    entries = sorted(e for e in os.listdir(path) if not e.startswith("."))
    splits = [m["split"] for m in map(_MNIST.match, entries) if m]
    if splits:
        return _mnist(path, splits, limit, seed)
    if any(os.path.isdir(os.path.join(path, e)) for e in entries):
        return _image_folder(path, limit, seed)
    texts = [os.path.join(path, e) for e in entries if e.endswith((".txt", ".tsv"))]
    if texts:
        return _sentences(texts, limit, seed)
    raise DataError(f"cannot tell what {path} holds: expected MNIST idx files, one "
                    f"subfolder of images per class, or labelled-sentence .txt files")


def _split_sizes(n, limit):
    """(train, test) sizes for n samples, at most `limit` in all, both at least 1."""
    n = min(n, limit) if limit is not None else n
    if n < 2:
        raise DataError(f"need at least 2 samples to train and test, got {n}")
    test = min(max(1, round(n * TEST_FRACTION)), n - 1)
    return n - test, test


def _split(arrays, limit, seed):
    """Seeded disjoint (train, test) tuples of `arrays`, at most `limit` samples."""
    n_train, n_test = _split_sizes(len(arrays[0]), limit)
    order = np.random.default_rng(seed).permutation(len(arrays[0]))
    train, test = order[:n_train], order[n_train:n_train + n_test]
    return tuple(a[train] for a in arrays), tuple(a[test] for a in arrays)


def _subset(arrays, n, seed):
    index = np.sort(np.random.default_rng(seed).permutation(len(arrays[0]))[:n])
    return tuple(a[index] for a in arrays)


def _generated(limit, seed):
    n_train, n_test = _split_sizes(DEFAULT_TRAIN + DEFAULT_TEST, limit)
    train, test = gc.data.load_default(n_train, n_test, seed=seed)
    return TrainData("images", f"generated shapes ({len(gc.data.SHAPE_CLASSES)} classes, "
                     f"28x28)", train, test, list(gc.data.SHAPE_CLASSES))


def _mnist(folder, splits, limit, seed):
    """Train on `train-*` and test on `t10k-*` when both are there, else split one."""
    if "train" in splits and "t10k" in splits:
        train = gc.data.load_mnist(folder, "train")
        test = gc.data.load_mnist(folder, "t10k")
        n_train, n_test = (len(train[0]), len(test[0])) if limit is None else \
            _split_sizes(len(train[0]) + len(test[0]), limit)
        train, test = _subset(train, n_train, seed), _subset(test, n_test, seed + 1)
    else:
        split = "t10k" if "t10k" in splits else splits[0]
        train, test = _split(gc.data.load_mnist(folder, split), limit, seed)
    x = train[0]
    return TrainData("images", f"MNIST idx files in {folder} ({x.shape[2]}x{x.shape[3]})",
                     train, test, [str(i) for i in range(10)])


def _image_folder(root, limit, seed):
    """Every image of the folder, read once, at the first image's size (at most 64x64),
    grayscale when the first image is."""
    probe = gc.data.ImageFolder(root)
    first = gc.data.load_image(probe.samples[0][0])
    gray = bool(np.all(first[0] == first[1]) and np.all(first[1] == first[2]))
    size = tuple(min(d, MAX_IMAGE_SIDE) for d in first.shape[1:])
    folder = gc.data.ImageFolder(root, size=size, grayscale=gray)
    index = np.arange(len(folder))
    train, test = _split((index, folder.targets), limit, seed)
    train, test = folder[train[0]], folder[test[0]]
    return TrainData("images", f"image folder {root} ({len(folder.classes)} classes, "
                     f"{size[0]}x{size[1]}{', gray' if gray else ''})",
                     train, test, list(folder.classes))


def _sentences(paths, limit, seed):
    """Sentences as pre-padded token ids: the pads come first, so an RNN's last
    step reads the sentence's last token. The vocabulary sees the train part only."""
    texts, labels = gc.data.load_labelled_sentences(paths)
    if labels.min() < 0:
        raise DataError(f"labels must be non-negative class numbers, found {labels.min()}")
    train, test = _split((np.array(texts, dtype=object), labels), limit, seed)
    vocab = gc.data.Vocabulary.build(list(train[0]), min_freq=1, max_size=20000)
    lengths = vocab.lengths(list(train[0]))
    max_len = int(np.clip(np.percentile(lengths, 95), 4, MAX_TOKENS))
    classes = [str(i) for i in range(max(int(labels.max()) + 1, 2))]
    name = paths[0] if len(paths) == 1 else f"{len(paths)} files in {os.path.dirname(paths[0])}"
    return TrainData("sentences", f"labelled sentences {name} (vocabulary {len(vocab)}, "
                     f"{max_len} tokens)", (_prepadded(vocab, train[0], max_len), train[1]),
                     (_prepadded(vocab, test[0], max_len), test[1]), classes, vocab)


def _prepadded(vocab, texts, max_len):
    ids = vocab.encode(list(texts), max_len)
    lengths = vocab.lengths(list(texts), max_len)
    for row, n in enumerate(lengths):
        ids[row] = np.roll(ids[row], max_len - n)
    return ids


# -- models -------------------------------------------------------------------------
class SmallCNN(gc.nn.Module):
    """conv3x3(16)-relu-maxpool2, conv3x3(32)-relu-maxpool2, fc(64)-relu, fc(classes)."""

    def __init__(self, channels, height, width, classes):
        super().__init__()
        self.conv1 = gc.nn.Conv2d(channels, 16, 3, padding=1)
        self.conv2 = gc.nn.Conv2d(16, 32, 3, padding=1)
        self.pool = gc.nn.MaxPool2d(2)
        self.flatten = gc.nn.Flatten()
        self.fc1 = gc.nn.Linear(32 * (height // 4) * (width // 4), 64)
        self.fc2 = gc.nn.Linear(64, classes)

    def forward(self, x):
        x = self.pool(gc.nn.relu(self.conv1(x)))
        x = self.pool(gc.nn.relu(self.conv2(x)))
        return self.fc2(gc.nn.relu(self.fc1(self.flatten(x))))


class MLP(gc.nn.Module):
    """flatten, fc(256)-relu, fc(128)-relu, fc(classes)."""

    def __init__(self, features, classes):
        super().__init__()
        self.flatten = gc.nn.Flatten()
        self.fc1 = gc.nn.Linear(features, 256)
        self.fc2 = gc.nn.Linear(256, 128)
        self.fc3 = gc.nn.Linear(128, classes)

    def forward(self, x):
        x = gc.nn.relu(self.fc1(self.flatten(x)))
        return self.fc3(gc.nn.relu(self.fc2(x)))


class TextClassifier(gc.nn.Module):
    """embedding(64, <pad> = 0) -> RNN, LSTM or GRU(64) -> the last step's output ->
    fc(classes)."""

    def __init__(self, vocab_size, classes, cell="lstm", embed=64, hidden=64):
        super().__init__()
        self.embedding = gc.nn.Embedding(vocab_size, embed, padding_idx=0)
        recurrent = {"rnn": gc.nn.RNN, "lstm": gc.nn.LSTM, "gru": gc.nn.GRU}[cell]
        self.rnn = recurrent(embed, hidden, batch_first=True)
        self.fc = gc.nn.Linear(hidden, classes)

    def forward(self, ids):
        output, _ = self.rnn(self.embedding(ids))
        return self.fc(output[:, -1])


class TransformerClassifier(gc.nn.Module):
    """embedding(64, <pad> = 0) + a learned position embedding -> a 2-layer
    TransformerEncoder (4 heads, feed-forward 128, pads masked out as keys) -> the mean
    over the sentence's tokens -> fc(classes)."""

    def __init__(self, vocab_size, classes, length, embed=64, heads=4, layers=2):
        super().__init__()
        self.embedding = gc.nn.Embedding(vocab_size, embed, padding_idx=0)
        self.position = gc.nn.Embedding(length, embed)
        layer = gc.nn.TransformerEncoderLayer(embed, heads, dim_feedforward=2 * embed,
                                              dropout=0.1, batch_first=True)
        self.encoder = gc.nn.TransformerEncoder(layer, layers)
        self.fc = gc.nn.Linear(embed, classes)

    def forward(self, ids):
        positions = gc.arange(ids.shape[1], dtype="int64")
        pad = ids == 0
        x = self.encoder(self.embedding(ids) + self.position(positions),
                         src_key_padding_mask=pad)
        words = gc.expand_dims(gc.cast(gc.logical_not(pad), x.dtype), -1)
        return self.fc(gc.sum(x * words, 1) / gc.maximum(gc.sum(words, 1), 1.0))


def build_model(name, data):
    """The model `name` sized for `data`; DataError when it cannot read that kind."""
    classes = len(data.classes)
    if name in TEXT_MODELS:
        if data.kind != "sentences":
            raise DataError(f"--model {name} reads sentences, but the data are {data.kind} "
                            f"({data.description}); use --model {' or '.join(IMAGE_MODELS)}")
        if name == "transformer":
            return TransformerClassifier(len(data.vocabulary), classes, data.sample_shape[0])
        return TextClassifier(len(data.vocabulary), classes, cell=name)
    if data.kind != "images":
        raise DataError(f"--model {name} reads images, but the data are {data.kind} "
                        f"({data.description}); use --model {' or '.join(TEXT_MODELS)}")
    if name == "mlp":
        return MLP(int(np.prod(data.sample_shape)), classes)
    if min(data.sample_shape[1:]) < 4:
        raise DataError(f"images of {data.sample_shape[1]}x{data.sample_shape[2]} pixels are "
                        f"too small for the cnn (two 2x2 poolings); use --model mlp")
    return SmallCNN(*data.sample_shape, classes)


def count_parameters(model):
    return int(sum(np.prod(p.shape) for p in model.parameters()))
