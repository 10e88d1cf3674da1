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
from .core.presets import __all__ as _PRESETS  # noqa: E402

# name -> (module, attribute) imported on first access; attribute None means the module itself
_LAZY: dict[str, tuple[str, str | None]] = {
    "apply": ("initlab.modelinit", "apply"),
    "Plan": ("initlab.modelinit", "Plan"),
    "Rule": ("initlab.modelinit", "Rule"),
    "InitReport": ("initlab.modelinit", "InitReport"),
    "plans": ("initlab.modelinit", "plans"),
    "materialize": ("initlab.modelinit", "materialize"),
    "load_pretrained": ("initlab.modelinit", "load_pretrained"),
    "LoadReport": ("initlab.modelinit", "LoadReport"),
    "lsuv": ("initlab.modelinit", "lsuv"),
    "LSUVReport": ("initlab.modelinit", "LSUVReport"),
    "parametrize": ("initlab.modelinit.parametrization", "parametrize"),
    "param_groups": ("initlab.modelinit.parametrization", "param_groups"),
    "Parametrization": ("initlab.modelinit.parametrization", "Parametrization"),
    "coord_check": ("initlab.diagnostics.coord_check", "coord_check"),
    "CoordCheck": ("initlab.diagnostics.coord_check", "CoordCheck"),
    "doctor": ("initlab.diagnostics", "doctor"),
    "DoctorReport": ("initlab.diagnostics", "DoctorReport"),
    "critical": ("initlab.theory.critical", "critical"),
    "modelinit": ("initlab.modelinit", None),
    "theory": ("initlab.theory", None),
    "diagnostics": ("initlab.diagnostics", None),
    "lab": ("initlab.lab", None),
    "scale": ("initlab.scale", None),
    "torch": ("initlab.torch", None),
    "jax": ("initlab.jax", None),
    "keras": ("initlab.keras", None),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        modname, attr = _LAZY[name]
        module = importlib.import_module(modname)
        value = module if attr is None else getattr(module, attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'initlab' has no attribute {name!r}")


__all__ = [
    "__version__", "STREAM_VERSION", "Initializer", "InitlabError", "InitlabTypeError",
    "calculate_gain", "fans", "from_dict", "gain", "get", "names", *_PRESETS, *_LAZY,
]
