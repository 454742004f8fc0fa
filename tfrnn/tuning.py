"""`tfrnn tune`: a hyperparameter search over `tfrnn train` runs, with keras-tuner's oracles.

A search space file (YAML) names a `tfrnn train` config (`base`), fixed dotted `overrides`, the
`algorithm`, the `objective` (a validation metric, `tfrnn.choices.MONITORS`), the number of
`trials`, a `seed`, and the `space`: dotted config keys, each a list of choices or a range
`{min, max, step, sampling}` (integers when min and max are). Every key is checked against
`tfrnn.config.load_config` with its extreme values and each choice before anything is written.

Each trial is a normal run directory, TUNE_DIR/trials/<trial id> (`tfrnn.training.train.train`);
its objective is the validation metric at the epoch the run kept (the best by `train.monitor`).
Hyperband's `tuner/epochs` becomes `train.epochs`, and every Hyperband trial trains from scratch
(it does not continue its parent's weights). The oracle keeps its state in TUNE_DIR/oracle, so
`resume=True` goes on after an interruption: a finished trial is never rerun, a trial killed
halfway is rerun from scratch. After each trial: TUNE_DIR/results.csv and results.md (best
first), best.yaml (the best trial's config, for `tfrnn train -c`) and TensorBoard's HParams
dashboard data in TUNE_DIR/hparams (`tensorboard --logdir TUNE_DIR/hparams`).
"""

import contextlib
import csv
import dataclasses
import io
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import keras_tuner
import tensorflow as tf
import yaml
from tensorboard.plugins.hparams import api as hparams_api

from tfrnn import choices
from tfrnn.config import CLEANING, INIT_FROM_FIELDS, as_dict, load_config
from tfrnn.errors import ConfigError, Interrupted, TfrnnError
from tfrnn.files import atomic_write_text
from tfrnn.runs import RunPaths
from tfrnn.training.train import history_from_csv, train

# `algorithm` -> the keras-tuner oracle.
ALGORITHMS = {
    "random": keras_tuner.oracles.RandomSearchOracle,
    "bayesian": keras_tuner.oracles.BayesianOptimizationOracle,
    "hyperband": keras_tuner.oracles.HyperbandOracle,
}
SAMPLINGS = ("linear", "log", "reverse_log")
FILE_KEYS = ("base", "overrides", "algorithm", "objective", "trials", "seed", "space")
RANGE_KEYS = ("min", "max", "step", "sampling")
DEFAULT_TRIALS = 10  # random and Bayesian search; Hyperband's schedule decides its own count
HYPERBAND_FACTOR = 3  # each Hyperband round keeps a third of the trials and trains them 3x longer
MAX_CONSECUTIVE_FAILURES = 3
Number = Union[int, float]


@dataclass(frozen=True)
class Param:
    """One dimension of the search space: a choice (`choices`) or a range (`min`, `max`).

    Args:
        key: str. A dotted config key, as in an override.
        line: int. Its line in the space file.
        choices: tuple or None. The values of a choice.
        min: int, float or None. The range's lower end (integers when min and max both are).
        max: int, float or None. Its upper end (included).
        step: int, float or None. The range's step; None: continuous (floats) or 1 (integers).
        sampling: str. A `SAMPLINGS` name ("log": uniform in the logarithm).
    """

    key: str
    line: int
    choices: Optional[tuple] = None
    min: Optional[Number] = None
    max: Optional[Number] = None
    step: Optional[Number] = None
    sampling: str = "linear"

    @property
    def samples(self):
        """The values checked against the config: each choice, or the range's two ends."""
        return self.choices if self.choices is not None else (self.min, self.max)

    @property
    def integer(self):
        return self.choices is None and all(isinstance(v, int) for v in (self.min, self.max))

    def declare(self, hyperparameters):
        """Adds this dimension to a `keras_tuner.HyperParameters`."""
        if self.choices is not None:
            hyperparameters.Choice(self.key, list(self.choices))
        elif self.integer:
            hyperparameters.Int(self.key, self.min, self.max, step=self.step, sampling=self.sampling)
        else:
            hyperparameters.Float(self.key, self.min, self.max, step=self.step, sampling=self.sampling)

    def hparam(self):
        """The dimension for TensorBoard's HParams dashboard."""
        if self.choices is not None:
            domain = hparams_api.Discrete(list(self.choices))
        elif self.integer:
            domain = hparams_api.IntInterval(self.min, self.max)
        else:
            domain = hparams_api.RealInterval(float(self.min), float(self.max))
        return hparams_api.HParam(self.key, domain)


@dataclass(frozen=True)
class SearchSpace:
    """A parsed search space file.

    Args:
        path: Path. The file.
        base: Path or None. A `tfrnn train` config (relative paths are relative to the file).
        overrides: tuple of str. Fixed dotted overrides, after the base.
        algorithm: str. An `ALGORITHMS` name.
        objective: str. A `tfrnn.choices.MONITORS` name (its direction is implied).
        trials: int or None. Trials to run at most; None: Hyperband's whole schedule.
        seed: int. The oracle's seed (>= 1).
        params: tuple of Param. The dimensions.
    """

    path: Path
    base: Optional[Path]
    overrides: tuple
    algorithm: str
    objective: str
    trials: Optional[int]
    seed: int
    params: tuple

    @property
    def direction(self):
        return "max" if "accuracy" in self.objective else "min"

    def config(self, values, *more):
        """The RunConfig of a trial: the base, the overrides, the trial's `values` (config keys;
        Hyperband's `tuner/epochs` as train.epochs), then `more` overrides."""
        sampled = {key: value for key, value in values.items() if not key.startswith("tuner/")}
        if "tuner/epochs" in values:
            sampled["train.epochs"] = values["tuner/epochs"]
        return load_config(self.base, [*self.overrides, *(_override(k, v) for k, v in sampled.items()), *more])


@dataclass
class TuneResult:
    """What a search left.

    Args:
        tune_dir: Path. The search's folder.
        completed: int. Trials that finished.
        best_trial: str or None. The best trial's id (None: none finished).
        best_value: float or None. Its objective.
    """

    tune_dir: Path
    completed: int
    best_trial: Optional[str]
    best_value: Optional[float]


def _override(key, value):
    """`key=value` with the value as JSON (a subset of YAML, so strings stay strings)."""
    return f"{key}={json.dumps(value)}"


def _error(path, line, message):
    return ConfigError(f"{path}:{line}: {message}" if line else f"{path}: {message}")


def _key_lines(root):
    """The lines of the top-level keys and of the `space` keys of a composed YAML document."""
    top = {key.value: key.start_mark.line + 1 for key, _ in root.value}
    space = next((node for key, node in root.value if key.value == "space"), None)
    inner = (
        {key.value: key.start_mark.line + 1 for key, _ in space.value} if isinstance(space, yaml.MappingNode) else {}
    )
    return top, inner


def read_space(path, trials=None, algorithm=None):
    """Parses and checks a search space file (each key's values against the config too).

    Args:
        path: str or Path. The YAML file.
        trials: int or None. Overrides the file's `trials`.
        algorithm: str or None. Overrides the file's `algorithm`.

    Returns:
        (SearchSpace, RunConfig): the space and its base config (the base with the overrides).

    Raises:
        ConfigError: one line naming the file and line: bad YAML, an unknown key, algorithm or
            objective, an empty range or choice list, a key or value the config refuses.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: search space file not found")
    try:
        text = path.read_text(encoding="utf-8")
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        raise ConfigError(f"{path}:{mark.line + 1}:{mark.column + 1}: {error.problem}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with a `space` (and base, algorithm, objective, trials)")
    lines, space_lines = _key_lines(root)
    unknown = [key for key in data if key not in FILE_KEYS]
    if unknown:
        raise _error(path, lines[unknown[0]], f"{unknown[0]}: unknown key (expected {', '.join(FILE_KEYS)})")
    algorithm = algorithm or data.get("algorithm", "random")
    if algorithm not in ALGORITHMS:
        where = lines.get("algorithm") if "algorithm" in data and algorithm == data["algorithm"] else None
        raise _error(path, where, f"algorithm={algorithm!r}: expected one of {', '.join(ALGORITHMS)}")
    objective = data.get("objective", "val_accuracy")
    if objective not in choices.MONITORS:
        raise _error(
            path, lines["objective"], f"objective={objective!r}: expected one of {', '.join(choices.MONITORS)}"
        )
    trials = trials if trials is not None else data.get("trials", None if algorithm == "hyperband" else DEFAULT_TRIALS)
    for name, value in (("trials", trials), ("seed", data.get("seed", 1))):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise _error(path, lines.get(name), f"{name}={value!r}: expected a positive integer")
    overrides = data.get("overrides") or []
    if not isinstance(overrides, list) or not all(isinstance(item, str) for item in overrides):
        raise _error(path, lines["overrides"], "overrides: expected a list of KEY=VALUE strings")
    base = data.get("base")
    if base is not None and not isinstance(base, str):
        raise _error(path, lines["base"], f"base={base!r}: expected a path to a tfrnn train config")
    space = data.get("space")
    if not isinstance(space, dict) or not space:
        raise _error(path, lines.get("space"), "space: expected a mapping of dotted keys to choices or ranges")
    search = SearchSpace(
        path=path,
        base=None if base is None else path.parent / base,
        overrides=tuple(overrides),
        algorithm=algorithm,
        objective=objective,
        trials=trials,
        seed=data.get("seed", 1),
        params=tuple(_param(path, space_lines.get(str(key)), str(key), value) for key, value in space.items()),
    )
    return search, _check_against_config(search)


def _param(path, line, key, value):
    if isinstance(value, list):
        if not value:
            raise _error(path, line, f"{key}: an empty list of choices")
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        if numbers and any(isinstance(v, float) for v in value):  # [0, 0.5]: floats, one type as keras-tuner wants
            value = [float(v) for v in value]
        param = Param(key, line, choices=tuple(value))
    elif isinstance(value, dict):
        unknown = [name for name in value if name not in RANGE_KEYS]
        if unknown:
            raise _error(path, line, f"{key}: unknown range setting {unknown[0]!r} (expected {', '.join(RANGE_KEYS)})")
        low, high = value.get("min"), value.get("max")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)):
            raise _error(path, line, f"{key}: a range needs numbers min and max")
        if low >= high:
            raise _error(path, line, f"{key}: empty range (min {low} >= max {high})")
        sampling = value.get("sampling", "linear")
        if sampling not in SAMPLINGS:
            raise _error(path, line, f"{key}: sampling={sampling!r}: expected one of {', '.join(SAMPLINGS)}")
        param = Param(key, line, min=low, max=high, step=value.get("step"), sampling=sampling)
    else:
        raise _error(path, line, f"{key}: expected a list of choices or a range {{min: ..., max: ...}}")
    try:
        param.declare(keras_tuner.HyperParameters())
    except (ValueError, TypeError) as error:  # log sampling from 0, choices of mixed types
        raise _error(path, line, f"{key}: {' '.join(str(error).split())}") from None
    return param


def _check_against_config(search):
    """Loads the base config, then once per sample value of each key; returns the base config."""
    config = load_config(search.base, search.overrides)
    if config.data.validation_split <= 0:
        raise ConfigError(
            f"{search.path}: objective {search.objective} needs a validation split (data.validation_split)"
        )
    for param in search.params:
        if param.key in ("output_dir", "run_name") or (param.key == "train.epochs" and search.algorithm == "hyperband"):
            what = "Hyperband sets it per trial" if param.key == "train.epochs" else "tfrnn tune sets it per trial"
            raise _error(search.path, param.line, f"{param.key}: {what}")
        for value in param.samples:
            item = _override(param.key, value)
            try:
                trial = search.config({param.key: value})
            except ConfigError as error:
                message = str(error).removeprefix(f"override {item!r}: ")
                message = message if message.startswith(param.key) else f"{param.key}: {message}"
                raise _error(search.path, param.line, message) from None
            if trial.data.validation_split <= 0:
                raise _error(search.path, param.line, f"{item}: the objective needs a validation split")
    return config


def _oracle(search, base_config):
    """The keras-tuner oracle of `search`, its space declared."""
    hyperparameters = keras_tuner.HyperParameters()
    for param in search.params:
        param.declare(hyperparameters)
    common = dict(
        objective=keras_tuner.Objective(search.objective, search.direction),
        hyperparameters=hyperparameters,
        seed=search.seed,
        tune_new_entries=False,
        allow_new_entries=False,
        max_consecutive_failed_trials=MAX_CONSECUTIVE_FAILURES,
    )
    if search.algorithm == "hyperband":
        oracle = keras_tuner.oracles.HyperbandOracle(
            max_epochs=base_config.train.epochs, factor=HYPERBAND_FACTOR, **common
        )
        oracle.max_trials = search.trials  # None: the whole schedule
    else:
        oracle = ALGORITHMS[search.algorithm](max_trials=search.trials, **common)
    oracle.verbose = 0  # tfrnn logs the trials itself
    return oracle


def _describe(search):
    """What must not change between a search and its resumption (JSON)."""
    described = dataclasses.asdict(dataclasses.replace(search, trials=None, path=search.path.resolve()))
    described["base"] = None if search.base is None else str(search.base.resolve())
    return json.dumps(described, indent=2, default=str) + "\n"


class _RunTuner(keras_tuner.engine.base_tuner.BaseTuner):
    """Runs each trial as a `tfrnn train` run in TUNE_DIR/trials and keeps the results current."""

    def __init__(self, space, tune_dir, log, **kwargs):  # `search` is BaseTuner's method
        self.space, self.tune_dir, self.log = space, Path(tune_dir), log
        super().__init__(**kwargs)

    def on_trial_begin(self, trial):
        values = _space_values(self.space, trial)
        total = f"/{self.space.trials}" if self.space.trials else ""
        settings = " ".join(f"{key}={_short(value)}" for key, value in values.items())
        epochs = trial.hyperparameters.values.get("tuner/epochs")
        self.log(
            f"trial {trial.trial_id} ({len(self.oracle.trials)}{total}): {settings}"
            + (f" for {epochs} epochs" if epochs else "")
        )

    def run_trial(self, trial):
        paths = RunPaths(self.tune_dir / "trials" / trial.trial_id)
        if not paths.metrics.exists():  # not finished: a killed search's half-made run starts over
            shutil.rmtree(paths.root, ignore_errors=True)
            try:
                config = self.space.config(
                    trial.hyperparameters.values,
                    _override("output_dir", str(paths.root.parent)),
                    f"run_name={paths.root.name}",
                )
                train(config, log=lambda message: self.log(f"    {message}"))
            except Interrupted:  # through keras-tuner, which would count it as a failed trial
                raise KeyboardInterrupt from None
            except TfrnnError as error:  # values that clash (settings checked together), bad data
                raise keras_tuner.errors.FailedTrialError(str(error)) from None
        config = self.space.config(trial.hyperparameters.values)
        metrics = json.loads(paths.metrics.read_text(encoding="utf-8"))
        return {
            self.space.objective: _objective(paths, self.space.objective, config.train.monitor),
            "epochs": metrics["epochs_run"],
            "seconds": metrics["train_seconds"],
        }

    def on_trial_end(self, trial):
        try:
            super().on_trial_end(trial)  # the oracle records it (and stops after failures in a row)
        finally:
            self._report(self.oracle.get_trial(trial.trial_id))

    def _report(self, trial):
        """Logs a trial's end; rewrites the tables, best.yaml and the trial's HParams run."""
        if trial.status == keras_tuner.engine.trial.TrialStatus.COMPLETED:
            _write_trial_hparams(self.tune_dir / "hparams", self.space, trial)
            best = ranked(self.space, self.oracle.trials.values())[0]
            self.log(
                f"trial {trial.trial_id}: {self.space.objective} {trial.score:.4f} after "
                f"{int(_metric(trial, 'epochs'))} epochs in {_metric(trial, 'seconds'):.0f}s "
                f"(best {best.score:.4f}, trial {best.trial_id})"
            )
        else:
            self.log(f"trial {trial.trial_id} failed: {_last_line(trial.message)}")
        write_results(self.tune_dir, self.space, list(self.oracle.trials.values()))


def make_tuner(search, base_config, tune_dir, log):
    """The tuner of a search in `tune_dir`: a new one, or the one saved there (its oracle's state).

    Args:
        search: SearchSpace. The space.
        base_config: RunConfig. Its base config (Hyperband's max_epochs is its train.epochs).
        tune_dir: Path. The search's folder; the oracle's state is in tune_dir/oracle.
        log: callable. Receives progress messages.

    Returns:
        A keras_tuner BaseTuner whose `search()` runs the trials.
    """
    with contextlib.redirect_stdout(io.StringIO()):  # keras-tuner's "Reloading Tuner from ..."
        tuner = _RunTuner(
            search, tune_dir, log, oracle=_oracle(search, base_config), directory=str(tune_dir), project_name="oracle"
        )
    tuner.save()  # a search killed in its first trial resumes too
    return tuner


def _space_values(search, trial):
    values = trial.hyperparameters.values
    return {param.key: values[param.key] for param in search.params if param.key in values}


def _last_line(message):
    """The last line of a trial's traceback, without the exception's class."""
    lines = (message or "").strip().splitlines() or ["no message"]
    return re.sub(r"^[\w.]+: ", "", lines[-1])


def _short(value):
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _metric(trial, name):
    return trial.metrics.get_last_value(name)


def _objective(paths, objective, monitor):
    """The validation `objective` at the epoch the run kept: the best by its `monitor`."""
    history = history_from_csv(paths.history)
    pick = max if "accuracy" in monitor else min
    kept = pick(range(len(history[monitor])), key=history[monitor].__getitem__)
    return history[objective][kept]


def _staged_folder(final):
    """A fresh dot-folder beside `final`, to be renamed to it once written."""
    staging = final.with_name(f".{final.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    return staging


def _write_hparams_config(folder, search):
    """The HParams dashboard's columns (the space and the objective), once per search."""
    if folder.exists():
        return
    staging = _staged_folder(folder)
    writer = tf.summary.create_file_writer(str(staging))
    with writer.as_default():
        hparams_api.hparams_config(
            hparams=[param.hparam() for param in search.params],
            metrics=[hparams_api.Metric(search.objective, display_name=search.objective)],
        )
    writer.close()
    os.replace(staging, folder)


def _write_trial_hparams(folder, search, trial):
    """One HParams run per finished trial: its values and its objective."""
    final = folder / trial.trial_id
    if final.exists():
        return
    staging = _staged_folder(final)
    writer = tf.summary.create_file_writer(str(staging))
    with writer.as_default():
        hparams_api.hparams(_space_values(search, trial), trial_id=trial.trial_id)
        tf.summary.scalar(search.objective, trial.score, step=0)
    writer.close()
    os.replace(staging, final)


def ranked(search, trials):
    """The finished trials, best first (ties: in trial order)."""
    sign = -1 if search.direction == "max" else 1
    done = keras_tuner.engine.trial.TrialStatus.COMPLETED
    return sorted((t for t in trials if t.status == done), key=lambda t: (sign * t.score, _number(t)))


def _number(trial):
    return int(trial.trial_id)


def write_results(tune_dir, search, trials):
    """TUNE_DIR/results.csv and results.md (finished trials best first, then failed ones) and
    best.yaml (the best trial's config).

    Args:
        tune_dir: Path. The search's folder.
        search: SearchSpace. The space.
        trials: list of keras_tuner Trial. The oracle's trials (running ones are left out).
    """
    done = keras_tuner.engine.trial.TrialStatus.COMPLETED
    finished = ranked(search, trials)
    failed = sorted((t for t in trials if t.status == keras_tuner.engine.trial.TrialStatus.FAILED), key=_number)
    header = ["trial", "status", *(p.key for p in search.params), search.objective, "epochs", "seconds", "run_dir"]
    rows = []
    for trial in [*finished, *failed]:
        values = _space_values(search, trial)
        completed = trial.status == done
        rows.append(
            [
                trial.trial_id,
                "completed" if completed else "failed",
                *(values.get(p.key, "") for p in search.params),
                trial.score if completed else "",
                int(_metric(trial, "epochs")) if completed else "",
                round(_metric(trial, "seconds"), 1) if completed else "",
                str(Path(tune_dir) / "trials" / trial.trial_id),
            ]
        )
    table = io.StringIO()
    csv.writer(table, lineterminator="\n").writerows([header, *rows])
    atomic_write_text(Path(tune_dir) / "results.csv", table.getvalue())
    markdown = [
        f"{search.algorithm} search, objective {search.objective} ({search.direction}), best first\n",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(_short(cell) for cell in row) + " |" for row in rows),
    ]
    atomic_write_text(Path(tune_dir) / "results.md", "\n".join(markdown) + "\n")
    if finished:
        write_best_config(Path(tune_dir) / "best.yaml", search, finished[0])


def write_best_config(path, search, trial):
    """The best trial's full config as YAML that `tfrnn train -c` takes: without what a run
    resolves (run_name, tfrnn_version) nor, with `init_from`, what the pretrained run decides."""
    config = search.config(trial.hyperparameters.values)
    data = as_dict(config)
    for name in ("run_name", "tfrnn_version"):
        data.pop(name)
    if config.init_from is not None:
        kind = config.model.kind
        for name in INIT_FROM_FIELDS[kind]:
            data["model"][kind].pop(name, None)
        for key in CLEANING:
            section, name = key.split(".")
            data[section].pop(name)
    note = (
        f"# tfrnn tune {search.path}: trial {trial.trial_id}, {search.objective} {trial.score:.4f}\n"
        f"# train it: tfrnn train -c {path}\n"
    )
    atomic_write_text(path, note + yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def tune(space_path, trials=None, algorithm=None, output_dir=None, resume=False, log=print):
    """Runs (or, with `resume`, continues) a hyperparameter search.

    Args:
        space_path: str or Path. The search space file.
        trials: int or None. Overrides the file's `trials`; raising it on resume extends a search.
        algorithm: str or None. Overrides the file's `algorithm`.
        output_dir: str, Path or None. The search's folder; None: tunes/<space file's stem>.
        resume: bool. Continue the search in `output_dir`.
        log: callable. Receives progress messages (one line each).

    Returns:
        TuneResult.

    Raises:
        ConfigError: a bad space file (before anything is written); the folder exists (without
            `resume`) or holds no search or another space (with it).
        Interrupted: Ctrl-C; the message says how to resume.
        TfrnnError: the search stopped after MAX_CONSECUTIVE_FAILURES failed trials in a row.
    """
    search, base_config = read_space(space_path, trials, algorithm)
    tune_dir = Path(output_dir or Path("tunes") / search.path.stem)
    described = tune_dir / "search.json"
    if resume:
        if not described.exists():
            raise ConfigError(f"{tune_dir}: no search to resume ({described.name} missing)")
        if described.read_text(encoding="utf-8") != _describe(search):
            raise ConfigError(f"{tune_dir}: the search space differs from the one this search started with")
    elif tune_dir.exists():
        raise ConfigError(f"{tune_dir}: already exists; continue that search with --resume, or pick another folder")
    # -- nothing is written before this line --
    tune_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(described, _describe(search))
    _write_hparams_config(tune_dir / "hparams", search)
    tuner = make_tuner(search, base_config, tune_dir, log)
    budget = f"{search.trials} trials" if search.trials else "the whole Hyperband schedule"
    log(
        f"{'resuming' if resume else 'starting'} a {search.algorithm} search ({budget}) over "
        f"{', '.join(p.key for p in search.params)} in {tune_dir}"
    )
    try:
        tuner.search()
    except KeyboardInterrupt:
        raise Interrupted(
            f"interrupted; continue with: tfrnn tune -c {search.path} --output-dir {tune_dir} --resume"
        ) from None
    except RuntimeError as error:  # keras-tuner stops after failed trials in a row
        raise TfrnnError(
            f"the search stopped: {MAX_CONSECUTIVE_FAILURES} trials in a row failed, the last with: "
            f"{_last_line(str(error))} (each trial's error: {tune_dir}/oracle/trial_*/trial.json)"
        ) from None
    write_results(tune_dir, search, list(tuner.oracle.trials.values()))
    completed = ranked(search, tuner.oracle.trials.values())
    best = completed[0] if completed else None
    result = TuneResult(tune_dir, len(completed), best and best.trial_id, best and float(best.score))
    if best:
        log(
            f"done: {len(completed)} trials; best {search.objective} {best.score:.4f} (trial {best.trial_id}); "
            f"results: {tune_dir / 'results.md'}; config: {tune_dir / 'best.yaml'}"
        )
    else:
        log(f"done: no trial finished; see {tune_dir / 'results.md'}")
    return result
