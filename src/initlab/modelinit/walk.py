"""Former home of the model walk, kept so existing imports keep working.

The walk was split by responsibility (nothing inside ``initlab.modelinit`` imports this module):

* :mod:`~initlab.modelinit.params`: what each parameter is (ties, roles, layouts, blocks);
* :mod:`~initlab.modelinit.dataflow` / :mod:`~initlab.modelinit.describe`: the model
  description (activations, residual branches, readout) from one probe forward;
* :mod:`~initlab.modelinit.streams`: random sources (``RNG_BACKENDS``, ``RngBackend``);
* :mod:`~initlab.modelinit.matching`: rules to distributions, every check before a write;
* :mod:`~initlab.modelinit.write`: the writes; :mod:`~initlab.modelinit.engine`: apply's body;
* :mod:`~initlab.modelinit.api`: ``initlab.apply``.
"""

from __future__ import annotations

from .api import apply
from .checks import check_model, check_seed
from .engine import resolve_plan, running_stats_modules
from .matching import Assignment, expected_moments, match
from .params import (
    CONV_TYPES,
    CONVT_TYPES,
    NORM_TYPES,
    RNN_GATES,
    Block,
    ParamInfo,
    Slot,
    collect_params,
)
from .streams import (
    RNG_BACKENDS,
    RNG_PROVIDERS,
    TORCH_STREAM_VERSION,
    RngBackend,
    check_rng,
    stream_version,
)
from .write import _restore, _snapshot

collect_slots = collect_params

__all__ = [
    "apply", "check_model", "check_seed", "resolve_plan", "running_stats_modules", "Assignment",
    "expected_moments", "match", "CONV_TYPES", "CONVT_TYPES", "NORM_TYPES", "RNN_GATES", "Block",
    "ParamInfo", "Slot", "collect_params", "collect_slots", "RNG_BACKENDS", "RNG_PROVIDERS",
    "TORCH_STREAM_VERSION", "RngBackend", "check_rng", "stream_version", "_restore", "_snapshot",
]
