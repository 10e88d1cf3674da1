"""Width (and depth) parametrizations for an unmodified model: SP, μP, NTK and mean field.

How a network is initialized decides which learning rate is best. Under torch's standard
parametrization (SP) the best learning rate moves as the model gets wider; the maximal update
parametrization (μP; Yang et al. 2022, "Tensor Programs V: Tuning Large Neural Networks via
Zero-Shot Hyperparameter Transfer") keeps it in place, so hyperparameters tuned on a small model
carry over to a large one. Its depth extension (Yang et al. 2023, "Tensor Programs VI: Feature
Learning in Infinite-Depth Neural Networks"; Bordelon et al. 2023) scales each residual branch by
1/sqrt(L).

``parametrize(model, "mup", base=lambda: make_model(width=64), seed=0)`` gives any model μP as it
stands: no ``MuReadout`` to swap in, no base model in memory (the base is built on the meta
device), no special optimizer. It returns a :class:`Parametrization` that holds

* every parameter's class (:data:`CLASSES`, from its width dimensions as in ``mup``:
  both fans width = ``hidden``, only fan_out = ``input``, only fan_in = ``output`` (the readout),
  one width dimension in a 1-D tensor = ``vector`` (biases, norm scales), none = ``fixed``);
* what was done at init: the base plan's draw (``init``, torch's default by default) times an
  ``init_scale`` chosen so that the stored std is the plan's std *at the base shape* times the
  parametrization's width factor (μP's hidden weights: 1/sqrt(m_in)). So any base plan works:
  with torch's default (std 1/sqrt(fan_in)) μP's hidden weights keep the draw, as in ``mup``;
  with a fixed std (GPT-2's 0.02) they get 0.02/sqrt(m_in), as ``mup.init.normal_`` gives;
* the multipliers training needs: a forward ``multiplier`` on the layer's weight (applied by a
  removable forward pre-hook that scales the layer's input, so ``W (m x) + b = (m W) x + b``;
  a weight that its module's own code reads (a free weight, an expert bank, a table), by a
  parametrization of the parameter: :mod:`~initlab.modelinit.multipliers`),
  the attention scale (``module.scaling`` of Hugging Face attention modules), the residual-branch
  multiplier for depth, and per-parameter learning-rate multipliers for Adam-like and SGD-like
  optimizers, handed to torch's own optimizers as ordinary parameter groups
  (:meth:`Parametrization.param_groups`).

Everything is relative to the base widths, so at base width every parametrization is SP (as in
``mup``: "behave exactly the same as the torch versions when the model shapes are equal to their
base shapes"). With width multipliers ``m_in`` (fan_in's) and ``m_out`` (fan_out's), and ``mult``
the forward multiplier:

=========  ===============================================================================
``mup``    hidden: std (base std) / sqrt(m_in), Adam lr / m_in, SGD lr * m_out / m_in. input:
           base std, SGD lr * m_out. output (readout): stored base std, multiplier
           output_mult / m_in, SGD lr * m_in. vector (biases, norms): base std, SGD lr * m
           (with torch's default this is mup's ``rescale_linear_bias``). The attention scale
           sqrt(d_base) / d instead of 1/sqrt(d)
           (1/d up to the constant that makes it SP at base width). This is ``mup``'s
           arrangement ("readout weights x sqrt(width_mult), input / width_mult, MuAdam lr /
           width_mult"), so effective quantities agree with it to float precision.
``ntk``    hidden and output: stored base std, multiplier 1/sqrt(m_in) (the readout's
           times ``output_mult``): the neural tangent parametrization (Jacot et al. 2018;
           Table 1 of Yang & Hu 2021, "Tensor Programs IV": a = 1/2, b = 0, c = 0).
``mfp``    as ``ntk`` for input and hidden layers, but the readout's multiplier is 1/m_in
           (a = 1) and the SGD learning rate of every parameter is multiplied by the readout's
           m_in (c = -1): the mean-field parametrization of Tensor Programs IV's Table 1, defined
           there for one hidden layer (where it equals μP); initlab extends it to deeper nets with
           NTK hidden layers.
``sp``     nothing changes: torch's default init and one learning rate (the baseline); only
           an ``output_mult`` other than 1 multiplies the readout, as a constant.
=========  ===============================================================================

Effective quantities, the ones that define a parametrization whatever the arrangement (the
effective weight is ``multiplier x stored``): init std ``mult * std(stored)``, Adam learning rate
``mult * lr_stored`` (Adam's step does not depend on the gradient's scale), SGD learning rate
``mult**2 * lr_stored`` (the stored gradient is ``mult`` times the effective one).

Depth (``depth="sqrt"``, with ``base_depth`` L0 the number of residual branches the
hyperparameters were tuned at): each residual branch's output is multiplied by sqrt(L0 / L), L the
branches found by the model description, and the Adam learning rate of the parameters inside the
branches by sqrt(L0 / L) (Tensor Programs VI, Depth-μP); SGD learning rates are unchanged.

A LoRA adapter's A (peft's ``lora_A``: fan_in width, fan_out the rank r) has width in its fan_in
only, as a readout has, but it is not one: its output feeds B. It is classed ``hidden``, which
under ``mup`` with Adam is LoRA+'s scaling (Hayou, Ghosh & Yu 2024, "LoRA+: Efficient Low Rank
Adaptation of Large Models"): A's std stays 1/sqrt(fan_in) (peft's kaiming init) and its learning
rate is / m_in while B (an ``input``) keeps its own, so eta_B / eta_A = m. A readout multiplier
would shrink A's output as 1/m, and ``readout_zero_init`` would zero A beside B = 0, after which
neither ever gets a gradient. Under SGD the classes' rules apply as for any layer (eta_B / eta_A =
m^2); LoRA+ derives its ratio for Adam.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, TypedDict

import torch
import torch.nn as nn

from ..core.fans import fans as core_fans
from ..core.validation import InitlabTypeError, check_choice, check_scalar, error_message, fail
from ..util.hashing import canonical_param_name
from .adapters import lora_part
from .multipliers import (
    OWN_MULTIPLIER_KINDS,
    SetAttr,
    check_forward_multipliers,
    install,
    is_matrix,
    mup_attention_scales,
    scale_input,
    scale_output,
)
from .params import ParamInfo, collect_params, required_queries
from .plans import PARAMETRIZATION_NAMES as PARAMETRIZATIONS  # the one list of names
from .widths import classify, free_widths, width_shapes

CLASSES = ("input", "hidden", "output", "vector", "fixed")
OPTIMIZERS = ("adam", "sgd")
DEPTH_RULES = (None, "sqrt")
LORA_A_WHY = ("LoRA A: hidden-like, as LoRA+ (Hayou et al. 2024) scales it; no readout "
              "multiplier or readout_zero_init (its output feeds B)")


@dataclass
class Scaling:
    """What one parameter gets under a parametrization (see the module docs)."""

    name: str
    shape: tuple[int, ...]
    klass: str                     # input | hidden | output | vector | fixed
    m_in: float = 1.0              # width multiplier of its fan_in dimension
    m_out: float = 1.0             # ... of its fan_out dimension (1-D: of its width dimension)
    init_scale: float = 1.0        # stored = base plan's draw * init_scale
    multiplier: float = 1.0        # effective weight = multiplier * stored (forward pre-hook)
    width_factor: float | None = 1.0   # stored std = base plan's std at the base shape x this
    readout_use: str | None = None     # a tied embedding: the readout module using it
    readout_multiplier: float = 1.0    # ... and that use's multiplier
    lr_adam: float = 1.0           # learning-rate multiplier of the stored parameter, Adam-like
    lr_sgd: float = 1.0            # ... SGD-like
    aliases: tuple[str, ...] = ()
    stored_std: float | None = None
    why: str = ""

    @property
    def effective_std(self) -> float | None:
        return None if self.stored_std is None else abs(self.multiplier) * self.stored_std

    def effective_lr(self, optimizer: str = "adam") -> float:
        """The effective weight's learning-rate multiplier (see the module docs)."""
        optimizer = check_choice(optimizer, "optimizer", OPTIMIZERS)
        if optimizer == "adam":
            return abs(self.multiplier) * self.lr_adam
        return self.multiplier ** 2 * self.lr_sgd


class _Rules(TypedDict):
    width_factor: float | None     # None: the draw as is (SP)
    multiplier: float
    lr_adam: float
    lr_sgd: float


def _rules(name: str, klass: str, m_in: float, m_out: float, output_mult: float) -> _Rules:
    """width_factor, multiplier, lr_adam, lr_sgd of one parameter (the table in the module
    docs). ``width_factor`` multiplies the base width's std: stored std = (the base plan's std
    at the base shape) x width_factor."""
    r: _Rules = {"width_factor": 1.0, "multiplier": 1.0, "lr_adam": 1.0, "lr_sgd": 1.0}
    if name == "sp":
        # SP: the base plan at the target shape, as drawn; output_mult a constant on the readout
        return {**r, "width_factor": None,
                "multiplier": output_mult if klass == "output" else 1.0}
    if name == "mup":
        if klass == "hidden":
            r.update({"width_factor": 1 / math.sqrt(m_in), "lr_adam": 1 / m_in,
                      "lr_sgd": m_out / m_in})
        elif klass == "input":
            r["lr_sgd"] = m_out
        elif klass == "output":
            r.update({"multiplier": output_mult / m_in, "lr_sgd": m_in})
        elif klass == "vector":
            r["lr_sgd"] = m_out
        return r
    # ntk and mfp: hidden layers (and ntk's readout) with a 1/sqrt(fan_in) multiplier
    if klass in ("hidden", "output"):
        r["multiplier"] = 1 / math.sqrt(m_in)
    if klass == "output":
        r["multiplier"] = output_mult / (m_in if name == "mfp" else math.sqrt(m_in))
    return r


def _tied_readout_multiplier(name: str, d_mult: float, output_mult: float) -> float:
    """The forward multiplier of a tied embedding's readout use: the readout's (:func:`_rules`,
    class ``output``) with the feature dimension's width multiplier as its m_in."""
    return _rules(name, "output", d_mult, 1.0, output_mult)["multiplier"]


def _std_at(init: Any, p: ParamInfo) -> float | None:
    """The std ``init`` gives ``p`` (each block with its fans), or None when it has none or
    sets a value rather than drawing one (a constant, a ramp, a cycle, an identity: what the
    architecture sets is the same at every width, so no parametrization rescales it; the std
    of RWKV's ramp over the channels changes with their number, and rescaling it would move
    the ramp's ends)."""
    stds = []
    for b in p.blocks:
        fans = None if len(b.fan_shape) < 2 or 0 in b.fan_shape else core_fans(b.fan_shape,
                                                                               p.layout)
        bshape = b.shape_in(tuple(p.shape), len(p.blocks))
        d = init.resolve(bshape, fans=fans, layout=p.layout, role=p.fan_role)
        if not d.random:
            return None
        stds.append(d.expected_std(bshape))
    if not stds or any(v is None for v in stds) or len({round(v, 12) for v in stds}) != 1:
        return None
    return float(stds[0])


@dataclass
class Parametrization:
    """Returned by :func:`parametrize`: per-parameter :class:`Scaling`, the init report, and the
    installed multipliers (removable with :meth:`remove`)."""

    name: str
    scalings: list[Scaling]
    report: Any                    # the InitReport of the init
    depth: str | None = None
    branch_multiplier: float = 1.0
    n_branches: int = 0
    attention: list[tuple[str, float, float]] = field(default_factory=list)  # (module, old, new)
    notes: list[str] = field(default_factory=list)
    _handles: list[Any] = field(default_factory=list, repr=False)
    _params: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)

    def __getitem__(self, name: str) -> Scaling:
        for s in self.scalings:
            if name == s.name or name in s.aliases:
                return s
        raise KeyError(name)

    @property
    def readout_multiplier(self) -> float:
        """The multiplier on the model's readout (a tied embedding's readout use included)."""
        outs = [s.multiplier for s in self.scalings if s.klass == "output"]
        outs += [s.readout_multiplier for s in self.scalings if s.readout_use]
        return outs[0] if outs else 1.0

    def param_groups(self, lr: float, optimizer: str = "adam", weight_decay: float = 0.0
                     ) -> list[dict[str, Any]]:
        """Parameter groups for torch's own optimizers (``torch.optim.Adam(groups)``): one group
        per learning-rate multiplier, ``lr * multiplier``; weight decay divided by the same
        multiplier, as ``mup``'s MuAdam/MuSGD do (so ``lr * weight_decay`` is unchanged). Each
        group also carries ``names`` (its parameters' names) and ``lr_mult``."""
        lr = check_scalar(lr, "lr", min_val=0.0, include_min=False)
        weight_decay = check_scalar(weight_decay, "weight_decay", min_val=0.0)
        optimizer = check_choice(optimizer, "optimizer", OPTIMIZERS)
        if self._handles is None:
            raise fail("parametrization", "was removed", self.name, "call parametrize() again.")
        groups: dict[float, dict[str, Any]] = {}
        for s in self.scalings:
            mult = s.lr_adam if optimizer == "adam" else s.lr_sgd
            g = groups.setdefault(mult, {"params": [], "names": [], "lr_mult": mult,
                                         "lr": lr * mult, "weight_decay": weight_decay / mult})
            g["params"].append(self._params[s.name])
            g["names"].append(s.name)
        return list(groups.values())

    def remove(self) -> None:
        """Remove the forward multipliers and restore the attention scales (the parameter values
        stay as initialized). Safe to call twice."""
        for h in reversed(self._handles or ()):   # last installed first
            h.remove()
        self._handles = []

    def __enter__(self) -> Parametrization:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()

    def to_dict(self, init: bool = True) -> dict[str, Any]:
        out = {"parametrization": self.name, "depth": self.depth,
                "branch_multiplier": self.branch_multiplier, "n_branches": self.n_branches,
                "readout_multiplier": self.readout_multiplier,
                "attention": [list(a) for a in self.attention], "notes": list(self.notes),
                "scalings": [{**asdict(s), "effective_std": s.effective_std,
                              "effective_lr_adam": s.effective_lr("adam"),
                              "effective_lr_sgd": s.effective_lr("sgd")} for s in self.scalings]}
        if init:
            out["init"] = self.report.to_dict()
        return out

    def table(self) -> str:
        head = ["name", "shape", "class", "m_in", "m_out", "init x", "mult", "eff std",
                "lr x adam", "lr x sgd"]
        rows = []
        for s in self.scalings:
            rows.append([s.name, "x".join(map(str, s.shape)) or "()", s.klass, f"{s.m_in:.3g}",
                         f"{s.m_out:.3g}", f"{s.init_scale:.4g}",
                         f"{s.multiplier:.4g}" + (f" ({s.readout_use}: {s.readout_multiplier:.4g})"
                                                  if s.readout_use else ""),
                         "-" if s.effective_std is None else f"{s.effective_std:.4g}",
                         f"{s.lr_adam:.4g}", f"{s.lr_sgd:.4g}"])
        w = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
             for i, h in enumerate(head)]
        line = lambda cells: "  ".join(c.ljust(w[i]) for i, c in enumerate(cells)).rstrip()  # noqa: E731
        return "\n".join([line(head), line(["-" * x for x in w]), *map(line, rows)])

    def __str__(self) -> str:
        head = f"Parametrization: {self.name}"
        if self.depth:
            head += (f", depth={self.depth} ({self.n_branches} residual branches, multiplier "
                     f"{self.branch_multiplier:.4g})")
        lines = [head, f"readout multiplier {self.readout_multiplier:.4g}"]
        lines += [f"attention scale of {m}: {old:.4g} -> {new:.4g}" for m, old, new in
                  self.attention]
        lines += [f"note: {n}" for n in self.notes]
        lines.append(self.table())
        return "\n".join(lines)


def _build_base(base: Any) -> Any:
    if callable(base) and not isinstance(base, nn.Module):
        with torch.device("meta"):
            built = base()
        return built
    return base


def _layer_use(p: ParamInfo) -> tuple[str, nn.Module] | None:
    """The (module name, module) that uses ``p`` as a layer weight (a tied embedding's readout
    use; else the owner)."""
    for mname, module, _local in p.uses or [(p.module_name, p.module, p.local)]:
        if isinstance(module, nn.Embedding):
            continue
        return mname, module
    return None


def parametrize(model: nn.Module, name: str = "mup", *, base: Any, delta: Any = None,
                seed: int, init: Any = "torch_default", rng: str = "torch",
                output_mult: float = 1.0, readout_zero_init: bool = False,
                query_zero_init: bool = False, attention: bool = True,
                depth: str | None = None, base_depth: int | None = None,
                batch: Any = None) -> Parametrization:
    """Initialize ``model`` under a width parametrization and install its multipliers.

    Parameters
    ----------
    model : the model at its target width (unmodified: no special layers).
    name : ``"sp"``, ``"mup"``, ``"ntk"`` or ``"mfp"`` (:data:`PARAMETRIZATIONS`).
    base : the model at the width the hyperparameters were tuned at: a function building it
        (called on the meta device, no memory), a model, or a mapping name -> base shape (None
        for dimensions that are not width). See :mod:`initlab.modelinit.widths`.
    delta : optional second base width (as ``mup``'s ``delta``).
    seed : the init's seed (each parameter its own stream, as in :func:`initlab.apply`).
    init : the base plan drawn before scaling (torch's default, as ``mup`` assumes).
    output_mult : the readout multiplier's constant (``mup``'s ``output_mult``), in every
        parametrization: the readout's forward multiplier is ``output_mult`` under ``sp``,
        ``output_mult / sqrt(m_in)`` under ``ntk`` and ``output_mult / m_in`` under ``mup`` and
        ``mfp``.
    readout_zero_init : zero the readout (and its bias), as ``mup``'s ``readout_zero_init``.
    query_zero_init : zero every attention's query projection (weight and bias; the query
        columns of a packed q/k/v tensor, :func:`initlab.modelinit.params.query_parts`), so that
        attention starts uniform: ``query_zero_init`` of Microsoft's ``mutransformers`` (whose
        GPT-2 zeroes the query columns of ``c_attn``'s weight; initlab also zeroes their bias, so
        that q is exactly 0 under any base plan) and ``mup_query_zero_init`` in NeMo and OLMo.
        An error when the model has no attention initlab can locate.
    attention : set Hugging Face attention modules' ``scaling`` to sqrt(d_base)/d under μP.
    depth : ``"sqrt"`` for the residual-branch multiplier sqrt(base_depth / L).
    base_depth : the number of residual branches the hyperparameters were tuned at.

    >>> import torch.nn as nn, initlab
    >>> mlp = lambda w: nn.Sequential(nn.Linear(16, w), nn.ReLU(), nn.Linear(w, w), nn.ReLU(),
    ...                               nn.Linear(w, 4))
    >>> par = initlab.parametrize(mlp(256), "mup", base=lambda: mlp(64), seed=0)
    >>> par["4.weight"].klass, par.readout_multiplier
    ('output', 0.25)
    """
    from .checks import check_model, check_seed
    from .engine import initialize
    from .streams import check_rng

    name = check_choice(name, "name", PARAMETRIZATIONS)
    check_model(model)
    seed = check_seed(seed)
    rng = check_rng(rng)
    if not isinstance(model, nn.Module):
        raise InitlabTypeError(error_message("model", "must be a torch.nn.Module",
                                             type(model).__name__, "pass the model itself."))
    output_mult = check_scalar(output_mult, "output_mult", min_val=0.0, include_min=False)
    if depth not in DEPTH_RULES:
        raise fail("depth", f"must be one of {DEPTH_RULES}", depth,
                   "pass depth='sqrt' (Tensor Programs VI) or leave it None.")
    if depth is not None:
        if base_depth is None:
            raise fail("base_depth", "must be given with depth='sqrt'", None,
                       "pass the number of residual branches the hyperparameters were tuned at.")
        base_depth = int(check_scalar(base_depth, "base_depth", integer=True, min_val=1))

    base_model = _build_base(base)
    delta_model = _build_base(delta)
    widths = width_shapes(model, base_model, delta_model)
    infos = collect_params(model)
    # free weights (XLNet's einsum-read q): classes and fans from their use, in the description
    free, fdesc, fbase = free_widths(model, base_model, delta_model, infos, batch)
    if fdesc is not None:
        infos = fdesc.params
    scalings: list[Scaling] = []
    by_info: list[tuple[ParamInfo, Scaling]] = []
    for p in infos:
        klass, m_in, m_out = free.get(p.name) or classify(p, widths[p.name])
        lora_a = klass == "output" and (lora_part(model, p.module_name) or ("",))[0] == "A"
        if lora_a:
            klass = "hidden"        # see LORA_A_WHY
        s = Scaling(name=p.name, shape=tuple(p.shape), klass=klass, m_in=m_in, m_out=m_out,
                    aliases=tuple(p.aliases), why=LORA_A_WHY if lora_a else "")
        for k, v in _rules(name, klass, m_in, m_out, output_mult).items():
            setattr(s, k, v)
        scalings.append(s)
        by_info.append((p, s))
    own = {p.name for p in infos if p.name in free or p.kind in OWN_MULTIPLIER_KINDS}
    check_forward_multipliers(by_info, name, own)
    if name == "mfp":
        m_model = max((s.m_in for s in scalings if s.klass == "output"), default=1.0)
        for s in scalings:
            s.lr_sgd *= m_model
    # a tied embedding that is also the readout: classified from its shape as the input side
    # (its stored init and its embedding use unchanged); the readout multiplier goes on the
    # readout use (lm_head), from the width multiplier of its feature dimension
    readout_uses: list[tuple[Scaling, nn.Module]] = []
    for p, s in by_info:
        if p.role == "embedding" and p.tied:
            dims = widths[p.name]
            use = _layer_use(p)
            if use is not None and len(dims) == 2 and dims[1].is_width and (
                    name != "sp" or output_mult != 1.0):
                s.readout_use = use[0]
                s.readout_multiplier = _tied_readout_multiplier(name, dims[1].mult, output_mult)
                readout_uses.append((s, use[1]))
                s.why = f"tied embedding; its readout use `{use[0]}` gets the readout multiplier"

    # output_mult and readout_zero_init act on the readout, which is found by its width
    # dimensions: a model at its base width without `delta` has none, and they would be
    # silently dropped (tuning them on the base model is what μTransfer asks for)
    if (output_mult != 1.0 or readout_zero_init) and not any(
            s.klass == "output" or s.readout_use for s in scalings):
        raise fail("output_mult" if output_mult != 1.0 else "readout_zero_init",
                   "needs the model's readout, and no parameter has a width dimension in its "
                   "fan_in only (the model is at its base width?)",
                   output_mult if output_mult != 1.0 else readout_zero_init,
                   "pass `delta=` (the model at a second base width, as in "
                   "mup.set_base_shapes) so that the widths are known at base width.")

    # depth: the description finds the residual branches
    n_branches, branch_mult, branch_layers = 0, 1.0, set()
    desc = None
    if depth is not None:
        from .describe import describe

        desc = describe(model, batch)
        n_branches = desc.n_residual
        if n_branches == 0:
            raise fail("depth", "needs residual branches, and the model description found none",
                       depth, "use depth=None for a plain network, or check the model's "
                       f"description (method {desc.method!r}).")
        assert base_depth is not None, "checked with depth above"
        branch_mult = math.sqrt(base_depth / n_branches)
        for b in desc.residual_branches:
            branch_layers.update(b.layers)
        for p, s in by_info:
            if p.module_name in branch_layers:
                s.lr_adam *= branch_mult
                s.why = (s.why + "; " if s.why else "") + "in a residual branch"

    queries = required_queries(model) if query_zero_init else []
    if readout_zero_init:
        zero = {s.name for s in scalings if s.klass == "output"}
        zero |= {p.name for p, s in by_info if p.role == "bias" and
                 any(q.module is p.module and q.name in zero for q, _ in by_info)}
    else:
        zero = set()

    # init: the base plan, then the scales. The base plan's std at the base shape (from the base
    # model's own description) over its std at the target shape is how the plan scales with
    # width: sqrt(m_in) for torch's default (std 1/sqrt(fan_in)), 1 for a fixed std (GPT-2's
    # 0.02); μP's hidden weights then get (base std) / sqrt(m_in) whatever the plan.
    from ..core import from_dict

    base_infos = ({n: q for q in (fbase.params if fbase is not None else
                                  collect_params(base_model)) for n in q.names}
                  if isinstance(base_model, nn.Module) else {})
    report = initialize(model, init, seed=seed, rng=rng, batch=batch)
    records = {r.name: r for r in report.records}
    for p, s in by_info:
        rec = records.get(p.name)
        if s.width_factor is None or rec is None or not isinstance(rec.init, dict):
            continue
        bp = base_infos.get(p.name)
        try:
            initializer = from_dict(rec.init)
            target = _std_at(initializer, p)
            basestd = _std_at(initializer, bp) if bp is not None else None
        except Exception:  # noqa: BLE001  (an initializer without a std: keep the draw)
            target = basestd = None
        if bp is None and target:
            # declared base shapes: a std that depends on the fans scales as 1/sqrt(fan_in)
            # for torch's default and the fan-in presets; assume that, and say so
            basestd = target * math.sqrt(s.m_in if s.klass in ("hidden", "output") else 1.0)
            s.why = (s.why + "; " if s.why else "") + "base std assumed fan_in-scaled"
        if target and basestd:
            s.init_scale = basestd / target * s.width_factor
    params: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for p, s in by_info:
            params[s.name] = p.tensor
            if s.name in zero:
                for t in p.write_targets():
                    t.zero_()
            elif s.init_scale != 1.0:
                for t in p.write_targets():
                    t.mul_(s.init_scale)
        for part in queries:
            part.view().zero_()
    qnames = {canonical_param_name(q.name): q for q in queries}
    from .report import _tensor_moments as tensor_moments

    for s in scalings:
        r = records.get(s.name)
        if r is None:  # pragma: no cover
            continue
        q = qnames.get(s.name)
        if s.init_scale != 1.0 or s.name in zero or q is not None:
            r.mean, r.std = tensor_moments(params[s.name])
            r.expected_std = None if r.expected_std is None or s.name in zero or (
                q is not None) else r.expected_std * s.init_scale
            if s.name in zero:
                r.notes.append(f"{name}: zeroed (readout_zero_init)")
            elif s.init_scale != 1.0:
                r.notes.append(f"{name}: x{s.init_scale:.4g} after the draw")
            if q is not None:
                r.notes.append(f"{name}: query of `{q.attention}` zeroed (query_zero_init)" + (
                    f", {q.stop - q.start} of {q.tensor.shape[q.axis]} along dim {q.axis}"
                    if q.start is not None and q.stop is not None else ""))
        s.stored_std = r.std

    for s in scalings:
        r = records.get(s.name)
        if r is not None:
            r.multipliers = {"init_scale": s.init_scale, "forward": s.multiplier,
                             "lr_adam": s.lr_adam, "lr_sgd": s.lr_sgd}
            if s.readout_use:
                r.multipliers["readout_use"] = s.readout_multiplier
    par = Parametrization(name=name, scalings=scalings, report=report, depth=depth,
                          branch_multiplier=branch_mult, n_branches=n_branches, _params=params)
    report.parametrization = par
    # forward multipliers
    for p, s in by_info:
        if is_matrix(p) and s.multiplier != 1.0:
            par._handles.append(install(p, s.multiplier, p.name in own))
    for s, module in readout_uses:
        if s.readout_multiplier != 1.0:
            par._handles.append(module.register_forward_pre_hook(
                scale_input(s.readout_multiplier)))
    if desc is not None and branch_mult != 1.0:
        mods = dict(model.named_modules())
        for b in desc.residual_branches:
            # every layer whose output reaches the addition (a MoE's routed and shared experts)
            for closer in b.closing_layers:
                par._handles.append(mods[closer].register_forward_hook(
                    scale_output(branch_mult)))
    # attention: 1/d instead of 1/sqrt(d), equal to SP at the base head size
    if name == "mup" and attention:
        scales, notes = mup_attention_scales(model, base_model)
        par.notes += notes
        for mname, m, attr, old, new in scales:
            par._handles.append(SetAttr(m, attr, old, new))
            par.attention.append((mname, old, new))
    return par


def param_groups(model: nn.Module, par: Any, *, lr: float, optimizer: str = "adam",
                 weight_decay: float = 0.0) -> list[dict[str, Any]]:
    """``par.param_groups(lr, optimizer, weight_decay)``, checking that ``par`` belongs to
    ``model``: every parameter of the model is in exactly one group. ``par`` is a
    :class:`Parametrization` or the ``InitReport`` that ``initlab.apply(model, "mup", ...)``
    returned."""
    par = getattr(par, "parametrization", None) or par   # an InitReport of a parametrization
    if not isinstance(par, Parametrization):
        raise InitlabTypeError(error_message(
            "par", "must be what initlab.parametrize returned (or the InitReport of "
            "initlab.apply(model, 'mup', base=...))", type(par).__name__,
            "call par = initlab.parametrize(model, 'mup', base=..., seed=0) first."))
    groups = par.param_groups(lr, optimizer, weight_decay)
    ids = {id(t) for g in groups for t in g["params"]}
    missing = [n for n, t in model.named_parameters() if id(t) not in ids]
    if missing:
        raise fail("par", "was computed for another model", f"missing {missing[:5]}",
                   "call initlab.parametrize on this model.")
    return groups
