"""Write docs/example.ipynb (the notebook tour of initlab's rich displays), unexecuted.

    python scripts/make_notebook.py

tests/test_notebook.py executes it top to bottom (offline: the data is scikit-learn's bundled
8x8 digits and random tensors).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]

CELLS = [
    ("md", "# initlab in a notebook\n\nEvery result of initlab displays itself as a small "
           "report in Jupyter: what each parameter received, the init doctor's verdict with its "
           "figure, a comparison of initializations, and theory results. Everything runs "
           "offline in about a minute on a laptop CPU."),
    ("code", "import tempfile\n\nimport torch\nfrom torch import nn\n\nimport initlab\n\n"
             "torch.manual_seed(0)\n"
             "model = nn.Sequential(*[m for _ in range(8) for m in (nn.Linear(64, 64), "
             "nn.Tanh())], nn.Linear(64, 10))"),
    ("md", "## What each parameter received\n\n`initlab.apply` returns an `InitReport`; as the "
           "last expression of a cell it shows as a table."),
    ("code", "report = initlab.apply(model, \"glorot\", seed=0)\nreport"),
    ("md", "## The init doctor\n\nOne forward and one backward pass on a probe batch. Under "
           "PyTorch's default init this deep tanh network's gradient vanishes: the verdict says "
           "so first, with the per-layer picture."),
    ("code", "initlab.apply(model, \"torch_default\", seed=0)\n"
             "batch = torch.randn(256, 64, generator=torch.Generator().manual_seed(0))\n"
             "checkup = initlab.doctor(model, batch)\ncheckup"),
    ("md", "## Compare initializations by training\n\nSame data, model, optimizer and seeds for "
           "every initialization (a small run: 2 epochs, 2 seeds, 300 of the 8x8 digits)."),
    ("code", "from initlab.lab.compare import CompareConfig, run_compare\n\n"
             "cfg = CompareConfig(data=\"digits\", depth=6, width=16, activation=\"tanh\",\n"
             "                    inits=(\"torch_default\", \"glorot\", \"orthogonal\", \"lsuv\"),\n"
             "                    epochs=2, seeds=2, n_train=300)\n"
             "result = run_compare(cfg, tempfile.mkdtemp(), quiet=True)\nresult"),
    ("md", "## Theory\n\nPredicted variance propagation through the same widths, and the "
           "mean-field point of a tanh network."),
    ("code", "from initlab.theory.propagation import predict_propagation\n\n"
             "predict_propagation([64] * 9, \"tanh\", \"glorot_normal\")"),
    ("code", "from initlab.theory.meanfield import mean_field\n\nmean_field(1.5, 0.05, \"tanh\")"),
]


def build() -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells = [new_markdown_cell(t) if k == "md" else new_code_cell(t) for k, t in CELLS]
    return nb


if __name__ == "__main__":
    path = ROOT / "docs" / "example.ipynb"
    nbformat.write(build(), path)
    print(f"wrote {path.relative_to(ROOT)}")
