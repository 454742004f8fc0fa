"""The layers train inside compiled train steps (XLA on TensorFlow, jit on JAX)."""

import keras
import numpy as np
import pytest

from tfrnn import layers

LAYERS = {
    "simple_rnn": lambda p: layers.SimpleRNN(4, input_projection=p),
    "lstm": lambda p: layers.LSTM(4, dropout=0.1, recurrent_dropout=0.1, input_projection=p),
    "gru": lambda p: layers.GRU(4, input_projection=p),
    "feedback": lambda p: layers.Feedback(4, base="lstm", input_projection=p),
}


@pytest.mark.parametrize("projection", ["hoisted", "per_step"])
@pytest.mark.parametrize("name", LAYERS)
def test_fit_with_jit_compile(name, projection):
    tokens = np.random.default_rng(0).integers(1, 30, size=(32, 10))
    tokens[:8, 6:] = 0  # padded rows exercise the mask inside the compiled loop
    y = (tokens[:, 0] > 15).astype("float32")
    model = keras.Sequential(
        [
            keras.Input((10,), dtype="int32"),
            keras.layers.Embedding(30, 8, mask_zero=True),
            LAYERS[name](projection),
            keras.layers.Dense(1, "sigmoid"),
        ]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy", jit_compile=True)
    history = model.fit(tokens, y, epochs=2, batch_size=16, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert model.jit_compile
