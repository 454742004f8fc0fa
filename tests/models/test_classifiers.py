"""RNNClassifier and FeedForwardClassifier: shapes, the logits head, masking, stacking, `.keras`
files (with the preprocessor they own: raw strings in); build_classifier for each kind."""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfrnn import choices, layers
from tfrnn.config import BertConfig, FeedForwardConfig, ModelConfig, RNNConfig
from tfrnn.data import WordPreprocessor
from tfrnn.models import RECURRENT_LAYERS, FeedForwardClassifier, RNNClassifier, build_classifier, factory

VOCAB, CLASSES = 30, 3
CELLS = ["simple_rnn", "lstm", "gru", "feedback"]
# Rows of token ids (0 is padding): full, padded, one token, and fully padded (an empty text).
TOKENS = np.array(
    [
        [5, 9, 2, 17, 4, 8],
        [3, 11, 7, 0, 0, 0],
        [21, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0],
    ],
    dtype="int32",
)


def _rnn(cell="lstm", **kwargs):
    kwargs = {"embedding_dim": 6, "units": 5, "dropout": 0.2, **kwargs}
    return RNNClassifier(VOCAB, CLASSES, cell=cell, **kwargs)


# A vocabulary of VOCAB ids for the preprocessor-owning models: "" (padding), "[UNK]", w2 ... w29.
VOCABULARY = ["", "[UNK]"] + [f"w{i}" for i in range(2, VOCAB)]
TEXTS = ["w5 w9 w2 w17 w4 w8", "W3 w11, w7!", "w21", "", "<br /> unseen words w12"]


ROWS = len(TOKENS)


def _check_logits(logits, rows=ROWS):
    """Finite float32 logits, one per class: not probabilities (rows need not sum to 1)."""
    assert logits.shape == (rows, CLASSES)
    assert logits.dtype == np.float32
    assert np.all(np.isfinite(logits))
    assert not np.allclose(logits.sum(axis=-1), 1.0, atol=1e-3)


def _check_head(model):
    """The model ends in the dense "logits" layer, with no activation, computing in float32."""
    head = model.layers[-1]
    assert head.name == "logits" and isinstance(head, keras.layers.Dense)
    assert head.activation is keras.activations.linear
    assert head.compute_dtype == "float32"
    assert model.outputs[0] is head.output


def _unpadded_row_outputs(model):
    """Each non-empty row of TOKENS alone, without its padding: (3, CLASSES)."""
    rows = [row[row > 0][None, :] for row in TOKENS[:3]]
    return np.concatenate([np.asarray(model(row)) for row in rows])


@pytest.mark.parametrize(
    "cell, pooling, bidirectional",
    list(itertools.product(CELLS, ["last", "mean", "max"], [False, True])),
)
def test_rnn_classifier_outputs_and_masking(cell, pooling, bidirectional):
    model = _rnn(cell, pooling=pooling, bidirectional=bidirectional)
    logits = np.asarray(model(TOKENS))
    _check_logits(logits)  # the fully padded row included: finite
    _check_head(model)
    # Padding is masked: a row's output does not depend on the padding that follows it.
    np.testing.assert_allclose(logits[:3], _unpadded_row_outputs(model), atol=1e-6)
    # The head sees units (x2 when bidirectional) features.
    head = model.get_layer("logits")
    assert head.kernel.shape == (5 * (2 if bidirectional else 1), CLASSES)
    assert any(isinstance(layer, keras.layers.Bidirectional) for layer in model.layers) == bidirectional
    if pooling != "last":
        assert isinstance(model.get_layer(f"{pooling}_pool"), layers.MaskedGlobalPooling1D)


def test_fully_padded_row_is_finite_in_training_mode():
    model = _rnn("gru", pooling="mean", recurrent_dropout=0.1)
    logits = np.asarray(model(TOKENS[3:], training=True))
    _check_logits(logits, rows=1)


def test_dropout_only_in_training():
    model = _rnn(dropout=0.5)
    inference = [np.asarray(model(TOKENS)) for _ in range(2)]
    np.testing.assert_array_equal(inference[0], inference[1])
    assert not np.allclose(np.asarray(model(TOKENS, training=True)), inference[0])


def test_stacked_layers_parameter_count_and_sequences():
    """Two stacked one-directional LSTMs: every weight accounted for, in Keras' LSTM sizes."""
    model = _rnn("lstm", num_layers=2, bidirectional=False, pooling="last")
    _check_logits(np.asarray(model(TOKENS)))
    first, second = model.get_layer("lstm_0"), model.get_layer("lstm_1")
    assert first.return_sequences and not second.return_sequences  # "last": only the top returns one step
    e, u = 6, 5
    expected = VOCAB * e + 4 * (e * u + u * u + u) + 4 * (u * u + u * u + u) + u * CLASSES + CLASSES
    assert model.count_params() == expected


@pytest.mark.parametrize("num_layers", [2, 3])
def test_stacked_bidirectional_layers(num_layers):
    model = _rnn("gru", num_layers=num_layers, bidirectional=True, pooling="max")
    names = [layer.name for layer in model.layers if isinstance(layer, keras.layers.Bidirectional)]
    assert names == [f"bidirectional_{i}" for i in range(num_layers)]
    logits = np.asarray(model(TOKENS))
    _check_logits(logits)
    np.testing.assert_allclose(logits[:3], _unpadded_row_outputs(model), atol=1e-6)


def test_unknown_cell():
    with pytest.raises(ValueError, match="transformer"):
        _rnn("transformer")


@pytest.mark.parametrize(
    "make",
    [
        lambda: _rnn("simple_rnn", pooling="last", bidirectional=False),
        lambda: _rnn("lstm", pooling="max", num_layers=2),
        lambda: _rnn("gru", pooling="mean"),
        lambda: _rnn("feedback", feedback_base="gru", pooling="max"),
        lambda: FeedForwardClassifier(VOCAB, CLASSES, embedding_dim=6, hidden_units=7),
    ],
    ids=["simple_rnn", "lstm-stacked", "gru", "feedback-gru", "feedforward"],
)
def test_keras_file_round_trip(tmp_path, make):
    model = make()
    # Move the weights away from their initial values so that a reload that re-initialises fails.
    rng = np.random.default_rng(1)
    model.set_weights([w + 0.05 * rng.normal(size=w.shape) for w in model.get_weights()])
    expected = np.asarray(model(TOKENS))
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert type(reloaded) is type(model)
    assert reloaded.get_config() == model.get_config()
    np.testing.assert_allclose(np.asarray(reloaded(TOKENS)), expected, atol=1e-6)


def test_feedforward_classifier_ignores_order_and_padding():
    model = FeedForwardClassifier(VOCAB, CLASSES, embedding_dim=6, hidden_units=7)
    logits = np.asarray(model(TOKENS))
    _check_logits(logits)
    _check_head(model)
    shuffled = TOKENS[:1, ::-1].copy()  # the same bag of tokens, reversed
    np.testing.assert_allclose(np.asarray(model(shuffled))[0], logits[0], atol=1e-6)
    np.testing.assert_allclose(logits[:3], _unpadded_row_outputs(model), atol=1e-6)
    assert model.get_layer("hidden").units == 7
    assert model.count_params() == VOCAB * 6 + (6 * 7 + 7) + (7 * CLASSES + CLASSES)


@pytest.mark.parametrize(
    "make",
    [
        lambda: _rnn("lstm", embedding_dim=4, units=3),
        lambda: FeedForwardClassifier(VOCAB, CLASSES, embedding_dim=4, hidden_units=3),
    ],
    ids=["rnn", "feedforward"],
)
def test_logits_are_float32_under_mixed_precision(make):
    keras.config.set_dtype_policy("mixed_bfloat16")  # reset by tests/conftest.py
    model = make()
    assert model.get_layer("embedding").compute_dtype == "bfloat16"
    _check_head(model)
    assert np.asarray(model(TOKENS)).dtype == np.float32


def _preprocessor(max_len=200):
    return WordPreprocessor(VOCABULARY, max_len=max_len)


@pytest.mark.parametrize(
    "make",
    [
        lambda p: _rnn("gru", pooling="mean", preprocessor=p),
        lambda p: _rnn("feedback", feedback_base="lstm", num_layers=2, preprocessor=p),
        lambda p: FeedForwardClassifier(VOCAB, CLASSES, embedding_dim=6, hidden_units=7, preprocessor=p),
    ],
    ids=["gru", "feedback-stacked", "feedforward"],
)
def test_keras_file_with_its_preprocessor_classifies_raw_strings(tmp_path, make):
    model = make(_preprocessor(max_len=5))
    rng = np.random.default_rng(1)
    model.set_weights([w + 0.05 * rng.normal(size=w.shape) for w in model.get_weights()])
    expected = model.predict(TEXTS, verbose=0)  # raw strings go through the preprocessor
    _check_logits(expected, rows=len(TEXTS))
    # The same as the model on the preprocessor's ids.
    np.testing.assert_allclose(expected, np.asarray(model(model.preprocessor(tf.constant(TEXTS)))), atol=1e-6)
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    assert type(reloaded) is type(model) and type(reloaded.preprocessor) is WordPreprocessor
    assert reloaded.preprocessor.get_config() == model.preprocessor.get_config()
    assert reloaded.get_config() == model.get_config()
    np.testing.assert_array_equal(reloaded.predict(TEXTS, verbose=0), expected)
    # Another batch size pads batches differently; padding is masked (float round-off only).
    np.testing.assert_allclose(reloaded.predict(np.array(TEXTS), batch_size=2, verbose=0), expected, atol=1e-6)


def test_evaluate_takes_raw_strings_and_labels():
    model = _rnn("lstm", preprocessor=_preprocessor())
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    labels = np.array([0, 1, 2, 1, 0])
    loss, accuracy = model.evaluate(TEXTS, labels, batch_size=2, verbose=0)
    logits = model.predict(TEXTS, verbose=0)
    expected = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, logits)
    np.testing.assert_allclose(loss, float(expected), rtol=1e-5)
    np.testing.assert_allclose(accuracy, np.mean(logits.argmax(axis=1) == labels), atol=1e-6)


def test_predict_keeps_token_ids_and_refuses_one_string():
    model = _rnn("lstm", preprocessor=_preprocessor())
    np.testing.assert_allclose(model.predict(TOKENS, verbose=0), np.asarray(model(TOKENS)), atol=1e-6)
    with pytest.raises(ValueError, match="wrap it in a list"):
        model.predict("one text", verbose=0)


def test_without_a_preprocessor_the_config_has_none():
    model = _rnn("lstm")
    assert model.preprocessor is None and "preprocessor" not in model.get_config()


def test_build_classifier_rnn_passes_every_field():
    config = ModelConfig(
        kind="rnn",
        rnn=RNNConfig(
            cell="feedback",
            feedback_base="gru",
            embedding_dim=4,
            units=3,
            layers=2,
            bidirectional=False,
            pooling="mean",
            dropout=0.1,
            recurrent_dropout=0.2,
            weight_dropout=0.3,
        ),
    )
    preprocessor = _preprocessor()
    model = build_classifier(config, preprocessor, num_classes=CLASSES)
    assert isinstance(model, RNNClassifier)
    assert model.preprocessor is preprocessor
    model_config = model.get_config()
    assert model_config.pop("preprocessor") == keras.saving.serialize_keras_object(preprocessor)
    assert model_config | {"name": None, "trainable": None} == {
        "name": None,
        "trainable": None,
        "vocab_size": VOCAB,
        "num_classes": CLASSES,
        "cell": "feedback",
        "embedding_dim": 4,
        "units": 3,
        "num_layers": 2,
        "bidirectional": False,
        "pooling": "mean",
        "dropout": 0.1,
        "recurrent_dropout": 0.2,
        "feedback_base": "gru",
        "weight_dropout": 0.3,
    }
    feedback = model.get_layer("feedback_0")
    assert isinstance(feedback, layers.Feedback)
    assert feedback.get_config()["base"] == "gru"
    assert feedback.get_config()["recurrent_dropout"] == 0.2
    _check_logits(np.asarray(model(TOKENS)))
    _check_head(model)


def test_build_classifier_feedforward():
    config = ModelConfig(
        kind="feedforward", feedforward=FeedForwardConfig(embedding_dim=5, hidden_units=9, dropout=0.0)
    )
    preprocessor = _preprocessor()
    model = build_classifier(config, preprocessor, num_classes=2)
    assert isinstance(model, FeedForwardClassifier) and model.preprocessor is preprocessor
    assert model.get_config()["hidden_units"] == 9 and model.get_config()["embedding_dim"] == 5
    assert model.get_config()["vocab_size"] == VOCAB and model.get_layer("head_dropout").rate == 0.0
    assert model.output_shape == (None, 2)
    _check_head(model)


BERT_VOCABULARY = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "great", "film", "dull", "!"]


def test_build_classifier_bert_from_scratch():
    from tfrnn.data.wordpiece import BertPreprocessor
    from tfrnn.models.bert import BertBackbone, BertClassifier

    config = ModelConfig(kind="bert", bert=BertConfig(pooling="mean", dropout=0.2, layers=1, hidden_dim=8, heads=2))
    preprocessor = BertPreprocessor(BERT_VOCABULARY, max_len=16)
    model = build_classifier(config, preprocessor, num_classes=2)
    assert isinstance(model, BertClassifier) and model.preprocessor is preprocessor
    backbone = model.backbone
    assert isinstance(backbone, BertBackbone) and backbone.activation == "gelu"
    assert (backbone.vocabulary_size, backbone.num_layers, backbone.hidden_dim, backbone.num_heads) == (10, 1, 8, 2)
    assert backbone.max_sequence_length == 16  # the preprocessor's longest sequence
    assert (model.get_config()["pooling"], model.get_config()["dropout"]) == ("mean", 0.2)
    _check_head(model)
    logits = model.predict(["A great film!", "dull"], verbose=0)
    assert logits.shape == (2, 2) and logits.dtype == np.float32


def test_build_classifier_bert_uses_the_checkpoint_it_is_given():
    from tfrnn.data.wordpiece import BertPreprocessor
    from tfrnn.models.bert.classifier import random_backbone

    class ReadCheckpoint:
        """A checkpoint already read: build_classifier must not read `model.bert.checkpoint` again."""

        loads = 0

        def load_backbone(self):
            ReadCheckpoint.loads += 1
            return random_backbone(len(BERT_VOCABULARY), 1, 8, 2, 32)

    config = ModelConfig(kind="bert", bert=BertConfig(checkpoint="/nonexistent/checkpoint", pooling="cls"))
    model = build_classifier(config, BertPreprocessor(BERT_VOCABULARY, max_len=16), 3, checkpoint=ReadCheckpoint())
    assert ReadCheckpoint.loads == 1 and model.backbone.max_sequence_length == 32
    assert model.output_shape == (None, 3)


def test_builders_cover_every_kind_and_cell():
    assert factory.BUILDERS.keys() == choices.KINDS.keys()
    assert RECURRENT_LAYERS.keys() == choices.CELLS.keys()
    for cell, layer_class in RECURRENT_LAYERS.items():
        assert layer_class is getattr(layers, choices.CELLS[cell])


@pytest.mark.parametrize("kind", ["rnn", "feedforward"])
def test_build_classifier_for_each_word_kind_defaults(kind):
    section = {"rnn": RNNConfig, "feedforward": FeedForwardConfig}[kind]()
    model = build_classifier(ModelConfig(kind=kind, **{kind: section}), _preprocessor(), 4)
    assert model.output_shape == (None, 4) and model.preprocessor.vocabulary_size == VOCAB
    assert model.get_layer("embedding").input_dim == VOCAB
    _check_head(model)
