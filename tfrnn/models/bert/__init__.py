"""BERT-family encoders for classification, from keras-hub, faithful to their checkpoints.

Modules follow keras-hub's model-family layout: `backbone` (the encoder, with the
checkpoint's activation), `checkpoint` (reading a checkpoint's settings and weights) and
`classifier` (the task) and `masked_lm` (masked-language-model pretraining). The tokenizer and its `tf.data` pipeline live in `tfrnn.data.wordpiece`.
"""

from tfrnn.models.bert.backbone import BertBackbone
from tfrnn.models.bert.checkpoint import Checkpoint, read_checkpoint
from tfrnn.models.bert.classifier import BertClassifier
from tfrnn.models.bert.masked_lm import BertMaskedLM, compile_masked_lm

__all__ = ["BertBackbone", "BertClassifier", "BertMaskedLM", "Checkpoint", "compile_masked_lm", "read_checkpoint"]
