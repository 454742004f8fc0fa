"""make_optimizer: Adam or AdamW, clipping, the schedule, and no weight decay on biases."""

import keras
import numpy as np
import pytest

from tfrnn.config import TrainConfig, load_config
from tfrnn.models import RNNClassifier
from tfrnn.training.optimizers import make_optimizer
from tfrnn.training.schedules import WarmupDecay


def _learning_rate_at(optimizer, step):
    optimizer.iterations.assign(step)
    return float(optimizer.learning_rate)


def test_adam_with_constant_rate_and_clipnorm():
    optimizer = make_optimizer(TrainConfig(optimizer="adam", learning_rate=3e-3, clipnorm=1.0), 10)
    assert type(optimizer) is keras.optimizers.Adam
    assert optimizer.clipnorm == 1.0
    assert not isinstance(optimizer._learning_rate, WarmupDecay)  # no schedule needed
    assert _learning_rate_at(optimizer, 0) == pytest.approx(3e-3)
    assert _learning_rate_at(optimizer, 25) == pytest.approx(3e-3)


def test_adamw_without_clipping():
    optimizer = make_optimizer(TrainConfig(optimizer="adamw", weight_decay=0.02, clipnorm=None), 10)
    assert type(optimizer) is keras.optimizers.AdamW
    assert optimizer.weight_decay == pytest.approx(0.02)
    assert optimizer.clipnorm is None


def test_schedule_spans_all_epochs():
    config = TrainConfig(epochs=3, learning_rate=0.01, warmup_ratio=0.1, decay="linear")
    optimizer = make_optimizer(config, steps_per_epoch=10)  # 30 steps, 3 of warmup
    schedule = optimizer._learning_rate
    assert isinstance(schedule, WarmupDecay)
    assert (schedule.total_steps, schedule.warmup_steps, schedule.decay) == (30, 3, "linear")
    rates = [_learning_rate_at(optimizer, step) for step in (0, 3, 30)]
    np.testing.assert_allclose(rates, [0.0, 0.01, 0.0], atol=1e-9)


def test_bert_kind_defaults_make_adamw_with_warmup_and_linear_decay():
    """The frozen TrainConfig of a BERT run spec (Devlin et al.'s recipe) is used as it is."""
    train = load_config(None, ["model.kind=bert"]).train
    optimizer = make_optimizer(train, steps_per_epoch=100)  # 3 epochs: 300 steps, 30 of warmup
    assert type(optimizer) is keras.optimizers.AdamW and optimizer.weight_decay == pytest.approx(0.01)
    schedule = optimizer._learning_rate
    assert (schedule.total_steps, schedule.warmup_steps, schedule.decay) == (300, 30, "linear")
    assert _learning_rate_at(optimizer, 30) == pytest.approx(2e-5)
    assert train == load_config(None, ["model.kind=bert"]).train  # nothing written into the config


def test_warmup_alone_makes_a_schedule():
    optimizer = make_optimizer(TrainConfig(epochs=2, learning_rate=0.01, warmup_ratio=0.25), 4)
    assert _learning_rate_at(optimizer, 1) == pytest.approx(0.005)
    assert _learning_rate_at(optimizer, 7) == pytest.approx(0.01)


def _one_step_with_zero_gradients(optimizer):
    """Applies one step of zero gradients to a small classifier; returns (path, before, after)."""
    model = RNNClassifier(20, 3, cell="lstm", embedding_dim=4, units=3, bidirectional=True)
    variables = model.trainable_variables
    before = [np.array(v) for v in variables]
    optimizer.apply_gradients([(keras.ops.zeros_like(v), v) for v in variables])
    return [(v.path, b, np.array(v)) for v, b in zip(variables, before)]


def test_adamw_decays_weights_but_not_biases():
    """With zero gradients Adam's step is exactly 0, so only the decoupled decay moves a weight:
    w <- w * (1 - learning_rate * weight_decay) = w * 0.95; biases are excluded and stay put."""
    config = TrainConfig(optimizer="adamw", learning_rate=0.1, weight_decay=0.5, clipnorm=1.0)
    results = _one_step_with_zero_gradients(make_optimizer(config, 1))
    biases = [r for r in results if "bias" in r[0].split("/")[-1]]
    weights = [r for r in results if r not in biases]
    assert len(biases) >= 3 and len(weights) >= 5  # LSTM x2 directions, the head; kernels, embeddings
    for path, before, after in biases:
        np.testing.assert_array_equal(after, before, err_msg=path)
    for path, before, after in weights:
        np.testing.assert_allclose(after, before * 0.95, rtol=1e-6, atol=1e-7, err_msg=path)
        assert not np.array_equal(after, before), path


def test_adam_has_no_weight_decay():
    results = _one_step_with_zero_gradients(make_optimizer(TrainConfig(optimizer="adam", learning_rate=0.1), 1))
    for path, before, after in results:
        np.testing.assert_array_equal(after, before, err_msg=path)
