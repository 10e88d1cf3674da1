"""Expert banks in the doctor: one row per expert and projection.

transformers (v5) stores a mixture-of-experts layer's experts stacked in one module, an *expert
bank* (:func:`initlab.modelinit.experts.expert_count`: Mixtral's ``gate_up_proj`` (E, 2I, H) and
``down_proj`` (E, H, I)). Its forward multiplies the stacked parameter directly, so no layer
module is called and a forward hook sees nothing: by default one ``torch._grouped_mm`` over the
tokens sorted by expert (``offs`` marks each expert's rows), or, with
``experts_implementation="eager"``, one expert at a time, ``F.linear(x, gate_up_proj[e])`` or
``x @ gate_up_proj[e]`` (GPT-OSS, stored (in, out)); Llama 4 one ``torch.bmm`` over all
experts. :class:`ExpertRecorder` is a
``TorchFunctionMode`` that acts only while a bank's forward runs: a call whose weight is the
bank's parameter (the same storage: the parameter, its transpose, or one expert's slice) is
split into one layer call per expert, named ``<bank>.<parameter>[e]``, with that expert's
matrix as the layer's weight (as (out, in)) and the bank's bias slice, if any. The doctor's
statistics then treat it as any layer: the weighted input z, the activation, dL/dz,
``|dL/dW| / |W|`` from the slice of the parameter's gradient, symmetric units.

The activation of a gated input projection (``act(gate) * up``) is measured on its gate half
(the first half, or every other column for an interleaved bank, ``is_concatenated=False``), or,
in the eager path, on what the bank's activation module receives. Only the experts the batch
routes tokens to run, so only they have rows. The output projection's row is the expert's
output before the router's weight and the sum over experts. For a bank with biases the weighted
input is measured before the bias is added (at init biases are 0). A bank that multiplies
every token by every expert with one ``torch.bmm`` (Llama 4, whose tokens not routed to an
expert reach it scaled to zero) is split along its expert axis, and an expert's rows whose
input is all zero (the tokens not routed to it) are left out of its statistics.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
from torch.overrides import TorchFunctionMode

#: functions that multiply by an expert's matrix: how the call reads its weight argument
_FUNCS = {"linear": "out_in", "matmul": "in_out", "__matmul__": "in_out",
          "_grouped_mm": "grouped", "grouped_mm": "grouped", "bmm": "batched"}


class ExpertWeight:
    """One expert's projection as a layer the doctor's statistics read: ``weight`` (out, in)
    and ``bias`` views of the bank's parameters."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None):
        self.weight, self.bias = weight, bias


def _same_storage(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


class _Bank:
    def __init__(self, name: str, module: nn.Module, info: Any, gate_info: Any):
        self.name, self.module, self.info, self.gate_info = name, module, info, gate_info
        self.params = {local: p for local, p in module._parameters.items()
                       if p is not None and p.dim() == 3}
        #: (parameter, expert): (its view as a layer, stored (in, out))
        self.experts: dict[tuple[str, int], tuple[ExpertWeight, bool]] = {}

    def slice_of(self, w: Any) -> tuple[str, int] | None:
        """``(parameter, expert)`` when ``w`` is one expert's matrix ``p[e]`` of this bank."""
        if not isinstance(w, torch.Tensor) or w.dim() != 2:
            return None
        for local, p in self.params.items():
            if not _same_storage(w, p) or tuple(w.shape) != tuple(p.shape[1:]) or \
                    w.stride() != p.stride()[1:]:
                continue
            e, r = divmod(int(w.storage_offset() - p.storage_offset()), int(p.stride(0)))
            if r == 0 and 0 <= e < p.shape[0]:
                return local, e
        return None

    def whole(self, w: Any) -> tuple[str, bool] | None:
        """``(parameter, stored (in, out))`` when ``w``, read as (E, in, out), is a whole
        parameter of this bank: the parameter itself (stored (in, out)) or its transpose."""
        if not isinstance(w, torch.Tensor) or w.dim() != 3:
            return None
        for local, p in self.params.items():
            if not _same_storage(w, p) or w.storage_offset() != p.storage_offset():
                continue
            if tuple(w.shape) == tuple(p.shape) and w.stride() == p.stride():
                return local, True
            s0, s1, s2 = p.stride()
            if tuple(w.shape) == (p.shape[0], p.shape[2], p.shape[1]) and \
                    w.stride() == (s0, s2, s1):
                return local, False
        return None

    def expert(self, local: str, e: int, in_out: bool) -> ExpertWeight:
        key = (local, e)
        if key not in self.experts:
            p = self.params[local]
            b = self.module._parameters.get(f"{local}_bias")
            w = p[e].t() if in_out else p[e]
            self.experts[key] = (ExpertWeight(w, b[e] if b is not None else None), in_out)
        return self.experts[key][0]

    def gate_half(self, z: torch.Tensor) -> torch.Tensor:
        """The columns of a gated input projection's output that the activation reads."""
        if not getattr(self.module, "has_gate", True):
            return z
        if getattr(self.module, "is_concatenated", True) is False:
            return z[..., ::2]
        return z[..., : z.shape[-1] // 2]


class ExpertRecorder(TorchFunctionMode):
    """Records every expert's projections as layer calls of the doctor's recorder ``rec``
    (see the module docs). ``desc`` is the model's description (its bank entries give the
    output projections their place: residual branch, no activation after)."""

    def __init__(self, hooks, rec, desc: Any = None):
        super().__init__()
        self.rec = rec
        self.banks: list[_Bank] = []
        self._active: list[_Bank] = []
        self._hooks = hooks
        self._desc = {layer.name: layer for layer in desc.layers} if desc is not None else {}

    def attach(self, name: str, module: nn.Module) -> None:
        """Follow the bank ``module`` (named ``name``) through its forward."""
        from dataclasses import replace

        from ..modelinit.experts import expert_activation

        info = self._desc.get(name)
        gate = None
        if info is not None:
            act, why = expert_activation(module)
            gate = replace(info, activation=act, activation_why=why, residual_branch=None,
                           is_readout=False)
        bank = _Bank(name, module, info, gate)
        self.banks.append(bank)

        def enter(module, args):
            self._active.append(bank)

        def leave(module, args, output):   # returns None: the output is left as it is
            if self._active:
                self._active.pop()

        self._hooks.register(module, enter, "forward_pre")
        self._hooks.register(module, leave)

    def measured(self) -> set[str]:
        """Names of the banks that had at least one expert recorded."""
        return {b.name for b in self.banks if b.experts}

    def add_grads(self, grads: dict[int, torch.Tensor | None]) -> None:
        """Put each recorded expert's slice of its parameters' gradients into ``grads`` (keyed
        by the slice's id, as the doctor's statistics look them up)."""
        for bank in self.banks:
            for (local, e), (ew, in_out) in bank.experts.items():
                g = grads.get(id(bank.params[local]))
                if g is not None:
                    grads[id(ew.weight)] = g[e].t() if in_out else g[e]
                b = bank.module._parameters.get(f"{local}_bias")
                gb = grads.get(id(b)) if b is not None else None
                if gb is not None and ew.bias is not None:
                    grads[id(ew.bias)] = gb[e]

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        how = _FUNCS.get(getattr(func, "__name__", ""))
        if not self._active or how is None or len(args) < 2 or \
                not isinstance(out, torch.Tensor) or not isinstance(args[0], torch.Tensor):
            return out
        bank = self._active[-1]
        if how == "grouped":
            found = bank.whole(args[1])
            offs = kwargs.get("offs", args[2] if len(args) > 2 else None)
            if found is None or not isinstance(offs, torch.Tensor):
                return out
            local, in_out = found
            ends = [int(v) for v in offs.tolist()]
            for e, (lo, hi) in enumerate(zip([0] + ends[:-1], ends)):
                if hi > lo:
                    self._record(bank, local, e, in_out, args[0][lo:hi], out[lo:hi],
                                 (out, slice(lo, hi)), batched=True)
        elif how == "batched":
            found = bank.whole(args[1])
            x = args[0]
            if found is None or x.dim() != 3 or x.shape[0] != out.shape[0]:
                return out
            local, in_out = found
            with torch.no_grad():
                routed = x.detach().abs().amax(dim=-1) > 0     # (E, tokens)
            for e in range(x.shape[0]):
                keep = routed[e]
                if bool(keep.any()):
                    self._record(bank, local, e, in_out, x[e][keep], out[e][keep],
                                 (out, (e, keep)), batched=True)
        else:
            part = bank.slice_of(args[1])
            if part is not None:
                self._record(bank, part[0], part[1], how == "in_out", args[0], out, None,
                             batched=False)
        return out

    def _record(self, bank: _Bank, local: str, e: int, in_out: bool, x, z, rows,
                batched: bool) -> None:
        from ..modelinit.experts import expert_part

        gated = expert_part(local) == "in"
        info = bank.gate_info if gated else bank.info
        call = self.rec.expert_call(f"{bank.name}.{local}[{e}]", bank.expert(local, e, in_out),
                                    x, z, info, rows)
        if call is None:
            return
        if batched or not gated:   # one activation call for all experts: not this row's
            call.claimable = False
        if batched and gated:
            self.rec.gate_stats(call, bank.gate_half(z), info)
