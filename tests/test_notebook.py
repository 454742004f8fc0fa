"""notebooks/colab_tpu.ipynb runs top to bottom on CPU in its tiny configuration, so it cannot rot."""

from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "colab_tpu.ipynb"


def test_colab_notebook_runs_in_its_smoke_configuration(tmp_path):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    parameters = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(parameters) == 1
    parameters[0].source += f"\nSMOKE = True\nOUTPUT = {str(tmp_path / 'drive')!r}\nRUNS = {str(tmp_path / 'runs')!r}\n"
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    for name in ("imdb_bert", "imdb_bilstm"):
        assert (tmp_path / "drive" / "saved_models" / name / "1" / "saved_model.pb").is_file()
    outputs = "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.outputs)
    assert "TPU attached: False" in outputs and "CaseFoldUTF8" in outputs
