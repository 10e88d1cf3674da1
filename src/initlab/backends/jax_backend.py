"""JAX backend: draws each :mod:`~initlab.core.distributions` kind with ``jax.random``.

Randomness comes only from the key passed in. Every function here is traceable: shapes and the
distribution are static (resolved in Python at trace time), so ``jax.jit`` compiles one program per
(initializer, shape, dtype).

Elementwise kinds draw the whole tensor with one ``jax.random`` call on the tensor's own shape.
With JAX's partitionable Threefry (``jax_threefry_partitionable``, the default since jax 0.5.0)
element ``i`` is a function of ``(key, i)`` alone, so creating the tensor sharded under
``jit(..., out_shardings=...)`` gives the same values as creating it on one device. The normal and
truncated-normal draws are the very calls ``jax.nn.initializers.variance_scaling`` makes, so with
the same key initlab reproduces JAX's own presets value for value (up to float32 rounding of the
scale).

Precision: values are drawn in float32 (float64 when asked for float64) and cast to the output
dtype last, so bf16/fp16 weights are float32 samples rounded once; QR has no bf16 kernel, and the
orthogonal factorizations always run in float32 or float64.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from ..core.distributions import (
    Constant,
    DeltaOrthogonal,
    Dirac,
    Distribution,
    Eye,
    MartensSparse,
    Normal,
    Orthogonal,
    Sparse,
    TruncatedNormal,
    Uniform,
)
from ..core.fans import to_torch_shape, torch_axes_to
from ..core.validation import fail
from .numpy_backend import bounds_in_dtype, dirac_array


def compute_dtype(dtype) -> jnp.dtype:
    """The dtype samples are drawn in: float64 for float64 outputs, else float32."""
    return jnp.dtype(jnp.float64) if jnp.dtype(dtype) == jnp.float64 else jnp.dtype(jnp.float32)


def draw(key, dist: Distribution, shape: tuple[int, ...], dtype, layout: str = "jax",
         out_sharding=None) -> jax.Array:
    """Draw ``dist`` as a new array of ``shape`` (given in ``layout``) and floating ``dtype``.

    ``key`` is a JAX PRNG key (typed or raw). ``out_sharding`` is passed to ``jax.random`` for the
    elementwise kinds; structured kinds are computed whole and then resharded.
    """
    dtype = jnp.dtype(dtype)
    cdt = compute_dtype(dtype)
    kw = {} if out_sharding is None else {"out_sharding": out_sharding}
    if isinstance(dist, Constant):
        return jnp.full(shape, dist.value, dtype, **kw)
    if isinstance(dist, Normal):
        # the same call as jax.nn.initializers' "normal": normal(key) * std
        x = jax.random.normal(key, shape, cdt, **kw) * dist.std
        if dist.mean != 0.0:
            x = x + dist.mean
        return x.astype(dtype)
    if isinstance(dist, Uniform):
        return jax.random.uniform(key, shape, cdt, dist.low, dist.high, **kw).astype(dtype)
    if isinstance(dist, TruncatedNormal):
        lo, hi = bounds_in_dtype(dist.a, dist.b, dtype)
        if dist.std == 0:
            return jnp.full(shape, min(max(dist.mean, dist.a), dist.b), dtype, **kw)
        alpha = (dist.a - dist.mean) / dist.std
        beta = (dist.b - dist.mean) / dist.std
        # jax.random.truncated_normal takes *standardized* bounds (inverse CDF, no redraw loop);
        # the same call as jax.nn.initializers' "truncated_normal"
        z = jax.random.truncated_normal(key, alpha, beta, shape, cdt, **kw)
        x = z * dist.std
        if dist.mean != 0.0:
            x = x + dist.mean
        return jnp.clip(x.astype(dtype), lo, hi)
    tshape = to_torch_shape(shape, layout)
    arr = _draw_torch_layout(key, dist, tshape, cdt)
    axes = torch_axes_to(layout, len(tshape))
    if axes is not None:
        arr = jnp.transpose(arr, axes)
    arr = arr.astype(dtype)
    if out_sharding is not None:
        arr = jax.sharding.reshard(arr, out_sharding)
    return arr


# ---------------------------------------------------------------------------- structured kinds

def haar_orthogonal(key, rows: int, cols: int, method: str = "qr", dtype=jnp.float32) -> jax.Array:
    """A Haar-distributed ``(rows, cols)`` matrix with orthonormal rows (rows <= cols) or columns.

    ``"qr"``: QR of a Gaussian matrix, columns of Q times sign(diag R) (Mezzadri 2007, "How to
    generate random matrices from the classical compact groups"). ``"svd"``: left singular vectors
    of a Gaussian matrix times random column signs. ``"householder"``: Stewart 1980, "The
    efficient generation of random orthogonal matrices with an application to condition
    estimators". Computed in ``dtype`` (float32 or float64: JAX's QR has no bf16).
    """
    transpose = rows < cols
    n, m = (cols, rows) if transpose else (rows, cols)  # n >= m: orthonormal columns of n x m
    if method == "householder":
        q = _stewart(key, n, dtype)[:, :m]
    else:
        kg, ks = jax.random.split(key)
        a = jax.random.normal(kg, (n, m), dtype)
        if method == "qr":
            q, r = jnp.linalg.qr(a)
            d = jnp.sign(jnp.diagonal(r))
            q = q * jnp.where(d == 0, 1.0, d).astype(dtype)
        else:
            u, _, _ = jnp.linalg.svd(a, full_matrices=False)
            q = u * jax.random.rademacher(ks, (m,), dtype)
    return q.T if transpose else q


def _stewart(key, n: int, dtype) -> jax.Array:
    """Haar O(n) as a product of n-1 random Householder reflectors with a sign fix (Stewart 1980).

    Step i (k = n - i coordinates, i..n-1): v ~ N(0, I_k), s = sign(v_0), u = (v + s |v| e_0) /
    norm, Q <- Q (I - 2 u u^T) on those coordinates, D_i = -s; the last sign D_{n-1} is the sign
    of a standard normal. Q = (H ...) D. A ``fori_loop``, so the program size doesn't grow with n.
    """
    idx = jnp.arange(n)

    def body(i, carry):
        q, signs = carry
        v = jax.random.normal(jax.random.fold_in(key, i), (n,), dtype)
        v = jnp.where(idx >= i, v, 0.0)
        s = jnp.where(v[i] >= 0, 1.0, -1.0).astype(dtype)
        signs = signs.at[i].set(-s)
        v = v.at[i].add(s * jnp.linalg.norm(v))
        nv = jnp.linalg.norm(v)
        u = v / jnp.where(nv == 0, 1.0, nv)
        q = q - 2.0 * jnp.outer(q @ u, u)
        return q, signs

    q, signs = jax.lax.fori_loop(0, n - 1, body, (jnp.eye(n, dtype=dtype), jnp.ones(n, dtype)))
    last = jax.random.normal(jax.random.fold_in(key, n - 1), (), dtype)
    signs = signs.at[n - 1].set(jnp.where(last >= 0, 1.0, -1.0).astype(dtype))
    return q * signs


def _ranks(key, shape: tuple[int, int], axis: int) -> jax.Array:
    """Uniformly random ranks 0..shape[axis]-1 along ``axis`` (a random permutation per slice)."""
    u = jax.random.uniform(key, shape)
    return jnp.argsort(jnp.argsort(u, axis=axis), axis=axis)


def _draw_torch_layout(key, dist: Distribution, shape: tuple[int, ...], cdt) -> jax.Array:
    """Draw a structured distribution for a tensor whose torch-layout shape is ``shape``."""
    if isinstance(dist, Orthogonal):
        rows, cols = shape[0], math.prod(shape[1:])
        q = haar_orthogonal(key, rows, cols, dist.method, cdt)
        return (dist.gain * q).reshape(shape)
    if isinstance(dist, Eye):
        return dist.gain * jnp.eye(shape[0], shape[1], dtype=cdt)
    if isinstance(dist, Dirac):
        return jnp.asarray(dirac_array(shape, dist.groups, dist.gain), cdt)
    if isinstance(dist, DeltaOrthogonal):
        centre = tuple(k // 2 for k in shape[2:])
        q = dist.gain * haar_orthogonal(key, shape[0], shape[1], "qr", cdt)
        return jnp.zeros(shape, cdt).at[(slice(None), slice(None), *centre)].set(q)
    if isinstance(dist, Sparse):
        rows, _ = shape
        kv, kp = jax.random.split(key)
        x = jax.random.normal(kv, shape, cdt) * dist.std
        n_zero = int(math.ceil(dist.sparsity * rows))
        return jnp.where(_ranks(kp, shape, 0) < n_zero, 0.0, x)  # n_zero random rows per column
    if isinstance(dist, MartensSparse):
        flat = (shape[0], math.prod(shape[1:]))
        kv, kp = jax.random.split(key)
        x = jax.random.normal(kv, flat, cdt) * dist.std
        x = jnp.where(_ranks(kp, flat, 1) < dist.k, x, 0.0)  # k random inputs per unit
        return x.reshape(shape)
    raise fail("distribution", "is not a kind the JAX backend knows", type(dist).__name__,
               "add it to initlab.backends.jax_backend.")
