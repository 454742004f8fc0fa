"""`tfrnn evaluate`: a finished run on labelled data."""

from pathlib import Path

from tfrnn import data
from tfrnn.config import load_config
from tfrnn.errors import ConfigError
from tfrnn.runs import load_run, write_json
from tfrnn.training import reports


def unused_path(folder, stem, suffix):
    """folder/stem.suffix, or stem-2, stem-3, ... when taken: an evaluation never overwrites another.

    Args:
        folder: Path. Where the file goes.
        stem: str. The file's name without its suffix.
        suffix: str. Its ending, with the dot.

    Returns:
        Path.
    """
    path, number = folder / f"{stem}{suffix}", 1
    while path.exists():
        number += 1
        path = folder / f"{stem}-{number}{suffix}"
    return path


def check_data_overrides(overrides):
    """The overrides as a list; ConfigError for one outside `data.*` (evaluate reads the run's model)."""
    overrides = list(overrides)
    for item in overrides:
        if not item.startswith("data."):
            raise ConfigError(f"override {item!r}: evaluate takes data.* settings only")
    return overrides


def evaluation_data(config_path, overrides):
    """The data settings an evaluation reads: a run's, with `data.*` overrides.

    Args:
        config_path: str or Path. The run's config.yaml (its labels, in its order).
        overrides: iterable of str. Dotted `data.*` overrides.

    Returns:
        DataConfig.

    Raises:
        ConfigError: an override outside `data.*`, or one the run's config refuses.
    """
    return load_config(config_path, check_data_overrides(overrides)).data


def evaluation_name(data_config):
    """The evaluation file's default stem: the data file's, else the source's name."""
    return Path(data_config.test_path or data_config.source).stem


def evaluate_run(run_dir, overrides=(), name=None, to=None):
    """Evaluates a run on labelled data and writes RUN/evaluations/NAME.json (NAME-2.json, ...
    when that exists already), or `to`.

    Args:
        run_dir: str or Path. A finished run.
        overrides: iterable of str. Dotted `data.*` overrides choosing the data (e.g.
            `data.source=file`, `data.test_path=reviews.csv`); by default the run's test split.
        name: str or None. Name of the evaluation file; defaults to the data file's stem.
        to: str, Path or None. The JSON file to write instead (replaced if it exists).

    Returns:
        dict of metrics (accuracy, macro_f1, confusion_matrix, report, data, written_to, ...).

    Raises:
        ConfigError: an override outside `data.*`, or one the run's config refuses.
    """
    overrides = check_data_overrides(overrides)  # before loading the model
    run = load_run(run_dir)
    data_config = evaluation_data(run.paths.config, overrides)
    examples = data.load_examples(data_config, "test")
    result = reports.classification_metrics(examples.labels, run.probabilities(examples.texts), run.label_names)
    result["data"] = examples.source
    if to is None:
        run.paths.evaluations.mkdir(exist_ok=True)
        to = unused_path(run.paths.evaluations, name or evaluation_name(data_config), ".json")
    write_json(to, result)
    result["written_to"] = str(to)
    return result
