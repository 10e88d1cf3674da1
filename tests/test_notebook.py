"""docs/example.ipynb runs top to bottom offline, and each result shows as rich HTML with its
figures inline (``_repr_html_``). Marked ``notebook`` (run by .ci/run); needs nbclient, nbformat
and ipykernel (pip install '.[browser]')."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.notebook

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "example.ipynb"


def test_example_notebook_runs_and_displays_html(tmp_path):
    nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed "
                                   "(pip install '.[browser]')")
    nbclient = pytest.importorskip("nbclient", reason="nbclient is not installed "
                                   "(pip install '.[browser]')")
    pytest.importorskip("ipykernel", reason="ipykernel is not installed (pip install "
                        "'.[browser]')")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    htmls = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        assert not [o for o in cell.outputs if o.output_type == "error"], cell.source
        htmls += [o["data"]["text/html"] for o in cell.outputs
                  if o.output_type == "execute_result" and "text/html" in o.get("data", {})]
    # InitReport, DoctorReport, CompareResult, Propagation, MeanField
    assert len(htmls) == 5
    assert all(h.startswith('<div class="ilr">') for h in htmls)
    init, doctor, compare, prop, mf = htmls
    assert "glorot" in init and "0.weight" in init
    assert "Not healthy at initialization" in doctor and "data:image/png;base64," in doctor
    assert 'id="verdict"' in compare and compare.count("data:image/png;base64,") >= 4
    assert "data:image/png;base64," in prop and "q_star" in mf
