"""`tfrnn serve`: a local development stand-in for TF Serving's REST API. It answers what TF
Serving answers where a client can tell: the same routes, request and response JSON, status codes
and error messages, read from TF Serving's source (cited below). Point production at TF Serving.

Routes (tensorflow_serving/model_servers/http_rest_api_util.cc, kPredictionApiGegex and
kModelStatusApiRegex; matched case-insensitively on the undecoded path, the model name then
percent-decoded):
    GET  /v1/models/NAME[/versions/V | /labels/L]            model status
    GET  /v1/models/NAME[/versions/V | /labels/L]/metadata   signatures
    POST /v1/models/NAME[/versions/V | /labels/L]:predict    row ("instances") or columnar ("inputs")
    POST /v1/models/NAME[/versions/V | /labels/L]:classify   (and :regress) as for a predict-only
                                                             SavedModel: a 400 naming why
    GET  /monitoring/prometheus/metrics                      `tfrnn.serving.metrics`
Any other /v1/ request is a 400 "Malformed request: METHOD PATH"; any other path a 404.

Errors answer `{"error": "message"}` with the HTTP status of TF Serving's gRPC-code mapping
(model_servers/http_server.cc, ToHTTPStatusCode). Nothing the server logs (paths, tracebacks)
goes into a response. Versions load in the background (`tfrnn.serving.repository`); requests run
in a thread pool, and with `batching` concurrent Predicts run in batches (`tfrnn.serving.batching`).

Deliberate differences: request bodies are limited (413 past `max_request_bytes`); each request
may carry at most `max_instances` instances, refused before any tensor is built with the message
TF Serving's batching gives past `max_batch_size`; bodies must be UTF-8; JSON nested too deep for
the parser is a 400 (TF Serving's recursive parser has no limit).
"""

import contextlib
import json
import logging
import re
import time
import urllib.parse
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tfrnn.errors import ConfigError
from tfrnn.serving import json_tensor, predict
from tfrnn.serving.batching import BatchScheduler
from tfrnn.serving.metrics import PATH as METRICS_PATH
from tfrnn.serving.metrics import ServingMetrics
from tfrnn.serving.predict import DEFAULT_MAX_INSTANCES, InvalidArgument, ServingError
from tfrnn.serving.repository import ModelRepository

log = logging.getLogger("tfrnn.serving")

MAX_REQUEST_BYTES = 10 * 1024 * 1024
# model_servers/http_server.cc ToHTTPStatusCode.
HTTP_STATUS = {
    "OK": 200,
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INVALID_ARGUMENT": 400,
    "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "PERMISSION_DENIED": 403,
    "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 400,
    "ABORTED": 409,
    "OUT_OF_RANGE": 400,
    "UNIMPLEMENTED": 501,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DATA_LOSS": 500,
    "UNAUTHENTICATED": 401,
}

_REST_PATH = re.compile(r"/v1/.*", re.IGNORECASE | re.DOTALL)  # http_rest_api_util.h
_PREDICTION_PATH = re.compile(
    r"/v1/models/([^/:]+)(?:(?:/versions/([0-9]+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)", re.IGNORECASE
)
_STATUS_PATH = re.compile(
    r"/v1/models(?:/([^/:]+))?(?:(?:/versions/([0-9]+))|(?:/labels/([^/:]+)))?(?:/(metadata))?", re.IGNORECASE
)
# libevent's evhttp_send_error(req, HTTP_NOTFOUND, NULL) page, for paths outside /v1/.
_NOT_FOUND_PAGE = "<HTML><HEAD>\n<TITLE>404 Not Found</TITLE>\n</HEAD><BODY>\n<H1>Not Found</H1>\n</BODY></HTML>\n"
_INT64_MAX = 2**63 - 1
_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]  # evhttp_set_allowed_methods


class RequestError(ServingError):
    """A refusal that is not a gRPC status: an HTTP status and message of its own."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def make_app(
    root=None,
    max_request_bytes=MAX_REQUEST_BYTES,
    poll_seconds=1.0,
    *,
    model_config_file=None,
    max_instances=DEFAULT_MAX_INSTANCES,
    repository=None,
    warmup=True,
    batching=None,
):
    """The Starlette app of `tfrnn serve`. It starts the repository's polling, after the first
    round of loads (as TF Serving waits for its models before it listens), and stops it at
    shutdown.

    Args:
        root: str or Path, or None. An export root (ROOT/NAME/<version>/saved_model.pb): every
            model under it, newest version.
        max_request_bytes: int. Larger request bodies are refused with 413.
        poll_seconds: float. Seconds between two listings of the model folders
            (TF Serving's --file_system_poll_wait_seconds).
        model_config_file: str or Path, or None. A ModelServerConfig text proto instead of root.
        max_instances: int or None. Most instances per request (None: no limit).
        repository: ModelRepository or None. One to serve instead (root and model_config_file
            are then ignored); started here unless already started.
        warmup: bool. Replay each version's warm-up records before serving it.
        batching: tfrnn.serving.batching.BatchingParameters or None. Batch concurrent Predict
            requests (TF Serving's --enable_batching); None runs each request alone.

    Returns:
        starlette.applications.Starlette, with `app.state.repository`, `app.state.metrics` and
        `app.state.run` (what runs a Predict: `predict.run`, or a BatchScheduler's `run`).

    Raises:
        ConfigError: `root` is not a folder, or the config file is bad.
    """
    if repository is None:
        if model_config_file is None and (root is None or not Path(root).is_dir()):
            raise ConfigError(f"{root}: not a folder of exported models")
        repository = ModelRepository(
            root=None if model_config_file is not None else root,
            model_config_file=model_config_file,
            poll_seconds=poll_seconds,
            warmup=warmup,
        )
    metrics = ServingMetrics()
    scheduler = None if batching is None else BatchScheduler(batching)
    run = predict.run if scheduler is None else scheduler.run
    handler = RestHandler(repository, metrics, max_request_bytes, max_instances, run)
    repository.start()

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        repository.stop()
        if scheduler is not None:
            scheduler.stop()

    app = Starlette(routes=[Route("/{rest:path}", handler.asgi, methods=_METHODS)], lifespan=lifespan)
    app.state.repository = repository
    app.state.metrics = metrics
    app.state.run = run
    return app


def serve(
    root=None,
    host="127.0.0.1",
    port=8501,
    max_request_bytes=MAX_REQUEST_BYTES,
    poll_seconds=1.0,
    *,
    model_config_file=None,
    max_instances=DEFAULT_MAX_INSTANCES,
    log_level="info",
    grpc_port=None,
    batching=None,
):
    """Serves until interrupted (blocking); arguments as for `make_app`, and `grpc_port`: also
    serve TF Serving's gRPC API there (`tfrnn.serving.grpc_server`), over the same models.

    Raises:
        ConfigError: `root` is not a folder, or the config file is bad.
    """
    if not log.handlers:  # versions loading, failing, unloading: say so on the console, as uvicorn does
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
    app = make_app(
        root,
        max_request_bytes,
        poll_seconds,
        model_config_file=model_config_file,
        max_instances=max_instances,
        batching=batching,
    )
    names = ", ".join(app.state.repository.models()) or "none yet"
    logging.getLogger("uvicorn.error").info("Serving models: %s", names)
    grpc_server = None
    if grpc_port:
        from tfrnn.serving.grpc_server import serve_grpc

        grpc_server = serve_grpc(
            app.state.repository,
            host,
            grpc_port,
            max_instances=max_instances,
            max_message_bytes=max_request_bytes,
            metrics=app.state.metrics,
            run=app.state.run,
        )
    try:
        uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level=log_level)).run()
    finally:
        if grpc_server is not None:
            grpc_server.stop(grace=1)


class RestHandler:
    """TF Serving's HttpRestApiHandler over a ModelRepository."""

    def __init__(self, repository, metrics, max_request_bytes, max_instances, run=predict.run):
        self.repository = repository
        self.metrics = metrics
        self.max_request_bytes = max_request_bytes
        self.max_instances = max_instances
        self.run = run  # predict.run, or a BatchScheduler's

    async def asgi(self, request):
        raw_path = request.scope.get("raw_path") or request.scope["path"].encode("utf-8")
        path = raw_path.decode("latin-1").split("?", 1)[0]
        method = request.method
        if path == METRICS_PATH:
            return Response(self.metrics.render(), media_type="text/plain")
        if not _REST_PATH.fullmatch(path):
            return Response(_NOT_FOUND_PAGE, status_code=404, media_type="text/html")
        started = time.perf_counter()
        call = _Call(method, path)
        try:
            call.parse()
            body = await _read_body(request, self.max_request_bytes) if method == "POST" else b""
            if call.action in ("predict", "classify", "regress", "metadata"):
                answer = await run_in_threadpool(self.process, call, body)
            else:
                answer = self.process(call, body)
            response = Response(answer, media_type="application/json")
            call.status = "OK"
        except RequestError as e:
            call.status = "RESOURCE_EXHAUSTED" if e.status == 413 else "INVALID_ARGUMENT"
            response = _json_error(e.status, str(e))
        except ServingError as e:
            call.status = e.code
            response = _json_error(HTTP_STATUS.get(e.code, 500), str(e))
        except Exception:  # never a traceback or a path in the answer; the log has both
            log.exception("%s %s failed", method, path)
            call.status = "INTERNAL"
            response = _json_error(500, "Internal error")
        if call.api is not None:
            seconds = time.perf_counter() - started
            self.metrics.record(call.model_name or "", call.version, call.api, call.status, seconds)
        return response

    def process(self, call, body):
        """One /v1/ request, its path parsed: its JSON answer (str), or a ServingError
        (http_rest_api_handler.cc ProcessRequest)."""
        if call.method == "POST" and call.action == "predict":
            return self.predict(call, body)
        if call.method == "POST" and call.action in ("classify", "regress"):
            return self.classify_or_regress(call, body)
        if call.method == "GET" and call.matched:
            if call.action == "metadata":
                return self.metadata(call)
            return self.status(call)
        raise InvalidArgument(f"Malformed request: {call.method} {call.path}")

    # -- status and metadata -------------------------------------------------------------------

    def status(self, call):
        """get_model_status_impl.cc: labels are not resolved; every version when none is named."""
        if not call.model_name:
            raise InvalidArgument("Missing model name in request.")
        statuses = self.repository.model_status(call.model_name, call.version)
        return json.dumps(
            {
                "model_version_status": [
                    {
                        "version": str(s.version),
                        "state": s.state,
                        "status": {"error_code": s.error_code, "error_message": s.error_message},
                    }
                    for s in statuses
                ]
            },
            indent=1,
            ensure_ascii=False,
        )

    def metadata(self, call):
        """get_model_metadata_impl.cc, printed as http_rest_api_util.cc ToJsonString."""
        if not call.model_name:
            raise InvalidArgument("Missing model name in request.")
        version, loaded = self.repository.servable(call.model_name, call.version, call.label)
        call.version = version
        answer = {
            "model_spec": {"name": call.model_name, "signature_name": "", "version": str(version)},
            "metadata": {"signature_def": predict.signature_def_json(loaded)},
        }
        return json.dumps(answer, indent=1, ensure_ascii=False)

    # -- predict -------------------------------------------------------------------------------

    def predict(self, call, body):
        """http_rest_api_handler.cc ProcessPredictRequest with json_tensor.cc's conversions."""
        doc = json_tensor.parse_json(body)
        signature_name = json_tensor.signature_name(doc)
        version, loaded = self.repository.servable(call.model_name, call.version, call.label)
        call.version = version
        function = predict.signature(loaded, signature_name)
        specs = predict.input_specs(function)
        if not specs:
            raise InvalidArgument(f"Failed to get input map for signature: {signature_name or 'DEFAULT'}")
        dtypes = {name: spec.dtype for name, spec in specs.items()}
        if "instances" in doc:
            if "inputs" in doc:
                raise json_tensor.format_error(
                    doc, "Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist "
                )
            instances = doc["instances"]
            if not isinstance(instances, list):
                raise json_tensor.format_error(doc, "Excepting 'instances' to be an list/array")
            if not instances:
                raise json_tensor.format_error(doc, "No values in 'instances' array")
            predict.check_instances(len(instances), self.max_instances)
            inputs, row_format = json_tensor.instances_to_arrays(instances, dtypes), True
        elif "inputs" in doc:
            value = doc["inputs"]
            for item in json_tensor.columnar_items(value, dtypes):
                predict.check_instances(json_tensor.instance_count(item), self.max_instances)
            inputs, row_format = json_tensor.inputs_to_arrays(value, dtypes), False
        else:
            raise InvalidArgument("Missing 'inputs' or 'instances' key")
        outputs = self.run(function, inputs, self.max_instances)
        return json_tensor.rows_json(outputs) if row_format else json_tensor.columns_json(outputs)

    # -- classify and regress ------------------------------------------------------------------

    def classify_or_regress(self, call, body):
        """classification_service.cc / regression_service.cc on a SavedModel: the JSON examples
        are checked (json_tensor.cc FillClassifyRegressRequestFromJson), then the signature, as
        classifier.cc PreProcessClassification / regressor.cc PreProcessRegression do with
        TF Serving's default --enable_signature_method_name_check=false. A tfrnn export's
        signature (one input "text", three outputs) fails those checks with a 400."""
        doc = json_tensor.parse_json(body)
        signature_name = json_tensor.signature_name(doc)
        json_tensor.check_examples(doc)
        version, loaded = self.repository.servable(call.model_name, call.version, call.label)
        call.version = version
        key = signature_name or predict.DEFAULT_SIGNATURE
        if key not in loaded.signatures:
            raise InvalidArgument(f"No signature was found with the name: {key}")
        function = loaded.signatures[key]
        inputs, outputs = predict.input_specs(function), function.structured_outputs
        definition = predict.signature_def_of(loaded, key, function)
        if len(inputs) != 1:
            raise InvalidArgument("Expected one input Tensor.")
        if call.action == "classify":
            if len(outputs) not in (1, 2):
                raise InvalidArgument(f"Expected one or two output Tensors, found {len(outputs)}")
            if "inputs" not in inputs:
                raise InvalidArgument(f"No classification inputs found in SignatureDef: {definition}")
            if "classes" not in outputs and "scores" not in outputs:
                raise InvalidArgument(
                    'Expected classification signature outputs to contain at least one of "classes" or '
                    f'"scores". Signature was: {definition}'
                )
        else:
            if len(outputs) != 1:
                raise InvalidArgument("Expected one output Tensor.")
            if "inputs" not in inputs:
                raise InvalidArgument(f"No regression inputs found in SignatureDef: {definition}")
            if "outputs" not in outputs:
                raise InvalidArgument(f"No regression outputs found in SignatureDef: {definition}")
        raise json_tensor.Unimplemented(
            f"tfrnn serve runs Predict only; use TF Serving to {call.action} tf.Example inputs"
        )


class _Call:
    """What the path of a /v1/ request names (http_rest_api_util.cc ParseModelInfo)."""

    def __init__(self, method, path):
        self.method, self.path = method, path
        self.model_name = self.version = self.label = self.action = None
        self.matched = False
        self.status = "OK"
        self.api = None

    def parse(self):
        if self.method == "POST":
            match = _PREDICTION_PATH.fullmatch(self.path)
            groups = (match[1], match[2], match[3], match[4]) if match else None
        elif self.method == "GET":
            match = _STATUS_PATH.fullmatch(self.path)
            groups = (match[1], match[2], match[3], match[4]) if match else None
        else:
            groups = None
        if groups is None:
            return
        self.matched = True
        name, version, label, action = groups
        self.action = action
        if self.method == "POST":
            self.api = {"predict": "Predict", "classify": "Classify", "regress": "Regress"}.get(action)
        else:
            self.api = "GetModelMetadata" if action == "metadata" else "GetModelStatus"
        if name:
            self.model_name = _decode_arg(name)
        if version:
            if int(version) > _INT64_MAX:
                raise InvalidArgument(f"Failed to convert version: {version} to numeric.")
            self.version = int(version)
        if label:
            self.label = _decode_arg(label)


def _decode_arg(text):
    """A percent-encoded path component (curl_easy_unescape)."""
    return urllib.parse.unquote_to_bytes(text).decode("utf-8", "replace")


async def _read_body(request, limit):
    """The request body, refused with 413 past `limit` bytes (by Content-Length, or while read)."""
    length = request.headers.get("content-length", "")
    if length.isascii() and length.isdigit() and int(length) > limit:
        raise RequestError(413, f"Request body of {length} bytes exceeds the limit of {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise RequestError(413, f"Request body exceeds the limit of {limit} bytes")
    return bytes(body)


def _json_error(status, message):
    return JSONResponse({"error": message}, status_code=status)
