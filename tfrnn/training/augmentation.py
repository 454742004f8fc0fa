"""A run's augmentation of its training examples (`data.augment`, `tfrnn.data.augment`): the unit
the model reads, the neighbours from the embedding of another run, the altered copies.

Only the training split is augmented, once per run, after the vocabulary is learned from the
originals; validation and test data are never touched.
"""

import keras

from tfrnn import data
from tfrnn.data.augment import OPERATIONS, Neighbours, augment_examples
from tfrnn.errors import ConfigError
from tfrnn.runs import load_pretrained, load_run, read_spec

KEY = "data.augment.neighbours_from"
EMBEDDING_KINDS = ("rnn", "feedforward")  # the kinds whose models have a layer "embedding"


def augment_unit(spec):
    """`data.augment.unit` resolved: "auto" is "char" for an rnn or feed-forward model with
    tokenizer "char", else "word".

    Args:
        spec: tfrnn.config.RunConfig.

    Returns:
        str, "word" or "char".
    """
    unit = spec.data.augment.unit
    if unit != "auto":
        return unit
    char = spec.model.kind in EMBEDDING_KINDS and spec.model.section.tokenizer == "char"
    return "char" if char else "word"


def _needs_neighbours(augment):
    return bool(augment.synonym or augment.insertion)


def check_augment(spec):
    """Checks `data.augment.neighbours_from` without loading a model, before a run writes anything:
    a finished `tfrnn train` or `tfrnn pretrain` run of an rnn or feed-forward model whose
    tokenizer splits text into the units augmentation alters. Nothing to check while augmentation
    is off or needs no neighbours.

    Args:
        spec: tfrnn.config.RunConfig.

    Returns:
        (tfrnn.runs.RunPaths, its spec) of the neighbours' run, or None when none is needed.

    Raises:
        ConfigError: naming data.augment.neighbours_from.
    """
    augment = spec.data.augment
    if not augment.active or not _needs_neighbours(augment):
        return None
    where = augment.neighbours_from
    try:
        paths, source = read_spec(where)
    except ConfigError as error:
        raise ConfigError(f"{KEY}: {error}", KEY) from None
    if source.model.kind not in EMBEDDING_KINDS:
        raise ConfigError(
            f"{KEY}={where}: a model.kind={source.model.kind} run has no word embedding (a layer "
            f'"embedding"); use an rnn or feedforward run',
            KEY,
        )
    tokenizer, unit = source.model.section.tokenizer, augment_unit(spec)
    if tokenizer != unit:
        raise ConfigError(
            f"{KEY}={where}: its embedding is of {tokenizer} tokens, and augmentation alters {unit}s "
            f"(data.augment.unit={spec.data.augment.unit})",
            KEY,
        )
    if not paths.metrics.is_file():
        command = "pretrain" if source.task == "pretrain" else "train"
        raise ConfigError(f"{KEY}={where}: unfinished; finish it with tfrnn {command} --resume {where}", KEY)
    return paths, source


def load_neighbours(spec):
    """The nearest neighbours in the embedding of `data.augment.neighbours_from` (checked with
    `check_augment`): the layer "embedding" of its model and its preprocessor's vocabulary.

    Args:
        spec: tfrnn.config.RunConfig.

    Returns:
        tfrnn.data.augment.Neighbours, or None when augmentation needs none.

    Raises:
        ConfigError: naming data.augment.neighbours_from.
    """
    checked = check_augment(spec)
    if checked is None:
        return None
    paths, source = checked
    try:
        if source.task == "pretrain":
            model = load_pretrained(paths.root, source.model.kind, option=KEY).model
        else:
            model = load_run(paths.root).model
    except ConfigError as error:
        raise ConfigError(str(error) if error.key == KEY else f"{KEY}: {error}", KEY) from None
    try:
        layer = model.get_layer("embedding")
    except ValueError:
        raise ConfigError(f'{KEY}={paths.root}: its model has no layer "embedding"', KEY) from None
    preprocessor = model.preprocessor
    return Neighbours(
        keras.ops.convert_to_numpy(layer.embeddings),  # (vocab, dim); a LoRA update included
        [str(token) for token in preprocessor.get_vocabulary()],
        spec.data.augment.neighbours,
        lowercase=preprocessor.lowercase,
        strip_punctuation=preprocessor.tokenizer == "word",
    )


def augment_training_examples(train_examples, spec, log=print):
    """The training examples with `data.augment.copies` altered copies of each (the original
    first), seeded by `train.seed`; `train_examples` itself when augmentation is off.

    The copies are made from the texts with HTML removed (`data.strip_html`, `data.unicode_form`),
    so that no tag is cut in two; the originals are kept as read.

    Args:
        train_examples: tfrnn.data.Examples. The training split only.
        spec: tfrnn.config.RunConfig. The run spec.
        log: callable. Receives one line saying what was done.

    Returns:
        tfrnn.data.Examples.

    Raises:
        ConfigError: `data.augment.neighbours_from` is missing or of no use (`check_augment`).
    """
    augment = spec.data.augment
    if not augment.active:
        return train_examples
    unit = augment_unit(spec)
    neighbours = load_neighbours(spec)

    def clean(texts):
        return data.clean_texts(texts, strip_html=spec.data.strip_html, unicode_form=spec.data.unicode_form)

    augmented = augment_examples(train_examples, augment, unit, spec.train.seed, neighbours, prepare=clean)
    rates = ", ".join(f"{name} {getattr(augment, name):g}" for name in OPERATIONS if getattr(augment, name))
    source = f"; neighbours from {augment.neighbours_from}" if neighbours is not None else ""
    log(
        f"augmentation: {len(train_examples):,} -> {len(augmented):,} training examples "
        f"({rates}; {unit}s, {augment.copies} cop{'y' if augment.copies == 1 else 'ies'} each{source})"
    )
    return augmented
