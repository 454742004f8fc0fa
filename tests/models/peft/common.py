"""What every PEFT method's tests check, on a tiny BERT classifier (2 blocks, hidden 16, 2 heads):
the model unchanged at initialisation, only the method's weights (and the head) trained with the
base bit-identical, merged outputs equal to unmerged ones, outputs independent of batch mates."""

import keras
import numpy as np

from tfrnn.config import PeftConfig
from tfrnn.models.bert import BertClassifier
from tfrnn.models.bert.classifier import random_backbone
from tfrnn.models.peft import apply_peft, merge_peft

# Two texts, right-padded: 5 and 3 tokens.
INPUTS = {
    "token_ids": np.array([[2, 5, 6, 7, 3, 0], [2, 9, 3, 0, 0, 0]], "int32"),
    "segment_ids": np.zeros((2, 6), "int32"),
    "padding_mask": np.array([[1, 1, 1, 1, 1, 0], [1, 1, 1, 0, 0, 0]], "int32"),
}
LABELS = np.array([0, 1])


def classifier(pooling="cls", seed=0):
    """A tiny BERT classifier with random weights (the same for the same seed)."""
    keras.utils.set_random_seed(seed)
    return BertClassifier(random_backbone(50, 2, 16, 2, 16), 2, pooling=pooling)


def peft_model(method, seed=0, pooling="cls", **settings):
    """classifier() with `apply_peft(method, **settings)`."""
    model = classifier(pooling, seed)
    apply_peft(model, PeftConfig(method=method, **settings))
    return model


def outputs(model, inputs=INPUTS):
    return np.asarray(model(inputs, training=False))


def base_weights(model):
    """{path: value} of the weights that must not change while training (the frozen ones)."""
    return {w.path: np.array(w) for w in model.weights if not w.trainable}


def fit_a_few_steps(model, steps=3, learning_rate=0.05):
    """Trains on INPUTS for `steps` steps with a large learning rate, so every trainable weight moves."""
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=keras.losses.SparseCategoricalCrossentropy(True))
    model.fit(INPUTS, LABELS, epochs=steps, verbose=0)


def assert_starts_unchanged(method, atol=1e-6, **settings):
    """The method at initialisation leaves the classifier's outputs as they were."""
    before = outputs(classifier())
    np.testing.assert_allclose(outputs(peft_model(method, **settings)), before, atol=atol, rtol=0)


def assert_trains_only_its_weights(method, expected_trainable, **settings):
    """After a few steps, the frozen weights are bit-identical and every trainable weight moved.

    Args:
        method: str. The PEFT method.
        expected_trainable: callable(path) -> bool. Which trainable weight paths are expected
            (the head's are always expected).
        **settings: PeftConfig settings.
    """
    model = peft_model(method, **settings)
    frozen = base_weights(model)
    trainable = {w.path: np.array(w) for w in model.trainable_weights}
    unexpected = [p for p in trainable if not (p.startswith("logits/") or expected_trainable(p))]
    assert not unexpected, unexpected
    fit_a_few_steps(model)
    for w in model.weights:
        if w.path in frozen:
            assert np.array_equal(np.array(w), frozen[w.path]), w.path  # bit-identical
    still = [w.path for w in model.trainable_weights if np.array_equal(np.array(w), trainable[w.path])]
    assert not still, f"trainable weights that did not move: {still}"


def assert_merge_keeps_outputs(method, atol=1e-5, **settings):
    """After training, `merge_peft` changes no output (to `atol`)."""
    model = peft_model(method, **settings)
    fit_a_few_steps(model)
    before = outputs(model)
    merge_peft(model)
    np.testing.assert_allclose(outputs(model), before, atol=atol, rtol=0)


def assert_independent_of_batch_mates(model, atol=1e-5):
    """Each text's output alone equals its output in a padded batch with a longer text."""
    together = outputs(model)
    for row in range(2):
        length = int(INPUTS["padding_mask"][row].sum())
        alone = {name: value[row : row + 1, :length] for name, value in INPUTS.items()}
        np.testing.assert_allclose(outputs(model, alone)[0], together[row], atol=atol, rtol=0)


def assert_runs_under_mixed_precision(method, **settings):
    """Under the mixed_bfloat16 policy the method applies, a training step runs, the outputs are
    finite and the trainable weights stay float32; returns the model."""
    keras.config.set_dtype_policy("mixed_bfloat16")  # tests/conftest.py restores float32
    model = peft_model(method, **settings)
    assert model.backbone.compute_dtype == "bfloat16"
    fit_a_few_steps(model, steps=1)
    assert np.isfinite(outputs(model)).all()
    assert {w.dtype for w in model.trainable_weights} == {"float32"}
    return model
