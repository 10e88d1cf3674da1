"""initlab: neural-network parameter initialization, from formula to laboratory.

The catalog (``names()``, ``get(name, **params)``) lives in a framework-free core; backends draw
samples (NumPy here, PyTorch in :mod:`initlab.torch`). Model-level application, theory, the init
doctor and the laboratory are imported lazily, so ``import initlab`` stays light.
"""

import importlib as _importlib

from ._version import __version__
from .core import (  # noqa: E402
    STREAM_VERSION,
    Initializer,
    InitlabArgumentError,
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
from .core.registry import add_catalog_provider as _add_catalog_provider  # noqa: E402

_add_catalog_provider("initlab.theory.critical")  # `critical` (edge of chaos) joins the catalog

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
    "register_module_type": ("initlab.modelinit.rules", "register_module_type"),
    "describe": ("initlab.modelinit", "describe"),
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


def __getattr__(name: str):
    if name in _LAZY:
        modname, attr = _LAZY[name]
        module = _importlib.import_module(modname)
        value = module if attr is None else getattr(module, attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'initlab' has no attribute {name!r}")


__all__ = [
    "__version__", "STREAM_VERSION", "Initializer", "InitlabError", "InitlabTypeError",
    "InitlabArgumentError", "calculate_gain", "fans", "from_dict", "gain", "get", "names", *_PRESETS, *_LAZY,
]


def __dir__() -> list[str]:
    """The public API (``__all__``), including what is imported on first access."""
    return sorted(set(__all__) | {"__doc__", "__file__", "__name__", "__path__", "__version__"})
