"""Builds the classifier a ModelConfig describes."""

from tfrnn.models.feedforward import FeedForwardClassifier
from tfrnn.models.rnn_classifier import RNNClassifier


def build_classifier(model_config, vocab_size, num_classes, max_len=512, checkpoint=None):
    """Builds an uncompiled classifier (a BERT checkpoint's weights loaded).

    Args:
        model_config: tfrnn.config.ModelConfig. What to build.
        vocab_size: int. Size of the encoder's vocabulary.
        num_classes: int. Number of labels.
        max_len: int. Longest input (position embeddings of a BERT built from scratch).
        checkpoint: tfrnn.models.bert.Checkpoint or None. `model_config.checkpoint` already read;
            None reads it here.

    Returns:
        keras.Model mapping int32 token ids (batch, time) (BERT: a dict of token_ids,
        segment_ids, padding_mask) to probabilities (batch, num_classes).
    """
    c = model_config
    if c.kind == "bert":  # keras-hub is imported only for BERT
        from tfrnn.models.bert import BertClassifier, read_checkpoint
        from tfrnn.models.bert.classifier import random_backbone

        if c.checkpoint:
            backbone = (checkpoint or read_checkpoint(c.checkpoint)).load_backbone()
        else:
            backbone = random_backbone(vocab_size, c.num_layers, c.units, c.num_heads, max_len)
        return BertClassifier(backbone, num_classes, pooling=c.pooling, dropout=c.dropout)
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
