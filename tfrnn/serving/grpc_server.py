"""TF Serving's gRPC API for `tfrnn serve` (port 8500), with the stubs of `tensorflow-serving-api`,
over the same `ModelRepository` as the REST API (`tfrnn.serving.server`).

Services (tensorflow_serving/apis/prediction_service.proto, model_service.proto):
    PredictionService.Predict            TensorProto in and out, output_filter, signature_name
    PredictionService.GetModelMetadata   metadata_field "signature_def": a SignatureDefMap in an Any
    PredictionService.Classify/Regress   what TF Serving answers for a predict-only SavedModel
    PredictionService.MultiInference     the same, per task
    ModelService.GetModelStatus          every version's state, or one version's
    ModelService.HandleReloadConfigRequest   UNIMPLEMENTED (restart with the new config instead)

Each RPC follows TF Serving's own implementation, cited where it is written: the order of the
checks, the messages and the status codes (a `tensorflow::Status` code becomes the gRPC code of the
same number, its message cut at 1,024 characters: model_servers/grpc_status_util.cc). Errors never
carry a server path or a traceback: an unexpected failure is logged and answered INTERNAL.

Two limits TF Serving does not have, which bound the memory one request takes: the message size
(`max_message_bytes`; TF Serving takes up to 2 GiB, server.cc SetMaxMessageSize(kint32max)),
answered RESOURCE_EXHAUSTED by gRPC itself, and the instances per request (`max_instances`,
checked on the TensorProto's shape before any tensor is built), as the REST API.
"""

import logging
import time
from concurrent import futures

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_management_pb2,
    model_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from tfrnn.serving import predict
from tfrnn.serving.predict import DEFAULT_SIGNATURE, ServingError

log = logging.getLogger("tfrnn.serving.grpc")

GRPC_PORT = 8500  # TF Serving's --port
MAX_MESSAGE_BYTES = 10 * 1024 * 1024  # the REST API's request limit (tfrnn.serving.server)
MAX_WORKERS = 8
ERROR_MESSAGE_LIMIT = 1024  # grpc_status_util.cc ToGRPCStatus: kErrorMessageLimit
SIGNATURE_DEF = "signature_def"  # get_model_metadata_impl.cc kSignatureDef
CLASSIFY_METHOD = "tensorflow/serving/classify"  # tensorflow/cc/saved_model/signature_constants.h
REGRESS_METHOD = "tensorflow/serving/regress"

# numpy dtype kind/size -> the TensorProto field tensorflow::Tensor::AsProtoField fills.
_PROTO_FIELDS = {
    np.dtype(np.float32): "float_val",
    np.dtype(np.float64): "double_val",
    np.dtype(np.int32): "int_val",
    np.dtype(np.int16): "int_val",
    np.dtype(np.int8): "int_val",
    np.dtype(np.uint8): "int_val",
    np.dtype(np.uint16): "int_val",
    np.dtype(np.int64): "int64_val",
    np.dtype(np.uint32): "uint32_val",
    np.dtype(np.uint64): "uint64_val",
    np.dtype(np.bool_): "bool_val",
}


class _Refusal(Exception):
    """A refusal with its gRPC status code and TF Serving's message."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def _invalid(message):
    return _Refusal(grpc.StatusCode.INVALID_ARGUMENT, message)


def _code(name):
    """A gRPC status code from its name ("NOT_FOUND"); UNKNOWN for a name gRPC lacks."""
    return getattr(grpc.StatusCode, name, grpc.StatusCode.UNKNOWN)


def _answer(context, api, handler, request, response_type, metrics=None):
    """Runs one RPC, turning refusals into gRPC statuses as TF Serving does, and counts it in
    `metrics` (tfrnn.serving.metrics.ServingMetrics or None) under `api`."""
    started = time.perf_counter()
    call = {"version": None}  # the version that answered, filled in by the handler
    code, message = grpc.StatusCode.OK, ""
    try:
        return handler(request, call)
    except _Refusal as e:
        code, message = e.code, str(e)
    except ServingError as e:
        # predict.SignatureNotFound carries the gRPC answer besides the REST one (predict_util.cc)
        code = _code(getattr(e, "grpc_code", e.code))
        message = getattr(e, "grpc_message", str(e))
    except Exception:  # never a traceback nor a path to the client: the log has them
        log.exception("%s failed", api)
        code, message = grpc.StatusCode.INTERNAL, f"{api} failed; the server's log has the details"
    finally:
        if metrics is not None:
            name = request.model_spec.name  # only the RPCs with a model_spec are counted
            metrics.record(name, call["version"], api, code.name, time.perf_counter() - started, entrypoint="GRPC")
    if len(message) > ERROR_MESSAGE_LIMIT:
        message = message[:ERROR_MESSAGE_LIMIT] + "...TRUNCATED"
    log.debug("%s refused: %s %s", api, code.name, message)
    context.abort(code, message)
    return response_type()  # not reached: abort raises


def _servable(repository, model_spec):
    """ServerCore::GetServableHandle: (version, loaded SavedModel) for a ModelSpec.

    Raises:
        _Refusal: no name (server_core.cc ServableRequestFromModelSpec).
        ServingError: from the repository (NOT_FOUND, unknown label, ...).
    """
    if not model_spec.name:
        raise _invalid("ModelSpec has no name specified.")
    choice = model_spec.WhichOneof("version_choice")
    if choice == "version":
        return repository.servable(model_spec.name, version=model_spec.version.value)
    if choice == "version_label":
        return repository.servable(model_spec.name, label=model_spec.version_label)
    return repository.servable(model_spec.name)


def _instances(proto):
    """The 0th dimension of a TensorProto, read from its shape (1 for a scalar)."""
    dims = proto.tensor_shape.dim
    return dims[0].size if dims else 1


def _from_proto(alias, proto):
    """A request's TensorProto as numpy (Tensor::FromProto in saved_model/util.cc GetInputValues)."""
    try:
        return tf.make_ndarray(proto)
    except Exception:
        raise _invalid(f"tensor parsing error: {alias}") from None


def _check_classification(definition):
    """classifier.cc PreProcessClassification without the method_name check (TF Serving's
    default): one input "inputs", one or two outputs, "classes" or "scores" among them."""
    if len(definition.inputs) != 1:
        raise _invalid("Expected one input Tensor.")
    if len(definition.outputs) not in (1, 2):
        raise _invalid(f"Expected one or two output Tensors, found {len(definition.outputs)}")
    if "inputs" not in definition.inputs:
        raise _invalid(f"No classification inputs found in SignatureDef: {definition}")
    if "classes" not in definition.outputs and "scores" not in definition.outputs:
        raise _invalid(
            'Expected classification signature outputs to contain at least one of "classes" or "scores". '
            f"Signature was: {definition}"
        )


def _check_regression(definition):
    """regressor.cc PreProcessRegression without the method_name check (TF Serving's default):
    one input "inputs", one output "outputs"."""
    if len(definition.inputs) != 1:
        raise _invalid("Expected one input Tensor.")
    if len(definition.outputs) != 1:
        raise _invalid("Expected one output Tensor.")
    if "inputs" not in definition.inputs:
        raise _invalid(f"No regression inputs found in SignatureDef: {definition}")
    if "outputs" not in definition.outputs:
        raise _invalid(f"No regression outputs found in SignatureDef: {definition}")


def _check_dtypes(protos, specs):
    """Refuses a tensor whose dtype is not its input's, as the session does when it feeds it
    (tensorflow/core/framework/function.cc FunctionCallFrame::SetArgs): gRPC tensors are typed, so
    unlike JSON values they are never converted.

    Args:
        protos: {alias: TensorProto}, the request's inputs.
        specs: {alias: tf.TensorSpec}, the signature's.

    Raises:
        _Refusal: INVALID_ARGUMENT "Expects arg[I] to be WANTED but GIVEN is provided".
    """
    for index, alias in enumerate(sorted(specs)):
        wanted = specs[alias].dtype.as_datatype_enum
        if protos[alias].dtype != wanted:
            raise _invalid(
                f"Expects arg[{index}] to be {_dtype_string(wanted)} but {_dtype_string(protos[alias].dtype)} "
                "is provided"
            )


def _dtype_string(enum):
    """tensorflow::DataTypeString: DT_FLOAT -> "float", DT_STRING -> "string"."""
    try:
        return types_pb2.DataType.Name(enum)[3:].lower()
    except ValueError:
        return f"unknown dtype enum ({enum})"


def as_proto_field(array):
    """A numpy array as TF Serving's Predict answers it: tensorflow::Tensor::AsProtoField, the
    values in the typed repeated field (float_val, int_val, string_val...), not tensor_content
    (predict_util.cc RunPredict: kAsProtoField, the default serialization option).

    Args:
        array: np.ndarray (strings as bytes or str objects).

    Returns:
        tensorflow.core.framework.tensor_pb2.TensorProto.
    """
    array = np.asarray(array)
    if array.dtype.kind in "OSU":
        proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING)
        values = [v.encode("utf-8") if isinstance(v, str) else bytes(v) for v in array.ravel().tolist()]
        proto.string_val.extend(values)
    elif array.dtype in _PROTO_FIELDS:
        proto = tensor_pb2.TensorProto(dtype=tf.as_dtype(array.dtype).as_datatype_enum)
        getattr(proto, _PROTO_FIELDS[array.dtype]).extend(array.ravel().tolist())
    else:  # half, complex...: TensorFlow's own conversion
        return tf.make_tensor_proto(array)
    for size in array.shape:
        proto.tensor_shape.dim.add(size=size)
    return proto


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """tensorflow.serving.PredictionService over a ModelRepository.

    Args:
        repository: tfrnn.serving.repository.ModelRepository (started by the caller).
        max_instances: int or None. The most instances (0th dimension) one input may have.
        metrics: tfrnn.serving.metrics.ServingMetrics or None. Counts requests (entrypoint GRPC).
        run: callable. Runs a Predict: `predict.run`, or a BatchScheduler's `run` (batching).
    """

    def __init__(self, repository, max_instances=predict.DEFAULT_MAX_INSTANCES, metrics=None, run=predict.run):
        self.repository = repository
        self.max_instances = max_instances
        self.metrics = metrics
        self.run = run

    # -- Predict: servables/tensorflow/predict_impl.cc, predict_util.cc ---------------------------

    def Predict(self, request, context):
        return _answer(context, "Predict", self._predict, request, predict_pb2.PredictResponse, self.metrics)

    def _predict(self, request, call):
        if not request.HasField("model_spec"):
            raise _invalid("Missing ModelSpec")  # predict_impl.cc TensorflowPredictor::Predict
        version, loaded = _servable(self.repository, request.model_spec)
        call["version"] = version
        signature_name = request.model_spec.signature_name or DEFAULT_SIGNATURE
        function = predict.signature(loaded, signature_name)
        # predict_util.cc PreProcessPrediction: input names, then output_filter, then the run
        specs = predict.input_specs(function)
        predict.check_names(request.inputs.keys(), specs)
        aliases = self._output_aliases(request.output_filter, function)
        for proto in request.inputs.values():
            predict.check_instances(_instances(proto), self.max_instances)
        inputs = {alias: _from_proto(alias, proto) for alias, proto in request.inputs.items()}
        _check_dtypes(request.inputs, specs)
        outputs = self.run(function, inputs, self.max_instances)
        response = predict_pb2.PredictResponse()
        # util.cc MakeModelSpec: the name, the signature ("" -> serving_default), the version
        response.model_spec.name = request.model_spec.name
        response.model_spec.signature_name = signature_name
        response.model_spec.version.value = version
        for alias in aliases:
            response.outputs[alias].CopyFrom(as_proto_field(outputs[alias]))
        return response

    @staticmethod
    def _output_aliases(output_filter, function):
        """The outputs to answer: `output_filter` checked as predict_util.cc does, else all."""
        names = sorted(function.structured_outputs)
        seen = []
        for alias in output_filter:
            if alias not in names:
                raise _invalid(
                    f"output tensor alias not found in signature: {alias} "
                    f"Outputs expected to be in the set {{{','.join(names)}}}."
                )
            if alias in seen:
                raise _invalid(f"duplicate output tensor alias: {alias}")
            seen.append(alias)
        return seen or names

    # -- GetModelMetadata: servables/tensorflow/get_model_metadata_impl.cc -----------------------

    def GetModelMetadata(self, request, context):
        return _answer(
            context,
            "GetModelMetadata",
            self._metadata,
            request,
            get_model_metadata_pb2.GetModelMetadataResponse,
            self.metrics,
        )

    def _metadata(self, request, call):
        if not request.HasField("model_spec"):
            raise _invalid("Missing ModelSpec")
        if not request.metadata_field:
            raise _invalid("GetModelMetadataRequest must specify at least one metadata_field")
        for field in request.metadata_field:
            if field != SIGNATURE_DEF:
                raise _invalid(f"Metadata field {field} is not supported")
        version, loaded = _servable(self.repository, request.model_spec)
        call["version"] = version
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = version
        response.metadata[SIGNATURE_DEF].Pack(predict.signature_def_map(loaded))
        return response

    # -- Classify, Regress, MultiInference: a predict-only SavedModel ----------------------------

    def Classify(self, request, context):
        return _answer(
            context,
            "Classify",
            self._classify_or_regress,
            request,
            classification_pb2.ClassificationResponse,
            self.metrics,
        )

    def Regress(self, request, context):
        return _answer(
            context, "Regress", self._classify_or_regress, request, regression_pb2.RegressionResponse, self.metrics
        )

    def _classify_or_regress(self, request, call):
        """classification_service.cc / regression_service.cc, then classifier.cc
        GetClassificationSignatureDef / regressor.cc GetRegressionSignatureDef with TF Serving's
        default --enable_signature_method_name_check=false: the signature's shape is checked
        (PreProcessClassification / PreProcessRegression). A tfrnn export (one input "text", three
        outputs) fails those checks; a signature that passed them is answered UNIMPLEMENTED, as
        `tfrnn serve` runs no tf.Example inputs."""
        if not request.HasField("model_spec"):
            raise _invalid("Missing ModelSpec")
        call["version"], loaded = _servable(self.repository, request.model_spec)
        definitions = predict.signature_def_map(loaded).signature_def
        signature_name = request.model_spec.signature_name or DEFAULT_SIGNATURE
        if signature_name not in definitions:
            raise _invalid(f"No signature was found with the name: {signature_name}")
        classify = isinstance(request, classification_pb2.ClassificationRequest)
        (_check_classification if classify else _check_regression)(definitions[signature_name])
        raise _Refusal(grpc.StatusCode.UNIMPLEMENTED, "tfrnn serve runs Predict only, not tf.Example inputs")

    def MultiInference(self, request, context):
        return _answer(context, "MultiInference", self._multi_inference, request, inference_pb2.MultiInferenceResponse)

    def _multi_inference(self, request, call):
        """multi_inference_helper.cc (the first task's ModelSpec picks the servable), then
        multi_inference.cc TensorFlowMultiInferenceRunner::Infer's checks per task."""
        has_spec = request.tasks and request.tasks[0].HasField("model_spec")
        _, loaded = _servable(self.repository, request.tasks[0].model_spec if has_spec else model_pb2.ModelSpec())
        definitions = predict.signature_def_map(loaded).signature_def
        names, seen = set(), set()
        for task in request.tasks:
            if not task.model_spec.name:
                raise _invalid("Found ModelSpec with an empty model name.")
            names.add(task.model_spec.name)
            if len(names) > 1:
                raise _invalid("All ModelSpecs in a MultiInferenceRequest must access the same model name.")
            signature_name = task.model_spec.signature_name or DEFAULT_SIGNATURE
            if signature_name in seen:
                raise _invalid(f"Duplicate evaluation of signature: {signature_name}")
            seen.add(signature_name)
            if signature_name not in definitions:
                raise _invalid(f"Requested signature not found in model graph: {signature_name}")
            if task.method_name == CLASSIFY_METHOD:
                _check_classification(definitions[signature_name])
            elif task.method_name == REGRESS_METHOD:
                _check_regression(definitions[signature_name])
            else:
                raise _Refusal(grpc.StatusCode.UNIMPLEMENTED, f"Unsupported signature method_name: {task.method_name}")
        if request.tasks:
            raise _Refusal(grpc.StatusCode.UNIMPLEMENTED, "tfrnn serve runs Predict only, not tf.Example inputs")


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    """tensorflow.serving.ModelService over a ModelRepository.

    Args:
        repository: tfrnn.serving.repository.ModelRepository.
        metrics: tfrnn.serving.metrics.ServingMetrics or None. Counts requests (entrypoint GRPC).
    """

    def __init__(self, repository, metrics=None):
        self.repository = repository
        self.metrics = metrics

    def GetModelStatus(self, request, context):
        return _answer(
            context, "GetModelStatus", self._status, request, get_model_status_pb2.GetModelStatusResponse, self.metrics
        )

    def _status(self, request, call):
        """model_servers/get_model_status_impl.cc: every version newest first, or the one asked."""
        if not request.HasField("model_spec"):
            raise _invalid("Missing ModelSpec")
        spec = request.model_spec
        version = spec.version.value if spec.HasField("version") else None
        response = get_model_status_pb2.GetModelStatusResponse()
        for status in self.repository.model_status(spec.name, version):
            entry = response.model_version_status.add()
            entry.version = status.version
            entry.state = get_model_status_pb2.ModelVersionStatus.State.Value(status.state)
            entry.status.error_code = _error_code(status.error_code)
            entry.status.error_message = status.error_message
        return response

    def HandleReloadConfigRequest(self, request, context):
        return _answer(
            context,
            "HandleReloadConfigRequest",
            self._reload,
            request,
            model_management_pb2.ReloadConfigResponse,
        )

    @staticmethod
    def _reload(request, call):
        raise _Refusal(
            grpc.StatusCode.UNIMPLEMENTED,
            "tfrnn serve does not reload its model config over gRPC: restart it with the new "
            "--model_config_file (it picks up new versions on disk by itself)",
        )


def _error_code(name):
    """A status code's name ("DATA_LOSS") as tensorflow.error.Code's number."""
    from tensorflow.core.protobuf import error_codes_pb2

    try:
        return error_codes_pb2.Code.Value(name)
    except ValueError:
        return error_codes_pb2.UNKNOWN


def serve_grpc(
    repository,
    host="0.0.0.0",
    port=GRPC_PORT,
    max_workers=MAX_WORKERS,
    max_instances=predict.DEFAULT_MAX_INSTANCES,
    max_message_bytes=MAX_MESSAGE_BYTES,
    metrics=None,
    run=predict.run,
):
    """Starts TF Serving's gRPC API over `repository` and returns the running server.

    Args:
        repository: tfrnn.serving.repository.ModelRepository, started by the caller (the REST
            server shares it).
        host: str. The address to bind ("0.0.0.0", as TF Serving; "127.0.0.1" for this machine).
        port: int. TF Serving's gRPC port by default; 0 picks a free one (see `server.port`).
        max_workers: int. Threads running requests.
        max_instances: int or None. The most instances one request's input may have.
        max_message_bytes: int. Larger requests are refused RESOURCE_EXHAUSTED by gRPC.
        metrics: tfrnn.serving.metrics.ServingMetrics or None. Where requests are counted (the
            REST app's `app.state.metrics`, so that /monitoring/prometheus/metrics shows both).
        run: callable. Runs a Predict: `predict.run`, or the REST app's `app.state.run` (so that
            both APIs share one batch scheduler).

    Returns:
        grpc.Server, started, with the bound port as `server.port`; stop it with
        `server.stop(grace)`, or block with `server.wait_for_termination()`.

    Raises:
        OSError: the port could not be bound.
    """
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="tfrnn-grpc"),
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", -1),
            ("grpc.so_reuseport", 0),  # a port in use is an error, not a second listener
        ],
    )
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(repository, max_instances, metrics, run), server
    )
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(repository, metrics), server)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as e:  # grpcio >= 1.5x raises instead of returning 0
        raise OSError(f"could not bind the gRPC port {address}: {e}") from None
    if bound == 0:
        raise OSError(f"could not bind the gRPC port {address}")
    server.start()
    server.port = bound
    log.info("Serving TF Serving's gRPC API on %s:%d", host, bound)
    return server
