"""Writing the draws: the only code that changes a model's tensors (after every check passed)."""

from __future__ import annotations

from typing import Any

import torch

from ..core.initializer import Initializer
from .matching import Assignment
from .streams import RNG_BACKENDS


def _snapshot(tensors: list[torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    with torch.no_grad():
        return [(t, t.detach().clone()) for t in tensors if t.device.type != "meta"]


def _restore(snap: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
    with torch.no_grad():
        for t, saved in snap:
            t.copy_(saved)


snapshot, restore = _snapshot, _restore


def write(a: Assignment, *, seed: int, rng: str) -> tuple[float, float] | None:
    """Draw ``a``'s initializer into its tensor (block by block, each from its own stream).

    Returns ``(mean, std)`` of the written values when the random source measured them while
    drawing (one block, no scale, nothing written after the draw), else None: the report then
    measures the tensor itself."""
    p, rule = a.slot, a.rule
    assert rule is not None and a.inits and all(isinstance(i, Initializer) for i in a.inits), \
        "write takes an initialized assignment: match gave it a rule and its initializers"
    with torch.no_grad():
        if p.originals:
            target = torch.empty(p.shape, dtype=p.originals[-1].dtype,
                                 device=p.originals[-1].device)
        else:
            target = p.tensor
        backend = RNG_BACKENDS[rng]
        pad = getattr(p.module, "padding_idx", None) \
            if p.kind == "embedding" and p.local == "weight" else None
        sink: list | None = [] if (backend.measures and len(a.blocks) == 1 and not p.originals
                                   and not a.blocks[0].single
                                   and rule.scale == 1.0 and pad is None
                                   and target.numel() > 0) else None
        if sink is not None:
            backend.fill(target, a.inits[0], seed=seed, key=a.keys[0], fans=a.fans[0],
                         role=p.fan_role, layout=a.layout, sink=sink)
            return sink[0] if sink else None
        for b, fans, key, binit in zip(a.blocks, a.fans, a.keys, a.inits):
            if len(a.blocks) > 1 and backend.fill_rows is not None:
                if b.stop > b.start:
                    backend.fill_rows(target, binit, rows=(b.start, b.stop), seed=seed, key=key,
                                      fans=fans, role=p.fan_role, layout=a.layout,
                                      single=b.single)
                continue
            view = b.view(target, len(a.blocks))
            if view.numel() == 0:
                continue
            backend.fill(view, binit, seed=seed, key=key, fans=fans, role=p.fan_role,
                         layout=a.layout)
        if rule.scale != 1.0:
            target.mul_(rule.scale)
        if pad is not None:
            target[pad].fill_(0)
            if "padding_idx row zeroed (as torch)" not in p.notes:
                p.notes.append("padding_idx row zeroed (as torch)")
        if p.originals:
            from .report import _tensor_moments

            drawn = _tensor_moments(target)   # the draw's (a spectral norm divides it later)
            store(p, target)
            return None if drawn[0] is None else drawn  # type: ignore[return-value]
    return None


def store(p: Any, value: torch.Tensor) -> None:
    """Make ``value`` the weight the parameter ``p`` computes: copied into its tensor, or, for a
    weight drawn through its parametrization (``p.originals``), mapped through each
    ``right_inverse`` in reverse order (weight norm: g and v; torch's orthogonal
    parametrization: its base) and copied into the stored tensors, as assigning
    ``module.weight = value`` does in ``torch.nn.utils.parametrize``."""
    with torch.no_grad():
        if not p.originals:
            p.tensor.copy_(value)
            return
        out: Any = value
        for par in reversed(p.plist):
            out = par.right_inverse(out)
        for orig, v in zip(p.originals, (out,) if isinstance(out, torch.Tensor) else out):
            orig.copy_(v)
