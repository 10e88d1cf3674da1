"""initlab: neural-network parameter initialization, from formula to laboratory.

The catalog (``names()``, ``get(name, **params)``) lives in a framework-free core; backends draw
samples (NumPy here, PyTorch in :mod:`initlab.torch`). Model-level application, theory, the init
doctor and the laboratory are imported lazily, so ``import initlab`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

from .core import (  # noqa: E402
    STREAM_VERSION,
    Initializer,
    InitlabError,
    InitlabTypeError,
    calculate_gain,
    fans,
    from_dict,
    gain,
    get,
    names,
)
from .core.presets import *  # noqa: E402,F401,F403  (every catalog function by name)

# name -> module that defines it, imported on first access
_LAZY = {
    "apply": "initlab.apply",
    "Plan": "initlab.apply",
    "Rule": "initlab.apply",
    "InitReport": "initlab.apply",
    "plans": "initlab.apply",
    "materialize": "initlab.apply",
    "load_pretrained": "initlab.apply",
    "LoadReport": "initlab.apply",
    "lsuv": "initlab.apply",
    "LSUVReport": "initlab.apply",
    "doctor": "initlab.diagnostics",
    "theory": "initlab.theory",
    "lab": "initlab.lab",
    "critical": "initlab.theory.critical",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name])
        value = module if module.__name__.endswith("." + name) else getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'initlab' has no attribute {name!r}")


__all__ = [
    "__version__", "STREAM_VERSION", "Initializer", "InitlabError", "InitlabTypeError",
    "calculate_gain", "fans", "from_dict", "gain", "get", "names", *_LAZY,
]
