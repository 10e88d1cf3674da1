"""Stable hashing of names into seeds (never Python's salted ``hash()``)."""

from __future__ import annotations

import hashlib


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


def stable_u64(*items: str | int) -> int:
    """A 64-bit integer from the SHA-256 of the items (stable across processes and machines)."""
    h = hashlib.sha256()
    for it in items:
        b = str(it).encode("utf-8")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return int.from_bytes(h.digest()[:8], "little")
