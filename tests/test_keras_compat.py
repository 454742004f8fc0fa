"""tfrnn.distribute.keras_compat: the Keras version guard, and `model.fit` on two real local
workers under MultiWorkerMirroredStrategy (this file is also the workers' script:
`python THIS OUT_FILE PATCH`)."""

import json
import os
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
from packaging.version import Version

from tfrnn.distribute import keras_compat

WORKER_TIMEOUT_S = 120

# Outside the range the fix retires; the two-worker run below still tells whether that Keras works.
needs_broken_keras = pytest.mark.skipif(
    Version(keras.__version__) not in keras_compat.BROKEN_KERAS,
    reason="the fix is written for Keras 3.15 (BROKEN_KERAS) and is a no-op on this Keras; the two-worker test below still runs",
)


@pytest.fixture
def trainer(monkeypatch):
    """Keras' TF trainer module; whatever a test patches in it is undone afterwards."""
    from keras.src.backend.tensorflow import trainer

    build = trainer.TensorFlowTrainer._maybe_symbolic_build
    monkeypatch.setattr(trainer.TensorFlowTrainer, "_maybe_symbolic_build", build)
    monkeypatch.setattr(trainer, "reduce_per_replica", trainer.reduce_per_replica)
    return trainer


def _patchable(trainer):
    return trainer.TensorFlowTrainer._maybe_symbolic_build, trainer.reduce_per_replica


@pytest.mark.parametrize("version", ["3.14.0", "3.16.0", "4.0.0"])
def test_other_versions_are_left_alone(trainer, monkeypatch, version):
    monkeypatch.setattr(keras, "__version__", version)
    before = _patchable(trainer)
    assert keras_compat.patch_multi_worker_fit() is False
    assert _patchable(trainer) == before


@needs_broken_keras
def test_broken_version_is_patched_once(trainer, monkeypatch):
    monkeypatch.setattr(keras, "__version__", "3.15.1")
    originals = _patchable(trainer)
    assert keras_compat.patch_multi_worker_fit() is True
    patched = _patchable(trainer)
    assert all(new is not old for new, old in zip(patched, originals))
    assert [new.__wrapped__ for new in patched] == list(originals)
    assert keras_compat.patch_multi_worker_fit() is True
    assert _patchable(trainer) == patched


@needs_broken_keras
@pytest.mark.parametrize("mirrored", [False, True], ids=["default", "mirrored"])
def test_single_worker_fit_is_unchanged(trainer, monkeypatch, mirrored):
    """Without multi-worker the replacements delegate: same losses and weights, bit for bit."""
    import tensorflow as tf

    monkeypatch.setattr(keras, "__version__", "3.15.1")
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"]) if mirrored else tf.distribute.get_strategy()
    unpatched = _fit(strategy, patch=False)
    patched = _fit(strategy, patch=True)
    np.testing.assert_array_equal(patched["losses"], unpatched["losses"])
    for new, old in zip(patched["weights"], unpatched["weights"]):
        np.testing.assert_array_equal(new, old)


def test_two_workers_train_in_step(tmp_path):
    for result in _run_workers(tmp_path, patch=True):
        assert result.returncode == 0, result.stdout[-3000:]
    chief, other = (np.load(tmp_path / f"worker{i}.npz") for i in range(2))
    assert np.isfinite(chief["losses"]).all() and len(chief["losses"]) == 1
    np.testing.assert_array_equal(chief["losses"], other["losses"])
    for i in range(3):
        np.testing.assert_array_equal(chief[f"weights{i}"], other[f"weights{i}"])
        assert not np.array_equal(chief[f"weights{i}"], chief[f"initial{i}"]), "fit changed nothing"


@needs_broken_keras
def test_two_workers_fail_without_the_patch(tmp_path):
    """Proves the two-worker test can fail: unpatched, both workers stop on keras#20585."""
    for result in _run_workers(tmp_path, patch=False):
        assert result.returncode != 0
        assert "Attempt to convert a value (PerReplica" in result.stdout, result.stdout[-3000:]


def _run_workers(tmp_path, patch):
    """Runs this file as two MultiWorkerMirroredStrategy workers; kills both on a timeout.

    Args:
        tmp_path: pathlib.Path. Where the workers write their results and logs.
        patch: bool. Whether the workers call `patch_multi_worker_fit`.

    Returns:
        list of subprocess.CompletedProcess, chief first; `stdout` holds the worker's log.
    """
    from tests.fixtures import free_ports  # here: this file also runs as the workers' script

    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    processes = []
    try:
        for index in range(2):
            env = dict(
                os.environ,
                TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
                KERAS_BACKEND="tensorflow",
                TF_CPP_MIN_LOG_LEVEL="2",
                CUDA_VISIBLE_DEVICES="",
            )
            command = [sys.executable, __file__, str(tmp_path / f"worker{index}.npz"), str(int(patch))]
            with open(tmp_path / f"worker{index}.log", "w") as log:
                processes.append(subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT))
        deadline = time.monotonic() + WORKER_TIMEOUT_S
        for p in processes:
            p.wait(max(deadline - time.monotonic(), 0))
    except subprocess.TimeoutExpired:
        pytest.fail(f"the workers ran past {WORKER_TIMEOUT_S} s")
    finally:
        for p in processes:
            p.kill()
            p.wait()
    return [
        subprocess.CompletedProcess(p.args, p.returncode, (tmp_path / f"worker{i}.log").read_text())
        for i, p in enumerate(processes)
    ]


def _fit(strategy, patch):
    """Fits a tiny text classifier (fixed seed) for one epoch of 4 steps under `strategy`.

    Args:
        strategy: tf.distribute.Strategy. The strategy to build and train under.
        patch: bool. Whether to call `patch_multi_worker_fit` first.

    Returns:
        dict. "losses" (list of float, one per epoch), "initial" and "weights" (lists of
            np.ndarray, before and after fitting).
    """
    import tensorflow as tf

    if patch:
        keras_compat.patch_multi_worker_fit()
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x, y = rng.integers(1, 50, (32, 6)).astype("int32"), rng.integers(0, 2, 32).astype("int32")
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(8).with_options(options)
    with strategy.scope():
        model = keras.Sequential(
            [
                keras.Input((6,), dtype="int32"),
                keras.layers.Embedding(50, 4),
                keras.layers.GlobalAveragePooling1D(),
                keras.layers.Dense(2, activation="softmax"),
            ]
        )
        model.compile(optimizer=keras.optimizers.SGD(0.5), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    initial = model.get_weights()
    history = model.fit(dataset, epochs=1, shuffle=False, verbose=0)
    return {"losses": history.history["loss"], "initial": initial, "weights": model.get_weights()}


def _worker_main(out_file, patch):
    """One MultiWorkerMirroredStrategy worker (TF_CONFIG says which): fits, saves losses and weights."""
    import tensorflow as tf

    result = _fit(tf.distribute.MultiWorkerMirroredStrategy(), patch)
    arrays = {f"{key}{i}": w for key in ("initial", "weights") for i, w in enumerate(result[key])}
    np.savez(out_file, losses=np.array(result["losses"]), **arrays)


if __name__ == "__main__":
    _worker_main(sys.argv[1], patch=sys.argv[2] == "1")
