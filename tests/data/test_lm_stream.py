"""The language model's stream: rows continue across batches; targets are the next tokens."""

import numpy as np
import pytest

from tfrnn.data import WordPreprocessor
from tfrnn.data.lm_stream import stream_dataset, stream_windows


def test_rows_continue_from_batch_to_batch():
    ids = np.arange(1, 104)  # 103 tokens: 3 rows of 34, windows of 5 -> 6 batches (33 // 5)
    inputs, targets = stream_windows(ids, batch_size=3, window=5)
    assert inputs.shape == targets.shape == (6, 3, 5)
    rows = ids[:102].reshape(3, 34)
    for r in range(3):
        stream = np.concatenate([inputs[i, r] for i in range(6)])  # row r, batch after batch
        assert stream.tolist() == rows[r, :30].tolist()
        assert np.concatenate([targets[i, r] for i in range(6)]).tolist() == rows[r, 1:31].tolist()


def test_too_short_a_stream_is_refused():
    with pytest.raises(ValueError, match="too few for one batch"):
        stream_windows(np.arange(10), batch_size=2, window=5)


def test_dataset_and_untruncated_encoding():
    preprocessor = WordPreprocessor.adapt(["a b c", "b c d"], vocab_size=10, max_len=2)
    ids = preprocessor.encode_stream(["a b c", "", "b c d <br /> a"])  # max_len does not cut it
    vocabulary = preprocessor.get_vocabulary()
    assert [vocabulary[i] for i in ids] == ["a", "b", "c", "b", "c", "d", "a"]
    dataset, tokens = stream_dataset(np.arange(1, 42), batch_size=2, window=4)
    batches = list(dataset.as_numpy_iterator())
    assert tokens == 2 * 4 * 4 and len(batches) == 4  # 20 columns: (20 - 1) // 4 windows
    assert batches[0][0].dtype == np.int32 and batches[0][0].shape == (2, 4)
