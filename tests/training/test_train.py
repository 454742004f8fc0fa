"""train(): every artefact of the run directory, the run spec it saves (and the config it is
given, untouched), the best checkpoint, run-directory rules, and Ctrl-C then resuming."""

import csv
import dataclasses
import importlib
import json
import os
import re

import keras
import numpy as np
import pytest

from tests.fixtures import copy_run, quiet, tiny_config, tiny_overrides
from tfrnn import data
from tfrnn.config import load_config, resolve, to_yaml
from tfrnn.data import WordPreprocessor
from tfrnn.errors import ConfigError, DataError, Interrupted
from tfrnn.models import FeedForwardClassifier, RNNClassifier
from tfrnn.runs import RunPaths
from tfrnn.training.train import train

train_module = importlib.import_module("tfrnn.training.train")
CALLBACKS = train_module._callbacks

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _history_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _snapshot(root):
    """{relative path: (size, mtime_ns)} of every file under root."""
    files = [p for p in root.rglob("*") if p.is_file()]
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in files}


def test_run_directory_has_every_artefact(tiny_run):
    paths = RunPaths(tiny_run.run_dir)
    config = load_config(paths.config)
    assert config.data.labels == ("neg", "pos")  # resolved: the labels are filled in
    assert (config.model.rnn.units, config.model.rnn.embedding_dim, config.data.limit) == (8, 8, 600)
    assert config.run_name == "tiny" and config.tfrnn_version == "0.2.0"

    model = keras.saving.load_model(paths.model)
    assert isinstance(model, RNNClassifier) and isinstance(model.preprocessor, WordPreprocessor)
    vocabulary = paths.vocabulary.read_text(encoding="utf-8").split("\n")
    assert vocabulary[:2] == ["", "[UNK]"] and vocabulary[-1] == "" and len(vocabulary) > 100
    assert vocabulary[:-1] == model.preprocessor.get_vocabulary()  # written for people, from the model's

    metrics = json.loads(paths.metrics.read_text())
    assert metrics == tiny_run.metrics
    assert metrics["epochs_run"] == 2
    assert metrics["train_examples"] == 540 and metrics["validation"]["count"] == 60
    assert metrics["test"]["count"] == 400  # the embedded test file
    assert metrics["parameters"] == model.count_params()
    assert metrics["vocabulary_size"] == model.preprocessor.vocabulary_size == len(vocabulary) - 1
    for split in ("validation", "test"):
        section = metrics[split]
        assert 0.0 <= section["accuracy"] <= 1.0
        assert sum(map(sum, section["confusion_matrix"])) == section["count"]
        correct = sum(section["confusion_matrix"][i][i] for i in range(2))
        assert section["accuracy"] == pytest.approx(correct / section["count"])
        assert set(section["per_class"]) == {"neg", "pos"}

    report = paths.report.read_text()
    assert report.startswith("test split") and "neg" in report and "pos" in report
    for png in (paths.curves, paths.confusion):
        assert png.read_bytes()[:8] == PNG_SIGNATURE

    rows = _history_rows(paths.history)
    assert [row["epoch"] for row in rows] == ["0", "1"]
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(rows[0])

    for part in ("train", "validation"):
        assert any(f.name.startswith("events.out.tfevents") for f in (paths.logs / part).iterdir())
    assert not paths.backup.exists()  # removed once the run finished


def test_artefacts_are_readable_like_the_others(tiny_run):
    """metrics.json (written atomically) gets the same permissions as the plain files."""
    paths = RunPaths(tiny_run.run_dir)
    assert paths.metrics.stat().st_mode & 0o777 == paths.config.stat().st_mode & 0o777
    assert not [p.name for p in paths.root.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_the_saved_config_is_the_resolved_spec(tiny_run, loaded_tiny_run):
    """config.yaml is the run spec: the config the run was given, resolved (labels, tfrnn_version)."""
    paths = RunPaths(tiny_run.run_dir)
    given = tiny_config(tiny_run.run_dir.parent, "tiny")
    spec = resolve(given, ["neg", "pos"])
    assert loaded_tiny_run.spec == load_config(paths.config) == spec
    assert paths.config.read_text(encoding="utf-8") == to_yaml(spec)
    assert loaded_tiny_run.spec.run_dir == tiny_run.run_dir


def test_checkpoint_is_the_best_validation_epoch(tiny_run, loaded_tiny_run):
    """model.keras reproduces the lowest val_loss in history.csv on the same validation split,
    through the training pipeline and from raw texts (the model owns its preprocessor)."""
    spec, paths = loaded_tiny_run.spec, RunPaths(tiny_run.run_dir)
    examples = data.load_examples(spec.data, "train", seed=spec.train.seed)
    _, validation = data.train_validation_split(examples, spec.data.validation_split, spec.train.seed)
    model = keras.saving.load_model(paths.model)
    dataset = data.make_dataset(validation, model.preprocessor, spec.data, training=False)
    best = min(float(row["val_loss"]) for row in _history_rows(paths.history))
    assert model.evaluate(dataset, verbose=0, return_dict=True)["loss"] == pytest.approx(best, rel=1e-5)
    from_texts = model.evaluate(list(validation.texts), np.asarray(validation.labels), verbose=0, return_dict=True)
    assert from_texts["loss"] == pytest.approx(best, rel=1e-5)
    assert from_texts["accuracy"] == pytest.approx(tiny_run.metrics["validation"]["accuracy"])


def test_model_outputs_logits(loaded_tiny_run):
    """The head is a float32 dense layer named logits; probabilities are its softmax."""
    model = loaded_tiny_run.model
    head = model.get_layer("logits")
    assert head.dtype_policy.name == "float32" and head.activation.__name__ == "linear"
    texts = ["A warm, funny film.", "Dull and far too long."]
    logits = model.predict(texts, verbose=0)
    assert logits.shape == (2, 2) and logits.dtype == np.float32
    assert not np.allclose(logits.sum(axis=1), 1.0)  # not probabilities
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(loaded_tiny_run.probabilities(texts), expected, rtol=1e-5, atol=1e-6)


def test_existing_run_directory_is_refused_untouched(tiny_run):
    before = _snapshot(tiny_run.run_dir)
    config = tiny_config(tiny_run.run_dir.parent, tiny_run.run_dir.name)
    with pytest.raises(ConfigError, match="already exists.*--resume") as caught:
        train(config, log=quiet)
    assert str(tiny_run.run_dir) in str(caught.value)
    assert _snapshot(tiny_run.run_dir) == before


def test_resume_needs_a_run_directory(tmp_path):
    with pytest.raises(ConfigError, match="nothing to resume"):
        train(tiny_config(tmp_path, "never-started"), resume=True, log=quiet)
    assert not (tmp_path / "never-started").exists()


def test_resuming_a_finished_run_is_refused_untouched(tiny_run, tmp_path):
    run_dir = copy_run(tiny_run.run_dir, tmp_path)
    before = _snapshot(run_dir)
    with pytest.raises(ConfigError, match="finished"):
        train(load_config(run_dir / "config.yaml", [f"output_dir={tmp_path}"]), resume=True, log=quiet)
    assert _snapshot(run_dir) == before


def test_bad_data_leaves_no_run_directory(tmp_path):
    config = tiny_config(tmp_path, "bad", "data.source=file", f"data.path={tmp_path / 'missing.csv'}")
    with pytest.raises(DataError, match="missing.csv"):
        train(config, log=quiet)
    assert not (tmp_path / "bad").exists()


class _Interrupt(keras.callbacks.Callback):
    """Raises KeyboardInterrupt (as Ctrl-C would) at one batch of one epoch."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.epoch, self.batch, self.current = epoch, batch, None

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.current, batch) == (self.epoch, self.batch):
            raise KeyboardInterrupt


class _InterruptAtEpochEnd(keras.callbacks.Callback):
    """Raises KeyboardInterrupt at the end of one epoch (after the run's own callbacks, so its
    backup, checkpoint and history row are written)."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


class _Weights(keras.callbacks.Callback):
    """Records the weights at the start of training and at the end of each epoch."""

    def __init__(self):
        super().__init__()
        self.at_start, self.at_epoch_end = None, {}

    def on_train_begin(self, logs=None):  # after BackupAndRestore has restored its state
        self.at_start = self.model.get_weights()

    def on_epoch_end(self, epoch, logs=None):
        self.at_epoch_end[epoch] = self.model.get_weights()


def _with_callbacks(monkeypatch, *extra):
    monkeypatch.setattr(train_module, "_callbacks", lambda *args: [*CALLBACKS(*args), *extra])


def _assert_same_weights(actual, expected):
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        np.testing.assert_array_equal(a, e)


def test_resume_after_interruption_continues_from_the_backup(tmp_path, monkeypatch):
    """Ctrl-C in epoch 2 leaves a backup of epoch 1; --resume restores exactly those weights,
    runs only epoch 2, keeps the best checkpoint across the interruption and cleans up."""
    config = tiny_config(tmp_path, "interrupted", "train.tensorboard=false")
    paths = RunPaths(tmp_path / "interrupted")
    first = _Weights()
    _with_callbacks(monkeypatch, first, _Interrupt(epoch=1, batch=2))
    with pytest.raises(Interrupted) as caught:
        train(config, log=quiet)
    assert str(caught.value) == f"interrupted; continue with: tfrnn train --resume {paths.root}"
    assert [row["epoch"] for row in _history_rows(paths.history)] == ["0"]
    assert paths.backup.is_dir() and paths.model.is_file()
    assert not paths.metrics.exists()  # unfinished
    vocabulary = paths.vocabulary.read_bytes()

    # Pretend epoch 1 had a perfect validation loss: the resumed epoch must not replace its checkpoint.
    history = paths.history.read_text().splitlines()
    header = history[0].split(",")
    row = history[1].split(",")
    row[header.index("val_loss")] = "0.0"
    paths.history.write_text("\n".join([history[0], ",".join(row)]) + "\n")
    checkpoint = keras.saving.load_model(paths.model).get_weights()
    _assert_same_weights(checkpoint, first.at_epoch_end[0])

    second = _Weights()
    _with_callbacks(monkeypatch, second)
    result = train(load_config(paths.config), resume=True, log=quiet)
    assert result.run_dir == paths.root
    _assert_same_weights(second.at_start, first.at_epoch_end[0])  # restored, not re-initialised
    assert list(second.at_epoch_end) == [1]  # only the missing epoch ran
    assert [row["epoch"] for row in _history_rows(paths.history)] == ["0", "1"]
    assert result.metrics["epochs_run"] == 2
    _assert_same_weights(keras.saving.load_model(paths.model).get_weights(), checkpoint)
    assert paths.vocabulary.read_bytes() == vocabulary
    assert not paths.backup.exists()
    assert json.loads(paths.metrics.read_text())["test"]["count"] == 400


def test_ctrl_c_at_the_end_of_epoch_1_then_resume_finishes_the_run(tmp_path, monkeypatch):
    """Ctrl-C is tfrnn.errors.Interrupted (one line naming the command that continues the run);
    that command finishes the run from the backup of epoch 1."""
    config = tiny_config(tmp_path, "ctrl-c", "train.tensorboard=false")
    paths = RunPaths(tmp_path / "ctrl-c")
    _with_callbacks(monkeypatch, _InterruptAtEpochEnd(0))
    with pytest.raises(Interrupted) as caught:
        train(config, log=quiet)
    message = str(caught.value)
    assert message == f"interrupted; continue with: tfrnn train --resume {paths.root}" and "\n" not in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__  # no KeyboardInterrupt chained
    assert [row["epoch"] for row in _history_rows(paths.history)] == ["0"]
    assert paths.backup.is_dir() and paths.config.is_file() and not paths.metrics.exists()
    spec = load_config(paths.config)

    _with_callbacks(monkeypatch)
    result = train(load_config(paths.config), resume=True, log=quiet)  # what --resume loads
    assert result.run_dir == paths.root
    assert result.metrics["epochs_run"] == 2 and json.loads(paths.metrics.read_text()) == result.metrics
    assert [row["epoch"] for row in _history_rows(paths.history)] == ["0", "1"]
    assert not paths.backup.exists()
    assert load_config(paths.config) == spec  # the resumed run keeps its spec
    with pytest.raises(ConfigError, match="finished"):
        train(load_config(paths.config), resume=True, log=quiet)


@pytest.mark.parametrize("step", ["load_examples", "make_preprocessor"])  # reading the data, learning the vocabulary
def test_ctrl_c_before_the_run_starts_writes_nothing(tmp_path, monkeypatch, step):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module.data, step, interrupted)
    with pytest.raises(Interrupted) as caught:
        train(tiny_config(tmp_path, "early"), log=quiet)
    assert str(caught.value) == "interrupted before the run started; nothing was written"
    assert os.listdir(tmp_path) == []


def test_train_does_not_change_the_config_it_is_given(tmp_path):
    """The input keeps labels and run_name None; the run's config.yaml is the resolved spec."""
    overrides = tiny_overrides(f"output_dir={tmp_path}", "data.limit=100", "train.epochs=1", "train.tensorboard=false")
    config = load_config(None, overrides)
    before = dataclasses.asdict(config)
    assert (config.data.labels, config.run_name, config.tfrnn_version) == (None, None, None)
    result = train(config, log=quiet)
    assert dataclasses.asdict(config) == before
    assert (config.data.labels, config.run_name, config.tfrnn_version) == (None, None, None)
    assert result.run_dir.parent == tmp_path and re.fullmatch(r"\d{8}-\d{6}-lstm", result.run_dir.name)
    spec = load_config(RunPaths(result.run_dir).config)
    assert spec.data.labels == ("neg", "pos") and spec.run_name == result.run_dir.name
    assert spec.tfrnn_version == "0.2.0"
    assert spec == resolve(config, ["neg", "pos"], run_name=result.run_dir.name)


def test_file_source_without_validation_or_test(tmp_path):
    """A CSV with no test file and validation_split 0: the final model is saved, nothing is evaluated."""
    rows = ["text,label"]
    rows += [f"{w} film number {i},pos" for i, w in enumerate(["great", "lovely", "superb"] * 10)]
    rows += [f"{w} film number {i},neg" for i, w in enumerate(["awful", "dull", "boring"] * 10)]
    path = tmp_path / "reviews.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    config = tiny_config(
        tmp_path,
        "file",
        "data.source=file",
        f"data.path={path}",
        "data.validation_split=0",
        "model.kind=feedforward",
        "model.feedforward.embedding_dim=8",
        "train.epochs=1",
    )
    result = train(config, log=quiet)
    paths = RunPaths(result.run_dir)
    assert isinstance(keras.saving.load_model(paths.model), FeedForwardClassifier)
    assert "validation" not in result.metrics and "test" not in result.metrics
    assert result.metrics["train_examples"] == 60
    assert paths.model.is_file() and paths.curves.is_file()
    assert not paths.report.exists() and not paths.confusion.exists()
    assert load_config(paths.config).data.labels == ("neg", "pos")
    assert float(_history_rows(paths.history)[0]["loss"]) > 0
    assert os.listdir(paths.logs) == ["train"]


def test_monitor_val_accuracy_keeps_the_most_accurate_epoch(tmp_path):
    # 4 epochs at a high learning rate: validation accuracy moves, and the kept model is the
    # epoch with the highest val_accuracy in history.csv (not the lowest val_loss).
    config = tiny_config(
        tmp_path,
        "acc",
        "train.monitor=val_accuracy",
        "train.epochs=4",
        "train.early_stopping_patience=0",
        "train.tensorboard=false",
    )
    result = train(config, log=quiet)
    rows = _history_rows(RunPaths(result.run_dir).history)
    best = max(float(row["val_accuracy"]) for row in rows)
    assert result.metrics["validation"]["accuracy"] == pytest.approx(best, abs=1e-6)


def test_chinese_text_trains_in_character_mode(tmp_path):
    # Written for this test: positive and negative hotel/book reviews, integer labels as in
    # ChnSentiCorp. Character mode learns them; the vocabulary is characters.
    good = ["房间干净，服务很好", "这本书非常好看", "性价比很高，推荐", "环境优美，交通方便", "早餐丰富，员工热情"]
    bad = ["房间很脏，服务太差", "这本书很无聊", "价格太贵，不推荐", "环境嘈杂，交通不便", "早餐难吃，员工冷漠"]
    rows = ["text,label"] + [f"{t}{i},1" for i in range(8) for t in good] + [f"{t}{i},0" for i in range(8) for t in bad]
    path = tmp_path / "chinese.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    config = tiny_config(
        tmp_path,
        "zh",
        "data.source=file",
        f"data.path={path}",
        "model.rnn.tokenizer=char",
        "data.limit=null",
        "data.validation_split=0.25",
        "train.epochs=8",
        "train.early_stopping_patience=0",
        "train.tensorboard=false",
    )
    result = train(config, log=quiet)
    vocabulary = RunPaths(result.run_dir).vocabulary.read_text(encoding="utf-8").split("\n")
    assert "房" in vocabulary and "房间" not in vocabulary
    assert result.metrics["validation"]["accuracy"] >= 0.9
