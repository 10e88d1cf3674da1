"""Diagnostics at initialization: hooks, per-layer statistics and the init doctor.

``doctor(model, batch)`` runs one forward and one backward pass on a probe batch and returns a
:class:`DoctorReport` (plain data, a terminal table, a plot) with findings and advice. The pieces
are separate: :mod:`.hooks` (hooks that clean up), :mod:`.stats` (statistics as plain data),
:mod:`.findings` (rules), :mod:`.checkup` (the run), :mod:`.plots` (figures), :mod:`.cli`.
"""

import importlib as _importlib

# name -> submodule, imported on first access: `initlab doctor --help` (diagnostics.cli) must not
# import torch, which the submodules do.
_LAZY = {"doctor": "checkup", "DoctorReport": "checkup", "Finding": "findings",
         "Thresholds": "findings", "diagnose": "findings", "Hook": "hooks", "Hooks": "hooks",
         "LayerStats": "stats", "InputStats": "stats"}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(_importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["doctor", "DoctorReport", "Finding", "Thresholds", "diagnose", "Hook", "Hooks",
           "LayerStats", "InputStats"]
