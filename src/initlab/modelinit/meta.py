"""Materialize a model built on the meta device: allocate, then initialize by a plan.

``with torch.device("meta"): model = Net()`` builds the module tree without allocating or
initializing anything. :func:`materialize` allocates storage with ``Module.to_empty`` (which runs
no initializer: PyTorch's default init is never executed) and then fills every parameter with
:func:`initlab.apply`. Because every parameter draws from its own stream keyed by its name, the
values equal those of ``apply(model_built_on_cpu, plan, seed=...)`` bit for bit.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
import torch.nn as nn

from ..core.validation import fail
from .walk import (
    apply,
    check_model,
    check_rng,
    check_seed,
    collect_slots,
    match,
    resolve_plan,
    running_stats_modules,
)


def materialize(model: nn.Module, plan: Any, *, device: Any = "cpu", seed: int,
                rng: str = "torch", buffers: str = "error", **plan_kwargs: Any):
    """Allocate ``model`` (built on the meta device) on ``device`` and initialize it by ``plan``.

    Every parameter must be matched by the plan (an unmatched one would hold uninitialized
    memory), so the plan is applied as strict, and it is checked on the meta model before
    anything is allocated. Buffers: norm layers' running statistics are reset; buffers that were
    already real (not meta) keep their values; any other meta buffer is an error unless
    ``buffers="zeros"`` (fill them with zeros). Returns the :class:`InitReport`.
    """
    check_model(model)
    seed = check_seed(seed)
    rng = check_rng(rng)
    if buffers not in ("error", "zeros"):
        raise fail("buffers", "must be 'error' or 'zeros'", buffers,
                   "pass buffers='zeros' to zero-fill meta buffers that no norm layer resets.")
    plan_obj = resolve_plan(model, plan, **plan_kwargs)
    plan_obj = dataclasses.replace(plan_obj, strict=True, reset_running_stats=True)
    # check the plan against every parameter before allocating anything
    assignments, problems = match(plan_obj, collect_slots(model))
    unmatched = [a.slot.name for a in assignments if a.status != "initialized"]
    if problems or unmatched:
        msg = list(problems)
        if unmatched:
            msg.append("not initialized by the plan (would hold uninitialized memory): "
                       + ", ".join(f"`{n}`" for n in unmatched))
        raise fail("plan", "must initialize every parameter of a meta model; nothing was "
                   "allocated. Problems:\n  - " + "\n  - ".join(msg), plan_obj.name or "custom",
                   "add rules for those parameters.")
    resettable = {id(b) for m in running_stats_modules(model) for b in m.buffers(recurse=False)}
    keep: dict[str, torch.Tensor] = {}
    bad: list[str] = []
    for name, b in model.named_buffers():
        if id(b) in resettable:
            continue
        if b.device.type != "meta":
            keep[name] = b.detach().clone()
        elif buffers == "error":
            bad.append(name)
    if bad:
        raise fail("buffers", "are on the meta device and nothing resets them: "
                   + ", ".join(f"`{n}`" for n in bad), "error",
                   "create those buffers on a real device in __init__, or pass "
                   "buffers='zeros' if zero is their right initial value.")
    model.to_empty(device=device)
    try:
        with torch.no_grad():
            for name, b in model.named_buffers():
                if name in keep:
                    b.copy_(keep[name])
                elif id(b) not in resettable and buffers == "zeros":
                    b.zero_()
        # no snapshot: the state before this call holds no values to restore (the plan was
        # checked above, before allocating); on a failure the model goes back to the meta device
        return apply(model, plan_obj, seed=seed, rng=rng, atomic=False)
    except BaseException:
        model.to_empty(device="meta")
        raise
