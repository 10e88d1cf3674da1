"""Which dimensions of each parameter are *width*: they grow with the model.

Width parametrizations (μP and its relatives, :mod:`initlab.modelinit.parametrization`) scale a
parameter's init, multiplier and learning rate by how much its width dimensions grew relative to a
**base** model, the one the hyperparameters were tuned on. As in Microsoft's ``mup``
(``set_base_shapes(model, base, delta=...)``), the width dimensions are found by comparing shapes:

* with ``base`` only: a dimension is width where the model and the base differ;
* with ``base`` and ``delta`` (the same model at a second, different base width): a dimension is
  width where the base and the delta differ (so a model *at* base width still knows its widths).

Unlike ``mup`` no extra model is instantiated in memory: a base given as a function is built under
``torch.device("meta")``, so a base of any size costs no memory. A base may also be a mapping from
parameter name to its base shape, with ``None`` marking a dimension that is not width (the user
declares the widths). Vocabulary and sequence length are not width: build the base with the same
vocabulary, or declare them ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from ..core.fans import io_axes
from ..core.validation import InitlabTypeError, error_message, fail
from .params import ParamInfo, collect_params


@dataclass(frozen=True)
class WidthDim:
    """One dimension: its size and its base size (``base=None``: not a width dimension)."""

    dim: int
    base: int | None = None

    @property
    def is_width(self) -> bool:
        return self.base is not None

    @property
    def mult(self) -> float:
        """``dim / base`` for a width dimension, 1 otherwise (mup's ``width_mult``)."""
        return self.dim / self.base if self.base else 1.0


def _shapes_of(obj: Any, what: str) -> dict[str, tuple[int | None, ...]]:
    """Canonical name -> shape for every name of every parameter (tied names too)."""
    if callable(obj) and not isinstance(obj, nn.Module):
        with torch.device("meta"):
            obj = obj()
        if not isinstance(obj, nn.Module):
            raise InitlabTypeError(error_message(
                what, "must build an nn.Module when called", type(obj).__name__,
                f"pass a function returning the model at its base width, e.g. "
                f"`{what}=lambda: make_model(width=64)`."))
    if isinstance(obj, nn.Module):
        out: dict[str, tuple[int | None, ...]] = {}
        for p in collect_params(obj):
            for n in p.names:
                out[n] = tuple(int(s) for s in p.shape)
        return out
    if isinstance(obj, Mapping):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, str) or not isinstance(v, (tuple, list, torch.Size)) or not all(
                    d is None or (isinstance(d, int) and not isinstance(d, bool) and d > 0)
                    for d in v):
                raise fail(what, "must map parameter names to shapes (tuples of positive ints, "
                           "None for a dimension that is not width)", f"{k!r}: {v!r}",
                           "pass e.g. {'0.weight': (64, 784)}.")
            out[k] = tuple(v)
        return out
    raise InitlabTypeError(error_message(
        what, "must be an nn.Module, a function building one (called on the meta device) or a "
        "mapping from parameter name to shape", type(obj).__name__,
        "pass e.g. `base=lambda: make_model(width=64)`."))


def width_shapes(model: nn.Module, base: Any, delta: Any = None) -> dict[str, tuple[WidthDim, ...]]:
    """Canonical parameter name -> its :class:`WidthDim` per dimension (every name of a tied
    tensor is a key).

    >>> import torch.nn as nn
    >>> mlp = lambda w: nn.Sequential(nn.Linear(10, w), nn.ReLU(), nn.Linear(w, 3))
    >>> ws = width_shapes(mlp(256), base=lambda: mlp(64))
    >>> [d.mult for d in ws["0.weight"]], [d.mult for d in ws["2.weight"]]
    ([4.0, 1.0], [1.0, 4.0])
    """
    target = _shapes_of(model, "model")
    base_s = _shapes_of(base, "base")
    ref = _shapes_of(delta, "delta") if delta is not None else None
    problems, wrong = [], []
    for label, other in (("base", base_s), ("delta", ref)):
        if other is None:
            continue
        missing, extra = sorted(set(target) - set(other)), sorted(set(other) - set(target))
        if missing or extra:
            wrong.append(label)
            problems.append(f"`{label}` has other parameters than the model (missing: "
                            f"{missing[:5] or '-'}, extra: {extra[:5] or '-'})")
    if problems:
        what = "`, `".join(wrong)     # rendered "`base`, `delta` must have ..."
        raise fail(what, "must have the same parameters as the model, at another width",
                   "; ".join(problems),
                   f"build the {' and the '.join(wrong)} with the same architecture and depth, "
                   "changing only the hidden sizes (width), and the same vocabulary.")
    out: dict[str, tuple[WidthDim, ...]] = {}
    for name, shape in target.items():
        bshape = base_s[name]
        if len(bshape) != len(shape):
            raise fail("base", f"must give `{name}` as many dimensions as the model's",
                       f"{tuple(bshape)} vs {tuple(shape)}", "build the same architecture.")
        dims = []
        for i, (d, b) in enumerate(zip(shape, bshape)):
            if d is None:
                raise fail("model", "must give the size of every dimension (None marks a base's "
                           "dimension that is not width)", f"{name!r}: {tuple(shape)}",
                           "pass the model itself (an nn.Module), or its full shapes.")
            if ref is not None:
                r = ref[name][i]
                width = b is not None and r is not None and r != b
            else:
                width = b is not None and b != d
            dims.append(WidthDim(int(d), int(b) if width and b is not None else None))
        out[name] = tuple(dims)
    return out


#: a matrix's class from whether its fan_in and its fan_out are width
CLASS_OF = {(True, True): "hidden", (False, True): "input", (True, False): "output",
            (False, False): "fixed"}


def classify(p: ParamInfo, dims: tuple[WidthDim, ...]) -> tuple[str, float, float]:
    """``(class, m_in, m_out)`` of one parameter from its width dimensions: ``hidden`` (width in
    and out), ``input`` (width out only), ``output`` (the readout: width in only), ``vector``
    (a 1-D width: biases, norms; a bank's per-expert biases), or ``fixed``; and the width
    multipliers of its fan_in and fan_out dimensions."""
    if p.kind == "other" and p.role != "embedding":
        # a parameter of a module initlab does not know, shaped to broadcast (RWKV's (1, 1, C)
        # token-shift mixes, a (1, C, 1, 1) channel scale): its axes of size 1 that are not
        # width are broadcast axes, not fan axes
        dims = tuple(d for d in dims if d.dim != 1 or d.is_width)
    widths = [d for d in dims if d.is_width]
    io: tuple[int, int] | None
    if p.role == "embedding" and len(dims) >= 2:
        # (num, d) table, or a free (1, n, d) token/position table: the index is its input, the
        # last dimension its output
        io = (0, len(dims) - 1)
    elif p.kind == "experts" and len(dims) >= 2:
        # a bank of E experts: dim 0 counts experts (never width), each expert a matrix
        if dims[0].is_width:
            raise fail("base", f"changes the number of experts of `{p.name}` (dim 0), which "
                       "is not a width dimension", [d.dim for d in dims], "build the base "
                       "model with the same number of experts; change only its widths.")
        mat = io_axes(p.layout, 2) if p.role in ("weight", "other") and len(dims) == 3 else None
        io = None if mat is None else (mat[0] + 1, mat[1] + 1)
        if io is None:
            # a per-expert bias (E, out): a vector per expert
            dims = dims[1:]
    elif p.role in ("weight", "other") and len(dims) >= 2:
        io = io_axes(p.layout, len(dims))
    else:
        io = None
    if io is None:
        m = widths[0].mult if widths else 1.0
        if len(widths) > 1:
            raise fail("base", f"gives `{p.name}` (a {len(dims)}-D {p.role}) more than one width "
                       "dimension", [d.dim for d in dims], "declare its base shape with None "
                       "for the dimensions that are not width.")
        return ("vector" if widths else "fixed"), 1.0, m
    i, o = io
    extra = [k for k, d in enumerate(dims) if d.is_width and k not in io]
    if extra and p.kind == "other" and len(widths) == 1:
        # a tensor of a module initlab does not know, with one width dimension that is not where
        # a matrix's fans are (Inkling's learned queries (loops, heads, d)): a vector, as mup's
        # InfShape counts it (one infinite dimension: vector-like)
        return "vector", 1.0, widths[0].mult
    if extra:
        raise fail("base", f"makes a kernel dimension of `{p.name}` a width dimension",
                   [d.dim for d in dims], "change only channel/feature sizes in the base model.")
    return CLASS_OF[dims[i].is_width, dims[o].is_width], dims[i].mult, dims[o].mult


def _free_fans(desc: Any) -> dict[str, tuple[tuple[int, int], bool]]:
    """Canonical name -> ((fan_in, fan_out), is_bias) of every free weight and free bias of a
    model description: the fans of the use the probe saw (a free bias: its layer's; a kernel's
    include its receptive field, which the width ratios cancel)."""
    free = {lay.name for lay in desc.layers if lay.kind == "free"}
    biases = {b for lay in desc.layers for b in lay.biases}
    out: dict[str, tuple[tuple[int, int], bool]] = {}
    for p in desc.params:
        names = set(p.names)
        if not names & (free | biases) or len(p.blocks) != 1 or len(p.blocks[0].fan_shape) < 2 \
                or p.fans[0] is None:     # a matrix or a conv kernel (out, in/groups, *k)
            continue
        fi, fo = p.fans[0]       # in its layout: (in, out) storage is HF Conv1D's
        for n in p.names:
            out[n] = ((int(fi), int(fo)), not names & free)
    return out


def free_widths(model: nn.Module, base: Any, delta: Any, params: list[ParamInfo],
                batch: Any = None) -> tuple[dict[str, tuple[str, float, float]], Any, Any]:
    """Width classes of the model's *free* weights and biases (a parameter that an ``einsum``,
    ``@`` or ``F.linear`` reads as a layer's weight, :mod:`~initlab.modelinit.free`): ``(classes,
    desc, base_desc)``, ``classes`` mapping every name of each to ``(class, m_in, m_out)``.

    Their stored shape does not say which dimensions are fan_in (XLNet's ``q`` is ``(d_model,
    heads, head)``, read by ``einsum("ibh,hnd->ibnd", h, q)``), so the width multipliers are the
    ratios of the fans of the same use in the model and in the base, both read by the model
    description; with ``delta``, a fan is width where the base's and the delta's differ. A free
    bias is a ``vector`` with its layer's fan_out. ``({}, None, None)`` when the model has none
    (nothing is described then)."""
    if not any(p.kind == "other" and len(p.shape) >= 2 for p in params):
        return {}, None, None
    from .describe import describe

    desc = describe(model, batch)
    fans = _free_fans(desc)
    if not fans:
        return {}, None, None
    others: list[dict[str, tuple[tuple[int, int], bool]] | None] = []
    base_desc: Any = None
    for what, other in (("base", base), ("delta", delta)):
        if other is None and what == "delta":
            others.append(None)
            continue
        if not isinstance(other, nn.Module):
            raise fail(what, "must be a model (or a function building one) when the model has "
                       "free weights, whose fans come from their use, not their shape",
                       f"a {type(other).__name__} for a model with free weights "
                       f"({', '.join(sorted(fans)[:3])})", "pass the model at its base width, "
                       f"e.g. `{what}=lambda: make_model(width=64)`.")
        d = describe(other, batch)
        if base_desc is None:
            base_desc = d
        others.append(_free_fans(d))
    base_fans, ref_fans = others
    classes: dict[str, tuple[str, float, float]] = {}
    for name, ((fi, fo), is_bias) in fans.items():
        b = base_fans.get(name) if base_fans is not None else None
        r = ref_fans.get(name) if ref_fans is not None else ((fi, fo), is_bias)
        if b is None or r is None:
            what = "base" if b is None else "delta"
            raise fail(what, f"must use `{name}` as the model does (a free "
                       f"{'bias' if is_bias else 'weight'} with fans ({fi}, {fo}))",
                       f"the {what}'s description does not find it", f"build the {what} with "
                       "the same architecture; pass batch= if it cannot be probed without one.")
        # a fan is width where the base's and the delta's differ (without a delta: the base's
        # and the model's)
        (bi, bo), (ri, ro) = b[0], r[0]
        win, wout = bi != ri, bo != ro
        m_in, m_out = fi / bi if win else 1.0, fo / bo if wout else 1.0
        classes[name] = (("vector" if wout else "fixed", 1.0, m_out) if is_bias else
                         (CLASS_OF[win, wout], m_in, m_out))
    return classes, desc, base_desc
