"""Seeds and random streams: the one seed validator and the one stream derivation.

Every public function that takes a ``seed`` validates it with :func:`check_seed`, and every
per-name random stream (a parameter's ``torch.Generator`` under ``apply``, the counter stream's
Philox key, ...) gets its seed from :func:`stream_seed`. Nothing else in initlab derives seeds.

* A seed is an explicit integer in ``[0, 2**64)`` (Python or NumPy integers; not bool, not
  float). 2**64 is torch's ``manual_seed`` range and a JAX key's width; larger integers
  (10**5000, which Python cannot even print) are refused with a message that names the seed's
  size instead of its digits.
* ``stream_seed(seed, key)`` is the first 8 bytes (little-endian) of the SHA-256 of the
  length-prefixed items ``(seed, key)`` (:func:`stable_u64`): stable across processes, machines
  and Python versions (never Python's salted ``hash()``), and every key gets its own stream, so
  adding a parameter never shifts another's values. ``bits=63`` keeps the low 63 bits (what
  ``apply``'s torch generators are seeded with).
"""

from __future__ import annotations

import functools
import hashlib
import numbers
from typing import Any

from .validation import InitlabTypeError, error_message, fail

__all__ = ["SEED_BITS", "check_seed", "stream_seed", "stable_u64"]

# Seeds are integers in [0, 2**SEED_BITS): torch.Generator.manual_seed accepts up to 2**64 - 1,
# and the counter stream's Philox key word is 64 bits.
SEED_BITS = 64

_FIX = "pass an explicit integer seed, e.g. seed=0 (initlab never falls back to global random state)."


def check_seed(seed: Any, name: str = "seed", *, also: str | None = None) -> int:
    """Validate an explicit seed and return it as a Python ``int`` in ``[0, 2**64)``.

    Accepts Python and NumPy integers; refuses ``None``, bools, floats (even integral ones:
    ``1e3`` is most likely a mistake), negative values and values of 2**64 or more, with an
    :class:`InitlabTypeError` / :class:`InitlabError` that names ``name``. ``also`` names what
    else the caller accepts (e.g. ``"a numpy.random.Generator"``), for the message.
    """
    kinds = "a non-negative int" + (f" or {also}" if also else "")
    if seed is None:
        raise InitlabTypeError(error_message(name, f"must be given ({kinds})", None, _FIX))
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise InitlabTypeError(error_message(name, f"must be {kinds}", seed, _FIX))
    value = int(seed)
    if value < 0:
        raise fail(name, "must be >= 0", value, "pass a non-negative integer.")
    if value >= 2**SEED_BITS:
        raise fail(name, f"must be < 2**{SEED_BITS}", value,
                   f"pass a seed below 2**{SEED_BITS} (e.g. seed % 2**{SEED_BITS}).")
    return value


def stable_u64(*items: str | int) -> int:
    """A 64-bit integer from the SHA-256 of the items (stable across processes and machines).

    Each item is written as its ``str`` with an 8-byte length prefix, so ``("ab", "c")`` and
    ``("a", "bc")`` differ. Pure hashing: use :func:`stream_seed` to derive a stream's seed.
    Strings and integers are kept per items (``apply`` hashes the same parameter names on every
    call); the type is part of the cache key, so ``True`` and ``1`` stay different items."""
    if all(type(it) in (str, int) for it in items):
        return _sha256_u64(tuple((type(it), it) for it in items))
    return _sha256_u64.__wrapped__(tuple((type(it), it) for it in items))


@functools.lru_cache(maxsize=1 << 14)
def _sha256_u64(typed_items: tuple) -> int:
    h = hashlib.sha256()
    for _, it in typed_items:
        b = str(it).encode("utf-8")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return int.from_bytes(h.digest()[:8], "little")


def stream_seed(seed: Any, key: str, *, bits: int = 64) -> int:
    """The seed of stream ``key`` under ``seed``: ``stable_u64(seed, key) % 2**bits``.

    ``key`` names the stream (a canonical parameter name, ``"fc.weight/q"`` for a block, or a
    purpose such as ``"initlab.lab.train.shuffle"``). ``bits`` (1..64): 64 for a Philox key,
    63 for ``torch.Generator.manual_seed`` as ``apply`` uses it.
    """
    seed = check_seed(seed)
    if not isinstance(key, str) or not key:
        raise InitlabTypeError(error_message(
            "key", "must be a non-empty str (the stream's name)", key,
            "pass e.g. key='layers.0.weight'."))
    if isinstance(bits, bool) or not isinstance(bits, numbers.Integral) or not 1 <= bits <= 64:
        raise fail("bits", "must be an int in 1..64", bits, "pass bits=64 or bits=63.")
    return stable_u64(seed, key) % (1 << int(bits))
