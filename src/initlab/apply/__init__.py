"""Model-level initialization: plans, rules, reports, pre-trained weights, LSUV.

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


# `initlab.apply` is both this package and the function: Python binds a subpackage to its
# parent's attribute on import, so ``initlab.apply`` is this module object. Making the module
# callable lets ``initlab.apply(model, plan, seed=0)`` work either way (and keeps
# ``initlab.apply.Plan`` etc.). Module ``__class__`` assignment is supported since Python 3.5.
import sys as _sys  # noqa: E402
import types as _types  # noqa: E402


class _CallableModule(_types.ModuleType):
    def __call__(self, *args, **kwargs):
        return apply(*args, **kwargs)


_sys.modules[__name__].__class__ = _CallableModule
