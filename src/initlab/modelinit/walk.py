"""Walk a model's parameters, match them against a plan, and initialize them.

Every parameter becomes a *slot*: its canonical name, owning module, local name, role (weight or
bias), fan convention and *blocks*. A slot knows where its fans come from:

* ``Linear`` / ``Conv*`` weights: their own shape, torch layout ``(out, in, *kernel)``. Grouped
  and depthwise convs store ``(out, in / groups, *k)``, so fan_in is what one unit sees.
* ``ConvTranspose*`` weights are stored ``(in, out / groups, *k)``. initlab keeps **torch's
  convention** (fans read from the stored shape as if it were a conv, what ``torch.nn.init`` and
  the layer's own default init compute), so ``torch_default`` reproduces PyTorch and numbers agree
  with ``nn.init`` on the same tensor. For the fans of the layer as a map from its input to its
  output, give the rule ``layout="torch_transposed"``.
* Hugging Face ``Conv1D`` (GPT-2) stores ``(in, out)``: layout ``"torch_transposed"``.
* Biases get the fans of their module's weight (``role="bias"``), so ``torch_default`` gives the
  bias U(+-1/sqrt(fan_in)) and ``nielsen_default`` N(0, 1), as those schemes say.
* Packed tensors are split into blocks, each initialized as its own matrix with its own fans:
  ``MultiheadAttention.in_proj_weight`` (3E, E) is three (E, E) matrices q, k, v (torch's default
  init treats the packed tensor as one (3E, E) matrix, so Glorot's bound differs by
  sqrt(2): sqrt(6 / 2E) per block here, sqrt(6 / 4E) in torch; a rule with ``blocks=False`` gives
  torch's behaviour); LSTM/GRU/RNN ``weight_ih_l*`` / ``weight_hh_l*`` are 4 / 3 / 1 gate blocks
  of (H, in) and (H, H) (so orthogonal recurrent weights are orthogonal per gate), and their
  biases are split the same way with each gate's fans. GPT-2's packed ``c_attn`` (a Conv1D) is
  not split (Hugging Face and nanoGPT initialize it as one matrix).
* Parametrized weights (``torch.nn.utils.parametrize``: ``parametrizations.weight_norm``,
  ``spectral_norm``, ``orthogonal``...) are matched under their logical name (``layer.weight``)
  and drawn into the underlying ``original`` (so the effective weight is the parametrization of
  the draw, e.g. W / sigma_max(W) for spectral norm). When a parametrization has several originals
  (``weight_norm``: g and v) the draw W is mapped through ``right_inverse`` (v = W, g = ||W||),
  so the effective weight equals the draw.
* Tied parameters (one tensor under several names) are initialized once; the report lists the
  aliases. A rule matches a tied parameter when any of its names matches.
* Lazy modules (``nn.LazyLinear``...) raise a clear error until materialized by a forward pass.

Random streams: each (block of a) parameter gets its own ``torch.Generator`` seeded with
``stable_u64(seed, stream_key) % 2**63`` (SHA-256, never Python's salted ``hash()``), where the
stream key is the canonical parameter name (wrappers' prefixes ``module.`` and ``_orig_mod.``
stripped; ``/q``, ``/k``, ``/v`` or ``/gate_{g}`` (``g`` the gate's letter, e.g. ``/gate_i``)
appended for blocks). Initializing one parameter never shifts another's values, and adding a
layer leaves every other parameter's values unchanged.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn

from ..core import fans as core_fans
from ..core.distributions import (
    Constant,
    Distribution,
    Normal,
    Orthogonal,
    TruncatedNormal,
    Uniform,
)
from ..core.initializer import Initializer
from ..core.validation import InitlabError, InitlabTypeError, check_scalar, error_message, fail
from ..util.hashing import canonical_param_name, stable_u64
from .rules import KEEP, Plan, Rule

# ============================================================================ random sources


@dataclass(frozen=True)
class RngBackend:
    """A random source for :func:`apply`: ``fill(tensor, init, *, seed, key, fans, role,
    layout)`` fills ``tensor`` in place with a draw of ``init`` that depends only on
    ``(seed, key)``; ``stream_version`` is recorded in the report."""

    name: str
    stream_version: str
    fill: Callable[..., None]
    description: str = ""
    # optional: fill rows [start, stop) of a packed parameter (q/k/v, RNN gates) in place,
    # for sources whose tensors may be sharded (a slice of a DTensor is not a view of its shard)
    fill_rows: Callable[..., None] | None = None


def _torch_generator(seed: int, key: str, device) -> torch.Generator:
    """The Generator of one stream: its own seed, never global state."""
    return torch.Generator(device=device).manual_seed(stable_u64(seed, key) % 2**63)


def _torch_fill(tensor: torch.Tensor, init: Initializer, *, seed: int, key: str, fans, role: str,
                layout: str) -> None:
    from .. import torch as itorch  # initlab.torch: init_(tensor, init, generator=, ...)

    g = _torch_generator(seed, key, tensor.device)
    itorch.init_(tensor, init, generator=g, fans=fans, role=role, layout=layout)


TORCH_STREAM_VERSION = "torch-generator-per-param-sha256-v1"

#: Registry of random sources; ``initlab.scale`` adds ``"counter"`` (sharding-invariant).
RNG_BACKENDS: dict[str, RngBackend] = {
    "torch": RngBackend("torch", TORCH_STREAM_VERSION, _torch_fill,
                        "one torch.Generator per parameter (block), seeded by "
                        "stable_u64(seed, stream key) % 2**63"),
}


def stream_version(rng: str = "torch") -> str:
    """Stream version recorded in reports: the random source's and initlab.torch's, if any."""
    v = RNG_BACKENDS[rng].stream_version
    try:
        from .. import torch as itorch

        extra = getattr(itorch, "STREAM_VERSION", None)
    except ImportError:  # pragma: no cover
        extra = None
    return f"{v}+{extra}" if extra else v


# ============================================================================ slots

NORM_TYPES: tuple[type, ...] = tuple(
    t for t in (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm,
                getattr(nn, "RMSNorm", None)) if t is not None)
CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
CONVT_TYPES = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
RNN_GATES = {"LSTM": ("i", "f", "g", "o"), "GRU": ("r", "z", "n")}


@dataclass
class Block:
    """Rows ``start:stop`` (dim 0) of a tensor, initialized as a matrix whose fans come from
    ``fan_shape``; ``label`` suffixes the stream key."""

    start: int
    stop: int
    fan_shape: tuple[int, ...]
    label: str = ""


@dataclass
class Slot:
    name: str                      # canonical logical name, e.g. "encoder.0.weight"
    aliases: tuple[str, ...]       # other canonical names of the same tensor (tied)
    module_name: str
    module: nn.Module
    local: str                     # local name in its module ("weight", "weight_hh_l0")
    tensor: torch.Tensor           # what is written (the original, for parametrized weights)
    shape: tuple[int, ...]         # logical shape
    role: str
    layout: str
    blocks: list[Block]
    kind: str
    originals: tuple[torch.Tensor, ...] = ()   # multi-original parametrizations
    plist: Any = None              # the ParametrizationList for multi-original
    notes: list[str] = field(default_factory=list)

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)

    def write_targets(self) -> tuple[torch.Tensor, ...]:
        return self.originals if self.originals else (self.tensor,)


def _kind(module: nn.Module) -> str:
    if isinstance(module, CONVT_TYPES):
        return "conv_transpose"
    if isinstance(module, CONV_TYPES):
        return "conv"
    if isinstance(module, nn.Linear):
        return "linear"
    if isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
        return "embedding"
    if isinstance(module, NORM_TYPES):
        return "norm"
    if isinstance(module, nn.RNNBase):
        return "rnn"
    if isinstance(module, nn.MultiheadAttention):
        return "mha"
    if type(module).__name__ == "Conv1D" and hasattr(module, "nf"):
        return "hf_conv1d"
    return "other"


def _logical_shape(module: nn.Module, local: str, tensor: torch.Tensor) -> tuple[int, ...]:
    return tuple(getattr(module, local).shape) if _is_parametrized(module, local) \
        else tuple(tensor.shape)


def _is_parametrized(module: nn.Module, local: str) -> bool:
    p = getattr(module, "parametrizations", None)
    return p is not None and local in p


def _weight_shape(module: nn.Module, name: str = "weight") -> tuple[int, ...] | None:
    w = getattr(module, name, None)
    return tuple(w.shape) if isinstance(w, torch.Tensor) else None


def _describe(module: nn.Module, local: str, shape: tuple[int, ...]):
    """(role, layout, blocks) of a parameter from its module type."""
    kind = _kind(module)
    role = "bias" if "bias" in local else "weight"
    whole = [Block(0, shape[0] if shape else 0, shape)]
    if kind in ("linear", "conv", "conv_transpose", "hf_conv1d"):
        layout = "torch_transposed" if kind == "hf_conv1d" else "torch"
        if role == "bias":
            ws = _weight_shape(module)
            return role, layout, [Block(0, shape[0], ws if ws is not None else shape)]
        return role, layout, whole
    if kind == "rnn":
        gates = RNN_GATES.get(module.mode, ("h",))
        h = module.hidden_size
        if local.startswith("weight_hr"):
            return "weight", "torch", whole
        wname = local.replace("bias", "weight")
        ws = _weight_shape(module, wname) or shape
        if shape[0] == len(gates) * h:
            blocks = [Block(i * h, (i + 1) * h, (h, *ws[1:]), f"gate_{g}")
                      for i, g in enumerate(gates)]
        else:
            blocks = [Block(0, shape[0], ws)]
        return role, "torch", blocks
    if kind == "mha":
        e = module.embed_dim
        if local == "in_proj_weight":
            return "weight", "torch", [Block(i * e, (i + 1) * e, (e, shape[1]), q)
                                       for i, q in enumerate("qkv")]
        if local == "in_proj_bias":
            if module._qkv_same_embed_dim:
                ins = (e, e, e)
            else:
                ins = (e, module.kdim, module.vdim)
            return "bias", "torch", [Block(i * e, (i + 1) * e, (e, ins[i]), q)
                                     for i, q in enumerate("qkv")]
        if local in ("bias_k", "bias_v"):
            return "bias", "torch", [Block(0, shape[0], (e, e))]
        return role, "torch", whole
    if kind == "norm":
        return role, "torch", [Block(0, shape[0] if shape else 0, ())]
    return role, "torch", whole


def collect_slots(model: nn.Module) -> list[Slot]:
    """Every distinct parameter of ``model`` as a :class:`Slot`, in registration order."""
    from torch.nn.utils import parametrize

    lazy = [n for n, p in model.named_parameters()
            if isinstance(p, nn.parameter.UninitializedParameter)]
    if lazy:
        raise fail("model", "has uninitialized (lazy) parameters: "
                   + ", ".join(f"`{n}`" for n in lazy),
                   type(model).__name__,
                   "run one forward pass with a real batch to materialize them (their shapes are "
                   "unknown until then), then initialize.")
    by_id: dict[int, Slot] = {}
    by_name: dict[str, str] = {}  # canonical name -> full name of the tensor that owns its stream
    slots: list[Slot] = []
    for mname, module in model.named_modules(remove_duplicate=False):
        if isinstance(module, parametrize.ParametrizationList):
            continue  # handled from the owner
        locals_: list[tuple[str, Any]] = list(module._parameters.items())
        plists = getattr(module, "parametrizations", None)
        if plists is not None and parametrize.is_parametrized(module):
            for tname, plist in plists.items():
                locals_.append((tname, plist))
        for local, obj in locals_:
            if obj is None:
                continue
            full = f"{mname}.{local}" if mname else local
            canon = canonical_param_name(full)
            if isinstance(obj, parametrize.ParametrizationList):
                if hasattr(obj, "original"):
                    tensors: tuple[torch.Tensor, ...] = (obj.original,)
                else:
                    tensors = tuple(getattr(obj, f"original{i}") for i in range(obj.ntensors))
            else:
                tensors = (obj,)
            key = id(tensors[-1])
            if key in by_id:
                if canon not in by_id[key].names:
                    by_id[key].aliases = (*by_id[key].aliases, canon)
                continue
            if canon in by_name:
                raise fail(
                    "model", f"has two different parameters, `{by_name[canon]}` and `{full}`, "
                    f"with the same canonical name `{canon}` (wrapper prefixes stripped), so they "
                    "would share one random stream", type(model).__name__,
                    "rename one of them, or initialize the unwrapped model.")
            by_name[canon] = full
            shape = _logical_shape(module, local, tensors[0])
            role, layout, blocks = _describe(module, local, shape)
            slot = Slot(canon, (), mname, module, local, tensors[-1], shape, role, layout, blocks,
                        _kind(module))
            if len(tensors) > 1:
                slot.originals = tensors
                slot.plist = obj
                slot.notes.append("parametrized: drawn W mapped through right_inverse")
            elif isinstance(obj, parametrize.ParametrizationList):
                slot.notes.append("parametrized: drawn into `original`")
            by_id[key] = slot
            for t in tensors:
                by_id[id(t)] = slot
            slots.append(slot)
    return slots


# ============================================================================ expected moments


def expected_moments(dist: Distribution, shape: tuple[int, ...]) -> tuple[float, float] | None:
    """(mean, std) over the elements of a tensor drawn from ``dist``, when known exactly."""
    if isinstance(dist, Constant):
        return dist.value, 0.0
    if isinstance(dist, Normal):
        return dist.mean, dist.std
    if isinstance(dist, Uniform):
        return dist.mean, dist.std
    if isinstance(dist, TruncatedNormal):
        return dist.moments()
    n = math.prod(shape)
    if n == 0 or len(shape) < 2:
        return None
    rows, cols = shape[0], n // shape[0]
    if isinstance(dist, Orthogonal):
        # sum of squares of a semi-orthogonal (rows, cols) matrix is min(rows, cols)
        return 0.0, dist.gain * math.sqrt(min(rows, cols) / n)
    return None  # Eye, Dirac, DeltaOrthogonal, Sparse, MartensSparse...: not known in closed form


# ============================================================================ matching


@dataclass
class Assignment:
    slot: Slot
    rule_index: int | None
    rule: Rule | None
    init: Initializer | str | None
    layout: str = "torch"
    blocks: list[Block] = field(default_factory=list)
    fans: list[tuple[int, int] | None] = field(default_factory=list)
    dists: list[Distribution] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    status: str = "unmatched"


def _fans_of(shape: tuple[int, ...], layout: str) -> tuple[int, int] | None:
    if len(shape) < 2 or 0 in shape:
        return None
    return core_fans(shape, layout)


def match(plan: Plan, slots: list[Slot]) -> tuple[list[Assignment], list[str]]:
    """Assign each slot its rule and resolve every block's distribution. Returns the assignments
    and the list of problems (empty when everything can be initialized)."""
    problems: list[str] = []
    out: list[Assignment] = []
    for slot in slots:
        a = Assignment(slot, None, None, None)
        for i, rule in enumerate(plan.rules):
            init = rule.select(slot.names, slot.module, slot.local)
            if init is not None:
                a.rule_index, a.rule, a.init = i, rule, init
                break
        out.append(a)
        if a.init is None:
            continue
        if a.init == KEEP:
            a.status = "kept"
            continue
        if math.prod(slot.shape) == 0:
            a.status = "empty"   # zero elements: nothing to draw
            continue
        a.status = "initialized"
        a.layout = a.rule.layout or slot.layout
        if a.rule.blocks or len(slot.blocks) == 1:
            a.blocks = slot.blocks
        else:
            fan_shape = slot.shape if slot.role == "weight" else (
                _weight_shape(slot.module, slot.local.replace("bias", "weight")) or slot.shape)
            a.blocks = [Block(0, slot.shape[0] if slot.shape else 0, fan_shape)]
        if not slot.tensor.is_floating_point():
            problems.append(f"`{slot.name}` has dtype {slot.tensor.dtype}; initializers fill "
                            "floating-point tensors only (rule "
                            f"#{a.rule_index} {a.rule.describe()}).")
            continue
        for b in a.blocks:
            bshape = slot.shape if len(a.blocks) == 1 else (b.stop - b.start, *slot.shape[1:])
            fans = _fans_of(b.fan_shape, a.layout)
            try:
                dist = a.init.resolve(bshape, fans=fans, layout=a.layout, role=slot.role)
            except (ValueError, TypeError) as exc:
                problems.append(f"`{slot.name}` (shape {tuple(slot.shape)}, rule #{a.rule_index} "
                                f"{a.rule.describe()}, initializer {a.init!r}): {exc}")
                break
            a.fans.append(fans)
            a.dists.append(dist)
            a.keys.append(slot.name + (f"/{b.label or f'block{b.start}'}" if len(a.blocks) > 1
                                       else ""))
    return out, problems


# ============================================================================ writing


def _snapshot(tensors: list[torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    with torch.no_grad():
        return [(t, t.detach().clone()) for t in tensors if t.device.type != "meta"]


def _restore(snap: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
    with torch.no_grad():
        for t, saved in snap:
            t.copy_(saved)


def _write(a: Assignment, *, seed: int, rng: str) -> None:
    slot = a.slot
    init = a.init
    assert isinstance(init, Initializer)
    with torch.no_grad():
        if slot.originals:
            target = torch.empty(slot.shape, dtype=slot.originals[-1].dtype,
                                 device=slot.originals[-1].device)
        else:
            target = slot.tensor
        backend = RNG_BACKENDS[rng]
        for b, fans, key in zip(a.blocks, a.fans, a.keys):
            if len(a.blocks) > 1 and backend.fill_rows is not None:
                if b.stop > b.start:
                    backend.fill_rows(target, init, rows=(b.start, b.stop), seed=seed, key=key,
                                      fans=fans, role=slot.role, layout=a.layout)
                continue
            view = target if len(a.blocks) == 1 else target[b.start:b.stop]
            if view.numel() == 0:
                continue
            backend.fill(view, init, seed=seed, key=key, fans=fans, role=slot.role,
                         layout=a.layout)
        if a.rule.scale != 1.0:
            target.mul_(a.rule.scale)
        if slot.kind == "embedding" and slot.local == "weight":
            pad = getattr(slot.module, "padding_idx", None)
            if pad is not None:
                target[pad].fill_(0)
                if "padding_idx row zeroed (as torch)" not in slot.notes:
                    slot.notes.append("padding_idx row zeroed (as torch)")
        if slot.originals:
            value: Any = target
            for p in reversed(slot.plist):
                value = p.right_inverse(value)
            for orig, v in zip(slot.originals, value):
                orig.copy_(v)


def running_stats_modules(model: nn.Module) -> list[nn.Module]:
    """The modules whose running statistics ``reset_running_stats()`` resets (BatchNorm...)."""
    return [m for _, m in model.named_modules()
            if hasattr(m, "reset_running_stats") and getattr(m, "track_running_stats", False)]


def check_model(model: Any) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise InitlabTypeError(error_message(
            "model", "must be a torch.nn.Module", type(model).__name__,
            "pass the model itself (e.g. nn.Sequential(...)), not its parameters or state_dict."))
    return model


def check_seed(seed: Any) -> int:
    if seed is None:
        raise InitlabTypeError(error_message(
            "seed", "must be given (a non-negative int)", None,
            "pass seed=0 (initlab never falls back to global random state)."))
    return check_scalar(seed, "seed", min_val=0, integer=True)


# random sources registered by other initlab packages on import
RNG_PROVIDERS = {"counter": "initlab.scale"}


def check_rng(rng: Any) -> str:
    if isinstance(rng, str) and rng not in RNG_BACKENDS and rng in RNG_PROVIDERS:
        import importlib

        try:
            importlib.import_module(RNG_PROVIDERS[rng])
        except ImportError:
            pass
    if rng not in RNG_BACKENDS:
        raise fail("rng", f"must be one of {sorted(RNG_BACKENDS)}", rng,
                   "pass rng='torch' (initlab.scale registers 'counter' for sharded tensors).")
    return rng


def resolve_plan(model: nn.Module, plan: Any, **plan_kwargs: Any) -> Plan:
    from . import plans as plans_mod

    if isinstance(plan, Plan):
        if plan_kwargs:
            raise fail("plan_kwargs", "are only for built-in plans given by name",
                       sorted(plan_kwargs), "build the Plan with those options instead.")
        return plan
    if isinstance(plan, str):
        return plans_mod.get(plan, model, **plan_kwargs)
    if isinstance(plan, Mapping):
        return Plan.from_dict(plan)
    raise InitlabTypeError(error_message(
        "plan", "must be a Plan, a built-in plan name or a dict (Plan.to_dict())", plan,
        f"pass e.g. 'he' or Plan([...]); built-in plans: {', '.join(plans_mod.names())}."))


def apply(model: nn.Module, plan: Any, *, seed: int, rng: str = "torch", pretrained: Any = None,
          mapping: Any = None, batch: Any = None, strict: bool | None = None,
          atomic: bool = True, **plan_kwargs: Any):
    """Initialize ``model`` in place by ``plan``; return an :class:`~initlab.modelinit.InitReport`.

    Parameters
    ----------
    model : an ``nn.Module``.
    plan : a :class:`Plan`, the name of a built-in plan (``initlab.plans.names()``: ``"he"``,
        ``"gpt2"``, ``"fixup"``, ``"auto"``, ``"lsuv"``...) or a dict from ``Plan.to_dict()``.
        Built-in plans take options as keywords (``apply(m, "gpt2", seed=0, n_layer=12)``).
    seed : non-negative int. Each parameter (block) draws from its own ``torch.Generator`` seeded
        with ``stable_u64(seed, canonical name) % 2**63`` (see :mod:`initlab.modelinit.walk`).
    rng : random source, a key of ``RNG_BACKENDS`` (``"torch"``; ``initlab.scale`` adds
        ``"counter"``).
    pretrained : optional checkpoint (path or state dict): its tensors are loaded first (see
        :func:`~initlab.modelinit.load_pretrained`, partial loads allowed) and only the parameters it
        does not provide are initialized by the plan (transfer learning: a new head).
    mapping : key rename rules for ``pretrained``.
    batch : example input for data-dependent plans (``"lsuv"``, ``"auto"``).
    strict : overrides ``plan.strict`` (a parameter that no rule matches is an error).
    atomic : if writing fails midway (an interrupt, out of memory), restore every touched tensor.
        This holds a copy of the touched tensors while writing; ``atomic=False`` skips the copy
        for models too large to hold twice (every check still runs before the first write, so
        only such external failures can leave a model partly initialized).

    All or nothing: the plan is checked against every parameter (and the checkpoint against the
    model) before anything is written; if anything fails, every touched tensor is restored.

    Rules follow Glorot & Bengio 2010 ("Understanding the difficulty of training deep feedforward
    neural networks") and He et al. 2015 ("Delving Deep into Rectifiers") for the named schemes;
    see :mod:`initlab.modelinit.plans`.
    """
    from .pretrained import prepare_load
    from .report import InitReport, ParamRecord

    check_model(model)
    seed = check_seed(seed)
    rng = check_rng(rng)
    if isinstance(plan, str) and plan == "lsuv":
        from .lsuv import lsuv

        if pretrained is not None:
            raise fail("pretrained", "cannot be combined with the 'lsuv' plan", "given",
                       "load first with load_pretrained(), then call lsuv() on the layers "
                       "you want.")
        return lsuv(model, batch, seed=seed, rng=rng, **plan_kwargs).init_report
    if batch is not None:
        plan_kwargs["batch"] = batch
    plan_obj = resolve_plan(model, plan, **plan_kwargs)
    if strict is not None:
        plan_obj = dataclasses.replace(plan_obj, strict=strict)
    slots = collect_slots(model)

    load = None
    loaded_ids: set[int] = set()
    if pretrained is not None:
        load = prepare_load(model, pretrained, mapping=mapping, strict=False)
        loaded_ids = {id(t) for t in load.targets}
    todo = [s for s in slots if id(s.tensor) not in loaded_ids]
    assignments, problems = match(plan_obj, todo)
    unmatched = [a.slot.name for a in assignments if a.status == "unmatched"]
    if plan_obj.strict and unmatched:
        problems.append("no rule matches " + ", ".join(f"`{n}`" for n in unmatched)
                        + " and the plan is strict")
    if problems:
        raise InitlabError(
            f"`plan` ({plan_obj.name or 'custom'}) cannot initialize this model; nothing was "
            f"changed. {len(problems)} problem(s):\n  - " + "\n  - ".join(problems)
            + "\nFix: add or reorder rules so each parameter gets an initializer that fits its "
            "shape (specific rules first), or pass strict=False.")
    used = {a.rule_index for a in assignments if a.rule_index is not None}
    unused = [i for i in range(len(plan_obj.rules)) if i not in used]
    if unused and plan_obj.warn_unused:
        warnings.warn("plan rule(s) matched no parameter: " + "; ".join(
            f"#{i} {plan_obj.rules[i].describe()}" for i in unused)
            + ". Check the glob (`*` crosses dots) or the module type.", UserWarning,
            stacklevel=2)

    norm_modules = []
    if plan_obj.reset_running_stats:
        loaded_buffers = set(load.buffer_ids) if load is not None else set()
        norm_modules = [m for m in running_stats_modules(model)
                        if id(getattr(m, "running_mean", None)) not in loaded_buffers]

    touched: list[torch.Tensor] = []
    for a in assignments:
        if a.status == "initialized":
            touched.extend(a.slot.write_targets())
    if load is not None:
        touched.extend(load.targets)
    for m in norm_modules:
        touched.extend(b for b in m.buffers(recurse=False))
    snap = _snapshot(touched) if atomic else []
    try:
        if load is not None:
            load.commit()
        for a in assignments:
            if a.status == "initialized":
                _write(a, seed=seed, rng=rng)
        for m in norm_modules:
            m.reset_running_stats()
    except BaseException:
        _restore(snap)
        raise

    records = []
    by_tensor = {id(a.slot.tensor): a for a in assignments}
    for s in slots:
        a = by_tensor.get(id(s.tensor))
        records.append(ParamRecord.build(s, a, loaded=a is None))
    return InitReport(
        seed=seed, rng=rng, stream_version=stream_version(rng), plan=plan_obj, records=records,
        unused_rules=[(i, plan_obj.rules[i].describe()) for i in unused],
        running_stats_reset=len(norm_modules), load=load.report if load is not None else None)
