"""What each parameter of a model is, from its module alone (no forward pass).

Every distinct tensor becomes one :class:`ParamInfo`: its canonical name and every alias (tied
tensors: one entry), owning module, local name, role, fan layout and *blocks*:

* ``Linear`` / ``Conv*`` weights: their own shape, torch layout ``(out, in, *kernel)``. Grouped
  and depthwise convs store ``(out, in / groups, *k)``, so fan_in is what one unit sees.
* ``ConvTranspose*`` weights are stored ``(in, out / groups, *k)``. initlab keeps **torch's
  convention** (fans read from the stored shape as if it were a conv, what ``torch.nn.init`` and
  the layer's own default init compute), so ``torch_default`` reproduces PyTorch and numbers agree
  with ``nn.init`` on the same tensor. For the fans of the layer as a map from its input to its
  output, give the rule ``layout="torch_transposed"``.
* Hugging Face ``Conv1D`` (GPT-2) stores ``(in, out)``: layout ``"torch_transposed"`` (fan_in is
  its first dimension).
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
* Parametrized weights (``torch.nn.utils.parametrize``) are described under their logical name
  (``layer.weight``) and drawn into the underlying ``original``; with several originals
  (``weight_norm``: g and v) the draw W is mapped through ``right_inverse``.
* Tied parameters (one tensor under several names) are one entry. Its *primary* name (the stream
  key, and the module rules are matched against) is the **input embedding's** when the tensor is
  an embedding anywhere (GPT-2's ``transformer.wte.weight``, not ``lm_head.weight``), else the
  first registered name; every other name is an alias, and a glob rule matches when any name
  matches.

Roles: ``weight``, ``bias`` (layers with fans), ``embedding`` (lookup tables), ``norm_scale`` /
``norm_shift`` (LayerNorm, RMSNorm of any class, GroupNorm, BatchNorm), ``other`` (a module type
initlab does not know: role read from the local name, recorded in ``notes``). Norms are found by
type (torch's) or structurally (a module whose only parameters are a 1-D ``weight`` and
optionally ``bias`` of its normalized size, and which the probe sees normalizing: Llama's and
T5's RMSNorm, a user's own class).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn

from ..core.validation import fail
from ..util.hashing import canonical_param_name
from .experts import expert_count, expert_layout, is_router
from .hooked import computed, hooked_of
from .ssm import block_gate_heads

NORM_TYPES: tuple[type, ...] = tuple(
    t for t in (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm,
                getattr(nn, "RMSNorm", None)) if t is not None)
CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
CONVT_TYPES = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
RNN_GATES = {"LSTM": ("i", "f", "g", "o"), "GRU": ("r", "z", "n")}
#: recurrent layers: torch's sequence modules and their single-step cells (same parameter
#: names, ``weight_ih``/``weight_hh``/``bias_ih``/``bias_hh``, gates packed along dim 0)
RNN_TYPES: tuple[type[nn.RNNBase], type[nn.RNNCellBase]] = (nn.RNNBase, nn.RNNCellBase)
_CELL_MODES = {nn.LSTMCell: "LSTM", nn.GRUCell: "GRU"}


def rnn_gates(module: nn.Module) -> tuple[str, ...]:
    """The gates packed in a recurrent layer's tensors, in torch's order (``("h",)``: one)."""
    mode = getattr(module, "mode", None) if isinstance(module, nn.RNNBase) else next(
        (m for t, m in _CELL_MODES.items() if isinstance(module, t)), None)
    return RNN_GATES.get(mode or "", ("h",))
#: kinds of modules whose weights have fans (the "layers" of a model)
LAYER_KINDS = ("linear", "conv", "conv_transpose", "hf_conv1d", "rnn", "mha", "experts")
#: local names (globs) of *free* token and position tables: parameters a model holds directly
#: on a module of its own class rather than in an ``nn.Embedding`` (ViT/DeiT/BEiT/Swin in
#: Hugging Face: ``cls_token``, ``mask_token``, ``position_embeddings``; timm: ``pos_embed``,
#: ``dist_token``, ``reg_token``; DINOv2: ``register_tokens``; CLIP: ``class_embedding``;
#: wav2vec2/HuBERT's mask vector ``masked_spec_embed``, XLNet's ``mask_emb``; SigLIP's
#: attention-pooling query ``probe``).
#: They are embeddings (role ``embedding``), each a stack of vectors of its last dimension.
FREE_TABLE_GLOBS = ("*_token", "*_tokens", "pos_embed", "pos_embedding", "position_embedding",
                    "position_embeddings", "absolute_pos_embed", "class_embedding",
                    "masked_spec_embed", "mask_emb", "probe")


def is_free_table(module: nn.Module, local: str) -> bool:
    """Whether ``module.<local>`` is a free token/position table (:data:`FREE_TABLE_GLOBS`): a
    parameter of a module initlab does not otherwise know, named as one."""
    import fnmatch

    return module_kind(module) == "other" and any(
        fnmatch.fnmatchcase(local, g) for g in FREE_TABLE_GLOBS)


@dataclass
class Block:
    """Rows ``start:stop`` (dim 0) of a tensor, initialized as a matrix whose fans come from
    ``fan_shape``; ``label`` suffixes the stream key."""

    start: int
    stop: int
    fan_shape: tuple[int, ...]
    label: str = ""
    #: the block is the one slice ``tensor[start]`` (``stop == start + 1``: an expert of a
    #: bank of stacked matrices), drawn with the slice's shape, so a shape-aware initializer
    #: (orthogonal, sparse) sees one expert's matrix
    single: bool = False

    def view(self, tensor: torch.Tensor, n_blocks: int) -> torch.Tensor:
        """This block's slice of ``tensor`` split into ``n_blocks`` (shape :meth:`shape_in`)."""
        if self.single:
            return tensor[self.start]
        return tensor if n_blocks == 1 else tensor[self.start:self.stop]

    def shape_in(self, shape: tuple[int, ...], n_blocks: int) -> tuple[int, ...]:
        """The shape of this block's slice of a tensor of ``shape`` split into ``n_blocks``."""
        if self.single:
            return tuple(shape[1:])
        if n_blocks == 1:
            return tuple(shape)
        return (self.stop - self.start, *shape[1:])


@dataclass
class ParamInfo:
    """One distinct parameter tensor of a model (see the module docs)."""

    name: str                      # canonical primary name, e.g. "encoder.0.weight"
    aliases: tuple[str, ...]       # other canonical names of the same tensor (tied)
    module_name: str
    module: nn.Module
    local: str                     # local name in its module ("weight", "weight_hh_l0")
    tensor: torch.Tensor           # what is written (the original, for parametrized weights)
    shape: tuple[int, ...]         # logical shape
    role: str                      # weight | bias | embedding | norm_scale | norm_shift | other
    layout: str
    blocks: list[Block]
    kind: str                      # the owning module's kind: linear, conv, ..., norm, other
    originals: tuple[torch.Tensor, ...] = ()   # multi-original parametrizations
    plist: Any = None              # the ParametrizationList for multi-original
    hooked: bool = False           # reparametrized by a torch hook (prune, spectral/weight
    #                                norm: :mod:`~initlab.modelinit.hooked`): refreshed
    notes: list[str] = field(default_factory=list)
    #: every (module name, module, local name) holding this tensor, primary first
    uses: list[tuple[str, nn.Module, str]] = field(default_factory=list)
    packed: str | None = None      # "qkv" | "gates" for packed tensors
    # filled from the dataflow (describe.describe)
    activation: Any = "unknown"    # (Activation, param) | None (linear output) | "unknown"
    activation_why: str = ""
    gated_by: str | None = None    # the layer whose activation multiplies this one's output
    is_readout: bool = False
    residual_branch: int | None = None   # index of the residual branch this layer closes

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)

    @property
    def fan_role(self) -> str:
        """What the samplers' ``role=`` expects: ``bias`` takes its weight's fans."""
        return "bias" if self.role in ("bias", "norm_shift") else "weight"

    @property
    def fans(self) -> list[tuple[int, int] | None]:
        """(fan_in, fan_out) per block in this parameter's layout (None: no fans)."""
        from ..core import fans as core_fans

        out = []
        for b in self.blocks:
            out.append(None if len(b.fan_shape) < 2 or 0 in b.fan_shape
                       else core_fans(b.fan_shape, self.layout))
        return out

    @property
    def tied(self) -> bool:
        return bool(self.aliases)

    def write_targets(self) -> tuple[torch.Tensor, ...]:
        """Every tensor a write of this parameter may change in place: its stored tensors, and
        the vectors of a spectral norm's hook, refitted (a parametrization's buffers, which it
        may replace, are kept by ``write.kept_buffers``)."""
        out = self.originals if self.originals else (self.tensor,)
        if self.hooked:
            out = (*out, *(m.get_buffer(b) for _, m, _ in self.uses
                           for h in set(hooked_of(m).values()) for b in h.buffers))
        return out


#: the name used before the model description existed (kept for code that imports it)
Slot = ParamInfo


def is_hf_conv1d(module: nn.Module) -> bool:
    return type(module).__name__ == "Conv1D" and hasattr(module, "nf")


def module_kind(module: nn.Module) -> str:
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
    if isinstance(module, RNN_TYPES):
        return "rnn"
    if isinstance(module, nn.MultiheadAttention):
        return "mha"
    if is_hf_conv1d(module):
        return "hf_conv1d"
    if looks_like_norm(module):
        return "norm"
    if is_router(module):
        return "linear"
    if expert_count(module) is not None:
        return "experts"
    return "other"


def is_response_norm(module: nn.Module) -> bool:
    """Whether ``module`` is a *global response normalization* (ConvNeXt V2, Woo et al. 2023:
    ``x + gamma * (x * N(x)) + beta``), by class name (Hugging Face's ``ConvNextV2GRN``, timm's
    ``GlobalResponseNorm``, a user's ``GRN``). Not a norm: it is the identity at gamma = beta = 0,
    where the paper starts it, and a norm's scale of 1 would double its input's response."""
    name = type(module).__name__
    return name.endswith("GRN") or "GlobalResponseNorm" in name


def looks_like_norm(module: nn.Module) -> bool:
    """A module of an unknown class that is a norm by structure: no child modules, a 1-D
    ``weight`` (and optionally a 1-D ``bias`` of the same size) as its only parameters, and a
    normalization size attribute or a variance epsilon (Llama's ``LlamaRMSNorm``, T5's
    ``T5LayerNorm``, a user's RMSNorm), and not a response norm (:func:`is_response_norm`)."""
    if any(True for _ in module.children()) or is_response_norm(module):
        return False
    params = dict(module._parameters)
    w, b = params.get("weight"), params.get("bias")
    if set(params) - {"weight", "bias"} or not isinstance(w, torch.Tensor):
        return False
    if w.dim() != 1 or (isinstance(b, torch.Tensor) and tuple(b.shape) != tuple(w.shape)):
        return False
    return any(hasattr(module, a) for a in NORM_ATTRS)


#: what a norm keeps of its size or epsilon (read by :func:`looks_like_norm` and
#: :func:`is_free_norm`)
NORM_ATTRS = ("eps", "variance_epsilon", "epsilon", "normalized_shape")


def is_free_norm(module: nn.Module) -> bool:
    """A norm with no parameters at all: OLMo's ``OlmoLayerNorm`` (``F.layer_norm`` without
    weight or bias), NanoChat's ``NanoChatRMSNorm``, torch's norms with
    ``elementwise_affine=False``. By structure and name: no parameters, no children, a class
    name with ``Norm`` in it (not a response norm) and a size or epsilon attribute. Nothing to
    initialize; the probe passes a layer's output through it as through any norm."""
    if any(True for _ in module.parameters()) or any(True for _ in module.children()):
        return False
    if isinstance(module, NORM_TYPES):
        return True
    name = type(module).__name__
    return "Norm" in name and not is_response_norm(module) and \
        any(hasattr(module, a) for a in NORM_ATTRS)


def _logical_shape(module: nn.Module, local: str, tensor: torch.Tensor) -> tuple[int, ...]:
    return tuple(computed(module, local).shape) if is_parametrized(module, local) \
        else tuple(tensor.shape)


def is_parametrized(module: nn.Module, local: str) -> bool:
    p = getattr(module, "parametrizations", None)
    return p is not None and local in p


def weight_shape(module: nn.Module, name: str = "weight") -> tuple[int, ...] | None:
    w = getattr(module, name, None)
    return tuple(w.shape) if isinstance(w, torch.Tensor) else None


def _static(module: nn.Module, local: str, shape: tuple[int, ...]):
    """(role, layout, blocks, packed, note) of a parameter from its module type."""
    kind = module_kind(module)
    is_bias = "bias" in local
    whole = [Block(0, shape[0] if shape else 0, shape)]
    if kind in ("linear", "conv", "conv_transpose", "hf_conv1d"):
        layout = "torch_transposed" if kind == "hf_conv1d" else "torch"
        if is_bias:
            ws = weight_shape(module)
            return "bias", layout, [Block(0, shape[0], ws if ws is not None else shape)], None, ""
        return "weight", layout, whole, None, ""
    role = "bias" if is_bias else "weight"
    if kind == "rnn" and isinstance(module, RNN_TYPES):
        gates = rnn_gates(module)
        h = module.hidden_size
        if local.startswith("weight_hr"):
            return "weight", "torch", whole, None, ""
        wname = local.replace("bias", "weight")
        ws = weight_shape(module, wname) or shape
        if shape[0] == len(gates) * h and len(gates) > 1:
            blocks = [Block(i * h, (i + 1) * h, (h, *ws[1:]), f"gate_{g}")
                      for i, g in enumerate(gates)]
            return role, "torch", blocks, "gates", ""
        return role, "torch", [Block(0, shape[0], ws)], None, ""
    if kind == "mha" and isinstance(module, nn.MultiheadAttention):
        e = module.embed_dim
        if local == "in_proj_weight":
            return "weight", "torch", [Block(i * e, (i + 1) * e, (e, shape[1]), q)
                                       for i, q in enumerate("qkv")], "qkv", ""
        if local == "in_proj_bias":
            ins = (e, e, e) if module._qkv_same_embed_dim else (e, module.kdim, module.vdim)
            return "bias", "torch", [Block(i * e, (i + 1) * e, (e, ins[i]), q)
                                     for i, q in enumerate("qkv")], "qkv", ""
        if local in ("bias_k", "bias_v"):
            return "bias", "torch", [Block(0, shape[0], (e, e))], None, ""
        return role, "torch", whole, None, ""
    if kind == "experts":
        if len(shape) == 3:
            layout, how = expert_layout(module, local, shape)
            blocks = [Block(e, e + 1, shape[1:], f"expert_{e}", single=True)
                      for e in range(shape[0])]
            return role, layout, blocks, "experts", (
                f"expert bank of {shape[0]} experts: each expert's {shape[1]}x{shape[2]} "
                f"matrix drawn as its own layer, with its own fans and stream; layout from "
                f"{how}")
        stem = local[:-len("_bias")] if local.endswith("_bias") else local.replace("bias",
                                                                                  "weight")
        ws = weight_shape(module, stem)
        layout = expert_layout(module, stem, ws)[0] if ws and len(ws) == 3 else "torch"
        fan = ws[1:] if ws and len(ws) == 3 else shape[1:]
        return role, layout, [Block(e, e + 1, fan, f"expert_{e}", single=True)
                              for e in range(shape[0])], "experts", ""
    if kind == "other" and (heads := block_gate_heads(module, local)):
        bw = shape[-1]
        return role, "torch_transposed", [Block(h, h + 1, (bw, bw), f"head_{h}", single=True)
                                          for h in range(heads)], "heads", (
            f"block-diagonal gate of {heads} heads (x @ W[h]): each head's {bw}x{bw} block "
            "drawn as its own layer, with its own fans and stream")
    if kind == "norm":
        return ("norm_shift" if is_bias else "norm_scale"), "torch", \
            [Block(0, shape[0] if shape else 0, ())], None, ""
    if kind == "embedding":
        return "embedding", "torch", whole, None, ""
    if is_free_table(module, local) and shape:
        d = shape[-1]
        rows = math.prod(shape[:-1])
        return "embedding", "torch", [Block(0, shape[0], (rows, d))], None, (
            f"a free token/position table by its name `{local}` (on {type(module).__name__}): "
            f"an embedding of {rows} vector(s) of dim {d}, fans ({d}, {rows}) as an "
            "nn.Embedding table's")
    return role, "torch", whole, None, (
        f"module type {type(module).__name__} is not one initlab knows: role `{role}` read from "
        f"the parameter's name, fans from its shape {tuple(shape)} in torch layout")


def collect_params(model: nn.Module) -> list[ParamInfo]:
    """Every distinct parameter of ``model`` as a :class:`ParamInfo`, in registration order
    (static part only: :func:`initlab.modelinit.describe.describe` adds the dataflow)."""
    from torch.nn.utils import parametrize

    lazy = [n for n, p in model.named_parameters()
            if isinstance(p, nn.parameter.UninitializedParameter)]
    if lazy:
        raise fail("model", "has uninitialized (lazy) parameters: "
                   + ", ".join(f"`{n}`" for n in lazy),
                   type(model).__name__,
                   "run one forward pass with a real batch to materialize them (their shapes are "
                   "unknown until then), then initialize.")
    by_id: dict[int, ParamInfo] = {}
    by_name: dict[str, str] = {}  # canonical name -> full name of the tensor that owns its stream
    out: list[ParamInfo] = []
    for mname, module in model.named_modules(remove_duplicate=False):
        if isinstance(module, parametrize.ParametrizationList):
            continue  # handled from the owner
        locals_: list[tuple[str, Any]] = list(module._parameters.items())
        plists = getattr(module, "parametrizations", None)
        if plists is not None and parametrize.is_parametrized(module):
            for tname, plist in plists.items():
                locals_.append((tname, plist))
        hooks = hooked_of(module)       # (prune, spectral_norm, weight_norm: `weight` computed)
        # a hook re-registers the weight as `weight_orig` after the bias: listed first again
        locals_.sort(key=lambda kv: kv[0] not in hooks)
        for stored, obj in locals_:
            if obj is None:
                continue
            hook = hooks.get(stored)
            if hook is not None and stored != hook.stored[0]:
                continue                # weight norm's v: drawn with g, as one weight
            local = hook.name if hook is not None else stored
            full = f"{mname}.{local}" if mname else local
            canon = canonical_param_name(full)
            if hook is not None:
                tensors: tuple[torch.Tensor, ...] = tuple(module._parameters[n] for n in
                                                          hook.stored)
            elif isinstance(obj, parametrize.ParametrizationList):
                if hasattr(obj, "original"):
                    tensors = (obj.original,)
                else:
                    tensors = tuple(getattr(obj, f"original{i}") for i in range(obj.ntensors))
            else:
                tensors = (obj,)
            key = id(tensors[-1])
            if key in by_id:
                p = by_id[key]
                if canon not in p.names:
                    p.aliases = (*p.aliases, canon)
                    p.uses.append((mname, module, local))
                p.hooked = p.hooked or hook is not None
                continue
            if canon in by_name:
                raise fail(
                    "model", f"has two different parameters, `{by_name[canon]}` and `{full}`, "
                    f"with the same canonical name `{canon}` (wrapper prefixes stripped), so they "
                    "would share one random stream", type(model).__name__,
                    "rename one of them, or initialize the unwrapped model.")
            by_name[canon] = full
            shape = tuple(computed(module, local).shape) if hook is not None else \
                _logical_shape(module, local, tensors[0])
            role, layout, blocks, packed, note = _static(module, local, shape)
            p = ParamInfo(canon, (), mname, module, local, tensors[-1], shape, role, layout,
                          blocks, module_kind(module), packed=packed)
            p.uses.append((mname, module, local))
            if note:
                p.notes.append(note)
            if hook is not None:
                p.hooked = True
                p.notes.append(hook.note)
                if len(tensors) > 1:
                    p.originals, p.plist = tensors, (hook,)
            elif len(tensors) > 1 or isinstance(obj, parametrize.ParametrizationList) and \
                    all(hasattr(par, "right_inverse") for par in obj):
                p.originals = tensors
                p.plist = obj
                p.notes.append("parametrized: drawn W mapped through right_inverse")
            elif isinstance(obj, parametrize.ParametrizationList):
                p.notes.append("parametrized: drawn into `original` (a parametrization without "
                               "right_inverse)")
            by_id[key] = p
            for t in tensors:
                by_id[id(t)] = p
            out.append(p)
    for p in out:
        if p.aliases:
            _choose_primary(p)
    return out


def _choose_primary(p: ParamInfo) -> None:
    """A tied tensor is described (and matched) as its input embedding when it is one, else as
    a layer's (BERT's ``cls.predictions.bias`` is ``cls.predictions.decoder.bias``), else under
    its first registered name."""
    names = list(p.names)
    kinds = [module_kind(m) for _, m, _ in p.uses]
    want = "embedding" if "embedding" in kinds else next(
        (k for k in kinds if k in LAYER_KINDS), None) if kinds[0] not in LAYER_KINDS else None
    for i, (mname, module, local) in enumerate(p.uses):
        if i and want is not None and kinds[i] == want:
            shape = tuple(p.tensor.shape)
            role, layout, blocks, packed, note = _static(module, local, shape)
            p.name, p.aliases = names[i], tuple(n for j, n in enumerate(names) if j != i)
            p.module_name, p.module, p.local = mname, module, local
            p.role, p.layout, p.blocks, p.packed = role, layout, blocks, packed
            p.kind = kinds[i]
            p.notes = [n for n in p.notes if not n.startswith("module type")]
            p.uses.insert(0, p.uses.pop(i))
            break
    users = ", ".join(f"{n or '(root)'} ({type(m).__name__})" for n, m, _ in p.uses)
    p.notes.append(f"tied: one tensor used by {users}; initialized once, as `{p.name}`")


# --------------------------------------------------------------------------- attention queries
#: child-module names of an attention's query and key projections (Llama/Mistral/Qwen/our
#: RowAttention ``q_proj``; BERT/ViT ``query``; T5 ``q``; Meta's Llama code ``wq``; DistilBERT
#: ``q_lin``; diffusers ``to_q``), paired so that a module counts as an attention only when it
#: has both
QUERY_KEY_NAMES = (("q_proj", "k_proj"), ("query", "key"), ("q", "k"), ("wq", "wk"),
                   ("q_lin", "k_lin"), ("to_q", "to_k"))


@dataclass(frozen=True)
class QueryPart:
    """Where an attention's query projection lives: the parameter (``tensor``, named ``name``),
    and for a packed q/k/v tensor the query's index range ``[start, stop)`` along ``axis`` of the
    stored tensor (None: the whole tensor)."""

    attention: str                 # the attention module's name
    name: str                      # the parameter's name
    tensor: torch.Tensor
    axis: int = 0
    start: int | None = None
    stop: int | None = None

    def __post_init__(self) -> None:
        if (self.start is None) != (self.stop is None):
            raise fail("start, stop", "must be given together (the query's range [start, stop)) "
                       "or both be None (the whole tensor)", (self.start, self.stop),
                       "pass both ends of the range, or neither.")

    @property
    def stored(self) -> bool:
        """False for a weight computed by a parametrization (``torch.nn.utils.parametrize``,
        weight norm...): writing it would not change the model."""
        return isinstance(self.tensor, nn.Parameter)

    def view(self) -> torch.Tensor:
        """The query's part of the stored tensor (a view: writing it writes the parameter)."""
        if self.start is None or self.stop is None:
            return self.tensor
        return self.tensor.narrow(self.axis, self.start, self.stop - self.start)


def query_parts(model: nn.Module) -> tuple[list[QueryPart], list[str]]:
    """Every attention's query projection (weight and bias), and a note per attention-like
    module whose query initlab cannot locate. The one owner of "which parameter is the query"
    (μP's ``query_zero_init`` zeroes these parts).

    Found: ``nn.MultiheadAttention`` (the first ``embed_dim`` rows of ``in_proj_weight`` /
    ``in_proj_bias``, or ``q_proj_weight`` when k and v have their own sizes); a module with a
    query child and a key child named as in :data:`QUERY_KEY_NAMES` (the query child's weight
    and bias, whole); Hugging Face GPT-2 attention (the packed ``c_attn`` Conv1D stored
    ``(in, 3 * embed_dim)``: its first ``embed_dim`` columns and bias entries; a cross-attention's
    own ``q_attn``)."""
    parts: list[QueryPart] = []
    notes: list[str] = []

    def add(mname, child, local, tensor, axis=0, start=None, stop=None):
        full = ".".join(x for x in (mname, child, local) if x)
        parts.append(QueryPart(mname, full, tensor, axis, start, stop))

    for mname, m in model.named_modules():
        kids = dict(m.named_children())
        if isinstance(m, nn.MultiheadAttention):
            e = m.embed_dim
            if m._qkv_same_embed_dim:
                add(mname, "", "in_proj_weight", m.in_proj_weight, 0, 0, e)
            else:
                add(mname, "", "q_proj_weight", m.q_proj_weight)
            if m.in_proj_bias is not None:
                add(mname, "", "in_proj_bias", m.in_proj_bias, 0, 0, e)
            continue
        if "c_attn" in kids and is_hf_conv1d(kids["c_attn"]):
            q = kids.get("q_attn")
            if q is not None and getattr(m, "is_cross_attention", False):
                for local in ("weight", "bias"):
                    if getattr(q, local, None) is not None:
                        add(mname, "q_attn", local, getattr(q, local))
                continue
            e = getattr(m, "embed_dim", None) or getattr(m, "split_size", None)
            w = kids["c_attn"].weight
            if not isinstance(e, int) or w.shape[1] != 3 * e:
                notes.append(f"`{mname}`: a packed c_attn whose query columns are unknown "
                             f"(shape {tuple(w.shape)}, embed_dim {e!r}); its query left as is")
                continue
            add(mname, "c_attn", "weight", w, 1, 0, e)
            if kids["c_attn"].bias is not None:
                add(mname, "c_attn", "bias", kids["c_attn"].bias, 0, 0, e)
            continue
        for qn, kn in QUERY_KEY_NAMES:
            q = kids.get(qn)
            if q is None or kn not in kids:
                continue
            if not isinstance(getattr(q, "weight", None), torch.Tensor):
                notes.append(f"`{mname}`: query `{qn}` has no weight tensor "
                             f"({type(q).__name__}); left as is")
                break
            add(mname, qn, "weight", q.weight)
            if isinstance(getattr(q, "bias", None), torch.Tensor):
                add(mname, qn, "bias", q.bias)
            break
        else:
            if any(k in kids for k in ("qkv", "qkv_proj", "Wqkv", "query_key_value")):
                notes.append(f"`{mname}` ({type(m).__name__}): a packed q/k/v projection whose "
                             "query rows initlab does not know; its query left as is")
    return parts, notes


def required_queries(model: nn.Module) -> list[QueryPart]:
    """:func:`query_parts` for ``query_zero_init``: an error naming what was seen when the model
    has no attention whose query initlab can locate (nothing is changed before it)."""
    parts, notes = query_parts(model)
    if not parts:
        raise fail("query_zero_init", "needs attention modules, and initlab found none whose "
                   "query projection it can locate" + (f" ({'; '.join(notes)})" if notes else ""),
                   True, "pass query_zero_init=False, or zero the query yourself after "
                   "parametrize.")
    computed = [q.name for q in parts if not q.stored]
    if computed:
        raise fail("query_zero_init", "would zero queries that a parametrization computes (not "
                   "stored parameters): " + ", ".join(f"`{n}`" for n in computed), True,
                   "remove the parametrization from the query first, or pass "
                   "query_zero_init=False.")
    return parts
