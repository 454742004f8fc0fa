"""Masked-language-model pretraining of a BERT: keras-hub's BertMaskedLM over tfrnn's BertBackbone.

keras-hub's task gathers the encoder's outputs at the masked positions and scores them with its
`MaskedLMHead` (dense, GELU, layer norm, then the transposed token embedding: input and output
embeddings are one variable). The backbone is either fresh (`classifier.random_backbone`, from
scratch) or a checkpoint's (`read_checkpoint(handle).load_backbone()`, continued pretraining);
after pretraining, `model.backbone` is the encoder a `BertClassifier` is built on.

The masking runs in `tf.data` (`tfrnn.data.masked_lm`), so the model takes masked batches, never
raw text. Its text preprocessor is only kept, and saved, with it, as the classifiers keep theirs.
"""

import keras
import keras_hub


@keras.saving.register_keras_serializable(package="tfrnn")
class BertMaskedLM(keras_hub.models.BertMaskedLM):
    """keras-hub's BertMaskedLM that owns tfrnn's text preprocessor without running it.

    Args:
        backbone: tfrnn.models.bert.BertBackbone. The encoder (fresh or a checkpoint's); its
            [CLS] pooler is frozen, as the masked-LM loss does not reach it.
        preprocessor: tfrnn.data.wordpiece.BertPreprocessor or None. Raw text -> the unmasked
            inputs, over the backbone's vocabulary; saved with the model, not run by `fit`.
        **kwargs: passed to keras_hub.models.BertMaskedLM (name, compile: False by default, ...).

    Inputs: dict of int32 token_ids, segment_ids, padding_mask `(batch, time)` (token_ids
    already masked) and mask_positions `(batch, predictions)`. Output: logits over the
    vocabulary at the masked positions, `(batch, predictions, vocabulary_size)`.
    """

    def __init__(self, backbone, preprocessor=None, **kwargs):
        if preprocessor is not None:
            if preprocessor.vocabulary_size != backbone.vocabulary_size:
                raise ValueError(
                    f"The preprocessor's vocabulary has {preprocessor.vocabulary_size} tokens, the backbone's "
                    f"{backbone.vocabulary_size}."
                )
            if preprocessor.max_len > backbone.max_sequence_length:
                raise ValueError(
                    f"The preprocessor's max_len {preprocessor.max_len} exceeds the backbone's "
                    f"max_sequence_length {backbone.max_sequence_length}."
                )
            # It runs in tf.data, never in the model's steps: its string ops must not turn
            # `jit_compile` off for the whole model (as in tfrnn.models.base.Classifier).
            for layer in preprocessor._flatten_layers():
                layer.supports_jit = True
        # The [CLS] pooler gets no gradient from the masked-LM loss: freeze it, so the optimizer
        # neither warns nor decays it (a BertClassifier built on the backbone sets it again).
        backbone.get_layer("pooled_dense").trainable = False
        kwargs.setdefault("compile", False)  # `compile_masked_lm`, not keras-hub's defaults
        super().__init__(backbone, preprocessor=preprocessor, **kwargs)

    def compile_from_config(self, config):
        """Compiles as saved: keras-hub's tasks override `compile`, so Keras' own method skips it."""
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)  # before load_model restores its variables

    def preprocess_samples(self, x, y=None, sample_weight=None):
        """The batches as they come: they are preprocessed and masked in `tf.data` already."""
        return keras.utils.pack_x_y_sample_weight(x, y, sample_weight)


def compile_masked_lm(model, optimizer, **kwargs):
    """Compiles a masked LM: cross-entropy averaged over the masked positions only.

    The batches' sample weights are the mask weights (1 for a masked position, 0 for the
    padding of `mask_positions` and for filler rows), so the loss of a batch is its mean
    cross-entropy over its masked tokens (`mean_with_sample_weight`), and the weighted metrics
    count masked tokens only: `accuracy` is the masked-LM accuracy and `perplexity`
    (keras_hub.metrics.Perplexity) the exponential of the mean cross-entropy over every masked
    token of the epoch.

    Args:
        model: BertMaskedLM (or any model giving logits at the masked positions).
        optimizer: keras.optimizers.Optimizer or str.
        **kwargs: passed to `model.compile` (jit_compile, steps_per_execution, ...).
    """
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="mean_with_sample_weight"),
        weighted_metrics=[
            keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
            keras_hub.metrics.Perplexity(from_logits=True, name="perplexity"),
        ],
        **kwargs,
    )
