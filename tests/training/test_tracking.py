"""`train.wandb=true` (`tfrnn.training.tracking`): an offline W&B run in the run directory holds
each epoch's metrics and the run spec (read back from its .wandb log); wandb missing is a one-line
ConfigError; the mode is offline unless WANDB_MODE or an API key says otherwise. Nothing leaves
the machine: every test runs with WANDB_MODE=offline and W&B's folders under tmp_path."""

import glob
import json
import struct
import sys

import keras
import numpy as np
import pytest
import wandb

from tests.fixtures import quiet, tiny_config
from tfrnn.config import load_config
from tfrnn.errors import ConfigError
from tfrnn.training import tracking


@pytest.fixture(autouse=True)
def offline_wandb(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_CONSOLE", "off")
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    for name in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(name, str(tmp_path / "wandb-home" / name.lower()))


def offline_records(run_dir):
    """The records of the one offline W&B run under `run_dir`: (run, [history rows]), each row a
    dict of the logged values. wandb 0.31 keeps an offline run in RUN/wandb/offline-run-*/run-<id>.wandb,
    a LevelDB-style log (a 7-byte header, then 32 KiB blocks of records: CRC32, length, type, data)
    of wandb's `Record` protobufs."""
    from wandb.proto import wandb_internal_pb2

    (path,) = glob.glob(str(run_dir / "wandb" / "offline-run-*" / "run-*.wandb"))
    raw = open(path, "rb").read()
    assert raw[:4] == b":W&B"
    position, block = 7, 32768
    records, pending = [], b""
    while position + 7 <= len(raw):
        if block - position % block < 7:  # a block's tail too short for a header is padding
            position += block - position % block
            continue
        _, length, kind = struct.unpack("<IHB", raw[position : position + 7])
        pending += raw[position + 7 : position + 7 + length]
        position += 7 + length
        if kind in (1, 4):  # a full record, or the last chunk of one
            records.append(wandb_internal_pb2.Record.FromString(pending))
            pending = b""
    runs = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    history = [
        {"/".join(item.nested_key) or item.key: json.loads(item.value_json) for item in r.history.item}
        for r in records
        if r.WhichOneof("record_type") == "history"
    ]
    return runs[0], history


def test_an_offline_run_holds_each_epochs_metrics_and_the_spec(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE")  # tfrnn decides: no API key, so offline
    spec = load_config(None, ["run_name=tracked", "model.rnn.units=8"])
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    x, y = np.random.default_rng(0).random((32, 3)), np.arange(32) % 2
    callbacks = tracking.wandb_callbacks(spec, tmp_path, log=quiet)
    fitted = model.fit(x, y, validation_split=0.25, epochs=2, verbose=0, callbacks=callbacks)

    # Process-wide, where wandb's usage telemetry looks (it reached for the network otherwise).
    assert wandb.setup().settings.mode == "offline"
    run, history = offline_records(tmp_path)
    assert run.display_name == "tracked" and run.project == "tfrnn"
    config = {item.key: json.loads(item.value_json) for item in run.config.update}
    assert config["model"] == {"kind": "rnn", "rnn": tracking.as_dict(spec)["model"]["rnn"]}
    assert [row["epoch/epoch"] for row in history] == [0, 1]
    for name in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert [row[f"epoch/{name}"] for row in history] == pytest.approx(fitted.history[name])


def test_train_with_wandb_logs_beside_tensorboard(tmp_path):
    """End to end: `train.wandb=true` (wired in tfrnn.training.train)."""
    from tfrnn.training.train import history_from_csv, train

    result = train(tiny_config(tmp_path, "wandb", "train.wandb=true", "train.epochs=1"), log=quiet)
    run, history = offline_records(result.run_dir)
    assert run.display_name == "wandb"
    logged = history_from_csv(result.run_dir / "history.csv")
    for name in ("loss", "val_loss", "val_accuracy"):
        assert [row[f"epoch/{name}"] for row in history] == pytest.approx(logged[name])
    assert list((result.run_dir / "logs").glob("*/events.out.tfevents.*"))  # TensorBoard too


def test_wandb_missing_is_a_config_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # `import wandb` raises ImportError
    with pytest.raises(ConfigError) as error:
        tracking.check_wandb(load_config(None, ["train.wandb=true"]))
    assert str(error.value) == "train.wandb=true: needs the wandb package (pip install tfrnn[tracking])"
    tracking.check_wandb(load_config(None))  # off: wandb is not needed


def test_offline_unless_wandb_mode_or_an_api_key_says_otherwise(tmp_path, monkeypatch):
    server = "https://api.example.com"
    monkeypatch.delenv("WANDB_MODE")
    assert tracking.wandb_mode(server) == "offline"  # no key, no netrc
    for host in ("api.example.com", "api.wandb.ai"):  # what `wandb login` leaves
        (tmp_path / "netrc").write_text(f"machine {host} login user password {'0' * 40}\n")
        (tmp_path / "netrc").chmod(0o600)
        monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
        assert tracking.wandb_mode(server) == "online"
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("WANDB_API_KEY", "0" * 40)
    assert tracking.wandb_mode(server) == "online"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert tracking.wandb_mode(server) == "disabled"
