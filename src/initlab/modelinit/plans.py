"""Built-in plans by name: ``initlab.plans.get(name, model, **options)``.

Every named-scheme plan applies the scheme exactly as published to every weight of Linear,
Conv*, ConvTranspose*, RNN/LSTM/GRU (per gate block), MultiheadAttention (q, k, v blocks) and
Hugging Face ``Conv1D`` layers, output layer included (Glorot without an extra gain, He with its
factor 2, orthogonal with gain 1); biases are zero unless the scheme says otherwise
(``torch_default``, ``nielsen_*``, ``critical``). Embedding weights are N(0, 1) as torch does
(``gpt2``: N(0, 0.02^2)); norm layers get weight 1, bias 0 and their running statistics reset.
Choosing gains per activation is the job of ``auto``.

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
zero_residual      He, and the last layer of each residual branch zero (Goyal et al. 2017)
fixup              Fixup (Zhang, Dauphin, Ma 2019, "Fixup Initialization: Residual Learning
                   Without Normalization")
auto               activation-aware: see :mod:`initlab.modelinit.auto`
lsuv               data-dependent: see :func:`initlab.lsuv` (``apply(m, "lsuv", batch=x)``)
=================  ============================================================================

Residual branches (``zero_residual``, ``fixup``)
------------------------------------------------
Convention: a *residual block* is a module with an attribute named ``downsample`` or
``shortcut`` (a submodule, or ``None`` as in torchvision's and timm's ``BasicBlock`` /
``Bottleneck``). Or give ``blocks=`` a glob on module names (``"layer*.*"``, where ``*`` crosses
dots; the outermost matches are blocks) or a callable ``(name, module) -> bool``. The *branch*
of a block is its Linear/Conv/ConvTranspose layers in registration order (the order of
``named_modules()``, which is the forward order in ordinary code), excluding the shortcut
(``downsample`` / ``shortcut``) and nested blocks. The *last layer of the branch* is the last of
those (for ``zero_residual``, the last norm layer if one follows it: zeroing BN's gamma is
torchvision's ``zero_init_residual``).
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Callable
from typing import Any

import torch.nn as nn

from ..core.registry import get as get_init
from ..core.validation import check_scalar, fail
from .rules import Plan, Rule
from .walk import CONV_TYPES, CONVT_TYPES, NORM_TYPES

WEIGHTED: tuple[Any, ...] = (nn.Linear, *CONV_TYPES, *CONVT_TYPES, nn.RNNBase,
                             nn.MultiheadAttention, "Conv1D")
LAYER_TYPES = (nn.Linear, *CONV_TYPES, *CONVT_TYPES)
SHORTCUT_NAMES = ("downsample", "shortcut")
GPT2_STD = 0.02  # Radford et al. 2019 / nanoGPT: std 0.02 for every weight
GPT2_RESIDUAL_PATTERNS = ("*c_proj.weight", "*attn.out_proj.weight", "*linear2.weight")


def _common(embedding="normal", *, zero_embeddings: bool = False) -> list[Rule]:
    emb = "zeros" if zero_embeddings else get_init("normal", mean=0.0, std=1.0)
    if embedding != "normal":
        emb = embedding
    return [
        Rule(NORM_TYPES, weight="ones", bias="zeros", label="norm",
             why="norm layers: weight 1, bias 0"),
        Rule((nn.Embedding, nn.EmbeddingBag), weight=emb, label="embedding",
             why="embeddings: N(0, 1) as torch does" if embedding == "normal" and
             not zero_embeddings else ""),
    ]


def _scheme(name: str, weight, bias="zeros", *, description: str, extra: list[Rule] = (),
            zero_embeddings: bool = False, embedding="normal") -> Plan:
    rules = [
        *extra,
        *_common(embedding, zero_embeddings=zero_embeddings),
        Rule(WEIGHTED, params={"*weight*": weight, "*bias*": bias}, label="layers"),
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
            if isinstance(m, nn.RNNBase):
                k = 1.0 / math.sqrt(m.hidden_size)
                extra.append(Rule(nn.RNNBase, get_init("uniform", low=-k, high=k),
                                  pattern=f"{mname}.*" if mname else "*",
                                  label=f"RNN {mname or '(root)'}",
                                  why=f"torch: U(+-1/sqrt(hidden_size={m.hidden_size}))"))
    return _scheme("torch_default", "torch_default", "torch_default", extra=extra,
                   description="PyTorch's default initialization")


def lecun(model=None) -> Plan:
    """LeCun, Bottou, Orr, Mueller 1998, "Efficient BackProp": weights N(0, 1/fan_in), biases 0."""
    return _scheme("lecun", "lecun_normal", description="LeCun et al. 1998: N(0, 1/fan_in)")


def glorot(model=None) -> Plan:
    """Glorot & Bengio 2010, "Understanding the difficulty of training deep feedforward
    neural networks": weights U(+-sqrt(6/(fan_in + fan_out))) (no extra gain), biases 0."""
    return _scheme("glorot", "glorot_uniform",
                   description="Glorot & Bengio 2010: U(+-sqrt(6/(fan_in+fan_out)))")


def he(model=None) -> Plan:
    """He, Zhang, Ren, Sun 2015, "Delving Deep into Rectifiers": weights N(0, 2/fan_in), biases 0."""
    return _scheme("he", "he_normal", description="He et al. 2015: N(0, 2/fan_in)")


def orthogonal(model=None) -> Plan:
    """Saxe, McClelland, Ganguli 2014, "Exact solutions to the nonlinear dynamics of
    learning in deep linear neural networks": Haar orthogonal weights (gain 1), biases 0."""
    return _scheme("orthogonal", "orthogonal", description="Saxe et al. 2014: orthogonal, gain 1")


def nielsen_default(model=None) -> Plan:
    """Nielsen, "Neural Networks and Deep Learning" ch. 3: weights N(0, 1/n_in), biases N(0, 1)."""
    return _scheme("nielsen_default", "nielsen_default", "nielsen_default",
                   description="Nielsen ch. 3: weights N(0, 1/n_in), biases N(0, 1)")


def nielsen_large(model=None) -> Plan:
    """Nielsen, "Neural Networks and Deep Learning" ch. 1-2: weights and biases N(0, 1)."""
    return _scheme("nielsen_large", "nielsen_large", "nielsen_large",
                   description="Nielsen ch. 1-2: weights and biases N(0, 1)")


def small_normal(model=None) -> Plan:
    """The ``randn(...) * 0.01`` recipe: weights N(0, 0.01^2), biases 0."""
    return _scheme("small_normal", "small_normal", description="N(0, 0.01^2) weights, zero bias")


def zeros(model=None) -> Plan:
    """Everything zero (norm layers 1/0): every hidden unit computes the same function and gets
    the same gradient, so symmetry is never broken."""
    return _scheme("zeros", "zeros", zero_embeddings=True,
                   description="all zeros (every hidden unit identical: symmetry never broken)")


def critical(model=None, *, activation: str = "tanh", sigma_b2: float | None = None) -> Plan:
    """Edge of chaos for ``activation`` (``initlab.get("critical", ...)``, from the theory)."""
    kw: dict[str, Any] = {"activation": activation}
    if sigma_b2 is not None:
        kw["sigma_b2"] = sigma_b2
    init = get_init("critical", **kw)
    return _scheme("critical", init, init,
                   description=f"critical (edge of chaos) for {activation}: {init!r}")


def _infer_n_layer(model: nn.Module | None) -> int:
    if model is None:
        raise fail("n_layer", "must be given when there is no model to count layers in", None,
                   "pass n_layer=12.")
    cfg = getattr(model, "config", None)
    for attr in ("n_layer", "num_hidden_layers"):
        if cfg is not None and isinstance(getattr(cfg, attr, None), int):
            return int(getattr(cfg, attr))
    n = sum(isinstance(m, (nn.TransformerEncoderLayer, nn.TransformerDecoderLayer))
            for m in model.modules())
    if n:
        return n
    names = [n for n, _ in model.named_parameters()]
    n_proj = sum(fnmatch.fnmatchcase(n, "*attn.c_proj.weight") for n in names)
    if n_proj:
        return n_proj
    raise fail("n_layer", "could not be inferred (no config.n_layer, no Transformer layers, no "
               "`*attn.c_proj.weight`)", None, "pass n_layer= explicitly.")


def gpt2(model: nn.Module | None = None, *, n_layer: int | None = None,
         std: float = GPT2_STD) -> Plan:
    """GPT-2 / nanoGPT: N(0, 0.02^2) weights and embeddings, zero biases, and residual
    projections N(0, (0.02 / sqrt(2 n_layer))^2) ("we scale the weights of residual layers at
    initialization by a factor of 1/sqrt(N) where N is the number of residual layers", Radford
    et al. 2019; two residual layers per block). Residual projections: ``*c_proj.weight``
    (Hugging Face, nanoGPT), ``*attn.out_proj.weight`` and ``*linear2.weight``
    (``nn.TransformerEncoderLayer``). ``n_layer`` defaults to ``model.config.n_layer`` or the
    number of Transformer layers."""
    n = n_layer if n_layer is not None else _infer_n_layer(model)
    n = check_scalar(n, "n_layer", min_val=1, integer=True)
    s = check_scalar(std, "std", min_val=0.0)
    res = get_init("normal", std=s / math.sqrt(2 * n))
    w = get_init("normal", std=s)
    extra = [Rule(p, res, label=f"residual {p}", why=f"GPT-2: 0.02/sqrt(2*n_layer), n_layer={n}")
             for p in GPT2_RESIDUAL_PATTERNS]
    return _scheme("gpt2", w, extra=extra, embedding=w,
                   description=f"GPT-2: N(0, {s}^2), residual projections / sqrt(2*{n})")


# ----------------------------------------------------------------------------- residual


def residual_blocks(model: nn.Module, blocks: str | Callable | None = None
                    ) -> list[tuple[str, list[str], list[str]]]:
    """Residual blocks of ``model`` by the convention of this module's docs.

    Returns ``[(block_name, branch_layer_names, branch_norm_names), ...]`` in registration order;
    names are full module names, layers are Linear/Conv/ConvTranspose modules.
    """
    mods = list(model.named_modules())

    def is_block(name: str, m: nn.Module) -> bool:
        if not name:
            return False
        if blocks is None:
            return any(hasattr(m, s) for s in SHORTCUT_NAMES)
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
                "or a callable (name, module) -> bool; by default a block is a module with a "
                "`downsample` or `shortcut` attribute.")


def zero_residual(model: nn.Module, *, blocks: str | Callable | None = None,
                  base: str = "he") -> Plan:
    """``base`` (default He) with the last layer of each residual branch zero: its norm's
    weight when a norm layer follows the branch's last conv/linear (Goyal et al. 2017, "Accurate,
    Large Minibatch SGD"; torchvision's ``zero_init_residual``), else that layer's weight and
    bias. Each block then starts as the identity."""
    found = residual_blocks(model, blocks)
    if not found:
        raise _no_blocks(blocks)
    order = {n: i for i, (n, _) in enumerate(model.named_modules())}
    extra = []
    for b, layers, norms in found:
        last = layers[-1]
        after = [n for n in norms if order[n] > order[last]]
        target = after[-1] if after else last
        why = f"last layer of residual branch {b}: zero"
        extra.append(Rule(f"{target}.weight", "zeros", label=f"zero {target}", why=why))
        extra.append(Rule(f"{target}.bias", "zeros", label=f"zero {target}", why=why))
    plan = get(base, model)
    return Plan(extra + list(plan.rules), name="zero_residual", warn_unused=False,
                description=f"{base} with each residual branch's last layer zero",
                options={"blocks": blocks if isinstance(blocks, str) else None, "base": base})


def fixup(model: nn.Module, *, blocks: str | Callable | None = None,
          zero_classifier: bool = True) -> Plan:
    """Fixup (Zhang, Dauphin, Ma 2019): for L residual branches of m layers each,

    1. the classification layer (the model's last ``nn.Linear`` outside every block) and the
       last layer of each branch are zero;
    2. the other layers of a branch get He init scaled by L^(-1/(2m-2)) (m >= 2);
    3. everything else: He init (norm layers 1/0, embeddings N(0, 1)).

    The scalar biases and multipliers Fixup adds are the model's business, not the plan's.
    """
    found = residual_blocks(model, blocks)
    if not found:
        raise _no_blocks(blocks)
    n_branches = len(found)
    extra: list[Rule] = []
    for b, layers, _ in found:
        m = len(layers)
        for name in layers[:-1]:
            s = n_branches ** (-1.0 / (2 * m - 2))
            extra.append(Rule(f"{name}.weight", "he_normal", scale=s, label=f"fixup {name}",
                              why=f"Fixup: He * L^(-1/(2m-2)), L={n_branches}, m={m}"))
        last = layers[-1]
        for p in ("weight", "bias"):
            extra.append(Rule(f"{last}.{p}", "zeros", label=f"fixup {last}",
                              why=f"Fixup: last layer of residual branch {b}: zero"))
    if zero_classifier:
        inside = [b for b, _, _ in found]
        heads = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)
                 and not any(n.startswith(b + ".") for b in inside)]
        if heads:
            for p in ("weight", "bias"):
                extra.append(Rule(f"{heads[-1]}.{p}", "zeros", label=f"fixup {heads[-1]}",
                                  why="Fixup: classification layer zero"))
    return Plan(extra + list(he(model).rules), name="fixup", warn_unused=False,
                description=f"Fixup with L={n_branches} residual branches",
                options={"blocks": blocks if isinstance(blocks, str) else None})


# ----------------------------------------------------------------------------- registry


def _auto(model: nn.Module, **kw: Any) -> Plan:
    from .auto import auto_plan

    return auto_plan(model, **kw)


def _lsuv(model: nn.Module, **kw: Any) -> Plan:
    raise fail("plan", "'lsuv' is data-dependent and is not a static plan", "lsuv",
               "call initlab.apply(model, 'lsuv', seed=0, batch=x) or initlab.lsuv(model, x).")


PLANS: dict[str, Callable[..., Plan]] = {
    "torch_default": torch_default, "lecun": lecun, "glorot": glorot, "he": he,
    "orthogonal": orthogonal, "nielsen_default": nielsen_default, "nielsen_large": nielsen_large,
    "small_normal": small_normal, "zeros": zeros, "gpt2": gpt2, "critical": critical,
    "zero_residual": zero_residual, "fixup": fixup, "auto": _auto, "lsuv": _lsuv,
}


def names() -> list[str]:
    """Names of the built-in plans."""
    return list(PLANS)


def get(name: str, model: nn.Module | None = None, **options: Any) -> Plan:
    """Build the built-in plan ``name`` for ``model`` (some plans read the model: ``gpt2``'s
    n_layer, ``fixup``'s residual branches, ``auto``'s activations, ``torch_default``'s RNN
    sizes) with ``options`` (``n_layer=``, ``blocks=``, ``activation=``...)."""
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
