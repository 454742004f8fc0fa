"""AWD-LSTM's regularisers: DropConnect on the recurrent kernel (`weight_dropout`), embedding
dropout, locked dropout, AR/TAR."""

import keras
import numpy as np
import pytest

from tests.layers import numpy_reference as ref
from tfrnn import layers

P = 0.5


def _lstm(weight_dropout=P, **kwargs):
    """An unrolled LSTM (a Python loop over the steps on every backend), built, with a spy that
    records the recurrent kernel each step uses."""
    layer = layers.LSTM(3, return_sequences=True, unroll=True, weight_dropout=weight_dropout, seed=7, **kwargs)
    layer.build((2, 5, 4))
    cell, step = layer.cell, layer.cell.recurrent_step
    layer.used = []

    def spy(projected, states, training=False):
        layer.used.append(np.asarray(cell.effective("recurrent_kernel")))
        return step(projected, states, training)

    cell.recurrent_step = spy
    return layer


X = np.random.default_rng(0).normal(size=(2, 5, 4)).astype("float32")


def _numpy_lstm(layer, recurrent_kernel):
    kernel, _, bias = (np.asarray(w, "float64") for w in layer.cell.weights[:3])
    zeros = np.zeros((2, 3))
    return ref.run(ref.lstm_step, X.astype("float64"), [zeros, zeros], kernel, recurrent_kernel, bias)[0]


@pytest.mark.parametrize("input_projection", ["hoisted", "per_step"])
def test_weight_dropout_masks_the_recurrent_kernel_once_per_call(input_projection):
    layer = _lstm(input_projection=input_projection)
    outputs = np.asarray(layer(X, training=True))
    used = layer.used
    assert len(used) == X.shape[1]
    for kernel in used[1:]:  # one mask for every step of the call
        np.testing.assert_array_equal(kernel, used[0])
    weight = np.asarray(layer.cell.recurrent_kernel)
    dropped = used[0] == 0
    assert 0 < dropped.mean() < 1
    np.testing.assert_allclose(used[0][~dropped], weight[~dropped] / (1 - P), rtol=1e-6)
    # The step with that kernel and nothing else masked: the input path and the states are intact.
    np.testing.assert_allclose(outputs, _numpy_lstm(layer, used[0]), atol=1e-5)
    assert layer.cell._dropped == {}  # forgotten after the call
    layer(X, training=True)
    assert not np.array_equal(layer.used[-1], used[0])  # a new mask for the next call


def test_weight_dropout_is_off_at_inference():
    layer = _lstm()
    outputs = np.asarray(layer(X))
    weight = np.asarray(layer.cell.recurrent_kernel)
    for kernel in layer.used:
        np.testing.assert_array_equal(kernel, weight)
    np.testing.assert_allclose(outputs, _numpy_lstm(layer, weight), atol=1e-5)


def test_weight_dropout_masks_the_kernel_with_its_lora_update():
    layer = _lstm()
    layer.enable_lora(2)
    a, b = layer.cell._lora["recurrent_kernel"]
    b.assign(np.ones(b.shape, "float32"))
    effective = np.asarray(layer.cell.recurrent_kernel) + np.asarray(a) @ np.asarray(b)  # lora_alpha / rank = 1
    layer(X, training=True)
    used = layer.used[0]
    kept = used != 0
    np.testing.assert_allclose(used[kept], effective[kept] / (1 - P), rtol=1e-5)


@pytest.mark.parametrize(
    "make",
    [
        lambda: layers.LSTM(4, weight_dropout=0.3),
        lambda: layers.GRU(4, weight_dropout=0.3, reset_after=False),
        lambda: layers.SimpleRNN(4, weight_dropout=0.3),
        lambda: layers.Feedback(4, base="gru", weight_dropout=0.3),
    ],
    ids=["lstm", "gru", "simple_rnn", "feedback"],
)
def test_weight_dropout_in_every_layer_and_its_config(make):
    layer = make()
    config = layer.get_config()
    assert config["weight_dropout"] == 0.3
    assert type(layer).from_config(config).get_config() == config
    x = np.ones((2, 3, 5), "float32")
    assert np.all(np.isfinite(np.asarray(layer(x, training=True))))
    assert not np.allclose(np.asarray(layer(x, training=True)), np.asarray(layer(x)))


def test_weight_dropout_rejects_bad_rates_and_other_loops():
    with pytest.raises(ValueError, match="weight_dropout"):
        layers.LSTM(4, weight_dropout=1.0)
    rnn = keras.layers.RNN(layers.LSTMCell(4, weight_dropout=0.3))
    x = np.ones((2, 3, 5), "float32")
    rnn(x)  # inference is fine
    with pytest.raises(ValueError, match="tfrnn layer"):
        rnn(x, training=True)


def test_embedding_dropout_drops_whole_word_types():
    rate, vocab = 0.5, 40
    ids = np.tile(np.arange(vocab, dtype="int32"), (3, 2))  # (3, 80): every word at 6 positions
    embeddings = np.ones(ids.shape + (4,), "float32")
    layer = layers.EmbeddingDropout(rate, vocab, seed=1)
    out = np.asarray(layer([ids, embeddings], training=True))
    assert set(np.unique(out)) <= {0.0, 1.0 / (1 - rate)}
    np.testing.assert_array_equal(out, out[..., :1] * np.ones(4))  # a whole embedding row kept or dropped
    per_word = [out[ids == word][:, 0] for word in range(vocab)]
    assert all(np.all(values == values[0]) for values in per_word)  # the same at every position
    dropped = np.mean([values[0] == 0 for values in per_word])
    assert 0 < dropped < 1
    np.testing.assert_array_equal(np.asarray(layer([ids, embeddings])), embeddings)  # off at inference
    config = layer.get_config()
    assert layers.EmbeddingDropout.from_config(config).get_config() == config


def test_locked_dropout_uses_one_mask_per_sequence():
    rate = 0.5
    layer = layers.locked_dropout(rate, seed=1)
    x = np.ones((6, 10, 8), "float32")
    out = np.asarray(layer(x, training=True))
    assert set(np.unique(out)) == {0.0, 1.0 / (1 - rate)}
    np.testing.assert_array_equal(out, np.broadcast_to(out[:, :1], out.shape))  # constant along time
    assert len({row.tobytes() for row in out[:, 0]}) > 1  # sequences get their own masks
    np.testing.assert_array_equal(np.asarray(layer(x)), x)


def test_activation_regularization_losses():
    rng = np.random.default_rng(3)
    dropped, raw = rng.normal(size=(2, 2, 5, 3)).astype("float32")
    d_in, r_in = keras.Input((5, 3)), keras.Input((5, 3))
    model = keras.Model([d_in, r_in], layers.ActivationRegularization(2.0, 0.5)([d_in, r_in]))
    out = model([dropped, raw], training=True)
    np.testing.assert_array_equal(np.asarray(out), dropped)  # the identity on its output
    ar, tar = (float(loss) for loss in model.losses)
    np.testing.assert_allclose(ar, 2.0 * np.mean(dropped**2), rtol=1e-5)
    np.testing.assert_allclose(tar, 0.5 * np.mean((raw[:, 1:] - raw[:, :-1]) ** 2), rtol=1e-5)
    model([dropped, raw], training=False)
    assert model.losses == []
    config = model.layers[-1].get_config()
    assert (config["alpha"], config["beta"]) == (2.0, 0.5)
