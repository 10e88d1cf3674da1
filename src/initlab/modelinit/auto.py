"""Activation-aware plan: the initializer of each layer from the activation that follows it.

The activation after each layer comes from the model description
(:func:`initlab.modelinit.describe.describe`: one probe forward that sees activation modules,
transformers' activation classes, functional calls such as ``torch.relu(x)`` / ``F.gelu`` /
``x.relu()``, and gated units such as Llama's ``act(gate_proj(x)) * up_proj(x)``, where
``up_proj`` gets the gate's activation); the choice is the one recommender's,
:func:`initlab.core.recommend.recommend` (He for ReLU, Glorot for tanh/sigmoid, LeCun for SELU
and linear outputs, the numeric forward gain for GELU/SiLU/..., LeCun with a note when the
activation is unknown), and its reason is the report's ``why``, which names the activation
found. ``tanh="critical"`` puts tanh layers on the edge of chaos instead (Schoenholz et al.
2017).

Depth (issue #11): the *plain depth* is the number of calls of weighted layers (Linear, Conv*,
ConvTranspose*, HF Conv1D) on the main path, i.e. not inside a residual branch (embeddings, norms,
RNNs and attention do not count); a layer reused in forward counts once per call, and its ``why``
says so (:meth:`~initlab.modelinit.describe.ModelDescription.plain_depth` has the limits). Each layer's recommendation gets that depth, whether it sits in
a residual branch, and its kind (``"conv"`` for a convolution with in_channels <= out_channels,
else ``"dense"``: an orthogonal matrix over the flattened kernel), so a plain stack deeper than
:data:`initlab.core.recommend.DEEP` gets the isometric choices, with the recommended bias
initializer on the layer's bias. ``isometry=True`` (the ``isometry`` plan) asks for them at any
depth.

Other parameters: an LSTM's forget-gate bias 1 (``bias_ih``'s ``gate_f`` rows; Jozefowicz et
al. 2015), RNN input weights glorot_uniform, recurrent weights orthogonal per gate (Saxe
et al. 2014), attention in_proj q/k/v Glorot per block; biases zero; norms 1/0; embeddings by the
plans' embedding rule (N(0, 1), or N(0, 1/dim) when the token embedding is tied to the readout).
"""

from __future__ import annotations

from typing import Any, TypedDict

import torch.nn as nn

from ..core.distributions import LOOKS_LINEAR_MIRRORS, looks_linear_misfit
from ..core.fans import to_torch_shape
from ..core.recommend import DEEP_RELU, check_spread, recommend
from ..core.registry import get as get_init
from ..core.validation import check_choice
from .builtin_rules import (
    embedding_rule,
    expert_rule,
    leading_rules,
    norm_types,
    router_types,
    table_rules,
)
from .dataflow_ops import DENSE_USES, MIRROR_SAFE
from .describe import DEPTH_KINDS, activation_name, describe  # noqa: F401 (re-export)
from .experts import expert_part
from .params import CONV_TYPES, CONVT_TYPES, RNN_TYPES
from .rules import Plan, Rule

LAYERS = (nn.Linear, *CONV_TYPES, *CONVT_TYPES)


def choose(act: Any, *, tanh: str = "glorot", readout: bool = False, residual: bool = False,
           depth: int | None = None, layer: str = "dense", isometry: bool | None = None,
           spread: float | None = None, deep_relu: str = "looks_linear",
           mirrored_input: Any = None):
    """``(weight initializer, bias initializer, why)`` for a layer followed by ``act`` (a
    description's activation)."""
    name = activation_name(act)
    if tanh == "critical" and name == "tanh" and mirrored_input is None:
        init = get_init("critical", activation="tanh")
        return init, init, f"tanh follows: edge of chaos, {init!r} (Schoenholz et al. 2017)"
    rec = recommend(act, depth=depth, residual=residual, layer=layer, isometry=isometry,
                    role="readout" if readout else "hidden", spread=spread,
                    deep_relu=deep_relu, mirrored_input=mirrored_input)
    return rec.initializer, rec.bias, rec.reason


class _How(TypedDict):
    """What :func:`choose` is told of a layer, beside its activation."""

    tanh: str
    readout: bool
    depth: int | None
    layer: str
    residual: bool
    isometry: bool | None
    spread: float | None


def _looks_linear_misfit(desc, layer, position: str) -> str | None:
    """Why ``layer``'s weight cannot hold looks-linear weights at ``position`` (None: it can),
    by the distribution's own rule (:func:`initlab.core.distributions.looks_linear_misfit`) on
    the weight's torch-layout shape (the description's layout: HF Conv1D stores ``(in, out)``)."""
    free = layer.kind == "free"
    p = _weight(desc, layer)
    dense = free and p is not None and len(p.shape) == 2 and layer.use in DENSE_USES
    if p is None or not (layer.kind in ("linear", "hf_conv1d", "conv") or dense or
                         (free and layer.conv is not None)):
        return "looks-linear weights are for dense and conv layers"
    if layer.conv is not None and layer.conv[2] != 1:
        return (f"looks-linear mirrors all channels, a grouped conv (groups = "
                f"{layer.conv[2]}) keeps them apart")
    misfit = looks_linear_misfit(to_torch_shape(p.shape, p.layout), position)
    return f"looks-linear does not fit: the weight {misfit[0]}" if misfit else None


def _weight(desc, layer):
    """``layer``'s weight parameter (a free weight's own), None when it has none."""
    if layer.kind == "free":
        return desc.param(layer.name)
    has = isinstance(getattr(layer.module, "weight", None), nn.Parameter)
    return desc.param(f"{layer.name}.weight") if has else None


def plain_depth(desc) -> int:
    """Calls of weighted layers on the description's main path (not inside a residual branch):
    the description's own :meth:`~initlab.modelinit.describe.ModelDescription.plain_depth`."""
    return desc.plain_depth()


def _layer_kind(layer) -> str:
    """``"conv"`` when delta-orthogonal kernels fit the layer (a convolution, in <= out)."""
    if layer.conv is not None and layer.conv[0] <= layer.conv[1]:
        return "conv"
    return "dense"


def _expert_rules(desc, layer, **how) -> list[Rule]:
    """``auto``'s rules for an expert bank: each input projection (``gate_up_proj``,
    ``up_proj``...) as a layer followed by the bank's own activation (a gated unit's two halves
    get the gate's choice, as ``auto`` gives Llama's ``gate_proj`` and ``up_proj``), the output
    projection (``down_proj``) as a layer followed by what follows the bank (usually the
    residual addition: linear); every expert drawn with one expert's fans. Per-expert biases
    get their projection's bias choice."""
    rules: list[Rule] = []
    prefix = f"{layer.name}." if layer.name else ""
    label = f"auto {layer.name or '(root)'}"
    own = [p for p in desc.params if p.module_name == layer.name and p.kind == "experts"]
    for p in (q for q in own if len(q.shape) == 3):
        local = p.local
        init, bias, why = choose(p.activation, readout=False, layer="dense",
                                 deep_relu="orthogonal", **how)
        part = "input" if expert_part(local) == "in" else "output"
        found = f" [{part} projection of an expert bank, per expert; found by " \
                f"{desc.method}: {p.activation_why}]"
        rules.append(Rule(f"{prefix}{local}", init, label=label, why=why + found))
        for b in own:
            if b.role == "bias" and b.local.startswith(local):
                rules.append(Rule(f"{prefix}{b.local}", bias, label=label, why=why))
    return rules


def following_activations(model: nn.Module, batch: Any = None
                          ) -> tuple[dict[str, Any], str]:
    """``({layer name: activation}, how)`` from the model description."""
    desc = describe(model, batch)
    return {layer.name: layer.activation for layer in desc.layers}, desc.method


def auto_plan(model: nn.Module, *, batch: Any = None, tanh: str = "glorot",
              isometry: bool | None = None, spread: float | None = None,
              deep_relu: str = "looks_linear") -> Plan:
    """The activation-aware plan for ``model`` (see module docs); ``isometry``: None (deep
    plain stacks get the isometric choices), True (always: the ``isometry`` plan), False
    (never); ``spread``: the isometric point's target spread for tanh-like activations
    (:func:`initlab.core.recommend.recommend`; default
    :data:`initlab.core.criticality.ISOMETRY_SPREAD_TARGET`); ``deep_relu``: the dense layers
    of a deep plain ReLU-family stack get ``"looks_linear"`` weights (default; each layer's
    position, first/hidden/last, from the dataflow: a layer fed by one whose output is mirrored
    folds it back) or ``"orthogonal"`` ones with He's gain."""
    check_choice(tanh, "tanh", ("glorot", "critical"))
    check_spread(spread)  # before the probe forward: a bad value fails first
    check_choice(deep_relu, "deep_relu", DEEP_RELU)
    desc = describe(model, batch)
    depth = desc.plain_depth() or None
    inside = desc.branch_layers()
    counted = {layer.name for layer in desc.depth_layers()}
    # a readout tied to the input embedding keeps the embedding rule (the input embedding wins)
    tied = {n for p in desc.params if p.role == "embedding" for n in p.aliases}
    rules: list[Rule] = leading_rules(model)
    mirrored: dict[str, Any] = {}  # layer -> the activation after it, for mirrored outputs
    dataflow = desc.method != "names-fallback"
    for layer in desc.layers:
        weight = layer.name if layer.kind == "free" else f"{layer.name}.weight"
        if layer.kind in ("rnn", "mha") or weight in tied:
            continue
        residual = layer.residual_branch is not None or layer.name in inside
        if layer.kind == "experts":
            rules += _expert_rules(desc, layer, tanh=tanh, depth=depth, residual=residual,
                                   isometry=isometry, spread=spread)
            continue
        kind = _layer_kind(layer)
        # fed by exactly one layer whose output is mirrored, on the main path, through nothing
        # that breaks the pairing [f(u), f(-u)] (dataflow_ops.MIRROR_SAFE): fold it back
        feed = (mirrored.get(layer.inputs[0]) if len(layer.inputs) == 1 and not residual
                else None)
        broken = sorted(layer.via - MIRROR_SAFE) if feed is not None else []
        if broken:
            feed = None
        how = _How(tanh=tanh, readout=layer.is_readout, depth=depth, layer=kind,
                   residual=residual, isometry=isometry, spread=spread)
        init, bias, why = choose(layer.activation, deep_relu=deep_relu, mirrored_input=feed,
                                 **how)
        if init.name == "looks_linear" and layer.conv is not None and kind == "dense":
            # a conv with in > out: looks-linear needs no in <= out, and is a centre-tap kernel
            how["layer"] = "conv"
            init, bias, why = choose(layer.activation, deep_relu=deep_relu,
                                     mirrored_input=feed, **how)
        own = _How(**how)
        own["layer"] = kind     # without looks-linear: a conv with in > out is dense again
        if init.name == "looks_linear" and not dataflow:
            # positions come from the dataflow; without it every layer would be "first"
            init, bias, why = choose(layer.activation, deep_relu="orthogonal", **own)
            why += (f" (not looks-linear: placing its layers needs the dataflow, and this "
                    f"description is {desc.method}; pass `batch=` to apply)")
        # a weight that cannot hold its looks-linear position: fold a mirrored input back
        # ("last": only the input side must be even), else the choice without looks-linear
        for fallback in ([feed] if feed is not None else []) + [None]:
            misfit = (_looks_linear_misfit(desc, layer, init.params["position"])
                      if init.name == "looks_linear" else None)
            if not misfit:
                break
            init, bias, why = choose(layer.activation, deep_relu="orthogonal",
                                     mirrored_input=fallback, **own)
            why += f" ({misfit}; weight {tuple(_weight(desc, layer).shape)})"
        if broken:
            why += (f" (fed by looks-linear `{layer.inputs[0]}` through "
                    f"{', '.join(f'`{b}`' for b in broken)}, which breaks its mirrored pairs: "
                    "not folded back)")
        if init.name == "looks_linear" and LOOKS_LINEAR_MIRRORS[init.params["position"]][0]:
            mirrored[layer.name] = layer.activation  # its output is [u, -u]: fold it back
        if layer.conv is not None and kind == "dense" and init.name == "orthogonal":
            why += " (in_channels > out_channels: orthogonal over the flattened kernel)"
        if layer.gated_by:
            why += f" (gated by `{layer.gated_by}`)"
        if layer.calls > 1 and layer.name in counted:
            why += (f" (`{layer.name}` runs {layer.calls} times in forward: each call counts "
                    f"towards the plain depth, {depth})")
        prefix = f"{layer.name}." if layer.name else ""
        label = f"auto {layer.name or '(root)'}"
        found = f" [found by {desc.method}: {layer.activation_why}]"
        free = layer.kind == "free"     # a free weight: the rule names the parameter
        rules.append(Rule(layer.name if free else f"{prefix}weight", init, label=label,
                          why=why + found))
        if bias.name != "zeros" and not free and getattr(layer.module, "bias", None) is not None:
            rules.append(Rule(f"{prefix}bias", bias, label=label, why=why))
        rules += [Rule(b, bias, label=label, why=f"{why} (a free bias: added to its output)")
                  for b in layer.biases]
    linear_like = (*LAYERS, "Conv1D", *router_types(model))
    rules += [
        Rule(norm_types(model), weight="ones", bias="zeros", label="norm",
             why="norm: scale 1, shift 0"),
        embedding_rule(model),
        # the forget gate open at the start: its bias 1 (bias_hh's block 0, so the sum is 1)
        Rule((nn.LSTM, nn.LSTMCell), params={"bias_ih*": "zeros"}, block_init={"gate_f": "ones"},
             label="lstm forget bias",
             why="LSTM forget-gate bias 1, the other gates 0 (Gers, Schmidhuber & Cummins 2000; "
                 "Jozefowicz, Zaremba & Sutskever 2015; Keras' unit_forget_bias): the cell "
                 "keeps its memory from the start"),
        Rule(RNN_TYPES, params={"weight_ih*": "glorot_uniform", "weight_hh*": "orthogonal",
                                 "weight_hr*": "glorot_uniform", "bias*": "zeros"},
             label="rnn", why="RNN: Glorot input weights, orthogonal recurrent gates "
                              "(Saxe et al. 2014), zero biases"),
        Rule(nn.MultiheadAttention, params={"*weight": "glorot_uniform", "*bias*": "zeros"},
             label="attention", why="attention q/k/v: Glorot per (E, E) block"),
        Rule(linear_like, bias="zeros", label="biases", why="biases zero"),
        Rule(linear_like, weight="lecun_normal", label="layers",
             why="layer not in the description: LeCun, gain 1"),
        *expert_rule(model, "lecun_normal", label="experts",
                     why="expert bank not in the description: LeCun per expert, gain 1"),
        *table_rules(model),
    ]
    return Plan(rules, name="auto", warn_unused=False,
                description=f"activation-aware (activations found by {desc.method})",
                options={**({"spread": float(spread)} if spread is not None else {}),
                         **({"deep_relu": deep_relu} if deep_relu != "looks_linear" else {})}
                or None)
