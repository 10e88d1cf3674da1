"""How the probe (:mod:`~initlab.modelinit.dataflow`) sees a module and a call's values: the
kind of unit a module is (a layer, a norm, an activation, looked inside, ...) and the tensors
inside nested arguments and outputs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn as nn

from ..core.activations import lookup_module
from .experts import is_router
from .params import LAYER_KINDS, is_free_norm, module_kind
from .stochastic import is_stochastic_depth


def tensors_in(obj: Any, out: list, depth: int = 0) -> list:
    """``out`` extended by the tensors in ``obj`` (nested mappings, sequences and Hugging Face
    ``ModelOutput`` objects, four levels deep), in order."""
    if isinstance(obj, torch.Tensor):
        out.append(obj)
    elif depth < 4:
        if isinstance(obj, Mapping):
            for v in obj.values():
                tensors_in(v, out, depth + 1)
        elif isinstance(obj, (tuple, list)):
            for v in obj:
                tensors_in(v, out, depth + 1)
        elif hasattr(obj, "to_tuple") and callable(obj.to_tuple):  # HF ModelOutput
            tensors_in(obj.to_tuple(), out, depth + 1)
    return out


def unit_kind_of(module: nn.Module) -> str | None:
    """How the probe treats a module: ``layer`` / ``norm`` / ``embedding`` / ``other`` (a
    parameter-owning leaf), ``activation``, ``free_norm`` (a norm without parameters, passed
    through as a norm but never a branch's norm: nothing of it can be zeroed), ``opaque``
    (unknown parameterless leaf), or None (looked inside)."""
    if lookup_module(module) is not None:
        return "activation"
    kind = module_kind(module)
    if kind == "mha" or is_router(module):   # a router's child holds at most a routing bias
        return "layer"
    from torch.nn.utils import parametrize

    own = any(p is not None for p in module._parameters.values()) or \
        parametrize.is_parametrized(module)
    child_params = any(True for cname, c in module.named_children()
                       if cname != "parametrizations" for _ in c.parameters())
    if own and not child_params:
        if kind in LAYER_KINDS:
            return "layer"
        if kind in ("norm", "embedding"):
            return kind
        if all(p is None or p.dim() <= 1 for p in module._parameters.values()) and \
                not parametrize.is_parametrized(module):
            # scalars and vectors only (a layer scale, DINOv2's `lambda1`, a learned temperature):
            # looked inside, so `x * gamma` keeps x a layer's output and a residual branch
            # closed through it is still seen
            return None
        return "other"
    if not own and not any(True for _ in module.children()):
        if is_free_norm(module):
            return "free_norm"   # a norm without parameters: passed through as a norm
        if type(module).__module__.startswith("torch.nn") or is_stochastic_depth(module):
            return None      # torch's own parameterless leaves: looked inside (dropout, pools)
        return "opaque"
    return None
