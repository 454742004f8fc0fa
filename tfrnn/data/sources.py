"""The four data sources, each read into raw records (text, label, where); which one reads a
path the user names (`source_of`)."""

from importlib import resources
from pathlib import Path

from tfrnn.data.imdb_tfds import LABEL_NAMES as IMDB_LABEL_NAMES
from tfrnn.data.imdb_tfds import read_imdb
from tfrnn.data.readers import FORMATS, Record, decode_utf8, read_records
from tfrnn.errors import ConfigError, DataError

# Sources whose label names are fixed by the source rather than inferred from the data.
FIXED_LABEL_NAMES = {"aclimdb": IMDB_LABEL_NAMES, "imdb": IMDB_LABEL_NAMES}


def source_of(path, option="data.path", split="train", folders=True):
    """The source that reads the data at `path`, as a user names it (`tfrnn train --data PATH`):
    a CSV, TSV or JSONL file is "file", a folder holding SPLIT/pos and SPLIT/neg is "aclimdb".

    Args:
        path: str or Path.
        option: str. How the user named the path (e.g. "--data"), for the error message.
        split: str. The split an aclImdb folder must hold ("train", or "test" to evaluate).
        folders: bool. Whether an aclImdb folder may be named (False: only a file).

    Returns:
        str, a `tfrnn.choices.SOURCES` name: "file" or "aclimdb".

    Raises:
        DataError: `path` is missing, a file of another format, or a folder (that is not an
            aclImdb folder); the message names `option`, the path and what was expected.
    """
    path = Path(path)
    expected = f"expected a CSV, TSV or JSONL file ({', '.join(FORMATS)})"
    if folders:
        expected += f" or an aclImdb folder ({split}/pos, {split}/neg)"
    if path.is_file():
        if path.suffix.lower() not in FORMATS:
            raise DataError(f"{option} {path}: a file with the extension {path.suffix!r}; {expected}")
        return "file"
    if path.is_dir():
        if not folders:
            raise DataError(f"{option} {path}: a folder; {expected}")
        if not all((path / split / label).is_dir() for label in IMDB_LABEL_NAMES):
            raise DataError(f"{option} {path}: a folder without {split}/pos and {split}/neg; {expected}")
        return "aclimdb"
    what = "neither a file nor a folder" if path.exists() else "not found"
    raise DataError(f"{option} {path}: {what}; {expected}")


def read_source(config, split):
    """Reads the raw records of one split.

    Args:
        config: DataConfig. `source` picks the reader; see DataConfig for the rest.
        split: str. "train" or "test".

    Returns:
        (records, description): list of Record, and a human description of the source.

    Raises:
        ConfigError: an unknown source.
        DataError: the data cannot be read.
    """
    readers = {"embedded": _embedded, "file": _file, "aclimdb": _aclimdb, "imdb": _imdb}
    if config.source not in readers:
        raise ConfigError(f"data.source={config.source!r}: expected one of {', '.join(readers)}")
    return readers[config.source](config, split)


def _embedded(config, split):
    name = f"movie_reviews_{split}.csv"
    resource = resources.files("tfrnn.data") / "resources" / name
    records = read_records(resource.read_bytes(), str(resource), "csv", "text", "label")
    return records, f"embedded movie reviews ({name})"


def _file(config, split):
    key = "path" if split == "train" else "test_path"
    if getattr(config, key) is None:
        raise DataError(f"data.{key} is not set; source=file reads the {split} split from a CSV, TSV or JSONL file")
    path = Path(getattr(config, key))
    if not path.is_file():
        raise DataError("file not found" if not path.exists() else "not a file", path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(f"unknown extension {path.suffix!r}; expected {', '.join(FORMATS)}", path)
    return read_records(path.read_bytes(), str(path), fmt, config.text_column, config.label_column), str(path)


def _aclimdb(config, split):
    if config.path is None:
        raise DataError("data.path is not set; source=aclimdb needs the aclImdb folder (holding train/ and test/)")
    root = Path(config.path)
    records = []
    for label in IMDB_LABEL_NAMES:
        folder = root / split / label
        if not folder.is_dir():
            expected = f"expected {split}/pos and {split}/neg holding .txt files"
            raise DataError(f"not an aclImdb folder: {split}/{label}/ is missing ({expected})", root)
        for file in sorted(folder.glob("*.txt")):
            records.append(Record(decode_utf8(file.read_bytes(), str(file)), label, str(file), None))
    if not records:
        raise DataError(f"no .txt files in {split}/pos or {split}/neg", root)
    return records, f"aclImdb folder {root} ({split})"


def _imdb(config, split):
    return read_imdb(split, config.data_dir), f"TFDS {split} split of imdb_reviews"
