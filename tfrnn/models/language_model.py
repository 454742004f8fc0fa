"""RNNLanguageModel: an AWD-LSTM-style language model (Merity et al. 2017) on tfrnn's LSTM layers,
with its output tied to the input embedding and a sampled softmax for training.

The encoder's layers ("embedding", "lstm_0".."lstm_{L-1}") have the names and shapes of
`RNNClassifier(cell="lstm", bidirectional=False, ...)`'s, so a classifier copies them by name.
The model outputs the last hidden states projected to the embedding size, not logits: a softmax
over the vocabulary at every step is the cost of training on CPU, so `compute_loss` samples it
(Jean et al. 2015) in training and computes it exactly otherwise (evaluation: exp(val_loss) is
the exact perplexity).
"""

import math

import keras
from keras import ops

from tfrnn import layers
from tfrnn.layers.regularization import ActivationRegularization, EmbeddingDropout, locked_dropout
from tfrnn.models.base import PreprocessorConfig, keep_preprocessor


def log_uniform_probability(ids, vocab_size):
    """The log-uniform (Zipf) proposal, Q(k) = log((k + 2) / (k + 1)) / log(vocab_size + 1).

    Args:
        ids: int tensor. Token ids in [0, vocab_size).
        vocab_size: int. Number of token ids.

    Returns:
        Float32 tensor of the shape of `ids`.
    """
    ids = ops.cast(ids, "float32")
    return ops.log1p(1.0 / (ids + 1.0)) / math.log(vocab_size + 1.0)


def sample_log_uniform(count, vocab_size, seed):
    """Draws `count` ids from the log-uniform proposal, with replacement (TensorFlow's sampler).

    Args:
        count: int. Number of ids.
        vocab_size: int. Ids are in [0, vocab_size).
        seed: SeedGenerator, int or None.

    Returns:
        Int32 tensor `(count,)`.
    """
    u = keras.random.uniform((count,), seed=seed)
    ids = ops.floor(ops.exp(u * math.log(vocab_size + 1.0))) - 1.0  # the inverse of Q's distribution function
    return ops.cast(ops.clip(ids, 0, vocab_size - 1), "int32")


def sampled_softmax_loss(hidden, targets, weights, bias, candidates):
    """Sampled softmax cross-entropy with `tf.nn.sampled_softmax_loss`'s semantics.

    The true class (index 0) and the candidates shared by all tokens get their logits minus the
    log of their expected count under the log-uniform proposal, `count * Q(k)`; a candidate
    equal to a token's target (an accidental hit) is removed from that token's softmax.

    Args:
        hidden: float32 tensor `(tokens, dim)`.
        targets: int tensor `(tokens,)`.
        weights: float32 tensor `(vocab, dim)`. The output weights (the tied embeddings).
        bias: float32 tensor `(vocab,)`.
        candidates: int tensor `(count,)`. Ids drawn from the log-uniform proposal.

    Returns:
        Float32 tensor `(tokens,)`: each token's loss.
    """
    vocab_size, count = weights.shape[0], candidates.shape[0]
    true_logits = ops.sum(hidden * ops.take(weights, targets, axis=0), axis=-1) + ops.take(bias, targets)
    true_logits -= ops.log(count * log_uniform_probability(targets, vocab_size))  # (tokens,)
    sampled_logits = ops.matmul(hidden, ops.transpose(ops.take(weights, candidates, axis=0)))
    sampled_logits += ops.take(bias, candidates) - ops.log(count * log_uniform_probability(candidates, vocab_size))
    hits = ops.equal(ops.expand_dims(targets, 1), ops.expand_dims(candidates, 0))  # (tokens, count)
    sampled_logits = ops.where(hits, -1e30, sampled_logits)  # (tokens, count)
    logits = ops.concatenate([ops.expand_dims(true_logits, 1), sampled_logits], axis=1)  # (tokens, 1 + count)
    return ops.logsumexp(logits, axis=1) - true_logits


class TiedSoftmax(keras.layers.Layer):
    """The output layer: logits = h @ embeddings^T + output_bias, with the embedding layer's own
    variable (tied, not copied), in float32. Built by `RNNLanguageModel`, which saves it.

    Args:
        embedding: keras.layers.Embedding. The input embedding.
        seed: int or None. Seed of the sampled candidates.
        **kwargs: the base layer's arguments.
    """

    def __init__(self, embedding, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.embedding = embedding
        self.output_bias = self.add_weight(
            shape=(embedding.input_dim,), initializer="zeros", name="output_bias", dtype="float32"
        )
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.built = True

    def weights_matrix(self):
        return ops.cast(self.embedding.embeddings, "float32")  # (vocab, dim)

    def logits(self, hidden):
        """Full-vocabulary logits `(..., vocab)` of `hidden` `(..., dim)`."""
        return ops.matmul(ops.cast(hidden, "float32"), ops.transpose(self.weights_matrix())) + self.output_bias

    def token_losses(self, hidden, targets, sampled=0):
        """Cross-entropy of each token: exact, or sampled with `sampled` log-uniform candidates.

        Args:
            hidden: tensor `(tokens, dim)`.
            targets: int tensor `(tokens,)`.
            sampled: int. Candidates drawn for the batch; 0 for the exact softmax.

        Returns:
            Float32 tensor `(tokens,)`.
        """
        hidden, targets = ops.cast(hidden, "float32"), ops.cast(targets, "int32")
        if not sampled:
            return ops.sparse_categorical_crossentropy(targets, self.logits(hidden), from_logits=True)
        candidates = sample_log_uniform(sampled, self.embedding.input_dim, self.seed_generator)
        return sampled_softmax_loss(hidden, targets, self.weights_matrix(), self.output_bias, candidates)


@keras.saving.register_keras_serializable(package="tfrnn")
class RNNLanguageModel(PreprocessorConfig, keras.Model):
    """AWD-LSTM-style language model over a continuous stream of token ids (truncated BPTT).

    token ids `(batch, bptt)` -> embedding (+ embedding dropout) -> locked dropout -> L stateful
    LSTMs (DropConnect on their recurrent kernels, locked dropout after each; AR/TAR on the last)
    -> a dense projection to `embedding_dim` when `units != embedding_dim`. The output is that
    projection `(batch, bptt, embedding_dim)`; `logits` turns it into the tied softmax's logits.
    `fit`/`evaluate` take next-token ids `(batch, bptt)` as targets and no compiled loss
    (`compute_loss`). The LSTM states carry over from batch to batch: row r of a batch must
    continue row r of the previous one (`shuffle=False`); `reset_states` starts new streams.

    Args:
        vocab_size: int. Number of token ids.
        embedding_dim: int. Size of the embeddings (and of the output layer's input).
        units: int. Hidden size of every LSTM.
        num_layers: int. Number of stacked LSTMs.
        batch_size: int. The fixed batch size (the LSTMs are stateful).
        embedding_dropout: float. Fraction of word types dropped per batch (`EmbeddingDropout`).
        input_dropout: float. Locked dropout on the embeddings.
        hidden_dropout: float. Locked dropout between LSTMs.
        output_dropout: float. Locked dropout on the last LSTM's output.
        weight_dropout: float. DropConnect on each LSTM's recurrent kernel.
        ar: float. Activation regularisation weight (on the last LSTM's dropped output).
        tar: float. Temporal activation regularisation weight (on its output before dropout).
        sampled: int. Negatives sampled per batch for the training softmax; 0: exact softmax.
        seed: int or None. Seed of every dropout and of the sampler (layer k gets seed + k).
        preprocessor: tfrnn.data.TextPreprocessor or None. Raw text -> token ids; kept and saved.
        **kwargs: passed to `keras.Model` (name, ...).
    """

    def __init__(
        self,
        vocab_size,
        embedding_dim=400,
        units=1152,
        num_layers=3,
        batch_size=32,
        embedding_dropout=0.1,
        input_dropout=0.25,
        hidden_dropout=0.15,
        output_dropout=0.1,
        weight_dropout=0.2,
        ar=2.0,
        tar=1.0,
        sampled=1024,
        seed=None,
        preprocessor=None,
        **kwargs,
    ):
        if num_layers < 1:
            raise ValueError(f"`num_layers` must be at least 1, got num_layers={num_layers}.")

        def seeded(k):
            return None if seed is None else seed + k

        token_ids = keras.Input(batch_shape=(batch_size, None), dtype="int32", name="token_ids")
        embedding = keras.layers.Embedding(vocab_size, embedding_dim, name="embedding")
        x = embedding(token_ids)  # (batch, bptt, embedding_dim)
        x = EmbeddingDropout(embedding_dropout, vocab_size, seed=seeded(0), name="embedding_dropout")([token_ids, x])
        x = locked_dropout(input_dropout, seed=seeded(1), name="input_dropout")(x)
        for i in range(num_layers):
            raw = self.recurrent_layer(units, weight_dropout, seeded(2 * i + 2), f"lstm_{i}")(x)  # (batch, bptt, units)
            last = i == num_layers - 1
            x = locked_dropout(
                output_dropout if last else hidden_dropout,
                seed=seeded(2 * i + 3),
                name="output_dropout" if last else f"hidden_dropout_{i}",
            )(raw)
        x = ActivationRegularization(ar, tar, name="activation_regularization")([x, raw])
        if units != embedding_dim:
            x = keras.layers.Dense(embedding_dim, name="projection")(x)  # (batch, bptt, embedding_dim)
        super().__init__(token_ids, x, **kwargs)
        self.tied_softmax = TiedSoftmax(embedding, seed=seeded(2 * num_layers + 2), name="tied_softmax")
        self.sampled = sampled
        keep_preprocessor(self, preprocessor)
        self.config = dict(
            vocab_size=vocab_size,
            embedding_dim=embedding_dim,
            units=units,
            num_layers=num_layers,
            batch_size=batch_size,
            embedding_dropout=embedding_dropout,
            input_dropout=input_dropout,
            hidden_dropout=hidden_dropout,
            output_dropout=output_dropout,
            weight_dropout=weight_dropout,
            ar=ar,
            tar=tar,
            sampled=sampled,
            seed=seed,
        )

    @classmethod
    def recurrent_layer(cls, units, weight_dropout, seed, name):
        """One stateful LSTM returning sequences. The one hook to swap the recurrent class (the
        throughput benchmark builds the same model on `keras.layers.LSTM` by overriding it)."""
        return layers.LSTM(
            units, return_sequences=True, stateful=True, weight_dropout=weight_dropout, seed=seed, name=name
        )

    def encoder_layer_names(self):
        """The layers a classifier copies: ["embedding", "lstm_0", ..., "lstm_{L-1}"]."""
        return ["embedding"] + [f"lstm_{i}" for i in range(self.config["num_layers"])]

    def reset_states(self):
        """Zeroes every LSTM's state (a new epoch, or before evaluation)."""
        for name in self.encoder_layer_names()[1:]:
            self.get_layer(name).reset_state()

    def logits(self, hidden):
        """Full-vocabulary logits `(..., vocab)`, float32, of the model's output `(..., embedding_dim)`."""
        return self.tied_softmax.logits(hidden)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Mean next-token cross-entropy plus the layers' losses (AR, TAR, weight regularizers).

        Sampled (`sampled` log-uniform candidates shared by the batch) when training with
        `sampled > 0`, else exact over the whole vocabulary.

        Args:
            x: unused.
            y: int tensor `(batch, bptt)`. The next token ids.
            y_pred: tensor `(batch, bptt, embedding_dim)`. The model's output.
            sample_weight: tensor `(batch, bptt)`, `(batch,)` or None. Weights of the tokens.
            training: bool. Whether this is a training step.

        Returns:
            Scalar tensor.
        """
        del x
        hidden = ops.reshape(y_pred, (-1, y_pred.shape[-1]))  # (tokens, embedding_dim)
        losses = self.tied_softmax.token_losses(hidden, ops.reshape(y, (-1,)), self.sampled if training else 0)
        if sample_weight is None:
            loss = ops.mean(losses)
        else:
            weights = ops.cast(sample_weight, "float32")
            if len(weights.shape) == 1:
                weights = ops.expand_dims(weights, 1)
            weights = ops.reshape(ops.broadcast_to(weights, ops.shape(y)), (-1,))  # (tokens,)
            loss = ops.divide_no_nan(ops.sum(losses * weights), ops.sum(weights))
        # Keras' aggregation of added losses also scales them for a multi-replica strategy.
        return ops.sum(ops.stack([self._aggregate_additional_loss(v) for v in [loss, *self.losses]]))
