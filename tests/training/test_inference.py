"""load_run().predict and evaluate_run on the shared tiny run."""

import json
from pathlib import Path

import numpy as np
import pytest

from tfrnn.data import Examples
from tfrnn.errors import ConfigError, DataError
from tfrnn.training.inference import evaluate_run, load_run

TEXTS = [
    "A warm, funny film with a great cast.",
    "Dull and far too long.<br /><br />I left early.",
    "",
    "Ein schöner Film 🎬",
    "好看的电影",
    "word " * 500,
]


def test_predict_returns_label_and_probabilities(loaded_tiny_run):
    predictions = loaded_tiny_run.predict(TEXTS)
    assert [p["text"] for p in predictions] == TEXTS  # same order, raw text kept
    examples = Examples(TEXTS, np.zeros(len(TEXTS)), ["neg", "pos"], "input")
    probabilities = loaded_tiny_run.probabilities(examples)
    for prediction, row in zip(predictions, probabilities):
        assert list(prediction["probabilities"]) == ["neg", "pos"]
        values = np.array(list(prediction["probabilities"].values()))
        np.testing.assert_allclose(values, row, rtol=1e-6)
        assert values.sum() == pytest.approx(1.0, abs=1e-6)
        assert prediction["label"] == ["neg", "pos"][int(np.argmax(row))]


def test_predict_does_not_depend_on_the_batch(loaded_tiny_run):
    together = loaded_tiny_run.predict(TEXTS)
    for text, expected in zip(TEXTS, together):
        alone = loaded_tiny_run.predict([text])[0]
        np.testing.assert_allclose(
            list(alone["probabilities"].values()), list(expected["probabilities"].values()), atol=1e-6
        )


def test_loaded_run_has_the_labels_and_config(loaded_tiny_run, tiny_run):
    assert loaded_tiny_run.label_names == ["neg", "pos"]
    assert loaded_tiny_run.paths.root == tiny_run.run_dir
    assert loaded_tiny_run.config.model.units == 8


def test_evaluate_default_is_the_test_split_of_training(tiny_run):
    result = evaluate_run(tiny_run.run_dir)
    expected = tiny_run.metrics["test"]
    assert result["count"] == expected["count"] == 400
    assert result["accuracy"] == pytest.approx(expected["accuracy"])
    assert result["confusion_matrix"] == expected["confusion_matrix"]
    written = Path(result["written_to"])
    assert written.parent == tiny_run.run_dir / "evaluations" and written.name.startswith("embedded")
    assert json.loads(written.read_text())["accuracy"] == result["accuracy"]


def test_a_second_evaluation_does_not_overwrite_the_first(tiny_run):
    first, second = evaluate_run(tiny_run.run_dir), evaluate_run(tiny_run.run_dir)
    assert first["written_to"] != second["written_to"]
    assert Path(first["written_to"]).is_file() and Path(second["written_to"]).is_file()


def test_evaluate_on_a_csv_file(tiny_run, loaded_tiny_run, tmp_path):
    texts = ["A lovely, moving film.", "Awful from start to finish.", "The cast is superb.", "Boring."]
    path = tmp_path / "holdout.csv"
    path.write_text("text,label\n" + "".join(f'"{t}",{l}\n' for t, l in zip(texts, ["pos", "neg", "1", "0"])))
    result = evaluate_run(tiny_run.run_dir, ["data.source=file", f"data.test_path={path}"])
    labels = np.array([1, 0, 1, 0])  # "1" and "0" stand for the label names at those indices
    predicted = np.array([["neg", "pos"].index(p["label"]) for p in loaded_tiny_run.predict(texts)])
    assert result["count"] == 4
    assert result["accuracy"] == pytest.approx(np.mean(predicted == labels))
    assert sum(map(sum, result["confusion_matrix"])) == 4
    assert result["data"] == str(path)
    assert Path(result["written_to"]).name.startswith("holdout")


def test_evaluate_unknown_label_names_file_and_line(tiny_run, tmp_path):
    path = tmp_path / "odd.csv"
    path.write_text("text,label\ngood,pos\nmeh,mixed\n")
    with pytest.raises(DataError) as caught:
        evaluate_run(tiny_run.run_dir, ["data.source=file", f"data.test_path={path}"])
    message = str(caught.value)
    assert f"{path}:3" in message and "'mixed'" in message and "neg, pos" in message


def test_load_run_errors(tmp_path, tiny_run):
    with pytest.raises(ConfigError, match="run directory not found"):
        load_run(tmp_path / "nope")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.yaml").write_text((tiny_run.run_dir / "config.yaml").read_text())
    with pytest.raises(ConfigError, match=r"model\.keras: missing"):
        load_run(tmp_path / "half")
