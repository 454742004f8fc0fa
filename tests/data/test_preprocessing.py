"""WordPreprocessor: word and char mode, padding/OOV ids, truncation, the learned vocabulary,
its config round trip and vocabulary file, and its `tf.data` batches."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfrnn.config import load_config, resolve
from tfrnn.data import WordPreprocessor, make_preprocessor

WORDS = ["the film was great!", "the film wasn't good.", "great acting, great film"]
CHINESE = ["我很喜欢这部电影", "这部电影不好看", "酒店 很好"]


def _ids(preprocessor, texts):
    """The layer on a batch of raw texts, as lists of ids (padding included)."""
    return np.asarray(preprocessor(tf.constant(texts, tf.string))).tolist()


def test_word_mode_strips_punctuation_and_reserves_padding_and_oov():
    preprocessor = WordPreprocessor.adapt(WORDS, vocab_size=20000)
    vocabulary = preprocessor.get_vocabulary()
    assert vocabulary[:4] == ["", "[UNK]", "great", "film"]
    assert "wasnt" in vocabulary and "great!" not in vocabulary and "acting," not in vocabulary
    assert preprocessor.vocabulary_size == len(vocabulary) == 9
    assert _ids(preprocessor, ["great film, unseen"]) == [[2, 3, 1]]


def test_output_is_int32_right_padded_with_zero_and_unknown_words_are_one():
    preprocessor = WordPreprocessor.adapt(WORDS, vocab_size=20000)
    ids = preprocessor(tf.constant(["Great FILM", "great", "never seen words"]))
    assert ids.dtype == tf.int32 and ids.shape == (3, 3)
    assert np.asarray(ids).tolist() == [[2, 3, 0], [2, 0, 0], [1, 1, 1]]
    assert preprocessor.padding_values == 0


def test_text_without_tokens_becomes_one_oov():
    preprocessor = WordPreprocessor.adapt(WORDS, vocab_size=20000)
    assert _ids(preprocessor, [""]) == [[1]]
    assert _ids(preprocessor, ["", "!!!", "<br />", "film"]) == [[1], [1], [1], [3]]
    np.testing.assert_array_equal(preprocessor.encode_example(tf.constant("")), [1])


def test_encode_example_is_one_unpadded_row():
    preprocessor = WordPreprocessor.adapt(WORDS, vocab_size=20000)
    one = preprocessor.encode_example(tf.constant("the great film"))
    assert one.dtype == tf.int32 and one.shape == (3,)
    np.testing.assert_array_equal(one, _ids(preprocessor, ["the great film"])[0])


def test_vocab_size_counts_padding_and_oov():
    preprocessor = WordPreprocessor.adapt(WORDS, vocab_size=4)
    assert preprocessor.get_vocabulary() == ["", "[UNK]", "great", "film"]
    assert preprocessor.vocabulary_size == 4
    assert _ids(preprocessor, ["the great film"]) == [[1, 2, 3]]  # "the" fell out of the vocabulary


def test_lowercase_is_an_option():
    cased = WordPreprocessor.adapt(["Great film", "great FILM"], vocab_size=100, lowercase=False)
    assert {"Great", "great", "film", "FILM"} <= set(cased.get_vocabulary())
    lowered = WordPreprocessor.adapt(["Great film", "great FILM"], vocab_size=100)  # lowercase=True by default
    assert lowered.get_vocabulary() == ["", "[UNK]", "great", "film"]


def test_char_mode_splits_chinese_into_characters():
    preprocessor = WordPreprocessor.adapt(CHINESE, vocab_size=20000, tokenizer="char")
    ids = _ids(preprocessor, ["喜欢电影"])[0]
    assert len(ids) == 4 and 1 not in ids and 0 not in ids
    assert {"我", "喜", " "} <= set(preprocessor.get_vocabulary())
    assert _ids(preprocessor, ["喜欢猫"])[0][2] == 1  # an unseen character


def test_max_len_truncates():
    preprocessor = WordPreprocessor.adapt(WORDS, vocab_size=20000, max_len=2)
    assert preprocessor.max_len == 2
    assert _ids(preprocessor, ["the film was great", "great"]) == [[4, 3], [2, 0]]
    chars = WordPreprocessor.adapt(CHINESE, vocab_size=20000, tokenizer="char", max_len=3)
    assert np.asarray(chars(tf.constant(CHINESE))).shape == (3, 3)


def test_adapt_needs_texts():
    with pytest.raises(ValueError, match="no training texts"):
        WordPreprocessor.adapt([], vocab_size=100)


@pytest.mark.parametrize("tokenizer, texts", [("word", WORDS), ("char", CHINESE)])
def test_config_round_trip_gives_the_same_ids(tokenizer, texts):
    preprocessor = WordPreprocessor.adapt(texts, vocab_size=20000, tokenizer=tokenizer, max_len=7)
    config = preprocessor.get_config()
    assert config["vocabulary"] == preprocessor.get_vocabulary()
    assert all(type(token) is str for token in config["vocabulary"])  # JSON-ready
    assert (config["tokenizer"], config["lowercase"], config["max_len"]) == (tokenizer, True, 7)
    sample = texts + ["unseen words 没见过 here", "", "a much longer text than max_len allows, 一二三四五六七八"]
    copies = [
        WordPreprocessor.from_config(config),
        keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(preprocessor), safe_mode=True),
    ]
    for copy in copies:
        assert type(copy) is WordPreprocessor
        assert copy.get_vocabulary() == preprocessor.get_vocabulary() and copy.max_len == 7
        assert copy.get_config() == config
        assert _ids(copy, sample) == _ids(preprocessor, sample)


@pytest.mark.parametrize("tokenizer, texts", [("word", WORDS), ("char", CHINESE)])
def test_save_vocabulary_file_format(tmp_path, tokenizer, texts):
    preprocessor = WordPreprocessor.adapt(texts, vocab_size=20000, tokenizer=tokenizer)
    path = tmp_path / "vocabulary.txt"
    preprocessor.save_vocabulary(path)
    lines = path.read_text(encoding="utf-8").split("\n")
    # Line n holds id n - 1: an empty line (padding), then [UNK]; the file ends with a newline.
    assert lines[:2] == ["", "[UNK]"] and lines[-1] == ""
    assert len(lines) == preprocessor.vocabulary_size + 1
    assert lines[:-1] == preprocessor.get_vocabulary()


@pytest.mark.parametrize(
    "vocabulary, message",
    [
        (["the", "film"], "starts with"),
        (["[UNK]", "", "film"], "starts with"),
        (["", "film", "[UNK]"], "starts with"),
        (["", "[UNK]", "film", "[UNK]"], "appear again"),
        (["", "[UNK]", "film", ""], "appear again"),
    ],
)
def test_bad_vocabulary_list(vocabulary, message):
    with pytest.raises(ValueError, match=message):
        WordPreprocessor(vocabulary)


def test_vocabulary_list_gives_the_ids_in_its_order():
    preprocessor = WordPreprocessor(["", "[UNK]", "film", "great"], max_len=10)
    assert _ids(preprocessor, ["Great film!", "dull"]) == [[3, 2], [1, 0]]


@pytest.mark.parametrize("with_labels", [False, True])
def test_batches_keep_order_and_pair_labels(with_labels):
    preprocessor = WordPreprocessor.adapt(WORDS, vocab_size=20000)
    texts = [WORDS[i % 3] for i in range(7)] + ["", "unseen"]
    labels = list(range(len(texts)))
    dataset = preprocessor.batches(texts, batch_size=4, labels=labels if with_labels else None)
    batches = list(dataset)
    assert len(batches) == 3
    rows, seen = [], []
    for batch in batches:
        ids, batch_labels = batch if with_labels else (batch, None)
        assert ids.dtype == tf.int32
        rows += [[i for i in row if i != 0] for row in np.asarray(ids).tolist()]
        if with_labels:
            assert batch_labels.dtype == tf.int32 and len(batch_labels) == len(ids)
            seen += np.asarray(batch_labels).tolist()
    expected = [[i for i in row if i != 0] for row in _ids(preprocessor, texts)]
    assert rows == expected
    if with_labels:
        assert seen == labels


@pytest.mark.parametrize("kind", ["rnn", "feedforward"])
def test_make_preprocessor_follows_the_spec(kind):
    overrides = [
        f"model.kind={kind}",
        f"model.{kind}.tokenizer=char",
        f"model.{kind}.vocab_size=5",
        f"model.{kind}.lowercase=false",
        "data.max_len=3",
        "data.strip_html=false",
    ]
    spec = resolve(load_config(None, overrides), ["neg", "pos"], run_name="spec")
    texts = ["AAAA", "aaa", "bb<i>"]
    preprocessor = make_preprocessor(spec, texts)
    assert type(preprocessor) is WordPreprocessor
    assert (preprocessor.tokenizer, preprocessor.lowercase, preprocessor.strip_html) == ("char", False, False)
    assert preprocessor.max_len == 3 and preprocessor.vocabulary_size == 5
    assert preprocessor.get_vocabulary() == ["", "[UNK]", "A", "a", "b"]  # by count, capped at 5, cased
    assert _ids(preprocessor, ["aAbx", "b<"]) == [[3, 2, 4], [4, 1, 0]]
