"""torch's reparametrizations by forward pre-hook (the API before ``torch.nn.utils.parametrize``):
the layer's parameter is replaced by stored tensors, and ``weight`` becomes an attribute the hook
recomputes before every forward.

* ``torch.nn.utils.prune``: ``weight_orig`` (parameter) and ``weight_mask`` (buffer);
  ``weight`` = weight_orig * weight_mask.
* ``torch.nn.utils.spectral_norm``: ``weight_orig`` (parameter), ``weight_u``/``weight_v``
  (buffers: the power iteration's vectors); ``weight`` = weight_orig / sigma(weight_orig).
* ``torch.nn.utils.weight_norm``: ``weight_g`` and ``weight_v`` (parameters);
  ``weight`` = g * v / ||v|| (norms over every dimension but ``dim``).

The description names such a tensor as the layer's weight (``0.weight``), so a pruned or
normalized model draws, from the same stream, the weights the plain model draws: the draw W goes
into ``weight_orig`` (weight norm: ``g`` = ||W||, ``v`` = W, so ``weight`` is W), the buffers
are kept, and ``weight`` is recomputed (:func:`refresh`) as the next forward computes it. A
lottery ticket (prune, rewind to the init) is this with a mask.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

__all__ = ["POWER_ITERATIONS", "Hooked", "computed", "fixed_scale", "hooked_of", "refresh"]

#: at most this many power iterations fit a spectral norm's vectors (u, v) to a weight initlab
#: wrote; they stop when sigma's estimate changes by less than :data:`POWER_RTOL` (torch runs a
#: fixed 15 when ``parametrizations.spectral_norm`` is registered: 2.4% off on a 32x64 Glorot
#: draw in a test, where this converges to 1e-4)
POWER_ITERATIONS = 1000
POWER_RTOL = 1e-6


@dataclass(frozen=True)
class Hooked:
    """One tensor reparametrized by a torch hook: ``name`` (``weight``), the ``method`` (the
    hook object), its ``kind`` and the module's ``stored`` parameters and ``buffers`` for it."""

    name: str
    method: Any
    kind: str                     # "pruned" | "spectral_norm" | "weight_norm"
    stored: tuple[str, ...]       # parameters, in the order the draw is mapped to
    buffers: tuple[str, ...]      # the hook's own state, kept

    def compute(self, module: nn.Module) -> torch.Tensor:
        """``weight`` as the hook computes it (no power iteration: the buffers as they are)."""
        if self.kind == "pruned":
            return self.method.apply_mask(module)
        if self.kind == "spectral_norm":
            return self.method.compute_weight(module, do_power_iteration=False)
        return self.method.compute_weight(module)

    def right_inverse(self, value: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The stored tensors for a drawn ``weight`` (weight norm: ``(||W||, W)``)."""
        if self.kind == "weight_norm":
            return torch.norm_except_dim(value, 2, self.method.dim), value
        return (value,)

    @property
    def note(self) -> str:
        stored = " and ".join(f"`{s}`" for s in self.stored)
        how = {"pruned": f"{self.name}_orig * {self.name}_mask, the mask kept",
               "spectral_norm": f"{self.name}_orig / sigma, the power-iteration vectors kept",
               "weight_norm": "g * v / ||v||, g = ||W|| and v = W"}[self.kind]
        return f"{self.kind.replace('_', ' ')} (a torch hook): drawn into {stored} " \
               f"(`{self.name}` = {how}; recomputed)"


def hooked_of(module: nn.Module) -> dict[str, Hooked]:
    """``{stored parameter name: Hooked}`` for each tensor of ``module`` a torch hook
    reparametrizes (weight norm's two parameters map to one Hooked)."""
    from torch.nn.utils.prune import BasePruningMethod
    from torch.nn.utils.spectral_norm import SpectralNorm
    from torch.nn.utils.weight_norm import WeightNorm

    out: dict[str, Hooked] = {}
    params = module._parameters
    stored: tuple[str, ...]
    bufs: tuple[str, ...]
    for h in module._forward_pre_hooks.values():
        if isinstance(h, BasePruningMethod):
            name, kind, stored, bufs = h._tensor_name, "pruned", ("_orig",), ("_mask",)
        elif isinstance(h, SpectralNorm):
            name, kind, stored, bufs = h.name, "spectral_norm", ("_orig",), ("_u", "_v")
        elif isinstance(h, WeightNorm):
            name, kind, stored, bufs = h.name, "weight_norm", ("_g", "_v"), ()
        else:
            continue
        found = Hooked(name, h, kind, tuple(name + s for s in stored),
                       tuple(name + s for s in bufs))
        if all(s in params for s in found.stored):
            out.update(dict.fromkeys(found.stored, found))
    return out


def refresh(module: nn.Module, *, refit: bool = False) -> None:
    """Recompute every hook-reparametrized attribute of ``module`` from its stored tensors.
    ``refit`` (after a new weight was written): a spectral norm's power-iteration vectors are
    first fitted to it (:func:`_fit`; both APIs), as they describe the old weight:
    left stale, sigma is misestimated (a Glorot draw read 220x too large in a test)."""
    hooks = set(hooked_of(module).values())
    if refit:
        with torch.no_grad():
            for h in hooks:
                if h.kind == "spectral_norm":
                    u, v = (module.get_buffer(b) for b in h.buffers)
                    _fit(h.method.reshape_weight_to_matrix(getattr(module, h.stored[0])), u, v,
                         h.method.eps)
            for plist in getattr(module, "parametrizations", {}).values():
                for par in plist:
                    if type(par).__name__ == "_SpectralNorm" and hasattr(plist, "original"):
                        _fit(par._reshape_weight_to_matrix(plist.original), par._u, par._v,
                             par.eps)
    for h in hooks:
        setattr(module, h.name, h.compute(module))


def _fit(w: torch.Tensor, u: torch.Tensor, v: torch.Tensor, eps: float) -> None:
    """Power iteration in place on ``u``, ``v`` (torch's step: v = W^T u / |.|, u = W v / |.|)
    until sigma = u . W v settles."""
    sigma = None
    for _ in range(POWER_ITERATIONS):
        v.copy_(nn.functional.normalize(torch.mv(w.t(), u), dim=0, eps=eps))
        u.copy_(nn.functional.normalize(torch.mv(w, v), dim=0, eps=eps))
        new = float(torch.dot(u, torch.mv(w, v)))
        if sigma is not None and abs(new - sigma) <= POWER_RTOL * abs(new):
            return
        sigma = new


def computed(module: nn.Module, local: str) -> torch.Tensor:
    """``module.<local>`` as the module computes it, read without a side effect: a
    parametrized spectral norm runs a power step on each read in training mode, so its
    parametrizations are read in eval mode (a hook's attribute is a plain read)."""
    plists = getattr(module, "parametrizations", None)
    pars = list(plists[local]) if plists is not None and local in plists else []
    flags = [par.training for par in pars]
    try:
        for par in pars:
            par.training = False
        return getattr(module, local)
    finally:
        for par, flag in zip(pars, flags):
            par.training = flag


def fixed_scale(module: nn.Module, local: str) -> str | None:
    """What fixes the scale of ``module.<local>`` whatever its stored tensors hold (a spectral
    norm, either API; torch's orthogonal parametrization), or None."""
    if any(h.name == local and h.kind == "spectral_norm" for h in hooked_of(module).values()):
        return "spectral norm"
    plists = getattr(module, "parametrizations", None)
    names = {type(par).__name__ for par in plists[local]} \
        if plists is not None and local in plists else set()
    return "spectral norm" if "_SpectralNorm" in names else \
        "orthogonal parametrization" if "_Orthogonal" in names else None
