"""Server-side batching (`tfrnn.serving.batching`): the batching parameters file, how batches
form, pad and fail (TF Serving's batching_session.cc and shared_batch_scheduler.h), and answers
through `tfrnn serve` equal to unbatched ones."""

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import tensorflow as tf
from starlette.testclient import TestClient

from tests.serving.conftest import make_root
from tfrnn.errors import ConfigError
from tfrnn.serving import predict
from tfrnn.serving.batching import QUEUE_FULL, BatchingParameters, BatchScheduler, read_batching_parameters
from tfrnn.serving.server import make_app
from tfrnn.serving.tf_serving import write_batching_config


@tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
def _lengths(text):
    """Each text's length, the size of the batch it ran in, and its value as a number (fails on
    text that is not one)."""
    size = tf.shape(text)[0]
    return {
        "length": tf.strings.length(text),
        "batch": tf.fill([size], size),
        "number": tf.strings.to_number(text),
    }


@pytest.fixture(scope="module")
def lengths(tmp_path_factory):
    """`_lengths` as a SavedModel's signature (inputs by name, as `tfrnn serve` calls them)."""
    path = str(tmp_path_factory.mktemp("lengths"))
    tf.saved_model.save(tf.Module(), path, signatures={"serving_default": _lengths})
    return tf.saved_model.load(path).signatures["serving_default"]


def _submit(scheduler, function, batches):
    """Runs each list of texts as its own request, concurrently; returns outputs or errors."""

    def one(texts):
        try:
            return scheduler.run(function, {"text": np.array(texts, object)})
        except predict.ServingError as e:
            return e

    with ThreadPoolExecutor(len(batches)) as pool:
        return list(pool.map(one, batches))


def test_parameters_file_as_tfrnn_export_writes_it(tmp_path):
    parameters, given = read_batching_parameters(write_batching_config(tmp_path, max_batch_size=64))
    assert parameters == BatchingParameters(
        max_batch_size=64, batch_timeout_micros=2000, num_batch_threads=4, max_enqueued_batches=32
    )
    assert given == {"max_batch_size", "batch_timeout_micros", "num_batch_threads", "max_enqueued_batches"}


def test_parameters_file_defaults_and_every_field(tmp_path):
    path = tmp_path / "batching.config"
    path.write_text("# nothing set\n")
    assert read_batching_parameters(path) == (BatchingParameters(), set())
    assert BatchingParameters().max_batch_size == 1000 and BatchingParameters().batch_timeout_micros == 0
    path.write_text(
        "max_batch_size { value: 8 }  # the largest\nallowed_batch_sizes: 2\nallowed_batch_sizes: 8\n"
        'pad_variable_length_inputs: false\nthread_pool_name { value: "pool" }\n'
    )
    parameters, given = read_batching_parameters(path)
    assert (parameters.max_batch_size, parameters.allowed_batch_sizes) == (8, (2, 8))
    assert "pad_variable_length_inputs" in given


@pytest.mark.parametrize(
    "text, message",
    [
        ("max_batch_size { value: 8 }\nmax_batch_sise { value: 4 }\n", r":2: unknown or malformed field 'max_batch_sise"),
        ("max_batch_size { value: -3 }\n", r":1: max_batch_size must be a non-negative integer"),
        ("max_batch_size { value: 0 }\n", "max_batch_size must be at least 1"),
        ("max_batch_size { value: 8 }\nallowed_batch_sizes: 4\n", r"allowed_batch_sizes \[4\] must increase and end"),
        ("pad_variable_length_inputs: true\n", "pad_variable_length_inputs is not supported"),
        ("max_batch_size { value: 8 \n", r":1: unknown or malformed field 'value: 8'"),
    ],
)  # fmt: skip
def test_bad_parameters_files(tmp_path, text, message):
    path = tmp_path / "batching.config"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        read_batching_parameters(path)


def test_concurrent_requests_run_as_one_batch_and_get_their_own_rows(lengths):
    scheduler = BatchScheduler(BatchingParameters(max_batch_size=6, batch_timeout_micros=10_000_000))
    try:
        requests = [["1"], ["22", "333"], ["4444", "5", "66"]]  # 6 instances: the batch is full
        results = _submit(scheduler, lengths, requests)
    finally:
        scheduler.stop()
    for texts, outputs in zip(requests, results):
        np.testing.assert_array_equal(outputs["length"], [len(t) for t in texts])
        np.testing.assert_array_equal(outputs["number"], [float(t) for t in texts])
        np.testing.assert_array_equal(outputs["batch"], [6] * len(texts))


def test_batches_are_padded_to_an_allowed_size(lengths):
    scheduler = BatchScheduler(BatchingParameters(max_batch_size=8, allowed_batch_sizes=(4, 8)))
    try:
        outputs = scheduler.run(lengths, {"text": np.array(["1", "22", "333"], object)})
    finally:
        scheduler.stop()
    np.testing.assert_array_equal(outputs["length"], [1, 2, 3])  # the padding row's output dropped
    np.testing.assert_array_equal(outputs["batch"], [4, 4, 4])


def test_an_error_of_the_batch_is_every_requests_error(lengths):
    scheduler = BatchScheduler(BatchingParameters(max_batch_size=2, batch_timeout_micros=10_000_000))
    try:
        results = _submit(scheduler, lengths, [["1"], ["not a number"]])
    finally:
        scheduler.stop()
    for result in results:
        assert isinstance(result, predict.InvalidArgument)
        assert str(result) == "StringToNumberOp could not correctly convert string: not a number"


def test_limits_a_full_queue_and_a_stop(lengths):
    parameters = BatchingParameters(max_batch_size=4, batch_timeout_micros=60_000_000, max_enqueued_batches=1)
    scheduler = BatchScheduler(parameters)
    waiting = []
    first = threading.Thread(target=lambda: waiting.append(_submit(scheduler, lengths, [["1", "2", "3"]])[0]))
    first.start()
    with pytest.raises(predict.InvalidArgument, match="Task size 5 is larger than maximum input batch size 4"):
        scheduler.run(lengths, {"text": np.array(list("12345"), object)})
    with pytest.raises(predict.InvalidArgument, match="shape \\[\\] is not compatible"):
        scheduler.run(lengths, {"text": np.array("1", object)})
    while not scheduler._queues:  # the first request is queued, waiting for its timeout
        threading.Event().wait(0.01)
    with pytest.raises(predict.Unavailable, match=QUEUE_FULL):
        scheduler.run(lengths, {"text": np.array(["1", "2"], object)})
    scheduler.stop()
    first.join(10)
    assert isinstance(waiting[0], predict.Unavailable) and "shutting down" in str(waiting[0])


def test_served_with_batching_equals_the_saved_model(tiny_version, tmp_path):
    root = make_root(tmp_path, tiny_version)
    texts = ["a fine film", "dull and long", "", "一部好电影", "great " * 300]
    serve = tf.saved_model.load(str(root / "tiny" / "1")).signatures["serving_default"]
    expected = serve(text=tf.constant(texts))["probabilities"].numpy()
    app = make_app(root, poll_seconds=0.1, batching=BatchingParameters(max_batch_size=4, batch_timeout_micros=5000))
    with TestClient(app) as client:

        def one(i):
            response = client.post("/v1/models/tiny:predict", json={"instances": [texts[i % len(texts)]]})
            assert response.status_code == 200, response.text
            return response.json()["predictions"][0]["probabilities"]

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(one, range(20)))
        too_many = client.post("/v1/models/tiny:predict", json={"instances": texts})
    for i, probabilities in enumerate(answers):
        np.testing.assert_allclose(probabilities, expected[i % len(texts)], rtol=1e-6)
    assert too_many.status_code == 400
    assert too_many.json() == {"error": "Task size 5 is larger than maximum input batch size 4"}


def test_grpc_predict_with_batching_equals_the_saved_model(tiny_version, tmp_path):
    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    from tests.fixtures import free_ports
    from tfrnn.serving.grpc_server import serve_grpc
    from tfrnn.serving.repository import ModelRepository

    root = make_root(tmp_path, tiny_version)
    texts = ["a fine film", "dull and long", "一部好电影"]
    serve = tf.saved_model.load(str(root / "tiny" / "1")).signatures["serving_default"]
    expected = serve(text=tf.constant(texts))["probabilities"].numpy()
    repository, scheduler = ModelRepository(root), BatchScheduler(BatchingParameters(max_batch_size=4))
    repository.start()
    server = serve_grpc(repository, "127.0.0.1", free_ports(1)[0], run=scheduler.run)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)

            def one(i):
                request = predict_pb2.PredictRequest()
                request.model_spec.name = "tiny"
                request.inputs["text"].CopyFrom(tf.make_tensor_proto([texts[i % len(texts)]]))
                return tf.make_ndarray(stub.Predict(request, timeout=60).outputs["probabilities"])[0]

            with ThreadPoolExecutor(8) as pool:
                answers = list(pool.map(one, range(12)))
    finally:
        server.stop(5).wait()
        scheduler.stop()
        repository.stop()
    for i, probabilities in enumerate(answers):
        np.testing.assert_allclose(probabilities, expected[i % len(texts)], rtol=1e-6)
