"""BERT's text -> model inputs: keras-hub's BertTokenizer and preprocessor, in the graph.

`BertPreprocessor` builds the tokenizer from a WordPiece vocabulary with the checkpoint's settings
(lower-casing, accent stripping, CJK splitting). Texts are cleaned as for the RNN path (HTML,
Unicode form, whitespace; never lower-cased here: the tokenizer does that as its checkpoint
says), then keras-hub's `BertTextClassifierPreprocessor` adds [CLS] and [SEP] and truncates to
`max_len` tokens. Batches are cut to their longest row (dynamic padding), so short texts never
pay for the full length. The padding mask is int32, not keras-hub's bool: Keras reduces the
first batch across replicas under MirroredStrategy, and AddN has no bool kernel.

The classifier owns the layer and saves it with its vocabulary; the same layer runs in the
`tf.data` pipeline and in the exported serving graph (which then needs TensorFlow Text's ops).
"""

import keras
import keras_hub
import tensorflow as tf

from tfrnn.data.cleaning import standardize
from tfrnn.data.preprocessing import TextPreprocessor
from tfrnn.errors import DataError

RESERVED = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
INPUT_NAMES = ("token_ids", "segment_ids", "padding_mask")


@keras.saving.register_keras_serializable(package="tfrnn")
class BertPreprocessor(TextPreprocessor):
    """Raw texts -> BERT inputs (token_ids, segment_ids, padding_mask), all int32.

    Args:
        vocabulary: list of str. WordPiece tokens in id order ([PAD], [UNK], [CLS], [SEP] and
            [MASK] among them).
        lowercase: bool. The tokenizer lower-cases.
        strip_accents: bool or None. The tokenizer removes accents; None follows `lowercase`.
        split_on_cjk: bool. Make each CJK character a word (BERT's `tokenize_chinese_chars`).
        strip_html: bool. Remove tags and unescape entities first.
        unicode_form: str or None. Unicode normalisation first (TensorFlow Text).
        max_len: int. Tokens per text, [CLS] and [SEP] included.
        **kwargs: passed to `keras.layers.Layer`.

    Call: tf.string `(batch,)` -> dict of int32 `(batch, time)`: token_ids, segment_ids,
    padding_mask; time is the longest row's length ([CLS] text [SEP]), at most `max_len`.
    """

    def __init__(
        self,
        vocabulary,
        lowercase=True,
        strip_accents=None,
        split_on_cjk=True,
        strip_html=True,
        unicode_form=None,
        max_len=128,
        **kwargs,
    ):
        super().__init__(max_len, **kwargs)
        self.lowercase = lowercase
        self.strip_accents = lowercase if strip_accents is None else strip_accents
        self.split_on_cjk = split_on_cjk
        self.strip_html = strip_html
        self.unicode_form = unicode_form
        self.tokenizer = keras_hub.models.BertTokenizer(
            vocabulary=list(vocabulary),
            lowercase=lowercase,
            strip_accents=self.strip_accents,
            split_on_cjk=split_on_cjk,
        )
        self.packer = keras_hub.models.BertTextClassifierPreprocessor(self.tokenizer, sequence_length=max_len)
        self.packer.build(None)  # built layers can be tracked for export
        self.padding_values = {"token_ids": self.tokenizer.pad_token_id, "segment_ids": 0, "padding_mask": 0}

    @property
    def vocabulary_size(self):
        return self.tokenizer.vocabulary_size()

    def get_vocabulary(self):
        return self.tokenizer.get_vocabulary()

    def call(self, texts):
        cleaned = standardize(texts, strip_html=self.strip_html, unicode_form=self.unicode_form)
        inputs = self.packer(cleaned)  # (batch, max_len) each
        longest = tf.reduce_max(tf.reduce_sum(tf.cast(inputs["padding_mask"], tf.int32), axis=1))
        return {name: tf.cast(inputs[name][:, :longest], tf.int32) for name in INPUT_NAMES}

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary": list(self.get_vocabulary()),
            "lowercase": self.lowercase,
            "strip_accents": self.strip_accents,
            "split_on_cjk": self.split_on_cjk,
            "strip_html": self.strip_html,
            "unicode_form": self.unicode_form,
            "max_len": self.max_len,
        }


def learn_vocabulary(texts, vocab_size, lowercase, strip_accents, strip_html=True, unicode_form=None):
    """A WordPiece vocabulary learned from training texts (for a BERT trained from scratch).

    Args:
        texts: list of str. Raw training texts.
        vocab_size: int. Largest vocabulary.
        lowercase: bool. Lower-case before counting.
        strip_accents: bool. Remove accents before counting.
        strip_html: bool. Remove tags and unescape entities first.
        unicode_form: str or None. Unicode normalisation first.

    Returns:
        list of str, the reserved tokens first ([PAD] is id 0).
    """
    cleaned = standardize(tf.constant(texts, tf.string), strip_html=strip_html, unicode_form=unicode_form)
    return keras_hub.tokenizers.compute_word_piece_vocabulary(
        tf.data.Dataset.from_tensor_slices(cleaned).batch(1024),
        vocab_size,
        lowercase=lowercase,
        strip_accents=strip_accents,
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
