"""`tfrnn train`: data -> run spec -> preprocessor + classifier -> model.fit (under a strategy) -> run directory."""

import contextlib
import csv
import dataclasses
import hashlib
import math
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfrnn import data
from tfrnn.config import TextDataConfig, resolve, save_config
from tfrnn.data.text_sources import read_documents
from tfrnn.distribute import (
    auto_jit_compile,
    auto_precision,
    describe,
    is_chief,
    is_multi_worker,
    make_strategy,
    on_tpu,
)
from tfrnn.distribute.jax_distribution import JaxDistribution, process_slice
from tfrnn.errors import ClusterError, ConfigError, Interrupted
from tfrnn.files import atomic_path, atomic_write_text, remove_temporaries
from tfrnn.models import build_classifier
from tfrnn.models.peft import adalora, apply_peft, load_adapter, parameter_counts
from tfrnn.report import write_report
from tfrnn.runs import RunPaths, load_pretrained, predict_probabilities, write_json
from tfrnn.training import reports, ulmfit
from tfrnn.training.adversarial import check_adversarial, enable_adversarial
from tfrnn.training.augmentation import augment_training_examples, check_augment
from tfrnn.training.callbacks import (
    AtomicModelCheckpoint,
    BestAdapterCheckpoint,
    ResumableCSVLogger,
    ResumableEarlyStopping,
    ResumableRandomState,
    write_adapter,
)
from tfrnn.training.losses import SparseCrossentropy
from tfrnn.training.optimizers import make_optimizer
from tfrnn.training.tracking import check_wandb, wandb_callbacks


@dataclasses.dataclass
class TrainResult:
    """What a finished run produced.

    Args:
        run_dir: Path. The run directory.
        metrics: dict. The content of metrics.json.
    """

    run_dir: Path
    metrics: dict


def run_paths(spec, resume):
    """The run directory's paths; checks it is free (or, resuming, there). Creates nothing."""
    paths = RunPaths(spec.run_dir)
    if paths.root.exists() and not resume:
        raise ConfigError(f"{paths.root}: run directory already exists; pick another run_name or pass --resume")
    if resume and not paths.root.exists():
        raise ConfigError(f"{paths.root}: nothing to resume")
    if resume and paths.metrics.exists():
        raise ConfigError(f"{paths.root}: the run finished already ({paths.metrics.name}); nothing to resume")
    return paths


def seed(train_config):
    keras.utils.set_random_seed(train_config.seed)
    if train_config.deterministic:
        tf.config.experimental.enable_op_determinism()


@contextlib.contextmanager
def dtype_policy(name):
    """Keras' global dtype policy is `name` inside the block, and what it was after."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def read_encoder(config):
    """The run's pretrained encoder, read once (a checkpoint's files may be remote): the
    `tfrnn pretrain` run of `init_from` (`tfrnn.pretrained.PretrainedRun`), the BERT checkpoint
    (`tfrnn.models.bert.Checkpoint`), or None."""
    if getattr(config, "init_from", None) is not None:
        return load_pretrained(config.init_from, config.model.kind)
    if config.model.kind != "bert" or not config.model.bert.checkpoint:
        return None
    from tfrnn.models.bert import read_checkpoint  # keras-hub loads only for BERT

    checkpoint = read_checkpoint(config.model.bert.checkpoint)
    if config.data.max_len > checkpoint.max_sequence_length:
        raise ConfigError(
            f"data.max_len={config.data.max_len}: the checkpoint has position embeddings "
            f"for {checkpoint.max_sequence_length} tokens",
            "data.max_len",
        )
    if not checkpoint.split_on_cjk:
        raise ConfigError(f"model.bert.checkpoint={checkpoint.handle!r}: tokenize_chinese_chars=false is not supported")
    return checkpoint


def resolve_spec(config, train_examples, checkpoint, strategy=None):
    """The run spec: `config` with the data's labels, the checkpoint's case rules (and a local
    checkpoint folder's absolute path, so evaluate, predict and export find the base of a PEFT
    run from anywhere), the run name and what `train.jit_compile=auto` and
    `train.precision=auto` mean under `strategy`."""
    decided = {}
    if config.init_from is not None:  # the pretrained run decides the encoder; found from anywhere
        config = dataclasses.replace(checkpoint.classifier_of(config), init_from=os.path.abspath(config.init_from))
    if checkpoint is not None and config.model.kind == "bert":
        decided = dict(lowercase=checkpoint.lowercase, strip_accents=checkpoint.strip_accents)
    if strategy is not None:
        decided.update(jit_compile=auto_jit_compile(strategy), precision=auto_precision(strategy))
    spec = resolve(config, train_examples.label_names, **decided)
    handle = spec.model.bert.checkpoint if spec.model.kind == "bert" else None
    if handle and os.path.isdir(handle):  # a local folder: found again from any working directory
        bert = dataclasses.replace(spec.model.bert, checkpoint=os.path.abspath(handle))
        spec = dataclasses.replace(spec, model=dataclasses.replace(spec.model, bert=bert))
    neighbours_from = spec.data.augment.neighbours_from
    if neighbours_from is not None:  # found again by --resume from any working directory
        augment = dataclasses.replace(spec.data.augment, neighbours_from=os.path.abspath(neighbours_from))
        spec = dataclasses.replace(spec, data=dataclasses.replace(spec.data, augment=augment))
    return spec


def _cluster_reason(message):
    """The informative line of a collective's error (TensorFlow puts the cause under a header)."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    causes = [line for line in lines if re.search(r"unavailable|socket|heartbeat|connect|deadline|abort", line, re.I)]
    return (causes or lines or ["no details"])[0][:200]


def _weights_digest(model):
    """SHA-256 of a model's weights, in order: equal digests mean bit-identical weights."""
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(weight.tobytes())
    return digest.hexdigest()


def _best(monitor, values):
    """The best of logged `values` of `monitor` (accuracy: highest; losses: lowest), or None."""
    return (max if "accuracy" in monitor else min)(values, default=None)


def run_callbacks(paths, config, validating, train_data=None, first=()):
    """fit's callbacks. Those that keep state for a resumed fit come before BackupAndRestore
    (`tfrnn.training.callbacks`); `train_data` (the finite training dataset, or None) is
    replayed on resuming, so the shuffle goes on as in an uninterrupted run. `first` come
    before all others (callbacks that add to the epoch's logs, or act at an epoch's start)."""
    monitor = config.train.monitor if validating else "loss"
    # Resuming, the checkpoint must beat the best epoch logged before the interruption.
    logged = history_from_csv(paths.history).get(monitor, []) if paths.history.exists() else []
    peft_method = getattr(config.model, "peft", None) and config.model.peft.method
    # AdaLoRA's ranks meet their budget only once its schedule has run: its last epoch is kept,
    # and it does not stop early.
    last_epoch = peft_method == "adalora"
    if last_epoch:
        checkpoint = BestAdapterCheckpoint(paths.adapter, monitor, every_epoch=True)
    elif peft_method:  # the trained weights only, not the base encoder
        checkpoint = BestAdapterCheckpoint(paths.adapter, monitor, initial_value_threshold=_best(monitor, logged))
    else:
        checkpoint = AtomicModelCheckpoint(
            paths.model, monitor=monitor, save_best_only=True, initial_value_threshold=_best(monitor, logged)
        )
    callbacks = [*first, checkpoint, ResumableCSVLogger(paths.history)]
    if config.train.early_stopping_patience > 0 and not last_epoch:
        callbacks.append(
            ResumableEarlyStopping(
                paths.backup,
                monitor=monitor,
                patience=config.train.early_stopping_patience,
                restore_best_weights=True,
            )
        )
    callbacks += [
        ResumableRandomState(paths.backup, train_data),
        # double_checkpoint: a backup cut short (killed while writing) falls back to the one before.
        keras.callbacks.BackupAndRestore(str(paths.backup), double_checkpoint=True),
    ]
    if config.train.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(str(paths.logs)))
    return callbacks


def history_from_csv(path):
    """history.csv as lists per metric; CSVLogger's "NA" columns (val_* without validation) are dropped."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    keys = [k for k in (rows[0] if rows else {}) if k != "epoch" and all(row[k] != "NA" for row in rows)]
    return {key: [float(row[key]) for row in rows] for key in keys}


def _load_splits(config, log):
    """Reads every split the run needs: (train, {"validation"?, "test"?: Examples})."""
    split_seed = config.train.seed if config.data.split_seed is None else config.data.split_seed
    examples = data.load_examples(config.data, "train", seed=split_seed)
    if examples.skipped_blank:
        log(f"skipped {examples.skipped_blank} blank texts in {examples.source}")
    evaluated = {}
    if data.has_test_split(config.data):
        evaluated["test"] = data.load_examples(config.data, "test")
    train_examples, val_examples = data.train_validation_split(examples, config.data.validation_split, split_seed)
    if len(val_examples.texts):
        evaluated = {"validation": val_examples, **evaluated}
    return train_examples, evaluated


def _read_unlabelled(config, strategy):
    """VAT's unlabelled texts (`train.adversarial.unlabelled`), or None; read before the run
    writes anything."""
    adversarial = config.train.adversarial
    if adversarial.unlabelled is None:
        return None
    if strategy.num_replicas_in_sync > 1 or is_multi_worker(strategy):
        raise ConfigError(
            "train.adversarial.unlabelled: one replica only (the unlabelled batches are not distributed)",
            "train.adversarial.unlabelled",
        )
    source = TextDataConfig(
        sources=[adversarial.unlabelled],
        text_column=adversarial.unlabelled_column,
        strip_html=config.data.strip_html,
        unicode_form=config.data.unicode_form,
        validation_split=0.0,
    )
    texts, _ = read_documents(source)
    return texts


def _with_unlabelled(train_ds, texts, preprocessor, spec, static):
    """Each training batch paired with a batch of unlabelled inputs (repeated without end)."""
    examples = data.Examples(texts, np.zeros(len(texts)), list(spec.data.labels), spec.train.adversarial.unlabelled)
    unlabelled = data.make_dataset(
        examples, preprocessor, spec.data, True, seed=spec.train.seed + 1, repeat=True, static_shapes=static
    ).map(lambda inputs, *labels: inputs)
    return tf.data.Dataset.zip((train_ds, unlabelled))


def _datasets(config, train_examples, val_examples, preprocessor, strategy):
    """The training and validation data for `model.fit`, and its step counts.

    One replica, or Keras' distribution under JAX (which splits each global batch across the
    devices itself): finite datasets, one pass an epoch. Compiled steps (`train.jit_compile`,
    JAX, TPUs) get batches in a few fixed shapes with sample weights (`make_dataset`'s
    `static_shapes`); with several JAX processes, each feeds its slice of every global batch.

    A tf.distribute strategy over several replicas (or workers): each input pipeline reads its
    shard (`InputContext`) in per-replica batches, repeated, and every epoch is a fixed number of
    global batches, so all replicas take the same number of steps. Validation is then
    ceil(n / batch_size) global batches from the start of the (repeated) validation data, the
    same examples every epoch; a few at the end of the last batch count twice.

    Returns:
        (train dataset, validation dataset or None, dict of fit's step arguments).
    """
    static = config.train.compiled or isinstance(strategy, JaxDistribution) or on_tpu(strategy)
    if isinstance(strategy, JaxDistribution) or (strategy.num_replicas_in_sync == 1 and not is_multi_worker(strategy)):
        train_ds = data.make_dataset(
            train_examples, preprocessor, config.data, training=True, seed=config.train.seed, static_shapes=static
        )
        steps = sum(1 for _ in train_ds)  # bucketing makes it data-dependent; fills the cache
        train_ds = process_slice(train_ds.apply(tf.data.experimental.assert_cardinality(steps)))
        val_ds = None
        if val_examples:
            val_ds = process_slice(
                data.make_dataset(val_examples, preprocessor, config.data, False, static_shapes=static)
            )
        return train_ds, val_ds, {"steps_per_epoch": steps}

    def distributed(examples, training, steps=None):
        return data.make_distributed_dataset(
            examples, preprocessor, config.data, strategy, training, config.train.seed, training, static, steps
        )

    steps = {"steps_per_epoch": max(1, len(train_examples.texts) // config.data.batch_size)}
    if val_examples is None:
        return distributed(train_examples, True), None, steps
    validation_steps = math.ceil(len(val_examples.texts) / config.data.batch_size)
    return distributed(train_examples, True), distributed(val_examples, False, validation_steps), steps


def count_traces(model):
    """Counts the traces of `model`'s train and test steps from now on: under a compiler (JAX's
    jit, XLA, tf.function) one trace is one compilation, one per new batch shape.

    Args:
        model: keras.Model. Compiled, not yet fitted.

    Returns:
        dict {"train": int, "test": int}, updated as fit traces the steps.
    """
    traces = {"train": 0, "test": 0}

    def counted(kind, step):
        def step_function(*args):
            traces[kind] += 1
            return step(*args)

        return step_function

    for kind in traces:  # fit finds the steps as attributes, so instance attributes take over
        setattr(model, f"{kind}_step", counted(kind, getattr(model, f"{kind}_step")))
    return traces


def _optimizer(spec, model, steps_per_epoch):
    """The run's optimizer; under AdaLoRA, one that also prunes the ranks to their budget; with
    ULMFiT's gradual unfreezing or discriminative rates, one that applies them per layer group."""
    optimizer = make_optimizer(spec.train, steps_per_epoch)
    if spec.model.peft.method == "adalora":
        return adalora.wrap_optimizer(optimizer, model, spec.model.peft, steps_per_epoch * spec.train.epochs)
    if _ulmfit(spec.train):
        groups = ulmfit.layer_groups(model, ulmfit.rnn_layer_groups(model))
        return ulmfit.wrap_optimizer(optimizer, groups, spec.train.layer_lr_factor, spec.train.unfreeze == "gradual")
    return optimizer


def _ulmfit(train_config):
    """Whether the run trains layer groups apart (gradual unfreezing, discriminative rates)."""
    return train_config.unfreeze != "none" or train_config.layer_lr_factor != 1


def save_model(model, path):
    """Saves `model` as a .keras file, atomically (a reader never sees half a file)."""
    with atomic_path(path) as staging:
        model.save(staging)


def _save_best(model, paths, peft):
    """Saves the (best) model: the adapter file of a PEFT run, else model.keras."""
    if peft.method is not None:
        write_adapter(model, paths.adapter)
    else:
        save_model(model, paths.model)


def _peft_facts(model, paths, peft):
    """metrics.json's `peft` entry: the method, the adapter file's size, AdaLoRA's final ranks."""
    facts = {"method": peft.method, "adapter_bytes": paths.adapter.stat().st_size}
    if peft.method == "adalora":
        facts["ranks"] = adalora.final_ranks(model)
    return facts


def _fit(spec, paths, train_examples, val_examples, preprocessor, strategy, checkpoint, log, unlabelled=None):
    """Builds the classifier under `strategy` (from `checkpoint`, a BERT's), makes the weights
    `model.peft` says trainable, compiles and fits it (adversarially with `train.adversarial`;
    VAT also on `unlabelled` texts); returns the best model as saved (a PEFT run's: with the best
    adapter weights loaded), seconds, and facts for metrics.json (step traces, `count_traces`;
    trainable parameters; the PEFT method's)."""
    train_ds, val_ds, steps = _datasets(spec, train_examples, val_examples, preprocessor, strategy)
    if unlabelled is not None:
        static = spec.train.compiled or on_tpu(strategy)
        train_ds = _with_unlabelled(train_ds, unlabelled, preprocessor, spec, static)
    validating = val_examples is not None
    # A finite training dataset (one replica, or Keras' distribution under JAX) is iterated once an epoch:
    # a resumed fit replays those passes (ResumableRandomState). Under a tf.distribute strategy
    # the data repeats without end, and a resumed run's data order differs from the first's.
    finite = isinstance(train_ds, tf.data.Dataset) and int(train_ds.cardinality()) > 0
    replayable = train_ds if finite else None
    with strategy.scope():  # variables, compile and the train loop under the strategy
        model = build_classifier(spec.model, preprocessor, len(spec.data.labels), checkpoint)
        apply_peft(model, spec.model.peft)
        trainable, total = parameter_counts(model)
        log(f"parameters: {total:,} of which {trainable:,} train ({trainable / total:.2%})")
        if spec.model.peft.method == "adalora":
            log("AdaLoRA: the ranks reach their budget at the end, so the last epoch is kept (no early stopping)")
        model.compile(
            optimizer=_optimizer(spec, model, steps["steps_per_epoch"]),
            # Batches in fixed shapes carry filler rows of weight 0 (`static_batch`): the loss
            # averages over the weighted rows, and accuracy is weighted, so fillers count nowhere.
            loss=SparseCrossentropy(spec.train.label_smoothing),
            weighted_metrics=["accuracy"],
            jit_compile=spec.train.compiled,
        )
        adversarial = spec.train.adversarial
        if adversarial.method is not None:
            enable_adversarial(model, adversarial, unlabelled=unlabelled is not None)
            log(
                f"adversarial training: {adversarial.method}, epsilon {adversarial.epsilon}, weight {adversarial.weight}"
            )
        traces = count_traces(model)
        callbacks = run_callbacks(
            paths, spec, validating, replayable, first=[ulmfit.GradualUnfreezing()] if _ulmfit(spec.train) else ()
        )
        if spec.train.wandb and is_chief(strategy):  # last: after the callbacks that add to the logs
            callbacks += wandb_callbacks(spec, paths.root, log)
        started = time.time()
        try:
            model.fit(
                train_ds,
                validation_data=val_ds,
                epochs=spec.train.epochs,
                callbacks=callbacks,
                shuffle=False,  # the pipeline shuffles
                verbose=spec.train.verbose,
                **steps,
            )
        except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.AbortedError) as error:
            if not is_multi_worker(strategy):
                raise
            reason = _cluster_reason(str(error))
            raise ClusterError(f"multi-worker training stopped: a worker is gone or not answering ({reason})") from None
    seconds = time.time() - started
    peft = spec.model.peft
    if not validating:  # the checkpoint kept the best training loss; EarlyStopping restored it too
        _save_best(model, paths, peft)
    facts = {
        "step_traces": traces,
        "trainable_parameters": trainable,
        "trainable_fraction": round(trainable / total, 6),
    }
    if peft.method is None:
        return keras.saving.load_model(paths.model), seconds, facts  # the best epoch, as saved
    load_adapter(model, paths.adapter)  # the best epoch, as saved
    return model, seconds, {**facts, "peft": _peft_facts(model, paths, peft)}


def _evaluate(model, evaluated, spec, paths):
    """Metrics of each evaluated split; writes the report and confusion matrix of the last."""
    metrics = {}
    for split, examples in evaluated.items():
        probabilities = predict_probabilities(model, examples.texts, spec.data.batch_size)
        result = reports.classification_metrics(examples.labels, probabilities, examples.label_names)
        metrics[split] = {k: v for k, v in result.items() if k != "report"}
    if evaluated:  # the test split when there is one, else validation
        atomic_write_text(paths.report, f"{split} split\n\n{result['report']}")
        reports.plot_confusion_matrix(
            metrics[split]["confusion_matrix"],
            examples.label_names,
            paths.confusion,
            title=f"confusion matrix ({split})",
        )
    return metrics


def train(config, resume=False, log=print):
    """Trains the classifier a RunConfig describes and fills its run directory.

    Everything is read (data, checkpoint) and the run spec resolved before anything is written,
    so bad input leaves no half-made run behind. `config` itself is never changed.

    Args:
        config: tfrnn.config.RunConfig. From `tfrnn.config.load_config` (run_name may be None).
        resume: bool. Continue an interrupted run in the existing run directory.
        log: callable. Receives progress messages (one line each).

    Returns:
        TrainResult.
    """
    # Before TensorFlow or JAX computes anything (a JAX cluster must be joined first).
    strategy = make_strategy(
        config.train.strategy, config.train.devices, config.train.model_parallel, config.model.kind
    )
    seed(config.train)
    check_wandb(config)
    replicas = strategy.num_replicas_in_sync
    if config.data.batch_size % replicas:
        raise ConfigError(
            f"data.batch_size={config.data.batch_size}: the global batch must split evenly over {replicas} replicas"
        )
    if resume and is_multi_worker(strategy):
        raise ConfigError("--resume: not supported with --strategy multi-worker (only the chief keeps a backup)")
    paths = None
    try:  # Ctrl-C while reading the data (a download, a large file) is Interrupted too
        train_examples, evaluated = _load_splits(config, log)
        check_adversarial(config.train.adversarial)  # the backend can run its step
        unlabelled = _read_unlabelled(config, strategy)
        checkpoint = read_encoder(config)
        spec = resolve_spec(config, train_examples, checkpoint, strategy)
        check_augment(spec)  # data.augment.neighbours_from, before the run directory exists
        if is_chief(strategy):
            paths = run_paths(spec, resume)
            if resume:  # files a killed process was writing (model.keras, backup states)
                for folder in (paths.root, paths.backup):
                    remove_temporaries(folder)
        else:  # another worker keeps the outputs; this one writes to a folder it removes at the end
            paths = RunPaths(Path(tempfile.mkdtemp(prefix="tfrnn-worker-")) / "run")
        try:
            return _train(spec, paths, strategy, train_examples, evaluated, checkpoint, log, unlabelled)
        except ConfigError:  # settings the model refuses once built (a PEFT rank too large for a layer)
            if not resume:
                shutil.rmtree(paths.root, ignore_errors=True)  # this run made it: leave nothing behind
            raise
    except KeyboardInterrupt:
        if paths is None or not paths.root.exists():
            raise Interrupted("interrupted before the run started; nothing was written") from None
        if is_multi_worker(strategy):  # --resume refuses multi-worker runs: do not suggest it
            raise Interrupted(f"interrupted; {paths.root} is unfinished (a multi-worker run cannot resume)") from None
        raise Interrupted(f"interrupted; continue with: tfrnn train --resume {paths.root}") from None
    finally:
        if paths is not None and not is_chief(strategy):
            shutil.rmtree(paths.root.parent, ignore_errors=True)


def _train(spec, paths, strategy, train_examples, evaluated, checkpoint, log, unlabelled=None):
    """train() once the data is read, the spec resolved and the run directory settled."""
    if spec.init_from is not None:  # the pretrained run's vocabulary and cleaning
        preprocessor = checkpoint.preprocessor_for(spec.data.max_len)
    else:
        preprocessor = data.make_preprocessor(spec, train_examples.texts, checkpoint)
    originals = len(train_examples.texts)
    train_examples = augment_training_examples(train_examples, spec, log)  # the vocabulary is the originals'
    paths.root.mkdir(parents=True, exist_ok=True)
    log(f"run directory: {paths.root}")
    save_config(spec, paths.config)
    log(
        f"data: {originals} train, {len(evaluated.get('validation', []))} "
        f"validation, labels {', '.join(spec.data.labels)} ({train_examples.source})"
    )
    log(f"strategy: {describe(strategy)}")
    preprocessor.save_vocabulary(paths.vocabulary)
    with dtype_policy(spec.train.precision):
        model, train_seconds, facts = _fit(
            spec,
            paths,
            train_examples,
            evaluated.get("validation"),
            preprocessor,
            strategy,
            checkpoint,
            log,
            unlabelled,
        )

    history = history_from_csv(paths.history)
    epochs_run = len(history.get("loss", []))
    if is_multi_worker(strategy):  # workers can compare
        log(f"final weights sha256 {_weights_digest(model)}")
    if not is_chief(strategy):
        log(f"worker done after {epochs_run} epochs; the chief keeps the run")
        return TrainResult(paths.root, {"epochs_run": epochs_run})
    metrics = {
        "epochs_run": epochs_run,
        "train_seconds": round(train_seconds, 2),
        "seconds_per_epoch": round(train_seconds / max(epochs_run, 1), 2),
        "train_examples": originals,
        **({"augmented_examples": len(train_examples.texts)} if spec.data.augment.active else {}),
        "vocabulary_size": preprocessor.vocabulary_size,
        "parameters": int(model.count_params()),
        **facts,
        **_evaluate(model, evaluated, spec, paths),
    }
    reports.plot_training_curves(history, paths.curves)
    write_json(paths.metrics, metrics)
    write_report(paths.root, log, model)  # RUN/report.html
    summary = ", ".join(f"{split} accuracy {metrics[split]['accuracy']:.4f}" for split in evaluated)
    log(f"done in {train_seconds:.0f}s: {summary or 'no evaluation split'}; outputs in {paths.root}")
    return TrainResult(paths.root, metrics)
