"""Writing files so that a reader never sees them half-written."""

import os
import uuid
from pathlib import Path


def atomic_write_text(path, text):
    """Writes `text` to `path` through a temporary file and a rename: never half-written."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    try:
        with open(tmp, "x", encoding="utf-8") as f:  # umask permissions, as for plain files (mkstemp: 0600)
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
