"""What the probe (:mod:`initlab.modelinit.dataflow`) runs on: a meta copy of the model, and
outputs computed from shapes where torch's meta kernels are slow.

* :func:`meta_copy`: the module tree copied with every parameter and buffer replaced by a meta
  tensor of its shape (ties kept, attributes copied as ``copy.deepcopy`` copies them; nothing of
  the model's size is allocated, the model itself is not touched). Its forward hooks are torch's
  own (weight norm, pruning, lazy modules, FSDP...) unless ``user_hooks``: a hook of the user's
  (a logger, a feature extractor) would see meta tensors and keep them in the user's objects.
  Hooks registered for every module (``register_module_forward_hook`` & co.) are suspended
  while the copy is made and runs (:func:`global_hooks_suspended`).
* :data:`META_RESULTS`: torch functions whose output the probe takes from the inputs' shapes and
  dtypes in their common forms (``scaled_dot_product_attention``, ``dropout``, elementwise
  ``add``/``sub``/``mul``/``div``); each returns None for any other form, and the real kernel runs
  (and raises its own errors).
* :func:`shape_only`: the forward a unit (a layer, norm, embedding or activation module) runs in
  the probe: an output of the right shape, nothing computed inside it.
"""

from __future__ import annotations

import contextlib
import copy
import copyreg
import types
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any, cast

import torch
import torch.nn as nn

from .experts import expert_output_width
from .params import is_hf_conv1d, module_kind


def meta_copy(model: nn.Module, *, user_hooks: bool = False) -> nn.Module:
    """A copy of ``model``'s module tree whose parameters and buffers are meta tensors of the
    same shapes (ties kept; nothing of the model's size is allocated). Its forward and backward
    hooks are those :func:`torch_hook` accepts, or all of them with ``user_hooks``."""
    memo: dict[int, Any] = {}
    for mod in model.modules():
        for p in mod._parameters.values():
            if p is not None and id(p) not in memo:
                memo[id(p)] = nn.Parameter(_meta_like(p), requires_grad=p.requires_grad)
        for b in mod._buffers.values():
            if b is not None and id(b) not in memo:
                memo[id(b)] = _meta_like(b)
    new = _copy_module(model, memo, user_hooks)
    if not user_hooks:   # modules that went through copy.deepcopy copied every hook
        for mod in new.modules():
            for table in _HOOK_TABLES:
                hooks = getattr(mod, table, None)
                if hooks and not all(map(torch_hook, hooks.values())):
                    for key in [k for k, h in hooks.items() if not torch_hook(h)]:
                        del hooks[key]
    return new


#: the module attributes that hold hooks run by a forward or a backward
_HOOK_TABLES = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks",
                "_backward_pre_hooks")


#: torch's tables of hooks registered for every module: run by a forward or a backward (the
#: first four), or when a module, parameter or buffer is registered (as a copy does)
GLOBAL_HOOK_TABLES = ("_global_forward_hooks", "_global_forward_pre_hooks",
                      "_global_backward_hooks", "_global_backward_pre_hooks",
                      "_global_module_registration_hooks",
                      "_global_parameter_registration_hooks",
                      "_global_buffer_registration_hooks")


def global_hooks_registered() -> bool:
    """Whether a hook runs on every module's forward or backward
    (``torch.nn.modules.module.register_module_forward_hook`` & co.)."""
    from torch.nn.modules import module as tm

    return any(getattr(tm, t, None) for t in GLOBAL_HOOK_TABLES[:4])


@contextlib.contextmanager
def global_hooks_suspended() -> Iterator[None]:
    """Every hook of :data:`GLOBAL_HOOK_TABLES` out of torch's tables for the duration (a
    logger registered for every module would see the meta copy's meta tensors; a profiler's
    module tracker would count the probe), and back in their places after, as the same
    entries: their handles still remove them. Torch's tables are process-wide, so another
    thread running a model meanwhile runs it without them."""
    from torch.nn.modules import module as tm

    saved = []
    for name in GLOBAL_HOOK_TABLES:
        table = getattr(tm, name, None)
        if table:
            saved.append((table, list(table.items())))
            table.clear()
    try:
        yield
    finally:
        for table, items in saved:
            added = list(table.items())        # registered meanwhile: after the old ones
            table.clear()
            table.update(items)
            table.update(added)


def torch_hook(hook: Any) -> bool:
    """Whether ``hook`` (a function, bound method, ``functools.partial`` or callable object) is
    defined in torch: part of what a module computes (weight norm's and pruning's weights, a
    lazy module's shapes, FSDP's parameters), not the user's."""
    f = getattr(hook, "func", hook)               # functools.partial
    f = getattr(f, "__func__", f)                  # a bound method
    where = f.__module__ if isinstance(f, (types.FunctionType, types.BuiltinFunctionType)) \
        else type(f).__module__
    return isinstance(where, str) and (where == "torch" or where.startswith("torch."))


def user_hook_count(model: nn.Module) -> int:
    """How many forward and backward hooks on ``model``'s modules are not torch's own."""
    return sum(not torch_hook(h) for m in model.modules() for t in _HOOK_TABLES
               for h in getattr(m, t, {}).values())


def _meta_like(t: torch.Tensor) -> torch.Tensor:
    # torch.empty_like(device="meta") keeps a non-contiguous layout; for a contiguous tensor
    # torch.empty is the same tensor at 1/8 of the Python time
    if t.is_contiguous():
        return torch.empty(t.shape, dtype=t.dtype, device="meta")
    return torch.empty_like(t, device="meta")


_DEFAULT_COPY = (object.__reduce_ex__, object.__reduce__, nn.Module.__getstate__,
                 nn.Module.__setstate__)
_EMPTY = (dict, OrderedDict, set)


def _copy_module(m: nn.Module, memo: dict[int, Any], user_hooks: bool) -> nn.Module:
    """``copy.deepcopy(m, memo)``, done field by field for modules that copy the default way
    (the result is the same; an empty hook table is made, not deep-copied: 2/3 of deepcopy's time
    on a transformer; without ``user_hooks`` the user's hooks are left out before the copy, so
    nothing they hold is copied); any other module class goes through ``copy.deepcopy``."""
    if id(m) in memo:
        return memo[id(m)]
    cls = type(m)
    if hasattr(cls, "__deepcopy__") or cls in copyreg.dispatch_table or \
            (cls.__reduce_ex__, cls.__reduce__, cls.__getstate__, cls.__setstate__) != \
            _DEFAULT_COPY:
        return copy.deepcopy(m, memo)
    new = cls.__new__(cls)
    memo[id(m)] = new
    state: dict[str, Any] = {}
    for k, v in m.__dict__.items():
        if k == "_compiled_call_impl":
            continue      # what nn.Module.__getstate__ leaves out
        if k in ("_parameters", "_buffers"):
            state[k] = type(v)((n, None if t is None else memo[id(t)]) for n, t in v.items())
        elif k == "_modules":
            state[k] = type(v)((n, None if c is None else _copy_module(c, memo, user_hooks))
                               for n, c in v.items())
        elif type(v) in _EMPTY and not v:
            state[k] = type(v)()
        elif isinstance(v, torch.Tensor) and not v.is_leaf:
            # a tensor computed from parameters (pruning's ``weight`` = weight_orig * mask):
            # deepcopy refuses it; its pre-hook recomputes it in the forward
            if id(v) not in memo:
                memo[id(v)] = _meta_like(v.detach())
            state[k] = memo[id(v)]
        elif k in _HOOK_TABLES and not user_hooks:
            state[k] = type(v)((i, copy.deepcopy(h, memo)) for i, h in v.items()
                               if torch_hook(h))
        else:
            state[k] = copy.deepcopy(v, memo)
    new.__setstate__(state)
    return new


# ----------------------------------------------------------------------------- shape-only ops
# Ops whose meta kernels are slow Python decompositions (scaled_dot_product_attention: 10 ms a
# call; dropout, elementwise arithmetic: ~0.5 ms) get their output from the shapes here, on meta
# inputs in the common forms; any other form runs the real kernel (which also raises its errors).


def _sdpa_result(args, kwargs):
    names = ("query", "key", "value", "attn_mask")
    vals = list(args[:4]) + [kwargs.get(n) for n in names[len(args[:4]):]]
    q, k, v, mask = vals
    if not all(isinstance(t, torch.Tensor) and t.is_meta and t.dim() == 4 for t in (q, k, v)):
        return None
    gqa = bool(kwargs.get("enable_gqa", args[7] if len(args) > 7 else False))
    hq, hk = q.shape[1], k.shape[1]
    if q.dtype != k.dtype or k.dtype != v.dtype or q.shape[0] != k.shape[0] or \
            k.shape[:3] != v.shape[:3] or q.shape[3] != k.shape[3] or \
            not (hq == hk or (gqa and hk and hq % hk == 0)):
        return None
    causal = kwargs.get("is_causal", args[5] if len(args) > 5 else False)
    if mask is not None and causal:
        return None          # the kernel refuses both
    if mask is not None:
        full = (q.shape[0], hq, q.shape[2], k.shape[2])
        if not (isinstance(mask, torch.Tensor) and mask.is_meta and mask.dim() <= 4 and
                all(m in (1, f) for m, f in zip(mask.shape[::-1], full[::-1])) and
                mask.dtype in (torch.bool, q.dtype)):
            return None
    return torch.empty((*q.shape[:3], v.shape[3]), dtype=q.dtype, device="meta")


def _dropout_result(args, kwargs):
    x = args[0] if args else kwargs.get("input")
    p = args[1] if len(args) > 1 else kwargs.get("p", 0.5)
    inplace = args[3] if len(args) > 3 else kwargs.get("inplace", False)
    if not (isinstance(x, torch.Tensor) and x.is_meta and isinstance(p, (int, float)) and
            0 <= p <= 1 and x.is_floating_point()):
        return None
    return x if inplace else torch.empty(x.shape, dtype=x.dtype, device="meta")


def _binary_result(args, kwargs):
    if len(args) != 2 or set(kwargs) - {"alpha"}:
        return None
    shapes = []
    for a in args:
        if isinstance(a, torch.Tensor):
            if not a.is_meta:
                return None
            shapes.append(a.shape)
        elif not isinstance(a, (int, float)) or isinstance(a, bool):
            return None
    if not shapes:
        return None
    try:
        shape = torch.broadcast_shapes(*shapes)
        dtype = torch.result_type(*args)
    except RuntimeError:
        return None
    if dtype == torch.bool:
        return None          # bool arithmetic: the kernel decides (it refuses `-`)
    alpha = kwargs.get("alpha", 1)
    if not isinstance(alpha, int) and not (isinstance(alpha, float) and dtype.is_floating_point):
        return None          # the kernel's own error (a float alpha for an integer result)
    return torch.empty(shape, dtype=dtype, device="meta")


def _true_div_result(args, kwargs):
    out = _binary_result(args, kwargs) if not kwargs else None
    return out if out is not None and out.is_floating_point() else None


META_RESULTS = {
    "scaled_dot_product_attention": _sdpa_result,
    # dropout1d/2d/3d check (or warn about) the input's rank: their kernels run
    **dict.fromkeys(("dropout", "alpha_dropout"), _dropout_result),
    **dict.fromkeys(("add", "__add__", "__radd__", "sub", "__sub__", "__rsub__", "mul",
                     "__mul__", "__rmul__"), _binary_result),
    **dict.fromkeys(("div", "__truediv__", "__rtruediv__"), _true_div_result),
}



def shape_only(module: nn.Module, ukind: str):
    """A forward that returns a meta tensor of the unit's output shape without computing it (the
    probe does not look inside units; meta kernels cost Python time), or None."""
    def first(args, kwargs):
        x = args[0] if args else next(iter(kwargs.values()), None)
        return x if isinstance(x, torch.Tensor) else None

    def own(base: type[nn.Module]) -> bool:  # a subclass with its own forward computes other
        return isinstance(module, base) and type(module).forward is base.forward

    if own(nn.Linear) or is_hf_conv1d(module):
        # (HF's Conv1D: `weight` may be a pruned module's computed tensor, not a parameter)
        n_in, n_out = (module.in_features, module.out_features) if \
            isinstance(module, nn.Linear) else \
            (cast(torch.Tensor, module.weight).shape[0], module.nf)

        def fwd(*args, **kwargs):
            x = first(args, kwargs)
            if x.dim() == 0 or x.shape[-1] != n_in:
                raise RuntimeError(f"{type(module).__name__} expects inputs of width {n_in}, "
                                   f"got shape {tuple(x.shape)}")
            return torch.empty((*x.shape[:-1], n_out), dtype=x.dtype, device="meta")
    elif own(nn.Embedding):  # (OPT's and BART's learned positions take other arguments)
        def fwd(*args, **kwargs):
            x = first(args, kwargs)
            if x.is_floating_point():
                raise RuntimeError("Embedding expects integer indices, got "
                                   f"{x.dtype}")
            return torch.empty((*x.shape, module.embedding_dim), dtype=module.weight.dtype,
                               device="meta")
    elif own(nn.LayerNorm):
        ns = tuple(cast(nn.LayerNorm, module).normalized_shape)   # own() checked the class

        def fwd(*args, **kwargs):
            x = first(args, kwargs)
            if tuple(x.shape[x.dim() - len(ns):]) != ns:
                raise RuntimeError(f"LayerNorm{ns} got shape {tuple(x.shape)}")
            return torch.empty(x.shape, dtype=x.dtype, device="meta")
    elif own(nn.modules.batchnorm._BatchNorm):
        # the output is the input's shape; a training-mode BatchNorm would refuse a batch of one
        # (the input built from a config), which the statistics it does not compute here need
        c = cast(nn.modules.batchnorm._BatchNorm, module).num_features

        def fwd(*args, **kwargs):
            x = first(args, kwargs)
            if x.dim() < 2 or x.shape[1] != c:
                raise RuntimeError(f"{type(module).__name__}({c}) got shape {tuple(x.shape)}")
            return torch.empty(x.shape, dtype=x.dtype, device="meta")
    elif module_kind(module) == "experts" and (width := expert_output_width(module)):
        # the routing (which tokens each expert takes) is data-dependent: the bank's output
        # is the model width for every token, whatever the routing
        def fwd(*args, **kwargs):
            x = first(args, kwargs)
            return torch.empty((*x.shape[:-1], width), dtype=x.dtype, device="meta")
    elif ukind == "activation":
        def fwd(*args, **kwargs):
            x = first(args, kwargs)
            return torch.empty(x.shape, dtype=x.dtype, device="meta")
    else:
        return None
    return fwd
