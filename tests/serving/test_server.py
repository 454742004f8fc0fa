"""`tfrnn serve` over real HTTP on loopback: predictions equal the SavedModel called in-process,
in every request form TF Serving takes; status, metadata, metrics; and TF Serving's status code and
message for every refusal, each read from TF Serving's source (file named in the case):

- http_rest_api_handler.cc / http_rest_api_util.cc: routes, "Malformed request: METHOD PATH",
  'Serving signature name: "X" not found in signature def' (GetInfoMap).
- http_server.cc ToHTTPStatusCode: INVALID_ARGUMENT and FAILED_PRECONDITION -> 400, NOT_FOUND ->
  404, UNIMPLEMENTED -> 501; paths outside /v1/ are not dispatched (evhttp 404).
- get_model_status_impl.cc, core/basic_manager.cc: the NOT_FOUND messages.
- util/json_tensor.cc: the request and response JSON.
- classifier.cc / regressor.cc: :classify and :regress on a predict signature.
- kernels/batching_util/shared_batch_scheduler.h: "Task size N is larger than maximum input batch
  size M" (serving#1401: a 400 past max_batch_size).
"""

import base64
import json
import re
import shutil
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
import tensorflow as tf
import uvicorn

from tests.fixtures import SERVING_TEXTS
from tfrnn.export import export_run
from tfrnn.serving import predict
from tfrnn.serving.server import make_app

TEXTS = [
    *SERVING_TEXTS,
    ("a lovely film with a dull plot " * 400)[:10_000],
]
LIMIT = 64 * 1024
MAX_INSTANCES = 8


@pytest.fixture(scope="module")
def root(tiny_run, tiny_bert_run, tmp_path_factory):
    """An export root holding the tiny run as versions 1 and 2 of model "tiny", and the tiny
    BERT run as version 1 of model "bert"."""
    root = tmp_path_factory.mktemp("export_root")
    for _ in range(2):
        export_run(tiny_run.run_dir, root / "tiny")
    export_run(tiny_bert_run.run_dir, root / "bert")
    return root


@pytest.fixture(scope="module")
def server(root):
    """The app, served by uvicorn in a thread on a free loopback port."""
    app = make_app(root, max_request_bytes=LIMIT, poll_seconds=0.1, max_instances=MAX_INSTANCES)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    yield app, f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(10)
    sock.close()


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server[1], timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def expected(root):
    """The outputs of version 2's signature called in-process on TEXTS, as numpy."""
    serve = tf.saved_model.load(str(root / "tiny" / "2")).signatures["serving_default"]
    return {key: value.numpy() for key, value in serve(text=tf.constant(TEXTS)).items()}


def _predict(client, body, path="/v1/models/tiny:predict"):
    response = client.post(path, json=body)
    assert response.status_code == 200, response.text
    return response.json()


def _assert_rows_equal(predictions, expected, indices=None):
    indices = range(len(TEXTS)) if indices is None else indices
    assert len(predictions) == len(indices)
    for prediction, i in zip(predictions, indices):
        assert set(prediction) == {"probabilities", "label_id", "label"}
        np.testing.assert_allclose(prediction["probabilities"], expected["probabilities"][i], rtol=1e-6)
        assert prediction["label_id"] == expected["label_id"][i]
        assert prediction["label"] == expected["label"][i].decode()


def _b64(text):
    return {"b64": base64.b64encode(text.encode()).decode()}


def test_row_format_equals_the_saved_model(client, expected):
    """Covers the 10,000-character, empty, accented, Chinese and emoji texts too."""
    _assert_rows_equal(_predict(client, {"instances": TEXTS[:4]})["predictions"], expected, range(4))
    _assert_rows_equal(_predict(client, {"instances": TEXTS[4:]})["predictions"], expected, range(4, 7))


@pytest.mark.parametrize("signature_name", ["serving_default", ""])
def test_row_format_objects_and_signature_name(client, expected, signature_name):
    """json_tensor.cc/predict_util.cc: "" means serving_default."""
    body = {"signature_name": signature_name, "instances": [{"text": t} for t in TEXTS[:5]]}
    _assert_rows_equal(_predict(client, body, "/v1/models/tiny/versions/2:predict")["predictions"], expected, range(5))


@pytest.mark.parametrize(
    "body",
    [
        {"instances": [_b64(t) for t in TEXTS[:5]]},
        {"instances": [{"text": _b64(t)} for t in TEXTS[:5]]},
        {"inputs": [_b64(t) for t in TEXTS[:5]]},
        {"inputs": {"text": [_b64(t) for t in TEXTS[:5]]}},
    ],
)
def test_b64_in_every_form(client, expected, body):
    """json_tensor.cc IsValBase64Object / JsonDecodeBase64Object."""
    answer = _predict(client, body)
    if "predictions" in answer:
        _assert_rows_equal(answer["predictions"], expected, range(5))
    else:
        assert answer["outputs"]["label"] == [label.decode() for label in expected["label"][:5]]


@pytest.mark.parametrize("inputs", [TEXTS[:5], {"text": TEXTS[:5]}])
def test_columnar_format_equals_the_saved_model(client, expected, inputs):
    outputs = _predict(client, {"inputs": inputs})["outputs"]
    assert set(outputs) == {"probabilities", "label_id", "label"}
    np.testing.assert_allclose(outputs["probabilities"], expected["probabilities"][:5], rtol=1e-6)
    assert outputs["label_id"] == expected["label_id"][:5].tolist()
    assert outputs["label"] == [label.decode() for label in expected["label"][:5]]


def test_an_empty_columnar_list_is_a_shape_0_tensor(client):
    """json_tensor.cc GetDenseTensorShape: [] is shape [0]; the answer is empty lists."""
    assert _predict(client, {"inputs": []}) == {"outputs": {"label": [], "label_id": [], "probabilities": []}}


def test_floats_are_printed_as_float32(client):
    """json_tensor.cc WriteDecimal: at most 9 significant digits, never float64's 17."""
    text = client.post("/v1/models/tiny:predict", json={"instances": TEXTS[:2]}).text
    numbers = re.findall(r"\d\.\d+(?:e-?\d+)?", text.split('"probabilities"', 1)[1])
    assert numbers and all(len(n.split("e")[0].replace(".", "").lstrip("0")) <= 9 for n in numbers), text


def test_bert_export_is_served_too(client, root):
    """BERT exports tokenise with TensorFlow Text's ops, which the server loads."""
    serve = tf.saved_model.load(str(root / "bert" / "1")).signatures["serving_default"]
    expected = {key: value.numpy() for key, value in serve(text=tf.constant(TEXTS)).items()}
    predictions = _predict(client, {"instances": TEXTS[:4]}, "/v1/models/bert:predict")["predictions"]
    _assert_rows_equal(predictions, expected, range(4))


def test_status_lists_the_versions_the_policy_serves(client):
    """The default policy serves the newest version only; version 1 was never loaded, so TF
    Serving does not know it (get_model_status_impl.cc)."""
    available = {"version": "2", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
    assert client.get("/v1/models/tiny").json() == {"model_version_status": [available]}
    assert client.get("/v1/models/tiny/versions/2").json() == {"model_version_status": [available]}
    # Labels are not resolved by GetModelStatus: every version.
    assert client.get("/v1/models/tiny/labels/any").json() == {"model_version_status": [available]}


def test_metadata_describes_the_signature(client):
    response = client.get("/v1/models/tiny/versions/2/metadata")
    assert response.status_code == 200
    metadata = response.json()
    assert metadata["model_spec"] == {"name": "tiny", "signature_name": "", "version": "2"}
    signature = metadata["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert signature["method_name"] == "tensorflow/serving/predict"

    def info(dtype, *dims):
        shape = {"dim": [{"size": str(d), "name": ""} for d in dims], "unknown_rank": False}
        return {"dtype": dtype, "tensor_shape": shape}

    assert signature["inputs"] == {"text": {**info("DT_STRING", -1), "name": "serving_default_text:0"}}
    assert {key: {k: v for k, v in value.items() if k != "name"} for key, value in signature["outputs"].items()} == {
        "probabilities": info("DT_FLOAT", -1, 2),
        "label_id": info("DT_INT32", -1),
        "label": info("DT_STRING", -1),
    }
    assert client.get("/v1/models/tiny/metadata").json()["model_spec"]["version"] == "2"


@pytest.mark.parametrize(
    ("method", "path", "status", "message"),
    [
        ("GET", "/v1/models/nope", 404, "Could not find any versions of model nope"),
        ("GET", "/v1/models/tiny/versions/7", 404, "Could not find version 7 of model tiny"),
        ("GET", "/v1/models/tiny/versions/1", 404, "Could not find version 1 of model tiny"),
        ("GET", "/v1/models/tiny/versions/7/metadata", 404, "Servable not found for request: Specific(tiny, 7)"),
        ("GET", "/v1/models/tiny/versions/1/metadata", 404, "Servable not found for request: Specific(tiny, 1)"),
        ("POST", "/v1/models/nope:predict", 404, "Servable not found for request: Latest(nope)"),
        ("POST", "/v1/models/tiny/versions/7:predict", 404, "Servable not found for request: Specific(tiny, 7)"),
        ("POST", "/v1/models/tiny/labels/stable:predict", 400, "Unrecognized servable version label: stable"),
        ("POST", "/v1/models/" + "x" * 300 + ":predict", 404, f"Servable not found for request: Latest({'x' * 300})"),
        ("GET", "/v1/models/" + "x" * 300, 404, f"Could not find any versions of model {'x' * 300}"),
        ("GET", "/v1/models", 400, "Missing model name in request."),
        ("GET", "/v1/models/tiny:predict", 400, "Malformed request: GET /v1/models/tiny:predict"),
        ("PUT", "/v1/models/tiny:predict", 400, "Malformed request: PUT /v1/models/tiny:predict"),
        ("GET", "/v1/anything", 400, "Malformed request: GET /v1/anything"),
        (
            "POST",
            "/v1/models/tiny/versions/99999999999999999999:predict",
            400,
            "Failed to convert version: 99999999999999999999 to numeric.",
        ),
    ],
)
def test_what_is_not_there(client, method, path, status, message):
    response = client.request(method, path, json={"instances": ["good"]})
    assert (response.status_code, response.json()) == (status, {"error": message})


def test_paths_outside_v1_are_not_found(client):
    response = client.get("/v2/anything")
    assert response.status_code == 404 and "Not Found" in response.text


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"instances": ["good"', "JSON Parse error: Missing a comma or ']' after an array element. at offset: 21"),
        (b"", "JSON Parse error: The document is empty"),
        (b'["good"]', 'JSON Value: [\n    "good"\n] Is not object'),
        (
            b'{"instances": ["good"], "inputs": ["good"]}',
            'JSON Value: {\n    "instances": [\n        "good"\n    ],\n    "inputs": [\n        "good"\n    ]\n} '
            "Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist ",
        ),
        (b'{"signature_name": "serving_default"}', "Missing 'inputs' or 'instances' key"),
        (
            b'{"instances": "good"}',
            'JSON Value: {\n    "instances": "good"\n} Excepting \'instances\' to be an list/array',
        ),
        (b'{"instances": []}', "JSON Value: {\n    \"instances\": []\n} No values in 'instances' array"),
        (
            b'{"instances": [1, 2]}',
            "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: JSON Value: 1 Type: Number "
            "is not of expected type: string",
        ),
        (
            b'{"instances": [{"txt": "good"}]}',
            "Failed to process element: 0 key: txt of 'instances' list. Error: INVALID_ARGUMENT: JSON object: does "
            "not have named input: txt",
        ),
        (b'{"inputs": {"txt": ["good"]}}', "Missing named input: text in 'inputs' object."),
        (
            b'{"instances": ["good"], "signature_name": "nope"}',
            'Serving signature name: "nope" not found in signature def',
        ),
        (
            b'{"instances": ["good"], "signature_name": 7}',
            'JSON Value: {\n    "instances": [\n        "good"\n    ],\n    "signature_name": 7\n} not formatted '
            "correctly. 'signature_name' key must be a string value.",
        ),
        (b'{"instances": ["\\ud800"]}', "JSON Parse error: The surrogate pair in string is invalid. at offset: 16"),
        (b'{"instances": ["\xff"]}', "JSON Parse error: Invalid encoding in string. at offset: 16"),
        (
            b'{"instances": ["a", "b", "c", "d", "e", "f", "g", "h", "i"]}',
            f"Task size 9 is larger than maximum input batch size {MAX_INSTANCES}",
        ),
        (b'{"inputs": {"text": ["a"]}, "instances": 3}', None),  # both keys: 400 (message above)
    ],
)
def test_bad_requests_are_400(client, body, message):
    response = client.post("/v1/models/tiny:predict", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    if message is not None:
        assert response.json() == {"error": message}


def test_deep_nesting_is_a_400(client):
    body = b'{"instances": ' + b"[" * 30_000 + b"]" * 30_000 + b"}"  # 100,000 deep: test_tf_serving_compat.py
    response = client.post("/v1/models/tiny:predict", content=body)
    assert response.status_code == 400 and response.json()["error"].startswith("JSON Parse error:")


def test_too_many_columnar_instances_is_a_400(client):
    response = client.post("/v1/models/tiny:predict", json={"inputs": {"text": ["a"] * (MAX_INSTANCES + 1)}})
    assert response.json() == {"error": f"Task size 9 is larger than maximum input batch size {MAX_INSTANCES}"}


@pytest.mark.parametrize(
    ("action", "message"),
    [
        # classifier.cc PreProcessClassification, with TF Serving's default
        # --enable_signature_method_name_check=false: one input, 1 or 2 outputs.
        ("classify", "Expected one or two output Tensors, found 3"),
        # regressor.cc PreProcessRegression: one input, one output.
        ("regress", "Expected one output Tensor."),
    ],
)
def test_classify_and_regress_on_a_predict_signature(client, action, message):
    path = f"/v1/models/tiny:{action}"
    response = client.post(path, json={"examples": [{"text": "good"}]})
    assert (response.status_code, response.json()) == (400, {"error": message})
    # json_tensor.cc FillClassifyRegressRequestFromJson ("classify" in both, as written there).
    response = client.post(path, json={"instances": ["good"]})
    assert response.status_code == 400
    assert response.json()["error"].endswith("When method is classify, key 'examples' is expected and was not found")
    response = client.post(f"/v1/models/tiny:{action}", json={"examples": [{"text": "good"}], "signature_name": "x"})
    assert response.json() == {"error": "No signature was found with the name: x"}


def test_body_over_the_limit_is_413(client):
    body = b'{"instances": ["' + b"a" * LIMIT + b'"]}'
    response = client.post("/v1/models/tiny:predict", content=body)  # announced by Content-Length
    assert response.status_code == 413 and "limit" in response.json()["error"]
    chunked = client.post("/v1/models/tiny:predict", content=iter([body[: LIMIT // 2], body[LIMIT // 2 :]]))
    assert chunked.status_code == 413 and "limit" in chunked.json()["error"]


def test_an_unexpected_failure_is_a_500_without_details(client, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("/secret/path/model.py line 3")

    monkeypatch.setattr(predict, "execute", broken)
    response = client.post("/v1/models/tiny:predict", json={"instances": ["good"]})
    assert (response.status_code, response.json()) == (500, {"error": "Internal error"})
    assert "/secret/path" in caplog.text  # logged, with its traceback


def test_concurrent_clients_get_their_own_answers(client, expected):
    def predict_one(i):
        return _predict(client, {"instances": [TEXTS[i % len(TEXTS)]]})["predictions"]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(predict_one, range(16)))
    for i, predictions in enumerate(results):
        _assert_rows_equal(predictions, expected, [i % len(TEXTS)])


def test_metrics_count_requests_by_model_version_api_and_status(client):
    client.post("/v1/models/tiny:predict", json={"instances": ["good"]})
    client.post("/v1/models/nope:predict", json={"instances": ["good"]})
    response = client.get("/monitoring/prometheus/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert "# TYPE :tensorflow:serving:request_count counter\n" in text
    assert "# TYPE :tensorflow:serving:request_latency histogram\n" in text
    ok = re.search(
        r':tensorflow:serving:request_count\{model_name="tiny",version="2",API="Predict",status="OK"\} (\d+)', text
    )
    assert ok and int(ok[1]) >= 1
    assert re.search(
        r':tensorflow:serving:request_count\{model_name="nope",version="",API="Predict",status="NOT_FOUND"\} \d', text
    )
    assert re.search(
        r':tensorflow:serving:request_latency_bucket\{model_name="tiny",version="2",API="Predict",entrypoint="REST",'
        r'le="\+Inf"\} \d+',
        text,
    )


def _states(client):
    statuses = client.get("/v1/models/tiny").json()["model_version_status"]
    return [(s["version"], s["state"], s["status"]["error_code"]) for s in statuses]


def _wait_for(condition, seconds=120):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_versions_come_and_go_while_serving(client, root, tiny_run):
    """Runs last. Half-written versions (a folder without saved_model.pb, a staging dot-folder)
    are never seen; a new export loads in the background and replaces version 2; a corrupt newer
    version is reported in the status while version 3 keeps serving; deleting version 3 brings
    version 2 back."""
    shutil.copytree(root / "tiny" / "1", root / "tiny" / ".tmp-5-xxx")
    (root / "tiny" / "4").mkdir()
    time.sleep(0.5)
    assert _states(client) == [("2", "AVAILABLE", "OK")]
    assert client.get("/v1/models/.tmp-5-xxx").status_code == 404

    assert export_run(tiny_run.run_dir, root / "tiny", version=3) == root / "tiny" / "3"
    _wait_for(lambda: _states(client) == [("3", "AVAILABLE", "OK"), ("2", "END", "OK")])
    assert client.get("/v1/models/tiny/metadata").json()["model_spec"]["version"] == "3"

    shutil.copytree(root / "tiny" / "1", root / "tiny" / "6")
    (root / "tiny" / "6" / "saved_model.pb").write_bytes(b"\x08half a file")
    _wait_for(lambda: _states(client)[0] == ("6", "END", "DATA_LOSS"))
    status = client.get("/v1/models/tiny/versions/6").json()["model_version_status"][0]["status"]
    assert status["error_message"] == "Can't parse tiny/6/saved_model.pb as binary proto"
    assert str(root) not in json.dumps(client.get("/v1/models/tiny").json())
    assert client.get("/v1/models/tiny/metadata").json()["model_spec"]["version"] == "3"
    assert len(_predict(client, {"instances": ["good"]})["predictions"]) == 1

    shutil.rmtree(root / "tiny" / "6")
    shutil.rmtree(root / "tiny" / "3")
    _wait_for(lambda: ("2", "AVAILABLE", "OK") in _states(client))
    assert client.get("/v1/models/tiny/metadata").json()["model_spec"]["version"] == "2"
