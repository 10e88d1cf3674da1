"""Canonical parameter names (the stream keys). Seeds and streams: :mod:`initlab.core.seeding`."""

from __future__ import annotations

# the hash lives with the seeds (the one derivation); re-exported for importers
from ..core.seeding import stable_u64  # noqa: F401


def canonical_param_name(name: str) -> str:
    """Strip wrappers' prefixes: DDP's leading ``module.`` (repeatedly), and torch.compile's
    ``_orig_mod.`` and FSDP1/checkpoint wrappers' names anywhere in the dotted path.

    Idempotent: ``torch.compile(DDP(m))`` gives ``_orig_mod.module.fc.weight``, which becomes
    ``fc.weight`` like the bare model's name.
    """
    anywhere = {"_orig_mod", "_fsdp_wrapped_module", "_checkpoint_wrapped_module"}
    parts = [p for p in name.split(".") if p not in anywhere]
    while parts[:1] == ["module"] and len(parts) > 1:
        parts = parts[1:]
    return ".".join(parts)
