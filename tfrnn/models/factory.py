"""Builds the classifier a ModelConfig describes."""

from tfrnn.models.feedforward import FeedForwardClassifier
from tfrnn.models.rnn_classifier import RNNClassifier


def build_classifier(model_config, vocab_size, num_classes):
    """Builds an uncompiled classifier.

    Args:
        model_config: tfrnn.config.ModelConfig. What to build.
        vocab_size: int. Size of the vectorizer's vocabulary.
        num_classes: int. Number of labels.

    Returns:
        keras.Model mapping int32 token ids (batch, time) to probabilities (batch, num_classes).
    """
    c = model_config
    if c.kind == "feedforward":
        return FeedForwardClassifier(
            vocab_size, num_classes, c.embedding_dim, c.hidden_units, c.dropout
        )
    return RNNClassifier(
        vocab_size,
        num_classes,
        cell=c.cell,
        embedding_dim=c.embedding_dim,
        units=c.units,
        num_layers=c.num_layers,
        bidirectional=c.bidirectional,
        pooling=c.pooling,
        dropout=c.dropout,
        recurrent_dropout=c.recurrent_dropout,
        feedback_base=c.feedback_base,
    )
