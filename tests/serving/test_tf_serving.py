"""What TF Serving reads: the signature contract (as `saved_model_cli show` reports it) of RNN
and BERT exports, the warm-up records, models.config and batching.config."""

import re
import subprocess

import pytest
import tensorflow as tf
from click.testing import CliRunner
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2
from tfrnn_cli.main import cli

from tfrnn.export import export_run
from tfrnn.serving.tf_serving import WARMUP_FILE, read_warmup_requests, warmup_texts

# `saved_model_cli show --tag_set serve --signature_def serving_default`, for any tfrnn export.
CONTRACT = {
    "inputs": {"text": ("DT_STRING", "(-1)")},
    "outputs": {
        "label": ("DT_STRING", "(-1)"),
        "label_id": ("DT_INT32", "(-1)"),
        "probabilities": ("DT_FLOAT", "(-1, 2)"),
    },
    "method": "tensorflow/serving/predict",
}


@pytest.fixture(scope="module", params=["rnn", "bert"])
def export(request, tmp_path_factory):
    run = request.getfixturevalue("tiny_run" if request.param == "rnn" else "tiny_bert_run")
    return export_run(run.run_dir, tmp_path_factory.mktemp("saved_models") / request.param)


def _saved_model_cli_show(export_dir):
    result = subprocess.run(
        [
            "saved_model_cli",
            "show",
            "--dir",
            str(export_dir),
            "--tag_set",
            "serve",
            "--signature_def",
            "serving_default",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    shown = {"inputs": {}, "outputs": {}}
    for kind, name, dtype, shape in re.findall(
        r"(inputs|outputs)\['(\w+)'\] tensor_info:\s+dtype: (\w+)\s+shape: (\([-\d, ]*\))", result.stdout
    ):
        shown[kind][name] = (dtype, shape)
    shown["method"] = re.search(r"Method name is: (\S+)", result.stdout).group(1)
    return shown


def test_signature_contract_as_saved_model_cli_shows_it(export):
    assert _saved_model_cli_show(export) == CONTRACT


def test_warmup_requests_replay_through_the_signature(export):
    import tensorflow_text  # noqa: F401  (BERT exports use its ops)

    requests = read_warmup_requests(export / "assets.extra" / WARMUP_FILE)
    serve = tf.saved_model.load(str(export)).signatures["serving_default"]
    assert [len(r.inputs["text"].string_val) for r in requests] == [len(t) for t in warmup_texts(8)]
    for request in requests:
        assert (request.model_spec.name, request.model_spec.signature_name) == (export.parent.name, "serving_default")
        texts = tf.make_ndarray(request.inputs["text"])
        outputs = serve(text=tf.constant(texts))
        assert outputs["probabilities"].shape == (len(texts), 2)


def test_export_writes_models_config_and_batching(tiny_run, tmp_path):
    root = tmp_path / "saved_models"
    (root / ".tmp-1-abc").mkdir(parents=True)  # a half-written export is no model
    for name in ("sentiment", "other"):
        result = CliRunner().invoke(
            cli, ["export", str(tiny_run.run_dir), "--to", str(root / name), "--serving-config", "--batching"]
        )
        assert result.exit_code == 0, result.output
    assert f"wrote {root / 'models.config'}" in result.output
    config = text_format.Parse((root / "models.config").read_text(), model_server_config_pb2.ModelServerConfig())
    assert [(c.name, c.base_path, c.model_platform) for c in config.model_config_list.config] == [
        ("other", "/models/other", "tensorflow"),
        ("sentiment", "/models/sentiment", "tensorflow"),
    ]
    batching = (root / "batching.config").read_text()
    assert "max_batch_size { value: 64 }" in batching and "batch_timeout_micros { value: 2000 }" in batching
