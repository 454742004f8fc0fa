"""Masked-LM batches: BERT's selection and 80/10/10 rule, fixed validation masks, static shapes."""

import numpy as np
import pytest
import tensorflow as tf

from tfrnn.data.masked_lm import default_max_predictions, make_masked_lm_dataset
from tfrnn.data.pipeline import bucket_boundaries
from tfrnn.data.wordpiece import RESERVED, BertPreprocessor, learn_vocabulary
from tfrnn.errors import DataError

WORDS = [f"w{i}" for i in range(60)]
VOCABULARY = RESERVED + WORDS  # one token a word: no [UNK] in the texts below
PAD, CLS, SEP, MASK = (VOCABULARY.index(token) for token in ("[PAD]", "[CLS]", "[SEP]", "[MASK]"))


def _texts(count, seed=0, shortest=0, longest=70):
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=rng.integers(shortest, longest))) for _ in range(count)]


def _preprocessor(max_len=64):
    return BertPreprocessor(VOCABULARY, max_len=max_len)


def _arrays(dataset):
    """All batches, concatenated: x (dict), y, weights."""
    batches = list(dataset.as_numpy_iterator())
    time = max(x["token_ids"].shape[1] for x, _, _ in batches)  # batches differ in time (buckets)
    x = {
        name: np.concatenate([np.pad(b[0][name], [(0, 0), (0, time - b[0][name].shape[1])]) for b in batches])
        for name in ("token_ids", "segment_ids", "padding_mask")
    }
    x["mask_positions"] = np.concatenate([b[0]["mask_positions"] for b in batches])
    return x, np.concatenate([b[1] for b in batches]), np.concatenate([b[2] for b in batches])


def _unmasked_ids(texts, preprocessor):
    time = preprocessor.max_len
    ids = preprocessor(tf.constant(texts))["token_ids"].numpy()  # (n, longest)
    return np.pad(ids, [(0, 0), (0, time - ids.shape[1])])


def test_selection_and_80_10_10_rule_on_a_large_sample():
    texts = _texts(1000)
    preprocessor = _preprocessor()
    x, y, weights = _arrays(make_masked_lm_dataset(texts, preprocessor, 64, mask_rate=0.15, training=False))
    n = len(texts)
    x, y, weights = {k: v[:n] for k, v in x.items()}, y[:n], weights[:n]  # the filler rows dropped
    original = _unmasked_ids(texts, preprocessor)
    token_ids = x["token_ids"][:, : original.shape[1]]
    lengths = x["padding_mask"].sum(axis=1)  # [CLS] text [SEP]
    selectable = lengths - 2
    selected = weights == 1
    assert set(np.unique(weights)) <= {0.0, 1.0}

    # ceil(rate * n) of each text's n selectable tokens, computed as the generator does (float32).
    expected = np.ceil(selectable.astype(np.float32) * np.float32(0.15)).astype(int)
    np.testing.assert_array_equal(selected.sum(axis=1), expected)
    assert 0.15 <= selected.sum() / selectable.sum() < 0.15 + n / selectable.sum()  # ceil adds < 1 a text
    assert selectable.sum() > 30_000

    rows, slots = np.nonzero(selected)
    positions = x["mask_positions"][rows, slots]
    # Never [CLS] (position 0), [SEP] (position length - 1) or padding; never twice in a text.
    assert (positions >= 1).all() and (positions <= lengths[rows] - 2).all()
    assert all(len(set(x["mask_positions"][r][selected[r]])) == selected[r].sum() for r in range(n))
    np.testing.assert_array_equal(y[rows, slots], original[rows, positions])  # labels: the original ids
    assert not np.isin(y[rows, slots], [PAD, CLS, SEP]).any()

    # Unselected tokens unchanged.
    changed = token_ids != original
    changed[rows, positions] = False
    assert not changed.any()

    # Selected tokens: [MASK] 80%, a random token 10% (which may be [MASK] or the token itself), else kept.
    new = token_ids[rows, positions]
    count, size = len(new), len(VOCABULARY)
    fractions = {
        "mask": (np.mean(new == MASK), 0.8 + 0.1 / size),
        "kept": (np.mean(new == y[rows, slots]), 0.1 + 0.1 / size),
        "random": (np.mean((new != MASK) & (new != y[rows, slots])), 0.1 * (1 - 2 / size)),
    }
    for name, (observed, p) in fractions.items():
        assert abs(observed - p) < 4 * np.sqrt(p * (1 - p) / count), (name, observed, p)
    randoms = new[(new != MASK) & (new != y[rows, slots])]
    assert len(np.unique(randoms)) > 0.9 * size  # drawn from the whole vocabulary


def test_batches_have_few_static_shapes():
    preprocessor = _preprocessor(max_len=32)
    texts = _texts(21, shortest=1, longest=40)
    dataset = make_masked_lm_dataset(texts, preprocessor, 8, training=True, seed=3)
    predictions = default_max_predictions(32, 0.15)
    assert predictions == 5
    rows = 0
    for x, y, weights in dataset:
        time = x["token_ids"].shape[1]
        assert time in bucket_boundaries(32)
        for name in ("token_ids", "segment_ids", "padding_mask"):
            assert x[name].shape == (8, time) and x[name].dtype == tf.int32
        assert x["mask_positions"].shape == y.shape == weights.shape == (8, predictions)
        assert x["mask_positions"].dtype == y.dtype == tf.int32 and weights.dtype == tf.float32
        rows += int(tf.reduce_sum(tf.reduce_max(weights, axis=1)))
    assert rows == 21  # every text once; the 3 filler rows of the last batch weigh nothing


def test_validation_masks_are_fixed_and_seeded():
    preprocessor = _preprocessor(max_len=32)
    texts = _texts(40, longest=40)

    def masks(dataset):
        x, y, weights = _arrays(dataset)
        return np.concatenate([x["token_ids"], x["mask_positions"], y, weights], axis=1)

    def dataset(seed):
        return make_masked_lm_dataset(texts, preprocessor, 16, seed=seed, training=False)

    tf.random.set_seed(1)
    before = tf.random.uniform([4]).numpy()
    validation = dataset(5)
    first = masks(validation)
    np.testing.assert_array_equal(masks(validation), first)  # the next epoch
    np.testing.assert_array_equal(masks(dataset(5)), first)  # rebuilt
    assert (masks(dataset(6)) != first).any()
    tf.random.set_seed(1)
    np.testing.assert_array_equal(tf.random.uniform([4]).numpy(), before)  # the global seed untouched


def test_training_reshuffles_and_remasks_every_epoch():
    preprocessor = _preprocessor(max_len=32)
    texts = _texts(48, longest=40, shortest=10)
    dataset = make_masked_lm_dataset(texts, preprocessor, 16, seed=0, training=True)
    epochs = [_arrays(dataset) for _ in range(2)]
    original = {tuple(row[row != PAD]) for row in _unmasked_ids(texts, preprocessor)}

    def masks_by_text(x, y, weights):
        """Each text's unmasked ids -> its masked token ids."""
        result = {}
        for token_ids, positions, labels, w in zip(x["token_ids"], x["mask_positions"], y, weights):
            restored = token_ids.copy()
            restored[positions[w == 1]] = labels[w == 1]
            result[tuple(restored[restored != PAD])] = tuple(token_ids)
        return result

    first, second = masks_by_text(*epochs[0]), masks_by_text(*epochs[1])
    assert set(first) == set(second) == original  # every text, restored from its labels
    assert (epochs[0][0]["token_ids"][:16] != epochs[1][0]["token_ids"][:16]).any()  # another order
    assert sum(first[text] != second[text] for text in original) > 40  # new masks for (nearly) every text


def test_max_predictions_caps_the_selections():
    x, y, weights = _arrays(
        make_masked_lm_dataset(_texts(20, shortest=30), _preprocessor(), 8, max_predictions=2, training=False)
    )
    assert weights.shape[1] == 2 and (weights[:20].sum(axis=1) == 2).all()


def test_no_texts():
    with pytest.raises(DataError, match="no texts"):
        make_masked_lm_dataset([], _preprocessor(), 2)


def test_every_bert_vocabulary_has_a_mask_token():
    assert "[MASK]" in learn_vocabulary(_texts(20), 100, lowercase=True, strip_accents=True)
    with pytest.raises(ValueError, match=r"\[MASK\]"):  # keras-hub's BertTokenizer insists on it
        BertPreprocessor([token for token in VOCABULARY if token != "[MASK]"], max_len=16)


def test_input_context_shards_the_texts_and_splits_the_batch():
    texts = _texts(10, shortest=1, longest=20)
    context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=1, num_replicas_in_sync=2)
    dataset = make_masked_lm_dataset(texts, _preprocessor(32), 4, training=False, input_context=context)
    assert dataset.element_spec[1].shape == (2, default_max_predictions(32, 0.15))  # 4 / 2 replicas
    x, y, weights = _arrays(dataset)
    assert len(y) == 6  # this pipeline's 5 texts (every second one), in batches of 2
    restored = x["token_ids"][:5].copy()
    for row in range(5):
        restored[row, x["mask_positions"][row][weights[row] == 1]] = y[row][weights[row] == 1]
    original = _unmasked_ids(texts[1::2], _preprocessor(32))
    np.testing.assert_array_equal(restored, original[:, : restored.shape[1]])
