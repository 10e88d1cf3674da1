"""Activation-aware plan: look at which activation follows each layer and pick gain and family.

How the activation after a layer is found (first that works):

1. ``batch`` given: one forward pass with hooks on every leaf module records the order in which
   modules run;
2. otherwise ``torch.fx.symbolic_trace``, which also sees functional activations
   (``F.relu(x)``, ``torch.tanh(x)``, ``x.relu()``);
3. otherwise the registration order of leaf modules (right for ``nn.Sequential`` and for most
   hand-written models, which register layers in forward order).

From each Linear/Conv/ConvTranspose/Conv1D layer, modules that do not change the choice (norms,
dropout, pooling, flatten, identity) are skipped; the first activation found decides; anything
else (another layer, attention, an RNN) means "no activation" (a linear output). For
``nn.TransformerEncoderLayer`` / ``DecoderLayer``, whose activation is a function attribute,
``linear1`` is followed by ``layer.activation``.

Choices (each recorded in the report's ``why`` column):

==========================  ========================================================================
activation                  initializer
==========================  ========================================================================
ReLU, ReLU6                 he_normal: Var = 2/fan_in (He et al. 2015)
LeakyReLU(a), PReLU         he_normal(a): Var = 2/((1 + a^2) fan_in)
tanh, sigmoid, hardtanh,    glorot_uniform (Glorot & Bengio 2010), or ``critical`` with
softsign                    ``tanh="critical"`` (edge of chaos; Schoenholz et al. 2017)
SELU                        lecun_normal: Var = 1/fan_in (Klambauer et al. 2017)
GELU, SiLU, Mish, ELU,      N(0, g^2/fan_in) with the numeric forward gain g = 1/sqrt(E[f(z)^2]),
Softplus                    z ~ N(0, 1) (:func:`initlab.gain`)
none (linear output)        lecun_normal: Var = 1/fan_in (gain 1)
==========================  ========================================================================

RNN input weights get glorot_uniform, recurrent weights orthogonal per gate (Saxe et al. 2014),
attention in_proj q/k/v Glorot; biases zero; norms 1/0; embeddings N(0, 1).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..core.gains import gain as numeric_gain
from ..core.registry import get as get_init
from ..core.validation import check_choice
from .rules import Plan, Rule
from .walk import CONV_TYPES, CONVT_TYPES, NORM_TYPES

LAYERS = (nn.Linear, *CONV_TYPES, *CONVT_TYPES)
TRANSPARENT = (*NORM_TYPES, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d,
               nn.AlphaDropout, nn.Identity, nn.Flatten, nn.Unflatten, nn.MaxPool1d,
               nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
               nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
               nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)

_MODULE_ACTS: dict[type, str] = {
    nn.ReLU: "relu", nn.ReLU6: "relu", nn.LeakyReLU: "leaky_relu", nn.PReLU: "prelu",
    nn.Tanh: "tanh", nn.Sigmoid: "sigmoid", nn.Hardtanh: "hardtanh", nn.Softsign: "softsign",
    nn.SELU: "selu", nn.GELU: "gelu", nn.SiLU: "silu", nn.Mish: "mish", nn.ELU: "elu",
    nn.Softplus: "softplus",
}
_FUNC_ACTS: dict[Any, str] = {
    F.relu: "relu", torch.relu: "relu", F.relu6: "relu", F.leaky_relu: "leaky_relu",
    torch.tanh: "tanh", F.tanh: "tanh", torch.sigmoid: "sigmoid", F.sigmoid: "sigmoid",
    F.hardtanh: "hardtanh", F.softsign: "softsign", F.selu: "selu", torch.selu: "selu",
    F.gelu: "gelu", F.silu: "silu", F.mish: "mish", F.elu: "elu", F.softplus: "softplus",
}
_METHOD_ACTS = {"relu": "relu", "tanh": "tanh", "sigmoid": "sigmoid"}


def _module_act(m: nn.Module) -> tuple[str, float | None] | None:
    for t, name in _MODULE_ACTS.items():
        if isinstance(m, t):
            if name == "leaky_relu":
                return name, float(m.negative_slope)
            if name == "prelu":
                return "leaky_relu", float(m.weight.detach().flatten()[0])
            if name == "gelu" and getattr(m, "approximate", "none") == "tanh":
                return "gelu_tanh", None
            return name, None
    return None


def _is_layer(m: nn.Module) -> bool:
    return isinstance(m, LAYERS) or (type(m).__name__ == "Conv1D" and hasattr(m, "nf"))


# ----------------------------------------------------------------------------- forward order


def _order_by_hooks(model: nn.Module, batch: Any) -> list[tuple[str, Any]]:
    names = {m: n for n, m in model.named_modules()}
    order: list[tuple[str, Any]] = []
    seen: set[str] = set()
    handles = []

    def hook(mod, inp, out):
        n = names[mod]
        if n not in seen:
            seen.add(n)
            order.append(("module", n))

    for n, m in model.named_modules():
        if n and not list(m.children()) or _is_layer(m):
            handles.append(m.register_forward_hook(hook))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(*batch) if isinstance(batch, tuple) else model(batch)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return order


def _order_by_fx(model: nn.Module) -> list[tuple[str, Any]] | None:
    try:
        import torch.fx as fx

        gm = fx.symbolic_trace(model)
    except Exception:  # tracing fails on data-dependent control flow
        return None
    order: list[tuple[str, Any]] = []
    for node in gm.graph.nodes:
        if node.op == "call_module":
            order.append(("module", str(node.target)))
        elif node.op == "call_function" and node.target in _FUNC_ACTS:
            act = _FUNC_ACTS[node.target]
            slope = None
            if act == "leaky_relu":
                slope = node.kwargs.get("negative_slope", node.args[1] if len(node.args) > 1
                                        else 0.01)
            order.append(("act", (act, slope if isinstance(slope, float) else None)))
        elif node.op == "call_method" and node.target in _METHOD_ACTS:
            order.append(("act", (_METHOD_ACTS[node.target], None)))
        elif node.op in ("call_function", "call_method"):
            order.append(("op", str(node.target)))
    return order


def _order_by_registration(model: nn.Module) -> list[tuple[str, Any]]:
    return [("module", n) for n, m in model.named_modules()
            if n and (not list(m.children()) or _is_layer(m))]


_SHAPE_OPS = ("flatten", "view", "reshape", "permute", "transpose", "contiguous", "squeeze",
              "unsqueeze", "size", "getattr", "getitem", "dropout")


def following_activations(model: nn.Module, batch: Any = None
                          ) -> tuple[dict[str, tuple[str, float | None] | None], str]:
    """``({layer name: (activation, param) or None}, how)`` for every layer of ``model``."""
    how = "forward hooks"
    order = None
    if batch is not None:
        order = _order_by_hooks(model, batch)
    else:
        order = _order_by_fx(model)
        how = "torch.fx trace"
        if order is None:
            order = _order_by_registration(model)
            how = "registration order"
    mods = dict(model.named_modules())
    result: dict[str, tuple[str, float | None] | None] = {}
    for i, (kind, item) in enumerate(order):
        if kind != "module" or not _is_layer(mods[item]):
            continue
        found = None
        for kind2, item2 in order[i + 1:]:
            if kind2 == "act":
                found = item2
                break
            if kind2 == "op":
                if any(s in item2.lower() for s in _SHAPE_OPS):
                    continue
                break
            m2 = mods[item2]
            act = _module_act(m2)
            if act is not None:
                found = act
                break
            if isinstance(m2, TRANSPARENT):
                continue
            break
        result.setdefault(item, found)
    # Transformer layers: activation is a function attribute
    for n, m in model.named_modules():
        if isinstance(m, (nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)):
            act = m.activation
            if isinstance(act, nn.Module):
                found_act = _module_act(act)
                name = found_act[0] if found_act else None
            else:
                name = _FUNC_ACTS.get(act)
            if name is not None:
                result[f"{n}.linear1" if n else "linear1"] = (name, None)
    for n, m in model.named_modules():
        if _is_layer(m) and n not in result:
            result[n] = None
    return result, how


# ----------------------------------------------------------------------------- choice


def choose(act: tuple[str, float | None] | None, *, tanh: str = "glorot"):
    """``(initializer, why)`` for a layer followed by ``act``."""
    if act is None:
        return get_init("lecun_normal"), "no activation follows (linear output): LeCun, gain 1"
    name, param = act
    if name == "relu":
        return get_init("he_normal"), "ReLU follows: He et al. 2015, Var = 2/fan_in"
    if name == "leaky_relu":
        a = 0.01 if param is None else param
        return (get_init("he_normal", a=a),
                f"LeakyReLU(a={a:g}) follows: He, Var = 2/((1+a^2) fan_in)")
    if name in ("tanh", "sigmoid", "hardtanh", "softsign"):
        if tanh == "critical" and name == "tanh":
            init = get_init("critical", activation="tanh")
            return init, f"tanh follows: edge of chaos, {init!r} (Schoenholz et al. 2017)"
        return (get_init("glorot_uniform"),
                f"{name} follows: Glorot & Bengio 2010 (normalized init, gain 1)")
    if name == "selu":
        return get_init("lecun_normal"), "SELU follows: LeCun normal (Klambauer et al. 2017)"
    g = numeric_gain(name)
    return (get_init("variance_scaling", scale=g * g, mode="fan_in", distribution="normal"),
            f"{name} follows: numeric forward gain {g:.5f} = 1/sqrt(E[f(z)^2]), "
            f"Var = {g * g:.4f}/fan_in")


def auto_plan(model: nn.Module, *, batch: Any = None, tanh: str = "glorot") -> Plan:
    """The activation-aware plan for ``model`` (see module docs)."""
    check_choice(tanh, "tanh", ("glorot", "critical"))
    acts, how = following_activations(model, batch)
    rules: list[Rule] = []
    for name, act in acts.items():
        init, why = choose(act, tanh=tanh)
        prefix = f"{name}." if name else ""
        rules.append(Rule(f"{prefix}weight", init, label=f"auto {name or '(root)'}", why=why))
    rules += [
        Rule(NORM_TYPES, weight="ones", bias="zeros", label="norm", why="norm: weight 1, bias 0"),
        Rule((nn.Embedding, nn.EmbeddingBag), weight=get_init("normal"), label="embedding",
             why="embedding: N(0, 1) as torch"),
        Rule(nn.RNNBase, params={"weight_ih*": "glorot_uniform", "weight_hh*": "orthogonal",
                                 "weight_hr*": "glorot_uniform", "bias*": "zeros"},
             label="rnn", why="RNN: Glorot input weights, orthogonal recurrent gates "
                              "(Saxe et al. 2014), zero biases"),
        Rule(nn.MultiheadAttention, params={"*weight": "glorot_uniform", "*bias*": "zeros"},
             label="attention", why="attention q/k/v: Glorot per (E, E) block"),
        Rule((*LAYERS, "Conv1D"), bias="zeros", label="biases", why="biases zero"),
        Rule((*LAYERS, "Conv1D"), weight="lecun_normal", label="layers",
             why="no activation found: LeCun, gain 1"),
    ]
    return Plan(rules, name="auto", warn_unused=False,
                description=f"activation-aware (activations found by {how})")
