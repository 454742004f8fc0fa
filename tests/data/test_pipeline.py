"""make_dataset with a WordPreprocessor: shapes, truncation, order, bucketing, sharding;
make_distributed_dataset."""

import numpy as np
import pytest
import tensorflow as tf

from tfrnn.config import DataConfig
from tfrnn.data import Examples, WordPreprocessor, make_dataset, make_distributed_dataset
from tfrnn.data.pipeline import bucket_boundaries

WORDS = [f"w{i}" for i in range(50)]


def _mixed_lengths(count=200, max_words=40, seed=0):
    """Examples whose lengths spread from 1 to max_words words; label = length parity."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, max_words + 1, size=count)
    texts = [" ".join(rng.choice(WORDS, size=n)) for n in lengths]
    return Examples(texts, lengths % 2, ["even", "odd"], "made up")


@pytest.fixture(scope="module")
def examples():
    return _mixed_lengths()


@pytest.fixture(scope="module")
def vocabulary(examples):
    return WordPreprocessor.adapt(examples.texts, vocab_size=20000).get_vocabulary()


def _preprocessor(vocabulary, config):
    """The word preprocessor of `vocabulary`, truncating to `config.max_len`."""
    return WordPreprocessor(vocabulary, max_len=config.max_len)


def _batches(dataset):
    return [(ids.numpy(), labels.numpy()) for ids, labels in dataset]


@pytest.mark.parametrize("training, bucket", [(True, True), (True, False), (False, True)])
def test_shapes_dtypes_and_nothing_dropped(examples, vocabulary, training, bucket):
    config = DataConfig(batch_size=16, max_len=64, bucket=bucket)
    dataset = make_dataset(examples, _preprocessor(vocabulary, config), config, training=training)
    ids_spec, labels_spec = dataset.element_spec
    assert ids_spec.dtype == labels_spec.dtype == tf.int32
    assert ids_spec.shape.as_list() == [None, None] and labels_spec.shape.as_list() == [None]
    batches = _batches(dataset)
    assert all(len(ids) == len(labels) <= 16 for ids, labels in batches)
    seen = np.concatenate([labels for _, labels in batches])
    assert np.bincount(seen).tolist() == np.bincount(examples.labels).tolist()
    assert sum(int((ids != 0).sum()) for ids, _ in batches) == sum(len(text.split()) for text in examples.texts)


def test_truncation_to_max_len(examples, vocabulary):
    config = DataConfig(batch_size=8, max_len=5)
    for training in (True, False):
        lengths = [
            ids.shape[1]
            for ids, _ in _batches(make_dataset(examples, _preprocessor(vocabulary, config), config, training))
        ]
        assert max(lengths) == 5


def test_evaluation_keeps_order(examples, vocabulary):
    config = DataConfig(batch_size=16, max_len=64)
    preprocessor = _preprocessor(vocabulary, config)
    batches = _batches(make_dataset(examples, preprocessor, config, training=False))
    assert np.concatenate([labels for _, labels in batches]).tolist() == examples.labels.tolist()
    first = batches[0][0]
    expected = np.asarray(preprocessor(tf.constant(examples.texts[:16])))
    assert first[:, : expected.shape[1]].tolist() == expected.tolist()
    assert not first[:, expected.shape[1] :].any()


def test_training_is_seeded_and_reshuffled_each_epoch(examples, vocabulary):
    config = DataConfig(batch_size=200, bucket=False)
    dataset = make_dataset(examples, _preprocessor(vocabulary, config), config, training=True)
    epoch1, epoch2 = (_batches(dataset)[0][1].tolist() for _ in range(2))
    again = _batches(make_dataset(examples, _preprocessor(vocabulary, config), config, training=True))[0][1].tolist()
    assert epoch1 != epoch2 and epoch1 == again


def test_bucketing_cuts_padding(examples, vocabulary):
    def padding(bucket):
        config = DataConfig(batch_size=8, max_len=32, bucket=bucket)
        return sum(
            int((ids == 0).sum())
            for ids, _ in _batches(make_dataset(examples, _preprocessor(vocabulary, config), config, True))
        )

    assert padding(bucket=True) < padding(bucket=False) / 2


def test_bucket_boundaries_end_at_max_len():
    assert bucket_boundaries(200) == [25, 50, 75, 100, 125, 150, 175, 200]
    assert bucket_boundaries(3) == [1, 2, 3]


def test_text_without_tokens_becomes_one_oov(vocabulary):
    examples = Examples(["!!!", "w1 w2"], [0, 1], ["a", "b"], "made up")
    ids, _ = _batches(make_dataset(examples, _preprocessor(vocabulary, DataConfig()), DataConfig(), training=False))[0]
    assert ids[0].tolist() == [1, 0]


def test_sharding_with_input_context(examples, vocabulary):
    context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=0, num_replicas_in_sync=2)
    config = DataConfig(batch_size=16, cache=False)
    batches = _batches(
        make_dataset(examples, _preprocessor(vocabulary, config), config, training=False, input_context=context)
    )
    assert max(len(labels) for _, labels in batches) == 8
    assert np.concatenate([labels for _, labels in batches]).tolist() == examples.labels[0::2].tolist()


def test_distributed_dataset(examples, vocabulary):
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    dataset = make_distributed_dataset(
        examples, _preprocessor(vocabulary, DataConfig()), DataConfig(batch_size=16), strategy, training=True
    )
    ids, labels = next(iter(dataset))
    assert ids.dtype == tf.int32 and labels.shape[0] <= 16


@pytest.mark.parametrize("bucket", [True, False])
@pytest.mark.parametrize("training", [True, False])
def test_static_shapes_are_few_and_fillers_weigh_nothing(examples, vocabulary, bucket, training):
    """static_shapes: every batch is batch_size rows, padded to a bucket boundary; the rows that
    fill the last batches are copies of real rows with weight 0, so each example weighs 1 once."""
    config = DataConfig(batch_size=8, max_len=16, bucket=bucket, cache=False)
    dataset = make_dataset(examples, _preprocessor(vocabulary, config), config, training, static_shapes=True)
    batches = [(ids.numpy(), labels.numpy(), weights.numpy()) for ids, labels, weights in dataset]
    assert {ids.shape for ids, _, _ in batches} <= {(8, b) for b in bucket_boundaries(16)}
    assert sum(weights.sum() for _, _, weights in batches) == len(examples.texts)
    for ids, labels, weights in batches:
        real = int(weights.sum())
        assert weights.tolist() == [1.0] * real + [0.0] * (8 - real)
        assert (ids[real:] == ids[: 8 - real]).all() and (labels[real:] == labels[: 8 - real]).all()
        assert (ids.sum(axis=1) > 0).all()  # no all-padding row
    if not training:  # in order, each example once among the weighted rows
        kept = np.concatenate([labels[weights > 0] for _, labels, weights in batches])
        assert kept.tolist() == examples.labels.tolist()
