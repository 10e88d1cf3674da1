"""Random sources for :func:`initlab.apply`: the ``RNG_BACKENDS`` registry.

Each (block of a) parameter gets its own stream keyed by its canonical name: with the default
``"torch"`` source a ``torch.Generator`` seeded with ``stream_seed(seed, key, bits=63)``
(:func:`initlab.core.seeding.stream_seed`: SHA-256, never Python's salted ``hash()``), where the
key is the parameter's primary canonical name (wrappers' prefixes ``module.`` and ``_orig_mod.``
stripped; ``/q``, ``/k``, ``/v`` or ``/gate_{g}`` appended for blocks). Initializing one parameter
never shifts another's values, and adding a layer leaves every other parameter's values unchanged.
``initlab.scale`` registers ``"counter"`` (sharding-invariant) through the same interface.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ..core.initializer import Initializer
from ..core.seeding import stream_seed
from ..core.validation import fail


@dataclass(frozen=True)
class RngBackend:
    """A random source for :func:`apply`: ``fill(tensor, init, *, seed, key, fans, role,
    layout)`` fills ``tensor`` in place with a draw of ``init`` that depends only on
    ``(seed, key)``; ``stream_version`` is recorded in the report."""

    name: str
    stream_version: str
    fill: Callable[..., None]
    description: str = ""
    # optional: fill rows [start, stop) of a packed parameter (q/k/v, RNN gates) in place,
    # for sources whose tensors may be sharded (a slice of a DTensor is not a view of its shard)
    fill_rows: Callable[..., None] | None = None
    # True when ``fill`` cannot fail once the initializer resolved for the tensor's shape
    # (then ``apply`` holds no rollback copy of what it writes; see modelinit.engine)
    trusted: bool = False
    # optional: ``check(tensor)`` raises what ``fill`` would raise for that tensor; ``apply`` calls
    # it on every tensor it will fill before the first write (how a source becomes ``trusted``)
    check: Callable[[torch.Tensor], None] | None = None
    # True when ``fill`` takes ``sink=`` (a list): it may append ``(mean, std)`` of the values it
    # drew, measured in the same pass (or known exactly: a constant), which the report then uses
    measures: bool = False


def _torch_generator(seed: int, key: str, device) -> torch.Generator:
    """The Generator of one stream: its own seed, never global state."""
    return torch.Generator(device=device).manual_seed(stream_seed(seed, key, bits=63))


def _torch_fill(tensor: torch.Tensor, init: Initializer, *, seed: int, key: str, fans, role: str,
                layout: str, sink: list | None = None) -> None:
    from .. import torch as itorch  # initlab.torch: the drop-ins' own validate-resolve-draw

    g = _torch_generator(seed, key, tensor.device)
    itorch._init(tensor, init, g, fans=fans, role=role, layout=layout, sink=sink)


TORCH_STREAM_VERSION = "torch-generator-per-param-sha256-v1"

#: Registry of random sources; ``initlab.scale`` adds ``"counter"`` (sharding-invariant).
RNG_BACKENDS: dict[str, RngBackend] = {
    "torch": RngBackend("torch", TORCH_STREAM_VERSION, _torch_fill,
                        "one torch.Generator per parameter (block), seeded by "
                        "stream_seed(seed, stream key, bits=63)", trusted=True, measures=True),
}

# random sources registered by other initlab packages on import
RNG_PROVIDERS = {"counter": "initlab.scale"}


def stream_version(rng: str = "torch") -> str:
    """Stream version recorded in reports: the random source's and initlab.torch's, if any."""
    v = RNG_BACKENDS[rng].stream_version
    try:
        from .. import torch as itorch

        extra = getattr(itorch, "STREAM_VERSION", None)
    except ImportError:  # pragma: no cover
        extra = None
    return f"{v}+{extra}" if extra else v


def check_rng(rng: Any) -> str:
    if isinstance(rng, str) and rng not in RNG_BACKENDS and rng in RNG_PROVIDERS:
        import importlib

        try:
            importlib.import_module(RNG_PROVIDERS[rng])
        except ImportError:
            pass
    if not isinstance(rng, str) or rng not in RNG_BACKENDS:
        raise fail("rng", f"must be one of {sorted(RNG_BACKENDS)}", rng,
                   "pass rng='torch' (initlab.scale registers 'counter' for sharded tensors).")
    return rng
