"""Text -> token ids with `keras.layers.TextVectorization`, and its vocabulary file.

Id 0 is padding (the empty token) and id 1 is out-of-vocabulary ("[UNK]"), Keras' convention,
so `Embedding(mask_zero=True)` masks padding.

Texts are cleaned by `tfrnn.data.cleaning.standardize` (HTML, case, whitespace; in word mode
also ASCII punctuation, so "won't" becomes "wont" and "great!" becomes "great") before the
layer sees them, in the pipeline and in the serving graph alike. (The layer's own `standardize`
stays off: on the JAX and torch backends Keras hands a callable NumPy arrays, which a `tf.data`
graph cannot give.) Word mode splits on whitespace; char mode (for
Chinese) makes one token per Unicode character (spaces and punctuation included). The layer is
never saved inside a `.keras` file: a run keeps its vocabulary file and rebuilds the layer.
"""

from pathlib import Path

import keras
import tensorflow as tf

from tfrnn.data.cleaning import standardize
from tfrnn.data.pipeline import TextEncoder
from tfrnn.errors import DataError
from tfrnn.files import atomic_write_text

PADDING, OOV = "", "[UNK]"
OOV_ID = 1


class WordEncoder(TextEncoder):
    """Raw texts -> token ids with a `TextVectorization` layer (the RNN and feed-forward path).

    Args:
        vectorizer: keras.layers.TextVectorization. From `make_vectorizer` or `load_vectorizer`.
        config: DataConfig. The cleaning options, `tokenizer` and `max_len` (the longest token
            sequence kept).
    """

    padding_values = 0

    def __init__(self, vectorizer, config):
        self.vectorizer = vectorizer
        self.config = config
        self.max_len = config.max_len

    @property
    def vocabulary_size(self):
        return self.vectorizer.vocabulary_size()

    @property
    def trackables(self):
        """What an ExportArchive must track for `encode` to run in a SavedModel."""
        return [self.vectorizer]

    def encode(self, texts):
        """Raw texts -> token ids: cut to max_len; an empty text becomes [OOV].

        Args:
            texts: tf.Tensor of tf.string, (batch,).

        Returns:
            tf.Tensor int32 (batch, time), 1 <= time <= max_len, right-padded with 0.
        """
        ids = tf.cast(self.vectorizer(_clean(texts, self.config)), tf.int32)[:, : self.max_len]  # (batch, time), time may be 0
        ids = tf.pad(ids, [[0, 0], [0, tf.maximum(1 - tf.shape(ids)[1], 0)]])  # time >= 1
        empty = tf.reduce_all(ids == 0, axis=1, keepdims=True)  # (batch, 1)
        first = tf.range(tf.shape(ids)[1]) == 0  # (time,)
        return tf.where(empty & first, OOV_ID, ids)

    def save(self, path):
        """Writes the vocabulary (see `save_vocabulary`)."""
        save_vocabulary(self.vectorizer, path)


def _clean(texts, config):
    """The cleaning the vectorizer's input gets: `standardize`, punctuation too in word mode."""
    return standardize(texts, config, strip_punctuation=config.tokenizer == "word")


def _layer(config, vocabulary=None):
    return keras.layers.TextVectorization(
        max_tokens=config.vocab_size,
        standardize=None,  # `_clean` runs first
        split="whitespace" if config.tokenizer == "word" else "character",
        output_mode="int",
        output_sequence_length=None,  # ragged rows; the pipeline truncates and pads per batch
        vocabulary=vocabulary,
    )


def make_vectorizer(texts, config):
    """Builds the vocabulary from the training texts.

    Args:
        texts: list of str. Raw training texts (never validation or test).
        config: DataConfig. Uses `tokenizer` and `vocab_size` (padding and OOV included).

    Returns:
        keras.layers.TextVectorization. Maps a batch of strings to int64 ids `(batch, time)`.
    """
    if not texts:
        raise ValueError("no training texts to build a vocabulary from")
    vectorizer = _layer(config)
    texts = tf.data.Dataset.from_tensor_slices(tf.constant(texts, tf.string)).batch(1024)
    vectorizer.adapt(texts.map(lambda batch: _clean(batch, config)))
    return vectorizer


def save_vocabulary(vectorizer, path):
    """Writes the vocabulary, one token per line, UTF-8.

    Line n holds the token of id n - 1: an empty first line (padding), then "[UNK]".

    Args:
        vectorizer: keras.layers.TextVectorization. An adapted vectorizer.
        path: str or Path. The file to write.
    """
    tokens = [str(token) for token in vectorizer.get_vocabulary()]
    if any("\n" in token for token in tokens):
        raise ValueError("a token contains a newline; the vectorizer's standardize should remove it")
    atomic_write_text(path, "".join(token + "\n" for token in tokens))


def load_vectorizer(path, config):
    """Rebuilds the vectorizer written by `save_vocabulary`: same text, same ids.

    Args:
        path: str or Path. A vocabulary file.
        config: DataConfig. The `tokenizer` and `vocab_size` of the run that wrote it.

    Returns:
        keras.layers.TextVectorization.

    Raises:
        DataError: a missing file, or one that is not a vocabulary file.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("vocabulary file not found", path)
    tokens = path.read_text(encoding="utf-8").split("\n")[:-1]  # the file ends with a newline
    if tokens[:2] != [PADDING, OOV]:
        raise DataError(f"not a vocabulary file: expected an empty line (padding) then {OOV}", path, 1)
    for line, token in enumerate(tokens[2:], 3):
        if token in (PADDING, OOV):
            raise DataError(f"{token!r} appears again", path, line)
    if len(tokens) > config.vocab_size:
        raise DataError(f"{len(tokens)} tokens, more than data.vocab_size={config.vocab_size}", path)
    vectorizer = _layer(config, vocabulary=tokens)
    vectorizer.build()  # the vocabulary is set; built layers can be tracked for export
    return vectorizer
