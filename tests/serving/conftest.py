"""Exports shared by the serving tests: one export of the shared tiny run, copied into fresh
export roots (`make_root`) by the tests that add, break or delete versions."""

import shutil

import pytest


@pytest.fixture(scope="session")
def tiny_version(tiny_run, tmp_path_factory):
    """A version folder of the tiny run's export (SavedModel, variables, warm-up records). Tests
    must not change it: copy it with `make_root`."""
    from tfrnn.export import export_run

    return export_run(tiny_run.run_dir, tmp_path_factory.mktemp("tiny_export") / "tiny")


def make_root(root, version_dir, versions=(1,), name="tiny"):
    """An export root holding copies of `version_dir` as versions `versions` of model `name`.

    Returns:
        Path, the root.
    """
    for version in versions:
        shutil.copytree(version_dir, root / name / str(version))
    return root
