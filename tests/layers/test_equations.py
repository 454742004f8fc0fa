"""Fixed numbers with constant initialisers, and parity with the NumPy equations."""

import keras
import numpy as np
import pytest

from tests.layers import numpy_reference as ref
from tfrnn import layers

CONSTANTS = dict(
    kernel_initializer=keras.initializers.Constant(0.01),
    recurrent_initializer=keras.initializers.Constant(0.02),
    bias_initializer=keras.initializers.Constant(0.03),
)


@pytest.mark.parametrize(
    "layer_class, shape, units, kwargs, expected",
    [
        # The same configurations and numbers as Keras' own layer tests.
        (layers.LSTM, (3, 6, 4), 3, {}, [0.6288687, 0.86899155, 0.9460773]),
        (layers.LSTM, (3, 6, 4), 3, {"go_backwards": True}, [0.35622165, 0.74789524, 0.8872726]),
        (layers.GRU, (3, 6, 4), 3, {}, [0.5217289, 0.6371659, 0.39384964]),
        (layers.SimpleRNN, (2, 3, 4), 4, {}, [0.405432, 0.73605347]),
    ],
)
def test_constant_initialiser_golden_numbers(layer_class, shape, units, kwargs, expected):
    sequence = np.arange(np.prod(shape)).reshape(shape).astype("float32")
    output = layer_class(units, **CONSTANTS, **kwargs)(sequence)
    expected = np.repeat(np.array(expected)[:, None], units, axis=1)
    np.testing.assert_allclose(np.asarray(output), expected, atol=1e-5, rtol=1e-5)


def test_feedback_golden_numbers():
    # By hand: step 1 from h0=0 is the LSTM step alone (g(0)=0); step 2 adds 0.5*tanh(3*0.1*h1).
    x = np.ones((1, 2, 2), "float32")
    layer = layers.Feedback(
        3,
        base="lstm",
        feedback_initializer=keras.initializers.Constant(0.1),
        feedback_gain_initializer=keras.initializers.Constant(0.5),
        return_sequences=True,
        **CONSTANTS,
    )
    out = np.asarray(layer(x))[0]
    z1 = 2 * 0.01 + 0.03
    c1 = ref.sigmoid(z1) * np.tanh(z1)
    h1 = ref.sigmoid(z1) * np.tanh(c1)
    z2_if = 2 * 0.01 + 3 * 0.02 * h1 + np.array([0.03, 1.0, 0.03, 0.03])  # i, f(unit forget bias), g, o
    c2 = ref.sigmoid(z2_if[1]) * c1 + ref.sigmoid(z2_if[0]) * np.tanh(z2_if[2])
    h2 = ref.sigmoid(z2_if[3]) * np.tanh(c2) + 0.5 * np.tanh(3 * 0.1 * h1)
    np.testing.assert_allclose(out, [[h1] * 3, [h2] * 3], atol=1e-6)


def _random_weights(layer, rng):
    weights = [rng.normal(scale=0.5, size=w.shape) for w in layer.get_weights()]
    layer.set_weights([w.astype("float32") for w in weights])
    return weights


def _reference_step(layer):
    cell = layer.cell
    if isinstance(cell, layers.FeedbackCell):
        fk, fg = np.asarray(cell.feedback_kernel), np.asarray(cell.feedback_gain)
        base = _reference_step_for(cell.base_cell)
        return ref.feedback_step(base[0], fk, fg), base[1], base[2]
    return _reference_step_for(cell)


def _reference_step_for(cell):
    weights = [np.asarray(w, "float64") for w in (cell.kernel, cell.recurrent_kernel, cell.bias)]
    if isinstance(cell, layers.LSTMCell):
        return ref.lstm_step, weights, {}
    if isinstance(cell, layers.GRUCell):
        return ref.gru_step, weights, {"reset_after": cell.reset_after}
    return ref.simple_rnn_step, weights, {}


@pytest.mark.parametrize(
    "make_layer",
    [
        lambda: layers.SimpleRNN(5, return_sequences=True, return_state=True),
        lambda: layers.LSTM(5, return_sequences=True, return_state=True),
        lambda: layers.GRU(5, return_sequences=True, return_state=True),
        lambda: layers.GRU(5, reset_after=False, return_sequences=True, return_state=True),
        lambda: layers.Feedback(5, base="lstm", return_sequences=True, return_state=True),
        lambda: layers.Feedback(5, base="gru", return_sequences=True, return_state=True),
    ],
    ids=["simple_rnn", "lstm", "gru", "gru_reset_before", "feedback_lstm", "feedback_gru"],
)
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("projection", ["hoisted", "per_step"])
def test_matches_numpy_equations(make_layer, go_backwards, projection):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 7, 3)).astype("float32")
    mask = np.ones((4, 7), bool)
    mask[1, 5:] = False  # right-padded
    mask[2, :3] = False  # left-padded
    layer = make_layer()
    layer.go_backwards = go_backwards
    layer.input_projection = projection
    layer(x)
    _random_weights(layer, rng)
    outputs, *states = layer(x, mask=mask)
    step, weights, kwargs = _reference_step(layer)
    zeros = [np.zeros((4, 5))] * len(states)
    ref_outputs, ref_states = ref.run(
        step, x.astype("float64"), zeros, *weights, mask=mask, go_backwards=go_backwards, **kwargs
    )
    np.testing.assert_allclose(np.asarray(outputs), ref_outputs, atol=1e-5)
    for state, ref_state in zip(states, ref_states):
        np.testing.assert_allclose(np.asarray(state), ref_state, atol=1e-5)
