"""train_validation_split: seeded, stratified, disjoint."""

import numpy as np

from tfrnn.data import Examples, train_validation_split


def _examples(counts=(90, 10)):
    labels = np.repeat(np.arange(len(counts)), counts)
    texts = [f"text {i}" for i in range(len(labels))]
    return Examples(texts, labels, ["a", "b"], "made up", skipped_blank=3)


def test_same_seed_same_split_other_seed_other_split():
    first, again, other = (train_validation_split(_examples(), 0.2, seed) for seed in (0, 0, 1))
    assert first[1].texts == again[1].texts and first[0].texts == again[0].texts
    assert first[1].texts != other[1].texts


def test_stratified_disjoint_and_complete():
    train, validation = train_validation_split(_examples(), 0.2, seed=0)
    assert np.bincount(validation.labels).tolist() == [18, 2]
    assert np.bincount(train.labels).tolist() == [72, 8]
    assert sorted(train.texts + validation.texts) == sorted(_examples().texts)
    assert train.label_names == validation.label_names == ["a", "b"]
    assert (train.skipped_blank, validation.skipped_blank) == (3, 0)
    assert "validation" in validation.source


def test_zero_fraction_gives_empty_validation():
    train, validation = train_validation_split(_examples(), 0.0, seed=0)
    assert len(train) == 100 and len(validation) == 0
    assert validation.labels.dtype == np.int32 and validation.label_names == ["a", "b"]


def test_every_class_keeps_a_training_example():
    train, validation = train_validation_split(_examples((5, 1)), 0.5, seed=0)
    assert np.bincount(train.labels, minlength=2).tolist() == [2, 1]
