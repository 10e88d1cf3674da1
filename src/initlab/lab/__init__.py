"""The laboratory: datasets, models, a training loop, comparisons and reproductions.

- :mod:`initlab.lab.data`: ``load_dataset(name, ...)`` (digits, mnist, mnist1d, circles, moons,
  spirals), seeded splits and standardization.
- :mod:`initlab.lab.models`: ``ModelConfig``, ``build_model`` (MLP, CNN, residual, deep linear).
- :mod:`initlab.lab.train`: ``TrainConfig``, ``train.train`` (per-epoch records, resumable).
- :mod:`initlab.lab.results`: the output directory (config, JSON lines, checkpoints, the
  one-writer lock, ``--force`` moving old results aside).
- :mod:`initlab.lab.progress`: progress bars on a terminal only; the torch thread default.
- :mod:`initlab.lab.compare`: ``CompareConfig``, ``run_compare``; ``initlab compare``/``demo``.

Submodules are imported on first use, so ``import initlab.lab`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "Dataset": "data", "load_dataset": "data", "load_mnist_npz": "data", "read_idx": "data",
    "ModelConfig": "models", "build_model": "models", "Residual": "models",
    "TrainConfig": "train", "layer_stats": "train",
    "RunDir": "results", "RunLock": "results", "read_jsonl": "results",
    "CompareConfig": "compare", "run_compare": "compare", "format_table": "compare",
    "write_report": "compare_report",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(f"{__name__}.{_LAZY[name]}")
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = list(_LAZY)
