"""The NumPy reference sampler: draws each :mod:`~initlab.core.distributions` kind.

It lives in the core (NumPy and SciPy only, no framework) because ``Initializer.sample`` is the
reference path every framework backend is checked against; :mod:`initlab.backends.numpy_backend`
re-exports it under its backend name.

Stream (``STREAM_VERSION = "numpy-pcg64-f64-v2"``; v2: orthogonal kinds default to and draw
"householder" through LAPACK's ``dorgqr``): an int seed becomes
``Generator(PCG64(SeedSequence(seed)))``; every value is drawn in float64 and cast to the output
dtype last (so a float32 sample is the float64 sample rounded).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy import special
from scipy.linalg import lapack

from .distributions import (
    DEFAULT_ORTHOGONAL_METHOD,
    Constant,
    Cycle,
    DecayRateLog,
    DeltaOrthogonal,
    Dirac,
    Distribution,
    Eye,
    Linspace,
    LooksLinear,
    MartensSparse,
    Normal,
    Orthogonal,
    RecurrenceRadius,
    RowDistribution,
    S4DReal,
    Sparse,
    TimeStepBias,
    TruncatedNormal,
    Uniform,
    check_fits_dtype,
    kernel_centre,
    looks_linear_block,
)
from .fans import to_torch_shape, torch_axes_to
from .seeding import check_seed
from .validation import fail


def make_rng(seed) -> np.random.Generator:
    """A NumPy Generator from an explicit seed (:func:`initlab.core.seeding.check_seed`) or an
    existing Generator (returned as is, and consumed by the draw)."""
    if isinstance(seed, np.random.Generator):
        return seed
    seed = check_seed(seed, also="a numpy.random.Generator")
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed)))


def bounds_in_dtype(a: float, b: float, dtype) -> tuple:
    """[a, b] rounded *into* ``dtype``: the nearest representable bounds inside the interval, so
    that clipping after the cast can never leave a value outside [a, b]. (The comparisons are in
    Python floats: under NumPy 2's promotion rules ``np.float32(0.3) > 0.3`` compares in float32.)"""
    dt = np.dtype(dtype)
    lo, hi = dt.type(a), dt.type(b)
    if float(lo) < a:
        lo = np.nextafter(lo, dt.type(np.inf))
    if float(hi) > b:
        hi = np.nextafter(hi, dt.type(-np.inf))
    return lo, hi


def truncated_standard_normal(rng: np.random.Generator, size, alpha: float, beta: float) -> np.ndarray:
    """Standard normal conditioned on [alpha, beta], by inverse CDF in float64.

    For an interval in the upper tail the problem is mirrored to the lower tail, where ndtr keeps
    full relative precision, so far-tail intervals (e.g. [5, 6]) are still exact; results are
    clipped into [alpha, beta] against the last rounding error.
    """
    flip = alpha > 0
    if flip:
        alpha, beta = -beta, -alpha
    lo, hi = special.ndtr(alpha), special.ndtr(beta)
    u = np.asarray(rng.uniform(lo, hi, size))
    x = special.ndtri(u, out=np.empty(u.shape))  # an array also for size=() (0-d)
    np.clip(x, alpha, beta, out=x)
    return -x if flip else x


def haar_orthogonal(rng: np.random.Generator, rows: int, cols: int,
                    method: str = DEFAULT_ORTHOGONAL_METHOD) -> np.ndarray:
    """A (rows, cols) matrix with orthonormal rows (rows <= cols) or columns, Haar-distributed.

    ``"householder"`` (default): Stewart 1980, as the torch backend: the Householder vectors of
    the QR factorization of a Gaussian n x m matrix are themselves independent Gaussian vectors
    (column j below the diagonal), so they are drawn directly and multiplied out by LAPACK's
    ``dorgqr``, skipping the factorization; the sign fix uses beta_j = R[j, j]. ``"qr"``: Q of a
    Gaussian matrix times sign(diag(R)) (Mezzadri 2007). ``"svd"``: U of a Gaussian matrix with
    random column signs.
    """
    transpose = rows < cols
    n, m = (cols, rows) if transpose else (rows, cols)  # n >= m: orthonormal columns of n x m
    a = rng.standard_normal((n, m))
    if method == "householder":
        q = _householder(a)
    elif method == "qr":
        q, r = np.linalg.qr(a)
        d = np.sign(np.diag(r))
        d[d == 0] = 1.0
        q = q * d  # Mezzadri 2007: makes Q Haar
    else:  # svd: U of a Gaussian matrix, then random column signs (the Haar fix)
        u, _, _ = np.linalg.svd(a, full_matrices=False)
        signs = rng.choice(np.array([-1.0, 1.0]), size=m)
        q = u * signs
    return q.T if transpose else q


def _householder(g: np.ndarray) -> np.ndarray:
    """Q (n x m, orthonormal columns) from the Gaussian n x m matrix ``g`` by Stewart's method.

    Column j of ``g`` from the diagonal down is v = G[j:, j]: beta_j = -sign(v_0) |v|,
    tau_j = (beta_j - v_0) / beta_j, reflector w = v / (v_0 - beta_j) (LAPACK's dlarfg);
    ``dorgqr`` multiplies the reflectors out; column j times sign(beta_j) = sign(R[j, j]).
    """
    g = np.tril(g)
    v0 = np.diagonal(g).copy()
    beta = -np.where(v0 >= 0, 1.0, -1.0) * np.linalg.norm(g, axis=0)
    tau = (beta - v0) / beta
    g /= v0 - beta  # the diagonal (implicitly 1) and the upper part are ignored by dorgqr
    q, _, info = lapack.dorgqr(g, tau, lwork=max(1, 64 * g.shape[1]))
    if info != 0:  # pragma: no cover - LAPACK argument error, not reachable with valid shapes
        raise RuntimeError(f"LAPACK dorgqr failed (info={info})")
    return q * np.where(beta >= 0, 1.0, -1.0)


def dirac_array(shape: tuple[int, ...], groups: int, gain: float) -> np.ndarray:
    """torch ``dirac_`` as a float64 array of torch-layout ``shape``: ``gain`` at the kernel
    centre linking input channel d to output channel d of each of the ``groups``."""
    out = np.zeros(shape)
    per_group = shape[0] // groups
    centre = kernel_centre(shape)
    for g in range(groups):
        for d in range(min(per_group, shape[1])):
            out[tuple([g * per_group + d, d, *centre])] = gain
    return out


# ============================================================================ the sampler table
# One sampler per distribution kind: ``sampler(dist, shape, rng, dtype) -> ndarray``. Elementwise
# kinds get the output shape and return ``dtype``; structured kinds get the torch-layout shape
# and return float64 (``draw`` converts the layout and casts).


def _constant(dist: Constant, shape, rng, dtype) -> np.ndarray:
    return np.full(shape, dist.value, dtype=dtype)


def _normal(dist: Normal, shape, rng, dtype) -> np.ndarray:
    x = np.asarray(rng.standard_normal(shape))
    x *= dist.std
    x += dist.mean
    return x.astype(dtype, copy=False)


def _uniform(dist: Uniform, shape, rng, dtype) -> np.ndarray:
    if math.isfinite(dist.high - dist.low):
        x = rng.uniform(dist.low, dist.high, shape)
    else:  # high - low overflows float64 (e.g. +-1e308): the same map on halves, then doubled
        x = rng.uniform(0.5 * dist.low, 0.5 * dist.high, shape)
        x *= 2.0
    return np.asarray(x).astype(dtype, copy=False)


def _truncated_normal(dist: TruncatedNormal, shape, rng, dtype) -> np.ndarray:
    if dist.std == 0:
        return np.full(shape, min(max(dist.mean, dist.a), dist.b), dtype=dtype)
    alpha = (dist.a - dist.mean) / dist.std
    beta = (dist.b - dist.mean) / dist.std
    x = dist.mean + dist.std * truncated_standard_normal(rng, shape, alpha, beta)
    x = np.asarray(x).astype(dtype, copy=False)
    np.clip(x, *bounds_in_dtype(dist.a, dist.b, dtype), out=x)
    return x


def _orthogonal(dist: Orthogonal, shape, rng, dtype) -> np.ndarray:
    rows, cols = shape[0], math.prod(shape[1:])
    return dist.gain * haar_orthogonal(rng, rows, cols, dist.method).reshape(shape)


def _eye(dist: Eye, shape, rng, dtype) -> np.ndarray:
    return dist.gain * np.eye(shape[0], shape[1])


def _dirac(dist: Dirac, shape, rng, dtype) -> np.ndarray:
    return dirac_array(shape, dist.groups, dist.gain)


def _at_centre(shape, m: np.ndarray) -> np.ndarray:
    """A delta kernel of ``shape``: zeros with the ``(out, in)`` matrix ``m`` at the centre tap."""
    out = np.zeros(shape)
    centre: tuple[slice | int, ...] = (slice(None), slice(None), *kernel_centre(shape))
    out[centre] = m
    return out


def _delta_orthogonal(dist: DeltaOrthogonal, shape, rng, dtype) -> np.ndarray:
    return _at_centre(shape, dist.gain * haar_orthogonal(rng, shape[0], shape[1]))


def _looks_linear(dist: LooksLinear, shape, rng, dtype) -> np.ndarray:
    rows, cols = looks_linear_block(shape, dist.position)
    m = np.kron(np.array(dist.signs), dist.gain * haar_orthogonal(rng, rows, cols, dist.method))
    return m if len(shape) == 2 else _at_centre(shape, m)  # a conv kernel: a delta kernel


def _sparse(dist: Sparse, shape, rng, dtype) -> np.ndarray:
    rows, cols = shape
    out = rng.standard_normal(shape) * dist.std
    n_zero = int(math.ceil(dist.sparsity * rows))
    for j in range(cols):
        out[rng.permutation(rows)[:n_zero], j] = 0.0
    return out


def _martens_sparse(dist: MartensSparse, shape, rng, dtype) -> np.ndarray:
    rows = shape[0]
    cols = math.prod(shape[1:])
    out = np.zeros((rows, cols))
    for i in range(rows):
        idx = rng.permutation(cols)[: dist.k]
        out[i, idx] = rng.standard_normal(dist.k) * dist.std
    return out.reshape(shape)


def _row(dist: RowDistribution, shape, rng, dtype) -> np.ndarray:
    """A deterministic kind that is one row (``dist.row``) repeated along the last axis."""
    return np.broadcast_to(dist.row(shape[-1]), shape).copy()


def _from_unit(dist: TimeStepBias | DecayRateLog | RecurrenceRadius, shape, rng, dtype) -> np.ndarray:
    """A kind whose values are a monotone map of one U(0, 1) draw each (``dist.from_unit``)."""
    x = dist.from_unit(rng.uniform(0.0, 1.0, shape))
    return np.asarray(x).astype(dtype, copy=False)


SAMPLERS: dict[type[Distribution], Callable[..., np.ndarray]] = {
    Constant: _constant, Normal: _normal, Uniform: _uniform, TruncatedNormal: _truncated_normal,
    Orthogonal: _orthogonal, Eye: _eye, Dirac: _dirac, DeltaOrthogonal: _delta_orthogonal,
    Sparse: _sparse, MartensSparse: _martens_sparse, LooksLinear: _looks_linear,
    S4DReal: _row, TimeStepBias: _from_unit, DecayRateLog: _from_unit,
    RecurrenceRadius: _from_unit, Linspace: _row, Cycle: _row,
}


def draw(dist: Distribution, shape: tuple[int, ...], rng: np.random.Generator,
         dtype=np.float32, layout: str = "torch") -> np.ndarray:
    """Draw ``dist`` into a new array of ``shape`` (given in ``layout``) and ``dtype``.

    Refused before drawing: a kind this backend has no sampler for, a shape the kind cannot fill
    (``dist.check_shape``) and a distribution whose values would not fit ``dtype``
    (``check_fits_dtype``: they would become inf)."""
    dtype = np.dtype(dtype)
    sampler = SAMPLERS.get(type(dist))
    if sampler is None:
        raise fail("distribution", "is not a kind the NumPy sampler knows", type(dist).__name__,
                   "pass an initlab.core.distributions kind (KINDS).")
    tshape = shape if dist.is_elementwise else to_torch_shape(shape, layout)
    dist.check_shape(tshape)
    check_fits_dtype(dist, str(dtype), float(np.finfo(dtype).max))
    if dist.is_elementwise:
        return sampler(dist, shape, rng, dtype)
    arr = sampler(dist, tshape, rng, dtype)
    axes = torch_axes_to(layout, len(tshape))
    if axes is not None:
        arr = np.transpose(arr, axes)
    return np.ascontiguousarray(arr, dtype=dtype)
