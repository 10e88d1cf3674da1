"""Registry of named initializers: ``names()``, ``get(name, **params)``, ``from_dict(d)``."""

from __future__ import annotations

import difflib
import functools
import inspect
from collections.abc import Callable
from typing import Any

from .initializer import STREAM_VERSION, Initializer
from .validation import InitlabTypeError, fail

_REGISTRY: dict[str, Callable[..., Initializer]] = {}
_CANONICAL: dict[str, str] = {}  # alias -> canonical name


def register(name: str | None = None, *, aliases: tuple[str, ...] = ()):
    """Decorator: register a preset factory under ``name`` (default: its ``__name__``)."""

    def deco(fn: Callable[..., Initializer]) -> Callable[..., Initializer]:
        key = name or fn.__name__
        for k in (key, *aliases):
            if k in _REGISTRY and _REGISTRY[k] is not fn:
                raise fail("name", "is already registered to another initializer", k,
                           "choose another name.")
            _REGISTRY[k] = fn
            _CANONICAL[k] = key
        return fn

    return deco


def names() -> list[str]:
    """Sorted list of every registered initializer name, aliases included."""
    _ensure_loaded()
    return sorted(_REGISTRY)


def canonical_name(name: str) -> str:
    """The canonical name of an alias (``xavier_uniform`` -> ``glorot_uniform``)."""
    _ensure_loaded()
    _check_name(name)
    return _CANONICAL[name]


def _check_name(name: Any) -> None:
    if not isinstance(name, str) or name not in _REGISTRY:
        close = difflib.get_close_matches(str(name), _REGISTRY, n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise fail("name", "must be a registered initializer", name,
                   f"pass one of: {', '.join(sorted(_REGISTRY))}.{hint}")


def get(name: str | Initializer, **params: Any) -> Initializer:
    """Build the initializer ``name`` with ``params``.

    Unknown names and unknown parameters raise errors that list the valid ones.

    >>> get("glorot_uniform")
    glorot_uniform(gain=1.0)
    """
    _ensure_loaded()
    if isinstance(name, Initializer):
        if params:
            raise fail("params", "cannot be given with an Initializer object", params,
                       "pass a name to rebuild with new parameters.")
        return name
    _check_name(name)
    factory = _REGISTRY[name]
    sig = _signature(factory)
    valid = [p for p in sig.parameters if not p.startswith("_")]
    unknown = [k for k in params if k not in valid]
    if unknown:
        raise InitlabTypeError(
            f"`{name}` got unknown parameter(s) {', '.join(map(repr, unknown))}; "
            f"valid parameters: {', '.join(valid) or '(none)'}. Fix: pass only those.")
    try:
        sig.bind(**params)
    except TypeError as exc:
        raise InitlabTypeError(f"`{name}`: {exc}. Valid parameters: {', '.join(valid)}.") from None
    return factory(**params)


@functools.cache
def _signature(factory: Callable[..., Initializer]) -> inspect.Signature:
    return inspect.signature(factory)


def adapter_factory(name: str, build: Callable[..., Any], extras: dict[str, Any], *,
                    returns: str, doc: str) -> Callable[..., Any]:
    """A framework adapter's function for the catalog entry ``name``.

    It takes the preset's own parameters (same names, defaults and order) plus the keyword-only
    ``extras`` (name -> default), and returns ``build(name, **extras, **params)``. Its
    ``__signature__`` shows both, so ``help()`` and IDEs see the real parameters; its docstring is
    ``doc`` followed by the preset's.
    """
    _ensure_loaded()
    _check_name(name)
    preset = _REGISTRY[name]
    sig = _signature(preset)

    def factory(*args: Any, **kwargs: Any) -> Any:
        ext = {k: kwargs.pop(k, default) for k, default in extras.items()}
        try:
            bound = sig.bind(*args, **kwargs).arguments
        except TypeError as exc:
            raise InitlabTypeError(f"`{name}`: {exc}. Valid parameters: "
                                   f"{', '.join(sig.parameters) or '(none)'}.") from None
        return build(name, **ext, **bound)

    factory.__name__ = factory.__qualname__ = name
    extra = [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=v)
             for k, v in extras.items()]
    factory.__signature__ = sig.replace(  # type: ignore[attr-defined]
        parameters=[*sig.parameters.values(), *extra], return_annotation=returns)
    factory.__doc__ = f"{doc}\n\n{preset.__doc__ or ''}"
    return factory


def from_dict(d: dict[str, Any]) -> Initializer:
    """Rebuild an initializer from :meth:`Initializer.to_dict`'s output.

    A dict recorded under another sampling stream version is refused (the same seed would give
    different numbers), unless it has no ``stream`` key (a hand-written description).
    """
    if not isinstance(d, dict) or "name" not in d:
        raise fail("d", "must be a dict with at least a 'name' key (from Initializer.to_dict())", d,
                   "pass e.g. {'name': 'he_normal', 'params': {}}.")
    stream = d.get("stream")
    if stream is not None and stream != STREAM_VERSION:
        raise fail("d['stream']", f"must be {STREAM_VERSION!r} (this initlab's sampling stream)",
                   stream, "use the initlab version that recorded it to reproduce the same numbers, "
                   "or drop the 'stream' key to accept this version's stream.")
    params = d.get("params") or {}
    if not isinstance(params, dict):
        raise fail("d['params']", "must be a dict", params)
    return get(d["name"], **params)


# Modules above the core that add entries to the catalog (``initlab.theory.critical`` registers
# `critical`). The core never imports them by itself: the top-level package names them with
# add_catalog_provider (dependency inversion: tests/test_layering.py checks the core imports
# nothing above it), and they are imported at the first catalog use.
_PROVIDERS: list[str] = []
_loaded = False


def add_catalog_provider(module: str) -> None:
    """Have ``module`` (a dotted name) imported at the first catalog use, so the entries it
    registers are in ``names()``. A module that is not installed is skipped; any other import
    error propagates."""
    global _loaded
    if not isinstance(module, str) or not module:
        raise InitlabTypeError(f"`module` must be a non-empty dotted module name; got {module!r}.")
    if module not in _PROVIDERS:
        _PROVIDERS.append(module)
        if _loaded:
            _import_provider(module)


def _import_provider(module: str) -> None:
    import importlib

    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:  # only tolerate the module itself (or a parent) being absent
        parents = {module.rsplit(".", i)[0] for i in range(module.count(".") + 1)}
        if exc.name not in parents:
            raise


def _ensure_loaded() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for module in list(_PROVIDERS):
            _import_provider(module)
