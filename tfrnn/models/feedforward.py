"""The feed-forward baseline: mean of the token embeddings -> dense -> logits."""

import keras

from tfrnn import layers
from tfrnn.models.base import Classifier, embedded_tokens, logits_head


@keras.saving.register_keras_serializable(package="tfrnn")
class FeedForwardClassifier(Classifier):
    """A bag-of-embeddings classifier: no recurrence, word order ignored.

    Args:
        vocab_size: int. Number of token ids, padding and OOV included.
        num_classes: int. Number of labels.
        embedding_dim: int. Size of the token embeddings.
        hidden_units: int. Size of the hidden dense layer.
        dropout: float. Dropout before the head.
        preprocessor: tfrnn.data.WordPreprocessor or None. Raw text -> token ids.
        **kwargs: passed to `keras.Model`.
    """

    def __init__(
        self, vocab_size, num_classes, embedding_dim=64, hidden_units=64, dropout=0.3, preprocessor=None, **kwargs
    ):
        token_ids, x = embedded_tokens(vocab_size, embedding_dim)  # (batch, time, embedding_dim)
        x = layers.MaskedGlobalPooling1D("mean", name="mean_pool")(x)  # (batch, embedding_dim)
        x = keras.layers.Dense(hidden_units, activation="relu", name="hidden")(x)
        logits = logits_head(x, num_classes, dropout)  # (batch, num_classes)
        config = dict(
            vocab_size=vocab_size,
            num_classes=num_classes,
            embedding_dim=embedding_dim,
            hidden_units=hidden_units,
            dropout=dropout,
        )
        super().__init__(token_ids, logits, config, preprocessor, **kwargs)
