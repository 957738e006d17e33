"""Labelled sentences, Tokenizer and Vocabulary."""
from pathlib import Path

import numpy as np
import pytest

from graphc.data import DataError, Tokenizer, Vocabulary, load_labelled_sentences

SENTIMENT = Path(__file__).parents[2].parent / "shared" / "data" / "sentiment"
FILES = [SENTIMENT / f"{name}_labelled.txt" for name in ("imdb", "yelp", "amazon")]
needs_sentiment = pytest.mark.skipif(not all(f.exists() for f in FILES),
                                     reason=f"the shared sentiment files are missing from "
                                            f"{SENTIMENT}")


@needs_sentiment
def test_real_files_load_every_line_with_binary_labels():
    texts, labels = load_labelled_sentences(FILES, num_classes=2)
    expected = sum(1 for f in FILES for line in f.read_bytes().split(b"\n") if line.strip())
    assert len(texts) == len(labels) == expected == 3000
    assert labels.dtype == np.int64 and set(labels.tolist()) == {0, 1}
    assert labels.sum() == 1500                          # balanced, as documented
    assert all(t and t == t.strip() and "\t" not in t for t in texts)
    assert texts[0].startswith("A very, very, very slow-moving")


@needs_sentiment
def test_real_vocabulary_encodes_with_few_unknowns():
    texts, _ = load_labelled_sentences(FILES[0])
    vocab = Vocabulary.build(texts, min_freq=2)
    ids = vocab.encode(texts, max_len=30)
    known = ids[ids > vocab.unk_id].size / ids[ids != vocab.pad_id].size
    assert 0.8 < known < 1.0


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def test_lines_parse_with_trailing_spaces_blank_lines_and_crlf(tmp_path):
    path = write(tmp_path, "a.txt", "Good movie.  \t1\r\n\nBad, bad.\t0\n  \nOK tab\tinside\t1")
    texts, labels = load_labelled_sentences(path)
    assert texts == ["Good movie.", "Bad, bad.", "OK tab\tinside"]
    np.testing.assert_array_equal(labels, [1, 0, 1])


def test_line_without_tab_names_file_and_line(tmp_path):
    path = write(tmp_path, "notab.txt", "fine\t1\n\nno tab here 0\n")
    with pytest.raises(DataError, match=r"notab\.txt:3: no tab"):
        load_labelled_sentences(path)


def test_empty_missing_and_bad_label_files(tmp_path):
    with pytest.raises(DataError, match=r"file is empty: .*empty\.txt"):
        load_labelled_sentences(write(tmp_path, "empty.txt", ""))
    with pytest.raises(DataError, match=r"no sentences .*blank\.txt"):
        load_labelled_sentences(write(tmp_path, "blank.txt", "\n  \n"))
    with pytest.raises(DataError, match=r"not found: .*missing\.txt"):
        load_labelled_sentences(tmp_path / "missing.txt")
    with pytest.raises(DataError, match=r"word\.txt:1: label 'pos' is not an integer"):
        load_labelled_sentences(write(tmp_path, "word.txt", "text\tpos\n"))
    path = write(tmp_path, "three.txt", "a\t0\nb\t2\n")
    with pytest.raises(DataError, match=r"three\.txt:2: label 2 is outside \[0, 2\)"):
        load_labelled_sentences(path, num_classes=2)


def test_tokenizer_lowercases_and_splits_punctuation():
    tokens = Tokenizer()("Wow... I didn't LOVE it, 10/10!")
    assert tokens == ["wow", ".", ".", ".", "i", "didn't", "love", "it", ",", "10", "/", "10",
                      "!"]
    assert Tokenizer(lowercase=False)("Hi!") == ["Hi", "!"]


def test_vocabulary_order_specials_and_limits():
    texts = ["b a b c", "b a d", "c b"]                # b:4, a:2, c:2, d:1
    vocab = Vocabulary.build(texts)
    assert vocab.tokens == ["<pad>", "<unk>", "b", "a", "c", "d"]
    assert (vocab.pad_id, vocab.unk_id) == (0, 1)
    assert Vocabulary.build(texts, min_freq=2).tokens == ["<pad>", "<unk>", "b", "a", "c"]
    assert Vocabulary.build(texts, max_size=3).tokens == ["<pad>", "<unk>", "b"]
    assert len(Vocabulary.build(texts, max_size=4)) == 4


def test_encode_pads_truncates_and_maps_misses_to_unk():
    vocab = Vocabulary.build(["the cat sat", "the dog"])
    ids = vocab.encode(["the cat", "the zebra sat on the mat", ""], max_len=4)
    index = vocab.index
    assert ids.dtype == np.int64 and ids.shape == (3, 4)
    np.testing.assert_array_equal(ids[0], [index["the"], index["cat"], 0, 0])
    np.testing.assert_array_equal(ids[1], [index["the"], 1, index["sat"], 1])
    np.testing.assert_array_equal(ids[2], [0, 0, 0, 0])
    np.testing.assert_array_equal(vocab.lengths(["the cat", "a b c d e f", ""], max_len=4),
                                  [2, 4, 0])


def test_encode_decode_round_trip_and_json_save_load(tmp_path):
    texts = ["Hello, world!", "hello again", "World peace."]
    vocab = Vocabulary.build(texts)
    ids = vocab.encode(texts, max_len=6)
    assert vocab.decode(ids) == [Tokenizer()(t) for t in texts]
    vocab.save(tmp_path / "vocab.json")
    loaded = Vocabulary.load(tmp_path / "vocab.json")
    assert loaded.tokens == vocab.tokens
    np.testing.assert_array_equal(loaded.encode(texts + ["unseen"], 6),
                                  vocab.encode(texts + ["unseen"], 6))


@pytest.mark.parametrize("ids, message", [
    ([[2, 99]], r"id 99 is outside this vocabulary of 5 tokens \(ids 0\.\.4\)"),
    ([[-1]], r"id -1 is outside this vocabulary of 5 tokens"),
    ([[2, 0, 5]], r"id 5 is outside"),
    ([[2.0]], r"ids must be a list or a 2-D array of ints, got 2-D float64"),
    (np.zeros((1, 1, 1), np.int64), r"got 3-D int64"),
    ([[2], [2, 3]], r"rows of equal length"),
])
def test_decoding_ids_outside_the_vocabulary_is_refused(ids, message):
    vocab = Vocabulary.build(["a b c"])
    with pytest.raises(DataError, match=message) as info:
        vocab.decode(ids)
    assert info.value.op == "Vocabulary.decode" and info.value.loc.file == __file__


@pytest.mark.parametrize("texts, message", [
    (["a movie", None], r"texts\[1\] must be a str, not NoneType: None"),
    ([1, 2], r"texts\[0\] must be a str, not int: 1"),
    ([b"a movie"],
     r"texts\[0\] must be a str, not bytes: b'a movie' \(decode bytes to str first\)"),
    ([["a", "movie"]], r"texts\[0\] must be a str, not list"),
    ("a movie", r"texts must be a list of strings, not a str \(wrap a single text"),
    (None, r"texts must be a list of strings, not a NoneType"),
])
def test_texts_that_are_not_strings_are_refused(texts, message):
    vocab = Vocabulary.build(["a good movie"])
    for name, call in (("build", lambda: Vocabulary.build(texts)),
                       ("encode", lambda: vocab.encode(texts, 4)),
                       ("lengths", lambda: vocab.lengths(texts))):
        with pytest.raises(DataError, match=message) as info:
            call()
        assert info.value.op == f"Vocabulary.{name}" and info.value.loc.file == __file__
    with pytest.raises(DataError, match="Tokenizer: text must be a str, not NoneType"):
        Tokenizer()(None)


def test_texts_may_be_any_iterable_of_strings():
    assert Vocabulary.build(iter(["b a b"])).tokens == ["<pad>", "<unk>", "b", "a"]
    vocab = Vocabulary.build(["a b"])
    np.testing.assert_array_equal(vocab.encode(np.array(["a b", "b"]), 2), [[2, 3], [3, 0]])


def test_loading_a_file_that_is_not_a_vocabulary_names_it(tmp_path):
    path = write(tmp_path, "bad.json", '{"tokens": ["a"]}')
    with pytest.raises(DataError, match=r"bad\.json: not a graphc vocabulary"):
        Vocabulary.load(path)
    with pytest.raises(DataError, match=r"broken\.json: not a graphc vocabulary"):
        Vocabulary.load(write(tmp_path, "broken.json", "{"))


@pytest.mark.parametrize("call, words", [
    (lambda: Vocabulary.build(["a b"], min_freq="a"), "min_freq and max_size must be ints"),
    (lambda: Vocabulary.build(["a b"], max_size=2.5), "min_freq and max_size must be ints"),
    (lambda: Vocabulary.build(["a b"]).encode(["a"], max_len=True), "max_len must be a "
                                                                      "positive int"),
])
def test_vocabulary_sizes_that_are_not_ints_are_refused(call, words):
    with pytest.raises(DataError, match=words):
        call()
