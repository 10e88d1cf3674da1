"""The one description of a model that ``apply``, ``materialize``, the plans, ``auto``, ``lsuv``,
the reports and the doctor share.

``describe(model, batch=None)`` returns a :class:`ModelDescription`: every distinct parameter
(:class:`~initlab.modelinit.params.ParamInfo`: names and aliases, module, role, layout, fans,
blocks) with what the model's dataflow says about it (the activation after its layer, gated units,
readout, the residual branch it closes), the layers in dataflow order with their producers and
consumers, and the residual branches with their closing layers.

How the dataflow is found (``method``):

1. ``"probe"``: one forward on a meta copy (:mod:`initlab.modelinit.dataflow`), with ``batch`` if
   given (moved to meta), else an input built from the model: Hugging Face models from their
   config (``input_ids`` of length 8 in ``[0, vocab_size)``, ``decoder_input_ids`` for
   encoder-decoders, ``pixel_values`` of ``config.image_size``, both for a two-tower model such
   as CLIP, ``input_values`` of 16000 samples for raw audio, Whisper's ``input_features``),
   other models from their first
   layer (``Linear(in)``: ``(2, in)``; ``Conv2d(c)``: ``(2, c, s, s)`` for a few sizes s;
   ``Embedding``: token ids; RNNs and Transformer layers: ``(2, 5, d)``).
2. ``"probe-real"``: when the model cannot run on meta, the same probe on the model itself
   (under ``no_grad``, with ``batch``), if a batch was given and the model is not on meta.
3. ``"names-fallback"``: when no forward runs, the **documented fallback**: layers in registration
   order, the activation module registered next to a layer (``lookup_module``), and the residual
   closers by the per-architecture name list :data:`RESIDUAL_NAMES` (GPT-2 ``c_proj``, Llama
   ``o_proj``/``down_proj``, BERT ``attention.output.dense``/``output.dense``, torch's
   ``self_attn.out_proj``/``linear2``) and the ``downsample``/``shortcut`` block convention. The
   description's ``notes`` say so, and every report built on it repeats the note.

A description is built once per ``apply``/``materialize``/``auto``/``lsuv`` call: while one is
active (:func:`active`), ``describe`` of the same model returns it. The dataflow part (layers,
activations, branches, readout) is also kept, by module name and holding no module, under the
model's *structure key* (:func:`initlab.modelinit.fingerprint.structure_key`: classes, names,
shared modules, parameter and buffer shapes, dtypes and ties, every module's attributes such as
a Hugging Face config), so every instance of an architecture probes once per process (the last
:data:`MAX_STRUCTURES` structures are kept), ``materialize`` then ``apply`` probes once, and a
model changed since (a module replaced, a tie broken, a config field or ``layer.activation``
changed) has another key and is probed again. A model the key cannot capture (hooks, closures;
see :mod:`~initlab.modelinit.fingerprint`) is kept per model object (weakly) while the same
module objects hold parameters of the same shapes. A probe with a user ``batch`` is never
reused; ``refresh=True`` forces a new probe (e.g. after changing the model's class or a global
setting its forward reads).
"""

from __future__ import annotations

import contextlib
import fnmatch
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field, fields, replace
from typing import Any

import torch.nn as nn

from ..core.activations import lookup_module
from ..util.hashing import canonical_param_name
from .adapters import lora_part
from .dataflow import base_name
from .dataflow_graph import Branch, Graph
from .experts import expert_activation, expert_part
from .fingerprint import structure_key
from .free import attach_free_biases, fill_free
from .params import LAYER_KINDS, ParamInfo, collect_params, module_kind
from .probing import dataflow_of
from .ssm import place_mixer_layers

#: names-fallback only: glob patterns of module names that close a residual branch
RESIDUAL_NAMES = ("*attn.c_proj", "*mlp.c_proj", "*self_attn.o_proj", "*mlp.down_proj",
                  "*attention.output.dense", "*layer.*.output.dense", "*self_attn.out_proj",
                  "*linear2")


@dataclass
class LayerInfo:
    """A layer (a module whose weight has fans) in dataflow order."""

    name: str
    module: nn.Module
    kind: str
    inputs: list[str] = field(default_factory=list)    # layers feeding it (nearest)
    outputs: list[str] = field(default_factory=list)   # layers it feeds (nearest)
    activation: Any = "unknown"
    activation_why: str = ""
    gated_by: str | None = None
    is_readout: bool = False
    residual_branch: int | None = None
    calls: int = 0
    #: what stands between its nearest input layers and it in the probe forward: op names, or
    #: ``"activation"`` (an activation call or module), a unit's kind (``"norm"``, ...),
    #: ``"input"`` (the model's input), ``"N activations"`` when more than one activation call
    #: stands there; empty for a names-fallback description
    via: frozenset = frozenset()
    #: a *free weight* (kind ``"free"``: a parameter that a product reads as a layer's weight,
    #: outside any layer module; ``name`` is the parameter's, ``module`` its owner): its
    #: (fan_in, fan_out) from that use, and how it is read (``"einsum 'ibh,hnd->ibnd'"``)
    fans: tuple[int, int] | None = None
    use: str = ""
    #: free biases: parameters (not the layer's own ``bias``) added to its output
    biases: tuple[str, ...] = ()
    #: a free weight whose owner ``module``'s output is its output (a user's linear layer, whose
    #: forward is the product with it): hooks on the module see the layer; with
    #: ``activation_inside`` the module applies the activation too (a Keras-style ``Dense``), so
    #: its output is the activation's
    module_output: bool = False
    activation_inside: bool = False
    #: a convolution's channels, (in_channels / groups, out_channels, groups): an nn.Conv*'s
    #: (not a transposed one), or a free kernel's from its ``F.convNd`` use (a user's conv
    #: layer); its units are its output channels (axis 1 of its output). None for other layers
    conv: tuple[int, int, int] | None = None
    #: a LoRA adapter's part (``lora_A``/``lora_B``): the base layer it is added to. The probe
    #: runs the wrapper as its base layer, so a part is not a layer of its own on the signal's
    #: path: it does not count towards :meth:`ModelDescription.plain_depth`
    adapter_of: str | None = None

    @property
    def activation_name(self) -> str | None:
        return activation_name(self.activation)

    @property
    def transposed_conv(self) -> bool:
        """A transposed convolution (an nn.ConvTranspose*, or a free kernel ``F.conv_transpose2d``
        reads): its kernel is (in, out/groups, *k), its units on dimension 1."""
        return self.kind == "conv_transpose" or self.use.startswith("F.conv_transpose")

    @property
    def channel_units(self) -> bool:
        """Whether the layer's units are its output's channels (axis 1): a convolution."""
        return self.conv is not None or self.transposed_conv

    @property
    def module_name(self) -> str | None:
        """The name of the module whose output is this layer's output (what a forward hook on
        it sees): the layer's own, a user's linear layer's for its free weight, None for a
        free weight read inside a larger module (XLNet's ``q``)."""
        if self.kind != "free":
            return self.name
        return self.name.rpartition(".")[0] if self.module_output else None


#: Layer kinds that count towards a net's depth (:meth:`ModelDescription.plain_depth`):
#: embeddings, norms, attention and recurrent modules do not; free weights (``"free"``) do.
DEPTH_KINDS = ("linear", "conv", "conv_transpose", "hf_conv1d", "free")


@dataclass
class ModelDescription:
    """See the module docs. ``params`` in registration order, ``layers`` in dataflow order."""

    params: list[ParamInfo]
    layers: list[LayerInfo]
    residual_branches: list[Branch]
    method: str
    notes: list[str] = field(default_factory=list)
    readouts: list[str] = field(default_factory=list)
    model_type: str = ""

    def param(self, name: str) -> ParamInfo:
        """The parameter named ``name``: canonical, or as the model names it (a wrapped
        model's ``module.0.weight``)."""
        canon = canonical_param_name(name)
        for p in self.params:
            if name in p.names or canon in p.names:
                return p
        raise KeyError(name)

    def layer(self, name: str) -> LayerInfo:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    @property
    def n_residual(self) -> int:
        return len(self.residual_branches)

    def branch_layers(self) -> set[str]:
        """Names of the layers inside a residual branch (closing layers included)."""
        return {n for b in self.residual_branches for n in b.layers}

    def plain_depth(self) -> int:
        """The net's depth as ``auto`` and the doctor's advice read it: calls of weighted layers
        (:data:`DEPTH_KINDS`) on the main path, i.e. not inside a residual branch.

        A layer counts once per call in the probe forward (``LayerInfo.calls``), so a weight-shared
        block applied 30 times (one ``nn.Linear`` in a loop) is 30 layers deep, as the signal sees
        it. Limits: calls are counted, not the longest chain of them, so a layer applied side by
        side to two inputs (a siamese pair) counts twice; a layer that did not run in the probe,
        and every layer of a ``names-fallback`` description (structural: it cannot see reuse),
        counts once."""
        return sum(max(layer.calls, 1) for layer in self.depth_layers())

    def depth_layers(self) -> list[LayerInfo]:
        """The layers :meth:`plain_depth` counts: weighted (:data:`DEPTH_KINDS`) and on the main
        path (not inside a residual branch), a LoRA adapter's parts left out (its base layer
        counts)."""
        inside = self.branch_layers()
        return [layer for layer in self.layers if layer.kind in DEPTH_KINDS
                and layer.name not in inside and layer.adapter_of is None]

    def tied_embeddings(self) -> list[ParamInfo]:
        """Embedding tensors that are also the readout's weight."""
        return [p for p in self.params if p.role == "embedding" and p.is_readout]

    def summary(self) -> str:
        lines = [f"ModelDescription of {self.model_type} ({self.method}): {len(self.params)} "
                 f"tensors, {len(self.layers)} layers, {self.n_residual} residual branches, "
                 f"readout {', '.join(self.readouts) or '-'}, plain depth {self.plain_depth()}"]
        for layer in self.layers:
            extra = f"  runs {layer.calls} times in forward" if layer.calls > 1 else ""
            if layer.residual_branch is not None:
                extra += f"  closes residual #{layer.residual_branch}"
            if layer.is_readout:
                extra += "  readout"
            lines.append(f"  {layer.name}: {layer.kind}, activation "
                         f"{layer.activation_name or 'none'} ({layer.activation_why}){extra}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def activation_name(act: Any) -> str | None:
    """``"relu"`` / ``None`` (linear) / ``"unknown"`` from a description's activation entry."""
    if act is None or act == "unknown":
        return act
    a = act[0] if isinstance(act, tuple) else act
    return getattr(a, "name", str(a))


# ----------------------------------------------------------------------------- active description

_ACTIVE: list[tuple[nn.Module, Any, ModelDescription]] = []


@contextlib.contextmanager
def active(model: nn.Module, desc: ModelDescription, batch: Any = None):
    """While active, :func:`describe` of ``model`` (with the same batch) returns ``desc``."""
    _ACTIVE.append((model, batch, desc))
    try:
        yield desc
    finally:
        _ACTIVE.pop()


# ----------------------------------------------------------------------------- inputs


# ----------------------------------------------------------------------------- describe


#: dataflow found by a probe, by structure key (:mod:`~initlab.modelinit.fingerprint`): every
#: instance of an architecture reuses it; least recently used first, at most this many
MAX_STRUCTURES = 16
_BY_STRUCTURE: OrderedDict[tuple, _Dataflow] = OrderedDict()
#: models the structure key cannot capture (hooks, closures...): per model object, weakly
_BY_OBJECT: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class _Dataflow:
    """The probe's part of a description, holding no module (layers by name)."""

    layers: tuple[dict[str, Any], ...]  # each layer's fields but its module (_layer_fields)
    branches: tuple[Branch, ...]
    readouts: tuple[str, ...]
    method: str
    notes: tuple[str, ...]

    @classmethod
    def of(cls, desc: ModelDescription) -> _Dataflow:
        return cls(tuple(_layer_fields(x) for x in desc.layers),
                   tuple(_copy_branch(b) for b in desc.residual_branches), tuple(desc.readouts),
                   desc.method, tuple(desc.notes))

    def describe(self, model: nn.Module, params: list[ParamInfo]) -> ModelDescription | None:
        """A description of ``model`` (of this structure) from the kept dataflow, or None when a
        layer is not where it was."""
        mods = _layer_modules(model, [x["name"] for x in self.layers if x["kind"] == "free"])
        if any(x["name"] not in mods for x in self.layers):
            return None
        return ModelDescription(params, [_layer_on(x, mods[x["name"]]) for x in self.layers],
                                [_copy_branch(b) for b in self.branches], self.method,
                                list(self.notes), list(self.readouts), type(model).__name__)


def _layer_fields(layer: LayerInfo) -> dict[str, Any]:
    """What the dataflow keeps of a layer: its fields but the module (lists copied)."""
    out = {f.name: getattr(layer, f.name) for f in fields(layer) if f.name != "module"}
    return {**out, "inputs": list(layer.inputs), "outputs": list(layer.outputs)}


def _layer_on(kept: dict[str, Any], module: nn.Module) -> LayerInfo:
    """The layer of ``kept`` (:func:`_layer_fields`) on ``module``, a model's own."""
    return LayerInfo(**{**kept, "module": module, "inputs": list(kept["inputs"]),
                        "outputs": list(kept["outputs"])})


def _copy_branch(b: Branch) -> Branch:
    return replace(b, layers=list(b.layers), norms=list(b.norms), norms_after=list(b.norms_after))


def _signature(model: nn.Module) -> tuple:
    return (tuple((n, id(m), type(m)) for n, m in model.named_modules(remove_duplicate=False)),
            tuple((n, tuple(p.shape)) for n, p in model.named_parameters(remove_duplicate=False)))


def _clear_cache() -> None:
    """Forget every kept dataflow (the next ``describe`` of any model probes)."""
    _BY_STRUCTURE.clear()
    _BY_OBJECT.clear()


def describe(model: nn.Module, batch: Any = None, *, config_input: bool = True,
             refresh: bool = False) -> ModelDescription:
    """The :class:`ModelDescription` of ``model`` (see the module docs). ``batch``: an example
    input (a tensor, a tuple of positional inputs or a dict of keyword inputs); without one the
    input is built from the model when ``config_input``. ``refresh=True`` probes again (and
    replaces what was kept for this structure)."""
    for m, b, d in reversed(_ACTIVE):
        if m is model and (batch is None or b is batch):
            return d
    params = collect_params(model)
    keep = batch is None and config_input
    skey = structure_key(model) if keep else None
    osig = _signature(model) if keep and skey is None else None
    desc = None
    if keep and not refresh:
        if skey is not None:
            flow = _BY_STRUCTURE.get(skey)
            if flow is not None:
                _BY_STRUCTURE.move_to_end(skey)
        else:
            kept = _BY_OBJECT.get(model)
            flow = kept[1] if kept is not None and kept[0] == osig else None
        desc = flow.describe(model, params) if flow is not None else None
    if desc is None:
        graph, method, notes = dataflow_of(model, batch, config_input)
        desc = ModelDescription(params, [], [], method, notes, model_type=type(model).__name__)
        if graph is not None:
            _from_graph(model, desc, graph)
        else:
            _from_names(model, desc)
        place_mixer_layers(model, desc)
        if skey is not None:
            _BY_STRUCTURE[skey] = _Dataflow.of(desc)
            _BY_STRUCTURE.move_to_end(skey)
            while len(_BY_STRUCTURE) > MAX_STRUCTURES:
                _BY_STRUCTURE.popitem(last=False)
        elif osig is not None:
            try:
                _BY_OBJECT[model] = (osig, _Dataflow.of(desc))
            except TypeError:  # pragma: no cover - a model that cannot be weakly referenced
                pass
    _fill_params(desc)
    return desc


def _layer_modules(model: nn.Module, free: Any = ()) -> dict[str, nn.Module]:
    """Layer modules by name, and the owner of each free weight in ``free`` (parameter names)
    that ``model`` has."""
    out = {n: m for n, m in model.named_modules() if module_kind(m) in LAYER_KINDS}
    names = dict(model.named_parameters(remove_duplicate=False)) if free else {}
    for name in free:
        if name in names:
            out[name] = model.get_submodule(name.rpartition(".")[0])
    return out


def _resolve(outcomes) -> tuple[Any, str, str | None]:
    if not outcomes:
        return "unknown", "its output was not seen in the probe forward", None
    for oc in outcomes:
        if oc.kind == "act":
            return oc.act, f"{oc.act[0].name} follows ({oc.why})", None
    for oc in outcomes:
        if oc.kind == "gated":
            return oc.act, f"{oc.act[0].name} gated unit: {oc.why}", oc.gate
    for oc in outcomes:
        if oc.kind == "unknown":
            return "unknown", oc.why, None
    return None, f"no activation follows: {outcomes[0].why}", None


def _new_layer(name: str, module: nn.Module, calls: int = 0) -> LayerInfo:
    """The layer ``module`` by its type (an nn.Conv*'s channels in ``conv``)."""
    info = LayerInfo(name, module, module_kind(module), calls=calls)
    if info.kind == "conv":
        c_in, c_out, groups = (int(getattr(module, a)) for a in ("in_channels", "out_channels",
                                                                 "groups"))
        info.conv = (c_in // groups, c_out, groups)
    return info


def _from_graph(model: nn.Module, desc: ModelDescription, g: Graph) -> None:
    mods = _layer_modules(model, g.free_layers)
    order: list[str] = []
    calls: dict[str, int] = {}
    mha = {n for n, m in mods.items() if isinstance(m, nn.MultiheadAttention)}
    nodes_of: dict[str, list[int]] = {}
    for name, idx in g.unit_calls:
        if name not in mods:
            continue
        names = [name, f"{name}.out_proj" if name else "out_proj"] if name in mha else [name]
        for nm in names:
            if nm not in calls:
                order.append(nm)
            calls[nm] = calls.get(nm, 0) + 1
            nodes_of.setdefault(nm, []).append(idx)
    for n in mods:
        if n not in calls:
            order.append(n)
    upstream = _upstream(g)
    for name in order:
        m = mods.get(name)
        if m is None:
            continue
        info = _new_layer(name, m, calls.get(name, 0))
        if name in g.free_layers:
            info.kind = "free"
            info.fans, info.use, info.conv = g.free_layers[name]
            info.module_output = name in g.free_modules
            info.activation_inside = g.free_modules.get(name, False)
        if name in mha:
            info.activation, info.activation_why = None, "q/k/v projections inside attention"
        elif info.calls == 0 and (lora := lora_part(model, name)) is not None:
            # inside a LoRA wrapper (one unit of the probe): A feeds B, B is added to the base
            # layer's output, so it is followed by what follows the base layer
            base = next((x for x in desc.layers if x.name == lora[1]), None)
            info.adapter_of = lora[1]
            info.activation, info.activation_why = (None, "LoRA A: feeds its B (linear)") \
                if lora[0] == "A" or base is None else \
                (base.activation, f"LoRA B: added to `{lora[1]}`'s output; "
                 f"{base.activation_why}")
        elif info.calls == 0:
            info.activation, info.activation_why = "unknown", "did not run in the probe forward"
        else:
            info.activation, info.activation_why, info.gated_by = _resolve(g.outcomes.get(name))
        if info.kind == "rnn":
            info.activation, info.activation_why = "unknown", \
                "recurrent cell: gates' sigmoid/tanh inside the module (not probed)"
        info.is_readout = name in g.readouts
        ins: set[str] = set()
        via: set[str] = set()
        for idx in nodes_of.get(name, []):
            up_names, up_labels = upstream.get(idx, (set(), frozenset()))
            ins |= up_names
            via |= up_labels
        info.inputs = sorted(ins - {name}, key=order.index)
        info.via = frozenset(via)
        desc.layers.append(info)
    by_name = {layer.name: layer for layer in desc.layers}
    attach_free_biases(desc.params, g.free_biases, by_name)
    for layer in desc.layers:
        for i in layer.inputs:
            if i in by_name and layer.name not in by_name[i].outputs:
                by_name[i].outputs.append(layer.name)
    desc.residual_branches = list(g.branches)
    for b in g.branches:
        for c in b.closing_layers:
            if c in by_name and by_name[c].residual_branch is None:
                by_name[c].residual_branch = b.index
    desc.readouts = list(g.readouts)


def _label(node) -> str:
    """What a node between two layers is (``LayerInfo.via``)."""
    if node.activation_call:
        return "activation"
    if node.kind == "op":
        return base_name(node.name)
    return node.unit_kind if node.kind == "unit" else node.kind


def _upstream(g: Graph) -> dict[int, tuple[set[str], frozenset]]:
    """For each layer unit node: the nearest layer units upstream (their names), and the labels
    (:func:`_label`) of the nodes between them and it, from one walk up the graph that stops
    at layer units."""
    nodes = g.nodes
    out: dict[int, tuple[set[str], frozenset]] = {}
    for _name, idx in g.unit_calls:
        if nodes[idx].unit_kind != "layer":
            continue
        seen, stack, names, labels, acts = {idx}, [idx], set(), set(), 0
        while stack:
            for p in nodes[stack.pop()].parents:
                if p in seen:
                    continue
                seen.add(p)
                if nodes[p].kind == "unit" and nodes[p].unit_kind == "layer":
                    names.add(nodes[p].name)
                else:
                    labels.add(_label(nodes[p]))
                    acts += nodes[p].activation_call
                    stack.append(p)
        if acts > 1:  # f(g(u)): not one activation of the layer's output (a label set hides it)
            labels.add(f"{acts} activations")
        out[idx] = (names, frozenset(labels))
    return out


def _from_names(model: nn.Module, desc: ModelDescription) -> None:
    leaves = [(n, m) for n, m in model.named_modules()
              if n and (module_kind(m) in LAYER_KINDS or not any(True for _ in m.children()))]
    layer_names = [n for n, m in leaves if module_kind(m) in LAYER_KINDS]
    for i, (n, m) in enumerate(leaves):
        if module_kind(m) not in LAYER_KINDS:
            continue
        info = _new_layer(n, m)
        info.activation, info.activation_why = "unknown", "names-fallback: nothing found after it"
        for n2, m2 in leaves[i + 1:]:
            act = lookup_module(m2)
            if act is not None:
                info.activation = act
                info.activation_why = f"{act[0].name} follows (names-fallback: `{n2}` is the " \
                    "next registered module)"
                break
            if module_kind(m2) in LAYER_KINDS:
                break
        desc.layers.append(info)
    if layer_names:
        last = desc.layers[-1]
        last.is_readout = True
        last.activation, last.activation_why = None, "names-fallback: last registered layer " \
            "taken as the readout"
        desc.readouts = [last.name]
    k = 0
    for layer in desc.layers:
        if any(fnmatch.fnmatchcase(layer.name, p) for p in RESIDUAL_NAMES):
            layer.residual_branch = k
            desc.residual_branches.append(Branch(k, layer.name, [layer.name], [], [],
                                                 "identity", "names-fallback"))
            if layer.activation == "unknown":
                layer.activation, layer.activation_why = None, "names-fallback: closes a " \
                    "residual branch"
            k += 1


def _fill_params(desc: ModelDescription) -> None:
    by_name = {layer.name: layer for layer in desc.layers}
    for p in desc.params:
        for mname, _m, _local in p.uses:
            layer = by_name.get(mname)
            if layer is None:
                continue
            if layer.is_readout:
                p.is_readout = True
            if p.role in ("weight", "bias") and mname == p.module_name:
                p.activation, p.activation_why = layer.activation, layer.activation_why
                p.gated_by = layer.gated_by
                p.residual_branch = layer.residual_branch
                if p.kind == "experts" and expert_part(p.local) == "in":
                    # inside the bank: its own activation, not what follows the bank
                    p.activation, p.activation_why = expert_activation(layer.module)
                    p.gated_by, p.residual_branch = None, None
                    p.is_readout = False
        if p.role not in ("weight", "bias") or p.kind not in LAYER_KINDS:
            if p.module_name not in by_name:
                p.activation, p.activation_why = None, f"{p.role}: no activation applies"
    fill_free(desc, by_name)

