"""EDA augmentation of training texts (Wei & Zou 2019, "EDA: Easy Data Augmentation Techniques for
Boosting Performance on Text Classification Tasks"), in Python and NumPy.

Each altered copy of a text gets ONE of the active operations, chosen at random (as in EDA):
synonym replacement, random insertion, random swap, random deletion. With `L` units in the text,
synonym, insertion and swap act `max(1, int(rate * L))` times (EDA's code); deletion drops each
unit with probability `rate` but never all of them (one, at random, stays). A unit is a
whitespace-separated word, or under `unit="char"` (Chinese) a character: whitespace characters are
then never chosen, deleted or moved, and runs of whitespace left behind become one space.

Synonyms: EDA takes them from WordNet. No WordNet that installs from the package registry works
offline (nltk's fetches its data at run time) and it covers English only, so here a unit's
"synonyms" are its nearest neighbours by cosine similarity in a trained embedding (`Neighbours`):
related words, not always synonyms, in whatever language the embedding was trained on.

Back-translation (a text translated to another language and back) needs translation models,
which cannot be downloaded here; `augment_examples` takes a `translate` callable instead, so a
user with such a model can pass one in Python.
"""

import dataclasses
import string

import numpy as np

UNITS = ("word", "char")
# EDA's order; each copy gets one of the active ones.
OPERATIONS = ("synonym", "insertion", "swap", "deletion")
_PUNCTUATION = str.maketrans("", "", string.punctuation)  # the word tokenizer's set (tfrnn.data.cleaning)
_CHUNK_ELEMENTS = 1 << 22  # similarities computed at once: 16 MiB of float32


class Neighbours:
    """Each token's nearest neighbours by cosine similarity in an embedding, computed for the
    tokens asked for only, in chunks (a vocabulary of 30,000 needs 16 MiB at a time).

    Padding (id 0), out-of-vocabulary (id 1) and whitespace tokens are never neighbours, and a
    token is not its own.

    Args:
        embedding: np.ndarray. `(vocab, dim)`, row i the vector of token id i.
        vocabulary: list of str. Tokens in id order (id 0 padding, id 1 OOV).
        k: int. Neighbours per token.
        lowercase: bool. Units are lower-cased before lookup (the vocabulary was learned so).
        strip_punctuation: bool. ASCII punctuation is removed from units before lookup (a word
            vocabulary).
    """

    def __init__(self, embedding, vocabulary, k, lowercase=True, strip_punctuation=True):
        embedding = np.asarray(embedding, np.float32)
        if embedding.ndim != 2 or embedding.shape[0] != len(vocabulary):
            raise ValueError(f"embedding of shape {embedding.shape} for a vocabulary of {len(vocabulary)}")
        norms = np.linalg.norm(embedding, axis=1, keepdims=True)  # (vocab, 1)
        self._unit_vectors = embedding / np.maximum(norms, 1e-12)  # (vocab, dim)
        self.vocabulary = [str(token) for token in vocabulary]
        self._excluded = np.array([i < 2 or not token.strip() for i, token in enumerate(self.vocabulary)])
        self.k = min(k, int((~self._excluded).sum()) - 1)
        self.lowercase = lowercase
        self.strip_punctuation = strip_punctuation
        self._ids = {token: i for i, token in enumerate(self.vocabulary) if not self._excluded[i]}
        self._cache = {}  # id -> tuple of neighbour tokens

    def id_of(self, unit):
        """The token id of a text unit (after lower-casing and punctuation removal), or None."""
        if self.lowercase:
            unit = unit.lower()
        if self.strip_punctuation:
            unit = unit.translate(_PUNCTUATION)
        return self._ids.get(unit)

    def nearest(self, ids):
        """The `k` nearest token ids of each of `ids`, nearest first.

        Args:
            ids: sequence of int. Token ids.

        Returns:
            np.ndarray int64 `(len(ids), k)`.
        """
        ids = np.asarray(ids, np.int64).reshape(-1)
        result = np.zeros((len(ids), max(self.k, 0)), np.int64)
        if self.k <= 0:
            return result
        rows = max(1, _CHUNK_ELEMENTS // len(self.vocabulary))
        for start in range(0, len(ids), rows):
            chunk = ids[start : start + rows]
            similarity = self._unit_vectors[chunk] @ self._unit_vectors.T  # (chunk, vocab)
            similarity[:, self._excluded] = -np.inf
            similarity[np.arange(len(chunk)), chunk] = -np.inf
            top = np.argpartition(-similarity, self.k - 1, axis=1)[:, : self.k]  # (chunk, k), unordered
            order = np.argsort(-np.take_along_axis(similarity, top, axis=1), axis=1, kind="stable")
            result[start : start + len(chunk)] = np.take_along_axis(top, order, axis=1)
        return result

    def prepare(self, units):
        """Computes, in chunks, the neighbours of every unit in `units` that has a token id."""
        ids = {self.id_of(unit) for unit in units} - {None} - set(self._cache)
        ids = sorted(ids)
        for token_id, nearest in zip(ids, self.nearest(ids)):
            self._cache[token_id] = tuple(self.vocabulary[i] for i in nearest)

    def of(self, unit):
        """The neighbour tokens of a text unit, nearest first; () when it has no token id."""
        token_id = self.id_of(unit)
        if token_id is None:
            return ()
        if token_id not in self._cache:
            self.prepare([unit])
        return self._cache[token_id]


def split_units(text, unit):
    """A text as a list of units: its words, or under "char" its characters (whitespace included)."""
    return text.split() if unit == "word" else list(text)


def join_units(units, unit):
    """The text of `units` (`split_units`'s inverse), runs of whitespace made one space."""
    return " ".join(units) if unit == "word" else " ".join("".join(units).split())


def _positions(units):
    """Indices of the units operations may touch (not whitespace)."""
    return [i for i, unit in enumerate(units) if not unit.isspace()]


def _times(rate, units):
    """EDA's number of swaps, insertions or replacements in a text of `units`."""
    return max(1, int(rate * len(_positions(units))))


def random_deletion(units, p, rng):
    """Deletes each unit with probability `p`; one, at random, stays when all would go.

    Args:
        units: list of str. From `split_units`.
        p: float. Deletion probability.
        rng: np.random.Generator.

    Returns:
        list of str, a new list.
    """
    positions = np.asarray(_positions(units), np.int64)
    if len(positions) <= 1:
        return list(units)
    deleted = positions[rng.random(len(positions)) < p]
    if len(deleted) == len(positions):
        deleted = np.delete(deleted, rng.integers(len(deleted)))
    keep = np.ones(len(units), bool)
    keep[deleted] = False
    return [unit for unit, kept in zip(units, keep) if kept]


def random_swap(units, n, rng):
    """Swaps two different units at random, `n` times (a text of one unit stays as it is)."""
    units = list(units)
    positions = _positions(units)
    if len(positions) < 2:
        return units
    for _ in range(n):
        a = rng.integers(len(positions))
        b = rng.integers(len(positions) - 1)
        b += b >= a  # any position but a's
        i, j = positions[a], positions[b]
        units[i], units[j] = units[j], units[i]
    return units


def synonym_replacement(units, n, rng, neighbours):
    """Replaces `n` units that have neighbours (or all of them, when fewer do) by one of their
    neighbours, chosen at random.

    Args:
        units: list of str. From `split_units`.
        n: int. Units to replace.
        rng: np.random.Generator.
        neighbours: Neighbours. Gives each unit's neighbours.

    Returns:
        list of str, a new list.
    """
    units = list(units)
    candidates = [i for i in _positions(units) if neighbours.of(units[i])]
    for i in rng.permutation(candidates)[:n]:
        options = neighbours.of(units[i])
        units[i] = options[rng.integers(len(options))]
    return units


def random_insertion(units, n, rng, neighbours):
    """Inserts a neighbour of a random unit at a random place, `n` times (never when no unit has
    neighbours)."""
    units = list(units)
    sources = [units[i] for i in _positions(units) if neighbours.of(units[i])]
    if not sources:
        return units
    for _ in range(n):
        options = neighbours.of(sources[rng.integers(len(sources))])
        units.insert(rng.integers(len(units) + 1), options[rng.integers(len(options))])
    return units


def augment_units(units, augment_config, rng, neighbours=None):
    """One altered copy of a text's units: one active operation, chosen at random.

    Args:
        units: list of str. From `split_units`.
        augment_config: tfrnn.config.AugmentConfig. The rates.
        rng: np.random.Generator.
        neighbours: Neighbours or None. Needed by synonym and insertion.

    Returns:
        list of str, a new list (a copy of `units` when no operation is active).
    """
    active = [name for name in OPERATIONS if getattr(augment_config, name)]
    if not active:
        return list(units)
    operation = active[rng.integers(len(active))]
    rate = getattr(augment_config, operation)
    if operation == "deletion":
        return random_deletion(units, rate, rng)
    if operation == "swap":
        return random_swap(units, _times(rate, units), rng)
    if operation == "synonym":
        return synonym_replacement(units, _times(rate, units), rng, neighbours)
    return random_insertion(units, _times(rate, units), rng, neighbours)


def augment_text(text, augment_config, unit, rng, neighbours=None):
    """One altered copy of a text (`augment_units` on its units)."""
    return join_units(augment_units(split_units(text, unit), augment_config, rng, neighbours), unit)


def augment_examples(examples, augment_config, unit, seed, neighbours=None, translate=None, prepare=None):
    """Examples with `augment_config.copies` altered copies after each original, labels kept.

    The result is the same for the same seed; `examples` is not changed.

    Args:
        examples: tfrnn.data.Examples. The training examples.
        augment_config: tfrnn.config.AugmentConfig. Rates and copies.
        unit: str. "word" or "char" (resolved, not "auto").
        seed: int. Seeds the random choices.
        neighbours: Neighbours or None. Needed when `synonym` or `insertion` is on.
        translate: callable or None. Back-translation: list of str -> list of str of the same
            length (each text translated to another language and back), called once per round
            of copies; the operations then alter its outputs. None: none (translation models
            cannot be downloaded here, so tfrnn ships none).
        prepare: callable or None. list of str -> list of str, applied to the texts before the
            copies are made from them (a run cleans HTML first, so that no tag is cut in two);
            the originals are kept as given.

    Returns:
        An object of `examples`' type: original 0, its copies, original 1, its copies, ...

    Raises:
        ValueError: an unknown unit, or synonym or insertion without neighbours.
    """
    if unit not in UNITS:
        raise ValueError(f"unit={unit!r}: expected one of {', '.join(UNITS)}")
    if (augment_config.synonym or augment_config.insertion) and neighbours is None:
        raise ValueError("synonym replacement and insertion need neighbours")
    rng = np.random.default_rng(seed)
    sources = list(examples.texts) if prepare is None else list(prepare(list(examples.texts)))
    split = [split_units(text, unit) for text in sources]
    if neighbours is not None:
        neighbours.prepare(u for units in split for u in units)
    rounds = []
    for _ in range(augment_config.copies):
        if translate is not None:
            translated = list(translate(list(sources)))
            if len(translated) != len(sources):
                raise ValueError(f"translate returned {len(translated)} texts for {len(sources)}")
            split = [split_units(text, unit) for text in translated]
        rounds.append([join_units(augment_units(units, augment_config, rng, neighbours), unit) for units in split])
    texts = [text for i, original in enumerate(examples.texts) for text in (original, *(r[i] for r in rounds))]
    labels = np.repeat(np.asarray(examples.labels), augment_config.copies + 1)
    return dataclasses.replace(examples, texts=texts, labels=labels, label_names=list(examples.label_names))
