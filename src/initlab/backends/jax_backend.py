"""JAX backend: draws each :mod:`~initlab.core.distributions` kind with ``jax.random``.

Randomness comes only from the key passed in. Every function here is traceable: shapes and the
distribution are static (resolved in Python at trace time), so ``jax.jit`` compiles one program per
(initializer, shape, dtype). Broadcasting is always explicit (every operand has the result's rank
or is a scalar), so everything runs under ``jax_numpy_rank_promotion="raise"``.

Elementwise kinds draw the whole tensor with one ``jax.random`` call on the tensor's own shape.
With JAX's partitionable Threefry (``jax_threefry_partitionable``, the default since jax 0.5.0)
element ``i`` is a function of ``(key, i)`` alone, so creating the tensor sharded under
``jit(..., out_shardings=...)`` gives the same values as creating it on one device.

Same values as ``jax.nn.initializers``: samples are drawn *in the output dtype* (bf16, f16, f32,
f64, complex) with the very ``jax.random`` calls JAX's initializers make, and the scalars are
combined with JAX's own float arithmetic in that dtype:

* fixed parameters (``normal``, ``uniform(0, s)``, ``truncated_normal``, ``constant``):
  ``random.normal(key, shape, dtype) * jnp.array(std, dtype)`` and so on;
* a preset of the variance-scaling core (``variance=`` given: the exact Var = scale / n):
  ``jnp.sqrt(jnp.array(variance, dtype))`` times ``random.normal``;
  ``jnp.sqrt(3 * variance)`` times ``random.uniform(key, shape, dtype, -1)``;
  ``jnp.sqrt(variance) / jnp.array(0.87962566103423978, dtype)`` times
  ``random.truncated_normal(key, -2, 2, shape, dtype)``; for complex dtypes the disk-uniform and
  modulus-truncated complex normal JAX uses (``0.95311164380491208`` correction);
* ``orthogonal`` with ``method="qr"``: ``jax.random.orthogonal`` on the tensor viewed as
  ``(prod(other axes), shape[column_axis])``; ``delta_orthogonal`` puts one at kernel index
  ``(k - 1) // 2``, as JAX does.

bf16/f16 QR has no CPU kernel in JAX (its ``orthogonal`` raises there); initlab then factorizes in
float32 and casts once. The other structured kinds (svd/householder orthogonal, sparse,
martens_sparse, identity, dirac) have no JAX counterpart and draw in float32 (float64 for
float64) and cast.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from ..core.distributions import (
    TRUNCATED_NORMAL_STD_2SIGMA,
    Constant,
    DecayRateLog,
    DeltaOrthogonal,
    Dirac,
    Distribution,
    Eye,
    LooksLinear,
    MartensSparse,
    Normal,
    Orthogonal,
    RecurrenceRadius,
    RowDistribution,
    Sparse,
    TimeStepBias,
    TruncatedNormal,
    Uniform,
    kernel_centre,
    looks_linear_block,
)
from ..core.fans import to_torch_shape, torch_axes_to
from ..core.validation import fail
from .numpy_backend import bounds_in_dtype, dirac_array

# std of the complex normal whose modulus is truncated at 2 (unit variance before truncation):
# JAX's variance_scaling divides by it for complex "truncated_normal".
COMPLEX_TRUNCATED_NORMAL_STD_2 = 0.95311164380491208


def compute_dtype(dtype) -> jnp.dtype:
    """The dtype structured kinds without a JAX counterpart are computed in: float64 (complex128)
    for 64-bit outputs, else float32 (complex64)."""
    dt = jnp.dtype(dtype)
    if jnp.issubdtype(dt, jnp.complexfloating):
        return dt
    return jnp.dtype(jnp.float64) if dt == jnp.float64 else jnp.dtype(jnp.float32)


def _is_complex(dtype) -> bool:
    return jnp.issubdtype(jnp.dtype(dtype), jnp.complexfloating)


def _no_complex(dist: Distribution, dtype):
    return fail("dtype", f"can be complex only for normal, variance-scaling presets, orthogonal, "
                f"delta_orthogonal and constants (as in jax.nn.initializers), not for "
                f"{type(dist).__name__}", str(jnp.dtype(dtype)),
                "pass a real floating dtype, or draw the real and imaginary parts separately.")


def _complex_uniform(key, shape, dtype) -> jax.Array:
    """Uniform on the unit-variance disk: r = sqrt(2 u1), theta = 2 pi u2 (JAX's recipe)."""
    kr, kt = jax.random.split(key)
    real = np.array(0, dtype).real.dtype
    r = jnp.sqrt(2 * jax.random.uniform(kr, shape, real)).astype(dtype)
    theta = 2 * np.pi * jax.random.uniform(kt, shape, real).astype(dtype)
    return r * jnp.exp(1j * theta)


def _complex_truncated_normal(key, upper, shape, dtype) -> jax.Array:
    """Complex normal (unit variance before truncation) with modulus truncated to ``upper``:
    |z|^2 is exponential, so r = sqrt(-log(1 - t)), t ~ U(0, 1 - exp(-upper^2))."""
    kr, kt = jax.random.split(key)
    real = np.array(0, dtype).real.dtype
    t = ((1 - jnp.exp(jnp.array(-(upper ** 2), dtype)))
         * jax.random.uniform(kr, shape, real).astype(dtype))
    r = jnp.sqrt(-jnp.log(1 - t))
    theta = 2 * np.pi * jax.random.uniform(kt, shape, real).astype(dtype)
    return r * jnp.exp(1j * theta)


def draw(key, dist: Distribution, shape: tuple[int, ...], dtype, layout: str = "jax",
         out_sharding=None, *, variance: float | None = None, column_axis: int = -1,
         jax_recipe: bool = True) -> jax.Array:
    """Draw ``dist`` as a new array of ``shape`` (given in ``layout``) and inexact ``dtype``.

    ``key`` is a JAX PRNG key (typed or raw). ``variance``: the exact Var = scale / n when the
    initializer is a preset of the variance-scaling core (then JAX's variance_scaling arithmetic
    is used); ``column_axis``: the axis JAX's orthogonal makes orthonormal (jax layout only);
    ``jax_recipe=False`` forces the layout-generic path for structured kinds. ``out_sharding`` is
    passed to ``jax.random`` for the elementwise kinds; structured kinds are computed whole and
    then resharded.
    """
    dtype = jnp.dtype(dtype)
    cplx = _is_complex(dtype)
    kw = {} if out_sharding is None else {"out_sharding": out_sharding}
    if isinstance(dist, Constant):
        return jnp.full(shape, dist.value, dtype, **kw)
    if isinstance(dist, Normal):
        if variance is not None:
            return jax.random.normal(key, shape, dtype, **kw) * jnp.sqrt(
                jnp.array(variance, dtype))
        x = jax.random.normal(key, shape, dtype, **kw) * jnp.array(dist.std, dtype)
        return x + jnp.array(dist.mean, dtype) if dist.mean != 0.0 else x
    if isinstance(dist, Uniform):
        if variance is not None and dist.low == -dist.high:
            if cplx:
                return _complex_uniform(key, shape, dtype) * jnp.sqrt(jnp.array(variance, dtype))
            return jax.random.uniform(key, shape, dtype, -1, **kw) * jnp.sqrt(
                3 * jnp.array(variance, dtype))
        if cplx:
            raise _no_complex(dist, dtype)
        if dist.low == 0.0:  # jax.nn.initializers.uniform(scale): U[0, 1) * scale
            return jax.random.uniform(key, shape, dtype, **kw) * jnp.array(dist.high, dtype)
        return jax.random.uniform(key, shape, dtype, dist.low, dist.high, **kw)
    if isinstance(dist, TruncatedNormal):
        if variance is not None:
            if cplx:
                std = (jnp.sqrt(jnp.array(variance, dtype))
                       / jnp.array(COMPLEX_TRUNCATED_NORMAL_STD_2, dtype))
                return _complex_truncated_normal(key, 2, shape, dtype) * std
            std = jnp.sqrt(jnp.array(variance, dtype)) / jnp.array(TRUNCATED_NORMAL_STD_2SIGMA,
                                                                    dtype)
            return jax.random.truncated_normal(key, -2, 2, shape, dtype, **kw) * std
        if cplx:
            raise _no_complex(dist, dtype)
        lo, hi = bounds_in_dtype(dist.a, dist.b, dtype)
        if dist.std == 0:
            return jnp.full(shape, min(max(dist.mean, dist.a), dist.b), dtype, **kw)
        alpha = (dist.a - dist.mean) / dist.std
        beta = (dist.b - dist.mean) / dist.std
        # jax.random.truncated_normal takes *standardized* bounds (inverse CDF, no redraw loop);
        # the same call and product as jax.nn.initializers.truncated_normal
        x = jax.random.truncated_normal(key, alpha, beta, shape, dtype, **kw) * jnp.array(
            dist.std, dtype)
        if dist.mean == 0.0:
            return x
        return jnp.clip(x + jnp.array(dist.mean, dtype), lo, hi)
    if isinstance(dist, DecayRateLog):
        if cplx:
            raise _no_complex(dist, dtype)
        cdt = compute_dtype(dtype)
        u = jax.random.uniform(key, shape, cdt, **kw)
        return jnp.log(dist.low + u * (dist.high - dist.low)).astype(dtype)
    if isinstance(dist, RecurrenceRadius):
        if cplx:
            raise _no_complex(dist, dtype)
        cdt = compute_dtype(dtype)
        u = jax.random.uniform(key, shape, cdt, **kw)
        lo2, hi2 = dist.min_rad ** 2, dist.max_rad ** 2
        sp = -0.5 * jnp.log(lo2 + u * (hi2 - lo2))
        return (sp + jnp.log(-jnp.expm1(-sp))).astype(dtype)
    if isinstance(dist, TimeStepBias):
        if cplx:
            raise _no_complex(dist, dtype)
        cdt = compute_dtype(dtype)
        lo, hi = math.log(dist.dt_min), math.log(dist.dt_max)
        u = jax.random.uniform(key, shape, cdt, **kw)
        dt = jnp.maximum(jnp.exp(lo + u * (hi - lo)), jnp.array(dist.floor, cdt))
        return (dt + jnp.log(-jnp.expm1(-dt))).astype(dtype)
    if jax_recipe and layout == "jax":
        if isinstance(dist, Orthogonal) and dist.method == "qr":
            return _reshard(orthogonal(key, shape, dtype, dist.gain, column_axis), out_sharding)
        if isinstance(dist, DeltaOrthogonal) and len(shape) in (3, 4, 5):
            return _reshard(delta_orthogonal(key, shape, dtype, dist.gain, column_axis),
                            out_sharding)
    if cplx and not isinstance(dist, (Eye, Dirac)):
        raise _no_complex(dist, dtype)
    tshape = to_torch_shape(shape, layout)
    arr = _draw_torch_layout(key, dist, tshape, compute_dtype(dtype))
    axes = torch_axes_to(layout, len(tshape))
    if axes is not None:
        arr = jnp.transpose(arr, axes)
    return _reshard(arr.astype(dtype), out_sharding)


def _reshard(x, out_sharding):
    return x if out_sharding is None else jax.sharding.reshard(x, out_sharding)


def _qr_dtype(dtype):
    """JAX's QR has no CPU kernel for bf16/f16: factorize those in float32."""
    dt = jnp.dtype(dtype)
    return jnp.dtype(jnp.float32) if dt in (jnp.bfloat16, jnp.float16) else dt


def orthogonal(key, shape: tuple[int, ...], dtype, gain: float = 1.0,
               column_axis: int = -1) -> jax.Array:
    """JAX's ``orthogonal(scale=gain, column_axis)``: ``jax.random.orthogonal`` (QR of a Gaussian
    matrix, Mezzadri's sign fix) on ``(prod(other axes), shape[column_axis])``, moved back."""
    ndim = len(shape)
    col = column_axis % ndim
    n_cols = shape[col]
    n_rows = math.prod(shape) // n_cols
    qdt = _qr_dtype(dtype)
    q = jax.random.orthogonal(key, n_rows, (), qdt, n_cols).astype(dtype)
    q = jnp.reshape(q, tuple(np.delete(np.array(shape), col)) + (n_cols,))
    q = jnp.moveaxis(q, -1, col)
    return jnp.array(gain, dtype) * q


def delta_orthogonal(key, shape: tuple[int, ...], dtype, gain: float = 1.0,
                     column_axis: int = -1) -> jax.Array:
    """JAX's ``delta_orthogonal``: zeros with ``orthogonal(shape[-2:])`` at the kernel index
    ``(k - 1) // 2`` of each spatial axis (Xiao et al. 2018)."""
    ortho = orthogonal(key, shape[-2:], dtype, gain, column_axis)
    centre = tuple((k - 1) // 2 for k in shape[:-2])
    return jnp.zeros(shape, dtype).at[centre].set(ortho)


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
            q = q * jnp.where(d == 0, 1.0, d).astype(dtype)[None, :]
        else:
            u, _, _ = jnp.linalg.svd(a, full_matrices=False)
            q = u * jax.random.rademacher(ks, (1, m), dtype)
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
    return q * signs[None, :]


def _ranks(key, shape: tuple[int, ...], axis: int) -> jax.Array:
    """Uniformly random ranks 0..shape[axis]-1 along ``axis`` (a random permutation per slice)."""
    u = jax.random.uniform(key, shape)
    return jnp.argsort(jnp.argsort(u, axis=axis), axis=axis)


def _at_centre(shape: tuple[int, ...], m, cdt):
    """A torch-layout delta kernel: zeros with the ``(out, in)`` matrix ``m`` at the centre tap."""
    centre: tuple[slice | int, ...] = (slice(None), slice(None), *kernel_centre(shape))
    return jnp.zeros(shape, cdt).at[centre].set(m)


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
        q = dist.gain * haar_orthogonal(key, shape[0], shape[1], "qr", cdt)  # generic path
        return _at_centre(shape, q, cdt)
    if isinstance(dist, LooksLinear):
        rows, cols = looks_linear_block(shape, dist.position)
        q = dist.gain * haar_orthogonal(key, rows, cols, dist.method, cdt)
        m = jnp.kron(jnp.asarray(dist.signs, cdt), q)
        return m if len(shape) == 2 else _at_centre(shape, m, cdt)  # a conv: a delta kernel
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
    if isinstance(dist, RowDistribution):
        return jnp.broadcast_to(jnp.asarray(dist.row(shape[-1]), cdt), shape)
    raise fail("distribution", "is not a kind the JAX backend knows", type(dist).__name__,
               "add it to initlab.backends.jax_backend.")
