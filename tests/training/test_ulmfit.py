"""ULMFiT's discriminative rates and gradual unfreezing (tfrnn.training.ulmfit), on TensorFlow and JAX.

Most tests use a linear model whose gradients are known in closed form: the loss is the mean of
p = x a + x b + x c + c_bias + sum_j embedding[ids_j], so d/da = d/db = d/dc = mean(x) over the
batch, d/dc_bias = 1 and d/dembedding[r] = (how often id r occurs) / batch, whatever the weights.
"""

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import ops

from tfrnn.models import RNNClassifier
from tfrnn.training.ulmfit import (
    GradualUnfreezing,
    UlmfitAdamW,
    layer_groups,
    ulmfit_optimizer,
    unfrozen_at,
    wrap_optimizer,
)

LINEAR_GROUPS = [["embedding"], ["a"], ["b"], []]  # the last takes "c" (the head)
X = np.linspace(-1.0, 2.0, 24, dtype="float32").reshape(8, 3)
IDS = np.array([[1, 2], [2, 3], [1, 1], [4, 2], [3, 3], [1, 4], [2, 2], [0, 1]], "int32")
Y = np.zeros((8, 1), "float32")


def _linear_model():
    x, ids = keras.Input((3,), name="x"), keras.Input((2,), dtype="int32", name="ids")
    dense = [keras.layers.Dense(1, use_bias=name == "c", name=name, bias_initializer="ones")(x) for name in "abc"]
    embedded = keras.layers.Embedding(5, 1, name="embedding")(ids)  # (batch, 2, 1)
    return keras.Model([x, ids], keras.layers.Add()([*dense, ops.sum(embedded, axis=1)]))


def _mean_output(y_true, y_pred):
    return ops.cast(y_pred[:, 0], "float32")  # (batch,): Keras averages it over the global batch


def _gradients(x=X, ids=IDS):
    """d mean(p) / d(variable), by path, for `_linear_model`."""
    kernel = x.mean(axis=0)[:, None]  # (3, 1)
    embedding = np.bincount(ids.ravel(), minlength=5).astype("float32")[:, None] / len(x)  # (5, 1)
    return {"embedding/embeddings": embedding, "a/kernel": kernel, "b/kernel": kernel, "c/kernel": kernel, "c/bias": 1}


def _compiled(optimizer_factory, factor=2.0, gradual=True, jit_compile=False):
    model = _linear_model()
    groups = layer_groups(model, LINEAR_GROUPS)
    optimizer = wrap_optimizer(optimizer_factory(), groups, factor=factor, gradual=gradual)
    model.compile(optimizer=optimizer, loss=_mean_output, jit_compile=jit_compile)
    return model, groups


def _weights(variables):
    return [keras.ops.convert_to_numpy(v).copy() for v in variables]


def _slots(optimizer, path):
    """The optimizer variables kept for the model variable `path` (momentum, velocity, ...)."""
    prefix = path.replace("/", "_") + "_"
    return [keras.ops.convert_to_numpy(v) for v in optimizer.variables if v.name.startswith(prefix)]


def test_layer_groups_bottom_to_top_the_last_takes_the_rest():
    model = RNNClassifier(20, 3, embedding_dim=4, units=3, num_layers=2, bidirectional=False, pooling="concat")
    groups = layer_groups(model, [["embedding"], ["lstm_0"], ["lstm_1"], []])
    lstm = ["kernel", "recurrent_kernel", "bias"]
    assert [[v.path for v in group] for group in groups] == [
        ["embedding/embeddings"],
        [f"lstm_0/lstm_cell/{name}" for name in lstm],
        [f"lstm_1/lstm_cell/{name}" for name in lstm],
        ["logits/kernel", "logits/bias"],
    ]
    named_head = layer_groups(model, [["embedding", "lstm_0", "lstm_1"], ["logits"]])
    assert [len(group) for group in named_head] == [7, 2]


@pytest.mark.parametrize(
    ("names", "message"),
    [
        ([], "no groups"),
        ([["embedding"], ["lstm_9"]], "no layer 'lstm_9'"),
        ([["embedding"], ["head_dropout"]], "layer 'head_dropout' has no trainable variables"),
        ([["embedding", "lstm_0"], ["lstm_0"], []], "lstm_0/lstm_cell/kernel is in group 0 and in group 1"),
        ([["embedding", "lstm_0", "logits"], []], r"group 1 \(\[\]\) has no trainable variables"),
    ],
)
def test_layer_groups_errors(names, message):
    model = RNNClassifier(20, 3, embedding_dim=4, units=3, num_layers=1, bidirectional=False, pooling="concat")
    with pytest.raises(ValueError, match=message):
        layer_groups(model, names)


def test_unfreezing_schedule():
    assert [unfrozen_at(epoch, 4) for epoch in range(6)] == [1, 2, 3, 4, 4, 4]
    assert [unfrozen_at(epoch, 4, gradual=False) for epoch in range(3)] == [4, 4, 4]


def test_wrapped_optimizer_keeps_class_config_and_weight_decay_exclusions():
    model = _linear_model()
    optimizer = keras.optimizers.AdamW(0.003, weight_decay=0.1, beta_1=0.8, clipnorm=1.0)
    optimizer.exclude_from_weight_decay(var_names=["bias"])
    wrapped = wrap_optimizer(optimizer, layer_groups(model, LINEAR_GROUPS), factor=3.0)
    assert type(wrapped) is UlmfitAdamW and isinstance(wrapped, keras.optimizers.AdamW)
    config = wrapped.get_config()
    assert config.pop("ulmfit") == {
        "groups": [["embedding/embeddings"], ["a/kernel"], ["b/kernel"], ["c/kernel", "c/bias"]],
        "factor": 3.0,
        "gradual": True,
    }
    assert config == optimizer.get_config()
    c = model.get_layer("c")
    assert [wrapped._use_weight_decay(v) for v in (c.kernel, c.bias)] == [True, False]
    assert int(wrapped.unfrozen_groups) == 1 and list(ops.convert_to_numpy(wrapped.group_steps)) == [0] * 4


def test_wrap_optimizer_errors():
    groups = layer_groups(_linear_model(), LINEAR_GROUPS)
    with pytest.raises(ValueError, match="pass a plain optimizer"):
        wrap_optimizer(keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam()), groups)
    with pytest.raises(ValueError, match="pass a plain optimizer"):
        wrap_optimizer(wrap_optimizer(keras.optimizers.Adam(), groups), groups)
    with pytest.raises(ValueError, match="every group needs"):
        wrap_optimizer(keras.optimizers.Adam(), [*groups, []])
    with pytest.raises(ValueError, match=r"in two groups: \['a/kernel'\]"):
        wrap_optimizer(keras.optimizers.Adam(), [*groups, groups[1]])
    with pytest.raises(ValueError, match="factor=0"):
        wrap_optimizer(keras.optimizers.Adam(), groups, factor=0)
    model = _linear_model()  # a variable outside the groups: found when the optimizer is built
    model.compile(optimizer=wrap_optimizer(keras.optimizers.SGD(), groups[1:]), loss=_mean_output)
    with pytest.raises(ValueError, match=r"in no group: \['embedding/embeddings'\]"):
        model.train_on_batch([X, IDS], Y)
    with pytest.raises(ValueError, match="not an optimizer from tfrnn.training.ulmfit"):
        ulmfit_optimizer(keras.optimizers.Adam())


@pytest.mark.parametrize("jit_compile", [False, True])
def test_sgd_moves_each_group_by_its_rate_times_the_gradient(jit_compile):
    """Group g of 4 at 0.1 2.6^-(3 - g); on TensorFlow the embedding's gradient is sparse."""
    factor = 2.6
    model, groups = _compiled(lambda: keras.optimizers.SGD(0.1), factor, gradual=False, jit_compile=jit_compile)
    before = _weights(model.trainable_variables)
    model.train_on_batch([X, IDS], Y)
    gradients = _gradients()
    depths = {v.path: 3 - g for g, group in enumerate(groups) for v in group}
    for variable, old in zip(model.trainable_variables, before):
        depth = depths[variable.path]
        expected = old - 0.1 * factor**-depth * np.asarray(gradients[variable.path], "float32")
        np.testing.assert_allclose(ops.convert_to_numpy(variable), expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(("kind", "jit_compile"), [("adam", False), ("adamw", True)])
def test_frozen_groups_stay_put_and_start_as_a_fresh_adam_once_unfrozen(kind, jit_compile):
    """Three steps with only the head training: the other groups and their moments do not move
    (bit for bit); then, all unfrozen, a group's first update is Adam's (AdamW's) first step at
    its rate, as if its optimizer started there (no stale moments, a bias correction from step 1)."""

    def make(rate=0.01):
        if kind == "adam":
            return keras.optimizers.Adam(rate, clipnorm=0.5)
        optimizer = keras.optimizers.AdamW(rate, weight_decay=0.3, clipnorm=0.5)
        optimizer.exclude_from_weight_decay(var_names=["bias"])
        return optimizer

    model, groups = _compiled(make, factor=2.0, jit_compile=jit_compile)
    optimizer = model.optimizer
    frozen = {v.path: w for v, w in zip(model.trainable_variables, _weights(model.trainable_variables))}
    for _ in range(3):
        model.train_on_batch([X, IDS], Y)
    for depth, group in zip((3, 2, 1, 0), groups):
        for variable in group:
            now = ops.convert_to_numpy(variable)
            if depth:
                np.testing.assert_array_equal(now, frozen[variable.path], err_msg=variable.path)
                assert not any(slot.any() for slot in _slots(optimizer, variable.path)), variable.path
            else:  # the head trained
                assert not np.array_equal(now, frozen[variable.path]), variable.path
    assert list(ops.convert_to_numpy(optimizer.group_steps)) == [0, 0, 0, 3] and int(optimizer.iterations) == 3

    optimizer.unfrozen_groups.assign(4)
    model.train_on_batch([X, IDS], Y)
    gradients = _gradients()
    for depth, group in zip((3, 2, 1), groups):
        for variable in group:
            old = frozen[variable.path]
            fresh = keras.Variable(old, name=variable.name)
            gradient = ops.convert_to_tensor(np.broadcast_to(gradients[variable.path], old.shape))
            make(0.01 * 2.0**-depth).apply_gradients([(gradient, fresh)])
            np.testing.assert_allclose(
                ops.convert_to_numpy(variable), ops.convert_to_numpy(fresh), rtol=1e-6, atol=1e-8, err_msg=variable.path
            )
    assert list(ops.convert_to_numpy(optimizer.group_steps)) == [1, 1, 1, 4]


class _EpochWeights(keras.callbacks.Callback):
    """Which groups changed in each epoch."""

    def __init__(self, groups):
        super().__init__()
        self.groups, self.changed = groups, []

    def on_epoch_begin(self, epoch, logs=None):
        self.before = [_weights(group) for group in self.groups]

    def on_epoch_end(self, epoch, logs=None):
        after = [_weights(group) for group in self.groups]
        changed = [[not np.array_equal(b, a) for b, a in zip(*pair)] for pair in zip(self.before, after)]
        assert all(all(c) or not any(c) for c in changed), changed  # a group trains whole
        self.changed.append([any(c) for c in changed])


def _count_traces(model):
    """How often the train step is traced (compiled) from now on."""
    traces = [0]
    step = model.train_step

    def counted(*args):
        traces[0] += 1
        return step(*args)

    model.train_step = counted
    return traces


def _fit_epochs(model, groups, inputs, labels, epochs):
    """Fits `epochs` epochs of 2 batches with GradualUnfreezing: (which groups changed in each
    epoch, the train step's traces at each epoch's end)."""
    traces = _count_traces(model)
    watched = _EpochWeights(groups)
    counted = []
    traced = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: counted.append(traces[0]))
    callbacks = [GradualUnfreezing(), watched, traced]
    model.fit(inputs, labels, batch_size=4, epochs=epochs, callbacks=callbacks, verbose=0)
    return watched.changed, counted


def test_gradual_unfreezing_trains_the_scheduled_groups_each_epoch():
    """An RNN classifier of 3 groups (embedding, lstm_0, head), 3 epochs: the head, then lstm_0
    too, then all, in the train step traced in the first epoch (tf.function; jax.jit)."""
    model = RNNClassifier(30, 3, embedding_dim=4, units=3, num_layers=1, bidirectional=False, pooling="concat")
    groups = layer_groups(model, [["embedding"], ["lstm_0"], []])
    optimizer = keras.optimizers.AdamW(0.01, weight_decay=0.01, clipnorm=1.0)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=wrap_optimizer(optimizer, groups), loss=loss)
    tokens = np.random.default_rng(0).integers(1, 30, size=(8, 6)).astype("int32")
    tokens[::2, 4:] = 0  # padding
    changed, traces = _fit_epochs(model, groups, tokens, np.arange(8) % 3, epochs=3)
    assert changed == [[False, False, True], [False, True, True], [True, True, True]]
    assert list(ops.convert_to_numpy(model.optimizer.group_steps)) == [2, 4, 6]
    assert traces[0] == traces[-1] > 0, traces  # no new trace when a group unfreezes


@pytest.mark.parametrize("gradual", [True, False])
def test_gradual_unfreezing_in_one_compiled_step(gradual):
    """Under XLA (TensorFlow) or jax.jit, the step compiled in the first epoch serves every
    unfreezing stage; without `gradual`, every group trains from the start."""
    model, groups = _compiled(lambda: keras.optimizers.Adam(0.01), gradual=gradual, jit_compile=True)
    changed, traces = _fit_epochs(model, groups, [X, IDS], Y, epochs=3)
    if gradual:
        assert changed == [[False, False, False, True], [False, False, True, True], [False, True, True, True]]
        assert list(ops.convert_to_numpy(model.optimizer.group_steps)) == [0, 2, 4, 6]
    else:
        assert changed == [[True] * 4] * 3
    assert traces[0] == traces[-1] > 0, traces


def test_mixed_precision_under_the_loss_scale_optimizer():
    keras.config.set_dtype_policy("mixed_float16")  # conftest restores float32
    model, groups = _compiled(lambda: keras.optimizers.Adam(0.01, clipnorm=1.0))
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    frozen = _weights([v for group in groups[:3] for v in group])
    epochs = _EpochWeights(groups)
    model.fit([X, IDS], Y, batch_size=4, epochs=2, callbacks=[GradualUnfreezing(), epochs], verbose=0)
    assert epochs.changed == [[False, False, False, True], [False, False, True, True]]
    for variable, old in zip([v for group in groups[:2] for v in group], frozen):
        np.testing.assert_array_equal(ops.convert_to_numpy(variable), old)
    assert int(ulmfit_optimizer(model.optimizer).unfrozen_groups) == 2


class _Interrupt(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 2:
            raise RuntimeError("interrupted")


class _Restored(keras.callbacks.Callback):
    """The optimizer's ULMFiT state once BackupAndRestore (before it in the list) has loaded it."""

    def on_train_begin(self, logs=None):
        optimizer = self.model.optimizer
        self.state = int(optimizer.unfrozen_groups), list(ops.convert_to_numpy(optimizer.group_steps))


def test_backup_and_restore_resumes_the_schedule_and_the_state(tmp_path):
    """A fit killed at the start of epoch 2 and resumed ends as one that ran its 4 epochs
    through: the switch and the group counts come back with the optimizer's state."""

    def fit(*callbacks):
        keras.utils.set_random_seed(1)
        model, _ = _compiled(lambda: keras.optimizers.Adam(0.01))
        backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
        model.fit(
            [X, IDS],
            Y,
            batch_size=4,
            epochs=4,
            callbacks=[GradualUnfreezing(), backup, *callbacks],
            shuffle=False,
            verbose=0,
        )
        return model

    uninterrupted = fit()
    with pytest.raises(RuntimeError, match="interrupted"):
        fit(_Interrupt())
    restored = _Restored()
    resumed = fit(restored)
    assert restored.state == (2, [0, 0, 2, 4])  # after epochs 0 and 1
    for a, b in zip(resumed.optimizer.variables, uninterrupted.optimizer.variables):
        np.testing.assert_allclose(ops.convert_to_numpy(a), ops.convert_to_numpy(b), rtol=1e-6, err_msg=a.path)
    for a, b in zip(resumed.trainable_variables, uninterrupted.trainable_variables):
        np.testing.assert_allclose(ops.convert_to_numpy(a), ops.convert_to_numpy(b), rtol=1e-6, err_msg=a.path)
    assert int(resumed.optimizer.unfrozen_groups) == 4


def test_model_file_keeps_the_optimizer_and_its_state(tmp_path):
    model, _ = _compiled(lambda: keras.optimizers.AdamW(0.01, weight_decay=0.1), factor=3.0, jit_compile=True)
    model.train_on_batch([X, IDS], Y)
    model.optimizer.unfrozen_groups.assign(3)
    model.train_on_batch([X, IDS], Y)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras", custom_objects={"_mean_output": _mean_output})
    assert type(loaded.optimizer) is UlmfitAdamW
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert int(loaded.optimizer.unfrozen_groups) == 3
    for a, b in zip(loaded.optimizer.variables, model.optimizer.variables):
        np.testing.assert_array_equal(ops.convert_to_numpy(a), ops.convert_to_numpy(b), err_msg=a.path)
    for m in (model, loaded):  # the next step is the same
        m.train_on_batch([X, IDS], Y)
    for a, b in zip(loaded.trainable_variables, model.trainable_variables):
        np.testing.assert_allclose(ops.convert_to_numpy(a), ops.convert_to_numpy(b), rtol=1e-6, err_msg=a.path)


MIRRORED = r"""
import json, sys
from tfrnn.distribute import make_strategy
strategy = make_strategy("mirrored", ["/cpu:0", "/cpu:1"])  # two logical CPUs, before TensorFlow starts
from tests.training.test_ulmfit import _fit_twice
json.dump({"replicas": strategy.num_replicas_in_sync, **_fit_twice(strategy)}, open(sys.argv[1], "w"))
"""


def _fit_twice(strategy=None):
    """Two epochs of AdamW with GradualUnfreezing, in `strategy`'s scope (None: the default)."""
    keras.utils.set_random_seed(0)
    with strategy.scope() if strategy else contextlib.nullcontext():
        model, groups = _compiled(lambda: keras.optimizers.AdamW(0.01, weight_decay=0.1, clipnorm=1.0))
    epochs = _EpochWeights(groups)
    model.fit([X, IDS], Y, batch_size=8, epochs=2, callbacks=[GradualUnfreezing(), epochs], shuffle=False, verbose=0)
    steps = ops.convert_to_numpy(model.optimizer.group_steps).tolist()
    return {"changed": epochs.changed, "steps": steps, "weights": [w.tolist() for w in model.get_weights()]}


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="tf.distribute")
def test_mirrored_on_two_cpus_matches_one_device(tmp_path):
    """Under MirroredStrategy (2 logical CPUs, in a process of its own) the groups, their counts
    and the weights are those of one device."""
    out = tmp_path / "out.json"
    result = subprocess.run(
        [sys.executable, "-c", MIRRORED, str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).parents[2],
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "KERAS_BACKEND": "tensorflow"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    mirrored, one = json.loads(out.read_text()), _fit_twice()
    assert mirrored["replicas"] == 2
    assert one["changed"] == mirrored["changed"] == [[False, False, False, True], [False, False, True, True]]
    assert one["steps"] == mirrored["steps"] == [0, 0, 1, 2]
    for a, b in zip(one["weights"], mirrored["weights"]):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
