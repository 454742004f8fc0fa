"""KERAS_BACKEND=jax, as on a Colab TPU: compiled steps in few shapes, data parallelism over 8
simulated devices equal to one device, two `jax.distributed` processes, model sharding, and
exports from a JAX shell equal to the TensorFlow backend's. Each JAX run is a fresh process
(this test session runs TensorFlow's backend)."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import yaml

from tests.fixtures import SERVING_TEXTS, TINY_BERT, free_ports, tiny_overrides
from tfrnn.data.pipeline import bucket_boundaries
from tfrnn.export import export_run

ROOT = Path(__file__).resolve().parent.parent
# Data parallel vs one device, same global batch: the gradients are summed in another order, so
# the weights agree to float32 rounding, grown over 9 Adam steps at learning rate 0.05 (measured:
# at most 1.1e-5 apart, 3e-4 relative, one weight in 4,368).
PARALLEL_TOLERANCE = dict(atol=1e-5, rtol=1e-3)
SMALL = ("data.limit=160", "data.batch_size=16", "train.epochs=1")


def jax_env(devices=1):
    """The environment of a JAX process on `devices` simulated CPU devices."""
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)}
    if devices > 1:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    return env


def tfrnn_jax(*args, devices=1, env=None):
    """Runs the installed `tfrnn` under JAX; returns the CompletedProcess (checked)."""
    result = subprocess.run(
        ["tfrnn", *args], capture_output=True, text=True, env=env or jax_env(devices), timeout=600, check=False
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


def train_jax(output_dir, name, *overrides, devices=1):
    """A tiny run trained under JAX; returns its directory."""
    tfrnn_jax("train", "--output-dir", str(output_dir), "--name", name, *tiny_overrides(*overrides), devices=devices)
    return Path(output_dir) / name


@pytest.fixture(scope="module")
def jax_runs(tmp_path_factory):
    """{"rnn": run dir, "bert": run dir}: tiny runs trained under JAX on one device."""
    root = tmp_path_factory.mktemp("jax-runs")
    return {
        "rnn": train_jax(root, "rnn", "data.max_len=16"),
        "bert": train_jax(root, "bert", *TINY_BERT, "data.limit=300", "train.epochs=1"),
    }


def test_auto_settings_resolve_for_jax(jax_runs):
    spec = yaml.safe_load((jax_runs["rnn"] / "config.yaml").read_text())
    assert spec["train"]["jit_compile"] == "true" and spec["train"]["precision"] == "float32"


def test_compiled_step_shapes_are_at_most_the_buckets(jax_runs):
    """Every batch comes padded to a bucket boundary and filled to the batch size, so the
    compiled steps see at most one shape per bucket (data.max_len=16: 8 buckets, several used)."""
    metrics = json.loads((jax_runs["rnn"] / "metrics.json").read_text())
    buckets = len(bucket_boundaries(16))
    assert 2 <= metrics["step_traces"]["train"] <= buckets
    assert 1 <= metrics["step_traces"]["test"] <= buckets


def test_filler_rows_count_nowhere(jax_runs):
    """The last batch is filled with weight-0 copies: the validation accuracy fit logged for the
    kept epoch equals the final evaluation's over exactly the validation examples."""
    metrics = json.loads((jax_runs["rnn"] / "metrics.json").read_text())
    with open(jax_runs["rnn"] / "history.csv") as f:
        rows = [line.split(",") for line in f.read().splitlines()]
    column = rows[0].index("val_loss")
    best = min(rows[1:], key=lambda row: float(row[column]))
    assert float(best[rows[0].index("val_accuracy")]) == pytest.approx(metrics["validation"]["accuracy"], abs=1e-6)
    assert metrics["validation"]["count"] == 60 and metrics["validation"]["count"] % 16 != 0


@pytest.mark.parametrize("kind", ["rnn", "bert"])
def test_export_from_a_jax_shell_equals_the_tensorflow_export(jax_runs, kind, tmp_path):
    """`KERAS_BACKEND=jax tfrnn export` (TensorFlow in a subprocess) gives the SavedModel the
    TensorFlow backend gives, and both answer as the JAX model does (`tfrnn predict`)."""
    run = jax_runs[kind]
    tfrnn_jax("export", str(run), "--to", str(tmp_path / "jax" / kind))
    export_run(run, tmp_path / "tf" / kind)
    texts = [t for t in SERVING_TEXTS if t]
    outputs = {}
    for shell in ("jax", "tf"):
        signature = tf.saved_model.load(str(tmp_path / shell / kind / "1")).signatures["serving_default"]
        outputs[shell] = signature(text=tf.constant(texts))["probabilities"].numpy()
    np.testing.assert_allclose(outputs["jax"], outputs["tf"], atol=1e-5, rtol=0)
    predicted = tfrnn_jax("predict", str(run), "--json", *texts).stdout
    jax_model = np.array([list(json.loads(line)["probabilities"].values()) for line in predicted.splitlines()])
    np.testing.assert_allclose(outputs["tf"], jax_model, atol=1e-5, rtol=0)


PARALLEL_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import keras
    from tests.fixtures import quiet, tiny_config
    from tfrnn.training.train import train

    output_dir, overrides = sys.argv[1], json.loads(sys.argv[2])
    weights, lines = {}, {}
    for name, settings in {"one": ["train.strategy=one-device"], "parallel": json.loads(sys.argv[3])}.items():
        lines[name] = []
        result = train(tiny_config(output_dir, name, *overrides, *settings), log=lines[name].append)
        model = keras.saving.load_model(result.run_dir / "model.keras")
        weights[name] = [w.tolist() for w in model.get_weights()]
    print(json.dumps({"weights": weights, "lines": lines}))
    """
)


@pytest.mark.parametrize(
    "kind, parallel",
    [
        ("rnn", ["train.strategy=mirrored"]),
        ("bert", ["train.strategy=mirrored"]),
        ("bert", ["train.strategy=mirrored", "train.model_parallel=2"]),
    ],
    ids=["rnn-data-parallel", "bert-data-parallel", "bert-4x2-sharded"],
)
def test_eight_devices_give_one_devices_weights(kind, parallel, tmp_path):
    """Keras' DataParallel over 8 simulated CPU devices (and BERT's weights sharded over a 4x2
    mesh) trains to one device's weights for the same global batches."""
    overrides = [*SMALL, *(TINY_BERT if kind == "bert" else ()), "train.epochs=1"]
    result = subprocess.run(
        [sys.executable, "-c", PARALLEL_SCRIPT, str(tmp_path), json.dumps(overrides), json.dumps(parallel)],
        capture_output=True,
        text=True,
        env=jax_env(devices=8),
        cwd=ROOT,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    described = [line for line in answer["lines"]["parallel"] if line.startswith("strategy:")]
    expected = "ModelParallel over 8 JAX devices (4 replicas x 2" if len(parallel) > 1 else "DataParallel over 8"
    assert expected in described[0]
    for one, parallel_weights in zip(answer["weights"]["one"], answer["weights"]["parallel"]):
        np.testing.assert_allclose(np.array(parallel_weights), np.array(one), **PARALLEL_TOLERANCE)


def test_two_jax_processes_train_the_same_weights_and_one_writes(tmp_path):
    """`--strategy multi-worker` under JAX: two processes on 127.0.0.1 (TF_CONFIG, as for
    TensorFlow) join one jax.distributed cluster over gloo, end with identical weights, and only
    process 0 writes the run directory."""
    port = free_ports(1)[0]
    workers = []
    for index in range(2):
        tf_config = {
            "cluster": {"worker": [f"127.0.0.1:{port}", "127.0.0.1:1"]},
            "task": {"type": "worker", "index": index},
        }
        env = {**jax_env(), "TF_CONFIG": json.dumps(tf_config)}
        command = ["tfrnn", "train", "--strategy", "multi-worker", "--output-dir", str(tmp_path / f"out{index}")]
        command += ["--name", "run", *tiny_overrides(*SMALL)]
        workers.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [worker.communicate(timeout=600) for worker in workers]
    for worker, (stdout, stderr) in zip(workers, outputs):
        assert worker.returncode == 0, stdout[-2000:] + stderr[-3000:]
    digests = [line for stdout, _ in outputs for line in stdout.splitlines() if "final weights sha256" in line]
    assert len(digests) == 2 and digests[0] == digests[1]
    assert "process 0 of 2" in outputs[0][0] and "process 1 of 2" in outputs[1][0]
    assert (tmp_path / "out0" / "run" / "metrics.json").is_file()
    assert not (tmp_path / "out1").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--strategy", "tpu"], "Error: train.strategy=tpu: JAX finds no TPU here (its devices: cpu:0, cpu:1)"),
        (["train.model_parallel=2"], "Error: train.model_parallel=2: only BERT models shard their weights"),
        (["model.kind=bert", "train.model_parallel=3"], "Error: train.model_parallel=3: must divide the 2 devices"),
    ],
)
def test_impossible_jax_layouts_are_one_line_errors(args, message, tmp_path):
    result = subprocess.run(
        ["tfrnn", "train", "--output-dir", str(tmp_path), *args],
        capture_output=True,
        text=True,
        env=jax_env(devices=2),
        timeout=300,
        check=False,
    )
    assert result.returncode == 2 and message in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and not any(tmp_path.iterdir())
