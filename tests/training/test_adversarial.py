"""Adversarial training (FGM, PGD, VAT) and label smoothing: the perturbation, the objective, runs."""

import json
import os
import subprocess

import numpy as np
import pytest
import tensorflow as tf

from tests.fixtures import quiet, tiny_config
from tests.training.test_adversarial_backends import X, Y, tiny_model
from tfrnn.config import AdversarialConfig
from tfrnn.errors import ConfigError
from tfrnn.training import adversarial
from tfrnn.training.adversarial import AdversarialStep, _kl, _zeros
from tfrnn.training.losses import SparseCrossentropy
from tfrnn.training.train import train


def _loss_at(model, step, shift):
    return float(model.loss(Y, step._logits(tf.constant(X), tf.constant(shift, tf.float32))))


def _embedding_gradient(model, step):
    x = tf.constant(X)
    zero = _zeros(x, step.layer)
    with tf.GradientTape() as tape:
        tape.watch(zero)
        loss = model.loss(Y, step._logits(x, zero))
    return tape.gradient(loss, zero).numpy()  # (batch, time, dim)


def test_fgm_perturbation_has_the_norm_and_the_gradients_direction():
    model = tiny_model()
    step = AdversarialStep(model, AdversarialConfig(method="fgm", epsilon=0.5))
    g = _embedding_gradient(model, step)
    # The gradient against central finite differences along random directions.
    rng = np.random.default_rng(0)
    for _ in range(3):
        u = rng.normal(size=g.shape).astype(np.float32)
        h = 1e-2
        estimate = (_loss_at(model, step, h * u) - _loss_at(model, step, -h * u)) / (2 * h)
        assert estimate == pytest.approx(float(np.sum(g * u)), rel=2e-2, abs=1e-4)
    assert np.all(g[X == 0] == 0)  # padding gets no gradient, so no perturbation
    _, r = step._tf_adversarial_loss(tf.constant(X), Y, None, tf.constant(g))
    r = r.numpy()
    np.testing.assert_allclose(np.linalg.norm(r, axis=(1, 2)), 0.5, rtol=1e-5)
    cosine = np.sum(r * g, axis=(1, 2)) / (np.linalg.norm(r, axis=(1, 2)) * np.linalg.norm(g, axis=(1, 2)))
    np.testing.assert_allclose(cosine, 1.0, rtol=1e-5)


def test_the_step_perturbs_along_the_clean_loss_gradient(monkeypatch):
    model = tiny_model()
    step = AdversarialStep(model, AdversarialConfig(method="fgm", epsilon=0.5, weight=1.0))
    expected = _embedding_gradient(model, step)
    seen = []
    original = step._tf_adversarial_loss
    monkeypatch.setattr(step, "_tf_adversarial_loss", lambda *args: seen.append(args[-1]) or original(*args))
    step((tf.constant(X), tf.constant(Y)))
    direction = seen[0].numpy()
    cosine = np.sum(direction * expected) / (np.linalg.norm(direction) * np.linalg.norm(expected))
    assert cosine == pytest.approx(1.0, abs=1e-5)


def test_pgd_stays_in_the_epsilon_ball_and_ascends():
    model = tiny_model()
    step = AdversarialStep(model, AdversarialConfig(method="pgd", epsilon=0.3, steps=4))
    g = _embedding_gradient(model, step)
    loss, r = step._tf_adversarial_loss(tf.constant(X), Y, None, tf.constant(g))
    assert np.all(np.linalg.norm(r.numpy(), axis=(1, 2)) <= 0.3 + 1e-5)
    assert float(loss) > _loss_at(model, step, np.zeros_like(g))


def test_vat_kl_is_zero_without_perturbation_and_positive_with_one():
    logits = tf.constant([[1.0, -2.0], [0.5, 0.3]])
    assert float(_kl(logits, logits)) == pytest.approx(0.0, abs=1e-7)
    model = tiny_model()
    x = tf.constant(X)
    clean = model(x)
    assert float(AdversarialStep(model, AdversarialConfig("vat", epsilon=0.0))._tf_vat_loss(x, clean)) < 1e-7
    assert float(AdversarialStep(model, AdversarialConfig("vat", epsilon=2.0))._tf_vat_loss(x, clean)) > 1e-6


def test_unlabelled_batches_add_the_kl_term_only(monkeypatch):
    model = tiny_model()
    step = AdversarialStep(model, AdversarialConfig("vat", epsilon=1.0), unlabelled=True)
    unlabelled = tf.constant([[5, 6, 0], [7, 8, 9], [1, 2, 3]], tf.int32)  # 3 rows: the labelled batch has 4
    batches = []
    compute_loss = model.compute_loss
    monkeypatch.setattr(
        model, "compute_loss", lambda x, *a, **k: batches.append(x.shape[0]) or compute_loss(x, *a, **k)
    )
    kls = []
    vat_loss = step._tf_vat_loss
    monkeypatch.setattr(step, "_tf_vat_loss", lambda x, *a: kls.append(x.shape[0]) or vat_loss(x, *a))
    before = model.get_weights()
    logs = step(((tf.constant(X), tf.constant(Y)), unlabelled))
    assert batches == [4] and kls == [4, 3]  # the supervised loss saw the labelled rows alone
    assert np.isfinite(float(logs["loss"])) and any(
        not np.array_equal(a, b) for a, b in zip(model.get_weights(), before, strict=True)
    )


def test_label_smoothing_spreads_the_target():
    logits = np.array([[2.0, -1.0, 0.5]], np.float32)
    p = np.exp(logits) / np.exp(logits).sum()
    target = np.array([0.9 + 0.1 / 3, 0.1 / 3, 0.1 / 3])
    loss = SparseCrossentropy(label_smoothing=0.1)(np.array([0]), logits)
    assert float(loss) == pytest.approx(float(-(target * np.log(p)).sum()), rel=1e-5)
    assert float(SparseCrossentropy()(np.array([0]), logits)) == pytest.approx(float(-np.log(p[0, 0])), rel=1e-5)


def test_adversarial_needs_tensorflow_or_jax(monkeypatch):
    monkeypatch.setattr(adversarial.keras.backend, "backend", lambda: "torch")
    with pytest.raises(ConfigError, match="train.adversarial.method=fgm: needs KERAS_BACKEND=tensorflow or jax"):
        adversarial.check_adversarial(AdversarialConfig("fgm"))


def test_vat_with_unlabelled_text_runs_end_to_end(tmp_path):
    unlabelled = tmp_path / "unsup.csv"
    unlabelled.write_text("text\n" + "".join(f'"an unlabelled review, number {i}"\n' for i in range(50)))
    config = tiny_config(
        tmp_path, "vat", "train.adversarial.method=vat", f"train.adversarial.unlabelled={unlabelled}", "train.epochs=1"
    )
    result = train(config, log=quiet)
    assert result.metrics["epochs_run"] == 1


def test_a_missing_unlabelled_file_is_refused_before_anything_is_written(tmp_path):
    config = tiny_config(
        tmp_path, "vat", "train.adversarial.method=vat", f"train.adversarial.unlabelled={tmp_path / 'none.csv'}"
    )
    with pytest.raises(Exception, match="none.csv"):
        train(config, log=quiet)
    assert not (tmp_path / "vat").exists()


def test_fgm_under_mirrored_strategy_and_mixed_precision(tmp_path):
    """`tfrnn train` with FGM over two logical CPUs with mixed bfloat16."""
    command = ["tfrnn", "train", "--strategy", "mirrored", "--devices", "/cpu:0,/cpu:1", "--output-dir", tmp_path]
    command += ["--name", "fgm", "train.adversarial.method=fgm", "train.precision=mixed_bfloat16", "train.epochs=1"]
    command += ["model.rnn.units=8", "model.rnn.embedding_dim=8", "data.limit=300", "data.max_len=40"]
    command += ["train.verbose=0", "train.tensorboard=false"]
    result = subprocess.run(
        list(map(str, command)),
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "strategy: MirroredStrategy, 2 replica(s)" in result.stdout
    assert "adversarial training: fgm" in result.stdout
    metrics = json.loads((tmp_path / "fgm" / "metrics.json").read_text())
    assert metrics["epochs_run"] == 1 and 0 <= metrics["validation"]["accuracy"] <= 1
