"""Labelled sentences: files of `sentence<TAB>label` lines, a Tokenizer, a Vocabulary.

    texts, labels = load_labelled_sentences(["imdb_labelled.txt", "yelp_labelled.txt"])
    vocab = Vocabulary.build(texts, min_freq=2)
    ids = vocab.encode(texts, max_len=40)          # int64 (N, 40), 0 = <pad>, 1 = <unk>
"""
import collections
import json
import os
import re

import numpy as np

from graphc.data.errors import DataError
from graphc.data.mnist import read_bytes
from graphc.ops.rules import is_count

__all__ = ["load_labelled_sentences", "Tokenizer", "Vocabulary", "PAD", "UNK"]

PAD, UNK = "<pad>", "<unk>"


def _parse_line(line, path, number):
    if "\t" not in line:
        raise DataError(f"{path}:{number}: no tab between sentence and label in "
                        f"{line[:60]!r}; expected 'sentence<TAB>label'")
    sentence, label = line.rsplit("\t", 1)
    try:
        return sentence.strip(), int(label.strip())
    except ValueError:
        raise DataError(f"{path}:{number}: label {label.strip()!r} is not an integer") from None


def _read_sentences(path, num_classes):
    text = read_bytes(path, "sentences").decode("utf-8", errors="replace")
    rows = []
    for number, line in enumerate(text.split("\n"), 1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        sentence, label = _parse_line(line, path, number)
        if num_classes is not None and not 0 <= label < num_classes:
            raise DataError(f"{path}:{number}: label {label} is outside [0, {num_classes})")
        rows.append((sentence, label))
    if not rows:
        raise DataError(f"sentences file has no sentences (only blank lines): {path}")
    return rows


def load_labelled_sentences(paths, num_classes=None):
    """Sentences and labels from files of `sentence<TAB>label` lines.

    `paths` is one path or a list, read in order. Returns `(texts, labels)`: a
    list of str (stripped) and an int64 array. Blank lines are skipped; the text
    is UTF-8, with undecodable bytes replaced. Raises DataError naming the file
    (and line) for a missing or empty file, a line without a tab, a label that
    is not an integer, or, if `num_classes` is given, one outside [0, num_classes).
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    rows = [row for path in paths for row in _read_sentences(os.fspath(path), num_classes)]
    if not rows:
        raise DataError("load_labelled_sentences was given no files")
    texts, labels = zip(*rows)
    return list(texts), np.array(labels, dtype=np.int64)


class Tokenizer:
    """Text -> list of tokens: lowercased (optionally), words (with an inner
    apostrophe, as in "didn't") and single punctuation marks as separate tokens."""

    PATTERN = r"\w+(?:'\w+)*|[^\w\s]"

    def __init__(self, lowercase=True, pattern=PATTERN):
        self.lowercase, self.pattern = lowercase, pattern
        self._regex = re.compile(pattern)

    def __call__(self, text):
        _check_text(text, "Tokenizer")
        return self._regex.findall(text.lower() if self.lowercase else text)

    tokenize = __call__

    def config(self):
        return {"lowercase": self.lowercase, "pattern": self.pattern}


def _check_text(text, op, what="text"):
    if not isinstance(text, str):
        hint = " (decode bytes to str first)" if isinstance(text, (bytes, bytearray)) else ""
        raise DataError(f"{what} must be a str, not {type(text).__name__}: "
                        f"{text!r:.60}{hint}", op=op)


def _checked_texts(texts, op):
    """`texts` as a list of str, or a DataError naming the first that is not one."""
    if isinstance(texts, (str, bytes)) or not hasattr(texts, "__iter__"):
        hint = " (wrap a single text in a list)" if isinstance(texts, str) else ""
        raise DataError(f"texts must be a list of strings, not a "
                        f"{type(texts).__name__}{hint}", op=op)
    texts = list(texts)
    for i, text in enumerate(texts):
        _check_text(text, op, f"texts[{i}]")
    return texts


class Vocabulary:
    """Tokens <-> ids: `<pad>` is 0, `<unk>` is 1, then tokens by falling frequency
    (ties alphabetical). Any token not in the vocabulary encodes as `<unk>`."""

    pad_id, unk_id = 0, 1

    def __init__(self, tokens, tokenizer=None):
        tokens = list(tokens)
        if tokens[:2] != [PAD, UNK] or len(set(tokens)) != len(tokens):
            raise DataError(f"a vocabulary's tokens must start with {PAD!r}, {UNK!r} and "
                            f"hold no duplicates, got {tokens[:5]}...")
        self.tokens = tokens
        self.index = {token: i for i, token in enumerate(tokens)}
        self.tokenizer = tokenizer or Tokenizer()

    @classmethod
    def build(cls, texts, min_freq=1, max_size=None, tokenizer=None):
        """The vocabulary of the tokens seen at least `min_freq` times in `texts`,
        the most frequent first, at most `max_size` entries (`<pad>`, `<unk>` included)."""
        if not is_count(min_freq) or (max_size is not None and not is_count(max_size)):
            raise DataError(f"min_freq and max_size must be ints >= 0 (max_size may be None), "
                            f"got {min_freq!r} and {max_size!r}", op="Vocabulary.build")
        if max_size is not None and max_size < 2:
            raise DataError(f"max_size {max_size} leaves no room for {PAD} and {UNK}")
        texts = _checked_texts(texts, "Vocabulary.build")
        tokenizer = tokenizer or Tokenizer()
        counts = collections.Counter(t for text in texts for t in tokenizer(text))
        for special in (PAD, UNK):
            counts.pop(special, None)
        kept = sorted((t for t, c in counts.items() if c >= min_freq),
                      key=lambda t: (-counts[t], t))
        if max_size is not None:
            kept = kept[:max_size - 2]
        return cls([PAD, UNK] + kept, tokenizer)

    def __len__(self):
        return len(self.tokens)

    def __contains__(self, token):
        return token in self.index

    def ids(self, text):
        """The ids of one text's tokens (no padding, no truncation)."""
        _check_text(text, "Vocabulary.ids")
        return [self.index.get(t, self.unk_id) for t in self.tokenizer(text)]

    def encode(self, texts, max_len):
        """int64 (len(texts), max_len): each text's first max_len token ids, then `<pad>`s."""
        if not is_count(max_len) or max_len < 1:
            raise DataError(f"encode max_len must be a positive int, got {max_len!r}")
        texts = _checked_texts(texts, "Vocabulary.encode")
        out = np.full((len(texts), max_len), self.pad_id, dtype=np.int64)
        for row, text in enumerate(texts):
            ids = self.ids(text)[:max_len]
            out[row, :len(ids)] = ids
        return out

    def lengths(self, texts, max_len=None):
        """int64 token counts of the texts, capped at max_len (= the unpadded lengths
        of `encode(texts, max_len)`)."""
        texts = _checked_texts(texts, "Vocabulary.lengths")
        n = np.array([len(self.tokenizer(t)) for t in texts], dtype=np.int64)
        return n if max_len is None else np.minimum(n, max_len)

    def decode(self, ids):
        """Token lists from rows of ids, stopping each row at its first `<pad>`."""
        rows = []
        for row in self._checked_ids(ids):
            tokens = []
            for i in row:
                if i == self.pad_id:
                    break
                tokens.append(self.tokens[i])
            rows.append(tokens)
        return rows

    def _checked_ids(self, ids):
        """`ids` as a 2-D int array, or a DataError: ints in [0, len(self)), rows of
        equal length."""
        try:
            found = np.atleast_2d(np.asarray(ids))
        except ValueError:
            raise DataError("ids must be rows of equal length, got a ragged list",
                            op="Vocabulary.decode") from None
        if found.ndim > 2 or (found.size and found.dtype.kind not in "iu"):
            raise DataError(f"ids must be a list or a 2-D array of ints, got "
                            f"{found.ndim}-D {found.dtype} values", op="Vocabulary.decode")
        outside = (found < 0) | (found >= len(self))
        if outside.any():
            raise DataError(f"id {found[outside][0]} is outside this vocabulary of "
                            f"{len(self)} tokens (ids 0..{len(self) - 1})",
                            op="Vocabulary.decode")
        return found

    def save(self, path):
        """Write the vocabulary (tokens in id order, tokenizer settings) as JSON."""
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"format": "graphc.vocabulary", "version": 1,
                       "tokenizer": self.tokenizer.config(), "tokens": self.tokens},
                      f, ensure_ascii=False)

    @classmethod
    def load(cls, path):
        """The vocabulary `save` wrote; DataError naming the file if it is not one."""
        raw = read_bytes(path, "vocabulary")
        try:
            data = json.loads(raw.decode("utf-8"))
            if data.get("format") != "graphc.vocabulary":
                raise ValueError("no 'format': 'graphc.vocabulary' entry")
            return cls(data["tokens"], Tokenizer(**data["tokenizer"]))
        except (ValueError, KeyError, TypeError, AttributeError, re.error) as e:
            raise DataError(f"{os.fspath(path)}: not a graphc vocabulary file ({e})") from None
