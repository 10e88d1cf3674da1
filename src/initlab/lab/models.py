"""Models for the laboratory, built from a frozen :class:`ModelConfig`.

Every model is an ``nn.Sequential`` of plain layers, so plans (``initlab.apply``) see each
``Linear``/``Conv`` and the activation that follows it:

- ``mlp``: ``depth`` hidden layers ``Linear(width) -> activation``, then ``Linear(n_classes)``.
  (``depth`` counts hidden layers: Nielsen's 784-30-10 is depth 1, width 30.)
- ``linear``: the same without activations, a deep linear network (Saxe, McClelland, Ganguli,
  "Exact solutions to the nonlinear dynamics of learning in deep linear neural networks", 2014).
- ``cnn``: ``depth`` layers ``Conv(channels, kernel, same padding) -> activation`` (Conv1d for a
  1-D ``in_shape`` (C, L), Conv2d for (C, H, W)), then flatten and ``Linear(n_classes)``.
- ``resmlp`` / ``rescnn``: a stem layer and activation, then ``depth`` :class:`Residual` blocks
  each followed by the activation, then the head.

Residual convention (that of ``initlab.apply``'s ``fixup`` and ``zero_residual`` plans: a block
is a module with a ``shortcut`` attribute, its branch is its other Linear/Conv layers): a
:class:`Residual` block computes ``shortcut(x) + branch(x)`` (``branch(x)`` times ``scale`` when
the model has scalar multipliers), where ``shortcut`` is ``nn.Identity()`` and ``branch`` is an
``nn.Sequential`` ``[layer, activation, layer]`` (m = 2 layers). The last layer of a branch is
``branch[-1]``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TypeVar

import torch
from torch import nn

from ..backends import torch_activations
from ..core.activations import lookup_module
from ..core.validation import check_choice, check_scalar, fail

_M = TypeVar("_M", bound=nn.Module)

KINDS = ("mlp", "cnn", "resmlp", "rescnn", "linear")
# the activations the lab offers (names of the registry, :mod:`initlab.core.activations`)
ACTIVATIONS = ("relu", "tanh", "sigmoid", "gelu", "silu", "selu", "elu", "leaky_relu", "softplus",
               "linear")


@dataclass(frozen=True)
class ModelConfig:
    """What to build. Defaults: a 3-hidden-layer ReLU MLP for 8x8 digits."""

    kind: str = "mlp"               # one of KINDS
    depth: int = 3                  # hidden layers (mlp/linear/cnn) or residual blocks (res*)
    width: int = 64                 # hidden units (mlp, linear, resmlp)
    activation: str = "relu"        # one of ACTIVATIONS ("linear" = none)
    bias: bool = True               # biases in every Linear/Conv
    in_shape: tuple[int, ...] = (64,)  # per-example input shape: (d,), (C, L) or (C, H, W)
    n_classes: int = 10             # outputs
    channels: int = 16              # conv channels (cnn, rescnn)
    kernel_size: int = 3            # conv kernel (odd, "same" padding)
    residual_scalar: bool = False   # res*: a learnable scalar multiplier per branch (init 1)

    def __post_init__(self):
        check_choice(self.kind, "kind", KINDS)
        check_choice(self.activation, "activation", tuple(ACTIVATIONS))
        check_scalar(self.depth, "depth", min_val=0 if self.kind in ("mlp", "linear") else 1,
                     integer=True)
        for name in ("width", "n_classes", "channels", "kernel_size"):
            check_scalar(getattr(self, name), name, min_val=1, integer=True)
        if self.kernel_size % 2 == 0:
            raise fail("kernel_size", "must be odd (for 'same' padding)", self.kernel_size,
                       "pass 3 or 5.")
        shape = tuple(int(s) for s in self.in_shape)
        object.__setattr__(self, "in_shape", shape)
        if not shape or any(s < 1 for s in shape):
            raise fail("in_shape", "must be a non-empty tuple of positive sizes", self.in_shape,
                       "pass e.g. (64,) or (1, 8, 8).")
        if self.kind in ("cnn", "rescnn") and len(shape) not in (2, 3):
            raise fail("in_shape", f"must be (C, L) or (C, H, W) for a `{self.kind}`",
                       self.in_shape, "pass the image shape, e.g. (1, 8, 8) (data.shape).")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["in_shape"] = list(self.in_shape)
        return d


class Reshape(nn.Module):
    """``x.reshape(len(x), *shape)``: lets every model take flat (n, d) inputs."""

    def __init__(self, shape):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x):
        return x.reshape(x.shape[0], *self.shape)

    def extra_repr(self):
        return f"shape={self.shape}"


class Residual(nn.Module):
    """``shortcut(x) + branch(x)`` (``+ scale * branch(x)`` with a scalar multiplier), with an
    identity ``shortcut``: the residual block that ``initlab.apply``'s ``fixup`` and
    ``zero_residual`` plans recognize (a module with a ``shortcut`` attribute)."""

    def __init__(self, branch: nn.Sequential, scalar: bool = False):
        super().__init__()
        self.shortcut = nn.Identity()
        self.branch = branch
        self.scale = nn.Parameter(torch.ones(())) if scalar else None

    def forward(self, x):
        out = self.branch(x)
        return self.shortcut(x) + (out if self.scale is None else self.scale * out)


#: The torch module of a registry activation (``linear``: ``nn.Identity``).
activation_module = torch_activations.module
_act = activation_module


def _layers(cfg: ModelConfig) -> list[nn.Module]:
    b, w, act = cfg.bias, cfg.width, cfg.activation
    n_in = math.prod(cfg.in_shape)
    if cfg.kind in ("mlp", "linear"):
        mods: list[nn.Module] = [nn.Flatten()]
        d = n_in
        for _ in range(cfg.depth):
            mods.append(nn.Linear(d, w, bias=b))
            if cfg.kind == "mlp":
                mods.append(_act(act))
            d = w
        mods.append(nn.Linear(d, cfg.n_classes, bias=b))
        return mods
    if cfg.kind == "resmlp":
        mods = [nn.Flatten(), nn.Linear(n_in, w, bias=b), _act(act)]
        for _ in range(cfg.depth):
            branch = nn.Sequential(nn.Linear(w, w, bias=b), _act(act), nn.Linear(w, w, bias=b))
            mods += [Residual(branch, cfg.residual_scalar), _act(act)]
        mods.append(nn.Linear(w, cfg.n_classes, bias=b))
        return mods
    conv = nn.Conv1d if len(cfg.in_shape) == 2 else nn.Conv2d
    c, k, pad = cfg.channels, cfg.kernel_size, cfg.kernel_size // 2
    spatial = math.prod(cfg.in_shape[1:])
    mods = [Reshape(cfg.in_shape)]
    if cfg.kind == "cnn":
        cin = cfg.in_shape[0]
        for _ in range(cfg.depth):
            mods += [conv(cin, c, k, padding=pad, bias=b), _act(act)]
            cin = c
    else:  # rescnn
        mods += [conv(cfg.in_shape[0], c, k, padding=pad, bias=b), _act(act)]
        for _ in range(cfg.depth):
            branch = nn.Sequential(conv(c, c, k, padding=pad, bias=b), _act(act),
                                   conv(c, c, k, padding=pad, bias=b))
            mods += [Residual(branch, cfg.residual_scalar), _act(act)]
    mods += [nn.Flatten(), nn.Linear(c * spatial, cfg.n_classes, bias=b)]
    return mods


@torch.no_grad()
def torch_default_(model: _M, generator: torch.Generator) -> _M:
    """Re-draw every Linear/Conv parameter as PyTorch does by default, from ``generator``:
    weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (``kaiming_uniform_(a=sqrt(5))`` gives
    bound gain*sqrt(3/fan_in) with gain sqrt(2/(1+5)), i.e. 1/sqrt(fan_in))."""
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            fan_in = m.weight[0].numel()
            bound = 1.0 / math.sqrt(fan_in)
            m.weight.uniform_(-bound, bound, generator=generator)
            if m.bias is not None:
                m.bias.uniform_(-bound, bound, generator=generator)
    return model


def build_model(cfg: ModelConfig, *, generator: torch.Generator | None = None) -> nn.Sequential:
    """Build the model of ``cfg`` on CPU, its parameters drawn as PyTorch's default init from
    ``generator`` (default: ``torch.Generator().manual_seed(0)``). Construction happens on the
    meta device, so PyTorch's global RNG is neither read nor advanced.
    """
    if not isinstance(cfg, ModelConfig):
        raise fail("cfg", "must be a ModelConfig", type(cfg).__name__, "pass ModelConfig(...).")
    with torch.device("meta"):
        model = nn.Sequential(*_layers(cfg))
    model = model.to_empty(device="cpu")
    for m in model.modules():
        if isinstance(m, Residual) and m.scale is not None:
            with torch.no_grad():
                m.scale.fill_(1.0)
    if generator is None:
        generator = torch.Generator().manual_seed(0)
    return torch_default_(model, generator)


def hidden_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The modules whose outputs are the network's hidden activations, in forward order: the
    top-level activation modules if any, else (deep linear nets) every weight layer but the
    last. Used to record per-layer statistics."""
    top = list(model.named_children()) if isinstance(model, nn.Sequential) else []
    acts = [(n, m) for n, m in top if lookup_module(m) is not None]
    if acts:
        return acts
    layers: list[tuple[str, nn.Module]] = [
        (n, m) for n, m in model.named_modules()
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d))]
    return layers[:-1]


class RowAttention(nn.Module):
    """Multi-head self-attention with Hugging Face's attribute names: ``head_dim`` and
    ``scaling`` (the factor on q.k, 1/sqrt(head_dim) by default), so a width parametrization
    (``initlab.parametrize(..., "mup")``) can set μP's 1/d scale on it as on a transformers
    model."""

    def __init__(self, width: int, n_head: int):
        super().__init__()
        if width % n_head:
            raise fail("width", f"must be divisible by n_head={n_head}", width,
                       f"pass a multiple of {n_head}.")
        self.n_head, self.head_dim = n_head, width // n_head
        self.scaling = self.head_dim ** -0.5
        self.q_proj, self.k_proj, self.v_proj, self.o_proj = (
            nn.Linear(width, width) for _ in range(4))

    def forward(self, x):
        b, t, d = x.shape

        def heads(z):
            return z.view(b, t, self.n_head, self.head_dim).transpose(1, 2)

        q, k, v = heads(self.q_proj(x)), heads(self.k_proj(x)), heads(self.v_proj(x))
        att = torch.softmax((q @ k.transpose(-1, -2)) * self.scaling, dim=-1)
        return self.o_proj((att @ v).transpose(1, 2).reshape(b, t, d))


class RowBlock(nn.Module):
    """A pre-norm transformer block: ``x + attn(ln1(x))``, then ``x + fc2(relu(fc1(ln2(x))))``."""

    def __init__(self, width: int, n_head: int, mlp_ratio: int = 2):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.attn = RowAttention(width, n_head)
        self.fc1 = nn.Linear(width, mlp_ratio * width)
        self.fc2 = nn.Linear(mlp_ratio * width, width)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.fc2(torch.relu(self.fc1(self.ln2(x))))


class RowTransformer(nn.Module):
    """A small vision transformer that reads an image one row of pixels per token: a linear
    embedding of each row to ``width``, learned positions, ``n_layer`` :class:`RowBlock` s, mean
    pooling, a final LayerNorm and a linear readout. Flattened inputs ``(batch, rows * cols)`` are
    reshaped to ``(batch, rows, cols)``."""

    def __init__(self, width: int, *, rows: int, cols: int, n_classes: int = 10, n_head: int = 4,
                 n_layer: int = 2):
        super().__init__()
        self.rows, self.cols = rows, cols
        self.embed = nn.Linear(cols, width)
        self.pos = nn.Embedding(rows, width)
        self.blocks = nn.ModuleList(RowBlock(width, n_head) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(width)
        self.head = nn.Linear(width, n_classes)

    def forward(self, x):
        x = x.reshape(x.shape[0], self.rows, self.cols)
        h = self.embed(x) + self.pos.weight
        for blk in self.blocks:
            h = blk(h)
        return self.head(self.ln_f(h.mean(1)))
