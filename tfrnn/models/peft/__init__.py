"""Parameter-efficient fine-tuning (`model.peft`): which weights of a classifier train, and how.

`apply_peft` freezes the whole pretrained encoder, then the method adds its weights (and
unfreezes what it prescribes); the classification head always trains. The methods, one module
each (the names: `tfrnn.choices.PEFT_METHODS`):

- `lora` (Keras' `enable_lora`), `qlora` (LoRA over int8 weights, Keras' `quantize`), `dora`
  (a magnitude vector times LoRA's normalised direction), `ia3` (learned rescaling of keys,
  values and feed-forward activations) and `adalora` (SVD-form updates pruned to a rank budget):
  updates of the weights, folded into them by `merge_peft`, so an export costs nothing extra.
- `adapter` (bottleneck adapters), `prefix` (key/value prefixes; their reparametrising MLP is
  folded away by `merge_peft`) and `prompt` (soft tokens before the input): they stay in the graph.

A PEFT run keeps only its trained weights (`tfrnn.models.peft.checkpoint`), with a fingerprint
of the base encoder they belong to.
"""

import math

from tfrnn.models.peft import adalora, adapter, dora, ia3, lora, prefix, qlora, rnn
from tfrnn.models.peft.checkpoint import fingerprint, load_adapter, save_adapter

# model.peft.method -> (apply(backbone, peft), merge(backbone) or None: stays as it is), for BERT.
METHODS = {
    "lora": (lora.apply, lora.merge),
    "qlora": (qlora.apply, qlora.merge),
    "dora": (dora.apply, dora.merge),
    "adapter": (adapter.apply, None),
    "prefix": (prefix.apply_prefix, prefix.fold_prefix),
    "prompt": (prefix.apply_prompt, None),
    "ia3": (ia3.apply, ia3.merge),
    "adalora": (adalora.apply, adalora.merge),
}

# The same for a recurrent classifier on a pretrained encoder: (apply(model, peft), merge(model)).
RNN_METHODS = {"lora": (rnn.apply, rnn.merge)}

__all__ = [
    "METHODS",
    "RNN_METHODS",
    "apply_peft",
    "encoder_layers",
    "load_adapter",
    "merge_peft",
    "parameter_counts",
    "save_adapter",
]


def encoder_layers(model):
    """The pretrained encoder `apply_peft` freezes: a BERT classifier's backbone, or an RNN
    classifier's embedding and recurrent layers (`tfrnn.models.peft.rnn.encoder_layers`)."""
    backbone = getattr(model, "backbone", None)
    return [backbone] if backbone is not None else list(rnn.encoder_layers(model).values())


def _method(model, name):
    """(apply, merge) of method `name` and what they take: the backbone, or an RNN classifier."""
    backbone = getattr(model, "backbone", None)
    return (METHODS[name], backbone) if backbone is not None else (RNN_METHODS[name], model)


def apply_peft(model, peft):
    """Makes only `peft`'s weights and the head of `model` trainable (nothing when peft.method is None).

    Call it on a built, uncompiled model, under the strategy's scope (it creates variables). The
    model then knows its method (`peft_method`) and its base encoder's `peft_fingerprint`.

    Args:
        model: tfrnn.models.bert.BertClassifier (its `backbone` is the pretrained encoder), or a
            tfrnn.models.RNNClassifier built on a pretrained language model (LoRA only).
        peft: tfrnn.config.PeftConfig. The method and its settings.

    Raises:
        ConfigError: settings the encoder cannot take (a target that matches no layer, a rank
            larger than a layer).
    """
    if peft.method is None:
        return
    encoder = encoder_layers(model)
    model.peft_method = peft.method
    model.peft_fingerprint = fingerprint(encoder)
    (apply, _), target = _method(model, peft.method)
    # A backbone itself stays trainable (a layer that is not hides all its weights from training).
    frozen = encoder if target is model else target._flatten_layers(include_self=False)
    for layer in frozen:
        layer.trainable = False
    apply(target, peft)


def merge_peft(model):
    """Folds the method's weights into the encoder where it can (see the module docstring), in
    place: the same outputs from fewer weights and operations. For exports."""
    (_, merge), target = _method(model, model.peft_method)
    if merge is not None:
        merge(target)


def parameter_counts(model):
    """(trainable, total) numbers of parameters of `model`."""
    return sum(math.prod(v.shape) for v in model.trainable_weights), sum(math.prod(v.shape) for v in model.weights)
