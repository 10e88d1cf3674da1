"""LSUV: layer-sequential unit-variance initialization.

Mishkin & Matas 2016, "All you need is a good init" (ICLR 2016), Algorithm 1:

1. pre-initialize the weights of every selected layer with orthonormal matrices (here: Haar
   orthogonal from the seed, biases zero);
2. for each layer in forward order: forward the batch, measure the standard deviation s of the
   layer's output, and rescale W <- W * target_std / s, until |s - target_std| < tol or
   ``max_iter`` rescalings (defaults tol 0.1, max_iter 10 as the public PyTorch / Keras
   implementations; the authors' Caffe code uses 0.02 / 20).

With ``mean_correction=True`` each step also sets b <- (b - mean(y)) * target_std / s, so the
layer output y becomes (y - mean(y)) * target_std / s: mean 0 and the target std at once.

The forward passes run in eval mode (no dropout noise, BatchNorm uses its running statistics),
so the result is deterministic given the seed and the batch; the mode is restored afterwards.
Each measuring pass stops right after the layer being scaled (no compute is wasted on the rest).
All or nothing: the batch is checked (finite) and run once before anything is written; on any
later error every tensor LSUV wrote is restored (LSUV holds a copy of them while it runs: it
writes each layer several times, so it cannot validate everything up front as ``apply`` does).

On transformers: the layers come from the model description (Linear, Conv, Hugging Face
``Conv1D`` and a user's own linear layer, a module whose forward is one product with its weight,
by default, in dataflow order); a layer whose weight is tied to another module's (a
readout tied to the input embedding) is not rescaled (it keeps the embedding rule; LSUV would
rescale the embedding as a side effect), and the report says so. The pre-init covers the rest of
the model as the built-in plans do (norms 1/0, embeddings by the plans' embedding rule), and every
reported std is recomputed from the final tensors.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn as nn

from ..core.validation import InitlabError, check_scalar, fail
from .builtin_rules import (
    embedding_rule,
    expert_rule,
    leading_rules,
    norm_types,
    router_types,
    table_rules,
)
from .checks import check_model, check_not_meta, check_seed
from .describe import active, describe
from .engine import initialize
from .hooked import computed, fixed_scale
from .params import is_hf_conv1d
from .rules import Plan, Rule
from .stochastic import stochastic_off
from .write import restore, snapshot, store

#: layer types LSUV scales by default (and Hugging Face's ``Conv1D``, matched by class name)
DEFAULT_MODULES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


class _Stop(Exception):
    """Raised inside a hook to end a forward pass early."""


@dataclass
class LSUVLayer:
    name: str
    iterations: int
    initial_std: float
    final_std: float
    final_mean: float
    converged: bool


@dataclass
class LSUVReport:
    """Per layer (forward order): rescalings done, output std before and after, convergence."""

    layers: list[LSUVLayer]
    tol: float
    target_std: float
    max_iter: int
    seed: int
    skipped: list[str] = field(default_factory=list)   # selected but never ran in the forward
    init_report: Any = None
    tied: list[str] = field(default_factory=list)      # not rescaled: weight tied elsewhere
    #: not rescaled: the model's structure sets the weight (see :func:`_structural_layers`)
    structural: list[str] = field(default_factory=list)
    #: not rescaled: a spectral norm or an orthogonal parametrization fixes the weight's scale
    normalized: list[str] = field(default_factory=list)

    @property
    def converged(self) -> bool:
        return all(layer.converged for layer in self.layers)

    def to_dict(self) -> dict[str, Any]:
        return {"tol": self.tol, "target_std": self.target_std, "max_iter": self.max_iter,
                "seed": self.seed, "skipped": self.skipped, "structural": self.structural,
                "normalized": self.normalized,
                "layers": [asdict(layer) for layer in self.layers]}

    def __str__(self) -> str:
        w = max([len(layer.name) for layer in self.layers] + [5])
        lines = [f"LSUV (Mishkin & Matas 2016): target std {self.target_std}, tol {self.tol}, "
                 f"max_iter {self.max_iter}, seed {self.seed}",
                 f"{'layer':<{w}}  iters  std before  std after  converged"]
        for layer in self.layers:
            lines.append(f"{layer.name:<{w}}  {layer.iterations:>5}  {layer.initial_std:>10.4f}  "
                         f"{layer.final_std:>9.4f}  {'yes' if layer.converged else 'NO'}")
        if self.skipped:
            lines.append("never ran in the forward pass (left orthonormal): "
                         + ", ".join(self.skipped))
        if self.tied:
            lines.append("not rescaled, weight tied to another module (kept the embedding "
                         "rule): " + ", ".join(self.tied))
        if self.structural:
            lines.append("not rescaled, weight set by the model's structure (LoRA adapters, "
                         "mLSTM gates, Mamba's dt_proj): " + ", ".join(self.structural))
        if self.normalized:
            lines.append("not rescaled, the weight's scale is fixed (spectral norm, orthogonal "
                         "parametrization): " + ", ".join(self.normalized))
        return "\n".join(lines)


def _call(model: nn.Module, batch: Any):
    if isinstance(batch, Mapping):
        return model(**batch)
    if isinstance(batch, (tuple, list)):
        return model(*batch)
    return model(batch)


def _first_tensor(out: Any) -> torch.Tensor:
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (tuple, list)):
        for o in out:
            if isinstance(o, torch.Tensor):
                return o
    raise fail("modules", "must produce tensor outputs", type(out).__name__,
               "select only layers whose forward returns a tensor.")


def _forward(model: nn.Module, batch: Any) -> None:
    try:
        with torch.no_grad(), stochastic_off(model):  # the user's global random state is kept
            _call(model, batch)
    except _Stop:
        pass
    except InitlabError:
        raise
    except Exception as exc:
        shape = tuple(batch.shape) if isinstance(batch, torch.Tensor) else type(batch).__name__
        raise fail("batch", f"must fit the model: the forward pass raised {type(exc).__name__}: "
                   f"{str(exc)[:300]}", shape,
                   "pass a batch the model accepts (a tensor, a tuple of positional inputs or a "
                   "dict of keyword inputs); the model is unchanged.") from exc


def _measure(model: nn.Module, layer: nn.Module, batch: Any) -> tuple[float, float]:
    box: dict[str, torch.Tensor] = {}

    def hook(mod, inp, out):
        box["y"] = _first_tensor(out).detach()
        raise _Stop

    h = layer.register_forward_hook(hook)
    try:
        _forward(model, batch)
    finally:
        h.remove()
    y = box["y"].to(torch.float64)
    return float(y.mean()), float(y.std())


def lsuv(model: nn.Module, batch: Any, *, tol: float = 0.1, max_iter: int = 10,
         target_std: float = 1.0, modules: tuple = DEFAULT_MODULES, seed: int = 0,
         mean_correction: bool = False, quiet: bool = True, rng: str = "torch") -> LSUVReport:
    """Layer-sequential unit-variance init (Mishkin & Matas 2016, "All you need is a good init").

    Orthonormal pre-init of every module of a type in ``modules`` (from ``seed``), then, layer by
    layer in forward order, W <- W * target_std / std(layer output on ``batch``) until
    |std - target_std| < ``tol`` or ``max_iter`` rescalings. Returns an :class:`LSUVReport`
    (iterations and final std per layer; ``.init_report`` is the pre-init's InitReport).

    ``batch``: a tensor, a tuple of positional inputs or a dict of keyword inputs. ``modules``:
    the layer types to scale (others opt in, e.g. ``modules=(nn.Linear, nn.ConvTranspose2d)``).
    ``quiet=False`` shows a progress bar. ``rng``: the random source of the orthonormal
    pre-init (see :func:`initlab.apply`).

    >>> import torch, torch.nn as nn, initlab
    >>> m = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 4))
    >>> rep = initlab.lsuv(m, torch.randn(64, 8, generator=torch.Generator().manual_seed(0)))
    >>> all(abs(layer.final_std - 1) < 0.1 for layer in rep.layers)
    True
    """
    check_model(model)
    seed = check_seed(seed)
    check_not_meta(model, "lsuv")
    tol = check_scalar(tol, "tol", min_val=0.0, include_min=False)
    max_iter = check_scalar(max_iter, "max_iter", min_val=1, integer=True)
    target_std = check_scalar(target_std, "target_std", min_val=0.0, include_min=False)
    if batch is None:
        raise fail("batch", "must be given (LSUV is data-dependent)", None,
                   "pass a batch of inputs, e.g. lsuv(model, x[:256]).")
    _check_finite(batch)
    default = modules is DEFAULT_MODULES
    mods = tuple(modules) if isinstance(modules, (tuple, list)) else (modules,)
    if not mods or not all(isinstance(t, type) and issubclass(t, nn.Module) for t in mods):
        raise fail("modules", "must be a tuple of nn.Module classes", modules,
                   "pass e.g. (nn.Linear, nn.Conv2d).")
    desc = describe(model, batch)
    tied_names = {n for p in desc.params if p.aliases for n, _m, _l in p.uses[1:]}
    targets = _targets(desc, mods, default)
    tied = [t.name for t in targets if t.name in tied_names]
    # layers whose weight the model's structure sets (an mLSTM's zero gate weights, Mamba's
    # dt_proj): the leading rules start them and LSUV leaves them so (a zero gate has no output
    # std to rescale; dt_proj's spread is the time step's, not a signal's)
    lead = leading_rules(model)
    structural = _structural_layers(lead, desc, {t.name for t in targets})
    # a spectral norm divides any rescaling out: no output std to reach by scaling
    normalized = [t.name for t in targets if fixed_scale(desc.param(t.weight).module,
                                                          desc.param(t.weight).local)]
    started = [t for t in targets if t.name not in tied_names and t.name not in structural]
    selected = [t for t in started if t.name not in normalized]
    if not selected:
        raise fail("modules", "matched no layer with a weight in the model",
                   [t.__name__ for t in mods], "pass the layer types your model uses.")
    # the batch must run before anything is written
    modes = [(m, m.training) for m in model.modules()]  # each module's own flag comes back

    def restore_modes() -> None:
        for m, flag in modes:
            m.training = flag

    model.eval()
    try:
        _forward(model, batch)
    finally:
        restore_modes()
    pre = Plan(lead
               + [Rule(t.weight, "orthogonal", label="LSUV pre-init",
                       why="LSUV: orthonormal pre-init") for t in started]
               + [Rule(b, "zeros", label="LSUV pre-init", why="LSUV: zero bias")
                  for t in started for b in t.biases]
               + [Rule(norm_types(model), weight="ones", bias="zeros", label="norm",
                       why="norm layers: scale 1, shift 0"), embedding_rule(model),
                  *table_rules(model)]
               # mixture-of-experts routers and expert banks: orthonormal pre-init only (which
               # tokens reach an expert is data-dependent, so no one output std to rescale to)
               + ([Rule(routers, weight="orthogonal", bias="zeros",
                        label="LSUV pre-init", why="LSUV: router, orthonormal, not rescaled")]
                  if (routers := router_types(model)) else [])
               + expert_rule(model, "orthogonal", label="LSUV pre-init",
                             why="LSUV: expert bank, each expert orthonormal, not rescaled"),
               name="lsuv", warn_unused=False, reset_running_stats=False,
               description="LSUV (Mishkin & Matas 2016): orthonormal, then unit output variance")
    from .matching import match

    assignments, _ = match(pre, desc.params)
    snap = snapshot([t for a in assignments if a.status == "initialized"
                     for t in a.slot.write_targets()])
    try:
        with active(model, desc, batch):
            init_report = initialize(model, pre, seed=seed, rng=rng, atomic=False, desc=desc)
        model.eval()
        # forward order of the selected layers
        order: list[str] = []
        by_mod = {t.module: t.name for t in selected}
        handles = [m.register_forward_hook(
            lambda mod, i, o: order.append(by_mod[mod]) if by_mod[mod] not in order else None)
            for m in by_mod]
        try:
            _forward(model, batch)
        finally:
            for h in handles:
                h.remove()
        by_target = {t.name: t for t in selected}
        layers: list[LSUVLayer] = []
        from tqdm.auto import tqdm

        for name in tqdm(order, desc="LSUV", disable=quiet, leave=False):
            t = by_target[name]
            layer = t.module
            mean, std = _measure(model, layer, batch)
            initial = std
            it = 0
            while abs(std - target_std) >= tol and it < max_iter:
                if not math.isfinite(std) or std == 0.0:
                    raise fail(f"{name} output std", "must be finite and > 0 to rescale the "
                               "layer", std, "check the batch (all zeros?) and the layers before "
                               f"`{name}`; the model is unchanged.")
                c = target_std / std
                with torch.no_grad():
                    _scale(desc.param(t.weight), c)
                    if mean_correction and len(t.biases) == 1:
                        desc.param(t.biases[0]).tensor.sub_(mean).mul_(c)
                it += 1
                mean, std = _measure(model, layer, batch)
            layers.append(LSUVLayer(name, it, initial, std, mean,
                                    abs(std - target_std) < tol))
    except BaseException:
        restore(snap)
        restore_modes()
        raise
    restore_modes()
    report = LSUVReport(layers, tol, target_std, max_iter, seed,
                        skipped=[t.name for t in selected if t.name not in order],
                        init_report=init_report, tied=tied,
                        structural=[t.name for t in targets if t.name in structural],
                        normalized=normalized)
    bad = [layer.name for layer in layers if not layer.converged]
    if bad:
        warnings.warn(f"LSUV did not reach std {target_std} +- {tol} within max_iter={max_iter} "
                      f"for: {', '.join(bad)}. Increase max_iter or tol, or check the layers "
                      "(saturating activations, normalization).", UserWarning, stacklevel=2)
    # the InitReport's statistics from the final tensors: LSUV rescaled the weights
    from .report import _tensor_moments

    scaled = {n: done for done in layers for n in (by_target[done.name].weight,
                                                   *by_target[done.name].biases)}
    for rec, p in zip(init_report.records, desc.params):
        if p.name in scaled:
            done = scaled[p.name]
            rec.mean, rec.std = _tensor_moments(computed(p.module, p.local) if p.originals
                                                else p.tensor)
            rec.expected_mean = rec.expected_std = None
            if done.iterations:
                rec.notes.append(f"LSUV: {done.iterations} rescaling(s), output std "
                                 f"{done.initial_std:.4f} -> {done.final_std:.4f}")
        elif p.module_name in tied:
            rec.notes.append("LSUV: not rescaled (tied)")
    init_report.lsuv = report
    return report


@dataclass
class _Target:
    """A layer LSUV scales: its module's name (the row of the report), the module whose output
    it measures, and the names of its weight and bias parameters."""

    name: str
    module: nn.Module
    weight: str
    biases: tuple[str, ...]


def _targets(desc: Any, mods: tuple, default: bool) -> list[_Target]:
    """The description's layers of the types ``mods`` (with ``default``, HF's ``Conv1D`` and a
    user's own linear layer too: a free weight whose module's output is its product), in
    dataflow order."""
    out = []
    for layer in desc.layers:
        m = layer.module
        if layer.kind == "free":
            if default and layer.module_output and layer.module_name is not None:
                out.append(_Target(layer.module_name, m, layer.name, tuple(layer.biases)))
            continue
        if (isinstance(m, mods) or (default and is_hf_conv1d(m))) and \
                isinstance(getattr(m, "weight", None), torch.Tensor):
            pre = f"{layer.name}." if layer.name else ""
            bias = getattr(m, "bias", None)
            out.append(_Target(layer.name, m, f"{pre}weight",
                               (f"{pre}bias",) if isinstance(bias, torch.Tensor) else ()))
    return out


def _scale(p: Any, c: float) -> None:
    """Multiply the weight ``p`` (a ParamInfo) computes by ``c``: its stored tensor (a pruned
    weight's ``weight_orig``), or, drawn through a parametrization (weight norm's g and v),
    c x the weight stored back through it."""
    if p.originals:
        store(p, computed(p.module, p.local) * c)
    else:
        p.tensor.mul_(c)


def _structural_layers(lead: list[Rule], desc: Any, names: set[str]) -> set[str]:
    """The layers among ``names`` whose weight one of the model's leading rules ``lead``
    (:func:`~initlab.modelinit.builtin_rules.leading_rules`) initializes."""
    from .matching import match

    if not lead:
        return set()
    assignments, _ = match(Plan(lead, name="structure", warn_unused=False), desc.params)
    return {a.slot.module_name for a in assignments
            if a.status == "initialized" and a.slot.local == "weight"
            and a.slot.module_name in names}


def _check_finite(batch: Any) -> None:
    items = batch.values() if isinstance(batch, Mapping) else \
        batch if isinstance(batch, (tuple, list)) else (batch,)
    for x in items:
        if isinstance(x, torch.Tensor) and x.is_floating_point() and x.numel() and \
                not bool(torch.isfinite(x).all()):
            bad = int((~torch.isfinite(x)).sum())
            raise fail("batch", f"must be finite: {bad} of {x.numel()} values are NaN or inf",
                       tuple(x.shape), "clean the inputs (LSUV scales each layer by its output's "
                       "std, which NaN makes NaN); the model is unchanged.")
