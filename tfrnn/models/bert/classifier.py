"""BertClassifier: a BERT encoder -> pooling -> dropout -> logits over the labels."""

import keras

from tfrnn import choices
from tfrnn.layers import MaskedGlobalPooling1D
from tfrnn.models.base import Classifier, logits_head
from tfrnn.models.bert.backbone import BertBackbone


@keras.saving.register_keras_serializable(package="tfrnn")
class BertClassifier(Classifier):
    """A text classifier over a BERT encoder's outputs.

    Args:
        backbone: tfrnn.models.bert.BertBackbone. The encoder (pretrained or fresh).
        num_classes: int. Number of labels; the output is one logit per label.
        pooling: str. "cls" (BERT's pooled output: tanh dense over [CLS]), or "mean" or "max"
            over the real tokens of the sequence output.
        dropout: float. Dropout before the head.
        preprocessor: tfrnn.data.BertPreprocessor or None. Raw text -> the inputs below.
        **kwargs: passed to `keras.Model` (name, ...).

    Inputs: dict of int32 `(batch, time)` token_ids, segment_ids, padding_mask (1 = token).
    Output: logits `(batch, num_classes)`, float32.
    """

    def __init__(self, backbone, num_classes, pooling="cls", dropout=0.1, preprocessor=None, **kwargs):
        if pooling not in choices.BERT_POOLINGS:
            raise ValueError(f"`pooling` must be one of {tuple(choices.BERT_POOLINGS)}, got {pooling!r}.")
        inputs = {
            name: keras.Input(shape=(None,), dtype="int32", name=name)
            for name in ("token_ids", "segment_ids", "padding_mask")
        }
        # The [CLS] pooler gets no gradient under mean or max pooling: freeze it, so the optimizer
        # neither warns nor decays it.
        backbone.get_layer("pooled_dense").trainable = pooling == "cls"
        outputs = backbone(inputs)
        if pooling == "cls":
            x = outputs["pooled_output"]  # (batch, hidden)
        else:
            x = MaskedGlobalPooling1D(pooling, name=f"{pooling}_pool")(
                outputs["sequence_output"], mask=inputs["padding_mask"]
            )  # (batch, hidden)
        logits = logits_head(x, num_classes, dropout)  # (batch, num_classes)
        config = dict(num_classes=num_classes, pooling=pooling, dropout=dropout)
        super().__init__(inputs, logits, config, preprocessor, **kwargs)
        self.backbone = backbone

    def get_config(self):
        return {**super().get_config(), "backbone": keras.saving.serialize_keras_object(self.backbone)}

    @classmethod
    def from_config(cls, config):
        config = dict(config, backbone=keras.saving.deserialize_keras_object(config["backbone"]))
        return super().from_config(config)


def random_backbone(vocabulary_size, num_layers, hidden_dim, num_heads, max_sequence_length, dtype=None):
    """A freshly initialised BERT (exact GELU), for tests and training from scratch.

    Args:
        vocabulary_size: int. WordPiece vocabulary size.
        num_layers: int. Transformer blocks.
        hidden_dim: int. Hidden size (a multiple of num_heads); the feed-forward is 4x.
        num_heads: int. Attention heads.
        max_sequence_length: int. Longest sequence.
        dtype: str or None. Dtype policy name.

    Returns:
        BertBackbone.
    """
    return BertBackbone(
        vocabulary_size=vocabulary_size,
        num_layers=num_layers,
        num_heads=num_heads,
        hidden_dim=hidden_dim,
        intermediate_dim=4 * hidden_dim,
        max_sequence_length=max_sequence_length,
        activation="gelu",
        dtype=dtype,
    )
