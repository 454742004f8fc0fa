"""EDA operations, the nearest-neighbour table and `augment_examples` (tfrnn.data.augment)."""

from collections import Counter

import numpy as np
import pytest

from tfrnn.config import AugmentConfig
from tfrnn.data import Examples, augment
from tfrnn.data.augment import Neighbours, augment_examples, augment_text

VOCABULARY = ["", "[UNK]", "good", "great", "bad", "awful", "film", "movie", " "]
# Pairs point the same way: good~great, bad~awful, film~movie; " " (whitespace) is never a neighbour.
EMBEDDING = np.array(
    [
        [1.0, 1.0, 1.0],  # padding: never a neighbour
        [1.0, 0.0, 0.1],  # OOV: never a neighbour
        [1.0, 0.0, 0.0],
        [0.9, 0.1, 0.0],
        [-1.0, 0.0, 0.0],
        [-0.9, -0.1, 0.0],
        [0.1, 0.0, 1.0],
        [0.0, 0.1, 0.9],
        [1.0, 0.0, 0.0],  # " ": as near as can be, never a neighbour
    ]
)


@pytest.fixture
def neighbours():
    return Neighbours(EMBEDDING, VOCABULARY, k=1)


def _examples(texts, labels=None):
    labels = [i % 2 for i in range(len(texts))] if labels is None else labels
    return Examples(list(texts), labels, ["neg", "pos"], "test")


TEXTS = ["a good film , really", "bad movie", "one", "", "这部电影非常好看，演员表演出色。"]


def test_nearest_neighbours_by_cosine_skip_padding_oov_whitespace_and_self(neighbours):
    assert neighbours.of("good") == ("great",)
    assert neighbours.of("Awful!") == ("bad",)  # lower-cased, punctuation removed
    assert neighbours.of("movie") == ("film",)
    assert neighbours.of("unknown") == ()
    three = Neighbours(EMBEDDING, VOCABULARY, k=3)
    assert three.of("good") == ("great", "film", "movie")  # nearest first


def test_nearest_neighbours_in_chunks_match_one_product(monkeypatch):
    rng = np.random.default_rng(0)
    vocabulary = ["", "[UNK]"] + [f"w{i}" for i in range(300)]
    embedding = rng.normal(size=(len(vocabulary), 8))
    ids = np.arange(2, len(vocabulary))
    whole = Neighbours(embedding, vocabulary, k=4).nearest(ids)
    monkeypatch.setattr(augment, "_CHUNK_ELEMENTS", 7 * len(vocabulary))  # 7 rows a chunk
    chunked = Neighbours(embedding, vocabulary, k=4).nearest(ids)
    np.testing.assert_array_equal(whole, chunked)
    unit = embedding / np.linalg.norm(embedding, axis=1, keepdims=True)
    similarity = unit @ unit.T
    similarity[:, :2] = -np.inf
    np.fill_diagonal(similarity, -np.inf)
    np.testing.assert_array_equal(whole, np.argsort(-similarity, axis=1)[2:, :4])


def test_neighbours_are_computed_for_the_units_asked_for_only(neighbours):
    neighbours.prepare(["good", "nothing", "Film"])
    assert set(neighbours._cache) == {VOCABULARY.index("good"), VOCABULARY.index("film")}


def test_same_seed_same_copies_another_seed_others():
    config = AugmentConfig(deletion=0.3, swap=0.3, copies=2)
    examples = _examples([" ".join(f"w{i}" for i in range(30))] * 5)
    first = augment_examples(examples, config, "word", seed=1)
    assert augment_examples(examples, config, "word", seed=1).texts == first.texts
    assert augment_examples(examples, config, "word", seed=2).texts != first.texts


def test_originals_kept_unchanged_each_followed_by_its_copies_labels_kept(neighbours):
    config = AugmentConfig(deletion=0.2, swap=0.2, synonym=0.2, insertion=0.2, copies=3)
    examples = _examples(TEXTS, labels=[1, 0, 1, 1, 0])
    before = list(examples.texts)
    result = augment_examples(examples, config, "word", seed=0, neighbours=neighbours)
    assert examples.texts == before and examples.labels.tolist() == [1, 0, 1, 1, 0]  # input untouched
    assert len(result) == 4 * len(TEXTS)
    assert result.texts[::4] == TEXTS
    assert result.labels.tolist() == [label for label in [1, 0, 1, 1, 0] for _ in range(4)]
    assert result.label_names == ["neg", "pos"] and result.source == "test"
    assert isinstance(result, Examples)


def test_deletion_deletes_each_unit_with_its_probability():
    words = [f"w{i}" for i in range(100_000)]
    copy = augment_text(" ".join(words), AugmentConfig(deletion=0.3), "word", np.random.default_rng(0))
    kept = copy.split()
    assert abs(1 - len(kept) / len(words) - 0.3) < 0.01
    survivors = set(kept)
    assert kept == [w for w in words if w in survivors]  # order kept


def test_deletion_never_deletes_every_unit_and_leaves_one_unit_alone():
    rng = np.random.default_rng(0)
    for _ in range(20):
        copy = augment_text("a b c d", AugmentConfig(deletion=1.0), "word", rng)
        assert len(copy.split()) == 1 and copy in "a b c d".split()
    assert augment_text("one", AugmentConfig(deletion=1.0), "word", rng) == "one"
    assert augment_text("", AugmentConfig(deletion=0.5, swap=0.5), "word", rng) == ""


def test_swap_keeps_the_units_and_swaps_eda_times():
    words = [f"w{i}" for i in range(1000)]
    copy = augment_text(" ".join(words), AugmentConfig(swap=0.1), "word", np.random.default_rng(0)).split()
    assert Counter(copy) == Counter(words)
    moved = sum(a != b for a, b in zip(copy, words))
    assert 150 <= moved <= 200  # int(0.1 * 1000) = 100 swaps of two different words, a few undoing others
    assert augment_text("one", AugmentConfig(swap=0.5), "word", np.random.default_rng(0)) == "one"


def test_synonym_replacement_draws_from_the_neighbour_table(neighbours):
    text = " ".join(["good", "bad", "film", "zzz"] * 250)
    copy = augment_text(text, AugmentConfig(synonym=0.2), "word", np.random.default_rng(0), neighbours)
    changed = [(a, b) for a, b in zip(text.split(), copy.split()) if a != b]
    assert len(copy.split()) == 1000 and len(changed) == 200  # int(0.2 * 1000)
    assert all(b in neighbours.of(a) for a, b in changed)


def test_insertion_inserts_neighbours_of_the_texts_units(neighbours):
    text = " ".join(["good", "zzz", "film"] * 100)
    copy = augment_text(text, AugmentConfig(insertion=0.1), "word", np.random.default_rng(0), neighbours).split()
    assert len(copy) == 330
    added = Counter(copy) - Counter(text.split())
    assert set(added) <= {"great", "movie"} and sum(added.values()) == 30
    assert augment_text("zzz", AugmentConfig(insertion=0.5), "word", np.random.default_rng(0), neighbours) == "zzz"


def test_each_copy_gets_one_operation():
    words = [f"w{i}" for i in range(200)]
    examples = _examples([" ".join(words)] * 200)
    result = augment_examples(examples, AugmentConfig(deletion=0.5, swap=0.05), "word", seed=0)
    copies = [text.split() for text in result.texts[1::2]]
    swapped = [c for c in copies if len(c) == len(words)]
    assert all(Counter(c) == Counter(words) and c != words for c in swapped)
    assert 70 < len(swapped) < 130  # about half


def test_char_units_for_chinese_leave_whitespace_in_place():
    rng = np.random.default_rng(0)
    text = "这部电影非常好看，演员表演出色。"
    copy = augment_text(text, AugmentConfig(swap=0.2), "char", rng)
    assert Counter(copy) == Counter(text) and copy != text
    spaced = augment_text("我 爱 你 们", AugmentConfig(swap=0.5), "char", rng)
    assert spaced[1::2] == "   " and sorted(spaced[::2]) == sorted("我爱你们")
    deleted = augment_text("我 爱 你", AugmentConfig(deletion=1.0), "char", rng)
    assert len(deleted) == 1 and deleted in "我爱你"  # the spaces left behind are trimmed


def test_char_synonyms_from_a_character_vocabulary():
    vocabulary = ["", "[UNK]", "好", "棒", "差"]
    embedding = np.array([[0, 0], [0, 0], [1, 0], [0.9, 0.1], [-1, 0]], np.float32)
    neighbours = Neighbours(embedding, vocabulary, k=1, strip_punctuation=False)
    copy = augment_text("好好好", AugmentConfig(synonym=1.0), "char", np.random.default_rng(0), neighbours)
    assert copy == "棒棒棒"


def test_hooks_prepare_and_translate_make_the_copies_from_other_texts():
    examples = _examples(["<b>Great</b> film", "bad"])
    result = augment_examples(
        examples,
        AugmentConfig(copies=1),
        "word",
        seed=0,
        translate=lambda texts: [t.upper() for t in texts],
        prepare=lambda texts: [t.replace("<b>", "").replace("</b>", "") for t in texts],
    )
    assert result.texts == ["<b>Great</b> film", "GREAT FILM", "bad", "BAD"]


def test_refuses_an_unknown_unit_and_synonyms_without_neighbours():
    with pytest.raises(ValueError, match="unit"):
        augment_examples(_examples(["a"]), AugmentConfig(swap=0.1), "auto", seed=0)
    with pytest.raises(ValueError, match="neighbours"):
        augment_examples(_examples(["a"]), AugmentConfig(synonym=0.1), "word", seed=0)
