"""load_config: defaults <- YAML <- dotted overrides; every bad input is a one-line ConfigError."""

import dataclasses

import pytest
import yaml

from tfrnn.config import RunConfig, as_dict, load_config, save_config, to_yaml
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


def test_defaults_are_the_dataclass_defaults():
    assert load_config() == RunConfig()


def test_yaml_then_overrides_applied_last(write_yaml):
    path = write_yaml("model:\n  cell: gru\n  units: 16\ntrain:\n  epochs: 4\n")
    config = load_config(path, ["model.units=32", "data.labels=[neg,pos]", "train.clipnorm=null"])
    assert config.model.cell == "gru"  # from the file
    assert config.model.units == 32  # the override wins over the file
    assert config.train.epochs == 4
    assert config.data.labels == ["neg", "pos"]
    assert config.train.clipnorm is None
    assert config.model.pooling == RunConfig().model.pooling  # untouched fields keep defaults
    assert isinstance(config.model.units, int) and isinstance(config.train.learning_rate, float)


def test_overrides_convert_strings_to_field_types():
    config = load_config(None, ["train.learning_rate=1e-4", "data.bucket=false", "data.limit=50"])
    assert config.train.learning_rate == pytest.approx(1e-4)
    assert config.data.bucket is False and config.data.limit == 50


def test_empty_yaml_file_means_defaults(write_yaml):
    assert load_config(write_yaml("")) == RunConfig()


@pytest.mark.parametrize(
    "text, expected",
    [
        ("model:\n  units: 8\n  foo: 3\n", ["run.yaml:3", "model.foo", "'foo'"]),  # unknown key
        ("foo: 1\n", ["run.yaml:1", "foo"]),  # unknown top-level key
        ("model:\n  units: abc\n", ["run.yaml:2", "model.units", "'abc'"]),  # wrong type
        ("train:\n  epochs: 2.5\n", ["run.yaml:2", "train.epochs", "2.5"]),
        ("train:\n  tensorboard: maybe\n", ["run.yaml:2", "train.tensorboard", "maybe"]),
        ("model: 3\n", ["run.yaml", "ModelConfig"]),  # a scalar where a section belongs
    ],
)
def test_bad_yaml_values_name_file_line_and_key(write_yaml, text, expected):
    message = _error(write_yaml(text))
    for part in expected:
        assert part in message, (part, message)


@pytest.mark.parametrize(
    "text, where",
    [
        ("model:\n  units: 8\n bad: [1, 2\n", "run.yaml:3:"),  # unclosed flow sequence
        ("model:\n  units: 8\n    x: y\n", "run.yaml:3:6"),  # mapping inside a scalar
        ("model:\n\tunits: 8\n", "run.yaml:2:1"),  # a tab as indentation
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
        ("units=3", ["units=3", "'units'"]),
        ("model.units=abc", ["model.units=abc", "'abc'"]),
        ("model.units=1.5", ["model.units=1.5", "1.5"]),
        ("model.units", ["model.units", "KEY=VALUE"]),
        ("model=3", ["model=3"]),
        ("run_name=${nope}", ["run_name", "nope"]),  # interpolation resolved at the end
        ("model.units=${oc.env:TFRNN_TEST_UNSET_VARIABLE}", ["model.units", "TFRNN_TEST_UNSET_VARIABLE"]),
    ],
)
def test_bad_overrides_name_the_override(override, expected):
    message = _error(overrides=[override])
    for part in expected:
        assert part in message, (part, message)


@pytest.mark.parametrize(
    "override, expected",
    [
        ("model.cell=transformer", "model.cell='transformer': expected one of simple_rnn, lstm, gru, feedback"),
        ("model.pooling=sum", "model.pooling='sum': expected one of last, mean, max"),
        ("train.decay=step", "train.decay='step'"),
        ("data.source=web", "data.source='web'"),
        ("train.optimizer=sgd", "train.optimizer='sgd'"),
        ("data.validation_split=1.0", "data.validation_split=1.0"),
        ("data.validation_split=-0.1", "data.validation_split=-0.1"),
        ("train.epochs=0", "train.epochs"),
        ("model.units=-4", "model.units"),
        ("data.batch_size=0", "data.batch_size"),
        ("train.strategy=tpu-pod", "train.strategy='tpu-pod'"),
        ("train.precision=float16", "train.precision='float16'"),
        ("data.tokenizer=wordpiece", "data.tokenizer='wordpiece' with model.kind='rnn'"),
        ("model.pooling=cls", "model.pooling='cls': expected one of last, mean, max"),
    ],
)
def test_bad_choices_and_ranges(override, expected):
    assert expected in _error(overrides=[override])


def test_bad_choice_in_yaml_file(write_yaml):
    path = write_yaml("train:\n  epochs: 2\nmodel:\n  units: 8\n  pooling: sum\n")
    assert _error(path) == f"{path}:5: model.pooling='sum': expected one of last, mean, max"


def test_bad_value_from_an_override_names_no_file_line(write_yaml):
    path = write_yaml("model:\n  pooling: mean\n")
    assert _error(path, ["model.pooling=sum"]) == "model.pooling='sum': expected one of last, mean, max"


def test_later_override_wins():
    assert load_config(None, ["model.units=4", "model.units=6"]).model.units == 6


def test_to_yaml_and_load_round_trip(tmp_path):
    config = load_config(
        None,
        [
            "model.cell=feedback",
            "model.feedback_base=gru",
            "data.labels=[neg,pos,mixed]",
            "data.limit=123",
            "train.clipnorm=null",
            "train.learning_rate=0.0005",
            "run_name=round-trip",
        ],
    )
    path = tmp_path / "config.yaml"
    save_config(config, path)
    assert path.read_text() == to_yaml(config)
    reloaded = load_config(path)
    assert reloaded == config
    assert yaml.safe_load(to_yaml(config)) == as_dict(config)


def test_as_dict_has_every_section():
    sections = as_dict(RunConfig())
    assert set(sections) == {field.name for field in dataclasses.fields(RunConfig)}
    assert sections["model"]["cell"] == "lstm"


def test_bert_kind_defaults_sit_under_the_file_and_overrides(write_yaml):
    config = load_config(None, ["model.kind=bert"])
    assert (config.data.tokenizer, config.data.max_len, config.model.pooling) == ("wordpiece", 128, "cls")
    assert (config.train.optimizer, config.train.learning_rate, config.train.warmup_ratio) == ("adamw", 2e-5, 0.1)
    path = write_yaml("model:\n  kind: bert\ntrain:\n  learning_rate: 5.0e-5\n")
    config = load_config(path, ["data.max_len=64"])
    assert (config.train.learning_rate, config.data.max_len, config.train.decay) == (5e-5, 64, "linear")
    assert load_config(None, []).train.learning_rate == 3e-3  # other kinds keep the defaults


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (["model.kind=bert", "data.tokenizer=word"], "data.tokenizer='word' with model.kind='bert'"),
        (["model.kind=bert", "model.pooling=last"], "model.pooling='last': expected one of cls, mean, max"),
        (["model.kind=bert", "model.units=10", "model.num_heads=4"], "model.units=10 must be a multiple of model.num_heads=4"),
        (["model.kind=bert", "model.num_heads=0"], "model.num_heads must be positive"),
        (["model.checkpoint=./bert"], "model.checkpoint='./bert': only model.kind=bert loads a checkpoint"),
    ],
)
def test_bad_bert_configs(overrides, expected):
    assert expected in _error(overrides=overrides)
