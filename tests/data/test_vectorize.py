"""The vectorizer: word and char mode, padding/OOV ids, and the vocabulary file round trip."""

import numpy as np
import pytest

from tfrnn.config import DataConfig
from tfrnn.data import WordEncoder, load_vectorizer, make_vectorizer, save_vocabulary
from tfrnn.errors import DataError

WORDS = ["the film was great!", "the film wasn't good.", "great acting, great film"]
CHINESE = ["我很喜欢这部电影", "这部电影不好看", "酒店 很好"]


def _ids(vectorizer, texts, config=DataConfig()):
    """Token ids as the pipeline gives them: cleaned, then vectorized (no truncation below 200)."""
    return np.asarray(WordEncoder(vectorizer, config).encode(texts)).tolist()


def test_word_mode_strips_punctuation_and_reserves_padding_and_oov():
    vectorizer = make_vectorizer(WORDS, DataConfig())
    vocabulary = vectorizer.get_vocabulary()
    assert vocabulary[:4] == ["", "[UNK]", "great", "film"]
    assert "wasnt" in vocabulary and "great!" not in vocabulary and "acting," not in vocabulary
    assert _ids(vectorizer, ["great film, unseen"]) == [[2, 3, 1]]


def test_vocab_size_counts_padding_and_oov():
    vectorizer = make_vectorizer(WORDS, DataConfig(vocab_size=4))
    assert vectorizer.get_vocabulary() == ["", "[UNK]", "great", "film"]


def test_char_mode_splits_chinese_into_characters():
    vectorizer = make_vectorizer(CHINESE, DataConfig(tokenizer="char"))
    ids = _ids(vectorizer, ["喜欢电影"], DataConfig(tokenizer="char"))[0]
    assert len(ids) == 4 and 1 not in ids and 0 not in ids
    assert {"我", "喜", " "} <= set(vectorizer.get_vocabulary())


@pytest.mark.parametrize("tokenizer, texts", [("word", WORDS), ("char", CHINESE)])
def test_vocabulary_round_trip(tmp_path, tokenizer, texts):
    config = DataConfig(tokenizer=tokenizer)
    vectorizer = make_vectorizer(texts, config)
    path = tmp_path / "vocab.txt"
    save_vocabulary(vectorizer, path)
    lines = path.read_text(encoding="utf-8").split("\n")
    assert lines[:2] == ["", "[UNK]"] and len(lines) == vectorizer.vocabulary_size() + 1
    loaded = load_vectorizer(path, config)
    assert loaded.get_vocabulary() == vectorizer.get_vocabulary()
    sample = texts + ["unseen words 没见过 here"]
    assert _ids(loaded, sample, config) == _ids(vectorizer, sample, config)


def test_load_vectorizer_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_vectorizer(tmp_path / "missing.txt", DataConfig())
    (tmp_path / "plain.txt").write_text("the\nfilm\n")
    with pytest.raises(DataError, match="plain.txt:1"):
        load_vectorizer(tmp_path / "plain.txt", DataConfig())
    (tmp_path / "big.txt").write_text("\n[UNK]\na\nb\nc\n")
    with pytest.raises(DataError, match="vocab_size"):
        load_vectorizer(tmp_path / "big.txt", DataConfig(vocab_size=4))
