"""IMDB reviews from TensorFlow Datasets, failing fast (not after minutes of retries) when offline."""

import socket

from tfrnn.data.readers import Record, decode_utf8
from tfrnn.errors import DataError

DATASET = "imdb_reviews"
LABEL_NAMES = ["neg", "pos"]
DOWNLOAD_HOST = ("ai.stanford.edu", 443)
PROBE_TIMEOUT_S = 2.0


def read_imdb(split, data_dir):
    """Reads one TFDS split, downloading it first if it is not in `data_dir` yet.

    Args:
        split: str. "train" or "test".
        data_dir: str or None. TFDS data directory; None is TFDS's default (~/tensorflow_datasets).

    Returns:
        list of Record, labels "neg"/"pos", `line` the example's 1-based position.

    Raises:
        DataError: the dataset is not prepared and the download host cannot be reached.
    """
    name = f"tfds:{DATASET}/{split}"
    records = []
    for number, (text, label) in enumerate(_supervised_split(split, data_dir).as_numpy_iterator(), 1):
        records.append(Record(decode_utf8(text, f"{name} example {number}"), LABEL_NAMES[int(label)], name, number))
    return records


def read_imdb_texts(splits, data_dir):
    """The texts of TFDS splits of imdb_reviews, labels ignored (e.g. "unsupervised" and "train").

    Args:
        splits: list of str. TFDS split names.
        data_dir: str or None. TFDS data directory.

    Returns:
        list of Record, label "".
    """
    records = []
    for split in splits:
        name = f"tfds:{DATASET}/{split}"
        for number, (text, _) in enumerate(_supervised_split(split, data_dir).as_numpy_iterator(), 1):
            records.append(Record(decode_utf8(text, f"{name} example {number}"), "", name, number))
    return records


def _supervised_split(split, data_dir):
    import tensorflow_datasets as tfds  # slow to import; only this source needs it

    builder = tfds.builder(DATASET, data_dir=data_dir)
    try:
        # Reading first, rather than asking `is_prepared()`, also works under `tfds.testing.mock_data`.
        return builder.as_dataset(split=split, as_supervised=True)
    except AssertionError:  # TFDS: "could not find data in <data_dir>", i.e. not downloaded yet
        _require_download_host(builder.data_dir_root)
        builder.download_and_prepare()
        return builder.as_dataset(split=split, as_supervised=True)


def _require_download_host(data_dir):
    host, port = DOWNLOAD_HOST
    try:
        socket.create_connection(DOWNLOAD_HOST, timeout=PROBE_TIMEOUT_S).close()
    except OSError as error:
        raise DataError(
            f"TFDS {DATASET} is not prepared in {data_dir} and its download host {host}:{port} cannot be "
            f"reached ({error}). Without network, use a local copy: the extracted aclImdb folder with "
            "`--source aclimdb --data /path/to/aclImdb`, or a CSV/TSV/JSONL file with "
            "`--source file --data reviews.csv` (columns text,label)."
        ) from None
