"""`tf.data` pipelines of (token ids, label) batches."""

import tensorflow as tf

OOV_ID = 1
# Bucket boundaries sit at 1/8, 2/8, ... of max_len; full-length (truncated) texts get a bucket of their own.
_BUCKETS = 8


def make_dataset(examples, vectorizer, config, training, input_context=None, seed=0):
    """Tokenises, truncates and batches examples.

    Order: shard (with `input_context`), tokenise, truncate to `max_len`, cache (if `cache`);
    then for training shuffle (reshuffled each epoch) and batch by length buckets (if `bucket`)
    or in padded batches; evaluation keeps the examples' order in padded batches. Nothing is
    dropped: the last batch may be smaller. A text with no tokens becomes one OOV token.

    Args:
        examples: Examples. Texts and labels.
        vectorizer: keras.layers.TextVectorization. From `make_vectorizer` or `load_vectorizer`.
        config: DataConfig. Uses `max_len`, `batch_size`, `bucket`, `cache`, `shuffle_buffer`.
        training: bool. Shuffle and bucket (True) or keep order (False).
        input_context: tf.distribute.InputContext or None. Shard by input pipeline and use the
            per-replica batch size; None uses the global `batch_size`.
        seed: int. Shuffle seed.

    Returns:
        tf.data.Dataset of (token_ids int32 `(batch, time)`, labels int32 `(batch,)`),
        time <= max_len, padded with 0.
    """
    dataset = tf.data.Dataset.from_tensor_slices((tf.constant(examples.texts, tf.string), examples.labels))
    batch_size = config.batch_size
    if input_context is not None:
        dataset = dataset.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
        batch_size = input_context.get_per_replica_batch_size(config.batch_size)
    dataset = dataset.map(_tokenizer(vectorizer, config.max_len), num_parallel_calls=tf.data.AUTOTUNE)
    if config.cache:
        dataset = dataset.cache()
    if training:
        dataset = dataset.shuffle(config.shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if training and config.bucket:
        boundaries = bucket_boundaries(config.max_len)
        dataset = dataset.bucket_by_sequence_length(
            lambda ids, label: tf.shape(ids)[0], boundaries, [batch_size] * (len(boundaries) + 1)
        )
    else:
        dataset = dataset.padded_batch(batch_size, padded_shapes=([None], []))
    return dataset.prefetch(tf.data.AUTOTUNE)


def make_distributed_dataset(examples, vectorizer, config, strategy, training, seed=0):
    """`make_dataset` under a `tf.distribute` strategy, one input pipeline per worker.

    Each pipeline reads its shard and batches `batch_size / replicas`. For evaluation, the order
    across replicas is not the examples' order; use `make_dataset` to line predictions up.

    Args:
        examples: Examples. Texts and labels.
        vectorizer: keras.layers.TextVectorization. The vectorizer.
        config: DataConfig. As for `make_dataset`; `batch_size` is global.
        strategy: tf.distribute.Strategy. The strategy the model runs under.
        training: bool. As for `make_dataset`.
        seed: int. Shuffle seed.

    Returns:
        tf.distribute.DistributedDataset.
    """
    return strategy.distribute_datasets_from_function(
        lambda context: make_dataset(examples, vectorizer, config, training, input_context=context, seed=seed)
    )


def bucket_boundaries(max_len):
    """Length-bucket boundaries for `max_len`: 1/8, 2/8, ..., 8/8 of it (distinct, at least 1).

    Args:
        max_len: int. The truncation length.

    Returns:
        list of int, increasing, ending at max_len.
    """
    return sorted({max(1, max_len * k // _BUCKETS) for k in range(1, _BUCKETS + 1)})


def texts_to_ids(vectorizer, texts, max_len):
    """Raw texts -> token ids, as training saw them: cut to max_len, an empty text -> [OOV].

    The one tokenising path: the tf.data pipeline calls it per example, the serving graph per
    request batch.

    Args:
        vectorizer: keras.layers.TextVectorization. The run's vectorizer.
        texts: tf.Tensor of tf.string, (batch,).
        max_len: int. Longest sequence kept.

    Returns:
        tf.Tensor int32 (batch, time), 1 <= time <= max_len, right-padded with 0.
    """
    ids = tf.cast(vectorizer(texts), tf.int32)[:, :max_len]  # (batch, time), time may be 0
    ids = tf.pad(ids, [[0, 0], [0, tf.maximum(1 - tf.shape(ids)[1], 0)]])  # time >= 1
    empty = tf.reduce_all(ids == 0, axis=1, keepdims=True)  # (batch, 1)
    first = tf.range(tf.shape(ids)[1]) == 0  # (time,)
    return tf.where(empty & first, OOV_ID, ids)


def _tokenizer(vectorizer, max_len):
    def tokenize(text, label):
        ids = texts_to_ids(vectorizer, tf.reshape(text, [1]), max_len)[0]  # (time,)
        return ids, label

    return tokenize
