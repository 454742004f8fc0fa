"""train(): every artefact of the run directory, the run spec it saves (and the config it is
given, untouched), the best checkpoint (written atomically), run-directory rules, and Ctrl-C
then resuming: early stopping's state, the data order and dropout masks carry over, so a resumed
run is the uninterrupted one."""

import csv
import dataclasses
import importlib
import json
import os
import re
from pathlib import Path

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
from tfrnn.training.callbacks import AtomicModelCheckpoint, ResumableCSVLogger, ResumableEarlyStopping
from tfrnn.training.train import train

train_module = importlib.import_module("tfrnn.training.train")
CALLBACKS = train_module.run_callbacks

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
    assert "<h2" in (paths.root / "report.html").read_text(encoding="utf-8")  # tfrnn train writes the page
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
    spec = resolve(given, ["neg", "pos"], jit_compile=False, precision="float32")  # "auto" on this CPU
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
    monkeypatch.setattr(train_module, "run_callbacks", lambda *args, **kwargs: [*CALLBACKS(*args, **kwargs), *extra])


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
    assert (config.train.jit_compile, config.train.precision) == ("auto", "auto")
    assert result.run_dir.parent == tmp_path and re.fullmatch(r"\d{8}-\d{6}-lstm", result.run_dir.name)
    spec = load_config(RunPaths(result.run_dir).config)
    assert spec.data.labels == ("neg", "pos") and spec.run_name == result.run_dir.name
    assert spec.tfrnn_version == "0.2.0"
    assert (spec.train.jit_compile, spec.train.precision) == ("false", "float32")
    assert spec == resolve(config, ["neg", "pos"], run_name=result.run_dir.name, jit_compile=False, precision="float32")


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


# ------------------------------------------------------------- model.keras is written atomically

DETERMINISTIC = ("train.tensorboard=false", "train.deterministic=true")


def _tiny_model():
    return keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])


def test_checkpoint_renames_into_place_and_keeps_save_best_only(tmp_path):
    target = tmp_path / "model.keras"
    checkpoint = AtomicModelCheckpoint(target, monitor="val_loss", save_best_only=True, initial_value_threshold=1.0)
    checkpoint.set_model(_tiny_model())
    checkpoint.on_train_begin()
    checkpoint.on_epoch_end(0, {"val_loss": 2.0})  # worse than the threshold: nothing written
    assert not target.exists()
    checkpoint.on_epoch_end(1, {"val_loss": 0.5})
    first = target.read_bytes()
    assert keras.saving.load_model(target).count_params() == 8
    checkpoint.model.set_weights([w + 1 for w in checkpoint.model.get_weights()])
    checkpoint.on_epoch_end(2, {"val_loss": 0.7})  # not better: the file stays
    assert target.read_bytes() == first
    checkpoint.on_epoch_end(3, {"val_loss": 0.1})
    assert target.read_bytes() != first and checkpoint.filepath == str(target)
    _assert_same_weights(keras.saving.load_model(target).get_weights(), checkpoint.model.get_weights())
    assert sorted(os.listdir(tmp_path)) == ["model.keras"]  # no temporary left


def test_crash_while_saving_the_checkpoint_leaves_the_previous_model(tmp_path, monkeypatch):
    """The checkpoint of epoch 1 is saved; saving epoch 2's dies half-way (a full disk, a kill):
    model.keras is still epoch 1's, whole."""
    config = tiny_config(tmp_path, "crash", *DETERMINISTIC)  # val_loss improves at epoch 2
    paths = RunPaths(tmp_path / "crash")
    real_save, saves = keras.Model.save, []

    def save(model, filepath, *args, **kwargs):
        saves.append(str(filepath))
        if len(saves) == 1:
            return real_save(model, filepath, *args, **kwargs)
        with open(filepath, "wb") as f:
            f.write(b"PK\x03\x04 half a zip")
        raise OSError(28, "No space left on device")

    weights = _Weights()
    _with_callbacks(monkeypatch, weights)
    monkeypatch.setattr(keras.Model, "save", save)
    with pytest.raises(OSError, match="No space left"):
        train(config, log=quiet)
    assert len(saves) == 2
    assert all(Path(s).parent == paths.root and Path(s).name.endswith(".model.keras") for s in saves)  # beside it
    monkeypatch.setattr(keras.Model, "save", real_save)
    _assert_same_weights(keras.saving.load_model(paths.model).get_weights(), weights.at_epoch_end[0])
    assert not [p.name for p in paths.root.iterdir() if p.name.startswith(".")]  # the half file is gone


# --------------------------------------------------------- resuming restores early stopping's state


def _early_stopping(folder, patience=3):
    callback = ResumableEarlyStopping(folder, monitor="val_loss", patience=patience, restore_best_weights=True)
    callback.set_model(_tiny_model())
    callback.model.stop_training = False  # as fit sets it
    return callback


def _state(callback):
    return (callback.wait, callback.best, callback.best_epoch, callback.stopped_epoch)


def test_early_stopping_state_survives_a_new_process(tmp_path):
    """Epochs 0-3 (val_loss 1.0, 0.5, 0.7, 0.8: wait 2, best 0.5 at epoch 1), then a new callback
    (as in a resumed process) continues at epoch 4 with that state, best weights included, and
    stops where the uninterrupted one stops."""
    losses = [1.0, 0.5, 0.7, 0.8, 0.9, 0.95]
    whole = _early_stopping(tmp_path / "whole")
    whole.on_train_begin()
    for epoch, loss in enumerate(losses):
        whole.on_epoch_begin(epoch)
        whole.model.set_weights([np.full_like(w, epoch) for w in whole.model.get_weights()])
        whole.on_epoch_end(epoch, {"val_loss": loss})
        if epoch == 3:
            at_epoch_3 = _state(whole)
        if whole.model.stop_training:
            break
    assert at_epoch_3 == (2, 0.5, 1, 0) and _state(whole) == (3, 0.5, 1, 4)

    first = _early_stopping(tmp_path / "backup")
    first.on_train_begin()
    for epoch, loss in enumerate(losses[:4]):
        first.on_epoch_begin(epoch)
        first.model.set_weights([np.full_like(w, epoch) for w in first.model.get_weights()])
        first.on_epoch_end(epoch, {"val_loss": loss})
    resumed = _early_stopping(tmp_path / "backup")  # a new process: a new callback and model
    resumed.on_train_begin()
    resumed.on_epoch_begin(4)
    assert _state(resumed) == at_epoch_3
    _assert_same_weights(resumed.best_weights, [np.full_like(w, 1) for w in resumed.model.get_weights()])
    resumed.on_epoch_end(4, {"val_loss": losses[4]})
    assert resumed.model.stop_training and _state(resumed) == _state(whole)
    resumed.on_train_end()
    _assert_same_weights(resumed.model.get_weights(), whole.best_weights)  # the best epoch's, restored
    # Only the last two epochs' states are kept, and the best weights they name.
    assert sorted(os.listdir(tmp_path / "backup")) == [
        "early_stopping-4.json",
        "early_stopping-5.json",
        "early_stopping-best-1.npz",
    ]


def test_early_stopping_resumes_from_the_backups_epoch(tmp_path):
    """Killed after writing epoch 4's state but before the backup of epoch 4: the backup resumes
    at epoch 3 (after 3 epochs), whose state is still there."""
    first = _early_stopping(tmp_path)
    first.on_train_begin()
    for epoch, loss in enumerate([1.0, 0.5, 0.7, 0.4]):
        first.on_epoch_begin(epoch)
        first.on_epoch_end(epoch, {"val_loss": loss})
        if epoch == 2:
            after_3 = _state(first)
    resumed = _early_stopping(tmp_path)
    resumed.on_train_begin()
    resumed.on_epoch_begin(3)
    assert _state(resumed) == after_3 == (1, 0.5, 1, 0)


class _EarlyStoppingSpy(keras.callbacks.Callback):
    """Records the run's early stopping state when each epoch begins and ends."""

    def __init__(self):
        super().__init__()
        self.early_stopping, self.at_begin, self.at_end = None, {}, {}

    def _state(self):
        return (*_state(self.early_stopping), [w.copy() for w in self.early_stopping.best_weights or []])

    def on_epoch_begin(self, epoch, logs=None):
        self.at_begin[epoch] = self._state()

    def on_epoch_end(self, epoch, logs=None):
        self.at_end[epoch] = self._state()


def _spied(monkeypatch, *extra):
    spy = _EarlyStoppingSpy()

    def callbacks(*args, **kwargs):
        made = CALLBACKS(*args, **kwargs)
        spy.early_stopping = next(c for c in made if isinstance(c, keras.callbacks.EarlyStopping))
        return [*made, spy, *extra]

    monkeypatch.setattr(train_module, "run_callbacks", callbacks)
    return spy


def _assert_same_state(actual, expected):
    assert actual[:4] == expected[:4]
    _assert_same_weights(actual[4], expected[4])


def test_resumed_early_stopping_stops_where_the_uninterrupted_run_stops(tmp_path, monkeypatch):
    """Patience 2. Uninterrupted, val_loss last improves at epoch 3 (of 1-6) and the run stops
    after epoch 5. Interrupted after epoch 4 (one epoch without improvement) and resumed, the run
    starts epoch 5 with the same patience counter, best value and best weights, and stops there
    too (starting afresh, it would run epoch 6)."""
    overrides = (*DETERMINISTIC, "train.epochs=6", "train.early_stopping_patience=2")
    whole = _spied(monkeypatch)
    uninterrupted = train(tiny_config(tmp_path, "whole", *overrides), log=quiet)
    val_losses = [float(row["val_loss"]) for row in _history_rows(RunPaths(uninterrupted.run_dir).history)]
    assert uninterrupted.metrics["epochs_run"] == 5, val_losses  # the data this test needs
    assert whole.at_end[3][0] == 1 and whole.at_end[3][2] == 2, val_losses

    first = _spied(monkeypatch, _InterruptAtEpochEnd(3))
    config = tiny_config(tmp_path, "resumed", *overrides)
    with pytest.raises(Interrupted):
        train(config, log=quiet)
    _assert_same_state(first.at_end[3], whole.at_end[3])
    resumed = _spied(monkeypatch)
    result = train(config, resume=True, log=quiet)
    assert list(resumed.at_begin) == [4]
    _assert_same_state(resumed.at_begin[4], whole.at_end[3])
    _assert_same_state(resumed.at_end[4], whole.at_end[4])
    assert result.metrics["epochs_run"] == 5
    assert _history_rows(RunPaths(result.run_dir).history) == _history_rows(RunPaths(uninterrupted.run_dir).history)


# ------------------------------------------------------ a resumed run goes on as if never stopped


def test_resumed_run_equals_the_uninterrupted_run(tmp_path, monkeypatch):
    """Ctrl-C after epoch 1, resumed in a new train() (new datasets, a new model): epoch 2 sees
    the same data order and dropout masks as in the uninterrupted run, so with determinism on
    every logged value and weight is the same. A temporary file a killed save left is removed."""
    overrides = (*DETERMINISTIC, "train.epochs=3", "train.early_stopping_patience=0")
    whole_weights = _Weights()
    _with_callbacks(monkeypatch, whole_weights)
    whole = train(tiny_config(tmp_path, "whole", *overrides), log=quiet)

    config = tiny_config(tmp_path, "resumed", *overrides)
    paths = RunPaths(config.run_dir)
    _with_callbacks(monkeypatch, _InterruptAtEpochEnd(0))
    with pytest.raises(Interrupted):
        train(config, log=quiet)
    (paths.root / ".0123abcd.model.keras").write_bytes(b"half")
    resumed_weights = _Weights()
    _with_callbacks(monkeypatch, resumed_weights)
    resumed = train(config, resume=True, log=quiet)
    assert list(resumed_weights.at_epoch_end) == [1, 2]
    for epoch in (1, 2):
        _assert_same_weights(resumed_weights.at_epoch_end[epoch], whole_weights.at_epoch_end[epoch])
    assert _history_rows(paths.history) == _history_rows(RunPaths(whole.run_dir).history)
    without_times = [{k: v for k, v in m.items() if "seconds" not in k} for m in (resumed.metrics, whole.metrics)]
    assert without_times[0] == without_times[1]
    assert not [p.name for p in paths.root.iterdir() if p.name.startswith(".")]


def test_history_drops_the_rows_of_epochs_the_backup_did_not_keep(tmp_path):
    """Killed after logging epoch 2 but before backing it up: the resumed fit starts at epoch 2
    again, and its row replaces the old one instead of following it."""
    path = tmp_path / "history.csv"
    path.write_bytes(b"epoch,loss,val_loss\r\n0,0.9,NA\r\n1,0.8,NA\r\n2,0.7,NA\r\n")
    logger = ResumableCSVLogger(path)
    logger.on_train_begin()
    logger.on_epoch_begin(2)
    logger.on_epoch_end(2, {"loss": 0.75})
    logger.on_train_end()
    assert path.read_bytes() == b"epoch,loss,val_loss\r\n0,0.9,NA\r\n1,0.8,NA\r\n2,0.75,NA\r\n"


def test_static_batches_give_the_same_outputs_and_accuracy(loaded_tiny_run):
    """Batches padded to a bucket boundary and filled with weight-0 copies (compiled steps) give
    each text the logits of an ordinary batch, and the same weighted accuracy."""
    model, spec = loaded_tiny_run.model, loaded_tiny_run.spec
    examples = data.load_examples(spec.data, "test")
    texts, labels = list(examples.texts[:75]), np.asarray(examples.labels[:75])
    dynamic = model.predict(model.preprocessor.batches(texts, 32), verbose=0)
    static = model.predict(model.preprocessor.batches(texts, 32, static_shapes=True), verbose=0)
    assert static.shape == (96, 2)  # 3 batches of 32: 75 texts, then 21 fillers
    np.testing.assert_allclose(static[:75], dynamic, atol=1e-5, rtol=0)
    scores = {
        shapes: model.evaluate(model.preprocessor.batches(texts, 32, labels, shapes), verbose=0, return_dict=True)
        for shapes in (False, True)
    }
    assert scores[True]["accuracy"] == pytest.approx(scores[False]["accuracy"], abs=1e-7)
    assert scores[False]["accuracy"] == pytest.approx(np.mean(dynamic.argmax(-1) == labels))


def test_split_seed_holds_out_the_same_examples_whatever_the_training_seed(tmp_path):
    """Runs that differ in train.seed (an ensemble's members) hold out the same examples when
    data.split_seed is fixed; without it, the split follows train.seed."""
    from tfrnn.training.train import _load_splits

    def held_out(*overrides):
        _, evaluated = _load_splits(tiny_config(tmp_path, "split", *overrides), quiet)
        return sorted(evaluated["validation"].texts)

    assert held_out("train.seed=1", "data.split_seed=7") == held_out("train.seed=2", "data.split_seed=7")
    assert held_out("train.seed=1") != held_out("train.seed=2")
    assert held_out("train.seed=7") == held_out("train.seed=3", "data.split_seed=7")
