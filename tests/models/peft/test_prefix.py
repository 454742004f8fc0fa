"""model.peft=prefix (key/value prefixes, reparametrised by an MLP, folded away) and
model.peft=prompt (soft tokens before the input) on a tiny BERT classifier: outputs independent
of batch mates and of what padding holds, only their weights and the head train, the fold
keeps the outputs and drops the MLP, attention against a numpy reference, prompt positions,
checkpoints, mixed precision."""

import keras
import numpy as np
import pytest
from keras_hub.layers import TransformerEncoder

from tests.models.peft.common import (
    INPUTS,
    assert_independent_of_batch_mates,
    assert_runs_under_mixed_precision,
    assert_trains_only_its_weights,
    fit_a_few_steps,
    outputs,
    peft_model,
)
from tfrnn.models.peft import load_adapter, merge_peft, save_adapter
from tfrnn.models.peft.prefix import FoldedPrefix, set_prefixes

PREFIX = dict(prefix_length=3, prefix_hidden=8)
SETTINGS = {"prefix": PREFIX, "prompt": dict(prefix_length=3)}
MLP_WEIGHTS = ("prefix_embedding", "prefix_hidden_kernel", "prefix_hidden_bias", "prefix_kernel", "prefix_bias")


def _names(weights):
    return [w.path.split("/")[-1] for w in weights]


@pytest.mark.parametrize("method", ["prefix", "prompt"])
@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_outputs_do_not_depend_on_batch_mates(method, pooling):
    assert_independent_of_batch_mates(peft_model(method, pooling=pooling, **SETTINGS[method]))


@pytest.mark.parametrize("method", ["prefix", "prompt"])
def test_padding_is_masked(method):
    model = peft_model(method, **SETTINGS[method])
    padding = INPUTS["padding_mask"] == 0
    garbage = dict(
        INPUTS,
        token_ids=np.where(padding, 41, INPUTS["token_ids"]).astype("int32"),
        segment_ids=np.where(padding, 1, INPUTS["segment_ids"]).astype("int32"),
    )
    np.testing.assert_allclose(outputs(model, garbage), outputs(model), atol=1e-6, rtol=0)


def test_prefix_trains_only_its_embedding_and_mlp():
    assert_trains_only_its_weights("prefix", lambda path: path.split("/")[-1] in MLP_WEIGHTS, **PREFIX)
    model = peft_model("prefix", **PREFIX)
    assert _names(model.trainable_weights) == [*MLP_WEIGHTS, *MLP_WEIGHTS, "kernel", "bias"]  # 2 blocks, head
    shapes = {w.path.split("/")[-1]: tuple(w.shape) for w in model.trainable_weights}
    assert shapes["prefix_embedding"] == (3, 8) and shapes["prefix_kernel"] == (8, 2 * 16)


def test_prompt_trains_only_its_vectors():
    assert_trains_only_its_weights("prompt", lambda path: path == "transformer_layer_0/prompt", prefix_length=3)
    model = peft_model("prompt", prefix_length=3)
    assert [(w.path, tuple(w.shape)) for w in model.trainable_weights][0] == ("transformer_layer_0/prompt", (3, 16))


def test_fold_prefix_keeps_outputs_and_drops_the_mlp():
    model = peft_model("prefix", **PREFIX)
    fit_a_few_steps(model)
    before = outputs(model)
    merge_peft(model)
    np.testing.assert_allclose(outputs(model), before, atol=1e-6, rtol=0)
    merge_peft(model)  # a second fold changes nothing
    np.testing.assert_allclose(outputs(model), before, atol=1e-6, rtol=0)
    assert not set(MLP_WEIGHTS) & set(_names(model.weights))
    assert [(w.path, tuple(w.shape)) for w in model.trainable_weights[:4]] == [
        ("transformer_layer_0/self_attention_layer/prefix_key", (3, 2, 8)),
        ("transformer_layer_0/self_attention_layer/prefix_value", (3, 2, 8)),
        ("transformer_layer_1/self_attention_layer/prefix_key", (3, 2, 8)),
        ("transformer_layer_1/self_attention_layer/prefix_value", (3, 2, 8)),
    ]
    attention = model.backbone.transformer_layers[0]._self_attention_layer
    assert isinstance(attention, FoldedPrefix) and not any(hasattr(attention, name) for name in MLP_WEIGHTS)
    attention.prefix_value.assign(np.zeros((3, 2, 8), "float32"))  # the folded prefixes are what is used
    assert not np.allclose(outputs(model), before, atol=1e-3)


def _numpy_attention(x, mask, layer, prefix_key, prefix_value):
    """Reference: softmax(q [pk; k]^T / sqrt(d) masked) [pv; v], projected, in numpy."""
    weights = {w.path.split("/")[-2] + "/" + w.name: np.asarray(w) for w in layer.weights}

    def project(name):
        return np.einsum("btd,dnh->btnh", x, weights[f"{name}/kernel"]) + weights[f"{name}/bias"]

    q, k, v = project("query"), project("key"), project("value")  # (batch, time, heads, head_dim)
    batch = x.shape[0]
    k = np.concatenate([np.broadcast_to(prefix_key, (batch, *prefix_key.shape)), k], axis=1)
    v = np.concatenate([np.broadcast_to(prefix_value, (batch, *prefix_value.shape)), v], axis=1)
    scores = np.einsum("btnh,bsnh->bnts", q, k) / np.sqrt(q.shape[-1])  # (batch, heads, time, prefix + time)
    full_mask = np.concatenate([np.ones((batch, 1, prefix_key.shape[0])), mask], axis=-1)[:, None]
    scores = np.where(full_mask > 0, scores, -np.inf)
    probabilities = np.exp(scores - scores.max(-1, keepdims=True))
    probabilities /= probabilities.sum(-1, keepdims=True)
    context = np.einsum("bnts,bsnh->btnh", probabilities, v)
    return np.einsum("btnh,nhd->btd", context, weights["attention_output/kernel"]) + weights["attention_output/bias"]


@pytest.mark.parametrize("dropout", [0.0, 0.1], ids=["fused", "explicit"])  # Keras' two attention paths
def test_prefix_attention_matches_numpy(dropout):
    rng = np.random.default_rng(0)
    layer = keras.layers.MultiHeadAttention(num_heads=2, key_dim=3, dropout=dropout, bias_initializer="random_normal")
    layer.build((2, 4, 5), (2, 4, 5))
    prefix_key = np.array([[[0.5, -1.0, 2.0], [1.0, 0.0, -0.5]], [[-2.0, 1.5, 0.25], [0.0, 3.0, 1.0]]], "float32")
    prefix_value = np.arange(12, dtype="float32").reshape(2, 2, 3) / 4 - 1
    set_prefixes(layer, prefix_key, prefix_value)
    x = rng.normal(size=(2, 4, 5)).astype("float32")
    mask = np.array([[[1, 1, 1, 1]], [[1, 1, 0, 0]]], "int32")  # (batch, 1, time): text 2 has 2 tokens
    got = layer(query=x, value=x, attention_mask=mask, training=False)
    expected = _numpy_attention(x, mask, layer, prefix_key, prefix_value)
    np.testing.assert_allclose(np.asarray(got), expected, atol=1e-5, rtol=0)


def test_prompt_is_before_the_tokens_without_positions_and_removed_after():
    model = peft_model("prompt", prefix_length=3)
    backbone = model.backbone
    prompt = np.asarray(backbone.transformer_layers[0].prompt)
    ids, segments, padding = INPUTS["token_ids"], INPUTS["segment_ids"], INPUTS["padding_mask"]
    x = backbone.embeddings_layer_norm(
        backbone.embeddings_add(
            (
                backbone.token_embedding(ids),
                backbone.position_embedding(backbone.token_embedding(ids)),
                backbone.segment_embedding(segments),
            )
        )
    )  # positions 0..5 for the tokens
    x = keras.ops.concatenate([np.broadcast_to(prompt, (2, 3, 16)), x], axis=1)
    mask = np.concatenate([np.ones((2, 3), "int32"), padding], axis=1)
    for block in backbone.transformer_layers:  # the original blocks over prompt + tokens
        x = TransformerEncoder.call(block, x, padding_mask=mask, training=False)
    got = backbone(INPUTS, training=False)
    assert tuple(got["sequence_output"].shape) == (2, 6, 16)
    np.testing.assert_allclose(np.asarray(got["sequence_output"]), np.asarray(x)[:, 3:], atol=1e-6, rtol=0)
    pooled = backbone.pooled_dense(np.asarray(x)[:, 3])  # [CLS] at index 0 of the tokens
    np.testing.assert_allclose(np.asarray(got["pooled_output"]), np.asarray(pooled), atol=1e-6, rtol=0)


def test_prompt_starts_from_normalised_vocabulary_embeddings():
    model = peft_model("prompt", prefix_length=3)
    backbone = model.backbone
    prompt = np.asarray(backbone.transformer_layers[0].prompt)
    vocabulary = np.asarray(backbone.embeddings_layer_norm(backbone.token_embedding.embeddings))  # (50, 16)
    distances = np.abs(prompt[:, None, :] - vocabulary[None]).max(-1)  # (3, 50)
    assert (distances.min(-1) < 1e-6).all()


@pytest.mark.parametrize("method", ["prefix", "prompt"])
def test_checkpoint_and_backup_load_exactly(method, tmp_path):
    model = peft_model(method, **SETTINGS[method])
    fit_a_few_steps(model)
    model.save_weights(tmp_path / "model.weights.h5")
    save_adapter(model, tmp_path / "adapter.npz")
    for load in (
        lambda m: m.load_weights(tmp_path / "model.weights.h5"),
        lambda m: load_adapter(m, tmp_path / "adapter.npz"),
    ):
        fresh = peft_model(method, **SETTINGS[method])
        assert not np.allclose(outputs(fresh), outputs(model))
        load(fresh)
        np.testing.assert_array_equal(outputs(fresh), outputs(model))


@pytest.mark.parametrize("method", ["prefix", "prompt"])
def test_trains_under_mixed_precision(method):
    model = assert_runs_under_mixed_precision(method, **SETTINGS[method])
    logits = outputs(model)
    assert logits.dtype == np.float32
    if method == "prefix":  # the MLP runs in float32: folding changes nothing
        merge_peft(model)
        np.testing.assert_array_equal(outputs(model), logits)
