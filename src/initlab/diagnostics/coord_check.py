"""The coordinate check: a doctor over widths (Yang et al. 2022, Tensor Programs V, Fig. 5).

Train the same model at several widths for a few steps, under a parametrization
(:func:`initlab.parametrize`), and measure the size of every layer's output coordinates (the mean
absolute value, ``mup``'s ``l1``) at each step. Under a parametrization that is right for width
(μP) every curve is flat in width; under SP with Adam the hidden and output activations grow
with width once training starts. The verdict per layer is the slope of log(size) against
log(width): **stable** within ``tolerance`` (0.1 by default), else **growing** or **shrinking**,
taken at the step where it is largest in magnitude. Step 0 is the init, where μP's readout output
is O(1/sqrt(width)) by design (its limit function starts at 0, Tensor Programs V §5), so verdicts
are taken over the steps after the first update (``from_step=1``).

>>> import torch, torch.nn as nn, initlab
>>> mlp = lambda w: nn.Sequential(nn.Linear(8, w), nn.ReLU(), nn.Linear(w, w), nn.ReLU(),
...                               nn.Linear(w, 3))
>>> x, y = torch.randn(64, 8), torch.randint(0, 3, (64,))
>>> cc = initlab.coord_check(mlp, [64, 128, 256], (x, y), parametrization="mup", steps=3)
>>> cc.breaking
[]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from ..core.validation import InitlabTypeError, check_choice, check_scalar, error_message, fail

VERDICTS = ("stable", "growing", "shrinking")
DEFAULT_TOLERANCE = 0.1   # |slope| of log size vs log width that still counts as flat


@dataclass
class CoordCheck:
    """Coordinate sizes per (width, seed, module, step) and the verdicts."""

    parametrization: str
    widths: list[int]
    steps: int
    optimizer: str
    lr: float
    records: list[dict[str, Any]] = field(default_factory=list)   # width, seed, module, t, l1
    tolerance: float = DEFAULT_TOLERANCE
    from_step: int = 1

    def modules(self) -> list[str]:
        seen: dict[str, None] = {}
        for r in self.records:
            seen.setdefault(r["module"], None)
        return list(seen)

    def sizes(self, module: str, t: int) -> list[float]:
        """Mean coordinate size over seeds at each width (in ``widths`` order)."""
        out = []
        for w in self.widths:
            vals = [r["l1"] for r in self.records
                    if r["module"] == module and r["t"] == t and r["width"] == w]
            out.append(float(np.mean(vals)) if vals else float("nan"))
        return out

    def slope(self, module: str, t: int) -> float:
        """Least-squares slope of log(size) against log(width)."""
        y = np.log(np.maximum(self.sizes(module, t), 1e-300))
        x = np.log(np.asarray(self.widths, dtype=float))
        return float(np.polyfit(x, y, 1)[0])

    def verdicts(self) -> dict[str, tuple[str, float, int]]:
        """module -> (verdict, slope, step): the step whose slope is largest in magnitude."""
        out = {}
        for m in self.modules():
            slopes = [(self.slope(m, t), t) for t in range(self.from_step, self.steps)]
            s, t = max(slopes, key=lambda st: abs(st[0]))
            v = "stable" if abs(s) <= self.tolerance else ("growing" if s > 0 else "shrinking")
            out[m] = (v, s, t)
        return out

    @property
    def breaking(self) -> list[str]:
        """Layers whose coordinates are not stable in width: they break the parametrization."""
        return [m for m, (v, _, _) in self.verdicts().items() if v != "stable"]

    def to_dict(self) -> dict[str, Any]:
        return {"parametrization": self.parametrization, "widths": self.widths,
                "steps": self.steps, "optimizer": self.optimizer, "lr": self.lr,
                "tolerance": self.tolerance, "from_step": self.from_step, "records": list(self.records),
                "verdicts": {m: {"verdict": v, "slope": s, "step": t}
                             for m, (v, s, t) in self.verdicts().items()}}

    def __str__(self) -> str:
        head = (f"Coordinate check: {self.parametrization}, widths {self.widths}, "
                f"{self.steps} steps of {self.optimizer} (lr {self.lr:g}); slope of "
                f"log(mean |x|) vs log(width) from step {self.from_step}, stable within "
                f"+-{self.tolerance:g}")
        rows = [("module", "verdict", "slope", "at step")]
        for m, (v, s, t) in self.verdicts().items():
            rows.append((m or "(model output)", v, f"{s:+.3f}", str(t)))
        w = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = [head] + ["  ".join(c.ljust(w[i]) for i, c in enumerate(r)).rstrip()
                          for r in rows]
        br = self.breaking
        lines.append("verdict: " + ("every layer is stable in width" if not br else
                                    f"{len(br)} layer(s) break it: " + ", ".join(
                                        m or "(model output)" for m in br)))
        return "\n".join(lines)

    def figure(self):
        """One panel per step: coordinate size against width (log-log), a line per module."""
        from ..report.html import pyplot

        plt = pyplot()
        fig, axes = plt.subplots(1, self.steps, figsize=(3.4 * self.steps, 3.2), sharey=True,
                                 squeeze=False)
        mods = self.modules()
        cmap = plt.get_cmap("viridis")
        for t, ax in enumerate(axes[0]):
            for i, m in enumerate(mods):
                ax.plot(self.widths, self.sizes(m, t), marker="o", ms=3,
                        color=cmap(i / max(1, len(mods) - 1)), label=m or "output")
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_title(f"step {t}")
            ax.set_xlabel("width")
        axes[0][0].set_ylabel("mean |coordinate|")
        axes[0][-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
        fig.suptitle(f"coordinate check: {self.parametrization}")
        fig.tight_layout()
        return fig

    def plot(self, path) -> Any:
        from pathlib import Path

        fig = self.figure()
        path = Path(path)
        fig.savefig(path, dpi=100, bbox_inches="tight")
        from ..report.html import pyplot

        pyplot().close(fig)
        return path


def _measured(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The modules whose outputs the check measures: those holding parameters, whether stored
    on them or moved by a multiplier's parametrization (``torch.nn.utils.parametrize``: a user's
    linear readout under μP holds its weight in ``out.parametrizations.weight.original``), and
    not the parametrization modules themselves."""
    from torch.nn.utils import parametrize

    inside = {id(x) for _, m in model.named_modules() if parametrize.is_parametrized(m)
              for x in m.parametrizations.modules()}
    return [(name, m) for name, m in model.named_modules()
            if name and id(m) not in inside and (parametrize.is_parametrized(m) or
                                                 any(True for _ in m.parameters(recurse=False)))]


def _loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if out.dim() == 3:   # (batch, seq, vocab) language-model logits
        out = out.reshape(-1, out.shape[-1])
        y = y.reshape(-1)
    if not torch.is_floating_point(y):
        return nn.functional.cross_entropy(out, y)
    return nn.functional.mse_loss(out, y)


def _logits(out: Any) -> torch.Tensor:
    if isinstance(out, torch.Tensor):
        return out
    logits = getattr(out, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    raise fail("model_fn", "must build a model whose output is a tensor (or has .logits)",
               type(out).__name__, "wrap the model so forward returns the logits.")


def coord_check(model_fn: Callable[[int], nn.Module], widths: Sequence[int], data: Any, *,
                parametrization: str = "mup", base_width: int | None = None, steps: int = 3,
                optimizer: str = "adam", lr: float = 1e-2, seeds: Sequence[int] = (0,),
                loss_fn: Callable | None = None, tolerance: float = DEFAULT_TOLERANCE,
                from_step: int = 1, **parametrize_kw: Any) -> CoordCheck:
    """Run the coordinate check (see the module docs).

    Parameters
    ----------
    model_fn : ``width -> model``; the base is ``model_fn(base_width)`` (built on meta).
    widths : at least 3 distinct widths.
    data : ``(inputs, targets)``: one batch used at every step. Integer targets: cross-entropy
        (language-model logits are flattened); float targets: mean squared error.
    parametrization : ``"sp"``, ``"mup"``, ``"ntk"`` or ``"mfp"``.
    base_width : defaults to the smallest width.
    steps : optimizer steps; sizes are measured in the forward of each step (step 0: at init).
    from_step : the first step the verdicts look at (1: after the first update).
    tolerance : the largest |slope| that counts as stable.
    optimizer : ``"adam"`` or ``"sgd"`` (torch's, with the parametrization's parameter groups).
    seeds : one run per seed and width; sizes are averaged over seeds.
    """
    from ..modelinit.parametrization import PARAMETRIZATIONS, parametrize

    parametrization = check_choice(parametrization, "parametrization", PARAMETRIZATIONS)
    optimizer = check_choice(optimizer, "optimizer", ("adam", "sgd"))
    if not callable(model_fn):
        raise InitlabTypeError(error_message("model_fn", "must be a function width -> model",
                                             type(model_fn).__name__,
                                             "pass e.g. lambda w: make_model(width=w)."))
    ws = sorted({int(check_scalar(w, "widths", integer=True, min_val=1)) for w in widths})
    if len(ws) < 3:
        raise fail("widths", "must hold at least 3 distinct widths (a slope from two points "
                   "has no check)", list(widths), "pass e.g. [64, 128, 256, 512].")
    steps = int(check_scalar(steps, "steps", integer=True, min_val=1))
    from_step = int(check_scalar(from_step, "from_step", integer=True, min_val=0,
                                 max_val=steps - 1, fix=f"pass a step below steps={steps}."))
    lr = check_scalar(lr, "lr", min_val=0.0, include_min=False)
    base_width = ws[0] if base_width is None else int(
        check_scalar(base_width, "base_width", integer=True, min_val=1))
    if not (isinstance(data, (tuple, list)) and len(data) == 2
            and all(isinstance(d, torch.Tensor) for d in data)):
        raise InitlabTypeError(error_message(
            "data", "must be a pair (inputs, targets) of tensors", type(data).__name__,
            "pass e.g. (x, y) with x of shape (batch, features) and y of class indices."))
    x, y = data
    loss_fn = loss_fn or _loss
    seeds = [int(check_scalar(s, "seeds", integer=True, min_val=0)) for s in seeds]
    tolerance = check_scalar(tolerance, "tolerance", min_val=0.0, include_min=False)
    result = CoordCheck(parametrization, ws, steps, optimizer, lr, tolerance=tolerance,
                        from_step=from_step)
    opt_cls = torch.optim.Adam if optimizer == "adam" else torch.optim.SGD
    for w in ws:
        for seed in seeds:
            model = model_fn(w)
            par = parametrize(model, parametrization, base=lambda: model_fn(base_width),
                              seed=seed, **parametrize_kw)
            groups = [{k: v for k, v in g.items() if k not in ("names", "lr_mult")}
                      for g in par.param_groups(lr, optimizer)]
            opt = opt_cls(groups)
            t_box = [0]
            handles = []

            def record(name, w=w, seed=seed, t_box=t_box):
                def hook(module, args, output):
                    out = _logits(output) if name == "" else output
                    if isinstance(out, torch.Tensor) and out.is_floating_point():
                        result.records.append({"width": w, "seed": seed, "module": name,
                                               "t": t_box[0],
                                               "l1": float(out.detach().abs().mean())})
                return hook

            for name, m in _measured(model):
                handles.append(m.register_forward_hook(record(name)))
            handles.append(model.register_forward_hook(record("")))
            try:
                for t in range(steps):
                    t_box[0] = t
                    opt.zero_grad(set_to_none=True)
                    loss = loss_fn(_logits(model(x)), y)
                    if not math.isfinite(float(loss.detach())):
                        raise fail("lr", "makes the loss non-finite in the coordinate check",
                                   lr, "lower the learning rate.")
                    loss.backward()
                    opt.step()
            finally:
                for h in handles:
                    h.remove()
                par.remove()
    return result
