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


def _serving_function(run, logits_of):
    """Raw text -> probabilities, label_id and label of `run`, as a tf.function to export."""
    model = run.model
    label_names = tf.constant(run.label_names)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(text):
        inputs = model.preprocessor(text)  # (batch, time) token ids, or a dict of them (BERT)
        logits = logits_of(inputs)  # (batch, classes)
        probabilities = tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1)
        label_id = tf.argmax(probabilities, axis=-1, output_type=tf.int32)  # (batch,)
        return {"probabilities": probabilities, "label_id": label_id, "label": tf.gather(label_names, label_id)}

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
        archive.add_endpoint(name, _serving_function(run, _logits_function(run.model, shared)))
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
    if version is not None and int(version) <= 0:
        raise ConfigError(f"--version {version}: must be a positive integer")
    if keras.backend.backend() != "tensorflow":
        return _export_under_tensorflow(run_dirs, model_root, version)
    runs = [load_run(run_dir) for run_dir in run_dirs]
    names = _signature_names(runs)
    if len(runs) > 1:
        _check_one_base(runs)
    elif runs[0].spec.model.peft.method is not None:
        from tfrnn.models.peft import merge_peft

        merge_peft(runs[0].model)  # LoRA, QLoRA, DoRA, (IA)3, AdaLoRA: into the weights; prefixes: MLP folded
    model_root = Path(model_root)
    model_root.mkdir(parents=True, exist_ok=True)
    version = next_version(model_root) if version is None else int(version)
    target = model_root / str(version)
    if target.exists():
        raise ConfigError(f"{target}: version {version} exists already; omit --version for the next")
    staging = model_root / f".tmp-{version}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()  # umask permissions, as for any folder (mkdtemp's 0700 would hide it from TF Serving)
    try:
        _serving_archive(runs, names).write_out(str(staging), verbose=False)
        extra = staging / "assets.extra"
        extra.mkdir(exist_ok=True)
        shutil.copy(runs[0].paths.config, extra / "tfrnn_config.yaml")
        write_warmup_requests(extra / WARMUP_FILE, model_root.name, runs[0].spec.data.max_len)
        (extra / "labels.txt").write_text("\n".join(runs[0].label_names) + "\n", encoding="utf-8")
        if len(runs) > 1:
            tasks = {name: {"run": str(run.paths.root), "labels": run.label_names} for run, name in zip(runs, names)}
            (extra / "tasks.json").write_text(json.dumps(tasks, indent=2) + "\n", encoding="utf-8")
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _export_under_tensorflow(run_dirs, model_root, version):
    """`export_run` in a fresh process with KERAS_BACKEND=tensorflow, for a shell on another
    backend (JAX on a TPU VM). The serving graph is TensorFlow's whatever trained the model: the
    preprocessor is TensorFlow (string ops, lookup tables) and the `.keras` file is
    backend-independent, so the same run gives the same SavedModel from any shell. (Keras'
    jax2tf export would embed the model as one XLA call, a different graph, and cannot convert
    the preprocessor.) The child's user errors come back as the same exception, one line."""
    command = [sys.executable, "-m", "tfrnn.export", str(model_root), str(version or ""), *map(str, run_dirs)]
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


def _main(model_root, version, *run_dirs):
    """`python -m tfrnn.export MODEL_ROOT VERSION|'' RUN_DIR...`: prints one JSON line, the
    version folder or the user error (exit status 2)."""
    try:
        target = export_runs(list(run_dirs), model_root, int(version) if version else None)
    except errors.TfrnnError as error:
        print(json.dumps({"error": type(error).__name__, "message": str(error)}))
        sys.exit(2)
    print(json.dumps({"path": str(target)}))


if __name__ == "__main__":
    _main(*sys.argv[1:])
