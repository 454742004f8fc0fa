"""The model repository behind `tfrnn serve` (and its gRPC API): versions load in the background,
AVAILABLE only once loaded and warmed up, failed loads reported in the status and not retried,
the previous version serving meanwhile, deleted versions unloaded, TF Serving's version policies
and labels, and TF Serving's messages for what is not there.

Expected states and messages come from TF Serving's source:
- states START/LOADING/AVAILABLE/UNLOADING/END and error_code/error_message:
  model_servers/get_model_status_impl.cc (ManagerStateToStateProtoEnum, ToStatusProto(health));
  a failed load ends in END with the load's error (core/basic_manager.cc publishes kEnd with
  harness->status()).
- "Could not find any versions of model NAME", "Could not find version V of model NAME":
  get_model_status_impl.cc GetModelStatusWithModelSpec (NOT_FOUND).
- "Servable not found for request: Latest(NAME)" / "Specific(NAME, V)": core/basic_manager.cc
  ServingMap::GetUntypedServableHandle (NOT_FOUND); only AVAILABLE versions are in that map.
- "Unrecognized servable version label: L": model_servers/server_core.cc GetModelVersionForLabel
  (INVALID_ARGUMENT).
- "Can't parse PATH as binary proto": tensorflow/core/platform/env.cc ReadBinaryProto (DATA_LOSS),
  which TF Serving's SavedModel loader returns for a corrupt saved_model.pb.
- policies: config/file_system_storage_path_source.proto (latest num_versions, default 1; all;
  specific), and the availability-preserving policy: the old version is unloaded only once a new
  one is AVAILABLE (core/availability_preserving_policy.cc).
"""

import shutil
import threading
import time
from pathlib import Path

import pytest
import tensorflow as tf
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

from tests.serving.conftest import make_root
from tfrnn.errors import ConfigError
from tfrnn.serving import predict
from tfrnn.serving.model_config import read_model_config
from tfrnn.serving.repository import (
    AVAILABLE,
    END,
    LOADING,
    InvalidArgument,
    ModelRepository,
    NotFound,
    VersionStatus,
)


class FakeLoader:
    """A loader that returns the version folder's path (no TensorFlow), counting its calls; it
    fails for folders holding a file named FAIL, and can block until released."""

    def __init__(self):
        self.calls = []
        self.gate = None  # threading.Event to wait on, when set
        self.entered = threading.Event()

    def __call__(self, path):
        self.calls.append(Path(path).name)
        self.entered.set()
        if self.gate is not None:
            self.gate.wait(30)
        if (Path(path) / "FAIL").exists():
            raise ValueError(f"cannot load {path}: it says FAIL")
        return f"model at {Path(path).name}"


def fake_root(tmp_path, versions, name="m"):
    for version in versions:
        folder = tmp_path / "root" / name / str(version)
        folder.mkdir(parents=True)
        (folder / "saved_model.pb").write_bytes(b"fake")
    return tmp_path / "root"


def fake_repository(root=None, config=None, loader=None):
    repository = ModelRepository(
        root=root, model_config_file=config, poll_seconds=3600, warmup=False, loader=loader or FakeLoader()
    )
    repository.poll()
    return repository


def write_config(tmp_path, body):
    path = tmp_path / "root" / "models.config"
    path.write_text(
        f"model_config_list {{ config {{ name: 'm' base_path: 'm' model_platform: 'tensorflow' {body} }} }}"
    )
    return path


def states(repository, name="m"):
    return [(s.version, s.state) for s in repository.model_status(name)]


# -- version policies and labels (fake loads) ----------------------------------------------------------


def test_default_policy_serves_only_the_newest_version(tmp_path):
    repository = fake_repository(fake_root(tmp_path, [1, 2, 3]))
    assert repository.model_status("m") == [VersionStatus(3, AVAILABLE, "OK", "")]
    assert repository.servable("m") == (3, "model at 3")
    with pytest.raises(NotFound, match=r"^Servable not found for request: Specific\(m, 2\)$") as error:
        repository.servable("m", 2)
    assert error.value.code == "NOT_FOUND"
    with pytest.raises(NotFound, match="^Could not find version 2 of model m$"):
        repository.model_status("m", 2)


@pytest.mark.parametrize(
    ("policy", "served"),
    [
        ("", [3]),
        ("model_version_policy { latest { num_versions: 2 } }", [3, 2]),
        ("model_version_policy { all {} }", [3, 2, 1]),
        ("model_version_policy { specific { versions: 1 versions: 3 versions: 9 } }", [3, 1]),
    ],
)
def test_version_policies_of_a_model_config(tmp_path, policy, served):
    root = fake_root(tmp_path, [1, 2, 3])
    repository = fake_repository(config=write_config(tmp_path, policy))
    assert states(repository) == [(v, AVAILABLE) for v in served]
    assert repository.servable("m")[0] == served[0]
    for version in served:
        assert repository.servable("m", version)[0] == version
    assert (root / "m" / "3").is_dir()


def test_version_labels(tmp_path):
    fake_root(tmp_path, [1, 2])
    config = write_config(
        tmp_path,
        "model_version_policy { all {} } version_labels { key: 'stable' value: 1 } "
        "version_labels { key: 'canary' value: 2 }",
    )
    repository = fake_repository(config=config)
    assert repository.servable("m", label="stable")[0] == 1
    assert repository.servable("m", label="canary")[0] == 2
    with pytest.raises(InvalidArgument, match="^Unrecognized servable version label: nope$") as error:
        repository.servable("m", label="nope")
    assert error.value.code == "INVALID_ARGUMENT"
    # http_rest_api_util.cc FillModelSpecWithNameVersionAndLabel
    with pytest.raises(InvalidArgument, match=r"^Both model version \(1\) and model version label \(stable\)"):
        repository.servable("m", 1, "stable")


def test_a_label_of_a_version_not_loaded_is_not_found(tmp_path):
    fake_root(tmp_path, [1, 2])
    repository = fake_repository(config=write_config(tmp_path, "version_labels { key: 'old' value: 1 }"))
    with pytest.raises(NotFound, match=r"^Servable not found for request: Specific\(m, 1\)$"):
        repository.servable("m", label="old")


def test_unknown_and_absurd_model_names(tmp_path):
    repository = fake_repository(fake_root(tmp_path, [1]))
    for name in ("nope", "x" * 300, "../m", "m/1", ""):
        with pytest.raises(NotFound, match=r"^Could not find any versions of model "):
            repository.model_status(name)
        with pytest.raises(NotFound) as error:
            repository.servable(name)
        assert str(error.value) == f"Servable not found for request: Latest({name})"


# -- loading, failing, unloading (fake loads) -----------------------------------------------------


def test_a_new_version_loads_then_the_old_one_is_unloaded(tmp_path):
    root = fake_root(tmp_path, [1])
    loader = FakeLoader()
    repository = fake_repository(root, loader=loader)
    fake_root(tmp_path, [2])  # no poll thread: the version appears at the next poll()
    repository.poll()
    assert states(repository) == [(2, AVAILABLE), (1, END)]
    assert repository.model_status("m", 1) == [VersionStatus(1, END, "OK", "")]
    assert repository.servable("m")[0] == 2
    assert loader.calls == ["1", "2"]


def test_a_failed_newest_version_leaves_the_previous_serving_and_is_not_retried(tmp_path):
    root = fake_root(tmp_path, [1])
    loader = FakeLoader()
    repository = fake_repository(root, loader=loader)
    fake_root(tmp_path, [2])  # no poll thread: the version appears at the next poll()
    (root / "m" / "2" / "FAIL").write_text("")
    for _ in range(3):
        repository.poll()
    status = repository.model_status("m", 2)[0]
    assert (status.state, status.error_code) == (END, "UNKNOWN")
    assert status.error_message.startswith("cannot load m/2: it says FAIL")
    assert str(root) not in status.error_message  # the server's path is logged, never answered
    assert repository.servable("m") == (1, "model at 1")
    assert loader.calls == ["1", "2"]  # once, not on every poll (nor request)

    # Its files change (a copy completed, a fix): then it is tried again.
    (root / "m" / "2" / "FAIL").unlink()
    (root / "m" / "2" / "saved_model.pb").write_bytes(b"fixed")
    repository.poll()
    assert states(repository) == [(2, AVAILABLE), (1, END)]
    assert loader.calls == ["1", "2", "2"]


def test_a_deleted_version_is_unloaded_and_the_previous_one_comes_back(tmp_path):
    root = fake_root(tmp_path, [1, 2])
    repository = fake_repository(root)
    assert states(repository) == [(2, AVAILABLE)]
    shutil.rmtree(root / "m" / "2")
    repository.poll()
    assert states(repository) == [(2, END), (1, AVAILABLE)]
    assert repository.servable("m")[0] == 1
    with pytest.raises(NotFound, match=r"Specific\(m, 2\)"):
        repository.servable("m", 2)
    assert repository._states["m"][2].loaded is None  # its memory is freed


def test_a_version_is_loading_until_it_loaded_and_never_served_before(tmp_path):
    root = fake_root(tmp_path, [1])
    loader = FakeLoader()
    loader.gate = threading.Event()
    repository = ModelRepository(root=root, poll_seconds=3600, warmup=False, loader=loader)
    poll = threading.Thread(target=repository.poll)
    poll.start()
    assert loader.entered.wait(10)
    assert states(repository) == [(1, LOADING)]
    with pytest.raises(NotFound, match=r"^Servable not found for request: Latest\(m\)$"):
        repository.servable("m")
    loader.gate.set()
    poll.join(10)
    assert states(repository) == [(1, AVAILABLE)]


@pytest.mark.parametrize("then", ["returns", "raises"])
def test_a_version_deleted_while_it_loads(tmp_path, then):
    """The load's outcome does not matter: the version ends in END, requests get TF Serving's
    404, nothing raises."""
    root = fake_root(tmp_path, [1])

    def loader(path):
        shutil.rmtree(path)
        if then == "raises":
            raise FileNotFoundError(f"{path}/variables: gone")
        return "half a model"

    repository = ModelRepository(root=root, poll_seconds=3600, warmup=False, loader=loader)
    repository.poll()
    assert [(s.version, s.state) for s in repository.model_status("m")] == [(1, END)]
    with pytest.raises(NotFound, match=r"^Servable not found for request: Latest\(m\)$"):
        repository.servable("m")
    repository.poll()  # the folder is gone: nothing to load, nothing raises


def test_the_poll_thread_picks_up_new_models_and_versions(tmp_path):
    root = fake_root(tmp_path, [1])
    repository = ModelRepository(root=root, poll_seconds=0.05, warmup=False, loader=FakeLoader())
    repository.start()
    try:
        assert repository.servable("m")[0] == 1
        fake_root(tmp_path / "more", [4], name="other")
        shutil.copytree(tmp_path / "more" / "root" / "other", root / "other")
        assert repository.wait_until_available("other", timeout=10)
        assert repository.models() == ["m", "other"]
    finally:
        repository.stop()


# -- real SavedModels ------------------------------------------------------------------------------


def test_a_corrupt_newest_version_is_reported_and_the_previous_keeps_serving(tmp_path, tiny_version):
    root = make_root(tmp_path, tiny_version, versions=(1,))
    repository = ModelRepository(root=root, poll_seconds=3600)
    repository.poll()
    shutil.copytree(tiny_version, root / "tiny" / "2")
    (root / "tiny" / "2" / "saved_model.pb").write_bytes(b"\x08\x96\x01 half copied")
    repository.poll()
    assert repository.model_status("tiny") == [
        VersionStatus(2, END, "DATA_LOSS", "Can't parse tiny/2/saved_model.pb as binary proto"),
        VersionStatus(1, AVAILABLE, "OK", ""),
    ]
    version, loaded = repository.servable("tiny")
    assert version == 1
    outputs = predict.run(predict.signature(loaded, ""), {"text": ["a fine film"]})
    assert outputs["probabilities"].shape == (1, 2)


def test_a_version_without_its_variables_fails_to_load(tmp_path, tiny_version):
    root = make_root(tmp_path, tiny_version, versions=(1,))
    shutil.rmtree(root / "tiny" / "1" / "variables")
    repository = ModelRepository(root=root, poll_seconds=3600)
    repository.poll()
    (status,) = repository.model_status("tiny")
    assert (status.state, status.error_code) == (END, "NOT_FOUND")
    assert "tiny/1/variables" in status.error_message and str(tmp_path) not in status.error_message
    with pytest.raises(NotFound, match=r"Latest\(tiny\)"):
        repository.servable("tiny")


def test_warmup_records_run_before_the_version_is_available(tmp_path, tiny_version, monkeypatch):
    root = make_root(tmp_path, tiny_version, versions=(1,))
    repository = ModelRepository(root=root, poll_seconds=3600)
    seen = []
    run = predict.run

    def spy(function, inputs, max_instances=None):
        seen.append((len(inputs["text"]), [(s.version, s.state) for s in repository.model_status("tiny")]))
        return run(function, inputs, max_instances)

    monkeypatch.setattr(predict, "run", spy)
    repository.poll()
    # tfrnn.serving.tf_serving.warmup_texts: one short text, an empty one, a batch of 8.
    assert seen == [(1, [(1, LOADING)]), (1, [(1, LOADING)]), (8, [(1, LOADING)])]
    assert repository.model_status("tiny") == [VersionStatus(1, AVAILABLE, "OK", "")]


def test_a_failing_warmup_record_fails_the_load(tmp_path, tiny_version):
    """saved_model_warmup_util.cc RunSavedModelWarmup: a warm-up error fails the load."""
    root = make_root(tmp_path, tiny_version, versions=(1,))
    request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name="tiny"))
    request.inputs["txt"].CopyFrom(tf.make_tensor_proto(["x"], dtype=tf.string))
    log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
    with tf.io.TFRecordWriter(str(root / "tiny" / "1" / "assets.extra" / "tf_serving_warmup_requests")) as writer:
        writer.write(log.SerializeToString())
    repository = ModelRepository(root=root, poll_seconds=3600)
    repository.poll()
    assert repository.model_status("tiny") == [
        VersionStatus(
            1,
            END,
            "INVALID_ARGUMENT",
            "input tensor alias not found in signature: txt. Inputs expected to be in the set {text}.",
        )
    ]


def test_start_waits_for_the_first_loads_and_stop_unloads(tmp_path, tiny_version):
    root = make_root(tmp_path, tiny_version, versions=(1,))
    repository = ModelRepository(root=root, poll_seconds=0.05)
    started = time.monotonic()
    repository.start()
    assert repository.servable("tiny")[0] == 1, time.monotonic() - started
    repository.stop()
    assert repository.model_status("tiny") == [VersionStatus(1, END, "OK", "")]


# -- the configuration files ---------------------------------------------------------------------


def test_model_config_base_paths(tmp_path):
    folder = tmp_path / "saved_models"
    (folder / "a").mkdir(parents=True)
    (folder / "b").mkdir()
    config = folder / "models.config"
    config.write_text(
        "model_config_list {\n"
        "  config { name: 'a' base_path: '/models/a' model_platform: 'tensorflow' }\n"  # a container path
        "  config { name: 'b' base_path: 'b' model_platform: 'tensorflow' }\n"  # relative to the file
        f"  config {{ name: 'c' base_path: '{tmp_path / 'elsewhere'}' }}\n"  # absolute
        "}\n"
    )
    entries = {entry.name: entry for entry in read_model_config(config)}
    assert entries["a"].base_path == folder / "a"
    assert entries["b"].base_path == (folder / "b").resolve()
    assert entries["c"].base_path == tmp_path / "elsewhere"
    assert {e.policy for e in entries.values()} == {"latest"} and entries["a"].num_versions == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("model_config_list { config { name: 'a' base_path: 'a' } config { name: 'a' base_path: 'b' } }",
         "Illegal to list model a multiple times in config list"),
        ("model_config_list { config { name: 'a' base_path: 'a' model_platform: 'onnx' } }",
         "Model a requests unsupported platform onnx"),
        ("model_config_list { config { name: 'a' } }", "model a has no base_path"),
        ("model_config_list { nonsense: 1 }", "not a ModelServerConfig text proto"),
    ],
)  # fmt: skip
def test_bad_model_configs(tmp_path, text, message):
    config = tmp_path / "models.config"
    config.write_text(text)
    with pytest.raises(ConfigError, match=message):
        read_model_config(config)
