"""Selective state-space mixers (Mamba, Mamba-2 and the hybrids built on them): the one owner of
which of a model's parameters are a state-space layer's structural parameters and what they
start at.

A *mixer* is a module holding its own ``A_log`` and ``D`` parameters: Hugging Face's
``MambaMixer``, ``Mamba2Mixer``, ``FalconMambaMixer``, ``JambaMambaMixer``, ``BambaMixer``,
``FalconH1Mixer``, ``NemotronHMamba2Mixer``, ``GraniteMoeHybridMambaLayer``, ``ZambaMambaMixer``,
``Zamba2MambaMixer``, or a user's module with the same names (the names of the reference code,
``mamba_ssm``). Its projections (``in_proj``, ``x_proj``, ``out_proj``, the depthwise
``conv1d``) are ordinary layers, initialized by the plan like any other. Three parameters are
not layers, and they and the time-step projection's weight start under every plan as Mamba
starts them (Gu & Dao 2023, "Mamba: Linear-Time Sequence Modeling with Selective State
Spaces", section 3.6, and its reference code):

* ``A_log``: S4D-real, ``log(n + 1)`` along the state axis (``s4d_real``): the state matrix
  A = -exp(A_log) decays at rates 1..N;
* ``D``: ones, the skip connection passing the input through;
* the time-step projection's weight (``dt_proj.weight``, Zamba's ``dt_proj_weight``):
  U(+-s / sqrt(rank)), s the config's ``time_step_scale`` (1 by default), as Mamba's
  ``dt_init`` draws it (a third of LeCun's variance), and left so by LSUV;
* the time-step bias (``dt_bias``, Zamba's ``dt_proj_bias``, or ``dt_proj.bias``):
  ``time_step_bias``, softplus(bias) log-uniform over ``[time_step_min, time_step_max]``
  floored at ``time_step_floor``, read from the mixer (Mamba-2 keeps them), else the model's
  config, else Mamba's defaults (0.001, 0.1, 1e-4).

Where initlab deliberately differs from Hugging Face: Jamba's ``_init_weights`` leaves
``dt_proj.bias`` to the generic linear init (0, so every channel starts at dt = softplus(0) =
0.69) and Bamba, FalconH1, NemotronH and GraniteMoeHybrid set ``dt_bias`` to 1 (dt = 1.31);
initlab gives every mixer Mamba's log-uniform spread of time steps, the initialization the
paper states and its reference code uses (Mamba, Mamba-2, Zamba, Zamba2 in Hugging Face). A
bias of 0 or 1 gives every channel the same step, so the spread of memory lengths that the
selection mechanism starts from is lost.

Modules with an ``A_log`` and a ``dt_bias`` but no ``D`` are *gated decays*
(:func:`gated_decays`): the per-head decay of gated linear attention (Gated DeltaNet, Yang,
Kautz, Hatamizadeh 2025, in Qwen3-Next, Qwen3.5 and OLMo-Hybrid; Kimi Delta Attention in Kimi
Linear; GLM-5-Next's and Bailing's forget gates), g = exp(-A softplus(x + dt_bias)). ``A_log``
starts at ``decay_rate_log``, log U(low, high): the config's ``linear_a_log_min``/``_max``
(OLMo-Hybrid), else (0.01, 16) for a Gated DeltaNet class (FLA's reference draws U(0, 16);
0.01 keeps the log finite, as Hugging Face's Qwen3-Next does), else Kimi Linear's (1, 16). The
``dt_bias`` starts as Mamba's time step (the config's ``linear_dt_min``/``_max``/
``_init_floor``, else 0.001, 0.1, 1e-4), as FLA, Kimi Linear and OLMo-Hybrid draw it; Hugging
Face's Qwen3-Next, Qwen3.5 and Lara-mini set it to 1 (one step for every head), where initlab
deliberately gives the spread, as for Bamba above.

A *real-gated linear recurrent unit* (:func:`lru_units`; Griffin's RG-LRU, De, Smith, Fernando
et al. 2024, in RecurrentGemma) holds a recurrence parameter (Hugging Face's
``recurrent_param``, the reference code's ``a_param``) and two block-diagonal gates (one
``bw x bw`` block per head, read as ``x @ W[h] + b[h]`` and fed to a sigmoid: Hugging Face's
``input_gate_weight``/``_bias`` and ``recurrent_gate_weight``/``_bias``, the reference's
``input_gate`` and ``a_gate`` modules with ``w`` and ``b``). The recurrence parameter starts at
``recurrence_radius``: a = exp(-softplus(x)) with a^2 ~ U(0.9^2, 0.999^2) (the module's
``min_rad``/``max_rad`` when it has them); each gate block LeCun normal over its block, N(0,
1/bw), its bias 0, as the reference's ``BlockDiagonalLinear`` draws them at its default variance
scale of 1.
Where initlab deliberately differs from Hugging Face: its ``_init_weights`` multiplies the gate
variance by ``config.w_init_variance_scale`` (0.01 by default), which starts both gates at
sigmoid(~0) = 1/2 for every input, so neither gate selects anything at init; initlab keeps the
reference's unit scale.

An *mLSTM's gates* (:func:`mlstm_gates`; xLSTM, Beck et al. 2024, and xLSTM 7B, Beck et al.
2025) are two linear layers from the block's input to one pre-activation per head: the
exponential input gate (Hugging Face's ``igate_preact``, the reference code's ``igate``) and
the sigmoid forget gate (``fgate_preact``, ``fgate``). Both weights start at 0, so every gate
starts from its bias alone; the forget-gate bias is linspace(3, 6) over the heads, so the heads
start at sigmoid(3..6) = 0.95..0.998 and remember over 20 to 400 steps; the input-gate bias is
-10 for Hugging Face's layout (xLSTM 7B's, which keeps the exponential gate small for stable
training at scale) and N(0, 0.1^2) for the reference's (the original xLSTM's
``mLSTMCell.reset_parameters``). Hugging Face's ``fused`` weight mode (one ``ifgate_preact``
holding both gates) is not described: it is left to the generic linear rules.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, TypeGuard

import torch
import torch.nn as nn

from ..core.distributions import DT_FLOOR, DT_MAX, DT_MIN

#: the mixer's or config's attributes holding the time-step range, with Mamba's defaults
DT_ATTRS = (("time_step_min", DT_MIN), ("time_step_max", DT_MAX),
            ("time_step_floor", DT_FLOOR))
#: local names of a mixer's own time-step bias parameter (else ``dt_proj.bias``)
DT_BIAS_NAMES = ("dt_bias", "dt_proj_bias")


@dataclass(frozen=True)
class Mixer:
    """One state-space mixer: its module name and the full names of its structural
    parameters (``dt_bias`` None when it has none), with its time-step range and where that
    range was read."""

    name: str
    a_log: str
    d: str
    dt_bias: str | None
    dt_range: tuple[float, float, float]
    dt_source: str
    #: the time-step projection's weight (``dt_proj.weight``, Zamba's ``dt_proj_weight``) with
    #: its start, ``(initializer name, arguments, why)`` (:func:`dt_proj_init`), or None
    dt_weight: str | None = None
    dt_weight_init: tuple[str, dict, str] | None = None


def is_mixer(module: nn.Module) -> bool:
    """Whether ``module`` holds its own ``A_log`` and ``D`` parameters (see the module docs)."""
    p = module._parameters
    return isinstance(p.get("A_log"), torch.Tensor) and isinstance(p.get("D"), torch.Tensor)


def _number(v: Any) -> TypeGuard[float]:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _setting(mixer: nn.Module, cfg: Any, attr: str, ok=_number) -> tuple[Any, str | None]:
    """``(value, where)`` of a setting: the mixer's own attribute, else the config's (the
    first that ``ok`` accepts), else ``(None, None)``."""
    for owner, where in ((mixer, "the mixer"), (cfg, "config")):
        v = getattr(owner, attr, None) if owner is not None else None
        if ok(v):
            return v, where
    return None, None


def dt_range(mixer: nn.Module, model: nn.Module | None = None, attrs=DT_ATTRS
             ) -> tuple[tuple[float, float, float], str]:
    """``((dt_min, dt_max, dt_floor), source)``: each value from the mixer's own attribute,
    else the model's config, else Mamba's default; ``source`` says which. ``attrs``: the
    attribute names with their defaults (:data:`DT_ATTRS`; a gated decay's
    :data:`GATED_DT_ATTRS`)."""
    cfg = getattr(model, "config", None) if model is not None else None
    values, sources = [], []
    for attr, default in attrs:
        v, where = _setting(mixer, cfg, attr)
        values.append(default if where is None else float(v))
        sources.append(where or "Mamba's default")
    src = sources[0] if len(set(sources)) == 1 else ", ".join(
        f"{a[0]} from {s}" for a, s in zip(attrs, sources))
    return (values[0], values[1], values[2]), src


def _dt_bias_name(prefix: str, module: nn.Module) -> str | None:
    for local in DT_BIAS_NAMES:
        if isinstance(module._parameters.get(local), torch.Tensor):
            return prefix + local
    proj = module._modules.get("dt_proj")
    if proj is not None and isinstance(proj._parameters.get("bias"), torch.Tensor):
        return prefix + "dt_proj.bias"
    return None


def _dt_weight(prefix: str, module: nn.Module) -> tuple[str, int, bool] | None:
    """(full name, rank, a linear layer's) of a mixer's time-step projection weight: Zamba's
    raw ``dt_proj_weight`` (heads, head_dim, rank), else ``dt_proj.weight`` (d_inner, rank)."""
    w = module._parameters.get("dt_proj_weight")
    if isinstance(w, torch.Tensor) and w.dim() >= 2:
        return prefix + "dt_proj_weight", int(w.shape[-1]), False
    proj = module._modules.get("dt_proj")
    w = proj._parameters.get("weight") if proj is not None else None
    if isinstance(proj, nn.Linear) and isinstance(w, torch.Tensor) and w.dim() == 2:
        return prefix + "dt_proj.weight", int(w.shape[1]), True
    return None


def dt_proj_init(mixer: nn.Module, model: nn.Module | None, rank: int,
                 fan_in_is_rank: bool = False) -> tuple[str, dict, str]:
    """Mamba's start of the time-step projection (Gu & Dao 2023, the reference code's
    ``dt_init``): U(+-s / sqrt(rank)), s the mixer's or config's ``time_step_scale`` (else 1);
    the constant s / sqrt(rank) where ``time_step_init_scheme`` is ``"constant"``. Narrower than
    LeCun's N(0, 1/rank) (variance 1/3 of it): the time step's spread comes from its bias.
    ``fan_in_is_rank``: the weight is a linear layer's (its fan_in is the rank), so the uniform
    is given as a fan-in variance scaling, else with its bound fixed (Zamba's raw 3-D weight)."""
    cfg = getattr(model, "config", None) if model is not None else None
    v, where = _setting(mixer, cfg, "time_step_scale", lambda x: _number(x) and x > 0)
    scale, src = (1.0, "scale 1") if where is None else (
        float(v), f"time_step_scale {float(v):g} from {where}")
    bound = scale / math.sqrt(rank)
    scheme = _setting(mixer, cfg, "time_step_init_scheme", lambda x: isinstance(x, str))[0] \
        or "random"
    if scheme == "constant":
        return ("constant", {"value": bound},
                f"SSM time-step projection: constant {bound:.4g} = s/sqrt(rank {rank}) "
                f"({src}, time_step_init_scheme 'constant'; Mamba)")
    why = (f"SSM time-step projection: U(+-{bound:.4g}), s/sqrt(rank {rank}) ({src}; Mamba's "
           "dt_init, Gu & Dao 2023)")
    if fan_in_is_rank:
        # as a fan-in rule, U(+-sqrt(3 (s^2/3) / fan_in)): a width parametrization then sees
        # how the bound scales with the rank (the base model's bound at its own rank)
        return ("variance_scaling", {"scale": scale * scale / 3, "mode": "fan_in",
                                     "distribution": "uniform"}, why)
    return ("uniform", {"low": -bound, "high": bound}, why)


def mixers(model: nn.Module) -> list[Mixer]:
    """Every state-space mixer of ``model``, in module order."""
    out = []
    for mname, m in model.named_modules():
        if not is_mixer(m):
            continue
        prefix = f"{mname}." if mname else ""
        rng, src = dt_range(m, model)
        dtw = _dt_weight(prefix, m)
        out.append(Mixer(mname, prefix + "A_log", prefix + "D", _dt_bias_name(prefix, m),
                         rng, src, dtw[0] if dtw else None,
                         dt_proj_init(m, model, dtw[1], dtw[2]) if dtw else None))
    return out


#: the config's attributes of a gated decay's rate range (OLMo-Hybrid's), and of its
#: time-step range with Mamba's defaults (read by :func:`dt_range`)
DECAY_ATTRS = ("linear_a_log_min", "linear_a_log_max")
GATED_DT_ATTRS = (("linear_dt_min", DT_MIN), ("linear_dt_max", DT_MAX),
                  ("linear_dt_init_floor", DT_FLOOR))
#: the decay-rate range of a Gated DeltaNet class (FLA's U(0, 16), floored so log A is finite)
#: and of every other gated decay (Kimi Linear's, GLM-5-Next's)
GDN_RATES, KDA_RATES = (0.01, 16.0), (1.0, 16.0)


@dataclass(frozen=True)
class GatedDecay:
    """One gated linear-attention decay: its module name, the full names of ``A_log`` and
    ``dt_bias``, its rate range (``A ~ U(low, high)``) and time-step range, and where they were
    read."""

    name: str
    a_log: str
    dt_bias: str
    rates: tuple[float, float]
    dt_range: tuple[float, float, float]
    source: str


def is_gated_decay(module: nn.Module) -> bool:
    """Whether ``module`` holds ``A_log`` and ``dt_bias`` but no ``D`` (see the module docs)."""
    p = module._parameters
    return (isinstance(p.get("A_log"), torch.Tensor) and isinstance(p.get("dt_bias"),
                                                                    torch.Tensor)
            and not isinstance(p.get("D"), torch.Tensor))


def gated_decays(model: nn.Module) -> list[GatedDecay]:
    """Every gated decay of ``model``, in module order."""
    cfg = getattr(model, "config", None)
    lo, hi = (getattr(cfg, a, None) for a in DECAY_ATTRS)
    configured = (float(lo), float(hi)) if _number(lo) and _number(hi) and 0 < lo <= hi else None
    out = []
    for mname, m in model.named_modules():
        if not is_gated_decay(m):
            continue
        prefix = f"{mname}." if mname else ""
        if configured is not None:
            rates, src = configured, "config.linear_a_log_min/max"
        elif "GatedDeltaNet" in type(m).__name__:
            rates, src = GDN_RATES, "Gated DeltaNet's U(0, 16), floored at 0.01"
        else:
            rates, src = KDA_RATES, "Kimi Linear's U(1, 16)"
        dts, dsrc = dt_range(m, model, GATED_DT_ATTRS)
        out.append(GatedDecay(mname, prefix + "A_log", prefix + "dt_bias", rates, dts,
                              f"rates: {src}; time step: {dsrc}"))
    return out


#: what follows each of a mixer's own layers, by local name (Mamba's block, Gu & Dao 2023
#: fig. 3; Mamba-2's in_proj also yields dt, B, C); ``"act"`` is the mixer's activation module
MIXER_LAYERS = {
    "in_proj": (None, "in_proj of a state-space mixer: its x part feeds the depthwise conv1d, "
                      "a linear layer that carries the activation's gain itself, its z part the "
                      "output's gate: gain 1"),
    "conv1d": ("act", "depthwise conv1d of a state-space mixer, followed by `{act}`"),
    "x_proj": (None, "x_proj of a state-space mixer: B, C and the low-rank dt enter the scan "
                     "linearly"),
    "dt_proj": (None, "dt_proj of a state-space mixer: feeds softplus(. + dt bias), the time "
                      "step, not a signal carried forward: gain 1"),
}


#: what follows an mLSTM's own layers (Hugging Face's names): the matrix memory
#: C_t = f_t C_{t-1} + i_t v_t k_t^T, read as C_t q_t (Beck et al. 2024), with the forget gate
#: f = sigmoid(.) (log-sigmoid in the stabilized form); the input gate is exp(.), which the
#: activation registry does not hold (it stays unknown; its weight starts at 0 anyway)
MLSTM_LAYERS = {
    **{local: (None, f"{local} of an mLSTM: enters the matrix memory C = sum f i v k^T, read "
                     "as C q: linear in each, gain 1") for local in ("q", "k", "v")},
    "fgate_preact": ("sigmoid", "forget gate of an mLSTM: sigmoid"),
}


def layer_activations(model: nn.Module) -> dict[str, tuple[Any, str]]:
    """``{layer name: (activation, why)}`` for the layers of every mixer of ``model`` named in
    :data:`MIXER_LAYERS`, and of every mLSTM named in :data:`MLSTM_LAYERS` (its backend, an
    opaque module to the probe, reads them). The probe does not see them: the mixer's scan (``mamba_inner_fn`` and
    its reference path) reads the layers' weights directly rather than calling the layers.
    ``activation`` is the mixer's own activation module (Mamba's ``act``: SiLU) as
    :func:`~initlab.core.activations.lookup_module` reads it, or None (linear); a mixer without
    a recognized activation module gives its ``act`` layers nothing (they stay unknown)."""
    from ..core.activations import get_activation, lookup_module

    out: dict[str, tuple[Any, str]] = {}
    for mname, m in model.named_modules():
        if not is_mixer(m):
            continue
        act, act_name = None, ""
        for cname, child in m.named_children():
            found = lookup_module(child)
            if found is not None:
                act, act_name = found, cname
                break
        prefix = f"{mname}." if mname else ""
        for local, (kind, why) in MIXER_LAYERS.items():
            if local not in m._modules:
                continue
            if kind == "act":
                if act is None:
                    continue
                out[prefix + local] = (act, why.format(act=act_name))
            else:
                out[prefix + local] = (None, why)
    for g in mlstm_gates(model):
        m = model.get_submodule(g.name)
        prefix = f"{g.name}." if g.name else ""
        for local, (gate_act, why) in MLSTM_LAYERS.items():
            if isinstance(m._modules.get(local), nn.Linear):
                out[prefix + local] = ((get_activation(gate_act), None) if gate_act else None,
                                       why)
    return out


def place_mixer_layers(model: nn.Module, desc: Any) -> None:
    """Give the mixers' layers the dataflow could not place (the scan reads their weights
    directly: "did not run", "feeds tensor_split") in ``desc`` (a
    :class:`~initlab.modelinit.describe.ModelDescription`) what follows them by the mixer's
    structure (:func:`layer_activations`). A layer whose activation was found is kept as found."""
    known = layer_activations(model)
    mlstm = {f"{g.name}.{local}" if g.name else local for g in mlstm_gates(model)
             for local in MLSTM_LAYERS}
    for layer in desc.layers:
        if layer.name in known and (layer.activation == "unknown"
                                    or desc.method == "names-fallback"):
            act, why = known[layer.name]
            layer.activation, layer.gated_by = act, None
            unit = "mLSTM" if layer.name in mlstm else "mixer"
            layer.activation_why = f"{why} (from the {unit}'s structure: {layer.activation_why})"


#: local names of an RG-LRU's recurrence parameter (Hugging Face's, the reference code's)
LRU_PARAM_NAMES = ("recurrent_param", "a_param")
#: an RG-LRU's two gates: (weight, bias) local names held by the unit itself (Hugging Face), or
#: child modules holding ``w`` and ``b`` (the reference's ``BlockDiagonalLinear``)
LRU_GATE_PARAMS = (("input_gate_weight", "input_gate_bias"),
                   ("recurrent_gate_weight", "recurrent_gate_bias"))
LRU_GATE_MODULES = ("input_gate", "a_gate")


@dataclass(frozen=True)
class LruUnit:
    """One RG-LRU: its module name, the full name of its recurrence parameter, its radius range
    and where that was read, and its gates as ``(weight, bias or None, block width)``."""

    name: str
    param: str
    radii: tuple[float, float]
    source: str
    gates: tuple[tuple[str, str | None, int], ...]


def _lru_param(module: nn.Module) -> str | None:
    for n in LRU_PARAM_NAMES:
        t = module._parameters.get(n)
        if isinstance(t, torch.Tensor) and t.dim() == 1:
            return n
    return None


def _block_gate(w: Any, b: Any) -> TypeGuard[torch.Tensor]:
    """A block-diagonal gate: (heads, bw, bw) weights, (heads, bw) bias or none."""
    return (isinstance(w, torch.Tensor) and w.dim() == 3 and w.shape[1] == w.shape[2]
            and (b is None or (isinstance(b, torch.Tensor) and tuple(b.shape) == tuple(w.shape[:2]))))


def _lru_gates(prefix: str, module: nn.Module) -> list[tuple[str, str | None, int]]:
    gates = []
    p = module._parameters
    for wn, bn in LRU_GATE_PARAMS:
        w = p.get(wn)
        if _block_gate(w, p.get(bn)):
            gates.append((prefix + wn, prefix + bn if p.get(bn) is not None else None,
                          int(w.shape[1])))
    for cn in LRU_GATE_MODULES:
        c = module._modules.get(cn)
        if c is None:
            continue
        w, b = c._parameters.get("w"), c._parameters.get("b")
        if _block_gate(w, b):
            gates.append((f"{prefix}{cn}.w", f"{prefix}{cn}.b" if b is not None else None,
                          int(w.shape[1])))
    return gates


def is_lru_unit(module: nn.Module) -> bool:
    """Whether ``module`` is an RG-LRU (see the module docs): a 1-D recurrence parameter of one
    of :data:`LRU_PARAM_NAMES` beside at least one block-diagonal gate."""
    return _lru_param(module) is not None and bool(_lru_gates("", module))


def lru_units(model: nn.Module) -> list[LruUnit]:
    """Every RG-LRU of ``model``, in module order."""
    from ..core.distributions import LRU_MAX_RAD, LRU_MIN_RAD

    out = []
    for mname, m in model.named_modules():
        if not is_lru_unit(m):
            continue
        prefix = f"{mname}." if mname else ""
        lo, hi = getattr(m, "min_rad", None), getattr(m, "max_rad", None)
        if _number(lo) and _number(hi) and 0 < lo <= hi < 1:
            radii, src = (float(lo), float(hi)), "the unit's min_rad/max_rad"
        else:
            radii, src = (LRU_MIN_RAD, LRU_MAX_RAD), "Griffin's (0.9, 0.999)"
        param = _lru_param(m)
        assert param is not None, "is_lru_unit found the recurrence parameter"
        out.append(LruUnit(mname, prefix + param, radii, src, tuple(_lru_gates(prefix, m))))
    return out


def block_gate_heads(module: nn.Module, local: str) -> int:
    """The number of heads when ``local`` is a block-diagonal gate parameter of ``module`` (an
    RG-LRU's own gate weight or bias, or the ``w``/``b`` of a ``BlockDiagonalLinear``), else 0:
    the description draws such a tensor one head block at a time."""
    p = module._parameters
    if _lru_param(module) is not None:
        for wn, bn in LRU_GATE_PARAMS:
            w = p.get(wn)
            if local in (wn, bn) and _block_gate(w, p.get(bn)):
                return int(w.shape[0])
    w = p.get("w")
    if "BlockDiagonal" in type(module).__name__ and local in ("w", "b") \
            and _block_gate(w, p.get("b")):
        return int(w.shape[0])
    return 0


#: an mLSTM's (input gate, forget gate) child linear layers: Hugging Face's layout (xLSTM 7B's
#: initialization), then the reference code's (the original xLSTM's)
MLSTM_GATE_NAMES = (("igate_preact", "fgate_preact"), ("igate", "fgate"))
#: the input-gate bias per layout: (initializer name, its arguments, the source)
MLSTM_IGATE_BIAS = {
    "igate_preact": ("constant", {"value": -10.0}, "-10 (xLSTM 7B, Beck et al. 2025)"),
    "igate": ("normal", {"mean": 0.0, "std": 0.1},
              "N(0, 0.1^2) (the original xLSTM's mLSTMCell, Beck et al. 2024)"),
}
#: the forget-gate bias ramp over the heads (both references)
MLSTM_FGATE_RAMP = (3.0, 6.0)


@dataclass(frozen=True)
class MlstmGates:
    """One mLSTM's gates: its module name, the full names of the input and forget gates'
    weights and biases, the number of heads, and the layout's input-gate local name (the key of
    :data:`MLSTM_IGATE_BIAS`)."""

    name: str
    igate_weight: str
    igate_bias: str
    fgate_weight: str
    fgate_bias: str
    heads: int
    layout: str


def _gate_pair(module: nn.Module) -> tuple[str, str] | None:
    ch = module._modules
    for ig, fg in MLSTM_GATE_NAMES:
        i, f = ch.get(ig), ch.get(fg)
        if (isinstance(i, nn.Linear) and isinstance(f, nn.Linear) and i.bias is not None
                and f.bias is not None and i.out_features == f.out_features
                and i.in_features == f.in_features):
            return ig, fg
    return None


def is_mlstm(module: nn.Module) -> bool:
    """Whether ``module`` holds an mLSTM's gates (see the module docs): linear children named
    as one of :data:`MLSTM_GATE_NAMES`, both with a bias, with equal shapes (one output per
    head)."""
    return _gate_pair(module) is not None


def mlstm_gates(model: nn.Module) -> list[MlstmGates]:
    """The gates of every mLSTM of ``model``, in module order."""
    out = []
    for mname, m in model.named_modules():
        pair = _gate_pair(m)
        if pair is None:
            continue
        p = f"{mname}." if mname else ""
        ig, fg = pair
        out.append(MlstmGates(mname, f"{p}{ig}.weight", f"{p}{ig}.bias", f"{p}{fg}.weight",
                              f"{p}{fg}.bias", int(m._modules[ig].out_features), ig))
    return out
