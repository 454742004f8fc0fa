"""Parsers for labelled-text files (CSV, TSV, JSON Lines); every error names file and line."""

import csv
import io
import json
from typing import NamedTuple, Optional

from tfrnn.errors import DataError

# File extension -> format. JSON files are read as JSON Lines (one object per line).
FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl"}


class Record(NamedTuple):
    """One labelled text as read, before cleaning.

    Args:
        text: str. The raw text.
        label: str. The label as written; integers as decimal strings.
        path: str. The file (or dataset) it came from.
        line: int or None. Its 1-based line (the first line of a multi-line CSV row).
    """

    text: str
    label: str
    path: str
    line: Optional[int]


def decode_utf8(data, path):
    """Decodes bytes as strict UTF-8 (a leading byte-order mark is dropped).

    Args:
        data: bytes. The file contents.
        path: str. Named in errors.

    Returns:
        str.

    Raises:
        DataError: at the line and column (1-based byte offset within the line) of the first bad byte.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line_start = data.rfind(b"\n", 0, error.start) + 1
        line = data.count(b"\n", 0, error.start) + 1
        raise DataError(
            f"invalid UTF-8 (byte 0x{data[error.start]:02x}; the column counts bytes); save the file as UTF-8",
            path,
            line,
            error.start - line_start + 1,
        ) from None
    return text.removeprefix("\ufeff")


def read_records(data, path, fmt, text_column, label_column):
    """Parses a whole file into records.

    Args:
        data: bytes. The file contents.
        path: str. Named in records and errors.
        fmt: str. "csv", "tsv" or "jsonl".
        text_column: str. Column or JSON key of the text.
        label_column: str or None. Column or JSON key of the label; None: unlabelled text
            (every record's label is "").

    Returns:
        list of Record, at least one.

    Raises:
        DataError: bad UTF-8, an empty file, a missing column or key, a malformed row.
    """
    text = decode_utf8(data, path)
    if not text.strip():
        raise DataError("empty file", path)
    if fmt == "jsonl":
        records = _jsonl_records(text, path, text_column, label_column)
    else:
        records = _table_records(text, path, "\t" if fmt == "tsv" else ",", text_column, label_column)
    if not records:
        raise DataError("no examples, only a header", path)
    return records


def _table_records(text, path, delimiter, text_column, label_column):
    # TSV is read without quoting (as GLUE and most TSV writers expect): a quote is just a character.
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting, strict=True)
    header = [name.strip() for name in _next_row(reader, path)]
    columns = []
    for name in (text_column, label_column):
        if name is None:  # unlabelled
            columns.append(None)
        elif name not in header:
            raise DataError(f"no column {name!r}; columns found: {', '.join(header)}", path, 1)
        else:
            columns.append(header.index(name))
    records = []
    while True:
        line = reader.line_num + 1
        row = _next_row(reader, path)
        if row is None:
            return records
        if not row:  # a blank line
            continue
        if len(row) != len(header):
            hint = "; quote fields that contain ','" if delimiter == "," else ""
            raise DataError(f"expected {len(header)} fields ({', '.join(header)}), found {len(row)}{hint}", path, line)
        label = "" if columns[1] is None else row[columns[1]].strip()
        records.append(Record(row[columns[0]], label, path, line))


def _next_row(reader, path):
    try:
        return next(reader, None)
    except csv.Error as error:
        raise DataError(f"malformed row: {error}", path, reader.line_num) from None


def _jsonl_records(text, path, text_key, label_key):
    records = []
    for line, content in enumerate(text.split("\n"), 1):
        if not content.strip():
            continue
        try:
            item = json.loads(content)
        except json.JSONDecodeError as error:
            raise DataError(f"invalid JSON: {error.msg}", path, line, error.colno) from None
        if not isinstance(item, dict):
            raise DataError(f"expected a JSON object per line, found {type(item).__name__}", path, line)
        for key in (text_key, label_key):
            if key is not None and key not in item:
                raise DataError(f"no key {key!r}; keys found: {', '.join(item)}", path, line)
        if not isinstance(item[text_key], str):
            raise DataError(f"{text_key!r} must be a string, found {type(item[text_key]).__name__}", path, line)
        label = "" if label_key is None else _json_label(item[label_key], label_key, path, line)
        records.append(Record(item[text_key], label, path, line))
    return records


def _json_label(value, key, path, line):
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise DataError(f"{key!r} must be a string or an integer, found {json.dumps(value)}", path, line)
