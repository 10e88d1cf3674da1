"""Sharding-invariant initialization at scale.

Every element's value is a pure function of ``(seed, parameter name, global element index)``
(a Philox4x64-10 counter stream; Salmon et al., "Parallel random numbers: as easy as 1, 2, 3",
SC 2011), so a parameter gathers to the same bits however it is sharded (DTensor Shard/Replicate
on 1-D and 2-D meshes, FSDP2 ``fully_shard`` after ``to_empty``), on any number of ranks and
threads, with no collective and no rank holding the full tensor. See ``docs/scale.md``.

* :func:`counter_fill_` fills a tensor, a DTensor's local shard or a shard given by offsets.
* :func:`init_model` initializes a whole model from ``{glob: initializer}``.
* ``initlab.apply(model, plan, seed=..., rng="counter")`` uses the same stream (importing this
  package registers ``"counter"`` in ``initlab.modelinit.walk.RNG_BACKENDS``).
* :func:`counter_sample` / :func:`sample_range`: the NumPy side (blocks and flat index ranges).
"""

from __future__ import annotations

from .counter import (
    COUNTER_STREAM_VERSION,
    CounterRNG,
    counter_sample,
    philox_words,
    sample_range,
    stream_key,
)
from .model import init_model
from .sharded import counter_fill_, counter_fill_rows_, shard_layout


def _counter_backend_fill(tensor, init, *, seed, key, fans, role, layout) -> None:
    """``initlab.apply``'s random-source signature over :func:`counter_fill_`."""
    counter_fill_(tensor, init, seed=seed, name=key, fans=fans, role=role, layout=layout)


def _counter_backend_fill_rows(tensor, init, *, rows, seed, key, fans, role, layout) -> None:
    """Packed blocks: fill rows ``rows`` of the whole (possibly sharded) parameter."""
    counter_fill_rows_(tensor, init, rows, seed=seed, name=key, fans=fans, role=role,
                       layout=layout)


def register_counter_backend() -> bool:
    """Add ``"counter"`` to ``initlab.modelinit.walk.RNG_BACKENDS`` (idempotent). Returns whether
    ``initlab.apply`` was importable."""
    try:
        from ..modelinit import walk
    except ImportError:
        return False
    if "counter" not in walk.RNG_BACKENDS:
        walk.RNG_BACKENDS["counter"] = walk.RngBackend(
            "counter", COUNTER_STREAM_VERSION, _counter_backend_fill,
            "Philox4x64-10 counter stream keyed by stable_u64(seed, stream key): element i of "
            "the global tensor from counter i; identical for every sharding (initlab.scale)",
            fill_rows=_counter_backend_fill_rows)
    return True


register_counter_backend()

__all__ = [
    "COUNTER_STREAM_VERSION", "CounterRNG", "counter_fill_", "counter_fill_rows_",
    "counter_sample", "init_model",
    "philox_words", "register_counter_backend", "sample_range", "shard_layout", "stream_key",
]
