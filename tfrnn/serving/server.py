"""A local development stand-in for TF Serving's REST API, serving every model under an export
root (`tfrnn serve ROOT`). Point production at TF Serving itself: this server is for trying an
export out, and for tests.

Routes (https://www.tensorflow.org/tfx/serving/api_rest):
    GET  /v1/models/NAME[/versions/V]            model status
    GET  /v1/models/NAME[/versions/V]/metadata   signatures
    POST /v1/models/NAME[/versions/V]:predict    predict, row ("instances") or columnar ("inputs")

Errors answer `{"error": "message"}`. Models run in a thread pool, so requests are concurrent.
"""

import json
import logging
import re
from pathlib import Path

import tensorflow as tf
import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.routing import Route
from tensorflow.core.framework import types_pb2

from tfrnn.errors import ConfigError
from tfrnn.serving.repository import ModelRepository, NotFound

MAX_REQUEST_BYTES = 10 * 1024 * 1024

# What follows /v1/models/: NAME, an optional /versions/V, then nothing (status), /metadata
# or :predict. The colon is why the route takes the whole rest of the path and parses it here.
_PATH = re.compile(r"(?P<name>[^/:]+)(?:/versions/(?P<version>[0-9]+))?(?P<action>/metadata|:predict)?")
_PREDICT_METHOD = "tensorflow/serving/predict"
_DEFAULT_SIGNATURE = "serving_default"


class RequestError(Exception):
    """A request the server refuses, with its HTTP status."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def make_app(root, max_request_bytes=MAX_REQUEST_BYTES, poll_seconds=0.0):
    """The Starlette app serving the models under `root`.

    Args:
        root: str or Path. The export root (ROOT/NAME/<version>/saved_model.pb).
        max_request_bytes: int. Larger request bodies are refused with 413.
        poll_seconds: float. How long a model's version listing is reused before it is re-read
            from disk; 0 re-reads it on each request.

    Returns:
        starlette.applications.Starlette, with its ModelRepository as `app.state.repository`.

    Raises:
        ConfigError: `root` is not a folder.
    """
    if not Path(root).is_dir():
        raise ConfigError(f"{root}: not a folder of exported models")
    repository = ModelRepository(root, poll_seconds)

    async def models(request):
        return await _answer(request, repository, max_request_bytes)

    app = Starlette(
        routes=[Route("/v1/models/{rest:path}", models, methods=["GET", "POST"])],
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
    )
    app.state.repository = repository
    return app


def serve(root, host="127.0.0.1", port=8501, max_request_bytes=MAX_REQUEST_BYTES, poll_seconds=0.0):
    """Serves the models under `root` until interrupted (blocking).

    Args:
        root: str or Path. The export root (ROOT/NAME/<version>/saved_model.pb).
        host: str. The address to bind; the default answers this machine only.
        port: int. The port (TF Serving's REST port by default).
        max_request_bytes: int. Larger request bodies are refused with 413.
        poll_seconds: float. How long a model's version listing is reused before it is re-read
            from disk; 0 re-reads it on each request.

    Raises:
        ConfigError: `root` is not a folder.
    """
    app = make_app(root, max_request_bytes, poll_seconds)
    config = uvicorn.Config(app, host=host, port=port)
    names = ", ".join(app.state.repository.models()) or "none yet"
    logging.getLogger("uvicorn.error").info("Serving models from %s: %s", root, names)
    uvicorn.Server(config).run()


async def _answer(request, repository, max_request_bytes):
    """Routes one /v1/models/... request by hand and turns refusals into JSON errors."""
    match = _PATH.fullmatch(request.path_params["rest"])
    if match is None:
        return _error(404, f"Malformed request: {request.method} {request.url.path}")
    name, action = match["name"], match["action"]
    version = int(match["version"]) if match["version"] else None
    method = "POST" if action == ":predict" else "GET"
    if request.method != method:
        return _error(405, f"{request.method} is not allowed on {request.url.path}", {"Allow": method})
    try:
        if action == ":predict":
            body = await _read_body(request, max_request_bytes)
            return JSONResponse(await run_in_threadpool(_predict, repository, name, version, body))
        if action == "/metadata":
            return JSONResponse(await run_in_threadpool(_metadata, repository, name, version))
        return JSONResponse(_status(repository, name, version))
    except NotFound as e:
        return _error(404, str(e))
    except RequestError as e:
        return _error(e.status, str(e))


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


def _status(repository, name, version):
    """TF Serving's model status: every version newest first, or the one asked for."""
    repository.resolve(name, version)
    versions = repository.versions(name) if version is None else [version]
    return {
        "model_version_status": [
            {"version": str(v), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
            for v in versions
        ]
    }


def _metadata(repository, name, version):
    """TF Serving's model metadata: the signature defs of the version."""
    version, loaded = repository.load(name, version)
    return {
        "model_spec": {"name": name, "signature_name": "", "version": str(version)},
        "metadata": {
            "signature_def": {
                "signature_def": {key: _signature_def(key, function) for key, function in loaded.signatures.items()}
            }
        },
    }


def _signature_def(key, function):
    """A signature as TF Serving's JSON SignatureDef. Tensor names follow tf.saved_model.save:
    inputs are placeholders KEY_NAME:0, outputs the call's results in sorted-name order."""
    _, inputs = function.structured_input_signature
    outputs = function.structured_outputs
    return {
        "inputs": {name: _tensor_info(spec, f"{key}_{name}:0") for name, spec in inputs.items()},
        "outputs": {
            name: _tensor_info(outputs[name], f"StatefulPartitionedCall:{i}") for i, name in enumerate(sorted(outputs))
        },
        "method_name": _PREDICT_METHOD,
    }


def _tensor_info(spec, tensor_name):
    """A TensorSpec as TF Serving's JSON TensorInfo."""
    unknown_rank = spec.shape.rank is None
    sizes = [] if unknown_rank else [-1 if d is None else d for d in spec.shape]
    dims = [{"size": str(size), "name": ""} for size in sizes]
    return {
        "dtype": types_pb2.DataType.Name(spec.dtype.as_datatype_enum),
        "tensor_shape": {"dim": dims, "unknown_rank": unknown_rank},
        "name": tensor_name,
    }


def _predict(repository, name, version, body):
    """Runs a predict request: JSON body in, TF Serving's JSON answer out."""
    request = _parse_json(body)
    _, loaded = repository.load(name, version)
    function = _signature(loaded, request.get("signature_name", _DEFAULT_SIGNATURE))
    _, specs = function.structured_input_signature
    row_format = "instances" in request
    if row_format:
        columns = _row_columns(request["instances"], specs)
    else:
        columns = _columnar_columns(request["inputs"], specs)
    try:
        outputs = function(**{key: tf.constant(values, tf.string) for key, values in columns.items()})
    except tf.errors.InvalidArgumentError as e:
        raise RequestError(400, str(e)) from None
    outputs = {key: _to_json(tensor) for key, tensor in outputs.items()}
    return _rows(outputs) if row_format else {"outputs": _single_or_all(outputs)}


def _signature(loaded, name):
    """The loaded SavedModel's signature `name`; refused with 400 when there is none."""
    if not isinstance(name, str) or name not in loaded.signatures:
        raise RequestError(400, f"Serving signature name: {json.dumps(name)} not found in signature def")
    return loaded.signatures[name]


def _parse_json(body):
    """The request object, with exactly one of "instances" and "inputs"."""
    try:
        request = json.loads(body)
    except ValueError as e:
        raise RequestError(400, f"Malformed JSON: {e}") from None
    if not isinstance(request, dict):
        raise RequestError(400, "The request body must be a JSON object")
    if ("instances" in request) == ("inputs" in request):
        raise RequestError(400, 'The request must have exactly one of "instances" (row format) or "inputs" (columnar)')
    return request


def _row_columns(instances, specs):
    """Row format: a list of strings (one input), or of objects with every input, as columns."""
    if not isinstance(instances, list) or not instances:
        raise RequestError(400, '"instances" must be a non-empty list')
    if all(isinstance(instance, dict) for instance in instances):
        for instance in instances:
            _check_keys(instance, specs)
        return {key: _strings([instance[key] for instance in instances], key) for key in specs}
    return {_only_input(specs): _strings(instances, "instances")}


def _columnar_columns(inputs, specs):
    """Columnar format: a list of strings (one input), or an object of lists, one per input."""
    if isinstance(inputs, dict):
        _check_keys(inputs, specs)
        return {key: _strings(inputs[key], key) for key in specs}
    return {_only_input(specs): _strings(inputs, "inputs")}


def _check_keys(mapping, specs):
    """Refuses an object whose keys are not the signature's inputs."""
    if set(mapping) != set(specs):
        raise RequestError(400, f"Expected the inputs {sorted(specs)}, got {sorted(mapping)}")


def _only_input(specs):
    """The name of a signature's single input; refuses a bare list for several inputs."""
    if len(specs) != 1:
        raise RequestError(400, f"The signature has several inputs {sorted(specs)}: name them")
    return next(iter(specs))


def _strings(values, what):
    """`values` when it is a non-empty list of strings."""
    if not isinstance(values, list) or not values:
        raise RequestError(400, f"{what}: expected a non-empty list of strings")
    if not all(isinstance(value, str) for value in values):
        raise RequestError(400, f"{what}: expected strings, got {json.dumps(values)[:100]}")
    return values


def _to_json(tensor):
    """A tensor as nested lists, its strings decoded as UTF-8."""
    value = tensor.numpy().tolist()
    return _decode(value) if tensor.dtype == tf.string else value


def _decode(value):
    """Nested lists of bytes as nested lists of str."""
    return [_decode(v) for v in value] if isinstance(value, list) else value.decode("utf-8")


def _rows(outputs):
    """Row format's answer: one prediction per instance (a bare value for a single output)."""
    count = len(next(iter(outputs.values())))
    rows = ({key: value[i] for key, value in outputs.items()} for i in range(count))
    return {"predictions": [_single_or_all(row) for row in rows]}


def _single_or_all(outputs):
    """A single output's value itself, as TF Serving answers; else the object of all outputs."""
    return next(iter(outputs.values())) if len(outputs) == 1 else outputs


def _error(status, message, headers=None):
    """TF Serving's JSON error answer."""
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def _http_error(request, exc):
    """Starlette's own refusals (an unknown path) as JSON errors."""
    return _error(exc.status_code, exc.detail)


async def _server_error(request, exc):
    """An unexpected failure as a JSON 500 (uvicorn logs the traceback)."""
    return _error(500, f"Internal error: {type(exc).__name__}: {exc}")
