"""What each torch function means to the probe's dataflow (:mod:`~initlab.modelinit.dataflow`),
by name: the ops through which a layer's output is still that layer's output, the consumers
after which it is used linearly, additions and products, reads of a weight outside its layer,
writes into a tensor, and what the probe answers for data-dependent checks on meta tensors.
One table per meaning; the probe and ``auto`` (:data:`MIRROR_SAFE`) read them from here."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch

from ..core.activations import lookup_function
from .units import tensors_in

__all__ = ["SHAPE_OPS", "POOL_REDUCTIONS", "ADD_OPS", "MUL_OPS", "LINEAR_OPS", "MIRROR_SAFE",
           "LIKE", "WRITES", "DIRECT", "IGNORED", "DATA_DEPENDENT", "base_name",
           "DIVIDE_OPS", "SOFT_CAP_SCALE", "inherited_scale", "scaled_by", "is_soft_cap",
           "elementwise_call", "CLAMP_FREE", "is_free_clamp", "FREE_PRODUCTS", "PARAM_VIEWS",
           "CONV_PRODUCTS", "DENSE_USES", "Product", "product_weight", "einsum_fans", "LinearLeaf"]

# ops through which "the output of layer L" is still the output of layer L (no activation yet)
SHAPE_OPS = frozenset("""
view view_as reshape reshape_as permute transpose t contiguous split split_with_sizes chunk
unbind __getitem__ to float half double bfloat16 type type_as dropout dropout1d dropout2d
dropout3d alpha_dropout feature_alpha_dropout flatten unflatten squeeze unsqueeze expand expand_as
clone detach narrow select repeat movedim moveaxis swapaxes neg __neg__ max_pool1d max_pool2d
max_pool3d avg_pool1d avg_pool2d avg_pool3d adaptive_avg_pool1d adaptive_avg_pool2d
adaptive_avg_pool3d adaptive_max_pool1d adaptive_max_pool2d adaptive_max_pool3d pad
identity sum mean interpolate upsample pixel_shuffle pixel_unshuffle gather index_select
take_along_dim roll flip fliplr flipud tile repeat_interleave unfold view_as_complex view_as_real
""".split())
# reductions that are a pooling when they read one tensor (Hiera's max over a window's
# positions), an elementwise comparison when two (`torch.max(x, y)`): not a shape op then
POOL_REDUCTIONS = frozenset(("max", "amax", "min", "amin"))
ADD_OPS = frozenset(("add", "__add__", "__radd__", "__iadd__", "add_"))
MUL_OPS = frozenset(("mul", "__mul__", "__rmul__", "__imul__", "mul_", "div", "__truediv__",
                      "div_", "__itruediv__"))
# consumers after which a layer's output is used linearly (no activation follows it)
LINEAR_OPS = frozenset("""
matmul __matmul__ __rmatmul__ mm bmm baddbmm addmm einsum scaled_dot_product_attention softmax
log_softmax _softmax cat concat concatenate stack hstack vstack sub __sub__ __rsub__
linear conv1d conv2d conv3d conv_transpose1d conv_transpose2d conv_transpose3d layer_norm
group_norm batch_norm rms_norm instance_norm cross_entropy nll_loss mse_loss masked_fill
masked_fill_ where multi_head_attention_forward masked_scatter masked_scatter_
""".split())
#: What may stand between a looks-linear layer and the layer that folds its mirrored output
#: ``[f(u), f(-u)]`` back (``LayerInfo.via``, read by ``auto``): the activation ``f`` itself
#: and ops that treat every unit or channel alike and linearly and keep a (C, ...) tensor's
#: channel halves apart when flattened (views, dropout, average pools, zero padding). A max pool,
#: a norm, a transpose or any other op breaks the pairing, and the consumer is not folded back.
MIRROR_SAFE = frozenset("""
activation view view_as reshape reshape_as contiguous flatten unflatten squeeze unsqueeze clone
detach to float half double bfloat16 type type_as dropout dropout1d dropout2d dropout3d
avg_pool1d avg_pool2d avg_pool3d adaptive_avg_pool1d adaptive_avg_pool2d adaptive_avg_pool3d
pad identity
""".split())


def base_name(fname: str) -> str:
    """A torch function's name without its in-place underscore (``relu_`` -> ``relu``; dunder
    names unchanged)."""
    return fname if fname.startswith("__") else fname.rstrip("_")


# functions that read only a tensor's shape, dtype and device (a new tensor "like" it): no
# consumer of its values
LIKE = frozenset("""
new_empty new_zeros new_ones new_full new_tensor empty_like zeros_like ones_like full_like
""".split())
# writes of a source's values into (a view of) a destination: the destination then holds them
WRITES = frozenset(("copy_", "__setitem__"))
# products that may read a layer's weight directly (see dataflow._Probe.direct)
DIRECT = frozenset(("linear", "conv1d", "conv2d", "conv3d", "matmul", "__matmul__"))
# results that carry no dataflow meaning
IGNORED = frozenset(("__get__", "size", "dim", "numel", "__len__", "__format__", "__repr__"))
# (`x in tensor` is data-dependent too: transformers' padding check, `pad_token_id in input_ids`)
DATA_DEPENDENT = {"__bool__": False, "item": 0, "__int__": 0, "__float__": 0.0,
                   "__index__": 0, "tolist": [], "__contains__": False}


#: a tanh whose input is a layer's output scaled by at most this factor (a cap of 5 or more)
#: is a soft cap, cap * tanh(z / cap): the tanh is near-linear for the unit-scale z of an
#: initialized layer (tanh'(0.2) = 0.96). tanh(z / 2) = 2 sigmoid(z) - 1 stays an activation.
SOFT_CAP_SCALE = 0.2
DIVIDE_OPS = frozenset(("div", "__truediv__", "div_", "__itruediv__"))


def inherited_scale(layer_ins: list) -> float | None:
    """The constant factor a shape op (a view, a pool) passes on: its one layer input's."""
    return layer_ins[0].scale if len(layer_ins) == 1 else (1.0 if not layer_ins else None)


def scaled_by(fname: str, args, layer_ins: list) -> float | None:
    """The constant factor on a layer's output after ``fname(*args)``: the input's factor times
    a Python number it is multiplied by (or divided by); None when a tensor scales it."""
    base = inherited_scale(layer_ins)
    if base is None:
        return base
    nums = [a for a in args if isinstance(a, (int, float)) and not isinstance(a, bool)]
    if len(nums) != 1 or len([a for a in args if isinstance(a, torch.Tensor)]) != 1:
        return None
    c = float(nums[0])
    if fname in DIVIDE_OPS:
        return base / c if c != 0 else None
    return base * c


def is_soft_cap(act, layer_ins: list) -> bool:
    """Whether an activation call on ``layer_ins`` is a soft cap (see :data:`SOFT_CAP_SCALE`)."""
    return (getattr(act[0], "name", "") == "tanh" and len(layer_ins) == 1
            and layer_ins[0].scale is not None and 0 < abs(layer_ins[0].scale) <= SOFT_CAP_SCALE)


#: a clamp whose bounds are this far from 0 or further (or absent) does not bind on the
#: unit-scale output of an initialized layer (P(|z| > 5) = 6e-7 at unit variance): GPT-OSS's and
#: MiniMax's SwiGLU clamp at +-7 (``swiglu_limit``) is the identity there, as a soft cap of 5 or
#: more is linear (:data:`SOFT_CAP_SCALE`). ``clamp(min=0)`` is relu (the registry's), not this.
CLAMP_FREE = 1.0 / SOFT_CAP_SCALE


def is_free_clamp(base: str, args, kwargs) -> bool:
    """Whether a ``clamp``/``clip`` call (function, method or in place) has number bounds that
    cannot bind at init (see :data:`CLAMP_FREE`); tensor bounds are not read (False)."""
    if base not in ("clamp", "clip"):
        return False
    lo = kwargs.get("min", args[1] if len(args) > 1 else None)
    hi = kwargs.get("max", args[2] if len(args) > 2 else None)

    def number(v) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    return (lo is not None or hi is not None) \
        and (lo is None or (number(lo) and lo <= -CLAMP_FREE)) \
        and (hi is None or (number(hi) and hi >= CLAMP_FREE))


def elementwise_call(fname: str, args) -> tuple[str, float | None] | None:
    """``(function, constant)`` of an elementwise call of one tensor and at most one number
    (``x.square()``: ("square", None); ``x ** 2``: ("__pow__", 2)); ``x * x`` reads as
    ("square", None). None for anything else. What an activation's output then becomes is the
    registry's (:func:`initlab.core.activations.composite`)."""
    tensors = [a for a in args if isinstance(a, torch.Tensor)]
    nums = [a for a in args if isinstance(a, (int, float)) and not isinstance(a, bool)]
    if fname in ("mul", "__mul__") and len(tensors) == 2 and tensors[0] is tensors[1] \
            and not nums:
        return "square", None
    if len(tensors) == 1 and len(nums) <= 1 and len(args) == len(tensors) + len(nums):
        return fname, (float(nums[0]) if nums else None)
    return None


# ----------------------------------------------------------------------------- free weights
#: products that may read a *free* parameter as their weight: one held directly by a module the
#: probe looks inside, not a layer's (XLNet's ``einsum("ibh,hnd->ibnd", h, self.q)``, a custom
#: block's ``x @ self.w``)
#: convolutions that may read a free parameter as their kernel (a user's ``MyConv`` calling
#: ``F.conv2d(x, self.weight, self.bias, padding=1)``): fans as torch's for an (out, in/groups,
#: *k) kernel, and for a transposed one's (in, out/groups, *k) kernel torch's convention too
#: (its fan_in from dimension 1, as ``nn.init`` computes it for nn.ConvTranspose*)
CONV_PRODUCTS = frozenset(("conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                           "conv_transpose3d"))
FREE_PRODUCTS = frozenset(("einsum", "matmul", "__matmul__", "__rmatmul__", "mm", "bmm",
                           "linear")) | CONV_PRODUCTS


#: how a product reads a 2-D free weight as a dense layer's (:class:`Product` ``how``)
DENSE_USES = ("x @ W", "W @ x", "F.linear")


class Product(NamedTuple):
    """A product that reads a free parameter as a layer's weight (:func:`product_weight`)."""

    weight: torch.Tensor
    fans: tuple[int, int]               # (fan_in, fan_out) of this use
    how: str                            # "x @ W", "einsum 'ibh,hnd->ibnd'", "F.conv2d", ...
    bias: torch.Tensor | None           # F.linear's / F.convNd's bias, when a free parameter
    conv: tuple[int, int, int] | None   # a convolution's (in/groups, out, groups) channels
#: views through which a parameter is still that parameter (``self.w.t()``, ``.view(...)``);
#: an indexing or a gather makes a new table (a relative-position lookup), not a view of one
PARAM_VIEWS = frozenset("""
view view_as reshape reshape_as permute transpose t contiguous to float half double bfloat16
type type_as unsqueeze squeeze expand expand_as flatten unflatten movedim moveaxis swapaxes
clone detach
""".split())


def einsum_fans(equation: str, shapes: list[tuple[int, ...]], k: int) -> tuple[int, int] | None:
    """(fan_in, fan_out) of operand ``k`` of ``torch.einsum(equation, ...)`` read as a layer's
    weight: fan_in is the product of its dimensions summed over (contracted with another operand,
    or absent from the output), fan_out of those that reach the output and no other operand;
    dimensions shared with another operand and kept (heads, "n" in ``"ibnd,snd->ibns"``) are
    batch dimensions, in neither. None when nothing of it is contracted with another operand
    (an elementwise scale), for a repeated index (a diagonal), or an equation this does not
    parse (sublist form, an ellipsis in the weight's own term)."""
    eq = equation.replace(" ", "")
    lhs, arrow, out = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(shapes) or not 0 <= k < len(terms) or "..." in terms[k]:
        return None
    terms = [t.replace("...", "") for t in terms]
    mine = terms[k]
    if len(mine) != len(shapes[k]) or len(set(mine)) != len(mine) or not mine.isalpha():
        return None
    if not arrow:   # implicit output: the indices that appear once, in alphabetical order
        joined = "".join(terms)
        out = "".join(sorted(c for c in set(joined) if joined.count(c) == 1))
    others = set("".join(t for i, t in enumerate(terms) if i != k))
    if not any(c in others and c not in out for c in mine):
        return None
    dims = dict(zip(mine, shapes[k]))
    fan_in = math.prod(d for c, d in dims.items() if c not in out)
    fan_out = math.prod(d for c, d in dims.items() if c in out and c not in others)
    return fan_in, fan_out


def product_weight(fname: str, args, kwargs, is_free) -> Product | None:
    """The :class:`Product` when ``fname(*args, **kwargs)`` reads exactly one free parameter
    (``is_free(tensor)``) as its weight, with at least one other operand that is not a free
    parameter (the data): the fans of that use (an einsum's from its equation,
    :func:`einsum_fans`; ``x @ W``: W's last two dimensions, (in, out); ``W @ x``: (out, in);
    ``F.linear``: torch's (out, in); ``F.conv2d``: torch's for a conv kernel, receptive field
    included) and, for ``F.linear`` and a convolution, its bias when that is a free parameter
    too. None for any other call, and for a weight that gives one score per position (fan_out
    1: a learned query vector, ``x @ q``), whose start is the architecture's (Inkling's
    block-attention queries start at 0, uniform attention)."""
    found = _product_weight(fname, args, kwargs, is_free)
    return found if found is not None and found.fans[1] > 1 else None


def _conv_kernel(fname: str, args, kwargs, is_free) -> Product | None:
    """``F.conv{1,2,3}d(x, weight, bias, stride, padding, dilation, groups)`` reading a free
    kernel of ``n + 2`` dimensions (out, in/groups, *k) on data that is not free (``conv``:
    its channels); ``F.conv_transpose{1,2,3}d(x, weight, bias, stride, padding,
    output_padding, groups, dilation)`` one of (in, out, *k), ungrouped (``conv`` None: not a
    kernel delta-orthogonal weights fit; the use says it is transposed)."""
    x = args[0] if args else kwargs.get("input")
    w = args[1] if len(args) > 1 else kwargs.get("weight")
    b = args[2] if len(args) > 2 else kwargs.get("bias")
    groups = args[6] if len(args) > 6 else kwargs.get("groups", 1)
    if not isinstance(w, torch.Tensor) or not is_free(w) or w.dim() != int(fname[-2]) + 2 or \
            not isinstance(x, torch.Tensor) or is_free(x) or not isinstance(groups, int):
        return None
    field = math.prod(w.shape[2:])
    bias = b if isinstance(b, torch.Tensor) and is_free(b) else None
    if "transpose" in fname and groups != 1:
        return None     # (in, out/groups, *k): its units are not one dimension; stays opaque
    conv = None if "transpose" in fname else (w.shape[1], w.shape[0], groups)
    return Product(w, (w.shape[1] * field, w.shape[0] * field), f"F.{fname}", bias, conv)


def _product_weight(fname: str, args, kwargs, is_free) -> Product | None:
    def tensors(xs) -> list[torch.Tensor]:
        return [x for x in xs if isinstance(x, torch.Tensor)]

    if fname in CONV_PRODUCTS:
        return _conv_kernel(fname, args, kwargs, is_free)

    if fname == "einsum":
        if not args or not isinstance(args[0], str):
            return None
        ops = tensors(args[1]) if len(args) == 2 and isinstance(args[1], (list, tuple)) \
            else tensors(args[1:])
        free = [i for i, t in enumerate(ops) if is_free(t)]
        if len(free) != 1 or len(ops) < 2:
            return None
        fans = einsum_fans(args[0], [tuple(t.shape) for t in ops], free[0])
        return None if fans is None else Product(ops[free[0]], fans, f"einsum {args[0]!r}",
                                                 None, None)
    if fname == "linear":
        x = args[0] if args else kwargs.get("input")
        w = args[1] if len(args) > 1 else kwargs.get("weight")
        b = args[2] if len(args) > 2 else kwargs.get("bias")
        if not isinstance(w, torch.Tensor) or not is_free(w) or w.dim() != 2 or \
                not isinstance(x, torch.Tensor) or is_free(x):
            return None
        bias = b if isinstance(b, torch.Tensor) and is_free(b) else None
        return Product(w, (w.shape[1], w.shape[0]), "F.linear", bias, None)
    ops = tensors(args[:2]) + tensors(kwargs.values())
    if len(ops) != 2 or is_free(ops[0]) == is_free(ops[1]):
        return None
    right = is_free(ops[1]) != (fname == "__rmatmul__")     # x @ W (W second)
    w = ops[1] if is_free(ops[1]) else ops[0]
    if w.dim() == 1:
        return None      # a vector: one score per position
    fans = (w.shape[-2], w.shape[-1]) if right else (w.shape[-1], w.shape[-2])
    return Product(w, fans, "x @ W" if right else "W @ x", None, None)


class LinearLeaf:
    """What a parameter-owning leaf of an unknown class (a unit of kind ``"other"``) did in its
    forward, watched call by call: whether it is a *linear layer in disguise*, a user's
    ``MyLinear`` whose forward is ``x @ self.weight + self.bias`` or ``F.linear(x, self.weight,
    self.bias)``, with any shape ops around. It is when its calls are exactly one product that
    reads one of its own parameters (or a view of one, :data:`PARAM_VIEWS`) as its weight
    (:func:`product_weight`), at most one addition of another own parameter to that product's
    output (its bias), at most one activation of the result (a call the registry knows,
    ``torch.relu``/``F.gelu``, or an activation module it holds: a Keras-style ``Dense`` with
    its activation), and shape ops (:data:`SHAPE_OPS`) on anything but its own parameters, and
    its output is that result (through those ops); its only other parameter is the bias. Then
    the probe records it as a call of a free weight named by the parameter, with the fans of
    that use (which reads an ``(in, out)`` layout as such), followed by that activation.
    Anything else (a second product, a parameter used elementwise, another nested module) and
    the module stays an opaque unit, as before."""

    def __init__(self, own: dict[int, str]):
        self.own = dict(own)          # id of an own parameter or a view of one -> its name
        self.n_params = len(own)      # how many distinct own parameters the module holds
        self.ok = True
        self.product: Product | None = None   # the product, its weight and bias by name
        self.bias: str | None = None
        self.act: Any = None          # the activation of the product's output, when one follows
        self.act_how = ""
        self.out: int | None = None   # id of the product's output (or of a shape op of it)
        self.keep: list[torch.Tensor] = []   # keep ids unique while the module runs

    def call(self, func, fname: str, args, kwargs, out) -> None:
        if not self.ok:
            return
        ins = tensors_in(args, []) + tensors_in(kwargs, [])
        outs = tensors_in(out, [])
        self.keep += outs
        base = base_name(fname)
        mine = [t for t in ins if id(t) in self.own]
        if fname in FREE_PRODUCTS and self.product is None and outs:
            found = product_weight(fname, args, kwargs, lambda t: id(t) in self.own)
            if found is not None:
                self.product = found
                self.bias = self.own.get(id(found.bias)) if found.bias is not None else None
                self.out = id(outs[0])
                return
        elif (fname in PARAM_VIEWS or base in PARAM_VIEWS) and len(mine) == 1 and \
                ins[0] is mine[0]:        # a view of the kernel, or of the bias to add
            self.own.update((id(t), self.own[id(mine[0])]) for t in outs)
            return
        elif fname in ADD_OPS and len(ins) == 2 and len(mine) == 1 and self.bias is None \
                and self.act is None and self.out is not None and any(id(t) == self.out for t in ins) and outs:
            self.bias, self.out = self.own[id(mine[0])], id(outs[0])
            return
        elif (fname in SHAPE_OPS or base in SHAPE_OPS) and not mine:
            if self.out is not None and ins and id(ins[0]) == self.out and outs:
                self.out = id(outs[0])
            return
        elif self.act is None and self.out is not None and ins and id(ins[0]) == self.out \
                and not mine and outs and (act := lookup_function(func, args, kwargs)):
            self.act, self.act_how, self.out = act, f"`{fname}` call", id(outs[0])
            return
        self.ok = False

    def enter(self, act: Any, module: Any, args) -> None:
        """A nested module is called: an activation module on the product's output is the
        leaf's activation (``act``: what the registry knows of it); anything else ends it."""
        ins = tensors_in(args, [])
        if act is None or self.act is not None or self.out is None or not ins or \
                id(ins[0]) != self.out:
            self.ok = False
            return
        self.act, self.act_how, self.out = act, f"module {type(module).__name__}", None

    def leave(self, output) -> None:
        """The nested activation module returned ``output``: the leaf's result is its."""
        outs = tensors_in(output, [])
        if self.ok and self.out is None and outs:
            self.out = id(outs[0])
            self.keep += outs

    def layer(self, output) -> tuple[str, Product, str | None] | None:
        """``(weight, product, bias)`` (the parameters by name) when the module was a linear
        layer in disguise and ``output`` is its result (its activation then in :attr:`act`),
        else None."""
        outs = tensors_in(output, [])
        used = 1 + (self.bias is not None)
        if not self.ok or self.product is None or len(outs) != 1 or \
                id(outs[0]) != self.out or self.n_params != used:
            return None
        return self.own[id(self.product.weight)], self.product, self.bias

