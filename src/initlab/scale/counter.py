"""A counter-based random stream: every element is a pure function of (seed, name, index).

Two stream versions exist (:data:`STREAM_VERSIONS`); :data:`COUNTER_STREAM_VERSION` is the
default, ``"philox4x64-10-u32-erfinv-v2"`` (torch tensor ops on the tensor's own device, see
:mod:`initlab.scale.torch_stream`). Every entry point takes ``stream=`` to select one, and an
unknown version is refused (:func:`check_stream`). This module holds the version registry and
the NumPy implementation of the first version, kept so that values recorded under it stay
reproducible:

Stream ``"philox4x64-10-ndtri-v1"`` (:data:`V1`)
------------------------------------------------
* **Key.** ``key = stable_u64(seed, canonical_param_name(name))`` (SHA-256, so it is the same in
  every process and on every machine); the Philox key is the 128-bit ``(key, 0)``.
* **Bits.** Element ``i`` of the flattened (row-major) global tensor owns the 64-bit word ``i`` of
  NumPy's ``Philox`` (Philox4x64-10) output for that key started at counter 0: block ``i // 4 + 1``
  of the cipher, word ``i % 4`` of the block. Nothing else is ever drawn from the stream, so the
  word of element ``i`` does not depend on which elements are drawn, in what order, how many
  threads or chunks are used, or which rank draws them.
* **Uniform.** ``u = (w >> 11) * 2**-53`` in [0, 1) (53 bits: every double in the grid is exact),
  ``x = low + (high - low) * u``.
* **Normal.** With ``t = w >> 11`` (53 bits): the low bit of ``t`` is the sign and the other 52 bits
  give ``v = (t | 1) * 2**-54`` in (0, 1/2) (an odd multiple of 2**-54, exact in float64); then
  ``z = ndtri(v) <= 0`` and ``x = -z`` if the sign bit is set. The inverse normal CDF is only ever
  evaluated in the lower half, where it has full relative precision (mirrored for the upper
  tail); the largest |x| is ``-ndtri(2**-54) = 8.21``.
* **Truncated normal** on standardized ``[alpha, beta]``: an interval in the upper tail
  (``alpha > 0``) is mirrored to ``[-beta, -alpha]``; ``p = ndtr(alpha) + (ndtr(beta) -
  ndtr(alpha)) * u`` with ``u = (t | 1) * 2**-53`` in (0, 1), ``x = ndtri(p)`` clipped into
  ``[alpha, beta]`` (against the last rounding error), sign flipped back if mirrored.
* All arithmetic is float64; the result is cast to the target dtype last (for a torch tensor by
  ``Tensor.copy_``), and uniform / truncated-normal values are then clipped into bounds rounded
  *into* the dtype so bf16/fp16 rounding never leaves ``[a, b]``.

Philox is from Salmon, Moraes, Dror and Shaw, "Parallel random numbers: as easy as 1, 2, 3"
(SC 2011). The words (both versions) come from the optional compiled extension
``initlab.scale._philox`` when it was built, else from NumPy's ``Philox`` as is: the same words
bit for bit, :func:`words_backend` says which (and :func:`set_words_backend` /
``INITLAB_PHILOX_WORDS=numpy`` force NumPy's). ``ndtri`` is SciPy's (Cephes, Moshier). Work is
split into chunks of ``chunk_size`` elements run on ``threads`` threads (both word backends,
NumPy ufuncs, SciPy ufuncs and ``Tensor.copy_`` release the GIL); the output is the same bit for
bit for every thread count and chunk size.
"""

from __future__ import annotations

import importlib
import math
import numbers
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType
from typing import cast

import numpy as np
from scipy import special

from ..backends.numpy_backend import bounds_in_dtype
from ..core.distributions import Constant, Distribution, Normal, TruncatedNormal, Uniform
from ..core.validation import InitlabTypeError, check_scalar, check_shape, error_message, fail
from ..util.hashing import canonical_param_name, stable_u64

# A new version whenever the same (seed, name, index) could give a different value; old
# versions stay selectable with `stream=` so recorded values remain reproducible.
V1 = "philox4x64-10-ndtri-v1"
V2 = "philox4x64-10-u32-erfinv-v2"
STREAM_VERSIONS = (V1, V2)
COUNTER_STREAM_VERSION = V2


def check_stream(stream=None) -> str:
    """``stream`` (a version string from :data:`STREAM_VERSIONS`), or the default when None;
    an unknown version (e.g. from a plan or report written by a newer initlab) is refused."""
    if stream is None:
        return COUNTER_STREAM_VERSION
    if stream not in STREAM_VERSIONS:
        raise fail("stream", "must be a counter-stream version this initlab implements ("
                   + ", ".join(repr(v) for v in STREAM_VERSIONS) + ")", stream,
                   "values recorded under another version cannot be reproduced by this "
                   "initlab; pass one of those versions (or None for the default "
                   f"{COUNTER_STREAM_VERSION!r}), or install the initlab that wrote it.")
    return stream

# Elements per unit of work: 16Ki float64 = 128 KiB per temporary. Measured on the 2-core dev
# machine (CPU ns per normal, one thread): 4Ki 23.0, 8Ki 21.6, 16Ki 20.9, 32Ki 21.2, 64Ki 35.7
# (at 512 KiB per temporary glibc serves each one with a fresh mmap, and the page faults cost
# more than the arithmetic); per-chunk Python overhead is ~15 us against ~330 us of work.
DEFAULT_CHUNK = 1 << 14

# When a chunk touches several disjoint runs of the global tensor (e.g. a Shard(1) slice), jumping
# the cipher to each run costs about as much as generating this many words (a ~1.2 us state
# reset vs ~4.6 ns per word); below it, generating the covering range and gathering is cheaper.
_JUMP_COST_WORDS = 256

_TWO_M53 = 2.0**-53
_TWO_M54 = 2.0**-54
ELEMENTWISE = (Constant, Normal, Uniform, TruncatedNormal)


# ---------------------------------------------------------------------------------- the stream
def stream_key(seed, name: str) -> int:
    """The 64-bit Philox key of parameter ``name`` under ``seed``:
    ``stable_u64(seed, canonical_param_name(name))``.

    ``canonical_param_name`` strips wrapper prefixes (DDP's ``module.``, ``torch.compile``'s
    ``_orig_mod.``, FSDP1 / activation-checkpoint wrappers), so a wrapped model draws the same
    values as the bare one.
    """
    seed = check_seed(seed)
    if not isinstance(name, str) or not name:
        raise InitlabTypeError(error_message(
            "name", "must be a non-empty str (the parameter's name selects its stream)", name,
            "pass the dotted parameter name, e.g. name='layers.0.attn.wq.weight'."))
    return stable_u64(seed, canonical_param_name(name))


def check_seed(seed) -> int:
    """Validate an explicit integer seed (>= 0)."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise InitlabTypeError(error_message(
            "seed", "must be a non-negative int (the counter stream is keyed by it)", seed,
            "pass e.g. seed=0; generators are not accepted because the stream has no state."))
    if seed < 0:
        raise fail("seed", "must be >= 0", seed, "pass a non-negative integer.")
    return int(seed)


# ------------------------------------------------------------------------------ the words
# Two implementations of the same words: the optional compiled extension
# `initlab.scale._philox` (built from _philox.c when a C compiler is present at install; ~2x
# faster than NumPy's, see docs/scale.md) and NumPy's C `Philox` bit generator. They agree bit
# for bit (tests/test_scale_philox.py), so the choice changes speed, never a value. This is
# the one place that chooses: `_Words` asks `words_backend()` when it is created.
_compiled: ModuleType | None
try:  # imported by name: a C extension without a stub, which mypy cannot read
    _compiled = importlib.import_module("._philox", __package__)
except ImportError:  # not built (no compiler at install, or a source checkout without build_ext)
    _compiled = None

WORDS_BACKENDS = ("auto", "compiled", "numpy")
_WORDS_ENV = "INITLAB_PHILOX_WORDS"


def _initial_words_setting() -> str:
    import os

    raw = os.environ.get(_WORDS_ENV, "auto")
    v = raw.strip().lower() or "auto"
    if v in WORDS_BACKENDS:
        return v
    # an import cannot fail over an environment variable: say so, and use the default
    import warnings

    warnings.warn(f"{_WORDS_ENV}={raw!r} is not one of {', '.join(WORDS_BACKENDS)}; initlab "
                  "uses 'auto' (the compiled words when built). Set it to 'numpy' to force "
                  "NumPy's words, or unset it.", RuntimeWarning, stacklevel=2)
    return "auto"


_WORDS_SETTING = {"value": _initial_words_setting()}


def compiled_words_available() -> bool:
    """Whether the compiled Philox words (``initlab.scale._philox``) were built and import."""
    return _compiled is not None


def words_backend() -> str:
    """The implementation new word readers use on the CPU: ``"compiled"`` (the optional
    extension) or ``"numpy"`` (NumPy's ``Philox``). Both give the same words bit for bit.

    ``"compiled"`` whenever the extension imported, unless :func:`set_words_backend` or the
    environment variable ``INITLAB_PHILOX_WORDS=numpy`` (read at import) chose NumPy."""
    setting = _WORDS_SETTING["value"]
    if setting == "numpy" or _compiled is None:
        return "numpy"
    return "compiled"


def set_words_backend(backend: str) -> str:
    """Choose the CPU words' implementation for readers created from now on: ``"auto"`` (the
    compiled extension when built, else NumPy), ``"compiled"`` (an error if it is not built) or
    ``"numpy"``. Returns the previous setting (to restore it). Values never depend on it."""
    if backend not in WORDS_BACKENDS:
        raise fail("backend", "must be one of " + ", ".join(repr(b) for b in WORDS_BACKENDS),
                   backend, "pass 'auto' (the default), 'compiled' or 'numpy'.")
    if backend == "compiled" and _compiled is None:
        raise fail("backend", "is 'compiled' but the extension initlab.scale._philox is not "
                   "built in this install", backend,
                   "reinstall initlab where a C compiler is available (pip install -e . builds "
                   "it), or use 'auto' / 'numpy' (the same words, slower).")
    previous = _WORDS_SETTING["value"]
    _WORDS_SETTING["value"] = backend
    return previous


def compiled_kernels():
    """The compiled extension's module when readers created now use it (``words_backend() ==
    "compiled"``), else None: v2's fused CPU kernels (``v2_y``, ``bits_y``, ``finish``) follow
    the words' choice, so ``"numpy"`` runs the whole torch-ops path (the same values)."""
    if words_backend() == "compiled" and hasattr(_compiled, "v2_y"):
        return _compiled
    return None


class _Words:
    """Reads arbitrary word ranges of one key's stream (one instance per thread), from the
    backend :func:`words_backend` names when the reader is created."""

    def __init__(self, key: int):
        self._k = int(key)
        self.backend = words_backend()
        if self.backend == "compiled":
            assert _compiled is not None  # words_backend() names it only when it is built
            self._fill = _compiled.fill
            return
        self._fill = None
        self._bg = np.random.Philox(key=np.array([key, 0], dtype=np.uint64))
        self._key = np.array([key, 0], dtype=np.uint64)
        self._zeros = np.zeros(4, dtype=np.uint64)

    def read(self, start: int, count: int) -> np.ndarray:
        """Words ``start .. start + count - 1`` (a new uint64 array)."""
        if self._fill is not None:
            out = np.empty(count, dtype=np.uint64)
            self._fill(out, self._k, start)  # releases the GIL
            return out
        # NumPy's Philox increments its counter *before* encrypting, so counter c yields block
        # c + 1 first: word i (block i // 4 + 1, position i % 4) starts at counter i // 4.
        self._bg.state = {
            "bit_generator": "Philox",
            "state": {"counter": np.array([start // 4, 0, 0, 0], dtype=np.uint64),
                      "key": self._key},
            "buffer": self._zeros, "buffer_pos": 4, "has_uint32": 0, "uinteger": 0,
        }
        skip = start % 4
        if skip:
            self._bg.random_raw(skip)
        return self._bg.random_raw(count)


def philox_words(seed, name: str, start: int, stop: int) -> np.ndarray:
    """The raw 64-bit words of elements ``[start, stop)`` of ``name``'s stream."""
    start, stop = _check_range(start, stop)
    return _Words(stream_key(seed, name)).read(start, stop - start)


# ---------------------------------------------------------------------------------- transforms
def uniform01(words: np.ndarray) -> np.ndarray:
    """``(w >> 11) * 2**-53``: 53-bit uniforms in [0, 1)."""
    u = _to_f64(words >> np.uint64(11))
    u *= _TWO_M53
    return u


def _to_f64(t: np.ndarray) -> np.ndarray:
    """uint64 values < 2**53 to float64, exactly (through int64: NumPy's uint64 cast is ~20x
    slower because it is not vectorized)."""
    return t.view(np.int64).astype(np.float64)


def standard_normal(words: np.ndarray) -> np.ndarray:
    """Standard normals by inverse CDF in the lower half, sign from one bit (see module doc)."""
    t = words >> np.uint64(11)
    v = _to_f64(t | np.uint64(1))
    v *= _TWO_M54
    z = special.ndtri(v, out=v)  # < 0 (v < 1/2)
    # flip the sign bit of the float where t's low bit is set (an exact negation)
    t &= np.uint64(1)
    t <<= np.uint64(63)
    zb = z.view(np.uint64)
    zb ^= t
    return z


def truncated_standard_normal(words: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    """Standard normal conditioned on ``[alpha, beta]``, by inverse CDF (mirrored upper tail)."""
    flip = alpha > 0
    if flip:
        alpha, beta = -beta, -alpha
    lo, hi = float(special.ndtr(alpha)), float(special.ndtr(beta))
    u = _to_f64((words >> np.uint64(11)) | np.uint64(1))
    u *= _TWO_M53  # odd multiples of 2**-53: in (0, 1)
    u *= hi - lo
    u += lo
    x = special.ndtri(u, out=u)
    np.clip(x, alpha, beta, out=x)
    if flip:
        np.negative(x, out=x)
    return x


def transform(dist: Distribution, words: np.ndarray) -> np.ndarray:
    """float64 values of the elementwise distribution ``dist`` for these words."""
    if isinstance(dist, Normal):
        x = standard_normal(words)
        x *= dist.std
        x += dist.mean
        return x
    if isinstance(dist, Uniform):
        x = uniform01(words)
        x *= dist.high - dist.low
        x += dist.low
        return x
    if isinstance(dist, TruncatedNormal):
        if dist.std == 0:
            return np.full(words.shape, min(max(dist.mean, dist.a), dist.b))
        alpha = (dist.a - dist.mean) / dist.std
        beta = (dist.b - dist.mean) / dist.std
        x = truncated_standard_normal(words, alpha, beta)
        x *= dist.std
        x += dist.mean
        return x
    if isinstance(dist, Constant):
        return np.full(words.shape, float(dist.value))
    raise fail("dist", "must be an elementwise distribution (Constant, Normal, Uniform, "
               "TruncatedNormal) for the counter stream", type(dist).__name__,
               "structured kinds (Orthogonal, ...) go through `structured_block`.")


def bounds(dist: Distribution) -> tuple[float, float] | None:
    """The closed interval the values must stay in after casting (None: unbounded)."""
    if isinstance(dist, Uniform):
        return (min(dist.low, dist.high), max(dist.low, dist.high))
    if isinstance(dist, TruncatedNormal):
        return (dist.a, dist.b)
    return None


# ---------------------------------------------------------------------------------- blocks
def block_runs(global_shape: Sequence[int], offsets: Sequence[int],
               local_shape: Sequence[int]) -> tuple[np.ndarray, int]:
    """Describe the block ``global[offsets : offsets + local_shape]`` as runs of the flattened
    global tensor: ``(starts, run_length)``, runs in the block's own row-major order.

    The trailing dimensions the block covers in full are merged into each run, so a Shard(0)
    block or a replica is a single run and a Shard(1) block of an ``(m, n)`` matrix is ``m`` runs.
    """
    g, o, s = tuple(global_shape), tuple(offsets), tuple(local_shape)
    nd = len(g)
    if nd == 0:
        return np.zeros(1, dtype=np.int64), 1
    k = nd - 1
    while k > 0 and s[k] == g[k]:
        k -= 1
    # dims > k are full; the run is s[k] * prod(g[k+1:]) long
    strides = [math.prod(g[d + 1:]) for d in range(nd)]
    run = s[k] * strides[k]
    base = sum(o[d] * strides[d] for d in range(nd))
    starts = np.full(1, base, dtype=np.int64)
    for d in range(k):
        starts = (starts[:, None] + np.arange(s[d], dtype=np.int64)[None, :] * strides[d]).ravel()
    return starts, run


def _chunk_words(reader: _Words, starts: np.ndarray, run: int, a: int, b: int) -> np.ndarray:
    """Words of the block's local flat positions ``[a, b)``."""
    r0, r1 = a // run, (b - 1) // run
    if r0 == r1:
        return reader.read(int(starts[r0]) + a - r0 * run, b - a)
    first = int(starts[r0]) + a - r0 * run
    last = int(starts[r1]) + (b - 1) - r1 * run
    cover = last - first + 1
    if cover <= (b - a) + (r1 - r0 + 1) * _JUMP_COST_WORDS:
        pos = np.arange(a, b, dtype=np.int64)
        r = pos // run
        idx = starts[r] + (pos - r * run) - first
        return reader.read(first, cover)[idx]
    out = np.empty(b - a, dtype=np.uint64)
    p = a
    while p < b:
        k = p // run
        q = min(b, (k + 1) * run)
        out[p - a:q - a] = reader.read(int(starts[k]) + p - k * run, q - p)
        p = q
    return out


def resolve_threads(threads) -> int:
    """``threads`` or, when None, ``torch.get_num_threads()`` (which honours OMP_NUM_THREADS)."""
    if threads is None:
        try:
            import torch

            return max(1, torch.get_num_threads())
        except ImportError:  # pragma: no cover - torch is a dependency
            return 1
    return check_scalar(threads, "threads", min_val=1, integer=True, fix=(
        "pass threads=1 or more (or None for torch.get_num_threads())."))


def _check_chunk(chunk_size) -> int:
    if chunk_size is None:
        return DEFAULT_CHUNK
    return check_scalar(chunk_size, "chunk_size", min_val=1, integer=True, fix=(
        f"pass a positive number of elements (default {DEFAULT_CHUNK})."))


def run_chunks(dist: Distribution, key: int, global_shape, offsets, local_shape,
               write: Callable[[int, int, np.ndarray], None], *, threads=None,
               chunk_size=None) -> None:
    """Compute the block's float64 values chunk by chunk and hand each to ``write(a, b, x)``
    (``a, b``: local flat positions). ``write`` must be thread-safe for disjoint ranges."""
    n = math.prod(local_shape)
    if n == 0:
        return
    threads = resolve_threads(threads)
    chunk = _check_chunk(chunk_size)
    starts, run = block_runs(global_shape, offsets, local_shape)
    spans = [(a, min(a + chunk, n)) for a in range(0, n, chunk)]

    def work(span_list):
        reader = _Words(key)
        for a, b in span_list:
            write(a, b, transform(dist, _chunk_words(reader, starts, run, a, b)))

    run_spans(work, spans, threads)


def run_spans(work, spans: list, threads: int) -> None:
    """``work(spans)`` in this thread, or the spans dealt round-robin to ``threads`` threads
    (each span is independent: element i depends only on (key, i), so the split never shows).

    The threads are a persistent pool (:func:`_pool`), each running its torch ops on one
    intra-op thread: the workers are the parallelism, and an OpenMP team per worker would only
    spin (measured: ~10% more CPU time for the same wall time on the 2-core machine)."""
    import torch

    if threads == 1 or len(spans) == 1:
        caller_threads = torch.get_num_threads()
        if caller_threads == 1:
            work(spans)
            return
        # one thread means one: an op's OpenMP team waits at its barrier for a helper that a
        # busy machine has descheduled (measured up to 7x slower at load 2.7 on 2 cores)
        torch.set_num_threads(1)
        try:
            work(spans)
        finally:
            torch.set_num_threads(caller_threads)
        return
    groups = [spans[i::threads] for i in range(min(threads, len(spans)))]
    caller_threads, started = torch.get_num_threads(), _POOL["started"]
    pool = _pool(len(groups))
    for f in [pool.submit(work, g) for g in groups]:
        f.result()
    if _POOL["started"] != started:
        # a new worker's torch.set_num_threads(1) also set torch's global count (the one new
        # threads start from): put the caller's back; the caller's own count never changed
        torch.set_num_threads(caller_threads)


# One pool per process, grown on demand; a forked child (DataLoader workers...) makes its own,
# since the parent's threads do not exist there.
_POOL: dict = {"pool": None, "size": 0, "pid": None, "started": 0}


def _one_intra_op_thread() -> None:
    """Pool initializer: this worker's torch ops run on one intra-op thread."""
    import torch

    torch.set_num_threads(1)
    _POOL["started"] += 1  # read by run_spans after its futures completed


def _pool(size: int) -> ThreadPoolExecutor:
    import os

    if _POOL["pool"] is None or _POOL["size"] < size or _POOL["pid"] != os.getpid():
        if _POOL["pool"] is not None and _POOL["pid"] == os.getpid():
            _POOL["pool"].shutdown(wait=True)
        _POOL.update(pool=ThreadPoolExecutor(max_workers=size, initializer=_one_intra_op_thread,
                                             thread_name_prefix="initlab-counter"),
                     size=size, pid=os.getpid())
    return _POOL["pool"]


# ---------------------------------------------------------------------------------- NumPy API
def check_block(global_shape, offsets, local_shape) -> tuple[tuple[int, ...], ...]:
    """Validate a block spec: ``0 <= offsets[d]`` and ``offsets[d] + local[d] <= global[d]``."""
    g = check_shape(global_shape, "global_shape")
    o = check_shape(offsets, "offsets") if offsets is not None else (0,) * len(g)
    s = check_shape(local_shape, "local_shape") if local_shape is not None else g
    if len(o) != len(g) or len(s) != len(g):
        raise fail("offsets", f"must have one entry per dimension of `global_shape` {g} (and so "
                   f"must the local shape {s})", o,
                   "pass one offset per global dimension (0 for unsharded dimensions).")
    for d, (gd, od, sd) in enumerate(zip(g, o, s)):
        if sd and od + sd > gd:
            raise fail("offsets", f"put the local block (shape {s}) outside the global tensor "
                       f"{g} in dimension {d} ({od} + {sd} > {gd})", o,
                       "pass the shard's global offsets (e.g. from `shard_layout`) and the global "
                       "shape of the full parameter.")
    return g, o, s


def _check_range(start, stop) -> tuple[int, int]:
    for nm, v in (("start", start), ("stop", stop)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 0:
            raise fail(nm, "must be a non-negative int (a flat element index)", v,
                       "pass 0 <= start <= stop.")
    if stop < start:
        raise fail("stop", f"must be >= `start` (={start})", stop, "pass 0 <= start <= stop.")
    return int(start), int(stop)


def sample_range(dist: Distribution, *, seed, name: str, start: int, stop: int,
                 threads=None, chunk_size=None, stream=None) -> np.ndarray:
    """float64 values of flat global elements ``[start, stop)`` of an elementwise ``dist``
    (under ``stream``; v2 evaluates its transform in float64 here, as for a float64 tensor).

    ``sample_range(d, seed=s, name=n, start=a, stop=b)`` equals
    ``sample_range(d, seed=s, name=n, start=0, stop=N)[a:b]`` bit for bit.
    """
    start, stop = _check_range(start, stop)
    _check_elementwise(dist)
    stream = check_stream(stream)
    if stream != V1:
        return _torch_block(dist, (stop,), (start,), (stop - start,), stream_key(seed, name),
                            np.float64, threads, chunk_size, stream)
    out = np.empty(stop - start)

    def write(a, b, x):
        out[a:b] = x

    run_chunks(dist, stream_key(seed, name), (stop,), (start,), (stop - start,), write,
               threads=threads, chunk_size=chunk_size)
    return out


def _torch_block(dist, g, o, s, key, dt, threads, chunk_size, stream) -> np.ndarray:
    """A block of a stream implemented in torch (v2), computed on the CPU, as NumPy."""
    import torch

    from .sharded import fill_block_

    t = torch.empty(s, dtype=torch.float64 if np.dtype(dt) == np.float64 else torch.float32)
    fill_block_(t, dist, key=key, global_shape=g, offsets=o, threads=threads,
                chunk_size=chunk_size, stream=stream)
    return t.numpy()


def counter_sample(dist: Distribution, global_shape, *, seed, name: str, offsets=None,
                   local_shape=None, dtype="float32", threads=None,
                   chunk_size=None, stream=None) -> np.ndarray:
    """The block ``global[offsets : offsets + local_shape]`` of a tensor of ``global_shape``
    drawn from the counter stream ``stream`` (default :data:`COUNTER_STREAM_VERSION`), as a
    NumPy array (float32 or float64).

    Elementwise kinds are computed for the block only; structured kinds (Orthogonal, ...) are
    computed in full (float64) and sliced, see :func:`structured_block`.
    """
    g, o, s = check_block(global_shape, offsets, local_shape)
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise fail("dtype", "must be float32 or float64 for NumPy output", str(dt),
                   "use `counter_fill_` on a torch tensor for bf16/fp16.")
    stream = check_stream(stream)
    key = stream_key(seed, name)
    if not isinstance(dist, ELEMENTWISE):
        return structured_block(dist, g, o, s, key).astype(dt)
    if stream != V1:
        return _torch_block(dist, g, o, s, key, dt, threads, chunk_size, stream)
    out = np.empty(math.prod(s), dtype=dt)
    lim = bounds(dist)
    lo = hi = None
    if lim is not None:
        lo, hi = bounds_in_dtype(*lim, dt)

    def write(a, b, x):
        out[a:b] = x
        if lo is not None:
            np.clip(out[a:b], lo, hi, out=out[a:b])

    run_chunks(dist, key, g, o, s, write, threads=threads, chunk_size=chunk_size)
    return out.reshape(s)


def _check_elementwise(dist):
    if not isinstance(dist, ELEMENTWISE):
        raise fail("dist", "must be elementwise (Constant, Normal, Uniform, TruncatedNormal) to "
                   "draw an index range", type(dist).__name__,
                   "draw structured kinds with `counter_sample` / `counter_fill_` (full "
                   "matrix, then sliced).")


# ---------------------------------------------------------------------------------- structured
class CounterRNG:
    """A ``numpy.random.Generator`` look-alike reading one key's counter stream in order.

    It offers what :func:`initlab.backends.numpy_backend.draw` uses for structured kinds:
    ``standard_normal`` (the counter normals, consecutive elements), ``uniform``, ``choice``
    (``floor(u * len(a))``) and ``permutation`` (a stable argsort of counter uniforms). Every call
    consumes the next elements of the stream, so the whole structured draw is a fixed function of
    the key and the global shape.
    """

    def __init__(self, key: int):
        self._reader = _Words(key)
        self._pos = 0

    def _words(self, n: int) -> np.ndarray:
        w = self._reader.read(self._pos, n)
        self._pos += n
        return w

    def standard_normal(self, size=None):
        n = 1 if size is None else math.prod(np.atleast_1d(size).tolist())
        x = standard_normal(self._words(n))
        return float(x[0]) if size is None else x.reshape(size)

    def uniform(self, low=0.0, high=1.0, size=None):
        n = 1 if size is None else math.prod(np.atleast_1d(size).tolist())
        x = low + (high - low) * uniform01(self._words(n))
        return float(x[0]) if size is None else x.reshape(size)

    def choice(self, a, size=None):
        a = np.asarray(a)
        n = 1 if size is None else math.prod(np.atleast_1d(size).tolist())
        idx = np.floor(uniform01(self._words(n)) * len(a)).astype(np.int64)
        out = a[idx]
        return out[0] if size is None else out.reshape(size)

    def permutation(self, n):
        return np.argsort(uniform01(self._words(int(n))), kind="stable")


def structured_full(dist: Distribution, global_shape, key: int,
                    layout: str = "torch") -> np.ndarray:
    """The whole tensor of a structured distribution (torch layout), float64, from the counter
    stream via the NumPy backend's algorithms (Orthogonal: QR of a Gaussian matrix with
    Mezzadri's sign fix, or the method the distribution names)."""
    from ..backends.numpy_backend import draw

    # CounterRNG has the Generator methods the samplers call (a duck-typed Generator)
    rng = cast(np.random.Generator, CounterRNG(key))
    return draw(dist, tuple(global_shape), rng, np.float64, layout)


def structured_block(dist, global_shape, offsets, local_shape, key: int,
                     layout: str = "torch") -> np.ndarray:
    """``structured_full(...)`` sliced to the block; every rank computes the full tensor."""
    full = structured_full(dist, global_shape, key, layout)
    sl = tuple(slice(o, o + s) for o, s in zip(offsets, local_shape))
    return np.ascontiguousarray(full[sl])
