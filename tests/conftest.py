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


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """TrainResult of ONE tiny run (tests/fixtures.py), shared by the training, export and CLI
    tests. Tests must not change its files: copy it first (`tests.fixtures.copy_run`)."""
    from tests.fixtures import quiet, tiny_config
    from tfrnn.training.train import train

    return train(tiny_config(tmp_path_factory.mktemp("runs"), "tiny"), log=quiet)


@pytest.fixture(scope="session")
def loaded_tiny_run(tiny_run):
    """LoadedRun of the shared tiny run."""
    from tfrnn.runs import load_run

    return load_run(tiny_run.run_dir)


@pytest.fixture(scope="session")
def tiny_bert_run(tmp_path_factory):
    """TrainResult of ONE tiny BERT run from scratch (2 blocks, hidden 16, learned WordPiece
    vocabulary), shared by the BERT training, export and CLI tests. Do not change its files:
    copy it first (`tests.fixtures.copy_run`)."""
    from tests.fixtures import TINY_BERT, quiet, tiny_config
    from tfrnn.training.train import train

    return train(tiny_config(tmp_path_factory.mktemp("runs"), "tiny-bert", *TINY_BERT), log=quiet)
