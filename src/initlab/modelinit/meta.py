"""Materialize a model built on the meta device: allocate, then initialize by a plan.

``with torch.device("meta"): model = Net()`` builds the module tree without allocating or
initializing anything. :func:`materialize` allocates storage for every distinct tensor once and hands
the *same* new tensor to every module that held the meta one, so tied weights stay tied (GPT-2's
``lm_head.weight is transformer.wte.weight`` afterwards; ``Module.to_empty`` would untie them),
runs no initializer (PyTorch's default init is never executed) and fills every parameter with
the plan, on the model description built once from the meta model. Because every parameter draws from its own stream keyed by its name, the
values equal those of ``apply(model_built_on_cpu, plan, seed=...)`` bit for bit.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
import torch.nn as nn

from ..core.activations import XIELU_SCALARS
from ..core.validation import fail
from .checks import check_device, check_model, check_seed
from .describe import active, describe
from .engine import initialize, resolve_plan, running_stats_modules
from .matching import match
from .stochastic import global_rng_kept
from .streams import check_rng
from .tables import XIELU_TYPE


def _allocate(model: nn.Module, device: torch.device) -> tuple[dict[int, torch.Tensor], list]:
    """Give every distinct meta parameter/buffer one new tensor on ``device``, shared by all its
    owners. Returns ``(new tensor by old id, undo list)``."""
    new_of: dict[int, torch.Tensor] = {}
    undo: list[tuple[dict, str, torch.Tensor]] = []
    for mod in model.modules():
        for is_param in (True, False):
            table: dict[str, Any] = mod._parameters if is_param else mod._buffers
            for k, t in list(table.items()):
                if t is None:
                    continue
                if id(t) not in new_of:
                    data = torch.empty_like(t, device=device) if t.is_meta else \
                        t.detach().to(device)
                    new_of[id(t)] = nn.Parameter(data, requires_grad=t.requires_grad) \
                        if is_param else data
                undo.append((table, k, t))
                table[k] = new_of[id(t)]
    return new_of, undo


def _undo(undo: list) -> None:
    for table, k, t in reversed(undo):
        table[k] = t


def materialize(model: nn.Module, plan: Any, *, device: Any = "cpu", seed: int,
                rng: str = "torch", buffers: str = "auto", **plan_kwargs: Any):
    """Allocate ``model`` (built on the meta device) on ``device`` and initialize it by ``plan``.

    Every parameter must be matched by the plan (an unmatched one would hold uninitialized
    memory), so the plan is applied as strict, and it is checked on the meta model before
    anything is allocated. Ties are kept (one tensor per tied group, reported once with its
    aliases). Buffers: norm layers' running statistics are reset; buffers that were already real
    (not meta) keep their values; buffers a module keeps as a number too (:data:`BUFFER_ATTRS`:
    xIELU's beta and eps) are filled from it. Other meta buffers are computed values (rotary ``inv_freq``,
    BERT's ``position_ids``): with ``buffers="auto"`` (the default) a model that knows how to
    compute them, a Hugging Face model through its own ``_init_weights``, recomputes them, module
    by module, for the modules holding such buffers; each recomputed buffer is checked to be fully
    written. Where such a module also holds parameters (DeepSeek-V3's router and its
    ``e_score_correction_bias``), ``_init_weights`` draws them too: under a forked global random
    state (the user's streams are as they were), and the plan then draws them again, so their
    values are the plan's. Any other meta buffer is an error, unless ``buffers="zeros"`` (fill them
    with zeros). On any failure the model goes back to its meta tensors.
    Returns the :class:`InitReport`.
    """
    check_model(model)
    seed = check_seed(seed)
    rng = check_rng(rng)
    dev = check_device(device)
    if buffers not in ("auto", "error", "zeros"):
        raise fail("buffers", "must be 'auto', 'error' or 'zeros'", buffers,
                   "pass buffers='zeros' to zero-fill meta buffers that no norm layer resets.")
    desc = describe(model)
    with active(model, desc):
        plan_obj = resolve_plan(model, plan, **plan_kwargs)
    plan_obj = dataclasses.replace(plan_obj, strict=True, reset_running_stats=True)
    # check the plan against every parameter before allocating anything
    assignments, problems = match(plan_obj, desc.params)
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
    known = _known_buffers(model)
    recompute = _recomputable(model, resettable | set(known)) if buffers == "auto" else []
    recomputed = {id(b) for m in recompute for b in m.buffers(recurse=False)
                  if b.is_meta and id(b) not in known}
    handled = resettable | recomputed | set(known)   # every other meta buffer is an error
    bad = [name for name, b in model.named_buffers()
           if id(b) not in handled and b.is_meta and buffers != "zeros"]
    if bad:
        raise fail("buffers", "are on the meta device and nothing resets them: "
                   + ", ".join(f"`{n}`" for n in bad), "error",
                   "create those buffers on a real device in __init__, or pass "
                   "buffers='zeros' if zero is their right initial value.")
    zero_ids = {id(b) for b in model.buffers() if id(b) not in handled and b.is_meta}
    new_of, undo = _allocate(model, dev)
    try:
        with torch.no_grad():
            for old_id in zero_ids:
                new_of[old_id].zero_()
            for old_id, v in known.items():
                new_of[old_id].fill_(v)
            _recompute_buffers(model, recompute, [new_of[i] for i in recomputed])
        for p in desc.params:
            p.tensor = new_of.get(id(p.tensor), p.tensor)
            p.originals = tuple(new_of.get(id(t), t) for t in p.originals)
        # no snapshot: the state before this call holds no values to restore (the plan was
        # checked above, before allocating); on a failure the model goes back to meta
        return initialize(model, plan_obj, seed=seed, rng=rng, atomic=False, desc=desc)
    except BaseException:
        _undo(undo)
        inv = {id(v): k for k, v in new_of.items()}
        olds = {id(t): t for _, _, t in undo}
        for p in desc.params:
            orig = inv.get(id(p.tensor))
            if orig is not None:
                p.tensor = olds.get(orig, p.tensor)
        raise


#: buffers a module holds beside the number it computed them from (class name: {buffer:
#: attribute}): Hugging Face's ``XIELUActivation`` keeps ``beta`` and ``eps`` as floats too
BUFFER_ATTRS = {XIELU_TYPE: XIELU_SCALARS}


def _known_buffers(model: nn.Module) -> dict[int, float]:
    """``{id(buffer): value}`` of the meta buffers :data:`BUFFER_ATTRS` recomputes."""
    out = {}
    for m in model.modules():
        for buf, attr in BUFFER_ATTRS.get(type(m).__name__, {}).items():
            b, v = m._buffers.get(buf), getattr(m, attr, None)
            if isinstance(b, torch.Tensor) and b.is_meta and isinstance(v, (int, float)) \
                    and not isinstance(v, bool):
                out[id(b)] = float(v)
    return out


def _recomputable(model: nn.Module, resettable: set[int]) -> list[nn.Module]:
    """Modules whose meta buffers the model's own ``_init_weights`` (Hugging Face) can compute:
    those holding meta buffers that no norm reset covers."""
    init_weights = getattr(model, "_init_weights", None)
    if not callable(init_weights):
        return []
    return [m for m in model.modules()
            if any(b.is_meta and id(b) not in resettable for b in m.buffers(recurse=False))]


def _sentinel_fill(t: torch.Tensor) -> None:
    t.fill_(float("nan") if t.is_floating_point() or t.is_complex() else -1)


def _recompute_buffers(model: nn.Module, modules: list[nn.Module],
                       tensors: list[torch.Tensor]) -> None:
    """Fill ``tensors`` with a sentinel, run the model's ``_init_weights`` on ``modules``, and
    check that every element was written (else an error: the caller returns the model to
    meta)."""
    init_weights = getattr(model, "_init_weights", None)
    if not modules or not callable(init_weights):  # _recomputable gives none without it
        return
    for t in tensors:
        _sentinel_fill(t)
    # a module holding parameters gets them drawn by HF's init too (the plan redraws them):
    # from a forked global state, so the user's random streams are not advanced
    with global_rng_kept(tensors):
        for m in modules:
            init_weights(m)
    left = []
    for name, b in model.named_buffers():
        if any(b is t for t in tensors):
            unset = torch.isnan(b) if (b.is_floating_point() or b.is_complex()) else b == -1
            if bool(unset.any()):
                left.append(name)
    if left:
        raise fail("buffers", "are on the meta device and the model's _init_weights did not "
                   "compute them: " + ", ".join(f"`{n}`" for n in left), "auto",
                   "create those buffers on a real device in __init__, or pass "
                   "buffers='zeros' if zero is their right initial value.")
