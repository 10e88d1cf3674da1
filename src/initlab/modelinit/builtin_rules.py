"""The rules every built-in plan shares: norms and the one embedding rule (see
:mod:`initlab.modelinit.plans`, "Embeddings")."""

from __future__ import annotations

from typing import Any

import torch.nn as nn

from ..core.registry import get as get_init
from .describe import describe
from .params import NORM_TYPES, module_kind
from .rules import Rule


def norm_types(model: nn.Module | None) -> tuple[Any, ...]:
    """torch's norm classes plus, by class name, every norm of another class in ``model``
    (Llama's ``LlamaRMSNorm``, T5's ``T5LayerNorm``, a user's RMSNorm: see
    :func:`initlab.modelinit.params.looks_like_norm`)."""
    extra: set[str] = set()
    if model is not None:
        extra = {type(m).__name__ for m in model.modules()
                 if module_kind(m) == "norm" and not isinstance(m, NORM_TYPES)}
    return (*NORM_TYPES, *sorted(extra))


def _tied(model: nn.Module | None) -> list[str]:
    if model is None:
        return []
    return [p.name for p in describe(model).tied_embeddings()]


def embedding_rule(model: nn.Module | None, embedding: Any = "normal") -> Rule:
    """The one embedding rule of the named schemes (see the module docs, "Embeddings")."""
    if embedding != "normal":
        return Rule((nn.Embedding, nn.EmbeddingBag), weight=embedding, label="embedding",
                    why="embeddings: the plan's own rule")
    tied = _tied(model)
    if tied:
        return Rule((nn.Embedding, nn.EmbeddingBag), weight="lecun_normal", label="embedding",
                    why=f"`{tied[0]}` is tied to the readout: every embedding N(0, 1/dim) "
                        "(LeCun for the readout it also is: logits std ~1 over normalized "
                        "features; one scale for token/position/type embeddings)")
    return Rule((nn.Embedding, nn.EmbeddingBag), weight=get_init("normal", mean=0.0, std=1.0),
                label="embedding", why="embeddings: N(0, 1) as torch does")
