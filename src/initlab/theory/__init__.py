"""Theory calculators: why an initialization works, computed.

* :mod:`.saturation` — ``f'(x)``, slowdown ratios, fraction of saturated weighted inputs.
* :mod:`.weighted_input` — mean, variance and tail of ``z = w . x + b`` at initialization.
* :mod:`.meanfield` — length map, ``q*``, ``chi_1``, critical line, depth scales (Poole et al.
  2016; Schoenholz et al. 2017).
* :func:`predicted_spectrum` — the input-output Jacobian's predicted mean and spread of ``s^2``
  (Pennington, Schoenholz, Ganguli 2017; computed in :mod:`initlab.core.criticality`, which the
  recommender uses too).
* :mod:`.critical` — the ``critical`` (edge-of-chaos) initializer of the catalog.
* :mod:`.propagation` — forward/backward variances through depth, predicted and measured (torch).
* :mod:`.jacobian` — singular values of input-output and layer-to-layer Jacobians (torch).
* :mod:`.plots` — figures of the above.

The NumPy/SciPy parts are imported eagerly; the torch-based ones on first access, so the catalog
(which imports :mod:`.critical` lazily) never pulls in torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from .critical import DEFAULT_SIGMA_B2, critical, critical_point
from .meanfield import (
    MeanField,
    PredictedSpectrum,
    chi1,
    correlation_map,
    critical_line,
    critical_sigma_w2,
    fixed_point_q,
    length_map,
    length_map_slope,
    mean_field,
    predicted_spectrum,
)
from .saturation import (
    DEFAULT_THRESHOLD,
    derivative,
    saturated_fraction,
    saturated_set,
    slowdown_ratio,
)
from .weighted_input import (
    EmpiricalInputs,
    FixedInputs,
    IidInputs,
    WeightedInput,
    binary_inputs,
    distribution_moments,
    standardized_inputs,
    weighted_input,
)

_LAZY = {
    "Propagation": "initlab.theory.propagation",
    "predict_propagation": "initlab.theory.propagation",
    "measure_propagation": "initlab.theory.propagation",
    "propagate": "initlab.theory.propagation",
    "JacobianSpectrum": "initlab.theory.jacobian",
    "SpectrumSummary": "initlab.theory.jacobian",
    "jacobian_spectrum": "initlab.theory.jacobian",
    "plot_propagation": "initlab.theory.plots",
    "plot_critical_line": "initlab.theory.plots",
    "plot_jacobian_spectrum": "initlab.theory.plots",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name])
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'initlab.theory' has no attribute {name!r}")


__all__ = [
    "DEFAULT_SIGMA_B2", "critical", "critical_point", "MeanField", "chi1", "correlation_map",
    "critical_line", "critical_sigma_w2", "fixed_point_q", "length_map", "length_map_slope",
    "mean_field", "PredictedSpectrum", "predicted_spectrum", "DEFAULT_THRESHOLD", "derivative", "saturated_fraction", "saturated_set",
    "slowdown_ratio", "EmpiricalInputs", "FixedInputs", "IidInputs", "WeightedInput",
    "binary_inputs", "distribution_moments", "standardized_inputs", "weighted_input", *_LAZY,
]
