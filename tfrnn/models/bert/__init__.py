"""BERT-family encoders for classification, from keras-hub, faithful to their checkpoints.

Modules follow keras-hub's model-family layout: `backbone` (the encoder, with the
checkpoint's activation), `checkpoint` (reading a checkpoint's settings and weights) and
`classifier` (the task). The tokenizer and its `tf.data` pipeline live in `tfrnn.data.wordpiece`.
"""

from tfrnn.models.bert.backbone import BertBackbone
from tfrnn.models.bert.checkpoint import Checkpoint, read_checkpoint
from tfrnn.models.bert.classifier import BertClassifier

__all__ = ["BertBackbone", "BertClassifier", "Checkpoint", "read_checkpoint"]
