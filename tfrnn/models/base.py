"""What tfrnn's classifiers share: the softmax head and config-based serialization."""

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
    embeddings = keras.layers.Embedding(
        vocab_size, embedding_dim, mask_zero=True, name="embedding"
    )(token_ids)
    return token_ids, embeddings


def probabilities_head(x, num_classes, dropout):
    """Dropout, then a dense softmax over the labels, float32 even under mixed precision.

    Args:
        x: tensor. `(batch, features)`.
        num_classes: int. Number of labels.
        dropout: float. Dropout rate before the dense layer.

    Returns:
        Tensor `(batch, num_classes)`.
    """
    x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    return keras.layers.Dense(
        num_classes, activation="softmax", dtype="float32", name="probabilities"
    )(x)


class Classifier(keras.Model):
    """A functional model built in `__init__` from its constructor arguments (keras-hub's
    pattern): `get_config` returns those arguments and `from_config` calls the constructor.

    Subclasses build their graph, call `super().__init__(inputs, outputs, config=...)`.
    """

    def __init__(self, inputs, outputs, config, **kwargs):
        super().__init__(inputs, outputs, **kwargs)
        self.config = config

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, **self.config}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
