"""Bad input raises DataError naming the file, and the line where there is one."""

import pytest

from tests.data.helpers import file_config
from tfrnn.config import DataConfig
from tfrnn.data import load_examples
from tfrnn.errors import ConfigError, DataError


def _error(config, split="train"):
    with pytest.raises(DataError) as caught:
        load_examples(config, split)
    return caught.value


def test_missing_file(tmp_path):
    error = _error(file_config(str(tmp_path / "nope.csv")))
    assert "nope.csv" in str(error) and "not found" in str(error)


def test_unset_path():
    assert "data.path" in str(_error(DataConfig(source="file")))
    assert "data.test_path" in str(_error(DataConfig(source="file", path="x.csv"), "test"))


def test_unknown_extension(write):
    assert ".txt" in str(_error(file_config(write("reviews.txt", "text,label\na,b\n"))))


@pytest.mark.parametrize("content, words", [(b"", "empty file"), (b"text,label\n", "only a header")])
def test_empty_files(write, content, words):
    error = _error(file_config(write("empty.csv", content)))
    assert "empty.csv" in str(error) and words in str(error)


def test_missing_column_lists_the_columns(write):
    error = _error(file_config(write("reviews.csv", "review,sentiment\na,pos\n")))
    assert "reviews.csv:1" in str(error) and "'text'" in str(error) and "review, sentiment" in str(error)


def test_missing_json_key(write):
    error = _error(file_config(write("reviews.jsonl", '{"text": "a", "label": "x"}\n{"text": "b"}\n')))
    assert "reviews.jsonl:2" in str(error) and "'label'" in str(error)


def test_bad_utf8_names_line_and_column(write):
    path = write("latin1.csv", "text,label\ngood,pos\ncaf\xe9 ok,neg\n".encode("latin-1"))
    error = _error(file_config(path))
    assert (error.path, error.line, error.column) == (path, 3, 4)
    assert "latin1.csv:3:4" in str(error) and "UTF-8" in str(error)


def test_bad_utf8_in_aclimdb_file(tmp_path):
    for folder in ("train/pos", "train/neg"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "0_1.txt").write_text("fine")
    (tmp_path / "train/neg/1_1.txt").write_bytes(b"ok\nbad \xff")
    error = _error(DataConfig(source="aclimdb", path=str(tmp_path)))
    assert "1_1.txt:2:5" in str(error)


def test_aclimdb_missing_folder(tmp_path):
    (tmp_path / "train" / "pos").mkdir(parents=True)
    assert "train/neg" in str(_error(DataConfig(source="aclimdb", path=str(tmp_path))))


def test_unknown_label_against_config_labels(write):
    path = write("reviews.csv", "text,label\ngood,pos\nbad,negative\n")
    error = _error(file_config(path, labels=["neg", "pos"]))
    assert "reviews.csv:3" in str(error) and "'negative'" in str(error)


def test_unknown_label_in_test_split(write):
    train = write("train.csv", "text,label\na,pos\nb,neg\n")
    test = write("test.csv", "text,label\nc,pos\nd,neutral\n")
    error = _error(file_config(train, test_path=test), "test")
    assert "test.csv:3" in str(error) and "'neutral'" in str(error)


def test_single_class(write):
    error = _error(file_config(write("one.csv", "text,label\na,pos\nb,pos\n")))
    assert "one.csv" in str(error) and "only one class" in str(error)


def test_blank_text_as_error(write):
    path = write("reviews.csv", 'text,label\ngood,pos\n" ",neg\n')
    error = _error(file_config(path, blank_texts="error"))
    assert "reviews.csv:3" in str(error) and "blank" in str(error)


def test_only_blank_texts(write):
    assert "no examples" in str(_error(file_config(write("blank.csv", "text,label\n  ,pos\n"))))


def test_wrong_field_count(write):
    error = _error(file_config(write("reviews.csv", "text,label\ngood,pos\nbad, really bad,neg\n")))
    assert "reviews.csv:3" in str(error) and "found 3" in str(error)


def test_invalid_json_line(write):
    error = _error(file_config(write("reviews.jsonl", '{"text": "a", "label": 1}\n{"text": "b", label: 0}\n')))
    assert "reviews.jsonl:2:15" in str(error)


def test_json_label_of_wrong_type(write):
    error = _error(file_config(write("reviews.jsonl", '{"text": "a", "label": 0.5}\n')))
    assert "reviews.jsonl:1" in str(error) and "0.5" in str(error)


def test_bad_split_name():
    with pytest.raises(ConfigError):
        load_examples(DataConfig(), "validation")
