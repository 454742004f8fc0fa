"""Client compatibility: the same requests against `tfrnn serve` and, when TFRNN_TF_SERVING_URL
names a real TF Serving serving the same export, against it too.

The `tfrnn serve` half always runs: each case's expected status and body is TF Serving's, read
from its source (the file is named in the case). The second half compares the two servers' answers
(status, then the JSON bodies; floats to 1e-5) and is skipped unless a TF Serving is running:

    tfrnn train --name quickstart
    tfrnn export runs/quickstart --to saved_models/sentiment --serving-config --batching
    docker run --rm -p 8501:8501 --mount type=bind,source="$PWD/saved_models",target=/models \\
      tensorflow/serving --model_config_file=/models/models.config \\
      --enable_batching --batching_parameters_file=/models/batching.config
    TFRNN_TF_SERVING_URL=http://localhost:8501 TFRNN_TF_SERVING_EXPORT=saved_models \\
      python -m pytest -p no:cacheprovider -n 0 tests/serving/test_tf_serving_compat.py

With TFRNN_TF_SERVING_EXPORT, the tfrnn half serves that same folder (its models.config and
batching.config), so both servers answer from the same SavedModel; TFRNN_TF_SERVING_MODEL names
the model (default "sentiment"). Cases marked `tfrnn_only` are deliberate differences (see
tfrnn/serving/server.py) and are not compared.
"""

import base64
import dataclasses
import json
import math
import os
import shutil

import httpx
import pytest
from starlette.testclient import TestClient

from tfrnn.serving.batching import read_batching_parameters
from tfrnn.serving.server import make_app
from tfrnn.serving.tf_serving import write_batching_config, write_models_config

URL = os.environ.get("TFRNN_TF_SERVING_URL")
EXPORT = os.environ.get("TFRNN_TF_SERVING_EXPORT")
MODEL = os.environ.get("TFRNN_TF_SERVING_MODEL", "sentiment")
HOW_TO_RUN = (
    "set TFRNN_TF_SERVING_URL (and TFRNN_TF_SERVING_EXPORT) to compare with a real TF Serving; the docker "
    "command is in this file's docstring and in the README's Serving section"
)
TEXTS = ["A warm, funny film with a great cast.", "Dull and far too long.", "", "Größe 这部电影 😍"]


def _b64(text):
    return {"b64": base64.b64encode(text.encode()).decode()}


@dataclasses.dataclass
class Case:
    """One request, what TF Serving answers (status; the body, or a check of it), and whether
    the answer can be compared with a real TF Serving."""

    name: str
    method: str
    path: str
    body: object = None  # dict/list (sent as JSON), bytes (sent as is) or None
    status: int = 200
    expected: object = None  # the JSON body, a callable(body) -> bool, or None (any)
    tfrnn_only: bool = False  # a deliberate difference: not compared with TF Serving

    def send(self, client):
        if isinstance(self.body, bytes):
            return client.request(self.method, self.path, content=self.body)
        if self.body is None:
            return client.request(self.method, self.path)
        return client.request(self.method, self.path, json=self.body)


def _predictions(count, keys=("label", "label_id", "probabilities")):
    def check(body):
        rows = body.get("predictions", [])
        return len(rows) == count and all(set(row) == set(keys) for row in rows)

    return check


def _outputs(count):
    def check(body):
        outputs = body.get("outputs", {})
        return set(outputs) == {"label", "label_id", "probabilities"} and len(outputs["label"]) == count

    return check


def _status(body):
    statuses = body.get("model_version_status", [])
    return len(statuses) == 1 and statuses[0]["state"] == "AVAILABLE" and statuses[0]["status"]["error_code"] == "OK"


def _metadata(body):
    signatures = body["metadata"]["signature_def"]["signature_def"]
    inputs = signatures["serving_default"]["inputs"]
    return body["model_spec"]["name"] == MODEL and inputs["text"]["dtype"] == "DT_STRING"


M = f"/v1/models/{MODEL}"
LONG = "x" * 300
CASES = [
    # Status and metadata: get_model_status_impl.cc, get_model_metadata_impl.cc (the SavedModel's
    # SignatureDefs, __saved_model_init_op included).
    Case("status", "GET", M, expected=_status),
    Case("metadata", "GET", f"{M}/metadata", expected=_metadata),
    # Predict, every form: json_tensor.cc FillPredictRequestFromJson, MakeJsonFromTensors.
    Case("row", "POST", f"{M}:predict", {"instances": TEXTS}, expected=_predictions(4)),
    Case("row named", "POST", f"{M}:predict", {"instances": [{"text": t} for t in TEXTS]}, expected=_predictions(4)),
    Case("columnar", "POST", f"{M}:predict", {"inputs": TEXTS}, expected=_outputs(4)),
    Case("columnar named", "POST", f"{M}:predict", {"inputs": {"text": TEXTS}}, expected=_outputs(4)),
    Case("b64 row", "POST", f"{M}:predict", {"instances": [_b64(t) for t in TEXTS]}, expected=_predictions(4)),
    Case("b64 named", "POST", f"{M}:predict", {"instances": [{"text": _b64(t)} for t in TEXTS]}, expected=_predictions(4)),
    Case("b64 columnar", "POST", f"{M}:predict", {"inputs": {"text": [_b64(t) for t in TEXTS]}}, expected=_outputs(4)),
    Case("empty signature name", "POST", f"{M}:predict", {"signature_name": "", "instances": TEXTS}, expected=_predictions(4)),
    Case("empty columnar list", "POST", f"{M}:predict", {"inputs": []}, expected={"outputs": {"label": [], "label_id": [], "probabilities": []}}),
    # Unknown models, versions, labels: basic_manager.cc, get_model_status_impl.cc, server_core.cc.
    Case("unknown model", "POST", "/v1/models/nope:predict", {"instances": ["a"]}, 404,
         {"error": "Servable not found for request: Latest(nope)"}),
    Case("unknown model status", "GET", "/v1/models/nope", None, 404, {"error": "Could not find any versions of model nope"}),
    Case("unknown version", "POST", f"{M}/versions/999:predict", {"instances": ["a"]}, 404,
         {"error": f"Servable not found for request: Specific({MODEL}, 999)"}),
    Case("unknown version status", "GET", f"{M}/versions/999", None, 404, {"error": f"Could not find version 999 of model {MODEL}"}),
    Case("unknown label", "POST", f"{M}/labels/nope:predict", {"instances": ["a"]}, 400,
         {"error": "Unrecognized servable version label: nope"}),
    Case("300-character model name", "POST", f"/v1/models/{LONG}:predict", {"instances": ["a"]}, 404,
         {"error": f"Servable not found for request: Latest({LONG})"}),
    Case("300-character model status", "GET", f"/v1/models/{LONG}", None, 404,
         {"error": f"Could not find any versions of model {LONG}"}),
    # Routes: http_rest_api_handler.cc ProcessRequest, http_rest_api_util.cc.
    Case("GET on predict", "GET", f"{M}:predict", None, 400, {"error": f"Malformed request: GET {M}:predict"}),
    Case("unknown /v1 route", "GET", "/v1/nothing", None, 400, {"error": "Malformed request: GET /v1/nothing"}),
    Case("no model name", "GET", "/v1/models", None, 400, {"error": "Missing model name in request."}),
    # Malformed bodies: json_tensor.cc, rapidjson's messages.
    Case("empty body", "POST", f"{M}:predict", b"", 400, {"error": "JSON Parse error: The document is empty"}),
    Case("lone surrogate", "POST", f"{M}:predict", b'{"instances": ["\\ud800"]}', 400,
         {"error": "JSON Parse error: The surrogate pair in string is invalid. at offset: 16"}),
    Case("unknown signature", "POST", f"{M}:predict", {"signature_name": "nope", "instances": ["a"]}, 400,
         {"error": 'Serving signature name: "nope" not found in signature def'}),
    Case("number for a string", "POST", f"{M}:predict", {"instances": [1]}, 400,
         {"error": "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: JSON Value: 1 "
                   "Type: Number is not of expected type: string"}),
    Case("both keys", "POST", f"{M}:predict", b'{"instances": ["a"], "inputs": ["a"]}', 400,
         {"error": 'JSON Value: {\n    "instances": [\n        "a"\n    ],\n    "inputs": [\n        "a"\n    ]\n} '
                   "Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist "}),
    Case("missing named input", "POST", f"{M}:predict", {"inputs": {"txt": ["a"]}}, 400,
         {"error": "Missing named input: text in 'inputs' object."}),
    # batching.config's max_batch_size 64: shared_batch_scheduler.h (serving#1401).
    Case("more instances than max_batch_size", "POST", f"{M}:predict", {"instances": ["a"] * 65}, 400,
         {"error": "Task size 65 is larger than maximum input batch size 64"}),
    Case("max_batch_size instances", "POST", f"{M}:predict", {"instances": ["a"] * 64}, expected=_predictions(64)),
    # Classify / regress on a predict signature: classifier.cc, regressor.cc.
    Case("classify", "POST", f"{M}:classify", {"examples": [{"text": "a"}]}, 400,
         {"error": "Expected one or two output Tensors, found 3"}),
    Case("regress", "POST", f"{M}:regress", {"examples": [{"text": "a"}]}, 400, {"error": "Expected one output Tensor."}),
    # Deliberate differences: tfrnn refuses what TF Serving's parser takes or cannot survive.
    Case("invalid UTF-8", "POST", f"{M}:predict", b'{"instances": ["\xff"]}', 400,
         {"error": "JSON Parse error: Invalid encoding in string. at offset: 16"}, tfrnn_only=True),
    Case("100,000-deep lists", "POST", f"{M}:predict", b'{"instances": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
         400, lambda body: body["error"].startswith("JSON Parse error:"), tfrnn_only=True),
    Case("outside /v1", "GET", "/nothing", None, 404, None, tfrnn_only=True),  # evhttp's HTML page
]  # fmt: skip


@pytest.fixture(scope="module")
def export_root(tmp_path_factory, request):
    """The folder both servers serve: TFRNN_TF_SERVING_EXPORT, or the tiny run exported as
    `MODEL` with the models.config and batching.config `tfrnn export --serving-config --batching`
    writes."""
    if EXPORT:
        return EXPORT
    tiny_version = request.getfixturevalue("tiny_version")
    root = tmp_path_factory.mktemp("compat")
    shutil.copytree(tiny_version, root / MODEL / "1")
    write_models_config(root)
    write_batching_config(root)
    return root


@pytest.fixture(scope="module")
def tfrnn_client(export_root):
    config = os.path.join(export_root, "models.config")
    batching = os.path.join(export_root, "batching.config")
    app = make_app(
        model_config_file=config,
        max_instances=read_batching_parameters(batching)[0].max_batch_size if os.path.exists(batching) else None,
        poll_seconds=1.0,
    )
    with TestClient(app) as client:
        yield client


@pytest.fixture(scope="module")
def tf_serving_client():
    if not URL:
        pytest.skip(HOW_TO_RUN)
    with httpx.Client(base_url=URL, timeout=60) as client:
        yield client


def _body(response):
    try:
        return json.loads(response.text)
    except ValueError:
        return None


def _check(case, response):
    assert response.status_code == case.status, response.text[:500]
    body = _body(response)
    if callable(case.expected):
        assert case.expected(body), response.text[:500]
    elif case.expected is not None:
        assert body == case.expected


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_tfrnn_serve_answers_as_tf_serving(tfrnn_client, case):
    response = case.send(tfrnn_client)
    _check(case, response)
    assert "Traceback" not in response.text and "/tmp/" not in response.text


def _same(a, b, path="body"):
    """Equal JSON values, floats to 1e-5 (two TensorFlow builds may differ in the last bits)."""
    if isinstance(a, float) or isinstance(b, float):
        assert isinstance(a, (int, float)) and isinstance(b, (int, float)), path
        assert (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-6), path
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{path}: {sorted(a)} != {sorted(b)}"
        for key in a:
            _same(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{path}[{i}]")
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


COMPARED = [case for case in CASES if not case.tfrnn_only]


@pytest.mark.parametrize("case", COMPARED, ids=[case.name for case in COMPARED])
def test_tf_serving_answers_the_same(tfrnn_client, tf_serving_client, case):
    ours, theirs = case.send(tfrnn_client), case.send(tf_serving_client)
    assert ours.status_code == theirs.status_code, (ours.text[:300], theirs.text[:300])
    _same(_body(ours), _body(theirs))
