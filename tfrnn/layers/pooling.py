"""Masked pooling over time that is safe on fully padded rows.

keras' GlobalMaxPooling1D ignores the mask, and its GlobalAveragePooling1D divides by zero
(NaN) on a row whose every step is masked, which an empty text at serving time produces.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tfrnn")
class MaskedGlobalPooling1D(keras.layers.Layer):
    """Mean or max over the unmasked time steps; a fully masked row pools to zeros.

    Args:
        mode: str. "mean" or "max".
        **kwargs: passed to `keras.layers.Layer`.
    """

    def __init__(self, mode="max", **kwargs):
        if mode not in ("mean", "max"):
            raise ValueError(f"`mode` must be 'mean' or 'max', got {mode!r}.")
        super().__init__(**kwargs)
        self.mode = mode
        self.supports_masking = True

    def call(self, inputs, mask=None):
        # inputs: (batch, time, features); mask: (batch, time) or None
        if mask is None:
            mask = ops.ones(ops.shape(inputs)[:2], dtype="bool")
        keep = ops.expand_dims(ops.cast(mask, "bool"), -1)  # (batch, time, 1)
        if self.mode == "max":
            pooled = ops.max(ops.where(keep, inputs, float("-inf")), axis=1)  # (batch, features)
        else:
            total = ops.sum(ops.where(keep, inputs, 0.0), axis=1)  # (batch, features)
            count = ops.sum(ops.cast(keep, inputs.dtype), axis=1)  # (batch, 1)
            pooled = total / ops.maximum(count, 1.0)
        any_step = ops.any(keep, axis=1)  # (batch, 1)
        return ops.where(any_step, pooled, ops.zeros_like(pooled))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}
