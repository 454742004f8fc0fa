"""Adversarial training on every backend it supports (TensorFlow, JAX: CI runs this file on both):
epsilon 0 is plain training, step for step; a perturbation changes training; VAT's unlabelled batches."""

import keras
import numpy as np
import pytest

from tests.fixtures import quiet, tiny_config
from tfrnn.config import AdversarialConfig
from tfrnn.runs import load_run
from tfrnn.training.adversarial import enable_adversarial
from tfrnn.training.losses import SparseCrossentropy
from tfrnn.training.train import train

X = np.array([[3, 4, 5, 0], [6, 7, 8, 9], [2, 11, 0, 0], [12, 13, 14, 0]], np.int32)  # 0: padding
Y = np.array([0, 1, 1, 0], np.int32)


def tiny_model(seed=0):
    """Token ids -> masked embedding (named "embedding") -> LSTM -> logits; no dropout, SGD."""
    keras.utils.set_random_seed(seed)
    ids = keras.Input((None,), dtype="int32")
    embedded = keras.layers.Embedding(16, 4, mask_zero=True, name="embedding")(ids)
    logits = keras.layers.Dense(2)(keras.layers.LSTM(3)(embedded))
    model = keras.Model(ids, logits)
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss=SparseCrossentropy(), metrics=["accuracy"])
    return model


def _fit(model, step_config=None, epochs=3):
    if step_config is not None:
        enable_adversarial(model, step_config)
    model.fit(X, Y, batch_size=2, epochs=epochs, shuffle=False, verbose=0)
    return model.get_weights()


@pytest.mark.parametrize("method", ["fgm", "pgd", "vat"])
def test_epsilon_zero_trains_like_plain_training_step_for_step(method):
    plain = _fit(tiny_model())
    zero = _fit(tiny_model(), AdversarialConfig(method=method, epsilon=0.0, weight=1.0))
    for actual, expected in zip(zero, plain, strict=True):
        np.testing.assert_allclose(actual, expected, atol=1e-6)


@pytest.mark.parametrize("method", ["fgm", "pgd", "vat"])
def test_a_perturbation_changes_training(method):
    plain = _fit(tiny_model())
    adversarial = _fit(tiny_model(), AdversarialConfig(method=method, epsilon=1.0))
    assert all(np.isfinite(w).all() for w in adversarial)
    assert any(not np.allclose(a, b, atol=1e-4) for a, b in zip(adversarial, plain, strict=True))


def test_fgm_and_label_smoothing_run_end_to_end(tmp_path):
    """`tfrnn train` with FGM and label smoothing on this backend; the model loads back and predicts."""
    config = tiny_config(tmp_path, "fgm", "train.adversarial.method=fgm", "train.label_smoothing=0.1")
    result = train(config, log=quiet)
    assert 0 <= result.metrics["validation"]["accuracy"] <= 1
    run = load_run(result.run_dir)  # the compiled loss loads back
    assert run.spec.train.adversarial.method == "fgm" and run.spec.train.label_smoothing == 0.1
    assert np.isfinite(run.probabilities(["a fine film"])).all()
