"""RWKV-4's time-mixing and channel-mixing blocks: the one owner of which of a model's parameters
are RWKV's per-channel decays, bonuses and token-shift mixes, and what they start at.

RWKV (Peng, Alcaide, Anthony et al. 2023, "RWKV: Reinventing RNNs for the Transformer Era",
and its reference code, BlinkDL's RWKV-LM, RWKV-v4neo ``RWKV_TimeMix``/``RWKV_ChannelMix``)
replaces attention by a recurrence with one decay per channel. Besides its linear layers
(``key``, ``value``, ``receptance``, ``output``: ordinary layers, initialized by the plan), each
block holds vectors that are not layers; they start under every plan as RWKV-4 starts them,
for block l of L (``r01 = l / (L - 1)``, 0 for a single block; ``r10 = 1 - l / L``):

* ``time_decay`` (the channel's decay rate, w = -exp(time_decay)):
  ``-5 + 8 (h / (H - 1)) ** (0.7 + 1.3 r01)`` over the H channels: slow to fast decays in every
  block, faster on the whole deeper in the net;
* ``time_first`` (the current token's bonus u): log(0.3) plus the zigzag 0, 0.5, -0.5 repeated
  over the channels;
* the token-shift mixes (how much of the current token, against the previous one, each channel
  reads): ``time_mix_k = (i / C) ** r10``, ``time_mix_v = (i / C) ** r10 + 0.3 r01``,
  ``time_mix_r = (i / C) ** (0.5 r10)`` in a time-mixing block; ``time_mix_k = time_mix_r =
  (i / C) ** r10`` in a channel-mixing block.

A *time-mixing block* is a module holding ``time_decay``, ``time_first`` and the three mixes;
a *channel-mixing block* holds the key and receptance mixes without a decay. Names: Hugging
Face's ``time_mix_key``/``time_mix_value``/``time_mix_receptance`` (``RwkvSelfAttention``,
``RwkvFeedForward``) or the reference's ``time_mix_k``/``_v``/``_r``. Block l is the module's
``layer_id`` when it has one, else its position among the blocks of its kind; L is the model's
``config.num_hidden_layers`` (Hugging Face) or ``args.n_layer`` (the reference) when the module
holds it, else the number of blocks of its kind.

Where initlab deliberately differs from Hugging Face: its ``_init_weights`` (transformers 5.25)
writes ``time_first`` as ``torch.ones_like(time_first * log(0.3) + zigzag)``, all ones, where
the reference code (and its trained checkpoints' starting point) has log(0.3) + zigzag; initlab
follows the reference. RWKV-5/6/7's parameters (``time_maa_*``, ``time_faaaa``, per-head
decays) are not described: they are left to the generic rules.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any

import torch.nn as nn

#: the token-shift mixes, by role: (Hugging Face's name, the reference code's name)
MIX_NAMES = {"k": ("time_mix_key", "time_mix_k"), "v": ("time_mix_value", "time_mix_v"),
             "r": ("time_mix_receptance", "time_mix_r")}
#: the current token's bonus at init: log(0.3) plus this zigzag, repeated over the channels
FIRST_BASE = math.log(0.3)
FIRST_ZIGZAG = (0.0, 0.5, -0.5)
#: time_decay = DECAY_START + (DECAY_END - DECAY_START) t ** (DECAY_POWER + DECAY_POWER_SLOPE r01)
DECAY_START, DECAY_END, DECAY_POWER, DECAY_POWER_SLOPE = -5.0, 3.0, 0.7, 1.3
#: time_mix_v's offset per unit of r01
MIX_V_OFFSET = 0.3


@dataclass(frozen=True)
class RwkvBlock:
    """One RWKV-4 mixing block: its module name, ``kind`` ("time" or "channel"), block index
    ``layer`` of ``layers``, and the full names of its vectors by role (``decay``, ``first``,
    ``mix_k``, ``mix_v``, ``mix_r``; a channel-mixing block has ``mix_k`` and ``mix_r``)."""

    name: str
    kind: str
    layer: int
    layers: int
    params: dict[str, str] = field(default_factory=dict)

    @property
    def r01(self) -> float:
        """``l / (L - 1)``: 0 in the first block, 1 in the last (0 for a single block)."""
        return self.layer / (self.layers - 1) if self.layers > 1 else 0.0

    @property
    def r10(self) -> float:
        """``1 - l / L``: 1 in the first block, 1/L in the last."""
        return 1.0 - self.layer / self.layers

    def inits(self) -> dict[str, tuple[str, dict[str, Any], str]]:
        """``{role: (initializer name, arguments, why)}`` of this block's vectors."""
        r01, r10 = self.r01, self.r10
        where = f"RWKV-4 block {self.layer} of {self.layers}"
        out: dict[str, tuple[str, dict[str, Any], str]] = {}
        if self.kind == "time":
            p = DECAY_POWER + DECAY_POWER_SLOPE * r01
            out["decay"] = ("linspace", {"start": DECAY_START, "end": DECAY_END, "power": p},
                            f"{where}: channel decays -5 + 8 (h/(H-1))^{p:.3g} (Peng et al. 2023)")
            out["first"] = ("cycle", {"values": [FIRST_BASE + z for z in FIRST_ZIGZAG]},
                            f"{where}: current-token bonus log(0.3) + zigzag (0, 0.5, -0.5) "
                            "(Peng et al. 2023)")
        pr = 0.5 * r10 if self.kind == "time" else r10
        mixes = {"mix_k": (0.0, r10), "mix_v": (MIX_V_OFFSET * r01, r10), "mix_r": (0.0, pr)}
        for role, (offset, power) in mixes.items():
            if role not in self.params:
                continue
            out[role] = ("linspace", {"start": offset, "end": 1.0 + offset, "power": power,
                                      "endpoint": False},
                         f"{where}: token-shift mix {role[-1]} = (i/C)^{power:.3g}"
                         + (f" + {offset:.3g}" if offset else "") + " (Peng et al. 2023)")
        return out


def _mixes(module: nn.Module) -> dict[str, str]:
    own = module._parameters
    out = {}
    for role, names in MIX_NAMES.items():
        for n in names:
            if own.get(n) is not None:
                out[f"mix_{role}"] = n
                break
    return out


def block_kind(module: nn.Module) -> str | None:
    """"time" for an RWKV-4 time-mixing block, "channel" for a channel-mixing block (see the
    module docs), None for any other module."""
    own = module._parameters
    mixes = _mixes(module)
    if own.get("time_decay") is not None and own.get("time_first") is not None:
        return "time" if len(mixes) == 3 else None
    if "mix_k" in mixes and "mix_r" in mixes and "mix_v" not in mixes:
        return "channel"
    return None


def _int(v: Any) -> int | None:
    return int(v) if isinstance(v, numbers.Integral) and not isinstance(v, bool) else None


def _layer_count(module: nn.Module) -> int | None:
    for holder, attr in (("config", "num_hidden_layers"), ("args", "n_layer")):
        n = _int(getattr(getattr(module, holder, None), attr, None))
        if n is not None and n > 0:
            return n
    return None


def rwkv_blocks(model: nn.Module) -> list[RwkvBlock]:
    """The RWKV-4 mixing blocks of ``model``, in module order."""
    found: dict[str, list[tuple[str, nn.Module]]] = {"time": [], "channel": []}
    for name, m in model.named_modules():
        kind = block_kind(m)
        if kind is not None:
            found[kind].append((name, m))
    out = []
    for kind, mods in found.items():
        for pos, (name, m) in enumerate(mods):
            layers = _layer_count(m) or len(mods)
            layer = _int(getattr(m, "layer_id", None))
            if layer is None or not 0 <= layer < layers:
                layer, layers = pos, len(mods)
            p = f"{name}." if name else ""
            params = {role: p + local for role, local in _mixes(m).items()}
            if kind == "time":
                params.update(decay=p + "time_decay", first=p + "time_first")
            out.append(RwkvBlock(name, kind, layer, layers, params))
    order = {name: i for i, (name, _) in enumerate(model.named_modules())}
    return sorted(out, key=lambda b: order[b.name])
