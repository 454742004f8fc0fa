"""What tfrnn's classifiers share: the embedded input, the logits head, the preprocessor they own
and config-based serialization (keras-hub's task pattern)."""

import keras


def embedded_tokens(vocab_size, embedding_dim):
    """The model input, int32 token ids (0 is padding), and their masked embeddings.

    Args:
        vocab_size: int. Number of token ids, padding and OOV included.
        embedding_dim: int. Size of the embeddings.

    Returns:
        (token_ids `(batch, time)`, embeddings `(batch, time, embedding_dim)` with a mask).
    """
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    embeddings = keras.layers.Embedding(vocab_size, embedding_dim, mask_zero=True, name="embedding")(token_ids)
    return token_ids, embeddings


def logits_head(x, num_classes, dropout):
    """Dropout, then a dense layer giving one logit per label, float32 even under mixed precision.

    Args:
        x: tensor. `(batch, features)`.
        num_classes: int. Number of labels.
        dropout: float. Dropout rate before the dense layer.

    Returns:
        Tensor `(batch, num_classes)` of logits (losses use `from_logits=True`).
    """
    x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    return keras.layers.Dense(num_classes, dtype="float32", name="logits")(x)


def keep_preprocessor(model, preprocessor):
    """Sets `model.preprocessor`, which runs in tf.data and in exported graphs, never inside the
    model's steps: its string lookups must not turn `jit_compile` off for the whole model.

    Args:
        model: keras.Model.
        preprocessor: tfrnn.data.TextPreprocessor or None.
    """
    model.preprocessor = preprocessor
    if preprocessor is not None:
        for layer in preprocessor._flatten_layers():
            layer.supports_jit = True


class PreprocessorConfig:
    """Mixin of a model whose `config` holds its constructor arguments and which owns a
    preprocessor (`keep_preprocessor`): both are serialized, and `from_config` calls the
    constructor."""

    def get_config(self):
        config = {"name": self.name, "trainable": self.trainable, **self.config}
        if self.preprocessor is not None:
            config["preprocessor"] = keras.saving.serialize_keras_object(self.preprocessor)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("preprocessor"), dict):
            config["preprocessor"] = keras.saving.deserialize_keras_object(config["preprocessor"])
        return cls(**config)


class Classifier(PreprocessorConfig, keras.Model):
    """A functional model over token ids, built in `__init__` from its constructor arguments,
    that owns the preprocessor turning raw text into those ids (keras-hub's task pattern).

    `get_config` returns the constructor arguments (the preprocessor serialized), and
    `from_config` calls the constructor, so a `.keras` file alone classifies raw strings:
    `predict` and `evaluate` run the preprocessor on string inputs, as keras-hub's tasks do.
    Training keeps the preprocessor in the `tf.data` pipeline (`tfrnn.data.make_dataset`).

    Subclasses build their graph and call `super().__init__(inputs, outputs, config, preprocessor)`.

    Args:
        inputs: the functional inputs (token ids, or a dict of BERT inputs).
        outputs: the logits `(batch, num_classes)`.
        config: dict. The subclass's constructor arguments (without the preprocessor).
        preprocessor: tfrnn.data.TextPreprocessor or None. Raw text -> `inputs`.
        **kwargs: passed to `keras.Model` (name, ...).
    """

    def __init__(self, inputs, outputs, config, preprocessor=None, **kwargs):
        super().__init__(inputs, outputs, **kwargs)
        self.config = config
        keep_preprocessor(self, preprocessor)

    def _text_batches(self, x, batch_size, labels=None):
        """`x` (and `labels`) as preprocessed batches when `x` is raw text (a list or 1-D array
        of str), else None. Under JAX, whose compiled steps specialise on shape, the batches
        come in a few fixed shapes, the last filled up with copies of weight 0."""
        if self.preprocessor is None or not _is_text(x):
            return None
        return self.preprocessor.batches(list(x), batch_size or 32, labels, static_shapes=_static_shapes())

    def predict(self, x, batch_size=None, **kwargs):
        """keras.Model.predict; raw strings go through the preprocessor first. Returns logits."""
        batches = self._text_batches(x, batch_size)
        if batches is None:
            return super().predict(x, batch_size=batch_size, **kwargs)
        return super().predict(batches, **kwargs)[: len(x)]  # (n, num_classes): the fillers dropped

    def evaluate(self, x=None, y=None, batch_size=None, **kwargs):
        """keras.Model.evaluate; raw strings (with labels `y`) go through the preprocessor first."""
        batches = self._text_batches(x, batch_size, y)
        if batches is None:
            return super().evaluate(x, y, batch_size=batch_size, **kwargs)
        return super().evaluate(batches, **kwargs)


def _static_shapes():
    """Whether batches must come in few shapes: under JAX, every new shape is a new compilation."""
    return keras.backend.backend() == "jax"


def _is_text(x):
    if isinstance(x, str):
        raise ValueError("expected a list of texts, got one string; wrap it in a list")
    if isinstance(x, (list, tuple)):
        return bool(x) and all(isinstance(item, str) for item in x)
    dtype = getattr(x, "dtype", None)
    return dtype is not None and getattr(dtype, "kind", "") in ("U", "S", "O") and getattr(x, "ndim", 0) == 1
