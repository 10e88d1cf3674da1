"""The probe: one forward pass that records a model's dataflow.

The model is copied onto the meta device (:func:`~initlab.modelinit.probe_meta.meta_copy`: what
``copy.deepcopy`` gives with every parameter and buffer replaced by a meta tensor of its shape:
the module tree is copied, no data, ties kept; a model already on meta is copied the same way)
and run once on a meta input under a :class:`torch.overrides.TorchFunctionMode`, so the probe
allocates nothing of the model's size. Units return shape-only outputs, and a few torch
functions whose meta kernels are slow get their outputs from shapes
(:data:`~initlab.modelinit.probe_meta.META_RESULTS`).
The mode sees every torch function and Tensor method outside the model's *units*; forward hooks
mark the units:

* layers and other modules that own parameters directly and have no child holding parameters
  (``Linear``, ``Conv*``, HF ``Conv1D``, ``Embedding``, norms of any class, ``LSTM``/``GRU``);
  ``nn.MultiheadAttention`` is one unit whose output is its ``out_proj``'s;
* activation modules (whatever :func:`initlab.core.activations.lookup_module` recognizes,
  transformers' classes included);
* a ``linear``, ``conv*`` or ``matmul`` outside any unit that reads a layer's weight (or a view
  of it) is a call of that layer (a Mamba scan's ``F.conv1d(x, weight=conv1d.weight)``);
* a *free weight*: an ``einsum``, ``matmul``/``@`` or ``linear`` that reads, as its one weight,
  a parameter held directly by a module the probe looks inside (or a view of one: ``.t()``,
  ``.view``), with data as the other operand, is a call of a layer named by that parameter,
  with the fans of that use (:func:`~initlab.modelinit.dataflow_ops.product_weight`; XLNet's
  ``einsum("ibh,hnd->ibnd", h, self.q)``); such a parameter added to one layer's own output,
  shaped as a bias over its last dimensions, is that layer's *free bias* (XLNet's
  ``q_head + r_w_bias``, GPT-NeoX-Japanese's ``dense_bias``), and so is ``F.linear``'s bias;
* ``new_empty``/``zeros_like`` and the like read no values; ``dst.copy_(src)`` and
  ``dst[i] = src`` make the destination (and the tensor it views) carry ``src``'s dataflow
  (Kimi Linear's multi-head latent attention assembles its keys so);
* norms without parameters (OLMo's, NanoChat's RMSNorm, ``elementwise_affine=False``): passed
  through as norms;
* leaf modules of an unknown class that own no parameters (a custom activation): *opaque*, a layer
  feeding one gets activation "unknown", with a note, unless every function the module calls is
  a shape-only op (LeViT's ``LevitSubsample``, a view and a strided slice): passed through;
  an input it never passes to a function (a rotary embedding reading its input's dtype and
  device) is not consumed by it. A leaf of an unknown class whose own
  parameters are scalars or vectors (a layer scale ``x * gamma``) is looked inside, and so is a
  stochastic-depth module (:data:`STOCHASTIC_DEPTH`).

The forward runs under :func:`~initlab.modelinit.stochastic.stochastic_off` (no dropout, drop path or LayerDrop: a layer that a
random draw skipped would be missing from the description; the global random state is kept).

From the recorded graph:

* **activation after a layer**: its output is followed through shape-only ops (view, reshape,
  transpose, split, getitem, dropout, casts; selections and permutations: gather, index_select,
  roll, flip, ViT-MAE's random masking; Llama 4's complex view of q and k), clamps that cannot
  bind at init (:func:`~initlab.modelinit.dataflow_ops.is_free_clamp`: GPT-OSS's at +-7),
  scaling by constants or by tensors that no layer
  produced (rotary embeddings, a learned scalar), norms, pooling (a max or min over one
  tensor's dimension too), resampling (interpolate, pixel shuffle), sums and means (Llama 4's sum
  over its experts) and residual additions; the first
  other consumer decides. An activation call (:func:`~initlab.core.activations.lookup_function`)
  or module gives that activation, and an elementwise function of its output may make it
  another (:data:`~initlab.core.activations.COMPOSITES`: ``relu(z)^2``; ``z * sigmoid(z)`` is
  silu, ``z * sigmoid(1.702 z)`` quick_gelu); an elementwise product with another layer's activated output
  is a **gated unit** (Llama's ``act(gate_proj(x)) * up_proj(x)``: up_proj gets the gate's
  activation and ``gated_by``; the product is still up_proj's output, so a residual addition it
  reaches is closed by up_proj: Qwen2-MoE's ``sigmoid(shared_expert_gate(x)) * shared_expert(x)``); a layer, attention, matmul, concatenation, softmax or the model's
  output gives "no activation" (a linear map: None); anything else, an opaque module, or a layer
  whose output is never seen gives "unknown".
* **readout**: the layers whose output reaches the model's first output tensor (the logits of a
  Hugging Face model) through shape-only ops.
* **residual branches**: every addition ``a + b`` where ``a`` is an ancestor of ``b`` (identity
  shortcut) or both descend from one tensor, ``a`` through at most one layer and ``b`` through
  more (projection shortcut: ResNet's 1x1 conv; two multi-layer paths added, a MoE block's
  routed and shared experts, are one branch's output), and ``b`` comes from a layer through shape-only ops and norms. The branch is every
  node between the shortcut's source and ``b``; its *closing* layer is the last layer on it
  (GPT-2's ``c_proj``, Llama's ``o_proj``/``down_proj``, BERT's ``output.dense``, torch's
  ``out_proj``/``linear2``), whatever it is called.

Data-dependent Python control flow on meta tensors (``if mask.all():``) cannot be evaluated: the
probe answers ``True`` for ``all()``, else ``False`` / ``0``, and records a note (the graph's structure does not depend on it in
the models tested). A model that cannot run on meta at all falls back (see
:mod:`initlab.modelinit.describe`).
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
import torch.nn as nn
from torch.overrides import TorchFunctionMode

from ..core.activations import composite, lookup_function, lookup_module
from .adapters import lora_base
from .dataflow_graph import Graph, Node, Outcome, ResidualAdds
from .dataflow_ops import (
    ADD_OPS,
    DATA_DEPENDENT,
    DIRECT,
    FREE_PRODUCTS,
    IGNORED,
    LIKE,
    LINEAR_OPS,
    MUL_OPS,
    PARAM_VIEWS,
    POOL_REDUCTIONS,
    SHAPE_OPS,
    WRITES,
    LinearLeaf,
    Product,
    base_name,
    elementwise_call,
    inherited_scale,
    is_free_clamp,
    is_soft_cap,
    product_weight,
    scaled_by,
)
from .probe_meta import META_RESULTS, global_hooks_suspended, meta_copy, shape_only
from .stochastic import stochastic_off
from .units import tensors_in, unit_kind_of


class _Probe(ResidualAdds, TorchFunctionMode):
    def __init__(self, graph: Graph, units: dict[nn.Module, tuple[str, str]], mha_out: dict,
                 params: dict[int, str] | None = None):
        super().__init__()
        self.g = graph
        self.units = units
        self.mha_out = mha_out
        self.params = params or {}      # id -> name of each free parameter
        self.node_of: dict[int, int] = {}
        self.keep: list[torch.Tensor] = []     # keep ids unique while the probe runs
        self.depth = 0
        self.stack: list[tuple[int, ...]] = []
        self.data_dependent: set[str] = set()
        # the functions an opaque module calls (None outside one): only shape ops, and it is
        # a reshaping, passed through (LeViT's `LevitSubsample`: a view and a strided slice)
        self.opaque_fns: set[str] | None = None
        # an opaque module's input tensors (id -> node) and the nodes of those it reads
        self.inner_in: dict[int, int] = {}
        self.inner_read: set[int] = set()
        # the calls of a parameter-owning leaf of an unknown class (None outside one): a linear
        # layer in disguise (a user's `MyLinear`, `x @ self.weight + self.bias`) is a free weight
        self.leaf: LinearLeaf | None = None
        # each layer unit's weight: a product reading it outside the layer is the layer's call
        self.weights = {id(m.weight): name for m, (name, kind) in units.items()
                        if kind == "layer" and isinstance(getattr(m, "weight", None),
                                                          torch.Tensor)}

    # ------------------------------------------------------------------ nodes
    def new_node(self, kind, name, parents, **kw) -> Node:
        n = Node(len(self.g.nodes), kind, name, tuple(parents), **kw)
        self.g.nodes.append(n)
        return n

    def node(self, t: torch.Tensor) -> Node:
        i = self.node_of.get(id(t))
        if i is None:
            n = self.new_node("leaf", "tensor", (), param=self.params.get(id(t), ""))
            self.bind(t, n)
            return n
        return self.g.nodes[i]

    def bind(self, t: torch.Tensor, n: Node) -> None:
        self.node_of[id(t)] = n.idx
        self.keep.append(t)

    # ------------------------------------------------------------------ units (hooks)
    def pre(self, module, args, kwargs):
        if self.depth == 0:
            ins = tensors_in(args, []) + tensors_in(kwargs, [])
            idx = tuple(self.node(t).idx for t in ins)
            self.stack.append(idx)
            opaque = self.units[module][1] == "opaque"
            self.opaque_fns = set() if opaque else None
            self.inner_in = dict(zip(map(id, ins), idx)) if opaque else {}
            self.inner_read = set()
            name, kind = self.units[module]
            own = {id(t): f"{name}.{local}" if name else local
                   for local, t in reversed(module._parameters.items()) if t is not None}
            self.leaf = LinearLeaf(own) if kind == "other" else None
        else:
            if self.leaf is not None and self.depth == 1:
                # a nested unit: an activation module on the product's output is the leaf's
                # activation; any other, and it is not a plain linear layer
                self.leaf.enter(lookup_module(module) if self.units[module][1] == "activation"
                                else None, module, args)
            elif self.leaf is not None:
                self.leaf.ok = False
            self.stack.append(())
        self.depth += 1

    def post(self, module, args, kwargs, output):
        self.depth -= 1
        parents = self.stack.pop()
        if self.depth:
            if self.depth == 1 and self.leaf is not None:
                self.leaf.leave(output)
            return output
        name, ukind = self.units[module]
        leaf, self.leaf = self.leaf, None
        found = leaf.layer(output) if leaf is not None else None
        if found is not None:
            w, product, bias = found
            outs = tensors_in(output, [])
            n = self.free_call(w, product, bias, [self.g.nodes[i] for i in parents], outs)
            self.g.free_modules[w] = leaf.act is not None
            if leaf.act is not None:       # its activation, inside the module
                self.outcome(frozenset([w]), Outcome("act", leaf.act, why=f"{leaf.act_how} "
                                                     f"inside `{name}`"))
                a = self.new_node("unit", name, [n.idx], unit_kind="activation",
                                  activated=(leaf.act, (w,)), activation_call=True)
                for t in outs:
                    self.bind(t, a)
            return output
        if ukind == "opaque":
            # inputs the module reads only for their dtype, device or shape (a rotary
            # embedding given the value states, Moshi's and Csm's): not consumed
            parents = tuple(i for i in parents if i in self.inner_read)
        ins = [self.g.nodes[i] for i in parents]
        pend = frozenset().union(*(n.pending for n in ins)) if ins else frozenset()
        pres = frozenset().union(*(n.pending_res for n in ins)) if ins else frozenset()
        kw: dict[str, Any] = {}
        if ukind == "layer":
            self.outcome(pend | pres, Outcome("linear", why=f"feeds layer `{name}`"))
            kw["pending"] = frozenset([self.mha_out.get(name, name)])
        elif ukind in ("norm", "free_norm"):
            kw["pending"] = pend
            self.outcome(pres, Outcome("linear", why=f"residual stream into norm `{name}`"))
        elif ukind == "activation":
            act = lookup_module(module)
            self.outcome(pend | pres, Outcome("act", act, why=f"module `{name}` "
                                              f"({type(module).__name__})"))
            kw["activated"] = (act, tuple(sorted(pend | pres)))
            kw["activation_call"] = True
        elif ukind == "opaque" and self.opaque_fns and all(
                f in SHAPE_OPS or base_name(f) in SHAPE_OPS for f in self.opaque_fns):
            kw.update(pending=pend, pending_res=pres,
                      activated=next((n.activated for n in ins if n.activated), None))
        elif ukind == "opaque":
            self.outcome(pend | pres, Outcome(
                "unknown", why=f"feeds `{name}` ({type(module).__name__}), a module the "
                "activation registry does not know"))
        else:   # embedding / other parameter owners
            if ukind == "other":
                self.outcome(pend | pres, Outcome("linear", why=f"feeds `{name}`"))
        n = self.new_node("unit", name, parents, unit_kind=ukind, **kw)
        self.g.unit_calls.append((name, n.idx))
        for t in tensors_in(output, []):
            self.bind(t, n)
        return output

    # ------------------------------------------------------------------ functions
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        fname = getattr(func, "__name__", "") or ""
        if self.depth == 0 and fname in DATA_DEPENDENT and args and \
                isinstance(args[0], torch.Tensor) and args[0].is_meta:
            self.data_dependent.add(fname)
            src = self.node_of.get(id(args[0]))
            if fname in ("__bool__", "item") and src is not None and \
                    self.g.nodes[src].name in ("all", "_is_all_true"):
                return True      # `if mask.all():` takes the ordinary path (nothing masked),
                # and so does torch._check(cond.all()) (transformers' image-token count check)
            if fname == "item" and args[0].dtype == torch.bool:
                return False     # a bool, as __bool__ answers
            return DATA_DEPENDENT[fname]
        out = META_RESULTS[fname](args, kwargs) if self.depth == 0 and fname in META_RESULTS \
            else None
        if out is None:
            out = func(*args, **kwargs)
        if self.depth or fname in IGNORED:
            if self.depth == 1 and self.leaf is not None and fname not in IGNORED:
                self.leaf.call(func, fname, args, kwargs, out)
            if self.depth == 1 and self.opaque_fns is not None and fname not in IGNORED:
                self.opaque_fns.add(fname)
                self.inner_read.update(self.inner_in[id(t)] for t in
                                       tensors_in(args, []) + tensors_in(kwargs, [])
                                       if id(t) in self.inner_in)
            return out
        if fname in WRITES:
            self.write(fname, args)
            return out
        outs = tensors_in(out, [])
        if not outs:
            return out
        if fname in LIKE:
            for t in outs:
                self.bind(t, self.new_node("leaf", fname, ()))
            return out
        if fname in DIRECT and self.direct(args, kwargs, fname, outs):
            return out
        ins_t = tensors_in(args, []) + tensors_in(kwargs, [])
        ins = [self.node(t) for t in ins_t]
        if fname in FREE_PRODUCTS and self.free_product(fname, args, kwargs, ins, outs):
            return out
        if fname in ADD_OPS and len(ins) == 2:
            self.free_bias(ins_t, ins)
        self.record(func, fname, args, kwargs, ins, outs)
        return out

    def free_product(self, fname: str, args, kwargs, ins: list[Node], outs) -> bool:
        """A product reading a free parameter as its weight (XLNet's ``einsum("ibh,hnd->ibnd",
        h, self.q)``, :func:`~initlab.modelinit.dataflow_ops.product_weight`): a call of a
        *free weight*, a layer named by the parameter, with the fans of that use."""
        found = product_weight(fname, args, kwargs,
                               lambda t: bool(self.node(t).param))
        if found is None:
            return False
        self.free_call(self.node(found.weight).param, found,
                       self.node(found.bias).param if found.bias is not None else None,
                       [n for n in ins if not n.param], outs)
        return True

    def free_call(self, name: str, product: Product, bias: str | None,
                  data: list[Node], outs) -> Node:
        """A call of the free weight ``name`` by ``product`` (the fans of this use) on
        ``data``, with its free ``bias``: a layer node, the outputs ``outs`` bound to it."""
        pend = frozenset().union(*(n.pending | n.pending_res for n in data))
        self.outcome(pend, Outcome("linear", why=f"feeds free weight `{name}`"))
        n = self.new_node("unit", name, [x.idx for x in data], unit_kind="layer",
                          pending=frozenset([name]))
        self.g.unit_calls.append((name, n.idx))
        self.g.free_layers.setdefault(name, (product.fans, product.how, product.conv))
        if bias is not None:
            self.g.free_biases.setdefault(bias, name)
        for t in outs:
            self.bind(t, n)
        return n

    def free_bias(self, ins_t: list[torch.Tensor], ins: list[Node]) -> None:
        """``z + b``: a free parameter ``b`` added to one layer's own output ``z`` (not yet
        activated), shaped as a bias over z's last dimensions (XLNet's ``q_head + r_w_bias``,
        GPT-NeoX-Japanese's ``dense_bias``): that layer's free bias."""
        pairs = list(zip(ins_t, ins))
        for (z, zn), (b, bn) in (pairs, pairs[::-1]):
            if not bn.param or zn.param or len(zn.pending) != 1 or zn.activated:
                continue
            shape = list(b.shape)
            while shape and shape[0] == 1:
                shape.pop(0)
            if shape and tuple(shape) == tuple(z.shape[-len(shape):]):
                self.g.free_biases.setdefault(bn.param, next(iter(zn.pending)))

    def direct(self, args, kwargs, fname: str, outs) -> bool:
        """A product that reads a layer's weight (or a view of it) outside the layer's forward
        (a Mamba scan's ``F.conv1d(x, weight=conv1d.weight)``, ``dt_proj.weight @ x``): a call
        of that layer, as if the layer had run on ``x``."""
        def layer(t):
            root = t._base if isinstance(t, torch.Tensor) and t._base is not None else t
            return self.weights.get(id(root)) if isinstance(root, torch.Tensor) else None

        x = args[0] if args else kwargs.get("input")
        w = args[1] if len(args) > 1 else kwargs.get("weight", kwargs.get("other"))
        name = layer(w)
        if name is None and fname in ("matmul", "__matmul__"):
            name, x = layer(x), w                       # W @ x
        if name is None or not isinstance(x, torch.Tensor):
            return False
        src = self.node(x)
        self.outcome(src.pending | src.pending_res, Outcome("linear", why=f"feeds layer `{name}`"))
        n = self.new_node("unit", name, (src.idx,), unit_kind="layer", pending=frozenset([name]))
        self.g.unit_calls.append((name, n.idx))
        for t in outs:
            self.bind(t, n)
        return True

    def write(self, fname: str, args) -> None:
        """``dst.copy_(src)`` or ``dst[i] = src`` (DeepSeek-style attention assembling its keys
        in a ``new_empty`` tensor): the destination, and the tensor it is a view of, now hold
        ``src``'s values, so they carry what ``src`` carries (a layer's output stays that
        layer's: what reads the destination next decides its activation)."""
        dst = args[0] if args else None
        src = args[1] if fname == "copy_" and len(args) > 1 else \
            (args[2] if len(args) > 2 else None)
        if not isinstance(dst, torch.Tensor) or not isinstance(src, torch.Tensor):
            return
        targets = [dst] + ([dst._base] if dst._base is not None else [])
        ins = [self.node(src)] + [self.node(t) for t in targets]
        n = self.new_node("op", fname, [x.idx for x in ins],
                          pending=frozenset().union(*(x.pending for x in ins)),
                          pending_res=frozenset().union(*(x.pending_res for x in ins)),
                          activated=next((x.activated for x in ins if x.activated), None))
        for t in targets:
            self.bind(t, n)

    def record(self, func, fname, args, kwargs, ins: list[Node], outs) -> None:
        pend = frozenset().union(*(n.pending for n in ins)) if ins else frozenset()
        pres = frozenset().union(*(n.pending_res for n in ins)) if ins else frozenset()
        base = base_name(fname)
        kw: dict[str, Any] = {}
        act = lookup_function(func, args, kwargs) if (pend or pres or ins) else None
        if act is None and self.compose(fname, args, ins, outs):
            return
        # an activation of a value no layer produced (xIELU's softplus(alpha_p)) is a factor,
        # not a gate: only activations of layer outputs gate what they multiply
        layer_ins = [n for n in ins if n.pending or n.pending_res
                     or (n.activated and n.activated[1])]
        if act is not None and (pend or pres) and is_soft_cap(act, layer_ins):
            # cap * tanh(z / cap) (Gemma 2's logits, xLSTM's gates): linear while |z| << cap,
            # the cap only bounds outliers; what reads the capped value decides, as for a scale
            kw.update(pending=pend, pending_res=pres, scale=layer_ins[0].scale)
        elif act is not None:
            self.outcome(pend | pres, Outcome("act", act, why=f"`{fname}` call"))
            kw["activated"] = (act, tuple(sorted(pend | pres)))
            kw["activation_call"] = True
        elif fname in SHAPE_OPS or base in SHAPE_OPS or (base in POOL_REDUCTIONS
                                                            and len(ins) == 1) \
                or is_free_clamp(base, args, kwargs):
            kw.update(pending=pend, pending_res=pres, scale=inherited_scale(layer_ins),
                      activated=next((n.activated for n in ins if n.activated), None))
        elif fname in MUL_OPS and len(layer_ins) <= 1:
            # scaling by a constant or by a tensor no layer produced: still that layer's output
            kw.update(pending=pend, pending_res=pres, scale=scaled_by(fname, args, layer_ins),
                      activated=next((n.activated for n in layer_ins if n.activated), None))
        elif fname in MUL_OPS:
            gates = [n for n in layer_ins if n.activated and n.activated[1]]
            others = [n for n in layer_ins if not n.activated]
            if gates and others:
                act, gate_layers = gates[0].activated or (None, ())
                gate = gate_layers[0] if gate_layers else None
                lay = frozenset().union(*(n.pending | n.pending_res for n in others))
                self.outcome(lay, Outcome("gated", act, gate=gate,
                                          why=f"multiplied by {getattr(act[0], 'name', act)}"
                                              f"(`{gate}`) (gated unit)"))
                # the product is still the gated layers' output (a layer, not the gate, writes
                # it): a residual addition it reaches is closed by them (Qwen2-MoE's shared
                # expert, sigmoid(shared_expert_gate(x)) * shared_expert(x))
                kw.update(pending=frozenset().union(*(n.pending for n in others)),
                          pending_res=frozenset().union(*(n.pending_res for n in others)))
            else:
                self.outcome(pend | pres, Outcome("unknown", why=f"`{fname}` of two layer "
                                                  "outputs"))
        elif fname in ADD_OPS and len(ins) >= 2:
            kw.update(self.add(fname, ins))
        elif fname in ADD_OPS:
            kw.update(pending=pend, pending_res=pres)
        elif fname in LINEAR_OPS or base in LINEAR_OPS:
            self.outcome(pend | pres, Outcome("linear", why=f"feeds `{fname}`"))
        else:
            self.outcome(pend | pres, Outcome("unknown", why=f"feeds `{fname}`, not an "
                                              "activation the registry knows"))
        if ins and ins[0].param and (fname in PARAM_VIEWS or base in PARAM_VIEWS):
            kw["param"] = ins[0].param   # a view of a free parameter (expand_as(y): y's shape)
        n = self.new_node("op", fname, [x.idx for x in ins], **kw)
        for t in outs:
            self.bind(t, n)

    def compose(self, fname: str, args, ins: list[Node], outs) -> bool:
        """An elementwise function of an activation call's output that makes it another
        activation (``relu(x).square()``: relu_squared): the layers' "act" outcome becomes
        the composite's (:func:`~initlab.modelinit.dataflow_ops.elementwise_call`)."""
        call = elementwise_call(base_name(fname), args)
        if call is None and len(ins) == 2 and \
                base_name(fname) in ("mul", "__mul__", "__rmul__", "__imul__"):
            ins, call = self.times_input(ins)
        if call is None or len({n.idx for n in ins}) != 1 or not ins[0].activation_call \
                or not ins[0].activated:
            return False
        first, layers = ins[0].activated
        comp = composite(first[0], *call)
        if comp is None and call[0] != "times_input":
            return False
        for ocs in (self.g.outcomes.get(layer, []) for layer in layers):
            at = [i for i, oc in enumerate(ocs) if oc.kind == "act" and oc.act is first]
            if at and comp is None:                 # z * sigmoid(2 z) is not sigmoid
                ocs[at[-1]] = Outcome("unknown", why=f"z * {first[0].name}({call[1]:g} z), not "
                                      "an activation the registry knows")
            elif at:
                ocs[at[-1]] = Outcome("act", comp, why=f"{ocs[at[-1]].why} then `{call[0]}`")
        n = self.new_node("op", fname, [ins[0].idx], activated=None if comp is None else
                          (comp, layers), activation_call=comp is not None)
        for t in outs:
            self.bind(t, n)
        return True

    def times_input(self, ins: list[Node]) -> tuple[list[Node], tuple | None]:
        """``z * f(k z)`` of a layer output z: ``([f's call], ("times_input", k))`` (``x *
        sigmoid(x)`` is silu, ``x * sigmoid(1.702 x)`` quick_gelu: the registry's
        :data:`~initlab.core.activations.COMPOSITES`), else ``(ins, None)``."""
        for act, z in ((ins[0], ins[1]), (ins[1], ins[0])):
            if not act.activation_call or not act.activated or z.activated or \
                    not act.parents or set(act.activated[1]) != set(z.pending | z.pending_res):
                continue
            arg = self.g.nodes[act.parents[0]]
            if (arg.idx == z.idx or z.idx in arg.parents) and arg.scale and z.scale:
                return [act], ("times_input", arg.scale / z.scale)
        return ins, None


def kept_buffers(modules: list[nn.Module]) -> list[tuple[Any, str, torch.Tensor, Any]]:
    """Each buffer of ``modules`` as (module, name, the tensor, a copy), for :func:`put_back`:
    what runs between may replace a buffer, not only change it (a parametrization written
    through: the orthogonal one's ``base``; a forward that assigns a new step counter)."""
    with torch.no_grad():
        return [(m, n, b, b.detach().clone()) for m in modules for n, b in m._buffers.items()
                if b is not None]


def put_back(kept: list[tuple[Any, str, torch.Tensor, Any]]) -> None:
    """Buffers as :func:`kept_buffers` saw them: the same tensors, their values."""
    with torch.no_grad():
        for m, n, b, saved in kept:
            m._buffers[n] = b
            b.copy_(saved)


@contextlib.contextmanager
def buffers_kept(model: nn.Module):
    """Every buffer of ``model`` as it was, after the block: a forward of the model itself (a
    BatchNorm in train mode updates its running statistics and ``num_batches_tracked``) leaves
    the user's state unchanged; a buffer the forward replaced is put back, as the same tensor."""
    saved = kept_buffers(list(model.modules()))
    try:
        yield
    finally:
        put_back(saved)


def probe(model: nn.Module, inputs: tuple[tuple, dict], *, on_meta: bool = True,
          user_hooks: bool = False) -> Graph:
    """Run one forward of ``model`` (a meta copy when ``on_meta``, with the user's hooks only if
    ``user_hooks``: :func:`~initlab.modelinit.probe_meta.meta_copy`) on ``inputs`` (args,
    kwargs) and return the recorded :class:`Graph`; on the model itself (``on_meta=False``) its
    buffers are restored after (:func:`buffers_kept`). Exceptions of the forward propagate."""
    suspended = global_hooks_suspended() if on_meta else contextlib.nullcontext()
    with suspended:
        return _probe(model, inputs, on_meta, user_hooks)


def _probe(model: nn.Module, inputs: tuple[tuple, dict], on_meta: bool, user_hooks: bool
           ) -> Graph:
    target = meta_copy(model, user_hooks=user_hooks) if on_meta else model
    graph = Graph()
    units: dict[nn.Module, tuple[str, str]] = {}
    mha_out: dict[str, str] = {}
    handles = []
    for name, m in target.named_modules():
        base = lora_base(m)    # a LoRA wrapper is its base layer (the adapter's sum inside)
        if base is not None and (uk := unit_kind_of(getattr(m, base))) is not None:
            units[m] = (f"{name}.{base}" if name else base, uk)
            continue
        uk = unit_kind_of(m)
        if uk is None:
            continue
        units[m] = (name, uk)
        if on_meta:
            fwd = shape_only(m, uk)
            if fwd is not None:
                m.forward = fwd       # the meta copy only: nothing inside a unit is recorded
        if isinstance(m, nn.MultiheadAttention):
            mha_out[name] = f"{name}.out_proj" if name else "out_proj"
    # free parameters: held directly by a module the probe looks inside (not a unit's)
    # (a tensor tied across modules is named by its first name, as collect_params names it)
    free: dict[int, str] = {}
    for name, m in target.named_modules():
        for local, t in m._parameters.items() if m not in units else ():
            if t is not None:
                free.setdefault(id(t), f"{name}.{local}" if name else local)
    mode = _Probe(graph, units, mha_out, free)
    for m in units:
        handles.append(m.register_forward_pre_hook(mode.pre, with_kwargs=True))
        handles.append(m.register_forward_hook(mode.post, with_kwargs=True))
    args, kwargs = inputs
    if on_meta:
        args = tuple(a.to("meta") if isinstance(a, torch.Tensor) else a for a in args)
        kwargs = {k: v.to("meta") if isinstance(v, torch.Tensor) else v
                  for k, v in kwargs.items()}
    try:
        ctx = torch.enable_grad() if on_meta else torch.no_grad()
        kept = contextlib.nullcontext() if on_meta else buffers_kept(target)
        with ctx, stochastic_off(target), kept, mode:
            inp_nodes = []
            for t in tensors_in(args, []) + tensors_in(kwargs, []):
                n = mode.new_node("input", "input", ())
                mode.bind(t, n)
                inp_nodes.append(n)
            out = target(*args, **kwargs)
    finally:
        for h in handles:
            h.remove()
    outs = tensors_in(out, [])
    if outs:
        first = mode.node_of.get(id(outs[0]))
        if first is not None:
            n = graph.nodes[first]
            graph.readouts = sorted(n.pending)
            for layer in n.pending | n.pending_res:
                graph.outcomes.setdefault(layer, []).append(
                    Outcome("linear", why="model output (readout)"))
    if mode.data_dependent:
        graph.notes.append("data-dependent checks on meta tensors answered without data (True "
                           "for all(), else False/0): " + ", ".join(sorted(mode.data_dependent)))
    return graph
