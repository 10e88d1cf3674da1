"""Whole-model, sharding-invariant initialization without a Plan: :func:`init_model`.

The full model-level machinery (rules by module type, packed blocks, parametrizations, the
report) is :func:`initlab.apply` with ``rng="counter"``; ``init_model`` is the small direct path
for large / sharded models: glob patterns to initializers, every parameter filled shard-locally.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn as nn

from ..core import fans as core_fans
from ..core.initializer import Initializer
from ..core.registry import get as get_initializer
from ..core.validation import InitlabError, InitlabTypeError, error_message, fail
from ..util.hashing import canonical_param_name
from .counter import COUNTER_STREAM_VERSION, check_seed, stream_key
from .sharded import counter_fill_, dtensor_layout, is_dtensor


def _as_initializer(v, pattern) -> Initializer:
    if isinstance(v, Initializer):
        return v
    if isinstance(v, str):
        return get_initializer(v)
    raise InitlabTypeError(error_message(
        f"plan[{pattern!r}]", "must be an Initializer or a registered initializer name", v,
        "pass e.g. initlab.get('normal', std=0.02) or 'zeros'."))


def _rule_for(plan, name: str, param, module) -> Initializer | None:
    if isinstance(plan, Initializer):
        return plan
    if callable(plan) and not isinstance(plan, Mapping):
        out = plan(name, param, module)
        return None if out is None else _as_initializer(out, name)
    for pattern, v in plan.items():
        if fnmatch.fnmatchcase(name, pattern):
            return _as_initializer(v, pattern)
    return None


def init_model(model: nn.Module, plan: Mapping[str, Any] | Initializer | Callable, *, seed,
               strict: bool = True, threads=None, chunk_size=None) -> dict[str, dict]:
    """Initialize every parameter of ``model`` from the counter stream; return a report.

    ``plan``: a mapping from glob patterns over canonical parameter names (``fnmatch``, ``*``
    crosses dots; first match wins, dict order) to an Initializer or a registered name; or one
    Initializer for everything; or a callable ``(name, param, module) -> Initializer | None``.
    Parameters no pattern matches are an error when ``strict`` (else left untouched). A tied
    parameter (one tensor under several names) is initialized once, under its first name.

    Each parameter ``name`` draws from its own Philox stream keyed by
    ``stable_u64(seed, canonical_param_name(name))`` (Salmon et al. 2011), element ``i`` of the
    flattened global tensor from counter position ``i``; DTensor / FSDP2 parameters fill their
    local shard only. Biases (1-D ``*.bias``) get ``role="bias"`` and the fans of their module's
    ``weight`` (global shape). Returns ``{name: {"initializer", "distribution", "seed",
    "stream_key", "stream", "global_shape", "local_shape", "offsets", "placements"}}`` so a run can
    be reproduced.

    Errors (nothing is written): parameters on the meta device (``model.to_empty(device=...)``
    first; a model mixing meta and real parameters is reported as such), two parameters whose
    canonical names coincide (they would share a stream), unmatched parameters when ``strict``.
    """
    if not isinstance(model, nn.Module):
        raise InitlabTypeError(error_message("model", "must be a torch.nn.Module",
                                             type(model).__name__, "pass the model itself."))
    seed = check_seed(seed)
    if not isinstance(plan, (Mapping, Initializer)) and not callable(plan):
        raise InitlabTypeError(error_message(
            "plan", "must be a mapping {glob: initializer}, an Initializer or a callable", plan,
            "pass e.g. {'*.bias': 'zeros', '*': initlab.get('normal', std=0.02)}."))

    entries = []
    seen: dict[str, str] = {}
    tensors: set[int] = set()
    for mname, module in model.named_modules():
        for local, p in module.named_parameters(recurse=False):
            if id(p) in tensors:  # tied: initialized once, under its first name
                continue
            tensors.add(id(p))
            full = f"{mname}.{local}" if mname else local
            canon = canonical_param_name(full)
            if canon in seen:
                raise fail("model", f"has two parameters, `{seen[canon]}` and `{full}`, with the "
                           f"same canonical name `{canon}`, so they would draw the same stream",
                           type(model).__name__, "rename one of them (wrapper prefixes such as "
                           "`module.` and `_orig_mod.` are stripped from names).")
            seen[canon] = full
            entries.append((canon, local, module, p))

    meta = [n for n, _, _, p in entries if _local_of(p).is_meta]
    if meta:
        real = len(entries) - len(meta)
        rule = (f"mixes {len(meta)} meta-device parameter(s) with {real} real one(s)" if real
                else f"has {len(meta)} parameter(s) on the meta device")
        raise fail("model", rule + " (" + ", ".join(f"`{n}`" for n in meta[:5])
                   + (", ..." if len(meta) > 5 else "") + ")", type(model).__name__,
                   "materialize every parameter first with model.to_empty(device='cpu') (after "
                   "fully_shard for FSDP2), then call init_model.")

    todo, unmatched = [], []
    for canon, local, module, p in entries:
        init = _rule_for(plan, canon, p, module)
        if init is None:
            unmatched.append(canon)
            continue
        role, fans = "weight", None
        if p.dim() == 1 and "bias" in local:
            role = "bias"
            w = getattr(module, "weight", None)
            if isinstance(w, torch.Tensor) and w.dim() >= 2:
                fans = core_fans(tuple(w.shape))
        dist = init.resolve(tuple(p.shape), fans=fans, role=role)
        todo.append((canon, p, init, dist))
    if unmatched and strict:
        raise InitlabError(error_message(
            "plan", "matches no rule for " + ", ".join(f"`{n}`" for n in unmatched[:8])
            + (", ..." if len(unmatched) > 8 else "") + " and strict=True", sorted(
                plan) if isinstance(plan, Mapping) else plan,
            "add a pattern (e.g. '*': ...) or pass strict=False to leave them untouched."))

    report: dict[str, dict] = {}
    for canon, p, init, dist in todo:
        counter_fill_(p, dist, seed=seed, name=canon, threads=threads, chunk_size=chunk_size)
        if is_dtensor(p):
            g, offs, local = dtensor_layout(p)
            placements = [str(x) for x in p.placements]
        else:
            g, offs, local, placements = tuple(p.shape), (0,) * p.dim(), p, []
        report[canon] = {
            "initializer": init.to_dict(), "distribution": dist.to_dict(), "seed": seed,
            "stream_key": f"{stream_key(seed, canon):016x}", "stream": COUNTER_STREAM_VERSION,
            "global_shape": list(g), "local_shape": list(local.shape), "offsets": list(offs),
            "placements": placements,
        }
    return report


def _local_of(p: torch.Tensor) -> torch.Tensor:
    if is_dtensor(p):
        return p._local_tensor
    return p
