"""Helpers shared by the training, export and CLI tests: the tiny config of the shared run
(the `tiny_run` fixture in tests/conftest.py) and serving an export in a fresh process."""

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

from tfrnn.config import load_config

# A run small enough to train in seconds on 2 CPU cores (600 reviews, 8 units, 2 epochs), with a
# learning rate high enough that it learns something (about 70% accuracy), so predictions differ.
TINY = (
    "model.rnn.units=8",
    "model.rnn.embedding_dim=8",
    "data.limit=600",
    "data.max_len=60",
    "train.learning_rate=0.05",
    "train.epochs=2",
    "train.verbose=0",
    "train.tensorboard=true",
)

# The same data as a tiny BERT from scratch: 2 blocks of hidden size 16, a learned WordPiece
# vocabulary of at most 1,000 tokens, sequences of 48 tokens. (TINY's model.rnn.* keys are
# dropped by `tiny_config` for other kinds: only the chosen kind's section may be given.)
TINY_BERT = (
    "model.kind=bert",
    "model.bert.hidden_dim=16",
    "model.bert.vocab_size=1000",
    "data.max_len=48",
    "train.learning_rate=0.001",
    "train.epochs=2",
)


def tiny_overrides(*overrides):
    """TINY, then `overrides`; TINY's model.rnn.* settings are left out when `overrides` choose
    another model.kind (whose config would refuse them) or a pretrained encoder (`init_from`)."""
    kinds = [item.split("=", 1)[1] for item in overrides if item.startswith("model.kind=")]
    pretrained = any(item.startswith("init_from=") for item in overrides)  # it decides the encoder
    tiny = TINY
    if pretrained or (kinds and kinds[-1] != "rnn"):
        tiny = [item for item in TINY if not item.startswith("model.rnn.")]
    return [*tiny, *overrides]


# Texts the serving tests send: plain, punctuation, empty, accents and ß, Chinese, emoji.
SERVING_TEXTS = [
    "A warm, funny film with a great cast.",
    "Dull. Far too long, and the ending is awful.",
    "",
    "Un film très émouvant, à voir absolument. Größe ß",
    "这部电影非常好看，演员表演出色。",
    "Loved it 😍🎬👍",
]


def tiny_config(output_dir, run_name, *overrides):
    """The tiny RunConfig, written under `output_dir/run_name`, with more overrides last."""
    return load_config(None, tiny_overrides(f"output_dir={output_dir}", f"run_name={run_name}", *overrides))


def copy_run(run_dir, tmp_path):
    """A private copy of a shared run (tmp_path/<run name>), for tests that write into a run
    directory (evaluations/, a resumed run): shared fixtures stay as their run left them."""
    return Path(shutil.copytree(run_dir, Path(tmp_path) / Path(run_dir).name))


def free_ports(count):
    """Distinct ports that were free on 127.0.0.1 a moment ago. The kernel picks them, so another
    pytest-xdist worker doing the same is very unlikely to get them too."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def quiet(message):
    """A `log` for train() that prints nothing."""


# Runs in a fresh interpreter where tfrnn cannot be imported at all, nor keras and tensorflow_text
# unless the export needs TensorFlow Text's ops (`import tensorflow` itself imports keras 3 when
# it is installed, so blocking is the real test).
SERVE = textwrap.dedent(
    """
    import json, sys
    export_dir, texts_path, out_path, text_ops = sys.argv[1:]
    # With TensorFlow Text's ops (what TF Serving's model server links in), keras may load too:
    # tensorflow_text imports it.
    blocked = ("tfrnn", "tfrnn_cli") + (() if text_ops == "yes" else ("keras", "tf_keras", "tensorflow_text"))
    for name in blocked:
        sys.modules[name] = None  # `import name` now raises ImportError
    import tensorflow as tf
    if text_ops == "yes":
        import tensorflow_text
    texts = json.load(open(texts_path, encoding="utf-8"))
    serve = tf.saved_model.load(export_dir).signatures["serving_default"]
    (), inputs = serve.structured_input_signature
    outputs = serve(text=tf.constant(texts, tf.string))
    loaded = sorted(m for m, v in sys.modules.items() if v is not None and m.split(".")[0] in
                    ("keras", "tf_keras", "tfrnn", "tfrnn_cli", "tensorflow_text"))
    json.dump({
        "inputs": {k: [s.dtype.name, s.shape.as_list()] for k, s in inputs.items()},
        "outputs": {k: [s.dtype.name, s.shape.as_list()] for k, s in serve.structured_outputs.items()},
        "probabilities": outputs["probabilities"].numpy().tolist(),
        "label_id": outputs["label_id"].numpy().tolist(),
        "label": [b.decode("utf-8") for b in outputs["label"].numpy()],
        "loaded": loaded,
    }, open(out_path, "w"))
    """
)


def serve_in_fresh_process(export_dir, texts, tmp_path, text_ops=False, check=True):
    """Runs the exported serving_default on `texts` in a fresh Python that imports tensorflow
    only (and tensorflow_text when `text_ops`); returns its JSON report, or with `check=False`
    the subprocess result."""
    texts_path, out_path = tmp_path / "texts.json", tmp_path / "served.json"
    texts_path.write_text(json.dumps(texts), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", SERVE, str(export_dir), str(texts_path), str(out_path), "yes" if text_ops else "no"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,  # not the repository: nothing importable by accident
        timeout=300,
    )
    if not check:
        return result
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(out_path.read_text())


# A language model small enough to pretrain in seconds: 300 of the embedded reviews, a vocabulary
# of 800 words, embeddings of 16, two LSTM layers of 24, 8 streams of 20 tokens, 32 sampled words.
TINY_LM = (
    "data.limit=300",
    "data.batch_size=8",
    "data.max_len=20",
    "data.validation_split=0.1",
    "model.rnn.vocab_size=800",
    "model.rnn.embedding_dim=16",
    "model.rnn.units=24",
    "model.rnn.sampled=32",
    "train.epochs=2",
    "train.verbose=0",
)


def tiny_lm_config(output_dir, run_name, *overrides):
    """The tiny PretrainConfig (TINY_LM), written under `output_dir/run_name`, more overrides last."""
    return load_config(
        None, [*TINY_LM, f"output_dir={output_dir}", f"run_name={run_name}", *overrides], task="pretrain"
    )
