"""RNNLanguageModel: the encoder a classifier copies, tied weights, the sampled softmax, state
carried across batches, training to a pattern's entropy with an exact held-out loss, `.keras` files."""

import keras
import numpy as np
import pytest

from tfrnn.data import WordPreprocessor
from tfrnn.models import RNNClassifier
from tfrnn.models.language_model import (
    RNNLanguageModel,
    log_uniform_probability,
    sample_log_uniform,
    sampled_softmax_loss,
)

VOCAB, BATCH, BPTT = 8, 4, 8
NO_DROPOUT = dict(embedding_dropout=0.0, input_dropout=0.0, hidden_dropout=0.0, output_dropout=0.0, weight_dropout=0.0)


def _model(**kwargs):
    kwargs = {
        "embedding_dim": 16,
        "units": 24,
        "num_layers": 2,
        "batch_size": BATCH,
        "sampled": 16,
        "seed": 1,
        **kwargs,
    }
    return RNNLanguageModel(VOCAB, **kwargs)


def _stream(batches, rng=None):
    """`batches` consecutive (token ids, next ids) batches of a token stream, stacked as
    (batches * BATCH, BPTT): row r of batch i+1 continues row r of batch i. Without `rng`
    the stream cycles through the ids 2..VOCAB-1 (entropy 0); else it is uniform."""
    length = batches * BPTT + 1
    if rng is None:
        rows = 2 + (np.arange(BATCH * length) % (VOCAB - 2)).reshape(BATCH, length)
    else:
        rows = rng.integers(0, VOCAB, (BATCH, length))

    def cut(r):
        return r.reshape(BATCH, batches, BPTT).transpose(1, 0, 2).reshape(batches * BATCH, BPTT).astype("int32")

    return cut(rows[:, :-1]), cut(rows[:, 1:])


def _exact_losses(model, x, y):
    """NumPy cross-entropy of every token from `model.logits`, running the batches in order."""
    model.reset_states()
    hidden = np.concatenate([model.predict_on_batch(x[i : i + BATCH]) for i in range(0, len(x), BATCH)])
    logits = np.asarray(model.logits(hidden), "float64")  # (rows, bptt, vocab)
    logits -= logits.max(axis=-1, keepdims=True)
    log_p = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
    return -np.take_along_axis(log_p, y[..., None], axis=-1)[..., 0]


def test_encoder_has_the_classifiers_layer_names_and_shapes():
    model = _model(num_layers=3)
    names = model.encoder_layer_names()
    assert names == ["embedding", "lstm_0", "lstm_1", "lstm_2"]
    classifier = RNNClassifier(VOCAB, 2, cell="lstm", embedding_dim=16, units=24, num_layers=3, bidirectional=False)
    for name in names:
        shapes = [w.shape for w in model.get_layer(name).get_weights()]
        assert shapes == [w.shape for w in classifier.get_layer(name).get_weights()]
        classifier.get_layer(name).set_weights(model.get_layer(name).get_weights())
    assert model.get_layer("projection").get_weights()[0].shape == (24, 16)
    assert model.output.shape == (BATCH, None, 16)  # hidden states, not logits


def test_output_is_tied_to_the_input_embedding():
    model = _model()
    model.compile(optimizer=keras.optimizers.SGD(0.5))
    embeddings = model.get_layer("embedding").embeddings
    assert model.tied_softmax.embedding.embeddings is embeddings
    assert sum(v is embeddings for v in model.trainable_variables) == 1
    assert model.tied_softmax.output_bias.dtype == "float32"
    before = np.asarray(embeddings).copy()
    x, y = _stream(1, np.random.default_rng(0))
    model.train_on_batch(x, y)
    after = np.asarray(embeddings)
    assert not np.allclose(after, before)
    hidden = np.eye(16, dtype="float32")  # unit vectors: logits - bias are the output weight's columns
    output_weight = np.asarray(model.logits(hidden)) - np.asarray(model.tied_softmax.output_bias)
    np.testing.assert_allclose(output_weight.T, after, atol=1e-6)


def _numpy_sampled_loss(hidden, targets, weights, bias, candidates):
    vocab, count = weights.shape[0], len(candidates)
    q = np.log((np.arange(vocab) + 2) / (np.arange(vocab) + 1)) / np.log(vocab + 1)
    losses = []
    for h, t in zip(hidden, targets):
        logits = np.concatenate([[h @ weights[t] + bias[t]], weights[candidates] @ h + bias[candidates]])
        logits -= np.log(count * q[np.concatenate([[t], candidates])])  # minus log(expected count)
        logits[1:][candidates == t] = -np.inf  # accidental hits removed
        losses.append(np.log(np.exp(logits).sum()) - logits[0])  # the true class at index 0
    return np.array(losses)


def test_sampled_softmax_loss_on_fixed_candidates():
    rng = np.random.default_rng(0)
    vocab, dim = 20, 5
    hidden = rng.normal(size=(6, dim)).astype("float32")
    weights = rng.normal(size=(vocab, dim)).astype("float32")
    bias = rng.normal(size=vocab).astype("float32")
    targets = np.array([3, 0, 7, 19, 3, 12], "int32")
    candidates = np.array([3, 0, 1, 3, 7, 15], "int32")  # hits for targets 3, 0 and 7; 3 drawn twice
    losses = np.asarray(sampled_softmax_loss(hidden, targets, weights, bias, candidates))
    np.testing.assert_allclose(losses, _numpy_sampled_loss(hidden, targets, weights, bias, candidates), rtol=1e-5)
    # A token whose every candidate is a hit has only its true class left: loss 0.
    only_hits = sampled_softmax_loss(hidden[:1], targets[:1], weights, bias, np.full(4, 3, "int32"))
    np.testing.assert_allclose(np.asarray(only_hits), [0.0], atol=1e-6)


def test_log_uniform_sampler_draws_from_its_probabilities():
    vocab = 10
    q = np.asarray(log_uniform_probability(np.arange(vocab), vocab))
    np.testing.assert_allclose(q.sum(), 1.0, rtol=1e-6)
    assert np.all(np.diff(q) < 0)  # Zipf: frequent (small) ids first
    draws = np.asarray(sample_log_uniform(100_000, vocab, seed=3))
    assert draws.min() >= 0 and draws.max() < vocab
    np.testing.assert_allclose(np.bincount(draws, minlength=vocab) / len(draws), q, atol=0.005)


def test_compute_loss_is_exact_outside_training_and_adds_ar_tar_in_training():
    model = _model(ar=1.0, tar=1.0, **NO_DROPOUT)
    x, y = _stream(1, np.random.default_rng(1))
    model.reset_states()
    hidden = model(x, training=False)
    assert model.losses == []  # AR/TAR only in training
    exact = model.compute_loss(y=y, y_pred=hidden, training=False)
    np.testing.assert_allclose(float(exact), _exact_losses(model, x, y).mean(), rtol=1e-5)
    model.reset_states()
    hidden = model(x, training=True)
    assert len(model.losses) == 2
    model.sampled = 0  # exact softmax in training too: the total is the cross-entropy plus AR and TAR
    total = model.compute_loss(y=y, y_pred=hidden, training=True)
    np.testing.assert_allclose(float(total), float(exact) + sum(float(v) for v in model.losses), rtol=1e-5)


def test_state_carries_across_batches_and_resets():
    model = _model()
    x = np.random.default_rng(2).integers(0, VOCAB, (BATCH, BPTT)).astype("int32")
    model.reset_states()
    whole = model.predict_on_batch(x)
    model.reset_states()
    halves = np.concatenate([model.predict_on_batch(x[:, :3]), model.predict_on_batch(x[:, 3:])], axis=1)
    np.testing.assert_allclose(halves, whole, atol=1e-5)
    states = [s for name in model.encoder_layer_names()[1:] for s in model.get_layer(name).states]
    assert all(np.abs(np.asarray(s)).sum() > 0 for s in states)
    model.reset_states()
    assert all(not np.asarray(s).any() for s in states)
    np.testing.assert_allclose(model.predict_on_batch(x), whole, atol=1e-6)


def test_fit_learns_a_cycle_and_evaluate_reports_the_exact_loss():
    """A stream cycling through 6 ids has entropy 0: the loss falls from ln 8 to near 0 while the
    training softmax samples; evaluate's loss is the exact full-softmax cross-entropy."""
    small = dict(embedding_dropout=0.05, input_dropout=0.05, hidden_dropout=0.05, output_dropout=0.05)
    model = _model(weight_dropout=0.05, ar=0.05, tar=0.05, seed=0, **small)
    model.compile(optimizer=keras.optimizers.Adam(0.1, clipnorm=1.0))
    x, y = _stream(8)
    reset = keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: model.reset_states())
    history = model.fit(x, y, batch_size=BATCH, epochs=25, shuffle=False, verbose=0, callbacks=[reset])
    assert history.history["loss"][0] > 1.5
    assert np.asarray(model.get_layer("lstm_1").states[0]).any()  # fit carried (and kept) the states, JAX too
    held_out = _stream(3)
    model.reset_states()
    loss = model.evaluate(*held_out, batch_size=BATCH, verbose=0)
    assert loss < 0.3
    np.testing.assert_allclose(loss, _exact_losses(model, *held_out).mean(), rtol=1e-4, atol=1e-6)


def test_keras_file_round_trip_with_preprocessor(tmp_path):
    vocabulary = ["", "[UNK]"] + [f"w{i}" for i in range(2, VOCAB)]
    model = _model(preprocessor=WordPreprocessor(vocabulary, max_len=BPTT))
    model.tied_softmax.output_bias.assign(np.arange(VOCAB, dtype="float32"))
    x = np.random.default_rng(3).integers(0, VOCAB, (BATCH, BPTT)).astype("int32")
    model.reset_states()
    expected = np.asarray(model.logits(model.predict_on_batch(x)))
    path = tmp_path / "lm.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    assert type(reloaded) is RNNLanguageModel and type(reloaded.preprocessor) is WordPreprocessor
    assert reloaded.get_config() == model.get_config()
    assert reloaded.tied_softmax.embedding.embeddings is reloaded.get_layer("embedding").embeddings
    reloaded.reset_states()
    np.testing.assert_allclose(np.asarray(reloaded.logits(reloaded.predict_on_batch(x))), expected, atol=1e-5)


@pytest.mark.parametrize("name", ["num_layers", "sampled"])
def test_config_keeps_every_argument(name):
    model = _model(**{name: 1})
    assert model.get_config()[name] == 1
    assert RNNLanguageModel.from_config(model.get_config()).get_config() == model.get_config()
