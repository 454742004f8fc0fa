"""Running a SavedModel signature the way TF Serving's Predict does, for both `tfrnn serve`'s REST
API (`tfrnn.serving.server`) and its gRPC API (`tfrnn.serving.grpc_server`).

- `signature(loaded, name)`: the signature a request names ("" means `serving_default`).
- `run(function, inputs, max_instances)`: checks the input names and the instance count (before
  any tensor is built), casts each input to the signature's dtype (`prepare`), runs it
  (`execute`), returns numpy. `tfrnn.serving.batching.BatchScheduler.run` is the same, batched.
- `signature_def(key, function)` / `signature_def_json(...)`: the signature as TF Serving's
  `SignatureDef` proto and its JSON (model metadata).

Errors carry TF Serving's message and a `.code` naming the gRPC status TF Serving answers with
(`tfrnn.serving.server.HTTP_STATUS` maps it to the HTTP status, as TF Serving's http_server.cc).
"""

import re
import weakref
from pathlib import Path

import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from tensorflow.core.framework import tensor_shape_pb2, types_pb2
from tensorflow.core.protobuf import meta_graph_pb2

from tfrnn.errors import TfrnnError

DEFAULT_SIGNATURE = "serving_default"  # tensorflow/cc/saved_model/signature_constants.h
PREDICT_METHOD = "tensorflow/serving/predict"
# The instances one request may carry when neither --max_batch_size nor a batching parameters
# file says otherwise: bounds the memory one request can take (see docs and tests).
DEFAULT_MAX_INSTANCES = 1024


class ServingError(TfrnnError):
    """A refusal with TF Serving's message; `code` is the gRPC status code's name."""

    code = "UNKNOWN"


class InvalidArgument(ServingError):
    code = "INVALID_ARGUMENT"


class FailedPrecondition(ServingError):
    code = "FAILED_PRECONDITION"


class Unavailable(ServingError):
    code = "UNAVAILABLE"


class SignatureNotFound(InvalidArgument):
    """The request names a signature the SavedModel lacks. The message is the REST API's
    (http_rest_api_handler.cc, GetInfoMap); TF Serving's gRPC Predict answers the same case with
    FAILED_PRECONDITION and `grpc_message` (predict_util.cc, RunPredict)."""

    def __init__(self, name):
        super().__init__(f'Serving signature name: "{name}" not found in signature def')
        self.name = name
        self.grpc_code = "FAILED_PRECONDITION"
        self.grpc_message = f'Serving signature key "{name}" not found.'


def signature(loaded, signature_name):
    """The concrete function of a signature of a loaded SavedModel.

    Args:
        loaded: a SavedModel from `tf.saved_model.load`.
        signature_name: str. "" (or None) means `serving_default`, as in TF Serving.

    Returns:
        The signature's concrete function.

    Raises:
        InvalidArgument: `signature_name` is not a string.
        SignatureNotFound: the SavedModel has no such signature.
    """
    if signature_name is None or signature_name == "":
        signature_name = DEFAULT_SIGNATURE
    if not isinstance(signature_name, str):
        raise InvalidArgument("'signature_name' key must be a string value.")
    try:
        return loaded.signatures[signature_name]
    except KeyError:
        raise SignatureNotFound(signature_name) from None


def input_specs(function):
    """The signature's inputs: {name: tf.TensorSpec}."""
    return dict(function.structured_input_signature[1])


def check_instances(count, max_instances):
    """Refuses more instances than `max_instances`, with the message TF Serving's batching
    queue gives (tensorflow/core/kernels/batching_util/shared_batch_scheduler.h,
    ValidateBatchTaskQueueCapacity), which its REST API answers with 400 (serving#1401).

    Args:
        count: int. The instances (0th dimension) of the request.
        max_instances: int or None (no limit).

    Raises:
        InvalidArgument.
    """
    if max_instances is not None and count > max_instances:
        raise InvalidArgument(f"Task size {count} is larger than maximum input batch size {max_instances}")


def check_names(names, specs):
    """Refuses inputs that are not exactly the signature's, with predict_util.cc's messages.

    Args:
        names: iterable of str, the request's input names.
        specs: {name: TensorSpec}, the signature's inputs.

    Raises:
        InvalidArgument.
    """
    sent, wanted = sorted(set(names)), sorted(specs)
    if len(sent) != len(wanted):
        extra = sorted(set(sent) - set(wanted))
        missing = sorted(set(wanted) - set(sent))
        raise InvalidArgument(
            f"input size does not match signature: {len(sent)}!={len(wanted)} len({{{','.join(sent)}}}) != "
            f"len({{{','.join(wanted)}}}). Sent extra: {{{','.join(extra)}}}. "
            f"Missing but required: {{{','.join(missing)}}}."
        )
    for name in sent:
        if name not in specs:
            raise InvalidArgument(
                f"input tensor alias not found in signature: {name}. "
                f"Inputs expected to be in the set {{{','.join(wanted)}}}."
            )


def instance_count(array):
    """The 0th dimension of an input (1 for a scalar)."""
    shape = np.shape(array)
    return shape[0] if shape else 1


def run(function, inputs, max_instances=None):
    """Runs a signature on numpy inputs, as TF Serving's Predict does: `prepare`, then `execute`.

    Args:
        function: a signature's concrete function (`signature`).
        inputs: {name: np.ndarray or nested lists}, every input of the signature. Values are
            cast to the signature's dtypes (str -> bytes for strings).
        max_instances: int or None. The most instances (0th dimension) an input may have;
            checked before any tensor is built.

    Returns:
        {output name: np.ndarray}.

    Raises:
        InvalidArgument: wrong names, too many instances, values the dtype or shape refuses,
            or an error of the graph caused by the inputs.
    """
    return execute(function, prepare(function, inputs, max_instances))


def prepare(function, inputs, max_instances=None):
    """Checks a request's inputs against a signature and makes its tensors (`run`'s arguments).

    Returns:
        {name: tf.Tensor} of the signature's dtypes and compatible shapes.

    Raises:
        InvalidArgument: wrong names, too many instances, values the dtype or shape refuses.
    """
    specs = input_specs(function)
    check_names(inputs, specs)
    for value in inputs.values():
        check_instances(instance_count(value), max_instances)
    return {name: _tensor(name, value, specs[name]) for name, value in inputs.items()}


def execute(function, tensors):
    """Calls a signature on `prepare`d tensors.

    Returns:
        {output name: np.ndarray}.

    Raises:
        InvalidArgument: an error of the graph caused by the inputs.
    """
    try:
        outputs = function(**tensors)
    except (tf.errors.InvalidArgumentError, tf.errors.OutOfRangeError) as e:
        raise InvalidArgument(_op_message(e)) from None
    except (TypeError, ValueError) as e:  # the inputs do not fit the signature's specs
        raise InvalidArgument(_first_line(e)) from None
    return {name: tensor.numpy() for name, tensor in outputs.items()}


def _tensor(name, value, spec):
    """`value` as a tensor of the spec's dtype and a compatible shape."""
    try:
        if isinstance(value, np.ndarray) and value.dtype == object and spec.dtype == tf.string:
            tensor = tf.constant(value, tf.string)
        else:
            tensor = tf.convert_to_tensor(value, spec.dtype)
    except (TypeError, ValueError, tf.errors.InvalidArgumentError) as e:
        raise InvalidArgument(f"Input {name}: {_first_line(e)}") from None
    if not spec.shape.is_compatible_with(tensor.shape):
        raise InvalidArgument(
            f"Input {name}: shape {tensor.shape.as_list()} is not compatible with the signature's "
            f"{_shape_text(spec.shape)}"
        )
    return tensor


def _shape_text(shape):
    return "unknown rank" if shape.rank is None else str([-1 if d is None else d for d in shape.as_list()])


def _op_message(error):
    """A TensorFlow op error's own message ("StringToNumberOp could not correctly convert string:
    x"), without eager execution's "Graph execution error" header, the "Detected at node" Python
    stack and the node annotations."""
    message = error.message if hasattr(error, "message") else str(error)
    if "Detected at node" in message:
        lines = message.split("(most recent call last):\n", 1)[-1].splitlines()
        message = "\n".join(line for line in lines if line.strip() and not line.startswith((" ", "\t", "<stack")))
    message = message.replace("Graph execution error:", "").strip()
    return re.sub(r"\s*(\[\[.*|\[Op:[^\]]*\])$", "", message, flags=re.DOTALL).strip() or "Graph execution error"


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _tensor_info(spec, tensor_name):
    """A TensorSpec as a TensorInfo proto."""
    info = meta_graph_pb2.TensorInfo(name=tensor_name, dtype=spec.dtype.as_datatype_enum)
    if spec.shape.rank is None:
        info.tensor_shape.CopyFrom(tensor_shape_pb2.TensorShapeProto(unknown_rank=True))
    else:
        for size in spec.shape.as_list():
            info.tensor_shape.dim.add(size=-1 if size is None else size)
    return info


def signature_def(key, function):
    """A signature as TF Serving's SignatureDef proto (GetModelMetadata). Tensor names follow
    tf.saved_model.save: inputs are placeholders KEY_NAME:0, outputs the call's results in
    sorted-name order.

    Args:
        key: str. The signature's name.
        function: its concrete function.

    Returns:
        tensorflow.core.protobuf.meta_graph_pb2.SignatureDef.
    """
    result = meta_graph_pb2.SignatureDef(method_name=PREDICT_METHOD)
    for name, spec in input_specs(function).items():
        result.inputs[name].CopyFrom(_tensor_info(spec, f"{key}_{name}:0"))
    outputs = function.structured_outputs
    for i, name in enumerate(sorted(outputs)):
        result.outputs[name].CopyFrom(_tensor_info(outputs[name], f"StatefulPartitionedCall:{i}"))
    return result


# loaded SavedModel -> its MetaGraphDef's signature_def map, as read from saved_model.pb.
_SIGNATURE_DEFS = weakref.WeakKeyDictionary()


def read_signature_defs(loaded, export_dir):
    """Reads the SignatureDefs of the "serve" MetaGraph of `export_dir`/saved_model.pb (what TF
    Serving's GetModelMetadata returns, `__saved_model_init_op` included) and remembers them for
    `loaded`, so `signature_def_map` answers with them. The repository calls it after a load.

    Args:
        loaded: the SavedModel loaded from `export_dir`.
        export_dir: str or Path.
    """
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel.FromString((Path(export_dir) / "saved_model.pb").read_bytes())
    graphs = [g for g in saved_model.meta_graphs if "serve" in g.meta_info_def.tags] or list(saved_model.meta_graphs)
    if graphs:
        _SIGNATURE_DEFS[loaded] = dict(graphs[0].signature_def)


def signature_def_of(loaded, key, function=None):
    """The SignatureDef `key` of a loaded SavedModel: the one saved_model.pb holds when
    `read_signature_defs` read it, else built from the concrete function (`signature_def`)."""
    saved = _SIGNATURE_DEFS.get(loaded)
    if saved is not None and key in saved:
        return saved[key]
    return signature_def(key, function if function is not None else loaded.signatures[key])


def signature_def_map(loaded):
    """Every signature of a loaded SavedModel as a SignatureDefMap proto (the `signature_def`
    metadata TF Serving's GetModelMetadata packs into an Any): saved_model.pb's when
    `read_signature_defs` read it, else built from the concrete functions.

    Args:
        loaded: a SavedModel from `tf.saved_model.load`.

    Returns:
        tensorflow_serving.apis.get_model_metadata_pb2.SignatureDefMap.
    """
    from tensorflow_serving.apis import get_model_metadata_pb2

    result = get_model_metadata_pb2.SignatureDefMap()
    saved = _SIGNATURE_DEFS.get(loaded)
    if saved is not None:
        for key, definition in saved.items():
            result.signature_def[key].CopyFrom(definition)
        return result
    for key, function in loaded.signatures.items():
        result.signature_def[key].CopyFrom(signature_def(key, function))
    return result


def signature_def_json(loaded):
    """The REST metadata's `signature_def` object: the SignatureDefMap printed as TF Serving's
    http_rest_api_util.cc prints it (proto field names, default values included).

    Args:
        loaded: a SavedModel from `tf.saved_model.load`.

    Returns:
        dict {"signature_def": {key: SignatureDef as JSON}}.
    """
    return json_format.MessageToDict(
        signature_def_map(loaded), always_print_fields_with_no_presence=True, preserving_proto_field_name=True
    )


def dtype_name(dtype):
    """A tf.DType as TF Serving names it in JSON ("DT_FLOAT")."""
    return types_pb2.DataType.Name(tf.as_dtype(dtype).as_datatype_enum)
