"""Run configuration: frozen dataclasses <-> YAML, with dotted overrides (`model.rnn.units=128`).

A run's configuration is, in order: the defaults below, the model kind's defaults
(`KIND_DEFAULTS`), a YAML file, the CLI's shortcut flags, dotted overrides. `load_config` merges
and checks them (OmegaConf type-checks every value against the fields; the allowed values come
from `tfrnn.choices`). `resolve` then adds what the data and the checkpoint decide (labels,
BERT's case and accent rules, the run name) and gives the run spec: the frozen object that the
run directory keeps as `config.yaml` and every later command reads. Nothing writes into a
config: every dataclass is frozen, and changes are new objects (`dataclasses.replace`).

The model section is a one-of, as in TF Model Garden: `model.kind` names the kind and only that
kind's section (`model.rnn`, `model.feedforward` or `model.bert`) may be given.

Importing this module is cheap (no Keras, no TensorFlow): the CLI's `--help` uses it.
"""

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import List, Optional

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from tfrnn import __version__, choices
from tfrnn.errors import ConfigError
from tfrnn.files import atomic_write_text


def _tuples(obj, *names):
    """Frozen dataclasses keep lists as tuples, so that nothing inside them can change."""
    for name in names:
        value = getattr(obj, name)
        if value is not None and not isinstance(value, tuple):
            object.__setattr__(obj, name, tuple(value))


@dataclass(frozen=True)
class AugmentConfig:
    """EDA-style augmentation of the training texts (Wei & Zou 2019; `tfrnn.data.augment`): each
    training example gets `copies` altered copies beside itself, made once per run, seeded by
    train.seed; validation and test data are never touched. Off while every rate is 0.

    Args:
        deletion: float. Probability that each unit (word or character) is deleted.
        swap: float. Swaps of two random units, as a fraction of the text's units.
        insertion: float. Insertions of a random unit's neighbour at a random place, as a fraction.
        synonym: float. Share of the units replaced by one of their neighbours.
        copies: int. Altered copies per training example.
        unit: str. A `tfrnn.choices.AUGMENT_UNITS` name.
        neighbours_from: str or None. A `tfrnn train` or `tfrnn pretrain` run (model.kind rnn or
            feedforward) whose trained embedding gives each unit's nearest neighbours (cosine),
            which stand in for synonyms; needed by `synonym` and `insertion`.
        neighbours: int. Nearest neighbours a replacement is drawn from.
    """

    deletion: float = 0.0
    swap: float = 0.0
    insertion: float = 0.0
    synonym: float = 0.0
    copies: int = 1
    unit: str = "auto"
    neighbours_from: Optional[str] = None
    neighbours: int = 5

    @property
    def active(self):
        """Whether any operation is on."""
        return any((self.deletion, self.swap, self.insertion, self.synonym))


@dataclass(frozen=True)
class DataConfig:
    """Where the labelled text comes from, how it is cleaned and batched.

    Args:
        source: str. A `tfrnn.choices.SOURCES` name.
        path: str or None. The folder or file for "aclimdb" and "file".
        test_path: str or None. A separate evaluation file for "file".
        data_dir: str or None. TFDS data directory for "imdb".
        text_column: str. Column (or JSON key) holding the text.
        label_column: str. Column (or JSON key) holding the label.
        labels: list of str or None. Label names in index order; None: inferred from the
            training data (sorted) when the run is resolved.
        validation_split: float. Fraction of the training data held out, seeded and stratified.
        limit: int or None. Use at most this many training examples (quick runs).
        split_seed: int or None. Seed of the validation split and of the `limit` sample; None:
            train.seed. Fixing it lets runs with different train.seed (an ensemble's members)
            hold out the same examples.
        strip_html: bool. Remove HTML tags such as `<br />` and unescape entities.
        unicode_form: str or None. Unicode normalisation ("NFKC"); needs TensorFlow Text in exports.
        blank_texts: str. A `tfrnn.choices.BLANK_TEXTS` name.
        max_len: int. Longest token sequence the model sees (BERT: [CLS] and [SEP] included).
        batch_size: int. Global batch size (split across replicas).
        bucket: bool. Batch texts of similar length together to cut padding.
        shuffle_buffer: int. Shuffle buffer size for training.
        cache: bool. Cache the tokenised dataset in memory.
        augment: AugmentConfig. Augmentation of the training texts (off by default).
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
    split_seed: Optional[int] = None
    strip_html: bool = True
    unicode_form: Optional[str] = None
    blank_texts: str = "skip"
    max_len: int = 200
    batch_size: int = 32
    bucket: bool = True
    shuffle_buffer: int = 10000
    cache: bool = True
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self):
        _tuples(self, "labels")


@dataclass(frozen=True)
class RNNConfig:
    """`model.kind=rnn`: token ids -> embedding -> recurrent layers -> pooling -> head.

    Args:
        tokenizer: str. A `tfrnn.choices.TOKENIZERS` name ("char" for Chinese).
        vocab_size: int. Vocabulary size learned from the training texts, padding and OOV included.
        lowercase: bool. Lower-case the text before tokenising.
        embedding_dim: int. Size of the token embeddings.
        cell: str. A `tfrnn.choices.CELLS` name.
        feedback_base: str. The feedback cell's base step (`tfrnn.choices.FEEDBACK_BASES`).
        units: int. Hidden size of each recurrent layer (per direction).
        layers: int. Number of stacked recurrent layers.
        bidirectional: bool. Wrap each recurrent layer in `tfrnn.layers.Bidirectional`.
        pooling: str. A `tfrnn.choices.RNN_POOLINGS` name (masked).
        dropout: float. Dropout on the embeddings and before the head.
        recurrent_dropout: float. Recurrent dropout inside the cells.
        weight_dropout: float. DropConnect on the recurrent kernels (one mask per batch).
    """

    tokenizer: str = "word"
    vocab_size: int = 20000
    lowercase: bool = True
    embedding_dim: int = 64
    cell: str = "lstm"
    feedback_base: str = "lstm"
    units: int = 64
    layers: int = 1
    bidirectional: bool = True
    pooling: str = "max"
    dropout: float = 0.3
    recurrent_dropout: float = 0.0
    weight_dropout: float = 0.0


@dataclass(frozen=True)
class FeedForwardConfig:
    """`model.kind=feedforward`: the bag-of-embeddings baseline (word order ignored).

    Args:
        tokenizer: str. A `tfrnn.choices.TOKENIZERS` name.
        vocab_size: int. Vocabulary size, padding and OOV included.
        lowercase: bool. Lower-case the text before tokenising.
        embedding_dim: int. Size of the token embeddings.
        hidden_units: int. Size of the hidden dense layer.
        dropout: float. Dropout before the head.
    """

    tokenizer: str = "word"
    vocab_size: int = 20000
    lowercase: bool = True
    embedding_dim: int = 64
    hidden_units: int = 64
    dropout: float = 0.3


@dataclass(frozen=True)
class BertConfig:
    """`model.kind=bert`: a BERT encoder -> pooling -> head, with its WordPiece tokenizer.

    Args:
        checkpoint: str or None. A local Hugging Face-format folder, `hf://org/name`,
            `kaggle://...`, a keras-hub preset name or folder; None trains a small BERT from
            scratch (`layers`, `hidden_dim`, `heads`) on a vocabulary learned from the data.
        pooling: str. A `tfrnn.choices.BERT_POOLINGS` name.
        dropout: float. Dropout before the head.
        lowercase: bool or None. The tokenizer lower-cases; None: the checkpoint's setting
            (from scratch: true). Resolved when the run starts.
        strip_accents: bool or None. The tokenizer removes accents; None: the checkpoint's
            setting (from scratch: follows `lowercase`). Resolved when the run starts.
        vocab_size: int. From scratch: size of the learned WordPiece vocabulary.
        layers: int. From scratch: transformer blocks.
        hidden_dim: int. From scratch: hidden size (a multiple of `heads`; feed-forward 4x).
        heads: int. From scratch: attention heads.
    """

    checkpoint: Optional[str] = None
    pooling: str = "cls"
    dropout: float = 0.1
    lowercase: Optional[bool] = None
    strip_accents: Optional[bool] = None
    vocab_size: int = 8000
    layers: int = 2
    hidden_dim: int = 64
    heads: int = 2


@dataclass(frozen=True)
class PeftConfig:
    """Parameter-efficient fine-tuning of a pretrained encoder (`tfrnn.models.peft`): only the
    method's weights, the classification head (and what the method prescribes: LayerNorms for
    adapters) train; the base weights stay as loaded. Each method reads only its own settings
    (`PEFT_SETTINGS`); giving another method's setting is an error.

    Args:
        method: str or None. A `tfrnn.choices.PEFT_METHODS` name; None trains every weight.
        rank: int. LoRA's, QLoRA's and DoRA's rank; AdaLoRA's target average rank per layer.
        alpha: float or None. The low-rank update is scaled by alpha / rank (None: rank, as Keras).
        dropout: float. Dropout on the input of the low-rank branch (LoRA, QLoRA, DoRA).
        targets: list of str or None. Names of the layers that take the update ("all-linear":
            every dense layer of the encoder's blocks); None: the attention's query and value.
        bottleneck: int. The adapters' bottleneck width.
        activation: str. The adapters' activation (a Keras activation name).
        prefix_length: int. Learned key/value prefixes per attention layer (prefix), or soft
            prompt tokens (prompt).
        prefix_hidden: int. Width of the MLP that reparametrises the prefixes while training.
        init_rank: int. AdaLoRA's initial rank per layer (pruned down to `rank` on average).
        orthogonality: float. Weight of AdaLoRA's orthogonality regulariser on P and Q.
        warmup_fraction: float. AdaLoRA: the share of the training steps before pruning starts.
        final_fraction: float. AdaLoRA: the share at the end where the ranks stay fixed.
        interval: int. AdaLoRA: steps between two budget updates.
        beta: float. AdaLoRA: smoothing of the sensitivity and of its uncertainty.
    """

    method: Optional[str] = None
    rank: int = 8
    alpha: Optional[float] = None
    dropout: float = 0.0
    targets: Optional[List[str]] = None
    bottleneck: int = 64
    activation: str = "gelu"
    prefix_length: int = 16
    prefix_hidden: int = 256
    init_rank: int = 12
    orthogonality: float = 0.1
    warmup_fraction: float = 0.1
    final_fraction: float = 0.2
    interval: int = 10
    beta: float = 0.85

    def __post_init__(self):
        _tuples(self, "targets")


def _one_of(model, sections):
    """The active kind's section (its defaults when not given), the others None."""
    if model.kind not in sections:
        return  # `validate` names the bad kind with its choices
    others = [name for name in sections if name != model.kind and getattr(model, name) is not None]
    if others:
        raise ValueError(f"model.kind={model.kind} takes model.{model.kind} only, not model.{others[0]}")
    if getattr(model, model.kind) is None:
        object.__setattr__(model, model.kind, sections[model.kind]())


# model.peft.method -> the settings it reads (besides `method`).
PEFT_SETTINGS = {
    "lora": ("rank", "alpha", "dropout", "targets"),
    "qlora": ("rank", "alpha", "dropout", "targets"),
    "dora": ("rank", "alpha", "dropout", "targets"),
    "adapter": ("bottleneck", "activation"),
    "prefix": ("prefix_length", "prefix_hidden"),
    "prompt": ("prefix_length",),
    "ia3": (),
    "adalora": (
        "rank",
        "alpha",
        "targets",
        "init_rank",
        "orthogonality",
        "warmup_fraction",
        "final_fraction",
        "interval",
        "beta",
    ),
}


# The PEFT methods of a recurrent classifier on a pretrained encoder (tfrnn.models.peft.RNN_METHODS).
RNN_PEFT_METHODS = ("lora",)

# model.kind -> its section's dataclass (the kinds themselves: tfrnn.choices.KINDS).
SECTIONS = {"rnn": RNNConfig, "feedforward": FeedForwardConfig, "bert": BertConfig}

# The fields of a BERT trained from scratch; with a checkpoint, the checkpoint decides them.
BERT_SCRATCH_FIELDS = ("vocab_size", "layers", "hidden_dim", "heads")


@dataclass(frozen=True)
class ModelConfig:
    """The classifier: its kind, and that kind's section (the others stay None).

    Args:
        kind: str. A `tfrnn.choices.KINDS` name.
        rnn: RNNConfig or None. Settings of `kind=rnn`.
        feedforward: FeedForwardConfig or None. Settings of `kind=feedforward`.
        bert: BertConfig or None. Settings of `kind=bert`.
        peft: PeftConfig. Parameter-efficient fine-tuning (off unless `peft.method` is set).
    """

    kind: str = "rnn"
    rnn: Optional[RNNConfig] = None
    feedforward: Optional[FeedForwardConfig] = None
    bert: Optional[BertConfig] = None
    peft: PeftConfig = field(default_factory=PeftConfig)

    def __post_init__(self):
        _one_of(self, SECTIONS)

    @property
    def section(self):
        """The active kind's section."""
        return getattr(self, self.kind)


@dataclass(frozen=True)
class AdversarialConfig:
    """Adversarial training on the embedding output (`tfrnn.training.adversarial`): each batch's
    loss adds, with `weight`, the loss under a perturbation of the token embeddings of L2 norm
    `epsilon` per example (FGM, PGD: (clean + weight * adversarial) / (1 + weight); VAT:
    clean + weight * KL).

    Args:
        method: str or None. A `tfrnn.choices.ADVERSARIAL` name; None trains plainly.
        epsilon: float. The perturbation's L2 norm per example (over all its tokens).
        weight: float. Weight of the adversarial term.
        steps: int. PGD: gradient steps (each projected back into the epsilon ball).
        xi: float. VAT: the size of the random start of its power iteration.
        unlabelled: str or None. VAT: a CSV, TSV, JSONL or text file of unlabelled texts whose
            batches add the KL term only (semi-supervised); None: the labelled batches alone.
        unlabelled_column: str. Column (or JSON key) holding the text in `unlabelled`.
    """

    method: Optional[str] = None
    epsilon: float = 1.0
    weight: float = 1.0
    steps: int = 3
    xi: float = 1e-6
    unlabelled: Optional[str] = None
    unlabelled_column: str = "text"


# train.adversarial.method -> the settings it reads (besides `method`).
ADVERSARIAL_SETTINGS = {
    "fgm": ("epsilon", "weight"),
    "pgd": ("epsilon", "weight", "steps"),
    "vat": ("epsilon", "weight", "xi", "unlabelled", "unlabelled_column"),
}


@dataclass(frozen=True)
class TrainConfig:
    """How the model is fitted.

    Args:
        epochs: int. Maximum number of epochs.
        optimizer: str. A `tfrnn.choices.OPTIMIZERS` name.
        learning_rate: float. Peak learning rate.
        weight_decay: float. Decoupled weight decay (AdamW only).
        warmup_ratio: float. Fraction of the steps spent warming up linearly from 0.
        decay: str. After warmup, a `tfrnn.choices.SCHEDULES` name ("slanted": ULMFiT's slanted
            triangular rates, rising over the first `warmup_ratio` of the steps, then falling).
        unfreeze: str. A `tfrnn.choices.UNFREEZE` name: "gradual" trains the head alone in the
            first epoch, then one more layer group (top down) each epoch (ULMFiT; model.kind=rnn).
        layer_lr_factor: float. Discriminative learning rates (model.kind=rnn): each layer group
            down the encoder learns `layer_lr_factor` times slower than the one above (ULMFiT:
            2.6); 1 is off.
        clipnorm: float or None. Clip each gradient's norm; None for no clipping.
        monitor: str. What picks the best epoch (kept checkpoint, early stopping), a
            `tfrnn.choices.MONITORS` name; without a validation split, the training loss.
        early_stopping_patience: int. Epochs without improvement of `monitor` before stopping; 0 is off.
        precision: str. Keras' dtype policy while the model is built and trained
            (`tfrnn.choices.PRECISIONS`); "auto" is resolved when the run starts.
        strategy: str. A `tfrnn.choices.STRATEGIES` name; see `tfrnn.distribute`.
        devices: list of str or None. Devices for "one-device" (the first) and "mirrored"
            (e.g. ["/gpu:0", "/gpu:1"]); None uses all GPUs, else the CPU.
        model_parallel: int. JAX backend, BERT: devices that share one copy of the model, its
            weights sharded over them (`tfrnn.distribute.jax_distribution`); 1 is data parallel.
        seed: int. Seed of Python, NumPy, the backend, the data shuffle and the limit sample.
        deterministic: bool. Ask TensorFlow for deterministic ops (slower).
        jit_compile: str. Compile the steps (`tfrnn.choices.JIT_COMPILE`: auto, true, false;
            YAML's booleans are taken too); "auto" is resolved when the run starts.
        tensorboard: bool. Write TensorBoard logs under the run directory.
        verbose: int. Keras' fit verbosity: 0 silent, 1 progress bar, 2 one line per epoch.
        label_smoothing: float. Share of each target's probability spread over all labels.
        adversarial: AdversarialConfig. Adversarial training (off by default).
        wandb: bool. Also log the run to Weights & Biases (offline without network or
            WANDB_API_KEY); needs `pip install tfrnn[tracking]`.
    """

    epochs: int = 10
    optimizer: str = "adam"
    learning_rate: float = 3e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.0
    decay: str = "constant"
    unfreeze: str = "none"
    layer_lr_factor: float = 1.0
    clipnorm: Optional[float] = 1.0
    monitor: str = "val_loss"
    early_stopping_patience: int = 3
    precision: str = "auto"
    strategy: str = "auto"
    devices: Optional[List[str]] = None
    model_parallel: int = 1
    seed: int = 42
    deterministic: bool = False
    jit_compile: str = "auto"
    tensorboard: bool = True
    verbose: int = 1
    label_smoothing: float = 0.0
    adversarial: AdversarialConfig = field(default_factory=AdversarialConfig)
    wandb: bool = False

    def __post_init__(self):
        _tuples(self, "devices")
        # OmegaConf gives a YAML boolean (`jit_compile: false`, tfrnn <= 0.2's type) as "False".
        object.__setattr__(self, "jit_compile", str(self.jit_compile).lower())

    @property
    def compiled(self):
        """Whether the steps are compiled, once `jit_compile` is resolved ("true" or "false")."""
        return self.jit_compile == "true"


@dataclass(frozen=True)
class RunConfig:
    """Everything a `tfrnn train` run needs; once resolved, the run spec.

    Args:
        data: DataConfig. The data.
        model: ModelConfig. The model.
        train: TrainConfig. The fitting.
        init_from: str or None. A `tfrnn pretrain` run directory: the classifier is built on its
            encoder and vocabulary (the encoder's settings come from that run).
        output_dir: str. Parent folder of run directories.
        run_name: str or None. The run directory's name (one path component); None: the time
            and the model, when the run is resolved.
        tfrnn_version: str or None. The tfrnn that resolved the spec (None before).
    """

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    init_from: Optional[str] = None
    output_dir: str = "runs"
    run_name: Optional[str] = None
    tfrnn_version: Optional[str] = None

    @property
    def task(self):
        """What the run does: a classifier's run trains (a PretrainConfig's `task` is "pretrain")."""
        return "train"

    @property
    def run_dir(self):
        """The run directory, once `run_name` is resolved."""
        return Path(self.output_dir) / self.run_name


@dataclass(frozen=True)
class TextDataConfig:
    """`tfrnn pretrain`'s unlabelled text: where it comes from, how it is cleaned and batched.

    Args:
        sources: list of str. Each a CSV, TSV or JSONL file (its `text_column`; labels are
            ignored), a plain-text file or a folder of .txt files (`lines`), "imdb" (TFDS
            imdb_reviews' unsupervised and train texts; downloads once) or "embedded" (the movie
            reviews shipped with tfrnn).
        text_column: str. Column (or JSON key) holding the text in CSV, TSV and JSONL files.
        lines: bool. Plain-text files hold one document per line (else one per file).
        data_dir: str or None. TFDS data directory for "imdb".
        strip_html: bool. Remove HTML tags such as `<br />` and unescape entities.
        unicode_form: str or None. Unicode normalisation ("NFKC").
        validation_split: float. Fraction of the documents held out for the perplexity.
        limit: int or None. Use at most this many documents (quick runs).
        max_len: int. RNN: tokens per truncated-backpropagation window; BERT: sequence length.
        batch_size: int. Global batch size (RNN: parallel streams).
    """

    sources: List[str] = field(default_factory=lambda: ["embedded"])
    text_column: str = "text"
    lines: bool = False
    data_dir: Optional[str] = None
    strip_html: bool = True
    unicode_form: Optional[str] = None
    validation_split: float = 0.05
    limit: Optional[int] = None
    max_len: int = 70
    batch_size: int = 32

    def __post_init__(self):
        _tuples(self, "sources")


@dataclass(frozen=True)
class RNNLanguageModelConfig:
    """`tfrnn pretrain --model rnn`: an AWD-LSTM language model (Merity et al. 2017), from tfrnn's
    LSTM layers, with tied input and output embeddings (`tfrnn.models.language_model`).

    Args:
        tokenizer: str. A `tfrnn.choices.TOKENIZERS` name.
        vocab_size: int. Vocabulary size learned from the text, padding and OOV included.
        lowercase: bool. Lower-case the text before tokenising.
        embedding_dim: int. Size of the token embeddings (and of the tied output layer).
        units: int. Hidden size of each LSTM layer.
        layers: int. Number of stacked LSTM layers.
        embedding_dropout: float. Drops whole word types from the embedding matrix.
        input_dropout: float. Locked dropout on the embeddings (one mask per sequence).
        hidden_dropout: float. Locked dropout between the LSTM layers.
        output_dropout: float. Locked dropout on the last layer's outputs.
        weight_dropout: float. DropConnect on the recurrent kernels.
        ar: float. Activation regularisation (on the dropped last outputs).
        tar: float. Temporal activation regularisation (on the undropped last outputs).
        sampled: int. Words sampled per batch for the training softmax (0: the exact softmax);
            the held-out perplexity is always exact.
    """

    tokenizer: str = "word"
    vocab_size: int = 30000
    lowercase: bool = True
    embedding_dim: int = 200
    units: int = 512
    layers: int = 2
    embedding_dropout: float = 0.02
    input_dropout: float = 0.25
    hidden_dropout: float = 0.15
    output_dropout: float = 0.1
    weight_dropout: float = 0.2
    ar: float = 2.0
    tar: float = 1.0
    sampled: int = 1024


@dataclass(frozen=True)
class BertLanguageModelConfig:
    """`tfrnn pretrain --model bert`: masked-language-model pretraining with keras-hub's pieces.

    Args:
        checkpoint: str or None. Continue pretraining a checkpoint (as model.bert.checkpoint);
            None: a small BERT from scratch on a WordPiece vocabulary learned from the text.
        lowercase: bool or None. As model.bert.lowercase.
        strip_accents: bool or None. As model.bert.strip_accents.
        vocab_size: int. From scratch: size of the learned WordPiece vocabulary.
        layers: int. From scratch: transformer blocks.
        hidden_dim: int. From scratch: hidden size (a multiple of `heads`).
        heads: int. From scratch: attention heads.
        mask_rate: float. Fraction of the tokens selected for prediction (80% of them become
            [MASK], 10% a random token, 10% stay).
    """

    checkpoint: Optional[str] = None
    lowercase: Optional[bool] = None
    strip_accents: Optional[bool] = None
    vocab_size: int = 8000
    layers: int = 2
    hidden_dim: int = 64
    heads: int = 2
    mask_rate: float = 0.15


# tfrnn pretrain's model.kind -> its section's dataclass.
PRETRAIN_SECTIONS = {"rnn": RNNLanguageModelConfig, "bert": BertLanguageModelConfig}


@dataclass(frozen=True)
class PretrainModelConfig:
    """The language model: its kind, and that kind's section (the other stays None).

    Args:
        kind: str. "rnn" or "bert".
        rnn: RNNLanguageModelConfig or None. Settings of `kind=rnn`.
        bert: BertLanguageModelConfig or None. Settings of `kind=bert`.
    """

    kind: str = "rnn"
    rnn: Optional[RNNLanguageModelConfig] = None
    bert: Optional[BertLanguageModelConfig] = None

    def __post_init__(self):
        _one_of(self, PRETRAIN_SECTIONS)

    @property
    def section(self):
        """The active kind's section."""
        return getattr(self, self.kind)


@dataclass(frozen=True)
class PretrainConfig:
    """Everything a `tfrnn pretrain` run needs; once resolved, the run spec.

    Args:
        data: TextDataConfig. The unlabelled text.
        model: PretrainModelConfig. The language model.
        train: TrainConfig. The fitting.
        init_from: str or None. A `tfrnn pretrain` run to go on from (its weights and vocabulary):
            ULMFiT's fine-tuning of the language model on the target task's text.
        output_dir: str. Parent folder of run directories.
        run_name: str or None. The run directory's name; None: the time and the model.
        tfrnn_version: str or None. The tfrnn that resolved the spec (None before).
        task: str. "pretrain": marks the run directory as a language model's.
    """

    data: TextDataConfig = field(default_factory=TextDataConfig)
    model: PretrainModelConfig = field(default_factory=PretrainModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    init_from: Optional[str] = None
    output_dir: str = "runs"
    run_name: Optional[str] = None
    tfrnn_version: Optional[str] = None
    task: str = "pretrain"

    @property
    def run_dir(self):
        """The run directory, once `run_name` is resolved."""
        return Path(self.output_dir) / self.run_name


# Defaults that differ by model.kind, under the config file and the overrides. BERT:
# fine-tuning as in Devlin et al. (AdamW 2e-5, 10% warmup then linear decay, 3 epochs) with
# sequences of 128 WordPiece tokens.
KIND_DEFAULTS = {
    "bert": {
        "data": {"max_len": 128},
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

# The same for `tfrnn pretrain`. RNN: AdamW at a constant rate (Merity et al. use NT-ASGD; AdamW
# reaches a comparable perplexity in fewer epochs). BERT: AdamW 1e-4 with 10% warmup then linear
# decay, sequences of 128 (Devlin et al.'s first phase).
PRETRAIN_KIND_DEFAULTS = {
    "rnn": {"train": {"optimizer": "adamw", "epochs": 5, "early_stopping_patience": 2}},
    "bert": {
        "data": {"max_len": 128},
        "train": {
            "optimizer": "adamw",
            "learning_rate": 1e-4,
            "warmup_ratio": 0.1,
            "decay": "linear",
            "epochs": 5,
            "early_stopping_patience": 2,
        },
    },
}

# Defaults of a classifier built on a pretrained encoder (`init_from`), under the file and the
# overrides. RNN: ULMFiT's recipe (concat pooling, gradual unfreezing, discriminative rates that
# fall 2.6x per layer down, slanted triangular rates); BERT: as a checkpoint's fine-tuning.
INIT_FROM_DEFAULTS = {
    "rnn": {
        "model": {"rnn": {"pooling": "concat", "dropout": 0.1}},
        "train": {
            "optimizer": "adamw",
            "learning_rate": 1e-2,
            "decay": "slanted",
            "warmup_ratio": 0.1,
            "unfreeze": "gradual",
            "layer_lr_factor": 2.6,
            "epochs": 4,
            "monitor": "val_accuracy",
            "early_stopping_patience": 0,
        },
    },
    # The masked LM never trains BERT's [CLS] pooler: pool the tokens instead.
    "bert": {"model": {"bert": {"pooling": "mean"}}},
}

# The settings of a classifier's section that a pretrained encoder decides (`init_from`).
INIT_FROM_FIELDS = {
    "rnn": ("tokenizer", "vocab_size", "lowercase", "embedding_dim", "units", "layers", "cell", "bidirectional"),
    "bert": ("checkpoint", "lowercase", "strip_accents", *BERT_SCRATCH_FIELDS),
}


# The cleaning settings, which a pretrained vocabulary was learned with (`init_from` decides them).
CLEANING = ("data.strip_html", "data.unicode_form")

# The settings of a language model that the run it goes on from decides (`init_from`).
PRETRAIN_DECIDED = {
    "rnn": ("tokenizer", "vocab_size", "lowercase", "embedding_dim", "units", "layers"),
    "bert": ("checkpoint", "lowercase", "strip_accents", *BERT_SCRATCH_FIELDS),
}


@dataclass(frozen=True)
class Schema:
    """What `load_config` builds: a root dataclass, its model section's class, its kinds.

    Args:
        root: type. RunConfig or PretrainConfig.
        model: type. Its model section's dataclass.
        sections: dict. model.kind -> that kind's section dataclass.
        kind_defaults: dict. model.kind -> nested defaults under the file and the overrides.
    """

    root: type
    model: type
    sections: dict
    kind_defaults: dict


# config.yaml's `task` -> its schema (a classifier's config has no `task`).
SCHEMAS = {
    "train": Schema(RunConfig, ModelConfig, SECTIONS, KIND_DEFAULTS),
    "pretrain": Schema(PretrainConfig, PretrainModelConfig, PRETRAIN_SECTIONS, PRETRAIN_KIND_DEFAULTS),
}

# Keys of tfrnn 0.1's flat model section (and the tokenizer settings that moved into the kinds'
# sections) -> their field in the kind's section. They are refused with the new key.
MOVED = {
    "model.checkpoint": "checkpoint",
    "model.cell": "cell",
    "model.feedback_base": "feedback_base",
    "model.embedding_dim": "embedding_dim",
    "model.units": {"rnn": "units", "bert": "hidden_dim"},
    "model.num_layers": {"rnn": "layers", "bert": "layers"},
    "model.num_heads": "heads",
    "model.bidirectional": "bidirectional",
    "model.pooling": "pooling",
    "model.dropout": "dropout",
    "model.recurrent_dropout": "recurrent_dropout",
    "model.hidden_units": "hidden_units",
    "data.tokenizer": "tokenizer",
    "data.vocab_size": "vocab_size",
    "data.lowercase": "lowercase",
    "data.strip_accents": "strip_accents",
}

# Dotted key -> its table of allowed values. Pooling depends on the kind (see `validate`).
CHOICES = {
    "data.source": choices.SOURCES,
    "data.blank_texts": choices.BLANK_TEXTS,
    "model.kind": choices.KINDS,
    "model.rnn.tokenizer": choices.TOKENIZERS,
    "model.rnn.cell": choices.CELLS,
    "model.rnn.feedback_base": choices.FEEDBACK_BASES,
    "model.rnn.pooling": choices.RNN_POOLINGS,
    "model.feedforward.tokenizer": choices.TOKENIZERS,
    "model.bert.pooling": choices.BERT_POOLINGS,
    "train.optimizer": choices.OPTIMIZERS,
    "train.decay": choices.SCHEDULES,
    "train.unfreeze": choices.UNFREEZE,
    "train.monitor": choices.MONITORS,
    "train.precision": choices.PRECISIONS,
    "train.jit_compile": choices.JIT_COMPILE,
    "train.strategy": choices.STRATEGIES,
    "data.augment.unit": choices.AUGMENT_UNITS,
}

POSITIVE = (
    "data.batch_size",
    "data.max_len",
    "data.shuffle_buffer",
    "model.rnn.vocab_size",
    "model.rnn.embedding_dim",
    "model.rnn.units",
    "model.rnn.layers",
    "model.feedforward.vocab_size",
    "model.feedforward.embedding_dim",
    "model.feedforward.hidden_units",
    "model.bert.vocab_size",
    "model.bert.layers",
    "model.bert.hidden_dim",
    "model.bert.heads",
    "train.epochs",
    "train.model_parallel",
    "model.peft.rank",
    "model.peft.bottleneck",
    "model.peft.prefix_length",
    "model.peft.prefix_hidden",
    "model.peft.init_rank",
    "model.peft.interval",
    "train.learning_rate",
    "train.layer_lr_factor",
    "data.augment.copies",
    "data.augment.neighbours",
    "train.adversarial.epsilon",
    "train.adversarial.weight",
    "train.adversarial.steps",
    "train.adversarial.xi",
)

RATES = (
    "model.rnn.dropout",
    "model.rnn.recurrent_dropout",
    "model.rnn.weight_dropout",
    "model.rnn.embedding_dropout",
    "model.rnn.input_dropout",
    "model.rnn.hidden_dropout",
    "model.rnn.output_dropout",
    "model.bert.mask_rate",
    "model.feedforward.dropout",
    "model.bert.dropout",
    "model.peft.dropout",
)

# Rates where 1 is allowed (every unit).
AUGMENT_RATES = ("deletion", "swap", "insertion", "synonym")


def _one_line(error):
    return " ".join(str(error).split("\n")[0].split())


class _Input:
    """What the user gave: a YAML file and dotted overrides, untyped, with where each key came from.

    Args:
        path: Path or None. The YAML file.
        overrides: list of str. `key=value` items.
    """

    def __init__(self, path, overrides):
        self.path = path
        self.file = self._load_file(path) if path is not None else OmegaConf.create({})
        self.overrides = []
        for item in overrides:
            if "=" not in item:
                raise ConfigError(f"override {item!r}: expected KEY=VALUE, e.g. model.rnn.units=128")
            try:
                self.overrides.append((item, OmegaConf.from_dotlist([item])))
            except OmegaConfBaseException as error:
                raise ConfigError(f"override {item!r}: {_one_line(error)}") from None

    @staticmethod
    def _load_file(path):
        try:
            loaded = OmegaConf.load(path)
        except yaml.MarkedYAMLError as error:  # syntax
            mark = error.problem_mark
            raise ConfigError(f"{path}:{mark.line + 1}:{mark.column + 1}: {error.problem}") from None
        except (OSError, UnicodeDecodeError, OmegaConfBaseException) as error:
            raise ConfigError(f"{path}: {_one_line(error)}") from None
        if not isinstance(loaded, DictConfig):
            raise ConfigError(f"{path}: expected a mapping of sections (data, model, train)")
        return loaded

    def keys(self):
        """Every dotted leaf key given (the file's first, then the overrides')."""
        keys = list(_leaf_keys(self.file))
        for _, override in self.overrides:
            keys += [key for key in _leaf_keys(override) if key not in keys]
        return keys

    def get(self, key, default=None):
        """The value given last for `key`, or `default`."""
        value = OmegaConf.select(self.file, key, default=default)
        for _, override in self.overrides:
            value = OmegaConf.select(override, key, default=value)
        return value

    def where(self, key):
        """`file:line: ` when `key` comes from the file (and no override), `override 'k=v': `
        when from an override, else ''."""
        for item, override in reversed(self.overrides):
            if _given(override, key):
                return f"override {item!r}: "
        line = _key_line(self.path, key) if self.path is not None else None
        if line is not None:
            return f"{self.path}:{line}: "
        return f"{self.path}: " if self.path is not None and key in self.keys() else ""


def _given(node, key):
    """Whether the dotted `key` is set in `node` (without resolving `${...}` interpolations)."""
    for part in key.split("."):
        if not isinstance(node, DictConfig):
            return False
        node = node._get_node(part)
        if node is None:
            return False
    return True


def _leaf_keys(node, prefix=""):
    for key, value in node.items_ex(resolve=False):  # `${...}` is resolved at the end, not here
        dotted = f"{prefix}{key}"
        if isinstance(value, DictConfig) and len(value):
            yield from _leaf_keys(value, dotted + ".")
        else:
            yield dotted


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


def _writable(node):
    """OmegaConf marks frozen dataclasses read-only; merging needs them writable."""
    OmegaConf.set_readonly(node, False)
    for key in node:
        child = node[key]
        if isinstance(child, DictConfig):
            _writable(child)
    return node


def _check_kind_sections(given, kind, sections):
    """Refuses keys of another kind's section and the flat keys of tfrnn 0.1."""
    for key in given.keys():
        parts = key.split(".")
        if parts[0] == "model" and len(parts) > 1 and parts[1] in SECTIONS and parts[1] != kind:
            raise ConfigError(
                f"{given.where(key)}{key}: a setting of model.kind={parts[1]}, not of model.kind={kind} "
                f"(its settings are model.{kind}.*)",
                key,
            )
        moved = MOVED.get(".".join(parts[:2]))
        if moved is not None and len(parts) == 2:
            new = moved.get(kind) if isinstance(moved, dict) else moved
            if new in {f.name for f in dataclasses.fields(sections[kind])}:
                hint = f"it is model.{kind}.{new} now"
            else:
                hint = f"model.kind={kind} has no such setting (see model.{kind}.*)"
            raise ConfigError(f"{given.where(key)}{key}: {hint}", key)


def load_config(path=None, overrides=(), task="train"):
    """Builds a run config from defaults, the kind's defaults, a YAML file and dotted overrides.

    Args:
        path: str, Path or None. A YAML file with any subset of the fields.
        overrides: iterable of str. `key.sub=value` items, applied last.
        task: str. A `SCHEMAS` name: "train" (a classifier) or "pretrain" (a language model).

    Returns:
        RunConfig or PretrainConfig (frozen), type-checked and validated; fields that the run
        decides (labels, BERT's case rules, run_name) may still be None: see `resolve`.

    Raises:
        ConfigError: a missing file, bad YAML, an unknown key or a key of another model kind,
            a wrong type, choice or range; it names the file and line, or the override.
    """
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
    given = _Input(path, list(overrides))
    try:
        kind = given.get("model.kind", "rnn")
    except OmegaConfBaseException as error:  # an interpolation that does not resolve
        raise ConfigError(f"{given.where('model.kind')}model.kind: {_one_line(error)}") from None
    schema = SCHEMAS[task]
    if task == "train" and given.get("init_from") is not None and kind not in INIT_FROM_DEFAULTS:
        raise ConfigError(
            f"{given.where('init_from')}init_from: a pretrained encoder needs model.kind=rnn or bert, not {kind}",
            "init_from",
        )
    if kind not in schema.sections:
        expected = ", ".join(schema.sections)
        raise ConfigError(f"{given.where('model.kind')}model.kind={kind!r}: expected one of {expected}")
    _check_kind_sections(given, kind, schema.sections)
    model = schema.model(kind=kind, **{kind: schema.sections[kind]()})
    merged = _writable(OmegaConf.structured(schema.root(model=model)))
    merged = OmegaConf.merge(merged, schema.kind_defaults.get(kind, {}))
    if task == "train" and given.get("init_from") is not None:
        merged = OmegaConf.merge(merged, INIT_FROM_DEFAULTS[kind])
    try:
        merged = OmegaConf.merge(merged, given.file)
    except OmegaConfBaseException as error:  # unknown key, wrong type
        key = getattr(error, "full_key", "")
        raise ConfigError(
            f"{given.where(key) if key else f'{path}: '}{key + ': ' if key else ''}{_one_line(error)}"
        ) from None
    for item, override in given.overrides:
        try:
            merged = OmegaConf.merge(merged, override)
        except OmegaConfBaseException as error:
            raise ConfigError(f"override {item!r}: {_one_line(error)}") from None
    try:
        config = OmegaConf.to_object(merged)
    except OmegaConfBaseException as error:  # ${...} interpolations
        key = getattr(error, "full_key", "") or ""
        raise ConfigError(f"{given.where(key) if key else ''}{key}: {_one_line(error)}", key or None) from None
    try:
        validate(config, given.keys())
    except ConfigError as error:
        raise ConfigError(f"{given.where(error.key) if error.key else ''}{error}", error.key) from None
    return config


def get(config, key):
    """The value of a dotted key (`model.rnn.cell`) in a RunConfig."""
    value = config
    for part in key.split("."):
        value = getattr(value, part)
    return value


def validate(config, given=()):
    """Checks choices, ranges and the settings that must agree with each other.

    Args:
        config: RunConfig. The config to check.
        given: iterable of str. Dotted keys the user set explicitly (some are refused in context).

    Raises:
        ConfigError: naming the key (also as `.key`), the value and what is allowed.
    """
    kind = config.model.kind
    for key in (k for k in CHOICES if _applies(k, kind) and _has(config, k)):
        value = get(config, key)
        if value not in CHOICES[key]:
            raise ConfigError(f"{key}={value!r}: expected one of {', '.join(CHOICES[key])}", key)
    for key in (k for k in POSITIVE if _applies(k, kind) and _has(config, k)):
        if get(config, key) <= 0:
            raise ConfigError(f"{key}={get(config, key)}: must be positive", key)
    for key in (k for k in RATES if _applies(k, kind) and _has(config, k)):
        if not 0.0 <= get(config, key) < 1.0:
            raise ConfigError(f"{key}={get(config, key)}: expected 0 <= x < 1", key)
    if not 0.0 <= config.data.validation_split < 1.0:
        raise ConfigError(
            f"data.validation_split={config.data.validation_split}: expected 0 <= x < 1", "data.validation_split"
        )
    if not 0.0 <= config.train.label_smoothing < 1.0:
        raise ConfigError(
            f"train.label_smoothing={config.train.label_smoothing}: expected 0 <= x < 1", "train.label_smoothing"
        )
    if config.data.limit is not None and config.data.limit <= 0:
        raise ConfigError(f"data.limit={config.data.limit}: expected a positive number or null", "data.limit")
    if config.run_name is not None:
        _check_run_name(config.run_name)
    if kind == "bert":
        _validate_bert(config.model.bert, given)
    _validate_schedule(config.train, kind)
    if isinstance(config, PretrainConfig):
        _validate_pretrain(config, given)
        return
    _check_paths_are_read(config.data)
    if config.init_from is not None and config.tfrnn_version is None:  # a spec holds what the run decided
        decided = [f"model.{kind}.{name}" for name in INIT_FROM_FIELDS[kind] if f"model.{kind}.{name}" in given]
        decided += [key for key in CLEANING if key in given]
        if decided:
            raise ConfigError(
                f"{decided[0]}: the pretrained encoder (init_from={config.init_from}) decides it; leave it unset",
                decided[0],
            )
    _validate_peft(config.model, given, config.init_from)
    _validate_adversarial(config.train.adversarial, given)
    _validate_augment(config.data.augment, given)


def _validate_adversarial(adversarial, given):
    method = adversarial.method
    settings = [key for key in given if key.startswith("train.adversarial.") and key != "train.adversarial.method"]
    if method is None:
        if settings:
            raise ConfigError(f"{settings[0]}: given without train.adversarial.method", settings[0])
        return
    if method not in choices.ADVERSARIAL:
        raise ConfigError(
            f"train.adversarial.method={method!r}: expected one of {', '.join(choices.ADVERSARIAL)} (or null)",
            "train.adversarial.method",
        )
    unused = [key for key in settings if key.split(".", 2)[2] not in ADVERSARIAL_SETTINGS[method]]
    if unused:
        raise ConfigError(
            f"{unused[0]}: train.adversarial.method={method} does not read it "
            f"(its settings: {', '.join(ADVERSARIAL_SETTINGS[method])})",
            unused[0],
        )


def _validate_augment(augment, given):
    for name in AUGMENT_RATES:
        value = getattr(augment, name)
        if not 0.0 <= value <= 1.0:
            raise ConfigError(f"data.augment.{name}={value}: expected 0 <= x <= 1", f"data.augment.{name}")
    if (augment.synonym or augment.insertion) and augment.neighbours_from is None:
        name = "synonym" if augment.synonym else "insertion"
        raise ConfigError(
            f"data.augment.{name}={getattr(augment, name)}: needs data.augment.neighbours_from, a run whose "
            "embedding gives the neighbours",
            "data.augment.neighbours_from",
        )
    settings = [key for key in given if key.startswith("data.augment.") and key.split(".")[2] not in AUGMENT_RATES]
    if settings and not augment.active:
        raise ConfigError(f"{settings[0]}: given while every data.augment rate is 0", settings[0])


def _has(config, key):
    """Whether the dotted `key` is a field of `config` (the tables serve both schemas)."""
    value = config
    for part in key.split("."):
        if not hasattr(value, part):
            return False
        value = getattr(value, part)
    return True


def _validate_schedule(train, kind):
    if train.decay == "slanted" and train.warmup_ratio <= 0:
        raise ConfigError(
            "train.decay=slanted: needs train.warmup_ratio > 0, the share of the steps where the rate rises "
            "(ULMFiT: 0.1)",
            "train.warmup_ratio",
        )
    if train.unfreeze != "none" and kind != "rnn":
        raise ConfigError(f"train.unfreeze={train.unfreeze}: only for model.kind=rnn", "train.unfreeze")
    if train.layer_lr_factor != 1 and kind != "rnn":
        raise ConfigError(
            f"train.layer_lr_factor={train.layer_lr_factor}: only for model.kind=rnn", "train.layer_lr_factor"
        )


def _validate_pretrain(config, given):
    if config.task != "pretrain":
        raise ConfigError(f"task={config.task!r}: a language model's config says task: pretrain", "task")
    if not config.data.sources:
        raise ConfigError("data.sources: empty; name at least one file, folder, 'imdb' or 'embedded'", "data.sources")
    for key, off in (
        ("train.unfreeze", "none"),
        ("train.layer_lr_factor", 1.0),
        ("train.label_smoothing", 0.0),
        ("train.adversarial.method", None),
    ):
        if get(config, key) != off:
            raise ConfigError(f"{key}={get(config, key)}: only for a classifier, not a language model", key)
    if config.model.kind == "rnn" and config.train.monitor != "val_loss":
        raise ConfigError(
            f"train.monitor={config.train.monitor}: the RNN language model logs no accuracy; monitor val_loss "
            "(the held-out perplexity's log)",
            "train.monitor",
        )
    if config.model.kind == "rnn":
        lm = config.model.rnn
        for name in ("sampled", "ar", "tar"):
            if getattr(lm, name) < 0:
                raise ConfigError(f"model.rnn.{name}={getattr(lm, name)}: must be >= 0", f"model.rnn.{name}")
    elif config.model.bert.mask_rate <= 0:
        raise ConfigError(
            f"model.bert.mask_rate={config.model.bert.mask_rate}: must be above 0", "model.bert.mask_rate"
        )
    if config.init_from is not None and config.tfrnn_version is None:  # a spec holds what the run decided
        kind = config.model.kind
        decided = [f"model.{kind}.{name}" for name in PRETRAIN_DECIDED[kind] if f"model.{kind}.{name}" in given]
        decided += [key for key in CLEANING if key in given]
        if decided:
            raise ConfigError(
                f"{decided[0]}: the pretrained model (init_from={config.init_from}) decides it; leave it unset",
                decided[0],
            )


def _validate_peft(model, given, init_from=None):
    peft = model.peft
    if peft.method is None:
        if any(key.startswith("model.peft.") and key != "model.peft.method" for key in given):
            raise ConfigError("model.peft: settings given without model.peft.method", "model.peft.method")
        return
    if peft.method not in choices.PEFT_METHODS:
        raise ConfigError(
            f"model.peft.method={peft.method!r}: expected one of {', '.join(choices.PEFT_METHODS)} (or null)",
            "model.peft.method",
        )
    if model.kind == "feedforward" or (model.kind == "rnn" and init_from is None):
        raise ConfigError(
            f"model.peft.method={peft.method}: needs a pretrained encoder: a model.kind=bert checkpoint, or "
            "init_from a `tfrnn pretrain` run",
            "model.peft.method",
        )
    if model.kind == "bert" and not model.bert.checkpoint and init_from is None:
        raise ConfigError(
            f"model.peft.method={peft.method}: needs a pretrained encoder; set model.bert.checkpoint or init_from",
            "model.peft.method",
        )
    if model.kind == "rnn" and peft.method not in RNN_PEFT_METHODS:
        raise ConfigError(
            f"model.peft.method={peft.method}: recurrent layers take {', '.join(RNN_PEFT_METHODS)} only",
            "model.peft.method",
        )
    if model.kind == "rnn" and peft.dropout:
        raise ConfigError(
            f"model.peft.dropout={peft.dropout}: not for recurrent layers (their update is folded into the kernels)",
            "model.peft.dropout",
        )
    unused = [
        key
        for key in given
        if key.startswith("model.peft.") and key.split(".", 2)[2] not in ("method", *PEFT_SETTINGS[peft.method])
    ]
    if unused:
        settings = ", ".join(PEFT_SETTINGS[peft.method]) or "none"
        raise ConfigError(
            f"{unused[0]}: model.peft.method={peft.method} does not read it (its settings: {settings})", unused[0]
        )
    if peft.alpha is not None and peft.alpha <= 0:
        raise ConfigError(f"model.peft.alpha={peft.alpha}: must be positive", "model.peft.alpha")
    if peft.method == "adalora":
        _validate_adalora(peft)


def _validate_adalora(peft):
    if peft.init_rank < peft.rank:
        raise ConfigError(
            f"model.peft.init_rank={peft.init_rank}: AdaLoRA prunes from init_rank down to rank={peft.rank}, "
            "so init_rank must be at least rank",
            "model.peft.init_rank",
        )
    for name in ("warmup_fraction", "final_fraction"):
        if not 0 <= getattr(peft, name) < 1:
            raise ConfigError(f"model.peft.{name}={getattr(peft, name)}: expected 0 <= x < 1", f"model.peft.{name}")
    if peft.warmup_fraction + peft.final_fraction >= 1:
        raise ConfigError(
            f"model.peft.warmup_fraction + final_fraction = {peft.warmup_fraction + peft.final_fraction}: "
            "must be below 1 (the ranks are pruned in between)",
            "model.peft.final_fraction",
        )
    if not 0 < peft.beta < 1:
        raise ConfigError(f"model.peft.beta={peft.beta}: expected 0 < beta < 1", "model.peft.beta")
    if peft.orthogonality < 0:
        raise ConfigError(f"model.peft.orthogonality={peft.orthogonality}: must be >= 0", "model.peft.orthogonality")


def _check_paths_are_read(data):
    """A path the chosen source would not read is an error, never silently ignored."""
    readers = {"path": ("file", "aclimdb"), "test_path": ("file",)}
    for name, sources in readers.items():
        if getattr(data, name) is not None and data.source not in sources:
            raise ConfigError(
                f"data.{name}={getattr(data, name)!r}: data.source={data.source} does not read it "
                f"(only data.source={' or '.join(sources)} does)",
                f"data.{name}",
            )


def _applies(key, kind):
    """Whether a dotted key is checked for `kind`: not when it is in another kind's section."""
    parts = key.split(".")
    return parts[0] != "model" or parts[1] not in SECTIONS or parts[1] == kind


def _validate_bert(bert, given):
    if bert.checkpoint:
        for name in BERT_SCRATCH_FIELDS:
            if f"model.bert.{name}" in given:
                raise ConfigError(
                    f"model.bert.{name}: only for a BERT trained from scratch; the checkpoint "
                    f"{bert.checkpoint!r} decides it",
                    f"model.bert.{name}",
                )
    elif bert.hidden_dim % bert.heads:
        raise ConfigError(
            f"model.bert.hidden_dim={bert.hidden_dim} must be a multiple of model.bert.heads={bert.heads}",
            "model.bert.hidden_dim",
        )


def _check_run_name(name):
    if not name or name in (".", "..") or "/" in name or "\\" in name or name.startswith("."):
        raise ConfigError(f"run_name={name!r}: expected one folder name (no '/', not starting with '.')", "run_name")


def resolve(config, labels=None, run_name=None, lowercase=None, strip_accents=None, jit_compile=None, precision=None):
    """The run spec: `config` with what the data and the checkpoint decided filled in.

    Args:
        config: RunConfig or PretrainConfig. From `load_config`.
        labels: list of str or None. The label names, in index order (the data's, or
            `data.labels`); None for a language model.
        run_name: str or None. The run directory's name; None keeps `config.run_name`, or
            makes one from the time and the model.
        lowercase: bool or None. BERT: the checkpoint's case rule (None: no checkpoint).
        strip_accents: bool or None. BERT: the checkpoint's accent rule.
        jit_compile: bool or None. What `train.jit_compile=auto` means here (None keeps it).
        precision: str or None. What `train.precision=auto` means here (None keeps it).

    Returns:
        RunConfig, frozen, with labels, run_name, tfrnn_version, the "auto" train settings
        (and for BERT lowercase and strip_accents) set.

    Raises:
        ConfigError: an explicit BERT case setting that contradicts the checkpoint.
    """
    model = config.model
    if model.kind == "bert":
        model = dataclasses.replace(model, bert=_resolve_bert_case(model.bert, lowercase, strip_accents))
    if isinstance(config, PretrainConfig):
        what = f"{model.kind}-lm"
    else:
        what = model.rnn.cell if model.kind == "rnn" else model.kind
    name = run_name or config.run_name or datetime.now().strftime(f"%Y%m%d-%H%M%S-{what}")
    _check_run_name(name)
    decided = {}
    if config.train.jit_compile == "auto" and jit_compile is not None:
        decided["jit_compile"] = str(bool(jit_compile)).lower()
    if config.train.precision == "auto" and precision is not None:
        decided["precision"] = precision
    data = config.data if labels is None else dataclasses.replace(config.data, labels=tuple(labels))
    return dataclasses.replace(
        config,
        data=data,
        model=model,
        train=dataclasses.replace(config.train, **decided),
        run_name=name,
        tfrnn_version=__version__,
    )


def _resolve_bert_case(bert, lowercase, strip_accents):
    decided = {"lowercase": lowercase, "strip_accents": strip_accents}
    if bert.checkpoint is None:  # from scratch: lower-case unless told otherwise
        decided["lowercase"] = True if bert.lowercase is None else bert.lowercase
        decided["strip_accents"] = decided["lowercase"] if bert.strip_accents is None else bert.strip_accents
        return dataclasses.replace(bert, **decided)
    for name, value in decided.items():
        mine = getattr(bert, name)
        if mine is not None and mine != value:
            raise ConfigError(
                f"model.bert.{name}={mine}: the checkpoint's tokenizer says {value}; leave it unset",
                f"model.bert.{name}",
            )
    return dataclasses.replace(bert, **decided)


def as_dict(config):
    """A RunConfig or PretrainConfig as plain nested dicts and lists, without the sections of other kinds (nor,
    with a BERT checkpoint, the from-scratch fields it decides)."""

    def plain(value):
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return list(value) if isinstance(value, tuple) else value

    result = plain(config)
    kind = config.model.kind
    section = result["model"][kind]
    if kind == "bert" and config.model.bert.checkpoint:  # the checkpoint decided them
        section = {k: v for k, v in section.items() if k not in BERT_SCRATCH_FIELDS}
    result["model"] = {"kind": kind, kind: section}
    adversarial = config.train.adversarial  # the method and the settings it reads
    result["train"]["adversarial"] = {
        key: value
        for key, value in result["train"]["adversarial"].items()
        if key == "method" or key in ADVERSARIAL_SETTINGS.get(adversarial.method, ())
    }
    augment = getattr(config.data, "augment", None)
    if augment is not None and not augment.active:  # off: the rates alone
        result["data"]["augment"] = {key: result["data"]["augment"][key] for key in AUGMENT_RATES}
    peft = getattr(config.model, "peft", None)
    if peft is not None and peft.method is not None:  # the method and the settings it reads
        result["model"]["peft"] = {
            key: value for key, value in plain(peft).items() if key in ("method", *PEFT_SETTINGS[peft.method])
        }
    return result


def to_yaml(config):
    """Serialises a RunConfig to YAML text (only the active model kind's section)."""
    return yaml.safe_dump(as_dict(config), sort_keys=False, allow_unicode=True)


def save_config(config, path):
    """Writes a RunConfig as YAML to `path`, atomically."""
    atomic_write_text(path, to_yaml(config))
