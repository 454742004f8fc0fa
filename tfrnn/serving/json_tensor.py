"""TF Serving's JSON for tensors (tensorflow_serving/util/json_tensor.cc), for `tfrnn serve`:
request bodies to numpy inputs by the signature's dtypes, outputs to JSON, with json_tensor.cc's
rules and messages.

- `parse_json(body)`: the request object. UTF-8 only (TF Serving's rapidjson does not check),
  lone surrogates refused as rapidjson refuses them, NaN/Infinity accepted, JSON nested deeper
  than Python's parser goes a 400 (rapidjson's recursive parser has no limit).
- `instances_to_arrays` (row format) and `inputs_to_arrays` (columnar): values converted by the
  signature's dtypes, `{"b64": ...}` for strings, scalars, empty lists (shape [0]).
- `rows_json` / `columns_json`: floats printed as TF Serving prints them (float32 with the
  fewest of 6 or 9 significant digits that read back the same; NaN, Infinity), outputs named
  `*_bytes` as `{"b64": ...}`.
"""

import base64
import binascii
import json
import math
import re
import struct

import numpy as np

from tfrnn.serving.predict import InvalidArgument, ServingError

# tensorflow/core/framework/tensor_shape.h: TensorShape::MaxDimensions().
MAX_RANK = 254


class Unimplemented(ServingError):
    code = "UNIMPLEMENTED"


# Python's JSON messages -> rapidjson's (rapidjson/error/en.h), which TF Serving quotes.
_PARSE_MESSAGES = [
    ("Expecting value", "Invalid value."),
    ("Expecting property name enclosed in double quotes", "Missing a name for object member."),
    ("Expecting ':' delimiter", "Missing a colon after a name of object member."),
    ("Expecting ',' delimiter", "Missing a comma or ']' after an array element."),
    ("Unterminated string starting at", "Missing a closing quotation mark in string."),
    ("Extra data", "The document root must not be followed by other values."),
    ("Invalid control character at", "Invalid encoding in string."),
    ("Invalid \\escape", "Invalid escape character in string."),
    ("Invalid \\uXXXX escape", "Incorrect hex digit after \\u escape in string."),
]
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_ESCAPE = re.compile(r"\\(?:u([0-9a-fA-F]{4})|.)", re.DOTALL)


def parse_json(body):
    """The request's JSON object (json_tensor.cc ParseJson): UTF-8 only, no lone surrogates,
    NaN and Infinity accepted; errors are 400 "JSON Parse error: ... at offset: N"."""
    if not body:
        raise InvalidArgument("JSON Parse error: The document is empty")
    bom = 3 if body.startswith(b"\xef\xbb\xbf") else 0
    try:
        text = body[bom:].decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidArgument(f"JSON Parse error: Invalid encoding in string. at offset: {e.start + bom}") from None
    if not text.strip():
        raise InvalidArgument(f"JSON Parse error: The document is empty. at offset: {len(body)}")
    surrogate = _lone_surrogate(text) if _SURROGATE_ESCAPE.search(text) else None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        if surrogate is not None and surrogate < e.pos:
            raise _surrogate_error(surrogate, text, bom) from None
        message = next((rapid for python, rapid in _PARSE_MESSAGES if e.msg.startswith(python)), e.msg)
        if message.startswith("Missing a comma or ']'") and _inside_object(text, e.pos):
            message = "Missing a comma or '}' after an object member."
        raise InvalidArgument(f"JSON Parse error: {message} at offset: {_byte_offset(text, e.pos) + bom}") from None
    except RecursionError:
        raise InvalidArgument("JSON Parse error: The document is nested too deeply to parse. at offset: 0") from None
    except ValueError as e:  # e.g. an integer longer than Python's 4,300-digit limit
        raise InvalidArgument(f"JSON Parse error: {str(e).splitlines()[0]}") from None
    if surrogate is not None:
        raise _surrogate_error(surrogate, text, bom)
    if not isinstance(doc, dict):
        raise format_error(doc, "Is not object")
    return doc


def _lone_surrogate(text):
    """The offset (in characters) of the first \\uXXXX escape that is an unpaired surrogate."""
    pending = None
    for match in _ESCAPE.finditer(text):
        unit = match[1]
        code = int(unit, 16) if unit else None
        if pending is not None:
            if code is None or not 0xDC00 <= code <= 0xDFFF or match.start() != pending[1]:
                return pending[0]
            pending = None
            continue
        if code is not None and 0xD800 <= code <= 0xDBFF:
            pending = (match.start(), match.end())
        elif code is not None and 0xDC00 <= code <= 0xDFFF:
            return match.start()
    return None if pending is None else pending[0]


def _surrogate_error(offset, text, bom):
    # rapidjson reader.h ParseStringToStream: kParseErrorStringUnicodeSurrogateInvalid at the '\'.
    return InvalidArgument(
        f"JSON Parse error: The surrogate pair in string is invalid. at offset: {_byte_offset(text, offset) + bom}"
    )


def _byte_offset(text, position):
    return len(text[:position].encode("utf-8", "surrogatepass"))


def _inside_object(text, position):
    """Whether the innermost open bracket before `position` is a '{' (a rough scan)."""
    depth_chars = []
    in_string = escaped = False
    for char in text[:position]:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth_chars.append(char)
        elif char in "]}" and depth_chars:
            depth_chars.pop()
    return bool(depth_chars) and depth_chars[-1] == "{"


def signature_name(doc):
    """json_tensor.cc FillSignature: the optional "signature_name", a string ("" = default)."""
    name = doc.get("signature_name", "")
    if not isinstance(name, str):
        raise InvalidArgument(
            f"JSON Value: {_json_text(doc)} not formatted correctly. 'signature_name' key must be a string value."
        )
    return name


def format_error(doc, message):
    return InvalidArgument(f"JSON Value: {_json_text(doc)} {message}")


def _json_text(value):
    """json_tensor.cc JsonValueToString: rapidjson's PrettyWriter (4-space indent)."""
    if isinstance(value, float):
        return format_float(value, double=True)
    try:
        return json.dumps(value, indent=4, ensure_ascii=False)
    except (RecursionError, ValueError):
        return "<value too deep to print>"


def _json_type(value):
    """json_tensor.cc JsonTypeString."""
    if value is None:
        return "Null"
    if value is True:
        return "True"
    if value is False:
        return "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, str):
        return "String"
    return "Number"


def _is_b64(value):
    """json_tensor.cc IsValBase64Object: an object with the one string key "b64"."""
    return type(value) is dict and len(value) == 1 and isinstance(value.get("b64"), str)


def _b64_decode(value):
    if not _is_b64(value):
        raise InvalidArgument(f"JSON Value: {_json_text(value)} not formatted correctly for base64 data")
    text = value["b64"]
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidArgument("Unable to base64 decode") from None


# DataTypeString names of the dtypes json_tensor.cc AddValueToTensor converts, and numpy's.
_DTYPES = {
    "float32": ("float", np.float32),
    "float64": ("double", np.float64),
    "int32": ("int32", np.int32),
    "int16": ("int16", np.int16),
    "int8": ("int8", np.int8),
    "uint8": ("uint8", np.uint8),
    "string": ("string", object),
    "int64": ("int64", np.int64),
    "bool": ("bool", np.bool_),
    "uint32": ("uint32", np.uint32),
    "uint64": ("uint64", np.uint64),
}
_FLOAT_MAX_INT = (1 << 24) - 1  # IsLosslessDecimal<float>: kMaxInt
_DOUBLE_MAX_INT = (1 << 53) - 1
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _type_name(dtype):
    return _DTYPES[dtype.name][0] if dtype.name in _DTYPES else dtype.name


def _type_error(value, dtype):
    return InvalidArgument(
        f"JSON Value: {_json_text(value)} Type: {_json_type(value)} is not of expected type: {_type_name(dtype)}"
    )


def _lossy_error(value, target):
    return InvalidArgument(f"Cannot convert JSON value: {_json_text(value)} to {target} without loss of precision.")


def _convert(value, dtype):
    """One JSON scalar as a value of `dtype` (json_tensor.cc AddValueToTensor)."""
    name = dtype.name
    kind = type(value)
    if name == "string":
        if kind is not str:
            raise _type_error(value, dtype)
        return value.encode("utf-8")
    if name in ("float32", "float64"):
        if kind is not int and kind is not float:
            raise _type_error(value, dtype)
        limit = _FLOAT_MAX_INT if name == "float32" else _DOUBLE_MAX_INT
        if kind is int and -(2**63) <= value < 2**64:
            if abs(value) > limit:
                raise _lossy_error(value, "float" if name == "float32" else "double")
            return value
        number = float(value) if kind is float else _big_int_as_float(value)
        if name == "float32" and math.isfinite(number) and abs(number) > _FLOAT32_MAX:
            raise _lossy_error(value, "float")
        return number
    if kind is not int:
        raise _type_error(value, dtype)
    if name in ("int32", "int16", "int8", "uint8"):
        ok = -(2**31) <= value < 2**31  # rapidjson IsInt
    elif name == "int64":
        ok = -(2**63) <= value < 2**63
    elif name == "uint32":
        ok = 0 <= value < 2**32
    elif name == "uint64":
        ok = 0 <= value < 2**64
    else:  # bool (bool is a subclass of int, but type() is exact)
        ok = False
    if not ok:
        raise _type_error(value, dtype)
    return value


def _convert_bool(value, dtype):
    if type(value) is not bool:
        raise _type_error(value, dtype)
    return value


def _big_int_as_float(value):
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _dense_shape(value):
    """json_tensor.cc GetDenseTensorShape: list sizes along the first elements."""
    shape = []
    while type(value) is list:
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return shape


def _fill(value, level, shape, dtype, out):
    """json_tensor.cc FillTensorProto: values in row-major order into `out`, with its checks."""
    rank = len(shape)
    if type(value) is not list:
        if level != rank:
            raise InvalidArgument(
                f"JSON Value: {_json_text(value)} found at incorrect level: {level + 1} in the JSON DOM. "
                f"Expected at level: {rank}"
            )
        if type(value) is dict:
            if dtype.name != "string":
                raise _type_error(value, dtype)
            out.append(_b64_decode(value))
        elif dtype.name == "bool":
            out.append(_convert_bool(value, dtype))
        else:
            out.append(_convert(value, dtype))
        return
    if level >= rank:
        raise InvalidArgument(f"Encountered list at unexpected level: {level} expected < {rank}")
    if len(value) != shape[level]:
        raise InvalidArgument(
            f"Encountered list at unexpected size: {len(value)} at level: {level} expected size: {shape[level]}"
        )
    for item in value:
        _fill(item, level + 1, shape, dtype, out)


def _tensor_values(value, name, dtype):
    """A JSON value as (shape, flat values) of `dtype`."""
    if dtype.name not in _DTYPES:
        raise Unimplemented(f"Conversion of JSON Value: {_json_text(value)} to type: {_type_name(dtype)}")
    shape = _dense_shape(value)
    if len(shape) > MAX_RANK:
        raise InvalidArgument(f"tensor parsing error: {name}")
    out = []
    _fill(value, 0, shape, dtype, out)
    return shape, out


def _array(shape, values, dtype):
    numpy_dtype = _DTYPES[dtype.name][1]
    if numpy_dtype is object:
        array = np.empty(len(values), dtype=object)
        array[:] = values
        return array.reshape(shape)
    if dtype.name in ("int8", "int16", "uint8"):  # TensorProto int_val, truncated to the type
        return np.array(values, dtype=np.int64).astype(numpy_dtype).reshape(shape)
    return np.array(values, dtype=numpy_dtype).reshape(shape)


def _shape_text(shape):
    return "[" + ",".join(str(d) for d in shape) + "]"


def instances_to_arrays(instances, dtypes):
    """Row format (json_tensor.cc FillTensorMapFromInstancesList)."""
    names = sorted(dtypes)
    first = instances[0]
    if type(first) is not dict and len(names) > 1:
        raise InvalidArgument(
            "instances is a plain list, but expecting list of objects as multiple input tensors required as per "
            "tensorinfo_map"
        )
    objects = type(first) is dict and not _is_b64(first)
    values = {name: [] for name in names}
    shapes, sizes = {}, {}

    def add(item, name):
        if name not in dtypes:
            raise InvalidArgument(f"JSON object: does not have named input: {name}")
        shape, flat = _tensor_values(item, name, dtypes[name])
        if name not in sizes:
            sizes[name], shapes[name] = len(flat), shape
        elif sizes[name] != len(flat):
            raise InvalidArgument(f"Expecting tensor size: {sizes[name]} but got: {len(flat)}")
        elif shapes[name] != shape:
            raise InvalidArgument(f"Expecting shape {_shape_text(shapes[name])} but got: {_shape_text(shape)}")
        values[name].extend(flat)

    for i, element in enumerate(instances):
        element_is_object = type(element) is dict and not _is_b64(element)
        if objects:
            if not element_is_object:
                raise InvalidArgument(f"Expecting object but got list at item {i} of input list")
            for key, item in element.items():
                try:
                    add(item, key)
                except ServingError as e:
                    raise InvalidArgument(
                        f"Failed to process element: {i} key: {key} of 'instances' list. Error: {e.code}: {e}"
                    ) from None
            if set(element) != set(names):
                raise InvalidArgument(
                    f"Failed to process element: {i} of 'instances' list. JSON object: {_json_text(element)} "
                    f"must only have keys: {','.join(names)}"
                )
        else:
            if element_is_object:
                raise InvalidArgument(f"Expecting value/list but got object at item {i} of input list")
            try:
                add(element, names[0])
            except ServingError as e:
                raise InvalidArgument(
                    f"Failed to process element: {i} of 'instances' list. Error: {e.code}: {e}"
                ) from None
    return {
        name: _array([len(instances), *shapes[name]], values[name], dtypes[name]) for name in names if name in shapes
    }


def columnar_items(value, dtypes):
    """The per-input JSON values of a columnar request, for counting instances."""
    if type(value) is dict and not _is_b64(value):
        return [value[name] for name in dtypes if name in value]
    return [value]


def instance_count(value):
    return len(value) if type(value) is list else 1


def inputs_to_arrays(value, dtypes):
    """Columnar format (json_tensor.cc FillTensorMapFromInputsMap)."""
    names = sorted(dtypes)
    if type(value) is not dict or _is_b64(value):
        if len(names) > 1:
            raise InvalidArgument(
                "inputs is a plain value/list, but expecting an object as multiple input tensors required as per "
                "tensorinfo_map"
            )
        shape, flat = _tensor_values(value, names[0], dtypes[names[0]])
        return {names[0]: _array(shape, flat, dtypes[names[0]])}
    arrays = {}
    for name in names:
        if name not in value:
            raise InvalidArgument(f"Missing named input: {name} in 'inputs' object.")
        shape, flat = _tensor_values(value[name], name, dtypes[name])
        arrays[name] = _array(shape, flat, dtypes[name])
    return arrays


def check_examples(doc):
    """json_tensor.cc FillClassifyRegressRequestFromJson: "context" and "examples"."""
    if "context" in doc:
        _check_example(doc["context"])
    if "examples" not in doc:
        raise format_error(doc, "When method is classify, key 'examples' is expected and was not found")
    examples = doc["examples"]
    if not isinstance(examples, list):
        raise format_error(doc, "Expecting 'examples' value to be an list/array")
    if not examples:
        raise format_error(doc, "'examples' value is an empty array")
    for example in examples:
        _check_example(example)


def _check_example(value):
    """json_tensor.cc MakeExampleFromJsonObject / AddValueToFeature."""
    if type(value) is not dict:
        raise InvalidArgument(f"Example must be JSON object but got JSON {_json_type(value)}")
    for name, content in value.items():
        kind = None
        for item in content if type(content) is list else [content]:
            if item is None or type(item) is list or (type(item) is dict and not _is_b64(item)):
                raise InvalidArgument(f"Feature: {name} has element with unexpected JSON type: {_json_type(item)}")
            if type(item) is bool or type(item) is int:
                this = "int64"
                if type(item) is int and not -(2**63) <= item < 2**63:
                    if 0 <= item < 2**64:
                        raise InvalidArgument(f"Feature: {name} has uint64 element. Only int64 is supported.")
                    this = "float"
            elif type(item) is float:
                this = "float"
                if math.isfinite(item) and abs(item) > _FLOAT32_MAX:
                    raise _lossy_error(item, "float")
            else:
                this = "bytes"
                if type(item) is dict:
                    _b64_decode(item)
            if kind is not None and kind != this:
                raise InvalidArgument(f"Unexpected element type in feature: {name} expecting type: {kind}")
            kind = this


# -- response JSON (json_tensor.cc MakeJsonFromTensors) -------------------------------------------

_F32 = struct.Struct("f")


def format_float(value, double=False):
    """json_tensor.cc WriteDecimal: absl::StrCat's six digits when they round-trip, else
    max_digits10 (9 for float, 17 for double); ".0" on whole numbers; NaN, Infinity, -Infinity."""
    if value != value:
        return "NaN"
    if value in (math.inf, -math.inf):
        return "Infinity" if value > 0 else "-Infinity"
    text = "%g" % value
    if double:
        if float(text) != value:
            text = "%.17g" % value
    elif _F32.unpack(_F32.pack(float(text)))[0] != value:
        text = "%.9g" % value
    if "." not in text and "e" not in text:
        text += ".0"
    return text


def _bytes_to_json(value, as_b64):
    if as_b64:
        return '{"b64": "' + base64.b64encode(value).decode("ascii") + '"}'
    return json.dumps(value.decode("utf-8", "replace"), ensure_ascii=False)


def _flat_json(array, name):
    """The elements of an output, each as JSON text (json_tensor.cc AddSingleValueAndAdvance)."""
    kind = array.dtype
    values = array.ravel().tolist()
    if kind == np.float32:
        return [format_float(v) for v in values]
    if kind == np.float64:
        return [format_float(v, double=True) for v in values]
    if kind == np.bool_:
        return ["true" if v else "false" for v in values]
    if kind.kind in "iu":
        return [str(v) for v in values]
    if kind.kind in "OS":
        as_b64 = name.endswith("_bytes")  # json_tensor.cc IsNamedTensorBytes
        return [_bytes_to_json(v if isinstance(v, bytes) else str(v).encode(), as_b64) for v in values]
    raise InvalidArgument(f"Failed to write JSON value for tensor type: {kind.name}")


def _nest(flat, shape, start=0):
    """Flat JSON texts nested as lists of `shape` (json_tensor.cc AddTensorValues)."""
    if not shape:
        return flat[start]
    if len(shape) == 1:
        return "[" + ",".join(flat[start : start + shape[0]]) + "]"
    step = math.prod(shape[1:])
    return "[" + ",".join(_nest(flat, shape[1:], start + i * step) for i in range(shape[0])) + "]"


def columns_json(outputs):
    """Columnar answer: {"outputs": value} for one output, else {"outputs": {name: value}}."""
    parts = {name: _nest(_flat_json(array, name), list(array.shape)) for name, array in outputs.items()}
    if len(parts) == 1:
        return '{"outputs": ' + next(iter(parts.values())) + "}"
    return '{"outputs": {' + ",".join(f"{json.dumps(n)}: {v}" for n, v in sorted(parts.items())) + "}}"


def rows_json(outputs):
    """Row answer (json_tensor.cc MakeRowFormatJsonFromTensors): one prediction per instance."""
    batch = None
    for name in sorted(outputs):
        shape = outputs[name].shape
        if not shape:
            raise InvalidArgument(f"Tensor name: {name} has no shape information ")
        if shape[0] < 1:
            raise InvalidArgument(f"Tensor name: {name} has invalid batch size: {shape[0]}")
        if batch is not None and batch != shape[0]:
            raise InvalidArgument(f"Tensor name: {name} has inconsistent batch size: {shape[0]} expecting: {batch}")
        batch = shape[0]
    columns = {}
    for name, array in outputs.items():
        flat, inner = _flat_json(array, name), list(array.shape[1:])
        step = math.prod(inner)
        columns[name] = [_nest(flat, inner, i * step) for i in range(batch)]
    names = sorted(columns)
    if len(names) == 1:
        rows = columns[names[0]]
    else:
        keys = [json.dumps(n) + ": " for n in names]
        rows = ["{" + ",".join(k + columns[n][i] for k, n in zip(keys, names)) + "}" for i in range(batch)]
    return '{"predictions": [' + ",".join(rows) + "]}"
