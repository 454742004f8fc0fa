"""Unlabelled text for `tfrnn pretrain`: documents from tables, plain-text files and folders,
TFDS imdb_reviews and the shipped reviews, several sources at once."""

from importlib import resources
from pathlib import Path

import numpy as np

from tfrnn.data.cleaning import clean_texts
from tfrnn.data.imdb_tfds import read_imdb_texts
from tfrnn.data.readers import FORMATS, Record, decode_utf8, read_records
from tfrnn.errors import DataError

# data.sources names that are not paths -> what they read.
NAMED_SOURCES = {
    "imdb": "TFDS imdb_reviews: the unsupervised and train texts (downloads once)",
    "embedded": "the movie reviews shipped with tfrnn (train and test texts)",
}


def read_documents(config):
    """Reads every source's documents, blank ones skipped.

    Args:
        config: tfrnn.config.TextDataConfig. `sources`, `text_column`, `lines`, `data_dir`,
            the cleaning options and `limit`.

    Returns:
        (documents, counts): list of raw str in source order (at most `limit`, a seeded sample
        of them when there are more), and {source: documents read} for the log.

    Raises:
        DataError: a source that is missing or unreadable, or holds no text (empty files, only
            blank documents, a table without the text column).
    """
    documents, counts = [], {}
    for source in config.sources:
        records = _read_source(source, config)
        kept = _non_blank(records, config)
        if not kept:
            raise DataError(f"no text: its {len(records)} documents are blank after cleaning", source)
        documents += kept
        counts[source] = len(kept)
    if config.limit is not None and len(documents) > config.limit:
        chosen = np.sort(np.random.default_rng(0).permutation(len(documents))[: config.limit])
        documents = [documents[i] for i in chosen]
    return documents, counts


def _read_source(source, config):
    if source == "imdb":
        return read_imdb_texts(["unsupervised", "train"], config.data_dir)
    if source == "embedded":
        folder = resources.files("tfrnn.data") / "resources"
        return [
            record
            for split in ("train", "test")
            for record in read_records(
                (folder / f"movie_reviews_{split}.csv").read_bytes(), f"embedded {split}", "csv", "text", None
            )
        ]
    path = Path(source)
    if path.is_dir():
        files = sorted(path.rglob("*.txt"))
        if not files:
            raise DataError("a folder without .txt files", path)
        return [record for file in files for record in _plain_text(file, config.lines)]
    if not path.is_file():
        raise DataError("not found" if not path.exists() else "neither a file nor a folder", path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:  # any other file is plain text
        return _plain_text(path, config.lines)
    return read_records(path.read_bytes(), str(path), fmt, config.text_column, None)


def _plain_text(path, lines):
    text = decode_utf8(path.read_bytes(), str(path))
    if not lines:
        return [Record(text, "", str(path), None)]
    return [Record(line, "", str(path), number) for number, line in enumerate(text.split("\n"), 1) if line.strip()]


def _non_blank(records, config):
    cleaned = clean_texts([r.text for r in records], strip_html=config.strip_html, unicode_form=config.unicode_form)
    return [record.text for record, text in zip(records, cleaned) if text]


def split_documents(documents, fraction, seed):
    """Holds out a seeded `fraction` of the documents (at least one when fraction > 0).

    Args:
        documents: list of str.
        fraction: float. In [0, 1).
        seed: int.

    Returns:
        (training documents, held-out documents), each in source order.

    Raises:
        DataError: too few documents to hold any out and still train.
    """
    if fraction <= 0:
        return documents, []
    held = max(1, round(len(documents) * fraction))
    if held >= len(documents):
        raise DataError(
            f"{len(documents)} documents: too few to hold out data.validation_split={fraction} and still train"
        )
    order = np.random.default_rng(seed).permutation(len(documents))
    held_out = set(order[:held].tolist())
    train = [d for i, d in enumerate(documents) if i not in held_out]
    return train, [d for i, d in enumerate(documents) if i in held_out]
