"""Adapter-only checkpoints: the weights a PEFT run trained, tied to the encoder they adapt.

A file (`.npz`) holds the model's trainable variables in order (the method's weights, the
classification head, and what else the method trains), their paths and shapes, the method, and
a fingerprint of the base encoder's weights as loaded from its checkpoint. Loading rebuilds
nothing: it fills a model built the same way (base checkpoint -> classifier -> `apply_peft`)
and refuses a file whose fingerprint is another base's.
"""

import hashlib
import json

import keras
import numpy as np

from tfrnn.errors import ConfigError

FORMAT = 1


def fingerprint(layers):
    """SHA-256 over the weights of the encoder's layers (shapes and bytes, in order), as a hex string.

    Args:
        layers: list of keras.layers.Layer. The encoder (a BERT backbone alone, or an RNN's layers).
    """
    digest = hashlib.sha256()
    for weight in (weight for layer in layers for weight in layer.weights):
        value = keras.ops.convert_to_numpy(weight)
        digest.update(f"{value.shape}{value.dtype}".encode())
        digest.update(np.ascontiguousarray(value).tobytes())
    return digest.hexdigest()


def save_adapter(model, path):
    """Writes `model`'s trainable variables and the base's fingerprint to `path` (.npz).

    Args:
        model: tfrnn.models.base.Classifier. After `apply_peft` (it has `peft_fingerprint`).
        path: str or Path or binary file. Where to write.
    """
    variables = model.trainable_variables
    meta = {
        "format": FORMAT,
        "method": model.peft_method,
        "base_fingerprint": model.peft_fingerprint,
        "paths": [v.path for v in variables],
        "shapes": [list(v.shape) for v in variables],
    }
    arrays = {str(i): keras.ops.convert_to_numpy(v) for i, v in enumerate(variables)}
    np.savez(path, meta=np.array(json.dumps(meta)), **arrays)


def load_adapter(model, path):
    """Fills `model`'s trainable variables from an adapter file.

    Args:
        model: tfrnn.models.base.Classifier. Built like the run's model, after `apply_peft`.
        path: str or Path. A file `save_adapter` wrote.

    Raises:
        ConfigError: the file is not an adapter file, belongs to another base encoder (its
            fingerprint differs), another method, or other shapes.
    """
    try:
        with np.load(path, allow_pickle=False) as stored:
            meta = json.loads(str(stored["meta"]))
            arrays = [stored[str(i)] for i in range(len(meta["shapes"]))]
    except (OSError, ValueError, KeyError) as error:
        raise ConfigError(f"{path}: not a tfrnn adapter file ({type(error).__name__}: {error})") from None
    if meta["base_fingerprint"] != model.peft_fingerprint:
        raise ConfigError(
            f"{path}: trained on another base encoder (weights fingerprint {meta['base_fingerprint'][:12]}, "
            f"this one's {model.peft_fingerprint[:12]})"
        )
    if meta["method"] != model.peft_method:
        raise ConfigError(f"{path}: holds a {meta['method']} adapter, not {model.peft_method}")
    variables = model.trainable_variables
    shapes = [list(v.shape) for v in variables]
    if shapes != meta["shapes"]:
        raise ConfigError(f"{path}: its {len(meta['shapes'])} weights do not match the model's {len(shapes)}")
    for variable, value in zip(variables, arrays):
        variable.assign(value)
