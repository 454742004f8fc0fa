"""Helpers for the data tests: small files written under tmp_path."""

import pytest


@pytest.fixture
def write(tmp_path):
    """Writes `content` (str as UTF-8, or bytes) to tmp_path/name and returns the path as str."""

    def write_file(name, content):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        return str(path)

    return write_file
