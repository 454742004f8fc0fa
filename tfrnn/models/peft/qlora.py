"""QLoRA (Dettmers et al. 2023): LoRA over a quantized frozen encoder, with Keras' own `quantize`
and `enable_lora`, as keras-hub's QLoRA recipe (`backbone.quantize("int8")`, then LoRA).

Every dense layer of the encoder (the blocks' and the [CLS] pooler's) is quantized to int8, one
scale per output unit (Keras' abs-max over the fan-in axes), weight-only: the layer computes
(x W_q) / scale in the compute dtype, as QLoRA computes with dequantized weights; Keras' default
would quantize the activations too. The model at the start is the quantized one, not the float
one it was built from. Then the target layers get LoRA (`tfrnn.models.peft.lora`), whose factors
and the targets' biases train in float32; the int8 kernels and their scales stay as they are.

The embeddings stay float, as in QLoRA, which quantizes the linear layers: a classifier only
gathers rows of them, so int8 would save memory but no compute, and would add its rounding to
every input vector.

`merge` cannot fold A B into an int8 kernel without rounding it again (~1e-3). It dequantizes
each target's kernel as Keras computes it, adds the update and stores a float32 kernel: the
target becomes a plain float layer. The other layers stay int8, computed as in training. So the
merged encoder (and its export) gives the trained model's outputs to float round-off (1e-6).
"""

import contextlib
import gc

import keras
from keras import ops

from tfrnn.errors import ConfigError
from tfrnn.models.peft import lora
from tfrnn.models.peft.base import (
    BLOCK_LAYERS,
    RawVariables,
    adding_weights,
    checked_targets,
    kernel_split,
    restore_class,
    swap_class,
    target_layers,
)

QUANTIZED = (*BLOCK_LAYERS, "pooled_dense")  # the encoder's dense layers


class QuantizedLoraDropout(lora.LoraDropout):
    """Mixin for an int8 (weight-only) `Dense` or `EinsumDense` with LoRA enabled: `LoraDropout`
    over the int8 kernel."""

    def _int8_call(self, inputs, training=None):
        return self.call(inputs, training=training)

    def _frozen_product(self, inputs):
        """(x W_q) / scale, as Keras' weight-only `_int8_call` computes it."""
        outputs = ops.cast(self._product(inputs, self._kernel), self.compute_dtype)  # (batch, ..., fan_out...)
        return ops.divide(outputs, ops.cast(self.kernel_scale, self.compute_dtype))


def apply(backbone, peft):
    """Quantizes the frozen encoder's dense layers to int8, then enables LoRA on its targets.

    Args:
        backbone: keras_hub BertBackbone. Built; every layer frozen; float weights.
        peft: tfrnn.config.PeftConfig. rank, alpha, dropout, targets.

    Raises:
        ConfigError: a target that matches no layer, a rank larger than a target allows, float16
            compute (Keras' int8 layers refuse it).
    """
    if backbone.compute_dtype == "float16":
        raise ConfigError(
            "model.peft.method=qlora: Keras' int8 layers do not compute in float16 "
            "(train.precision=mixed_float16); use mixed_bfloat16 or float32",
            "train.precision",
        )
    targets = checked_targets(backbone, peft.targets, peft.rank)
    config = keras.quantizers.Int8QuantizationConfig(activation_quantizer=None)  # weight-only
    with _cheap_collections():
        for layer in target_layers(backbone, QUANTIZED):
            layer.quantize("int8", config=config)  # before the class swap: Keras quantizes its own classes only
            swap_class(layer, RawVariables)
    for layer in targets:
        lora.enable(layer, peft.rank, peft.alpha, peft.dropout)
        if peft.dropout:
            swap_class(layer, QuantizedLoraDropout)


def merge(backbone):
    """Folds each target's LoRA update into its dequantized kernel, W_q / scale + (alpha / rank)
    A B, stored as a float32 kernel: the target becomes a plain float layer (its int8 kernel and
    scale dropped). The layers without LoRA stay int8.

    Args:
        backbone: keras_hub BertBackbone. After `apply`.
    """
    with _cheap_collections():
        for layer in backbone._flatten_layers(include_self=False):
            if getattr(layer, "lora_enabled", False):
                merged = ops.add(dequantized_kernel(layer), lora.low_rank_update(layer))  # (fan_in..., fan_out...)
                layer.lora_enabled = False
                restore_class(layer)
                _float_kernel(layer, merged)


def dequantized_kernel(layer):
    """W_q / scale of an int8 layer, float32, shaped as its kernel (Keras' scale: one per output
    unit, shaped to broadcast against the outputs)."""
    fan_in, fan_out = kernel_split(layer)
    scale = ops.reshape(layer.kernel_scale, (1,) * len(fan_in) + fan_out)
    return ops.divide(ops.cast(layer._kernel, "float32"), scale)


def _float_kernel(layer, kernel):
    """Replaces an int8 layer's kernel and scale by a float `kernel` (not trainable) and its
    dtype policy by the float one it was quantized from."""
    with adding_weights(layer):
        del layer._kernel
        del layer.kernel_scale
        layer._kernel = layer.add_weight(
            name="kernel", shape=kernel.shape, initializer="zeros", dtype=layer.variable_dtype, trainable=False
        )
    layer._kernel.assign(kernel)
    layer.dtype_policy = layer.dtype_policy.get_config()["source_name"]
    layer.quantization_config = None
    layer._is_quantized = False


@contextlib.contextmanager
def _cheap_collections():
    """Keras runs gc.collect() whenever a layer's variable is deleted (`quantize` deletes the float
    kernel): 0.3 s each once TensorFlow is loaded. With the objects that exist frozen
    (`gc.freeze`), those collections skip them; the next collection after it frees what they
    would have freed."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
