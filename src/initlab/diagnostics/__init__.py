"""Diagnostics at initialization: hooks, per-layer statistics and the init doctor.

``doctor(model, batch)`` runs one forward and one backward pass on a probe batch and returns a
:class:`DoctorReport` (plain data, a terminal table, a plot) with findings and advice. The pieces
are separate: :mod:`.hooks` (hooks that clean up), :mod:`.stats` (statistics as plain data),
:mod:`.findings` (rules), :mod:`.checkup` (the run), :mod:`.plots` (figures), :mod:`.cli`.
"""

from .checkup import DoctorReport, doctor
from .findings import Finding, Thresholds, diagnose
from .hooks import Hook, Hooks
from .stats import InputStats, LayerStats

__all__ = ["doctor", "DoctorReport", "Finding", "Thresholds", "diagnose", "Hook", "Hooks",
           "LayerStats", "InputStats"]
