"""What :func:`initlab.apply` did, parameter by parameter, as plain data and a readable table."""

from __future__ import annotations

import functools
import inspect
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..backends.torch_backend import chunk_sums, moments_from_sums
from ..util.dtensor import is_dtensor


def _fmt(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if x == 0:
        return "0"
    if abs(x) >= 1e4 or abs(x) < 1e-3:
        return f"{x:.2e}"
    return f"{x:.4f}"


def _tensor_moments(t: torch.Tensor) -> tuple[float | None, float | None]:
    """(mean, std) of a tensor's elements, exact to ~1e-6 relative.

    One pass in the tensor's dtype for float32/float64: ``sum`` and ``dot`` per 2^17-element
    chunk accumulated in float64 (:func:`~initlab.backends.torch_backend.chunk_sums`; no
    full-size temporary), std from E[x^2] - mean^2. When that difference could cancel (mean^2
    above 1e-3 of E[x^2]: constants, biased tensors) the exact chunked ``var_mean`` pass is used
    instead, as for other dtypes. A DTensor sharded or replicated on its mesh: each rank sums its
    own shard and one all-reduce over the sharded mesh dimensions combines the two sums."""
    if t.device.type == "meta" or t.numel() == 0 or not t.is_floating_point():
        return None, None
    if is_dtensor(t):
        with torch.no_grad():
            return _dtensor_moments(t.detach())
    with torch.no_grad():
        flat = t.detach().reshape(-1)
        if flat.dtype in (torch.float32, torch.float64):
            moments = moments_from_sums(*chunk_sums(flat))
            if moments is not None:
                return moments
        return _chunked_moments(flat)


def _dtensor_moments(x) -> tuple[float | None, float | None]:
    """Global (mean, std) of a DTensor from its ranks' shard sums: one all-reduce of (sum, sum
    of squares), and when E[x^2] - mean^2 could cancel a second one of the squares about the
    global mean (exact, as :func:`_chunked_moments`). Never DTensor's own ``mean``: in torch
    2.13 (gloo, CPU) the mean of a (5, 9, 7) tensor placed Shard(1) on 3 ranks is off by 0.06
    (its std is right). A Partial placement is summed first (``redistribute`` to Replicate)."""
    from torch.distributed.tensor import DTensor, Partial, Replicate

    if not all(p.is_shard() or p.is_replicate() for p in x.placements):
        x = x.redistribute(x.device_mesh, [p if p.is_shard() else Replicate()
                                           for p in x.placements])
    shard = x.to_local()
    flat = shard.reshape(-1)
    if flat.dtype not in (torch.float32, torch.float64):
        flat = flat.to(torch.float64)
    placements = [Partial() if p.is_shard() else Replicate() for p in x.placements]

    def all_sum(values: list[float]) -> list[float]:
        local = torch.tensor(values, dtype=torch.float64, device=shard.device)
        return DTensor.from_local(local, x.device_mesh, placements,
                                  run_check=False).full_tensor().tolist()

    n = x.numel()
    s, q = all_sum(list(chunk_sums(flat)[1:]) if flat.numel() else [0.0, 0.0])
    moments = moments_from_sums(n, s, q)
    if moments is not None:
        return moments
    mean = s / n
    m2 = 0.0
    for i in range(0, flat.numel(), 1 << 22):
        part = flat[i:i + (1 << 22)].to(torch.float64)
        m2 += float((part - mean).square().sum())
    (m2,) = all_sum([m2])
    return mean, max(m2 / n, 0.0) ** 0.5 if n > 1 else 0.0


def _chunked_moments(flat: torch.Tensor) -> tuple[float, float]:
    # chunk by chunk (torch's var_mean per chunk, combined exactly by Chan et al.'s pairwise
    # update in float64): never a full-size copy
    chunk = 1 << 22
    n_tot, mean, m2 = 0, 0.0, 0.0
    for i in range(0, flat.numel(), chunk):
        part = flat[i:i + chunk]
        if part.dtype not in (torch.float32, torch.float64):
            part = part.float()
        var_t, mean_t = torch.var_mean(part, unbiased=False)
        n, m, v = part.numel(), float(mean_t), float(var_t)
        delta = m - mean
        tot = n_tot + n
        mean += delta * n / tot
        m2 += v * n + delta * delta * n_tot * n / tot
        n_tot = tot
    return mean, (m2 / n_tot) ** 0.5


@functools.lru_cache(maxsize=256)
def _defaults(factory) -> dict[str, Any]:
    # a catalog factory's signature does not change; inspect.signature cost 1/10 of apply's
    # Python time on GPT-2 (one call per record)
    return {k: p.default for k, p in inspect.signature(factory).parameters.items()}


def compact_repr(init) -> str:
    """``name(params that differ from the catalog defaults)``, e.g. ``he_normal()``."""
    from ..core.registry import _REGISTRY

    factory = _REGISTRY.get(init.name)
    if factory is None:
        return repr(init)
    defaults = _defaults(factory)
    def short(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        if isinstance(v, (list, tuple)) and all(isinstance(x, float) for x in v):
            return "[" + ", ".join(f"{x:.4g}" for x in v) + "]"   # cycle's values
        return repr(v)

    args = [f"{k}={short(v)}" for k, v in init.params.items() if defaults.get(k, object()) != v]
    return f"{init.name}({', '.join(args)})"


@dataclass
class ParamRecord:
    """One parameter: name, shape, what it received and the resulting statistics."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    module: str
    role: str
    status: str                  # initialized | loaded | kept | unmatched
    initializer: str = ""
    init: dict | str | None = None
    fans: list = field(default_factory=list)   # one (fan_in, fan_out) per block
    layout: str = ""
    blocks: list[str] = field(default_factory=list)
    rule_index: int | None = None
    rule: str = ""
    why: str = ""
    scale: float = 1.0
    stream_keys: list[str] = field(default_factory=list)
    mean: float | None = None
    std: float | None = None
    expected_mean: float | None = None
    expected_std: float | None = None
    aliases: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)
    activation: str | None = None      # from the model description ("unknown" if not found)
    residual_branch: int | None = None
    readout: bool = False
    # a width parametrization's (initlab.parametrize): init x, forward multiplier, lr x adam/sgd
    multipliers: dict[str, float] = field(default_factory=dict)
    #: the rule's initializers of named blocks (``Rule(block_init=...)``), as dicts
    block_init: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(cls, slot, a, *, loaded: bool,
              moments: tuple[float, float] | None = None) -> ParamRecord:
        """``moments``: ``(mean, std)`` of the values as the draw measured them (see
        ``modelinit.write``); without them the tensor is measured here."""
        from .describe import activation_name
        from .hooked import computed
        from .matching import expected_moments
        from .rules import initializer_to_dict

        value = slot.tensor
        if slot.originals:
            value = computed(slot.module, slot.local)
        mean, std = moments if moments is not None else _tensor_moments(value)
        rec = cls(name=slot.name, shape=tuple(slot.shape), dtype=str(slot.tensor.dtype)
                  .replace("torch.", ""), module=type(slot.module).__name__, role=slot.role,
                  status="loaded" if loaded else a.status, mean=mean, std=std,
                  aliases=tuple(slot.aliases), notes=list(slot.notes),
                  activation=activation_name(slot.activation),
                  residual_branch=slot.residual_branch, readout=slot.is_readout)
        if a is None or a.init is None:
            return rec
        rec.rule_index = a.rule_index
        rec.rule = a.rule.describe()
        rec.why = a.rule.why
        if a.status == "kept":
            rec.initializer = "keep"
            return rec
        rec.initializer = compact_repr(a.init)
        rec.init = initializer_to_dict(a.init)
        if not any(getattr(i, "needs_fans", True) for i in (a.init, *a.rule.block_init.values())):
            # the role and fans guessed for an unknown module's parameter decide nothing when
            # the initializer reads no fans (RWKV's decays, a mixer's A_log, a constant)
            rec.notes = [n for n in rec.notes if not n.startswith("module type")]
        if a.rule.block_init:
            rec.initializer += "".join(f"; {k}: {compact_repr(v)}"
                                       for k, v in a.rule.block_init.items())
            rec.block_init = {k: initializer_to_dict(v) for k, v in a.rule.block_init.items()}
        rec.fans = [list(f) if f is not None else None for f in a.fans]
        rec.layout = a.layout
        rec.blocks = [b.label for b in a.blocks] if len(a.blocks) > 1 else []
        rec.scale = a.rule.scale
        rec.stream_keys = list(a.keys)
        # expected moments: exact when every block has the same known distribution, and the
        # mixture's when a rule's block_init draws blocks from different initializers
        known = [expected_moments(dist, b.shape_in(tuple(slot.shape), len(a.blocks)))
                 for b, dist in zip(a.blocks, a.dists)]
        bm = [x for x in known if x is not None]
        if bm and len(bm) == len(known) and len(set(bm)) == 1:
            m, s = bm[0]
            rec.expected_mean, rec.expected_std = m * a.rule.scale, s * abs(a.rule.scale)
        elif bm and len(bm) == len(known) and a.rule.block_init:
            sizes = [math.prod(b.shape_in(tuple(slot.shape), len(a.blocks))) for b in a.blocks]
            n = sum(sizes) or 1
            m = sum(k * mb for k, (mb, _) in zip(sizes, bm)) / n
            var = sum(k * (sb * sb + mb * mb) for k, (mb, sb) in zip(sizes, bm)) / n - m * m
            rec.expected_mean = m * a.rule.scale
            rec.expected_std = math.sqrt(max(var, 0.0)) * abs(a.rule.scale)
        return rec

    def fans_str(self) -> str:
        if not self.fans or all(f is None for f in self.fans):
            return "-"
        uniq = {tuple(f) if f else None for f in self.fans}
        if len(uniq) == 1:
            f = self.fans[0]
            s = f"{f[0]}/{f[1]}" if f else "-"
            return s + (f" x{len(self.fans)}" if len(self.fans) > 1 else "")
        return ",".join(f"{f[0]}/{f[1]}" if f else "-" for f in self.fans)


@dataclass
class InitReport:
    """Returned by :func:`initlab.apply`: the seed, the random stream, the plan, and one
    :class:`ParamRecord` per distinct parameter (tied parameters once, with their aliases).

    ``str(report)`` is a table (name, shape, initializer, fans, std, mean, rule);
    ``report.to_dict()`` is JSON-able; ``report.save(path)`` writes it atomically.
    """

    seed: int
    rng: str
    stream_version: str
    plan: Any
    records: list[ParamRecord]
    unused_rules: list[tuple[int, str]] = field(default_factory=list)
    running_stats_reset: int = 0
    load: Any = None
    lsuv: Any = None
    description: Any = None
    parametrization: Any = None   # the Parametrization when made by initlab.parametrize

    # ------------------------------------------------------------------ queries
    def __getitem__(self, name: str) -> ParamRecord:
        for r in self.records:
            if r.name == name or name in r.aliases:
                return r
        raise KeyError(f"no parameter named {name!r} in this report; names: "
                       + ", ".join(r.name for r in self.records[:20]))

    def __iter__(self):
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)

    @property
    def unmatched(self) -> list[str]:
        return [r.name for r in self.records if r.status == "unmatched"]

    @property
    def initialized(self) -> list[str]:
        return [r.name for r in self.records if r.status == "initialized"]

    @property
    def loaded(self) -> list[str]:
        return [r.name for r in self.records if r.status == "loaded"]

    # ------------------------------------------------------------------ output
    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed, "rng": self.rng, "stream_version": self.stream_version,
            "plan": self.plan.to_dict() if self.plan is not None else None,
            "parameters": [{**asdict(r), "shape": list(r.shape), "aliases": list(r.aliases)}
                           for r in self.records],
            "unmatched": self.unmatched,
            "unused_rules": [{"index": i, "rule": d} for i, d in self.unused_rules],
            "running_stats_reset": self.running_stats_reset,
            "pretrained": self.load.to_dict() if self.load is not None else None,
            "lsuv": self.lsuv.to_dict() if self.lsuv is not None else None,
            "structure": self.structure_lines(),
            "parametrization": (self.parametrization.to_dict(init=False)
                                if self.parametrization is not None else None),
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, default=str)

    def save(self, path: str | Path) -> Path:
        from ..util.atomic import atomic_write_text

        return atomic_write_text(path, self.to_json() + "\n")

    def table(self, *, max_rows: int | None = None, why: bool = False) -> str:
        head = ["name", "shape", "initializer", "fans in/out", "std", "mean", "rule"]
        mults = any(r.multipliers for r in self.records)
        if mults:
            head += ["mult", "lr x adam", "lr x sgd"]
        if why:
            head.append("why")
        rows = []
        recs = self.records if max_rows is None else self.records[:max_rows]
        for r in recs:
            if r.status == "initialized":
                init = r.initializer + (f" *{r.scale:.3g}" if r.scale != 1.0 else "")
            else:
                init = f"({r.status})" if r.status != "kept" else "(kept)"
            name = r.name + (f" (= {', '.join(r.aliases)})" if r.aliases else "")
            rule = f"#{r.rule_index} {r.rule}" if r.rule_index is not None else "-"
            row = [name, "x".join(map(str, r.shape)) or "()", init, r.fans_str(), _fmt(r.std),
                   _fmt(r.mean), rule]
            if mults:
                m = r.multipliers
                row += [_fmt(m.get("forward")), _fmt(m.get("lr_adam")), _fmt(m.get("lr_sgd"))]
            if why:
                row.append(r.why or "")
            rows.append(row)
        widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h)
                  for i, h in enumerate(head)]
        widths = [min(w, 48) for w in widths[:-1]] + widths[-1:]   # the last column in full

        def line(cells):
            return "  ".join(c.ljust(w) if len(c) <= w else c[:w - 1] + "~"
                             for c, w in zip(cells, widths)).rstrip()

        out = [line(head), line(["-" * w for w in widths])]
        out += [line(r) for r in rows]
        if max_rows is not None and len(self.records) > max_rows:
            out.append(f"... {len(self.records) - max_rows} more")
        return "\n".join(out)

    def __str__(self) -> str:
        plan = self.plan.name if self.plan is not None and self.plan.name else "custom plan"
        n_init = len(self.initialized)
        head = (f"InitReport: {plan}, seed={self.seed}, rng={self.rng} "
                f"(stream {self.stream_version}); {n_init} initialized")
        if self.loaded:
            head += f", {len(self.loaded)} loaded"
        if self.unmatched:
            head += f", {len(self.unmatched)} unmatched (left as they were)"
        lines = [head]
        if self.plan is not None and self.plan.description:
            lines.append(f"plan: {self.plan.description}")
        lines.append(self.table(why=any(r.why for r in self.records)))
        if self.unused_rules and self.plan is not None and self.plan.warn_unused:
            lines.append("rules that matched nothing: "
                         + "; ".join(f"#{i} {d}" for i, d in self.unused_rules))
        lines += self.structure_lines()
        if self.running_stats_reset:
            lines.append(f"running statistics reset in {self.running_stats_reset} norm layer(s)")
        if self.load is not None:
            lines.append(self.load.summary())
        if self.lsuv is not None:
            lines.append(str(self.lsuv))
        return "\n".join(lines)

    def structure_lines(self) -> list[str]:
        """What the model description found: how, residual branches, readout, notes."""
        d = self.description
        if d is None:
            return []
        out = [f"model structure ({d.method}): {d.n_residual} residual branch(es), readout "
               f"{', '.join(d.readouts) or '-'}"]
        if d.residual_branches:
            closing = [b.closing for b in d.residual_branches]
            shown = ", ".join(closing[:6]) + (f", ... ({len(closing)} in all)"
                                               if len(closing) > 6 else "")
            how = "by name (names-fallback)" if d.method == "names-fallback" else \
                "by dataflow: the last layer before each residual addition"
            out.append(f"residual branches closed by {shown} (found {how})")
        unknown = [r.name for r in self.records if r.activation == "unknown"
                   and r.role == "weight"]
        if unknown:
            out.append("activation not found (unknown) after: " + ", ".join(unknown[:8])
                       + (" ..." if len(unknown) > 8 else ""))
        if self.unmatched:
            out.append("unmatched (left as they were): " + ", ".join(self.unmatched))
        others = [r for r in self.records if any(n.startswith("module type") for n in r.notes)]
        for r in others:
            note = next(n for n in r.notes if n.startswith("module type"))
            how = f"rule #{r.rule_index} {r.rule}" if r.rule_index is not None else "no rule"
            out.append(f"{r.name}: {note}; matched by {how}")
        out += [f"note: {n}" for n in d.notes]
        return out

    def _repr_pretty_(self, p, cycle):  # IPython
        p.text(str(self))

    def _repr_html_(self) -> str:  # Jupyter
        from ..report.notebook import init_report_html

        return init_report_html(self)

    def __repr__(self) -> str:
        return (f"InitReport(seed={self.seed}, rng={self.rng!r}, {len(self.records)} parameters, "
                f"{len(self.unmatched)} unmatched)")
