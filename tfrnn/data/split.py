"""Seeded, stratified hold-out of a validation set."""

import numpy as np


def train_validation_split(examples, fraction, seed):
    """Holds out `fraction` of each class, chosen by a seeded shuffle.

    Each class gives fraction * count examples (rounded half up), but keeps at least one for training.
    Both parts keep the original order.

    Args:
        examples: Examples. The training examples.
        fraction: float. In [0, 1); 0 gives an empty validation set.
        seed: int. Same seed, same split.

    Returns:
        (train, validation): Examples. `skipped_blank` stays with train.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction={fraction}: expected 0 <= fraction < 1")
    rng = np.random.default_rng(seed)
    held_out = []
    for label in np.unique(examples.labels):
        members = np.flatnonzero(examples.labels == label)
        count = min(int(np.floor(fraction * len(members) + 0.5)), len(members) - 1)
        held_out.append(rng.permutation(members)[:count])
    validation = np.sort(np.concatenate(held_out)) if held_out else np.zeros(0, dtype=np.int64)
    train = np.setdiff1d(np.arange(len(examples)), validation)
    return (
        examples.take(train),
        examples.take(validation, source=f"{examples.source} (validation {fraction:g})", skipped_blank=0),
    )
