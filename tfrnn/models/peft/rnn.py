"""LoRA for a recurrent classifier on a pretrained encoder (`tfrnn train --init-from`): the
embedding (Keras' `Embedding.enable_lora`) and the recurrent layers' `kernel` and
`recurrent_kernel` (`tfrnn.layers.lora`, the same semantics) take W + (alpha / rank) A B. As
with Keras' LoRA (and tfrnn's on BERT), a target layer's bias trains too; every other weight of
the encoder stays frozen, and the head trains.
"""

from tfrnn.errors import ConfigError
from tfrnn.layers.base import ProjectedRNN


def encoder_layers(model):
    """The pretrained encoder of an RNN classifier: its embedding and recurrent layers, in order.

    Args:
        model: tfrnn.models.RNNClassifier.

    Returns:
        dict layer name -> layer ("embedding", then "lstm_0" ... or "bidirectional_0" ...).
    """
    layers = {"embedding": model.get_layer("embedding")}
    for layer in model.layers:
        if _recurrent(layer):
            layers[layer.name] = layer
    return layers


def _recurrent(layer):
    inner = getattr(layer, "forward_layer", layer)  # keras.layers.Bidirectional wraps two
    return isinstance(inner, ProjectedRNN)


def _directions(layer):
    """A recurrent layer's tfrnn layers: itself, or a Bidirectional's two."""
    return [layer.forward_layer, layer.backward_layer] if hasattr(layer, "forward_layer") else [layer]


def apply(model, peft):
    """Enables LoRA on the target layers of the frozen encoder.

    Args:
        model: tfrnn.models.RNNClassifier. Built; its encoder frozen.
        peft: tfrnn.config.PeftConfig. rank, alpha, targets (layer names; None: all of them).

    Raises:
        ConfigError: a target that names no encoder layer, a rank larger than a layer allows.
    """
    layers = encoder_layers(model)
    targets = list(peft.targets) if peft.targets else list(layers)
    unknown = [name for name in targets if name not in layers]
    if unknown:
        raise ConfigError(
            f"model.peft.targets: {unknown[0]!r} is not a layer of the recurrent encoder (its layers: "
            f"{', '.join(layers)})",
            "model.peft.targets",
        )
    for name in targets:
        layer = layers[name]
        parts = _directions(layer) if name != "embedding" else [layer]
        largest = min(min(w.shape) for part in parts for w in _kernels(part))
        if peft.rank > largest:
            raise ConfigError(
                f"model.peft.rank={peft.rank}: larger than layer {name} allows ({largest})", "model.peft.rank"
            )
        layer.trainable = True  # first: enabling freezes the kernels, and the factors train
        for part in parts:
            part.enable_lora(peft.rank, lora_alpha=peft.alpha)


def _kernels(layer):
    if hasattr(layer, "cell"):
        return [getattr(layer.cell, name) for name in layer.cell.lora_targets]
    return [layer.embeddings]


def merge(model):
    """Folds every LoRA update into its kernel and turns LoRA off, in place: the encoder then
    computes the same outputs as plain layers (for exports)."""
    for name, layer in encoder_layers(model).items():
        if name == "embedding":
            if layer.lora_enabled:
                merged = layer.embeddings  # (vocab, dim), the update added
                layer.lora_enabled = False
                layer.lora_rank = None
                layer._embeddings.assign(merged)
            continue
        for part in _directions(layer):
            part.cell.merge_lora()
