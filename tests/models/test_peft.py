"""model.peft=lora on a tiny BERT classifier: outputs unchanged when enabled, only the LoRA
factors, the target biases and the head train, the base stays bit-identical, and a saved model
is the merged plain model."""

import keras
import numpy as np
import pytest

from tfrnn.config import PeftConfig
from tfrnn.errors import ConfigError
from tfrnn.models.bert import BertClassifier
from tfrnn.models.bert.classifier import random_backbone
from tfrnn.models.peft import apply_peft, parameter_counts

INPUTS = {
    "token_ids": np.array([[2, 5, 6, 7, 3, 0], [2, 9, 3, 0, 0, 0]], "int32"),
    "segment_ids": np.zeros((2, 6), "int32"),
    "padding_mask": np.array([[1, 1, 1, 1, 1, 0], [1, 1, 1, 0, 0, 0]], "int32"),
}


def _classifier():
    return BertClassifier(random_backbone(50, 2, 16, 2, 16), 2)


def _lora_weights(model):
    return [w for w in model.trainable_weights if "lora" in w.path]


def test_no_method_changes_nothing():
    model = _classifier()
    trainable = len(model.trainable_weights)
    apply_peft(model, PeftConfig())
    assert len(model.trainable_weights) == trainable and not _lora_weights(model)


def test_lora_starts_unchanged_and_trains_only_its_weights(tmp_path):
    model = _classifier()
    before = np.asarray(model(INPUTS))
    apply_peft(model, PeftConfig(method="lora", rank=4, alpha=8.0))
    np.testing.assert_allclose(np.asarray(model(INPUTS)), before, atol=1e-6, rtol=0)
    trainable = {w.path for w in model.trainable_weights}
    assert {p.rsplit("/", 2)[-2] for p in trainable if "transformer_layer" in p} == {"query", "value"}
    assert {p for p in trainable if "transformer_layer" not in p} == {"logits/kernel", "logits/bias"}
    assert len(_lora_weights(model)) == 2 * 2 * 2  # 2 blocks x (query, value) x (A, B)
    frozen = {w.path: np.array(w) for w in model.weights if not w.trainable}
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss=keras.losses.SparseCategoricalCrossentropy(True))
    model.fit(INPUTS, np.array([0, 1]), epochs=3, verbose=0)
    for w in model.weights:
        if w.path in frozen:
            assert np.array_equal(np.array(w), frozen[w.path]), w.path  # bit-identical
    assert any(np.abs(np.array(w)).max() > 0 for w in _lora_weights(model) if w.path.endswith("lora_kernel_b"))
    trainable_count, total = parameter_counts(model)
    assert trainable_count == sum(np.prod(w.shape) for w in model.trainable_weights) and trainable_count < total / 5
    # Saved: the kernels hold W + (alpha / rank) A B; the reloaded model is plain, same outputs.
    expected = np.asarray(model(INPUTS))
    model.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras")
    assert not _lora_weights(reloaded)
    np.testing.assert_allclose(np.asarray(reloaded(INPUTS)), expected, atol=1e-5, rtol=0)


def test_all_linear_targets_every_dense_layer_of_the_blocks():
    model = _classifier()
    apply_peft(model, PeftConfig(method="lora", rank=2, targets=["all-linear"]))
    names = {w.path.split("/")[-2] for w in _lora_weights(model)}
    assert names == {
        "query", "key", "value", "attention_output", "feedforward_intermediate_dense", "feedforward_output_dense"
    }  # fmt: skip


@pytest.mark.parametrize(
    "peft, message",
    [
        (PeftConfig(method="lora", targets=["qkv"]), r"model.peft.targets: no layer named 'qkv' \(the encoder's: "),
        (PeftConfig(method="lora", rank=17), "model.peft.rank=17: larger than the encoder's hidden size 16"),
    ],
)
def test_impossible_settings_are_config_errors(peft, message):
    with pytest.raises(ConfigError, match=message):
        apply_peft(_classifier(), peft)
