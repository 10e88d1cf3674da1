"""The rules every built-in plan shares: norms, the one embedding rule (for tables and free
token/position parameters alike, see :mod:`initlab.modelinit.plans`, "Embeddings"), MoE
routers and expert banks, layer scales, attention sinks and state-space mixers."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from ..core.registry import get as get_init
from .adapters import lora_rules
from .describe import describe
from .experts import is_router, routing_biases
from .params import FREE_TABLE_GLOBS, NORM_TYPES, module_kind
from .rules import Rule
from .rwkv import rwkv_blocks
from .ssm import MLSTM_FGATE_RAMP, MLSTM_IGATE_BIAS, gated_decays, lru_units, mixers, mlstm_gates
from .tables import (
    activation_params,
    differential_lambdas,
    layer_scale_value,
    layer_scales,
    logit_scales,
    relative_position_tables,
    response_norm_params,
)


def ssm_rules(model: nn.Module | None) -> list[Rule]:
    """The structural parameters of every state-space mixer of ``model``
    (:func:`~initlab.modelinit.ssm.mixers`): ``A_log`` S4D-real, ``D`` ones, the time-step bias
    Mamba's log-uniform dt through softplus^-1 over the mixer's range; and of every gated
    linear-attention decay (:func:`~initlab.modelinit.ssm.gated_decays`): ``A_log`` log U(a, b),
    ``dt_bias`` the same time step; and of every RG-LRU (:func:`~initlab.modelinit.ssm.lru_units`):
    the recurrence parameter ``recurrence_radius``, each gate block N(0, 1/bw), gate biases 0;
    and of every mLSTM's gates (:func:`~initlab.modelinit.ssm.mlstm_gates`): weights 0, the
    forget-gate bias linspace(3, 6) over the heads, the input-gate bias by layout; and of every
    RWKV-4 mixing block (:func:`~initlab.modelinit.rwkv.rwkv_blocks`): its decays, bonuses and
    token-shift mixes as RWKV-4 starts them. Plans put these rules
    first: ``dt_proj.bias`` belongs to a linear layer, whose generic bias rule (zeros) would
    otherwise win, and would start every channel at one step, softplus(0) = 0.69."""
    if model is None:
        return []
    rules = []
    for mx in mixers(model):
        rules.append(Rule(mx.a_log, "s4d_real", label="state space",
                          why="SSM state matrix: S4D-real, A_log = log(1..N) along the state "
                              "axis (A = -(1..N); Gu et al. 2022, Mamba)"))
        rules.append(Rule(mx.d, "ones", label="state space",
                          why="SSM skip connection D: 1 (Mamba)"))
        if mx.dt_weight is not None and mx.dt_weight_init is not None:
            name, kw, why = mx.dt_weight_init
            rules.append(Rule(mx.dt_weight, get_init(name, **kw), label="state space", why=why))
        if mx.dt_bias is not None:
            lo, hi, fl = mx.dt_range
            rules.append(Rule(mx.dt_bias, get_init("time_step_bias", dt_min=lo, dt_max=hi,
                                                   dt_floor=fl), label="state space",
                              why=f"SSM time step: softplus(bias) log-uniform on "
                                  f"[{lo:g}, {hi:g}], floor {fl:g} ({mx.dt_source}; Mamba "
                                  "sec. 3.6)"))
    for gd in gated_decays(model):
        a, b = gd.rates
        lo, hi, fl = gd.dt_range
        rules.append(Rule(gd.a_log, get_init("decay_rate_log", low=a, high=b),
                          label="gated decay",
                          why=f"gated linear-attention decay: A_log = log U({a:g}, {b:g}) "
                              f"({gd.source})"))
        rules.append(Rule(gd.dt_bias, get_init("time_step_bias", dt_min=lo, dt_max=hi,
                                               dt_floor=fl), label="gated decay",
                          why=f"gated decay's time step: softplus(bias) log-uniform on "
                              f"[{lo:g}, {hi:g}], floor {fl:g} ({gd.source})"))
    for lu in lru_units(model):
        a, b = lu.radii
        rules.append(Rule(lu.param, get_init("recurrence_radius", min_rad=a, max_rad=b),
                          label="recurrence",
                          why=f"RG-LRU recurrence: a = exp(-softplus(x)), a^2 ~ U({a:g}^2, "
                              f"{b:g}^2) ({lu.source}; Griffin, De et al. 2024)"))
        for w, bias, bw in lu.gates:
            rules.append(Rule(w, "lecun_normal", label="recurrence",
                              why=f"RG-LRU gate: block-diagonal, one {bw}x{bw} block per head "
                                  f"feeding a sigmoid: LeCun per block, N(0, 1/{bw}) (Griffin's "
                                  "BlockDiagonalLinear)"))
            if bias is not None:
                rules.append(Rule(bias, "zeros", label="recurrence",
                                  why="RG-LRU gate bias: 0"))
    start, end = MLSTM_FGATE_RAMP
    for g in mlstm_gates(model):
        for w, which in ((g.igate_weight, "input"), (g.fgate_weight, "forget")):
            rules.append(Rule(w, "zeros", label="mlstm gate",
                              why=f"mLSTM {which} gate weight: 0, the gate starts from its bias "
                                  "(xLSTM, Beck et al. 2024)"))
        name, kw, src = MLSTM_IGATE_BIAS[g.layout]
        rules.append(Rule(g.igate_bias, get_init(name, **kw), label="mlstm gate",
                          why=f"mLSTM exponential input gate bias: {src}"))
        rules.append(Rule(g.fgate_bias, get_init("linspace", start=start, end=end),
                          label="mlstm gate",
                          why=f"mLSTM forget gate bias: linspace({start:g}, {end:g}) over the "
                              f"{g.heads} heads, sigmoid = 0.95..0.998 (xLSTM, Beck et al. 2024)"))
    for blk in rwkv_blocks(model):
        for role, (name, kw, why) in blk.inits().items():
            rules.append(Rule(blk.params[role], get_init(name, **kw), label="rwkv", why=why))
    return rules


def norm_types(model: nn.Module | None) -> tuple[Any, ...]:
    """torch's norm classes plus, by class name, every norm of another class in ``model``
    (Llama's ``LlamaRMSNorm``, T5's ``T5LayerNorm``, a user's RMSNorm: see
    :func:`initlab.modelinit.params.looks_like_norm`)."""
    extra: set[str] = set()
    if model is not None:
        extra = {type(m).__name__ for m in model.modules()
                 if module_kind(m) == "norm" and not isinstance(m, NORM_TYPES)}
    return (*NORM_TYPES, *sorted(extra))


def router_types(model: nn.Module | None) -> tuple[str, ...]:
    """Class names of the mixture-of-experts routers in ``model``
    (:func:`~initlab.modelinit.params.is_router`: linear layers in all but their class), for
    the rules that treat them as ``nn.Linear``."""
    if model is None:
        return ()
    return tuple(sorted({type(m).__name__ for m in model.modules() if is_router(m)}))


def expert_types(model: nn.Module | None) -> tuple[str, ...]:
    """Class names of the expert banks in ``model`` (module kind ``experts``: stacked
    per-expert matrices, see :func:`~initlab.modelinit.params.expert_count`)."""
    if model is None:
        return ()
    return tuple(sorted({type(m).__name__ for m in model.modules()
                         if module_kind(m) == "experts"}))


def expert_rule(model: nn.Module | None, weight: Any, bias: Any = "zeros", *,
                label: str = "experts", why: str = "") -> list[Rule]:
    """The rule a named scheme gives every expert bank of ``model``: ``weight`` for each
    expert's matrices (drawn per expert, with one expert's fans), ``bias`` for per-expert
    biases; no rule when the model has no bank."""
    banks = expert_types(model)
    if not banks:
        return []
    return [Rule(banks, params={"*bias*": bias, "*": weight}, label=label,
                 why=why or "expert bank: each expert's matrix initialized as a layer of its "
                            "own shape and fans")]


def _tied(model: nn.Module | None) -> list[str]:
    if model is None:
        return []
    return [p.name for p in describe(model).tied_embeddings()]


def _embedding_init(model: nn.Module | None, embedding: Any) -> tuple[Any, str]:
    """The one initializer (and its why) of every embedding under a named scheme."""
    if embedding != "normal":
        return embedding, "embeddings: the plan's own rule"
    if tied := _tied(model):
        return "lecun_normal", (
            f"`{tied[0]}` is tied to the readout: every embedding N(0, 1/dim) (LeCun for the "
            "readout it also is: logits std ~1 over normalized features; one scale for "
            "token/position/type embeddings)")
    return get_init("normal", mean=0.0, std=1.0), "embeddings: N(0, 1) as torch does"


def embedding_rule(model: nn.Module | None, embedding: Any = "normal") -> Rule:
    """The one embedding rule of the named schemes (see the module docs, "Embeddings"), on
    ``nn.Embedding`` / ``nn.EmbeddingBag`` tables."""
    init, why = _embedding_init(model, embedding)
    return Rule((nn.Embedding, nn.EmbeddingBag), weight=init, label="embedding", why=why)


def free_table_rule(model: nn.Module | None, embedding: Any = "normal") -> Rule:
    """The same rule on free token/position tables
    (:data:`~initlab.modelinit.params.FREE_TABLE_GLOBS`: ViT's ``cls_token`` and
    ``position_embeddings``, timm's ``pos_embed``), whose fans are those of a table of their
    last dimension. Plans put it last: no layer's parameter has such a name, so it changes no
    other match and no other rule's number."""
    init, why = _embedding_init(model, embedding)
    return Rule("*", params={g: init for g in FREE_TABLE_GLOBS}, label="token/position",
                why=why + "; a free token/position table is an embedding of its last dimension")


def layer_scale_rules(model: nn.Module | None) -> list[Rule]:
    """Every layer scale of ``model`` (:func:`~initlab.modelinit.tables.layer_scales`: BEiT's
    ``lambda_1``, DINOv2's ``lambda1``, ConvNeXt's ``layer_scale_parameter``) at the constant
    the architecture starts it at (CaiT's small epsilon that lets a deep stack start near the
    identity): the config's value (``config.layer_scale_init_value``, ``layerscale_value``), else,
    for a tensor already holding one constant, that constant (the constructor's). A layer scale
    with neither (on the meta device, no config) is left to the other rules: unmatched, said by
    the plan's warning (``materialize``: an error)."""
    if model is None:
        return []
    value, where = layer_scale_value(model)
    rules = []
    for name, t in layer_scales(model):
        v, src = value, where
        flat = t.detach().reshape(-1)
        if v is None and not t.is_meta and t.numel() and bool((flat == flat[0]).all()):
            v, src = float(flat[0]), "the constructor's constant, read from the tensor"
        if v is not None:
            rules.append(Rule(name, get_init("constant", value=v), label="layer scale",
                              why=f"layer scale: constant {v:g} ({src})"))
    return rules


def free_rules(model: nn.Module | None, weight: Any, bias: Any) -> list[Rule]:
    """The plan's ``weight`` for each free weight of the model's description (a parameter that a
    product reads as a layer's weight outside any layer module: XLNet's einsum projections
    ``q``/``k``/``v``/``o``/``r``), drawn with the fans of that use, and its ``bias`` for each
    free bias (a parameter added to a layer's output: XLNet's ``r_w_bias``, GPT-NeoX-Japanese's
    ``dense_bias``), with its layer's fans."""
    if model is None:
        return []
    desc = describe(model)
    rules = [Rule(x.name, weight, label="free weights",
                  why=f"a free weight ({x.use}): the plan's weight rule, fans {x.fans}")
             for x in desc.layers if x.kind == "free"]
    return rules + [Rule(b, bias, label="free biases",
                         why=f"a free bias, added to `{x.name}`'s output: the plan's bias rule")
                    for x in desc.layers for b in x.biases]


def table_rules(model: nn.Module | None, embedding: Any = "normal") -> list[Rule]:
    """The rules every plan ends with, on parameters that are neither layers nor norms: layer
    scales (:func:`layer_scale_rules`), attention sinks (:func:`attention_sink_rules`),
    relative-position tables, logit temperatures, response norms, differential-attention
    lambdas, learnable activations' parameters (PReLU, xIELU) and free
    token/position tables
    (:func:`free_table_rule`, with ``embedding``). Their names are
    disjoint, so their order among themselves changes no match."""
    return [*layer_scale_rules(model), *attention_sink_rules(model),
            *relative_position_rules(model), *logit_scale_rules(model),
            *response_norm_rules(model), *differential_lambda_rules(model),
            *activation_param_rules(model), free_table_rule(model, embedding)]


def leading_rules(model: nn.Module | None) -> list[Rule]:
    """The rules every plan puts first, on parameters that belong to a layer (so a layer's
    generic weight or bias rule would otherwise take them) but are not drawn as one: a
    state-space mixer's and a gated decay's structure (:func:`ssm_rules`) and routing biases
    (:func:`routing_bias_rules`: Laguna's router holds its weight and its routing bias side
    by side, and a ``*bias*`` rule would draw the routing bias as a layer's bias), and LoRA
    adapters (:func:`~initlab.modelinit.adapters.lora_rules`: B = 0, the model starts as its
    base)."""
    return [*lora_rules(model), *ssm_rules(model), *routing_bias_rules(model)]


def routing_bias_rules(model: nn.Module | None) -> list[Rule]:
    """Routing biases held as parameters (:func:`~initlab.modelinit.experts.routing_biases`:
    Ernie 4.5's ``e_score_correction_bias``) start at 0, no expert favoured (DeepSeek-V3's
    auxiliary-loss-free balancing; Hugging Face zeroes it)."""
    if model is None:
        return []
    return [Rule(n, "zeros", label="routing bias",
                 why="routing bias (load balancing without an auxiliary loss): 0, no expert "
                     "favoured") for n in routing_biases(model)]


def response_norm_rules(model: nn.Module | None) -> list[Rule]:
    """ConvNeXt V2's global response norms (:func:`~initlab.modelinit.tables.
    response_norm_params`) start at gamma = beta = 0, the identity (Woo et al. 2023, "ConvNeXt
    V2", section 3; Hugging Face and timm zero both)."""
    if model is None:
        return []
    return [Rule(n, "zeros", label="response norm",
                 why="global response norm (ConvNeXt V2): gamma, beta 0, the block starts "
                     "as the identity") for n in response_norm_params(model)]


def relative_position_rules(model: nn.Module | None) -> list[Rule]:
    """Relative-position bias tables (:func:`~initlab.modelinit.tables.relative_position_tables`:
    Swin's, BEiT's, LeViT's) start at 0: every offset's logit bias equal, no positional preference at
    init (Hugging Face zeroes them; timm draws N(0, 0.02^2))."""
    if model is None:
        return []
    return [Rule(n, "zeros", label="relative position",
                 why="relative-position logit bias: 0, no positional preference at init")
            for n in relative_position_tables(model)]


def logit_scale_rules(model: nn.Module | None) -> list[Rule]:
    """Learned logit temperatures (:func:`~initlab.modelinit.tables.logit_scales`: CLIP's
    ``logit_scale`` = log(1/0.07), SigLIP's log 10 and bias -10, Swin-V2's per-head log 10) at
    the constant the architecture starts them at; one with no known constant is left to the
    other rules (unmatched, said by the plan's warning)."""
    if model is None:
        return []
    return [Rule(name, get_init("constant", value=v), label="logit scale",
                 why=f"logit temperature: constant {v:g} ({where})")
            for name, v, where in logit_scales(model) if v is not None]


def activation_param_rules(model: nn.Module | None) -> list[Rule]:
    """Learnable activations' parameters (:func:`~initlab.modelinit.tables.activation_params`:
    PReLU's slope, xIELU's alphas) at the activation's own start."""
    if model is None:
        return []
    return [Rule(name, get_init("constant", value=v), label="activation", why=why)
            for name, v, why in activation_params(model)]


def differential_lambda_rules(model: nn.Module | None) -> list[Rule]:
    """Differential attention's lambda vectors (:func:`~initlab.modelinit.tables.
    differential_lambdas`: DiffLlama's ``lambda_q1``/``k1``/``q2``/``k2``) start N(0, std^2),
    std the config's ``lambda_std_dev`` (0.1 in Ye et al. 2024), so lambda starts near its
    ``lambda_init``."""
    if model is None:
        return []
    names, std, where = differential_lambdas(model)
    return [Rule(n, get_init("normal", std=std), label="differential attention",
                 why=f"differential-attention lambda: N(0, {std:g}^2) ({where})")
            for n in names]


def attention_sink_rules(model: nn.Module | None) -> list[Rule]:
    """Attention-sink logits (GPT-OSS's ``sinks``: one learned logit per head, a key every query
    attends to, held by an attention module as a 1-D ``sinks`` parameter) start at 0: the sink is
    one more key with logit 0, as the model's other logits nearly are at init (Hugging Face
    draws N(0, 0.02^2), i.e. within 0.02 of it)."""
    if model is None:
        return []
    names = [f"{mname}.sinks" if mname else "sinks" for mname, m in model.named_modules()
             if "attention" in type(m).__name__.lower()
             and isinstance(m._parameters.get("sinks"), torch.Tensor)
             and m._parameters["sinks"].dim() == 1]
    return [Rule(n, "zeros", label="attention sinks",
                 why="attention-sink logit per head: 0, one more key with the logit the "
                     "others start near") for n in names]
