"""A BERT export: raw text in, the loaded run's probabilities out, in a fresh process that
imports only tensorflow and tensorflow_text; each weight stored once; the TensorFlow Text ops
it needs, by name."""

import numpy as np
import pytest

from tests.fixtures import serve_in_fresh_process
from tests.test_export import TEXTS, saved_values
from tfrnn.export import custom_ops, export_run
from tfrnn.runs import load_run

# What TF Serving's model server (and any loader) must link: documented in docs/serving.md.
TF_TEXT_OPS = [
    "CaseFoldUTF8",
    "FastWordpieceTokenizeWithOffsets",
    "NormalizeUTF8",
    "RegexSplitWithOffsets",
    "TFText>RoundRobinTrim",
]


@pytest.fixture(scope="module")
def exported(tiny_bert_run, tmp_path_factory):
    return export_run(tiny_bert_run.run_dir, tmp_path_factory.mktemp("saved_models") / "bert")


def test_served_probabilities_equal_loaded_run_predict(exported, tiny_bert_run, tmp_path):
    served = serve_in_fresh_process(exported, TEXTS, tmp_path, text_ops=True)
    assert "tensorflow_text" in served["loaded"] and "tfrnn" not in served["loaded"]
    assert served["inputs"] == {"text": ["string", [None]]}
    assert served["outputs"] == {
        "probabilities": ["float32", [None, 2]],
        "label_id": ["int32", [None]],
        "label": ["string", [None]],
    }
    run = load_run(tiny_bert_run.run_dir)
    expected = run.predict(TEXTS)
    np.testing.assert_allclose(
        served["probabilities"], [list(p["probabilities"].values()) for p in expected], atol=1e-5, rtol=0
    )
    np.testing.assert_allclose(served["probabilities"], run.probabilities(TEXTS), atol=1e-5, rtol=0)
    assert served["label_id"] == np.argmax(served["probabilities"], axis=1).tolist()
    assert served["label"] == [p["label"] for p in expected]


def test_export_holds_each_weight_once(exported, tiny_bert_run):
    assert saved_values(exported) == load_run(tiny_bert_run.run_dir).model.count_params()


def test_needs_tensorflow_text_ops(exported, tmp_path):
    assert custom_ops(exported) == TF_TEXT_OPS
    result = serve_in_fresh_process(exported, ["hi"], tmp_path, text_ops=False, check=False)
    assert result.returncode != 0 and "Op type not registered" in result.stderr
