"""Session-wide fixtures: ONE tiny run trained on the embedded reviews, shared by the training,
export and CLI tests, and the helpers that build tiny configs and check CLI errors."""

import pytest

from tfrnn.config import load_config

# A run small enough to train in seconds on 2 CPU cores: 300 reviews, 8 units, 2 epochs.
TINY = (
    "model.units=8",
    "model.embedding_dim=8",
    "data.limit=300",
    "data.max_len=60",
    "train.epochs=2",
    "train.verbose=0",
    "train.tensorboard=true",
)


def tiny_config(output_dir, run_name, *overrides):
    """The tiny RunConfig, written under `output_dir/run_name`, with more overrides last."""
    return load_config(None, [*TINY, f"output_dir={output_dir}", f"run_name={run_name}", *overrides])


def quiet(message):
    """A `log` for train() that prints nothing."""


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """TrainResult of the shared tiny run. Tests must not change its files; copy it first."""
    from tfrnn.training import train

    return train(tiny_config(tmp_path_factory.mktemp("runs"), "tiny"), log=quiet)


@pytest.fixture(scope="session")
def loaded_tiny_run(tiny_run):
    """LoadedRun of the shared tiny run."""
    from tfrnn.training.inference import load_run

    return load_run(tiny_run.run_dir)
