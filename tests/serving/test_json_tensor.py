"""TF Serving's JSON <-> tensor rules as `tfrnn serve` applies them, without a model. Each
expected message is json_tensor.cc's (tensorflow_serving/util/json_tensor.cc; function named in
the case) unless said otherwise."""

import base64
import math

import numpy as np
import pytest
import tensorflow as tf

from tfrnn.serving.json_tensor import (
    columns_json,
    format_float,
    inputs_to_arrays,
    instances_to_arrays,
    parse_json,
    rows_json,
)
from tfrnn.serving.predict import InvalidArgument

TEXT = {"text": tf.string}


def _error(function, *args):
    with pytest.raises(InvalidArgument) as error:
        function(*args)
    assert error.value.code == "INVALID_ARGUMENT"
    return str(error.value)


# -- parsing (ParseJson) ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "JSON Parse error: The document is empty"),
        (b"  ", "JSON Parse error: The document is empty. at offset: 2"),
        # rapidjson reader.h ParseStringToStream: kParseErrorStringUnicodeSurrogateInvalid, at the '\'.
        (b'{"instances": ["\\ud800"]}', "JSON Parse error: The surrogate pair in string is invalid. at offset: 16"),
        (b'{"a": "\\udc00x"}', "JSON Parse error: The surrogate pair in string is invalid. at offset: 7"),
        (b'{"a": "\\ud800\\u0041"}', "JSON Parse error: The surrogate pair in string is invalid. at offset: 7"),
        # Not UTF-8: tfrnn refuses it (rapidjson is not asked to validate encodings).
        (b'{"a": "\xff"}', "JSON Parse error: Invalid encoding in string. at offset: 7"),
        (b'{"instances": ["a"', "JSON Parse error: Missing a comma or ']' after an array element. at offset: 18"),
        (b'{"a": 1 "b": 2}', "JSON Parse error: Missing a comma or '}' after an object member. at offset: 8"),
        (b"[1]", "JSON Value: [\n    1\n] Is not object"),
    ],
)
def test_parse_errors(body, message):
    assert _error(parse_json, body) == message


def test_parse_accepts_what_rapidjson_accepts():
    assert parse_json('{"a": "\\ud83d\\ude00", "b": NaN, "c": -Infinity}'.encode())["a"] == "😀"
    assert math.isnan(parse_json(b'{"b": NaN}')["b"])
    assert parse_json(b'\xef\xbb\xbf{"a": 1}') == {"a": 1}  # a UTF-8 byte-order mark is skipped
    assert parse_json(b'{"a": "\\\\ud800"}') == {"a": "\\ud800"}  # an escaped backslash, not a surrogate


def test_deep_nesting_is_a_400_not_a_recursion_error():
    body = b'{"instances": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert _error(parse_json, body).startswith("JSON Parse error: ")


# -- row format (FillTensorMapFromInstancesList, AddInstanceItem, FillTensorProto) ----------------


def test_rows_of_strings_b64_and_named_objects():
    b64 = base64.b64encode("é\x00\xff".encode("latin-1")).decode()
    arrays = instances_to_arrays(["a", {"b64": b64}], TEXT)
    assert arrays["text"].tolist() == [b"a", "é\x00\xff".encode("latin-1")]
    arrays = instances_to_arrays([{"text": "a"}, {"text": {"b64": "YmM"}}], TEXT)  # padding optional
    assert arrays["text"].tolist() == [b"a", b"bc"]


def test_rows_convert_by_the_signature_dtypes():
    dtypes = {"x": tf.float32, "n": tf.int64, "flag": tf.bool, "d": tf.float64}
    arrays = instances_to_arrays([{"x": [1, 2.5], "n": 3, "flag": True, "d": 0.1}] * 2, dtypes)
    assert arrays["x"].dtype == np.float32 and arrays["x"].shape == (2, 2)
    assert arrays["n"].dtype == np.int64 and arrays["n"].tolist() == [3, 3]
    assert arrays["flag"].tolist() == [True, True]
    assert arrays["d"].dtype == np.float64


@pytest.mark.parametrize(
    ("instances", "dtypes", "message"),
    [
        ([1], TEXT, "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: "
         "JSON Value: 1 Type: Number is not of expected type: string"),
        (["a", ["b"]], TEXT, "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: "
         "Expecting shape [] but got: [1]"),
        ([[1, 2], [3]], {"x": tf.int32}, "Failed to process element: 1 of 'instances' list. Error: "
         "INVALID_ARGUMENT: Expecting tensor size: 2 but got: 1"),
        ([{"txt": "a"}], TEXT, "Failed to process element: 0 key: txt of 'instances' list. Error: "
         "INVALID_ARGUMENT: JSON object: does not have named input: txt"),
        ([{"text": "a"}, "b"], TEXT, "Expecting object but got list at item 1 of input list"),
        (["a", {"text": "b"}], TEXT, "Expecting value/list but got object at item 1 of input list"),
        (["a"], {"a": tf.string, "b": tf.string}, "instances is a plain list, but expecting list of objects as "
         "multiple input tensors required as per tensorinfo_map"),
        ([{"a": "x"}], {"a": tf.string, "b": tf.string}, "Failed to process element: 0 of 'instances' list. "
         "JSON object: {\n    \"a\": \"x\"\n} must only have keys: a,b"),
        ([True], {"x": tf.float32}, "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: "
         "JSON Value: true Type: True is not of expected type: float"),
        ([16777217], {"x": tf.float32}, "Failed to process element: 0 of 'instances' list. Error: "
         "INVALID_ARGUMENT: Cannot convert JSON value: 16777217 to float without loss of precision."),
        ([1.5], {"x": tf.int32}, "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: "
         "JSON Value: 1.5 Type: Number is not of expected type: int32"),
        ([{"b64": "%%%"}], TEXT, "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: "
         "Unable to base64 decode"),
        ([{"b64": "YQ"}], {"x": tf.float32}, "Failed to process element: 0 of 'instances' list. Error: "
         "INVALID_ARGUMENT: JSON Value: {\n    \"b64\": \"YQ\"\n} Type: Object is not of expected type: float"),
    ],
)  # fmt: skip
def test_row_errors(instances, dtypes, message):
    assert _error(instances_to_arrays, instances, dtypes) == message


def test_a_list_nested_deeper_than_the_first_element_says_so():
    message = _error(instances_to_arrays, [[1, [2]]], {"x": tf.int32})
    assert message.endswith("Encountered list at unexpected level: 1 expected < 1")


# -- columnar format (FillTensorMapFromInputsMap) ------------------------------------------------


def test_columns_scalars_and_empty_lists():
    assert inputs_to_arrays("a", TEXT)["text"].shape == ()
    empty = inputs_to_arrays([], TEXT)["text"]
    assert empty.shape == (0,) and empty.dtype == object
    assert inputs_to_arrays({"text": [{"b64": "YQ=="}]}, TEXT)["text"].tolist() == [b"a"]
    assert inputs_to_arrays({"b64": "YQ=="}, TEXT)["text"].tolist() == b"a"  # a bare b64 value: one scalar
    numbers = inputs_to_arrays({"x": [[1, 2]], "y": 7}, {"x": tf.float32, "y": tf.int32})
    assert numbers["x"].dtype == np.float32 and numbers["y"].shape == ()
    # Keys that are no input are ignored, as json_tensor.cc looks up only the signature's inputs.
    assert list(inputs_to_arrays({"text": ["a"], "extra": 1}, TEXT)) == ["text"]


@pytest.mark.parametrize(
    ("inputs", "dtypes", "message"),
    [
        ({"txt": ["a"]}, TEXT, "Missing named input: text in 'inputs' object."),
        (["a"], {"a": tf.string, "b": tf.string}, "inputs is a plain value/list, but expecting an object as "
         "multiple input tensors required as per tensorinfo_map"),
        ([["a"], "b"], TEXT, 'JSON Value: "b" found at incorrect level: 2 in the JSON DOM. Expected at level: 2'),
        ([["a"], ["b", "c"]], TEXT, "Encountered list at unexpected size: 2 at level: 1 expected size: 1"),
    ],
)  # fmt: skip
def test_column_errors(inputs, dtypes, message):
    assert _error(inputs_to_arrays, inputs, dtypes) == message


# -- answers (MakeJsonFromTensors, WriteDecimal) --------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        # absl::StrCat's six digits when they read back as the same float32, else "%.9g".
        (0.5218325853347778, "0.521832585"),
        (0.1, "0.1"),
        (1.0, "1.0"),
        (9e6, "9e+06"),
        (1e-5, "1e-05"),
        (1234567.1, "1234567.12"),
        (-0.0, "-0.0"),
        (float("nan"), "NaN"),
        (float("inf"), "Infinity"),
        (float("-inf"), "-Infinity"),
    ],
)
def test_float32_as_tf_serving_prints_it(value, text):
    assert format_float(float(np.float32(value))) == text


def test_answers_row_and_columnar():
    outputs = {
        "probabilities": np.array([[0.25, 0.75], [np.nan, np.inf]], np.float32),
        "label_id": np.array([1, 0], np.int32),
        "label": np.array([b"pos", "né".encode()], object),
        "raw_bytes": np.array([b"\xff", b""], object),
    }
    rows = rows_json(outputs)
    assert rows == (
        '{"predictions": [{"label": "pos","label_id": 1,"probabilities": [0.25,0.75],"raw_bytes": {"b64": "/w=="}},'
        '{"label": "né","label_id": 0,"probabilities": [NaN,Infinity],"raw_bytes": {"b64": ""}}]}'
    )
    assert columns_json({"p": np.zeros((0, 2), np.float32)}) == '{"outputs": []}'
    assert columns_json({"p": np.float32(2)}) == '{"outputs": 2.0}'
    assert rows_json({"p": np.array([1.5], np.float64)}) == '{"predictions": [1.5]}'
    message = _error(rows_json, {"a": np.zeros(2), "b": np.zeros(3)})
    assert message == "Tensor name: b has inconsistent batch size: 3 expecting: 2"
