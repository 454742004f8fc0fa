"""Masked-language-model batches for BERT pretraining, in `tf.data`.

Raw texts go through tfrnn's `BertPreprocessor` ([CLS] text [SEP], truncated to `max_len`),
then through keras-hub's `MaskedLMMaskGenerator`, which applies BERT's rule: in each text,
ceil(mask_rate * n) of its n selectable tokens ([CLS], [SEP] and padding never are) are
chosen at random; each chosen token becomes [MASK] with probability 0.8, a token drawn
uniformly from the vocabulary with probability 0.1, and stays as it is otherwise.

Batches come in few shapes, for compilers that specialise on shape (JAX, XLA): time is padded
up to a bucket boundary (`tfrnn.data.pipeline.bucket_boundaries`), every batch has
`batch_size` rows (the last one filled up with copies whose mask weights are 0) and
`max_predictions` mask slots.

The masks come from a stream of random numbers seeded with `seed`, drawn one text at a time in
order, which starts over each time the dataset is iterated. For validation this gives the same
masks every epoch, so the held-out loss compares across epochs. For training, the texts are
reshuffled every epoch, so each text meets other random draws; with `repeat` (and
`steps_per_epoch`) one stream runs through all epochs.
"""

import keras_hub
import numpy as np
import tensorflow as tf

from tfrnn.data.pipeline import bucket_boundaries, static_batch
from tfrnn.errors import DataError

MASK_TOKEN_RATE = 0.8
RANDOM_TOKEN_RATE = 0.1


def default_max_predictions(max_len, mask_rate):
    """Mask slots per text so that no text loses a selection: ceil(mask_rate * (max_len - 2)).

    Computed in float32, as the mask generator counts its selections.

    Args:
        max_len: int. Tokens per text, [CLS] and [SEP] included.
        mask_rate: float. Fraction of the selectable tokens selected.

    Returns:
        int.
    """
    return int(np.ceil(np.float32(max_len - 2) * np.float32(mask_rate)))


def mask_generator(preprocessor, mask_rate=0.15, max_predictions=None):
    """keras-hub's mask generator for a BERT preprocessor's vocabulary.

    Args:
        preprocessor: tfrnn.data.wordpiece.BertPreprocessor. Gives the vocabulary and max_len
            (its tokenizer insists on [MASK] being in the vocabulary).
        mask_rate: float. Fraction of each text's selectable tokens selected.
        max_predictions: int or None. Most selections per text (more are dropped at random);
            None: `default_max_predictions(max_len, mask_rate)`, which never drops any.

    Returns:
        keras_hub.layers.MaskedLMMaskGenerator.
    """
    tokenizer = preprocessor.tokenizer
    return keras_hub.layers.MaskedLMMaskGenerator(
        vocabulary_size=preprocessor.vocabulary_size,
        mask_selection_rate=mask_rate,
        mask_token_id=tokenizer.mask_token_id,
        mask_selection_length=max_predictions or default_max_predictions(preprocessor.max_len, mask_rate),
        unselectable_token_ids=[tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id],
        mask_token_rate=MASK_TOKEN_RATE,
        random_token_rate=RANDOM_TOKEN_RATE,
    )


def make_masked_lm_dataset(
    texts,
    preprocessor,
    batch_size,
    mask_rate=0.15,
    seed=0,
    training=True,
    max_predictions=None,
    repeat=False,
    input_context=None,
):
    """Masked-LM batches of raw texts, as keras_hub.models.BertMaskedLM takes them.

    Args:
        texts: list of str. Raw texts (labels play no part).
        preprocessor: tfrnn.data.wordpiece.BertPreprocessor. Raw text -> token_ids,
            segment_ids, padding_mask.
        batch_size: int. Texts per batch (global; per replica with `input_context`).
        mask_rate: float. Fraction of each text's selectable tokens selected for prediction.
        seed: int. Seeds the shuffling and the masks.
        training: bool. Reshuffle the texts every epoch (True), or keep their order (False).
        max_predictions: int or None. Mask slots per text (`mask_generator`).
        repeat: bool. Repeat without end (fixed steps per epoch; one random stream throughout).
        input_context: tf.distribute.InputContext or None. Shard by input pipeline and use the
            per-replica batch size.

    Returns:
        tf.data.Dataset of (x, y, sample_weight): x a dict of int32 token_ids (masked),
        segment_ids, padding_mask `(batch_size, time)` (time a bucket boundary <= max_len) and
        mask_positions `(batch_size, max_predictions)`; y the original ids at those positions,
        int32 `(batch_size, max_predictions)`; sample_weight float32 `(batch_size,
        max_predictions)`, 1 for a masked position, 0 for padding slots and filler rows.

    Raises:
        DataError: no texts.
    """
    if not len(texts):
        raise DataError("no texts to pretrain on")
    masker = mask_generator(preprocessor, mask_rate, max_predictions)
    boundaries = bucket_boundaries(preprocessor.max_len)
    all_texts = tf.constant(list(texts), tf.string)
    dataset = tf.data.Dataset.range(len(texts))  # indices: a full shuffle keeps no strings in its buffer
    if input_context is not None:
        dataset = dataset.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
        batch_size = input_context.get_per_replica_batch_size(batch_size)
    if training:
        dataset = dataset.shuffle(len(texts), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()

    def fixed_shape(indices):
        inputs = preprocessor(tf.gather(all_texts, indices))  # (count, longest) each
        count = tf.shape(indices)[0]
        inputs, _, row_weights = static_batch(
            inputs, tf.zeros([count], tf.int32), batch_size, boundaries, preprocessor.padding_values
        )  # (batch_size, time) each, time a boundary; row_weights (batch_size,): 0 for filler rows
        return inputs, row_weights

    def mask(inputs, row_weight):
        # Inside the traced function, set_seed seeds this function's random ops only, and their
        # stream starts over with every iteration of the dataset.
        tf.random.set_seed(seed)
        masked = masker(inputs["token_ids"])  # (time,) and (max_predictions,) each
        x = {
            "token_ids": tf.cast(masked["token_ids"], tf.int32),
            "segment_ids": inputs["segment_ids"],
            "padding_mask": inputs["padding_mask"],
            "mask_positions": tf.cast(masked["mask_positions"], tf.int32),
        }
        return x, tf.cast(masked["mask_ids"], tf.int32), tf.cast(masked["mask_weights"], tf.float32) * row_weight

    dataset = dataset.batch(batch_size).map(fixed_shape, num_parallel_calls=tf.data.AUTOTUNE)
    # One text at a time, in order, so that the masks draw from the random stream in the same
    # order on every iteration (the generator's loop over the rows of a batch runs them in
    # parallel). Every batch has batch_size rows, so rebatching restores the batches (dropping none).
    return dataset.unbatch().map(mask).batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
