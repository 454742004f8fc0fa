"""`tf.data` pipelines of (model inputs, label) batches, for any `TextPreprocessor`."""

import tensorflow as tf

# Bucket boundaries sit at 1/8, 2/8, ... of max_len; full-length (truncated) texts get a bucket of their own.
_BUCKETS = 8


def make_dataset(
    examples,
    preprocessor,
    config,
    training,
    input_context=None,
    seed=0,
    repeat=False,
    static_shapes=False,
    num_batches=None,
):
    """Tokenises, truncates and batches examples.

    Order: shard (with `input_context`), tokenise, truncate to `max_len`, cache (if `cache`);
    then for training shuffle (reshuffled each epoch) and batch by length buckets (if `bucket`)
    or in padded batches; evaluation keeps the examples' order in padded batches. Nothing is
    dropped: the last batch may be smaller, or, with `static_shapes`, is filled up (`static_batch`).

    Args:
        examples: Examples. Texts and labels.
        preprocessor: tfrnn.data.TextPreprocessor. Turns texts into model inputs.
        config: DataConfig. Uses `max_len`, `batch_size`, `bucket`, `cache`, `shuffle_buffer`.
        training: bool. Shuffle and bucket (True) or keep order (False).
        input_context: tf.distribute.InputContext or None. Shard by input pipeline and use the
            per-replica batch size; None uses the global `batch_size`.
        seed: int. Shuffle seed.
        repeat: bool. Repeat without end (training under a strategy runs a fixed number of
            steps, so that every replica takes the same number).
        static_shapes: bool. Few distinct batch shapes, for compilers that specialise on shape
            (JAX, XLA, TPU): every batch is `static_batch`ed, so there are at most as many shapes
            as `bucket_boundaries(max_len)`, and elements carry sample weights.
        num_batches: int or None. Repeat, then stop after this many batches: a finite pass of a
            fixed length, the same every time it is iterated (validation under a strategy).

    Returns:
        tf.data.Dataset of (inputs, labels int32 `(batch,)`), and with `static_shapes` sample
        weights float32 `(batch,)` as well: inputs are int32 `(batch, time)` token ids (or a dict
        of such tensors), time <= max_len, padded with `padding_values`.
    """
    dataset = tf.data.Dataset.from_tensor_slices((tf.constant(examples.texts, tf.string), examples.labels))
    batch_size = config.batch_size
    if input_context is not None:
        dataset = dataset.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
        batch_size = input_context.get_per_replica_batch_size(config.batch_size)
    dataset = dataset.map(
        lambda text, label: (preprocessor.encode_example(text), label), num_parallel_calls=tf.data.AUTOTUNE
    )
    if config.cache:
        dataset = dataset.cache()
    if training:
        dataset = dataset.shuffle(config.shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat or num_batches:
        dataset = dataset.repeat()
    features_spec, label_spec = dataset.element_spec
    padding_values = (
        tf.nest.map_structure(
            lambda spec, value: tf.constant(value, spec.dtype), features_spec, preprocessor.padding_values
        ),
        tf.zeros([], label_spec.dtype),
    )
    if training and config.bucket:
        dataset = dataset.bucket_by_sequence_length(
            lambda features, label: tf.shape(tf.nest.flatten(features)[0])[0],
            bucket_boundaries(config.max_len),
            [batch_size] * (len(bucket_boundaries(config.max_len)) + 1),
            padding_values=padding_values,
        )
    else:
        dataset = dataset.padded_batch(batch_size, padding_values=padding_values)
    if static_shapes:
        boundaries = bucket_boundaries(config.max_len)
        dataset = dataset.map(
            lambda features, labels: static_batch(features, labels, batch_size, boundaries, preprocessor.padding_values)
        )
    if num_batches:
        dataset = dataset.take(num_batches)
    return dataset.prefetch(tf.data.AUTOTUNE)


def make_distributed_dataset(
    examples, preprocessor, config, strategy, training, seed=0, repeat=False, static_shapes=False, steps=None
):
    """`make_dataset` under a `tf.distribute` strategy, one input pipeline per worker.

    Each pipeline reads its shard and batches `batch_size / replicas`. For evaluation, the order
    across replicas is not the examples' order; use `make_dataset` to line predictions up.

    Args:
        examples: Examples. Texts and labels.
        preprocessor: tfrnn.data.TextPreprocessor. Turns texts into model inputs.
        config: DataConfig. As for `make_dataset`; `batch_size` is global.
        strategy: tf.distribute.Strategy. The strategy the model runs under.
        training: bool. As for `make_dataset`.
        seed: int. Shuffle seed.
        repeat: bool. As for `make_dataset`.
        static_shapes: bool. As for `make_dataset`.
        steps: int or None. Give exactly this many global steps, then stop (`num_batches` of
            each pipeline: steps times its replicas).

    Returns:
        tf.distribute.DistributedDataset.
    """

    def pipeline(context):
        per_step = context.num_replicas_in_sync // context.num_input_pipelines
        num_batches = steps * per_step if steps else None
        return make_dataset(examples, preprocessor, config, training, context, seed, repeat, static_shapes, num_batches)

    return strategy.distribute_datasets_from_function(pipeline)


def bucket_boundaries(max_len):
    """Length-bucket boundaries for `max_len`: 1/8, 2/8, ..., 8/8 of it (distinct, at least 1).

    Args:
        max_len: int. The truncation length.

    Returns:
        list of int, increasing, ending at max_len.
    """
    return sorted({max(1, max_len * k // _BUCKETS) for k in range(1, _BUCKETS + 1)})


def static_batch(features, labels, batch_size, boundaries, padding_values):
    """One batch in a fixed shape: time padded up to the nearest bucket boundary, the batch
    filled up to `batch_size` by repeating its first rows with weight 0.

    The filler rows are copies of real ones rather than all padding, whose masked mean would
    divide by zero (0 * NaN is still NaN). With weight 0 they change neither the gradients nor
    the weighted metrics, so evaluation counts every example exactly once.

    Args:
        features: tensor `(n, time)` or dict of them. A batch of model inputs, n <= batch_size,
            time <= boundaries[-1].
        labels: tensor `(n,)`. Its labels.
        batch_size: int. Rows of the result.
        boundaries: list of int. Allowed lengths (`bucket_boundaries`), increasing.
        padding_values: scalar or dict of scalars, the structure of `features`. Padding values.

    Returns:
        (features `(batch_size, boundary)`, labels `(batch_size,)`, weights float32
        `(batch_size,)`: 1 for the n real rows, 0 for the copies).
    """
    first = tf.nest.flatten(features)[0]
    count, length = tf.shape(first)[0], tf.shape(first)[1]
    bounds = tf.constant(boundaries, tf.int32)
    target = tf.gather(bounds, tf.searchsorted(bounds, tf.reshape(length, [1]))[0])  # first boundary >= length
    rows = tf.range(batch_size) % count  # (batch_size,): the real rows, then copies from the start

    def fixed(value, pad):
        value = tf.pad(value, [[0, 0], [0, target - length]], constant_values=tf.cast(pad, value.dtype))
        return tf.ensure_shape(tf.gather(value, rows), [batch_size, None])

    features = tf.nest.map_structure(fixed, features, padding_values)
    weights = tf.cast(tf.range(batch_size) < count, tf.float32)
    return features, tf.ensure_shape(tf.gather(labels, rows), [batch_size]), weights
