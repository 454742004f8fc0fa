"""Masked pooling over time that is safe on fully padded rows.

keras' GlobalMaxPooling1D ignores the mask, and its GlobalAveragePooling1D divides by zero
(NaN) on a row whose every step is masked, which an empty text at serving time produces.
"""

import keras
from keras import ops

MODES = ("mean", "max", "concat")


@keras.saving.register_keras_serializable(package="tfrnn")
class MaskedGlobalPooling1D(keras.layers.Layer):
    """Mean, max or concat pooling over the unmasked time steps; a fully masked row pools to zeros.

    "concat" is ULMFiT's concat pooling (Howard & Ruder 2018): the output at the last unmasked
    step (the last True of the mask, wherever the padding is), the max and the mean, side by
    side: (batch, time, d) -> (batch, 3 d).

    Args:
        mode: str. "mean", "max" or "concat".
        **kwargs: passed to `keras.layers.Layer`.
    """

    def __init__(self, mode="max", **kwargs):
        if mode not in MODES:
            raise ValueError(f"`mode` must be 'mean', 'max' or 'concat', got {mode!r}.")
        super().__init__(**kwargs)
        self.mode = mode
        self.supports_masking = True

    def call(self, inputs, mask=None):
        # inputs: (batch, time, features); mask: (batch, time) or None
        if mask is None:
            mask = ops.ones(ops.shape(inputs)[:2], dtype="bool")
        keep = ops.expand_dims(ops.cast(mask, "bool"), -1)  # (batch, time, 1)
        if self.mode == "concat":
            pooled = ops.concatenate([_last(inputs, keep), _max(inputs, keep), _mean(inputs, keep)], axis=-1)
        else:
            pooled = (_max if self.mode == "max" else _mean)(inputs, keep)  # (batch, features)
        any_step = ops.any(keep, axis=1)  # (batch, 1)
        return ops.where(any_step, pooled, ops.zeros_like(pooled))

    def compute_output_shape(self, input_shape):
        features = input_shape[2]
        if self.mode == "concat" and features is not None:
            features *= 3
        return (input_shape[0], features)

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


def _max(inputs, keep):
    return ops.max(ops.where(keep, inputs, float("-inf")), axis=1)  # (batch, features)


def _mean(inputs, keep):
    total = ops.sum(ops.where(keep, inputs, 0.0), axis=1)  # (batch, features)
    count = ops.sum(ops.cast(keep, inputs.dtype), axis=1)  # (batch, 1)
    return total / ops.maximum(count, 1.0)


def _last(inputs, keep):
    """The output at each row's last unmasked step (selected with `where`, so exactly that value)."""
    steps = ops.arange(ops.shape(inputs)[1], dtype="int32")[None, :, None]  # (1, time, 1)
    last = ops.max(ops.where(keep, steps, -1), axis=1, keepdims=True)  # (batch, 1, 1); -1: fully masked
    return ops.sum(ops.where(steps == last, inputs, 0.0), axis=1)  # (batch, features)
