"""LoRA adapters (Hu et al. 2022, "LoRA: Low-Rank Adaptation of Large Language Models"), as
Hugging Face ``peft`` builds them: the adapted layer is wrapped, the wrapper holding it as
``base_layer`` and, per adapter name, a down projection ``lora_A[name]`` (r x fan_in) and an up
projection ``lora_B[name]`` (out x r); it computes ``base_layer(x) + lora_B(lora_A(x)) *
scaling`` (scaling alpha / r, or alpha / sqrt(r) with rsLoRA). An embedding's adapter is a pair
of tensors, ``lora_embedding_A[name]`` (r x vocabulary) and ``lora_embedding_B[name]`` (dim x r).

The update starts at zero, so the adapted model is the base model at init (the paper, section
4.1: "random Gaussian initialization for A and zero for B"):

* A as the reference code draws it: ``kaiming_uniform(a=sqrt(5))``, U(+-1/sqrt(fan_in))
  (loralib; peft's ``init_lora_weights=True``), or N(0, 1/r^2) (peft's ``"gaussian"``); B = 0
  (and B's bias, ``lora_bias=True``);
* an embedding's A = 0 and B ~ N(0, 1) (loralib's and peft's order for embeddings).

Adapters initialized from the base weight or from data (peft's PiSSA, OLoRA, LoftQ, CorDA,
EVA's A...) and DoRA's magnitude (the base weight's norms) are what peft computed: kept, with
the base weight they were computed from. The wrapper is one layer of the description: the
dataflow sees its output as the base layer's (:func:`lora_base`), so a LoRA on ``o_proj``
does not make the adapter's addition a residual branch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch.nn as nn

from ..core.registry import get as get_init
from ..util.hashing import canonical_param_name
from .rules import Rule

__all__ = ["LoraAdapter", "lora_adapters", "lora_base", "lora_part", "lora_rules"]

#: peft's ``init_lora_weights`` values that initlab draws (the others are computed from the
#: base weight or from data)
DRAWN = {True: "kaiming", "gaussian": "gaussian", "eva": "eva"}


@dataclass
class LoraAdapter:
    """One adapter of one wrapped layer: the wrapper's name, the adapter's name, its rank and
    peft's ``init_lora_weights``, and the canonical names of its A, B (and B's bias) and of
    the base layer's parameters."""

    wrapper: str
    adapter: str
    r: int
    init: Any
    a: str
    b: str
    b_bias: str | None
    base: tuple[str, ...]
    embedding: bool
    dora: bool

    @property
    def b_params(self) -> tuple[str, ...]:
        """B's weight, and its bias when it has one (``lora_bias=True``)."""
        return (self.b, self.b_bias) if self.b_bias else (self.b,)


def lora_base(module: nn.Module) -> str | None:
    """``"base_layer"`` when ``module`` is a LoRA wrapper (peft's ``LoraLayer``: a
    ``base_layer`` module beside ``lora_A``/``lora_B`` module dicts and the ranks ``r``), else
    None. Read by structure: peft need not be importable."""
    if isinstance(getattr(module, "base_layer", None), nn.Module) and \
            isinstance(getattr(module, "lora_A", None), nn.ModuleDict) and \
            isinstance(getattr(module, "lora_B", None), nn.ModuleDict) and \
            isinstance(getattr(module, "r", None), dict):
        return "base_layer"
    return None


def lora_part(model: nn.Module, name: str) -> tuple[str, str] | None:
    """``("A" | "B", base layer's name)`` when the layer module ``name`` is a LoRA wrapper's
    ``lora_A.<adapter>`` or ``lora_B.<adapter>``, else None."""
    parts = name.split(".")
    if len(parts) < 3 or parts[-2] not in ("lora_A", "lora_B"):
        return None
    wrapper = ".".join(parts[:-2])
    try:
        m = model.get_submodule(wrapper)
    except AttributeError:
        return None
    base = lora_base(m)
    if base is None:
        return None
    return parts[-2][-1], f"{wrapper}.{base}" if wrapper else base


def _configs(model: nn.Module) -> dict[str, Any]:
    """``{adapter: init_lora_weights}`` from the model's peft config (a PeftModel's or its
    LoraModel's ``peft_config``); an adapter without one is peft's default (True)."""
    cfg = getattr(model, "peft_config", None)
    if not isinstance(cfg, dict):
        return {}
    return {k: getattr(c, "init_lora_weights", True) for k, c in cfg.items()}


def lora_adapters(model: nn.Module) -> list[LoraAdapter]:
    """Every adapter of every LoRA wrapper in ``model``, in module order."""
    inits = _configs(model)
    out = []
    for mname, m in model.named_modules():
        if lora_base(m) is None:
            continue
        pre = f"{mname}." if mname else ""
        base = tuple(canonical_param_name(f"{pre}base_layer.{n}")
                     for n, _ in m.base_layer.named_parameters())
        dora = getattr(m, "lora_magnitude_vector", None)
        names = [*m.lora_A.keys(), *getattr(m, "lora_embedding_A", {}).keys()]
        for ad in names:
            emb = ad not in m.lora_A
            if emb:
                a, b, bias = f"{pre}lora_embedding_A.{ad}", f"{pre}lora_embedding_B.{ad}", None
            else:
                a, b = f"{pre}lora_A.{ad}.weight", f"{pre}lora_B.{ad}.weight"
                bias = f"{pre}lora_B.{ad}.bias" if getattr(m.lora_B[ad], "bias", None) \
                    is not None else None
            out.append(LoraAdapter(
                mname, ad, int(m.r[ad]), inits.get(ad, True), canonical_param_name(a),
                canonical_param_name(b), canonical_param_name(bias) if bias else None, base,
                emb, isinstance(dora, nn.ModuleDict) and ad in dora))
    return out


def lora_rules(model: nn.Module | None) -> list[Rule]:
    """The rules every plan puts first on a model with LoRA adapters (see the module docs):
    B = 0 and A drawn as peft's config says, so the adapted model starts as its base; an
    adapter computed from the base weight or data, and DoRA's, kept with the base weight."""
    if model is None:
        return []
    rules = []
    for ad in lora_adapters(model):
        where = f"LoRA adapter `{ad.adapter}` of `{ad.wrapper}` (r={ad.r})"
        kind = DRAWN.get(ad.init) if isinstance(ad.init, (bool, str)) else None
        if ad.dora or kind is None:
            why = ("DoRA: its magnitude is the base weight's norm, computed by peft" if ad.dora
                   else f"init_lora_weights={ad.init!r}: computed by peft from the base "
                   "weight or from data")
            dora = [canonical_param_name(f"{ad.wrapper}.lora_magnitude_vector.{ad.adapter}"
                                         ".weight")] if ad.dora else []
            for n in (ad.a, *ad.b_params, *ad.base, *dora):
                rules.append(Rule(n, "keep", label="LoRA (kept)", why=f"{where}: {why}; kept, "
                                  "with the base weight"))
            continue
        if ad.embedding:
            rules += [Rule(ad.a, "zeros", label="LoRA A", why=f"{where}, an embedding's: A = 0 "
                           "(the update B A starts at 0; loralib's and peft's order)"),
                      Rule(ad.b, "normal", label="LoRA B", why=f"{where}, an embedding's: B ~ "
                           "N(0, 1)")]
            continue
        if kind == "eva":
            rules.append(Rule(ad.a, "keep", label="LoRA A (kept)", why=f"{where}: EVA computes "
                              "A from data (peft's initialize_lora_eva_weights)"))
        elif kind == "gaussian":
            rules.append(Rule(ad.a, get_init("normal", std=1.0 / ad.r), label="LoRA A",
                              why=f"{where}: A ~ N(0, 1/r^2) (peft's init_lora_weights="
                                  "'gaussian')"))
        else:
            rules.append(Rule(ad.a, get_init("kaiming_uniform", a=math.sqrt(5)), label="LoRA A",
                              why=f"{where}: A ~ U(+-1/sqrt(fan_in)), kaiming_uniform(a=sqrt(5)) "
                                  "(loralib; peft's default)"))
        rules += [Rule(n, "zeros", label="LoRA B", why=f"{where}: B = 0, so the adapted layer "
                       "starts as its base (Hu et al. 2022)")
                  for n in ad.b_params]
    return rules
