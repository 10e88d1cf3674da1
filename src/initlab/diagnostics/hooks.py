"""Hooks that own their handles and always clean up.

A :class:`Hook` registers one function on one module (``"forward"``, ``"forward_pre"`` or
``"backward"``) or wraps any removable handle (e.g. the one ``Tensor.register_hook`` returns). It
is a context manager, and :meth:`Hook.remove` is safe to call twice. :class:`Hooks` is a
collection of them with the same contract, so that::

    with Hooks() as hooks:
        hooks.add(Hook(layer, record))
        model(x)            # even if this raises, every hook is gone when the block exits

The architecture follows fastai's ``callback/hook.py`` (``Hook``, ``Hooks``): a hook owns its
handle and removes itself; what a hook *records* is up to the function it calls, and statistics
live elsewhere (:mod:`initlab.diagnostics.stats`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from ..core.validation import check_choice

KINDS = ("forward", "forward_pre", "backward")


class Hook:
    """One registered hook; removes itself on :meth:`remove` or when its ``with`` block exits.

    ``Hook(module, fn, kind="forward")`` calls ``module.register_forward_hook(fn)`` (or
    ``register_forward_pre_hook`` / ``register_full_backward_hook``). ``Hook.wrap(handle)`` adopts
    an existing removable handle instead.
    """

    def __init__(self, module: Any = None, fn: Callable | None = None, kind: str = "forward", *,
                 handle: Any = None):
        if handle is None:
            check_choice(kind, "kind", KINDS)
            if module is None or fn is None:
                from ..core.validation import fail

                raise fail("module", "and `fn` are both required unless `handle=` is given",
                           (module, fn), "pass Hook(module, fn) or Hook.wrap(handle).")
            register = {"forward": module.register_forward_hook,
                        "forward_pre": module.register_forward_pre_hook,
                        "backward": module.register_full_backward_hook}[kind]
            handle = register(fn)
        self.module = module
        self.kind = kind
        self._handle = handle

    @classmethod
    def wrap(cls, handle: Any) -> Hook:
        """Adopt a removable handle (anything with ``.remove()``), e.g. from ``Tensor.register_hook``."""
        return cls(kind="handle", handle=handle)

    @property
    def removed(self) -> bool:
        return self._handle is None

    def remove(self) -> None:
        """Remove the hook; a second call does nothing."""
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.remove()

    def __enter__(self) -> Hook:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()

    def __repr__(self) -> str:
        state = "removed" if self.removed else "active"
        owner = type(self.module).__name__ if self.module is not None else "handle"
        return f"Hook({owner}, kind={self.kind!r}, {state})"


class Hooks:
    """A collection of :class:`Hook`; removing it (or leaving its ``with`` block) removes them all."""

    def __init__(self) -> None:
        self._hooks: list[Hook] = []

    def add(self, hook: Hook) -> Hook:
        self._hooks.append(hook)
        return hook

    def register(self, module: Any, fn: Callable, kind: str = "forward") -> Hook:
        """Register ``fn`` on ``module`` and keep the hook."""
        return self.add(Hook(module, fn, kind))

    def adopt(self, handle: Any) -> Hook:
        """Keep an existing removable handle (e.g. from ``Tensor.register_hook``)."""
        return self.add(Hook.wrap(handle))

    def remove(self) -> None:
        """Remove every hook (each at most once); safe to call again."""
        hooks, self._hooks = self._hooks, []
        errors = []
        for h in hooks:
            try:
                h.remove()
            except Exception as exc:  # keep removing the others, re-raise the first at the end
                errors.append(exc)
        if errors:
            raise errors[0]

    def __len__(self) -> int:
        return sum(not h.removed for h in self._hooks)

    def __iter__(self) -> Iterator[Hook]:
        return iter(list(self._hooks))

    def __enter__(self) -> Hooks:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()
