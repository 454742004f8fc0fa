"""`tfrnn export`: a run -> a versioned SavedModel that TF Serving serves from raw text.

Layout (TF Serving's): EXPORT_ROOT/NAME/<version>/saved_model.pb, variables/, assets/,
assets.extra/ (the run's config.yaml and labels.txt, as TF Model Garden keeps the config next
to each checkpoint, and TF Serving's warm-up requests, see `tfrnn.serving.tf_serving`).
A PEFT run (`model.peft`) is rebuilt from its base checkpoint and adapter file; the methods that
update weights are merged into them first (`tfrnn.models.peft.merge_peft`), so the SavedModel is
a plain encoder; adapters, prefixes and prompts stay in the graph.
Versions are integers (`tfrnn.serving.layout` says which folders are); the next one is
max(existing) + 1. A version is written under a dot-folder (which TF Serving ignores) and
renamed into place, so a half-written version is never visible.

Signature `serving_default`:
    inputs:  text          tf.string  [-1]          raw, uncleaned text
    outputs: probabilities tf.float32 [-1, classes]  softmax over the labels
             label_id      tf.int32   [-1]           argmax
             label         tf.string  [-1]           its name
"""

import contextlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfrnn import errors
from tfrnn.errors import ConfigError
from tfrnn.runs import load_run
from tfrnn.serving.layout import next_version
from tfrnn.serving.tf_serving import WARMUP_FILE, write_warmup_requests


def _shared_base(first, model):
    """`model`'s non-trainable encoder variables mapped to `first`'s of the same path and the same
    value: {id(variable): the first model's variable}. Several PEFT runs over one base checkpoint
    then store its weights once."""
    from tfrnn.models.peft import encoder_layers

    def encoder_variables(classifier):
        return [v for layer in encoder_layers(classifier) for v in layer.variables]

    mine = {v.path: v for v in encoder_variables(first) if not v.trainable}
    shared = {}
    for variable in encoder_variables(model):
        twin = mine.get(variable.path)
        if (
            not variable.trainable
            and twin is not None
            and tuple(twin.shape) == tuple(variable.shape)
            and twin.dtype == variable.dtype
            and np.array_equal(keras.ops.convert_to_numpy(twin), keras.ops.convert_to_numpy(variable))
        ):
            shared[id(variable)] = twin
    return shared


def _logits_function(model, shared):
    """inputs -> logits of `model`, reading the variables `shared` maps from another model."""
    if not shared:
        return lambda inputs: model(inputs, training=False)
    trainable = model.trainable_variables
    non_trainable = [shared.get(id(v), v) for v in model.non_trainable_variables]

    def logits(inputs):
        values, _ = model.stateless_call(
            [v.value for v in trainable], [v.value for v in non_trainable], inputs, training=False
        )
        return values

    return logits


def probabilities_function(model, logits_of=None):
    """Raw text -> `model`'s softmax probabilities, to trace inside a serving function.

    Args:
        model: tfrnn.models.base.Classifier. Owns its preprocessor.
        logits_of: callable or None. inputs -> logits; None calls `model` (`_logits_function`).

    Returns:
        callable: tf.string (batch,) -> tf.float32 (batch, classes).
    """
    logits_of = logits_of or _logits_function(model, {})

    def probabilities(text):
        inputs = model.preprocessor(text)  # (batch, time) token ids, or a dict of them (BERT)
        logits = logits_of(inputs)  # (batch, classes)
        return tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1)

    return probabilities


def serving_function(probabilities_of, label_names):
    """The exported signature: raw text -> probabilities, label_id and label (module docstring).

    Args:
        probabilities_of: callable. tf.string (batch,) -> tf.float32 (batch, classes).
        label_names: list of str. The name of each class, in column order.

    Returns:
        tf.function with the `text` input signature.
    """
    names = tf.constant(list(label_names))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(text):
        probabilities = probabilities_of(text)  # (batch, classes)
        label_id = tf.argmax(probabilities, axis=-1, output_type=tf.int32)  # (batch,)
        return {"probabilities": probabilities, "label_id": label_id, "label": tf.gather(names, label_id)}

    return serve


def _serving_archive(runs, names):
    """The runs' models, each with its preprocessor in front and a softmax behind, as one
    signature each (`names`; the first is `serving_default`). Several runs share the first
    run's encoder weights where theirs are the same (`_shared_base`)."""
    archive = keras.export.ExportArchive()
    for run, name in zip(runs, names):
        # Only the preprocessor is tracked, for its lookup tables (resources of the graph, not
        # variables). The model's weights are saved through the endpoint: Keras keeps the
        # variables the traced function captures (the tf.Variables) as `_all_variables`.
        # Tracking the model as well would add its Keras variables, which wrap those
        # tf.Variables but are other objects to the SavedModel: every weight was saved twice.
        archive.track(run.model.preprocessor)
        shared = _shared_base(runs[0].model, run.model) if run is not runs[0] else {}
        probabilities = probabilities_function(run.model, _logits_function(run.model, shared))
        archive.add_endpoint(name, serving_function(probabilities, run.label_names))
    return archive


def _saved_model_proto(export_dir):
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString((Path(export_dir) / "saved_model.pb").read_bytes())
    return saved_model


def signature_names(export_dir):
    """The serving signatures of a SavedModel, `serving_default` first.

    Args:
        export_dir: str or Path. A SavedModel folder.

    Returns:
        list of str.
    """
    names = set(_saved_model_proto(export_dir).meta_graphs[0].signature_def) - {"__saved_model_init_op"}
    return sorted(names, key=lambda name: (name != "serving_default", name))


def custom_ops(export_dir):
    """The ops a SavedModel uses that core TensorFlow does not register (TensorFlow Text's for
    BERT exports: its loader and TF Serving's model server must link them).

    Args:
        export_dir: str or Path. A SavedModel folder.

    Returns:
        sorted list of str, op type names.
    """
    saved_model = _saved_model_proto(export_dir)
    ops = set()
    for meta_graph in saved_model.meta_graphs:
        ops.update(node.op for node in meta_graph.graph_def.node)
        for function in meta_graph.graph_def.library.function:
            ops.update(node.op for node in function.node_def)
    return sorted(op for op in ops if not hasattr(tf.raw_ops, op))


def export_run(run_dir, model_root, version=None):
    """Exports a finished run as `model_root/<version>/`.

    Args:
        run_dir: str or Path. A directory written by `tfrnn train`.
        model_root: str or Path. The model's folder under the export root (saved_models/NAME).
        version: int or None. The version number; None takes the next free one.

    Returns:
        Path of the written version folder.

    Raises:
        ConfigError: the version exists already, or is not a positive integer.
    """
    return export_runs([run_dir], model_root, version)


def _signature_names(runs):
    """`serving_default` for the first run, each other run's directory name for its own."""
    names = ["serving_default"] + [run.paths.root.name for run in runs[1:]]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ConfigError(f"runs named {', '.join(repeated)} twice: each run's name becomes its signature's")
    return names


def _check_one_base(runs):
    """Several runs in one export must be PEFT runs over the same base encoder."""
    for run in runs:
        if run.spec.model.peft.method is None:
            raise ConfigError(f"{run.paths.root}: not a PEFT run; only PEFT runs over one base export together")
    fingerprints = {run.model.peft_fingerprint for run in runs}
    if len(fingerprints) > 1:
        raise ConfigError(
            f"{runs[0].paths.root} and the other runs adapt different base encoders; "
            "several runs export together only over one base checkpoint"
        )


def export_runs(run_dirs, model_root, version=None):
    """Exports one or several finished runs as one SavedModel `model_root/<version>/`.

    One run: `serving_default` (see the module docstring); a PEFT run's method merged into the
    weights where it can be. Several PEFT runs over one base checkpoint: one signature each, the
    first's `serving_default`, the others named after their run directories; the base encoder's
    weights are stored once and each run adds its own (unmerged) PEFT weights and head.
    `assets.extra/` holds the first run's config and labels, and `tasks.json`: each signature's
    run and labels.

    Args:
        run_dirs: list of str or Path. Directories written by `tfrnn train`.
        model_root: str or Path. The model's folder under the export root (saved_models/NAME).
        version: int or None. The version number; None takes the next free one.

    Returns:
        Path of the written version folder.

    Raises:
        ConfigError: the version exists already, or is not a positive integer; several runs
            that are not PEFT runs over one base.
    """
    check_version(version)
    if keras.backend.backend() != "tensorflow":
        return run_under_tensorflow(
            "tfrnn.export", run_dirs=list(map(str, run_dirs)), model_root=str(model_root), version=version
        )
    runs = [load_run(run_dir) for run_dir in run_dirs]
    names = _signature_names(runs)
    if len(runs) > 1:
        _check_one_base(runs)
    elif runs[0].spec.model.peft.method is not None:
        from tfrnn.models.peft import merge_peft

        merge_peft(runs[0].model)  # LoRA, QLoRA, DoRA, (IA)3, AdaLoRA: into the weights; prefixes: MLP folded
    target = version_folder(model_root, version)
    with staged_version(target) as staging:
        _serving_archive(runs, names).write_out(str(staging), verbose=False)
        first = runs[0]
        extra = write_assets_extra(staging, first.paths.config, first.label_names, first.spec.data.max_len)
        if len(runs) > 1:
            tasks = {name: {"run": str(run.paths.root), "labels": run.label_names} for run, name in zip(runs, names)}
            (extra / "tasks.json").write_text(json.dumps(tasks, indent=2) + "\n", encoding="utf-8")
    return target


def check_version(version):
    """Raises ConfigError unless `version` is None (the next one) or a positive integer."""
    if version is not None and int(version) <= 0:
        raise ConfigError(f"--version {version}: must be a positive integer")


def version_folder(model_root, version):
    """The version folder an export writes, before anything is written.

    Args:
        model_root: str or Path. The model's folder under the export root (saved_models/NAME).
        version: int or None. The version number; None takes the next free one.

    Returns:
        Path `model_root/<version>`.

    Raises:
        ConfigError: that version exists already.
    """
    version = next_version(model_root) if version is None else int(version)
    target = Path(model_root) / str(version)
    if target.exists():
        raise ConfigError(f"{target}: version {version} exists already; omit --version for the next")
    return target


@contextlib.contextmanager
def staged_version(target):
    """A dot-folder beside `target` (which TF Serving ignores) to write a version in, renamed to
    `target` when the block ends; removed, and `target` never made, if the block raises.

    Args:
        target: Path. The version folder (`version_folder`).

    Yields:
        Path. The staging folder.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".tmp-{target.name}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()  # umask permissions, as for any folder (mkdtemp's 0700 would hide it from TF Serving)
    try:
        yield staging
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def write_assets_extra(folder, config_path, label_names, max_len):
    """Writes `folder/assets.extra/`: a run's config as tfrnn_config.yaml, labels.txt (one name a
    line, in column order) and TF Serving's warm-up requests.

    Args:
        folder: Path. The (staged) version folder; its parent is named after the model.
        config_path: Path. The run's config.yaml.
        label_names: list of str. The class names, in the order of the probabilities' columns.
        max_len: int. The longest token sequence, for the warm-up texts.

    Returns:
        Path of assets.extra.
    """
    extra = folder / "assets.extra"
    extra.mkdir(exist_ok=True)
    shutil.copy(config_path, extra / "tfrnn_config.yaml")
    write_warmup_requests(extra / WARMUP_FILE, folder.parent.name, max_len)
    (extra / "labels.txt").write_text("\n".join(label_names) + "\n", encoding="utf-8")
    return extra


def run_under_tensorflow(module, **arguments):
    """Runs an export in a fresh process with KERAS_BACKEND=tensorflow, for a shell on another
    backend (JAX on a TPU VM). The serving graph is TensorFlow's whatever trained the model: the
    preprocessor is TensorFlow (string ops, lookup tables) and the `.keras` file is
    backend-independent, so the same run gives the same SavedModel from any shell. (Keras'
    jax2tf export would embed the model as one XLA call, a different graph, and cannot convert
    the preprocessor.)

    Args:
        module: str. A module whose `__main__` calls `answer_under_tensorflow`.
        **arguments: JSON values. The export function's arguments.

    Returns:
        Path of the written version folder.

    Raises:
        TfrnnError: the child's user error, as the same exception (one line).
        RuntimeError: the child failed otherwise (its stderr's end).
    """
    command = [sys.executable, "-m", module, json.dumps(arguments)]
    result = subprocess.run(
        command, env={**os.environ, "KERAS_BACKEND": "tensorflow"}, capture_output=True, text=True, check=False
    )
    lines = result.stdout.strip().splitlines()
    answer = json.loads(lines[-1]) if result.returncode in (0, 2) and lines else None
    if answer is None:
        raise RuntimeError(f"export under KERAS_BACKEND=tensorflow failed:\n{result.stderr[-3000:]}")
    if "error" in answer:
        raise getattr(errors, answer["error"], errors.TfrnnError)(answer["message"])
    return Path(answer["path"])


def answer_under_tensorflow(export):
    """The child of `run_under_tensorflow`: `python -m MODULE ARGUMENTS_JSON` calls
    `export(**arguments)` and prints one JSON line, the version folder or the user error (exit
    status 2)."""
    try:
        target = export(**json.loads(sys.argv[1]))
    except errors.TfrnnError as error:
        print(json.dumps({"error": type(error).__name__, "message": str(error)}))
        sys.exit(2)
    print(json.dumps({"path": str(target)}))


if __name__ == "__main__":
    answer_under_tensorflow(export_runs)
