"""load_config: defaults <- the kind's defaults <- YAML <- dotted overrides, into frozen
dataclasses with one model section per kind; resolve; save/load; every bad input is a one-line
ConfigError naming the key and where it came from."""

import dataclasses
import re
import subprocess
import sys
from datetime import datetime

import pytest
import yaml

import tfrnn
from tfrnn import choices
from tfrnn.config import (
    BERT_SCRATCH_FIELDS,
    CHOICES,
    KIND_DEFAULTS,
    POSITIVE,
    RATES,
    SECTIONS,
    BertConfig,
    DataConfig,
    FeedForwardConfig,
    ModelConfig,
    RNNConfig,
    RunConfig,
    TrainConfig,
    _has,
    as_dict,
    load_config,
    resolve,
    save_config,
    to_yaml,
)
from tfrnn.errors import ConfigError


@pytest.fixture
def write_yaml(tmp_path):
    def write(text, name="run.yaml"):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


def _error(path=None, overrides=()):
    with pytest.raises(ConfigError) as caught:
        load_config(path, overrides)
    message = str(caught.value)
    assert "\n" not in message, message
    return message


def _one_of(table):
    return f"expected one of {', '.join(table)}"


# ------------------------------------------------------------------------------------ defaults


def test_defaults_are_the_dataclass_defaults():
    assert load_config() == RunConfig()
    assert load_config(None, []) == RunConfig()


@pytest.mark.parametrize("kind", list(choices.KINDS))
def test_only_the_kinds_section_is_present(kind):
    config = load_config(None, [f"model.kind={kind}"])
    assert config.model.kind == kind
    assert config.model.section == SECTIONS[kind]() == getattr(config.model, kind)
    for other in SECTIONS:
        if other != kind:
            assert getattr(config.model, other) is None, other


def test_rnn_is_the_default_kind():
    model = load_config().model
    assert (model.kind, model.rnn, model.feedforward, model.bert) == ("rnn", RNNConfig(), None, None)
    assert model.section is model.rnn
    # The data section lost the tokenizer settings (they moved into the model sections).
    names = {f.name for f in dataclasses.fields(DataConfig)}
    assert not {"tokenizer", "vocab_size", "lowercase", "strip_accents"} & names


def test_model_config_is_a_one_of():
    assert ModelConfig(kind="bert").section == BertConfig()  # the active section: its defaults
    assert ModelConfig(kind="feedforward", feedforward=FeedForwardConfig(hidden_units=9)).section.hidden_units == 9
    with pytest.raises(ValueError, match="model.rnn"):
        ModelConfig(kind="bert", rnn=RNNConfig())


def test_bert_kind_defaults_sit_under_the_file_and_overrides(write_yaml):
    config = load_config(None, ["model.kind=bert"])
    assert (config.data.max_len, config.model.bert.pooling) == (128, "cls")
    assert (config.train.optimizer, config.train.learning_rate, config.train.warmup_ratio) == ("adamw", 2e-5, 0.1)
    for key, value in KIND_DEFAULTS["bert"]["train"].items():
        assert getattr(config.train, key) == value, key
    path = write_yaml("model:\n  kind: bert\ntrain:\n  learning_rate: 5.0e-5\n")
    config = load_config(path, ["data.max_len=64"])
    assert (config.train.learning_rate, config.data.max_len, config.train.decay) == (5e-5, 64, "linear")
    for kind in ("rnn", "feedforward"):  # other kinds keep the plain defaults
        other = load_config(None, [f"model.kind={kind}"])
        assert (other.train, other.data) == (TrainConfig(), DataConfig()), kind
        assert other.data.max_len == 200 and other.train.learning_rate == 3e-3


def test_kind_chosen_in_the_file():
    config = load_config(None, ["model.kind=feedforward", "model.feedforward.hidden_units=9"])
    assert config.model.section == FeedForwardConfig(hidden_units=9)


# -------------------------------------------------------------------------------- frozen objects


def test_every_config_object_is_frozen():
    config = load_config(None, ["data.labels=[neg,pos]"])
    for obj, name, value in [
        (config, "run_name", "x"),
        (config.data, "batch_size", 3),
        (config.model, "kind", "bert"),
        (config.model.rnn, "units", 3),
        (config.train, "epochs", 3),
    ]:
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(obj, name, value)
    bert = load_config(None, ["model.kind=bert"]).model.bert
    with pytest.raises(dataclasses.FrozenInstanceError):
        bert.hidden_dim = 8
    assert hash(config) == hash(load_config(None, ["data.labels=[neg,pos]"]))  # nothing mutable inside


def test_lists_are_tuples():
    config = load_config(None, ["data.labels=[neg,pos]", "train.devices=[/cpu:0,/cpu:1]"])
    assert config.data.labels == ("neg", "pos") and isinstance(config.data.labels, tuple)
    assert config.train.devices == ("/cpu:0", "/cpu:1") and isinstance(config.train.devices, tuple)
    assert DataConfig(labels=["a", "b"]).labels == ("a", "b")
    assert TrainConfig(devices=["/gpu:0"]).devices == ("/gpu:0",)
    assert DataConfig().labels is None and TrainConfig().devices is None


def test_changes_are_new_objects():
    config = load_config()
    changed = dataclasses.replace(config, train=dataclasses.replace(config.train, epochs=1))
    assert (changed.train.epochs, config.train.epochs) == (1, 10)


# --------------------------------------------------------------------- YAML and overrides


def test_yaml_then_overrides_applied_last(write_yaml):
    path = write_yaml("model:\n  rnn:\n    cell: gru\n    units: 16\ntrain:\n  epochs: 4\n")
    config = load_config(path, ["model.rnn.units=32", "data.labels=[neg,pos]", "train.clipnorm=null"])
    assert config.model.rnn.cell == "gru"  # from the file
    assert config.model.rnn.units == 32  # the override wins over the file
    assert config.train.epochs == 4
    assert config.data.labels == ("neg", "pos")
    assert config.train.clipnorm is None
    assert config.model.rnn.pooling == RNNConfig().pooling  # untouched fields keep defaults
    assert isinstance(config.model.rnn.units, int) and isinstance(config.train.learning_rate, float)


def test_overrides_convert_strings_to_field_types():
    config = load_config(
        None, ["train.learning_rate=1e-4", "data.bucket=false", "data.limit=50", "model.rnn.dropout=0"]
    )
    assert config.train.learning_rate == pytest.approx(1e-4)
    assert config.data.bucket is False and config.data.limit == 50
    assert config.model.rnn.dropout == 0.0 and isinstance(config.model.rnn.dropout, float)


def test_empty_yaml_file_means_defaults(write_yaml):
    assert load_config(write_yaml("")) == RunConfig()


def test_later_override_wins():
    assert load_config(None, ["model.rnn.units=4", "model.rnn.units=6"]).model.rnn.units == 6


def test_override_can_change_the_kind_of_a_file(write_yaml):
    path = write_yaml("model:\n  kind: feedforward\n  feedforward:\n    hidden_units: 5\n")
    assert load_config(path).model.feedforward.hidden_units == 5
    config = load_config(write_yaml("model:\n  kind: feedforward\n"), ["model.kind=bert", "model.bert.heads=4"])
    assert (config.model.kind, config.model.bert.heads, config.model.feedforward) == ("bert", 4, None)


# ---------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "text, expected",
    [
        ("model:\n  rnn:\n    units: 8\n    foo: 3\n", ["run.yaml:4", "model.rnn.foo", "'foo'"]),  # unknown key
        ("model:\n  foo: 3\n", ["run.yaml:2", "model.foo", "'foo'"]),
        ("foo: 1\n", ["run.yaml:1", "foo"]),  # unknown top-level key
        ("model:\n  rnn:\n    units: abc\n", ["run.yaml:3", "model.rnn.units", "'abc'"]),  # wrong type
        ("train:\n  epochs: 2.5\n", ["run.yaml:2", "train.epochs", "2.5"]),
        ("train:\n  tensorboard: maybe\n", ["run.yaml:2", "train.tensorboard", "maybe"]),
        ("model: 3\n", ["run.yaml", "ModelConfig"]),  # a scalar where a section belongs
        ("model:\n  rnn: 3\n", ["run.yaml", "RNNConfig"]),
        ("- a\n- b\n", ["run.yaml", "mapping"]),
        ("model:\n  kind: gpt\n", ["run.yaml:2", f"model.kind='gpt': {_one_of(choices.KINDS)}"]),
    ],
)
def test_bad_yaml_values_name_file_line_and_key(write_yaml, text, expected):
    message = _error(write_yaml(text))
    for part in expected:
        assert part in message, (part, message)


@pytest.mark.parametrize(
    "text, where",
    [
        ("model:\n  kind: rnn\n bad: [1, 2\n", "run.yaml:3:"),  # unclosed flow sequence
        ("model:\n  kind: rnn\n    x: y\n", "run.yaml:3:6"),  # mapping inside a scalar
        ("model:\n\tkind: rnn\n", "run.yaml:2:1"),  # a tab as indentation
    ],
)
def test_yaml_syntax_error_names_line_and_column(write_yaml, text, where):
    assert where in _error(write_yaml(text))


def test_missing_config_file(tmp_path):
    message = _error(tmp_path / "nope.yaml")
    assert "nope.yaml" in message and "not found" in message


def test_directory_as_config_file(tmp_path):
    assert "not found" in _error(tmp_path)


@pytest.mark.parametrize(
    "override, expected",
    [
        ("model.foo=1", ["model.foo=1", "'foo'"]),
        ("model.rnn.foo=1", ["model.rnn.foo=1", "'foo'"]),
        ("units=3", ["units=3", "'units'"]),
        ("model.rnn.units=abc", ["model.rnn.units=abc", "'abc'"]),
        ("model.rnn.units=1.5", ["model.rnn.units=1.5", "1.5"]),
        ("model.rnn.units", ["model.rnn.units", "KEY=VALUE"]),
        ("model=3", ["model=3"]),
        ("run_name=${nope}", ["run_name", "nope"]),  # interpolation resolved at the end
        ("model.rnn.units=${oc.env:TFRNN_TEST_UNSET_VARIABLE}", ["model.rnn.units", "TFRNN_TEST_UNSET_VARIABLE"]),
        ("model.kind=${oc.env:TFRNN_TEST_UNSET_VARIABLE}", ["model.kind", "TFRNN_TEST_UNSET_VARIABLE"]),
    ],
)
def test_bad_overrides_name_the_override(override, expected):
    message = _error(overrides=[override])
    assert message.startswith(f"override {override!r}: "), message
    for part in expected:
        assert part in message, (part, message)


def _kind_of(key):
    """A model kind in which the dotted `key` applies."""
    return "bert" if ".bert." in key else "feedforward" if ".feedforward." in key else "rnn"


@pytest.mark.parametrize("key", CHOICES)
def test_bad_choice_lists_the_choices_of_tfrnn_choices(key):
    kind = _kind_of(key)
    overrides = [f"{key}=nope"] if key == "model.kind" else [f"model.kind={kind}", f"{key}=nope"]
    assert _error(overrides=overrides) == f"override '{key}=nope': {key}='nope': {_one_of(CHOICES[key])}"


@pytest.mark.parametrize(
    "override, expected",
    [
        ("model.rnn.cell=transformer", "model.rnn.cell='transformer': expected one of simple_rnn, lstm, gru, feedback"),
        ("model.rnn.pooling=sum", "model.rnn.pooling='sum': expected one of last, mean, max, concat"),
        ("model.rnn.pooling=cls", "model.rnn.pooling='cls': expected one of last, mean, max, concat"),
        ("model.rnn.tokenizer=wordpiece", "model.rnn.tokenizer='wordpiece': expected one of word, char"),
        ("train.decay=step", "train.decay='step'"),
        ("data.source=web", "data.source='web'"),
        ("train.optimizer=sgd", "train.optimizer='sgd'"),
        ("data.validation_split=1.0", "data.validation_split=1.0: expected 0 <= x < 1"),
        ("data.validation_split=-0.1", "data.validation_split=-0.1"),
        ("data.limit=0", "data.limit=0"),
        ("train.epochs=0", "train.epochs=0: must be positive"),
        ("model.rnn.units=-4", "model.rnn.units=-4: must be positive"),
        ("data.batch_size=0", "data.batch_size=0: must be positive"),
        ("train.strategy=tpu-pod", "train.strategy='tpu-pod'"),
        ("train.precision=float16", "train.precision='float16'"),
    ],
)
def test_bad_choices_and_ranges(override, expected):
    assert _error(overrides=[override]).startswith(f"override {override!r}: {expected}")


def _of_classifiers(key):
    """Whether a key of the shared tables is a classifier's (else only a language model's)."""
    return _has(RunConfig(model=ModelConfig(kind=_kind_of(key))), key)


@pytest.mark.parametrize("key", [key for key in RATES if _of_classifiers(key)])
@pytest.mark.parametrize("value", ["1.0", "-0.1", "1.5"])
def test_dropout_is_in_0_1(key, value):
    kind = _kind_of(key)
    message = _error(overrides=[f"model.kind={kind}", f"{key}={value}"])
    assert message == f"override '{key}={value}': {key}={float(value)}: expected 0 <= x < 1"
    if ".peft." in key:
        config = load_config(
            None, ["model.kind=bert", "model.bert.checkpoint=./c", "model.peft.method=lora", f"{key}=0.0"]
        )
        assert config.model.peft.dropout == 0.0
    else:
        assert getattr(load_config(None, [f"model.kind={kind}", f"{key}=0.0"]).model.section, key.split(".")[-1]) == 0.0


@pytest.mark.parametrize("key", POSITIVE)
def test_sizes_are_positive(key):
    kind = _kind_of(key)
    message = _error(overrides=[f"model.kind={kind}", f"{key}=0"])
    assert message.startswith(f"override '{key}=0': {key}=0") and message.endswith("must be positive"), message


def test_bad_choice_in_yaml_file(write_yaml):
    path = write_yaml("train:\n  epochs: 2\nmodel:\n  rnn:\n    units: 8\n    pooling: sum\n")
    assert _error(path) == f"{path}:6: model.rnn.pooling='sum': expected one of last, mean, max, concat"


def test_bad_value_from_an_override_names_the_override_not_the_file(write_yaml):
    path = write_yaml("model:\n  rnn:\n    pooling: mean\n")
    assert _error(path, ["model.rnn.pooling=sum"]) == (
        "override 'model.rnn.pooling=sum': model.rnn.pooling='sum': expected one of last, mean, max, concat"
    )


# ---------------------------------------------------------------------- the kinds' sections


@pytest.mark.parametrize(
    "overrides, key, kind, other",
    [
        (["model.kind=bert", "model.rnn.cell=gru"], "model.rnn.cell", "bert", "rnn"),
        (["model.rnn.cell=gru", "model.kind=bert"], "model.rnn.cell", "bert", "rnn"),  # order does not matter
        (["model.bert.checkpoint=./bert"], "model.bert.checkpoint", "rnn", "bert"),
        (["model.kind=feedforward", "model.rnn.units=8"], "model.rnn.units", "feedforward", "rnn"),
        (
            ["model.kind=rnn", "model.feedforward.hidden_units=8"],
            "model.feedforward.hidden_units",
            "rnn",
            "feedforward",
        ),
        (["model.kind=bert", "model.rnn=null"], "model.rnn", "bert", "rnn"),
    ],
)
def test_a_key_of_another_kind_is_refused(overrides, key, kind, other):
    item = next(o for o in overrides if o.startswith(key + "="))
    assert _error(overrides=overrides) == (
        f"override {item!r}: {key}: a setting of model.kind={other}, not of model.kind={kind} "
        f"(its settings are model.{kind}.*)"
    )


def test_a_key_of_another_kind_in_a_yaml_file_names_its_line(write_yaml):
    path = write_yaml("model:\n  kind: bert\n  rnn:\n    units: 8\n    cell: gru\n")
    assert _error(path) == (
        f"{path}:4: model.rnn.units: a setting of model.kind=rnn, not of model.kind=bert (its settings are model.bert.*)"
    )
    # The kind from an override, the section from the file: the file's line is named.
    path = write_yaml("train:\n  epochs: 2\nmodel:\n  rnn:\n    cell: gru\n")
    assert _error(path, ["model.kind=bert"]) == (
        f"{path}:5: model.rnn.cell: a setting of model.kind=rnn, not of model.kind=bert (its settings are model.bert.*)"
    )


@pytest.mark.parametrize(
    "overrides, old, new",
    [
        (["model.cell=gru"], "model.cell", "model.rnn.cell"),
        (["model.units=8"], "model.units", "model.rnn.units"),
        (["model.kind=bert", "model.units=16"], "model.units", "model.bert.hidden_dim"),
        (["model.kind=bert", "model.num_heads=4"], "model.num_heads", "model.bert.heads"),
        (["model.kind=bert", "model.checkpoint=./bert"], "model.checkpoint", "model.bert.checkpoint"),
        (["model.pooling=mean"], "model.pooling", "model.rnn.pooling"),
        (["model.embedding_dim=8"], "model.embedding_dim", "model.rnn.embedding_dim"),
        (["model.kind=feedforward", "model.hidden_units=8"], "model.hidden_units", "model.feedforward.hidden_units"),
        (["data.tokenizer=char"], "data.tokenizer", "model.rnn.tokenizer"),
        (["data.vocab_size=100"], "data.vocab_size", "model.rnn.vocab_size"),
        (["model.kind=bert", "data.vocab_size=100"], "data.vocab_size", "model.bert.vocab_size"),
        (["data.lowercase=false"], "data.lowercase", "model.rnn.lowercase"),
        (["model.kind=bert", "data.strip_accents=true"], "data.strip_accents", "model.bert.strip_accents"),
    ],
)
def test_old_flat_keys_name_the_new_key(overrides, old, new):
    item = next(o for o in overrides if o.startswith(old + "="))
    assert _error(overrides=overrides) == f"override {item!r}: {old}: it is {new} now"


@pytest.mark.parametrize(
    "overrides, old, kind",
    [
        (["model.checkpoint=./bert"], "model.checkpoint", "rnn"),
        (["model.kind=feedforward", "model.units=8"], "model.units", "feedforward"),
        (["data.strip_accents=true"], "data.strip_accents", "rnn"),
    ],
)
def test_old_flat_keys_the_kind_does_not_have(overrides, old, kind):
    item = next(o for o in overrides if o.startswith(old + "="))
    expected = f"override {item!r}: {old}: model.kind={kind} has no such setting (see model.{kind}.*)"
    assert _error(overrides=overrides) == expected


def test_old_flat_key_in_a_yaml_file_names_its_line(write_yaml):
    path = write_yaml("train:\n  epochs: 2\nmodel:\n  cell: gru\n")
    assert _error(path) == f"{path}:4: model.cell: it is model.rnn.cell now"
    path = write_yaml("data:\n  limit: 10\n  tokenizer: char\n")
    assert _error(path) == f"{path}:3: data.tokenizer: it is model.rnn.tokenizer now"


@pytest.mark.parametrize("name", BERT_SCRATCH_FIELDS)
def test_bert_scratch_fields_are_refused_with_a_checkpoint(name):
    overrides = ["model.kind=bert", "model.bert.checkpoint=./bert", f"model.bert.{name}=8"]
    assert _error(overrides=overrides) == (
        f"override 'model.bert.{name}=8': model.bert.{name}: only for a BERT trained from scratch; "
        "the checkpoint './bert' decides it"
    )
    assert getattr(load_config(None, ["model.kind=bert", f"model.bert.{name}=8"]).model.bert, name) == 8  # from scratch


def test_bert_scratch_field_with_a_checkpoint_in_a_yaml_file(write_yaml):
    path = write_yaml("model:\n  kind: bert\n  bert:\n    checkpoint: ./bert\n    hidden_dim: 32\n")
    assert _error(path) == (
        f"{path}:5: model.bert.hidden_dim: only for a BERT trained from scratch; the checkpoint './bert' decides it"
    )


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (
            ["model.kind=bert", "model.bert.hidden_dim=10", "model.bert.heads=4"],
            "override 'model.bert.hidden_dim=10': model.bert.hidden_dim=10 must be a multiple of model.bert.heads=4",
        ),
        (
            ["model.kind=bert", "model.bert.heads=0"],
            "override 'model.bert.heads=0': model.bert.heads=0: must be positive",
        ),
        (
            ["model.kind=bert", "model.bert.pooling=last"],
            "override 'model.bert.pooling=last': model.bert.pooling='last': expected one of cls, mean, max",
        ),
    ],
)
def test_bad_bert_configs(overrides, expected):
    assert _error(overrides=overrides) == expected


def test_hidden_dim_multiple_of_heads_in_yaml(write_yaml):
    path = write_yaml("model:\n  kind: bert\n  bert:\n    hidden_dim: 10\n    heads: 4\n")
    assert _error(path) == f"{path}:4: model.bert.hidden_dim=10 must be a multiple of model.bert.heads=4"


@pytest.mark.parametrize("name", ["a/b", "../x", "..", ".", ".hidden", "a\\b"])
def test_run_name_is_one_folder_name(name):
    message = _error(overrides=[f"run_name={name}"])
    expected = f"run_name={name!r}: expected one folder name (no '/', not starting with '.')"
    assert message == f"override {'run_name=' + name!r}: {expected}"
    with pytest.raises(ConfigError, match="run_name"):
        resolve(load_config(), ["neg", "pos"], run_name=name)


# ------------------------------------------------------------------------------------- resolve


def test_resolve_fills_labels_run_name_and_version():
    config = load_config(None, ["run_name=mine"])
    spec = resolve(config, ["neg", "pos"])
    assert spec.data.labels == ("neg", "pos") and isinstance(spec.data.labels, tuple)
    assert spec.run_name == "mine"
    assert spec.tfrnn_version == tfrnn.__version__ == "0.2.0"
    assert spec.run_dir == config.run_dir
    assert str(spec.run_dir) == "runs/mine"
    assert dataclasses.replace(spec, data=config.data, tfrnn_version=None) == config  # nothing else changed
    assert resolve(config, ("a", "b"), run_name="other").run_name == "other"  # the argument wins


def test_resolve_leaves_its_input_unchanged():
    config = load_config(None, ["model.kind=bert"])
    before = dataclasses.asdict(config)
    spec = resolve(config, ["neg", "pos"])
    assert dataclasses.asdict(config) == before
    assert (config.data.labels, config.run_name, config.tfrnn_version) == (None, None, None)
    assert (config.model.bert.lowercase, config.model.bert.strip_accents) == (None, None)
    assert spec is not config and spec.data.labels == ("neg", "pos")


@pytest.mark.parametrize("kind, what", [("rnn", "lstm"), ("feedforward", "feedforward"), ("bert", "bert")])
def test_run_name_from_the_time_and_the_model(kind, what):
    config = load_config(None, [f"model.kind={kind}"])
    before = datetime.now().replace(microsecond=0)
    name = resolve(config, ["neg", "pos"]).run_name
    after = datetime.now()
    match = re.fullmatch(rf"(\d{{8}}-\d{{6}})-{what}", name)
    assert match, name
    assert before <= datetime.strptime(match.group(1), "%Y%m%d-%H%M%S") <= after
    gru = resolve(load_config(None, ["model.rnn.cell=gru"]), ["a"]).run_name
    assert gru.endswith("-gru")


@pytest.mark.parametrize(
    "overrides, expected",
    [
        ([], (True, True)),  # from scratch: lower-case, and accents follow
        (["model.bert.lowercase=false"], (False, False)),
        (["model.bert.lowercase=true", "model.bert.strip_accents=false"], (True, False)),
    ],
)
def test_resolve_bert_case_from_scratch(overrides, expected):
    spec = resolve(load_config(None, ["model.kind=bert", *overrides]), ["neg", "pos"])
    assert (spec.model.bert.lowercase, spec.model.bert.strip_accents) == expected


def test_resolve_bert_case_from_the_checkpoint():
    config = load_config(None, ["model.kind=bert", "model.bert.checkpoint=./bert"])
    spec = resolve(config, ["neg", "pos"], lowercase=False, strip_accents=True)
    assert (spec.model.bert.lowercase, spec.model.bert.strip_accents) == (False, True)
    agreeing = load_config(None, ["model.kind=bert", "model.bert.checkpoint=./bert", "model.bert.lowercase=false"])
    assert resolve(agreeing, ["a"], lowercase=False, strip_accents=False).model.bert.lowercase is False
    for name, value in (("lowercase", "true"), ("strip_accents", "false")):
        conflicting = load_config(
            None, ["model.kind=bert", "model.bert.checkpoint=./bert", f"model.bert.{name}={value}"]
        )
        with pytest.raises(ConfigError) as caught:
            resolve(conflicting, ["a"], lowercase=False, strip_accents=True)
        message = str(caught.value)
        assert "\n" not in message and message.startswith(f"model.bert.{name}={value.capitalize()}: ")
        assert "checkpoint" in message and caught.value.key == f"model.bert.{name}"
        assert conflicting.model.bert.lowercase is (value == "true" if name == "lowercase" else None)  # unchanged


# ---------------------------------------------------------------------------- save and load


@pytest.mark.parametrize(
    "overrides, labels",
    [
        (
            [
                "model.rnn.cell=feedback",
                "model.rnn.feedback_base=gru",
                "data.limit=123",
                "train.clipnorm=null",
                "train.learning_rate=0.0005",
                "train.devices=[/cpu:0]",
            ],
            ["neg", "pos", "mixed"],
        ),
        (["model.kind=feedforward", "model.feedforward.hidden_units=7"], ["a", "b"]),
        (["model.kind=bert", "model.bert.hidden_dim=16", "model.bert.heads=4"], ["neg", "pos"]),
        (["model.kind=bert", "model.bert.checkpoint=./bert", "data.max_len=64"], ["neg", "pos"]),
    ],
)
def test_save_and_load_round_trip(tmp_path, overrides, labels):
    config = load_config(None, [*overrides, "run_name=round-trip"])
    checkpoint = config.model.kind == "bert" and config.model.bert.checkpoint
    spec = resolve(config, labels, **({"lowercase": True, "strip_accents": False} if checkpoint else {}))
    path = tmp_path / "config.yaml"
    save_config(spec, path)
    assert path.read_text() == to_yaml(spec)
    assert load_config(path) == spec
    written = yaml.safe_load(path.read_text())
    assert written == as_dict(spec)
    kind = spec.model.kind
    assert written["model"] == {"kind": kind, kind: written["model"][kind]}  # only the active section
    assert written["data"]["labels"] == labels and written["tfrnn_version"] == "0.2.0"
    assert written["run_name"] == "round-trip"
    if checkpoint:  # the checkpoint decides the from-scratch fields: not written
        assert not set(BERT_SCRATCH_FIELDS) & set(written["model"]["bert"])
        assert (written["model"]["bert"]["lowercase"], written["model"]["bert"]["strip_accents"]) == (True, False)


def test_as_dict_has_every_section_but_only_the_active_kind():
    sections = as_dict(RunConfig())
    assert set(sections) == {field.name for field in dataclasses.fields(RunConfig)}
    assert sections["model"] == {"kind": "rnn", "rnn": dataclasses.asdict(RNNConfig())}
    assert sections["model"]["rnn"]["cell"] == "lstm"
    bert = as_dict(load_config(None, ["model.kind=bert"]))["model"]
    assert set(bert) == {"kind", "bert"} and bert["bert"]["hidden_dim"] == 64


# ----------------------------------------------------------------------------------- choices


def test_every_choices_table_comes_from_tfrnn_choices():
    tables = {id(value) for name, value in vars(choices).items() if name.isupper() and isinstance(value, dict)}
    for key, table in CHOICES.items():
        assert id(table) in tables, key
    assert list(SECTIONS) == list(choices.KINDS)
    # Every field with a fixed set of values is checked against its table, and its default is in it.
    for kind in choices.KINDS:
        config = load_config(None, [f"model.kind={kind}"])
        for key, table in CHOICES.items():
            parts = key.split(".")
            if parts[0] == "model" and parts[1] in SECTIONS and parts[1] != kind:
                continue
            value = config
            for part in parts:
                value = getattr(value, part)
            assert value in table, (kind, key, value)


def test_choice_fields_all_have_a_table():
    fields = {
        "data.source", "data.blank_texts", "model.kind", "model.rnn.tokenizer", "model.rnn.cell",
        "model.rnn.feedback_base", "model.rnn.pooling", "model.feedforward.tokenizer", "model.bert.pooling",
        "train.optimizer", "train.decay", "train.monitor", "train.precision", "train.jit_compile", "train.strategy",
        "train.unfreeze", "data.augment.unit",
    }  # fmt: skip
    assert set(CHOICES) == fields


def test_importing_config_imports_neither_keras_nor_tensorflow():
    code = (
        "import sys, tfrnn.config, tfrnn.choices; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('keras', 'tensorflow', 'tf_keras', 'keras_hub')))"
    )
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["data.path=reviews.csv"], "data.path='reviews.csv': data.source=embedded does not read it"),
        (["data.source=imdb", "data.test_path=t.csv"], "data.test_path='t.csv': data.source=imdb does not read it"),
        (["data.source=aclimdb", "data.path=d", "data.test_path=t.csv"], "only data.source=file does"),
    ],
)
def test_a_path_the_source_would_not_read_is_refused(overrides, expected):
    with pytest.raises(ConfigError, match=re.escape(expected)):
        load_config(None, overrides)


def test_paths_the_source_reads_are_accepted():
    assert load_config(None, ["data.source=file", "data.path=a.csv", "data.test_path=b.csv"]).data.test_path == "b.csv"
    assert load_config(None, ["data.source=aclimdb", "data.path=aclImdb"]).data.path == "aclImdb"


@pytest.mark.parametrize(
    "given, loaded", [([], "auto"), (["train.jit_compile=true"], "true"), (["train.jit_compile=False"], "false")]
)
def test_jit_compile_takes_auto_and_yaml_booleans(given, loaded):
    assert load_config(None, given).train.jit_compile == loaded


def test_jit_compile_refuses_other_values():
    with pytest.raises(ConfigError, match=r"train.jit_compile='maybe': expected one of auto, true, false"):
        load_config(None, ["train.jit_compile=maybe"])


def test_resolve_decides_only_the_auto_train_settings():
    """jit_compile and precision: "auto" becomes what the run decided; a given value stays."""
    decided = resolve(load_config(None, []), ["a", "b"], jit_compile=True, precision="mixed_bfloat16")
    assert (decided.train.jit_compile, decided.train.compiled, decided.train.precision) == (
        "true",
        True,
        "mixed_bfloat16",
    )
    given = load_config(None, ["train.jit_compile=false", "train.precision=float32"])
    kept = resolve(given, ["a", "b"], jit_compile=True, precision="mixed_bfloat16")
    assert (kept.train.jit_compile, kept.train.precision) == ("false", "float32")
    assert load_config(None, ["train.model_parallel=2"]).train.model_parallel == 2
    with pytest.raises(ConfigError, match="train.model_parallel=0: must be positive"):
        load_config(None, ["train.model_parallel=0"])


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["model.peft.method=lokr"], "model.peft.method='lokr': expected one of lora, qlora, dora, adapter, prefix"),
        (
            ["model.peft.method=lora"],
            r"model.peft.method=lora: needs a pretrained encoder: a model.kind=bert checkpoint",
        ),
        (["model.kind=bert", "model.peft.method=lora"], "needs a pretrained encoder; set model.bert.checkpoint"),
        (["model.peft.rank=4"], "model.peft: settings given without model.peft.method"),
        (["model.kind=bert", "model.bert.checkpoint=x", "model.peft.method=lora", "model.peft.rank=0"], "rank=0"),
        (
            ["model.kind=bert", "model.bert.checkpoint=x", "model.peft.method=adapter", "model.peft.rank=4"],
            r"model.peft.rank: model.peft.method=adapter does not read it \(its settings: bottleneck, activation\)",
        ),
        (
            ["model.kind=bert", "model.bert.checkpoint=x", "model.peft.method=adalora", "model.peft.init_rank=4"],
            "model.peft.init_rank=4: AdaLoRA prunes from init_rank down to rank=8",
        ),
        (
            [
                "model.kind=bert",
                "model.bert.checkpoint=x",
                "model.peft.method=adalora",
                "model.peft.final_fraction=0.95",
            ],
            "warmup_fraction \\+ final_fraction = 1.05: must be below 1",
        ),
        (["model.kind=bert", "model.bert.checkpoint=x", "model.peft.method=lora", "model.peft.dropout=1.0"], "dropout"),
    ],
)
def test_peft_settings_are_checked(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides)


def test_peft_is_saved_only_when_on(tmp_path):
    plain = load_config(None, ["model.kind=bert", "model.bert.checkpoint=x", "model.peft.method=null"])
    assert "peft" not in yaml.safe_load(to_yaml(plain))["model"]
    lora = load_config(None, ["model.kind=bert", "model.bert.checkpoint=x", "model.peft.method=lora"])
    saved = yaml.safe_load(to_yaml(lora))["model"]["peft"]
    assert saved == {"method": "lora", "rank": 8, "alpha": None, "dropout": 0.0, "targets": None}
    path = tmp_path / "lora.yaml"
    path.write_text(to_yaml(lora))
    assert load_config(path).model.peft == lora.model.peft
    adapter = load_config(None, ["model.kind=bert", "model.bert.checkpoint=x", "model.peft.method=adapter"])
    assert yaml.safe_load(to_yaml(adapter))["model"]["peft"] == {
        "method": "adapter",
        "bottleneck": 64,
        "activation": "gelu",
    }
