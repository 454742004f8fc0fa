"""`tfrnn pretrain` (the AWD-LSTM language model) and `tfrnn train --init-from` (ULMFiT): the run
directory, the exact held-out perplexity, the encoder handed over, and one-line errors that
leave nothing behind."""

import json
import math
import os
import subprocess

import keras
import numpy as np
import pytest
import yaml

from tests.fixtures import copy_run, quiet, tiny_config, tiny_lm_config
from tfrnn.config import load_config
from tfrnn.data.lm_stream import stream_dataset
from tfrnn.errors import ConfigError, DataError
from tfrnn.models import build_classifier
from tfrnn.runs import RunPaths, load_pretrained, load_run, read_spec
from tfrnn.training.pretrain import pretrain
from tfrnn.training.train import train


def test_pretrain_run_directory(tiny_lm_run):
    paths = RunPaths(tiny_lm_run.run_dir)
    for path in (paths.config, paths.model, paths.vocabulary, paths.metrics, paths.history, paths.curves, paths.logs):
        assert path.exists(), path
    assert not paths.backup.exists()  # a finished run keeps no backup
    assert yaml.safe_load(paths.config.read_text())["task"] == "pretrain"
    _, spec = read_spec(paths.root)
    assert spec.task == "pretrain" and spec.model.rnn.units == 24
    metrics = json.loads(paths.metrics.read_text())
    assert metrics["epochs_run"] == 2 and metrics["train_tokens"] > 0 and metrics["tokens_per_second"] > 0
    assert metrics["perplexity"] == pytest.approx(math.exp(metrics["held_out_loss"]), rel=1e-3)
    assert metrics["perplexity"] < metrics["vocabulary_size"]  # it learned something
    assert len(metrics["per_epoch"]["val_perplexity"]) == 2 and min(metrics["per_epoch"]["val_perplexity"]) > 1
    header = paths.history.read_text().splitlines()[0].split(",")
    assert "val_perplexity" in header and "val_loss" in header


def test_held_out_perplexity_is_the_exact_softmax(tiny_lm_run):
    """The held-out loss is the full softmax's cross-entropy, though training samples 32 words."""
    pretrained = load_pretrained(tiny_lm_run.run_dir, "rnn")
    model, spec = pretrained.model, pretrained.spec
    from tfrnn.data.text_sources import read_documents, split_documents

    documents, _ = read_documents(spec.data)
    _, held_out = split_documents(documents, spec.data.validation_split, spec.train.seed)
    dataset, _ = stream_dataset(model.preprocessor.encode_stream(held_out), spec.data.batch_size, spec.data.max_len)
    model.reset_states()
    total, count = 0.0, 0
    for inputs, targets in dataset.as_numpy_iterator():
        logits = np.asarray(model.logits(model(inputs, training=False)), np.float64)  # (batch, window, vocab)
        logits -= logits.max(axis=-1, keepdims=True)
        log_probs = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
        total -= np.take_along_axis(log_probs, targets[..., None], axis=-1).sum()
        count += targets.size
    metrics = json.loads(RunPaths(tiny_lm_run.run_dir).metrics.read_text())
    assert total / count == pytest.approx(metrics["held_out_loss"], rel=1e-4)


def test_init_from_hands_the_encoder_and_vocabulary_over(tiny_lm_run, tmp_path):
    pretrained = load_pretrained(tiny_lm_run.run_dir, "rnn")
    config = load_config(None, [f"init_from={tiny_lm_run.run_dir}", "data.max_len=50"])
    spec = pretrained.classifier_of(config)
    assert (spec.model.rnn.units, spec.model.rnn.embedding_dim, spec.model.rnn.layers) == (24, 16, 2)
    assert spec.model.rnn.pooling == "concat" and not spec.model.rnn.bidirectional
    preprocessor = pretrained.preprocessor_for(spec.data.max_len)
    assert preprocessor.get_vocabulary() == pretrained.model.preprocessor.get_vocabulary()
    assert preprocessor.max_len == 50
    classifier = build_classifier(spec.model, preprocessor, 2, pretrained)
    for name in pretrained.model.encoder_layer_names():
        source = pretrained.model.get_layer(name)
        target = classifier.get_layer(name)
        for mine, theirs in zip(getattr(source, "cell", source).weights, getattr(target, "cell", target).weights):
            np.testing.assert_array_equal(keras.ops.convert_to_numpy(mine), keras.ops.convert_to_numpy(theirs))


def test_train_init_from_runs_ulmfit_and_exports(tiny_lm_run, tmp_path):
    result = train(tiny_config(tmp_path, "ulmfit", f"init_from={tiny_lm_run.run_dir}", "train.epochs=3"), log=quiet)
    spec = load_run(result.run_dir).spec
    assert spec.init_from == str(tiny_lm_run.run_dir.resolve())
    assert (spec.train.unfreeze, spec.train.decay, spec.train.layer_lr_factor) == ("gradual", "slanted", 2.6)
    assert result.metrics["epochs_run"] == 3 and 0 <= result.metrics["validation"]["accuracy"] <= 1
    from tfrnn.export import export_runs

    export_dir = export_runs([result.run_dir], tmp_path / "saved", 1)
    assert (export_dir / "saved_model.pb").is_file()


def test_language_model_goes_on_from_a_pretrain_run(tiny_lm_run, tmp_path, write_text_file):
    """ULMFiT's middle stage: the language model fine-tuned on the task's text keeps the base's
    architecture and vocabulary, and starts from its weights."""
    texts = write_text_file("task.txt", "\n".join(["a fine film and a great cast"] * 1000))
    overrides = [f"init_from={tiny_lm_run.run_dir}", f"data.sources=[{texts}]", "data.lines=true"]
    overrides += ["data.batch_size=8", "data.max_len=20", "train.epochs=1", "train.verbose=0"]
    config = load_config(None, [*overrides, f"output_dir={tmp_path}", "run_name=stage2"], task="pretrain")
    result = pretrain(config, log=quiet)
    stage2, base = load_pretrained(result.run_dir, "rnn"), load_pretrained(tiny_lm_run.run_dir, "rnn")
    assert (stage2.spec.model.rnn.units, stage2.spec.model.rnn.embedding_dim) == (24, 16)
    assert stage2.model.preprocessor.get_vocabulary() == base.model.preprocessor.get_vocabulary()


@pytest.fixture
def write_text_file(tmp_path):
    def write(name, content):
        path = tmp_path / name
        path.write_text(content, encoding="utf-8")
        return str(path)

    return write


def test_init_from_refuses_what_it_cannot_build_on(tiny_lm_run, tiny_run, tmp_path):
    cases = [
        (tiny_run.run_dir, "rnn", "a classifier run"),
        (tiny_lm_run.run_dir, "bert", "a model.kind=rnn language model"),
        (tmp_path / "nope", "rnn", "run directory not found"),
    ]
    for run_dir, kind, expected in cases:
        overrides = [f"init_from={run_dir}"] + (["model.kind=bert"] if kind == "bert" else [])
        with pytest.raises(ConfigError, match=expected):
            train(tiny_config(tmp_path, "refused", *overrides), log=quiet)
        assert not (tmp_path / "refused").exists()


def test_pretrain_refuses_bad_text_and_writes_nothing(tmp_path, write_text_file):
    label_only = write_text_file("labels.csv", "label\npos\nneg\n")
    with pytest.raises(DataError, match="no column 'text'"):
        pretrain(tiny_lm_config(tmp_path, "bad", f"data.sources=[{label_only}]"), log=quiet)
    short = write_text_file("short.txt", "too short a text")
    with pytest.raises(DataError, match="too few for one batch"):
        pretrain(tiny_lm_config(tmp_path, "bad", f"data.sources=[{short}]", "data.validation_split=0"), log=quiet)
    assert not (tmp_path / "bad").exists()


def test_predict_on_a_language_model_run_says_what_to_do(tiny_lm_run):
    with pytest.raises(ConfigError, match="fine-tune one on it with tfrnn train --init-from"):
        load_run(tiny_lm_run.run_dir)


def test_interrupted_pretraining_resumes(tmp_path, monkeypatch):
    """Ctrl-C after epoch 1 names the resume command; --resume finishes the run from its backup."""
    from tests.training.test_train import _InterruptAtEpochEnd
    from tfrnn.errors import Interrupted
    from tfrnn.training import pretrain as pretrain_module

    made = pretrain_module.run_callbacks
    monkeypatch.setattr(pretrain_module, "run_callbacks", lambda *a, **k: [*made(*a, **k), _InterruptAtEpochEnd(0)])
    with pytest.raises(Interrupted, match="tfrnn pretrain --resume"):
        pretrain(tiny_lm_config(tmp_path, "cut"), log=quiet)
    monkeypatch.setattr(pretrain_module, "run_callbacks", made)
    spec = load_config(tmp_path / "cut" / "config.yaml", task="pretrain")
    result = pretrain(spec, resume=True, log=quiet)
    assert result.metrics["epochs_run"] == 2 and result.metrics["perplexity"] > 1
    assert (tmp_path / "cut" / "history.csv").read_text().count("\n") == 3  # header + 2 epochs
    with pytest.raises(ConfigError, match="finished already"):
        pretrain(spec, resume=True, log=quiet)


def test_lora_on_a_pretrained_rnn(tiny_lm_run, tmp_path):
    """Issue 14 on the RNN: LoRA on the embedding and the LSTMs' kernels; the base stays
    bit-identical, the run keeps the adapter alone, and the export merges it."""
    config = tiny_config(
        tmp_path, "rnn-lora", f"init_from={tiny_lm_run.run_dir}", "model.peft.method=lora", "model.peft.rank=4",
        "train.unfreeze=none", "train.layer_lr_factor=1",
    )  # fmt: skip
    result = train(config, log=quiet)
    paths = RunPaths(result.run_dir)
    assert paths.adapter.is_file() and not paths.model.exists()
    assert 0 < result.metrics["trainable_fraction"] < 0.5 and result.metrics["peft"]["method"] == "lora"
    run = load_run(result.run_dir)
    lm = load_pretrained(tiny_lm_run.run_dir, "rnn").model
    embedding = run.model.get_layer("embedding")
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(embedding._embeddings),
        keras.ops.convert_to_numpy(lm.get_layer("embedding").embeddings),
    )
    lstm = run.model.get_layer("lstm_0").cell
    assert lstm.lora_enabled and not lstm.kernel.trainable
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(lstm.kernel), keras.ops.convert_to_numpy(lm.get_layer("lstm_0").cell.kernel)
    )
    texts = ["a great film", "a dull and awful film"]
    before = run.probabilities(texts)
    from tfrnn.export import export_runs
    from tfrnn.models.peft import merge_peft

    merge_peft(run.model)
    assert not lstm.lora_enabled and not embedding.lora_enabled
    run.model.predict_function = None  # traced with LoRA on
    np.testing.assert_allclose(run.probabilities(texts), before, atol=1e-5)  # merged = unmerged
    assert (export_runs([result.run_dir], tmp_path / "saved", 1) / "saved_model.pb").is_file()


def test_bert_masked_lm_pretraining_then_init_from(tmp_path):
    """A tiny BERT from scratch as a masked LM, then a classifier on its encoder and vocabulary."""
    overrides = [
        "model.kind=bert", "model.bert.hidden_dim=16", "model.bert.vocab_size=600", "data.limit=200",
        "data.max_len=32", "data.batch_size=16", "data.validation_split=0.1", "train.epochs=1", "train.verbose=0",
        "train.learning_rate=0.001", f"output_dir={tmp_path}", "run_name=mlm",
    ]  # fmt: skip
    result = pretrain(load_config(None, overrides, task="pretrain"), log=quiet)
    metrics = result.metrics
    assert 0 <= metrics["masked_lm_accuracy"] <= 1 and metrics["perplexity"] > 1
    assert metrics["perplexity"] == pytest.approx(math.exp(metrics["held_out_loss"]), rel=0.05)
    pretrained = load_pretrained(result.run_dir, "bert")
    classifier = train(
        tiny_config(tmp_path, "bert-cls", "model.kind=bert", f"init_from={result.run_dir}", "data.max_len=32",
                    "train.epochs=1", "data.limit=200"),
        log=quiet,
    )  # fmt: skip
    run = load_run(classifier.run_dir)
    assert run.spec.model.bert.hidden_dim == 16 and run.spec.model.bert.checkpoint is None
    assert run.model.preprocessor.get_vocabulary() == pretrained.model.preprocessor.get_vocabulary()
    with pytest.raises(ConfigError, match="position embeddings for 32 tokens"):
        train(tiny_config(tmp_path, "too-long", "model.kind=bert", f"init_from={result.run_dir}", "data.max_len=64"))
    with pytest.raises(ConfigError, match="position embeddings for 32 tokens"):  # the next pretraining stage
        stage2 = [f"init_from={result.run_dir}", "data.max_len=64", f"output_dir={tmp_path}", "run_name=too-long"]
        pretrain(load_config(None, ["model.kind=bert", *stage2], task="pretrain"), log=quiet)
    assert not (tmp_path / "too-long").exists()


def test_layer_groups_of_a_pretrained_classifier(tiny_lm_run):
    """fastai's split: the embedding, each LSTM, the head; layers a PEFT method froze are left out."""
    from tfrnn.config import PeftConfig
    from tfrnn.models.peft import apply_peft
    from tfrnn.training import ulmfit

    pretrained = load_pretrained(tiny_lm_run.run_dir, "rnn")
    spec = pretrained.classifier_of(load_config(None, [f"init_from={tiny_lm_run.run_dir}"]))
    classifier = build_classifier(spec.model, pretrained.preprocessor_for(50), 2, pretrained)
    assert ulmfit.rnn_layer_groups(classifier) == [["embedding"], ["lstm_0"], ["lstm_1"], []]
    apply_peft(classifier, PeftConfig(method="lora", rank=2, targets=["lstm_1"]))
    assert ulmfit.rnn_layer_groups(classifier) == [["lstm_1"], []]
    groups = ulmfit.layer_groups(classifier, ulmfit.rnn_layer_groups(classifier))
    assert [len(group) for group in groups] == [5, 2]  # A and B of both kernels and the bias; the head


def test_an_unfinished_pretrain_run_is_refused(tiny_lm_run, tmp_path):
    run = copy_run(tiny_lm_run.run_dir, tmp_path)
    (run / "metrics.json").unlink()
    with pytest.raises(ConfigError, match="unfinished; finish it with tfrnn pretrain --resume"):
        load_pretrained(run, "rnn")


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="tf.distribute")
def test_bert_masked_lm_under_mirrored_on_two_logical_cpus(tmp_path):
    """`tfrnn pretrain --model bert --strategy mirrored` splits the CPU into two replicas and
    pretrains; the held-out figures come out as on one device (finite, in range)."""
    overrides = [
        "model.bert.hidden_dim=16", "model.bert.vocab_size=600", "data.limit=120", "data.max_len=32",
        "data.batch_size=16", "data.validation_split=0.1", "train.epochs=1", "train.verbose=0",
    ]  # fmt: skip
    command = ["tfrnn", "pretrain", "--model", "bert", "--strategy", "mirrored", "--devices", "/cpu:0,/cpu:1"]
    command += ["--output-dir", str(tmp_path), "--name", "mlm", *overrides]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "MirroredStrategy, 2 replica(s)" in result.stdout
    metrics = json.loads((tmp_path / "mlm" / "metrics.json").read_text())
    assert 0 <= metrics["masked_lm_accuracy"] <= 1 and math.isfinite(metrics["perplexity"])
