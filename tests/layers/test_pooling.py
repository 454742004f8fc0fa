"""MaskedGlobalPooling1D: mean, max and concat (ULMFiT) pooling over the unmasked steps."""

import keras
import numpy as np
import pytest

from tfrnn.layers import MaskedGlobalPooling1D

# 3 rows of 4 steps, 2 features: right-padded, left-padded (and a hole), fully masked.
X = np.arange(24, dtype="float32").reshape(3, 4, 2) * np.array([1.0, -1.0], "float32")
MASK = np.array([[1, 1, 1, 0], [0, 1, 0, 1], [0, 0, 0, 0]], bool)


def _pool(mode, x=X, mask=MASK):
    return keras.ops.convert_to_numpy(MaskedGlobalPooling1D(mode)(x, mask=mask))


def test_concat_is_last_max_and_mean_of_the_unmasked_steps():
    pooled = _pool("concat")
    assert pooled.shape == (3, 6)
    # Row 0: steps 0..2 -> last = step 2; row 1: steps 1 and 3 -> last = step 3 (the last True).
    np.testing.assert_array_equal(pooled[0], [4, -5, 4, -1, 2, -3])
    np.testing.assert_array_equal(pooled[1], [14, -15, 14, -11, 12, -13])
    np.testing.assert_array_equal(pooled[2], np.zeros(6))  # fully masked: zeros, no NaN or -inf


def test_concat_is_the_three_modes_side_by_side():
    last = X[np.arange(3), [2, 3, 0]] * MASK.any(axis=1, keepdims=True)
    np.testing.assert_array_equal(_pool("concat"), np.concatenate([last, _pool("max"), _pool("mean")], axis=-1))


def test_without_a_mask_every_step_counts():
    pooled = _pool("concat", mask=None)
    np.testing.assert_array_equal(pooled, np.concatenate([X[:, -1], X.max(axis=1), X.mean(axis=1)], axis=-1))


def test_mask_from_an_embedding_in_a_model():
    ids = keras.Input((None,), dtype="int32")
    embedded = keras.layers.Embedding(5, 2, mask_zero=True, embeddings_initializer="ones")(ids)
    model = keras.Model(ids, MaskedGlobalPooling1D("concat")(keras.layers.Dense(1, use_bias=False)(embedded)))
    model.layers[-2].set_weights([np.ones((2, 1), "float32")])  # every unmasked step -> 2
    tokens = np.array([[3, 4, 0, 0], [0, 0, 0, 0]], "int32")
    np.testing.assert_array_equal(model.predict(tokens, verbose=0), [[2, 2, 2], [0, 0, 0]])


@pytest.mark.parametrize(("mode", "features"), [("mean", 7), ("max", 7), ("concat", 21)])
def test_output_shape(mode, features):
    layer = MaskedGlobalPooling1D(mode)
    assert layer.compute_output_shape((None, 5, 7)) == (None, features)
    assert layer(keras.Input((None, 7))).shape == (None, features)
    assert layer.compute_output_shape((2, None, None)) == (2, None)


def test_config_round_trip():
    layer = MaskedGlobalPooling1D("concat", name="concat_pool")
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert (restored.mode, restored.name) == ("concat", "concat_pool")


def test_unknown_mode():
    with pytest.raises(ValueError, match="'mean', 'max' or 'concat', got 'sum'"):
        MaskedGlobalPooling1D("sum")
