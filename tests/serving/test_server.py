"""The TF Serving REST stand-in over real HTTP on loopback: predict in both formats equals the
SavedModel called in-process, status and metadata, errors, size limit, concurrency, and new
versions appearing (half-written ones never) while the server runs."""

import shutil
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
import tensorflow as tf
import uvicorn

from tfrnn.export import export_run
from tfrnn.serving.repository import ModelRepository
from tfrnn.serving.server import make_app

TEXTS = [
    "A warm, funny film with a great cast.",
    "Dull. Far too long, and the ending is awful.",
    "",
    "Un film très émouvant, à voir absolument. Größe ß",
    "这部电影非常好看，演员表演出色。",
    "Loved it 😍🎬👍",
    ("a lovely film with a dull plot " * 400)[:10_000],
]
LIMIT = 64 * 1024


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
def client(root):
    """An httpx client of the server, running in a thread on a free loopback port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(make_app(root, max_request_bytes=LIMIT), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive(), "the server did not start"
        threading.Event().wait(0.05)
    with httpx.Client(base_url=f"http://127.0.0.1:{sock.getsockname()[1]}", timeout=60) as client:
        yield client
    server.should_exit = True
    thread.join(10)
    sock.close()


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


def test_row_format_equals_the_saved_model(client, expected):
    """Covers the 10,000-character, empty, accented, Chinese and emoji texts too."""
    _assert_rows_equal(_predict(client, {"instances": TEXTS})["predictions"], expected)


def test_row_format_objects_and_signature_name(client, expected):
    body = {"signature_name": "serving_default", "instances": [{"text": t} for t in TEXTS]}
    _assert_rows_equal(_predict(client, body, "/v1/models/tiny/versions/2:predict")["predictions"], expected)


@pytest.mark.parametrize("inputs", [TEXTS, {"text": TEXTS}])
def test_columnar_format_equals_the_saved_model(client, expected, inputs):
    outputs = _predict(client, {"inputs": inputs})["outputs"]
    assert set(outputs) == {"probabilities", "label_id", "label"}
    np.testing.assert_allclose(outputs["probabilities"], expected["probabilities"], rtol=1e-6)
    assert outputs["label_id"] == expected["label_id"].tolist()
    assert outputs["label"] == [label.decode() for label in expected["label"]]


def test_bert_export_is_served_too(client, root):
    """BERT exports tokenise with TensorFlow Text's ops, which the server loads."""
    serve = tf.saved_model.load(str(root / "bert" / "1")).signatures["serving_default"]
    expected = {key: value.numpy() for key, value in serve(text=tf.constant(TEXTS)).items()}
    _assert_rows_equal(_predict(client, {"instances": TEXTS}, "/v1/models/bert:predict")["predictions"], expected)


def test_status_lists_versions_newest_first(client):
    available = {"state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
    response = client.get("/v1/models/tiny")
    assert response.status_code == 200
    assert response.json() == {"model_version_status": [{"version": v, **available} for v in ("2", "1")]}
    assert client.get("/v1/models/tiny/versions/1").json() == {"model_version_status": [{"version": "1", **available}]}


def test_metadata_describes_the_signature(client):
    response = client.get("/v1/models/tiny/versions/1/metadata")
    assert response.status_code == 200
    metadata = response.json()
    assert metadata["model_spec"] == {"name": "tiny", "signature_name": "", "version": "1"}
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
    ("method", "path", "message"),
    [
        ("GET", "/v1/models/nope", "Servable not found for request: Latest(nope)"),
        ("GET", "/v1/models/tiny/versions/7", "Servable not found for request: Specific(tiny, 7)"),
        ("GET", "/v1/models/tiny/versions/7/metadata", "Servable not found for request: Specific(tiny, 7)"),
        ("POST", "/v1/models/nope:predict", "Servable not found for request: Latest(nope)"),
        ("POST", "/v1/models/tiny/versions/7:predict", "Servable not found for request: Specific(tiny, 7)"),
    ],
)
def test_unknown_model_or_version_is_404(client, method, path, message):
    response = client.request(method, path, json={"instances": ["good"]})
    assert response.status_code == 404
    assert response.json() == {"error": message}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b'{"instances": ["good"', "Malformed JSON"),
        (b'["good"]', "JSON object"),
        (b'{"instances": ["good"], "inputs": ["good"]}', "exactly one"),
        (b'{"signature_name": "serving_default"}', "exactly one"),
        (b'{"instances": [1, 2]}', "expected strings"),
        (b'{"inputs": {"text": [1.5]}}', "expected strings"),
        (b'{"instances": [{"text": "good"}, "bad"]}', "expected strings"),
        (b'{"instances": [{"txt": "good"}]}', "Expected the inputs"),
        (b'{"instances": []}', "non-empty"),
        (b'{"inputs": []}', "non-empty"),
        (b'{"instances": ["good"], "signature_name": "nope"}', 'Serving signature name: "nope" not found'),
    ],
)
def test_bad_requests_are_400(client, body, fragment):
    response = client.post("/v1/models/tiny:predict", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert fragment in response.json()["error"]


def test_wrong_method_and_unknown_path(client):
    assert client.get("/v1/models/tiny:predict").status_code == 405
    assert client.get("/v1/models/tiny:classify").json()["error"].startswith("Malformed request")
    assert client.get("/v2/anything").status_code == 404


def test_body_over_the_limit_is_413(client):
    body = b'{"instances": ["' + b"a" * LIMIT + b'"]}'
    response = client.post("/v1/models/tiny:predict", content=body)  # announced by Content-Length
    assert response.status_code == 413 and "limit" in response.json()["error"]
    chunked = client.post("/v1/models/tiny:predict", content=iter([body[: LIMIT // 2], body[LIMIT // 2 :]]))
    assert chunked.status_code == 413 and "limit" in chunked.json()["error"]


def test_concurrent_clients_get_their_own_answers(client, expected):
    def predict(i):
        return _predict(client, {"instances": [TEXTS[i % len(TEXTS)]]})["predictions"]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(predict, range(8)))
    for i, predictions in enumerate(results):
        _assert_rows_equal(predictions, expected, [i % len(TEXTS)])


def test_new_versions_appear_and_half_written_ones_never(client, root, tiny_run):
    """Runs last: it adds version 3 (a real export), a folder 4 without saved_model.pb, and a
    staging dot-folder holding a complete copy of a version."""
    shutil.copytree(root / "tiny" / "1", root / "tiny" / ".tmp-3-xxx")
    (root / "tiny" / "4").mkdir()
    assert _versions(client) == ["2", "1"]
    assert client.get("/v1/models/tiny/metadata").json()["model_spec"]["version"] == "2"
    assert client.post("/v1/models/tiny/versions/4:predict", json={"instances": ["good"]}).status_code == 404
    assert client.get("/v1/models/.tmp-3-xxx").status_code == 404

    assert export_run(tiny_run.run_dir, root / "tiny", version=3) == root / "tiny" / "3"
    assert _versions(client) == ["3", "2", "1"]
    assert client.get("/v1/models/tiny/metadata").json()["model_spec"]["version"] == "3"
    assert len(_predict(client, {"instances": ["good"]})["predictions"]) == 1
    assert client.get("/v1/models/tiny/versions/4").status_code == 404


def test_concurrent_first_requests_load_a_version_once(root, monkeypatch):
    loads = []

    def slow_load(path):
        loads.append(path)
        threading.Event().wait(0.2)
        return path

    monkeypatch.setattr(tf.saved_model, "load", slow_load)
    repository = ModelRepository(root)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: repository.load("tiny", 1), range(8)))
    assert loads == [str(root / "tiny" / "1")]
    assert results == [(1, loads[0])] * 8


def _versions(client):
    return [status["version"] for status in client.get("/v1/models/tiny").json()["model_version_status"]]


def test_a_deleted_version_is_forgotten(root, tmp_path):
    """Its loaded model is dropped when the folder goes, so memory does not grow with versions."""
    shutil.copytree(root / "tiny" / "1", tmp_path / "m" / "1")
    shutil.copytree(root / "tiny" / "1", tmp_path / "m" / "2")
    repository = ModelRepository(tmp_path)
    assert repository.load("m", 1)[0] == 1 and repository.load("m")[0] == 2
    shutil.rmtree(tmp_path / "m" / "1")
    assert repository.versions("m") == [2]
    assert [key for key in repository._loaded] == [("m", 2)]
