"""(IA)3 (Liu et al. 2022): learned vectors rescale the attention's keys and values and the
feed-forward's intermediate activations, in every block.

l_k and l_v multiply the key and value projections' outputs, bias included, `(heads, head_dim)`;
l_ff multiplies the input of the feed-forward output projection (the activations after the
GELU), `(intermediate,)`. They are the only weights that train (besides the head), named
`ia3_scale`, and start at ones: the model is exactly unchanged at the start. The targets are
fixed; (IA)3 reads no settings. `merge` scales the kernels (and the key and value biases) by them.
"""

from keras import ops

from tfrnn.models.peft.base import RawVariables, adding_weights, kernel_split, restore_class, swap_class, target_layers

SCALED_OUTPUTS = ("key", "value")
SCALED_INPUTS = ("feedforward_output_dense",)


class ScaledOutputs(RawVariables):
    """Mixin for a `Dense` or `EinsumDense` without activation whose kernel's fan-out axes are its
    output's last: its outputs, bias included, times `ia3_scale`."""

    def call(self, inputs, training=None):
        outputs = super().call(inputs, training=training)  # (batch, time, heads, head_dim)
        return ops.multiply(outputs, ops.cast(self.ia3_scale, self.compute_dtype))


class ScaledInputs(RawVariables):
    """Mixin for a `Dense` or `EinsumDense` whose input's last axes are its kernel's fan-in axes:
    its inputs times `ia3_scale`."""

    def call(self, inputs, training=None):
        scaled = ops.multiply(inputs, ops.cast(self.ia3_scale, self.compute_dtype))  # (batch, time, intermediate)
        return super().call(scaled, training=training)


def apply(backbone, peft):
    """Gives every block's key and value projections and feed-forward output projection their
    learned scale; the encoder's own weights stay frozen.

    Args:
        backbone: keras_hub BertBackbone. Built; every layer frozen.
        peft: tfrnn.config.PeftConfig. Not read: (IA)3 has no settings.
    """
    for layer in target_layers(backbone, SCALED_OUTPUTS):
        scale_outputs(layer)
    for layer in target_layers(backbone, SCALED_INPUTS):
        scale_inputs(layer)


def scale_outputs(layer):
    """Rescales a built dense layer's outputs by a trained `ia3_scale` (fan_out...), ones at first.

    Args:
        layer: keras.layers.Dense or EinsumDense. Built, without activation; its output's last
            axes are its fan-out axes.
    """
    _add_scale(layer, kernel_split(layer)[1])
    swap_class(layer, ScaledOutputs)


def scale_inputs(layer):
    """Rescales a built dense layer's inputs by a trained `ia3_scale` (fan_in...), ones at first.

    Args:
        layer: keras.layers.Dense or EinsumDense. Built; its input's last axes are its fan-in axes.
    """
    _add_scale(layer, kernel_split(layer)[0])
    swap_class(layer, ScaledInputs)


def _add_scale(layer, shape):
    """Adds `ia3_scale` (ones, `shape`) to a layer, the only weight of it that trains."""
    layer.trainable = True  # so that the scale trains; the layer's own weights are refrozen
    for variable in layer.weights:
        variable.trainable = False
    with adding_weights(layer):
        layer.ia3_scale = layer.add_weight(name="ia3_scale", shape=shape, initializer="ones")


def merge(backbone):
    """Folds each `ia3_scale` into its layer and gives the layer its own class back: a scaled
    output multiplies the kernel over its fan-out axes and the bias; a scaled input multiplies
    the kernel's rows.

    Args:
        backbone: keras_hub BertBackbone. After `apply`.
    """
    for layer in backbone._flatten_layers(include_self=False):
        if isinstance(layer, ScaledOutputs):  # the scale's axes are the kernel's and the bias's last
            layer._kernel.assign(ops.multiply(layer._kernel, layer.ia3_scale))  # (fan_in..., fan_out...)
            if layer.bias is not None:
                layer.bias.assign(ops.multiply(layer.bias, layer.ia3_scale))
            restore_class(layer)
        elif isinstance(layer, ScaledInputs):
            fan_in, fan_out = kernel_split(layer)
            rows = ops.reshape(layer.ia3_scale, fan_in + (1,) * len(fan_out))  # (fan_in..., 1...)
            layer._kernel.assign(ops.multiply(layer._kernel, rows))
            restore_class(layer)
