"""Mixture-of-experts layers: what a router and an *expert bank* are, and how a bank's stacked
matrices are laid out. The one owner of these facts: :mod:`initlab.modelinit.params` reads
them to describe each tensor (a bank's 3-D parameter is one block per expert, each with one
expert's fans), the probe to run a bank shape-only (its routing is data-dependent), the plans to
match routers as linear layers and to find a bank's output projection.

Since transformers v5 an MoE layer stores its experts stacked: ``MixtralExperts`` holds
``gate_up_proj`` (E, 2I, H) and ``down_proj`` (E, H, I), used as ``F.linear(x, W[e])``; GPT-OSS
and Llama 4 store (E, H, 2I) / (E, I, H) and say so with ``is_transposed=True``. Its router
(``MixtralTopKRouter``) is a linear layer of its own class: a 2-D ``weight`` (E, H).
"""

from __future__ import annotations

import fnmatch
from typing import Any

import torch
import torch.nn as nn

from ..core.activations import lookup_module

#: attributes in which an expert bank declares its number of experts (transformers' MoE
#: experts: ``num_experts``; others ``num_local_experts``, ``n_experts``, ``n_routed_experts``)
EXPERT_COUNT_ATTRS = ("num_experts", "num_local_experts", "n_experts", "n_routed_experts")
#: local names (globs) of an expert bank's *output* projection, the matrix that maps each
#: expert's hidden units back to the model width (transformers' ``down_proj``, the original
#: Mixtral / torchtitan ``w2``); every other matrix of a bank is an input projection
#: (``gate_up_proj``, ``gate_proj``, ``up_proj``, ``w1``, ``w3``)
EXPERT_OUTPUT_GLOBS = ("*down*", "w2", "*_w2", "*out*")
#: attributes holding an expert bank's model width (the input width of its input projections
#: and the output width of its output projection), read to find a bank's layout
EXPERT_WIDTH_ATTRS = ("hidden_dim", "hidden_size", "dim", "d_model")


def _leaf_params(module: nn.Module) -> list[torch.Tensor] | None:
    """The module's own parameters, or None when a child module holds parameters."""
    if any(True for c in module.children() for _ in c.parameters()):
        return None
    return [p for p in module._parameters.values() if p is not None]


#: local names of *routing biases*: DeepSeek-V3's auxiliary-loss-free load-balancing bias
#: (Wang et al. 2024), added to the routing scores for the top-k choice only and moved by the
#: experts' load outside the gradient; held by the router (a buffer in DeepSeek-V3) or, as a
#: frozen parameter, by the router itself (Laguna's) or by a child of it (Ernie 4.5's
#: ``moe_statics``); AFMoE's ``expert_bias`` is the same bias held by the MoE block and passed
#: to its router. It starts at 0: no expert favoured.
ROUTING_BIAS_NAMES = ("e_score_correction_bias", "expert_bias")


def routing_biases(model: nn.Module) -> list[str]:
    """Full names of the routing-bias parameters of ``model`` (:data:`ROUTING_BIAS_NAMES`)."""
    return [n for n, p in model.named_parameters()
            if n.rsplit(".", 1)[-1] in ROUTING_BIAS_NAMES
            and sum(s > 1 for s in p.shape) <= 1]   # one entry per expert (Ernie's is (1, E))


def is_router(module: nn.Module) -> bool:
    """A mixture-of-experts router of a class initlab does not otherwise know, a linear layer
    in all but its class: its class name says so (contains ``Router`` or ends with ``Gate``:
    transformers' ``MixtralTopKRouter``, DeepSeek's ``MoEGate``), no child holds parameters
    other than routing biases (:data:`ROUTING_BIAS_NAMES`: Ernie 4.5's ``moe_statics``), and
    its own parameters are a 2-D ``weight`` (experts x width, read by ``F.linear``), optionally
    a 1-D ``bias`` of one entry per expert and routing biases (Laguna's)."""
    cls = type(module).__name__
    if "router" not in cls.lower() and not cls.endswith("Gate"):
        return False
    if any(n.rsplit(".", 1)[-1] not in ROUTING_BIAS_NAMES
           for c in module.children() for n, _ in c.named_parameters()):
        return False
    params = {k: v for k, v in module._parameters.items() if v is not None}
    w, b = params.get("weight"), params.get("bias")
    return (set(params) <= {"weight", "bias", *ROUTING_BIAS_NAMES} and isinstance(w, torch.Tensor)
            and w.dim() == 2
            and (b is None or tuple(b.shape) == (w.shape[0],)))


def expert_count(module: nn.Module) -> int | None:
    """The number of experts E of an *expert bank* (a mixture-of-experts layer that stores
    its experts' matrices stacked, as transformers' ``MixtralExperts`` does since v5:
    ``gate_up_proj`` (E, 2I, H), ``down_proj`` (E, H, I)), else None.

    A bank has no child holding parameters, at least one 3-D parameter, every parameter 3-D
    (a matrix per expert) or 2-D (a bias per expert) with the same leading size E, and
    declares E (:data:`EXPERT_COUNT_ATTRS`) or, declaring nothing, has a class name ending in
    ``Experts``."""
    params = _leaf_params(module)
    if not params or not any(p.dim() == 3 for p in params):
        return None
    e = params[0].shape[0]
    if any(p.dim() not in (2, 3) or p.shape[0] != e for p in params):
        return None
    declared = next((v for v in (getattr(module, a, None) for a in EXPERT_COUNT_ATTRS)
                     if isinstance(v, int) and not isinstance(v, bool)), None)
    if declared == e or (declared is None and type(module).__name__.endswith("Experts")):
        return int(e)
    return None


def expert_part(local: str) -> str:
    """``"out"`` for an expert bank's output projection (:data:`EXPERT_OUTPUT_GLOBS`; its bias
    ``down_proj_bias`` too), else ``"in"``."""
    stem = local[:-len("_bias")] if local.endswith("_bias") else local
    return "out" if any(fnmatch.fnmatchcase(stem, g) for g in EXPERT_OUTPUT_GLOBS) else "in"


def expert_output_width(module: nn.Module) -> int | None:
    """The width of an expert bank's output (its output projection's out size, in the layout
    :func:`expert_layout` finds), or None when the bank has no output projection."""
    for local, p in module._parameters.items():
        if p is not None and p.dim() == 3 and expert_part(local) == "out":
            layout = expert_layout(module, local, tuple(p.shape))[0]
            return int(p.shape[1] if layout == "torch" else p.shape[2])
    return None


def expert_layout(module: nn.Module, local: str, shape: tuple[int, ...]) -> tuple[str, str]:
    """``(layout, how)`` of one expert's matrix in a bank's 3-D parameter ``local``: ``"torch"``
    when each expert is stored (out, in), as ``F.linear(x, W[e])`` reads it, else
    ``"torch_transposed"`` ((in, out), read by ``x @ W[e]`` or ``bmm``).

    Found, in order: transformers' own flag ``is_transposed`` on the bank; the bank's model
    width (:data:`EXPERT_WIDTH_ATTRS`), which is the input width of an input projection and the
    output width of the output projection (:func:`expert_part`); else (out, in) is assumed,
    and ``how`` says so (a rule's ``layout=`` overrides it)."""
    flag = getattr(module, "is_transposed", None)
    if isinstance(flag, bool):
        return ("torch_transposed" if flag else "torch"), f"`is_transposed={flag}` on the bank"
    h = next((v for v in (getattr(module, a, None) for a in EXPERT_WIDTH_ATTRS)
              if isinstance(v, int) and not isinstance(v, bool)), None)
    if h is not None and len(shape) == 3:
        a, b = shape[1], shape[2]
        torch_fits = (a == h) if expert_part(local) == "out" else (b == h)
        transposed_fits = (b == h) if expert_part(local) == "out" else (a == h)
        side = "output" if expert_part(local) == "out" else "input"
        if torch_fits:
            return "torch", f"the bank's width {h} as the {side} size of an (out, in) expert"
        if transposed_fits:
            return "torch_transposed", (f"the bank's width {h} as the {side} size of an "
                                        "(in, out) expert")
    return "torch", ("(out, in) per expert assumed, as F.linear(x, W[e]) reads it (no "
                     "`is_transposed` flag or model width on the bank); a rule's "
                     "layout='torch_transposed' gives (in, out)")


def expert_activation(bank: nn.Module) -> tuple[Any, str]:
    """``(activation, why)`` between an expert bank's input and output projections: the
    activation module the bank holds (transformers' ``act_fn``), as the description's
    activation entries are (``(Activation, param)``), or ``"unknown"``. The bank's forward is
    not probed (which tokens reach which expert is data-dependent), so this is read from the
    bank's modules."""
    for cname, child in bank.named_children():
        act = lookup_module(child)
        if act is not None:
            return act, (f"`{cname}` ({type(child).__name__}) inside the expert bank, between "
                         "its input and output projections")
    return "unknown", ("expert bank with no activation module initlab recognizes (its forward "
                       "is not probed: the routing is data-dependent)")


def closing_params(desc: Any, layer: str) -> tuple[list[str], list[str]]:
    """``(weights, biases)``: the full names of the parameters through which ``layer`` (a layer
    of the model description ``desc``) writes its output, i.e. what a residual plan scales or
    zeroes when ``layer`` closes a branch: ``layer.weight`` / ``layer.bias``; for an expert bank
    its output projections (``down_proj``, and ``down_proj_bias`` if it has one), the input
    projections left as they are; for a free weight (kind ``"free"``, named by its parameter)
    the parameter itself. Free biases added to the layer's output come with the biases."""
    prefix = f"{layer}." if layer else ""
    info = next((x for x in desc.layers if x.name == layer), None)
    free = list(info.biases) if info is not None else []
    if info is not None and info.kind == "free":
        return [layer], free
    if info is None or info.kind != "experts":
        return [f"{prefix}weight"], [f"{prefix}bias", *free]
    ws: list[str] = []
    bs: list[str] = []
    for local, t in info.module._parameters.items():
        if t is not None and expert_part(local) == "out":
            (ws if t.dim() == 3 else bs).append(prefix + local)
    return ws, bs + free


def input_params(desc: Any, layer: str) -> list[str]:
    """The full names of an expert bank's input projections (``gate_up_proj``; ``w1``, ``w3``),
    the layers inside the bank before its output projection; ``[]`` for any other layer."""
    info = next((x for x in desc.layers if x.name == layer), None)
    if info is None or info.kind != "experts":
        return []
    prefix = f"{layer}." if layer else ""
    return [prefix + local for local, t in info.module._parameters.items()
            if t is not None and t.dim() == 3 and expert_part(local) == "in"]
