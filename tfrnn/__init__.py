"""tfrnn: recurrent (feedback) networks from their equations, and text-model fine-tuning, on Keras 3.

Importing tfrnn is cheap (no Keras, no TensorFlow), so that `tfrnn --help` and `tfrnn.config`
answer fast. What Keras needs to load tfrnn's `.keras` files (its registered classes) is
registered the moment Keras is imported, before or after tfrnn: see `tfrnn.saving`.
"""

import wrapt

__version__ = "0.2.0"


def _register_with_keras(_keras):
    from tfrnn import saving

    saving.register_classes()


wrapt.register_post_import_hook(_register_with_keras, "keras")


def __getattr__(name):
    """`tfrnn.layers`, `tfrnn.models`, ... after a plain `import tfrnn`, imported on first use."""
    if name in ("layers", "models", "data", "training", "export", "serving", "distribute", "runs"):
        import importlib

        return importlib.import_module(f"tfrnn.{name}")
    raise AttributeError(f"module 'tfrnn' has no attribute {name!r}")
