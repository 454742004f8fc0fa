"""`tfrnn.tuning`: a tiny search (3 trials of a feedforward model, 1 epoch each, on 150 of the
embedded reviews), killed in its second trial and resumed, runs only the remaining trials, then
has its table, best config and HParams data; bad space files are one-line errors naming their
line. Three trainings in all (about 30 s on 2 busy cores)."""

import csv
import dataclasses
import importlib
import json
from pathlib import Path

import pytest
import tensorflow as tf
from tensorboard.plugins.hparams import plugin_data_pb2

from tests.fixtures import quiet
from tfrnn.config import load_config
from tfrnn.errors import ConfigError, Interrupted, TfrnnError

tuning = importlib.import_module("tfrnn.tuning")
REAL_TRAIN = tuning.train

BASE = """\
data:
  limit: 150
  validation_split: 0.3
  max_len: 40
model:
  kind: feedforward
  feedforward:
    vocab_size: 500
    embedding_dim: 8
    hidden_units: 8
train:
  epochs: 1
  verbose: 0
  tensorboard: false
"""

SPACE = """\
base: base.yaml
overrides: [train.learning_rate=0.01]
algorithm: random
objective: val_accuracy
trials: 3
seed: 1
space:
  train.learning_rate: {min: 1.0e-3, max: 5.0e-2, sampling: log}
  model.feedforward.hidden_units: {min: 4, max: 16, step: 4}
  model.feedforward.dropout: [0, 0.2]  # floats
"""

KEYS = ("train.learning_rate", "model.feedforward.hidden_units", "model.feedforward.dropout")


def write_space(folder, space=SPACE):
    (folder / "base.yaml").write_text(BASE, encoding="utf-8")
    path = folder / "space.yaml"
    path.write_text(space, encoding="utf-8")
    return path


def results(tune_dir):
    with open(tune_dir / "results.csv", newline="") as f:
        return list(csv.DictReader(f))


def counted_train(calls, interrupt_at=None):
    """tfrnn's train, recording each trial's run name; the call number `interrupt_at` is stopped
    by Ctrl-C once its run directory has its config (a half-made run, as a killed search leaves)."""

    def train(config, log=print, **kwargs):
        calls.append(config.run_name)
        if len(calls) == interrupt_at:

            def log(message):
                if message.startswith("data: "):  # after config.yaml, before the fit
                    raise KeyboardInterrupt

        return REAL_TRAIN(config, log=log, **kwargs)

    return train


@dataclasses.dataclass
class Search:
    """A 3-trial search, killed in trial 1 and resumed (the `search` fixture)."""

    space: Path
    tune_dir: Path
    result: tuning.TuneResult
    calls_before: list  # train's calls before the interruption (run names)
    calls_after: list  # and on resuming
    half_made: list  # files of trial 1's run directory when it was killed
    planned: dict  # trial 1's values, as the oracle saved them before the interruption
    table_before: list  # results.csv's trials then


@pytest.fixture(scope="module")
def search(tmp_path_factory):
    folder = tmp_path_factory.mktemp("search")
    space, tune_dir = write_space(folder), folder / "tune"
    calls_before, calls_after = [], []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tuning, "train", counted_train(calls_before, interrupt_at=2))
        with pytest.raises(Interrupted, match=f"tfrnn tune -c {space} --output-dir {tune_dir} --resume"):
            tuning.tune(space, output_dir=tune_dir, log=quiet)
        half_made = sorted(path.name for path in (tune_dir / "trials" / "1").iterdir())
        planned = json.loads((tune_dir / "oracle" / "trial_1" / "trial.json").read_text())
        table_before = [row["trial"] for row in results(tune_dir)]
        with pytest.raises(ConfigError, match="already exists; continue that search with --resume"):
            tuning.tune(space, output_dir=tune_dir, log=quiet)
        patch.setattr(tuning, "train", counted_train(calls_after))
        result = tuning.tune(space, output_dir=tune_dir, resume=True, log=quiet)
    values = planned["hyperparameters"]["values"]
    return Search(space, tune_dir, result, calls_before, calls_after, half_made, values, table_before)


def test_killed_in_a_trial_and_resumed_it_runs_only_the_remaining_trials(search):
    assert search.calls_before == ["0", "1"] and search.table_before == ["0"]
    assert "config.yaml" in search.half_made and "metrics.json" not in search.half_made
    assert search.calls_after == ["1", "2"]  # trial 0 had finished; trial 1 starts over
    assert search.result.completed == 3
    rerun = next(row for row in results(search.tune_dir) if row["trial"] == "1")
    assert [rerun[key] for key in KEYS] == [str(search.planned[key]) for key in KEYS]  # the same trial again
    calls = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tuning, "train", counted_train(calls))
        again = tuning.tune(search.space, output_dir=search.tune_dir, resume=True, log=quiet)
    assert calls == [] and again.completed == 3  # a finished search has nothing left to run


def test_a_search_writes_its_table_best_first(search):
    tune_dir, result = search.tune_dir, search.result
    rows = results(tune_dir)
    assert [row["status"] for row in rows] == ["completed"] * 3
    assert sorted(row["trial"] for row in rows) == ["0", "1", "2"]
    scores = [float(row["val_accuracy"]) for row in rows]
    assert scores == sorted(scores, reverse=True)
    assert (result.completed, result.best_trial, result.best_value) == (3, rows[0]["trial"], pytest.approx(scores[0]))
    for row in rows:  # each trial is a normal run directory, its objective from its history
        run = tune_dir / "trials" / row["trial"]
        assert (run / "metrics.json").is_file() and (run / "model.keras").is_file()
        assert row["run_dir"] == str(run) and row["epochs"] == "1"
        spec = load_config(run / "config.yaml")
        assert spec.train.learning_rate == pytest.approx(float(row["train.learning_rate"]))
        assert spec.model.feedforward.hidden_units == int(row["model.feedforward.hidden_units"])
        assert 1e-3 <= spec.train.learning_rate <= 5e-2 and spec.model.feedforward.hidden_units in (4, 8, 12, 16)
    markdown = (tune_dir / "results.md").read_text().splitlines()
    assert markdown[2].startswith("| trial | status | train.learning_rate |")
    assert len(markdown) == 4 + 3 and markdown[4].startswith(f"| {rows[0]['trial']} | completed |")


def test_best_yaml_is_a_train_config_with_the_best_values(search):
    space, tune_dir = search.space, search.tune_dir
    best = results(tune_dir)[0]
    config = load_config(tune_dir / "best.yaml")  # what `tfrnn train -c best.yaml` loads
    assert config.run_name is None and config.tfrnn_version is None and config.output_dir == "runs"
    values = {
        "train.learning_rate": float(best["train.learning_rate"]),
        "model.feedforward.hidden_units": int(best["model.feedforward.hidden_units"]),
        "model.feedforward.dropout": float(best["model.feedforward.dropout"]),
    }
    assert config == load_config(space.parent / "base.yaml", [f"{key}={value}" for key, value in values.items()])


def test_hparams_dashboard_has_the_space_and_one_run_per_trial(search):
    tune_dir = search.tune_dir
    rows = {row["trial"]: row for row in results(tune_dir)}
    top = [tag for event in _events(tune_dir / "hparams") for tag in event]
    assert "_hparams_/experiment" in top
    for trial, row in rows.items():
        tags = dict(kv for event in _events(tune_dir / "hparams" / trial) for kv in event.items())
        info = plugin_data_pb2.HParamsPluginData.FromString(tags["_hparams_/session_start_info"]).session_start_info
        assert info.hparams["model.feedforward.hidden_units"].number_value == int(row["model.feedforward.hidden_units"])
        assert tags["val_accuracy"] == pytest.approx(float(row["val_accuracy"]))


def _events(folder):
    """Each event file's summaries in `folder`: {tag: hparams plugin content or scalar value}."""
    for path in sorted(folder.glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            yield {
                value.tag: (
                    value.metadata.plugin_data.content
                    if value.metadata.plugin_data.plugin_name == "hparams"
                    else float(tf.make_ndarray(value.tensor))
                )
                for value in event.summary.value
            }


def test_hyperband_epochs_become_train_epochs(tmp_path, monkeypatch):
    # train.epochs=3, factor 3: Hyperband's first bracket trains 6 models for 1 epoch.
    hyperband = SPACE.replace("algorithm: random", "algorithm: hyperband").replace("[train.", "[train.epochs=3, train.")
    epochs = []

    def recorded(config, log=print, **kwargs):
        epochs.append(config.train.epochs)
        raise ConfigError("stop here")

    monkeypatch.setattr(tuning, "train", recorded)
    tuning.tune(write_space(tmp_path, hyperband), trials=2, output_dir=tmp_path / "tune", log=quiet)
    assert epochs == [1, 1]


@pytest.mark.parametrize("algorithm", tuning.ALGORITHMS)
def test_each_oracle_proposes_values_in_the_space(algorithm, tmp_path):
    search, base = tuning.read_space(write_space(tmp_path), algorithm=algorithm)
    tuner = tuning.make_tuner(search, base, tmp_path, quiet)
    values = tuner.oracle.create_trial(tuner.tuner_id).hyperparameters.values
    assert 1e-3 <= values["train.learning_rate"] <= 5e-2
    assert values["model.feedforward.hidden_units"] in (4, 8, 12, 16)
    assert values["model.feedforward.dropout"] in (0.0, 0.2)
    assert ("tuner/epochs" in values) == (algorithm == "hyperband")


# ------------------------------------------------------------------------------- bad space files


HIDDEN_UNITS = "  model.feedforward.hidden_units: {min: 4, max: 16, step: 4}"


@pytest.mark.parametrize(
    "old, new, line, message",
    [
        (HIDDEN_UNITS, "  model.feedforward.size: [1, 2]", 9, "model.feedforward.size: Key 'size' not in"),
        (HIDDEN_UNITS, "  model.rnn.units: [8, 16]", 9, "model.rnn.units: a setting of model.kind=rnn"),
        (HIDDEN_UNITS, "  train.epochs: {min: 3, max: 1}", 9, "train.epochs: empty range (min 3 >= max 1)"),
        (HIDDEN_UNITS, "  model.feedforward.embedding_dim: []", 9, "embedding_dim: an empty list of choices"),
        (HIDDEN_UNITS, "  train.epochs: 3", 9, "train.epochs: expected a list of choices or a range"),
        (HIDDEN_UNITS, "  model.feedforward.hidden_units: {min: 0, max: 8}", 9, "hidden_units=0: must be positive"),
        (HIDDEN_UNITS, "  model.feedforward.hidden_units: {min: 0, max: 8, sampling: log}", 9, "hidden_units:"),
        (HIDDEN_UNITS, "  run_name: [a, b]", 9, "run_name: tfrnn tune sets it per trial"),
        ("[0, 0.2]", "{min: 0.0, max: 1.0}", 10, "model.feedforward.dropout=1.0: expected 0 <= x < 1"),
        ("algorithm: random", "algorithm: annealing", 3, "algorithm='annealing': expected one of random, bayesian"),
        ("objective: val_accuracy", "objective: accuracy", 4, "objective='accuracy': expected one of val_loss"),
        ("trials: 3", "trials: 0", 5, "trials=0: expected a positive integer"),
        ("space:", "budget: 3\nspace:", 7, "budget: unknown key"),
    ],
)
def test_bad_space_files_are_one_line_errors_naming_the_line(tmp_path, old, new, line, message):
    space = write_space(tmp_path, SPACE.replace(old, new))
    with pytest.raises(ConfigError) as error:
        tuning.tune(space, output_dir=tmp_path / "tune", log=quiet)
    assert str(error.value).startswith(f"{space}:{line}: "), str(error.value)
    assert message in str(error.value) and "\n" not in str(error.value), str(error.value)
    assert not (tmp_path / "tune").exists()  # nothing written


def test_resuming_with_another_space_or_nothing_there_is_refused(search, tmp_path):
    space, tune_dir = search.space, search.tune_dir
    with pytest.raises(ConfigError, match="no search to resume"):
        tuning.tune(space, output_dir=tmp_path / "none", resume=True, log=quiet)
    other = write_space(tmp_path, SPACE.replace("[0, 0.2]", "[0, 0.3]"))
    with pytest.raises(ConfigError, match="differs from the one this search started with"):
        tuning.tune(other, output_dir=tune_dir, resume=True, log=quiet)


def test_a_failed_trial_is_recorded_and_three_in_a_row_stop_the_search(tmp_path, monkeypatch):
    space = write_space(tmp_path)
    calls = []

    def refused(config, log=print, **kwargs):  # e.g. sampled values that clash with each other
        calls.append(config.run_name)
        raise ConfigError("model.feedforward.hidden_units=4: refused by the model")

    monkeypatch.setattr(tuning, "train", refused)
    with pytest.raises(TfrnnError, match="3 trials in a row failed, the last with: model.feedforward.hidden_units=4"):
        tuning.tune(space, output_dir=tmp_path / "tune", log=quiet)
    assert calls == ["0", "1", "2"]
    assert [row["status"] for row in results(tmp_path / "tune")] == ["failed"] * 3
    assert not (tmp_path / "tune" / "best.yaml").exists()
