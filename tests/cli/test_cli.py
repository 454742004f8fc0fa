"""The `tfrnn` commands through click's CliRunner: help, train, predict, evaluate, export, and
every bad input as ONE line `Error: ...` with exit status 2 and no traceback."""

import importlib
import json
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
from click.testing import CliRunner
from tfrnn_cli.main import cli

from tests.fixtures import TINY, copy_run, serve_in_fresh_process
from tfrnn.config import load_config
from tfrnn.runs import load_run

train_module = importlib.import_module("tfrnn.training.train")
CALLBACKS = train_module.run_callbacks


def run(*args, input=None):
    return CliRunner().invoke(cli, [str(a) for a in args], input=input)


def assert_one_line_error(result, *parts):
    """Exit status 2, and the whole output is one line `Error: ...` containing each part."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception  # no other exception escaped
    assert "Traceback" not in result.output
    lines = result.output.strip("\n").split("\n")
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for part in parts:
        assert str(part) in lines[0], (part, lines[0])
    return lines[0]


# ---------------------------------------------------------------------------------------- help


def test_group_help_lists_the_commands():
    for flag in ("--help", "-h"):
        result = run(flag)
        assert result.exit_code == 0
        for command in ("train", "evaluate", "predict", "export", "serve"):
            assert command in result.output
        assert "tfrnn train --name quickstart" in result.output


@pytest.mark.parametrize("command", ["train", "evaluate", "predict", "export", "serve"])
def test_command_help_shows_examples(command):
    result = run(command, "--help")
    assert result.exit_code == 0
    assert "Examples:" in result.output
    examples = result.output.split("Examples:")[1]
    assert f"tfrnn {command} " in examples


def test_version():
    result = run("--version")
    assert result.exit_code == 0 and "0.2.0" in result.output, result.output


def test_train_help_names_the_new_keys():
    result = run("train", "--help")
    assert result.exit_code == 0
    assert "model.rnn.cell" in result.output and "model.bert.checkpoint" in result.output


def test_help_does_not_import_tensorflow():
    """`tfrnn train --help` needs only tfrnn's cheap modules (the choices): no TensorFlow, no Keras."""
    heavy = ("tensorflow", "keras", "tf_keras", "keras_hub", "tensorflow_text")
    code = (
        "import sys; from click.testing import CliRunner; from tfrnn_cli.main import cli; "
        "r = CliRunner().invoke(cli, ['train', '--help']); assert r.exit_code == 0, r.output; "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_no_command_shows_help():
    result = run()
    assert "Usage:" in result.output and "train" in result.output


# --------------------------------------------------------------------------------------- train


def test_train_with_config_flags_and_overrides(tmp_path):
    """Precedence: defaults < --config < flags < KEY=VALUE."""
    config_file = tmp_path / "base.yaml"
    config_file.write_text("model:\n  rnn:\n    cell: lstm\n    units: 32\ntrain:\n  epochs: 5\n  seed: 7\n")
    tiny = [item for item in TINY if not item.startswith("train.epochs=")]
    result = run(
        "train",
        "--config",
        config_file,
        "--cell",
        "gru",
        "--epochs",
        1,
        "--batch-size",
        16,
        "--output-dir",
        tmp_path,
        "--name",
        "cli",
        *tiny,
        "train.tensorboard=false",
        "model.rnn.bidirectional=false",
    )
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / "cli"
    assert f"run directory: {run_dir}" in result.output
    assert result.output.strip().split("\n")[-1] == f"metrics: {run_dir / 'metrics.json'}"
    config = load_config(run_dir / "config.yaml")
    assert config.model.rnn.cell == "gru"  # flag beats the file
    assert config.model.rnn.units == 8  # override beats the file
    assert config.model.rnn.bidirectional is False
    assert config.train.epochs == 1  # flag beats the file...
    assert config.train.seed == 7  # ...which beats the defaults
    assert config.data.batch_size == 16
    assert config.data.labels == ("neg", "pos") and config.run_name == "cli" and config.tfrnn_version == "0.2.0"
    assert json.loads((run_dir / "metrics.json").read_text())["epochs_run"] == 1

    again = run("train", "--output-dir", tmp_path, "--name", "cli")
    assert_one_line_error(again, str(run_dir), "already exists", "--resume")


class _InterruptAtOnce(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        raise KeyboardInterrupt


def test_train_interrupted_then_resumed(tmp_path, monkeypatch):
    monkeypatch.setattr(train_module, "run_callbacks", lambda *a, **k: [*CALLBACKS(*a, **k), _InterruptAtOnce()])
    args = ["--output-dir", tmp_path, "--name", "stopped", *TINY, "train.epochs=1", "train.tensorboard=false"]
    result = run("train", *args)
    assert result.exit_code == 2 and "Traceback" not in result.output
    run_dir = tmp_path / "stopped"
    last = result.output.strip().split("\n")[-1]
    assert last == f"Error: interrupted; continue with: tfrnn train --resume {run_dir}"
    assert not (run_dir / "metrics.json").exists()

    monkeypatch.setattr(train_module, "run_callbacks", CALLBACKS)
    resumed = run("train", "--resume", run_dir)  # the command the message gives
    assert resumed.exit_code == 0, resumed.output
    assert (run_dir / "metrics.json").is_file()
    finished = run("train", "--resume", run_dir)
    assert_one_line_error(finished, str(run_dir), "finished already")


def test_data_alone_picks_its_source(tmp_path):
    """`--data FILE` without --source trains on the file (it trained on the embedded sample)."""
    lines = [f"A {'lovely warm' if i % 2 else 'dull awful'} film {i},{'good' if i % 2 else 'bad'}" for i in range(60)]
    (tmp_path / "reviews.csv").write_text("text,label\n" + "\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "reviews_test.csv").write_text("text,label\nA lovely film,good\nAn awful film,bad\n")
    tiny = [item for item in TINY if not item.startswith("data.limit=")]
    args = ["--data", tmp_path / "reviews.csv", "--test-data", tmp_path / "reviews_test.csv"]
    result = run("train", *args, "--output-dir", tmp_path, "--name", "own", *tiny, "train.epochs=1")
    assert result.exit_code == 0, result.output
    config = load_config(tmp_path / "own" / "config.yaml")
    assert (config.data.source, config.data.labels) == ("file", ("bad", "good"))  # the file's labels
    assert f"({tmp_path / 'reviews.csv'})" in result.output  # the data line names it
    metrics = json.loads((tmp_path / "own" / "metrics.json").read_text())
    assert metrics["test"]["count"] == 2


@pytest.fixture
def trained_with(monkeypatch, tmp_path):
    """`trained_with(*args)`: the RunConfig that `tfrnn train ARGS` hands to training (which does
    not run)."""
    from tfrnn.training.train import TrainResult

    configs = []

    def fake_train(config, resume=False, log=print):
        configs.append(config)
        return TrainResult(tmp_path / "nothing", {})

    monkeypatch.setattr(train_module, "train", fake_train)

    def trained_with(*args):
        result = run("train", *args)
        assert result.exit_code == 0, result.output
        return configs[-1].data

    return trained_with


def test_data_flags_name_the_source(trained_with, tmp_path):
    imdb = tmp_path / "aclImdb"
    for label in ("pos", "neg"):
        (imdb / "train" / label).mkdir(parents=True)
    csv = tmp_path / "reviews.csv"
    csv.write_text("text,label\n")
    yaml_file = tmp_path / "imdb.yaml"
    yaml_file.write_text(f"data:\n  source: aclimdb\n  path: {imdb}\n")
    assert trained_with().source == "embedded"
    assert (trained_with("--data", imdb).source, trained_with("--data", imdb).path) == ("aclimdb", str(imdb))
    assert trained_with("--data", csv).source == "file"
    assert trained_with("--source", "file", "--data", csv).source == "file"
    assert trained_with("--source", "aclimdb", "--data", imdb).source == "aclimdb"
    assert trained_with("--data", csv, "--test-data", csv).source == "file"
    assert trained_with("--test-data", csv).source == "file"  # data.path then must come from a config
    assert trained_with("-c", yaml_file).source == "aclimdb"
    assert trained_with("-c", yaml_file, "--data", csv).source == "file"  # the flag beats the file


# ----------------------------------------------------------------------- predict and evaluate


def test_predict_texts(tiny_run, loaded_tiny_run):
    texts = ["A warm, funny film.", "Dull and far too long."]
    result = run("predict", tiny_run.run_dir, *texts)
    assert result.exit_code == 0, result.output
    lines = result.output.strip("\n").split("\n")
    assert len(lines) == 2
    for line, expected in zip(lines, loaded_tiny_run.predict(texts)):
        label, probability, text = line.split("\t")
        assert (label, text) == (expected["label"], expected["text"])
        assert float(probability) == pytest.approx(expected["probabilities"][label], abs=5e-4)


def test_bert_run_predict_evaluate_export(tiny_bert_run, tmp_path):
    result = run("predict", tiny_bert_run.run_dir, "--json", "Great film.", "好看的电影 😀")
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["text"] for line in result.output.strip().split("\n")] == ["Great film.", "好看的电影 😀"]
    run_dir = copy_run(tiny_bert_run.run_dir, tmp_path / "runs")  # evaluate writes into the run
    result = run("evaluate", run_dir)
    assert result.exit_code == 0 and "accuracy" in result.output, result.output
    assert f"accuracy {tiny_bert_run.metrics['test']['accuracy']:.4f}" in result.output
    assert f"written to {run_dir / 'evaluations' / 'embedded.json'}" in result.output
    result = run("export", tiny_bert_run.run_dir, "--to", tmp_path / "bert")
    assert result.exit_code == 0, result.output
    assert (
        "TensorFlow Text's ops (CaseFoldUTF8," in result.output
        and (tmp_path / "bert" / "1" / "saved_model.pb").is_file()
    )


def test_predict_file_as_json(tiny_run, loaded_tiny_run, tmp_path):
    texts = ["Great film<br />really.", "", "好看的电影 😀", "Très émouvant"]
    path = tmp_path / "texts.txt"
    path.write_bytes("\r\n".join(texts).encode("utf-8") + b"\r\n")  # Windows line ends too
    result = run("predict", tiny_run.run_dir, "first text", "--file", path, "--json")
    assert result.exit_code == 0, result.output
    lines = result.output.strip("\n").split("\n")
    assert "好看的电影 😀" in result.output  # not escaped
    predictions = [json.loads(line) for line in lines]
    expected = loaded_tiny_run.predict(["first text", *texts])
    assert [p["text"] for p in predictions] == ["first text", *texts]
    assert [p["label"] for p in predictions] == [e["label"] for e in expected]
    for p, e in zip(predictions, expected):
        np.testing.assert_allclose(list(p["probabilities"].values()), list(e["probabilities"].values()), atol=1e-6)


def test_predict_from_stdin(tiny_run):
    result = run("predict", tiny_run.run_dir, "--file", "-", "--json", input="one\ntwo\n")
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["text"] for line in result.output.strip().split("\n")] == ["one", "two"]


def test_evaluate_default_test_split(tiny_run, tmp_path):
    run_dir = copy_run(tiny_run.run_dir, tmp_path)
    result = run("evaluate", run_dir)
    assert result.exit_code == 0, result.output
    accuracy = tiny_run.metrics["test"]["accuracy"]
    assert f"accuracy {accuracy:.4f}" in result.output
    assert "precision" in result.output and "embedded movie reviews" in result.output
    assert result.output.strip().split("\n")[-1] == f"written to {run_dir / 'evaluations' / 'embedded.json'}"
    again = run("evaluate", run_dir)  # never overwrites the first
    assert again.exit_code == 0, again.output
    assert again.output.strip().split("\n")[-1] == f"written to {run_dir / 'evaluations' / 'embedded-2.json'}"
    assert sorted(p.name for p in (run_dir / "evaluations").iterdir()) == ["embedded-2.json", "embedded.json"]


def test_evaluate_csv(tiny_run, tmp_path):
    run_dir = copy_run(tiny_run.run_dir, tmp_path)
    path = tmp_path / "extra.csv"
    path.write_text("text,label\nA lovely film.,pos\nAwful.,neg\nSuperb cast.,pos\n", encoding="utf-8")
    result = run("evaluate", run_dir, "--data", path)
    assert result.exit_code == 0, result.output
    written = run_dir / "evaluations" / "extra.json"
    assert result.output.strip().split("\n")[-1] == f"written to {written}"
    assert json.loads(written.read_text())["count"] == 3
    assert sorted(p.name for p in (run_dir / "evaluations").iterdir()) == ["extra.json"]


def test_evaluate_aclimdb_folder(tiny_run, tmp_path):
    run_dir = copy_run(tiny_run.run_dir, tmp_path)
    for label, texts in {"pos": ["A lovely film.", "Superb cast."], "neg": ["Awful."]}.items():
        (tmp_path / "aclImdb" / "test" / label).mkdir(parents=True)
        for i, text in enumerate(texts):
            (tmp_path / "aclImdb" / "test" / label / f"{i}_5.txt").write_text(text, encoding="utf-8")
    result = run("evaluate", run_dir, "--data", tmp_path / "aclImdb")
    assert result.exit_code == 0, result.output
    assert f"aclImdb folder {tmp_path / 'aclImdb'} (test)" in result.output
    written = run_dir / "evaluations" / "aclimdb.json"
    assert json.loads(written.read_text())["count"] == 3


# -------------------------------------------------------------------------------------- export


def test_export_default_folder_versions_and_clash(tiny_run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = run("export", tiny_run.run_dir)
    assert first.exit_code == 0, first.output
    model_root = tmp_path / "saved_models" / "tiny"
    assert "exported saved_models/tiny/1" in first.output
    assert (model_root / "1" / "saved_model.pb").is_file()
    second = run("export", tiny_run.run_dir, "--to", model_root)
    assert second.exit_code == 0 and f"exported {model_root / '2'}" in second.output
    clash = run("export", tiny_run.run_dir, "--to", model_root, "--version", 2)
    assert_one_line_error(clash, "version 2 exists already")
    assert_one_line_error(run("export", tiny_run.run_dir, "--version", 0), "--version")
    assert sorted(p.name for p in model_root.iterdir()) == ["1", "2"]


# ---------------------------------------------------------------------------------- bad inputs


@pytest.fixture
def bad(tmp_path, tiny_run):
    """Paths for the bad-input cases: `run` (a copy of the tiny run), bad files, and `out` for new runs."""
    files = {
        "reviews.csv": "review,sentiment\nnice,pos\n".encode(),
        "latin1.csv": "text,label\ngood,pos\ncaf\xe9 ok,neg\n".encode("latin-1"),
        "odd.csv": b"text,label\ngood,pos\nmeh,mixed\n",
        "latin1.txt": "fine\ncaf\xe9\n".encode("latin-1"),
        "broken.yaml": b"model:\n  kind: rnn\n    x: y\n",
        "typo.yaml": b"model:\n  rnn:\n    unitz: 8\n",
        "other_kind.yaml": b"model:\n  kind: bert\n  rnn:\n    cell: gru\n",
        "flat.yaml": b"train:\n  epochs: 2\nmodel:\n  cell: gru\n",
        "a_file": b"not a folder",
        "roberta/config.json": b'{"model_type": "roberta"}',
        "short/config.json": b'{"model_type": "bert", "max_position_embeddings": 16}',
        "short/vocab.txt": b"[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n",
        "imdb/train/pos/0_9.txt": b"Great film.",
        "imdb/train/neg/0_1.txt": b"Awful film.",
        "batching.config": b"max_batch_size { value: 8 }\nbatch_timout_micros { value: 5 }\n",
    }
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(content)
    return {"tmp": tmp_path, "run": copy_run(tiny_run.run_dir, tmp_path / "copy"), "out": tmp_path / "runs"}


NEW_RUN = "train --output-dir {out} --name x"
# Command lines ({tmp}: a folder of bad files, {run}: the tiny run) and what the one line must name.
BAD_INPUTS = {
    "missing data file": (f"{NEW_RUN} --source file --data {{tmp}}/missing.csv", ["missing.csv", "not found"]),
    "missing column": (f"{NEW_RUN} --source file --data {{tmp}}/reviews.csv", ["reviews.csv:1", "'text'"]),
    "non-UTF-8 data file": (f"{NEW_RUN} --source file --data {{tmp}}/latin1.csv", ["latin1.csv:3:4", "UTF-8"]),
    "--data missing, no --source": (f"{NEW_RUN} --data {{tmp}}/missing.csv", ["--data", "missing.csv: not found"]),
    "--data of an unknown format": (
        f"{NEW_RUN} --data {{tmp}}/latin1.txt",
        ["--data", "latin1.txt: a file with the extension '.txt'", "expected a CSV, TSV or JSONL file"],
    ),
    "--data a folder that is no aclImdb folder": (
        f"{NEW_RUN} --data {{tmp}}/short",
        ["--data", "short: a folder without train/pos and train/neg", "or an aclImdb folder"],
    ),
    "--source contradicting --data": (
        f"{NEW_RUN} --source aclimdb --data {{tmp}}/reviews.csv",
        ["--source aclimdb contradicts --data", "reviews.csv: a file, read by --source file"],
    ),
    "--source embedded with --data": (
        f"{NEW_RUN} --source embedded --data {{tmp}}/imdb",
        ["--source embedded contradicts --data", "imdb: an aclImdb folder, read by --source aclimdb"],
    ),
    "--source imdb with --test-data": (
        f"{NEW_RUN} --source imdb --test-data {{tmp}}/reviews.csv",
        ["--source imdb contradicts --test-data", "read by --source file"],
    ),
    "--test-data a folder": (f"{NEW_RUN} --test-data {{tmp}}/imdb", ["--test-data", "imdb: a folder; expected"]),
    "--test-data with an aclImdb folder": (
        f"{NEW_RUN} --data {{tmp}}/imdb --test-data {{tmp}}/reviews.csv",
        ["--test-data", "reviews.csv", "has its own test split"],
    ),
    "unknown override key": (f"{NEW_RUN} model.rnn.unitz=8", ["model.rnn.unitz=8", "'unitz'"]),
    "override of the wrong type": (f"{NEW_RUN} model.rnn.units=many", ["model.rnn.units=many"]),
    "override without a value": (f"{NEW_RUN} epochs", ["'epochs'", "KEY=VALUE"]),
    "bad choice in an override": (f"{NEW_RUN} model.rnn.pooling=sum", ["model.rnn.pooling='sum'", "last, mean, max"]),
    "old flat key": (
        f"{NEW_RUN} model.cell=gru",
        ["override 'model.cell=gru'", "model.cell: it is model.rnn.cell now"],
    ),
    "old flat data key": (f"{NEW_RUN} data.tokenizer=char", ["data.tokenizer: it is model.rnn.tokenizer now"]),
    "RNN key with --model bert": (
        f"{NEW_RUN} --model bert model.rnn.cell=gru",
        ["model.rnn.cell: a setting of model.kind=rnn, not of model.kind=bert (its settings are model.bert.*)"],
    ),
    "--cell with --model bert": (
        f"{NEW_RUN} --model bert --cell gru",
        ["model.rnn.cell: a setting of model.kind=rnn, not of model.kind=bert"],
    ),
    "--checkpoint without --model bert": (
        f"{NEW_RUN} --checkpoint ./bert",
        ["model.bert.checkpoint: a setting of model.kind=bert, not of model.kind=rnn"],
    ),
    "BERT scratch setting with a checkpoint": (
        f"{NEW_RUN} --model bert --checkpoint ./bert model.bert.layers=4",
        ["model.bert.layers: only for a BERT trained from scratch"],
    ),
    "run name outside the output dir": (
        "train --output-dir {out} --name ../x",
        ["run_name='../x'", "expected one folder name"],
    ),
    "run name with a slash": ("train --output-dir {out} --name a/b", ["run_name='a/b'"]),
    "key of another kind in YAML": (
        f"{NEW_RUN} --config {{tmp}}/other_kind.yaml",
        ["other_kind.yaml:4: model.rnn.cell: a setting of model.kind=rnn, not of model.kind=bert"],
    ),
    "old flat key in YAML": (
        f"{NEW_RUN} --config {{tmp}}/flat.yaml",
        ["flat.yaml:4: model.cell: it is model.rnn.cell now"],
    ),
    "model override to evaluate": ("evaluate {run} model.rnn.units=3", ["model.rnn.units=3", "data.* settings only"]),
    "bad choice flag": (f"{NEW_RUN} --cell transformer", ["'--cell'", "transformer"]),
    "out of range flag": (f"{NEW_RUN} --epochs 0", ["'--epochs'"]),
    "unknown flag": (f"{NEW_RUN} --epoch 3", ["--epoch"]),
    "missing config file": (f"{NEW_RUN} --config {{tmp}}/nope.yaml", ["nope.yaml", "not found"]),
    "bad YAML": (f"{NEW_RUN} --config {{tmp}}/broken.yaml", ["broken.yaml:3:6"]),
    "unknown key in YAML": (f"{NEW_RUN} --config {{tmp}}/typo.yaml", ["typo.yaml:3", "model.rnn.unitz"]),
    "output dir is a file": ("train --output-dir {tmp}/a_file --name x data.limit=100", ["a_file"]),
    "resume a missing run": ("train --resume {tmp}/gone", ["gone"]),
    "unknown label in evaluate data": ("evaluate {run} --data {tmp}/odd.csv", ["odd.csv:3", "'mixed'"]),
    "missing column in evaluate data": ("evaluate {run} --data {tmp}/reviews.csv", ["reviews.csv:1"]),
    "evaluate data file missing": ("evaluate {run} --data {tmp}/nope.csv", ["nope.csv"]),
    "evaluate data of an unknown format": ("evaluate {run} --data {tmp}/latin1.txt", ["--data", "'.txt'"]),
    "evaluate data a folder without a test split": (
        "evaluate {run} --data {tmp}/imdb",
        ["--data", "imdb: a folder without test/pos and test/neg"],
    ),
    "evaluate run dir missing": ("evaluate {tmp}/norun", ["norun", "run directory not found"]),
    "predict run dir missing": ("predict {tmp}/norun hello", ["norun", "run directory not found"]),
    "export run dir missing": ("export {tmp}/norun --to {tmp}/m", ["norun"]),
    "predict with no text": ("predict {run}", ["TEXT", "--file"]),
    "predict file missing": ("predict {run} --file {tmp}/missing.txt", ["'--file'", "missing.txt"]),
    "predict file not UTF-8": ("predict {run} --file {tmp}/latin1.txt", ["latin1.txt:2:4", "UTF-8"]),
    "export to a file": ("export {run} --to {tmp}/a_file", ["a_file"]),
    "predict without a run dir": ("predict", ["RUN_DIR"]),
    "unknown command": ("trian", ["trian"]),
    "missing BERT checkpoint": (
        f"{NEW_RUN} --model bert --checkpoint {{tmp}}/nockpt data.limit=100",
        ["model.bert.checkpoint=", "nockpt", "no such folder"],
    ),
    "BERT checkpoint that is no BERT": (
        f"{NEW_RUN} --model bert --checkpoint {{tmp}}/roberta data.limit=100",
        ["model_type 'roberta'", "only BERT"],
    ),
    "BERT longer than its checkpoint": (
        f"{NEW_RUN} --model bert --checkpoint {{tmp}}/short data.limit=100",
        ["data.max_len=128", "16 tokens"],
    ),
    "wordpiece with an RNN": (
        f"{NEW_RUN} model.rnn.tokenizer=wordpiece",
        ["model.rnn.tokenizer='wordpiece'", "expected one of word, char"],
    ),
    "serve a missing export root": ("serve {tmp}/nothing", ["'EXPORT_ROOT'", "nothing"]),
    "serve on a bad port": ("serve {tmp} --port 70000", ["'--port'", "70000"]),
    "serve with a misspelt batching parameter": (
        "serve {tmp} --enable_batching --batching_parameters_file {tmp}/batching.config",
        ["batching.config:2", "'batch_timout_micros"],
    ),
    "unknown adversarial method": (
        f"{NEW_RUN} train.adversarial.method=fgsm",
        ["train.adversarial.method='fgsm'", "expected one of fgm, pgd, vat"],
    ),
    "adversarial epsilon 0": (
        f"{NEW_RUN} train.adversarial.method=fgm train.adversarial.epsilon=0",
        ["train.adversarial.epsilon=0.0", "must be positive"],
    ),
    "augmentation rate above 1": (f"{NEW_RUN} data.augment.swap=1.5", ["data.augment.swap=1.5", "0 <= x <= 1"]),
    "synonyms without neighbours": (
        f"{NEW_RUN} data.augment.synonym=0.1",
        ["data.augment.synonym=0.1", "needs data.augment.neighbours_from"],
    ),
    "neighbours from a missing run": (
        f"{NEW_RUN} data.augment.synonym=0.1 data.augment.neighbours_from={{tmp}}/norun",
        ["data.augment.neighbours_from", "norun"],
    ),
    "VAT on a missing unlabelled file": (
        f"{NEW_RUN} train.adversarial.method=vat train.adversarial.unlabelled={{tmp}}/unsup.csv",
        ["unsup.csv"],
    ),
    "ensemble of one run": ("ensemble {run} --to {tmp}/x", ["at least 2"]),
    "device that does not exist": (
        f"{NEW_RUN} --strategy mirrored --devices /gpu:0,/gpu:1",
        ["train.devices", "'/gpu:0'"],
    ),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_is_one_line_with_status_2(bad, case):
    command, parts = BAD_INPUTS[case]
    before = sorted(p.relative_to(bad["run"]) for p in bad["run"].rglob("*"))
    assert_one_line_error(run(*command.format(**bad).split()), *parts)
    assert not bad["out"].exists() and not (bad["tmp"] / "x").exists()  # nothing half-made
    assert sorted(p.relative_to(bad["run"]) for p in bad["run"].rglob("*")) == before  # no evaluations/ either


# ------------------------------------------------------------------------ the real console script


def test_console_script_train_export_and_serve(tmp_path):
    """`tfrnn train && tfrnn export` in a shell; the export, served in a fresh process that cannot
    import keras or tfrnn, predicts as the run does; then a bad input on the real script."""
    tfrnn = shutil.which("tfrnn")
    assert tfrnn, "the `tfrnn` console script is not on PATH; run `pip install -e .`"
    overrides = " ".join([*TINY, "train.epochs=1", "train.tensorboard=false", "data.limit=200"])
    texts = ["A warm, funny film.", "Dull.<br />Awful.", "", "好看 😀"]
    script = f"cd {tmp_path} && tfrnn train --output-dir runs --name e2e {overrides} && tfrnn export runs/e2e"
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert "exported saved_models/e2e/1" in result.stdout

    predictions = load_run(tmp_path / "runs" / "e2e").predict(texts)
    served = serve_in_fresh_process(tmp_path / "saved_models" / "e2e" / "1", texts, tmp_path)
    assert served["loaded"] == []
    np.testing.assert_allclose(
        served["probabilities"], [list(p["probabilities"].values()) for p in predictions], atol=1e-5
    )
    assert served["label"] == [p["label"] for p in predictions]

    missing = tmp_path / "runs" / "nope"
    failed = subprocess.run([tfrnn, "predict", str(missing), "hi"], capture_output=True, text=True, timeout=120)
    assert failed.returncode == 2
    assert failed.stdout == ""
    assert failed.stderr.strip().split("\n") == [f"Error: {missing}: run directory not found"]


def test_peft_on_a_model_without_a_pretrained_encoder_is_one_line(tmp_path):
    result = run("train", "--peft", "lora", "--output-dir", tmp_path)
    assert_one_line_error(result, "model.peft.method=lora: needs a pretrained encoder", "init_from")
    assert not any(tmp_path.iterdir())
