"""Attention softmaxes during the doctor's forward: how peaked each is at initialization.

Attention whose logits q.k/sqrt(d) spread widely puts nearly all of each query's weight on one
key: the softmax is saturated, every entry of its Jacobian diag(p) - p p^T is near zero, and
the query and key projections get almost no gradient ("attention entropy collapse"; Zhai et al.
2023, "Stabilizing Transformer Training by Preventing Attention Entropy Collapse"). Large
query/key weights cause it at init: N(0, 1) weights over a width-d normalized input give
logits of std ~d / sqrt(d_head).

A ``TorchFunctionMode`` sees the two ways models compute attention in Python:

* ``softmax`` over the last dimension of a tensor of rank 3 or more (eager attention: Hugging
  Face's ``eager`` implementations, most hand-written blocks). The softmax's input is the
  scores; an entry at or below half the dtype's lowest value (an additive mask) or -inf does not
  take part.
* ``F.scaled_dot_product_attention``: the scores q k^T * scale are recomputed from its query and
  key with its ``attn_mask`` (bool: True takes part; float: added), ``is_causal`` (top-left
  aligned lower triangle, as torch's) and ``enable_gqa``.

A query row that may attend to fewer than two keys (a causal first row) has no choice to make and
is left out. Not seen: attention inside one fused call that the mode sees whole
(``nn.MultiheadAttention``, whose softmax runs inside ``F.multi_head_attention_forward``); the
doctor's notes say so when the model has such modules.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from . import stats as S

_ROW_CHUNK = 1 << 22  # score entries per chunk of rows (float32: 16 MB)


def p_saturated(slope: float) -> float:
    """The largest weight above which a softmax row counts as saturated: where p(1 - p), the
    softmax's own slope dp/dz, falls below ``slope`` times its peak 1/4 (p = 1/2). Every other
    entry of the row then has p_j(1 - p_j) < 1 - p as well. 0.987 at the doctor's 5%."""
    return 0.5 * (1.0 + math.sqrt(1.0 - slope))


class AttentionRecorder(TorchFunctionMode):
    """Records :class:`~initlab.diagnostics.stats.AttentionStats` per attention softmax (see the
    module docs). Forward pre/post hooks on every module name the innermost one running."""

    def __init__(self, hooks, model: nn.Module, slope: float):
        super().__init__()
        self.p_sat = p_saturated(slope)
        self.calls: list[S.AttentionStats] = []
        self._stack: list[str] = []
        seen: set[int] = set()
        for name, m in model.named_modules():
            if id(m) in seen:
                continue
            seen.add(id(m))
            hooks.register(m, self._enter(name or type(m).__name__), "forward_pre")
            hooks.register(m, self._leave())

    def _enter(self, name: str):
        def hook(module, inputs):
            self._stack.append(name)
        return hook

    def _leave(self):
        def hook(module, inputs, output):
            if self._stack:
                self._stack.pop()
        return hook

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = getattr(func, "__name__", "")
        try:
            if name == "softmax":
                self._softmax(args, kwargs, out)
            elif name == "scaled_dot_product_attention":
                self._sdpa(args, kwargs)
        except (RuntimeError, ValueError, TypeError, IndexError):
            pass  # an unusual call signature is not attention we can read: never break the model
        return out

    # ------------------------------------------------------------------ the two sources
    def _softmax(self, args, kwargs, out) -> None:
        x = args[0] if args else kwargs.get("input")
        dim = args[1] if len(args) > 1 else kwargs.get("dim")
        if not (isinstance(x, torch.Tensor) and isinstance(out, torch.Tensor)
                and x.is_floating_point() and x.dim() >= 3 and isinstance(dim, int)
                and dim in (-1, x.dim() - 1) and x.shape[-1] >= 2):
            return
        with torch.no_grad():
            scores = x.detach()
            allowed = scores > torch.finfo(scores.dtype).min / 2  # -inf, NaN, additive masks out
            self._record("softmax", list(x.shape), scores.reshape(-1, x.shape[-1]),
                         allowed.reshape(-1, x.shape[-1]),
                         out.detach().reshape(-1, x.shape[-1]))

    def _sdpa(self, args, kwargs) -> None:
        names = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale",
                 "enable_gqa")
        a = dict(zip(names, args))
        a.update(kwargs)
        q, k = a.get("query"), a.get("key")
        if not (isinstance(q, torch.Tensor) and isinstance(k, torch.Tensor)
                and q.is_floating_point() and q.dim() >= 2):
            return
        with torch.no_grad():
            q, k = q.detach().float(), k.detach().float()
            if a.get("enable_gqa") and q.dim() >= 3 and k.shape[-3] != q.shape[-3]:
                k = k.repeat_interleave(q.shape[-3] // k.shape[-3], dim=-3)
            scale = a.get("scale")
            scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
            scores = torch.matmul(q, k.transpose(-2, -1)) * scale
            L, Sk = scores.shape[-2:]
            allowed = torch.ones_like(scores, dtype=torch.bool)
            mask = a.get("attn_mask")
            if isinstance(mask, torch.Tensor):
                mask = mask.detach()
                if mask.dtype == torch.bool:
                    allowed = allowed & mask
                else:
                    scores = scores + mask.float()
                    allowed = allowed & (scores > torch.finfo(torch.float32).min / 2)
            if a.get("is_causal"):
                allowed = allowed & torch.ones(L, Sk, dtype=torch.bool,
                                               device=scores.device).tril()
            scores, allowed = torch.broadcast_tensors(scores, allowed)
            probs = torch.softmax(scores.masked_fill(~allowed, -math.inf), dim=-1)
            self._record("sdpa", list(scores.shape), scores.reshape(-1, Sk),
                         allowed.reshape(-1, Sk), probs.reshape(-1, Sk))

    # ------------------------------------------------------------------ statistics
    def _record(self, source: str, shape: list[int], scores: torch.Tensor,
                allowed: torch.Tensor, probs: torch.Tensor) -> None:
        n_keys = scores.shape[-1]
        step = max(1, _ROW_CHUNK // max(1, n_keys))
        rows = 0
        keys = pmax = ent = var = sat = 0.0
        for i in range(0, scores.shape[0], step):
            a = allowed[i:i + step]
            cnt = a.sum(-1)
            keep = cnt >= 2
            if not bool(keep.any()):
                continue
            # per-row work in float32 (sums over one row of keys), totals in float64
            a, cnt = a[keep], cnt[keep].float()
            s = scores[i:i + step][keep].float()
            p = probs[i:i + step][keep].float().masked_fill(~a, 0.0)
            s0 = s.masked_fill(~a, 0.0)
            mean = s0.sum(-1) / cnt
            var += float((((s0 - mean[:, None]) * a).square().sum(-1) / cnt).double().sum())
            top = p.max(-1).values
            pmax += float(top.double().sum())
            sat += float((top > self.p_sat).sum())
            plogp = torch.special.xlogy(p, p)  # 0 log 0 = 0
            ent += float((-plogp.sum(-1) / cnt.log()).double().sum())
            keys += float(cnt.double().sum())
            rows += int(keep.sum())
        st = S.AttentionStats(len(self.calls), self._stack[-1] if self._stack else "",
                              source, shape, rows, p_saturated=self.p_sat)
        if rows:
            st.keys = keys / rows
            st.logit_std = S.finite(torch.tensor(var / rows).sqrt())
            st.max_prob = pmax / rows
            st.entropy = ent / rows
            st.saturated = sat / rows
        self.calls.append(st)

    def results(self) -> list[S.AttentionStats]:
        return list(self.calls)


def fused_attention_modules(model: nn.Module) -> list[str]:
    """Modules whose attention the recorder cannot see (see the module docs)."""
    return [n or type(m).__name__ for n, m in model.named_modules()
            if isinstance(m, nn.MultiheadAttention)]


def describe_call(st: S.AttentionStats) -> str:
    """``module (call i)`` for messages."""
    return f"`{st.module}` (attention call {st.index + 1})" if st.module else \
        f"attention call {st.index + 1}"


__all__ = ["AttentionRecorder", "fused_attention_modules", "p_saturated", "describe_call"]
