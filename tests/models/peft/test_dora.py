"""model.peft=dora on a tiny BERT classifier: unchanged at the start, the magnitude starts as the
kernel's column norms, only A, B, the magnitude, the target biases and the head train with the
base bit-identical, the merge keeps the outputs, and the gradients (norm included) are exact."""

import keras
import numpy as np
import pytest
from keras import ops

from tests.layers.gradients import assert_gradients_match_finite_differences
from tests.models.peft.common import (
    assert_merge_keeps_outputs,
    assert_runs_under_mixed_precision,
    assert_starts_unchanged,
    assert_trains_only_its_weights,
    classifier,
    peft_model,
)
from tfrnn.models.peft import dora
from tfrnn.models.peft.base import target_layers


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_dora_starts_unchanged(dropout):
    assert_starts_unchanged("dora", atol=1e-6, rank=4, alpha=8.0, dropout=dropout)


def test_dora_magnitude_starts_as_the_column_norms_over_the_fan_in_axes():
    kernels = {layer.path: np.asarray(layer.kernel) for layer in target_layers(classifier().backbone, ["all-linear"])}
    model = peft_model("dora", rank=2, targets=["all-linear"])
    for layer in target_layers(model.backbone, ["all-linear"]):
        kernel = kernels[layer.path]  # query (hidden, heads, head_dim); attention_output (heads, head_dim, hidden)
        fan_in = 2 if layer.name == "attention_output" else 1
        expected = np.sqrt(np.sum(kernel.astype("float64") ** 2, axis=tuple(range(fan_in))))
        assert layer.dora_magnitude.path.endswith(f"{layer.name}/dora_magnitude")
        np.testing.assert_allclose(np.asarray(layer.dora_magnitude), expected, rtol=1e-6)


@pytest.mark.parametrize("dropout", [0.0, 0.2])
def test_dora_trains_only_its_factors_magnitudes_and_the_target_biases(dropout):
    def expected(path):  # transformer_layer_0/self_attention/query/dora_magnitude, .../lora_kernel_a, .../bias
        return path.split("/")[-2] in ("query", "value")

    assert_trains_only_its_weights("dora", expected, rank=4, alpha=8.0, dropout=dropout)
    model = peft_model("dora", rank=4)
    magnitudes = [w for w in model.trainable_weights if w.path.endswith("/dora_magnitude")]
    assert [tuple(w.shape) for w in magnitudes] == [(2, 8)] * 4  # 2 blocks x (query, value): (heads, head_dim)


@pytest.mark.parametrize("dropout", [0.0, 0.2])
def test_dora_merges_into_the_kernels(dropout):
    assert_merge_keeps_outputs("dora", atol=1e-5, rank=4, alpha=8.0, dropout=dropout)


@pytest.mark.parametrize("dropout", [0.0, 0.5])
def test_dora_gradients_match_finite_differences(dropout):
    rng = np.random.default_rng(0)
    layer = keras.layers.EinsumDense("abc,cde->abde", (None, 2, 3), bias_axes="de")  # a query: 5 -> 2 heads x 3
    layer.build((2, 4, 5))
    dora.enable(layer, 2, 4.0, dropout)
    layer.lora_kernel_b.assign(rng.normal(size=layer.lora_kernel_b.shape))
    layer.dora_magnitude.assign(np.asarray(layer.dora_magnitude) * rng.uniform(0.5, 1.5, size=(2, 3)))
    assert [v.path.split("/")[-1] for v in layer.trainable_variables] == [
        "bias", "lora_kernel_a", "lora_kernel_b", "dora_magnitude"
    ]  # fmt: skip
    weights = ops.reshape(ops.arange(1, 49, dtype="float32"), (2, 4, 2, 3)) / 24.0

    def loss(out):  # (2, 4, 2, 3); the dropout is off (not training)
        return ops.sum(ops.sin(out) * weights)

    x = rng.normal(size=(2, 4, 5)).astype("float32")
    assert_gradients_match_finite_differences(layer, loss, x, rng, eps=1e-3)  # V / ||V|| curves: a small step


def test_dora_runs_under_mixed_precision():
    assert_runs_under_mixed_precision("dora", rank=4, dropout=0.2)
