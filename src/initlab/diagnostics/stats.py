"""Per-layer statistics as plain data, and the small functions that compute them.

Everything here takes detached tensors (copied to float64 on the CPU, so that collapsed
differences of 1e-10 are still measurable) and returns floats, ints and lists; nothing keeps a
reference to the model. The definitions (z = a layer's output, the *weighted input*; u = the
input of the activation that follows it, usually z, or z after a norm layer; h = that activation's
output; a *unit* is an output feature of a Linear or a channel of a Conv):

* ``saturated``: fraction of the entries of u where ``|f'(u)| < threshold * max|f'|`` (default 5%
  of the peak slope, i.e. learning at least 20x slower than at the origin). For sigmoid that is
  ``|u| > 4.36``, for tanh ``|u| > 2.18``. Only for bounded (sigmoid/tanh-like) activations
  (:attr:`~initlab.core.activations.Activation.saturating`). The doctor's (:func:`saturation`).
* output saturation (:func:`output_saturation`, the lab's ``frac_saturated``): fraction of the
  outputs h within ``NEAR_BOUND`` (0.01) of a bound of f's range
  (:attr:`~initlab.core.activations.Activation.bounds`), where Glorot & Bengio 2010 (Fig. 2) see
  saturation in their plots of activation values. For tanh that is ``|h| > 0.99``, i.e.
  ``|u| > 2.65`` and ``|f'| < 2.0%`` of the peak; for sigmoid ``h < 0.01`` or ``h > 0.99``, i.e.
  ``|u| > 4.60`` and ``|f'| < 3.96%`` of the peak. Every bounded activation gets a number (relu6's
  includes its zeros, the dead half the doctor counts per unit); None for unbounded ones.
* ``dead``: fraction of units with ``f'(u) = 0`` for every example (and every position) of the
  batch: no gradient reaches their weights. Only for ReLU-like activations.
* ``spread``: the part of the second moment that varies from input to input,
  ``mean_j Var_batch(x_j) / mean(x^2)`` over the flattened features j of the examples. It is 1 for
  zero-mean inputs and 0 when every input gives the same output. For B >> 1 it equals
  ``1 - c`` where ``c`` is the mean-field correlation between examples below.
* ``example_corr``: mean over pairs a != b of the cosine between example outputs,
  ``c_ab = <x_a, x_b> / (|x_a| |x_b|)`` — the correlation map of Poole et al. 2016 ("Exponential
  expressivity in deep neural networks through transient chaos"), which tends to 1 in the ordered
  phase: all inputs are mapped to the same point.

Two measures of saturation, because they are not one definition: for tanh and sigmoid an output
near a bound is a slope below a threshold that differs between them (2.0% of the peak for tanh,
3.96% for sigmoid, against the doctor's 5% for both), so neither can be written as the other
without changing published numbers (README's doctor output, "86% of sigmoid units saturated",
and the lab's per-layer tables). The doctor has u; the lab records only the hidden outputs h, and
Glorot & Bengio read saturation off plots of h. Each measure has one owner, here, and both read
their facts (``bounds``, ``saturating``, ``df``) from the registry.
(:func:`initlab.theory.saturation.saturated_fraction` is a prediction, not a measure: the
probability that a normal weighted input has ``|f'(z)|`` below an absolute threshold.)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any, SupportsFloat

import numpy as np
import torch
from torch import nn

from ..core.activations import Activation, lookup_module
from ..core.activations import activation as core_activation
from ..core.validation import check_scalar
from ..modelinit.experts import is_router
from ..modelinit.hooked import hooked_of

SATURATION_THRESHOLD = 0.05  # |f'| below 5% of its peak = learning >= 20x slower than at 0
# an output within 0.01 of a bound of f's range is saturated (output_saturation): Glorot & Bengio
# 2010's tanh outputs near +-1 and sigmoid outputs near 0 and 1 (|tanh| > 0.99; sigmoid < 0.01 or
# > 0.99), in output units: 0.5% of tanh's range, 1% of sigmoid's
NEAR_BOUND = 0.01
HIST_BINS = 40


# ------------------------------------------------------------------ which module is what

def activation_of(module: nn.Module) -> tuple[str, float | None] | None:
    """``(name, param)`` of the activation a module is (the registry's
    :func:`~initlab.core.activations.lookup_module`), or None."""
    found = lookup_module(module)
    return None if found is None else (found[0].name, found[1])


def is_weighted_layer(module: nn.Module) -> bool:
    """Linear, Bilinear, Conv*/ConvTranspose*, or any other leaf module with a >= 2-D ``weight``
    parameter, except embeddings (a lookup table has no units to saturate)."""
    if isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
        return False
    if isinstance(module, (nn.Linear, nn.Bilinear, nn.modules.conv._ConvNd)):
        return True
    w = getattr(module, "weight", None)
    if is_router(module):   # a linear layer whose child may hold a routing bias (Ernie 4.5)
        return True
    return isinstance(w, torch.Tensor) and w.dim() >= 2 and weight_param(module) is not None \
        and not any(True for _ in module.children())


def weight_param(module: nn.Module) -> torch.Tensor | None:
    """The one parameter behind a layer's ``weight``: the weight itself, or ``weight_orig``
    when a torch hook computes ``weight`` from it (pruning, spectral norm: where the gradient
    lands); None for none or two (weight norm's g and v)."""
    w = getattr(module, "weight", None)
    if isinstance(w, nn.Parameter):
        return w
    hook = next((h for h in hooked_of(module).values() if h.name == "weight"), None)
    if hook is None:
        return None
    return module._parameters[hook.stored[0]] if len(hook.stored) == 1 else None


def unit_axis(module: nn.Module, info: Any = None) -> int:
    """Axis of the layer's output that indexes units: channels (1) for convs (an nn.Conv* or
    ConvTranspose*, or a layer the model description ``info`` says is a convolution: a user's
    ``F.conv2d`` layer), else the last."""
    conv = isinstance(module, nn.modules.conv._ConvNd) or getattr(info, "channel_units", False)
    return 1 if conv else -1


def unit_rows_layout(module: nn.Module, info: Any, layout: str | None) -> str | None:
    """The layout to read a layer's weight rows (:func:`weight_rows`) in: a transposed
    convolution's units are dimension 1 of its kernel whatever layout its fans are read in
    (the description reads nn.ConvTranspose's fans in torch's convention, dimension 1 as
    fan_in); else ``layout``."""
    transposed = isinstance(module, nn.modules.conv._ConvTransposeNd) or \
        getattr(info, "transposed_conv", False)
    return "torch_transposed" if transposed else layout


def is_conv(module: nn.Module, info: Any = None) -> bool:
    """Whether the layer is a convolution that delta-orthogonal kernels fit the form of (not a
    transposed one): the description's ``conv`` when there is one, else by type."""
    if info is not None:
        return getattr(info, "conv", None) is not None
    return isinstance(module, nn.modules.conv._ConvNd) and \
        not isinstance(module, nn.modules.conv._ConvTransposeNd)


def weight_layout(module: nn.Module) -> str:
    """The fan layout of a layer's weight when no model description says it: ConvTranspose
    stores ``(in, out, *k)`` (``torch_transposed``), everything else ``(out, in, *k)``."""
    return "torch_transposed" if isinstance(module, nn.modules.conv._ConvTransposeNd) else "torch"


def weight_rows(module: nn.Module, w: torch.Tensor, layout: str | None = None) -> torch.Tensor:
    """The weight as (units, inputs): one row per output unit (``torch_transposed`` weights,
    ConvTranspose's ``(in, out, *k)`` and Hugging Face Conv1D's ``(in, out)``, are transposed)."""
    if (layout or weight_layout(module)) == "torch_transposed":
        return w.transpose(0, 1).reshape(w.shape[1], -1)
    return w.reshape(w.shape[0], -1)


def layer_fans(module: nn.Module, w: torch.Tensor, layout: str | None = None) -> tuple[int, int]:
    """(fan_in, fan_out) of the layer as a map from its input to its output."""
    from ..core.fans import fans

    return fans(tuple(w.shape), layout or weight_layout(module))


@lru_cache(maxsize=64)
def _act(name: str, param: float | None) -> tuple[Activation, float]:
    """The core activation and the peak of |f'| (on a fine grid over [-10, 10])."""
    act = core_activation(name, param)
    peak = float(np.max(np.abs(act.df(np.linspace(-10.0, 10.0, 20001)))))
    return act, peak


# ------------------------------------------------------------------ tensor statistics

def snapshot(t: torch.Tensor) -> torch.Tensor:
    """A detached float64 CPU copy (never an alias: later in-place ops cannot change it)."""
    return t.detach().to(device="cpu", dtype=torch.float64, copy=True)


def finite(x: SupportsFloat | None) -> float | None:
    """``None`` for None/NaN/inf (JSON has no NaN), else the float."""
    if x is None:
        return None
    f = float(x)
    return f if math.isfinite(f) else None


def moments(x: torch.Tensor) -> dict[str, float | None]:
    """Mean, std (population, over all entries) and root mean square."""
    if x.numel() == 0:
        return {"mean": None, "std": None, "rms": None}
    return {"mean": finite(x.mean()), "std": finite(x.std(unbiased=False)),
            "rms": finite(x.square().mean().sqrt())}


def spread(x: torch.Tensor) -> float | None:
    """``mean_j Var_batch(x_j) / mean(x^2)``: the input-to-input part of the second moment."""
    if x.dim() == 0 or x.shape[0] < 2:
        return None
    flat = x.reshape(x.shape[0], -1)
    ms = float(flat.square().mean())
    if not math.isfinite(ms) or ms == 0.0:
        return None
    return finite(float(flat.var(dim=0, unbiased=False).mean()) / ms)


def example_corr(x: torch.Tensor) -> float | None:
    """Mean cosine between the flattened outputs of different examples (mean-field ``c``)."""
    if x.dim() == 0 or x.shape[0] < 2:
        return None
    flat = x.reshape(x.shape[0], -1)
    if flat.shape[1] < 2:
        return None
    norms = flat.norm(dim=1)
    keep = norms > 0
    if int(keep.sum()) < 2:
        return None
    unit = flat[keep] / norms[keep, None]
    gram = unit @ unit.T
    b = gram.shape[0]
    return finite((float(gram.sum()) - float(gram.diagonal().sum())) / (b * (b - 1)))


def by_unit(x: torch.Tensor, axis: int) -> torch.Tensor:
    """Reshape to (units, everything else), the unit axis first."""
    if x.dim() < 2:
        return x.reshape(1, -1)
    return x.movedim(axis, 0).reshape(x.shape[axis], -1)


def saturation(u: torch.Tensor, name: str, param: float | None, axis: int,
               threshold: float = SATURATION_THRESHOLD) -> tuple[float | None, float | None]:
    """``(saturated, dead)`` fractions of the activation input ``u`` (see the module docs).

    ``saturated`` is None unless the activation is bounded; ``dead`` is None unless ReLU-like.
    """
    act, peak = _act(name, param)
    if u.numel() == 0:
        return None, None
    d = np.abs(act.df(u.numpy()))
    sat = float(np.mean(d < threshold * peak)) if act.saturating else None
    dead = None
    if act.relu_like:
        per_unit = by_unit(torch.from_numpy(d), axis)
        dead = float((per_unit == 0).all(dim=1).double().mean())
    return sat, dead


def output_saturation(h, name, param: float | None = None, *,
                      margin: float = NEAR_BOUND) -> float | None:
    """Fraction of the activation outputs ``h`` within ``margin`` of a bound of the activation's
    range (``h < lo + margin`` or ``h > hi - margin``, with ``(lo, hi)`` the registry's
    :attr:`~initlab.core.activations.Activation.bounds`); see the module docs for how it relates
    to the doctor's :func:`saturation` (on the activation's input, by slope).

    ``h`` is an array (or CPU tensor) of outputs, compared in its own dtype (float32 outputs
    against float32 ``0.99``, as ``np.abs(h) > 0.99`` does); ``name`` a registry name (or an
    :class:`~initlab.core.activations.Activation`). None for an unbounded activation (relu, gelu,
    linear) or an empty ``h``.

    >>> output_saturation(np.array([-0.995, 0.5, 0.999, 0.98]), "tanh")
    0.5
    """
    bounds = core_activation(name, param).bounds
    h = np.asarray(h)
    if bounds is None or h.size == 0:
        return None
    margin = check_scalar(margin, "margin", min_val=0.0)
    lo, hi = (float(b) for b in bounds)  # Python floats: compared in h's dtype
    return float(np.mean((h < lo + margin) | (h > hi - margin)))


def apply_activation(z: torch.Tensor, name: str, param: float | None) -> torch.Tensor:
    """h = f(z) with the core (NumPy) activation, for functional activations named by the user."""
    act, _ = _act(name, param)
    return torch.from_numpy(np.asarray(act.f(z.numpy()), dtype=np.float64))


def distinct_rows(m: torch.Tensor) -> int:
    """Number of distinct rows of a 2-D tensor (exact equality).

    Rows are first grouped by their first 16 entries (identical rows always share a group), and
    only groups with several rows are compared in full: cheap for the usual all-distinct case.
    """
    n = m.shape[0]
    if n < 2:
        return n
    prefix = m[:, : min(m.shape[1], 16)]
    _, inverse, counts = torch.unique(prefix, dim=0, return_inverse=True, return_counts=True)
    total = int((counts == 1).sum())
    for group in torch.nonzero(counts > 1).flatten().tolist():
        total += int(torch.unique(m[inverse == group], dim=0).shape[0])
    return total


HIST_MAX_ENTRIES = 1 << 18  # histograms only feed plots: larger tensors are subsampled evenly


def histogram(x: torch.Tensor, bins: int = HIST_BINS) -> tuple[list[float], list[int]]:
    """(edges, counts) of the finite entries of x (every k-th entry beyond 2^18 entries); a
    constant tensor gets a bin of width 1e-6 * (1 + |x|)."""
    v = x.reshape(-1)
    if v.numel() > HIST_MAX_ENTRIES:
        v = v[:: -(-v.numel() // HIST_MAX_ENTRIES)]
    a = v.numpy()
    a = a[np.isfinite(a)]
    if a.size == 0:
        return [], []
    lo, hi = float(a.min()), float(a.max())
    if hi - lo <= 1e-12 * (1.0 + abs(lo)):
        pad = 1e-6 * (1.0 + abs(lo))
        lo, hi = lo - pad, hi + pad
    counts, edges = np.histogram(a, bins=bins, range=(lo, hi))
    return [float(e) for e in edges], [int(c) for c in counts]


def output_stats(z: torch.Tensor, axis: int, bins: int = HIST_BINS) -> dict[str, Any]:
    """Statistics of a layer's output z (float64 snapshot) that the doctor keeps."""
    mz = moments(z)
    by = by_unit(z, axis)
    return {"z_mean": mz["mean"], "z_std": mz["std"], "spread": spread(z),
            "example_corr": example_corr(z), "nonfinite": not bool(torch.isfinite(z).all()),
            "hist": histogram(z, bins), "units": (by.shape[0], distinct_rows(by))}


def activation_stats(u: torch.Tensor, h: torch.Tensor, name: str, param: float | None, axis: int,
                     threshold: float = SATURATION_THRESHOLD,
                     bins: int = HIST_BINS) -> dict[str, Any]:
    """Statistics of an activation: its input u and output h (float64 snapshots)."""
    sat, dead = saturation(u, name, param, axis, threshold)
    mh = moments(h)
    by = by_unit(h, axis)
    return {"saturated": sat, "dead": dead, "h_mean": mh["mean"], "h_std": mh["std"],
            "hist": histogram(h, bins), "units": (by.shape[0], distinct_rows(by))}


# ------------------------------------------------------------------ plain-data records

@dataclass
class LayerStats:
    """What the doctor measured for one call of one weighted layer (plain data).

    ``z`` is the layer's output (its weighted input to the next nonlinearity), ``h`` the output of
    the activation module that ran next (None if none was found). Gradients are of the probe loss.
    """

    index: int                         # 1-based position among weighted-layer calls, in run order
    name: str                          # module path, "(call k)" appended for reused modules
    kind: str                          # module class, e.g. "Linear"
    weight_shape: list[int]
    fan_in: int
    fan_out: int
    n_units: int
    activation: str | None = None      # activation that follows (registry name; None: linear;
    #                                    "unknown": not found)
    activation_module: str | None = None
    # weights and input
    weight_std: float | None = None
    weight_mean: float | None = None
    lecun_std: float | None = None     # 1/sqrt(fan_in): Var(z) = Var(x) at this scale
    bias_rms: float | None = None
    bias_mean: float | None = None
    input_rms: float | None = None     # RMS of the layer's input
    input_spread: float | None = None  # spread of the layer's input
    weights_zero: bool = False
    # forward
    z_mean: float | None = None
    z_std: float | None = None
    h_mean: float | None = None
    h_std: float | None = None
    saturated: float | None = None
    dead: float | None = None
    spread: float | None = None        # input-to-input part of the output's second moment
    example_corr: float | None = None  # mean cosine between examples' outputs
    nonfinite: bool = False
    # backward
    grad_out_rms: float | None = None  # RMS of the entries of dLoss/dz
    grad_out_norm: float | None = None  # RMS over examples of |dLoss/dz_a|: the depth rules' signal
    weight_grad_norm: float | None = None
    weight_norm: float | None = None
    grad_weight_ratio: float | None = None  # |dL/dW| / |W|
    # symmetry
    duplicate_units: int = 0           # units whose (weight row, bias) equals another unit's
    symmetric_units: int = 0           # ... whose weight-gradient row is equal as well
    unit_groups: int = 0               # distinct (weights, bias, gradient) rows
    duplicate_outputs: int = 0         # units whose outputs over the batch equal another's
    is_output: bool = False            # the model's output (readout) layer
    conv: bool = False                 # a convolution (:func:`is_conv`): channels are its units
    gated_by: str | None = None        # gated unit: its output is multiplied by that layer's act.
    on_chain: bool = True              # on the longest path of layers (the depth rules' chain)
    residual_branch: int | None = None  # index of the residual branch this layer closes
    tied_to: list[str] = field(default_factory=list)  # other names of its weight (tied)
    hist_edges: list[float] = field(default_factory=list)   # of h (or z without activation)
    hist_counts: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def signal_std(self) -> float | None:
        """The std the forward-depth rules follow: of h when an activation was found, else of z."""
        return self.h_std if self.h_std is not None else self.z_std


@dataclass
class InputStats:
    """Statistics of the probe batch (the first positional input)."""

    shape: list[int]
    mean: float | None
    std: float | None
    rms: float | None
    spread: float | None
    example_corr: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BlockStats:
    """The residual stream around one residual branch (plain data): ``stream_in_std`` of the
    shortcut operand, ``branch_std`` of what the branch adds, ``stream_std`` of the sum, and the
    RMS over examples of the per-example norm of dLoss/d(sum), ``stream_grad_norm``."""

    index: int                         # the branch's index in dataflow order (0-based)
    closing: str                       # the layer that closes the branch
    stream_in_std: float | None = None
    branch_std: float | None = None
    stream_std: float | None = None
    stream_grad_norm: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AttentionStats:
    """One attention softmax call during the doctor's forward (plain data). Over the query rows
    that can attend to two keys or more (``rows``; a causal first row attends to one):
    ``logit_std``, the RMS over rows of the scores' spread within a row (the softmax ignores a
    row's shift); ``max_prob``, the mean largest weight; ``entropy``, the mean entropy over
    log(number of keys the row may attend to) (1 = uniform, 0 = one key); ``saturated``, the
    fraction of rows whose largest weight exceeds ``p_saturated`` (where the softmax's slope
    p(1 - p) falls below the saturation fraction of its peak 1/4: every entry of the row's
    Jacobian is then that small). ``source``: ``"softmax"`` (eager attention: the scores are
    the softmax's input) or ``"sdpa"`` (``scaled_dot_product_attention``: recomputed from q, k,
    the mask and the scale)."""

    index: int                         # call order in the forward, 0-based
    module: str                        # the innermost module running it
    source: str
    shape: list[int]
    rows: int
    keys: float | None = None          # mean number of keys a row may attend to
    logit_std: float | None = None
    max_prob: float | None = None
    entropy: float | None = None
    saturated: float | None = None
    p_saturated: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
