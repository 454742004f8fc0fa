"""AWD-LSTM's regularisers (Merity et al. 2017) that live outside the cells: embedding dropout,
locked (variational) dropout, and activation / temporal activation regularisation (AR/TAR).
DropConnect on the recurrent kernel is the cells' `weight_dropout` (`tfrnn.layers.base`)."""

import keras
from keras import ops


def locked_dropout(rate, seed=None, name=None):
    """Variational dropout: one mask per sequence and feature, the same at every time step.

    Keras' `Dropout` with `noise_shape=(None, 1, None)` (both TensorFlow and JAX fill the None
    axes from the input's shape), so it saves and loads as a plain `Dropout`.

    Args:
        rate: float. Fraction of the features dropped.
        seed: int or None. Seed of the masks.
        name: str or None. Layer name.

    Returns:
        A `keras.layers.Dropout` for `(batch, time, features)` inputs.
    """
    return keras.layers.Dropout(rate, noise_shape=(None, 1, None), seed=seed, name=name)


@keras.saving.register_keras_serializable(package="tfrnn")
class EmbeddingDropout(keras.layers.Layer):
    """Drops whole word types: one Bernoulli mask over the vocabulary per call, as if rows of the
    embedding matrix were zeroed (kept rows scaled by 1 / (1 - rate)), so a dropped word is zero
    at every position of the batch. The embedding itself stays a plain `keras.layers.Embedding`.

    Called on `[token_ids, embeddings]`, returns the embeddings (their mask passes through).

    Args:
        rate: float. Fraction of the vocabulary dropped, in [0, 1).
        vocab_size: int. Number of token ids (the embedding's `input_dim`).
        seed: int or None. Seed of the masks.
        **kwargs: the base layer's arguments.
    """

    def __init__(self, rate, vocab_size, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"`rate` must be in [0, 1), got rate={rate}.")
        self.rate = rate
        self.vocab_size = vocab_size
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True
        self.built = True

    def call(self, inputs, training=False):
        token_ids, embeddings = inputs  # (batch, time), (batch, time, dim)
        if not (training and self.rate > 0.0):
            return embeddings
        keep = keras.random.dropout(ops.ones((self.vocab_size,)), self.rate, seed=self.seed_generator)  # (vocab,)
        scale = ops.take(keep, ops.cast(token_ids, "int32"), axis=0)  # (batch, time)
        return embeddings * ops.cast(ops.expand_dims(scale, -1), embeddings.dtype)

    def compute_mask(self, inputs, mask=None):
        return None if mask is None else mask[1]

    def compute_output_shape(self, input_shape):
        return input_shape[1]

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "vocab_size": self.vocab_size, "seed": self.seed}


@keras.saving.register_keras_serializable(package="tfrnn")
class ActivationRegularization(keras.layers.Layer):
    """AR and TAR (Merity et al. 2017) on the last recurrent layer; the identity on its outputs.

    Called on `[dropped, raw]` (the layer's output after and before its dropout), returns
    `dropped` and, in training only, adds two losses:

        alpha * mean(dropped ** 2)                 (AR: small activations)
        beta  * mean((raw_t - raw_{t-1}) ** 2)     (TAR: slowly changing states)

    Args:
        alpha: float. Weight of AR (0: off).
        beta: float. Weight of TAR (0: off).
        **kwargs: the base layer's arguments.
    """

    def __init__(self, alpha=2.0, beta=1.0, **kwargs):
        super().__init__(**kwargs)
        self.alpha = alpha
        self.beta = beta
        self.built = True

    def call(self, inputs, training=False):
        dropped, raw = inputs  # (batch, time, units) each
        if training and self.alpha:
            self.add_loss(self.alpha * ops.mean(ops.square(ops.cast(dropped, "float32"))))
        if training and self.beta:
            raw = ops.cast(raw, "float32")
            self.add_loss(self.beta * ops.mean(ops.square(raw[:, 1:] - raw[:, :-1])))  # over (batch, time-1, units)
        return dropped

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha, "beta": self.beta}
