"""Every notebook under notebooks/ runs headless from top to bottom without an error."""

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    names = {path.name for path in NOTEBOOKS}
    assert {"homework_matrices.ipynb", "check_your_layer.ipynb"} <= names, names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook, timeout=600, kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()  # raises CellExecutionError naming the cell if any cell fails
    errors = [
        output for cell in notebook.cells if cell.cell_type == "code"
        for output in cell.get("outputs", []) if output.get("output_type") == "error"
    ]
    assert not errors, errors
    if os.environ.get("GNNKIT_NOTEBOOK_OUT"):
        nbformat.write(notebook, Path(os.environ["GNNKIT_NOTEBOOK_OUT"]) / path.name)
