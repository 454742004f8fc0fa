"""WordPieceEncoder: BERT inputs in the graph, dynamic padding, and its tf.data batches."""

import numpy as np
import pytest
import tensorflow as tf

from tfrnn.config import DataConfig
from tfrnn.data import Examples, WordPieceEncoder, make_dataset
from tfrnn.data.wordpiece import RESERVED, learn_vocabulary, read_vocabulary
from tfrnn.errors import DataError

VOCABULARY = RESERVED + ["a", "great", "film", "dull", "and", "long", "caf", "##e", "!", ",", "."]
PAD, UNK, CLS, SEP = 0, 1, 2, 3


def _encoder(**config):
    return WordPieceEncoder(VOCABULARY, DataConfig(tokenizer="wordpiece", **config))


def _ids(*words):
    return [VOCABULARY.index(w) for w in words]


def test_encode_pads_to_the_longest_text_only():
    inputs = _encoder(max_len=64).encode(tf.constant(["A great film!", "Dull."]))
    assert {k: (v.dtype, v.shape.as_list()) for k, v in inputs.items()} == {
        k: (tf.int32, [2, 6]) for k in ("token_ids", "segment_ids", "padding_mask")
    }
    np.testing.assert_array_equal(
        inputs["token_ids"], [[CLS, *_ids("a", "great", "film", "!"), SEP], [CLS, *_ids("dull", "."), SEP, PAD, PAD]]
    )
    np.testing.assert_array_equal(inputs["padding_mask"], [[1] * 6, [1] * 4 + [0] * 2])
    np.testing.assert_array_equal(inputs["segment_ids"], np.zeros((2, 6)))


def test_truncation_keeps_cls_and_sep():
    ids = _encoder(max_len=4).encode(tf.constant(["a great film and long"]))["token_ids"]
    np.testing.assert_array_equal(ids, [[CLS, *_ids("a", "great"), SEP]])


def test_html_is_cleaned_and_case_and_accents_follow_the_settings():
    encoder = _encoder(lowercase=True, strip_accents=None)  # None follows lowercase
    ids = encoder.encode(tf.constant(["GREAT<br />Café"]))["token_ids"]
    np.testing.assert_array_equal(ids, [[CLS, *_ids("great", "caf", "##e"), SEP]])
    cased = _encoder(lowercase=False, strip_accents=False).encode(tf.constant(["GREAT Café"]))["token_ids"]
    np.testing.assert_array_equal(cased, [[CLS, UNK, UNK, SEP]])


def test_empty_text_is_cls_sep():
    ids = _encoder().encode(tf.constant(["", "   "]))["token_ids"]
    np.testing.assert_array_equal(ids, [[CLS, SEP], [CLS, SEP]])


def test_encode_example_is_one_row_of_encode():
    encoder = _encoder()
    one = encoder.encode_example(tf.constant("a great film"))
    np.testing.assert_array_equal(one["token_ids"], [CLS, *_ids("a", "great", "film"), SEP])


@pytest.mark.parametrize("training", [True, False])
def test_make_dataset_batches_dicts_of_int32(training):
    rng = np.random.default_rng(0)
    words = VOCABULARY[5:11]
    texts = [" ".join(rng.choice(words, size=n)) for n in rng.integers(1, 30, size=50)]
    examples = Examples(texts, np.arange(50) % 2, ["neg", "pos"], "made up")
    config = DataConfig(tokenizer="wordpiece", max_len=32, batch_size=8)
    batches = list(make_dataset(examples, WordPieceEncoder(VOCABULARY, config), config, training=training))
    assert sum(len(labels) for _, labels in batches) == 50
    for inputs, labels in batches:
        mask = inputs["padding_mask"].numpy()
        assert mask.shape[1] <= 32 and mask[:, 0].all() and mask.sum(axis=1).max() == mask.shape[1]
        assert (inputs["token_ids"].numpy()[mask == 0] == PAD).all()
    if not training:  # evaluation keeps the order
        lengths = np.concatenate([inputs["padding_mask"].numpy().sum(axis=1) for inputs, _ in batches])
        expected = [min(len(t.split()), 30) + 2 for t in texts]
        np.testing.assert_array_equal(lengths, expected)


def test_learned_vocabulary_starts_with_the_reserved_tokens():
    vocabulary = learn_vocabulary(["a great film", "a dull film <br /> and long"] * 20, DataConfig(vocab_size=40))
    assert vocabulary[: len(RESERVED)] == RESERVED
    assert "film" in vocabulary and "<" not in vocabulary  # cleaned before learning


def test_read_vocabulary_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_vocabulary(tmp_path / "missing.txt")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8"):
        read_vocabulary(tmp_path / "latin1.txt")
    (tmp_path / "words.txt").write_text("a\nb\n")
    with pytest.raises(DataError, match=r"\[PAD\], \[UNK\], \[CLS\], \[SEP\] missing"):
        read_vocabulary(tmp_path / "words.txt")
