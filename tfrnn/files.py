"""Writing files so that a reader never sees them half-written."""

import contextlib
import os
import re
import uuid
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path):
    """A temporary name for `path` to be written under, renamed to `path` when the block ends.

    The name is `.<random>.<name>` in the same folder (so the rename is atomic, and a name with
    a required ending, like Keras' `.keras` or `.weights.h5`, keeps it). If the block raises,
    or writes nothing there, `path` is left as it was and the temporary file is removed.

    Args:
        path: str or Path. The file to write.

    Yields:
        Path. Where to write.
    """
    path = Path(path)
    tmp = path.with_name(f".{uuid.uuid4().hex[:8]}.{path.name}")
    try:
        yield tmp
        if tmp.exists():
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def remove_temporaries(folder):
    """Removes the temporary files `atomic_path` left in `folder` (not below it) when its
    process was killed while writing; returns their paths."""
    stale = [p for p in Path(folder).glob(".*") if re.fullmatch(r"\.[0-9a-f]{8}\..+", p.name) and p.is_file()]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def atomic_write_text(path, text):
    """Writes `text` to `path` through a temporary file and a rename: never half-written."""
    with atomic_path(path) as tmp:
        with open(tmp, "x", encoding="utf-8") as f:  # umask permissions, as for plain files (mkstemp: 0600)
            f.write(text)


def folder_size(folder):
    """Bytes in the files under `folder`, at any depth."""
    return sum(path.stat().st_size for path in Path(folder).rglob("*") if path.is_file())
