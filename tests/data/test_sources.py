"""Each source loads the right texts, labels and label names."""

import os

import numpy as np
import pytest

from tests.data.helpers import file_config
from tfrnn.config import DataConfig
from tfrnn.data import load_examples
from tfrnn.data.sources import source_of
from tfrnn.errors import DataError


def test_embedded_counts_and_balance():
    train = load_examples(DataConfig(), "train")
    test = load_examples(DataConfig(), "test")
    assert (len(train), len(test)) == (2000, 400)
    assert train.label_names == test.label_names == ["neg", "pos"]
    assert np.bincount(train.labels).tolist() == [1000, 1000]
    assert np.bincount(test.labels).tolist() == [200, 200]
    assert train.labels.dtype == np.int32 and train.skipped_blank == 0
    assert "movie_reviews_train.csv" in train.source
    assert all(text.strip() for text in train.texts)


def test_csv_string_labels_quoted_multiline(write):
    path = write("reviews.csv", 'text,label\n"Good, <b>really</b>\ngood",pos\nBad.,neg\n"He said ""meh""",neg\n')
    examples = load_examples(file_config(path), "train")
    assert examples.texts == ["Good, <b>really</b>\ngood", "Bad.", 'He said "meh"']  # raw
    assert examples.labels.tolist() == [1, 0, 0] and examples.label_names == ["neg", "pos"]
    assert examples.source == path


def test_tsv_custom_columns_integer_labels_multiclass(write):
    # TSV is unquoted: the quote inside a sentence is an ordinary character.
    path = write("sst.tsv", 'id\tsentence\tscore\n1\tit\'s "fine"\t1\n2\tawful\t0\n3\tsuperb\t2\n4\tok\t1\n')
    examples = load_examples(file_config(path, text_column="sentence", label_column="score"), "train")
    assert examples.texts == ['it\'s "fine"', "awful", "superb", "ok"]
    assert examples.label_names == ["0", "1", "2"] and examples.labels.tolist() == [1, 0, 2, 1]


def test_integer_labels_sort_numerically(write):
    path = write("stars.csv", "text,label\na,10\nb,2\nc,1\n")
    examples = load_examples(file_config(path), "train")
    assert examples.label_names == ["1", "2", "10"] and examples.labels.tolist() == [2, 1, 0]


def test_jsonl_integer_labels_named_by_config(write):
    path = write("reviews.jsonl", '{"review": "Loved it", "y": 1}\n\n{"review": "Hated it", "y": 0}\n')
    config = file_config(path, text_column="review", label_column="y", labels=["neg", "pos"])
    examples = load_examples(config, "train")
    assert examples.texts == ["Loved it", "Hated it"]
    assert examples.labels.tolist() == [1, 0] and examples.label_names == ["neg", "pos"]


def test_json_extension_reads_json_lines_with_string_labels(write):
    path = write("reviews.json", '{"text": "fun", "label": "happy"}\n{"text": "dull", "label": "sad"}\n')
    examples = load_examples(file_config(path), "train")
    assert examples.label_names == ["happy", "sad"] and examples.labels.tolist() == [0, 1]


def test_config_labels_fix_the_order(write):
    path = write("reviews.csv", "text,label\nfine,pos\nbad,neg\n")
    examples = load_examples(file_config(path, labels=["pos", "neg"]), "train")
    assert examples.labels.tolist() == [0, 1] and examples.label_names == ["pos", "neg"]


def test_test_split_takes_label_names_from_training_data(write):
    train = write("train.csv", "text,label\na,x\nb,y\nc,z\n")
    test = write("test.csv", "text,label\nd,z\n")
    examples = load_examples(file_config(train, test_path=test), "test")
    assert examples.label_names == ["x", "y", "z"] and examples.labels.tolist() == [2]


def test_blank_texts_are_skipped_and_counted(write):
    path = write("reviews.csv", "text,label\ngood,pos\n   ,neg\n<br />,neg\nbad,neg\n")
    examples = load_examples(file_config(path), "train")
    assert examples.texts == ["good", "bad"] and examples.skipped_blank == 2


def test_limit_is_seeded_and_keeps_both_classes():
    config = DataConfig(limit=100)
    first, again = load_examples(config, "train"), load_examples(config, "train")
    other = load_examples(config, "train", seed=1)
    assert len(first) == 100 and first.texts == again.texts and first.texts != other.texts
    assert 30 < np.bincount(first.labels)[0] < 70
    assert len(load_examples(config, "test")) == 400  # the limit is for training data only


def _write_aclimdb(root):
    reviews = {
        "train/pos": ["Great<br />film", "Loved it"],
        "train/neg": ["Boring", "Awful", "Meh"],
        "test/pos": ["Superb"],
        "test/neg": ["Dull"],
        "train/unsup": ["ignored"],
    }
    for folder, texts in reviews.items():
        (root / folder).mkdir(parents=True)
        for i, text in enumerate(texts):
            (root / folder / f"{i}_7.txt").write_text(text, encoding="utf-8")
    (root / "train" / "urls_pos.txt").write_text("http://example.invalid\n")  # not inside pos/


def test_aclimdb_folder(tmp_path):
    _write_aclimdb(tmp_path)
    config = DataConfig(source="aclimdb", path=str(tmp_path))
    train, test = load_examples(config, "train"), load_examples(config, "test")
    assert train.label_names == ["neg", "pos"]
    assert sorted(zip(train.texts, train.labels.tolist())) == [
        ("Awful", 0),
        ("Boring", 0),
        ("Great<br />film", 1),
        ("Loved it", 1),
        ("Meh", 0),
    ]
    assert sorted(test.texts) == ["Dull", "Superb"]
    assert str(tmp_path) in train.source


# ------------------------------------------------------------- which source reads a named path


def test_source_of_a_file_or_an_aclimdb_folder(write, tmp_path):
    for name in ("r.csv", "r.TSV", "r.jsonl"):
        assert source_of(write(name, "text,label\n")) == "file"
    write("imdb/train/pos/1.txt", "good")
    write("imdb/train/neg/1.txt", "bad")
    assert source_of(tmp_path / "imdb") == "aclimdb"
    write("imdb/test/pos/1.txt", "good")
    write("imdb/test/neg/1.txt", "bad")
    assert source_of(tmp_path / "imdb", split="test") == "aclimdb"


@pytest.mark.parametrize(
    "case, kwargs, parts",
    [
        ("missing.csv", {}, ["--data {path}: not found", "expected a CSV, TSV or JSONL file", "train/pos"]),
        ("notes.txt", {}, ["--data {path}: a file with the extension '.txt'", ".csv, .tsv, .jsonl"]),
        ("folder", {}, ["--data {path}: a folder without train/pos and train/neg", "aclImdb folder"]),
        ("half", {}, ["a folder without train/pos and train/neg"]),  # train/pos only
        ("half", {"split": "test"}, ["a folder without test/pos and test/neg", "(test/pos, test/neg)"]),
        ("folder", {"folders": False}, ["--data {path}: a folder; expected a CSV, TSV or JSONL file"]),
        ("fifo", {}, ["--data {path}: neither a file nor a folder"]),
    ],
)
def test_source_of_anything_else_names_the_option_and_what_was_expected(write, tmp_path, case, kwargs, parts):
    write("notes.txt", "hello")
    (tmp_path / "folder").mkdir()
    write("half/train/pos/1.txt", "good")
    os.mkfifo(tmp_path / "fifo")
    path = tmp_path / case
    with pytest.raises(DataError) as caught:
        source_of(path, "--data", **kwargs)
    for part in parts:
        assert part.format(path=path) in str(caught.value)
    if kwargs.get("folders") is False:
        assert "aclImdb" not in str(caught.value)
