"""examples/07_course_notebook.ipynb runs from top to bottom and shows what its text says.

The notebook is executed in a fresh Jupyter kernel (nbclient, ipykernel's python3) that
imports this checkout of the package. The committed file keeps its outputs, so it reads on
GitHub; this test checks they are there and that the code still produces them.
"""

import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "07_course_notebook.ipynb"


def _outputs(cell) -> str:
    """Everything a code cell showed: printed text, plain and HTML results, SVG."""
    parts = []
    for output in cell.get("outputs", []):
        parts.append(output.get("text", ""))
        for kind in ("text/plain", "text/html", "image/svg+xml"):
            parts.append(output.get("data", {}).get(kind, ""))
    return "\n".join(parts)


def test_the_committed_notebook_has_its_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(cell.execution_count for cell in code), "run it before committing"
    assert all(cell.outputs for cell in code[1:]), "every cell after the imports shows something"


@pytest.mark.slow
def test_the_notebook_runs_and_shows_the_course(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # one more cell, at the end: which tinygrad_cnn did the kernel import?
    notebook.cells.append(nbformat.v4.new_code_cell("import tinygrad_cnn; tinygrad_cnn.__file__"))
    client = nbclient.NotebookClient(
        notebook, kernel_name="python3", timeout=300, resources={"metadata": {"path": tmp_path}}
    )
    client.execute()  # raises CellExecutionError, with the cell and its traceback, on failure
    shown = [_outputs(cell) for cell in notebook.cells if cell.cell_type == "code"]
    assert str(ROOT / "tinygrad_cnn") in shown.pop(), "the kernel imported another checkout"
    text = "\n".join(shown)
    assert "summed: 10.0" in text  # the 5x5 convolution's top-left
    assert "gradcheck of conv2d (stride 2, 'same') in x and w: True" in text
    assert "Total params: 41,853" in text and "100·(400+1) = 40,100" in text
    assert "<svg" in text and "<polyline" in text  # the graph, and the curves
    assert "<iframe srcdoc=" in text  # the explorer page, inline
    assert "foreground IoU on 64 test canvases: " in text
    iou = float(text.split("foreground IoU on 64 test canvases: ")[1][:5])
    assert iou > 0.5, f"the U-Net learned little: IoU {iou}"
    assert shown[-1].count("<img") == 1  # input | true | predicted as one picture
