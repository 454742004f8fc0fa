"""export_run: versioned SavedModels, all-or-nothing writes, each weight stored once, and a
serving signature that gives LoadedRun.predict's probabilities from raw text in a process that
cannot import keras or tfrnn (an RNN export needs no TensorFlow Text op)."""

import os
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.fixtures import serve_in_fresh_process
from tfrnn.errors import ConfigError
from tfrnn.export import custom_ops, export_run, next_version
from tfrnn.runs import load_run

TEXTS = [
    "A warm, funny film with a great cast.",
    "Dull.<br /><br />Far too long, and the ending is awful.",
    "<p>Great &amp; moving</p>",
    "",
    "   \t  ",
    "GREAT FILM!!!",
    "Un film très émouvant, à voir absolument. Größe ß",
    "这部电影非常好看，演员表演出色。",
    "Loved it 😍🎬👍",
    ("a lovely film with a dull plot " * 400)[:10_000],
]


def saved_values(export_dir):
    """Values in a SavedModel's checkpoint (VERSION/variables), its object graph left out."""
    entries = tf.train.list_variables(str(Path(export_dir) / "variables" / "variables"))
    return sum(int(np.prod(shape)) for name, shape in entries if name != "_CHECKPOINTABLE_OBJECT_GRAPH")


@pytest.fixture(scope="module")
def exported(tiny_run, tmp_path_factory):
    """(model_root, version folder) of the tiny run's first export."""
    model_root = tmp_path_factory.mktemp("saved_models") / "tiny"
    return model_root, export_run(tiny_run.run_dir, model_root)


def _visible(model_root):
    return sorted(p.name for p in model_root.iterdir())


def test_first_export_is_version_1_with_its_assets(exported, tiny_run):
    model_root, target = exported
    assert target == model_root / "1"
    assert (target / "saved_model.pb").is_file() and (target / "variables").is_dir()
    extra = target / "assets.extra"
    assert (extra / "tfrnn_config.yaml").read_text() == (tiny_run.run_dir / "config.yaml").read_text()
    assert (extra / "labels.txt").read_text(encoding="utf-8") == "neg\npos\n"
    assert not [name for name in os.listdir(model_root) if name.startswith(".")]  # no staging left


def test_version_folder_permissions_follow_the_umask(exported, tmp_path):
    _, target = exported
    (tmp_path / "plain").mkdir()
    assert target.stat().st_mode & 0o777 == (tmp_path / "plain").stat().st_mode & 0o777


def test_served_probabilities_equal_loaded_run_predict(exported, tiny_run, loaded_tiny_run, tmp_path):
    _, target = exported
    served = serve_in_fresh_process(target, TEXTS, tmp_path)
    assert served["loaded"] == []  # keras and tfrnn were never needed
    assert served["inputs"] == {"text": ["string", [None]]}
    assert served["outputs"] == {
        "probabilities": ["float32", [None, 2]],
        "label_id": ["int32", [None]],
        "label": ["string", [None]],
    }
    expected = loaded_tiny_run.predict(TEXTS)
    probabilities = np.array(served["probabilities"])
    np.testing.assert_allclose(probabilities, [list(p["probabilities"].values()) for p in expected], atol=1e-5, rtol=0)
    assert served["label_id"] == probabilities.argmax(axis=1).tolist()
    assert served["label"] == [["neg", "pos"][i] for i in served["label_id"]]
    assert served["label"] == [p["label"] for p in expected]
    # The export's softmax over the model's logits is LoadedRun.probabilities, to 1e-5.
    np.testing.assert_allclose(probabilities, load_run(tiny_run.run_dir).probabilities(TEXTS), atol=1e-5, rtol=0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_export_holds_each_weight_once(exported, loaded_tiny_run):
    # Tracking the model besides the endpoint stored its Keras variables and the tf.Variables
    # they wrap: twice the parameters (TF Serving then loads twice the memory).
    _, target = exported
    assert saved_values(target) == loaded_tiny_run.model.count_params()
    float32_bytes = 4 * loaded_tiny_run.model.count_params()
    assert sum(f.stat().st_size for f in (target / "variables").glob("variables.data-*")) < 1.05 * float32_bytes + 4096


def test_rnn_export_needs_no_tensorflow_text_op(exported):
    _, target = exported
    assert custom_ops(target) == []


def test_next_export_is_version_2(exported, tiny_run, tmp_path):
    model_root = Path(shutil.copytree(exported[0], tmp_path / "tiny"))  # the shared export stays as it is
    assert next_version(model_root) == 2
    assert export_run(tiny_run.run_dir, model_root) == model_root / "2"
    assert _visible(model_root) == ["1", "2"]
    assert (model_root / "2" / "assets.extra" / "labels.txt").read_text(encoding="utf-8") == "neg\npos\n"


def test_next_version_ignores_other_entries(tmp_path):
    for name in ("1", "3", "notes", ".tmp-9-abc"):
        (tmp_path / name).mkdir()
    (tmp_path / "12").write_text("a file, not a version")
    assert next_version(tmp_path) == 4
    assert next_version(tmp_path / "missing") == 1


def test_existing_version_is_refused_untouched(exported, tiny_run):
    model_root, target = exported
    before = {p: p.stat().st_mtime_ns for p in target.rglob("*")}
    with pytest.raises(ConfigError, match="version 1 exists already") as caught:
        export_run(tiny_run.run_dir, model_root, version=1)
    assert str(target) in str(caught.value)
    assert {p: p.stat().st_mtime_ns for p in target.rglob("*")} == before


def test_version_must_be_positive(tiny_run, tmp_path):
    with pytest.raises(ConfigError, match="--version 0"):
        export_run(tiny_run.run_dir, tmp_path / "m", version=0)


@pytest.mark.parametrize("failure", [OSError("No space left on device"), KeyboardInterrupt()])
def test_failed_export_leaves_nothing_visible(tiny_run, tmp_path, monkeypatch, failure):
    model_root = tmp_path / "m"
    (model_root / "1").mkdir(parents=True)

    def write_out(self, path, **kwargs):
        (Path(path) / "saved_model.pb").write_bytes(b"half")  # a partial write
        raise failure

    # ExportArchive() makes a backend-specific subclass: patch the class actually used.
    monkeypatch.setattr(type(keras.export.ExportArchive()), "write_out", write_out)
    with pytest.raises(type(failure)):
        export_run(tiny_run.run_dir, model_root)
    assert _visible(model_root) == ["1"]  # no version 2, no staging folder
    assert os.listdir(model_root / "1") == []
