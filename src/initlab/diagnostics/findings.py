"""Rules that turn per-layer statistics into findings with a severity and a concrete fix.

Each rule is a small function ``(layers, inputs, thresholds) -> list[Finding]``; :func:`diagnose`
runs them all. The thresholds are one frozen dataclass with the reasoning next to each default.

The rules and the literature behind them:

* saturation — LeCun et al. 1998 ("Efficient BackProp") and Glorot & Bengio 2010 ("Understanding
  the difficulty of training deep feedforward neural networks"): sigmoid units driven to their flat
  tails learn slowly (sigmoid'(2)/sigmoid'(10) = 2312.8). The cause is read off the layer: weights
  above LeCun's 1/sqrt(fan_in), large biases, or large inputs.
* dead units — a ReLU unit negative on every example gets no gradient (He et al. 2015 motivate
  their scale by keeping the signal alive).
* vanishing / exploding signal in the forward pass, and in the backward pass (Glorot & Bengio's
  backward condition: Var of dL/dz is multiplied by fan_out Var(w) E[f'(z)^2] per layer). The
  backward rules follow the per-example norm |dL/dz_a| (RMS over the batch): with fan_in scaling
  (LeCun, He) it is what stays constant when widths change, since fan_out Var(w) = n_out / n_in.
* collapse of input-to-input differences — the ordered phase of Poole et al. 2016 and Schoenholz
  et al. 2017 ("Deep information propagation"): with chi_1 < 1 every input converges to the same
  fixed point, while the forward std can sit at a fixed point set by the biases.
* symmetry — units with identical incoming weights, bias and gradient stay identical forever
  (the zero-init problem; e.g. Ng's "Initialization" exercise).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

from ..core.recommend import recommend
from ..core.registry import get as get_init
from .stats import SATURATION_THRESHOLD, InputStats, LayerStats

SEVERITIES = ("info", "warning", "error")
_RANK = {s: i for i, s in enumerate(SEVERITIES)}


@dataclass(frozen=True)
class Thresholds:
    """When a measurement becomes a finding. Fractions are of entries/units; decades are log10."""

    saturation_slope: float = SATURATION_THRESHOLD  # |f'| < 5% of peak counts as saturated
    saturation_warning: float = 0.20   # a fifth of the units learning >= 20x slower
    saturation_error: float = 0.50     # most of the layer is in the flat tails
    # Deep ReLU nets with He init lose units on a whole batch as examples correlate (~10% at
    # depth 8, width 100, batch 64); a quarter of the layer is a real problem.
    dead_warning: float = 0.25
    dead_error: float = 0.50
    # Over depth: a well-initialized net of moderate depth changes its std by < 10x end to end
    # (tanh + glorot drifts slowly as q shrinks; ReLU + He keeps it); 100x is a real trend.
    decades_warning: float = 2.0
    decades_error: float = 4.0
    # Input-to-input spread relative to the input's: ReLU + He at depth 10 keeps ~0.2-0.4; the
    # ordered phase falls geometrically (chi_1^L), e.g. (1/3)^L for tanh with torch's default.
    collapse_warning: float = 1e-2
    collapse_error: float = 1e-4
    merge_after: int = 3               # more findings of one kind than this are merged into one
    # Logits: z ~ N(0, s^2) over many classes puts the softmax's mass on a few of them once s
    # is ~3 (the largest of 1000 N(0, 9) logits is ~9.3 above the mean, e^9.3 ~ 1e4 times the
    # typical class); GPT-2 at n_embd 128 with wte std 1 is at ~11.
    logits_warning: float = 3.0
    logits_error: float = 10.0
    # Residual stream: std(after last block) / std(after first) over sqrt(number of blocks),
    # the most that independent branches of similar size give.
    residual_growth_warning: float = 3.0
    residual_growth_error: float = 10.0


@dataclass
class Finding:
    """One diagnosis: ``code`` (e.g. ``"saturation"``), ``severity``, the layers concerned (their
    ``index``), what was seen (``message``), what to do (``recommendation``), catalog initializers
    to try (``suggest``, for ``initlab.get``), the numbers behind it (``evidence``) and the
    matching model-level plans (``plans``, for ``initlab.apply(model, plan, seed=...)``)."""

    code: str
    severity: str
    layers: list[int]
    message: str
    recommendation: str = ""
    suggest: list[str] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)
    plans: list[str] = field(default_factory=list)  # initlab.apply plans (the recommender's)

    @property
    def text(self) -> str:
        return f"{self.message}; {self.recommendation}" if self.recommendation else self.message

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["text"] = self.text
        return d

    def __str__(self) -> str:
        return f"[{self.severity}] {self.text}"


# ------------------------------------------------------------------ helpers

def span(indices: Sequence[int]) -> str:
    """``"layer 3"``, ``"layers 3-5"``, ``"layers 1, 4-6"``."""
    idx = sorted(set(indices))
    if not idx:
        return "no layer"
    parts, start, prev = [], idx[0], idx[0]
    for i in idx[1:] + [None]:
        if i is not None and i == prev + 1:
            prev = i
            continue
        parts.append(f"{start}" if start == prev else f"{start}-{prev}")
        if i is not None:
            start = prev = i
    word = "layer" if len(idx) == 1 else "layers"
    return f"{word} {', '.join(parts)}"


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%" if x >= 0.01 else f"{100 * x:.2g}%"


def _g(x: float | None) -> str:
    if x is None:
        return "n/a"
    return f"{x:.3g}"


class Advice(NamedTuple):
    """What to do about a finding: the text, catalog initializers and ``initlab.apply`` plans,
    all from :func:`initlab.core.recommend.recommend` (the one recommender)."""

    text: str
    suggest: list[str]
    plans: list[str]


def _init_text(init) -> str:
    """``he_normal`` for a preset at its defaults, the full repr otherwise."""
    return init.name if init == get_init(init.name) else repr(init)


def _for_the_stack(activation, **net) -> Any:
    """The recommendation for a typical layer of the net: a hidden one. For a looks-linear
    choice that is the ``"hidden"`` position (fed by a mirrored layer), not ``recommend``'s
    ``"first"`` (the layer fed by the data), which the reason still describes."""
    rec = recommend(activation, **net)
    if rec.initializer.name == "looks_linear":
        rec = recommend(activation, mirrored_input=activation, **net)
    return rec


def _net(layers: Sequence[LayerStats], depth: int | None = None) -> dict[str, Any]:
    """What the recommender needs to know about the net: its depth (the model description's
    :meth:`~initlab.modelinit.describe.ModelDescription.plain_depth`, the one ``auto`` uses,
    when the doctor had a description; else the number of weighted layers measured), whether it
    has residual branches, and whether most of its layers are convolutions (``LayerStats.conv``:
    delta-orthogonal kernels)."""
    kinds = Counter(s.conv for s in layers if not s.is_output)
    conv = kinds.most_common(1)[0][0] if kinds else False
    return {"depth": depth if depth else len(layers),
            "residual": any(s.residual_branch is not None for s in layers),
            "layer": "conv" if conv else "dense"}


def advise(activation: str | None, problem: str = "scale", *, depth: int,
           residual: bool = False, layer: str = "dense") -> Advice:
    """The recommender's advice for a layer followed by ``activation`` (a registry name, None for
    a linear layer, ``"unknown"``) in a net of ``depth`` weighted layers (``residual``: the net
    has residual branches; ``layer``: "dense" or "conv"; all three from :func:`_net`).

    ``problem="depth"`` asks about a trend over depth (vanishing, exploding, collapse), for which
    a deep sigmoid net needs a different activation rather than a different scale.
    """
    if activation == "sigmoid" and problem == "depth":
        tanh, relu = (_for_the_stack(a, depth=depth, residual=residual, layer=layer)
                      for a in ("tanh", "relu"))
        return Advice(
            "sigmoid's slope is at most 1/4 and its output is not centred, so each layer shrinks "
            "the gradient ~4x or more (Glorot & Bengio 2010); use tanh with "
            f"{_init_text(tanh.initializer)} or relu with {_init_text(relu.initializer)} in the "
            "hidden layers, or `critical`",
            [tanh.initializer.name, relu.initializer.name, "critical"],
            [tanh.plan, relu.plan, "critical"])
    rec = _for_the_stack(activation, depth=depth, residual=residual, layer=layer)
    text = f"use {_init_text(rec.initializer)} ({rec.reason})"
    if rec.bias.name != "zeros":
        text += f" with biases {_init_text(rec.bias)}"
    if rec.alternatives:
        text += ", or " + " or ".join(f"`{a}`" for a in rec.alternatives)
    return Advice(text, list(dict.fromkeys([rec.initializer.name, *rec.alternatives])),
                  list(dict.fromkeys([rec.plan, *rec.alternatives])))


def _main_activation(layers: Sequence[LayerStats]) -> str | None:
    acts = Counter(s.activation for s in layers if s.activation and s.activation != "linear")
    if not acts:  # a linear net, or nothing known: the recommender says which
        return "unknown" if any(s.activation == "unknown" for s in layers) else None
    known = Counter({a: n for a, n in acts.items() if a != "unknown"})
    return (known or acts).most_common(1)[0][0]


def _severity(value: float, warning: float, error: float, *, below: bool = False) -> str | None:
    if below:
        return "error" if value < error else "warning" if value < warning else None
    return "error" if value >= error else "warning" if value >= warning else None


# ------------------------------------------------------------------ rules

def rule_nonfinite(layers, inputs, th, net) -> list[Finding]:
    bad = [s.index for s in layers if s.nonfinite]
    if not bad:
        return []
    rec, names, plans = advise(_main_activation(layers), **net)
    return [Finding("nonfinite", "error", bad,
                    f"{span(bad)}: output contains inf or NaN (overflow at init)",
                    "the weights or inputs are far too large: " + rec, names, plans=plans)]


def rule_symmetry(layers, inputs, th, net) -> list[Finding]:
    out = []
    for s in layers:
        if s.n_units < 2 or s.duplicate_units == 0:
            continue
        zero = " (zero init)" if s.weights_zero else ""
        rec, names, plans = advise(s.activation or _main_activation(layers), **net)
        rec = "initialize the weights randomly to break the symmetry: " + rec
        ev = {"n_units": s.n_units, "duplicate_units": s.duplicate_units,
              "symmetric_units": s.symmetric_units, "unit_groups": s.unit_groups}
        if s.is_output:
            if s.weights_zero:
                out.append(Finding("symmetry", "info", [s.index],
                                   f"layer {s.index}: the output layer is zero-initialized; fine "
                                   "(as in Fixup/ReZero) when the layers below are random, since "
                                   "its gradient differs per output", "", [], ev))
            continue
        if s.unit_groups == 1:
            out.append(Finding("symmetry", "error", [s.index],
                               f"layer {s.index}: all {s.n_units} hidden units identical{zero}: same "
                               "weights, bias and gradient, so no gradient can separate them",
                               rec, names, ev, plans))
        elif s.symmetric_units > 0:
            out.append(Finding("symmetry", "warning", [s.index],
                               f"layer {s.index}: {s.symmetric_units} of {s.n_units} units are exact "
                               "copies of another unit (same weights, bias and gradient); they will "
                               "stay copies", rec, names, ev, plans))
        else:
            out.append(Finding("symmetry", "info", [s.index],
                               f"layer {s.index}: {s.duplicate_units} of {s.n_units} units start "
                               f"identical{zero}; only the different gradients they receive "
                               "separate them", "", [], ev))
    return out


def _saturation_cause(s: LayerStats) -> str:
    """Why the weighted input z is large: weights, biases or inputs."""
    parts = []
    ratio = s.weight_std / s.lecun_std if s.weight_std and s.lecun_std else 0.0
    big_w = ratio >= 3
    big_b = s.bias_rms is not None and s.bias_rms >= 1.0
    if big_w:
        parts.append(f"the weights are ~{ratio:.0f}x too large (std {s.weight_std:.3g} where "
                     f"LeCun's is 1/sqrt({s.fan_in}) = {s.lecun_std:.3g})")
    if big_b:
        parts.append(f"the biases are large (rms {s.bias_rms:.3g})")
    if s.input_rms is not None and s.input_rms >= 3.0:
        parts.append(f"the layer's inputs are large (rms {s.input_rms:.3g}; standardize them or "
                     "normalize the layer)")
    if not parts or s.z_std is None:
        return ", ".join(parts)
    x2 = (s.input_rms or 0.0) ** 2
    b2 = (s.bias_rms or 0.0) ** 2
    if big_w:
        # at LeCun's scale Var(z) ~ fan_in Var(w) E[x^2] + b^2 = E[x^2] + b^2
        return (", ".join(parts) + f", so the weighted input has std ~{s.z_std:.3g} instead of "
                f"~{math.sqrt(x2 + b2):.2g} at LeCun's scale")
    if big_b:
        # the input-dependent part of z: spread * E[z^2] (a bias is the same for every input)
        if s.spread is not None:
            without = math.sqrt(s.spread * (s.z_std ** 2 + (s.z_mean or 0.0) ** 2))
        else:
            without = math.sqrt(max(s.z_std ** 2 - b2, 0.0))
        return (", ".join(parts) + f", so the weighted input has std ~{s.z_std:.3g} "
                f"(~{without:.2g} with zero biases)")
    return ", ".join(parts)


def rule_saturation(layers, inputs, th, net) -> list[Finding]:
    out = []
    for s in layers:
        if s.saturated is None:
            continue
        sev = _severity(s.saturated, th.saturation_warning, th.saturation_error)
        if not sev:
            continue
        cause = _saturation_cause(s)
        rec, names, plans = advise(s.activation, **net)
        if s.bias_rms is not None and s.bias_rms >= 1.0:
            rec += "; zero the biases"
        msg = (f"layer {s.index}: {_pct(s.saturated)} of {s.activation} units saturated "
               f"(|f'(z)| < {th.saturation_slope:g} of its peak: learning >= "
               f"{1 / th.saturation_slope:.0f}x slower)")
        if cause:
            msg += "; " + cause
        out.append(Finding("saturation", sev, [s.index], msg, rec, names,
                           {"saturated": s.saturated, "z_std": s.z_std, "weight_std": s.weight_std,
                            "lecun_std": s.lecun_std, "bias_rms": s.bias_rms,
                            "input_rms": s.input_rms}, plans))
    return out


def rule_dead(layers, inputs, th, net) -> list[Finding]:
    out = []
    for s in layers:
        if s.dead is None:
            continue
        sev = _severity(s.dead, th.dead_warning, th.dead_error)
        if not sev:
            continue
        rec, names, plans = advise(s.activation, **net)
        msg = (f"layer {s.index}: {_pct(s.dead)} of {s.activation} units dead (no example of the "
               "batch activates them, so their weights get no gradient)")
        if s.z_mean is not None and s.z_std is not None and s.z_mean < -s.z_std:
            msg += f"; the weighted input is mostly negative (mean {s.z_mean:.3g}, std {s.z_std:.3g})"
            if s.bias_mean is not None and s.bias_mean < 0 and abs(s.bias_mean) > 0.5 * abs(s.z_mean):
                msg += f", pushed down by the biases (mean {s.bias_mean:.3g})"
        out.append(Finding("dead_units", sev, [s.index], msg,
                           rec + " with zero biases; a small positive bias or leaky_relu also helps",
                           names, {"dead": s.dead, "z_mean": s.z_mean, "z_std": s.z_std,
                                   "bias_mean": s.bias_mean}, plans))
    return out


def _trend(values: list[tuple[int, float]], rising: bool) -> tuple[int, int, float]:
    """Largest change in log10 over i < j: a drop (``rising=False``) or a rise.

    Returns (layer_i, layer_j, decades); decades = 0 when there is no such change.
    """
    best = (0, 0, 0.0)
    if len(values) < 2:
        return best
    sign = 1.0 if rising else -1.0
    lo_idx, lo_val = values[0][0], sign * math.log10(values[0][1])
    for idx, v in values[1:]:
        x = sign * math.log10(v)
        if x - lo_val > best[2]:
            best = (lo_idx, idx, x - lo_val)
        if x < lo_val:
            lo_idx, lo_val = idx, x
    return best


def _series(layers, attr) -> list[tuple[int, float]]:
    out = []
    for s in layers:
        v = getattr(s, attr)
        if v is not None and v > 0 and math.isfinite(v) and not s.weights_zero:
            out.append((s.index, float(v)))
    return out


def _chain(layers) -> list[LayerStats]:
    """The layers the depth rules follow (``on_chain``: the longest path of a plain network; none
    in a residual network, whose depth the residual-stream rule follows)."""
    return [s for s in layers if s.on_chain]


def _between(layers, i: int, j: int) -> list[int]:
    return [s.index for s in layers if i <= s.index <= j]


def rule_forward_depth(layers, inputs, th, net) -> list[Finding]:
    layers = _chain(layers)
    series = [(s.index, s.signal_std) for s in layers
              if s.signal_std and s.signal_std > 0 and not s.weights_zero]
    vals = dict(series)
    out = []
    for rising, code, word in ((False, "vanishing_forward", "falls"),
                               (True, "exploding_forward", "grows")):
        i, j, dec = _trend(series, rising)
        sev = _severity(dec, th.decades_warning, th.decades_error)
        if not sev:
            continue
        sub = [s for s in layers if i <= s.index <= j]
        rec, names, plans = advise(_main_activation(sub), "depth", **net)
        kind = "vanishing" if not rising else "exploding"
        out.append(Finding(code, sev, _between(layers, i, j),
                           f"layers {i}-{j}: activation std {word} 10x every {(j - i) / dec:.2g} "
                           f"layers ({_g(vals[i])} -> {_g(vals[j])}): {kind} signal",
                           rec, names, {"from": vals[i], "to": vals[j], "decades": dec}, plans))
    return out


def rule_backward_depth(layers, inputs, th, net) -> list[Finding]:
    layers = _chain(layers)
    series = _series(layers, "grad_out_norm")
    vals = dict(series)
    fwd = [s.signal_std for s in layers if s.signal_std]
    out = []
    # vanishing: the gradient grows with the index, i.e. shrinks on its way back to the input
    for rising, code in ((True, "vanishing_gradient"), (False, "exploding_gradient")):
        i, j, dec = _trend(series, rising)
        sev = _severity(dec, th.decades_warning, th.decades_error)
        if not sev:
            continue
        sub = [s for s in layers if i <= s.index <= j]
        rec, names, plans = advise(_main_activation(sub), "depth", **net)
        verb = "shrinks" if rising else "grows"
        msg = (f"layers {i}-{j}: the back-propagated gradient (|dL/dz| per example) {verb} 10x every "
               f"{(j - i) / dec:.2g} layers on its way down ({_g(vals[j])} at layer {j}, "
               f"{_g(vals[i])} at layer {i}): {'vanishing' if rising else 'exploding'} gradients")
        if rising:
            msg += f"; layer {i} learns ~{10 ** dec:.2g}x slower than layer {j}"
        if fwd and max(fwd) / min(fwd) < 10 ** th.decades_warning:
            msg += (f" (the forward std stays within {min(fwd):.2g}-{max(fwd):.2g}, so the "
                    "forward pass alone does not show it)")
        out.append(Finding(code, sev, _between(layers, i, j), msg, rec, names,
                           {"from": vals[i], "to": vals[j], "decades": dec}, plans))
    return out


def _corr_text(c: float | None) -> str:
    if c is None:
        return ""
    if 0.999 < c < 1:
        return f", mean correlation between examples 1 - {1 - c:.2g}"
    return f", mean correlation between examples {c:.4g}"


def rule_collapse(layers, inputs: InputStats | None, th, net) -> list[Finding]:
    """Input-to-input differences lost over depth (a gradual, geometric trend, the ordered
    phase) or inside one layer (biases that dwarf the weighted sum).

    An abrupt drop *between* layers (global average pooling of i.i.d. noise probes, say) is a
    property of the architecture and the probe, not of the initialization, and is not reported.
    """
    base = inputs.spread if inputs is not None and inputs.spread else 1.0
    out = []
    # inside one layer: output spread / input spread
    for s in layers:
        if s.spread is None or not s.input_spread or s.weights_zero:
            continue
        r = s.spread / s.input_spread
        sev = _severity(r, th.collapse_warning, th.collapse_error, below=True)
        if sev:
            rec, names, plans = advise(s.activation or _main_activation(layers), **net)
            out.append(Finding("collapse", sev, [s.index],
                               f"layer {s.index}: its output hardly depends on the input (spread "
                               f"{s.input_spread:.2g} -> {s.spread:.2g} across the layer); the "
                               f"biases (rms {_g(s.bias_rms)}) dwarf the weighted sum",
                               "zero the biases; " + rec, names,
                               {"spread_ratio": r, "bias_rms": s.bias_rms,
                                "weight_std": s.weight_std}, plans))
    # over depth: a geometric fall spread over several layers
    layers = _chain(layers)
    series = [(s.index, s.spread / base) for s in layers
              if s.spread is not None and s.spread > 0 and not s.weights_zero]
    i, j, dec = _trend(series, rising=False)
    vals = dict(series)
    local = {f.layers[0] for f in out}
    if dec > 0 and j not in local:
        logs = [math.log10(v) for k, v in series if i <= k <= j]
        steepest = max((a - b for a, b in zip(logs[:-1], logs[1:])), default=0.0)
        sev = _severity(vals[j], th.collapse_warning, th.collapse_error, below=True)
        if sev and len(logs) >= 3 and steepest <= 0.5 * dec:
            worst = next(s for s in layers if s.index == j)
            tail = [s for s in layers if s.index >= i]
            rec, names, plans = advise(_main_activation(tail), "depth", **net)
            out.append(Finding(
                "collapse", sev, [s.index for s in tail],
                f"layers {i}-{j}: outputs for different inputs collapse, the input-to-input "
                f"spread falls 10x every {(j - i) / dec:.2g} layers to {vals[j]:.2g} of the "
                f"input's{_corr_text(worst.example_corr)}; the net maps every input to nearly "
                "the same point (ordered phase), so it cannot tell them apart",
                rec, names, {"spread_ratio": vals[j], "layer": j, "decades": dec,
                             "example_corr": worst.example_corr}, plans))
    return out


def rule_zero_gradient(layers, inputs, th, net) -> list[Finding]:
    out = []
    flagged = []
    for k, s in enumerate(layers):
        if s.weight_grad_norm != 0.0 or (s.unit_groups == 1 and s.n_units > 1 and not s.is_output):
            continue
        later_zero = [t.index for t in layers[k + 1:] if t.weights_zero]
        if later_zero:
            out.append(Finding("zero_gradient", "info", [s.index],
                               f"layer {s.index}: no gradient at init because {span(later_zero)} "
                               "has zero weights; it starts learning once those move (fine for "
                               "Fixup/ReZero-style init)"))
        else:
            flagged.append(s.index)
    if flagged:
        rec, names, plans = advise(_main_activation(layers), **net)
        out.append(Finding("zero_gradient", "warning", flagged,
                           f"{span(flagged)}: the weight gradient is exactly zero, nothing these "
                           "layers do changes the loss at init (dead or saturated units around them)",
                           rec, names, plans=plans))
    return out


def rule_logits(layers, inputs, th, net) -> list[Finding]:
    """The output layer's outputs (logits) far from unit scale at init: above ~3 a softmax over
    them is saturated (a few classes get all the probability, the initial loss is far above
    log(n_classes) and the gradient reaches few outputs)."""
    out = []
    for s in layers:
        if not s.is_output or s.n_units < 2 or s.z_std is None:
            continue
        sev = _severity(s.z_std, th.logits_warning, th.logits_error)
        if not sev:
            continue
        rec = recommend(None, role="readout")
        tied = f"; its weight is tied to `{s.tied_to[0]}` (std {_g(s.weight_std)})" \
            if s.tied_to else f" (weight std {_g(s.weight_std)})"
        if s.tied_to:
            fix = (f"give the tied embedding a small std, ~1/sqrt(fan_in) = {_g(s.lecun_std)} or "
                   "GPT-2's 0.02 (plan `gpt2`), so the logits start near unit scale")
            plans = ["gpt2"]
        else:
            fix = f"use {_init_text(rec.initializer)} for the output layer ({rec.reason})"
            plans = [rec.plan]
        out.append(Finding(
            "logits_scale", sev, [s.index],
            f"layer {s.index} (`{s.name}`, the output layer): its outputs (logits) have std "
            f"{s.z_std:.3g} at init, above {th.logits_warning:g}: a softmax over them is saturated"
            + tied, fix, [rec.initializer.name],
            {"z_std": s.z_std, "weight_std": s.weight_std, "tied_to": list(s.tied_to)}, plans))
    return out


def rule_residual_stream(blocks, th) -> list[Finding]:
    """The residual stream over blocks. Independent branches that each add about the first
    block's variance grow the stream's std at most like sqrt(number of blocks); growth well
    beyond that means each block multiplies the stream (its branch output scales with the
    stream), which compounds with depth. The gradient along the stream should stay level
    (the shortcut is the identity): a trend over blocks is vanishing/exploding."""
    out: list[Finding] = []
    stds = [(b.index + 1, b.stream_std) for b in blocks if b.stream_std and b.stream_std > 0]
    if len(stds) >= 2:
        (k1, s1), (kl, sl) = stds[0], stds[-1]
        n = kl - k1 + 1
        ratio = sl / s1
        bound = math.sqrt(n)
        sev = _severity(ratio / bound, th.residual_growth_warning, th.residual_growth_error)
        if sev:
            per = ratio ** (1.0 / (n - 1))
            out.append(Finding(
                "residual_growth", sev, [],
                f"residual blocks {k1}-{kl}: the residual stream's std grows {ratio:.3g}x "
                f"({_g(s1)} -> {_g(sl)}, {per:.3g}x per block), more than the sqrt({n}) = "
                f"{bound:.3g}x of branches that add independent, similar variance: each block "
                "multiplies the stream",
                "scale down the layers that close the residual branches: `gpt2` (std "
                "0.02/sqrt(number of branches)), `zero_residual` or `fixup`",
                [], {"from": s1, "to": sl, "ratio": ratio, "blocks": n},
                ["gpt2", "zero_residual", "fixup"]))
    grads = [(b.index + 1, b.stream_grad_norm) for b in blocks
             if b.stream_grad_norm and b.stream_grad_norm > 0]
    vals = dict(grads)
    for rising, code in ((True, "vanishing_gradient"), (False, "exploding_gradient")):
        i, j, dec = _trend(grads, rising)
        sev = _severity(dec, th.decades_warning, th.decades_error)
        if sev:
            verb = "shrinks" if rising else "grows"
            out.append(Finding(
                code, sev, [],
                f"residual blocks {i}-{j}: the gradient along the residual stream {verb} 10x "
                f"every {(j - i) / dec:.2g} blocks on its way down ({_g(vals[j])} at block {j}, "
                f"{_g(vals[i])} at block {i})",
                "scale down the layers that close the residual branches: `gpt2`, "
                "`zero_residual` or `fixup`", [],
                {"from": vals[i], "to": vals[j], "decades": dec, "per": "block"},
                ["gpt2", "zero_residual", "fixup"]))
    return out


def rule_attention(calls, th) -> list[Finding]:
    """Attention softmaxes saturated at init (:mod:`initlab.diagnostics.attention`): the
    fraction of query rows whose largest weight is past the point where the softmax's slope is
    ``saturation_slope`` of its peak, against the saturation thresholds of the activations."""
    from .attention import describe_call

    hit = [(c, _severity(c.saturated, th.saturation_warning, th.saturation_error))
           for c in calls if c.saturated is not None]
    hit = [(c, sev) for c, sev in hit if sev]
    if not hit:
        return []
    worst = max(hit, key=lambda cs: cs[0].saturated)[0]
    sev = "error" if any(s == "error" for _, s in hit) else "warning"
    where = (describe_call(worst) if len(hit) == 1 else
             f"{len(hit)} of {len(calls)} attention calls (worst {describe_call(worst)})")
    return [Finding(
        "attention_saturation", sev, [],
        f"{where}: {_pct(worst.saturated)} of query rows put more than "
        f"{worst.p_saturated:.3g} of their weight on one key (mean largest weight "
        f"{worst.max_prob:.3g}, entropy {worst.entropy:.3g} of uniform's; logits spread "
        f"{_g(worst.logit_std)} within a row): the softmax is saturated, its gradient to the "
        "query and key projections ~0 (attention entropy collapse, Zhai et al. 2023)",
        "initialize the query/key projections with Var ~ 1/fan_in so q.k/sqrt(d_head) has std "
        "~1 over a normalized input: `auto`, `glorot`, `lecun` or GPT-2's std 0.02 (`gpt2`)",
        ["lecun_normal", "glorot_uniform"],
        {"saturated": worst.saturated, "max_prob": worst.max_prob, "entropy": worst.entropy,
         "logit_std": worst.logit_std, "calls": len(hit)},
        ["auto", "glorot", "gpt2"])]


def rule_inputs(layers, inputs: InputStats | None, th, net) -> list[Finding]:
    if inputs is None or inputs.std is None or inputs.mean is None:
        return []
    m, s = inputs.mean, inputs.std
    if s > 0 and abs(m) <= 0.5 * s and 0.5 <= s <= 2.0:
        return []
    return [Finding("inputs", "info", [],
                    f"the probe inputs are not standardized (mean {m:.3g}, std {s:.3g}); LeCun, "
                    "Glorot and He scales assume zero-mean, unit-variance inputs",
                    "standardize the inputs (per feature) or measure on the data you will train on")]


RULES = (rule_nonfinite, rule_symmetry, rule_saturation, rule_dead, rule_forward_depth,
         rule_backward_depth, rule_collapse, rule_zero_gradient, rule_logits, rule_inputs)


def _merge(findings: list[Finding], th: Thresholds) -> list[Finding]:
    """Many per-layer findings of one code and severity become one (the worst layer's text)."""
    groups: dict[tuple[str, str], list[Finding]] = {}
    for f in findings:
        groups.setdefault((f.code, f.severity), []).append(f)
    out = []
    for (code, sev), fs in groups.items():
        if len(fs) <= th.merge_after or code not in ("saturation", "dead_units", "symmetry"):
            out.extend(fs)
            continue
        key = {"saturation": "saturated", "dead_units": "dead"}.get(code)
        worst = max(fs, key=lambda f: f.evidence.get(key, 0) if key else 0)
        idx = sorted(i for f in fs for i in f.layers)
        out.append(Finding(code, sev, idx, f"{span(idx)} ({len(fs)} layers); worst: {worst.message}",
                           worst.recommendation, worst.suggest,
                           {"per_layer": {f.layers[0]: f.evidence for f in fs}}, worst.plans))
    return out


def diagnose(layers: Sequence[LayerStats], inputs: InputStats | None = None,
             thresholds: Thresholds | None = None, *, blocks: Sequence[Any] = (),
             attention: Sequence[Any] = (), depth: int | None = None) -> list[Finding]:
    """Run every rule (and, given the residual stream per block or the attention calls, their
    rules); findings sorted by
    severity (errors first), then in rule order (causes such as symmetry and saturation before
    consequences such as vanishing gradients). ``depth``: the net's depth for the advice (the
    model description's ``plain_depth()``); without it, the number of ``layers``."""
    th = thresholds or Thresholds()
    layers = list(layers)
    net = _net(layers, depth)
    found: list[Finding] = []
    for rule in RULES:
        found.extend(rule(layers, inputs, th, net))
    found.extend(rule_residual_stream(list(blocks), th))
    found.extend(rule_attention(list(attention), th))
    found = _merge(found, th)
    return sorted(found, key=lambda f: -_RANK[f.severity])  # stable: keeps the rule order
