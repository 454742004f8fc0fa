"""`tfrnn pretrain`'s config (task: pretrain) and a classifier's `init_from`: defaults, what the
pretrained run decides, and one-line errors."""

import pytest

from tfrnn.config import (
    INIT_FROM_DEFAULTS,
    PretrainConfig,
    RNNLanguageModelConfig,
    load_config,
    resolve,
    save_config,
    to_yaml,
)
from tfrnn.errors import ConfigError


def test_pretrain_defaults_and_kinds():
    config = load_config(None, [], task="pretrain")
    assert isinstance(config, PretrainConfig) and config.task == "pretrain"
    assert config.model.kind == "rnn" and config.model.rnn == RNNLanguageModelConfig() and config.model.bert is None
    assert config.data.sources == ("embedded",) and config.train.optimizer == "adamw"
    bert = load_config(None, ["model.kind=bert"], task="pretrain")
    assert bert.data.max_len == 128 and bert.train.learning_rate == 1e-4 and bert.model.bert.mask_rate == 0.15


def test_pretrain_spec_round_trips_through_yaml(tmp_path):
    spec = resolve(load_config(None, ["data.sources=[a.csv,corpus/]"], task="pretrain"), run_name="lm")
    assert spec.run_name == "lm" and spec.tfrnn_version is not None
    save_config(spec, tmp_path / "config.yaml")
    assert "task: pretrain" in to_yaml(spec)
    assert load_config(tmp_path / "config.yaml", task="pretrain") == spec


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (["model.kind=feedforward"], "model.kind='feedforward': expected one of rnn, bert"),
        (["model.rnn.pooling=max"], "Key 'pooling' not in 'RNNLanguageModelConfig'"),
        (["model.rnn.weight_dropout=1.5"], "model.rnn.weight_dropout=1.5: expected 0 <= x < 1"),
        (["model.rnn.sampled=-1"], "model.rnn.sampled=-1: must be >= 0"),
        (["data.sources=[]"], "data.sources: empty"),
        (["train.unfreeze=gradual"], "only for a classifier, not a language model"),
        (["train.label_smoothing=0.1"], "train.label_smoothing=0.1: only for a classifier"),
        (["train.adversarial.method=fgm"], "train.adversarial.method=fgm: only for a classifier"),
        (["task=train"], "task='train'"),
        (["init_from=runs/lm", "model.rnn.units=8"], "model.rnn.units: the pretrained model"),
        (["model.kind=bert", "model.bert.mask_rate=0"], "model.bert.mask_rate=0.0: must be above 0"),
    ],
)
def test_pretrain_errors_name_the_key(overrides, expected):
    with pytest.raises(ConfigError, match=expected.replace("(", r"\(").replace("[", r"\[")):
        load_config(None, overrides, task="pretrain")


def test_init_from_brings_ulmfit_defaults_under_the_overrides():
    config = load_config(None, ["init_from=runs/lm", "train.epochs=2"])
    rnn_defaults = INIT_FROM_DEFAULTS["rnn"]
    assert config.model.rnn.pooling == "concat"  # bidirectional: the pretrained run decides (False)
    assert (config.train.decay, config.train.unfreeze) == ("slanted", "gradual")
    assert config.train.layer_lr_factor == rnn_defaults["train"]["layer_lr_factor"] == 2.6
    assert config.train.epochs == 2
    assert load_config(None, []).train.unfreeze == "none"  # without init_from: unchanged


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (["init_from=runs/lm", "model.rnn.embedding_dim=8"], "model.rnn.embedding_dim: the pretrained encoder"),
        (["init_from=runs/lm", "model.rnn.bidirectional=true"], "model.rnn.bidirectional: the pretrained encoder"),
        (["model.kind=feedforward", "init_from=runs/lm"], "needs model.kind=rnn or bert"),
        (["train.decay=slanted"], "needs train.warmup_ratio > 0"),
        (["model.kind=feedforward", "train.unfreeze=gradual"], "only for model.kind=rnn"),
        (["train.layer_lr_factor=0"], "train.layer_lr_factor=0.0: must be positive"),
    ],
)
def test_init_from_errors_name_the_key(overrides, expected):
    with pytest.raises(ConfigError, match=expected):
        load_config(None, overrides)


@pytest.mark.parametrize(
    "key",
    ["model.rnn.embedding_dropout", "model.rnn.input_dropout", "model.rnn.hidden_dropout", "model.rnn.output_dropout"],
)
def test_language_model_dropouts_are_rates(key):
    with pytest.raises(ConfigError, match=rf"{key}=1.0: expected 0 <= x < 1"):
        load_config(None, [f"{key}=1.0"], task="pretrain")
    assert getattr(load_config(None, [f"{key}=0.0"], task="pretrain").model.rnn, key.split(".")[-1]) == 0.0


def test_pretrain_kinds_are_one_table():
    from tfrnn import choices
    from tfrnn.config import PRETRAIN_SECTIONS

    assert list(PRETRAIN_SECTIONS) == list(choices.PRETRAIN_KINDS)


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (["train.layer_lr_factor=2.6"], "train.layer_lr_factor=2.6: only for a classifier, not a language model"),
        (["train.monitor=val_accuracy"], "the RNN language model logs no accuracy"),
        (["init_from=runs/lm", "data.strip_html=false"], "data.strip_html: the pretrained model"),
    ],
)
def test_pretrain_refuses_settings_it_would_ignore(overrides, expected):
    with pytest.raises(ConfigError, match=expected):
        load_config(None, overrides, task="pretrain")


def test_init_from_refuses_other_cleaning():
    with pytest.raises(ConfigError, match="data.unicode_form: the pretrained encoder"):
        load_config(None, ["init_from=runs/lm", "data.unicode_form=NFKC"])
