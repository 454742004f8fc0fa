"""RNNClassifier: token ids -> embedding -> recurrent layers -> pooling -> dropout -> logits."""

import keras

from tfrnn import choices, layers
from tfrnn.models.base import Classifier, embedded_tokens, logits_head

# model.rnn.cell -> its layer class (the names: tfrnn.choices.CELLS).
RECURRENT_LAYERS = {cell: getattr(layers, class_name) for cell, class_name in choices.CELLS.items()}


@keras.saving.register_keras_serializable(package="tfrnn")
class RNNClassifier(Classifier):
    """A recurrent text classifier over integer token ids (0 is padding and is masked).

    Args:
        vocab_size: int. Number of token ids, padding and OOV included.
        num_classes: int. Number of labels; the output is one logit per label.
        cell: str. "simple_rnn", "lstm", "gru" or "feedback".
        embedding_dim: int. Size of the token embeddings.
        units: int. Hidden size of each recurrent layer (per direction).
        num_layers: int. Number of stacked recurrent layers.
        bidirectional: bool. Read the text in both directions.
        pooling: str. "last", "mean", "max" or "concat" (last, max and mean) over the (masked)
            time steps.
        dropout: float. Dropout on the embeddings and before the head.
        recurrent_dropout: float. Recurrent dropout inside the cells.
        feedback_base: str. Base step of the feedback cell, "lstm" or "gru".
        weight_dropout: float. DropConnect on the recurrent kernels (one mask per batch).
        preprocessor: tfrnn.data.WordPreprocessor or None. Raw text -> token ids.
        **kwargs: passed to `keras.Model` (name, ...).
    """

    def __init__(
        self,
        vocab_size,
        num_classes,
        cell="lstm",
        embedding_dim=64,
        units=64,
        num_layers=1,
        bidirectional=True,
        pooling="max",
        dropout=0.3,
        recurrent_dropout=0.0,
        feedback_base="lstm",
        weight_dropout=0.0,
        preprocessor=None,
        **kwargs,
    ):
        if cell not in RECURRENT_LAYERS:
            raise ValueError(f"`cell` must be one of {sorted(RECURRENT_LAYERS)}, got {cell!r}.")
        token_ids, x = embedded_tokens(vocab_size, embedding_dim)  # (batch, time, embedding_dim)
        x = keras.layers.Dropout(dropout, name="embedding_dropout")(x)
        extra = {"base": feedback_base} if cell == "feedback" else {}
        for i in range(num_layers):
            return_sequences = i < num_layers - 1 or pooling != "last"
            rnn = RECURRENT_LAYERS[cell](
                units,
                return_sequences=return_sequences,
                recurrent_dropout=recurrent_dropout,
                weight_dropout=weight_dropout,
                name=f"{cell}_{i}",
                **extra,
            )
            if bidirectional:
                rnn = layers.Bidirectional(rnn, name=f"bidirectional_{i}")
            x = rnn(x)  # (batch, time, d) or (batch, d), d = units * (2 if bidirectional else 1)
        if pooling != "last":  # "last": the recurrent layer already returned its last output
            x = layers.MaskedGlobalPooling1D(pooling, name=f"{pooling}_pool")(x)  # (batch, d)
        logits = logits_head(x, num_classes, dropout)  # (batch, num_classes)
        config = dict(
            vocab_size=vocab_size,
            num_classes=num_classes,
            cell=cell,
            embedding_dim=embedding_dim,
            units=units,
            num_layers=num_layers,
            bidirectional=bidirectional,
            pooling=pooling,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            feedback_base=feedback_base,
            weight_dropout=weight_dropout,
        )
        super().__init__(token_ids, logits, config, preprocessor, **kwargs)
