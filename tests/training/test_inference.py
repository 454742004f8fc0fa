"""load_run().predict and .probabilities on the shared tiny run; evaluate_run on copies of it
(evaluations are written into the run directory)."""

import json
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures import copy_run
from tfrnn.errors import ConfigError, DataError
from tfrnn.runs import load_run
from tfrnn.training.inference import evaluate_run

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
    probabilities = loaded_tiny_run.probabilities(TEXTS)
    assert probabilities.shape == (len(TEXTS), 2) and probabilities.dtype == np.float32
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


def test_probabilities_of_no_texts(loaded_tiny_run):
    probabilities = loaded_tiny_run.probabilities([])
    assert probabilities.shape == (0, 2) and probabilities.dtype == np.float32
    assert loaded_tiny_run.predict([]) == []


def test_loaded_run_has_the_labels_and_spec(loaded_tiny_run, tiny_run):
    assert loaded_tiny_run.label_names == ["neg", "pos"]
    assert loaded_tiny_run.paths.root == tiny_run.run_dir
    assert loaded_tiny_run.spec.model.rnn.units == 8
    assert loaded_tiny_run.spec.data.labels == ("neg", "pos") and loaded_tiny_run.spec.run_name == "tiny"
    assert loaded_tiny_run.model.preprocessor is not None
    assert not hasattr(loaded_tiny_run, "config") and not hasattr(loaded_tiny_run, "encoder")


def test_loading_never_reads_the_vocabulary_file(tiny_run, loaded_tiny_run, tmp_path):
    run_dir = copy_run(tiny_run.run_dir, tmp_path)
    (run_dir / "vocabulary.txt").write_text("not\nthe\nvocabulary\n", encoding="utf-8")
    np.testing.assert_allclose(load_run(run_dir).probabilities(TEXTS), loaded_tiny_run.probabilities(TEXTS), atol=1e-6)
    (run_dir / "vocabulary.txt").unlink()
    np.testing.assert_allclose(load_run(run_dir).probabilities(TEXTS), loaded_tiny_run.probabilities(TEXTS), atol=1e-6)


def test_evaluate_default_is_the_test_split_of_training(tiny_run, tmp_path):
    run_dir = copy_run(tiny_run.run_dir, tmp_path)
    result = evaluate_run(run_dir)
    expected = tiny_run.metrics["test"]
    assert result["count"] == expected["count"] == 400
    assert result["accuracy"] == pytest.approx(expected["accuracy"])
    assert result["confusion_matrix"] == expected["confusion_matrix"]
    written = Path(result["written_to"])
    assert written == run_dir / "evaluations" / "embedded.json"  # the first evaluation: a plain name
    assert json.loads(written.read_text()) == {k: v for k, v in result.items() if k != "written_to"}
    assert sorted(p.name for p in (run_dir / "evaluations").iterdir()) == ["embedded.json"]
    assert not (tiny_run.run_dir / "evaluations").exists()  # the shared run is untouched


def test_a_second_evaluation_does_not_overwrite_the_first(tiny_run, tmp_path):
    run_dir = copy_run(tiny_run.run_dir, tmp_path)
    first, second, third = evaluate_run(run_dir), evaluate_run(run_dir), evaluate_run(run_dir)
    evaluations = run_dir / "evaluations"
    assert Path(first["written_to"]) == evaluations / "embedded.json"
    assert Path(second["written_to"]) == evaluations / "embedded-2.json"
    assert Path(third["written_to"]) == evaluations / "embedded-3.json"
    assert sorted(p.name for p in evaluations.iterdir()) == ["embedded-2.json", "embedded-3.json", "embedded.json"]
    assert json.loads((evaluations / "embedded.json").read_text())["accuracy"] == first["accuracy"]


def test_evaluation_name(tiny_run, tmp_path):
    run_dir = copy_run(tiny_run.run_dir, tmp_path)
    assert Path(evaluate_run(run_dir, name="nightly")["written_to"]) == run_dir / "evaluations" / "nightly.json"
    assert Path(evaluate_run(run_dir, name="nightly")["written_to"]) == run_dir / "evaluations" / "nightly-2.json"


def test_evaluate_on_a_csv_file(tiny_run, loaded_tiny_run, tmp_path):
    run_dir = copy_run(tiny_run.run_dir, tmp_path)
    texts = ["A lovely, moving film.", "Awful from start to finish.", "The cast is superb.", "Boring."]
    path = tmp_path / "holdout.csv"
    path.write_text(
        "text,label\n" + "".join(f'"{text}",{label}\n' for text, label in zip(texts, ["pos", "neg", "1", "0"]))
    )
    result = evaluate_run(run_dir, ["data.source=file", f"data.test_path={path}"])
    labels = np.array([1, 0, 1, 0])  # "1" and "0" stand for the label names at those indices
    predicted = np.array([["neg", "pos"].index(p["label"]) for p in loaded_tiny_run.predict(texts)])
    assert result["count"] == 4
    assert result["accuracy"] == pytest.approx(np.mean(predicted == labels))
    assert sum(map(sum, result["confusion_matrix"])) == 4
    assert result["data"] == str(path)
    assert Path(result["written_to"]) == run_dir / "evaluations" / "holdout.json"


def test_evaluate_unknown_label_names_file_and_line(tiny_run, tmp_path):
    run_dir = copy_run(tiny_run.run_dir, tmp_path)
    path = tmp_path / "odd.csv"
    path.write_text("text,label\ngood,pos\nmeh,mixed\n")
    with pytest.raises(DataError) as caught:
        evaluate_run(run_dir, ["data.source=file", f"data.test_path={path}"])
    message = str(caught.value)
    assert f"{path}:3" in message and "'mixed'" in message and "neg, pos" in message
    assert not (run_dir / "evaluations").exists()  # nothing written


@pytest.mark.parametrize("override", ["model.rnn.units=3", "train.epochs=1", "run_name=other", "model.cell=gru"])
def test_evaluate_takes_data_overrides_only(tiny_run, tmp_path, override):
    run_dir = copy_run(tiny_run.run_dir, tmp_path)
    with pytest.raises(ConfigError) as caught:
        evaluate_run(run_dir, ["data.source=embedded", override])
    assert str(caught.value) == f"override {override!r}: evaluate takes data.* settings only"
    assert not (run_dir / "evaluations").exists()


def test_evaluate_refuses_a_bad_data_override_with_its_name(tiny_run, tmp_path):
    run_dir = copy_run(tiny_run.run_dir, tmp_path)
    with pytest.raises(ConfigError) as caught:
        evaluate_run(run_dir, ["data.tokenizer=char"])
    assert "data.tokenizer" in str(caught.value) and "model.rnn.tokenizer" in str(caught.value)
    assert not (run_dir / "evaluations").exists()


def test_load_run_errors(tmp_path, tiny_run):
    with pytest.raises(ConfigError, match="run directory not found"):
        load_run(tmp_path / "nope")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.yaml").write_text((tiny_run.run_dir / "config.yaml").read_text())
    with pytest.raises(ConfigError, match=r"model\.keras: missing.*tfrnn train --resume"):
        load_run(tmp_path / "half")


def test_load_run_of_an_older_tfrnn_names_the_version(tmp_path, tiny_run):
    """A tfrnn 0.1 run (flat model keys, no tfrnn_version): the key, its new name and the versions."""
    old = copy_run(tiny_run.run_dir, tmp_path)
    (old / "config.yaml").write_text("model:\n  cell: lstm\n  units: 8\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_run(old)
    assert str(caught.value) == (
        f"{old / 'config.yaml'}:2: model.cell: it is model.rnn.cell now (written by tfrnn 0.1 or older; this is tfrnn 0.2.0)"
    )
