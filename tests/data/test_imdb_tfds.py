"""The TFDS imdb source: loads under tfds' mock, and fails fast when offline and not prepared."""

import socket
import time

import numpy as np
import pytest
import tensorflow_datasets as tfds

from tfrnn.config import DataConfig
from tfrnn.data import load_examples
from tfrnn.errors import DataError


def test_loads_under_mock_data_without_probing_the_network(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        pytest.fail("the network was probed under mock_data")

    monkeypatch.setattr(socket, "create_connection", no_network)
    config = DataConfig(source="imdb", data_dir=str(tmp_path))
    with tfds.testing.mock_data(num_examples=16):
        train, test = load_examples(config, "train"), load_examples(config, "test")
    assert len(train) + train.skipped_blank == 16 and len(test) + test.skipped_blank == 16
    assert train.label_names == ["neg", "pos"] and set(np.unique(train.labels)) == {0, 1}
    assert all(isinstance(text, str) and text for text in train.texts)
    assert "imdb_reviews" in train.source


def test_offline_and_not_prepared_fails_fast(tmp_path, monkeypatch):
    def refuse(address, timeout=None, **kwargs):
        assert timeout is not None and timeout <= 2
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(socket, "create_connection", refuse)
    start = time.monotonic()
    with pytest.raises(DataError) as caught:
        load_examples(DataConfig(source="imdb", data_dir=str(tmp_path / "tfds")), "train")
    assert time.monotonic() - start < 10
    message = str(caught.value)
    assert "not prepared" in message and str(tmp_path / "tfds") in message
    assert "ai.stanford.edu" in message and "Connection refused" in message
    assert "--source aclimdb" in message and "--source file" in message
