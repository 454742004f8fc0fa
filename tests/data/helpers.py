"""Shared helpers of the data tests."""

from tfrnn.config import DataConfig


def file_config(path, **changes):
    """A DataConfig reading `path` with source="file"."""
    return DataConfig(source="file", path=path, **changes)
