"""`tfrnn export`: a run -> a versioned SavedModel that TF Serving serves from raw text.

Layout (TF Serving's): EXPORT_ROOT/NAME/<version>/saved_model.pb, variables/, assets/,
assets.extra/ (the run's config.yaml and labels.txt, as TF Model Garden keeps the config next
to each checkpoint, and TF Serving's warm-up requests, see `tfrnn.serving.tf_serving`).
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
import tensorflow as tf

from tfrnn import errors
from tfrnn.errors import ConfigError
from tfrnn.runs import load_run
from tfrnn.serving.layout import next_version
from tfrnn.serving.tf_serving import WARMUP_FILE, write_warmup_requests


def _serving_archive(run):
    """The run's model, its preprocessor in front and a softmax behind, as `serving_default`."""
    model = run.model
    archive = keras.export.ExportArchive()
    # Only the preprocessor is tracked, for its lookup tables (resources of the graph, not
    # variables). The model's weights are saved through the endpoint: Keras keeps the variables
    # the traced function captures (the tf.Variables) as `_all_variables`. Tracking the model as
    # well would add its Keras variables, which wrap those tf.Variables but are other objects to
    # the SavedModel: every weight was saved twice (and the dropout seeds once more).
    archive.track(model.preprocessor)
    label_names = tf.constant(run.label_names)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(text):
        inputs = model.preprocessor(text)  # (batch, time) token ids, or a dict of them (BERT)
        logits = model(inputs, training=False)  # (batch, classes)
        probabilities = tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1)
        label_id = tf.argmax(probabilities, axis=-1, output_type=tf.int32)  # (batch,)
        return {"probabilities": probabilities, "label_id": label_id, "label": tf.gather(label_names, label_id)}

    archive.add_endpoint("serving_default", serve)
    return archive


def custom_ops(export_dir):
    """The ops a SavedModel uses that core TensorFlow does not register (TensorFlow Text's for
    BERT exports: its loader and TF Serving's model server must link them).

    Args:
        export_dir: str or Path. A SavedModel folder.

    Returns:
        sorted list of str, op type names.
    """
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString((Path(export_dir) / "saved_model.pb").read_bytes())
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
    if version is not None and int(version) <= 0:
        raise ConfigError(f"--version {version}: must be a positive integer")
    if keras.backend.backend() != "tensorflow":
        return _export_under_tensorflow(run_dir, model_root, version)
    run = load_run(run_dir)
    model_root = Path(model_root)
    model_root.mkdir(parents=True, exist_ok=True)
    version = next_version(model_root) if version is None else int(version)
    target = model_root / str(version)
    if target.exists():
        raise ConfigError(f"{target}: version {version} exists already; omit --version for the next")
    staging = model_root / f".tmp-{version}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()  # umask permissions, as for any folder (mkdtemp's 0700 would hide it from TF Serving)
    try:
        _serving_archive(run).write_out(str(staging), verbose=False)
        extra = staging / "assets.extra"
        extra.mkdir(exist_ok=True)
        shutil.copy(run.paths.config, extra / "tfrnn_config.yaml")
        write_warmup_requests(extra / WARMUP_FILE, model_root.name, run.spec.data.max_len)
        (extra / "labels.txt").write_text("\n".join(run.label_names) + "\n", encoding="utf-8")
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _export_under_tensorflow(run_dir, model_root, version):
    """`export_run` in a fresh process with KERAS_BACKEND=tensorflow, for a shell on another
    backend (JAX on a TPU VM). The serving graph is TensorFlow's whatever trained the model: the
    preprocessor is TensorFlow (string ops, lookup tables) and the `.keras` file is
    backend-independent, so the same run gives the same SavedModel from any shell. (Keras'
    jax2tf export would embed the model as one XLA call, a different graph, and cannot convert
    the preprocessor.) The child's user errors come back as the same exception, one line."""
    command = [sys.executable, "-m", "tfrnn.export", str(run_dir), str(model_root), str(version or "")]
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


def _main(run_dir, model_root, version):
    """`python -m tfrnn.export RUN_DIR MODEL_ROOT [VERSION]`: prints one JSON line, the version
    folder or the user error (exit status 2)."""
    try:
        target = export_run(run_dir, model_root, int(version) if version else None)
    except errors.TfrnnError as error:
        print(json.dumps({"error": type(error).__name__, "message": str(error)}))
        sys.exit(2)
    print(json.dumps({"path": str(target)}))


if __name__ == "__main__":
    _main(*sys.argv[1:4])
