"""DoRA (Liu et al. 2024): weight-decomposed LoRA. A target layer's kernel becomes

    W' = m * V / ||V||_c,   V = W + (alpha / rank) A B,

with A, B Keras' LoRA factors (`tfrnn.models.peft.lora`) and m a trained magnitude per output
unit (`dora_magnitude`, shaped as the kernel's fan-out axes), initialised to ||W||_c: the norm
over the fan-in axes, one per output unit. With B = 0 at the start, W' = W. The norm stays in the
gradient (exact gradients; the paper detaches it to save memory); it is computed in float32.

With `dropout` > 0 the layer computes (m / ||V||_c) (x W + (alpha / rank) dropout(x) A B), as
PEFT's DoRA: the same function with the dropout off. `merge` folds W' into the kernel.
"""

from keras import ops

from tfrnn.models.peft import lora
from tfrnn.models.peft.base import (
    RawVariables,
    adding_weights,
    checked_targets,
    kernel_split,
    restore_class,
    swap_class,
)


class Dora(RawVariables):
    """Mixin for a `Dense` or `EinsumDense` with LoRA enabled and a `dora_magnitude`: its kernel
    is m * V / ||V||_c."""

    @property
    def kernel(self):
        direction = self._direction()  # (fan_in..., fan_out...)
        return ops.multiply(direction, self._magnitude_over_norm(direction))

    def _direction(self):
        """V = W + (alpha / rank) A B (Keras' LoRA kernel), in the compute dtype."""
        return super().kernel

    def _magnitude_over_norm(self, direction):
        """m / ||V||_c, (fan_out...), in the compute dtype."""
        return ops.cast(ops.divide(self.dora_magnitude, column_norm(self, direction)), self.compute_dtype)


class DoraDropout(Dora, lora.LoraDropout):
    """Mixin: `Dora` with LoRA's dropout, (m / ||V||_c) (x W + (alpha / rank) dropout(x) A B)."""

    def _lora_outputs(self, inputs, training):
        outputs = super()._lora_outputs(inputs, training)  # (batch, ..., fan_out...)
        return ops.multiply(outputs, self._magnitude_over_norm(self._direction()))


def apply(backbone, peft):
    """Enables DoRA on the target layers of a frozen encoder: A, B, m and the targets' biases train.

    Args:
        backbone: keras_hub BertBackbone. Built; every layer frozen.
        peft: tfrnn.config.PeftConfig. rank, alpha, dropout, targets.

    Raises:
        ConfigError: a target that matches no layer, a rank larger than a target allows.
    """
    for layer in checked_targets(backbone, peft.targets, peft.rank):
        enable(layer, peft.rank, peft.alpha, peft.dropout)


def enable(layer, rank, alpha=None, dropout=0.0):
    """DoRA on one built dense layer: LoRA (`lora.enable`), then m = ||W||_c (`dora_magnitude`).

    Args:
        layer: keras.layers.Dense or EinsumDense. Built; its kernel's fan-out axes are its
            output's last axes.
        rank: int. The factors' rank.
        alpha: float or None. The update is scaled by alpha / rank (None: rank).
        dropout: float. Dropout rate on the low-rank branch's input.
    """
    lora.enable(layer, rank, alpha, dropout)
    with adding_weights(layer):  # read in float32 within the layer's call too (no autocast)
        layer.dora_magnitude = layer.add_weight(
            name="dora_magnitude", shape=kernel_split(layer)[1], initializer="ones", autocast=False
        )
    layer.dora_magnitude.assign(column_norm(layer, layer._kernel))
    swap_class(layer, DoraDropout if dropout else Dora)


def column_norm(layer, kernel):
    """||kernel||_c: the norm over a layer's fan-in axes, one per output unit, in float32.

    Args:
        layer: keras.layers.Dense or EinsumDense. Built.
        kernel: tensor shaped as the layer's kernel, (fan_in..., fan_out...).

    Returns:
        float32 tensor, (fan_out...).
    """
    fan_in, _ = kernel_split(layer)
    return ops.sqrt(ops.sum(ops.square(ops.cast(kernel, "float32")), axis=tuple(range(len(fan_in)))))


def merge(backbone):
    """Folds W' = m * V / ||V||_c (float32) into each DoRA kernel, turns LoRA off and gives the
    layers their own class back.

    Args:
        backbone: keras_hub BertBackbone. After `apply`.
    """
    for layer in backbone._flatten_layers(include_self=False):
        if isinstance(layer, Dora):
            direction = ops.add(layer._kernel, lora.low_rank_update(layer))  # (fan_in..., fan_out...)
            merged = ops.multiply(direction, ops.divide(layer.dora_magnitude, column_norm(layer, direction)))
            layer.lora_enabled = False
            restore_class(layer)
            layer._kernel.assign(merged)
