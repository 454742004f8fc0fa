"""`tfrnn pretrain`: unlabelled text -> run spec -> preprocessor + language model -> model.fit -> run directory.

The run directory is laid out as `tfrnn train`'s (`tfrnn.runs.RunPaths`): config.yaml (the spec,
`task: pretrain`), vocabulary.txt, model.keras (the language model with its preprocessor, best
epoch by held-out loss), history.csv, metrics.json, training_curves.png, logs/, backup/.
`tfrnn train --init-from RUN` builds a classifier on it (`tfrnn.runs.load_pretrained`).
"""

import dataclasses
import math
import os
import shutil
import time

import keras

from tfrnn import data
from tfrnn.config import resolve, save_config
from tfrnn.data.text_sources import read_documents, split_documents
from tfrnn.distribute import auto_jit_compile, auto_precision, describe, is_multi_worker, make_strategy
from tfrnn.errors import ConfigError, DataError, Interrupted
from tfrnn.files import remove_temporaries
from tfrnn.runs import write_json
from tfrnn.training import reports
from tfrnn.training.optimizers import make_optimizer
from tfrnn.training.train import (
    TrainResult,
    dtype_policy,
    history_from_csv,
    read_encoder,
    run_callbacks,
    run_paths,
    seed,
)


@dataclasses.dataclass(frozen=True)
class Fitted:
    """What a kind's `fit_language_model` reports.

    Args:
        metrics: dict. Its entries of metrics.json (held-out perplexity or masked-LM accuracy, ...).
        curve: str. The metric plotted beside the loss.
        summary: str. The last log line's figures.
    """

    metrics: dict
    curve: str
    summary: str


class StreamStates(keras.callbacks.Callback):
    """Zeroes the language model's recurrent states at the start of each epoch and of each
    evaluation: the stream starts again there, so nothing carries over from elsewhere."""

    def on_epoch_begin(self, epoch, logs=None):
        self.model.reset_states()

    def on_test_begin(self, logs=None):
        self.model.reset_states()


class Perplexity(keras.callbacks.Callback):
    """Adds `val_perplexity` = exp(val_loss) (exact: the held-out loss is the full softmax's)
    to the epoch's logs, before the logger and the checkpoint see them."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and "val_loss" in logs:
            logs["val_perplexity"] = math.exp(min(logs["val_loss"], 50.0))


def pretrain(config, resume=False, log=print):
    """Trains the language model a PretrainConfig describes and fills its run directory.

    Everything is read (text, the run it goes on from) and the spec resolved before anything is
    written. `config` itself is never changed.

    Args:
        config: tfrnn.config.PretrainConfig. From `load_config(..., task="pretrain")`.
        resume: bool. Continue an interrupted run in the existing run directory.
        log: callable. Receives progress messages (one line each).

    Returns:
        TrainResult.
    """
    strategy = make_strategy(
        config.train.strategy, config.train.devices, config.train.model_parallel, config.model.kind
    )
    if config.model.kind == "rnn" and (strategy.num_replicas_in_sync > 1 or is_multi_worker(strategy)):
        raise ConfigError(
            f"train.strategy={config.train.strategy}: the RNN language model carries its states from batch "
            "to batch on one device; several replicas are not supported (use one-device)",
            "train.strategy",
        )
    seed(config.train)
    paths = None
    try:
        documents, counts = read_documents(config.data)
        for source, count in counts.items():
            log(f"text: {count} documents from {source}")
        train_docs, held_out = split_documents(documents, config.data.validation_split, config.train.seed)
        if config.init_from is not None:  # found again from anywhere (--resume)
            config = dataclasses.replace(config, init_from=os.path.abspath(config.init_from))
        base = read_encoder(config)  # the run it goes on from, a BERT checkpoint, or None
        spec = _resolve(config, base, strategy)
        paths = run_paths(spec, resume)
        if resume:
            for folder in (paths.root, paths.backup):
                remove_temporaries(folder)
        try:
            return _pretrain(spec, paths, strategy, train_docs, held_out, base, log)
        except (ConfigError, DataError):  # what only shows once the text is tokenised
            if not resume:
                shutil.rmtree(paths.root, ignore_errors=True)
            raise
    except KeyboardInterrupt:
        if paths is None or not paths.root.exists():
            raise Interrupted("interrupted before the run started; nothing was written") from None
        raise Interrupted(f"interrupted; continue with: tfrnn pretrain --resume {paths.root}") from None


def _resolve(config, base, strategy):
    """The spec: the run it goes on from decides the architecture; a BERT's base the case rules."""
    if config.init_from is not None:
        config = base.architecture_of(config)
    decided = dict(jit_compile=auto_jit_compile(strategy), precision=auto_precision(strategy))
    if config.model.kind == "bert" and base is not None:
        decided.update(lowercase=base.lowercase, strip_accents=base.strip_accents)
    return resolve(config, **decided)


def _pretrain(spec, paths, strategy, train_docs, held_out, base, log):
    if spec.model.kind == "rnn":
        from tfrnn.training import pretrain_rnn as kind
    else:
        from tfrnn.training import pretrain_bert as kind
    preprocessor = _preprocessor(spec, train_docs, base)
    datasets = kind.make_data(spec, preprocessor, train_docs, held_out, log)  # may refuse the text
    paths.root.mkdir(parents=True, exist_ok=True)
    log(f"run directory: {paths.root}")
    save_config(spec, paths.config)
    log(f"data: {len(train_docs)} documents to train on, {len(held_out)} held out; strategy: {describe(strategy)}")
    preprocessor.save_vocabulary(paths.vocabulary)
    started = time.time()
    with dtype_policy(spec.train.precision), strategy.scope():
        fitted = kind.fit_language_model(spec, paths, preprocessor, datasets, base, log)
    seconds = time.time() - started
    history = history_from_csv(paths.history)
    epochs_run = len(history.get("loss", []))
    metrics = {
        "epochs_run": epochs_run,
        "train_seconds": round(seconds, 2),
        "seconds_per_epoch": round(seconds / max(epochs_run, 1), 2),
        "train_documents": len(train_docs),
        "held_out_documents": len(held_out),
        "vocabulary_size": preprocessor.vocabulary_size,
        # The held-out figures of every epoch (val_loss, val_perplexity; a BERT's val_accuracy too).
        "per_epoch": {key: [round(v, 5) for v in values] for key, values in history.items() if key.startswith("val_")},
        **fitted.metrics,
    }
    reports.plot_training_curves(history, paths.curves, metrics=("loss", fitted.curve))
    write_json(paths.metrics, metrics)
    log(f"done in {seconds:.0f}s: {fitted.summary}; outputs in {paths.root}")
    return TrainResult(paths.root, metrics)


def _preprocessor(spec, texts, base):
    """The language model's preprocessor: the run it goes on from's, a checkpoint's vocabulary,
    else one learned from `texts`."""
    if spec.init_from is not None:
        return base.preprocessor_for(spec.data.max_len)
    return data.make_preprocessor(spec, texts, base)


def compile_and_fit(model, spec, paths, train_ds, val_ds, steps, extra_callbacks=()):
    """Compiles `model` with the run's optimizer (its loss is the model's own `compute_loss`)
    and fits it with the run's callbacks; returns the fit's seconds."""
    model.compile(optimizer=make_optimizer(spec.train, steps), jit_compile=spec.train.compiled)
    started = time.time()
    model.fit(
        train_ds,
        validation_data=val_ds,
        epochs=spec.train.epochs,
        callbacks=run_callbacks(paths, spec, val_ds is not None, None, first=extra_callbacks),
        shuffle=False,  # the stream's order is the point
        verbose=spec.train.verbose,
    )
    return time.time() - started
