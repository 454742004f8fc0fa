"""TF Serving's gRPC API of `tfrnn serve` (tfrnn.serving.grpc_server) over real gRPC on loopback,
with the stubs of `tensorflow-serving-api`: Predict equals the SavedModel called in-process,
metadata and status as TF Serving answers them, and each refusal with TF Serving's status code and
message, read from TF Serving's source (tensorflow/serving, cited at each test)."""

from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import error_codes_pb2, saved_model_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from tests.fixtures import SERVING_TEXTS, free_ports
from tfrnn.export import export_run
from tfrnn.serving.grpc_server import as_proto_field, serve_grpc
from tfrnn.serving.metrics import ServingMetrics
from tfrnn.serving.repository import ModelRepository

TEXTS = SERVING_TEXTS
MAX_INSTANCES = 16
MAX_MESSAGE_BYTES = 64 * 1024
OUTPUTS = ["label", "label_id", "probabilities"]


@pytest.fixture(scope="module")
def root(tiny_run, tmp_path_factory):
    """An export root holding the shared tiny run as version 1 of model "tiny"."""
    root = tmp_path_factory.mktemp("grpc_root")
    export_run(tiny_run.run_dir, root / "tiny")
    return root


@pytest.fixture(scope="module")
def metrics():
    return ServingMetrics()


@pytest.fixture(scope="module")
def channel(root, metrics):
    """A channel to the gRPC server over `root`, on a free loopback port."""
    repository = ModelRepository(root)
    repository.start()
    server = serve_grpc(
        repository,
        "127.0.0.1",
        free_ports(1)[0],
        max_workers=4,
        max_instances=MAX_INSTANCES,
        max_message_bytes=MAX_MESSAGE_BYTES,
        metrics=metrics,
    )
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield channel
    server.stop(5).wait()
    repository.stop()


@pytest.fixture(scope="module")
def predictions(channel):
    return prediction_service_pb2_grpc.PredictionServiceStub(channel)


@pytest.fixture(scope="module")
def models(channel):
    return model_service_pb2_grpc.ModelServiceStub(channel)


@pytest.fixture(scope="module")
def expected(root):
    """The outputs of version 1's signature called in-process on TEXTS, as numpy."""
    serve = tf.saved_model.load(str(root / "tiny" / "1")).signatures["serving_default"]
    return {key: value.numpy() for key, value in serve(text=tf.constant(TEXTS)).items()}


def _request(texts=TEXTS, name="tiny", **spec):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    for key, value in spec.items():
        if key == "version":
            request.model_spec.version.value = value
        else:
            setattr(request.model_spec, key, value)
    if texts is not None:
        request.inputs["text"].CopyFrom(tf.make_tensor_proto(texts))
    return request


def _refused(call, request):
    """The RpcError a call ends with (it must fail)."""
    with pytest.raises(grpc.RpcError) as info:
        call(request, timeout=60)
    return info.value


def _assert_equal(outputs, expected, names=OUTPUTS):
    assert sorted(outputs) == sorted(names)
    got = {name: tf.make_ndarray(outputs[name]) for name in names}
    if "probabilities" in names:
        np.testing.assert_allclose(got["probabilities"], expected["probabilities"], rtol=1e-6, atol=1e-6)
    if "label_id" in names:
        np.testing.assert_array_equal(got["label_id"], expected["label_id"])
    if "label" in names:
        np.testing.assert_array_equal(got["label"], expected["label"])


# -- Predict ------------------------------------------------------------------------------------


def test_predict_equals_the_signature_called_directly(predictions, expected):
    response = predictions.Predict(_request(), timeout=60)
    _assert_equal(response.outputs, expected)
    # util.cc MakeModelSpec: name, the signature actually run, the version that answered
    assert response.model_spec.name == "tiny"
    assert response.model_spec.signature_name == "serving_default"
    assert response.model_spec.version.value == 1
    # predict_util.cc RunPredict: kAsProtoField, values in the typed fields, as TF Serving
    probabilities = response.outputs["probabilities"]
    assert len(probabilities.float_val) == 2 * len(TEXTS) and not probabilities.tensor_content
    assert [d.size for d in probabilities.tensor_shape.dim] == [len(TEXTS), 2]
    assert list(response.outputs["label_id"].int_val) == list(expected["label_id"])


def test_empty_signature_name_is_serving_default(predictions, expected):
    """predict_util.cc RunPredict: an empty signature_name is kDefaultServingSignatureDefKey."""
    for name in ("", "serving_default"):
        response = predictions.Predict(_request(signature_name=name), timeout=60)
        assert response.model_spec.signature_name == "serving_default"
        _assert_equal(response.outputs, expected)


def test_a_version_by_number(predictions, expected):
    response = predictions.Predict(_request(version=1), timeout=60)
    assert response.model_spec.version.value == 1
    _assert_equal(response.outputs, expected)


def test_output_filter(predictions, expected):
    """predict_util.cc PreProcessPrediction: only the filtered outputs; unknown or repeated
    aliases are INVALID_ARGUMENT."""
    request = _request()
    request.output_filter.append("label")
    response = predictions.Predict(request, timeout=60)
    _assert_equal(response.outputs, expected, ["label"])

    request.output_filter.append("logits")
    error = _refused(predictions.Predict, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == (
        "output tensor alias not found in signature: logits Outputs expected to be in the set "
        "{label,label_id,probabilities}."
    )
    del request.output_filter[:]
    request.output_filter.extend(["label", "label"])
    error = _refused(predictions.Predict, request)
    assert (error.code(), error.details()) == (grpc.StatusCode.INVALID_ARGUMENT, "duplicate output tensor alias: label")


def test_unknown_model_and_version_are_not_found(predictions):
    """core/basic_manager.cc GetUntypedServableHandle: "Servable not found for request: " and the
    ServableRequest's DebugString, Latest(NAME) or Specific(NAME, VERSION)."""
    error = _refused(predictions.Predict, _request(name="nosuch"))
    assert (error.code(), error.details()) == (
        grpc.StatusCode.NOT_FOUND,
        "Servable not found for request: Latest(nosuch)",
    )
    error = _refused(predictions.Predict, _request(version=7))
    assert (error.code(), error.details()) == (
        grpc.StatusCode.NOT_FOUND,
        "Servable not found for request: Specific(tiny, 7)",
    )


def test_long_model_name_is_not_found_and_truncated(predictions, root):
    """A 300-character name is NOT_FOUND with no server path; past 1,024 characters the message
    is cut and ends "...TRUNCATED" (model_servers/grpc_status_util.cc ToGRPCStatus)."""
    error = _refused(predictions.Predict, _request(name="m" * 300))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error.details() == f"Servable not found for request: Latest({'m' * 300})"
    assert str(root) not in error.details()
    error = _refused(predictions.Predict, _request(name="m" * 2000))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert len(error.details()) == 1024 + len("...TRUNCATED") and error.details().endswith("...TRUNCATED")


def test_unknown_label_is_invalid_argument(predictions):
    """server_core.cc GetModelVersionForLabel: "Unrecognized servable version label: LABEL"."""
    error = _refused(predictions.Predict, _request(version_label="canary"))
    assert (error.code(), error.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "Unrecognized servable version label: canary",
    )


def test_missing_model_spec_or_name(predictions):
    """predict_impl.cc TensorflowPredictor::Predict: "Missing ModelSpec"; server_core.cc
    ServableRequestFromModelSpec: "ModelSpec has no name specified."."""
    request = predict_pb2.PredictRequest()
    request.inputs["text"].CopyFrom(tf.make_tensor_proto(TEXTS))
    error = _refused(predictions.Predict, request)
    assert (error.code(), error.details()) == (grpc.StatusCode.INVALID_ARGUMENT, "Missing ModelSpec")
    error = _refused(predictions.Predict, _request(name=""))
    assert (error.code(), error.details()) == (grpc.StatusCode.INVALID_ARGUMENT, "ModelSpec has no name specified.")


def test_unknown_signature_is_failed_precondition(predictions):
    """predict_util.cc RunPredict: FAILED_PRECONDITION 'Serving signature key "NAME" not found.'."""
    error = _refused(predictions.Predict, _request(signature_name="nope"))
    assert (error.code(), error.details()) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        'Serving signature key "nope" not found.',
    )


def test_unknown_or_missing_input_is_invalid_argument(predictions):
    """predict_util.cc VerifyRequestInputsSize and saved_model/util.cc GetInputValues: input
    names that are not the signature's are INVALID_ARGUMENT, naming them."""
    request = _request(texts=None)
    request.inputs["txt"].CopyFrom(tf.make_tensor_proto(TEXTS))
    error = _refused(predictions.Predict, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "txt" in error.details() and "text" in error.details()

    request.inputs["text"].CopyFrom(tf.make_tensor_proto(TEXTS))
    error = _refused(predictions.Predict, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith("input size does not match signature: 2!=1")

    error = _refused(predictions.Predict, _request(texts=None))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith("input size does not match signature: 0!=1")


def test_bad_tensors_are_invalid_argument(predictions):
    """A tensor of the wrong dtype is not converted: the session refuses it (tensorflow's
    framework/function.cc FunctionCallFrame::SetArgs); one whose content does not parse is
    "tensor parsing error: ALIAS" (saved_model/util.cc GetInputValues)."""
    request = _request(texts=None)
    request.inputs["text"].CopyFrom(tf.make_tensor_proto(np.array([1.5, 2.5], np.float32)))
    error = _refused(predictions.Predict, request)
    assert (error.code(), error.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "Expects arg[0] to be string but float is provided",
    )

    broken = tf.make_tensor_proto(np.zeros([4], np.float32))
    broken.tensor_content = broken.tensor_content[:5]
    request.inputs["text"].CopyFrom(broken)
    error = _refused(predictions.Predict, request)
    assert (error.code(), error.details()) == (grpc.StatusCode.INVALID_ARGUMENT, "tensor parsing error: text")


def test_instance_and_message_limits(predictions, expected):
    """More instances than the limit: INVALID_ARGUMENT with the batching queue's message
    (shared_batch_scheduler.h), checked on the TensorProto's shape. A message over the limit:
    RESOURCE_EXHAUSTED from gRPC itself. Under both, the answer is right."""
    error = _refused(predictions.Predict, _request(texts=["ok"] * (MAX_INSTANCES + 1)))
    assert (error.code(), error.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        f"Task size {MAX_INSTANCES + 1} is larger than maximum input batch size {MAX_INSTANCES}",
    )
    error = _refused(predictions.Predict, _request(texts=["a" * MAX_MESSAGE_BYTES]))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    response = predictions.Predict(_request(texts=TEXTS * 2), timeout=60)
    np.testing.assert_array_equal(
        tf.make_ndarray(response.outputs["label_id"]), np.concatenate([expected["label_id"]] * 2)
    )


def test_concurrent_predicts(predictions, expected):
    """32 requests from 8 threads on the 4 workers: every answer is its own input's."""

    def one(i):
        text = TEXTS[i % len(TEXTS)]
        response = predictions.Predict(_request(texts=[text]), timeout=60)
        return i, tf.make_ndarray(response.outputs["probabilities"])[0]

    with ThreadPoolExecutor(8) as pool:
        for i, probabilities in pool.map(one, range(32)):
            np.testing.assert_allclose(probabilities, expected["probabilities"][i % len(TEXTS)], rtol=1e-5, atol=1e-6)


def test_as_proto_field_round_trips():
    for array in (
        np.array([[0.25, 0.75]], np.float32),
        np.array([1, 2], np.int64),
        np.array([True, False]),
        np.array([b"neg", "pos".encode()], object),
        np.array(3.5, np.float64),
        np.zeros([0, 2], np.float32),
    ):
        round_trip = tf.make_ndarray(as_proto_field(array))
        assert round_trip.shape == array.shape
        np.testing.assert_array_equal(round_trip, array)


# -- GetModelMetadata ---------------------------------------------------------------------------


def _metadata_request(name="tiny", fields=("signature_def",)):
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=list(fields))
    request.model_spec.name = name
    return request


def test_metadata_signature_def(predictions, root):
    """get_model_metadata_impl.cc SavedModelGetSignatureDef: the model's name and version, and
    the signature defs as a SignatureDefMap packed in an Any under "signature_def"."""
    response = predictions.GetModelMetadata(_metadata_request(), timeout=60)
    assert response.model_spec.name == "tiny" and response.model_spec.version.value == 1
    assert list(response.metadata) == ["signature_def"]
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signature_map)
    serving = signature_map.signature_def["serving_default"]
    assert serving.method_name == "tensorflow/serving/predict"
    assert list(serving.inputs) == ["text"]
    assert serving.inputs["text"].dtype == tf.string.as_datatype_enum
    assert [d.size for d in serving.inputs["text"].tensor_shape.dim] == [-1]
    assert sorted(serving.outputs) == OUTPUTS
    assert serving.outputs["probabilities"].dtype == tf.float32.as_datatype_enum
    assert [d.size for d in serving.outputs["probabilities"].tensor_shape.dim] == [-1, 2]
    assert serving.outputs["label_id"].dtype == tf.int32.as_datatype_enum
    assert serving.outputs["label"].dtype == tf.string.as_datatype_enum
    # what TF Serving answers: the SavedModel's own meta graph's map, __saved_model_init_op included
    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((root / "tiny" / "1" / "saved_model.pb").read_bytes())
    assert dict(signature_map.signature_def) == dict(saved.meta_graphs[0].signature_def)
    assert "__saved_model_init_op" in signature_map.signature_def


def test_metadata_refusals(predictions):
    """get_model_metadata_impl.cc ValidateGetModelMetadataRequest, then the servable lookup."""
    error = _refused(predictions.GetModelMetadata, _metadata_request(fields=()))
    assert (error.code(), error.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "GetModelMetadataRequest must specify at least one metadata_field",
    )
    error = _refused(predictions.GetModelMetadata, _metadata_request(fields=("signature_def", "other")))
    assert (error.code(), error.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "Metadata field other is not supported",
    )
    error = _refused(predictions.GetModelMetadata, get_model_metadata_pb2.GetModelMetadataRequest())
    assert (error.code(), error.details()) == (grpc.StatusCode.INVALID_ARGUMENT, "Missing ModelSpec")
    error = _refused(predictions.GetModelMetadata, _metadata_request(name="nosuch"))
    assert (error.code(), error.details()) == (
        grpc.StatusCode.NOT_FOUND,
        "Servable not found for request: Latest(nosuch)",
    )


# -- GetModelStatus -----------------------------------------------------------------------------


def _status_request(name="tiny", version=None):
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = name
    if version is not None:
        request.model_spec.version.value = version
    return request


def test_model_status(models):
    """get_model_status_impl.cc: each version's state and status (OK, empty message)."""
    for request in (_status_request(), _status_request(version=1)):
        response = models.GetModelStatus(request, timeout=60)
        assert len(response.model_version_status) == 1
        status = response.model_version_status[0]
        assert status.version == 1
        assert status.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
        assert status.status.error_code == error_codes_pb2.OK and status.status.error_message == ""


def test_model_status_refusals(models):
    """get_model_status_impl.cc: NOT_FOUND "Could not find any versions of model NAME" and
    "Could not find version V of model NAME"; "Missing ModelSpec"."""
    error = _refused(models.GetModelStatus, _status_request(name="nosuch"))
    assert (error.code(), error.details()) == (
        grpc.StatusCode.NOT_FOUND,
        "Could not find any versions of model nosuch",
    )
    error = _refused(models.GetModelStatus, _status_request(version=7))
    assert (error.code(), error.details()) == (grpc.StatusCode.NOT_FOUND, "Could not find version 7 of model tiny")
    error = _refused(models.GetModelStatus, get_model_status_pb2.GetModelStatusRequest())
    assert (error.code(), error.details()) == (grpc.StatusCode.INVALID_ARGUMENT, "Missing ModelSpec")


# -- What a predict-only SavedModel answers -----------------------------------------------------


def test_classify_and_regress_refuse_a_predict_signature(predictions):
    """classifier.cc GetClassificationSignatureDef / regressor.cc GetRegressionSignatureDef with
    TF Serving's default --enable_signature_method_name_check=false: PreProcessClassification
    wants one or two outputs, PreProcessRegression one; a tfrnn export has three. An unknown
    signature comes first, an unknown model before it."""
    for call, message_type, message in (
        (predictions.Classify, classification_pb2.ClassificationRequest, "Expected one or two output Tensors, found 3"),
        (predictions.Regress, regression_pb2.RegressionRequest, "Expected one output Tensor."),
    ):
        request = message_type()
        request.model_spec.name = "tiny"
        error = _refused(call, request)
        assert (error.code(), error.details()) == (grpc.StatusCode.INVALID_ARGUMENT, message)
        request.model_spec.signature_name = "nope"
        error = _refused(call, request)
        assert (error.code(), error.details()) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "No signature was found with the name: nope",
        )
        request.model_spec.name = "nosuch"
        assert _refused(call, request).code() == grpc.StatusCode.NOT_FOUND
        assert _refused(call, message_type()).details() == "Missing ModelSpec"


def test_multi_inference_and_reload(predictions, models):
    """multi_inference.cc Infer: a classify or regress task runs PreProcessClassification /
    PreProcessRegression (refused as above), another method is UNIMPLEMENTED; no task means no
    model name (multi_inference_helper.cc, server_core.cc). HandleReloadConfigRequest is not
    offered (UNIMPLEMENTED)."""
    request = inference_pb2.MultiInferenceRequest()
    task = request.tasks.add()
    task.model_spec.name = "tiny"
    for method, message in (
        ("tensorflow/serving/classify", "Expected one or two output Tensors, found 3"),
        ("tensorflow/serving/regress", "Expected one output Tensor."),
    ):
        task.method_name = method
        error = _refused(predictions.MultiInference, request)
        assert (error.code(), error.details()) == (grpc.StatusCode.INVALID_ARGUMENT, message)
    task.method_name = "tensorflow/serving/predict"
    error = _refused(predictions.MultiInference, request)
    assert (error.code(), error.details()) == (
        grpc.StatusCode.UNIMPLEMENTED,
        "Unsupported signature method_name: tensorflow/serving/predict",
    )
    error = _refused(predictions.MultiInference, inference_pb2.MultiInferenceRequest())
    assert (error.code(), error.details()) == (grpc.StatusCode.INVALID_ARGUMENT, "ModelSpec has no name specified.")
    error = _refused(models.HandleReloadConfigRequest, model_management_pb2.ReloadConfigRequest())
    assert error.code() == grpc.StatusCode.UNIMPLEMENTED


def test_requests_are_counted_in_the_metrics(predictions, metrics):
    """Each answered RPC is counted under its model, version, API and status, entrypoint GRPC
    (what /monitoring/prometheus/metrics shows when the REST app shares its metrics)."""

    def count(text):
        line = [x for x in metrics.render().splitlines() if x.startswith(text)]
        return int(line[0].rsplit(" ", 1)[1]) if line else 0

    ok = ':tensorflow:serving:request_count{model_name="tiny",version="1",API="Predict",status="OK"}'
    missing = ':tensorflow:serving:request_count{model_name="nosuch",version="",API="Predict",status="NOT_FOUND"}'
    before_ok, before_missing = count(ok), count(missing)
    predictions.Predict(_request(), timeout=60)
    _refused(predictions.Predict, _request(name="nosuch"))
    assert (count(ok), count(missing)) == (before_ok + 1, before_missing + 1)
    assert 'API="Predict",entrypoint="GRPC"' in metrics.render()


def test_port_in_use_is_an_error(channel, root):
    repository = ModelRepository(root)
    port = free_ports(1)[0]
    first = serve_grpc(repository, "127.0.0.1", port)
    try:
        with pytest.raises(OSError):
            serve_grpc(repository, "127.0.0.1", port)
    finally:
        first.stop(0).wait()
