"""tfrnn's classes in Keras' serialization registry, so that `keras.saving.load_model` reads any
tfrnn `.keras` file after `import tfrnn`, in safe mode and without `custom_objects`.

`tfrnn/__init__.py` calls `register_classes` as soon as Keras is imported. The layers and the
Keras-only models register themselves when imported. Classes whose modules need more
(TensorFlow for the text preprocessors, keras-hub for BERT) are registered by a stand-in whose
`from_config` imports the module and hands over to the real class, so keras-hub loads only when
a file holds a BERT model. Importing the real module replaces the stand-in, since
`keras.saving.register_keras_serializable` overwrites an entry of the same name.
"""

import importlib

import keras

# Registered name -> the module defining the class; imported only when a file needs it.
DEFERRED = {
    "tfrnn>WordPreprocessor": "tfrnn.data.preprocessing",
    "tfrnn>BertPreprocessor": "tfrnn.data.wordpiece",
    "tfrnn>BertBackbone": "tfrnn.models.bert.backbone",
    "tfrnn>BertClassifier": "tfrnn.models.bert.classifier",
    "tfrnn>BertMaskedLM": "tfrnn.models.bert.masked_lm",
}


def _stand_in(registered_name, module):
    class_name = registered_name.split(">", 1)[1]

    class StandIn:
        """Imports `module` on first use and builds the real class from its config."""

        @classmethod
        def from_config(cls, config):
            real = getattr(importlib.import_module(module), class_name)
            return real.from_config(config)

        def get_config(self):  # never called; Keras requires the method on registered classes
            raise NotImplementedError

    StandIn.__name__ = StandIn.__qualname__ = f"Deferred{class_name}"
    return StandIn


def register_classes():
    """Imports the Keras-only classes and registers stand-ins for the others (idempotent)."""
    importlib.import_module("tfrnn.layers")
    importlib.import_module("tfrnn.models")
    importlib.import_module("tfrnn.training.schedules")
    importlib.import_module("tfrnn.training.ulmfit")  # UlmfitAdam(W): a model.keras compiled with them
    importlib.import_module("tfrnn.training.losses")  # SparseCrossentropy: the compiled loss of a model.keras
    registry = keras.saving.get_custom_objects()
    for registered_name, module in DEFERRED.items():
        registry.setdefault(registered_name, _stand_in(registered_name, module))
