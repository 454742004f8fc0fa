"""notebooks/colab_tpu.ipynb runs top to bottom in its tiny configuration as on a Colab TPU (Keras'
JAX backend, data parallel over the devices), on 8 simulated CPU devices, so it cannot rot; its
exports answer raw text with TensorFlow alone."""

from pathlib import Path

import nbformat
from nbclient import NotebookClient

from tests.fixtures import SERVING_TEXTS, serve_in_fresh_process

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "colab_tpu.ipynb"


def test_colab_notebook_trains_on_8_jax_devices_and_exports(tmp_path, monkeypatch):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    parameters = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(parameters) == 1
    drive = tmp_path / "drive"
    parameters[0].source += f"\nSMOKE = True\nOUTPUT = {str(drive)!r}\nRUNS = {str(tmp_path / 'runs')!r}\n"
    with monkeypatch.context() as env:  # the kernel inherits this process's environment
        env.setenv("KERAS_BACKEND", "jax")
        env.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
        NotebookClient(
            notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
        ).execute()
    outputs = "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.outputs)
    assert "finds 8 CPU devices" in outputs
    # The devices cell's line, then each train()'s.
    assert outputs.count("strategy: keras.distribution.DataParallel over 8 JAX devices") == 3

    for name, text_ops in (("imdb_bert", True), ("imdb_bilstm", False)):
        served = serve_in_fresh_process(drive / "saved_models" / name / "1", SERVING_TEXTS, tmp_path, text_ops)
        assert served["inputs"] == {"text": ["string", [None]]}
        assert served["outputs"]["probabilities"] == ["float32", [None, 2]]
        assert len(served["probabilities"]) == len(SERVING_TEXTS)
        assert set(served["label"]) <= {"neg", "pos"}
        assert not any(module.split(".")[0] == "tfrnn" for module in served["loaded"])
