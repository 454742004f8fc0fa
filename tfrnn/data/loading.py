"""`load_examples`: a source's raw records -> texts with integer labels, blank ones handled."""

import numpy as np

from tfrnn.data.cleaning import clean_texts
from tfrnn.data.examples import Examples
from tfrnn.data.sources import FIXED_LABEL_NAMES, read_source
from tfrnn.errors import ConfigError, DataError

SPLITS = ("train", "test")


def load_examples(config, split, seed=0):
    """Loads and labels one split of the configured source.

    Texts stay raw: the model's preprocessor cleans them (`tfrnn.data.cleaning.standardize`), in
    training and in the serving graph alike. A text that cleaning would leave empty is blank. Label names are `config.labels` when given, else fixed by
    the source ("neg", "pos" for aclimdb and imdb), else inferred from the *training* data
    (so train and test agree): its sorted unique labels, in numeric order when all are integers.
    A label is a name, or an integer i that stands for the i-th name.

    Args:
        config: DataConfig. The source and cleaning options.
        split: str. "train" or "test".
        seed: int. Seed of the shuffle that picks `config.limit` training examples.

    Returns:
        Examples, in source order.

    Raises:
        DataError: unreadable data, an unknown label, a blank text with `blank_texts="error"`,
            no examples left, or training data with a single class.
        ConfigError: a bad `split`, `source`, `limit` or `unicode_form`.
    """
    if split not in SPLITS:
        raise ConfigError(f"split={split!r}: expected one of {', '.join(SPLITS)}")
    records, source = read_source(config, split)
    names = _label_names(config, records if split == "train" else None)
    labels = _label_ids(records, names, given=config.labels is not None)
    texts, keep = _clean_texts(records, config)
    if not keep:
        raise DataError(f"no examples left after skipping {len(records)} blank texts", source)
    examples = Examples(texts, labels[keep], names, source, skipped_blank=len(records) - len(keep))
    if split == "train":
        examples = _limit(examples, config.limit, seed)
        _require_two_classes(examples)
    return examples


def has_test_split(config):
    """Whether the configured source has a "test" split (embedded, imdb, aclimdb, or a test_path)."""
    return config.source != "file" or config.test_path is not None


def _label_names(config, train_records):
    if config.labels is not None:
        if not config.labels or len(set(config.labels)) != len(config.labels):
            raise ConfigError(f"data.labels={list(config.labels)}: expected distinct names")
        return list(config.labels)
    if config.source in FIXED_LABEL_NAMES:
        return list(FIXED_LABEL_NAMES[config.source])
    if train_records is None:  # a test split takes its names from the training data
        train_records, _ = read_source(config, "train")
    unique = {record.label for record in train_records}
    if all(_is_int(label) for label in unique):
        return sorted(unique, key=int)
    return sorted(unique)


def _label_ids(records, names, given):
    index = {name: i for i, name in enumerate(names)}
    ids = np.empty(len(records), dtype=np.int32)
    for i, record in enumerate(records):
        label = record.label
        if label in index:
            ids[i] = index[label]
        elif _is_int(label) and 0 <= int(label) < len(names):
            ids[i] = int(label)
        else:
            origin = "data.labels" if given else "the training data"
            raise DataError(f"unknown label {label!r}; {origin} has {', '.join(names)}", record.path, record.line)
    return ids


def _is_int(label):
    return label.lstrip("+-").isdigit() and label.isascii()


def _clean_texts(records, config):
    """Finds the blank texts; returns (the raw texts kept, their positions)."""
    texts, keep = [], []
    cleaned = clean_texts(
        [record.text for record in records], strip_html=config.strip_html, unicode_form=config.unicode_form
    )
    for i, (record, text) in enumerate(zip(records, cleaned)):
        if text:
            texts.append(record.text)
            keep.append(i)
        elif config.blank_texts == "error":
            message = "blank text (nothing left after cleaning); set data.blank_texts=skip to skip it"
            raise DataError(message, record.path, record.line)
    return texts, keep


def _limit(examples, limit, seed):
    if limit is None or len(examples) <= limit:
        return examples
    if limit <= 0:
        raise ConfigError(f"data.limit={limit}: expected a positive number or null")
    chosen = np.random.default_rng(seed).permutation(len(examples))[:limit]
    return examples.take(np.sort(chosen))


def _require_two_classes(examples):
    present = np.unique(examples.labels)
    if len(present) < 2:
        names = ", ".join(examples.label_names[i] for i in present)
        message = f"the training data has only one class ({names}); a classifier needs at least two"
        raise DataError(message, examples.source)
