"""A model's *structure* as a hashable key: two models with equal keys run the same dataflow.

:func:`structure_key` is what lets :func:`initlab.modelinit.describe.describe` reuse one probe
forward for every instance of an architecture (a fresh ``GPT2LMHeadModel(config)`` per run): the
key holds everything the probe's graph can depend on, and no reference to the model:

* the model's class, and for every module (``named_modules(remove_duplicate=False)``) its name,
  class (and that class's ``forward``), training flag and which earlier name it is shared with;
* every parameter and buffer under every name: shape, dtype, ``requires_grad``, and which earlier
  name holds the same tensor (ties: GPT-2's ``lm_head.weight`` is ``transformer.wte.weight``);
* every module's own attributes (what ``copy.deepcopy`` would carry into the probe's meta copy):
  numbers, strings, dtypes, tuples/lists/sets/dicts of them, module-level functions and classes
  by qualified name (``self.act = F.gelu``), ``functools.partial`` objects, and plain objects by
  class and attributes (a Hugging Face config, compared by value).

What the key cannot see makes a model *unkeyable* (:func:`structure_key` returns None; it is
then described per object, as before): forward or backward hooks on any module (or global
ones), a closure or lambda attribute, a bound method, a module held outside ``_modules``, a
tensor attribute of more than :data:`MAX_TENSOR_ATTR` elements, an object without ``__dict__``,
or nesting deeper than :data:`MAX_DEPTH`. Class-level state other than ``forward`` (a
monkeypatched helper method, a global flag read in ``forward``) is not in the key: after such a
change, ``describe(model, refresh=True)`` probes again.
"""

from __future__ import annotations

import enum
import functools
import sys
import types
from typing import Any

import torch
import torch.nn as nn

#: attributes every ``nn.Module`` has (handled field by field, not fingerprinted as values)
_MODULE_FIELDS = frozenset(nn.Module().__dict__)
#: bookkeeping attributes that never change a forward (Hugging Face's "weights initialized" flag,
#: set on a model built on CPU and not on one built on meta)
_IGNORED_ATTRS = frozenset(("_is_hf_initialized",))
#: hook tables that change what a forward does: any entry makes the model unkeyable
_FORWARD_HOOKS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks",
                  "_backward_pre_hooks")
#: a plain tensor attribute (not a parameter or buffer) is keyed by value up to this size
MAX_TENSOR_ATTR = 64
#: nesting of containers and objects followed before giving up
MAX_DEPTH = 6
_ATOMS = (type(None), bool, int, float, complex, str, bytes, torch.dtype, torch.device,
          torch.Size, torch.memory_format, torch.layout, enum.Enum)


class _Unkeyable(Exception):
    """Raised inside the fingerprint walk; :func:`structure_key` turns it into None."""


def structure_key(model: nn.Module) -> tuple | None:
    """A hashable key of ``model``'s structure (see the module docs), or None when the model
    holds something the key cannot capture."""
    from .probe_meta import global_hooks_registered

    if global_hooks_registered():
        return None
    try:
        objs: dict[int, Any] = {}      # id -> fingerprint of objects seen (configs are shared)
        first_mod: dict[int, int] = {}
        first_t: dict[int, int] = {}
        mods: list[tuple] = []
        for i, (name, m) in enumerate(model.named_modules(remove_duplicate=False)):
            shared = first_mod.setdefault(id(m), i)
            if shared != i:
                mods.append((name, shared))     # the same module object under a second name
                continue
            d = m.__dict__
            if any(d.get(h) for h in _FORWARD_HOOKS):
                return None
            tensors: list[tuple] = []
            for kind in ("_parameters", "_buffers"):
                for local, t in d[kind].items():
                    if t is None:
                        tensors.append((local, None))
                        continue
                    tensors.append((local, tuple(t.shape), t.dtype, t.requires_grad, type(t),
                                    first_t.setdefault(id(t), len(first_t))))
            attrs = tuple((k, _fp(v, objs, 0)) for k, v in d.items()
                          if k not in _MODULE_FIELDS and k not in _IGNORED_ATTRS)
            mods.append((name, type(m), getattr(type(m), "forward", None), m.training,
                         tuple(sorted(d["_non_persistent_buffers_set"])), tuple(tensors),
                         attrs))
    except _Unkeyable:
        return None
    return (type(model), tuple(mods))


def _named(obj: Any) -> tuple:
    """A module-level function or class by qualified name, if that name finds this object."""
    mod, qual = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not isinstance(mod, str) or not isinstance(qual, str) or "<" in qual:
        raise _Unkeyable(obj)
    target: Any = sys.modules.get(mod)
    for part in qual.split("."):
        target = getattr(target, part, None)
    if target is not obj:
        raise _Unkeyable(obj)
    return ("named", mod, qual)


def _fp(v: Any, objs: dict[int, Any], depth: int) -> Any:
    if isinstance(v, _ATOMS):
        return (type(v), v)
    if depth > MAX_DEPTH:
        raise _Unkeyable(v)
    if isinstance(v, (tuple, list)):
        return (type(v), tuple(_fp(x, objs, depth + 1) for x in v))
    if isinstance(v, (set, frozenset)):
        return (type(v), frozenset(_fp(x, objs, depth + 1) for x in v))
    if isinstance(v, dict):
        return (type(v), tuple((_fp(k, objs, depth + 1), _fp(x, objs, depth + 1))
                               for k, x in v.items()))
    if isinstance(v, torch.Tensor):
        if isinstance(v, nn.Parameter) or v.numel() > MAX_TENSOR_ATTR or v.is_meta:
            raise _Unkeyable(v)
        return ("tensor", tuple(v.shape), v.dtype, v.device.type, tuple(v.reshape(-1).tolist()))
    if isinstance(v, (types.FunctionType, types.BuiltinFunctionType, type)):
        return _named(v)
    if isinstance(v, functools.partial):
        return ("partial", _fp(v.func, objs, depth + 1), _fp(v.args, objs, depth + 1),
                _fp(v.keywords, objs, depth + 1))
    if isinstance(v, (nn.Module, types.MethodType)) or not hasattr(v, "__dict__") or \
            hasattr(type(v), "__slots__"):
        raise _Unkeyable(v)
    seen = objs.get(id(v))
    if seen is None:
        objs[id(v)] = ("cycle",)      # a reference back to an object being keyed: unkeyable
        seen = (_named(type(v)), tuple((k, _fp(x, objs, depth + 1))
                                       for k, x in vars(v).items()))
        objs[id(v)] = seen
    elif seen == ("cycle",):
        raise _Unkeyable(v)
    return seen
