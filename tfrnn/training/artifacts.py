"""The run directory: what a training run writes and how it is read back.

    RUN/config.yaml                resolved config (labels filled in)
    RUN/model.keras                the model (best val_loss when validating)
    RUN/vocabulary.txt             the encoder's vocabulary (words, characters or WordPiece), one token a line
    RUN/metrics.json               validation (and test) metrics, epochs, timings
    RUN/classification_report.txt  scikit-learn's report on the evaluation split
    RUN/training_curves.png        loss and accuracy per epoch
    RUN/confusion_matrix.png       on the evaluation split
    RUN/history.csv                per-epoch logs
    RUN/logs/                      TensorBoard
    RUN/backup/                    BackupAndRestore state while a run is unfinished
"""

import json
from pathlib import Path

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
        self.vocabulary = self.root / "vocabulary.txt"
        self.metrics = self.root / "metrics.json"
        self.report = self.root / "classification_report.txt"
        self.curves = self.root / "training_curves.png"
        self.confusion = self.root / "confusion_matrix.png"
        self.history = self.root / "history.csv"
        self.logs = self.root / "logs"
        self.backup = self.root / "backup"



def write_json(path, data):
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def open_run(run_dir):
    """Checks that `run_dir` holds a finished run and returns its paths and config.

    Args:
        run_dir: str or Path. A directory written by `tfrnn train`.

    Returns:
        (RunPaths, RunConfig).

    Raises:
        ConfigError: the directory or one of its files is missing.
    """
    paths = RunPaths(Path(run_dir))
    if not paths.root.is_dir():
        raise ConfigError(f"{paths.root}: run directory not found")
    for required in (paths.config, paths.model, paths.vocabulary):
        if not required.is_file():
            raise ConfigError(f"{required}: missing; is {paths.root} a finished tfrnn run?")
    return paths, load_config(paths.config)
