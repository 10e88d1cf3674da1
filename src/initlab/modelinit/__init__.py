"""Model-level initialization: the model description, plans, rules, reports, pre-trained weights,
LSUV.

``initlab.apply`` is :func:`initlab.modelinit.apply` (the package has its own name so that the
function and the package never shadow each other). :func:`describe` is the one description of
a model (ties, roles, fans, activations, residual branches, readout) that apply, materialize,
auto, lsuv and the doctor share.

>>> import torch.nn as nn, initlab
>>> model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
>>> report = initlab.apply(model, "he", seed=0)
>>> report["0.weight"].initializer
'he_normal()'
"""

from . import plans
from .api import apply
from .describe import LayerInfo, ModelDescription, describe
from .lsuv import LSUVReport, lsuv
from .meta import materialize
from .params import ParamInfo
from .pretrained import LoadReport, load_pretrained
from .report import InitReport, ParamRecord
from .rules import Plan, Rule
from .streams import RNG_BACKENDS, RngBackend

__all__ = [
    "apply", "Plan", "Rule", "InitReport", "ParamRecord", "plans", "materialize",
    "load_pretrained", "LoadReport", "lsuv", "LSUVReport", "RNG_BACKENDS", "RngBackend",
    "describe", "ModelDescription", "LayerInfo", "ParamInfo",
]
