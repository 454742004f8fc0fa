"""Prefix tuning (Li & Liang 2021) and prompt tuning (Lester et al. 2021): learned positions that
the encoder's tokens attend to.

`prefix`: every attention layer gets `prefix_length` learned keys and values, placed before the
tokens' own; every query attends to all of them, and padding stays masked. While training they
are reparametrised, as in Li & Liang: prefixes = MLP(E), with E `(prefix_length,
prefix_hidden)` and a two-layer MLP (prefix_hidden -> tanh -> keys and values: 2 x hidden),
both per attention layer (Li & Liang share one E and one MLP whose output covers all the
layers; one per layer keeps each layer's weights in the layer they serve). The MLP runs in
float32 under mixed precision too, so `fold_prefix` (which computes the prefixes once and
keeps them as plain variables) changes no output. E starts as a standard normal (Li & Liang's
embedding), the MLP's kernels as Glorot uniform, its biases at zero: unlike LoRA or adapters,
the prefixes change the model from the start.

`prompt`: `prefix_length` learned vectors (soft tokens) before the tokens at the input of the
first block, after the embeddings (no position or segment embedding: the tokens keep positions
0..T-1); every token attends to them, and they are removed after the last block, so the
encoder's outputs keep their shapes and [CLS] stays at index 0. They start as the embeddings
of random vocabulary tokens (uniform over the vocabulary) through the embeddings' LayerNorm:
Lester's vocabulary initialisation (Lester drew from the 5000 most frequent tokens).

Both stay in the graph (keras-hub's functional graph calls the swapped `call`s); only `prefix`
has something to fold.
"""

import keras
from keras import ops

from tfrnn.models.peft.base import RawVariables, adding_weights, restore_class, swap_class

# The reparametrisation's weights, in creation order; `fold_prefix` removes them.
_MLP_WEIGHTS = ("prefix_embedding", "prefix_hidden_kernel", "prefix_hidden_bias", "prefix_kernel", "prefix_bias")


def _batched(prefix, batch, dtype):
    """`prefix` (positions, ...) repeated over the batch: (batch, positions, ...), in `dtype`."""
    prefix = ops.cast(prefix, dtype)
    return ops.broadcast_to(ops.expand_dims(prefix, 0), (batch, *prefix.shape))


def _prepend_mask(mask, positions):
    """An int or bool mask (..., source) with `positions` ones in front: int32 (..., positions + source)."""
    pad = [[0, 0]] * (len(mask.shape) - 1) + [[positions, 0]]
    return ops.pad(ops.cast(mask, "int32"), pad, constant_values=1)


class PrefixAttention(RawVariables):
    """Mixin for a built `keras.layers.MultiHeadAttention`: self-attention whose keys and values
    have learned prefixes (`_prefixes`, defined by the subclasses below)."""

    def call(
        self,
        query,
        value,
        key=None,
        query_mask=None,
        value_mask=None,
        key_mask=None,
        attention_mask=None,
        return_attention_scores=False,
        training=None,
    ):
        """Multi-head attention over the prefixes and the tokens (no causal mask).

        Args:
            query: tensor (batch, time, hidden).
            value: tensor (batch, source, hidden).
            key: tensor (batch, source, hidden) or None (value).
            query_mask, value_mask, key_mask: None. The inputs' Keras masks (Keras passes them):
                the blocks give `attention_mask` instead.
            attention_mask: int or bool tensor (batch, time or 1, source) or None. 1: attends.
            return_attention_scores: bool. Also return the scores (batch, heads, time, prefix + source).
            training: bool or None. Attention dropout.
        """
        if any(mask is not None for mask in (query_mask, value_mask, key_mask)):
            raise ValueError(f"{self.name}: prefix attention takes an attention_mask, not Keras masks")
        query = self._query_dense(query)  # (batch, time, heads, key_dim)
        key = self._key_dense(value if key is None else key)  # (batch, source, heads, key_dim)
        value = self._value_dense(value)  # (batch, source, heads, value_dim)
        prefix_key, prefix_value = self._prefixes()  # (prefix, heads, key_dim), (prefix, heads, value_dim)
        batch = ops.shape(query)[0]
        key = ops.concatenate([_batched(prefix_key, batch, key.dtype), key], axis=1)  # (batch, prefix + source, ...)
        value = ops.concatenate([_batched(prefix_value, batch, value.dtype), value], axis=1)
        if attention_mask is not None:
            attention_mask = _prepend_mask(attention_mask, prefix_key.shape[0])  # (batch, time, prefix + source)
        output, scores = self._compute_attention(
            query, key, value, attention_mask, training, return_attention_scores
        )  # (batch, time, heads, value_dim)
        output = self._output_dense(output)  # (batch, time, hidden)
        return (output, scores) if return_attention_scores else output


class ReparametrisedPrefix(PrefixAttention):
    """Prefixes computed by the MLP from E at every call (training)."""

    def add_reparametrisation(self, length, hidden):
        """Creates E and the MLP (float32, never autocast).

        Args:
            length: int. Prefix positions.
            hidden: int. E's width and the MLP's hidden width.
        """
        outputs = self.num_heads * (self.key_dim + self.value_dim)
        shapes = ((length, hidden), (hidden, hidden), (hidden,), (hidden, outputs), (outputs,))
        initializers = (
            keras.initializers.RandomNormal(stddev=1.0),
            "glorot_uniform",
            "zeros",
            "glorot_uniform",
            "zeros",
        )
        with adding_weights(self):
            for name, shape, initializer in zip(_MLP_WEIGHTS, shapes, initializers):
                setattr(self, name, self.add_weight(shape=shape, initializer=initializer, autocast=False, name=name))

    def _prefixes(self):
        """(keys (prefix, heads, key_dim), values (prefix, heads, value_dim)), float32."""
        h = ops.tanh(ops.matmul(self.prefix_embedding, self.prefix_hidden_kernel) + self.prefix_hidden_bias)
        out = ops.matmul(h, self.prefix_kernel) + self.prefix_bias  # (prefix, heads * (key_dim + value_dim))
        keys, values = ops.split(out, [self.num_heads * self.key_dim], axis=-1)
        length = self.prefix_embedding.shape[0]
        return (
            ops.reshape(keys, (length, self.num_heads, self.key_dim)),
            ops.reshape(values, (length, self.num_heads, self.value_dim)),
        )


class FoldedPrefix(PrefixAttention):
    """Prefixes stored as they are (`prefix_key`, `prefix_value`), after `fold_prefix`."""

    def _prefixes(self):
        return self.prefix_key, self.prefix_value


def _unfreeze_only(layer):
    """Lets weights added to `layer` train while every weight it has stays frozen."""
    layer.trainable = True
    for sublayer in layer._flatten_layers(include_self=False):
        sublayer.trainable = False


def apply_prefix(backbone, peft):
    """Gives every attention layer of a frozen encoder reparametrised key/value prefixes.

    Args:
        backbone: keras_hub BertBackbone. Built; every layer frozen.
        peft: tfrnn.config.PeftConfig. prefix_length, prefix_hidden.
    """
    for block in backbone.transformer_layers:
        attention = block._self_attention_layer
        _unfreeze_only(attention)
        swap_class(attention, ReparametrisedPrefix)
        attention.add_reparametrisation(peft.prefix_length, peft.prefix_hidden)


def set_prefixes(attention, keys, values):
    """Makes an attention layer attend to fixed prefixes, kept as trainable variables
    `prefix_key` and `prefix_value` (the layer must be trainable, with its own weights frozen).

    Args:
        attention: keras.layers.MultiHeadAttention. Built, without prefixes.
        keys: tensor (prefix, heads, key_dim).
        values: tensor (prefix, heads, value_dim).
    """
    swap_class(attention, FoldedPrefix)
    with adding_weights(attention):
        attention.prefix_key = attention.add_weight(shape=keys.shape, initializer="zeros", name="prefix_key")
        attention.prefix_value = attention.add_weight(shape=values.shape, initializer="zeros", name="prefix_value")
    attention.prefix_key.assign(keys)
    attention.prefix_value.assign(values)


def _drop_weight(layer, name):
    """Removes a weight from a built layer: Keras' `del layer.<name>`, without the garbage
    collection Keras runs after each (seconds per weight in a large process)."""
    layer._untrack_variable(getattr(layer, name))
    super(keras.layers.Layer, layer).__delattr__(name)


def fold_prefix(backbone):
    """Computes each attention layer's prefixes once and keeps them as they are (`set_prefixes`);
    E and the MLP leave the layer and the model's weights. The outputs stay the same. Layers
    already folded stay as they are.

    Args:
        backbone: keras_hub BertBackbone. After `apply_prefix`.
    """
    for block in backbone.transformer_layers:
        attention = block._self_attention_layer
        if isinstance(attention, FoldedPrefix):
            continue
        keys, values = attention._prefixes()
        for name in _MLP_WEIGHTS:
            _drop_weight(attention, name)
        restore_class(attention)
        set_prefixes(attention, keys, values)


class PromptBlock(RawVariables):
    """Mixin for a built keras-hub `TransformerEncoder` block of an encoder with soft prompts:
    every block extends its padding mask by the prompt's positions; the first block
    (`prompt_first`) puts the prompt before the tokens, the last (`prompt_last`) removes it."""

    def call(self, inputs, padding_mask=None, training=None):
        """The block over the prompt and the tokens.

        Args:
            inputs: tensor (batch, time, hidden); (batch, prompt + time, hidden) after the first block.
            padding_mask: int or bool tensor (batch, time) or None (every position attends).
            training: bool or None. Dropout.
        """
        x = inputs
        if self.prompt_first:
            prompt = _batched(self.prompt, ops.shape(x)[0], x.dtype)  # (batch, prompt, hidden)
            x = ops.concatenate([prompt, x], axis=1)  # (batch, prompt + time, hidden)
        if padding_mask is not None:
            padding_mask = _prepend_mask(padding_mask, self.prompt_length)  # (batch, prompt + time)
        x = super().call(x, padding_mask=padding_mask, training=training)
        return x[:, self.prompt_length :, :] if self.prompt_last else x


def _vocabulary_prompt(backbone, length):
    """The embeddings of `length` random vocabulary tokens through the embeddings' LayerNorm: (length, hidden)."""
    ids = keras.random.randint((length,), 0, backbone.vocabulary_size)
    vectors = backbone.embeddings_layer_norm(backbone.token_embedding(ids))
    return ops.cast(vectors, "float32")


def apply_prompt(backbone, peft):
    """Puts `prefix_length` trainable soft tokens before the tokens of a frozen encoder's blocks.

    Args:
        backbone: keras_hub BertBackbone. Built; every layer frozen.
        peft: tfrnn.config.PeftConfig. prefix_length.
    """
    blocks = backbone.transformer_layers
    for block in blocks:
        swap_class(block, PromptBlock)
        block.prompt_length = peft.prefix_length
        block.prompt_first = block is blocks[0]
        block.prompt_last = block is blocks[-1]
    first = blocks[0]
    _unfreeze_only(first)
    with adding_weights(first):
        first.prompt = first.add_weight(
            shape=(peft.prefix_length, backbone.hidden_dim), initializer="zeros", name="prompt"
        )
    first.prompt.assign(_vocabulary_prompt(backbone, peft.prefix_length))
