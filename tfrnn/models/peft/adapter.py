"""Bottleneck adapters (Houlsby et al. 2019): a small residual MLP after each block's attention
output projection and after its feed-forward output projection.

Each adapter maps the projection's output y to y + up(act(down(y))), with down `(hidden,
bottleneck)` and up `(bottleneck, hidden)` plus biases, before the block's dropout and residual
add (Houlsby's code applies it after the dropout; at inference, with no dropout, the two agree).
The up kernel starts at zero, so the model is exactly unchanged until it trains (Houlsby drew
both kernels from a near-zero truncated normal: nearly unchanged); down starts as a truncated
normal with std 1e-2. As in Houlsby, the blocks' LayerNorms train too (their gamma and beta);
the embeddings' LayerNorm stays frozen. The adapters stay in the graph: nothing to merge.
"""

import keras
from keras import ops

from tfrnn.errors import ConfigError
from tfrnn.models.peft.base import RawVariables, adding_weights, swap_class


class Adapter(RawVariables):
    """Mixin for a built `Dense` or `EinsumDense` whose output has the hidden size last: adds
    the bottleneck adapter that `add_adapter` created to its output."""

    def call(self, inputs, training=None):
        """The layer's output y plus up(act(down(y)))."""
        y = super().call(inputs, training=training)  # (batch, time, hidden)
        dtype = y.dtype
        h = ops.matmul(y, ops.cast(self.adapter_down_kernel, dtype)) + ops.cast(self.adapter_down_bias, dtype)
        h = self.adapter_activation(h)  # (batch, time, bottleneck)
        return y + ops.matmul(h, ops.cast(self.adapter_up_kernel, dtype)) + ops.cast(self.adapter_up_bias, dtype)


def add_adapter(layer, bottleneck, activation):
    """Gives a dense layer an adapter on its output; its own weights stay as they are, frozen.

    Args:
        layer: keras.layers.Dense or EinsumDense. Built; its kernel's last axis is its output's
            (Dense `(in, hidden)`, attention_output `(heads, head_dim, hidden)`).
        bottleneck: int. The adapter's width.
        activation: callable. Between down and up.
    """
    hidden = layer._kernel.shape[-1]
    layer.trainable = True  # so that the adapter trains; the layer's own weights are refrozen
    for variable in layer.weights:
        variable.trainable = False
    swap_class(layer, Adapter)
    layer.adapter_activation = activation
    with adding_weights(layer):
        layer.adapter_down_kernel = layer.add_weight(
            shape=(hidden, bottleneck),
            initializer=keras.initializers.TruncatedNormal(stddev=1e-2),
            name="adapter_down_kernel",
        )
        layer.adapter_down_bias = layer.add_weight(shape=(bottleneck,), initializer="zeros", name="adapter_down_bias")
        layer.adapter_up_kernel = layer.add_weight(
            shape=(bottleneck, hidden), initializer="zeros", name="adapter_up_kernel"
        )
        layer.adapter_up_bias = layer.add_weight(shape=(hidden,), initializer="zeros", name="adapter_up_bias")


def _adapted_layers(block):
    """The projections of a keras-hub TransformerEncoder block that take an adapter."""
    return [block._self_attention_layer._output_dense, block._feedforward_output_dense]


def _activation(name):
    try:
        return keras.activations.get(name)
    except ValueError:
        raise ConfigError(f"model.peft.activation={name!r}: not a Keras activation", "model.peft.activation") from None


def apply(backbone, peft):
    """Adds adapters to every block of a frozen encoder and unfreezes the blocks' LayerNorms.

    Args:
        backbone: keras_hub BertBackbone. Built; every layer frozen.
        peft: tfrnn.config.PeftConfig. bottleneck, activation.

    Raises:
        ConfigError: a bottleneck larger than the hidden size, an unknown activation.
    """
    if peft.bottleneck > backbone.hidden_dim:
        raise ConfigError(
            f"model.peft.bottleneck={peft.bottleneck}: larger than the encoder's hidden size {backbone.hidden_dim}",
            "model.peft.bottleneck",
        )
    activation = _activation(peft.activation)
    for block in backbone.transformer_layers:
        block._self_attention_layer_norm.trainable = True
        block._feedforward_layer_norm.trainable = True
        for layer in _adapted_layers(block):
            add_adapter(layer, peft.bottleneck, activation)
