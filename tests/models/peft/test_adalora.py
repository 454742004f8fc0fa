"""model.peft=adalora: the SVD-form update (unchanged at init, only P, E, Q train, merged away,
exact gradients), its orthogonality regulariser in the training loss, the optimizer's smoothed
importance and the rank budget it enforces step by step."""

import keras
import numpy as np
import pytest
from keras import ops

from tests.layers.gradients import assert_gradients_match_finite_differences, value_and_grads
from tests.models.peft.common import (
    INPUTS,
    LABELS,
    assert_merge_keeps_outputs,
    assert_starts_unchanged,
    assert_trains_only_its_weights,
    classifier,
    peft_model,
)
from tfrnn.config import PeftConfig
from tfrnn.errors import ConfigError
from tfrnn.models.peft import adalora, apply_peft

SETTINGS = dict(init_rank=4, rank=2)
X = np.random.default_rng(0).normal(size=(3, 5)).astype("float32")
Y = np.random.default_rng(1).normal(size=(3, 4)).astype("float32")


def _tiny_model(orthogonality=0.1, alpha=None, seed=0):
    """5 -> EinsumDense "query" (2, 3) -> Dense "value" 4, AdaLoRA at init_rank 3 on both, with
    random nonzero P, E, Q (as after some training)."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((5,))
    hidden = keras.layers.EinsumDense("ab,bcd->acd", (2, 3), bias_axes="cd", name="query")(inputs)  # (batch, 2, 3)
    outputs = keras.layers.Dense(4, name="value")(keras.layers.Flatten()(hidden))  # (batch, 4)
    model = keras.Model(inputs, outputs)
    adalora.apply(model, PeftConfig(method="adalora", init_rank=3, rank=1, alpha=alpha, orthogonality=orthogonality))
    rng = np.random.default_rng(seed)
    for layer in adalora.adalora_layers(model):
        for name in adalora.FACTORS:
            variable = getattr(layer, name)
            variable.assign(rng.normal(scale=0.5, size=variable.shape).astype("float32"))
    return model


def _factors(layer):
    return [np.asarray(getattr(layer, name)) for name in adalora.FACTORS]


def _orthogonality(p, q):
    eye = np.eye(p.shape[1])
    return np.sum((p.T @ p - eye) ** 2) + np.sum((q @ q.T - eye) ** 2)


def test_adalora_starts_unchanged():
    assert_starts_unchanged("adalora", **SETTINGS)


def test_adalora_trains_only_p_e_q():
    assert_trains_only_its_weights("adalora", lambda path: path.split("/")[-1] in adalora.FACTORS, **SETTINGS)
    model = peft_model("adalora", **SETTINGS)
    shapes = {w.path.split("/")[-1]: tuple(w.shape) for w in model.trainable_weights if "adalora" in w.path}
    assert shapes == {"adalora_p": (16, 4), "adalora_e": (4,), "adalora_q": (4, 16)}  # query (16, heads 2, 8)
    assert len(model.trainable_weights) == 2 * 2 * 3 + 2  # 2 blocks x (query, value) x (P, E, Q) + the head


def test_adalora_merges_into_the_kernels():
    assert_merge_keeps_outputs("adalora", **SETTINGS)
    model = peft_model("adalora", **SETTINGS)
    adalora.merge(model.backbone)
    assert not [w.path for w in model.weights if "adalora" in w.path]
    query = model.backbone.transformer_layers[0]._self_attention_layer._query_dense
    assert type(query) is keras.layers.EinsumDense


def test_adalora_kernel_is_the_base_plus_the_scaled_svd_update():
    model = _tiny_model(alpha=6.0)  # scale alpha / init_rank = 2
    for layer in adalora.adalora_layers(model):
        p, e, q = _factors(layer)
        expected = np.asarray(layer._kernel) + 2.0 * (p * e @ q).reshape(layer._kernel.shape)
        np.testing.assert_allclose(np.asarray(layer.kernel), expected, atol=1e-6, rtol=0)


def test_adalora_gradients_match_finite_differences():
    layer = adalora.adalora_layers(_tiny_model())[0]  # the EinsumDense; E nonzero
    assert [v.path.split("/")[-1] for v in layer.trainable_variables] == list(adalora.FACTORS)
    assert_gradients_match_finite_differences(layer, lambda y: ops.sum(ops.sin(y)), X, np.random.default_rng(2))


def test_orthogonality_regulariser_is_added_while_training_only():
    model = _tiny_model(orthogonality=0.3)
    model(X, training=True)
    expected = [0.3 * _orthogonality(p, q) for p, _, q in map(_factors, adalora.adalora_layers(model))]
    np.testing.assert_allclose([float(loss) for loss in model.losses], expected, rtol=1e-5)
    model(X, training=False)
    assert not model.losses


def test_orthogonality_regulariser_is_part_of_the_training_loss():
    model = _tiny_model(orthogonality=0.3)
    prediction = np.asarray(model(X))
    regulariser = sum(0.3 * _orthogonality(p, q) for p, _, q in map(_factors, adalora.adalora_layers(model)))
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
    loss = model.train_on_batch(X, Y)
    assert regulariser > 1 and loss == pytest.approx(np.mean((prediction - Y) ** 2) + regulariser, rel=1e-5)


def test_gradient_descent_on_the_regulariser_orthogonalises_p_and_q():
    model = _tiny_model(orthogonality=1.0)
    layers = adalora.adalora_layers(model)

    def distances():
        eye = np.eye(3)
        return [(np.linalg.norm(p.T @ p - eye), np.linalg.norm(q @ q.T - eye)) for p, _, q in map(_factors, layers)]

    before = distances()
    model.compile(optimizer=keras.optimizers.SGD(0.02), loss=lambda y, prediction: 0.0 * ops.sum(prediction))
    for _ in range(5):
        model.train_on_batch(X, Y)
    after = distances()
    assert all(a < 0.9 * b for new, old in zip(after, before) for a, b in zip(new, old)), (before, after)


def test_wrapped_optimizer_keeps_class_config_and_weight_decay_exclusions():
    model = _tiny_model()
    optimizer = keras.optimizers.AdamW(0.003, weight_decay=0.1, beta_1=0.8, clipnorm=1.0)
    optimizer.exclude_from_weight_decay(var_names=["bias", "adalora_e"])
    wrapped = adalora.wrap_optimizer(optimizer, model, PeftConfig(method="adalora"), 100)
    assert isinstance(wrapped, keras.optimizers.AdamW) and isinstance(wrapped, adalora.AdaLoraOptimizer)
    assert wrapped.get_config() == optimizer.get_config()
    query = adalora.adalora_layers(model)[0]
    assert [wrapped._use_weight_decay(v) for v in (query.bias, query.adalora_p, query.adalora_e)] == [
        False,
        True,
        False,
    ]
    with pytest.raises(ValueError, match="no AdaLoRA layer"):
        adalora.wrap_optimizer(optimizer, classifier(), PeftConfig(method="adalora"), 100)


def test_importance_after_one_step_is_the_smoothed_sensitivity_and_uncertainty():
    model = _tiny_model(orthogonality=0.0)
    weights = [np.asarray(v) for v in model.trainable_variables]  # P, E, Q of query, then of value
    _, grads = value_and_grads(model, lambda y: ops.mean(ops.square(y - Y)), X)
    peft = PeftConfig(method="adalora", init_rank=3, rank=1, beta=0.7)
    model.compile(optimizer=adalora.wrap_optimizer(keras.optimizers.SGD(0.1), model, peft, 100), loss="mse")
    model.train_on_batch(X, Y)  # step 0: before pruning starts (step 10)
    smoothed = {name: [np.asarray(v) for v in model.optimizer.variables if v.path.endswith(name)]
                for name in ("_sensitivity", "_uncertainty")}  # fmt: skip
    assert len(smoothed["_sensitivity"]) == len(weights) == 6
    for w, g, sensitivity, uncertainty in zip(weights, grads, smoothed["_sensitivity"], smoothed["_uncertainty"]):
        importance = np.abs(w * g)
        np.testing.assert_allclose(sensitivity, 0.3 * importance, rtol=1e-5, atol=1e-8)
        np.testing.assert_allclose(uncertainty, 0.3 * np.abs(importance - 0.3 * importance), rtol=1e-5, atol=1e-8)
    assert all(np.all(e != 0) for _, e, _ in map(_factors, adalora.adalora_layers(model)))  # nothing masked yet


def test_budget_follows_the_cubic_schedule():
    peft = PeftConfig(method="adalora", init_rank=4, rank=2, interval=2)  # warmup 0.1, final 0.2
    assert adalora.phases(peft, 30) == (3, 24)
    # 16 = 4 x 4 before step 3; 8 + floor(8 (1 - (t - 3) / 21)^3) until step 24; 8 from there.
    assert [adalora.budget(t, peft, 4, 30) for t in range(30)] == [16] * 4 + [14, 13, 13, 12, 11, 10, 10, 9, 9, 9] + [
        8
    ] * 16
    budgets, reallocates = adalora.schedule(peft, 4, 30)
    assert list(np.flatnonzero(reallocates)) == [3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 24]
    assert budgets[30] == 8
    no_final_phase = PeftConfig(method="adalora", init_rank=4, rank=2, warmup_fraction=0.0, final_fraction=0.0)
    assert adalora.phases(no_final_phase, 10) == (0, 9) and adalora.budget(9, no_final_phase, 4, 10) == 8


def test_training_prunes_the_total_rank_to_the_budget():
    peft = PeftConfig(method="adalora", interval=2, **SETTINGS)
    model = classifier()
    apply_peft(model, peft)
    model.compile(
        optimizer=adalora.wrap_optimizer(keras.optimizers.Adam(0.01), model, peft, 30),
        loss=keras.losses.SparseCategoricalCrossentropy(True),
    )
    totals = []
    for _ in range(30):
        model.train_on_batch(INPUTS, LABELS)
        totals.append(adalora.final_ranks(model)["total"])
    _, reallocates = adalora.schedule(peft, 4, 30)
    assert totals[:3] == [16] * 3  # warmup: every E trained away from 0, none masked
    assert [totals[t] for t in np.flatnonzero(reallocates)] == [16, 13, 12, 10, 9, 9, 8, 8, 8, 8, 8, 8]
    assert totals[24:] == [8] * 6  # the final allocation stays
    ranks = adalora.final_ranks(model)
    paths = [
        f"transformer_layer_{block}/self_attention_layer/{name}" for block in (0, 1) for name in ("query", "value")
    ]
    assert list(ranks) == [*paths, "total"] and sum(ranks[path] for path in paths) == ranks["total"] == 8


def test_allocation_compiles_with_xla():
    model = _tiny_model()
    peft = PeftConfig(method="adalora", init_rank=3, rank=1, interval=1)  # budget 6 -> 2 over steps 1..8
    optimizer = adalora.wrap_optimizer(keras.optimizers.Adam(0.01), model, peft, 10)
    model.compile(optimizer=optimizer, loss="mse", jit_compile=True)  # XLA on TensorFlow, jax.jit on JAX
    totals = []
    for _ in range(10):
        model.train_on_batch(X, Y)
        totals.append(adalora.final_ranks(model)["total"])
    assert totals == [6, 6, 4, 3, 2, 2, 2, 2, 2, 2] == [adalora.budget(t, peft, 2, 10) for t in range(10)]


def test_impossible_initial_rank_is_a_config_error():
    with pytest.raises(ConfigError, match=r"model.peft.init_rank=17: larger than layer 'query' allows"):
        apply_peft(classifier(), PeftConfig(method="adalora", init_rank=17))
