"""The run directory: what a training run writes, and reading a finished run back.

RUN/config.yaml                the run spec (tfrnn.config: resolved, labels filled in)
RUN/model.keras                the classifier with its text preprocessor (best epoch by train.monitor)
RUN/adapter.npz                instead of model.keras for a PEFT run (model.peft): the trained weights
                               only, tied to the base checkpoint's fingerprint (tfrnn.models.peft)
RUN/vocabulary.txt             the preprocessor's vocabulary, one token a line, for people to read
RUN/metrics.json               validation (and test) metrics, epochs, timings
RUN/classification_report.txt  scikit-learn's report on the evaluation split
RUN/training_curves.png        loss and accuracy per epoch
RUN/confusion_matrix.png       on the evaluation split
RUN/history.csv                per-epoch logs
RUN/logs/                      TensorBoard
RUN/backup/                    BackupAndRestore state while a run is unfinished
RUN/evaluations/               `tfrnn evaluate` results
"""

import dataclasses
import json
from pathlib import Path

import numpy as np
import yaml
from scipy.special import softmax

from tfrnn import __version__
from tfrnn.config import load_config
from tfrnn.errors import ConfigError
from tfrnn.files import atomic_write_text


class RunPaths:
    """Paths inside one run directory.

    Args:
        root: str or Path. The run directory.
    """

    def __init__(self, root):
        self.root = Path(root)
        self.config = self.root / "config.yaml"
        self.model = self.root / "model.keras"
        self.adapter = self.root / "adapter.npz"
        self.vocabulary = self.root / "vocabulary.txt"
        self.metrics = self.root / "metrics.json"
        self.report = self.root / "classification_report.txt"
        self.curves = self.root / "training_curves.png"
        self.confusion = self.root / "confusion_matrix.png"
        self.history = self.root / "history.csv"
        self.logs = self.root / "logs"
        self.backup = self.root / "backup"
        self.evaluations = self.root / "evaluations"


def write_json(path, data):
    """Writes `data` as indented JSON, atomically."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def read_spec(run_dir):
    """The paths and run spec of a run directory (finished or not).

    Args:
        run_dir: str or Path. A directory written by `tfrnn train`.

    Returns:
        (RunPaths, RunConfig).

    Raises:
        ConfigError: no such directory, no config.yaml, or one this tfrnn cannot read (naming
            its file and line, and the tfrnn that wrote it when that differs).
    """
    paths = RunPaths(Path(run_dir))
    if not paths.root.is_dir():
        raise ConfigError(f"{paths.root}: run directory not found")
    if not paths.config.is_file():
        raise ConfigError(f"{paths.config}: missing; is {paths.root} a tfrnn run directory?")
    try:
        return paths, load_config(paths.config, task=_task(paths.config))
    except ConfigError as error:
        raise ConfigError(f"{error}{_written_by(paths.config)}", error.key) from None


def _task(config_path):
    """config.yaml's `task` ("pretrain" for a language model), else "train" (a classifier)."""
    try:
        spec = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):  # load_config reports it, with the line
        return "train"
    task = spec.get("task") if isinstance(spec, dict) else None
    return "pretrain" if task == "pretrain" else "train"


def _written_by(config_path):
    """`' (written by tfrnn X; this is tfrnn Y)'` when the run's config names another tfrnn, or
    names none (tfrnn 0.1 did not), else ''."""
    try:
        spec = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):  # the error being reported says why
        return ""
    written = spec.get("tfrnn_version") if isinstance(spec, dict) else None
    if written == __version__:
        return ""
    return f" (written by tfrnn {written or '0.1 or older'}; this is tfrnn {__version__})"


@dataclasses.dataclass(frozen=True)
class LoadedRun:
    """A finished run, ready to predict.

    Args:
        paths: RunPaths. Where its files are.
        spec: RunConfig. Its run spec.
        model: tfrnn.models.base.Classifier. The classifier, which owns its preprocessor.
    """

    paths: RunPaths
    spec: object
    model: object

    @property
    def label_names(self):
        return list(self.spec.data.labels)

    def probabilities(self, texts):
        """Class probabilities `(n, num_classes)` for raw texts, in their order."""
        return predict_probabilities(self.model, texts, self.spec.data.batch_size)

    def predict(self, texts):
        """Predicts raw texts.

        Args:
            texts: list of str. Raw texts; the model's preprocessor cleans them as in training.

        Returns:
            list of dicts: text, label, probabilities (label name -> probability).
        """
        probabilities = self.probabilities(list(texts))
        return [
            {
                "text": text,
                "label": self.label_names[int(np.argmax(p))],
                "probabilities": dict(zip(self.label_names, map(float, p))),
            }
            for text, p in zip(texts, probabilities)
        ]


def predict_probabilities(model, texts, batch_size=32):
    """Class probabilities of a classifier for raw texts, in their order.

    Args:
        model: tfrnn.models.base.Classifier. Owns its preprocessor.
        texts: list of str. Raw texts.
        batch_size: int. Texts per batch.

    Returns:
        np.ndarray `(n, num_classes)`, float32.
    """
    if not texts:
        return np.zeros((0, model.output_shape[-1]), np.float32)
    logits = model.predict(list(texts), batch_size=batch_size, verbose=0)  # (n, num_classes)
    return softmax(np.asarray(logits, np.float32), axis=-1)


def load_run(run_dir):
    """Loads a finished run directory, of any model kind, in any process.

    Args:
        run_dir: str or Path. A directory written by `tfrnn train`.

    Returns:
        LoadedRun.

    Raises:
        ConfigError: the directory is not a finished run, or this tfrnn cannot load its model.
    """
    paths, spec = read_spec(run_dir)
    if spec.task == "pretrain":
        raise ConfigError(
            f"{paths.root}: a language model (tfrnn pretrain), not a classifier; fine-tune one on it with "
            f"tfrnn train --init-from {paths.root}"
        )
    if spec.model.peft.method is not None:
        return LoadedRun(paths, spec, _rebuild_peft_model(paths, spec))
    return LoadedRun(paths, spec, _load_model_file(paths, "train"))


def _load_model_file(paths, command, compile=True):
    """RUN/model.keras with its preprocessor (and, with `compile`, its optimizer's state);
    ConfigError when missing or unreadable."""
    if not paths.model.is_file():
        raise ConfigError(
            f"{paths.model}: missing; has the run in {paths.root} finished? (tfrnn {command} --resume {paths.root})"
        )
    import keras  # tfrnn registered its classes with Keras when it was imported (tfrnn.saving)

    try:
        model = keras.saving.load_model(paths.model, compile=compile)
    except Exception as error:  # a damaged file, or one of another tfrnn's classes
        reason = " ".join(str(error).split("\n")[0].split())[:300]
        raise ConfigError(
            f"{paths.model}: cannot be loaded ({type(error).__name__}: {reason}){_written_by(paths.config)}"
        ) from None
    if getattr(model, "preprocessor", None) is None:
        raise ConfigError(f"{paths.model}: the model has no text preprocessor{_written_by(paths.config)}")
    return model


def load_pretrained(run_dir, kind, option="init_from"):
    """A finished `tfrnn pretrain` run, to build on (`init_from`).

    Args:
        run_dir: str or Path. The pretrain run directory.
        kind: str. The model kind that will be built on it ("rnn" or "bert").
        option: str. How the user named the run, for errors.

    Returns:
        tfrnn.pretrained.PretrainedRun.

    Raises:
        ConfigError: not a run directory, a classifier run, a run of another kind, unfinished.
    """
    from tfrnn.pretrained import PretrainedRun

    try:
        paths, spec = read_spec(run_dir)
    except ConfigError as error:
        raise ConfigError(f"{option}: {error}", option) from None
    if spec.task != "pretrain":
        raise ConfigError(
            f"{option}={run_dir}: a classifier run (tfrnn train), not a language model (tfrnn pretrain)", option
        )
    if spec.model.kind != kind:
        raise ConfigError(
            f"{option}={run_dir}: a model.kind={spec.model.kind} language model; this run is model.kind={kind}", option
        )
    if not paths.metrics.is_file():
        raise ConfigError(f"{option}={run_dir}: unfinished; finish it with tfrnn pretrain --resume {run_dir}", option)
    return PretrainedRun(paths, spec, _load_model_file(paths, "pretrain", compile=False))


def _rebuild_peft_model(paths, spec):
    """A PEFT run's classifier: the base checkpoint's encoder, the method applied, the adapter
    file's weights loaded (checked against the base's fingerprint)."""
    if not paths.adapter.is_file():
        raise ConfigError(
            f"{paths.adapter}: missing; has the run in {paths.root} finished? (tfrnn train --resume {paths.root})"
        )
    from tfrnn.data import make_preprocessor
    from tfrnn.models import build_classifier
    from tfrnn.models.peft import apply_peft, load_adapter

    if spec.init_from is not None:  # the encoder of a `tfrnn pretrain` run
        base = load_pretrained(spec.init_from, spec.model.kind)
        preprocessor = base.preprocessor_for(spec.data.max_len)
    else:
        from tfrnn.models.bert import read_checkpoint

        base = read_checkpoint(spec.model.bert.checkpoint)
        preprocessor = make_preprocessor(spec, [], base)
    model = build_classifier(spec.model, preprocessor, len(spec.data.labels), base)
    apply_peft(model, spec.model.peft)
    load_adapter(model, paths.adapter)
    return model
