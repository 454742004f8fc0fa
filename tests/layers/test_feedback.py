"""The feedback cell: it reduces to its base cell, stays bounded, and trains."""

import keras
import numpy as np
import pytest

from tfrnn import layers

BASES = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}


def _x(shape=(3, 8, 5), seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


@pytest.mark.parametrize("base", BASES)
def test_without_feedback_it_is_exactly_the_base_cell(base):
    x = _x()
    base_layer = {"lstm": layers.LSTM, "gru": layers.GRU}[base](4, return_sequences=True, return_state=True)
    keras_layer = BASES[base](4, return_sequences=True, return_state=True)
    ours = layers.Feedback(4, base=base, feedback=False, return_sequences=True, return_state=True)
    for layer in (base_layer, keras_layer, ours):
        layer(x)
    assert len(ours.weights) == len(keras_layer.weights)
    ours.set_weights(keras_layer.get_weights())
    base_layer.set_weights(keras_layer.get_weights())
    for a, b, c in zip(ours(x), base_layer(x), keras_layer(x)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))  # bit for bit
        np.testing.assert_allclose(np.asarray(a), np.asarray(c), atol=1e-6)


@pytest.mark.parametrize("base", BASES)
def test_zero_gain_at_initialisation_is_the_base_cell(base):
    x = _x()
    theirs = BASES[base](4, return_sequences=True)
    ours = layers.Feedback(4, base=base, return_sequences=True)
    theirs(x)
    ours(x)
    assert np.all(np.asarray(ours.cell.feedback_gain) == 0)
    feedback_weights = [np.asarray(ours.cell.feedback_kernel), np.asarray(ours.cell.feedback_gain)]
    ours.set_weights(feedback_weights + theirs.get_weights())  # own weights first, then base_cell's
    np.testing.assert_allclose(np.asarray(ours(x)), np.asarray(theirs(x)), atol=1e-6)


def test_feedback_changes_the_output_when_gain_is_nonzero():
    x = _x()
    layer = layers.Feedback(4, base="lstm", return_sequences=True)
    layer(x)
    before = np.asarray(layer(x))
    layer.cell.feedback_gain.assign(np.full((4,), 0.5, "float32"))
    assert np.abs(np.asarray(layer(x)) - before).max() > 1e-3


def test_lstm_feedback_stays_bounded_over_long_sequences():
    # Large weights and the largest allowed gain, 2,000 steps: |h| < 1 + max_gain throughout.
    x = _x((2, 2000, 3), seed=1) * 5
    layer = layers.Feedback(
        6,
        base="lstm",
        max_gain=1.0,
        kernel_initializer=keras.initializers.RandomNormal(stddev=3.0),
        recurrent_initializer=keras.initializers.RandomNormal(stddev=3.0),
        feedback_initializer=keras.initializers.RandomNormal(stddev=3.0),
        feedback_gain_initializer="ones",
        return_sequences=True,
    )
    h = np.asarray(layer(x))
    assert np.all(np.isfinite(h))
    assert np.abs(h).max() < 2.0


def test_gain_is_clipped_to_max_gain_by_training():
    x, y = _x((8, 6, 3)), np.full((8, 1), 50.0, "float32")
    model = keras.Sequential(
        [keras.Input((6, 3)), layers.Feedback(4, base="gru", max_gain=0.25), keras.layers.Dense(1)]
    )
    model.compile(optimizer=keras.optimizers.SGD(10.0), loss="mse")
    for _ in range(3):
        model.train_on_batch(x, y)
    gain = np.asarray(model.layers[0].cell.feedback_gain)
    assert np.abs(gain).max() <= 0.25 + 1e-7
    assert np.abs(gain).max() > 0  # it did move


@pytest.mark.parametrize("base", BASES)
def test_feedback_layer_learns_a_sequence_task(base):
    # Label = sign of the sum of the first feature over time: needs memory across steps.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 12, 2)).astype("float32")
    y = (x[:, :, 0].sum(axis=1) > 0).astype("float32")
    model = keras.Sequential([keras.Input((12, 2)), layers.Feedback(8, base=base), keras.layers.Dense(1, "sigmoid")])
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss="binary_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=15, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    assert history.history["accuracy"][-1] > 0.85


def test_unknown_base_is_a_clear_error():
    with pytest.raises(ValueError, match="`base` must be one of"):
        layers.Feedback(4, base="transformer")
