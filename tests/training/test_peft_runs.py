"""PEFT runs end to end, every method, on a tiny BERT preset: the run keeps its trained weights
alone (adapter.npz, no model.keras) with the base's fingerprint; `load_run` (evaluate, predict,
export) rebuilds base + adapter; the export merges what the method can merge and serves what the
run predicts; another base is refused; `--resume` ends where an uninterrupted run ends."""

import json
import os
import shutil
import subprocess

import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner
from tfrnn_cli.main import cli

from tests.conftest import write_tiny_bert_preset
from tests.fixtures import quiet, tiny_overrides
from tests.test_export import saved_values
from tests.training.test_train import _InterruptAtEpochEnd, _with_callbacks
from tfrnn import choices
from tfrnn.config import load_config
from tfrnn.errors import ConfigError, Interrupted
from tfrnn.export import export_run
from tfrnn.models.peft import merge_peft
from tfrnn.runs import RunPaths, load_run
from tfrnn.training.train import train

TEXTS = ["a warm and funny film", "dull, far too long", ""]
# Settings that fit the tiny encoder (hidden size 16).
SMALL = {"adapter": ["model.peft.bottleneck=8"], "prefix": ["model.peft.prefix_length=4", "model.peft.prefix_hidden=16"],
         "prompt": ["model.peft.prefix_length=4"], "adalora": ["model.peft.init_rank=6", "model.peft.rank=4"]}  # fmt: skip
MERGED = {"lora", "qlora", "dora", "ia3", "adalora"}  # folded into the weights on export


def run_cli(*args):
    return CliRunner().invoke(cli, [str(arg) for arg in args])


def _overrides(tmp_path, preset, method, *extra):
    """The tiny run's overrides for a PEFT run of `method` over `preset`, named after the method."""
    return tiny_overrides(
        f"output_dir={tmp_path}",
        f"run_name={method}",
        "model.kind=bert",
        f"model.bert.checkpoint={preset}",
        "data.limit=80",
        "data.max_len=32",
        "data.batch_size=16",
        "train.epochs=1",
        "train.learning_rate=0.01",
        "train.tensorboard=false",
        f"model.peft.method={method}",
        *SMALL.get(method, []),
        *extra,
    )


def _config(tmp_path, preset, method, *extra):
    return load_config(None, _overrides(tmp_path, preset, method, *extra))


def _merged_values(run_dir):
    """Values of a run's model once its method is merged: its weights without the method's own
    (which merging leaves unused or removes)."""
    model = load_run(run_dir).model
    merge_peft(model)
    names = ("lora", "dora", "ia3", "adalora")
    return sum(int(np.prod(w.shape)) for w in model.weights if not any(name in w.path for name in names))


@pytest.mark.parametrize("method", list(choices.PEFT_METHODS))
def test_peft_run_keeps_its_adapter_and_exports_what_it_predicts(method, tiny_bert_preset, tmp_path):
    result = train(_config(tmp_path, tiny_bert_preset, method), log=quiet)
    paths = RunPaths(result.run_dir)
    assert paths.adapter.is_file() and not paths.model.exists()
    metrics = json.loads(paths.metrics.read_text())
    assert metrics["peft"]["method"] == method and metrics["peft"]["adapter_bytes"] == paths.adapter.stat().st_size
    assert 0 < metrics["trainable_fraction"] < 1 and "accuracy" in metrics["validation"]
    run = load_run(result.run_dir)  # base checkpoint + adapter
    probabilities = run.probabilities(TEXTS)
    exported = export_run(result.run_dir, tmp_path / "saved_models" / method)
    served = tf.saved_model.load(str(exported)).signatures["serving_default"](text=tf.constant(TEXTS))
    np.testing.assert_allclose(served["probabilities"].numpy(), probabilities, atol=1e-5, rtol=0)
    if method in MERGED:  # the SavedModel holds the merged weights only
        assert saved_values(exported) == _merged_values(result.run_dir)


def test_adalora_run_reports_its_final_ranks(tiny_bert_preset, tmp_path):
    config = _config(tmp_path, tiny_bert_preset, "adalora", "model.peft.init_rank=4", "model.peft.rank=2",
                     "model.peft.interval=1", "train.epochs=2", "data.validation_split=0")  # fmt: skip
    ranks = train(config, log=quiet).metrics["peft"]["ranks"]
    assert ranks["total"] == 2 * 2 * 2  # 2 blocks x (query, value) x rank 2 on average


def test_peft_run_refuses_another_base(tiny_bert_preset, tmp_path):
    base = tmp_path / "base"
    shutil.copytree(tiny_bert_preset, base)
    result = train(_config(tmp_path, base, "lora"), log=quiet)
    shutil.rmtree(base)
    write_tiny_bert_preset(base, RunPaths(result.run_dir).vocabulary.read_text().splitlines(), seed=1)
    with pytest.raises(ConfigError, match=r"adapter.npz: trained on another base encoder \(weights fingerprint"):
        load_run(result.run_dir)


def test_resumed_peft_run_ends_like_an_uninterrupted_one(tiny_bert_preset, tmp_path, monkeypatch):
    whole = train(_config(tmp_path, tiny_bert_preset, "lora", "train.epochs=2", "run_name=whole"), log=quiet)
    config = _config(tmp_path, tiny_bert_preset, "lora", "train.epochs=2", "run_name=resumed")
    _with_callbacks(monkeypatch, _InterruptAtEpochEnd(0))
    with pytest.raises(Interrupted):
        train(config, log=quiet)
    _with_callbacks(monkeypatch)
    resumed = train(load_config(RunPaths(tmp_path / "resumed").config), resume=True, log=quiet)
    with np.load(RunPaths(whole.run_dir).adapter) as a, np.load(RunPaths(resumed.run_dir).adapter) as b:
        assert a.files == b.files
        for name in a.files:
            np.testing.assert_array_equal(a[name], b[name])
    assert resumed.metrics["validation"] == whole.metrics["validation"]


def test_several_peft_runs_export_as_one_model_with_one_signature_each(tiny_bert_preset, tmp_path):
    """Two runs over one base (LoRA, adapters): one SavedModel, `serving_default` the first, the
    other named after its run; each signature predicts as its own run; the base stored once."""
    first = train(_config(tmp_path, tiny_bert_preset, "lora", "run_name=sst"), log=quiet)
    second = train(_config(tmp_path, tiny_bert_preset, "adapter", "run_name=imdb", "train.seed=7"), log=quiet)
    result = run_cli("export", first.run_dir, second.run_dir, "--to", tmp_path / "saved_models" / "tasks")
    assert result.exit_code == 0, result.output
    target = tmp_path / "saved_models" / "tasks" / "1"
    assert f"exported {target} (" in result.output and "signatures serving_default, imdb:" in result.output
    loaded = tf.saved_model.load(str(target))
    for name, run_dir in (("serving_default", first.run_dir), ("imdb", second.run_dir)):
        served = loaded.signatures[name](text=tf.constant(TEXTS))["probabilities"].numpy()
        np.testing.assert_allclose(served, load_run(run_dir).probabilities(TEXTS), atol=1e-5, rtol=0)
    alone = [saved_values(export_run(run.run_dir, tmp_path / "alone" / run.run_dir.name)) for run in (first, second)]
    own = sum(load_run(run.run_dir).model.count_params() for run in (first, second)) - sum(alone)
    assert saved_values(target) < max(alone) + 0.5 * min(alone)  # the base once, not twice
    assert own > 0 and json.loads((target / "assets.extra" / "tasks.json").read_text())["imdb"]["labels"] == [
        "neg",
        "pos",
    ]


def test_exporting_several_runs_needs_peft_runs_over_one_base(tiny_bert_preset, tiny_run, tmp_path):
    lora = train(_config(tmp_path, tiny_bert_preset, "lora"), log=quiet)
    result = run_cli("export", lora.run_dir, tiny_run.run_dir, "--to", tmp_path / "saved_models" / "mixed")
    assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
    assert result.output.startswith(f"Error: {tiny_run.run_dir}: not a PEFT run; only PEFT runs over one base")
    assert not (tmp_path / "saved_models" / "mixed").exists() or not any(
        (tmp_path / "saved_models" / "mixed").iterdir()
    )


@pytest.mark.parametrize("method", ["lora", "adalora"])
def test_peft_run_under_mirrored_strategy_and_mixed_precision(method, tiny_bert_preset, tmp_path):
    """`tfrnn train --peft M --strategy mirrored` over two logical CPUs with mixed bfloat16: the
    run trains, keeps its adapter and predicts from it."""
    overrides = _overrides(tmp_path, tiny_bert_preset, method, "train.precision=mixed_bfloat16", "train.verbose=0")
    command = ["tfrnn", "train", "--strategy", "mirrored", "--devices", "/cpu:0,/cpu:1", *overrides]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "strategy: MirroredStrategy, 2 replica(s)" in result.stdout
    run = load_run(tmp_path / method)
    assert RunPaths(run.paths.root).adapter.is_file() and np.isfinite(run.probabilities(TEXTS)).all()
    if method == "adalora":
        assert json.loads(run.paths.metrics.read_text())["peft"]["ranks"]["total"] == 2 * 2 * 4  # rank 4 on average


@pytest.mark.parametrize(
    "settings, message",
    [
        (["model.peft.rank=17"], "Error: model.peft.rank=17: larger than layer 'query' allows (16 inputs, 16 outputs)"),
        (["model.peft.targets=[qkv]"], "Error: model.peft.targets: no layer named 'qkv' (the encoder's: "),
    ],
)
def test_settings_the_encoder_refuses_are_one_line_and_leave_nothing(settings, message, tiny_bert_preset, tmp_path):
    result = run_cli("train", *_overrides(tmp_path, tiny_bert_preset, "lora", *settings))
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert result.exit_code == 2 and len(errors) == 1 and "Traceback" not in result.output, result.output
    assert errors[0].startswith(message) and not (tmp_path / "lora").exists()  # the run directory removed
