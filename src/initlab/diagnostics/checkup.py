"""``doctor(model, batch)``: one forward and one backward pass on a probe batch, per-layer
statistics, per-residual-block statistics, and findings with concrete advice.

What a run does, in order:

1. Snapshot everything it could disturb: parameters and buffers (BatchNorm running statistics,
   spectral-norm vectors, ...), each parameter's ``.grad`` object, every module's ``training``
   flag; the global random states (Python, NumPy, the CPU, the model's GPUs) are kept around
   every forward it runs (:func:`initlab.modelinit.stochastic.global_rng_kept`).
2. Describe the model (:func:`initlab.modelinit.describe.describe` on the batch: one probe forward
   on a meta copy): which activation follows each layer (modules *and* functionals such as
   ``torch.relu`` in ``forward``; gated units), which layer is the output (readout), which layers
   close a residual branch, and the layers' producers (siblings such as q/k/v or gate/up are not
   a chain). When no description can be built the report says so and the run continues on
   hooks alone (functional activations then need ``activation=``).
3. Put the model in train mode (or eval with ``train=False``) with its randomness switched off
   (:func:`initlab.modelinit.stochastic.stochastic_off`: dropout and drop-path modules, LayerDrop
   and SpecAugment settings; functional dropout and the ``dropout_p`` of
   ``scaled_dot_product_attention`` inside ``forward``): the statistics are those of a training
   step, without dropout's noise, and every layer runs.
4. Hook every weighted layer (Linear, Conv, HF Conv1D, ...) and every activation module. An
   activation module belongs to the last weighted layer that ran before it and has none yet,
   unless the description says that layer is linear (``Linear -> BatchNorm -> ReLU`` pairs the
   ReLU with the Linear; saturation is then measured on the ReLU's input). A layer whose
   activation the description found but no module claimed (a functional) gets it applied to its
   output, ``h = f(z)``. The output of each layer that closes a residual branch is followed to the
   addition that closes the branch (a ``TorchFunctionMode`` sees it): the residual stream's std
   after every block, and its gradient, are recorded.
5. Forward, then backward on ``loss_fn(output, target)`` (or ``loss_fn(output)``), by default on
   the sum of the outputs. Tensor hooks on each layer output record the RMS of dLoss/dz and its
   per-example norm (the depth rules follow the latter: with fan_in scaling it does not change
   with the width).
6. Remove every hook and restore everything from step 1, whether or not the passes raised.
7. Compute :class:`~initlab.diagnostics.stats.LayerStats` per layer call and
   :class:`~initlab.diagnostics.stats.BlockStats` per residual block and run the rules of
   :mod:`initlab.diagnostics.findings`. The depth rules follow the longest chain of layers in a
   plain network and the residual stream in a residual one; what was not diagnosed (RNN
   internals, activations not found, no description) is listed in ``report.notes``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from contextlib import nullcontext as _nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from ..core.validation import InitlabTypeError, check_choice, check_scalar, error_message, fail
from ..modelinit.experts import is_router
from ..modelinit.params import RNN_TYPES, module_kind
from ..modelinit.stochastic import stochastic_off
from . import stats as S
from .attention import AttentionRecorder, fused_attention_modules
from .direct import DirectRecorder
from .experts import ExpertRecorder
from .findings import SEVERITIES, Finding, Thresholds, diagnose
from .hooks import Hooks
from .stream import StreamRecorder, closers

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




_DROPOUTS = frozenset(("dropout", "alpha_dropout", "feature_alpha_dropout", "dropout1d",
                       "dropout2d", "dropout3d", "feature_dropout", "dropout_",
                       "alpha_dropout_", "feature_dropout_", "feature_alpha_dropout_"))


class _DropoutOff(TorchFunctionMode):
    """Dropout that no module's mode switches off: functional calls in ``forward``
    (``F.dropout(x, p, training=self.training)``, Llama's eager attention) and the
    ``dropout_p`` of ``scaled_dot_product_attention`` (Hugging Face's sdpa attention passes
    ``attention_probs_dropout_prob`` in train mode). Each runs with p = 0."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        name = getattr(func, "__name__", "")
        if name in _DROPOUTS:
            if len(args) > 1:
                args = (args[0], 0.0, *args[2:])
            else:
                kwargs["p"] = 0.0
        elif name == "scaled_dot_product_attention":
            if len(args) > 4:
                args = (*args[:4], 0.0, *args[5:])
            else:
                kwargs["dropout_p"] = 0.0
        return func(*args, **kwargs)


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
    desc: Any = None                  # the description's LayerInfo, if any
    desc_stats: dict[str, Any] | None = None  # h = f(z) for the description's activation
    claimable: bool = True            # whether the next activation module's call is its own


def _desc_act(info: Any) -> tuple[str, float | None] | None:
    """``(name, param)`` of the activation the description found after a layer, to apply to the
    layer's output. Not for gated units (their output is multiplied by another layer's
    activation, not activated) nor for layers closing a residual branch (the activation acts on
    the stream, shortcut plus branch). After a norm or a scaling the activation's true input
    differs from the layer's output; ``h = f(z)`` is then an approximation."""
    if info is None or info.gated_by is not None or info.residual_branch is not None or \
            getattr(info, "activation_inside", False):
        return None    # (inside the module: its output is already the activation's)
    act = info.activation
    if isinstance(act, tuple) and act and hasattr(act[0], "name"):
        return act[0].name, act[1]
    return None


#: how the activation a user's layer applies inside itself is named in its row's
#: ``activation_module`` (``"0 (inside)"``), and how the coverage notes know it was measured
_INSIDE = " (inside)"


class _Recorder:
    """Forward hooks for weighted layers and activation modules; tensor hooks for dL/dz."""

    def __init__(self, hooks: Hooks, fallback: tuple[str, float | None] | None,
                 th: Thresholds, bins: int, desc_of: dict[int, Any] | None = None,
                 stream: StreamRecorder | None = None):
        self.hooks, self.fallback, self.th, self.bins = hooks, fallback, th, bins
        self.desc_of = desc_of or {}
        self.stream = stream
        self.calls: list[_Call] = []
        self.counts: dict[int, int] = {}
        self.pending_u: torch.Tensor | None = None
        # a user's layer with an activation module inside (a Keras-style Dense holding
        # nn.Tanh): id of the layer's module -> (z as passed, z, h, spec) from that module's
        # last call, for the layer's own call to take
        self.inner: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                    tuple[str, float | None]]] = {}
        self.inner_z: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def _waiting(self) -> _Call | None:
        last = self.calls[-1] if self.calls else None
        if last is None or last.act is not None or not last.claimable:
            return None
        if last.desc is not None and last.desc.activation is None:
            return None  # the description says no activation follows this layer
        return last

    def paused(self):
        return self.stream.paused() if self.stream is not None else _nullcontext()

    def layer_hook(self, name: str) -> Callable:
        def hook(module, inputs, output):
            with self.paused():
                self._layer(name, module, inputs, output)
        return hook

    def inner_hooks(self, owner: nn.Module, act: nn.Module,
                    spec: tuple[str, float | None]) -> None:
        """Hooks on the activation module ``act`` that a user's layer ``owner`` applies to its
        product inside its forward: its input is the layer's z, its output the layer's h."""
        def pre(module, inputs):
            x = inputs[0] if inputs else None
            if isinstance(x, torch.Tensor) and x.is_floating_point():
                with self.paused():   # a snapshot before an in-place activation overwrites it
                    self.inner_z[id(owner)] = (x, S.snapshot(x))

        def post(module, inputs, output):
            x, z = self.inner_z.pop(id(owner), (None, None))
            if x is not None and z is not None and isinstance(output, torch.Tensor):
                with self.paused():
                    self.inner[id(owner)] = (x, z, S.snapshot(output), spec)
        self.hooks.register(act, pre, "forward_pre")
        self.hooks.register(act, post)

    def expert_call(self, name: str, weight, x, output, info: Any, rows=None) -> _Call | None:
        """One expert's projection (:mod:`initlab.diagnostics.experts`), as a layer call whose
        description entry is ``info``; ``rows = (full, index)`` when ``output`` is
        ``full[index]`` (a grouped or batched product: its gradient arrives on ``full``)."""
        with self.paused():
            return self._layer(name, weight, (x,), output, info, rows)

    def direct_call(self, name: str, module, x, output, select=None) -> None:
        """A product that reads ``module``'s weight outside its forward
        (:mod:`initlab.diagnostics.direct`), as a call of that layer; ``select`` maps the
        product's gradient to ``output``'s when ``output`` is a view of the product."""
        with self.paused():
            self._layer(name, module, (x,), output, None,
                        None if select is None else (output._base if output._base is not None
                                                     else output, select))

    def gate_stats(self, call: _Call, u: torch.Tensor, info: Any) -> None:
        """Activation statistics of ``call`` from ``u``, the part of its output the
        description's activation reads (a gated expert's gate half)."""
        act = getattr(info, "activation", None)
        if not (isinstance(act, tuple) and act and hasattr(act[0], "name")):
            return
        spec = (act[0].name, act[1])
        with self.paused():
            u = S.snapshot(u)
            call.act, call.act_module = spec, "(gate half)"
            call.act_stats = S.activation_stats(u, S.apply_activation(u, *spec), *spec,
                                                call.axis, self.th.saturation_slope, self.bins)

    def _layer(self, name: str, module, inputs, output, info: Any = None,
               rows=None) -> _Call | None:
        if isinstance(output, (tuple, list)) and output and is_router(module):
            output = output[0]  # a MoE router returns (logits, top-k weights, indices)
        if not isinstance(output, torch.Tensor) or not output.is_floating_point():
            return None
        k = self.counts[id(module)] = self.counts.get(id(module), 0) + 1
        x = inputs[0] if inputs and isinstance(inputs[0], torch.Tensor) else None
        x_rms = x_spread = None
        if x is not None and x.is_floating_point() and x.numel():
            xd = x.detach().double()
            x_rms, x_spread = S.finite(xd.square().mean().sqrt()), S.spread(xd)
        inner = self.inner.pop(id(module), None)
        if inner is not None:        # z and h from the activation module the layer holds
            full_z, z, h_in, spec_in = inner
            rows = (full_z, None)
        else:
            z = S.snapshot(output)
        desc = info if info is not None else self.desc_of.get(id(module))
        axis = S.unit_axis(module, desc)
        call = _Call(module, name if k == 1 else f"{name} (call {k})", axis, z.dim(), x_rms,
                     x_spread, S.output_stats(z, axis, self.bins))
        call.desc = desc
        spec = _desc_act(call.desc)
        if spec is not None:  # used unless an activation module claims this call
            h = S.apply_activation(z, *spec)
            call.desc_stats = S.activation_stats(z, h, *spec, axis, self.th.saturation_slope,
                                                 self.bins)
            call.desc_stats["name"] = spec[0]
        elif self.fallback is not None and (call.desc is None
                                            or call.desc.activation == "unknown"):
            h = S.apply_activation(z, *self.fallback)
            call.fallback_stats = S.activation_stats(z, h, *self.fallback, axis,
                                                     self.th.saturation_slope, self.bins)
            call.fallback_stats["name"] = self.fallback[0]
        if inner is not None:
            call.act, call.act_module = spec_in, f"{call.name}{_INSIDE}"
            call.act_stats = S.activation_stats(z, h_in, *spec_in, axis,
                                                self.th.saturation_slope, self.bins)
        self.calls.append(call)
        full, pick = rows if rows is not None else (output, None)
        if full.requires_grad:
            def on_grad(g, call=call):
                g = g.detach()
                if pick is not None:
                    g = pick(g) if callable(pick) else g[pick]
                sq = g.double().square()
                call.grad_rms = S.finite(sq.mean().sqrt())
                examples = sq.shape[0] if sq.dim() > 0 else 1
                call.grad_norm = S.finite((sq.sum() / examples).sqrt())
            self.hooks.adopt(full.register_hook(on_grad))
        return call

    def act_pre_hook(self) -> Callable:
        def hook(module, inputs):
            with self.paused():
                self._act_pre(inputs)
        return hook

    def _act_pre(self, inputs) -> None:
        self.pending_u = None
        x = inputs[0] if inputs else None
        if self._waiting() is not None and isinstance(x, torch.Tensor) and x.is_floating_point():
            self.pending_u = S.snapshot(x)  # before an in-place activation overwrites it

    def act_hook(self, name: str, spec: tuple[str, float | None]) -> Callable:
        def hook(module, inputs, output):
            with self.paused():
                self._act(name, spec, output)
        return hook

    def _act(self, name: str, spec: tuple[str, float | None], output) -> None:
        call, u, self.pending_u = self._waiting(), self.pending_u, None
        if call is None or u is None or not isinstance(output, torch.Tensor):
            return
        axis = call.axis if u.dim() == call.ndim else (-1 if u.dim() == 2 else 1)
        call.act, call.act_module = spec, name
        call.act_stats = S.activation_stats(u, S.snapshot(output), *spec, axis,
                                            self.th.saturation_slope, self.bins)


# ------------------------------------------------------------------ the report


@dataclass
class DoctorReport:
    """Result of :func:`doctor`: per-layer statistics, findings, the probe batch's statistics,
    what was run (``meta``), the residual stream per block (``blocks``), what could not be
    diagnosed (``notes``) and every attention softmax (``attention``). ``str(report)`` is a terminal table followed by the findings."""

    layers: list[S.LayerStats]
    findings: list[Finding]
    inputs: S.InputStats | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    blocks: list[S.BlockStats] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    attention: list[S.AttentionStats] = field(default_factory=list)

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
                "blocks": [b.to_dict() for b in self.blocks],
                "attention": [a.to_dict() for a in self.attention],
                "findings": [f.to_dict() for f in self.findings],
                "notes": list(self.notes)}

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

    def block_table(self) -> str:
        """The residual stream per block: what the branch adds and the std after the block."""
        if not self.blocks:
            return ""
        head = ["block", "closed by", "stream in", "branch", "stream out", "|dL/dstream|"]
        rows = [[str(b.index + 1), b.closing, _num(b.stream_in_std), _num(b.branch_std),
                 _num(b.stream_std), _num(b.stream_grad_norm)] for b in self.blocks]
        widths = [max(len(r[k]) for r in [head, *rows]) for k in range(len(head))]
        fmt = [lambda c, w: c.rjust(w), lambda c, w: c.ljust(w)] + [lambda c, w: c.rjust(w)] * 4
        return "\n".join("  ".join(f(c, w) for f, c, w in zip(fmt, r, widths))
                         for r in [head, ["-" * w for w in widths], *rows])

    def attention_table(self) -> str:
        """Every attention softmax: rows, keys, logits' spread, largest weight, entropy."""
        if not self.attention:
            return ""
        head = ["#", "module", "source", "rows", "keys", "logit std", "max p", "entropy", "sat"]
        rows = [[str(a.index + 1), a.module, a.source, str(a.rows), _num(a.keys),
                 _num(a.logit_std), _num(a.max_prob), _num(a.entropy), _frac(a.saturated)]
                for a in self.attention]
        widths = [max(len(r[k]) for r in [head, *rows]) for k in range(len(head))]
        left = {1, 2}
        return "\n".join("  ".join(c.ljust(w) if k in left else c.rjust(w)
                                   for k, (c, w) in enumerate(zip(r, widths)))
                         for r in [head, ["-" * w for w in widths], *rows])

    def __str__(self) -> str:
        m = self.meta
        title = (f"initlab doctor: {m.get('model', 'model')}, batch {m.get('batch_shape')}, "
                 f"loss {m.get('loss')} = {_num(m.get('loss_value'))}")
        parts = [title, "", self.table(), ""]
        if self.blocks:
            parts += ["residual stream per block (std):", self.block_table(), ""]
        if self.attention:
            parts += ["attention softmax per call (entropy: of uniform's; sat: rows with max p > "
                      f"{self.attention[0].p_saturated:.3g}):", self.attention_table(), ""]
        if self.inputs is not None:
            i = self.inputs
            parts.append(f"input: mean {_num(i.mean)}, std {_num(i.std)}, spread {_num(i.spread)}"
                         f", corr {_num(i.example_corr, 3)}")
        if self.notes:
            parts.append("not diagnosed / notes:")
            parts += [f"  - {n}" for n in self.notes]
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

    def _repr_html_(self) -> str:  # Jupyter
        from .html import doctor_report_html

        return doctor_report_html(self)


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
        weighted layer but the output, where the model description found none (it finds
        ``torch.relu``/``F.gelu``/``x.tanh()`` in ``forward`` itself; this is for models it
        cannot probe, or activations it does not know).
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
    weights, bias and gradient are identical (the zero-init symmetry problem). Each routed
    expert of a mixture-of-experts bank is a layer of its own, ``<bank>.gate_up_proj[e]``
    (:mod:`initlab.diagnostics.experts`). Depth trends follow
    Glorot & Bengio 2010 ("Understanding the difficulty of training deep feedforward neural
    networks") forward and backward, along the longest chain of layers; in a residual network
    along the residual stream, whose std and gradient are reported per block
    (``report.blocks``). The output layer's logits are checked for a saturated softmax, and so is every
    attention softmax (``report.attention``; :mod:`initlab.diagnostics.attention`).

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
    desc = None
    notes: list[str] = []
    stream = None
    with Hooks() as hooks:
        try:
            # may run the model (probe-real): the probe keeps buffers and global random state
            desc, notes = _describe(model, batch)
            desc_of = {id(layer.module): layer for layer in desc.layers} if desc else {}
            branches = closers(model, desc) if desc is not None else []
            stream = StreamRecorder(hooks, branches) if branches else None
            attn = AttentionRecorder(hooks, model, th.saturation_slope)
            rec = _Recorder(hooks, fallback, th, bins, desc_of, stream)
            experts = ExpertRecorder(hooks, rec, desc)
            model.train(train)
            seen: set[int] = set()
            weighted: list[tuple[str, nn.Module]] = []
            # a user's layer (a free weight whose module's output is its output): a weighted
            # layer whatever its weight's name, and an activation module it holds runs inside it
            users = [layer.module for layer in (desc.layers if desc else [])
                     if layer.kind == "free" and layer.module_output]
            inside: set[int] = set()
            user_ids = {id(u) for u in users}
            for u in users:          # its activation module's input is its z
                for c in u.modules():
                    if c is u:
                        continue
                    inside.add(id(c))
                    spec = S.activation_of(c)
                    if spec is not None:
                        rec.inner_hooks(u, c, spec)
            for name, m in model.named_modules():
                if id(m) in seen or id(m) in inside:
                    continue
                seen.add(id(m))
                if S.is_weighted_layer(m) or id(m) in user_ids:
                    hooks.register(m, rec.layer_hook(name or type(m).__name__))
                    weighted.append((name or type(m).__name__, m))
                elif module_kind(m) == "experts":
                    experts.attach(name, m)
                else:
                    spec = S.activation_of(m)
                    if spec is not None:
                        hooks.register(m, rec.act_pre_hook(), "forward_pre")
                        hooks.register(m, rec.act_hook(name, spec))
            # dropout, drop path, LayerDrop off: measure the network, not the noise
            with stochastic_off(model), torch.enable_grad():
                for p, _ in snap.grads:
                    p.grad = None
                direct = DirectRecorder(hooks, rec, weighted)
                with _DropoutOff(), attn, experts, direct, \
                        stream if stream is not None else _nullcontext():
                    output = _forward(model, batch)
                if stream is not None:
                    stream.clear()
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
                experts.add_grads(grads)
        finally:
            hooks.remove()
            snap.restore()

    layers = _layer_stats(rec.calls, grads, desc)
    blocks = stream.results() if stream is not None else []
    attention = attn.results()
    notes += _coverage_notes(model, desc, layers, blocks, fallback, experts.measured())
    fused = fused_attention_modules(model)
    if fused:
        notes.append("attention inside nn.MultiheadAttention (" + ", ".join(
            f"`{n}`" for n in fused[:3]) + (", ..." if len(fused) > 3 else "") + ") runs in one "
            "fused call: its softmax is not measured")
    x = _first_tensor(batch)
    assert x is not None  # the batch was checked to hold a tensor on entry
    xs = S.snapshot(x) if x.is_floating_point() else None
    inputs = None
    if xs is not None:
        mo = S.moments(xs)
        inputs = S.InputStats(list(xs.shape), mo["mean"], mo["std"], mo["rms"], S.spread(xs),
                              S.example_corr(xs))
    findings = diagnose(layers, inputs, th, blocks=blocks, attention=attention,
                        depth=desc.plain_depth() if desc is not None else None)
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
            "activation_fallback": fallback[0] if fallback else None,
            "description": desc.method if desc is not None else None,
            "residual_blocks": len(desc.residual_branches) if desc is not None else None}
    meta["attention_calls"] = len(attention)
    return DoctorReport(layers, findings, inputs, meta, blocks, notes, attention)


def _describe(model: nn.Module, batch: Any) -> tuple[Any, list[str]]:
    """The model description (or None) and the notes it brings."""
    try:
        from ..modelinit.describe import describe

        desc = describe(model, batch)
    except Exception as exc:  # the doctor still runs on hooks alone
        return None, [f"no model description ({type(exc).__name__}: {str(exc)[:200]}): "
                      "activations are only seen as modules (a functional such as torch.relu in "
                      "forward is invisible; pass activation=), siblings are read as a chain, "
                      "residual blocks are not known, and the last layer to run is taken as the "
                      "output"]
    notes = [f"model description: {n}" for n in desc.notes]
    return desc, notes


def _coverage_notes(model: nn.Module, desc: Any, layers: list[S.LayerStats],
                    blocks: list[S.BlockStats], fallback,
                    banks_measured: AbstractSet[str] = frozenset()) -> list[str]:
    """What this run could not diagnose, said in the report."""
    notes = []
    for name, m in model.named_modules():
        if isinstance(m, RNN_TYPES):
            notes.append(f"`{name or type(m).__name__}` ({type(m).__name__}): its internals are "
                         "not diagnosed (the gates' sigmoid/tanh and the recurrence over time run "
                         "inside the module; no per-gate statistics)")
        elif isinstance(m, nn.MultiheadAttention):
            notes.append(f"`{name or type(m).__name__}` (MultiheadAttention): its q/k/v and "
                         "out projections run inside F.multi_head_attention_forward and are not "
                         "measured one by one")
    unknown = [s.name for s in layers if s.activation == "unknown" and not s.is_output]
    if unknown:
        shown = ", ".join(f"`{n}`" for n in unknown[:6]) + (" ..." if len(unknown) > 6 else "")
        notes.append(f"activation after {shown} not found (untraceable functional or an unknown "
                     "module): saturation and dead units not measured there"
                     + ("" if fallback else "; pass activation= to name it"))
    if desc is not None:
        ran = {s.name.split(" (call ")[0] for s in layers}
        banks = [f"`{layer.name}` ({type(layer.module).__name__})" for layer in desc.layers
                 if layer.kind == "experts" and layer.name not in banks_measured]
        if banks:
            notes.append(_listed(banks) + ": expert banks whose experts were not seen one by "
                         "one (all multiplied at once, or no token routed to them): not "
                         "measured per expert")
        unseen = [f"`{layer.name}`" for layer in desc.layers
                  if layer.kind != "experts" and _row_name(layer) not in ran]
        if unseen:
            notes.append(_listed(unseen) + ": did not run as modules in this forward (a "
                         "branch not taken, or the weight read by an operation other than "
                         "linear, conv or matmul): not measured")
        held = {s.name.split(" (call ")[0] for s in layers
                if (s.activation_module or "").endswith(_INSIDE)}   # measured inside
        inside = [f"`{_row_name(layer)}` ({layer.activation_name})" for layer in desc.layers
                  if layer.activation_inside and _row_name(layer) in ran - held]
        if inside:
            notes.append(_listed(inside) + ": the activation runs inside the module, so its "
                         "output, shown as z, is the activation's: saturation and dead units "
                         "not measured there")
        seen = {b.index for b in blocks}
        missed = [b.closing for b in desc.residual_branches if b.index not in seen]
        if missed:
            notes.append("residual branches closed by " + ", ".join(f"`{n}`" for n in missed[:6])
                         + " not followed to their addition in this forward: no stream statistics")
    return notes


def _row_name(layer: Any) -> str:
    """The row a layer of the description is measured as: its module's (a user's linear layer's
    for its free weight; the root's by its class name), else the layer's own name."""
    if not layer.module_output:
        return layer.name
    return layer.module_name or type(layer.module).__name__


def _listed(items: list[str], k: int = 6) -> str:
    return ", ".join(items[:k]) + (f" and {len(items) - k} more" if len(items) > k else "")


def _weight_of(c: _Call, desc: Any) -> tuple[torch.Tensor, Any, str | None, list[str]]:
    """(weight, bias, layout, other names of the weight) of a call's layer: a user's layer's
    free weight and free bias from the description (its weight may be named ``kernel``), else
    the module's ``weight`` and ``bias`` (weighted layers and expert views hold one)."""
    info = c.desc
    if desc is not None and info is not None and info.kind == "free" and info.module_output:
        p = desc.param(info.name)
        bias = desc.param(info.biases[0]).tensor if info.biases else None
        return p.tensor, bias, p.layout, [n for n in p.names if n != info.name]
    weight = c.module.weight
    assert isinstance(weight, torch.Tensor)
    return (weight, getattr(c.module, "bias", None), *_weight_info(desc, c.module))


def _weight_info(desc: Any, module: nn.Module) -> tuple[str | None, list[str]]:
    """(layout, other names of the tensor) of a layer's weight from the description."""
    if desc is None:
        return None, []
    for p in desc.params:
        for mname, mod, local in p.uses:
            if mod is module and local == "weight":
                others = [f"{n}.{loc}" if n else loc for n, _, loc in p.uses
                          if not (mod is module and loc == "weight" and n == mname)]
                return p.layout, others
    return None, []


def _layer_stats(calls: list[_Call], grads: dict[int, torch.Tensor | None],
                 desc: Any = None) -> list[S.LayerStats]:
    out = []
    for k, c in enumerate(calls):
        m = c.module
        weight, bias, layout, tied = _weight_of(c, desc)
        w = S.snapshot(weight)
        b = S.snapshot(bias) if isinstance(bias, torch.Tensor) else None
        rows_layout = S.unit_rows_layout(m, c.desc, layout)
        rows = S.weight_rows(m, w, rows_layout)
        n = rows.shape[0]
        fan_in, fan_out = S.layer_fans(m, w, layout)
        info = c.desc
        last = info.is_readout if info is not None else (desc is None and k == len(calls) - 1)
        s = S.LayerStats(index=k + 1, name=c.name, kind=type(m).__name__,
                         weight_shape=list(w.shape), fan_in=fan_in, fan_out=fan_out, n_units=n,
                         is_output=last, tied_to=tied, conv=S.is_conv(m, info))
        if info is not None:
            s.gated_by, s.residual_branch = info.gated_by, info.residual_branch
            s.activation = info.activation_name  # None: linear; "unknown": not found
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
            assert c.act is not None  # set together with act_stats
            s.activation, s.activation_module = c.act[0], c.act_module
        elif c.desc_stats is not None:
            a = c.desc_stats
            s.activation, s.activation_module = a["name"], "(functional)"
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
        gw = grads.get(id(weight))
        if gw is None and weight is getattr(m, "weight", None):   # a pruned weight's
            gw = grads.get(id(S.weight_param(m)))     # gradient is its weight_orig's
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
            parts.append(S.weight_rows(m, gw, rows_layout))
            gb = grads.get(id(bias)) if b is not None and b.numel() == n else None
            if gb is not None:
                parts.append(gb.reshape(n, 1))
            s.unit_groups = S.distinct_rows(torch.cat(parts, dim=1))
        else:
            s.unit_groups = n - s.duplicate_units
        s.symmetric_units = n - s.unit_groups
        out.append(s)
    if desc is not None:
        _mark_chain(out, calls, desc)
    return out


def _mark_chain(layers: list[S.LayerStats], calls: list[_Call], desc: Any) -> None:
    """``on_chain``: the layers on the longest path of the description's layer graph, the chain
    the depth rules follow (siblings such as q/k/v or gate/up are off it). In a residual network
    no layer chain is followed: the residual stream per block is (see ``BlockStats``)."""
    if desc.residual_branches:
        for s in layers:
            s.on_chain = False
        return
    level: dict[str, int] = {}
    by_name = {layer.name: layer for layer in desc.layers}
    for layer in desc.layers:  # dataflow order: inputs come first
        level[layer.name] = 1 + max((level.get(i, 0) for i in layer.inputs), default=0)
    chain: set[str] = set()
    if level:
        cur: str | None = max(level, key=lambda n: level[n])
        while cur is not None:
            chain.add(cur)
            ins = [i for i in by_name[cur].inputs if level.get(i) == level[cur] - 1]
            cur = ins[0] if ins else None
    for s, c in zip(layers, calls):
        s.on_chain = c.desc is None or c.desc.name in chain
