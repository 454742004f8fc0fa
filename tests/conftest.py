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
def tiny_lm_run(tmp_path_factory):
    """TrainResult of ONE tiny `tfrnn pretrain` run (tests/fixtures.py TINY_LM: an AWD-LSTM on the
    embedded reviews' text), shared by the pretraining and init_from tests. Do not change its
    files: copy it first (`tests.fixtures.copy_run`)."""
    from tests.fixtures import quiet, tiny_lm_config
    from tfrnn.training.pretrain import pretrain

    return pretrain(tiny_lm_config(tmp_path_factory.mktemp("runs"), "tiny-lm"), log=quiet)


@pytest.fixture(scope="session")
def tiny_bert_run(tmp_path_factory):
    """TrainResult of ONE tiny BERT run from scratch (2 blocks, hidden 16, learned WordPiece
    vocabulary), shared by the BERT training, export and CLI tests. Do not change its files:
    copy it first (`tests.fixtures.copy_run`)."""
    from tests.fixtures import TINY_BERT, quiet, tiny_config
    from tfrnn.training.train import train

    return train(tiny_config(tmp_path_factory.mktemp("runs"), "tiny-bert", *TINY_BERT), log=quiet)


def write_tiny_bert_preset(folder, vocabulary, seed):
    """A keras-hub preset folder of a tiny random BERT (2 blocks, hidden 16, 2 heads, 48
    positions) with `vocabulary`: a base checkpoint that loads in a second, for PEFT runs."""
    import keras_hub

    keras.utils.set_random_seed(seed)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=len(vocabulary),
        num_layers=2,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        max_sequence_length=48,
    )
    backbone.save_to_preset(str(folder))
    keras_hub.models.BertTokenizer(vocabulary=vocabulary, lowercase=True).save_to_preset(str(folder))
    return str(folder)


@pytest.fixture(scope="session")
def tiny_bert_preset(tiny_bert_run, tmp_path_factory):
    """Path of a tiny BERT preset (`write_tiny_bert_preset`, seed 0) over the tiny BERT run's
    vocabulary. Do not change its files."""
    vocabulary = (tiny_bert_run.run_dir / "vocabulary.txt").read_text(encoding="utf-8").splitlines()
    return write_tiny_bert_preset(tmp_path_factory.mktemp("preset") / "tiny-bert", vocabulary, seed=0)
