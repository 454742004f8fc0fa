"""Test-wide setup: the Keras backend (TensorFlow unless KERAS_BACKEND says otherwise), quiet logs."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    """Each test starts from float32, the default policy and a fixed seed."""
    keras.config.set_dtype_policy("float32")
    keras.utils.set_random_seed(0)
    yield
    keras.config.set_dtype_policy("float32")


def tensorflow_only(reason="uses TensorFlow-specific machinery"):
    return pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason=reason)


from tests.fixtures import loaded_tiny_run, tiny_run  # noqa: E402, F401  (shared, session-scoped)
