"""tfrnn/layers and tfrnn/models never import TensorFlow: they run on every Keras backend."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "tfrnn"


def _imported_modules(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


@pytest.mark.parametrize("package", ["layers", "models"])
def test_backend_agnostic_packages_do_not_import_tensorflow(package):
    files = sorted((ROOT / package).rglob("*.py"))
    assert files
    offending = [
        f"{path.relative_to(ROOT)}: {module}"
        for path in files
        for module in _imported_modules(path)
        if module.split(".")[0] in ("tensorflow", "tensorflow_text", "tf_keras")
    ]
    assert offending == []
