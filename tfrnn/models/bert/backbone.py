"""keras-hub's BertBackbone with the feed-forward activation its checkpoint was trained with.

keras-hub 0.32 builds every BERT with the tanh-approximated GELU. Hugging Face BERT configs
mostly say `hidden_act: "gelu"`, the exact (erf) GELU; on all-MiniLM-L6-v2 the approximation
moves sequence outputs by up to 3e-3. This subclass takes the activation as an argument and
keeps it in its config, so a saved model stays exact.
"""

import keras
import keras_hub

# Hugging Face `hidden_act` -> the Keras activation it computes.
HF_ACTIVATIONS = {
    "gelu": "gelu",
    "gelu_new": "gelu_approximate",
    "gelu_fast": "gelu_approximate",
    "gelu_pytorch_tanh": "gelu_approximate",
    "relu": "relu",
}


def gelu_approximate(x):
    """GELU with the tanh approximation (original BERT, keras-hub's default)."""
    return keras.activations.gelu(x, approximate=True)


def _activation(name):
    if name == "gelu_approximate":
        return gelu_approximate
    if name in ("gelu", "relu"):
        return keras.activations.get(name)  # keras' gelu is exact (erf) by default
    raise ValueError(f"`activation` must be gelu, gelu_approximate or relu, got {name!r}.")


@keras.saving.register_keras_serializable(package="tfrnn")
class BertBackbone(keras_hub.models.BertBackbone):
    """A BERT encoder whose feed-forward blocks use `activation`.

    Args:
        activation: str. "gelu" (exact, erf), "gelu_approximate" (tanh) or "relu".
        **kwargs: keras_hub.models.BertBackbone's arguments (vocabulary_size, num_layers,
            num_heads, hidden_dim, intermediate_dim, dropout, max_sequence_length, ...).

    Inputs: dict of int32 `(batch, time)` tensors token_ids, segment_ids, padding_mask (1 for
    real tokens). Outputs: dict with sequence_output `(batch, time, hidden_dim)` and
    pooled_output `(batch, hidden_dim)` (tanh dense over the [CLS] token).
    """

    def __init__(self, activation="gelu", **kwargs):
        super().__init__(**kwargs)
        function = _activation(activation)
        for block in self.transformer_layers:
            # The functional graph re-runs each block's call(), which reads the dense layer's
            # activation at call time, so swapping it after construction changes the model.
            block.activation = function
            block._feedforward_intermediate_dense.activation = function
        self.activation = activation

    def get_config(self):
        return {**super().get_config(), "activation": self.activation}
