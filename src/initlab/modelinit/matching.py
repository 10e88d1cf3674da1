"""Match a plan's rules against a model's parameters and resolve every distribution.

Everything that can fail is found here, before the first write: each parameter's rule, its
initializer, its blocks' fans and distributions, dtype problems. A tied tensor is one entry,
matched once: against its primary name and module (the input embedding when it is one, see
:mod:`initlab.modelinit.params`), with a glob rule matching when any of its names does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..core.distributions import (
    Constant,
    Distribution,
    Normal,
    Orthogonal,
    TruncatedNormal,
    Uniform,
)
from ..core.initializer import Initializer
from .params import Block, ParamInfo, weight_shape
from .rules import KEEP, Plan, Rule


def expected_moments(dist: Distribution, shape: tuple[int, ...]) -> tuple[float, float] | None:
    """(mean, std) over the elements of a tensor drawn from ``dist``, when known exactly."""
    moments = getattr(dist, "moments", None)
    if callable(moments):
        try:
            return moments(tuple(shape))
        except TypeError:
            pass
    if isinstance(dist, Constant):   # pragma: no cover - older core without Distribution.moments
        return dist.value, 0.0
    if isinstance(dist, (Normal, Uniform)):   # pragma: no cover
        return dist.mean, dist.std
    if isinstance(dist, TruncatedNormal):   # pragma: no cover
        return dist.moments()
    n = math.prod(shape)
    if isinstance(dist, Orthogonal) and n and len(shape) >= 2:   # pragma: no cover
        return 0.0, dist.gain * math.sqrt(min(shape[0], n // shape[0]) / n)
    return None


@dataclass
class Assignment:
    slot: ParamInfo
    rule_index: int | None
    rule: Rule | None
    init: Initializer | str | None
    layout: str = "torch"
    blocks: list[Block] = field(default_factory=list)
    fans: list[tuple[int, int] | None] = field(default_factory=list)
    dists: list[Distribution] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    #: each block's initializer: the rule's, or its ``block_init`` entry for the block's label
    inits: list[Initializer] = field(default_factory=list)
    status: str = "unmatched"

    @property
    def param(self) -> ParamInfo:
        return self.slot


def _fans_of(shape: tuple[int, ...], layout: str) -> tuple[int, int] | None:
    from ..core import fans as core_fans

    if len(shape) < 2 or 0 in shape:
        return None
    return core_fans(shape, layout)


def match(plan: Plan, params: list[ParamInfo]) -> tuple[list[Assignment], list[str]]:
    """Assign each parameter its rule and resolve every block's distribution. Returns the
    assignments and the list of problems (empty when everything can be initialized)."""
    problems: list[str] = []
    out: list[Assignment] = []
    type_ok: dict[tuple[int, type], bool] = {}   # (rule, module class) -> matches_type
    for p in params:
        a = Assignment(p, None, None, None)
        cls = type(p.module)
        for i, candidate in enumerate(plan.rules):
            ok = type_ok.get((i, cls))
            if ok is None:
                ok = type_ok[(i, cls)] = candidate.matches_type(p.module)
            if not ok:
                continue
            selected = candidate.select(p.names, p.module, p.local, type_ok=True)
            if selected is not None:
                a.rule_index, a.rule, a.init = i, candidate, selected
                break
        out.append(a)
        rule, spec = a.rule, a.init
        if rule is None or spec is None:
            continue
        if spec == KEEP:
            a.status = "kept"
            continue
        assert isinstance(spec, Initializer), "to_initializer gives an Initializer or KEEP"
        if math.prod(p.shape) == 0:
            a.status = "empty"   # zero elements: nothing to draw
            continue
        a.status = "initialized"
        a.layout = rule.layout or p.layout
        if rule.blocks or len(p.blocks) == 1:
            a.blocks = p.blocks
        else:
            fan_shape = p.shape if p.fan_role == "weight" else (
                weight_shape(p.module, p.local.replace("bias", "weight")) or p.shape)
            a.blocks = [Block(0, p.shape[0] if p.shape else 0, fan_shape)]
        if not p.tensor.is_floating_point():
            problems.append(f"`{p.name}` has dtype {p.tensor.dtype}; initializers fill "
                            "floating-point tensors only (rule "
                            f"#{a.rule_index} {rule.describe()}).")
            continue
        by_block = rule.block_init
        labels = [b.label for b in a.blocks]
        missing = [k for k in by_block if k not in labels]
        if missing:
            problems.append(f"`{p.name}` (rule #{a.rule_index} {rule.describe()}): "
                            f"block_init names block(s) {missing}, but its blocks are "
                            f"{[x for x in labels if x] or 'none (not a packed tensor)'}; name "
                            "those, or narrow the rule to the tensors that have them.")
            continue
        a.inits = [by_block.get(b.label, spec) for b in a.blocks]
        for b, init in zip(a.blocks, a.inits):
            bshape = b.shape_in(p.shape, len(a.blocks))
            fans = _fans_of(b.fan_shape, a.layout)
            try:
                dist = init.resolve(bshape, fans=fans, layout=a.layout, role=p.fan_role)
            except (ValueError, TypeError) as exc:
                problems.append(f"`{p.name}` (shape {tuple(p.shape)}, rule #{a.rule_index} "
                                f"{rule.describe()}, initializer {init!r}): {exc}")
                break
            a.fans.append(fans)
            a.dists.append(dist)
            a.keys.append(p.name + (f"/{b.label or f'block{b.start}'}" if len(a.blocks) > 1
                                    else ""))
    return out, problems
