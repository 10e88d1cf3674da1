"""Canonical parameter names (the stream keys). Seeds and streams: :mod:`initlab.core.seeding`."""

from __future__ import annotations

# the hash lives with the seeds (the one derivation); re-exported for importers
from ..core.seeding import stable_u64  # noqa: F401


def canonical_param_name(name: str) -> str:
    """Strip wrappers' prefixes: DDP's leading ``module.`` (repeatedly), torch.compile's
    ``_orig_mod.`` and FSDP1/checkpoint wrappers' names anywhere in the dotted path, and
    peft's: a PeftModel's leading ``base_model.model.`` and, under it, the ``base_layer`` a
    LoRA wrapper holds (so a base weight has the stream and checkpoint key it has unwrapped).

    Idempotent: ``torch.compile(DDP(m))`` gives ``_orig_mod.module.fc.weight``, which becomes
    ``fc.weight`` like the bare model's name.
    """
    anywhere = {"_orig_mod", "_fsdp_wrapped_module", "_checkpoint_wrapped_module"}
    parts = [p for p in name.split(".") if p not in anywhere]
    while parts[:1] == ["module"] and len(parts) > 1:
        parts = parts[1:]
    if parts[:2] == ["base_model", "model"] and len(parts) > 2:
        # peft's PeftModel (`base_model.model.`) and its LoRA wrappers (`q_proj.base_layer`)
        parts = [p for p in parts[2:] if p != "base_layer"]
    return ".".join(parts)
