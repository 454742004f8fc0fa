"""`tfrnn pretrain`'s unlabelled text: every kind of source, several at once, blank text refused."""

import socket

import pytest
import tensorflow_datasets as tfds

from tfrnn.config import TextDataConfig
from tfrnn.data.text_sources import read_documents, split_documents
from tfrnn.errors import DataError


def test_tables_plain_text_and_folders_in_order(write, tmp_path):
    table = write("reviews.csv", 'text,label\n"Good, <b>really</b>",pos\nBad.,neg\n')
    jsonl = write("more.jsonl", '{"review": "json one", "stars": 5}\n\n{"review": "json two"}\n')
    plain = write("notes.txt", "first line\n\nsecond line\n")
    write("corpus/b.txt", "document b")
    write("corpus/sub/a.txt", "document a")
    write("corpus/skip.md", "not a .txt file")
    config = TextDataConfig(sources=[table, plain, str(tmp_path / "corpus")])
    documents, counts = read_documents(config)
    assert documents == ["Good, <b>really</b>", "Bad.", "first line\n\nsecond line\n", "document b", "document a"]
    assert list(counts.values()) == [2, 1, 2]
    lines = read_documents(TextDataConfig(sources=[plain], lines=True))[0]
    assert lines == ["first line", "second line"]
    # A JSONL's text key; labels are not needed (nor read).
    assert read_documents(TextDataConfig(sources=[jsonl], text_column="review"))[0] == ["json one", "json two"]


def test_embedded_and_limit():
    documents, counts = read_documents(TextDataConfig(sources=["embedded"]))
    assert counts == {"embedded": 2400} and len(documents) == 2400
    limited = read_documents(TextDataConfig(sources=["embedded"], limit=100))[0]
    assert len(limited) == 100 and set(limited) <= set(documents)
    assert limited == read_documents(TextDataConfig(sources=["embedded"], limit=100))[0]  # seeded


def test_tfds_unsupervised_and_train_texts_under_mock_data(tmp_path, monkeypatch):
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: pytest.fail("the network was probed"))
    with tfds.testing.mock_data(num_examples=8):
        documents, counts = read_documents(TextDataConfig(sources=["imdb"], data_dir=str(tmp_path)))
    assert 0 < counts["imdb"] <= 16 and all(isinstance(d, str) and d for d in documents)


@pytest.mark.parametrize(
    "content, expected",
    [
        ("text,label\n<br />,pos\n  ,neg\n", "blank after cleaning"),  # only blank text
        ("label\npos\nneg\n", "no column 'text'"),  # a label-only table
        ("", "empty file"),
    ],
)
def test_sources_without_text_are_refused(write, content, expected):
    path = write("data.csv", content)
    with pytest.raises(DataError, match=expected) as caught:
        read_documents(TextDataConfig(sources=[path]))
    assert path in str(caught.value)


def test_missing_sources_are_named(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_documents(TextDataConfig(sources=[str(tmp_path / "nope.csv")]))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="without .txt files"):
        read_documents(TextDataConfig(sources=[str(tmp_path / "empty")]))


def test_split_documents_is_seeded_and_complete():
    documents = [f"doc {i}" for i in range(40)]
    train, held = split_documents(documents, 0.1, seed=3)
    assert len(held) == 4 and sorted(train + held) == sorted(documents)
    assert (train, held) == split_documents(documents, 0.1, seed=3)
    assert split_documents(documents, 0.0, seed=3) == (documents, [])
    with pytest.raises(DataError, match="too few"):
        split_documents(["only one"], 0.5, seed=0)
