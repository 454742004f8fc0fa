"""A language model's data: documents -> one token stream -> batches for truncated backpropagation
through time, where row r of each batch continues row r of the batch before (the recurrent
states carry over)."""

import numpy as np
import tensorflow as tf


def stream_windows(ids, batch_size, window):
    """Cuts a token stream into `batch_size` parallel rows and those into windows.

    The stream is laid out row-major over `batch_size` rows of n = len(ids) // batch_size
    tokens (the remainder dropped); batch i holds columns [i * window, (i + 1) * window) of every
    row, and its targets are the same columns shifted by one token.

    Args:
        ids: np.ndarray int. `(tokens,)`.
        batch_size: int. Parallel rows (streams).
        window: int. Tokens per row in one batch (the truncation length of backpropagation).

    Returns:
        (inputs, targets): int32 arrays `(batches, batch_size, window)`.

    Raises:
        ValueError: fewer tokens than one batch needs (batch_size * (window + 1)).
    """
    columns = len(ids) // batch_size
    batches = (columns - 1) // window
    if batches < 1:
        raise ValueError(
            f"{len(ids)} tokens: too few for one batch of {batch_size} rows of {window} tokens "
            f"(needs {batch_size * (window + 1)})"
        )
    rows = np.asarray(ids[: columns * batch_size], np.int32).reshape(batch_size, columns)  # (batch, columns)
    span = batches * window
    inputs = rows[:, :span].reshape(batch_size, batches, window).transpose(1, 0, 2)  # (batches, batch, window)
    targets = rows[:, 1 : span + 1].reshape(batch_size, batches, window).transpose(1, 0, 2)
    return inputs, targets


def stream_dataset(ids, batch_size, window):
    """`stream_windows` as a finite `tf.data.Dataset` of (token_ids, targets), in stream order.

    Args:
        ids: np.ndarray int. `(tokens,)`.
        batch_size: int. Parallel rows.
        window: int. Tokens per row and batch.

    Returns:
        (dataset, tokens per pass): elements are int32 `(batch_size, window)` twice.
    """
    inputs, targets = stream_windows(ids, batch_size, window)
    dataset = tf.data.Dataset.from_tensor_slices((inputs, targets)).prefetch(tf.data.AUTOTUNE)
    return dataset, int(inputs.size)
