"""Using a finished run: load it, predict texts, evaluate on labelled data."""

import dataclasses
from pathlib import Path

import keras
import numpy as np

from tfrnn import data
from tfrnn.config import load_config
from tfrnn.training import reports
from tfrnn.training.artifacts import open_run, write_json


def predict_probabilities(model, examples, encoder, data_config):
    """Class probabilities for `examples`, in their order.

    Args:
        model: keras.Model. A classifier over token ids.
        examples: tfrnn.data.Examples. The texts (labels are ignored).
        encoder: WordEncoder or WordPieceEncoder. The run's text encoder.
        data_config: tfrnn.config.DataConfig. Batch size and max_len.

    Returns:
        np.ndarray (n, num_classes).
    """
    dataset = data.make_dataset(examples, encoder, data_config, training=False)
    return model.predict(dataset.map(lambda inputs, _: inputs), verbose=0)


@dataclasses.dataclass
class LoadedRun:
    """A finished run, ready to predict.

    Args:
        paths: RunPaths. Where its files are.
        config: RunConfig. Its resolved config.
        model: keras.Model. The classifier over the encoder's inputs.
        encoder: WordEncoder or WordPieceEncoder. Its text encoder.
    """

    paths: object
    config: object
    model: keras.Model
    encoder: object

    @property
    def label_names(self):
        return list(self.config.data.labels)

    def probabilities(self, examples):
        """Class probabilities (n, num_classes) for `examples`, in their order."""
        return predict_probabilities(self.model, examples, self.encoder, self.config.data)

    def predict(self, texts):
        """Predicts raw texts.

        Args:
            texts: list of str. Raw texts; the encoder cleans them as in training.

        Returns:
            list of dicts: text, label, probabilities (label name -> probability).
        """
        examples = data.Examples(
            texts=list(texts),
            labels=np.zeros(len(texts), "int32"),
            label_names=self.label_names,
            source="input",
            skipped_blank=0,
        )
        probabilities = self.probabilities(examples)
        return [
            {
                "text": text,
                "label": self.label_names[int(np.argmax(p))],
                "probabilities": dict(zip(self.label_names, map(float, p))),
            }
            for text, p in zip(texts, probabilities)
        ]


def _unused_path(folder, stem, suffix):
    """folder/stem.suffix, or stem-2, stem-3, ... when taken: an evaluation never overwrites another."""
    path, number = folder / f"{stem}{suffix}", 1
    while path.exists():
        number += 1
        path = folder / f"{stem}-{number}{suffix}"
    return path


def load_run(run_dir):
    """Loads a finished run directory.

    Args:
        run_dir: str or Path. A directory written by `tfrnn train`.

    Returns:
        LoadedRun.
    """
    paths, config = open_run(run_dir)
    model = keras.saving.load_model(paths.model)
    encoder = data.load_encoder(paths.vocabulary, config.data)
    return LoadedRun(paths, config, model, encoder)


def evaluate_run(run_dir, overrides=(), name=None):
    """Evaluates a run on labelled data and writes RUN/evaluations/NAME.json (NAME-2.json, ...
    when that exists already).

    Args:
        run_dir: str or Path. A finished run.
        overrides: iterable of str. Dotted `data.*` overrides choosing the data (e.g.
            `data.source=file`, `data.test_path=reviews.csv`); by default the run's test split.
        name: str or None. Name of the evaluation file; defaults to the data file's stem.

    Returns:
        dict of metrics (accuracy, macro_f1, confusion_matrix, report, ...).
    """
    run = load_run(run_dir)
    config = load_config(run.paths.config, overrides)
    config.data.labels = run.label_names  # label ids must mean what they meant in training
    examples = data.load_examples(config.data, "test")
    result = reports.classification_metrics(
        examples.labels, run.probabilities(examples), run.label_names
    )
    result["data"] = examples.source
    name = name or Path(config.data.test_path or config.data.source).stem
    out_dir = run.paths.root / "evaluations"
    out_dir.mkdir(exist_ok=True)
    target = _unused_path(out_dir, name, ".json")
    write_json(target, result)
    result["written_to"] = str(target)
    return result
