"""model.peft=adapter (Houlsby bottleneck adapters) on a tiny BERT classifier: unchanged at
initialisation, only the adapters, the blocks' LayerNorms and the head train, gradients right,
saved and reloaded exactly, settings checked, mixed precision."""

import keras
import numpy as np
import pytest

from tests.layers.gradients import assert_gradients_match_finite_differences
from tests.models.peft.common import (
    assert_runs_under_mixed_precision,
    assert_starts_unchanged,
    assert_trains_only_its_weights,
    classifier,
    fit_a_few_steps,
    outputs,
    peft_model,
)
from tfrnn.config import PeftConfig
from tfrnn.errors import ConfigError
from tfrnn.models.peft import apply_peft, load_adapter, save_adapter
from tfrnn.models.peft.adapter import add_adapter

BLOCK_LAYER_NORMS = ("self_attention_layer_norm", "feedforward_layer_norm")


def test_adapter_starts_unchanged():
    assert_starts_unchanged("adapter", bottleneck=4)


def test_adapter_trains_only_adapters_block_layer_norms_and_head():
    def expected(
        path,
    ):  # transformer_layer_0/feedforward_output_dense/adapter_up_kernel, .../feedforward_layer_norm/gamma
        return path.split("/")[-1].startswith("adapter_") or path.split("/")[-2] in BLOCK_LAYER_NORMS

    assert_trains_only_its_weights("adapter", expected, bottleneck=4, activation="relu")
    model = peft_model("adapter", bottleneck=4)
    paths = [w.path for w in model.trainable_weights]
    assert sum("adapter_" in p for p in paths) == 2 * 2 * 4  # 2 blocks x (attention, feed-forward) x 4
    assert sum(p.split("/")[-2] in BLOCK_LAYER_NORMS for p in paths) == 2 * 2 * 2  # gamma, beta
    assert "embeddings_layer_norm/gamma" not in paths
    assert {tuple(w.shape) for w in model.trainable_weights if "adapter_down_kernel" in w.path} == {(16, 4)}


# name -> (a dense layer whose output has the hidden size (6) last, its input shape).
TINY_LAYERS = {
    "dense": (lambda: keras.layers.Dense(6), (2, 3, 5)),
    "attention_output": (
        lambda: keras.layers.EinsumDense("btnh,nhd->btd", output_shape=(None, 6), bias_axes="d"),
        (2, 3, 2, 4),
    ),
}


@pytest.mark.parametrize("kind", TINY_LAYERS)
def test_adapter_gradients_match_finite_differences(kind):
    make_layer, x_shape = TINY_LAYERS[kind]
    layer = make_layer()  # here, after the test's seed
    rng = np.random.default_rng(0)
    x = 0.3 * rng.normal(size=x_shape).astype("float32")  # small inputs and weights: little curvature
    layer.build(x_shape)
    add_adapter(layer, 3, keras.activations.gelu)
    layer.adapter_up_kernel.assign(0.3 * rng.normal(size=(3, 6)).astype("float32"))  # else down's gradient is 0
    assert [v.name for v in layer.trainable_variables] == [
        "adapter_down_kernel", "adapter_down_bias", "adapter_up_kernel", "adapter_up_bias"
    ]  # fmt: skip
    assert_gradients_match_finite_differences(layer, lambda y: keras.ops.sum(keras.ops.sin(y)), x, rng)


def test_adapter_weights_save_and_load_exactly(tmp_path):
    model = peft_model("adapter", bottleneck=4)
    fit_a_few_steps(model)
    model.save_weights(tmp_path / "model.weights.h5")  # a backup: every variable, as it is
    save_adapter(model, tmp_path / "adapter.npz")
    for load in (
        lambda m: m.load_weights(tmp_path / "model.weights.h5"),
        lambda m: load_adapter(m, tmp_path / "adapter.npz"),
    ):
        fresh = peft_model("adapter", bottleneck=4)
        assert not np.allclose(outputs(fresh), outputs(model))
        load(fresh)
        np.testing.assert_array_equal(outputs(fresh), outputs(model))


@pytest.mark.parametrize(
    "peft, key, message",
    [
        (
            PeftConfig(method="adapter", bottleneck=17),
            "model.peft.bottleneck",
            r"model.peft.bottleneck=17: larger than the encoder's hidden size 16",
        ),
        (
            PeftConfig(method="adapter", bottleneck=4, activation="swishy"),
            "model.peft.activation",
            r"model.peft.activation='swishy': not a Keras activation",
        ),
    ],
)
def test_impossible_adapter_settings_are_config_errors(peft, key, message):
    with pytest.raises(ConfigError, match=message) as error:
        apply_peft(classifier(), peft)
    assert error.value.key == key


def test_adapter_trains_under_mixed_precision():
    assert_runs_under_mixed_precision("adapter", bottleneck=4)
