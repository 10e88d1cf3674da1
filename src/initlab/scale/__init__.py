"""Sharding-invariant initialization at scale.

Every element's value is a pure function of ``(seed, parameter name, global element index)``
(a Philox4x64-10 counter stream; Salmon et al., "Parallel random numbers: as easy as 1, 2, 3",
SC 2011), so a parameter gathers to the same bits however it is sharded (DTensor Shard/Replicate
on 1-D and 2-D meshes, FSDP2 ``fully_shard`` after ``to_empty``), on any number of ranks and
threads, with no collective and no rank holding the full tensor. The default stream
(:data:`COUNTER_STREAM_VERSION`, ``"philox4x64-10-u32-erfinv-v2"``) runs in torch tensor ops on
the tensor's own device; ``"philox4x64-10-ndtri-v1"`` stays selectable. See ``docs/scale.md``.

* ``initlab.apply(model, plan, seed=..., rng="counter")`` (or ``initlab.materialize``) is the
  model-level entry (importing this package registers ``"counter"`` and one
  ``"counter:<version>"`` per stream version in ``initlab.modelinit.walk.RNG_BACKENDS``;
  :func:`rng_for_stream` maps a recorded version to its ``rng`` name and refuses unknown ones).
* :func:`counter_fill_` fills a tensor, a DTensor's local shard or a shard given by offsets;
  :func:`counter_fill_rows_` a row block of a packed parameter.
* :func:`counter_sample` / :func:`sample_range`: NumPy arrays of blocks and flat index ranges.
* :func:`words_backend`: where the CPU's Philox words come from, ``"compiled"`` (the optional
  extension ``initlab.scale._philox``, built at install when a C compiler is present) or
  ``"numpy"`` (NumPy's ``Philox``); the same words bit for bit, so it changes speed only.
  :func:`set_words_backend` (or ``INITLAB_PHILOX_WORDS=numpy``) forces NumPy's.
"""

from __future__ import annotations

from .counter import (
    COUNTER_STREAM_VERSION,
    STREAM_VERSIONS,
    V1,
    V2,
    CounterRNG,
    check_stream,
    compiled_words_available,
    counter_sample,
    philox_words,
    sample_range,
    set_words_backend,
    stream_key,
    words_backend,
)
from .sharded import check_fillable, counter_fill_, counter_fill_rows_, shard_layout
from .torch_stream import philox_words_torch

_DESCRIPTION = {
    V1: "Philox4x64-10 counter stream keyed by stable_u64(seed, stream key), one 64-bit word per "
        "element, inverse CDF in float64 on the host (NumPy/SciPy)",
    V2: "Philox4x64-10 counter stream keyed by stable_u64(seed, stream key), one 32-bit half "
        "word per element, transforms in torch ops on the tensor's device",
}


def _backend_fns(stream: str):
    def fill(tensor, init, *, seed, key, fans, role, layout, sink=None) -> None:
        """``initlab.apply``'s random-source signature over :func:`counter_fill_` (``sink``:
        the report's ``(mean, std)``, measured while drawing when it can be)."""
        counter_fill_(tensor, init, seed=seed, name=key, fans=fans, role=role, layout=layout,
                      stream=stream, sink=sink)

    def fill_rows(tensor, init, *, rows, seed, key, fans, role, layout, single=False) -> None:
        """Packed blocks: fill rows ``rows`` of the whole (possibly sharded) parameter."""
        counter_fill_rows_(tensor, init, rows, seed=seed, name=key, fans=fans, role=role,
                           layout=layout, stream=stream, single=single)

    return fill, fill_rows


def rng_for_stream(version: str) -> str:
    """The ``rng=`` name that draws counter-stream ``version`` (as recorded in an
    ``InitReport.stream_version``, where ``+...`` suffixes name other components), e.g.
    ``initlab.apply(m, plan, seed=0, rng=rng_for_stream(old_report.stream_version))``. An
    unknown version is refused with the versions this initlab implements."""
    if not isinstance(version, str) or not version:
        from ..core.validation import InitlabTypeError, error_message

        raise InitlabTypeError(error_message(
            "version", "must be a stream version string (e.g. an InitReport.stream_version)",
            version, f"pass one of {', '.join(repr(v) for v in STREAM_VERSIONS)}."))
    base = version.split("+", 1)[0]
    return f"counter:{check_stream(base)}"


def register_counter_backend() -> bool:
    """Add ``"counter"`` (the default version) and ``"counter:<version>"`` for every version to
    ``initlab.modelinit.walk.RNG_BACKENDS`` (idempotent). Returns whether ``initlab.apply`` was
    importable. The sources are ``trusted``: :func:`check_fillable` raises, before ``apply``'s
    first write, everything a fill could still raise once the plan resolved, so ``apply`` holds
    no rollback copy of the model (a full copy before: +100% peak memory, ~25% of the time)."""
    try:
        from ..modelinit import walk
    except ImportError:
        return False
    for name, version in [("counter", COUNTER_STREAM_VERSION),
                          *((f"counter:{v}", v) for v in STREAM_VERSIONS)]:
        if name not in walk.RNG_BACKENDS:
            fill, fill_rows = _backend_fns(version)
            walk.RNG_BACKENDS[name] = walk.RngBackend(
                name, version, fill, _DESCRIPTION[version] + "; element i of the global tensor "
                "from counter i, identical for every sharding (initlab.scale)",
                fill_rows=fill_rows, trusted=True, check=check_fillable, measures=True)
    return True


register_counter_backend()

__all__ = [
    "COUNTER_STREAM_VERSION", "CounterRNG", "STREAM_VERSIONS", "V1", "V2", "check_fillable",
    "check_stream", "compiled_words_available",
    "counter_fill_", "counter_fill_rows_", "counter_sample", "philox_words", "philox_words_torch",
    "register_counter_backend", "rng_for_stream", "sample_range", "set_words_backend",
    "shard_layout", "stream_key", "words_backend",
]
