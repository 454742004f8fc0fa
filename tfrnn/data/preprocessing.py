"""Raw text -> model inputs, as Keras layers that the classifier owns and saves with itself.

A `TextPreprocessor` runs TensorFlow string ops, so the same layer runs in the `tf.data`
pipeline (training, evaluation, prediction, on every Keras backend) and in the exported
SavedModel's serving graph. Like keras-hub's preprocessors it takes `tf.string` tensors
unconverted, and it is serialized with its vocabulary, so a `.keras` file alone classifies raw
strings.

`WordPreprocessor` (the RNN and feed-forward kinds) cleans the text (`tfrnn.data.cleaning`: HTML,
case, whitespace; in word mode also ASCII punctuation, so "won't" becomes "wont"), then maps
words or characters to ids with `keras.layers.TextVectorization`. Id 0 is padding and id 1 is
out-of-vocabulary ("[UNK]"), Keras' convention, so `Embedding(mask_zero=True)` masks padding.
(The vectorizer's own `standardize` stays off: on the JAX and torch backends Keras hands a
callable NumPy arrays, which a `tf.data` graph cannot give.) Its graph uses core TensorFlow ops
only, so an RNN export loads with `import tensorflow` alone.
"""

import keras
import numpy as np
import tensorflow as tf

from tfrnn.data.cleaning import standardize
from tfrnn.data.pipeline import bucket_boundaries, static_batch
from tfrnn.files import atomic_write_text

PADDING, OOV = "", "[UNK]"
OOV_ID = 1


class TextPreprocessor(keras.layers.Layer):
    """A layer from a batch of raw texts to the model's inputs, in TensorFlow ops.

    Subclasses define `call(texts)` (texts: tf.string `(batch,)`; returns int32 `(batch, time)`,
    or a dict of such tensors, right-padded with `padding_values`, time <= `max_len`),
    `padding_values` (the same structure of scalars), `vocabulary_size` and `get_vocabulary()`.

    Args:
        max_len: int. The longest sequence of the outputs.
        **kwargs: passed to `keras.layers.Layer` (name, ...).
    """

    def __init__(self, max_len, **kwargs):
        super().__init__(**kwargs)
        self._convert_input_args = False  # tf.string tensors stay TensorFlow's (as keras-hub does)
        self._allow_non_tensor_positional_args = True
        self.max_len = max_len
        self.built = True

    def encode_example(self, text):
        """The layer on one scalar text: its features unpadded, `(time,)` each."""
        return tf.nest.map_structure(lambda value: value[0], self(tf.reshape(text, [1])))

    def batches(self, texts, batch_size, labels=None, static_shapes=False):
        """Texts (and labels) as a `tf.data.Dataset` of preprocessed batches, in order.

        Args:
            texts: list of str. Raw texts.
            batch_size: int. Texts per batch.
            labels: array-like of int or None. Labels to pair with the inputs.
            static_shapes: bool. Batches in a few fixed shapes (`tfrnn.data.pipeline.static_batch`):
                the last one filled up with copies of weight 0, so there are
                ceil(n / batch_size) * batch_size rows in all, the n texts first.

        Returns:
            tf.data.Dataset of inputs, or of (inputs, labels) when `labels` is given, or of
            (inputs, labels, weights) with `static_shapes` and labels.
        """
        dataset = tf.data.Dataset.from_tensor_slices(tf.constant(texts, tf.string)).batch(batch_size)
        dataset = dataset.map(self, num_parallel_calls=tf.data.AUTOTUNE)
        label_values = tf.constant(labels if labels is not None else [0] * len(texts), tf.int32)
        dataset = tf.data.Dataset.zip((dataset, tf.data.Dataset.from_tensor_slices(label_values).batch(batch_size)))
        if static_shapes:
            boundaries = bucket_boundaries(self.max_len)
            dataset = dataset.map(
                lambda features, labels: static_batch(features, labels, batch_size, boundaries, self.padding_values)
            )
        if labels is None:
            dataset = dataset.map(lambda features, *rest: features)
        return dataset.prefetch(tf.data.AUTOTUNE)

    def save_vocabulary(self, path):
        """Writes the vocabulary, one token a line (line n holds id n - 1), for people to read."""
        tokens = [str(token) for token in self.get_vocabulary()]
        if any("\n" in token for token in tokens):
            raise ValueError("a token contains a newline; cleaning should have removed it")
        atomic_write_text(path, "".join(token + "\n" for token in tokens))


@keras.saving.register_keras_serializable(package="tfrnn")
class WordPreprocessor(TextPreprocessor):
    """Raw texts -> word (or character) ids, for the RNN and feed-forward classifiers.

    Args:
        vocabulary: list of str. Tokens in id order: "" (padding), "[UNK]", then the rest;
            `adapt` learns one.
        tokenizer: str. "word" (whitespace, ASCII punctuation removed) or "char" (one token per
            Unicode character, spaces and punctuation included; for Chinese).
        lowercase: bool. Lower-case before tokenising.
        strip_html: bool. Remove tags and unescape entities.
        unicode_form: str or None. Unicode normalisation (needs TensorFlow Text in exports).
        max_len: int. Keep at most this many tokens.
        **kwargs: passed to `keras.layers.Layer`.

    Call: tf.string `(batch,)` -> int32 `(batch, time)`, 1 <= time <= max_len, right-padded
    with 0; an empty text becomes one [UNK].
    """

    padding_values = 0

    def __init__(
        self, vocabulary, tokenizer="word", lowercase=True, strip_html=True, unicode_form=None, max_len=200, **kwargs
    ):
        super().__init__(max_len, **kwargs)
        _check_vocabulary(vocabulary)
        self.tokenizer = tokenizer
        self.lowercase = lowercase
        self.strip_html = strip_html
        self.unicode_form = unicode_form
        self.vectorizer = _vectorizer(tokenizer, vocabulary=list(vocabulary))
        self.vectorizer.build()  # the vocabulary is set; built layers can be tracked for export

    @classmethod
    def adapt(
        cls, texts, vocab_size, tokenizer="word", lowercase=True, strip_html=True, unicode_form=None, max_len=200
    ):
        """Learns the vocabulary from training texts.

        Args:
            texts: list of str. Raw training texts (never validation or test).
            vocab_size: int. Largest vocabulary, padding and OOV included.
            tokenizer, lowercase, strip_html, unicode_form, max_len: as for the constructor.

        Returns:
            WordPreprocessor.
        """
        if not texts:
            raise ValueError("no training texts to build a vocabulary from")
        options = dict(tokenizer=tokenizer, lowercase=lowercase, strip_html=strip_html, unicode_form=unicode_form)
        learner = _vectorizer(tokenizer, max_tokens=vocab_size)
        batches = tf.data.Dataset.from_tensor_slices(tf.constant(texts, tf.string)).batch(1024)
        learner.adapt(batches.map(lambda batch: _clean(batch, **options)))
        return cls([str(token) for token in learner.get_vocabulary()], max_len=max_len, **options)

    @property
    def vocabulary_size(self):
        return self.vectorizer.vocabulary_size()

    def get_vocabulary(self):
        return self.vectorizer.get_vocabulary()

    def encode_stream(self, texts, batch_size=512):
        """Every text's token ids, untruncated, one after another: a language model's stream.

        Args:
            texts: list of str. Raw documents, in order.
            batch_size: int. Texts tokenised at once.

        Returns:
            np.ndarray int32 `(tokens,)`, no padding (an empty text adds nothing).
        """
        options = dict(
            tokenizer=self.tokenizer,
            lowercase=self.lowercase,
            strip_html=self.strip_html,
            unicode_form=self.unicode_form,
        )
        batches = tf.data.Dataset.from_tensor_slices(tf.constant(texts, tf.string)).batch(batch_size)
        batches = batches.map(
            lambda batch: self.vectorizer(_clean(batch, **options)), num_parallel_calls=tf.data.AUTOTUNE
        )
        ids = [padded[padded != 0] for padded in batches.as_numpy_iterator()]  # (batch, longest) row by row
        return np.concatenate(ids).astype(np.int32) if ids else np.zeros((0,), np.int32)

    def call(self, texts):
        options = dict(
            tokenizer=self.tokenizer,
            lowercase=self.lowercase,
            strip_html=self.strip_html,
            unicode_form=self.unicode_form,
        )
        ids = tf.cast(self.vectorizer(_clean(texts, **options)), tf.int32)[
            :, : self.max_len
        ]  # (batch, time), time may be 0
        ids = tf.pad(ids, [[0, 0], [0, tf.maximum(1 - tf.shape(ids)[1], 0)]])  # time >= 1
        empty = tf.reduce_all(ids == 0, axis=1, keepdims=True)  # (batch, 1)
        first = tf.range(tf.shape(ids)[1]) == 0  # (time,)
        return tf.where(empty & first, OOV_ID, ids)

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary": [str(token) for token in self.get_vocabulary()],
            "tokenizer": self.tokenizer,
            "lowercase": self.lowercase,
            "strip_html": self.strip_html,
            "unicode_form": self.unicode_form,
            "max_len": self.max_len,
        }


def _clean(texts, tokenizer, lowercase, strip_html, unicode_form):
    """The cleaning the vectorizer's input gets; punctuation too in word mode."""
    return standardize(
        texts,
        strip_html=strip_html,
        unicode_form=unicode_form,
        lowercase=lowercase,
        strip_punctuation=tokenizer == "word",
    )


def _vectorizer(tokenizer, vocabulary=None, max_tokens=None):
    return keras.layers.TextVectorization(
        max_tokens=max_tokens,
        standardize=None,  # `_clean` runs first
        split="whitespace" if tokenizer == "word" else "character",
        output_mode="int",
        output_sequence_length=None,  # ragged rows; truncated and padded per batch
        vocabulary=vocabulary,
        name="vectorizer",
    )


def _check_vocabulary(tokens):
    if list(tokens[:2]) != [PADDING, OOV]:
        raise ValueError(f"a vocabulary starts with {PADDING!r} (padding) then {OOV!r}")
    repeated = {token for token in tokens[2:] if token in (PADDING, OOV)}
    if repeated:
        raise ValueError(f"{sorted(repeated)} appear again in the vocabulary")


def make_preprocessor(spec, texts, checkpoint=None):
    """The preprocessor of a new run: its vocabulary learned from `texts`, or a checkpoint's.

    Args:
        spec: tfrnn.config.RunConfig. The resolved run spec (model kind and section, cleaning,
            max_len; BERT's case rules resolved).
        texts: list of str. Raw training texts.
        checkpoint: tfrnn.models.bert.Checkpoint or None. A BERT checkpoint already read; it
            brings the WordPiece vocabulary.

    Returns:
        WordPreprocessor, or BertPreprocessor for `model.kind=bert`.
    """
    data, section = spec.data, spec.model.section
    cleaning = dict(strip_html=data.strip_html, unicode_form=data.unicode_form)
    if spec.model.kind != "bert":
        return WordPreprocessor.adapt(
            texts, section.vocab_size, section.tokenizer, section.lowercase, max_len=data.max_len, **cleaning
        )
    from tfrnn.data.wordpiece import BertPreprocessor, learn_vocabulary, read_vocabulary  # keras-hub: BERT only

    case = dict(lowercase=section.lowercase, strip_accents=section.strip_accents)
    if checkpoint is not None:
        vocabulary = read_vocabulary(checkpoint.vocabulary)
        split_on_cjk = checkpoint.split_on_cjk
    else:
        vocabulary = learn_vocabulary(texts, section.vocab_size, **case, **cleaning)
        split_on_cjk = True
    return BertPreprocessor(vocabulary, **case, split_on_cjk=split_on_cjk, max_len=data.max_len, **cleaning)
