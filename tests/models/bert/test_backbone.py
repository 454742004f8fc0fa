"""BertBackbone (the checkpoint's activation) and BertClassifier (logits; its preprocessor saved
with it), on tiny random configurations."""

import math

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

from tfrnn.data.wordpiece import RESERVED, BertPreprocessor
from tfrnn.models.bert import BertBackbone, BertClassifier
from tfrnn.models.bert.classifier import random_backbone

TINY = dict(vocabulary_size=50, num_layers=2, num_heads=2, hidden_dim=8, intermediate_dim=16, max_sequence_length=12)


def _inputs(batch=3, time=7, seed=0):
    rng = np.random.default_rng(seed)
    lengths = np.array([time, 4, 1])[:batch]
    mask = (np.arange(time)[None, :] < lengths[:, None]).astype("int32")  # (batch, time)
    return {
        "token_ids": (rng.integers(5, 50, size=(batch, time)) * mask).astype("int32"),
        "segment_ids": np.zeros((batch, time), "int32"),
        "padding_mask": mask,
    }


def _with_weights_of(source, activation):
    backbone = BertBackbone(**TINY, activation=activation)
    backbone.set_weights(source.get_weights())
    return backbone


def test_approximate_activation_is_keras_hub_bit_for_bit():
    stock = keras_hub.models.BertBackbone(**TINY)
    ours = _with_weights_of(stock, "gelu_approximate")
    x = _inputs()
    np.testing.assert_array_equal(ours(x)["sequence_output"], stock(x)["sequence_output"])


def test_exact_activation_computes_erf_gelu():
    stock = keras_hub.models.BertBackbone(**TINY)
    rng = np.random.default_rng(0)  # BERT's 0.02-scale init keeps GELU's inputs where both forms agree
    stock.set_weights([rng.normal(0, 0.5, w.shape).astype("float32") for w in stock.get_weights()])
    exact = _with_weights_of(stock, "gelu")
    block = exact.transformer_layers[0]
    z = np.linspace(-4, 4, 9).astype("float32")
    erf_gelu = 0.5 * z * (1 + np.vectorize(math.erf)(z / np.sqrt(2)))
    np.testing.assert_allclose(block._feedforward_intermediate_dense.activation(z), erf_gelu, atol=1e-6)
    x = _inputs()
    difference = np.abs(np.asarray(exact(x)["sequence_output"]) - np.asarray(stock(x)["sequence_output"]))
    assert difference.max() > 1e-4  # the swap reaches the functional graph


def test_activation_survives_save_and_load(tmp_path):
    backbone = BertBackbone(**TINY, activation="gelu")
    model = BertClassifier(backbone, num_classes=3, pooling="mean")
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.backbone.activation == "gelu"
    assert loaded.backbone.transformer_layers[1]._feedforward_intermediate_dense.activation is keras.activations.gelu
    x = _inputs()
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_unknown_activation():
    with pytest.raises(ValueError, match="activation"):
        BertBackbone(**TINY, activation="swish")


@pytest.mark.parametrize("pooling", ["cls", "mean", "max"])
def test_classifier_outputs_logits(pooling):
    model = BertClassifier(random_backbone(50, 1, 8, 2, 12), num_classes=3, pooling=pooling)
    logits = np.asarray(model(_inputs()))  # (batch, classes)
    assert logits.shape == (3, 3) and logits.dtype == np.float32 and np.isfinite(logits).all()
    assert not np.allclose(logits.sum(axis=1), 1.0, atol=1e-3)  # logits, not probabilities
    head = model.layers[-1]
    assert head.name == "logits" and isinstance(head, keras.layers.Dense)
    assert head.activation is keras.activations.linear and model.outputs[0] is head.output
    pooler = {v.path for v in model.backbone.get_layer("pooled_dense").weights}
    trainable = {v.path for v in model.trainable_weights}
    assert (pooler <= trainable) == (pooling == "cls")  # the unused pooler is frozen


def test_mean_pooling_ignores_padding():
    model = BertClassifier(random_backbone(50, 1, 8, 2, 12), num_classes=2, pooling="mean")
    x = _inputs(batch=2, time=5)
    longer = {k: np.pad(v, [[0, 0], [0, 3]]) for k, v in x.items()}  # more padding, same texts
    np.testing.assert_allclose(model(x), model(longer), atol=1e-6)


def test_logits_are_float32_under_mixed_precision():
    keras.config.set_dtype_policy("mixed_bfloat16")  # reset by tests/conftest.py
    model = BertClassifier(random_backbone(50, 1, 8, 2, 12), num_classes=2, pooling="mean")
    assert model.layers[-1].compute_dtype == "float32"
    assert np.asarray(model(_inputs())).dtype == np.float32


VOCABULARY = RESERVED + ["a", "great", "film", "dull", "and", "long", "caf", "##e", "!", ",", "."]
TEXTS = ["A great film!", "Dull, and long.", "", "café <br /> unseen words"]


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_keras_file_with_its_preprocessor_classifies_raw_strings(tmp_path, pooling):
    preprocessor = BertPreprocessor(VOCABULARY, max_len=8)
    backbone = random_backbone(len(VOCABULARY), 1, 8, 2, 8)
    model = BertClassifier(backbone, num_classes=3, pooling=pooling, preprocessor=preprocessor)
    expected = model.predict(TEXTS, verbose=0)  # raw strings go through the preprocessor
    assert expected.shape == (4, 3) and expected.dtype == np.float32
    np.testing.assert_allclose(expected, np.asarray(model(preprocessor(tf.constant(TEXTS)))), atol=1e-6)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert type(loaded) is BertClassifier and type(loaded.preprocessor) is BertPreprocessor
    assert loaded.preprocessor.get_config() == preprocessor.get_config()
    np.testing.assert_array_equal(loaded.predict(TEXTS, verbose=0), expected)


def test_unknown_pooling():
    with pytest.raises(ValueError, match="pooling"):
        BertClassifier(random_backbone(50, 1, 8, 2, 12), num_classes=2, pooling="last")
