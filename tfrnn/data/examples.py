"""The in-memory form of a labelled text dataset."""

from dataclasses import dataclass

import numpy as np


@dataclass
class Examples:
    """Raw texts (blank ones already dropped) with integer labels.

    Args:
        texts: list of str. The texts as read; the vectorizer cleans them.
        labels: np.ndarray. `(n,)` int32 indices into `label_names`.
        label_names: list of str. Class names in index order.
        source: str. Where the texts came from, for messages (a path, a TFDS name).
        skipped_blank: int. Texts skipped because they were blank after cleaning.
    """

    texts: list[str]
    labels: np.ndarray
    label_names: list[str]
    source: str
    skipped_blank: int = 0

    def __post_init__(self):
        self.labels = np.asarray(self.labels, dtype=np.int32).reshape(-1)
        if len(self.texts) != len(self.labels):
            raise ValueError(f"{len(self.texts)} texts but {len(self.labels)} labels")

    def __len__(self):
        return len(self.texts)

    def take(self, indices, **changes):
        """The examples at `indices`, in that order.

        Args:
            indices: sequence of int. Positions to keep.
            **changes: other fields to replace (`source`, `skipped_blank`).

        Returns:
            Examples with the same label names.
        """
        indices = np.asarray(indices, dtype=np.int64)
        fields = dict(
            texts=[self.texts[i] for i in indices],
            labels=self.labels[indices],
            label_names=list(self.label_names),
            source=self.source,
            skipped_blank=self.skipped_blank,
        )
        return Examples(**{**fields, **changes})
