"""`tfrnn ensemble`: finished runs -> one versioned SavedModel that averages their probabilities,
and `tfrnn evaluate` on such an export (the ensemble beside each member).

Layout and versioning as `tfrnn.export` (staged in a dot-folder, renamed into place). Each member
keeps its own preprocessing inside the graph, so members may be of any kind (RNN, feedforward,
BERT; PEFT runs merged as `tfrnn.export.export_runs` merges one) as long as they share one label
set. The ensemble's label order is the first member's; the other members' columns are reordered
by label name.

Signatures, each `text` tf.string [-1] -> probabilities, label_id, label (`tfrnn.export`):
    serving_default   the weighted mean of the members' softmax probabilities
    <run name>        one per member (its run directory's name): its own probabilities, in the
                      ensemble's label order, for clients that compare
assets.extra/ holds the first member's config (tfrnn_config.yaml), labels.txt, TF Serving's
warm-up requests and ensemble.json: the labels and each member's run, signature, kind, weight
and labels.
"""

import dataclasses
import json
import math
import sys
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfrnn import data
from tfrnn.errors import ConfigError
from tfrnn.export import (
    check_version,
    custom_ops,
    probabilities_function,
    run_under_tensorflow,
    serving_function,
    staged_version,
    version_folder,
    write_assets_extra,
)
from tfrnn.runs import load_run, read_spec, write_json
from tfrnn.serving.layout import versions
from tfrnn.training import reports
from tfrnn.training.inference import evaluation_data, evaluation_name, unused_path

ENSEMBLE_FILE = "ensemble.json"
DEFAULT_SIGNATURE = "serving_default"


@dataclasses.dataclass(frozen=True)
class Member:
    """One run of an ensemble, checked but not loaded.

    Args:
        paths: tfrnn.runs.RunPaths. Its run directory.
        spec: RunConfig. Its run spec.
        signature: str. Its signature's name (its run directory's name).
        weight: float. Its share of the mean, the members' summing to 1.
    """

    paths: object
    spec: object
    signature: str
    weight: float

    @property
    def label_names(self):
        return list(self.spec.data.labels)

    def describe(self):
        """Its entry in ensemble.json."""
        return {
            "run": str(self.paths.root),
            "signature": self.signature,
            "kind": self.spec.model.kind,
            "peft": self.spec.model.peft.method,
            "weight": self.weight,
            "labels": self.label_names,
        }


def parse_weights(text):
    """`--weights 0.5,0.3,0.2` as floats (checked by `export_ensemble`).

    Args:
        text: str. Numbers separated by commas.

    Returns:
        list of float.

    Raises:
        ConfigError: something that is not a number.
    """
    try:
        return [float(item) for item in text.split(",")]
    except ValueError:
        raise ConfigError(f"--weights {text}: expected numbers separated by commas, e.g. 0.5,0.3,0.2") from None


def _normalised(weights, count):
    """Equal weights when None, else `weights` checked (one per run, finite, positive) over their sum."""
    if weights is None:
        return [1.0 / count] * count
    weights = [float(weight) for weight in weights]
    if len(weights) != count:
        raise ConfigError(f"--weights: {len(weights)} weights for {count} runs; give one per run")
    bad = [weight for weight in weights if not (math.isfinite(weight) and weight > 0)]
    if bad:
        raise ConfigError(f"--weights: {bad[0]:g} is not positive; each weight must be a positive number")
    return [weight / sum(weights) for weight in weights]


def _finished(run_dir):
    """A run's (paths, spec); ConfigError unless it is a finished classifier run."""
    paths, spec = read_spec(run_dir)
    if spec.task == "pretrain":
        raise ConfigError(f"{paths.root}: a language model (tfrnn pretrain), not a classifier; it cannot be a member")
    model_file = paths.adapter if spec.model.peft.method is not None else paths.model
    for needed in (model_file, paths.metrics):
        if not needed.is_file():
            raise ConfigError(
                f"{paths.root}: unfinished (no {needed.name}: still training, or killed); "
                f"finish it with tfrnn train --resume {paths.root}, or leave it out"
            )
    return paths, spec


def _check_label_sets(members):
    first = members[0]
    for member in members[1:]:
        if set(member.label_names) != set(first.label_names):
            raise ConfigError(
                f"{first.paths.root} has labels {', '.join(first.label_names)}; {member.paths.root} has labels "
                f"{', '.join(member.label_names)}: an ensemble's members must share one label set"
            )


def _check_signatures(members):
    for member in members:
        if member.signature == DEFAULT_SIGNATURE:
            raise ConfigError(
                f"{member.paths.root}: a run named {DEFAULT_SIGNATURE}, the ensemble's own signature; "
                "each member's run directory name becomes its signature's: rename the directory"
            )
    names = [member.signature for member in members]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ConfigError(
            f"runs named {', '.join(repeated)} twice: each member's run directory name becomes its signature's"
        )


def check_members(run_dirs, weights=None):
    """The members of an ensemble, checked before anything is loaded or written.

    Args:
        run_dirs: list of str or Path. Directories written by `tfrnn train`.
        weights: list of float or None. One positive weight per run; None: equal weights.

    Returns:
        list of Member, weights normalised to sum 1.

    Raises:
        ConfigError: fewer than 2 runs; a weight count that is not the runs'; a weight <= 0; a
            run directory that is missing, not a classifier's, or unfinished (no model file or
            no metrics.json); label sets that differ; two runs of one name.
    """
    if len(run_dirs) < 2:
        raise ConfigError(f"an ensemble needs at least 2 runs; got {len(run_dirs)}")
    weights = _normalised(weights, len(run_dirs))
    members = []
    for run_dir, weight in zip(run_dirs, weights):
        paths, spec = _finished(run_dir)
        members.append(Member(paths, spec, paths.root.name, weight))
    _check_label_sets(members)
    _check_signatures(members)
    return members


def _probabilities_in_order(run, label_names):
    """Raw text -> `run`'s probabilities with their columns in `label_names`' order."""
    probabilities = probabilities_function(run.model)
    columns = [run.label_names.index(name) for name in label_names]
    if columns == list(range(len(columns))):
        return probabilities
    return lambda text: tf.gather(probabilities(text), columns, axis=1)  # (batch, classes)


def _mean_probabilities(functions, weights):
    """Raw text -> the weighted mean of `functions`' probabilities."""

    def probabilities(text):
        return tf.add_n([weight * function(text) for function, weight in zip(functions, weights)])  # (batch, classes)

    return probabilities


def _serving_archive(runs, members, label_names):
    """The ensemble's signature and one per member, over the members' models and preprocessors."""
    archive = keras.export.ExportArchive()
    functions = []
    for run in runs:
        archive.track(run.model.preprocessor)  # its lookup tables; the weights come with the endpoints (tfrnn.export)
        functions.append(_probabilities_in_order(run, label_names))
    weights = [member.weight for member in members]
    archive.add_endpoint(DEFAULT_SIGNATURE, serving_function(_mean_probabilities(functions, weights), label_names))
    for member, function in zip(members, functions):
        archive.add_endpoint(member.signature, serving_function(function, label_names))
    return archive


def export_ensemble(run_dirs, model_root, weights=None, version=None):
    """Exports finished runs as one SavedModel `model_root/<version>/` whose `serving_default`
    is the weighted mean of their probabilities (module docstring).

    Args:
        run_dirs: list of str or Path. Two or more directories written by `tfrnn train`.
        model_root: str or Path. The model's folder under the export root (saved_models/NAME).
        weights: list of float or None. One positive weight per run, normalised to sum 1;
            None: equal weights.
        version: int or None. The version number; None takes the next free one.

    Returns:
        Path of the written version folder.

    Raises:
        ConfigError: bad members or weights (`check_members`); the version exists already, or
            is not a positive integer. Nothing is written then.
    """
    check_version(version)
    members = check_members(list(run_dirs), weights)
    version_folder(model_root, version)  # refused before loading the models
    if keras.backend.backend() != "tensorflow":
        return run_under_tensorflow(
            "tfrnn.ensemble",
            run_dirs=[str(member.paths.root) for member in members],
            model_root=str(model_root),
            weights=[member.weight for member in members],
            version=version,
        )
    runs = [load_run(member.paths.root) for member in members]
    for run in runs:
        if run.spec.model.peft.method is not None:
            from tfrnn.models.peft import merge_peft

            merge_peft(run.model)  # as export_runs: methods that update weights folded into them
    label_names = members[0].label_names
    target = version_folder(model_root, version)
    with staged_version(target) as staging:
        _serving_archive(runs, members, label_names).write_out(str(staging), verbose=False)
        max_len = max(member.spec.data.max_len for member in members)
        extra = write_assets_extra(staging, members[0].paths.config, label_names, max_len)
        description = {"labels": label_names, "members": [member.describe() for member in members]}
        (extra / ENSEMBLE_FILE).write_text(json.dumps(description, indent=2) + "\n", encoding="utf-8")
    return target


def ensemble_folder(path):
    """The version folder of the ensemble export `path` names, or None when it names none.

    Args:
        path: str or Path. A version folder, or a model folder (its newest complete version).

    Returns:
        Path or None.
    """
    path = Path(path)
    if not (path / "saved_model.pb").is_file():
        found = versions(path)
        path = path / str(found[-1]) if found else None
    if path is None or not (path / "assets.extra" / ENSEMBLE_FILE).is_file():
        return None
    return path


def _signature_probabilities(signature, texts, batch_size):
    """A serving signature's probabilities `(n, classes)` for raw texts, `batch_size` at a time."""
    batches = [
        signature(text=tf.constant(texts[start : start + batch_size], tf.string))["probabilities"].numpy()
        for start in range(0, len(texts), batch_size)
    ]
    return np.concatenate(batches)


def evaluate_ensemble(export_dir, overrides=(), to=None):
    """Evaluates an ensemble export and each of its members on labelled data, through the
    SavedModel's signatures, and writes the results as JSON.

    Args:
        export_dir: str or Path. An ensemble's model folder (its newest version) or version folder.
        overrides: iterable of str. Dotted `data.*` overrides of the first member's config
            (assets.extra/tfrnn_config.yaml), as for a run; by default its test split.
        to: str, Path or None. The JSON file; default MODEL/evaluations/<data>-v<version>.json
            (-2, -3, ... when taken): beside the versions, never in one (TF Serving watches those).

    Returns:
        dict: export, data, labels, ensemble (tfrnn.training.reports.classification_metrics),
        members (signature -> run, kind, weight and its metrics), written_to.

    Raises:
        ConfigError: not an ensemble export; a bad override; `to` inside the version folder.
    """
    version_dir = ensemble_folder(export_dir)
    if version_dir is None:
        raise ConfigError(f"{export_dir}: not an ensemble export (no assets.extra/{ENSEMBLE_FILE})")
    extra = version_dir / "assets.extra"
    if to is not None and Path(to).resolve().is_relative_to(version_dir.resolve()):
        raise ConfigError(f"--to {to}: inside the version folder {version_dir}, which TF Serving watches")
    description = json.loads((extra / ENSEMBLE_FILE).read_text(encoding="utf-8"))
    data_config = evaluation_data(extra / "tfrnn_config.yaml", overrides)
    examples = data.load_examples(data_config, "test")
    if custom_ops(version_dir) and "tensorflow_text" not in sys.modules:  # BERT members' tokenizer ops
        import tensorflow_text  # noqa: F401

    signatures = tf.saved_model.load(str(version_dir)).signatures
    texts, labels = list(examples.texts), description["labels"]

    def metrics(signature):
        probabilities = _signature_probabilities(signatures[signature], texts, data_config.batch_size)
        return reports.classification_metrics(examples.labels, probabilities, labels)

    result = {
        "export": str(version_dir),
        "data": examples.source,
        "labels": labels,
        "ensemble": metrics(DEFAULT_SIGNATURE),
        "members": {
            member["signature"]: {
                **{key: member[key] for key in ("run", "kind", "peft", "weight")},
                **metrics(member["signature"]),
            }
            for member in description["members"]
        },
    }
    if to is None:
        folder = version_dir.parent / "evaluations"
        folder.mkdir(exist_ok=True)
        to = unused_path(folder, f"{evaluation_name(data_config)}-v{version_dir.name}", ".json")
    write_json(to, result)
    result["written_to"] = str(to)
    return result


def evaluation_table(result):
    """`evaluate_ensemble`'s result as a small text table: the ensemble, then each member.

    Args:
        result: dict. What `evaluate_ensemble` returned.

    Returns:
        str, one line a row.
    """
    rows = [("ensemble (weighted mean)", "", result["ensemble"])]
    rows += [(name, f"{member['weight']:.3f}", member) for name, member in result["members"].items()]
    width = max(len(name) for name, _, _ in rows)
    lines = [f"{'signature':<{width}}  {'weight':>6}  {'accuracy':>8}  {'macro F1':>8}"]
    lines += [f"{name:<{width}}  {weight:>6}  {m['accuracy']:>8.4f}  {m['macro_f1']:>8.4f}" for name, weight, m in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    from tfrnn.export import answer_under_tensorflow

    answer_under_tensorflow(export_ensemble)
