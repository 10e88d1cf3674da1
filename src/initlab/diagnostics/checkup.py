"""``doctor(model, batch)``: one forward and one backward pass on a probe batch, per-layer
statistics, and findings with concrete advice.

What a run does, in order:

1. Snapshot everything it could disturb: parameters and buffers (BatchNorm running statistics,
   spectral-norm vectors, ...), each parameter's ``.grad`` object, every module's ``training``
   flag, and the global random state of the CPU and of the model's GPUs (``fork_rng``).
2. Put the model in train mode (or eval with ``train=False``) with dropout switched off: the
   statistics are those of a training step, without dropout's noise.
3. Hook every weighted layer (Linear, Conv, ...) and every activation module. In execution order,
   an activation module belongs to the last weighted layer that ran before it and has none yet
   (``Linear -> BatchNorm -> ReLU`` pairs the ReLU with the Linear; saturation is then measured on
   the ReLU's input). Functional activations (``torch.tanh`` in ``forward``) are invisible to
   hooks; name them with ``activation=`` and the doctor applies that activation to every
   weighted layer's output but the last.
4. Forward, then backward on ``loss_fn(output, target)`` (or ``loss_fn(output)``), by default on
   the sum of the outputs. Tensor hooks on each layer output record the RMS of dLoss/dz and its
   per-example norm (the depth rules follow the latter: with fan_in scaling it does not change
   with the width).
5. Remove every hook and restore everything from step 1, whether or not the passes raised.
6. Compute :class:`~initlab.diagnostics.stats.LayerStats` per layer call and run the rules of
   :mod:`initlab.diagnostics.findings`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..core.validation import InitlabTypeError, check_choice, check_scalar, error_message, fail
from . import stats as S
from .findings import SEVERITIES, Finding, Thresholds, diagnose
from .hooks import Hooks

# ------------------------------------------------------------------ snapshot / restore


class _Snapshot:
    """Everything a doctor run could change, restored in place (tensor identities are kept)."""

    def __init__(self, model: nn.Module):
        self.params = [(p, p.detach().clone()) for p in model.parameters()]
        self.grads = [(p, p.grad) for p in model.parameters()]
        self.buffers = [(b, b.detach().clone()) for b in model.buffers()]
        self.training = [(m, m.training) for m in model.modules()]

    def restore(self) -> None:
        with torch.no_grad():
            for t, saved in self.params + self.buffers:
                if t.shape == saved.shape and not torch.equal(t, saved):
                    t.copy_(saved)
        for p, g in self.grads:
            p.grad = g
        for m, flag in self.training:
            m.training = flag


def _set_mode(model: nn.Module, train: bool) -> None:
    model.train(train)
    for m in model.modules():
        if isinstance(m, nn.modules.dropout._DropoutNd):
            m.eval()  # dropout off: measure the network, not the noise


# ------------------------------------------------------------------ recording


@dataclass
class _Call:
    """One call of a weighted layer during the probe forward pass (statistics only: no tensors
    are kept, so a big model's activations are not held in memory)."""

    module: nn.Module
    name: str
    axis: int
    ndim: int
    input_rms: float | None
    input_spread: float | None
    out: dict[str, Any]
    act: tuple[str, float | None] | None = None
    act_module: str | None = None
    act_stats: dict[str, Any] | None = None
    fallback_stats: dict[str, Any] | None = None
    grad_rms: float | None = None
    grad_norm: float | None = None


class _Recorder:
    """Forward hooks for weighted layers and activation modules; tensor hooks for dL/dz."""

    def __init__(self, hooks: Hooks, fallback: tuple[str, float | None] | None,
                 th: Thresholds, bins: int):
        self.hooks, self.fallback, self.th, self.bins = hooks, fallback, th, bins
        self.calls: list[_Call] = []
        self.counts: dict[int, int] = {}
        self.pending_u: torch.Tensor | None = None

    def _waiting(self) -> _Call | None:
        last = self.calls[-1] if self.calls else None
        return last if last is not None and last.act is None else None

    def layer_hook(self, name: str) -> Callable:
        def hook(module, inputs, output):
            if not isinstance(output, torch.Tensor) or not output.is_floating_point():
                return
            k = self.counts[id(module)] = self.counts.get(id(module), 0) + 1
            x = inputs[0] if inputs and isinstance(inputs[0], torch.Tensor) else None
            x_rms = x_spread = None
            if x is not None and x.is_floating_point() and x.numel():
                xd = x.detach().double()
                x_rms, x_spread = S.finite(xd.square().mean().sqrt()), S.spread(xd)
            z = S.snapshot(output)
            axis = S.unit_axis(module)
            call = _Call(module, name if k == 1 else f"{name} (call {k})", axis, z.dim(), x_rms,
                         x_spread, S.output_stats(z, axis, self.bins))
            if self.fallback is not None:  # used unless an activation module claims this call
                h = S.apply_activation(z, *self.fallback)
                call.fallback_stats = S.activation_stats(z, h, *self.fallback, axis,
                                                         self.th.saturation_slope, self.bins)
                call.fallback_stats["name"] = self.fallback[0]
            self.calls.append(call)
            if output.requires_grad:
                def on_grad(g, call=call):
                    sq = g.detach().double().square()
                    call.grad_rms = S.finite(sq.mean().sqrt())
                    examples = sq.shape[0] if sq.dim() > 0 else 1
                    call.grad_norm = S.finite((sq.sum() / examples).sqrt())
                self.hooks.adopt(output.register_hook(on_grad))
        return hook

    def act_pre_hook(self) -> Callable:
        def hook(module, inputs):
            self.pending_u = None
            x = inputs[0] if inputs else None
            if self._waiting() is not None and isinstance(x, torch.Tensor) and x.is_floating_point():
                self.pending_u = S.snapshot(x)  # before an in-place activation overwrites it
        return hook

    def act_hook(self, name: str, spec: tuple[str, float | None]) -> Callable:
        def hook(module, inputs, output):
            call, u, self.pending_u = self._waiting(), self.pending_u, None
            if call is None or u is None or not isinstance(output, torch.Tensor):
                return
            axis = call.axis if u.dim() == call.ndim else (-1 if u.dim() == 2 else 1)
            call.act, call.act_module = spec, name
            call.act_stats = S.activation_stats(u, S.snapshot(output), *spec, axis,
                                                self.th.saturation_slope, self.bins)
        return hook


# ------------------------------------------------------------------ the report


@dataclass
class DoctorReport:
    """Result of :func:`doctor`: per-layer statistics, findings, the probe batch's statistics and
    what was run (``meta``). ``str(report)`` is a terminal table followed by the findings."""

    layers: list[S.LayerStats]
    findings: list[Finding]
    inputs: S.InputStats | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when no finding is a warning or an error."""
        return not any(f.severity in ("warning", "error") for f in self.findings)

    def by_severity(self, severity: str) -> list[Finding]:
        check_choice(severity, "severity", SEVERITIES)
        return [f for f in self.findings if f.severity == severity]

    def codes(self, min_severity: str = "info") -> set[str]:
        """The codes of the findings at ``min_severity`` or above."""
        rank = SEVERITIES.index(check_choice(min_severity, "min_severity", SEVERITIES))
        return {f.code for f in self.findings if SEVERITIES.index(f.severity) >= rank}

    def to_dict(self) -> dict[str, Any]:
        return {"meta": dict(self.meta),
                "inputs": self.inputs.to_dict() if self.inputs else None,
                "layers": [s.to_dict() for s in self.layers],
                "findings": [f.to_dict() for f in self.findings]}

    def to_json(self, indent: int | None = 2) -> str:
        """JSON text (no NaN: unmeasurable values are null)."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def save_json(self, path: str | Path) -> Path:
        """Write :meth:`to_json` to ``path`` atomically; returns the path."""
        from ..util.atomic import atomic_write_text

        return atomic_write_text(Path(path), self.to_json() + "\n")

    def table(self) -> str:
        """The per-layer table (one row per weighted-layer call)."""
        head = ["#", "layer", "shape", "act", "z std", "h std", "sat", "dead", "spread", "corr",
                "|dL/dz|", "|gW|/|W|", "dup"]
        rows = []
        for s in self.layers:
            rows.append([str(s.index), s.name, "x".join(map(str, s.weight_shape)),
                         s.activation or "-", _num(s.z_std), _num(s.h_std), _frac(s.saturated),
                         _frac(s.dead), _num(s.spread), _num(s.example_corr, 3),
                         _num(s.grad_out_norm), _num(s.grad_weight_ratio),
                         str(s.duplicate_units) if s.duplicate_units else "-"])
        widths = [max(len(r[k]) for r in [head, *rows]) for k in range(len(head))]
        left = {1, 2, 3}

        def line(r):
            return "  ".join(c.ljust(w) if k in left else c.rjust(w)
                             for k, (c, w) in enumerate(zip(r, widths)))

        out = [line(head), "  ".join("-" * w for w in widths)]
        out += [line(r) for r in rows]
        return "\n".join(out)

    def __str__(self) -> str:
        m = self.meta
        title = (f"initlab doctor: {m.get('model', 'model')}, batch {m.get('batch_shape')}, "
                 f"loss {m.get('loss')} = {_num(m.get('loss_value'))}")
        parts = [title, "", self.table(), ""]
        if self.inputs is not None:
            i = self.inputs
            parts.append(f"input: mean {_num(i.mean)}, std {_num(i.std)}, spread {_num(i.spread)}"
                         f", corr {_num(i.example_corr, 3)}")
        if not self.findings:
            parts.append("findings: none")
        else:
            parts.append(f"findings ({len(self.findings)}):")
            parts += [f"  {f}" for f in self.findings]
            plans = list(dict.fromkeys(p for f in self.findings if f.severity != "info"
                                       for p in f.plans))
            if plans:
                parts.append("to re-initialize the whole model: initlab.apply(model, PLAN, "
                             f"seed=0) with PLAN in {', '.join(repr(p) for p in plans)}")
        return "\n".join(parts)

    def plot(self, path: str | Path) -> Path:
        """Save the per-layer figure (std, gradients, spread, histograms vs depth) as a PNG."""
        from .plots import save_report_plot

        return save_report_plot(self, path)

    def _repr_html_(self) -> str:  # Jupyter: initlab.report.notebook
        return __import__("initlab.report.notebook").report.notebook.doctor_report_html(self)


def _num(x: float | None, digits: int = 3) -> str:
    if x is None:
        return "-"
    if x == 0:
        return "0"
    if 1e-3 <= abs(x) < 1e4:
        return f"{x:.{digits}g}"
    return f"{x:.{max(digits - 1, 1)}e}"


def _frac(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{100 * x:.0f}%" if x == 0 or x >= 0.01 else f"{100 * x:.1g}%"


# ------------------------------------------------------------------ the run


def _detach_batch(batch: Any) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.detach()
    if isinstance(batch, (tuple, list)):
        return type(batch)(_detach_batch(b) for b in batch)
    if isinstance(batch, Mapping):
        return {k: _detach_batch(v) for k, v in batch.items()}
    return batch


def _forward(model: nn.Module, batch: Any) -> Any:
    if isinstance(batch, torch.Tensor):
        return model(batch)
    if isinstance(batch, (tuple, list)):
        return model(*batch)
    return model(**batch)


def _first_tensor(batch: Any) -> torch.Tensor | None:
    if isinstance(batch, torch.Tensor):
        return batch
    values = batch.values() if isinstance(batch, Mapping) else batch
    return next((b for b in values if isinstance(b, torch.Tensor)), None)


def _sum_outputs(output: Any) -> torch.Tensor | None:
    """The default probe loss: the sum of every floating-point output."""
    if isinstance(output, torch.Tensor):
        return output.sum() if output.is_floating_point() else None
    if isinstance(output, Mapping):
        items = list(output.values())
    elif isinstance(output, Sequence) and not isinstance(output, str):
        items = list(output)
    else:
        return None
    parts = [t for t in (_sum_outputs(o) for o in items) if t is not None]
    return torch.stack(parts).sum() if parts else None


def _parse_activation(activation: Any) -> tuple[str, float | None] | None:
    if activation is None:
        return None
    if isinstance(activation, str):
        name, param = activation, None
    elif isinstance(activation, tuple) and len(activation) == 2:
        name, param = activation
    else:
        raise InitlabTypeError(error_message(
            "activation", "must be a name or a (name, param) pair", activation,
            "pass e.g. activation='tanh' or activation=('leaky_relu', 0.2)."))
    S._act(name, param)  # validates the name
    return name, param


def doctor(model: nn.Module, batch: Any, *, loss_fn: Callable | None = None, target: Any = None,
           activation: str | tuple[str, float] | None = None, train: bool = True,
           thresholds: Thresholds | None = None, bins: int = S.HIST_BINS) -> DoctorReport:
    """Diagnose a network at initialization from one forward and one backward pass.

    Parameters
    ----------
    model
        Any ``nn.Module``; weighted layers (Linear, Conv*, ...) and activation modules are hooked.
    batch
        The probe input: a tensor (``model(batch)``), a tuple/list (``model(*batch)``) or a dict
        (``model(**batch)``). Use the data you train on, standardized as you will train.
    loss_fn, target
        The backward pass differentiates ``loss_fn(output, target)`` (``loss_fn(output)`` when
        ``target`` is None); by default the sum of the outputs, which back-propagates a gradient
        of 1 into every output.
    activation
        Name (``"tanh"``) or ``(name, param)`` of a *functional* activation applied after every
        weighted layer but the last, for models whose nonlinearities are not modules.
    train
        Measure in train mode (BatchNorm uses batch statistics), dropout always off. Running
        statistics, parameters, ``.grad`` and every module's mode are restored afterwards.
    thresholds
        When measurements become findings (:class:`~initlab.diagnostics.findings.Thresholds`).

    Per layer: mean/std of the weighted input z and of the activation h; the fraction of
    saturated entries (``|f'(u)| < 5%`` of the peak slope) and of dead units (``f'(u) = 0`` on the
    whole batch); ``spread = mean_j Var_batch(z_j) / mean(z^2)`` and the mean cosine between
    examples (the correlation map of Poole et al. 2016, "Exponential expressivity in deep neural
    networks through transient chaos"); the RMS of dLoss/dz and ``|dL/dW| / |W|``; units whose
    weights, bias and gradient are identical (the zero-init symmetry problem). Depth trends follow
    Glorot & Bengio 2010 ("Understanding the difficulty of training deep feedforward neural
    networks") forward and backward.

    >>> rep = doctor(model, x)            # doctest: +SKIP
    >>> print(rep); rep.plot("doctor.png")  # doctest: +SKIP
    """
    if not isinstance(model, nn.Module):
        raise InitlabTypeError(error_message("model", "must be a torch.nn.Module", type(model).__name__,
                                             "pass the model itself (not its state dict)."))
    if not isinstance(batch, (torch.Tensor, tuple, list, Mapping)):
        raise InitlabTypeError(error_message(
            "batch", "must be a tensor, a tuple/list of positional inputs or a dict of keyword "
            "inputs", type(batch).__name__, "pass e.g. torch.randn(64, 784)."))
    fallback = _parse_activation(activation)
    bins = check_scalar(bins, "bins", min_val=1, integer=True, fix="pass e.g. bins=40.")
    if not isinstance(train, bool):
        raise InitlabTypeError(error_message("train", "must be a bool", train, "pass True or False."))
    batch = _detach_batch(batch)
    if _first_tensor(batch) is None:
        raise fail("batch", "must contain at least one tensor", type(batch).__name__,
                   "pass the probe inputs as tensors.")

    th = thresholds or Thresholds()
    snap = _Snapshot(model)
    grads: dict[int, torch.Tensor | None] = {}
    with Hooks() as hooks:
        rec = _Recorder(hooks, fallback, th, bins)
        try:
            _set_mode(model, train)
            seen: set[int] = set()
            for name, m in model.named_modules():
                if id(m) in seen:
                    continue
                seen.add(id(m))
                if S.is_weighted_layer(m):
                    hooks.register(m, rec.layer_hook(name or type(m).__name__))
                else:
                    spec = S.activation_of(m)
                    if spec is not None:
                        hooks.register(m, rec.act_pre_hook(), "forward_pre")
                        hooks.register(m, rec.act_hook(name, spec))
            cuda = sorted({p.device.index or 0 for p, _ in snap.params if p.device.type == "cuda"})
            with torch.random.fork_rng(devices=cuda), torch.enable_grad():
                for p, _ in snap.grads:
                    p.grad = None
                output = _forward(model, batch)
                if loss_fn is None:
                    loss, loss_name = _sum_outputs(output), "sum of outputs"
                    if loss is None:
                        raise fail("loss_fn", "is needed when the model's output holds no "
                                   "floating-point tensor to sum", type(output).__name__,
                                   "pass loss_fn=... that turns the output into a scalar.")
                else:
                    loss = loss_fn(output) if target is None else loss_fn(output, target)
                    loss_name = getattr(loss_fn, "__name__", type(loss_fn).__name__)
                if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
                    raise fail("loss_fn", "must return a scalar tensor", type(loss).__name__,
                               "return e.g. F.cross_entropy(output, target).")
                backward = loss.requires_grad
                if backward:
                    loss.backward()
                for p, _ in snap.grads:
                    grads[id(p)] = None if p.grad is None else S.snapshot(p.grad)
        finally:
            hooks.remove()
            snap.restore()

    layers = _layer_stats(rec.calls, grads)
    x = _first_tensor(batch)
    xs = S.snapshot(x) if x.is_floating_point() else None
    inputs = None
    if xs is not None:
        mo = S.moments(xs)
        inputs = S.InputStats(list(xs.shape), mo["mean"], mo["std"], mo["rms"], S.spread(xs),
                              S.example_corr(xs))
    findings = diagnose(layers, inputs, th)
    if not backward:
        findings.append(Finding("no_backward", "info", [],
                                "no backward pass: nothing in the loss requires grad",
                                "unfreeze the parameters to get gradient statistics"))
    if not layers:
        findings.append(Finding("no_layers", "warning", [],
                                "no weighted layer (Linear, Conv, ...) ran in the forward pass",
                                "check that the model's layers are nn.Modules"))
    findings.sort(key=lambda f: -SEVERITIES.index(f.severity))  # stable: keeps the rule order
    meta = {"model": type(model).__name__, "batch_shape": list(x.shape),
            "n_params": int(sum(p.numel() for p, _ in snap.params)), "loss": loss_name,
            "loss_value": S.finite(loss.detach().double()), "train_mode": train,
            "backward": backward, "depth": len(layers),
            "activation_fallback": fallback[0] if fallback else None}
    return DoctorReport(layers, findings, inputs, meta)


def _layer_stats(calls: list[_Call], grads: dict[int, torch.Tensor | None]) -> list[S.LayerStats]:
    out = []
    for k, c in enumerate(calls):
        m = c.module
        w = S.snapshot(m.weight)
        b = m.bias if isinstance(getattr(m, "bias", None), torch.Tensor) else None
        b = S.snapshot(b) if b is not None else None
        rows = S.weight_rows(m, w)
        n = rows.shape[0]
        fan_in, fan_out = S.layer_fans(m, w)
        last = k == len(calls) - 1
        s = S.LayerStats(index=k + 1, name=c.name, kind=type(m).__name__,
                         weight_shape=list(w.shape), fan_in=fan_in, fan_out=fan_out, n_units=n,
                         is_output=last)
        s.weight_std = S.finite(w.std(unbiased=False))
        s.weight_mean = S.finite(w.mean())
        s.lecun_std = 1.0 / math.sqrt(fan_in)
        s.bias_rms = S.finite(b.square().mean().sqrt()) if b is not None and b.numel() else None
        s.bias_mean = S.finite(b.mean()) if b is not None and b.numel() else None
        s.input_rms, s.input_spread = c.input_rms, c.input_spread
        s.weights_zero = bool((w == 0).all())
        o = c.out
        s.z_mean, s.z_std, s.spread, s.example_corr = (o["z_mean"], o["z_std"], o["spread"],
                                                       o["example_corr"])
        s.nonfinite = o["nonfinite"]
        shown = o
        a = c.act_stats
        if a is not None:
            s.activation, s.activation_module = c.act[0], c.act_module
        elif c.fallback_stats is not None and not last:
            a = c.fallback_stats
            s.activation, s.activation_module = c.fallback_stats["name"], "(functional)"
        if a is not None:
            s.saturated, s.dead, s.h_mean, s.h_std = a["saturated"], a["dead"], a["h_mean"], a["h_std"]
            shown = a
        units, distinct = shown["units"]
        if units == n:
            s.duplicate_outputs = n - distinct
        s.hist_edges, s.hist_counts = shown["hist"]
        s.grad_out_rms, s.grad_out_norm = c.grad_rms, c.grad_norm
        s.weight_norm = S.finite(w.norm())
        gw = grads.get(id(m.weight))
        if gw is not None:
            s.weight_grad_norm = S.finite(gw.norm())
            if s.weight_norm and s.weight_grad_norm is not None:
                s.grad_weight_ratio = S.finite(s.weight_grad_norm / s.weight_norm)
        # symmetry: identical (weight row, bias), then also identical gradient rows
        parts = [rows]
        if b is not None and b.numel() == n:
            parts.append(b.reshape(n, 1))
        s.duplicate_units = n - S.distinct_rows(torch.cat(parts, dim=1))
        if gw is not None:
            parts.append(S.weight_rows(m, gw))
            gb = grads.get(id(m.bias)) if b is not None and b.numel() == n else None
            if gb is not None:
                parts.append(gb.reshape(n, 1))
            s.unit_groups = S.distinct_rows(torch.cat(parts, dim=1))
        else:
            s.unit_groups = n - s.duplicate_units
        s.symmetric_units = n - s.unit_groups
        out.append(s)
    return out
