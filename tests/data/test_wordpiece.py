"""BertPreprocessor: BERT inputs in the graph, dynamic padding, its config round trip and its
tf.data batches; the WordPiece vocabulary helpers; make_preprocessor for model.kind=bert."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfrnn.config import DataConfig, load_config, resolve
from tfrnn.data import Examples, make_dataset, make_preprocessor
from tfrnn.data.wordpiece import INPUT_NAMES, RESERVED, BertPreprocessor, learn_vocabulary, read_vocabulary
from tfrnn.errors import DataError
from tfrnn.models.bert import Checkpoint

VOCABULARY = RESERVED + ["a", "great", "film", "dull", "and", "long", "caf", "##e", "!", ",", "."]
PAD, UNK, CLS, SEP = 0, 1, 2, 3


def _preprocessor(**options):
    return BertPreprocessor(VOCABULARY, **options)


def _ids(*words):
    return [VOCABULARY.index(w) for w in words]


def _token_ids(preprocessor, texts):
    return np.asarray(preprocessor(tf.constant(texts, tf.string))["token_ids"]).tolist()


def test_call_pads_to_the_longest_text_only():
    inputs = _preprocessor(max_len=64)(tf.constant(["A great film!", "Dull."]))
    assert {k: (v.dtype, v.shape.as_list()) for k, v in inputs.items()} == {
        k: (tf.int32, [2, 6]) for k in ("token_ids", "segment_ids", "padding_mask")
    }
    np.testing.assert_array_equal(
        inputs["token_ids"], [[CLS, *_ids("a", "great", "film", "!"), SEP], [CLS, *_ids("dull", "."), SEP, PAD, PAD]]
    )
    np.testing.assert_array_equal(inputs["padding_mask"], [[1] * 6, [1] * 4 + [0] * 2])
    np.testing.assert_array_equal(inputs["segment_ids"], np.zeros((2, 6)))
    assert _preprocessor().padding_values == {"token_ids": PAD, "segment_ids": 0, "padding_mask": 0}


def test_truncation_keeps_cls_and_sep():
    preprocessor = _preprocessor(max_len=4)
    assert preprocessor.max_len == 4
    assert _token_ids(preprocessor, ["a great film and long"]) == [[CLS, *_ids("a", "great"), SEP]]


def test_html_is_cleaned_and_case_and_accents_follow_the_settings():
    preprocessor = _preprocessor(lowercase=True, strip_accents=None)  # None follows lowercase
    assert preprocessor.strip_accents is True
    assert _token_ids(preprocessor, ["GREAT<br />Café"]) == [[CLS, *_ids("great", "caf", "##e"), SEP]]
    cased = _preprocessor(lowercase=False, strip_accents=False)
    assert _token_ids(cased, ["GREAT Café"]) == [[CLS, UNK, UNK, SEP]]
    keeps_html = _preprocessor(strip_html=False)
    assert UNK in _token_ids(keeps_html, ["great<br />film"])[0]  # "<", "br", "/", ">" are not in the vocabulary


def test_empty_text_is_cls_sep():
    assert _token_ids(_preprocessor(), ["", "   ", "<br />"]) == [[CLS, SEP]] * 3


def test_encode_example_is_one_row_of_the_batch():
    one = _preprocessor().encode_example(tf.constant("a great film"))
    assert set(one) == set(INPUT_NAMES)
    np.testing.assert_array_equal(one["token_ids"], [CLS, *_ids("a", "great", "film"), SEP])
    np.testing.assert_array_equal(one["padding_mask"], [1] * 5)


def test_config_round_trip_gives_the_same_inputs():
    preprocessor = _preprocessor(lowercase=True, strip_accents=False, split_on_cjk=False, max_len=9)
    config = preprocessor.get_config()
    assert config["vocabulary"] == VOCABULARY and config["max_len"] == 9
    assert (config["lowercase"], config["strip_accents"], config["split_on_cjk"]) == (True, False, False)
    texts = ["A great film!", "Dull, long and café <br /> a a a a a a", ""]
    expected = preprocessor(tf.constant(texts))
    copies = [
        BertPreprocessor.from_config(config),
        keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(preprocessor), safe_mode=True),
    ]
    for copy in copies:
        assert type(copy) is BertPreprocessor and copy.get_config() == config
        assert copy.vocabulary_size == len(VOCABULARY) and copy.get_vocabulary() == VOCABULARY
        inputs = copy(tf.constant(texts))
        for name in INPUT_NAMES:
            np.testing.assert_array_equal(inputs[name], expected[name])


@pytest.mark.parametrize("training", [True, False])
def test_make_dataset_batches_dicts_of_int32(training):
    rng = np.random.default_rng(0)
    words = VOCABULARY[5:11]
    texts = [" ".join(rng.choice(words, size=n)) for n in rng.integers(1, 30, size=50)]
    examples = Examples(texts, np.arange(50) % 2, ["neg", "pos"], "made up")
    config = DataConfig(max_len=32, batch_size=8)
    batches = list(make_dataset(examples, _preprocessor(max_len=32), config, training=training))
    assert sum(len(labels) for _, labels in batches) == 50
    for inputs, _ in batches:
        assert {inputs[name].dtype for name in INPUT_NAMES} == {tf.int32}
        mask = inputs["padding_mask"].numpy()
        assert mask.shape[1] <= 32 and mask[:, 0].all() and mask.sum(axis=1).max() == mask.shape[1]
        assert (inputs["token_ids"].numpy()[mask == 0] == PAD).all()
    if not training:  # evaluation keeps the order
        lengths = np.concatenate([inputs["padding_mask"].numpy().sum(axis=1) for inputs, _ in batches])
        expected = [min(len(t.split()), 30) + 2 for t in texts]
        np.testing.assert_array_equal(lengths, expected)


def test_batches_keep_order_and_pair_labels():
    preprocessor = _preprocessor()
    texts = ["a great film", "dull", "", "long and dull !"]
    batches = list(preprocessor.batches(texts, batch_size=3, labels=[3, 2, 1, 0]))
    assert [np.asarray(labels).tolist() for _, labels in batches] == [[3, 2, 1], [0]]
    rows = [row for inputs, _ in batches for row in np.asarray(inputs["token_ids"]).tolist()]
    assert [[i for i in row if i != PAD] for row in rows] == [
        [CLS, *_ids("a", "great", "film"), SEP],
        [CLS, *_ids("dull"), SEP],
        [CLS, SEP],
        [CLS, *_ids("long", "and", "dull", "!"), SEP],
    ]


def test_learned_vocabulary_starts_with_the_reserved_tokens():
    vocabulary = learn_vocabulary(
        ["a great film", "a dull film <br /> and long"] * 20, vocab_size=40, lowercase=True, strip_accents=True
    )
    assert vocabulary[: len(RESERVED)] == RESERVED
    assert "film" in vocabulary and "<" not in vocabulary  # cleaned before learning
    preprocessor = BertPreprocessor(vocabulary)
    assert UNK not in _token_ids(preprocessor, ["A great film"])[0]


def test_read_vocabulary(tmp_path):
    (tmp_path / "vocab.txt").write_text("\n".join(VOCABULARY) + "\n", encoding="utf-8")
    assert read_vocabulary(tmp_path / "vocab.txt") == VOCABULARY


def test_read_vocabulary_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_vocabulary(tmp_path / "missing.txt")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8"):
        read_vocabulary(tmp_path / "latin1.txt")
    (tmp_path / "words.txt").write_text("a\nb\n")
    with pytest.raises(DataError, match=r"\[PAD\], \[UNK\], \[CLS\], \[SEP\] missing"):
        read_vocabulary(tmp_path / "words.txt")


def test_make_preprocessor_from_scratch_learns_a_vocabulary():
    overrides = ["model.kind=bert", "model.bert.vocab_size=60", "data.max_len=12", "data.strip_html=false"]
    spec = resolve(load_config(None, overrides), ["neg", "pos"], run_name="scratch")
    preprocessor = make_preprocessor(spec, ["A great film", "a dull film and long"] * 20)
    assert type(preprocessor) is BertPreprocessor
    assert (preprocessor.lowercase, preprocessor.strip_accents, preprocessor.split_on_cjk) == (True, True, True)
    assert (preprocessor.max_len, preprocessor.strip_html) == (12, False)
    assert preprocessor.get_vocabulary()[: len(RESERVED)] == RESERVED
    assert preprocessor.vocabulary_size <= 60 and "film" in preprocessor.get_vocabulary()


def test_make_preprocessor_takes_the_checkpoints_vocabulary_and_rules(tmp_path):
    (tmp_path / "vocab.txt").write_text("\n".join(VOCABULARY) + "\n", encoding="utf-8")
    checkpoint = Checkpoint(
        handle=str(tmp_path),
        hugging_face=True,
        activation="gelu",
        vocabulary=str(tmp_path / "vocab.txt"),
        lowercase=False,
        strip_accents=False,
        split_on_cjk=False,
        max_sequence_length=64,
    )
    config = load_config(None, ["model.kind=bert", f"model.bert.checkpoint={tmp_path}", "data.max_len=16"])
    spec = resolve(config, ["neg", "pos"], run_name="ckpt", lowercase=False, strip_accents=False)
    preprocessor = make_preprocessor(spec, ["never read for a vocabulary"], checkpoint)
    assert preprocessor.get_vocabulary() == VOCABULARY and preprocessor.max_len == 16
    assert (preprocessor.lowercase, preprocessor.strip_accents, preprocessor.split_on_cjk) == (False, False, False)
    assert _token_ids(preprocessor, ["great Great"]) == [[CLS, *_ids("great"), UNK, SEP]]  # cased
