"""RNNClassifier and FeedForwardClassifier: shapes, softmax, masking, stacking, `.keras` files;
build_classifier from a ModelConfig."""

import itertools

import keras
import numpy as np
import pytest

from tfrnn import layers
from tfrnn.config import ModelConfig
from tfrnn.models import FeedForwardClassifier, RNNClassifier, build_classifier

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


def _check_probabilities(probabilities, rows=len(TOKENS)):
    assert probabilities.shape == (rows, CLASSES)
    assert probabilities.dtype == np.float32
    assert np.all(np.isfinite(probabilities))
    assert np.all((probabilities >= 0) & (probabilities <= 1))
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, atol=1e-6)


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
    probabilities = np.asarray(model(TOKENS))
    _check_probabilities(probabilities)  # the fully padded row included: finite, sums to 1
    # Padding is masked: a row's output does not depend on the padding that follows it.
    np.testing.assert_allclose(probabilities[:3], _unpadded_row_outputs(model), atol=1e-6)
    # The head sees units (x2 when bidirectional) features.
    head = model.get_layer("probabilities")
    assert head.kernel.shape == (5 * (2 if bidirectional else 1), CLASSES)
    assert any(isinstance(layer, keras.layers.Bidirectional) for layer in model.layers) == bidirectional
    if pooling != "last":
        assert isinstance(model.get_layer(f"{pooling}_pool"), layers.MaskedGlobalPooling1D)


def test_fully_padded_row_is_finite_in_training_mode():
    model = _rnn("gru", pooling="mean", recurrent_dropout=0.1)
    probabilities = np.asarray(model(TOKENS[3:], training=True))
    _check_probabilities(probabilities, rows=1)


def test_dropout_only_in_training():
    model = _rnn(dropout=0.5)
    inference = [np.asarray(model(TOKENS)) for _ in range(2)]
    np.testing.assert_array_equal(inference[0], inference[1])
    assert not np.allclose(np.asarray(model(TOKENS, training=True)), inference[0])


def test_stacked_layers_parameter_count_and_sequences():
    """Two stacked one-directional LSTMs: every weight accounted for, in Keras' LSTM sizes."""
    model = _rnn("lstm", num_layers=2, bidirectional=False, pooling="last")
    _check_probabilities(np.asarray(model(TOKENS)))
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
    probabilities = np.asarray(model(TOKENS))
    _check_probabilities(probabilities)
    np.testing.assert_allclose(probabilities[:3], _unpadded_row_outputs(model), atol=1e-6)


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
    probabilities = np.asarray(model(TOKENS))
    _check_probabilities(probabilities)
    shuffled = TOKENS[:1, ::-1].copy()  # the same bag of tokens, reversed
    np.testing.assert_allclose(np.asarray(model(shuffled))[0], probabilities[0], atol=1e-6)
    np.testing.assert_allclose(probabilities[:3], _unpadded_row_outputs(model), atol=1e-6)
    assert model.get_layer("hidden").units == 7
    assert model.count_params() == VOCAB * 6 + (6 * 7 + 7) + (7 * CLASSES + CLASSES)


def test_build_classifier_rnn_passes_every_field():
    config = ModelConfig(
        kind="rnn",
        cell="feedback",
        feedback_base="gru",
        embedding_dim=4,
        units=3,
        num_layers=2,
        bidirectional=False,
        pooling="mean",
        dropout=0.1,
        recurrent_dropout=0.2,
    )
    model = build_classifier(config, vocab_size=VOCAB, num_classes=CLASSES)
    assert isinstance(model, RNNClassifier)
    assert model.get_config() | {"name": None, "trainable": None} == {
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
    }
    feedback = model.get_layer("feedback_0")
    assert isinstance(feedback, layers.Feedback)
    assert feedback.get_config()["base"] == "gru"
    assert feedback.get_config()["recurrent_dropout"] == 0.2
    _check_probabilities(np.asarray(model(TOKENS)))


def test_build_classifier_feedforward():
    config = ModelConfig(kind="feedforward", embedding_dim=5, hidden_units=9, dropout=0.0)
    model = build_classifier(config, vocab_size=VOCAB, num_classes=2)
    assert isinstance(model, FeedForwardClassifier)
    assert model.get_config()["hidden_units"] == 9 and model.get_config()["embedding_dim"] == 5
    assert model.output_shape == (None, 2)
