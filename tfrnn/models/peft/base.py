"""What the PEFT methods share: finding the encoder's target layers, giving a built layer new
behaviour and new weights, and saving its variables as they are.

A method changes a layer of the pretrained encoder in place. Where Keras has the method
(`enable_lora`, `quantize`), it is called. Where it has not, the layer's class is swapped for a
subclass that adds the method to it (`swap_class`): the encoder's functional graph calls its
layers again at every call, so the new `call` (or `kernel`) takes over, with no rebuilt model
and no copied weight. `restore_class` undoes the swap once a method is folded into the weights.

keras-hub's BERT block (`TransformerEncoder`) names its sublayers: the attention
(`_self_attention_layer`, with `_query_dense`, `_key_dense`, `_value_dense`, `_output_dense`,
named query, key, value, attention_output), `_feedforward_intermediate_dense` and
`_feedforward_output_dense`; `backbone.transformer_layers` lists the blocks.
"""

import contextlib

import keras

from tfrnn.errors import ConfigError

DEFAULT_TARGETS = ("query", "value")
ALL_LINEAR = "all-linear"
# The dense layers of keras-hub's transformer blocks ("all-linear").
BLOCK_LAYERS = (
    "query",
    "key",
    "value",
    "attention_output",
    "feedforward_intermediate_dense",
    "feedforward_output_dense",
)


def _weighted_layers(backbone):
    """{name: [layers]} of the encoder's dense layers (those with a kernel)."""
    found = {}
    for layer in backbone._flatten_layers(include_self=False):
        if isinstance(layer, (keras.layers.Dense, keras.layers.EinsumDense)):
            found.setdefault(layer.name, []).append(layer)
    return found


def target_layers(backbone, targets=None):
    """The encoder's dense layers named by `targets`, block by block.

    Args:
        backbone: keras_hub BertBackbone. The encoder.
        targets: list of str or None. Layer names, or ["all-linear"] (every dense layer of the
            blocks); None: the attention's query and value.

    Returns:
        list of keras layers (`Dense` or `EinsumDense`, built).

    Raises:
        ConfigError: a name that matches no layer (the message lists those that exist).
    """
    found = _weighted_layers(backbone)
    names = BLOCK_LAYERS if tuple(targets or ()) == (ALL_LINEAR,) else tuple(targets or DEFAULT_TARGETS)
    unknown = [name for name in names if name not in found]
    if unknown:
        raise ConfigError(
            f"model.peft.targets: no layer named {', '.join(map(repr, unknown))} "
            f"(the encoder's: {', '.join(sorted(found))}, or {ALL_LINEAR!r})",
            "model.peft.targets",
        )
    return [layer for name in names for layer in found[name]]


def checked_targets(backbone, targets, rank, key="model.peft.rank"):
    """`target_layers`, once `rank` is checked against each of them (`check_rank`).

    Raises:
        ConfigError: a name that matches no layer, a rank larger than a layer allows.
    """
    layers = target_layers(backbone, targets)
    for layer in layers:
        check_rank(rank, layer, key)
    return layers


def kernel_split(layer):
    """How a dense layer's kernel splits into inputs and outputs.

    `Dense` kernels are `(in, out)`. keras-hub's `EinsumDense` kernels put the input axes first
    too: query/key/value `(hidden, heads, head_dim)`, attention_output `(heads, head_dim,
    hidden)`. The input axes are the kernel's subscripts that the layer's input also has.

    Args:
        layer: keras.layers.Dense or EinsumDense. Built.

    Returns:
        (fan_in_shape, fan_out_shape): tuples of ints whose concatenation is the kernel's shape.
    """
    shape = tuple(layer._kernel.shape)
    if isinstance(layer, keras.layers.Dense):
        return shape[:1], shape[1:]
    operands, _ = layer.equation.split("->")
    inputs, kernel = operands.split(",")
    fan_in = sum(1 for letter in kernel if letter in inputs)
    if any(letter in inputs for letter in kernel[fan_in:]) or not fan_in:
        raise ValueError(f"{layer.name}: kernel subscripts {kernel!r} do not put the input axes first")
    return shape[:fan_in], shape[fan_in:]


class RawVariables:
    """Mixin: a layer saves and loads its own variables as they are, one per entry, in order
    (keras.layers.Layer's way). Keras' LoRA layers save W + s A B in W's place and zero A and B
    on loading: a backup taken during training would then resume with a changed base and lost
    factors, and a PEFT run must keep its base bit-identical."""

    def save_own_variables(self, store):
        keras.layers.Layer.save_own_variables(self, store)

    def load_own_variables(self, store):
        keras.layers.Layer.load_own_variables(self, store)


_SWAPPED = {}


def swap_class(layer, mixin):
    """Makes `layer` an instance of `mixin` + its own class (one subclass per pair, cached).

    Args:
        layer: keras.layers.Layer. Built.
        mixin: type. A class whose methods come before the layer's own (`RawVariables`,
            a method's `call` or `kernel`).
    """
    base = type(layer)
    key = (mixin, base)
    if key not in _SWAPPED:
        _SWAPPED[key] = type(f"{mixin.__name__}{base.__name__}", (mixin, base), {"_peft_base_class": base})
    layer.__class__ = _SWAPPED[key]


def restore_class(layer):
    """Undoes `swap_class` (every swap, innermost last)."""
    while "_peft_base_class" in vars(type(layer)):
        layer.__class__ = type(layer)._peft_base_class


@contextlib.contextmanager
def adding_weights(layer):
    """Lets a built layer create weights (Keras locks its tracker once a layer is built)."""
    layer._tracker.unlock()
    try:
        yield
    finally:
        layer._tracker.lock()


def check_rank(rank, layer, key="model.peft.rank"):
    """Refuses a rank larger than the layer's smaller side (its kernel as a matrix).

    Raises:
        ConfigError: naming the layer and its sizes.
    """
    fan_in, fan_out = kernel_split(layer)
    limit = min(_product(fan_in), _product(fan_out))
    if rank > limit:
        raise ConfigError(
            f"{key}={rank}: larger than layer {layer.name!r} allows ({_product(fan_in)} inputs, "
            f"{_product(fan_out)} outputs)",
            key,
        )


def _product(shape):
    result = 1
    for size in shape:
        result *= size
    return result
