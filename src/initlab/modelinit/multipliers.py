"""How a parametrization's forward multipliers are put on an unmodified model, removably
(:mod:`~initlab.modelinit.parametrization`).

* A layer's weight multiplier ``m`` is a forward pre-hook scaling the layer's input: ``W (m x) +
  b = (m W) x + b``, which leaves the module, its parameters and their names as they are. That
  is the weight's multiplier only when the weight is the module's one matrix
  (:func:`check_forward_multipliers`).
* A weight that its module's own code reads, not a layer's forward initlab knows (a *free*
  weight that a module's ``einsum``/``@`` reads, XLNet's ``q``; an expert bank's
  ``gate_up_proj``; SAM's ``rel_pos_h``; any parameter of a module of kind ``"other"``), gets
  ``m`` through ``torch.nn.utils.parametrize``: ``module.q`` reads ``m * original``, exactly the
  effective weight whatever the module does with it, and whatever else the module holds. The
  stored parameter is the same tensor object (optimizers holding it are unaffected); while
  installed its name is ``...parametrizations.q.original``, as for any torch parametrization.
* A residual branch's multiplier is a forward hook scaling its closing layers' outputs.
* μP's attention scale (1/d) is set on the attention modules' scale attribute, and put back.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn
from torch.nn.utils import parametrize as torch_parametrize

from ..core.validation import fail
from .params import ParamInfo


def scale_input(mult: float) -> Callable:
    """A forward pre-hook multiplying the module's first input by ``mult``."""
    def hook(module, args):
        if not args:
            return None
        return (args[0] * mult, *args[1:])
    return hook


def scale_output(mult: float) -> Callable:
    """A forward hook multiplying the module's output (or its first element) by ``mult``."""
    def hook(module, args, output):
        if isinstance(output, torch.Tensor):
            return output * mult
        if isinstance(output, tuple) and output and isinstance(output[0], torch.Tensor):
            return (output[0] * mult, *output[1:])
        return output
    return hook


#: module kinds (:func:`~initlab.modelinit.params.module_kind`) whose parameters' multipliers
#: are parametrizations of the parameter, not pre-hooks on the module's input: what the module
#: does with its parameters is its own code (a pre-hook is exact only for a layer whose output
#: is linear in its input through its one weight)
OWN_MULTIPLIER_KINDS = frozenset(("other", "experts"))


class _Times(nn.Module):
    def __init__(self, mult: float) -> None:
        super().__init__()
        self.mult = mult

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.mult

    def extra_repr(self) -> str:
        return f"mult={self.mult:.6g}"


class ParamMultiplier:
    """``module.<local>`` reads ``mult`` times the stored parameter until :meth:`remove`, which
    puts the stored parameter back under its own name and in its place among the module's
    parameters (its values as trained)."""

    def __init__(self, module: nn.Module, local: str, mult: float) -> None:
        self.module, self.local, self.mult = module, local, mult
        self._order = list(module._parameters)
        self._times = _Times(mult)
        torch_parametrize.register_parametrization(module, local, self._times)

    def remove(self) -> None:
        plist = getattr(self.module, "parametrizations", {})
        if self.local in plist and any(t is self._times for t in plist[self.local]):
            if len(plist[self.local]) == 1:
                torch_parametrize.remove_parametrizations(self.module, self.local,
                                                          leave_parametrized=False)
                # back in its place among the module's parameters (state_dict order)
                params = self.module._parameters
                ordered = {k: params[k] for k in self._order if k in params}
                ordered.update({k: v for k, v in params.items() if k not in ordered})
                params.clear()
                params.update(ordered)
            else:   # pragma: no cover  (a user's parametrization was stacked on top of ours)
                self._times.mult = 1.0


def is_matrix(p: ParamInfo) -> bool:
    """Whether ``p`` is a weight matrix (or an unknown module's 2-D+ tensor): what a forward
    multiplier goes on."""
    return p.role in ("weight", "other") and len(p.shape) >= 2


def check_forward_multipliers(by_info: list[tuple[ParamInfo, Any]], name: str,
                              own: Any = ()) -> None:
    """A forward multiplier is installed as a pre-hook scaling the module's input, which is the
    weight's multiplier only when the weight is the module's one matrix. A module holding two
    (an LSTM's ``weight_ih``/``weight_hh``, an expert bank's ``gate_up_proj``/``down_proj``)
    would get its input scaled once per matrix and its second matrix not at all: refused
    before anything is written. The parameters named in ``own`` (free weights, those of
    :data:`OWN_MULTIPLIER_KINDS`) get theirs as a parametrization of the parameter itself and
    are not concerned, unless several modules share the tensor (a parametrization on one would
    leave the others reading the stored tensor): refused too."""
    mats: dict[int, list[str]] = {}
    for p, _s in by_info:
        if is_matrix(p) and p.name not in own:
            mats.setdefault(id(p.module), []).append(p.name)
    for p, s in by_info:
        if s.multiplier != 1.0 and p.name in own and len({id(m) for _, m, _ in p.uses}) > 1:
            raise fail("name", f"gives `{p.name}` a forward multiplier ({s.multiplier:.4g}), "
                       f"and {len(p.uses)} modules use that tensor ({', '.join(p.names)}): a "
                       "parametrization on one would leave the others reading the stored "
                       "tensor", name, "untie the parameter, or use a parametrization without "
                       "a multiplier on it ('mup' gives one only to the readout).")
        names = mats.get(id(p.module), [])
        if s.multiplier != 1.0 and p.name not in own and is_matrix(p) and len(names) > 1:
            raise fail("name", f"gives `{p.name}` a forward multiplier ({s.multiplier:.4g}), "
                       f"and its module `{p.module_name or '(root)'}` "
                       f"({type(p.module).__name__}) holds {len(names)} matrices "
                       f"({', '.join(names)}), so scaling the module's input cannot be that "
                       "one matrix's multiplier", name,
                       "use 'mup' or 'sp' (whose hidden matrices have no forward multiplier), "
                       "or split the module into one layer per matrix.")


def install(p: ParamInfo, mult: float, own: bool) -> Any:
    """The removable handle of ``p``'s forward multiplier: a parametrization of the parameter
    (``own``: see the module docs), else a pre-hook on its module."""
    if own:
        return ParamMultiplier(p.module, p.local, mult)
    return p.module.register_forward_pre_hook(scale_input(mult))


#: (head size attribute, scale attribute) of attention modules whose q.k scale is a float
#: attribute read at every forward: Hugging Face's ``head_dim``/``scaling`` (handed to the
#: attention function), XLNet's ``d_head``/``scale`` (``(ac + bd + ef) * self.scale``); a
#: ``scale`` is taken only when it is 1/sqrt(head size), so another ``scale`` is never touched
ATTENTION_SCALES = (("head_dim", "scaling"), ("d_head", "scale"))


def _attention_scale(m: nn.Module) -> tuple[int, str, float] | None:
    for hd_attr, attr in ATTENTION_SCALES:
        hd, sc = getattr(m, hd_attr, None), getattr(m, attr, None)
        if isinstance(hd, int) and not isinstance(hd, bool) and hd > 0 and \
                isinstance(sc, float) and (attr == "scaling" or math.isclose(sc, hd ** -0.5)):
            return hd, attr, sc
    return None


class SetAttr:
    """``module.<attr> = new`` until :meth:`remove` puts ``old`` back."""

    def __init__(self, module: nn.Module, attr: str, old: float, new: float) -> None:
        self.module, self.attr, self.old = module, attr, old
        setattr(module, attr, new)

    def remove(self) -> None:
        setattr(self.module, self.attr, self.old)


def mup_attention_scales(model: nn.Module, base: Any) -> tuple[list[tuple[str, nn.Module, str,
                                                                           float, float]],
                                                                list[str]]:
    """μP's attention scale for every attention module of ``model`` whose q.k scale is an
    attribute (:data:`ATTENTION_SCALES`): ``sqrt(d_base) / d`` times the module's own constant
    (so 1/d, equal to SP's 1/sqrt(d) at the base head size ``d_base``, read from the same module
    of ``base``). Returns ``(name, module, attribute, old, new)`` for every module whose scale
    changes (nothing is set here), and notes for modules left as they are (base head size
    unknown; ``nn.MultiheadAttention``, which computes its own 1/sqrt(d))."""
    base_mods = dict(base.named_modules()) if isinstance(base, nn.Module) else {}
    out: list[tuple[str, nn.Module, str, float, float]] = []
    notes: list[str] = []
    for mname, m in model.named_modules():
        found = _attention_scale(m)
        if found is not None:
            hd, attr, sc = found
            bm = base_mods.get(mname)
            bfound = _attention_scale(bm) if bm is not None else None
            if bfound is None or bfound[1] != attr:
                notes.append(f"`{mname}`: base head size unknown; attention scale left as it is")
                continue
            new = math.sqrt(bfound[0]) / hd * (sc * math.sqrt(hd))
            if new != sc:
                out.append((mname, m, attr, sc, new))
        elif isinstance(m, nn.MultiheadAttention):
            base_m = base_mods.get(mname)
            if isinstance(base_m, nn.MultiheadAttention) and base_m.head_dim != m.head_dim:
                notes.append(f"`{mname}` (nn.MultiheadAttention) computes its own 1/sqrt(d): its "
                             "attention scale is not μP's 1/d")
    return out, notes
