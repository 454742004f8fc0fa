"""Gradients: against central finite differences, and equal to keras.layers' own."""

import keras
import numpy as np
import pytest
from keras import ops

from tests.layers.gradients import assert_gradients_match_finite_differences, value_and_grads
from tfrnn import layers

LAYERS = {
    "simple_rnn": lambda: layers.SimpleRNN(3, return_sequences=True),
    "lstm": lambda: layers.LSTM(3, return_sequences=True),
    "gru": lambda: layers.GRU(3, return_sequences=True),
    "gru_reset_before": lambda: layers.GRU(3, reset_after=False, return_sequences=True),
    "feedback_lstm": lambda: layers.Feedback(3, base="lstm", feedback_gain_initializer="ones", return_sequences=True),
    "feedback_gru": lambda: layers.Feedback(3, base="gru", feedback_gain_initializer="ones", return_sequences=True),
}


def _loss(out):
    # A weighted sum, so that every output position matters differently.
    weights = ops.reshape(ops.arange(1, 1 + 4 * 3, dtype=out.dtype), (1, 4, 3)) / 10.0
    return ops.sum(ops.sin(out) * weights)


@pytest.mark.parametrize("name", LAYERS)
def test_gradient_matches_finite_differences(name):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 4, 2)).astype("float32")
    layer = LAYERS[name]()
    layer(x)
    assert_gradients_match_finite_differences(layer, _loss, x, rng)


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (layers.SimpleRNN, keras.layers.SimpleRNN),
        (layers.LSTM, keras.layers.LSTM),
        (layers.GRU, keras.layers.GRU),
    ],
)
def test_gradients_equal_keras(ours, theirs):
    x = np.random.default_rng(1).normal(size=(2, 4, 2)).astype("float32")
    ours, theirs = ours(3, return_sequences=True), theirs(3, return_sequences=True)
    theirs(x)
    ours(x)
    ours.set_weights(theirs.get_weights())
    (loss_a, grads_a), (loss_b, grads_b) = value_and_grads(ours, _loss, x), value_and_grads(theirs, _loss, x)
    assert loss_a == pytest.approx(loss_b, abs=1e-5)
    for a, b in zip(grads_a, grads_b):
        np.testing.assert_allclose(a, b, atol=1e-5)
