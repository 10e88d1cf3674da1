"""Rules and plans: how a model is initialized, as data.

A :class:`Rule` says *which* parameters it covers (by module type, by a glob on the full dotted
parameter name, or both) and *what* they get (one initializer for every matched parameter, or one
per parameter of the module: ``weight=``, ``bias=``, ``weight_hh*=``...). A :class:`Plan` is an
ordered list of rules: first match wins, so put specific rules before general ones.

Plans are data: ``plan.to_dict()`` / ``Plan.from_dict(d)`` / ``plan.save(path)`` /
``Plan.load(path)`` round-trip through JSON, with module types written by qualified name
(``"torch.nn.Linear"``) and initializers as ``{"name": ..., "params": {...}}``. Pure data: a plan
never imports a module; its type names resolve through a registry (torch.nn, transformers by
name, and your classes registered with :func:`register_module_type`).

Globs use :func:`fnmatch.fnmatchcase`: ``*`` matches any run of characters *including dots*, so
``"*c_proj.weight"`` matches ``transformer.h.0.attn.c_proj.weight``. Names are matched after
wrappers' prefixes are stripped (DDP's ``module.``, ``torch.compile``'s ``_orig_mod.``), and a
tied parameter matches when any of its names does.
"""

from __future__ import annotations

import fnmatch
import functools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.initializer import Initializer
from ..core.validation import InitlabError, InitlabTypeError, check_scalar, error_message, fail
from ..util.hashing import canonical_param_name

KEEP = "keep"  # an init spec meaning "matched, left as it is"


def _excerpt(text: Any, n: int = 60) -> str:
    """The start of a (possibly huge or binary) input, for an error message."""
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text[:n]).decode("utf-8", "replace")
    text = str(text)
    return text if len(text) <= n else text[:n] + "..."
LAYOUTS = ("torch", "torch_transposed", "jax")


# ----------------------------------------------------------------------------- initializer specs


def to_initializer(spec: Any, where: str) -> Initializer | str:
    """Normalize an init spec: an Initializer, a catalog name, a ``{"name", "params"}`` dict, or
    ``"keep"`` (leave the parameter as it is)."""
    from ..core.registry import from_dict, get

    if isinstance(spec, Initializer):
        return spec
    if spec == KEEP:
        return KEEP
    if isinstance(spec, str):
        return get(spec)
    if isinstance(spec, Mapping) and "name" in spec:
        d = {k: v for k, v in spec.items() if k in ("name", "params", "stream")}
        return from_dict(d)
    raise InitlabTypeError(error_message(
        where, "must be an Initializer, a catalog name, a dict {'name': ..., 'params': {...}} or "
        "'keep'", spec, "pass e.g. initlab.get('he_normal') or 'zeros'."))


def _block_inits(block_init: Any, blocks: Any) -> dict[str, Initializer]:
    """A rule's ``block_init``, checked: block label -> initializer (``"keep"`` not allowed: a
    block is drawn with its tensor)."""
    if block_init is None:
        return {}
    if not isinstance(block_init, Mapping):
        raise InitlabTypeError(error_message(
            "block_init", "must be a dict of block label -> initializer", block_init,
            "pass e.g. block_init={'gate_f': 'ones'} (the labels the report lists as blocks)."))
    if block_init and not blocks:
        raise fail("block_init", "needs the packed tensors split into blocks (blocks=True)",
                   dict(block_init), "drop blocks=False, or drop block_init.")
    out: dict[str, Initializer] = {}
    for k, v in block_init.items():
        if not isinstance(k, str) or not k:
            raise fail("block_init", "keys must be block labels (non-empty strings)", k,
                       "use the labels the report lists, e.g. 'gate_f', 'q'.")
        init = to_initializer(v, f"block_init[{k!r}]")
        if init == KEEP:
            raise fail(f"block_init[{k!r}]", "cannot be 'keep' (a block is drawn with the rest "
                       "of its tensor)", v, "give the block an initializer, or keep the whole "
                       "tensor with a rule of its own.")
        assert isinstance(init, Initializer)
        out[k] = init
    return out


def initializer_to_dict(init: Initializer | str) -> dict | str:
    if init == KEEP:
        return KEEP
    assert isinstance(init, Initializer)
    return {"name": init.name, "params": dict(init.params)}


# ----------------------------------------------------------------------------- module types
#
# Plans are pure data: a module type written in a plan (a file, a dict) is looked up, never
# imported. It resolves through one registry:
#   * torch.nn's module classes, by public name ("torch.nn.Linear") or defining path
#     ("torch.nn.modules.batchnorm._NormBase"), read from the already-imported torch.nn;
#   * transformers' classes, kept as their qualified name and matched against each module's
#     class (and bases) by name, so nothing of transformers is imported;
#   * classes registered in code with :func:`register_module_type`;
#   * a bare class name (no dot) matches any module whose class or a base has that __name__.
# Anything else is refused: importing a name from a plan would run that module's code.

_USER_TYPES: dict[str, type] = {}
_NAME_MATCHED_PACKAGES = ("transformers.",)


def register_module_type(cls: type, name: str | None = None) -> type:
    """Let plans (files, dicts) name ``cls``: by ``name`` or by its qualified name
    (``type_name(cls)``, what ``Plan.to_dict`` writes). Returns ``cls``, so it works as a class
    decorator. Plans never import modules; registering in code is how your own types become
    nameable.

    >>> import torch.nn as nn, initlab
    >>> @initlab.register_module_type
    ... class Block(nn.Module): ...
    """
    if not isinstance(cls, type):
        raise InitlabTypeError(error_message("cls", "must be a class", cls,
                                             "pass the module class itself, e.g. MyBlock."))
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise fail("name", "must be a non-empty string", name,
                   "pass e.g. 'mypkg.MyBlock', or leave it None for the qualified name.")
    for key in {type_name(cls), *([] if name is None else [name])}:
        if _USER_TYPES.get(key, cls) is not cls:
            raise fail("name", f"is already registered for {_USER_TYPES[key]!r}", key,
                       "register under another name.")
        _USER_TYPES[key] = cls
    return cls


def _torch_nn_types() -> dict[str, type]:
    """Every ``torch.nn`` module class by public and defining name (from the imported torch)."""
    import torch.nn as nn

    out: dict[str, type] = {}
    stack = [nn.Module]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls.__module__.startswith("torch.nn"):
            out.setdefault(f"{cls.__module__}.{cls.__qualname__}", cls)
    for attr, obj in vars(nn).items():
        if isinstance(obj, type) and issubclass(obj, nn.Module):
            out[f"torch.nn.{attr}"] = obj
    return out


def type_name(cls: type) -> str:
    """Qualified name of a module class, the public one when it exists (``torch.nn.Linear``)."""
    if cls.__module__.startswith("torch.nn"):
        import torch.nn as nn

        if getattr(nn, cls.__name__, None) is cls:
            return f"torch.nn.{cls.__name__}"
    return f"{cls.__module__}.{cls.__qualname__}"


def resolve_type(spec: Any, where: str) -> type | str:
    """A module type from a class or a name, through the registry above (never an import).

    A class is returned as is. A name resolves to a registered class (torch.nn's, or one from
    :func:`register_module_type`); a transformers name or a bare class name (no dot) stays a
    string, matched by name against each module's class and its bases.
    """
    if isinstance(spec, type):
        return spec
    if isinstance(spec, str) and spec.strip():
        spec = spec.strip()
        if "." not in spec:
            return spec
        if spec in _USER_TYPES:
            return _USER_TYPES[spec]
        if spec.startswith("torch."):
            found = _torch_nn_types().get(spec)
            if found is not None:
                return found
        elif spec.startswith(_NAME_MATCHED_PACKAGES):
            return spec
        raise fail(where, "must name a module type known to initlab (torch.nn's, transformers' "
                   "or one registered with initlab.register_module_type); plans never import "
                   "modules", spec,
                   "register the class in your code first (initlab.register_module_type(MyBlock)"
                   "), or write its bare class name (e.g. 'MyBlock') to match by name.")
    raise InitlabTypeError(error_message(where, "must be a module class or its qualified name",
                                         spec, "pass e.g. torch.nn.Linear or 'torch.nn.Linear'."))


def _type_matches(module: object, t: type | str) -> bool:
    if isinstance(t, str):
        cls: type = type(module)  # `type`: mypy rejects type[object] as Hashable (lru_cache)
        return _class_matches(cls, t)
    return isinstance(module, t)


@functools.lru_cache(maxsize=4096)
def _class_matches(cls: type, t: str) -> bool:
    """Whether class ``cls`` is (or derives from) the class named ``t`` (a short or dotted
    name); a class's MRO never changes, so the answer is kept (the MRO walk was a tenth of
    ``apply``'s Python time on GPT-2)."""
    mro = cls.__mro__
    if "." not in t:
        return any(c.__name__ == t for c in mro)
    pkg, _, short = t.partition(".")
    return any(f"{c.__module__}.{c.__qualname__}" == t
               # the top-level alias transformers.X of transformers.models....X
               or (c.__module__.startswith(pkg + ".") and c.__qualname__ == short)
               for c in mro)


# ----------------------------------------------------------------------------- Rule


@functools.lru_cache(maxsize=4096)
def _canonical_glob(pattern: str) -> str:
    """A glob written with a wrapper's prefix (DDP's ``module.``, a PeftModel's
    ``base_model.model.``, auto's rules on a wrapped model) as the canonical names read."""
    return canonical_param_name(pattern)


@dataclass(frozen=True, eq=False)
class Rule:
    """One line of a plan.

    ``Rule(match, init=None, /, **per_param)``:

    * ``match``: a glob on the full dotted parameter name (``"*c_proj.weight"``), a module class
      (``nn.Linear``), a tuple of classes, or ``None`` with ``module=`` / ``pattern=`` given as
      keywords (both may be given: the parameter must satisfy both).
    * ``init``: the initializer for every parameter the rule matches.
    * ``**per_param``: initializers by the parameter's local name in its module (``weight=``,
      ``bias=``); pass globs through ``params={"weight_hh*": ...}``. A parameter whose local name
      is not listed (and no ``init`` given) is not matched by this rule; the next rule is tried.

    Keywords: ``scale`` multiplies the drawn values (Fixup's L^(-1/(2m-2))); ``layout`` overrides
    the fan convention (e.g. ``"torch_transposed"`` for true ConvTranspose fans); ``blocks=False``
    treats packed tensors (MHA ``in_proj``, LSTM/GRU gates) as one matrix, as torch does;
    ``block_init`` gives named blocks of the packed tensors the rule matches their own
    initializer (``block_init={"gate_f": "ones"}`` on an LSTM's ``bias_ih*``: the forget gate's
    rows), the rule's initializer drawing the others, and every matched tensor must have each
    named block (the report lists a tensor's blocks); ``why`` is an explanation shown in the
    report; ``label`` names the rule in the report.

    Initializers are :class:`~initlab.Initializer` objects, catalog names, or ``"keep"``.

    >>> import torch.nn as nn, initlab
    >>> r = Rule(nn.Linear, weight=initlab.normal(std=0.02), bias="zeros")
    """

    module: tuple[type | str, ...] = ()
    pattern: str | None = None
    init: Initializer | str | None = None
    params: Mapping[str, Initializer | str] = field(default_factory=dict)
    scale: float = 1.0
    layout: str | None = None
    blocks: bool = True
    why: str = ""
    label: str = ""
    block_init: Mapping[str, Initializer] = field(default_factory=dict)

    def __init__(self, match: Any = None, init: Any = None, /, *, module: Any = None,
                 pattern: str | None = None, params: Mapping[str, Any] | None = None,
                 scale: float = 1.0, layout: str | None = None, blocks: bool = True,
                 why: str = "", label: str = "", block_init: Mapping[str, Any] | None = None,
                 **per_param: Any):
        mods: list[Any] = []
        if isinstance(match, str):
            if pattern is not None:
                raise fail("pattern", "cannot be given twice (positionally and as a keyword)",
                           pattern, "pass the glob once.")
            pattern = match
        elif isinstance(match, type):
            mods.append(match)
        elif isinstance(match, (tuple, list)):
            mods.extend(match)
        elif match is not None:
            raise InitlabTypeError(error_message(
                "match", "must be a glob string, a module class or a tuple of classes", match,
                "pass e.g. '*c_proj.weight' or torch.nn.Linear."))
        if module is not None:
            mods.extend(module if isinstance(module, (tuple, list)) else [module])
        mod_types = tuple(resolve_type(m, "module") for m in mods)
        if pattern is not None and not isinstance(pattern, str):
            raise InitlabTypeError(error_message("pattern", "must be a string glob", pattern,
                                                 "pass e.g. '*.weight'."))
        if not mod_types and pattern is None:
            raise fail("match", "must select something: a glob, a module type, or both", None,
                       "pass e.g. Rule('*.bias', 'zeros') or Rule(nn.Linear, weight=...).")
        per = dict(params or {})
        per.update(per_param)
        init_n = None if init is None else to_initializer(init, "init")
        per_n = {k: to_initializer(v, f"{k}") for k, v in per.items()}
        if init_n is None and not per_n:
            raise fail("init", "must be given, or at least one per-parameter initializer", None,
                       "pass e.g. Rule('*.bias', 'zeros') or Rule(nn.Linear, weight='he_normal').")
        sc = check_scalar(scale, "scale", why=" (it multiplies the drawn values)")
        if layout is not None and layout not in LAYOUTS:
            raise fail("layout", f"must be one of {LAYOUTS} or None", layout,
                       "pass 'torch', 'torch_transposed' or 'jax'.")
        by_block = _block_inits(block_init, blocks)
        object.__setattr__(self, "block_init", by_block)
        object.__setattr__(self, "module", mod_types)
        object.__setattr__(self, "pattern", pattern)
        object.__setattr__(self, "init", init_n)
        object.__setattr__(self, "params", per_n)
        object.__setattr__(self, "scale", sc)
        object.__setattr__(self, "layout", layout)
        object.__setattr__(self, "blocks", bool(blocks))
        object.__setattr__(self, "why", str(why))
        object.__setattr__(self, "label", str(label))

    # ------------------------------------------------------------------ matching
    def matches_type(self, module) -> bool:
        """Whether the rule's module types (if any) admit ``module``: a property of its class,
        which ``match`` keeps per class."""
        return not self.module or any(_type_matches(module, t) for t in self.module)

    def select(self, names: Iterable[str], module, local: str, *,
               type_ok: bool | None = None) -> Initializer | str | None:
        """The initializer this rule gives a parameter (its names, owning module and local
        name), or None when the rule does not match it. ``type_ok``: :meth:`matches_type`'s
        answer for ``module`` when the caller has it."""
        if not (self.matches_type(module) if type_ok is None else type_ok):
            return None
        if self.pattern is not None:
            # names are canonical (wrappers' prefixes stripped): so is the glob, as well
            pats = {self.pattern, _canonical_glob(self.pattern)}
            if not any(fnmatch.fnmatchcase(n, pat) for n in names for pat in pats):
                return None
        if local in self.params:
            return self.params[local]
        for key, init in self.params.items():
            if any(ch in key for ch in "*?[") and fnmatch.fnmatchcase(local, key):
                return init
        return self.init

    def describe(self) -> str:
        """A short human-readable form, e.g. ``Linear[weight,bias]`` or ``*c_proj.weight``."""
        return self.label or self.selector()

    def selector(self) -> str:
        """What the rule matches: module types, glob and per-parameter names."""
        parts = []
        if self.module:
            parts.append("|".join(t.rpartition(".")[2] if isinstance(t, str) else t.__name__
                                  for t in self.module))
        if self.pattern is not None:
            parts.append(repr(self.pattern) if self.module else self.pattern)
        s = " & ".join(parts)
        if self.params:
            s += "[" + ",".join(self.params) + "]"
        return s

    # ------------------------------------------------------------------ serialization
    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        if self.module:
            d["module"] = [t if isinstance(t, str) else type_name(t) for t in self.module]
        if self.pattern is not None:
            d["pattern"] = self.pattern
        if self.init is not None:
            d["init"] = initializer_to_dict(self.init)
        if self.params:
            d["params"] = {k: initializer_to_dict(v) for k, v in self.params.items()}
        if self.scale != 1.0:
            d["scale"] = self.scale
        if self.layout is not None:
            d["layout"] = self.layout
        if not self.blocks:
            d["blocks"] = False
        if self.block_init:
            d["block_init"] = {k: initializer_to_dict(v) for k, v in self.block_init.items()}
        if self.why:
            d["why"] = self.why
        if self.label:
            d["label"] = self.label
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Rule:
        if not isinstance(d, Mapping):
            raise fail("rule", "must be a dict (from Rule.to_dict())", d,
                       "pass e.g. {'module': ['torch.nn.Linear'], 'params': {'weight': "
                       "{'name': 'he_normal'}}}.")
        known = {"module", "pattern", "init", "params", "scale", "layout", "blocks", "why",
                 "label", "block_init"}
        extra = sorted(set(d) - known)
        if extra:
            raise fail("rule", f"has unknown key(s) {extra}", dict(d),
                       f"use only {sorted(known)}.")
        for key, kind in (("blocks", bool), ("why", str), ("label", str)):
            if key in d and not isinstance(d[key], kind):
                raise InitlabTypeError(error_message(
                    f"rule[{key!r}]", f"must be a {kind.__name__}", d[key],
                    f"write {key} as a JSON {'true/false' if kind is bool else 'string'}."))
        if "params" in d and not isinstance(d["params"], Mapping):
            raise InitlabTypeError(error_message(
                "rule['params']", "must be a dict of local name -> initializer", d["params"],
                "write e.g. {'weight': {'name': 'he_normal'}}."))
        return cls(None, d.get("init"), module=d.get("module"), pattern=d.get("pattern"),
                   params=d.get("params"), scale=d.get("scale", 1.0), layout=d.get("layout"),
                   blocks=d.get("blocks", True), why=d.get("why", ""), label=d.get("label", ""),
                   block_init=d.get("block_init"))

    def __repr__(self) -> str:
        return f"Rule({json.dumps(self.to_dict(), default=str)})"


# ----------------------------------------------------------------------------- Plan


@dataclass(frozen=True, eq=False)
class Plan:
    """An ordered list of :class:`Rule` s; the first rule that matches a parameter wins.

    ``strict=True`` makes a parameter that no rule matches an error (default: it is left as it is
    and listed in the report). ``warn_unused`` warns about rules that match no parameter (the
    built-in plans, which carry rules for every layer type, turn it off). ``reset_running_stats``
    resets BatchNorm-style running statistics of the model's norm layers.
    """

    rules: tuple[Rule, ...]
    strict: bool = False
    name: str = ""
    description: str = ""
    warn_unused: bool = True
    reset_running_stats: bool = True
    options: Mapping[str, Any] = field(default_factory=dict)

    def __init__(self, rules: Iterable[Rule], *, strict: bool = False, name: str = "",
                 description: str = "", warn_unused: bool = True,
                 reset_running_stats: bool = True, options: Mapping[str, Any] | None = None):
        rules = tuple(rules)
        for i, r in enumerate(rules):
            if not isinstance(r, Rule):
                raise InitlabTypeError(error_message(
                    f"rules[{i}]", "must be a Rule", r, "wrap it: Rule(match, init)."))
        object.__setattr__(self, "rules", rules)
        object.__setattr__(self, "strict", bool(strict))
        object.__setattr__(self, "name", str(name))
        object.__setattr__(self, "description", str(description))
        object.__setattr__(self, "warn_unused", bool(warn_unused))
        object.__setattr__(self, "reset_running_stats", bool(reset_running_stats))
        object.__setattr__(self, "options", dict(options or {}))

    def __add__(self, other: Plan) -> Plan:
        """Concatenate: ``specific + general`` (the left plan's rules are tried first)."""
        return Plan(self.rules + other.rules, strict=self.strict or other.strict,
                    name=self.name or other.name, description=self.description,
                    warn_unused=self.warn_unused and other.warn_unused,
                    reset_running_stats=self.reset_running_stats,
                    options={**other.options, **self.options})

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form; :meth:`from_dict` rebuilds an equal plan."""
        from ..core.initializer import STREAM_VERSION

        return {"name": self.name, "description": self.description, "strict": self.strict,
                "warn_unused": self.warn_unused, "reset_running_stats": self.reset_running_stats,
                "options": dict(self.options), "rules": [r.to_dict() for r in self.rules],
                "format": "initlab-plan-v1", "core_stream": STREAM_VERSION}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Plan:
        """Rebuild a plan from :meth:`to_dict`'s form. Pure data: module types resolve through
        the registry (:func:`resolve_type`), nothing is imported."""
        if not isinstance(d, Mapping) or not isinstance(d.get("rules"), list):
            raise fail("plan", "must be a dict with a 'rules' list (from Plan.to_dict())",
                       d if not isinstance(d, Mapping) else sorted(d),
                       "save a plan with plan.to_dict() / plan.save(path).")
        fmt = d.get("format", "initlab-plan-v1")
        if fmt != "initlab-plan-v1":
            raise fail("plan['format']", "must be 'initlab-plan-v1'", fmt,
                       "load a plan written by Plan.save / Plan.to_dict.")
        for key, kind in (("strict", bool), ("warn_unused", bool), ("reset_running_stats", bool),
                          ("name", str), ("description", str)):
            if key in d and not isinstance(d[key], kind):
                raise InitlabTypeError(error_message(
                    f"plan[{key!r}]", f"must be a {kind.__name__}", d[key],
                    f"write {key} as a JSON {'true/false' if kind is bool else 'string'}."))
        options = d.get("options") or {}
        if not isinstance(options, Mapping):
            raise InitlabTypeError(error_message("plan['options']", "must be a dict", options,
                                                 "write options as a JSON object."))
        rules = []
        for i, r in enumerate(d["rules"]):
            try:
                rules.append(Rule.from_dict(r))
            except (InitlabError, InitlabTypeError) as exc:
                raise type(exc)(f"in rules[{i}]: {exc}") from None
        return cls(rules, strict=d.get("strict", False),
                   name=d.get("name", ""), description=d.get("description", ""),
                   warn_unused=d.get("warn_unused", True),
                   reset_running_stats=d.get("reset_running_stats", True),
                   options=options)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False)

    @classmethod
    def from_json(cls, text: str, *, source: str = "text") -> Plan:
        """Rebuild a plan from :meth:`to_json`'s text; ``source`` names it in errors."""
        if not isinstance(text, (str, bytes, bytearray)):
            raise InitlabTypeError(error_message("text", "must be a JSON string", type(text).__name__,
                                                 "pass plan.to_json()'s output, or use Plan.load(path)."))
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise fail("plan", f"must be valid JSON ({source} is not: {exc})",
                       _excerpt(text), "load a file written by Plan.save / Plan.to_json.") from None
        return cls.from_dict(data)

    def save(self, path: str | Path) -> Path:
        """Write the plan as JSON (atomically)."""
        from ..util.atomic import atomic_write_text

        return atomic_write_text(path, self.to_json() + "\n")

    @classmethod
    def load(cls, path: str | Path) -> Plan:
        """Read a plan file written by :meth:`save`; errors name the file."""
        if not isinstance(path, (str, Path)):
            raise InitlabTypeError(error_message("path", "must be a file path", type(path).__name__,
                                                 "pass the path of a plan JSON file."))
        p = Path(path)
        if not p.is_file():
            raise fail("path", "must be an existing plan file", str(p),
                       "check the path (a JSON file written by Plan.save).")
        try:
            text = p.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise fail("path", f"must be a UTF-8 JSON plan file ({exc.reason} at byte "
                       f"{exc.start})", str(p), "load a file written by Plan.save.") from None
        try:
            return cls.from_json(text, source=f"file {str(p)!r}")
        except (InitlabError, InitlabTypeError) as exc:
            msg = str(exc)
            if str(p) not in msg:
                msg = f"plan file {str(p)!r}: {msg}"
            raise type(exc)(msg) from None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Plan):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        head = f"Plan({self.name!r}, " if self.name else "Plan("
        lines = [head + f"strict={self.strict}, {len(self.rules)} rules: first match wins)"]
        for i, r in enumerate(self.rules, 1):
            if r.params:
                what = ", ".join(f"{k}={_init_text(v)}" for k, v in r.params.items())
                if r.init is not None:
                    what += f", else {_init_text(r.init)}"
            else:
                what = _init_text(r.init)
            if r.block_init:
                what += "; " + ", ".join(f"block {k}: {_init_text(v)}"
                                         for k, v in r.block_init.items())
            extra = "" if r.scale == 1.0 else f" x{r.scale:g}"
            label = f" ({r.label})" if r.label else ""
            lines.append(f"  {i}. {r.selector()}{label} -> {what}{extra}")
        return "\n".join(lines)


def _init_text(init: Initializer | str | None) -> str:
    return str(init) if isinstance(init, str) or init is None else repr(init)
