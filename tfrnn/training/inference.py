"""`tfrnn evaluate`: a finished run on labelled data."""

from pathlib import Path

from tfrnn import data
from tfrnn.config import load_config
from tfrnn.errors import ConfigError
from tfrnn.runs import load_run, write_json
from tfrnn.training import reports


def _unused_path(folder, stem, suffix):
    """folder/stem.suffix, or stem-2, stem-3, ... when taken: an evaluation never overwrites another."""
    path, number = folder / f"{stem}{suffix}", 1
    while path.exists():
        number += 1
        path = folder / f"{stem}-{number}{suffix}"
    return path


def evaluate_run(run_dir, overrides=(), name=None):
    """Evaluates a run on labelled data and writes RUN/evaluations/NAME.json (NAME-2.json, ...
    when that exists already).

    Args:
        run_dir: str or Path. A finished run.
        overrides: iterable of str. Dotted `data.*` overrides choosing the data (e.g.
            `data.source=file`, `data.test_path=reviews.csv`); by default the run's test split.
        name: str or None. Name of the evaluation file; defaults to the data file's stem.

    Returns:
        dict of metrics (accuracy, macro_f1, confusion_matrix, report, data, written_to, ...).

    Raises:
        ConfigError: an override outside `data.*`, or one the run's config refuses.
    """
    overrides = list(overrides)
    for item in overrides:
        if not item.startswith("data."):
            raise ConfigError(f"override {item!r}: evaluate takes data.* settings only")
    run = load_run(run_dir)
    data_config = load_config(run.paths.config, overrides).data  # labels: the run's, in its order
    examples = data.load_examples(data_config, "test")
    result = reports.classification_metrics(examples.labels, run.probabilities(examples.texts), run.label_names)
    result["data"] = examples.source
    name = name or Path(data_config.test_path or data_config.source).stem
    run.paths.evaluations.mkdir(exist_ok=True)
    target = _unused_path(run.paths.evaluations, name, ".json")
    write_json(target, result)
    result["written_to"] = str(target)
    return result
