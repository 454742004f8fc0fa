"""What TF Serving reads besides the SavedModel: warmup requests, models.config, batching.

- `assets.extra/tf_serving_warmup_requests` in each version: a TFRecord file of `PredictionLog`
  records (tensorflow-serving-api's protos) that TF Serving replays when it loads the version,
  so the first real request does not pay for graph tracing and kernel warm-up.
- `models.config` at the export root: a `ModelServerConfig` text proto listing each model's name
  and base path (as the server sees it, e.g. inside the container), for
  `--model_config_file`.
- `batching.config`: TF Serving's batching parameters, for `--enable_batching
  --batching_parameters_file`.
"""

from pathlib import Path

import tensorflow as tf
from google.protobuf import text_format
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2
from tensorflow_serving.config import model_server_config_pb2

from tfrnn.files import atomic_write_text
from tfrnn.serving.layout import model_names

WARMUP_FILE = "tf_serving_warmup_requests"
SIGNATURE = "serving_default"


def warmup_texts(max_len):
    """Warm-up batches: one short text, an empty one, and a full-length batch of 8.

    Args:
        max_len: int. The run's longest token sequence (the long text reaches it).

    Returns:
        list of list of str, one list per request.
    """
    long_text = " ".join(["a wonderful and moving film"] * max(1, max_len // 5 + 1))
    return [["A warm, funny film with a great cast."], [""], [long_text] * 8]


def write_warmup_requests(path, model_name, max_len):
    """Writes TF Serving's warm-up file: one PredictRequest per `warmup_texts` batch.

    Args:
        path: str or Path. The file to write (VERSION/assets.extra/tf_serving_warmup_requests).
        model_name: str. The model's name in the requests.
        max_len: int. The run's longest token sequence.
    """
    with tf.io.TFRecordWriter(str(path)) as writer:
        for texts in warmup_texts(max_len):
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=model_name, signature_name=SIGNATURE)
            )
            request.inputs["text"].CopyFrom(tf.make_tensor_proto(texts, dtype=tf.string))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())


def read_warmup_requests(path):
    """The PredictRequests of a warm-up file, in order.

    Args:
        path: str or Path. A file written by `write_warmup_requests`.

    Returns:
        list of tensorflow_serving.apis.predict_pb2.PredictRequest.
    """
    requests = []
    for record in tf.data.TFRecordDataset(str(path)):
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        requests.append(log.predict_log.request)
    return requests


def write_models_config(export_root, base_path="/models"):
    """Writes EXPORT_ROOT/models.config, a ModelServerConfig with every model under the root
    (`tfrnn.serving.layout.model_names`: folders with a complete version).

    Args:
        export_root: str or Path. The folder holding NAME/<version>/ exports (saved_models/).
        base_path: str. Where the server sees the export root (the container's mount point).

    Returns:
        Path of the file.
    """
    config = model_server_config_pb2.ModelServerConfig()
    for name in model_names(export_root):
        entry = config.model_config_list.config.add()
        entry.name = name
        entry.base_path = f"{base_path.rstrip('/')}/{name}"
        entry.model_platform = "tensorflow"
    path = Path(export_root) / "models.config"
    atomic_write_text(path, text_format.MessageToString(config))
    return path


def write_batching_config(export_root, max_batch_size=64, batch_timeout_micros=2000, num_batch_threads=4):
    """Writes EXPORT_ROOT/batching.config, TF Serving's BatchingParameters text proto.

    Args:
        export_root: str or Path. The export root.
        max_batch_size: int. Largest batch the server forms.
        batch_timeout_micros: int. Longest wait to fill a batch.
        num_batch_threads: int. Batches processed in parallel.

    Returns:
        Path of the file.
    """
    text = (
        f"max_batch_size {{ value: {max_batch_size} }}\n"
        f"batch_timeout_micros {{ value: {batch_timeout_micros} }}\n"
        f"num_batch_threads {{ value: {num_batch_threads} }}\n"
        f"max_enqueued_batches {{ value: {8 * num_batch_threads} }}\n"
    )
    path = Path(export_root) / "batching.config"
    atomic_write_text(path, text)
    return path
