"""model.peft=lora on a tiny BERT classifier (with and without dropout on the low-rank branch),
and what every method shares: no method changes nothing, adapter-only checkpoints (saved, loaded
onto a fresh base, refused on another base), target names checked, mixed precision."""

import keras
import numpy as np
import pytest

from tests.models.peft.common import (
    assert_merge_keeps_outputs,
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
from tfrnn.models.peft import apply_peft, load_adapter, lora, parameter_counts, save_adapter
from tfrnn.models.peft.base import swap_class


def _lora_weights(model):
    return [w for w in model.trainable_weights if "lora" in w.path]


def test_no_method_changes_nothing():
    model = classifier()
    trainable = len(model.trainable_weights)
    apply_peft(model, PeftConfig())
    assert len(model.trainable_weights) == trainable and not _lora_weights(model)


@pytest.mark.parametrize("dropout", [0.0, 0.5])
def test_lora_starts_unchanged(dropout):
    assert_starts_unchanged("lora", rank=4, alpha=8.0, dropout=dropout)


@pytest.mark.parametrize("dropout", [0.0, 0.2])
def test_lora_trains_only_its_factors_and_the_target_biases(dropout):
    def expected(path):  # transformer_layer_0/self_attention/query/lora_kernel_a, .../bias
        return path.split("/")[-2] in ("query", "value")

    assert_trains_only_its_weights("lora", expected, rank=4, alpha=8.0, dropout=dropout)
    model = peft_model("lora", rank=4)
    assert len(_lora_weights(model)) == 2 * 2 * 2  # 2 blocks x (query, value) x (A, B)
    trainable, total = parameter_counts(model)
    assert trainable == sum(np.prod(w.shape) for w in model.trainable_weights) and trainable < total / 5


@pytest.mark.parametrize("dropout", [0.0, 0.2])
def test_lora_merges_into_the_kernels(dropout):
    assert_merge_keeps_outputs("lora", rank=4, alpha=8.0, dropout=dropout)


# A query-like projection (hidden 5 -> 2 heads x 3) and a Dense on a sequence, with their equations.
TINY_LAYERS = {
    "einsum": (lambda: keras.layers.EinsumDense("abc,cde->abde", (None, 2, 3), bias_axes="de"), "abc,cde->abde"),
    "dense": (lambda: keras.layers.Dense(3, activation="gelu"), "abc,cd->abd"),
}


@pytest.mark.parametrize("name", list(TINY_LAYERS))
def test_lora_dropout_drops_only_the_low_rank_input_and_only_while_training(name):
    make, equation = TINY_LAYERS[name]
    layer = make()
    layer.build((2, 4, 5))
    lora.enable(layer, 2, 4.0, dropout=0.5)
    swap_class(layer, lora.LoraDropout)
    layer.lora_kernel_b.assign(np.random.default_rng(0).normal(size=layer.lora_kernel_b.shape))
    x = np.random.default_rng(1).normal(size=(2, 4, 5)).astype("float32")
    plain = np.einsum(equation, x, np.asarray(layer.kernel)) + np.asarray(layer.bias)  # Keras' W + (alpha / rank) A B
    expected = np.asarray(layer.activation(plain))
    np.testing.assert_allclose(np.asarray(layer(x)), expected, atol=1e-5, rtol=0)  # eval: no dropout
    training = np.asarray(layer(x, training=True))
    assert np.abs(training - expected).max() > 1e-2
    assert np.abs(np.asarray(layer(x, training=True)) - training).max() > 1e-2  # a new mask each call
    layer.lora_kernel_b.assign(np.zeros(layer.lora_kernel_b.shape))  # no low-rank branch: nothing dropped
    np.testing.assert_array_equal(np.asarray(layer(x, training=True)), np.asarray(layer(x)))


@pytest.mark.parametrize("dropout", [0.0, 0.2])
def test_lora_runs_under_mixed_precision(dropout):
    assert_runs_under_mixed_precision("lora", rank=4, dropout=dropout)


def test_all_linear_targets_every_dense_layer_of_the_blocks():
    model = peft_model("lora", rank=2, targets=["all-linear"])
    names = {w.path.split("/")[-2] for w in _lora_weights(model)}
    assert names == {
        "query", "key", "value", "attention_output", "feedforward_intermediate_dense", "feedforward_output_dense"
    }  # fmt: skip


def test_adapter_checkpoint_loads_onto_a_fresh_base_and_is_small(tmp_path):
    model = peft_model("lora", rank=2)
    fit_a_few_steps(model)
    save_adapter(model, tmp_path / "adapter.npz")
    fresh = peft_model("lora", rank=2)  # same base weights (same seed), fresh LoRA and head
    assert not np.allclose(outputs(fresh), outputs(model))
    load_adapter(fresh, tmp_path / "adapter.npz")
    np.testing.assert_array_equal(outputs(fresh), outputs(model))
    trainable, total = parameter_counts(model)
    overhead = 512 * len(model.trainable_weights) + 2048  # per array (zip entry, header) and the metadata
    assert (tmp_path / "adapter.npz").stat().st_size < 4 * trainable + overhead < 4 * total


def test_adapter_checkpoint_is_refused_on_another_base_or_method(tmp_path):
    model = peft_model("lora", rank=2)
    save_adapter(model, tmp_path / "adapter.npz")
    with pytest.raises(ConfigError, match=r"adapter.npz: trained on another base encoder \(weights fingerprint"):
        load_adapter(peft_model("lora", rank=2, seed=1), tmp_path / "adapter.npz")
    with pytest.raises(ConfigError, match="adapter.npz: holds a lora adapter, not ia3"):
        load_adapter(peft_model("ia3"), tmp_path / "adapter.npz")
    (tmp_path / "bad.npz").write_bytes(b"not numpy")
    with pytest.raises(ConfigError, match="bad.npz: not a tfrnn adapter file"):
        load_adapter(model, tmp_path / "bad.npz")


@pytest.mark.parametrize(
    "peft, message",
    [
        (PeftConfig(method="lora", targets=["qkv"]), r"model.peft.targets: no layer named 'qkv' \(the encoder's: "),
        (PeftConfig(method="lora", rank=17), r"model.peft.rank=17: larger than layer 'query' allows \(16 inputs"),
    ],
)
def test_impossible_settings_are_config_errors(peft, message):
    with pytest.raises(ConfigError, match=message):
        apply_peft(classifier(), peft)
