"""TF Serving's folder layout (tfrnn.serving.layout) and the three places that read it: the next
export's version, models.config and the server's repository. Folders whose names `str.isdigit`
accepts but are not ASCII decimal ("²", which `int` rejects, and "١", which `int` reads as 1)
are no versions, and crash nothing."""

import pytest
from google.protobuf import text_format
from starlette.testclient import TestClient
from tensorflow_serving.config import model_server_config_pb2

from tfrnn.serving.layout import model_names, next_version, version_number, versions
from tfrnn.serving.repository import ModelRepository, NotFound
from tfrnn.serving.server import make_app
from tfrnn.serving.tf_serving import write_models_config

NOT_VERSIONS = ("²", "١", "07", "-1", "+2", " 3", "1.0", ".tmp-5-abc", "notes")


def _version(model_dir, name, complete=True):
    """Makes the folder `model_dir/name`, with an (empty) saved_model.pb when `complete`."""
    folder = model_dir / name
    folder.mkdir(parents=True)
    if complete:
        (folder / "saved_model.pb").write_bytes(b"")


@pytest.mark.parametrize("name", NOT_VERSIONS)
def test_only_ascii_decimal_names_are_versions(name):
    assert version_number(name) is None


@pytest.mark.parametrize(("name", "number"), [("0", 0), ("1", 1), ("12", 12)])
def test_version_numbers(name, number):
    assert version_number(name) == number


def test_versions_complete_and_taken(tmp_path):
    for name in ("1", "3", *NOT_VERSIONS):
        _version(tmp_path, name)
    _version(tmp_path, "2", complete=False)  # half-written: taken, not servable
    (tmp_path / "12").write_text("a file, not a version")
    assert versions(tmp_path) == [1, 3]
    assert versions(tmp_path, complete=False) == [1, 2, 3]
    assert next_version(tmp_path) == 4


def test_a_missing_model_folder_has_no_versions(tmp_path):
    assert versions(tmp_path / "missing") == []
    assert next_version(tmp_path / "missing") == 1


@pytest.fixture
def root(tmp_path):
    """An export root: "good" with version 1, "odd" with complete folders that are no versions,
    a staging dot-folder holding a complete version, and a model folder without any."""
    _version(tmp_path / "good", "1")
    for name in ("²", "١", "07"):
        _version(tmp_path / "odd", name)
    _version(tmp_path / ".tmp-1-abc", "1")
    (tmp_path / "empty").mkdir()
    return tmp_path


def test_models_are_folders_with_a_complete_version(root):
    assert model_names(root) == ["good"]
    assert next_version(root / "odd") == 1


def test_models_config_lists_only_real_models(root):
    config = text_format.Parse(write_models_config(root).read_text(), model_server_config_pb2.ModelServerConfig())
    assert [c.name for c in config.model_config_list.config] == ["good"]


def test_server_answers_not_found_for_folders_that_are_no_versions(root):
    repository = ModelRepository(root)
    assert repository.models() == ["good"]
    assert repository.versions("good") == [1]
    assert repository.versions("odd") == [] and repository.versions(".tmp-1-abc") == []
    with pytest.raises(NotFound, match=r"Latest\(odd\)"):
        repository.servable("odd")
    with TestClient(make_app(root)) as client:
        response = client.get("/v1/models/odd")
    assert response.status_code == 404
    # get_model_status_impl.cc: a model with no version on disk
    assert response.json() == {"error": "Could not find any versions of model odd"}
