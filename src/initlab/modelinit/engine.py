"""Initialize a model by a plan, on its description: check everything, then write.

``initialize`` (what :func:`initlab.apply` runs for every static plan) builds the model's
description once (:func:`~initlab.modelinit.describe.describe`, shared with the plan factories
while it runs), matches the plan, validates every rule and distribution, then writes. All or
nothing **without a full-size copy**: every check runs before the first write; the only tensors
copied are those whose write can still fail after validation (parametrized weights, whose
``right_inverse`` runs while writing, and every tensor when the random source may still fail:
an ``RngBackend`` registered without ``trusted=True``). ``atomic=False`` skips even that copy.
An interrupt or out-of-memory during the writes of a trusted source can leave the model partly
written (nothing is held to undo it, by design).
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import warnings
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import torch
import torch.nn as nn

from ..core.validation import InitlabError, InitlabTypeError, error_message, fail
from .checks import check_model, check_not_meta, check_seed
from .dataflow import kept_buffers, put_back
from .describe import ModelDescription, active, describe
from .hooked import refresh
from .matching import match
from .params import is_parametrized
from .report import InitReport, ParamRecord
from .rules import Plan
from .streams import RNG_BACKENDS, check_rng, stream_version
from .write import restore, snapshot, write


@contextlib.contextmanager
def one_thread():
    """The report's statistics run single-threaded, like the draws (torch's ``normal_`` /
    ``uniform_`` are): a reduction's parallel region costs 5-10x more than its work on a busy
    machine (measured: 1.6 s vs 0.18 s for the sums over GPT-2 small at load 10 on 2 cores)."""
    prev = torch.get_num_threads()
    if prev == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(prev)


@runtime_checkable
class _ResetsRunningStats(Protocol):
    """A module holding running statistics (BatchNorm...)."""

    def reset_running_stats(self) -> None: ...


def running_stats_modules(model: nn.Module) -> list[nn.Module]:
    """The modules whose running statistics ``reset_running_stats()`` resets (BatchNorm...)."""
    return [m for _, m in model.named_modules()
            if hasattr(m, "reset_running_stats") and getattr(m, "track_running_stats", False)]


def resolve_plan(model: nn.Module, plan: Any, **plan_kwargs: Any) -> Plan:
    from . import plans as plans_mod

    if isinstance(plan, Plan):
        if plan_kwargs:
            raise fail("plan_kwargs", "are only for built-in plans given by name",
                       sorted(plan_kwargs), "build the Plan with those options instead.")
        return plan
    if isinstance(plan, str):
        return plans_mod.get(plan, model, **plan_kwargs)
    if isinstance(plan, Mapping):
        return Plan.from_dict(plan)
    raise InitlabTypeError(error_message(
        "plan", "must be a Plan, a built-in plan name or a dict (Plan.to_dict())", plan,
        f"pass e.g. 'he' or Plan([...]); built-in plans: {', '.join(plans_mod.names())}."))


def _takes_batch(plan: Any) -> bool:
    """Whether the built-in plan named ``plan`` takes a ``batch=`` option (``auto``)."""
    from . import plans as plans_mod

    factory = plans_mod.PLANS.get(plan) if isinstance(plan, str) else None
    try:
        return factory is not None and "batch" in inspect.signature(factory).parameters
    except (TypeError, ValueError):  # pragma: no cover - a factory without a signature
        return False


def initialize(model: nn.Module, plan: Any, *, seed: int, rng: str = "torch",
               pretrained: Any = None, mapping: Any = None, batch: Any = None,
               strict: bool | None = None, atomic: bool = True,
               desc: ModelDescription | None = None, **plan_kwargs: Any) -> InitReport:
    """The body of :func:`initlab.apply` for static plans (see there). On any failure the
    parametrizations' buffers are put back as they were: a parametrization may replace one
    while it is written through (the orthogonal one's ``base``), and a spectral norm in
    training mode takes a power step on every read of its weight."""
    check_model(model)
    from torch.nn.utils import parametrize

    kept = kept_buffers([par for m in model.modules() if parametrize.is_parametrized(m)
                         for par in m.get_submodule("parametrizations").modules()]) \
        if atomic else []
    try:
        return _initialize(model, plan, seed=seed, rng=rng, pretrained=pretrained,
                           mapping=mapping, batch=batch, strict=strict, atomic=atomic,
                           desc=desc, **plan_kwargs)
    except BaseException:
        put_back(kept)
        raise


def _initialize(model: nn.Module, plan: Any, *, seed: int, rng: str, pretrained: Any,
                mapping: Any, batch: Any, strict: bool | None, atomic: bool,
                desc: ModelDescription | None, **plan_kwargs: Any) -> InitReport:
    seed = check_seed(seed)
    rng = check_rng(rng)
    check_not_meta(model)
    if desc is None:
        desc = describe(model, batch)
    with active(model, desc, batch):
        if batch is not None and _takes_batch(plan):
            plan_kwargs["batch"] = batch
        # every other plan reads the description made from the batch (its residual branches,
        # its readout) through `active`
        plan_obj = resolve_plan(model, plan, **plan_kwargs)
    if strict is not None:
        plan_obj = dataclasses.replace(plan_obj, strict=strict)
    params = desc.params

    load = None
    loaded_ids: set[int] = set()
    if pretrained is not None:
        from .pretrained import prepare_load

        load = prepare_load(model, pretrained, mapping=mapping, strict=False)
        loaded_ids = {id(t) for t in load.targets}
    todo = [p for p in params if id(p.tensor) not in loaded_ids]
    assignments, problems = match(plan_obj, todo)
    unmatched = [a.slot.name for a in assignments if a.status == "unmatched"]
    if plan_obj.strict and unmatched:
        problems.append("no rule matches " + ", ".join(f"`{n}`" for n in unmatched)
                        + " and the plan is strict")
    if problems:
        raise InitlabError(
            f"`plan` ({plan_obj.name or 'custom'}) cannot initialize this model; nothing was "
            f"changed. {len(problems)} problem(s):\n  - " + "\n  - ".join(problems)
            + "\nFix: add or reorder rules so each parameter gets an initializer that fits its "
            "shape (specific rules first), or pass strict=False.")
    from .plans import PLANS

    if unmatched and plan_obj.name in PLANS:
        warnings.warn(f"plan '{plan_obj.name}' matched no rule for {len(unmatched)} "
                      "parameter(s), left as they are: " + ", ".join(f"`{n}`" for n in unmatched)
                      + ". Add a Rule for them (plan + Plan([...])) or check the module type.",
                      UserWarning, stacklevel=3)
    used = {a.rule_index for a in assignments if a.rule_index is not None}
    unused = [i for i in range(len(plan_obj.rules)) if i not in used]
    if unused and plan_obj.warn_unused:
        warnings.warn("plan rule(s) matched no parameter: " + "; ".join(
            f"#{i} {plan_obj.rules[i].describe()}" for i in unused)
            + ". Check the glob (`*` crosses dots) or the module type.", UserWarning,
            stacklevel=3)

    norm_modules: list[_ResetsRunningStats] = []
    if plan_obj.reset_running_stats:
        loaded_buffers = set(load.buffer_ids) if load is not None else set()
        norm_modules = [m for m in running_stats_modules(model)
                        if isinstance(m, _ResetsRunningStats)  # all are: it narrows the type
                        and id(getattr(m, "running_mean", None)) not in loaded_buffers]

    # copy only what can still fail after validation
    risky: list[torch.Tensor] = []
    trusted = bool(getattr(RNG_BACKENDS[rng], "trusted", False))
    check = getattr(RNG_BACKENDS[rng], "check", None)
    for a in assignments:
        if check is not None and a.status == "initialized" and not a.slot.originals:
            check(a.slot.tensor)
        if a.status == "initialized" and (a.slot.originals or a.slot.plist is not None or
                                          a.slot.hooked
                                          or "parametrized" in " ".join(a.slot.notes)
                                          or not trusted):
            risky.extend(a.slot.write_targets())
    snap = snapshot(risky) if atomic else []
    try:
        if load is not None:
            load.commit()
        measured: dict[int, tuple[float, float]] = {}
        for a in assignments:
            if a.status == "initialized":
                moments = write(a, seed=seed, rng=rng)
                if moments is not None:
                    measured[id(a.slot.tensor)] = moments
        for a in assignments:     # a pruned or normalized weight as its forward computes it
            if a.status == "initialized" and (a.slot.hooked or a.slot.module is not None and
                                              is_parametrized(a.slot.module, a.slot.local)):
                for _, module, _ in a.slot.uses:
                    refresh(module, refit=True)
        for m in norm_modules:
            m.reset_running_stats()
    except BaseException:
        restore(snap)
        raise

    records = []
    by_tensor = {id(a.slot.tensor): a for a in assignments}
    with one_thread():
        for p in params:
            found = by_tensor.get(id(p.tensor))
            records.append(ParamRecord.build(p, found, loaded=found is None,
                                             moments=measured.get(id(p.tensor))))
    return InitReport(
        seed=seed, rng=rng, stream_version=stream_version(rng), plan=plan_obj, records=records,
        unused_rules=[(i, plan_obj.rules[i].describe()) for i in unused],
        running_stats_reset=len(norm_modules), load=load.report if load is not None else None,
        description=desc)
