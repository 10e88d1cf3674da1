"""Built-in plans by name: ``initlab.plans.get(name, model, **options)``.

Every named-scheme plan applies the scheme exactly as published to every weight of Linear,
Conv*, ConvTranspose*, RNN/LSTM/GRU and their cells (per gate block), MultiheadAttention (q, k,
v blocks) and Hugging Face ``Conv1D`` layers, output layer included (Glorot without an extra gain, He with its
factor 2, orthogonal with gain 1); biases are zero unless the scheme says otherwise
(``torch_default``, ``nielsen_*``, ``critical``). Norm layers of every type (LayerNorm, GroupNorm,
BatchNorm, torch's RMSNorm, and norms of other classes found structurally: Llama's and T5's
RMSNorm) get scale 1, shift 0 and their running statistics reset. Choosing gains per activation
is the job of ``auto``.

Mixtures of experts: a router (transformers' ``MixtralTopKRouter``, DeepSeek's ``MoEGate``) is a
Linear layer; an expert bank (stacked per-expert matrices, ``MixtralExperts``) gets the scheme per
expert, each expert's matrix drawn with its own fans and stream (``torch_default``: what
``nn.Linear`` would give that expert). A bank's output projection (``down_proj``) is the layer
that closes its residual branch (:func:`initlab.modelinit.experts.closing_params`): ``gpt2``
scales it, ``zero_residual`` and ``fixup`` zero it, with every other layer whose output reaches
the same residual addition (a shared expert beside the bank).

Embeddings (token, position, type: one rule per plan)
-----------------------------------------------------
* ``gpt2``: N(0, 0.02^2), as GPT-2 publishes.
* every other plan: N(0, 1) (torch's ``nn.Embedding`` default), **unless the model's token
  embedding is tied to its readout** (GPT-2, a Llama with ``tie_word_embeddings``, BERT's MLM
  decoder): then every embedding of the model gets N(0, 1/dim) (``lecun_normal`` on the
  (num, dim) table), the LeCun rule of the readout the tensor also is, so that logits over
  normalized features have std ~1 instead of sqrt(dim) (27.7 on GPT-2 small under N(0, 1)).
  ``zeros`` zeros them.
* Free token and position tables (parameters held directly by a module of the model's own
  class and named as one: Hugging Face ViT's ``cls_token`` / ``position_embeddings``, timm's
  ``pos_embed`` / ``dist_token``, DINOv2's ``register_tokens``; the globs are
  :data:`initlab.modelinit.params.FREE_TABLE_GLOBS`) are embeddings: the same rule, with the
  fans of a table of their last dimension (N(0, 1/dim) under a tied model's rule).
* A tied tensor is initialized once, by the rule that matches its **input-embedding** name and
  module (the input embedding wins in every plan, so Fixup's zero classifier never zeroes a tied
  embedding); the report lists it under all its names.

=================  ============================================================================
name               weights / biases
=================  ============================================================================
torch_default      what PyTorch does: U(+-1/sqrt(fan_in)) for Linear/Conv weights and biases;
                   RNNs U(+-1/sqrt(hidden_size)); MHA in_proj Glorot-uniform on the packed
                   (3E, E) tensor, its biases 0; HF Conv1D N(0, 0.02^2) (its own default)
lecun              N(0, 1/fan_in) (LeCun et al. 1998, "Efficient BackProp") / 0
glorot             U(+-sqrt(6/(fan_in+fan_out))) (Glorot & Bengio 2010) / 0
he                 N(0, 2/fan_in) (He et al. 2015, "Delving Deep into Rectifiers") / 0
orthogonal         Haar orthogonal, gain 1 (Saxe et al. 2014) / 0
nielsen_default    N(0, 1/fan_in) / N(0, 1) (Nielsen, "Neural Networks and Deep Learning", ch. 3)
nielsen_large      N(0, 1) / N(0, 1) (Nielsen, ch. 1-2)
small_normal       N(0, 0.01^2) / 0 (the ``randn * 0.01`` recipe)
zeros              0 / 0 everywhere, embeddings included (shows the symmetry problem)
gpt2               N(0, 0.02^2), residual projections N(0, (0.02/sqrt(2 n_layer))^2) / 0
                   (Radford et al. 2019, "Language Models are Unsupervised Multitask Learners")
critical           N(0, sigma_w^2/fan_in) / N(0, sigma_b^2) on the edge of chaos for
                   ``activation`` (Poole et al. 2016; Schoenholz et al. 2017)
kaiming, xavier    aliases of ``he`` and ``glorot`` (torch's names)
zero_residual      He, and the last layer of each residual branch zero (Goyal et al. 2017)
fixup              Fixup (Zhang, Dauphin, Ma 2019, "Fixup Initialization: Residual Learning
                   Without Normalization")
auto               activation-aware: see :mod:`initlab.modelinit.auto`
isometry           dynamical isometry at the model's plain depth, whatever the depth: orthogonal
                   (conv: delta-orthogonal) weights on the critical line with the bias variance
                   whose predicted Jacobian spread meets the target (tanh-like), orthogonal He
                   (ReLU); :mod:`initlab.core.recommend` (Pennington et al. 2017; Xiao et al.
                   2018)
lsuv               data-dependent: see :func:`initlab.lsuv` (``apply(m, "lsuv", batch=x)``)
=================  ============================================================================

Residual branches (``gpt2``, ``zero_residual``, ``fixup``)
-----------------------------------------------------------
Found from the model's dataflow (:mod:`initlab.modelinit.dataflow`): every addition of a
layer's output to a tensor it descends from (identity shortcut) or to a shorter branch from the
same tensor (projection shortcut). The *branch* is the layers between the shortcut's source and
the addition (shortcut excluded), in dataflow order; its *closing layer* is the last of them
(for ``zero_residual``, the last norm after it inside the branch if there is one: zeroing BN's
gamma is torchvision's ``zero_init_residual``). ``blocks=`` (a glob on module names, where ``*``
crosses dots, or a callable ``(name, module) -> bool``) replaces the dataflow with a convention:
a block's branch is its Linear/Conv/ConvTranspose layers in registration order, excluding
``downsample``/``shortcut`` and nested blocks.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch.nn as nn

from ..core.registry import get as get_init
from ..core.validation import check_scalar, fail
from .builtin_rules import (
    embedding_rule,
    expert_rule,
    free_rules,
    leading_rules,
    norm_types,
    router_types,
    table_rules,
)
from .describe import describe
from .experts import closing_params, input_params
from .params import CONV_TYPES, CONVT_TYPES, NORM_TYPES, RNN_TYPES
from .rules import Plan, Rule

WEIGHTED: tuple[Any, ...] = (nn.Linear, *CONV_TYPES, *CONVT_TYPES, *RNN_TYPES,
                             nn.MultiheadAttention, "Conv1D")
LAYER_TYPES = (nn.Linear, *CONV_TYPES, *CONVT_TYPES)
SHORTCUT_NAMES = ("downsample", "shortcut")
GPT2_STD = 0.02  # Radford et al. 2019 / nanoGPT: std 0.02 for every weight
GPT2_RESIDUAL_PATTERNS = ("*c_proj.weight", "*attn.out_proj.weight", "*linear2.weight")


def _common(model: nn.Module | None, embedding: Any = "normal", *,
            zero_embeddings: bool = False) -> list[Rule]:
    return [
        Rule(norm_types(model), weight="ones", bias="zeros", label="norm",
             why="norm layers: scale 1, shift 0"),
        embedding_rule(model, "zeros" if zero_embeddings else embedding),
    ]


def _scheme(name: str, weight, bias="zeros", *, description: str, extra: Sequence[Rule] = (),
            zero_embeddings: bool = False, embedding="normal", model=None) -> Plan:
    rules = [
        *leading_rules(model),
        *extra,
        *_common(model, embedding, zero_embeddings=zero_embeddings),
        Rule((*WEIGHTED, *router_types(model)), params={"*weight*": weight, "*bias*": bias},
             label="layers"),
        *expert_rule(model, weight, bias),
        *table_rules(model, "zeros" if zero_embeddings else embedding),
        *free_rules(model, weight, bias),
    ]
    return Plan(rules, name=name, description=description, warn_unused=False)


# ----------------------------------------------------------------------------- named schemes


def torch_default(model: nn.Module | None = None) -> Plan:
    """What PyTorch's own ``reset_parameters`` do (as of torch 2.x)."""
    extra = [
        Rule(nn.modules.linear.NonDynamicallyQuantizableLinear, weight="torch_default",
             bias="zeros", label="MHA out_proj", why="MultiheadAttention zeroes out_proj.bias"),
        Rule(nn.MultiheadAttention, blocks=False, label="MHA",
             params={"in_proj_weight": "glorot_uniform", "*_proj_weight": "glorot_uniform",
                     "in_proj_bias": "zeros", "bias_k": "glorot_normal",
                     "bias_v": "glorot_normal"},
             why="torch: xavier_uniform_ on the packed (3E, E) in_proj"),
        Rule("Conv1D", weight=get_init("normal", std=0.02), bias="zeros", label="HF Conv1D",
             why="transformers' Conv1D default"),
    ]
    if model is not None:
        for mname, m in model.named_modules():
            if isinstance(m, RNN_TYPES):
                k = 1.0 / math.sqrt(m.hidden_size)
                extra.append(Rule(RNN_TYPES, get_init("uniform", low=-k, high=k),
                                  pattern=f"{mname}.*" if mname else "*",
                                  label=f"RNN {mname or '(root)'}",
                                  why=f"torch: U(+-1/sqrt(hidden_size={m.hidden_size}))"))
    return _scheme("torch_default", "torch_default", "torch_default", extra=extra, model=model,
                   description="PyTorch's default initialization")


def lecun(model=None) -> Plan:
    """LeCun, Bottou, Orr, Mueller 1998, "Efficient BackProp": weights N(0, 1/fan_in), biases 0."""
    return _scheme("lecun", "lecun_normal", model=model, description="LeCun et al. 1998: N(0, 1/fan_in)")


def glorot(model=None) -> Plan:
    """Glorot & Bengio 2010, "Understanding the difficulty of training deep feedforward
    neural networks": weights U(+-sqrt(6/(fan_in + fan_out))) (no extra gain), biases 0."""
    return _scheme("glorot", "glorot_uniform", model=model,
                   description="Glorot & Bengio 2010: U(+-sqrt(6/(fan_in+fan_out)))")


def he(model=None) -> Plan:
    """He, Zhang, Ren, Sun 2015, "Delving Deep into Rectifiers": weights N(0, 2/fan_in), biases 0."""
    return _scheme("he", "he_normal", model=model, description="He et al. 2015: N(0, 2/fan_in)")


def orthogonal(model=None) -> Plan:
    """Saxe, McClelland, Ganguli 2014, "Exact solutions to the nonlinear dynamics of
    learning in deep linear neural networks": Haar orthogonal weights (gain 1), biases 0."""
    return _scheme("orthogonal", "orthogonal", model=model, description="Saxe et al. 2014: orthogonal, gain 1")


def nielsen_default(model=None) -> Plan:
    """Nielsen, "Neural Networks and Deep Learning" ch. 3: weights N(0, 1/n_in), biases N(0, 1)."""
    return _scheme("nielsen_default", "nielsen_default", "nielsen_default", model=model,
                   description="Nielsen ch. 3: weights N(0, 1/n_in), biases N(0, 1)")


def nielsen_large(model=None) -> Plan:
    """Nielsen, "Neural Networks and Deep Learning" ch. 1-2: weights and biases N(0, 1)."""
    return _scheme("nielsen_large", "nielsen_large", "nielsen_large", model=model,
                   description="Nielsen ch. 1-2: weights and biases N(0, 1)")


def small_normal(model=None) -> Plan:
    """The ``randn(...) * 0.01`` recipe: weights N(0, 0.01^2), biases 0."""
    return _scheme("small_normal", "small_normal", model=model, description="N(0, 0.01^2) weights, zero bias")


def zeros(model=None) -> Plan:
    """Everything zero (norm layers 1/0): every hidden unit computes the same function and gets
    the same gradient, so symmetry is never broken."""
    return _scheme("zeros", "zeros", zero_embeddings=True, model=model,
                   description="all zeros (every hidden unit identical: symmetry never broken)")


def critical(model=None, *, activation: str = "tanh", sigma_b2: float | None = None) -> Plan:
    """Edge of chaos for ``activation`` (``initlab.get("critical", ...)``, from the theory)."""
    kw: dict[str, Any] = {"activation": activation}
    if sigma_b2 is not None:
        kw["sigma_b2"] = sigma_b2
    init = get_init("critical", **kw)
    return _scheme("critical", init, init, model=model,
                   description=f"critical (edge of chaos) for {activation}: {init!r}")


def _infer_n_layer(model: nn.Module | None) -> int:
    if model is None:
        raise fail("n_layer", "must be given when there is no model to count layers in", None,
                   "pass n_layer=12.")
    cfg = getattr(model, "config", None)
    for attr in ("n_layer", "num_hidden_layers"):
        if cfg is not None and isinstance(getattr(cfg, attr, None), int):
            return int(getattr(cfg, attr))
    raise fail("n_layer", "could not be inferred (no residual branch found in the model's "
               "dataflow and no config.n_layer)", None, "pass n_layer= explicitly.")


def gpt2(model: nn.Module | None = None, *, n_layer: int | None = None,
         std: float = GPT2_STD) -> Plan:
    """GPT-2 / nanoGPT: N(0, 0.02^2) weights and embeddings, zero biases, and the layers that
    close a residual branch N(0, (0.02 / sqrt(N))^2) ("we scale the weights of residual layers at
    initialization by a factor of 1/sqrt(N) where N is the number of residual layers", Radford
    et al. 2019), N the number of residual layers: the layers whose output is added to the
    residual stream (two per block, N = 2 n_layer, also in a parallel block (GPT-J, GPT-NeoX,
    Falcon), where attention and MLP outputs reach one addition; a MoE's shared expert beside
    its routed experts is one more).

    The closing layers are found structurally from the model's description (the last layer
    before each residual addition: ``c_proj`` on GPT-2, ``o_proj``/``down_proj`` on Llama, BERT's
    ``attention.output.dense``/``output.dense``, ``out_proj``/``linear2`` in
    ``nn.TransformerEncoderLayer``, whatever they are called), and N is the number found.
    ``n_layer=`` overrides N with 2 n_layer. Without a model, the name patterns
    ``GPT2_RESIDUAL_PATTERNS`` are used (documented fallback)."""
    s = check_scalar(std, "std", min_val=0.0)
    w = get_init("normal", std=s)
    extra: list[Rule] = []
    if model is not None:
        desc = describe(model)
        branches = desc.residual_branches
        if n_layer is not None:
            n = 2 * check_scalar(n_layer, "n_layer", min_val=1, integer=True)
        elif branches:
            n = len({c for br in branches for c in br.closing_layers})
        else:
            n = 2 * _infer_n_layer(model)
        res = get_init("normal", std=s / math.sqrt(n))
        how = "by name (names-fallback)" if desc.method == "names-fallback" else \
            "by dataflow: last layer before the residual addition"
        seen = set()
        for br in branches:
            for closer in br.closing_layers:
                if closer in seen:
                    continue
                seen.add(closer)
                for target in closing_params(desc, closer)[0]:
                    extra.append(Rule(target, res, label=f"residual {closer}",
                                      why=f"closes residual branch #{br.index} (found {how}): "
                                          f"0.02/sqrt(N), N={n}"))
        desc_text = f"GPT-2: N(0, {s}^2), the {len(seen)} residual closing layers / sqrt({n})"
    else:
        n = 2 * check_scalar(n_layer if n_layer is not None else _infer_n_layer(model),
                             "n_layer", min_val=1, integer=True)
        res = get_init("normal", std=s / math.sqrt(n))
        extra = [Rule(p, res, label=f"residual {p}",
                      why=f"GPT-2: 0.02/sqrt(N), N={n} (by name: no model given)")
                 for p in GPT2_RESIDUAL_PATTERNS]
        desc_text = f"GPT-2: N(0, {s}^2), residual projections / sqrt({n})"
    return _scheme("gpt2", w, extra=extra, embedding=w, model=model, description=desc_text)


# ----------------------------------------------------------------------------- residual


def _prefix(names: list[str]) -> str:
    parts = [n.split(".") for n in names]
    out = []
    for group in zip(*parts):
        if len(set(group)) != 1:
            break
        out.append(group[0])
    return ".".join(out)


def _depth(desc, layers: list[str]) -> int:
    """Longest chain of layers within a branch (siblings such as q/k/v count once)."""
    inside = set(layers)
    info = {layer.name: layer for layer in desc.layers}
    memo: dict[str, int] = {}

    def d(name: str) -> int:
        if name not in memo:
            memo[name] = 0
            ins = [i for i in (info[name].inputs if name in info else []) if i in inside]
            memo[name] = 1 + max((d(i) for i in ins), default=0)
        return memo[name]

    return max((d(n) for n in layers), default=0)


def residual_blocks(model: nn.Module, blocks: str | Callable | None = None
                    ) -> list[tuple[str, list[str], list[str]]]:
    """Residual blocks of ``model``: ``[(block_name, branch_layer_names, branch_norm_names)]``.

    By default from the model description (dataflow): one entry per residual branch, named by
    the common prefix of its layers, with its layers (shortcut excluded) and norms in dataflow
    order. With ``blocks=`` (a glob on module names or a callable ``(name, module) -> bool``) the
    convention of this module's docs instead.
    """
    if blocks is None:
        desc = describe(model)
        out = []
        for br in desc.residual_branches:
            out.append((_prefix(br.layers), list(br.layers), list(br.norms)))
        return out
    mods = list(model.named_modules())

    def is_block(name: str, m: nn.Module) -> bool:
        if not name:
            return False
        if callable(blocks):
            return bool(blocks(name, m))
        return fnmatch.fnmatchcase(name, blocks)

    block_names: list[str] = []
    for name, m in mods:
        if is_block(name, m) and not any(name.startswith(b + ".") for b in block_names):
            block_names.append(name)
    out = []
    for b in block_names:
        bmod = model.get_submodule(b)
        nested = [] if isinstance(blocks, str) else \
            [n for n, m in bmod.named_modules() if n and is_block(f"{b}.{n}", m)]
        layers, norms = [], []
        for n, m in bmod.named_modules():
            if not n:
                continue
            first = n.split(".")[0]
            if first in SHORTCUT_NAMES or any(n == x or n.startswith(x + ".") for x in nested):
                continue
            if isinstance(m, LAYER_TYPES):
                layers.append(f"{b}.{n}")
            elif isinstance(m, NORM_TYPES) and getattr(m, "weight", None) is not None:
                norms.append(f"{b}.{n}")
        if layers:
            out.append((b, layers, norms))
    return out


def _no_blocks(blocks) -> Exception:
    return fail("blocks", "found no residual block in the model", blocks,
                "name the blocks: blocks='layer*.*' (a glob on module names, `*` crosses dots) "
                "or a callable (name, module) -> bool; by default the residual additions of the "
                "model's dataflow are the blocks.")


def _branches(model, blocks):
    """([(name, layers, norms_after_last_layer, depth, closing layers)], how they were found,
    the model description) (the description is read in either case: it says which parameters
    a closing layer writes its output through, :func:`~initlab.modelinit.experts.closing_params`)."""
    desc = describe(model)
    if blocks is None:
        how = "names-fallback" if desc.method == "names-fallback" else "dataflow"
        return [(_prefix(br.layers), list(br.layers), list(br.norms_after),
                 _depth(desc, br.layers), br.closing_layers)
                for br in desc.residual_branches], how, desc
    order = {n: i for i, (n, _) in enumerate(model.named_modules())}
    out = []
    for b, layers, norms in residual_blocks(model, blocks):
        after = [n for n in norms if order[n] > order[layers[-1]]]
        out.append((b, layers, after, len(layers), [layers[-1]]))
    return out, "blocks=", desc


def zero_residual(model: nn.Module, *, blocks: str | Callable | None = None,
                  base: str = "he") -> Plan:
    """``base`` (default He) with the last layer of each residual branch zero: its norm's
    weight when a norm layer follows the branch's last layer inside the branch (Goyal et al.
    2017, "Accurate, Large Minibatch SGD"; torchvision's ``zero_init_residual``), else that
    layer's weight and bias. Each block then starts as the identity. Branches come from the
    model's dataflow (or ``blocks=``)."""
    found, how, desc = _branches(model, blocks)
    if not found:
        raise _no_blocks(blocks)
    extra = []
    for b, _layers, after, _, closers in found:
        why = f"last layer of residual branch {b} (found by {how}): zero"
        # the norm after the branch's last layer, else every closing layer's output parameters
        targets = {after[-1]: [f"{after[-1]}.weight", f"{after[-1]}.bias"]} if after else \
            {c: sum(closing_params(desc, c), []) for c in closers}
        for target, names in targets.items():
            for name in names:
                extra.append(Rule(name, "zeros", label=f"zero {target}", why=why))
    plan = get(base, model)
    return Plan(extra + list(plan.rules), name="zero_residual", warn_unused=False,
                description=f"{base} with each residual branch's last layer zero "
                            f"({len(found)} branches, found by {how})",
                options={"blocks": blocks if isinstance(blocks, str) else None, "base": base})


def fixup(model: nn.Module, *, blocks: str | Callable | None = None,
          zero_classifier: bool = True) -> Plan:
    """Fixup (Zhang, Dauphin, Ma 2019): for L residual branches of m layers each,

    1. the classification layer (the model's readout, from its dataflow) and the last layer of
       each branch are zero (a readout tied to the input embedding keeps the embedding rule);
    2. the other layers of a branch get He init scaled by L^(-1/(2m-2)) (m >= 2; m is the depth
       of the branch: parallel layers such as q/k/v count once);
    3. everything else: He init (norm layers 1/0, embeddings by the plans' embedding rule).

    The scalar biases and multipliers Fixup adds are the model's business, not the plan's.
    """
    found, how, desc = _branches(model, blocks)
    if not found:
        raise _no_blocks(blocks)
    n_branches = len(found)
    extra: list[Rule] = []
    free = {x.name for x in desc.layers if x.kind == "free"}
    for b, layers, _, m, closers in found:
        s = n_branches ** (-1.0 / (2 * m - 2)) if m >= 2 else 1.0
        why = f"Fixup: He * L^(-1/(2m-2)), L={n_branches}, m={m} (branches found by {how})"
        for name in [x for x in layers if x not in closers]:
            targets = [name] if name in free else [f"{name}.weight", f"{name}.in_proj_weight"]
            for target in targets:
                extra.append(Rule(target, "he_normal", scale=s, label=f"fixup {name}", why=why))
        for last in closers:
            # an expert bank closing the branch: its input projections are inner layers
            for name in input_params(desc, last):
                extra.append(Rule(name, "he_normal", scale=s, label=f"fixup {last}",
                                  why=why + "; input projection of an expert bank, per expert"))
            ws, bs = closing_params(desc, last)
            for name in ws + bs:
                extra.append(Rule(name, "zeros", label=f"fixup {last}",
                                  why=f"Fixup: last layer of residual branch {b}: zero"))
    if zero_classifier:
        tied = {n for p in desc.tied_embeddings() for n in p.names}
        heads = [r for r in desc.readouts if f"{r}.weight" not in tied]
        if blocks is not None and not heads:
            inside = [b for b, *_ in found]
            heads = [n for n, mod in model.named_modules() if isinstance(mod, nn.Linear)
                     and not any(n.startswith(b + ".") for b in inside)][-1:]
        for h in heads:
            for p in ("weight", "bias"):
                extra.append(Rule(f"{h}.{p}", "zeros", label=f"fixup {h}",
                                  why="Fixup: classification layer (the readout) zero"))
    return Plan(extra + list(he(model).rules), name="fixup", warn_unused=False,
                description=f"Fixup with L={n_branches} residual branches (found by {how})",
                options={"blocks": blocks if isinstance(blocks, str) else None})


def kaiming(model=None) -> Plan:
    """Alias of ``he`` (He et al. 2015 is "Kaiming" init in torch's naming)."""
    p = he(model)
    return Plan(p.rules, name="kaiming", warn_unused=False,
                description=p.description + " (alias of 'he')")


def xavier(model=None) -> Plan:
    """Alias of ``glorot`` (Glorot & Bengio 2010 is "Xavier" init in torch's naming)."""
    p = glorot(model)
    return Plan(p.rules, name="xavier", warn_unused=False,
                description=p.description + " (alias of 'glorot')")


# ----------------------------------------------------------------------------- registry


def _auto(model: nn.Module, **kw: Any) -> Plan:
    from .auto import auto_plan

    return auto_plan(model, **kw)


def isometry(model: nn.Module, *, batch: Any = None, spread: float | None = None,
             deep_relu: str = "looks_linear") -> Plan:
    """Dynamical isometry for ``model``'s activations at its plain depth (the weighted layers on
    its main path), whatever that depth: ``auto`` with the recommender's deep-stack choices
    forced on (:mod:`initlab.core.recommend`). For tanh-like activations: orthogonal weights
    (delta-orthogonal conv kernels, Xiao et al. 2018) times ``sqrt(sigma_w2)`` and biases
    N(0, sigma_b2) on the critical line ``chi_1 = 1``, with the largest ``sigma_b2`` whose
    predicted spread ``var(s^2)/mean(s^2)^2 = L (mu_2/mu_1^2 - 1)`` of the input-output Jacobian
    is :data:`initlab.core.criticality.ISOMETRY_SPREAD_TARGET` (Pennington, Schoenholz, Ganguli
    2017, "Resurrecting the sigmoid in deep learning through dynamical isometry"); ReLU-family
    dense layers: looks-linear weights (Balduzzi et al. 2017: mirrored orthogonal blocks, so the
    stack is linear at init; ``deep_relu="orthogonal"``: orthogonal with He's gain, which conv
    kernels always get). All parameters are computed by the mean field; the report's
    ``why`` names sigma_w2, sigma_b2, q* and the predicted spread. Readouts (unless fed by a
    looks-linear layer, which they fold back) and residual branches keep ``auto``'s choices.
    ``spread=`` sets that target (e.g. ``initlab.apply(model, "isometry", seed=0, spread=4)``):
    a larger one moves q* and sigma_b2 up, away from a linear net (RESULTS.md's isometry
    section has a scan)."""
    from .auto import auto_plan

    p = auto_plan(model, batch=batch, isometry=True, spread=spread, deep_relu=deep_relu)
    return Plan(p.rules, name="isometry", warn_unused=False, options=p.options,
                description="dynamical isometry (orthogonal on the critical line, "
                            "Pennington et al. 2017) at the model's plain depth")


def _lsuv(model: nn.Module, **kw: Any) -> Plan:
    raise fail("plan", "'lsuv' is data-dependent and is not a static plan", "lsuv",
               "call initlab.apply(model, 'lsuv', seed=0, batch=x) or initlab.lsuv(model, x).")


def _refuse_parametrization(name: str) -> None:
    raise fail("plan", f"{name!r} is a width parametrization (init, multipliers and learning "
               "rates), not a static plan", name,
               f"call initlab.apply(model, {name!r}, seed=0, base=lambda: make_model(64)) or "
               f"initlab.parametrize(model, {name!r}, base=..., seed=0).")


PLANS: dict[str, Callable[..., Plan]] = {
    "torch_default": torch_default, "lecun": lecun, "glorot": glorot, "he": he,
    "orthogonal": orthogonal, "nielsen_default": nielsen_default, "nielsen_large": nielsen_large,
    "small_normal": small_normal, "zeros": zeros, "gpt2": gpt2, "critical": critical,
    "zero_residual": zero_residual, "fixup": fixup, "auto": _auto, "isometry": isometry,
    "lsuv": _lsuv,
    "kaiming": kaiming, "xavier": xavier,
}
# width parametrizations are not static plans (they also set multipliers and learning rates):
# initlab.apply(model, name, base=...) and initlab.parametrize apply them; get() explains
PARAMETRIZATION_NAMES = ("sp", "mup", "ntk", "mfp")


def names() -> list[str]:
    """Names of the built-in plans."""
    return list(PLANS)


def get(name: str, model: nn.Module | None = None, **options: Any) -> Plan:
    """Build the built-in plan ``name`` for ``model`` (some plans read the model: ``gpt2``'s
    n_layer, ``fixup``'s residual branches, ``auto``'s activations, ``torch_default``'s RNN
    sizes) with ``options`` (``n_layer=``, ``blocks=``, ``activation=``...)."""
    if name in PARAMETRIZATION_NAMES:
        _refuse_parametrization(name)
    if name not in PLANS:
        import difflib

        close = difflib.get_close_matches(str(name), PLANS, n=2)
        hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
        raise fail("plan", "must be a built-in plan name", name,
                   f"pass one of: {', '.join(PLANS)}.{hint}")
    factory = PLANS[name]
    try:
        return factory(model, **options)
    except TypeError as exc:
        if "unexpected keyword" in str(exc) or "positional" in str(exc):
            raise fail("options", f"are not accepted by the '{name}' plan ({exc})",
                       sorted(options), "see initlab.plans for each plan's options.") from None
        raise
