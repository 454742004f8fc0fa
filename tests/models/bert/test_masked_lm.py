"""BertMaskedLM: keras-hub's masked-LM task over tfrnn's BertBackbone; its loss, pretraining from
scratch and from a checkpoint, and its .keras file (tiny BERTs: 2 blocks, hidden 16)."""

import keras
import keras_hub
import numpy as np
import pytest

from tests.conftest import write_tiny_bert_preset
from tfrnn.data.masked_lm import make_masked_lm_dataset
from tfrnn.data.wordpiece import RESERVED, BertPreprocessor, read_vocabulary
from tfrnn.models.bert import BertClassifier, read_checkpoint
from tfrnn.models.bert.classifier import random_backbone
from tfrnn.models.bert.masked_lm import BertMaskedLM, compile_masked_lm

WORDS = [f"w{i}" for i in range(20)]
VOCABULARY = RESERVED + WORDS
# Deterministic: each token follows from its place and its neighbours.
CORPUS = [" ".join(WORDS[:12]), " ".join(WORDS[8:])]


@pytest.fixture(scope="module")
def preprocessor():
    return BertPreprocessor(VOCABULARY, max_len=16)


@pytest.fixture(scope="module")
def masked_batch(preprocessor):
    """(x, y, weights) of the corpus with fixed masks, as NumPy arrays; copy before changing."""
    dataset = make_masked_lm_dataset(CORPUS * 4, preprocessor, 8, training=False)
    return next(dataset.as_numpy_iterator())


def _scratch(preprocessor):
    backbone = random_backbone(preprocessor.vocabulary_size, 2, 16, 2, preprocessor.max_len)
    return BertMaskedLM(backbone, preprocessor=preprocessor)


def _cross_entropy(logits, labels):
    logits = logits - logits.max(axis=-1, keepdims=True)
    log_probabilities = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
    return -np.take_along_axis(log_probabilities, labels[..., None], axis=-1)[..., 0]


def test_head_is_tied_to_the_token_embedding(preprocessor, masked_batch):
    model = _scratch(preprocessor)
    assert model.masked_lm_head.token_embedding is model.backbone.token_embedding
    embeddings = [w for w in model.weights if tuple(w.shape) == (len(VOCABULARY), 16)]
    assert len(embeddings) == 1  # one matrix, read by the embedding and the head
    x, y, _ = masked_batch
    logits = np.asarray(model(x))
    assert logits.shape == (*y.shape, len(VOCABULARY)) and logits.dtype == np.float32
    assert not model.backbone.get_layer("pooled_dense").trainable  # no gradient reaches it


def test_loss_counts_masked_positions_only(preprocessor, masked_batch):
    model = _scratch(preprocessor)
    compile_masked_lm(model, "adam")
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4, 5, len(VOCABULARY))).astype("float32")
    labels = rng.integers(0, len(VOCABULARY), size=(4, 5))
    weights = (rng.random((4, 5)) < 0.6).astype("float32")
    loss = float(model.loss(labels, logits, weights))
    masked = weights == 1
    np.testing.assert_allclose(loss, _cross_entropy(logits, labels)[masked].mean(), rtol=1e-5)
    logits[~masked] = rng.normal(size=logits[~masked].shape)
    labels[~masked] = rng.integers(0, len(VOCABULARY), size=(~masked).sum())
    np.testing.assert_allclose(float(model.loss(labels, logits, weights)), loss, rtol=1e-6)

    # Through the model: loss, accuracy and perplexity over the masked tokens of a batch.
    x, y, weights = masked_batch
    y = y.copy()
    logits = np.asarray(model(x))
    masked = weights == 1
    assert 0 < masked.sum() < masked.size  # padding slots present
    cross_entropy = _cross_entropy(logits, y)[masked]
    results = model.evaluate(x, y, sample_weight=weights, batch_size=len(y), verbose=0, return_dict=True)
    np.testing.assert_allclose(results["loss"], cross_entropy.mean(), rtol=1e-5)
    np.testing.assert_allclose(results["accuracy"], (logits.argmax(-1) == y)[masked].mean(), rtol=1e-6)
    np.testing.assert_allclose(results["perplexity"], np.exp(cross_entropy.mean()), rtol=1e-5)
    y[~masked] = (y[~masked] + 1) % len(VOCABULARY)
    changed = model.evaluate(x, y, sample_weight=weights, batch_size=len(y), verbose=0, return_dict=True)
    np.testing.assert_allclose(changed["loss"], results["loss"], rtol=1e-6)


def test_bert_learns_a_deterministic_corpus_from_scratch(preprocessor, masked_batch, tmp_path):
    model = _scratch(preprocessor)
    compile_masked_lm(model, keras.optimizers.Adam(1e-2))
    x, y, weights = masked_batch  # held out: fixed masks
    before = model.evaluate(x, y, sample_weight=weights, verbose=0, return_dict=True)
    train = make_masked_lm_dataset(CORPUS * 16, preprocessor, 16, seed=0, repeat=True)
    model.fit(train, steps_per_epoch=150, shuffle=False, verbose=0)  # the pipeline shuffles
    after = model.evaluate(x, y, sample_weight=weights, verbose=0, return_dict=True)
    assert before["loss"] > 2.5  # about log(25), a uniform guess
    assert after["loss"] < 0.3 * before["loss"] and after["accuracy"] > 0.7

    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")  # goes on where it stopped
    compiled, saved = loaded.get_compile_config(), model.get_compile_config()  # not keras-hub's defaults
    assert compiled["loss"] == saved["loss"] and compiled["weighted_metrics"] == saved["weighted_metrics"]
    assert int(loaded.optimizer.iterations) == 150 and np.isclose(loaded.optimizer.learning_rate, 1e-2)
    for ours, theirs in zip(loaded.optimizer.variables, model.optimizer.variables, strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_continued_pretraining_starts_from_the_checkpoint_and_round_trips(tmp_path, masked_batch):
    folder = write_tiny_bert_preset(tmp_path / "preset", VOCABULARY, seed=0)
    checkpoint = read_checkpoint(folder)
    preprocessor = BertPreprocessor(read_vocabulary(checkpoint.vocabulary), lowercase=checkpoint.lowercase, max_len=16)
    model = BertMaskedLM(checkpoint.load_backbone(), preprocessor=preprocessor)
    reference = keras_hub.models.BertBackbone.from_preset(folder)
    for ours, theirs in zip(model.backbone.weights, reference.weights, strict=True):
        np.testing.assert_array_equal(ours, theirs, err_msg=ours.path)
    assert model.masked_lm_head.token_embedding is model.backbone.token_embedding  # the head reads them too

    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)  # safe mode, no custom_objects
    assert type(loaded) is BertMaskedLM and loaded.backbone.activation == "gelu_approximate"
    assert loaded.masked_lm_head.token_embedding is loaded.backbone.token_embedding
    assert loaded.preprocessor.get_vocabulary() == VOCABULARY
    x, _, _ = masked_batch
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-5)

    # The pretrained encoder, under a classifier (`tfrnn train --init-from`).
    classifier = BertClassifier(loaded.backbone, num_classes=2, pooling="cls")
    assert classifier.backbone.get_layer("pooled_dense").trainable
    np.testing.assert_array_equal(classifier.backbone.token_embedding.embeddings, reference.token_embedding.embeddings)


def test_vocabulary_and_length_must_fit_the_backbone():
    backbone = random_backbone(len(VOCABULARY), 2, 16, 2, 16)  # as _scratch: JAX compiles nothing new
    with pytest.raises(ValueError, match="vocabulary"):
        BertMaskedLM(backbone, preprocessor=BertPreprocessor(VOCABULARY + ["w20"], max_len=16))
    with pytest.raises(ValueError, match="max_len"):
        BertMaskedLM(backbone, preprocessor=BertPreprocessor(VOCABULARY, max_len=32))
