"""model.peft=qlora on a tiny BERT classifier: the encoder's dense layers become int8 (weight-only)
and the model starts as that quantized model (not as the float one); only the LoRA factors, the
target biases and the head train, the int8 kernels and scales stay bit-identical; the merge
turns the targets into float layers holding the dequantized kernel plus the update, with the
outputs kept; the adapter checkpoint reloads onto a freshly quantized base."""

import keras
import numpy as np
import pytest

from tests.models.peft.common import (
    assert_merge_keeps_outputs,
    assert_runs_under_mixed_precision,
    assert_trains_only_its_weights,
    classifier,
    fit_a_few_steps,
    outputs,
    peft_model,
)
from tfrnn.config import PeftConfig
from tfrnn.errors import ConfigError
from tfrnn.models.peft import apply_peft, load_adapter, qlora, save_adapter
from tfrnn.models.peft.base import RawVariables, kernel_split, target_layers


def _int8_round_trip(kernel, fan_in):
    """A float32 kernel through Keras' int8 abs-max quantization (one scale per output unit) and back."""
    axes = tuple(range(fan_in))
    scale = np.divide(127, np.add(np.max(np.abs(kernel), axis=axes, keepdims=True), 1e-7))  # float32
    return np.clip(np.round(kernel * scale), -127, 127) / scale


def _quantized_reference():
    """classifier() with every dense kernel of the encoder replaced by its int8 round trip, in float."""
    model = classifier()
    for layer in target_layers(model.backbone, qlora.QUANTIZED):
        kernel = np.asarray(layer.kernel)
        layer.kernel.assign(_int8_round_trip(kernel, len(kernel_split(layer)[0])))
    return model


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_qlora_starts_as_the_quantized_encoder_not_the_float_one(dropout):
    start = outputs(peft_model("qlora", rank=4, alpha=8.0, dropout=dropout))
    np.testing.assert_allclose(start, outputs(_quantized_reference()), atol=1e-5, rtol=0)
    assert np.abs(start - outputs(classifier())).max() > 1e-4  # the float encoder is another model


def test_qlora_kernels_are_int8_and_the_embeddings_float():
    model = peft_model("qlora", rank=4)
    quantized = target_layers(model.backbone, qlora.QUANTIZED)
    assert len(quantized) == 2 * 6 + 1  # 2 blocks x 6 dense layers, and the [CLS] pooler
    assert {layer._kernel.dtype for layer in quantized} == {"int8"}
    assert {layer.quantization_mode for layer in quantized} == {"int8"}
    assert not any(layer.inputs_quantizer for layer in quantized)  # weight-only
    embeddings = [w for w in model.backbone.weights if "_embedding/" in w.path]  # token, position, segment
    assert len(embeddings) == 3 and {w.dtype for w in embeddings} == {"float32"}
    assert {w.dtype for w in model.trainable_weights} == {"float32"}


def test_qlora_trains_only_its_factors_and_the_target_biases():
    def expected(path):  # transformer_layer_0/self_attention/query/lora_kernel_a, .../bias
        return path.split("/")[-2] in ("query", "value")

    # The frozen weights (int8 kernels, their scales) come out bit-identical.
    assert_trains_only_its_weights("qlora", expected, rank=4, alpha=8.0, dropout=0.2)


@pytest.mark.parametrize("dropout", [0.0, 0.2])
def test_qlora_merges_into_dequantized_float_kernels(dropout):
    assert_merge_keeps_outputs("qlora", rank=4, alpha=8.0, dropout=dropout)


def test_qlora_merge_turns_the_targets_into_float_layers_and_keeps_the_rest_int8():
    float_query = np.asarray(target_layers(classifier().backbone, ["query"])[0].kernel)
    model = peft_model("qlora", rank=4, alpha=8.0)
    query = target_layers(model.backbone, ["query"])[0]
    b = np.random.default_rng(0).normal(size=query.lora_kernel_b.shape).astype("float32")
    query.lora_kernel_b.assign(b)
    expected = _int8_round_trip(float_query, 1) + 2.0 * np.asarray(query.lora_kernel_a) @ b  # alpha / rank = 2
    qlora.merge(model.backbone)
    np.testing.assert_allclose(np.asarray(query._kernel), expected, atol=1e-5, rtol=0)
    for layer in target_layers(model.backbone, qlora.QUANTIZED):
        target = layer.name in ("query", "value")
        assert layer.quantization_mode == (None if target else "int8"), layer.path
        assert layer._kernel.dtype == ("float32" if target else "int8"), layer.path
        assert hasattr(layer, "kernel_scale") != target and isinstance(layer, RawVariables) != target, layer.path


def test_qlora_adapter_reloads_onto_a_freshly_quantized_base(tmp_path):
    model = peft_model("qlora", rank=2)
    fit_a_few_steps(model)
    save_adapter(model, tmp_path / "adapter.npz")
    fresh = peft_model("qlora", rank=2)
    load_adapter(fresh, tmp_path / "adapter.npz")
    np.testing.assert_array_equal(outputs(fresh), outputs(model))


def test_qlora_refuses_float16_compute():
    keras.config.set_dtype_policy("mixed_float16")  # tests/conftest.py restores float32
    with pytest.raises(ConfigError, match=r"model.peft.method=qlora: Keras' int8 layers do not compute in float16"):
        apply_peft(classifier(), PeftConfig(method="qlora"))


def test_qlora_runs_under_mixed_precision():
    assert_runs_under_mixed_precision("qlora", rank=4, dropout=0.2)
