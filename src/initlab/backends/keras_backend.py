"""Keras 3 backend: draws each :mod:`~initlab.core.distributions` kind with ``keras.random`` /
``keras.ops``, so any Keras backend (torch, jax, tensorflow) runs it.

Same values as ``keras.initializers``: where Keras has the same initializer, this makes Keras's
own calls with Keras's float arithmetic and Keras's seed (an int, or a
``keras.random.SeedGenerator``):

* ``Normal(mean, std)``: ``keras.random.normal(shape, mean, std, dtype, seed)`` (RandomNormal;
  VarianceScaling "untruncated_normal" with std = sqrt(variance));
* ``Uniform(low, high)``: ``keras.random.uniform(shape, low, high, dtype, seed)``
  (RandomUniform); for a variance-scaling preset the limit is ``sqrt(3 * variance)`` as Keras
  computes it;
* ``TruncatedNormal`` at +-2 std around its mean: ``keras.random.truncated_normal`` (Keras's
  TruncatedNormal; VarianceScaling "truncated_normal" with std = sqrt(variance) / 0.8796...);
* ``Orthogonal(method="qr")``: Keras's Orthogonal (QR of a normal matrix of shape
  ``(max(rows, cols), min(rows, cols))``, rows = prod(shape[:-1]), sign fix, gain times); for
  bfloat16/float16, which Keras's QR refuses on CPU, drawn and factorized in float32 and cast;
* ``Eye``: ``gain * keras.ops.eye``; ``Constant``: ``value * keras.ops.ones``.

The other kinds (truncations at other bounds, svd/householder orthogonal, dirac,
delta_orthogonal, sparse, martens_sparse) have no Keras counterpart: they are drawn by initlab's
NumPy reference sampler from an int seed taken from the Keras seed (the int itself, or one draw of
the SeedGenerator), in float32 (float64 for float64), and converted.
"""

from __future__ import annotations

import math

import keras
import numpy as np

from ..core.distributions import (
    TRUNCATED_NORMAL_STD_2SIGMA,
    Constant,
    Distribution,
    Eye,
    Normal,
    Orthogonal,
    TruncatedNormal,
    Uniform,
)
from . import numpy_backend

_REL = 1e-12  # how close (a - mean) / std must be to -2 (and b to +2) to be Keras's truncation


def int_seed(seed) -> int:
    """An int for the NumPy fallback: the int seed itself, or one draw of the SeedGenerator."""
    if isinstance(seed, int):
        return seed
    word = keras.random.randint((), 0, 2**31 - 1, seed=seed, dtype="int32")
    return int(word.item())  # (not via NumPy: Keras's torch tensors warn in np.array)


def _is_keras_truncation(dist: TruncatedNormal) -> bool:
    if dist.std == 0:
        return False
    alpha = (dist.a - dist.mean) / dist.std
    beta = (dist.b - dist.mean) / dist.std
    return abs(alpha + 2.0) <= _REL and abs(beta - 2.0) <= _REL


def draw(dist: Distribution, shape: tuple[int, ...], dtype: str, seed, layout: str = "jax", *,
         variance: float | None = None):
    """Draw ``dist`` as a backend tensor of ``shape`` (in ``layout``) and float ``dtype``.

    ``seed``: an int (the same values on every call, as Keras's initializers) or a
    ``keras.random.SeedGenerator`` (advanced by each call). ``variance``: the exact Var =
    scale / n of a variance-scaling preset (Keras's VarianceScaling arithmetic then applies).
    """
    if isinstance(dist, Constant):
        return keras.ops.cast(dist.value, dtype) * keras.ops.ones(shape, dtype)
    if isinstance(dist, Normal):
        return keras.random.normal(shape, mean=dist.mean, stddev=dist.std, dtype=dtype, seed=seed)
    if isinstance(dist, Uniform):
        if variance is not None and dist.low == -dist.high:
            limit = math.sqrt(3.0 * variance)
            return keras.random.uniform(shape, minval=-limit, maxval=limit, dtype=dtype,
                                        seed=seed)
        return keras.random.uniform(shape, minval=dist.low, maxval=dist.high, dtype=dtype,
                                    seed=seed)
    if isinstance(dist, TruncatedNormal):
        if variance is not None:
            std = math.sqrt(variance) / TRUNCATED_NORMAL_STD_2SIGMA
            return keras.random.truncated_normal(shape, mean=0.0, stddev=std, dtype=dtype,
                                                 seed=seed)
        if _is_keras_truncation(dist):
            return keras.random.truncated_normal(shape, mean=dist.mean, stddev=dist.std,
                                                 dtype=dtype, seed=seed)
    if isinstance(dist, Orthogonal) and dist.method == "qr" and layout == "jax":
        return orthogonal(shape, dtype, seed, dist.gain)
    if isinstance(dist, Eye) and layout == "jax":
        return dist.gain * keras.ops.eye(*shape, dtype=dtype)
    rng = numpy_backend.make_rng(int_seed(seed))
    arr = numpy_backend.draw(dist, shape, rng, np.float64 if dtype == "float64" else np.float32,
                             layout)
    return keras.ops.cast(keras.ops.convert_to_tensor(arr), dtype)


def orthogonal(shape: tuple[int, ...], dtype: str, seed, gain: float = 1.0):
    """Keras's Orthogonal: QR of a normal ``(max(r, c), min(r, c))`` matrix, r = prod(shape[:-1]),
    c = shape[-1], columns times sign(diag R), transposed when r < c, times ``gain``."""
    rows, cols = math.prod(shape[:-1]), shape[-1]
    qdt = "float32" if dtype in ("bfloat16", "float16") else dtype  # no half-precision QR kernel
    a = keras.random.normal((max(rows, cols), min(rows, cols)), seed=seed, dtype=qdt)
    q, r = keras.ops.qr(a)
    q = q * keras.ops.sign(keras.ops.diag(r))
    if rows < cols:
        q = keras.ops.transpose(q)
    return keras.ops.cast(gain * keras.ops.reshape(q, shape), dtype)
