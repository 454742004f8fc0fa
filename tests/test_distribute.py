"""Strategies for real on this CPU: every `tfrnn.choices.STRATEGIES` name built or refused,
mirrored over two logical CPUs against one device, two `tfrnn train --strategy multi-worker`
processes on 127.0.0.1, a worker killed mid-run, and `--strategy tpu` without a TPU."""

import json
import os
import re
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from tests.fixtures import TINY, free_ports
from tfrnn import choices
from tfrnn.errors import ConfigError

WORKER_TIMEOUT_S = 300
# Mirrored over 2 logical CPUs vs one device, same global batch: the replicas' gradients are
# averaged in another order than one device sums them, so weights agree to float32 rounding.
MIRRORED_ATOL = 1e-5


def _start_workers(tmp_path, *overrides):
    """Two `tfrnn train --strategy multi-worker` processes; their logs go to tmp_path/logN.txt."""
    cluster = [f"127.0.0.1:{port}" for port in free_ports(2)]
    workers = []
    for index in range(2):
        tf_config = {"cluster": {"worker": cluster}, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "TF_CONFIG": json.dumps(tf_config), "TF_CPP_MIN_LOG_LEVEL": "2"}
        command = [
            "tfrnn",
            "train",
            "--strategy",
            "multi-worker",
            "--output-dir",
            str(tmp_path / "runs"),
            "--name",
            "run",
            *TINY,
            "data.limit=200",
            "train.tensorboard=false",
            "train.verbose=2",
            *overrides,
        ]
        log = open(tmp_path / f"log{index}.txt", "w")
        workers.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env))
    return workers


def _wait(workers, deadline):
    try:
        for worker in workers:
            worker.wait(timeout=max(1, deadline - time.time()))
    finally:
        for worker in workers:
            worker.kill()


def _log(tmp_path, index):
    return (tmp_path / f"log{index}.txt").read_text()


def test_two_workers_finish_with_identical_weights(tmp_path):
    workers = _start_workers(tmp_path)
    _wait(workers, time.time() + WORKER_TIMEOUT_S)
    logs = [_log(tmp_path, i) for i in range(2)]
    assert [w.returncode for w in workers] == [0, 0], logs[0][-2000:] + logs[1][-2000:]
    digests = [re.search(r"final weights sha256 (\w+)", log).group(1) for log in logs]
    assert digests[0] == digests[1]
    assert "task worker:0 (chief)" in logs[0] and "the chief keeps the run" in logs[1]
    assert (tmp_path / "runs" / "run" / "metrics.json").is_file()  # the chief's outputs
    assert "tfrnn-worker-" in logs[1] and not list((tmp_path / "runs").glob("*/backup"))
    temp = re.search(r"run directory: (\S+)", logs[1]).group(1)
    assert not os.path.exists(temp)  # the other worker cleaned up


def test_killed_worker_stops_the_other_with_a_clear_error(tmp_path):
    workers = _start_workers(tmp_path, "train.epochs=200", "train.early_stopping_patience=0")
    deadline = time.time() + WORKER_TIMEOUT_S
    while "Epoch 3/" not in _log(tmp_path, 1):
        assert time.time() < deadline and workers[1].poll() is None, _log(tmp_path, 1)[-2000:]
        time.sleep(0.5)
    workers[1].kill()
    killed = time.time()
    _wait(workers[:1], killed + 200)
    log = _log(tmp_path, 0)
    assert workers[0].returncode == 2, log[-3000:]
    assert "Error: multi-worker training stopped: a worker is gone or not answering" in log
    assert "Traceback" not in log
    assert time.time() - killed < 200


def test_tpu_without_a_tpu_fails_fast(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("TPU_NAME", "COLAB_TPU_ADDR")}
    started = time.time()
    result = subprocess.run(
        ["tfrnn", "train", "--strategy", "tpu", "--output-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: train.strategy=tpu: no TPU here (set TPU_NAME, or run on a Colab TPU runtime or a TPU VM)"
    )
    assert time.time() - started < 60 and not any(tmp_path.iterdir())


def test_multi_worker_without_tf_config(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    result = subprocess.run(
        ["tfrnn", "train", "--strategy", "multi-worker", "--output-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert (
        result.returncode == 2 and "train.strategy=multi-worker: TF_CONFIG must describe the cluster" in result.stderr
    )


MIRRORED_VS_ONE_DEVICE = r"""
import json, sys
import numpy as np
import tensorflow as tf
from tfrnn.distribute import make_strategy
make_strategy("mirrored", ["/cpu:0", "/cpu:1"])  # two logical CPUs, before TensorFlow starts
import keras
from tfrnn.config import DataConfig
from tfrnn.data import Examples, WordPreprocessor, make_distributed_dataset
from tfrnn.models import RNNClassifier

rng = np.random.default_rng(0)
words = [f"w{i}" for i in range(40)]
texts = [" ".join(rng.choice(words, size=n)) for n in rng.integers(3, 20, size=64)]
examples = Examples(texts, (rng.random(64) > 0.5).astype("int32"), ["a", "b"], "made up")
config = DataConfig(batch_size=16, bucket=False, max_len=20)
preprocessor = WordPreprocessor.adapt(texts, vocab_size=100, max_len=config.max_len)
weights = {}
for name in ("one-device", "mirrored"):
    strategy = make_strategy(name, ["/cpu:0"] if name == "one-device" else ["/cpu:0", "/cpu:1"])
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = RNNClassifier(preprocessor.vocabulary_size, 2, units=8, embedding_dim=8, dropout=0.0)
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        model.compile(optimizer=keras.optimizers.SGD(0.5), loss=loss)
    dataset = make_distributed_dataset(examples, preprocessor, config, strategy, training=False, repeat=True)
    model.fit(dataset, epochs=1, steps_per_epoch=4, verbose=0)
    weights[name] = [w.tolist() for w in model.get_weights()]
    print(name, strategy.num_replicas_in_sync, file=sys.stderr)
json.dump(weights, open(sys.argv[1], "w"))
"""


def test_mirrored_on_two_cpus_matches_one_device(tmp_path):
    """4 SGD steps of global batch 16: one device, or 8 per replica on 2 logical CPUs."""
    out = tmp_path / "weights.json"
    result = subprocess.run(
        [sys.executable, "-c", MIRRORED_VS_ONE_DEVICE, str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "mirrored 2" in result.stderr
    weights = json.loads(out.read_text())
    for one, mirrored in zip(weights["one-device"], weights["mirrored"]):
        np.testing.assert_allclose(mirrored, one, atol=MIRRORED_ATOL, rtol=0)


@pytest.mark.parametrize("devices", [["/cpu:x"], ["/cpu:0:1"], ["/gpu:7"]])
def test_malformed_or_missing_devices_are_config_errors(devices):
    from tfrnn.distribute import make_strategy

    with pytest.raises(ConfigError, match="train.devices: .* does not exist here"):
        make_strategy("mirrored", devices)


# What each strategy name gives on a machine without TF_CONFIG or a TPU: the strategy's class,
# or the start of the ConfigError's message.
WITHOUT_CLUSTER_OR_TPU = {
    "auto": "Strategy",
    "one-device": "OneDeviceStrategy",
    "mirrored": "MirroredStrategy",
    "multi-worker": "train.strategy=multi-worker: TF_CONFIG must describe the cluster",
    "tpu": "train.strategy=tpu: no TPU here",
}


@pytest.fixture
def keras_trainer(monkeypatch):
    """Keras' TF trainer module; the patch that mirrored strategies apply to it is undone afterwards."""
    from keras.src.backend.tensorflow import trainer

    monkeypatch.setattr(
        trainer.TensorFlowTrainer, "_maybe_symbolic_build", trainer.TensorFlowTrainer._maybe_symbolic_build
    )
    monkeypatch.setattr(trainer, "reduce_per_replica", trainer.reduce_per_replica)
    return trainer


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="tf.distribute strategies drive the TensorFlow backend"
)
@pytest.mark.parametrize("name", list(choices.STRATEGIES))
def test_every_strategy_name_is_handled(name, monkeypatch, keras_trainer):
    import tensorflow as tf

    from tfrnn.distribute import BUILDERS, make_strategy, tpu_attached

    for variable in ("TF_CONFIG", "TPU_NAME", "COLAB_TPU_ADDR"):
        monkeypatch.delenv(variable, raising=False)
    if tpu_attached():
        pytest.skip("this machine has a TPU")
    assert set(BUILDERS) == set(choices.STRATEGIES)
    expected = WITHOUT_CLUSTER_OR_TPU[name]
    if expected.startswith("train.strategy="):
        with pytest.raises(ConfigError, match=re.escape(expected)):
            make_strategy(name)
    else:
        assert isinstance(make_strategy(name), getattr(tf.distribute, expected))


def test_unknown_strategy_is_a_config_error():
    from tfrnn.distribute import make_strategy

    with pytest.raises(
        ConfigError, match=r"train.strategy='nope': expected one of auto, one-device, mirrored, multi-worker, tpu$"
    ):
        make_strategy("nope")
