"""Parameter-efficient fine-tuning (`model.peft`): which weights of a classifier train.

`lora` freezes the whole encoder and enables Keras' own LoRA (`EinsumDense.enable_lora`, as
keras-hub's `Backbone.enable_lora` does) on the target layers: the attention's query and value
by default (keras-hub's choice, and the LoRA paper's), every dense layer of the transformer
blocks with "all-linear", or the layers named. The classification head trains; the encoder's
kernels, LayerNorms, embeddings and pooler do not (the target layers' biases do, as in Keras).

Keras' `EinsumDense` factorises an attention projection's kernel `(hidden, heads, head_dim)` per
head: A `(hidden, heads, rank)`, B `(rank, head_dim)`, so `rank` is each head's rank and the
update's rank is up to heads x rank (all-MiniLM-L6-v2, rank 8: 2% of the weights train; rank 4: 1%).

A saved model stores each kernel with its update merged (Keras' LoRA layers save W + s A B in
W's place), so `model.keras`, and the SavedModel exported from it, are plain models that cost
nothing extra at serving time.
"""

import math

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


def _lora_capable(backbone):
    """{name: [layers]} of the encoder's layers that have weights and `enable_lora`."""
    found = {}
    for layer in backbone._flatten_layers(include_self=False):
        if layer.weights and hasattr(layer, "enable_lora"):
            found.setdefault(layer.name, []).append(layer)
    return found


def target_layers(backbone, targets=None):
    """The encoder's layers that take LoRA.

    Args:
        backbone: keras_hub BertBackbone. The encoder.
        targets: list of str or None. Layer names, or ["all-linear"]; None: query and value.

    Returns:
        list of keras layers.

    Raises:
        ConfigError: a name that matches no layer (the message lists those that exist).
    """
    capable = _lora_capable(backbone)
    names = BLOCK_LAYERS if tuple(targets or ()) == (ALL_LINEAR,) else tuple(targets or DEFAULT_TARGETS)
    unknown = [name for name in names if name not in capable]
    if unknown:
        raise ConfigError(
            f"model.peft.targets: no layer named {', '.join(map(repr, unknown))} "
            f"(the encoder's: {', '.join(sorted(capable))}, or {ALL_LINEAR!r})",
            "model.peft.targets",
        )
    return [layer for name in names for layer in capable[name]]


def apply_peft(model, peft):
    """Makes only `peft`'s weights and the head of `model` trainable (nothing when peft.method is None).

    Call it on a built, uncompiled model, under the strategy's scope (it creates variables).

    Args:
        model: tfrnn.models.bert.BertClassifier. Its `backbone` is the pretrained encoder.
        peft: tfrnn.config.PeftConfig. The method and its settings.

    Raises:
        ConfigError: a target that matches no layer, a rank larger than the encoder's width.
    """
    if peft.method is None:
        return
    backbone = model.backbone
    if peft.rank > backbone.hidden_dim:
        raise ConfigError(
            f"model.peft.rank={peft.rank}: larger than the encoder's hidden size {backbone.hidden_dim}",
            "model.peft.rank",
        )
    layers = target_layers(backbone, peft.targets)
    for layer in backbone._flatten_layers(include_self=False):
        layer.trainable = False
    for layer in layers:  # trainable first: setting it after would unfreeze the kernel again
        layer.trainable = True
        layer.enable_lora(peft.rank, lora_alpha=peft.alpha)


def parameter_counts(model):
    """(trainable, total) numbers of parameters of `model`."""
    return sum(math.prod(v.shape) for v in model.trainable_weights), sum(math.prod(v.shape) for v in model.weights)
