"""What each torch function means to the probe's dataflow (:mod:`~initlab.modelinit.dataflow`),
by name: the ops through which a layer's output is still that layer's output, the consumers
after which it is used linearly, additions and products, reads of a weight outside its layer,
writes into a tensor, and what the probe answers for data-dependent checks on meta tensors.
One table per meaning; the probe and ``auto`` (:data:`MIRROR_SAFE`) read them from here."""

from __future__ import annotations

import torch

__all__ = ["SHAPE_OPS", "POOL_REDUCTIONS", "ADD_OPS", "MUL_OPS", "LINEAR_OPS", "MIRROR_SAFE",
           "LIKE", "WRITES", "DIRECT", "IGNORED", "DATA_DEPENDENT", "base_name",
           "DIVIDE_OPS", "SOFT_CAP_SCALE", "inherited_scale", "scaled_by", "is_soft_cap",
           "elementwise_call", "CLAMP_FREE", "is_free_clamp"]

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
    if lo is None and hi is None:
        return False
    for v, far in ((lo, lambda x: x <= -CLAMP_FREE), (hi, lambda x: x >= CLAMP_FREE)):
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not far(v):
            return False
    return True


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
