"""get_config/from_config round trips and `.keras` files that reload with safe_mode=True."""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from tfrnn import layers

CONFIGS = {
    "simple_rnn": lambda: layers.SimpleRNN(4, activation="relu", dropout=0.1, seed=3),
    "lstm": lambda: layers.LSTM(4, unit_forget_bias=False, recurrent_dropout=0.2, kernel_regularizer="l2"),
    "gru": lambda: layers.GRU(4, reset_after=False, go_backwards=True, return_sequences=True),
    "feedback": lambda: layers.Feedback(4, base="gru", max_gain=0.5, feedback_regularizer="l1", return_state=True),
}


@pytest.mark.parametrize("name", CONFIGS)
def test_config_round_trip(name):
    layer = CONFIGS[name]()
    config = layer.get_config()
    clone = layer.__class__.from_config(config)
    assert clone.get_config() == config
    restored = keras.layers.deserialize(keras.layers.serialize(layer))
    assert type(restored) is type(layer)
    assert restored.get_config() == config


def _model():
    inputs = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(20, 6, mask_zero=True)(inputs)
    x = keras.layers.Bidirectional(layers.LSTM(5, return_sequences=True))(x)
    x = layers.GRU(4, return_sequences=True)(x)
    x = layers.Feedback(4, base="lstm", return_sequences=True)(x)
    x = layers.SimpleRNN(3)(x)
    return keras.Model(inputs, keras.layers.Dense(2)(x))


def test_keras_file_reloads_in_fresh_process_with_safe_mode(tmp_path):
    model = _model()
    tokens = np.array([[1, 2, 3, 0], [4, 5, 0, 0]])
    expected = np.asarray(model(tokens))
    path = tmp_path / "model.keras"
    model.save(path)
    np.save(tmp_path / "expected.npy", expected)
    script = textwrap.dedent(
        f"""
        import numpy as np, keras, tfrnn
        model = keras.saving.load_model({str(path)!r}, safe_mode=True)
        tokens = np.array([[1, 2, 3, 0], [4, 5, 0, 0]])
        np.testing.assert_allclose(np.asarray(model(tokens)),
                                   np.load({str(tmp_path / "expected.npy")!r}), atol=1e-6)
        modules = {{type(layer).__module__ for layer in model._flatten_layers()}}
        print("reloaded", sorted(m for m in modules if m.startswith("tfrnn")))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=os.environ.copy())
    assert result.returncode == 0, result.stderr[-2000:]
    for module in ("tfrnn.layers.gru", "tfrnn.layers.feedback", "tfrnn.layers.simple_rnn"):
        assert module in result.stdout
