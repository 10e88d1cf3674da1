"""``initlab.apply``: the public entry (static plans go to the engine, ``"lsuv"`` to LSUV)."""

from __future__ import annotations

from typing import Any

import torch.nn as nn

from ..core.validation import fail
from .checks import check_model, check_seed
from .engine import initialize
from .streams import check_rng


def apply(model: nn.Module, plan: Any, *, seed: int, rng: str = "torch", pretrained: Any = None,
          mapping: Any = None, batch: Any = None, strict: bool | None = None,
          atomic: bool = True, **plan_kwargs: Any):
    """Initialize ``model`` in place by ``plan``; return an :class:`~initlab.modelinit.InitReport`.

    Parameters
    ----------
    model : an ``nn.Module``.
    plan : a :class:`Plan`, the name of a built-in plan (``initlab.plans.names()``: ``"he"``,
        ``"gpt2"``, ``"fixup"``, ``"auto"``, ``"lsuv"``...) or a dict from ``Plan.to_dict()``.
        Built-in plans take options as keywords (``apply(m, "gpt2", seed=0, n_layer=12)``).
    seed : non-negative int. Each parameter (block) draws from its own ``torch.Generator`` seeded
        with ``stable_u64(seed, canonical name) % 2**63`` (see :mod:`initlab.modelinit.walk`).
    rng : random source, a key of ``RNG_BACKENDS`` (``"torch"``; ``initlab.scale`` adds
        ``"counter"``).
    pretrained : optional checkpoint (path or state dict): its tensors are loaded first (see
        :func:`~initlab.modelinit.load_pretrained`, partial loads allowed) and only the parameters it
        does not provide are initialized by the plan (transfer learning: a new head).
    mapping : key rename rules for ``pretrained``.
    batch : an example input: the model is described (probed) on it, so every plan sees its
        dataflow (residual branches, readout, activations) even when no input can be built
        from the model; data-dependent plans (``"lsuv"``, ``"auto"``) also use it.
    strict : overrides ``plan.strict`` (a parameter that no rule matches is an error).
    atomic : copy (and restore on failure) the tensors whose write can still fail after every
        check passed: parametrized weights, and everything when the random source is not trusted
        (see :mod:`initlab.modelinit.engine`); ``atomic=False`` skips even that copy.

    All or nothing, without a full-size copy: the model is described once
    (:func:`initlab.modelinit.describe.describe`: ties, layers, activations, residual branches,
    readout), the plan is matched and every rule and distribution resolved against every
    parameter (and the checkpoint against the model) before anything is written. A model on the
    meta device is an error (use :func:`initlab.materialize`). Built-in plans warn about
    parameters they leave unmatched; the report lists them.

    Rules follow Glorot & Bengio 2010 ("Understanding the difficulty of training deep feedforward
    neural networks") and He et al. 2015 ("Delving Deep into Rectifiers") for the named schemes;
    see :mod:`initlab.modelinit.plans`.
    """
    check_model(model)
    seed = check_seed(seed)
    rng = check_rng(rng)
    from .parametrization import PARAMETRIZATIONS

    if isinstance(plan, str) and plan in PARAMETRIZATIONS:
        # width parametrizations: initlab.parametrize; its InitReport carries the
        # Parametrization (report.parametrization: multipliers, param_groups, remove)
        from .parametrization import parametrize

        if pretrained is not None:
            raise fail("pretrained", f"cannot be combined with the {plan!r} parametrization",
                       "given", "load first with load_pretrained(), then parametrize.")
        if plan == "sp":
            plan_kwargs.setdefault("base", model)   # SP: no width changes anything
        if "base" not in plan_kwargs:
            raise fail("base", f"must be given for the {plan!r} parametrization", None,
                       "pass base=lambda: make_model(width=BASE_WIDTH), the model the "
                       "hyperparameters were tuned at (built on the meta device).")
        return parametrize(model, plan, seed=seed, rng=rng, batch=batch,
                           **plan_kwargs).report
    if isinstance(plan, str) and plan == "lsuv":
        from .lsuv import lsuv

        if pretrained is not None:
            raise fail("pretrained", "cannot be combined with the 'lsuv' plan", "given",
                       "load first with load_pretrained(), then call lsuv() on the layers "
                       "you want.")
        return lsuv(model, batch, seed=seed, rng=rng, **plan_kwargs).init_report
    return initialize(model, plan, seed=seed, rng=rng, pretrained=pretrained, mapping=mapping,
                      batch=batch, strict=strict, atomic=atomic, **plan_kwargs)
