"""LoRA (Hu et al. 2021) with Keras' own `enable_lora`, as keras-hub's `Backbone.enable_lora` does.

The target layers (the attention's query and value by default) get W + (alpha / rank) A B with
B = 0 at the start, so the model is unchanged until it trains. Keras' `EinsumDense` factorises an
attention projection's kernel `(hidden, heads, head_dim)` per head: A `(hidden, heads, rank)`,
B `(rank, head_dim)`, so `rank` is each head's rank and the update's rank is up to heads x rank
(all-MiniLM-L6-v2, rank 8: 2% of the weights train; rank 4: 1%). The target layers' biases train
too, as in Keras.

Keras folds A B into the kernel, which leaves no room for the paper's dropout on the low-rank
branch. With `dropout` > 0 a target layer computes x W + (alpha / rank) dropout(x) A B instead
(`LoraDropout`, dropout while training only, as PEFT's `lora_dropout`); with the dropout off, the
two are the same function. QLoRA and DoRA build on the functions here.
"""

import keras
from keras import ops

from tfrnn.models.peft.base import RawVariables, adding_weights, checked_targets, restore_class, swap_class


class LoraDropout(RawVariables):
    """Mixin for a `Dense` or `EinsumDense` with LoRA enabled (`enable`) whose kernel's last axis
    is its output's last: drops the low-rank branch's input while training,
    x W + (alpha / rank) dropout(x) A B (then the bias and the activation)."""

    def call(self, inputs, training=None):
        outputs = self._lora_outputs(inputs, training)  # (batch, ..., fan_out...)
        if self.bias is not None:
            outputs = ops.add(outputs, self.bias)
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs

    def _lora_outputs(self, inputs, training):
        """x W + (alpha / rank) dropout(x) A B, before the bias."""
        dropped = inputs
        if training:
            dropped = keras.random.dropout(inputs, self.lora_dropout, seed=self.lora_seed_generator)
        low_rank = self._product(dropped, ops.cast(self.lora_kernel_a, self.compute_dtype))  # (batch, ..., rank)
        low_rank = ops.matmul(low_rank, ops.cast(self.lora_kernel_b, self.compute_dtype))  # (batch, ..., fan_out...)
        return ops.add(self._frozen_product(inputs), (self.lora_alpha / self.lora_rank) * low_rank)

    def _frozen_product(self, inputs):
        """x W with the frozen kernel."""
        return self._product(inputs, self._kernel)

    def _product(self, inputs, kernel):
        """The layer's contraction of `inputs` with a kernel-like tensor."""
        if isinstance(self, keras.layers.EinsumDense):
            return ops.einsum(self.equation, inputs, kernel)
        return ops.matmul(inputs, kernel)


def apply(backbone, peft):
    """Enables LoRA on the target layers of a frozen encoder.

    Args:
        backbone: keras_hub BertBackbone. Built; every layer frozen.
        peft: tfrnn.config.PeftConfig. rank, alpha, dropout, targets.

    Raises:
        ConfigError: a target that matches no layer, a rank larger than a target allows.
    """
    for layer in checked_targets(backbone, peft.targets, peft.rank):
        enable(layer, peft.rank, peft.alpha, peft.dropout)
        swap_class(layer, LoraDropout if peft.dropout else RawVariables)


def enable(layer, rank, alpha=None, dropout=0.0):
    """Keras' LoRA on one built dense layer: its kernel frozen, A, B and its bias trainable; with
    `dropout` > 0 also the layer's `lora_dropout` rate and `lora_seed_generator`. The caller
    swaps in the class that computes the layer (`RawVariables`, or `LoraDropout` with dropout).

    Args:
        layer: keras.layers.Dense or EinsumDense. Built.
        rank: int. The factors' rank.
        alpha: float or None. The update is scaled by alpha / rank (None: rank).
        dropout: float. Dropout rate on the low-rank branch's input.
    """
    layer.trainable = True  # first: setting it after would unfreeze the kernel again
    layer.enable_lora(rank, lora_alpha=alpha)
    if dropout:
        layer.lora_dropout = dropout
        with adding_weights(layer):
            layer.lora_seed_generator = keras.random.SeedGenerator()


def low_rank_update(layer):
    """(alpha / rank) A B of a layer with LoRA enabled, float32, shaped as its kernel."""
    return (layer.lora_alpha / layer.lora_rank) * ops.matmul(layer.lora_kernel_a, layer.lora_kernel_b)


def merge(backbone):
    """Folds every LoRA update into its kernel (W <- W + (alpha / rank) A B, in float32), turns
    LoRA off and gives the layers their own class back: the encoder computes the same outputs
    as plain dense layers.

    Args:
        backbone: keras_hub BertBackbone. With LoRA enabled by `apply`.
    """
    for layer in backbone._flatten_layers(include_self=False):
        if getattr(layer, "lora_enabled", False):
            merged = ops.add(layer._kernel, low_rank_update(layer))  # (fan_in..., fan_out...)
            layer.lora_enabled = False
            restore_class(layer)
            layer._kernel.assign(merged)
