"""LoRA on the recurrent layers' kernels (`tfrnn.layers.lora`): outputs unchanged when enabled,
the update's equation, only the factors (and biases) train, merged saving, gradients, bad ranks."""

import keras
import numpy as np
import pytest
from keras import ops

from tests.layers.gradients import assert_gradients_match_finite_differences
from tfrnn import layers

LAYERS = {
    "simple_rnn": lambda **kw: layers.SimpleRNN(4, return_sequences=True, **kw),
    "lstm": lambda **kw: layers.LSTM(4, return_sequences=True, **kw),
    "gru": lambda **kw: layers.GRU(4, return_sequences=True, **kw),
    "gru_reset_before": lambda **kw: layers.GRU(4, reset_after=False, return_sequences=True, **kw),
    "feedback": lambda **kw: layers.Feedback(4, feedback_gain_initializer="ones", return_sequences=True, **kw),
}
X = np.random.default_rng(0).normal(size=(3, 5, 2)).astype("float32")


def _cells(layer):
    """The cells holding LoRA kernels: the layer's cell (and a feedback cell's base cell)."""
    cell = layer.cell
    return [cell, cell.base_cell] if isinstance(cell, layers.FeedbackCell) else [cell]


def _built(name, **kwargs):
    layer = LAYERS[name](**kwargs)
    layer(X)
    return layer


@pytest.mark.parametrize("name", LAYERS)
def test_enabling_lora_leaves_outputs_unchanged(name):
    layer = _built(name)
    before = ops.convert_to_numpy(layer(X))
    layer.enable_lora(2)
    np.testing.assert_allclose(ops.convert_to_numpy(layer(X)), before, atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", LAYERS)
def test_update_is_scaled_low_rank_product(name):
    """With random factors, the layer computes its equations with W + (alpha / rank) A @ B: the
    same outputs as a plain layer holding those kernels (what saving stores)."""
    layer = _built(name)
    layer.enable_lora(2, lora_alpha=6.0, b_initializer="random_normal")
    plain = _built(name)
    merged = {}
    for cell in _cells(layer):
        for kernel_name, (a, b) in cell._lora.items():
            update = 3.0 * np.asarray(a) @ np.asarray(b)  # alpha / rank = 3
            merged[id(getattr(cell, kernel_name))] = np.asarray(getattr(cell, kernel_name)) + update
    values = [merged.get(id(v), np.asarray(v)) for v in layer.weights if "lora" not in v.path]
    plain.set_weights(values)
    np.testing.assert_allclose(ops.convert_to_numpy(layer(X)), ops.convert_to_numpy(plain(X)), atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", LAYERS)
def test_only_the_factors_and_biases_train(name):
    inputs = keras.Input((5, 2))
    outputs = keras.layers.Dense(1)(LAYERS[name]()(inputs))
    model = keras.Model(inputs, outputs)
    rnn = model.layers[1]
    rnn.enable_lora(2)
    frozen = {v.path: np.array(v) for v in rnn.weights if not v.trainable}
    assert {path.rsplit("/", 1)[1] for path in frozen} == (
        {"kernel", "recurrent_kernel", "feedback_kernel"} if name == "feedback" else {"kernel", "recurrent_kernel"}
    )
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
    model.fit(X, np.ones((3, 5, 1), "float32"), epochs=3, verbose=0)
    for v in rnn.weights:
        if v.path in frozen:
            assert np.array_equal(np.array(v), frozen[v.path]), v.path  # bit-identical
    b_factors = [v for v in rnn.trainable_weights if v.path.endswith("_lora_b")]
    assert b_factors and all(np.abs(np.array(v)).max() > 0 for v in b_factors)


@pytest.mark.parametrize("name", LAYERS)
def test_saving_merges_and_loading_starts_the_factors_at_zero(name, tmp_path):
    """As Keras' Dense: the file holds the merged kernels, the reloaded layer has LoRA enabled
    with zero factors (same outputs), and the weights load into a layer without LoRA too."""
    inputs = keras.Input((5, 2))
    model = keras.Model(inputs, LAYERS[name]()(inputs))
    model.layers[1].enable_lora(2, b_initializer="random_normal")
    expected = ops.convert_to_numpy(model(X))
    model.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(ops.convert_to_numpy(reloaded(X)), expected, atol=1e-5, rtol=0)
    assert all(cell.lora_enabled for cell in _cells(reloaded.layers[1]))
    factors = [v for v in reloaded.layers[1].weights if "lora" in v.path]
    assert factors and all(not np.array(v).any() for v in factors if v.path.endswith("_lora_b"))
    model.save_weights(tmp_path / "m.weights.h5")
    plain = keras.Model(inputs, LAYERS[name]()(inputs))
    plain.load_weights(tmp_path / "m.weights.h5")
    np.testing.assert_allclose(ops.convert_to_numpy(plain(X)), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", ["lstm", "feedback"])
def test_lora_gradients_match_finite_differences(name):
    layer = _built(name)
    layer.enable_lora(2, b_initializer="random_normal")

    def loss(out):
        return ops.sum(ops.sin(out) * ops.reshape(ops.arange(1, 61, dtype=out.dtype), (3, 5, 4)) / 30.0)

    assert_gradients_match_finite_differences(layer, loss, X, np.random.default_rng(1))


def test_bad_ranks_and_states_are_refused():
    layer = layers.LSTM(4)
    with pytest.raises(ValueError, match="isn't yet built"):
        layer.enable_lora(2)
    layer(X)
    for rank in (0, 3.5, 5):  # recurrent_kernel is (4, 16): at most 4
        with pytest.raises(ValueError, match=r"lora rank=.*: must be an integer in \[1, 2\] for kernel"):
            layer.enable_lora(rank)
    layer.enable_lora(2)
    with pytest.raises(ValueError, match="already enabled"):
        layer.enable_lora(2)
