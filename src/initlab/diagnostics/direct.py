"""Layers whose weights a forward reads without calling the layer.

A Mamba mixer's scan (Hugging Face's torch path and ``mamba_ssm``'s reference) runs its depthwise
``conv1d`` as ``F.conv1d(x, conv1d.weight, ...)`` and its ``dt_proj`` as
``dt_proj.weight @ x``: the layer modules exist, own their parameters and are initialized as
layers, but never run, so a forward hook on them sees nothing. :class:`DirectRecorder` is a
``TorchFunctionMode`` that records such a product as a call of the layer whose weight it reads
(the same storage and shape: the weight, a view of it of the same shape, or its transpose),
made anywhere outside the layers' own forwards (inside them, the forward hook records the call).
``F.linear``, ``F.conv1d``/``conv2d``/``conv3d`` and ``matmul``/``@`` with the weight on either
side are followed; ``W @ x`` puts the layer's units on the product's second-to-last axis, and
its statistics are taken with that axis last.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
from torch.overrides import TorchFunctionMode

_FUNCS = frozenset(("linear", "conv1d", "conv2d", "conv3d", "matmul", "__matmul__"))


class DirectRecorder(TorchFunctionMode):
    """Records products that read a weighted layer's weight outside its forward as calls of
    that layer, through the doctor's recorder ``rec`` (see the module docs). ``layers`` are
    ``(name, module)`` of the weighted layers."""

    def __init__(self, hooks, rec, layers: list[tuple[str, nn.Module]]):
        super().__init__()
        self.rec = rec
        self.inside = 0
        self.by_storage: dict[int, list[tuple[str, nn.Module]]] = {}
        for name, m in layers:
            w = getattr(m, "weight", None)
            if isinstance(w, torch.Tensor) and not w.is_meta:
                self.by_storage.setdefault(w.untyped_storage().data_ptr(), []).append((name, m))

            def enter(module, args):
                self.inside += 1

            def leave(module, args, output):   # returns None: the output is left as it is
                self.inside -= 1

            hooks.register(m, enter, "forward_pre")
            hooks.register(m, leave)

    def _layer_of(self, t: Any) -> tuple[str, nn.Module, bool] | None:
        """``(name, layer, transposed)`` when ``t`` is a layer's weight (or a same-shaped view
        of it), or, for a 2-D weight, its transpose."""
        if not isinstance(t, torch.Tensor) or t.is_meta:
            return None
        for name, m in self.by_storage.get(t.untyped_storage().data_ptr(), ()):
            w = getattr(m, "weight", None)
            if not isinstance(w, torch.Tensor) or t.storage_offset() != w.storage_offset():
                continue
            if t.shape == w.shape:
                return name, m, False
            if w.dim() == 2 and t.dim() == 2 and t.shape == w.shape[::-1] and \
                    t.stride() == w.stride()[::-1]:
                return name, m, True
        return None

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        fname = getattr(func, "__name__", "")
        if self.inside or fname not in _FUNCS or not isinstance(out, torch.Tensor) or \
                not self.by_storage:
            return out
        args = tuple(args) + tuple(kwargs[k] for k in (("input", "weight") if not args else
                                                        ("weight",) if len(args) == 1 else ())
                                   if k in kwargs)   # F.conv1d(x, weight=w) (Mamba's scan)
        if len(args) < 2:
            return out
        if fname in ("matmul", "__matmul__"):
            right = self._layer_of(args[1])
            if right is not None and right[2]:          # x @ W.T: units on the last axis
                self.rec.direct_call(right[0], right[1], args[0], out, None)
                return out
            left = self._layer_of(args[0])
            if left is not None and not left[2] and out.dim() >= 2:   # W @ x
                self.rec.direct_call(left[0], left[1], args[1].transpose(-1, -2),
                                     out.transpose(-1, -2), lambda g: g.transpose(-1, -2))
            return out
        found = self._layer_of(args[1])                 # F.linear(x, W) / F.conv*(x, W)
        if found is not None and not found[2]:
            self.rec.direct_call(found[0], found[1], args[0], out, None)
        return out
