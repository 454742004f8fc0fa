"""The callbacks that make a run safe to interrupt and resume as if it never stopped.

Keras' `BackupAndRestore` brings back the weights, the optimizer and the epoch. What else an
epoch leaves behind is kept here, in the backup folder, as the state after N epochs
(`NAME-N.json`, arrays in `.npz` files next to it): early stopping's counter, best value and best
weights; the seed generators' states (dropout masks); the training data's shuffle, which is
replayed. These callbacks must come before `BackupAndRestore` in the callback list: an epoch's
state is written before the backup that says the epoch is done, and the state of the epoch
before is kept, so whichever epoch the backup resumes from, its state is there. A resumed fit
reads the state for the epoch it starts from in its first `on_epoch_begin` (after
`BackupAndRestore` set that epoch in `on_train_begin`).

`model.keras` (`AtomicModelCheckpoint`) and `history.csv` (`ResumableCSVLogger`) stay whole and
in step with the backup too.
"""

import json
import os
import re
from pathlib import Path

import keras
import numpy as np

from tfrnn.files import atomic_path, atomic_write_text


class EpochStates:
    """A callback's state after each epoch: DIR/NAME-N.json, arrays in DIR/NAME-*.npz.

    The last two epochs' states are kept (see the module's docstring); older files go.

    Args:
        folder: str or Path. The backup folder (created when first written).
        name: str. The file names' stem.
    """

    def __init__(self, folder, name):
        self.folder = Path(folder)
        self.name = name

    def _json(self, epochs):
        return self.folder / f"{self.name}-{epochs}.json"

    def write(self, epochs, state):
        """Writes `state` (JSON-able) as the state after `epochs` epochs; drops older states
        and the array files no kept state names (`state["arrays"]`, if set)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self._json(epochs), json.dumps(state))
        kept, named = set(), set()
        for path in self.folder.glob(f"{self.name}-*.json"):
            number = re.fullmatch(rf"{re.escape(self.name)}-(\d+)\.json", path.name)
            if number and int(number.group(1)) < epochs - 1:
                path.unlink(missing_ok=True)
            elif number:
                kept.add(path)
        for path in kept:
            named.add(json.loads(path.read_text(encoding="utf-8")).get("arrays"))
        for path in self.folder.glob(f"{self.name}-*.npz"):
            if path.name not in named:
                path.unlink(missing_ok=True)

    def write_arrays(self, label, arrays):
        """Writes a list of arrays as DIR/NAME-LABEL.npz; returns its file name (for `write`)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{self.name}-{label}.npz"
        with atomic_path(path) as tmp:
            with open(tmp, "xb") as f:
                np.savez(f, *arrays)
        return path.name

    def read(self, epochs):
        """The state after `epochs` epochs, or None when there is none."""
        path = self._json(epochs)
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None

    def read_arrays(self, file_name):
        """The list of arrays `write_arrays` wrote under `file_name`."""
        with np.load(self.folder / file_name) as arrays:
            return [arrays[f"arr_{i}"] for i in range(len(arrays.files))]


class _OnResume(keras.callbacks.Callback):
    """Mixin: calls `self.resume(epoch)` at the first epoch of a fit that starts after epoch 0
    (a fit that `BackupAndRestore` resumes)."""

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._first_epoch = True

    def on_epoch_begin(self, epoch, logs=None):
        super().on_epoch_begin(epoch, logs)
        if getattr(self, "_first_epoch", False):
            self._first_epoch = False
            if epoch > 0:
                self.resume(epoch)

    def resume(self, epoch):
        """Restores what the interrupted fit had after `epoch` epochs."""
        raise NotImplementedError


class AtomicModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """`ModelCheckpoint` (one file, saved at epoch ends) that writes under a temporary name in the
    same folder and renames it into place: a crash while saving leaves the previous file whole.

    Args:
        filepath: str or Path. The model file (`.keras`), or weights (`.weights.h5`).
        **kwargs: passed to `keras.callbacks.ModelCheckpoint` (monitor, save_best_only,
            initial_value_threshold, ...); `save_freq` must stay "epoch".
    """

    def __init__(self, filepath, **kwargs):
        super().__init__(str(filepath), **kwargs)
        if self.save_freq != "epoch":
            raise ValueError(f"save_freq={self.save_freq!r}: AtomicModelCheckpoint saves at epoch ends only")
        self.target = str(filepath)

    def on_epoch_end(self, epoch, logs=None):
        with atomic_path(self.target) as staging:
            self.filepath = str(staging)  # where ModelCheckpoint saves, if this epoch is saved
            try:
                super().on_epoch_end(epoch, logs)
            finally:
                self.filepath = self.target


def write_adapter(model, path):
    """Writes a PEFT model's adapter file (`tfrnn.models.peft.save_adapter`) atomically."""
    from tfrnn.models.peft import save_adapter

    with atomic_path(path) as staging, open(staging, "xb") as f:
        save_adapter(model, f)


class BestAdapterCheckpoint(keras.callbacks.Callback):
    """Writes a PEFT model's adapter file (`tfrnn.models.peft.save_adapter`: the trained weights
    only) at the end of each epoch whose `monitor` is the best so far, atomically, as
    `ModelCheckpoint(save_best_only=True)` does for whole models.

    Args:
        path: str or Path. The adapter file (`.npz`).
        monitor: str. A logged metric; "accuracy" in its name: higher is better, else lower.
        initial_value_threshold: float or None. The best value already seen (a resumed run's).
        every_epoch: bool. Write at every epoch's end, whatever `monitor` says (the last epoch is kept).
    """

    def __init__(self, path, monitor, initial_value_threshold=None, every_epoch=False):
        super().__init__()
        self.path = Path(path)
        self.monitor = monitor
        self.best = initial_value_threshold
        self.higher_is_better = "accuracy" in monitor
        self.every_epoch = every_epoch

    def _improves(self, value):
        if self.best is None or self.every_epoch:
            return True
        return value > self.best if self.higher_is_better else value < self.best

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is not None and self._improves(float(value)):
            self.best = float(value)
            write_adapter(self.model, self.path)


class ResumableEarlyStopping(_OnResume, keras.callbacks.EarlyStopping):
    """`EarlyStopping` whose state (patience counter, best value and epoch, best weights) carries
    over to a resumed fit, kept in `folder` after each epoch (see `EpochStates`).

    Args:
        folder: str or Path. The backup folder.
        **kwargs: passed to `keras.callbacks.EarlyStopping`.
    """

    def __init__(self, folder, **kwargs):
        super().__init__(**kwargs)
        self.states = EpochStates(folder, "early_stopping")
        self._saved_best = None  # (best_epoch, file name) of the best weights on disk

    def resume(self, epoch):
        state = self.states.read(epoch)
        if state is None:  # a backup from before this callback: start afresh, as Keras does
            return
        self.wait, self.best, self.best_epoch = state["wait"], state["best"], state["best_epoch"]
        self.stopped_epoch = state["stopped_epoch"]
        if state["arrays"]:
            self.best_weights = self.states.read_arrays(state["arrays"])
            self._saved_best = (self.best_epoch, state["arrays"])

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        arrays = None
        if self.best_weights is not None:
            if self._saved_best is None or self._saved_best[0] != self.best_epoch:
                self._saved_best = (
                    self.best_epoch,
                    self.states.write_arrays(f"best-{self.best_epoch}", self.best_weights),
                )
            arrays = self._saved_best[1]
        best = None if self.best is None else float(self.best)
        state = dict(wait=self.wait, best=best, best_epoch=self.best_epoch, stopped_epoch=self.stopped_epoch)
        self.states.write(epoch + 1, {**state, "arrays": arrays})


class ResumableRandomState(_OnResume):
    """The random state a resumed fit needs to go on as the uninterrupted fit would.

    - The seed generators' states (dropout masks: `model.variables` that are not weights), kept
      in `folder` after each epoch and restored.
    - The training data's order. A seeded `tf.data` shuffle draws a new order each time the
      dataset is iterated, from a sequence that starts again in a new process: epoch N's order
      is that of the (N + k)-th pass since the dataset was made (k passes before training, the
      same in every process). A resumed fit starting at epoch N first makes the N passes the
      interrupted process made, so epoch N gets the order it had in an uninterrupted run.

    Args:
        folder: str or Path. The backup folder.
        train_data: tf.data.Dataset or None. The dataset `fit` iterates (finite, one pass an
            epoch); None: no replay (a repeated dataset, whose passes are not epochs).
    """

    def __init__(self, folder, train_data=None):
        super().__init__()
        self.states = EpochStates(folder, "random_state")
        self.train_data = train_data

    def _seed_states(self):
        weights = {id(w) for w in self.model.weights}
        return [v for v in self.model.variables if id(v) not in weights]

    def on_epoch_end(self, epoch, logs=None):
        variables = self._seed_states()
        arrays = self.states.write_arrays(str(epoch + 1), [keras.ops.convert_to_numpy(v) for v in variables])
        self.states.write(epoch + 1, {"shapes": [list(v.shape) for v in variables], "arrays": arrays})

    def resume(self, epoch):
        state = self.states.read(epoch)
        if state is not None:
            variables = self._seed_states()
            if state["shapes"] != [list(v.shape) for v in variables]:  # names are numbered per process
                raise ValueError(f"the model's seed generators differ from the backup's: {state['shapes']}")
            for variable, value in zip(variables, self.states.read_arrays(state["arrays"])):
                variable.assign(value)
        if self.train_data is not None:
            for _ in range(epoch):
                for _ in self.train_data:
                    pass


class ResumableCSVLogger(_OnResume, keras.callbacks.CSVLogger):
    """`CSVLogger` (appending) that, when a fit resumes at epoch N, first drops the rows of
    epochs N and later: those of an epoch logged but not backed up before an interruption.

    Args:
        filename: str or Path. The CSV file.
    """

    def __init__(self, filename):
        super().__init__(str(filename), append=True)

    def resume(self, epoch):
        self._truncate(epoch)

    def _truncate(self, epoch):
        """Cuts the file before its first row of an epoch >= `epoch` (in place: the logger's
        appending handle stays valid)."""
        self.csv_file.flush()
        with open(self.filename, "rb") as f:
            lines = f.read().split(b"\n")
        keep = 0
        for index, line in enumerate(lines):
            first = line.split(b",", 1)[0]
            if index > 0 and first.isdigit() and int(first) >= epoch:
                break
            keep += len(line) + 1
        size = os.path.getsize(self.filename)
        if keep < size:
            os.truncate(self.filename, keep)
