"""Run configuration: dataclasses <-> YAML, with dotted overrides (`model.units=128`).

Built on OmegaConf's structured configs, which type-check every value against the
dataclass fields. Every run directory keeps the resolved config as `config.yaml`.
"""

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from tfrnn.errors import ConfigError
from tfrnn.files import atomic_write_text


@dataclass
class DataConfig:
    """Where the labelled text comes from and how it becomes batches of token ids.

    Args:
        source: str. "embedded" (the package's movie reviews), "imdb" (TFDS imdb_reviews),
            "aclimdb" (an aclImdb-style folder) or "file" (CSV, TSV or JSONL).
        path: str or None. The folder or file for "aclimdb" and "file".
        test_path: str or None. A separate evaluation file for "file".
        data_dir: str or None. TFDS data directory for "imdb".
        text_column: str. Column (or JSON key) holding the text.
        label_column: str. Column (or JSON key) holding the label.
        labels: list of str or None. Label names in index order; None infers them (sorted).
        validation_split: float. Fraction of the training data held out, seeded and stratified.
        limit: int or None. Use at most this many training examples (quick runs).
        lowercase: bool. Lower-case the text (for BERT, set from the checkpoint's tokenizer).
        strip_accents: bool or None. WordPiece: remove accents; None follows `lowercase`
            (Hugging Face's rule; set from the checkpoint).
        strip_html: bool. Remove HTML tags such as `<br />` and unescape entities.
        unicode_form: str or None. Unicode normalisation ("NFKC"); needs TensorFlow Text in exports.
        blank_texts: str. "skip" (counted and reported) or "error" for empty texts.
        tokenizer: str. "word", "char" (character mode, for Chinese) or "wordpiece" (BERT;
            set by `model.kind=bert`).
        vocab_size: int. Vocabulary size including the padding and OOV tokens (WordPiece: the
            size of a vocabulary learned for a BERT without checkpoint).
        max_len: int. Truncate token sequences to this length (BERT: the sequence length,
            [CLS] and [SEP] included).
        batch_size: int. Global batch size (split across replicas).
        bucket: bool. Batch texts of similar length together to cut padding.
        shuffle_buffer: int. Shuffle buffer size for training.
        cache: bool. Cache the tokenised dataset in memory.
    """

    source: str = "embedded"
    path: Optional[str] = None
    test_path: Optional[str] = None
    data_dir: Optional[str] = None
    text_column: str = "text"
    label_column: str = "label"
    labels: Optional[List[str]] = None
    validation_split: float = 0.1
    limit: Optional[int] = None
    lowercase: bool = True
    strip_accents: Optional[bool] = None
    strip_html: bool = True
    unicode_form: Optional[str] = None
    blank_texts: str = "skip"
    tokenizer: str = "word"
    vocab_size: int = 20000
    max_len: int = 200
    batch_size: int = 32
    bucket: bool = True
    shuffle_buffer: int = 10000
    cache: bool = True


@dataclass
class ModelConfig:
    """The classifier.

    Args:
        kind: str. "rnn" (embedding -> recurrent layers -> pooling -> head), "feedforward"
            (mean of embeddings -> dense) or "bert" (a BERT encoder -> pooling -> head; its
            defaults are in `KIND_DEFAULTS`).
        checkpoint: str or None. BERT: a local Hugging Face-format folder, `hf://org/name`,
            `kaggle://...`, a keras-hub preset name or folder; None builds a small BERT from
            scratch (num_layers, units as hidden size, num_heads) on a learned vocabulary.
        cell: str. "simple_rnn", "lstm", "gru" or "feedback".
        feedback_base: str. The feedback cell's base step, "lstm" or "gru".
        embedding_dim: int. Size of the token embeddings.
        units: int. Hidden size of each recurrent layer (per direction); BERT from scratch:
            the hidden size.
        num_layers: int. Number of stacked recurrent layers (BERT from scratch: blocks).
        num_heads: int. BERT from scratch: attention heads.
        bidirectional: bool. Wrap each recurrent layer in `keras.layers.Bidirectional`.
        pooling: str. "last", "mean" or "max" over time (masked); BERT: "cls" (the pooled
            [CLS] output), "mean" or "max".
        dropout: float. Dropout before the head (and on the embeddings).
        recurrent_dropout: float. Recurrent dropout inside the cells.
        hidden_units: int. Size of the dense hidden layer of the feed-forward model.
    """

    kind: str = "rnn"
    checkpoint: Optional[str] = None
    cell: str = "lstm"
    feedback_base: str = "lstm"
    embedding_dim: int = 64
    units: int = 64
    num_layers: int = 1
    num_heads: int = 2
    bidirectional: bool = True
    pooling: str = "max"
    dropout: float = 0.3
    recurrent_dropout: float = 0.0
    hidden_units: int = 64


@dataclass
class TrainConfig:
    """How the model is fitted.

    Args:
        epochs: int. Maximum number of epochs.
        optimizer: str. "adam" or "adamw".
        learning_rate: float. Peak learning rate.
        weight_decay: float. Decoupled weight decay (AdamW only).
        warmup_ratio: float. Fraction of the steps spent warming up linearly from 0.
        decay: str. After warmup: "constant", "linear" (to 0) or "cosine".
        clipnorm: float or None. Clip each gradient's norm; None for no clipping.
        monitor: str. What picks the best epoch (kept checkpoint, early stopping): "val_loss" or
            "val_accuracy"; without a validation split, the training loss.
        early_stopping_patience: int. Epochs without improvement of `monitor` before stopping; 0 is off.
        precision: str. "float32", "mixed_float16" (GPU) or "mixed_bfloat16" (TPU, recent CPUs):
            Keras' dtype policy while the model is built and trained.
        strategy: str. `tf.distribute` strategy: "auto" (a TPU if attached, else mirrored over
            several GPUs, else the default), "one-device", "mirrored", "multi-worker" (TF_CONFIG)
            or "tpu"; see `tfrnn.distribute`.
        devices: list of str or None. Devices for "one-device" (the first) and "mirrored"
            (e.g. ["/gpu:0", "/gpu:1"]); None uses all GPUs, else the CPU.
        seed: int. Seed of Python, NumPy and the backend.
        deterministic: bool. Ask TensorFlow for deterministic ops (slower).
        jit_compile: bool. Compile the train step with XLA.
        tensorboard: bool. Write TensorBoard logs under the run directory.
        verbose: int. Keras' fit verbosity: 0 silent, 1 progress bar, 2 one line per epoch.
    """

    epochs: int = 10
    optimizer: str = "adam"
    learning_rate: float = 3e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.0
    decay: str = "constant"
    clipnorm: Optional[float] = 1.0
    monitor: str = "val_loss"
    early_stopping_patience: int = 3
    precision: str = "float32"
    strategy: str = "auto"
    devices: Optional[List[str]] = None
    seed: int = 42
    deterministic: bool = False
    jit_compile: bool = False
    tensorboard: bool = True
    verbose: int = 1


@dataclass
class RunConfig:
    """Everything a `tfrnn train` run needs.

    Args:
        data: DataConfig. The data.
        model: ModelConfig. The model.
        train: TrainConfig. The fitting.
        output_dir: str. Parent folder of run directories.
        run_name: str or None. The run directory's name; None makes one from the time.
    """

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    output_dir: str = "runs"
    run_name: Optional[str] = None


CHOICES = {
    "data.source": ("embedded", "imdb", "aclimdb", "file"),
    "data.blank_texts": ("skip", "error"),
    "data.tokenizer": ("word", "char", "wordpiece"),
    "model.kind": ("rnn", "feedforward", "bert"),
    "model.cell": ("simple_rnn", "lstm", "gru", "feedback"),
    "model.feedback_base": ("lstm", "gru"),
    "train.optimizer": ("adam", "adamw"),
    "train.decay": ("constant", "linear", "cosine"),
    "train.monitor": ("val_loss", "val_accuracy"),
    "train.precision": ("float32", "mixed_float16", "mixed_bfloat16"),
    "train.strategy": ("auto", "one-device", "mirrored", "multi-worker", "tpu"),
}

# Defaults that differ by model.kind, applied under the config file and the overrides. BERT:
# fine-tuning as in Devlin et al. (AdamW 2e-5, 10% warmup then linear decay, 3 epochs) with
# sequences of 128 WordPiece tokens.
KIND_DEFAULTS = {
    "bert": {
        "data": {"tokenizer": "wordpiece", "max_len": 128, "vocab_size": 8000},
        "model": {"pooling": "cls", "dropout": 0.1, "units": 64, "num_layers": 2},
        "train": {
            "optimizer": "adamw",
            "learning_rate": 2e-5,
            "weight_decay": 0.01,
            "warmup_ratio": 0.1,
            "decay": "linear",
            "epochs": 3,
            "monitor": "val_accuracy",
            "early_stopping_patience": 1,
        },
    },
}


def _one_line(error):
    return " ".join(str(error).split("\n")[0].split())


def _key_line(path, key):
    """The 1-based line of the dotted `key` in a YAML file, or None."""
    node, line = yaml.compose(Path(path).read_text(encoding="utf-8")), None
    for part in key.split("."):
        if not isinstance(node, yaml.MappingNode):
            return None
        found = [(k, v) for k, v in node.value if k.value == part]
        if not found:
            return None
        key_node, node = found[0]
        line = key_node.start_mark.line + 1
    return line


def _where(path, error):
    """`file:line: key` for an error about a key of a YAML file (`file` when there is no key)."""
    key = getattr(error, "full_key", "")
    if not key:
        return str(path)
    line = _key_line(path, key)
    return f"{path}:{line}: {key}" if line else f"{path}: {key}"


def _merged(base, path, overrides):
    """`base`, then the YAML file at `path` (or None), then dotted overrides, as OmegaConf."""
    merged = base
    if path is not None:
        try:
            merged = OmegaConf.merge(merged, OmegaConf.load(path))
        except yaml.MarkedYAMLError as error:  # syntax
            mark = error.problem_mark
            raise ConfigError(f"{path}:{mark.line + 1}:{mark.column + 1}: {error.problem}") from None
        except Exception as error:  # schema (unknown key, wrong type) and decoding errors
            raise ConfigError(f"{_where(path, error)}: {_one_line(error)}") from None
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected KEY=VALUE, e.g. model.units=128")
        try:
            merged = OmegaConf.merge(merged, OmegaConf.from_dotlist([item]))
        except OmegaConfBaseException as error:
            raise ConfigError(f"override {item!r}: {_one_line(error)}") from None
    return merged


def load_config(path=None, overrides=()):
    """Builds a RunConfig from defaults, the model kind's defaults (`KIND_DEFAULTS`), an
    optional YAML file, then dotted overrides.

    Args:
        path: str, Path or None. A YAML file with any subset of the fields.
        overrides: iterable of str. `key.sub=value` items, applied last.

    Returns:
        RunConfig, type-checked and with choices validated.

    Raises:
        ConfigError: a missing file, bad YAML, an unknown key, a wrong type or choice.
    """
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
    defaults = OmegaConf.structured(RunConfig)
    merged = _merged(defaults, path, overrides)
    kind = merged.model.kind
    if kind in KIND_DEFAULTS:  # the file and the overrides still win over the kind's defaults
        merged = _merged(OmegaConf.merge(defaults, KIND_DEFAULTS[kind]), path, overrides)
    try:
        config = OmegaConf.to_object(merged)  # resolves ${...} interpolations
    except OmegaConfBaseException as error:
        raise ConfigError(f"{getattr(error, 'full_key', '')}: {_one_line(error)}") from None
    try:
        validate(config)
    except ConfigError as error:
        from_file = path is not None and not any(o.startswith(f"{error.key}=") for o in overrides)
        line = _key_line(path, error.key) if from_file else None
        if line is None:
            raise
        raise ConfigError(f"{path}:{line}: {error}", error.key) from None
    return config


def validate(config):
    """Checks the fields that have a fixed set of values or a range.

    Args:
        config: RunConfig. The config to check.

    Raises:
        ConfigError: naming the key (also as `.key`), the value and what is allowed.
    """
    for key, allowed in CHOICES.items():
        section, name = key.split(".")
        value = getattr(getattr(config, section), name)
        if value not in allowed:
            raise ConfigError(f"{key}={value!r}: expected one of {', '.join(allowed)}", key)
    if not 0.0 <= config.data.validation_split < 1.0:
        raise ConfigError(
            f"data.validation_split={config.data.validation_split}: expected 0 <= x < 1",
            "data.validation_split",
        )
    for key in ("data.batch_size", "data.max_len", "data.vocab_size", "model.units", "model.num_heads", "train.epochs"):
        section, name = key.split(".")
        if getattr(getattr(config, section), name) <= 0:
            raise ConfigError(f"{key} must be positive", key)
    bert = config.model.kind == "bert"
    if config.model.checkpoint and not bert:
        raise ConfigError(
            f"model.checkpoint={config.model.checkpoint!r}: only model.kind=bert loads a checkpoint", "model.checkpoint"
        )
    if bert != (config.data.tokenizer == "wordpiece"):
        raise ConfigError(
            f"data.tokenizer={config.data.tokenizer!r} with model.kind={config.model.kind!r}: "
            "wordpiece goes with bert, and bert with wordpiece",
            "data.tokenizer",
        )
    poolings = ("cls", "mean", "max") if bert else ("last", "mean", "max")
    if config.model.pooling not in poolings:
        raise ConfigError(
            f"model.pooling={config.model.pooling!r}: expected one of {', '.join(poolings)}",
            "model.pooling",
        )
    if bert and config.model.checkpoint is None and config.model.units % config.model.num_heads:
        raise ConfigError(
            f"model.units={config.model.units} must be a multiple of model.num_heads={config.model.num_heads}",
            "model.units",
        )


def to_yaml(config):
    """Serialises a RunConfig to YAML text."""
    return OmegaConf.to_yaml(OmegaConf.structured(config))


def save_config(config, path):
    """Writes a RunConfig as YAML to `path`."""
    atomic_write_text(path, to_yaml(config))


def as_dict(config):
    """A RunConfig (or section) as plain nested dicts."""
    return dataclasses.asdict(config)
