"""The classifiers' loss: cross-entropy over logits and integer labels, with label smoothing."""

import keras


@keras.saving.register_keras_serializable(package="tfrnn")
class SparseCrossentropy(keras.losses.Loss):
    """Cross-entropy of integer labels against logits, the targets smoothed: each label's
    one-hot target becomes `(1 - label_smoothing) * one_hot + label_smoothing / classes`
    (Szegedy et al. 2016). Keras' SparseCategoricalCrossentropy has no smoothing; its dense
    twin has, so the labels are one-hot encoded first. Without smoothing it is Keras' sparse loss.

    Args:
        label_smoothing: float. In [0, 1).
        reduction: str. Keras' reduction ("mean_with_sample_weight": filler rows of weight 0
            count nowhere).
        name: str. The loss's name.
    """

    def __init__(self, label_smoothing=0.0, reduction="mean_with_sample_weight", name="sparse_crossentropy"):
        super().__init__(name=name, reduction=reduction)
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        # y_true: (batch,) int label ids; y_pred: (batch, classes) logits
        if not self.label_smoothing:
            return keras.losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits=True)
        targets = keras.ops.one_hot(keras.ops.cast(y_true, "int32"), keras.ops.shape(y_pred)[-1])
        return keras.losses.categorical_crossentropy(
            targets, y_pred, from_logits=True, label_smoothing=self.label_smoothing
        )  # (batch,)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}
