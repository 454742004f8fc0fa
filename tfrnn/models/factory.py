"""Builds the classifier a run's model section describes, one builder per `tfrnn.choices.KINDS`."""

from tfrnn.models.feedforward import FeedForwardClassifier
from tfrnn.models.rnn_classifier import RNNClassifier


def _rnn(c, preprocessor, num_classes, checkpoint):
    classifier = RNNClassifier(
        preprocessor.vocabulary_size,
        num_classes,
        cell=c.cell,
        embedding_dim=c.embedding_dim,
        units=c.units,
        num_layers=c.layers,
        bidirectional=c.bidirectional,
        pooling=c.pooling,
        dropout=c.dropout,
        recurrent_dropout=c.recurrent_dropout,
        feedback_base=c.feedback_base,
        weight_dropout=c.weight_dropout,
        preprocessor=preprocessor,
    )
    if checkpoint is not None:  # a pretrained language model (init_from)
        checkpoint.transfer(classifier)
    return classifier


def _feedforward(c, preprocessor, num_classes, checkpoint):
    return FeedForwardClassifier(
        preprocessor.vocabulary_size, num_classes, c.embedding_dim, c.hidden_units, c.dropout, preprocessor=preprocessor
    )


def _bert(c, preprocessor, num_classes, checkpoint):
    from tfrnn.models.bert import BertClassifier, read_checkpoint  # keras-hub loads only for BERT
    from tfrnn.models.bert.classifier import random_backbone

    if checkpoint is not None or c.checkpoint:  # a checkpoint, or a pretrained run (init_from)
        backbone = (checkpoint or read_checkpoint(c.checkpoint)).load_backbone()
    else:
        backbone = random_backbone(preprocessor.vocabulary_size, c.layers, c.hidden_dim, c.heads, preprocessor.max_len)
    return BertClassifier(backbone, num_classes, pooling=c.pooling, dropout=c.dropout, preprocessor=preprocessor)


# model.kind -> its builder (the names: tfrnn.choices.KINDS).
BUILDERS = {"rnn": _rnn, "feedforward": _feedforward, "bert": _bert}


def build_classifier(model_config, preprocessor, num_classes, checkpoint=None):
    """Builds an uncompiled classifier that owns `preprocessor` (a BERT checkpoint's weights loaded).

    Args:
        model_config: tfrnn.config.ModelConfig. The kind and its section.
        preprocessor: tfrnn.data.TextPreprocessor. Raw text -> the model's inputs; gives the
            vocabulary size and the longest sequence.
        num_classes: int. Number of labels.
        checkpoint: tfrnn.models.bert.Checkpoint, tfrnn.pretrained.PretrainedRun or None.
            `model.bert.checkpoint` already read (None reads it here), or the `tfrnn pretrain`
            run of `init_from`, whose encoder weights the classifier takes.

    Returns:
        tfrnn.models.base.Classifier mapping int32 token ids `(batch, time)` (BERT: a dict of
        token_ids, segment_ids, padding_mask) to logits `(batch, num_classes)`.
    """
    return BUILDERS[model_config.kind](model_config.section, preprocessor, num_classes, checkpoint)
