"""Model-level initialization: plans, rules, reports, pre-trained weights, LSUV.

``initlab.apply`` is :func:`initlab.modelinit.apply` (the package has its own name so that the
function and the package never shadow each other).

>>> import torch.nn as nn, initlab
>>> model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
>>> report = initlab.apply(model, "he", seed=0)
>>> report["0.weight"].initializer
'he_normal()'
"""

from . import plans
from .lsuv import LSUVReport, lsuv
from .meta import materialize
from .pretrained import LoadReport, load_pretrained
from .report import InitReport, ParamRecord
from .rules import Plan, Rule
from .walk import RNG_BACKENDS, RngBackend, apply

__all__ = [
    "apply", "Plan", "Rule", "InitReport", "ParamRecord", "plans", "materialize",
    "load_pretrained", "LoadReport", "lsuv", "LSUVReport", "RNG_BACKENDS", "RngBackend",
]
