"""The residual stream during the doctor's forward: its std after every residual block.

A forward hook on each layer that closes a residual branch (from the model description, so found
from the dataflow, not from names) marks that layer's output. Under a ``TorchFunctionMode`` the
mark follows the tensor through ops that keep its size (dropout, reshapes, scaling) to the first
addition with a tensor of the branch's shape that is not marked: that addition closes the branch,
``stream = shortcut + branch``. Its operands' and result's std are recorded, and a tensor hook on
the result records the per-example norm of dLoss/d(stream) in the backward pass.

``nn.MultiheadAttention`` runs its ``out_proj`` inside ``F.multi_head_attention_forward`` (no
forward hook fires on it): a branch it closes is marked on the attention module's output.
Two branches added together before the shortcut (a "parallel" block, ``x + attn(x) + mlp(x)``)
are not recorded; the report's notes say which branches were not seen.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from . import stats as S

_ADD = frozenset(("add", "__add__", "__radd__", "__iadd__", "add_"))


class StreamRecorder(TorchFunctionMode):
    """Records :class:`~initlab.diagnostics.stats.BlockStats` per residual branch (see module)."""

    def __init__(self, hooks, branches: list[tuple[int, str, nn.Module, bool]]):
        """``branches``: ``(index, closing layer name, module to hook, output is a tuple)``."""
        super().__init__()
        self.hooks = hooks
        self.marked: dict[int, tuple[int, torch.Tensor]] = {}
        self.blocks: dict[int, S.BlockStats] = {}
        self.names = {k: name for k, name, _, _ in branches}
        self._paused = False
        for k, _name, module, tupled in branches:
            hooks.register(module, self._closer_hook(k, tupled))

    def _closer_hook(self, k: int, tupled: bool):
        def hook(module, inputs, output):
            t = output[0] if tupled and isinstance(output, (tuple, list)) and output else output
            if isinstance(t, torch.Tensor) and t.is_floating_point() and k not in self.blocks:
                self.marked[id(t)] = (k, t)
        return hook

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """The doctor's own hooks run their statistics outside the mode's bookkeeping."""
        was, self._paused = self._paused, True
        try:
            yield
        finally:
            self._paused = was

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if self._paused or not self.marked or not isinstance(out, torch.Tensor):
            return out
        tensors = [a for a in args if isinstance(a, torch.Tensor)]
        hits = [(a, self.marked[id(a)][0]) for a in tensors
                if id(a) in self.marked and self.marked[id(a)][1] is a]
        if not hits:
            return out
        branch, k = hits[0]
        name = getattr(func, "__name__", "")
        others = [a for a in tensors if a is not branch]
        if name in _ADD and others:
            other = others[0]
            if len(hits) == 1 and k not in self.blocks and other.shape == out.shape:
                self._record(k, other, branch, out)
            return out
        if out.numel() == branch.numel() and out.is_floating_point():
            self.marked[id(out)] = (k, out)  # still the branch's output (dropout, view, scale)
        return out

    def _record(self, k: int, shortcut: torch.Tensor, branch: torch.Tensor,
                out: torch.Tensor) -> None:
        # (inside __torch_function__ the mode is off: these ops are not recorded)
        b = S.BlockStats(k, self.names.get(k, ""), _std(shortcut), _std(branch), _std(out))
        self.blocks[k] = b
        if out.requires_grad:
            def on_grad(g, b=b):
                sq = g.detach().double().square()
                examples = sq.shape[0] if sq.dim() > 0 else 1
                b.stream_grad_norm = S.finite((sq.sum() / examples).sqrt())
            self.hooks.adopt(out.register_hook(on_grad))

    def clear(self) -> None:
        self.marked.clear()

    def results(self) -> list[S.BlockStats]:
        return [self.blocks[k] for k in sorted(self.blocks)]


def _std(t: torch.Tensor) -> float | None:
    return S.finite(t.detach().double().std(unbiased=False)) if t.numel() > 1 else None


def closers(model: nn.Module, desc: Any) -> list[tuple[int, str, nn.Module, bool]]:
    """``(branch index, closing layer, module to hook, output is a tuple)`` per residual branch
    of a model description."""
    mods = dict(model.named_modules())
    out: list[tuple[int, str, nn.Module, bool]] = []
    layers = {layer.name: layer for layer in getattr(desc, "layers", [])}
    for b in getattr(desc, "residual_branches", []) or []:
        name = b.closing
        if name in layers and layers[name].kind == "free":
            # a user's linear layer: hooked as its module (the product is its whole forward)
            own = layers[name].module_name
            if own is not None and own in mods:
                out.append((b.index, name, mods[own], False))
            continue
        parent_name, _, leaf = name.rpartition(".")
        parent = mods.get(parent_name) if leaf == "out_proj" else None
        if isinstance(parent, nn.MultiheadAttention):
            out.append((b.index, name, parent, True))
        elif name in mods:
            out.append((b.index, name, mods[name], False))
    return out
