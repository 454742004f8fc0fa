"""BERT's text -> model inputs: keras-hub's BertTokenizer and preprocessor, in the graph.

The tokenizer is built from a WordPiece vocabulary file with the checkpoint's settings
(lower-casing, accent stripping, CJK splitting). Texts are cleaned as for the RNN path (HTML,
Unicode form, whitespace; never lower-cased here: the tokenizer does that as its checkpoint
says), then keras-hub's `BertTextClassifierPreprocessor` adds [CLS] and [SEP] and truncates to
`max_len` tokens. Batches are cut to their longest row (dynamic padding), so short texts never
pay for the full length. The padding mask is int32, not keras-hub's bool: Keras reduces the
first batch across replicas under MirroredStrategy, and AddN has no bool kernel.

The same `encode` runs in the `tf.data` pipeline and in the exported serving graph. A run keeps
the vocabulary as `vocabulary.txt` and the tokenizer settings in its config.
"""

import dataclasses

import keras_hub
import tensorflow as tf

from tfrnn.data.cleaning import standardize
from tfrnn.data.pipeline import TextEncoder
from tfrnn.errors import DataError
from tfrnn.files import atomic_write_text

RESERVED = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
INPUT_NAMES = ("token_ids", "segment_ids", "padding_mask")


class WordPieceEncoder(TextEncoder):
    """Raw texts -> BERT inputs (token_ids, segment_ids, padding_mask), all int32.

    Args:
        vocabulary: str or list of str. A vocabulary file or its tokens ([PAD], [UNK], [CLS],
            [SEP] and [MASK] among them).
        config: DataConfig. Uses `max_len` (tokens, [CLS] and [SEP] included), `lowercase`,
            `strip_accents`, `strip_html`, `unicode_form`.
        split_on_cjk: bool. Make each CJK character a word (BERT's `tokenize_chinese_chars`).
    """

    def __init__(self, vocabulary, config, split_on_cjk=True):
        self.config = config
        strip_accents = config.lowercase if config.strip_accents is None else config.strip_accents
        self.tokenizer = keras_hub.models.BertTokenizer(
            vocabulary=vocabulary,
            lowercase=config.lowercase,
            strip_accents=strip_accents,
            split_on_cjk=split_on_cjk,
        )
        self.preprocessor = keras_hub.models.BertTextClassifierPreprocessor(
            self.tokenizer, sequence_length=config.max_len
        )
        self.preprocessor.build(None)  # built layers can be tracked for export
        self.padding_values = {"token_ids": self.tokenizer.pad_token_id, "segment_ids": 0, "padding_mask": 0}

    @property
    def vocabulary_size(self):
        return self.tokenizer.vocabulary_size()

    @property
    def trackables(self):
        """What an ExportArchive must track for `encode` to run in a SavedModel."""
        return [self.preprocessor]

    def encode(self, texts):
        """Tokenises a batch of raw texts.

        Args:
            texts: tf.Tensor of tf.string, (batch,).

        Returns:
            dict of int32 (batch, time): token_ids, segment_ids, padding_mask; time is the
            longest row's length ([CLS] text [SEP]), at most `max_len`.
        """
        cleaned = standardize(texts, dataclasses.replace(self.config, lowercase=False))
        inputs = self.preprocessor(cleaned)  # (batch, max_len) each
        longest = tf.reduce_max(tf.reduce_sum(tf.cast(inputs["padding_mask"], tf.int32), axis=1))
        return {name: tf.cast(inputs[name][:, :longest], tf.int32) for name in INPUT_NAMES}

    def save(self, path):
        """Writes the vocabulary, one token a line."""
        atomic_write_text(path, "".join(token + "\n" for token in self.tokenizer.get_vocabulary()))


def learn_vocabulary(texts, config):
    """A WordPiece vocabulary learned from training texts (for a BERT trained from scratch).

    Args:
        texts: list of str. Raw training texts.
        config: DataConfig. Uses `vocab_size`, `lowercase`, `strip_accents` and the cleaning.

    Returns:
        list of str, the reserved tokens first ([PAD] is id 0).
    """
    cleaned = standardize(tf.constant(texts, tf.string), dataclasses.replace(config, lowercase=False))
    lowercase = config.lowercase
    return keras_hub.tokenizers.compute_word_piece_vocabulary(
        tf.data.Dataset.from_tensor_slices(cleaned).batch(1024),
        config.vocab_size,
        lowercase=lowercase,
        strip_accents=lowercase if config.strip_accents is None else config.strip_accents,
        reserved_tokens=RESERVED,
    )


def read_vocabulary(path):
    """The tokens of a WordPiece vocabulary file.

    Raises:
        DataError: a missing file, or one without BERT's special tokens.
    """
    try:
        with open(path, encoding="utf-8") as f:
            tokens = f.read().splitlines()
    except FileNotFoundError:
        raise DataError("vocabulary file not found", path) from None
    except UnicodeDecodeError as error:
        raise DataError(f"not UTF-8 ({error.reason})", path) from None
    missing = [token for token in RESERVED[:4] if token not in tokens]
    if missing:
        raise DataError(f"not a WordPiece vocabulary: {', '.join(missing)} missing", path)
    return tokens

