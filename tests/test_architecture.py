"""The import rules of docs/architecture.md, checked on the source and in fresh processes."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "tfrnn"

# Layers from the bottom up: a module may import tfrnn modules of its own layer or a lower one.
LAYERS = [
    ("tfrnn", "tfrnn.errors", "tfrnn.files", "tfrnn.choices"),
    ("tfrnn.config",),
    ("tfrnn.layers",),
    ("tfrnn.models",),
    ("tfrnn.data",),
    ("tfrnn.saving", "tfrnn.distribute", "tfrnn.runs", "tfrnn.pretrained", "tfrnn.serving"),
    ("tfrnn.training", "tfrnn.explain", "tfrnn.report"),
    ("tfrnn.export", "tfrnn.ensemble", "tfrnn.tuning"),
    ("tfrnn_cli",),
]

# Upward imports that are part of the design, and why.
UPWARD = {
    (
        "tfrnn",
        "tfrnn.saving",
    ): "the hook that registers tfrnn's classes when Keras is imported (run then, not at import)",
}

# Every import of Keras' and keras-hub's private modules, and why the public API will not do.
# Keras is pinned to one minor version in pyproject.toml because of them.
PRIVATE_IMPORTS = {
    ("tfrnn/layers/base.py", "keras.src.backend"): "the backend's RNN loop (`rnn`), which keras.layers.RNN runs; "
    "ProjectedRNN runs it over pre-projected inputs",
    ("tfrnn/layers/base.py", "keras.src.layers.rnn.dropout_rnn_cell"): "DropoutRNNCell: Keras' exact dropout-mask "
    "semantics for cells",
    ("tfrnn/layers/feedback.py", "keras.src.layers.rnn.dropout_rnn_cell"): "the same, for the feedback cell",
    ("tfrnn/layers/fused.py", "keras.src.backend"): "Keras' TensorFlow cuDNN call (`lstm`, `gru`), which "
    "keras.layers.LSTM/GRU use and keras.ops does not expose",
    ("tfrnn/distribute/keras_compat.py", "keras.src.backend.tensorflow"): "patches TensorFlowTrainer for "
    "keras-team/keras#20585 (multi-replica fit); version-guarded",
    ("tfrnn/models/bert/checkpoint.py", "keras_hub.src.utils.preset_utils"): "get_file / check_file_exists read "
    "one file of any preset handle (local, hf://, kaggle://) without loading the model",
}


def _modules():
    files = sorted(PACKAGE.rglob("*.py")) + sorted((ROOT / "cli").rglob("*.py"))
    for path in files:
        relative = path.relative_to(ROOT)
        parts = list(relative.with_suffix("").parts)
        if parts[0] == "cli":
            parts[0] = "tfrnn_cli"
        if parts[-1] == "__init__":
            parts.pop()
        yield path, ".".join(parts)


def _imports(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "tfrnn":  # `from tfrnn import choices` imports tfrnn.choices
                yield from (f"tfrnn.{alias.name}" for alias in node.names)
            else:
                yield node.module


def _layer(module):
    """The index in LAYERS of the longest prefix naming `module`'s layer."""
    best = None
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > best[1]):
                best = (index, len(prefix))
    return best[0]


MODULES = list(_modules())


@pytest.mark.parametrize("package", ["layers", "models"])
def test_backend_agnostic_packages_do_not_import_tensorflow(package):
    files = sorted((PACKAGE / package).rglob("*.py"))
    assert files
    offending = [
        f"{path.relative_to(ROOT)}: {module}"
        for path in files
        for module in _imports(path)
        if module.split(".")[0] in ("tensorflow", "tensorflow_text", "tf_keras")
    ]
    assert offending == []


def test_no_module_imports_from_a_layer_above_it():
    offending = []
    for path, module in MODULES:
        for imported in _imports(path):
            tfrnn = imported.split(".")[0] in ("tfrnn", "tfrnn_cli")
            if tfrnn and _layer(imported) > _layer(module) and (module, imported) not in UPWARD:
                offending.append(f"{path.relative_to(ROOT)} ({module}) imports {imported}")
    assert offending == []


def test_every_module_has_a_layer():
    assert all(_layer(module) is not None for _, module in MODULES)


def test_private_keras_imports_are_the_listed_ones():
    found = {
        (str(path.relative_to(ROOT)), imported)
        for path, _ in MODULES
        for imported in _imports(path)
        if imported.startswith(("keras.src", "keras_hub.src"))
    }
    assert found == set(PRIVATE_IMPORTS)


def _fresh_python(code):
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip().splitlines()[-1]


def test_config_and_cli_help_import_neither_keras_nor_tensorflow():
    code = (
        "import sys, tfrnn, tfrnn.config, tfrnn.choices, tfrnn_cli.main\n"
        "print(sorted(m for m in ('keras', 'tensorflow', 'keras_hub') if m in sys.modules))"
    )
    assert _fresh_python(code) == "[]"


def test_keras_hub_loads_only_for_bert():
    """An RNN run's modules (data, models, training, export, serving) never import keras-hub."""
    code = (
        "import sys, keras, tfrnn, tfrnn.data, tfrnn.models, tfrnn.training.train, tfrnn.export, tfrnn.runs\n"
        "import tfrnn.serving.server\n"
        "before = 'keras_hub' in sys.modules\n"
        "from tfrnn.models.bert import BertClassifier\n"
        "print(before, 'keras_hub' in sys.modules)"
    )
    assert _fresh_python(code) == "False True"


def test_importing_keras_first_or_second_registers_tfrnn_classes():
    for order in ("import keras, tfrnn", "import tfrnn, keras"):
        code = (
            f"{order}\n"
            "names = keras.saving.get_custom_objects()\n"
            "wanted = ['tfrnn>LSTM', 'tfrnn>RNNClassifier', 'tfrnn>WordPreprocessor', 'tfrnn>BertClassifier', 'tfrnn>BertMaskedLM']\n"
            "print(all(name in names for name in wanted))"
        )
        assert _fresh_python(code) == "True", order
