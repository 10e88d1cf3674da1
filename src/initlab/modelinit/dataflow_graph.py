"""The probe's graph (:mod:`~initlab.modelinit.dataflow`): its nodes, the outcomes recorded
for each layer, the residual branches found; and the residual additions (:class:`ResidualAdds`,
a mixin of the probe: which additions close a residual branch, the branch's layers and norms,
its closing layer)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Node:
    idx: int
    kind: str                      # input | op | unit | leaf
    name: str                      # op name, or the unit's module name
    parents: tuple[int, ...]
    unit_kind: str = ""            # layer | norm | embedding | activation | opaque | other
    pending: frozenset = frozenset()      # layer units whose output this is (shape ops only)
    pending_res: frozenset = frozenset()  # ... through a residual addition
    activated: tuple | None = None        # (act, gate layer names) when this is act(layer(x))
    activation_call: bool = False         # this node is the activation call itself
    #: the constant factor applied since the pending layers wrote their output (``x / cap``),
    #: None once a tensor no layer produced multiplied it (a factor the probe cannot read)
    scale: float | None = 1.0
    #: the free parameter this is (or a view of): one a looked-inside module holds directly
    param: str = ""


@dataclass
class Branch:
    index: int
    closing: str                   # module name of the closing layer
    layers: list[str]              # weighted layers on the branch, in dataflow order
    norms: list[str]               # norm modules on the branch, in dataflow order
    norms_after: list[str]         # norms after the closing layer (zero_residual targets them)
    shortcut: str                  # "identity" | "projection"
    add_op: str                    # the op that closed it
    #: every layer whose output reaches the addition (dataflow order; ``closing`` is the last):
    #: one for a Llama block, two when a MoE block adds its shared expert to its routed experts
    closers: list[str] = field(default_factory=list)

    @property
    def closing_layers(self) -> list[str]:
        """:attr:`closers`, or ``[closing]`` for a branch recorded without them."""
        return list(self.closers) or [self.closing]

    @property
    def depth(self) -> int:
        return len(self.layers)


@dataclass
class Outcome:
    kind: str                      # act | gated | linear | unknown
    act: Any = None
    gate: str | None = None
    why: str = ""


@dataclass
class Graph:
    nodes: list[Node] = field(default_factory=list)
    unit_calls: list[tuple[str, int]] = field(default_factory=list)   # (module, node) in order
    outcomes: dict[str, list[Outcome]] = field(default_factory=dict)
    branches: list[Branch] = field(default_factory=list)
    readouts: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: free weights (a product reads a free parameter as its weight): name -> ((fan_in,
    #: fan_out), how it is read, a convolution's (in/groups, out, groups) or None), from its
    #: first use
    free_layers: dict[str, tuple[tuple[int, int], str, tuple[int, int, int] | None]] = \
        field(default_factory=dict)
    #: free biases (a free parameter added to one layer's output, or F.linear's): name -> layer
    free_biases: dict[str, str] = field(default_factory=dict)
    #: free weights whose owner module's output is their call's (a user's linear layer,
    #: :class:`~initlab.modelinit.dataflow_ops.LinearLeaf`) -> whether its activation runs
    #: inside that module (then the module's output is the activation's)
    free_modules: dict[str, bool] = field(default_factory=dict)


class ResidualAdds:
    """``a + b`` as a residual addition (see :mod:`~initlab.modelinit.dataflow`'s docs)."""

    g: Graph
    mha_out: dict[str, str]

    def outcome(self, layers, oc: Outcome) -> None:
        """Record ``oc`` for each of ``layers``."""
        for layer in layers:
            self.g.outcomes.setdefault(layer, []).append(oc)

    def ancestors(self, start: int, floor: int) -> set[int]:
        seen = {start}
        todo = [start]
        nodes = self.g.nodes
        while todo:
            i = todo.pop()
            for p in nodes[i].parents:
                if p >= floor and p not in seen:
                    seen.add(p)
                    todo.append(p)
        return seen

    def add(self, fname: str, ins: list[Node]) -> dict[str, Any]:
        a, b = ins[0], ins[1]
        pend = a.pending | b.pending
        pres = a.pending_res | b.pending_res
        merged = {"pending": frozenset(), "pending_res": pend | pres}
        found = None
        anc_b = self.ancestors(b.idx, a.idx)
        if a.idx in anc_b and b.pending:
            found = (a, b, a.idx, "identity")
        else:
            anc_a = self.ancestors(a.idx, b.idx)
            if b.idx in anc_a and a.pending:
                found = (b, a, b.idx, "identity")
            else:
                common = [i for i in self.ancestors(a.idx, 0) & self.ancestors(b.idx, 0)
                          if self.g.nodes[i].parents]
                if common:
                    src = max(common)
                    sides = []
                    for side in (a, b):
                        on = self.branch_nodes(src, side.idx)
                        sides.append(sum(self.g.nodes[i].unit_kind == "layer" for i in on))
                    # a projection shortcut is one layer (ResNet's 1x1 conv, with its norm):
                    # two multi-layer paths added together (a MoE block's routed and shared
                    # experts) are one branch's output, not a branch and its shortcut
                    if sides[0] != sides[1] and min(sides) <= 1:
                        br, sk = (a, b) if sides[0] > sides[1] else (b, a)
                        if br.pending:
                            found = (sk, br, src, "projection")
        if found is None:
            return {"pending": pend, "pending_res": pres}
        _skip, branch, src, kind = found
        nodes = sorted(self.branch_nodes(src, branch.idx))
        layers = [self.g.nodes[i] for i in nodes if self.g.nodes[i].unit_kind == "layer"]
        if not layers:
            return {"pending": pend, "pending_res": pres}
        names = []
        for n in layers:
            nm = self.mha_out.get(n.name, n.name)
            if n.name in self.mha_out:
                names.append(n.name)      # in_proj's owner first, then out_proj
            if nm not in names:
                names.append(nm)
        closing = sorted(branch.pending)[-1] if len(branch.pending) > 1 else \
            next(iter(branch.pending))
        if len(branch.pending) > 1:   # several layers end the branch: the latest one
            order = {self.mha_out.get(n.name, n.name): n.idx for n in layers}
            closing = max(branch.pending, key=lambda x: order.get(x, -1))
        last_idx = max(n.idx for n in layers if self.mha_out.get(n.name, n.name) == closing) \
            if any(self.mha_out.get(n.name, n.name) == closing for n in layers) else -1
        norms = [self.g.nodes[i] for i in nodes if self.g.nodes[i].unit_kind == "norm"]
        order = {self.mha_out.get(n.name, n.name): n.idx for n in layers}
        closers = sorted((x for x in branch.pending if x in order), key=order.__getitem__)
        self.g.branches.append(Branch(
            len(self.g.branches), closing, names, [n.name for n in norms],
            [n.name for n in norms if n.idx > last_idx], kind, fname,
            closers if closing in closers else [closing]))
        self.outcome(branch.pending, Outcome("linear", why=f"closes residual branch "
                                             f"#{len(self.g.branches) - 1} (`{fname}`)"))
        return merged

    def branch_nodes(self, src: int, end: int) -> set[int]:
        """Nodes on a path from ``src`` (excluded) to ``end`` (included)."""
        anc = self.ancestors(end, src)
        nodes = self.g.nodes
        desc = {src}
        for i in sorted(anc):
            if i != src and any(p in desc for p in nodes[i].parents):
                desc.add(i)
        desc.discard(src)
        return desc & anc
