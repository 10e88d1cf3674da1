"""Concrete, framework-free descriptions of what to draw.

An :class:`~initlab.core.initializer.Initializer` *resolves* a shape (and fans) into one of these;
a backend (NumPy, PyTorch, ...) only knows how to draw each kind. Elementwise kinds (``iid``)
draw every element independently; structured kinds are defined on the torch layout
``(out, in, *kernel)`` and the core converts layouts around them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import ClassVar

from .validation import check_choice, fail

# Standard deviation of a standard normal truncated to (-2, 2): divide a requested std by it to
# get the std of the parent normal, so the truncated result has the requested variance.
# (JAX's `variance_scaling`, Keras's `VarianceScaling`: ".87962566103423978".)
TRUNCATED_NORMAL_STD_2SIGMA = 0.87962566103423978


# A normal (or Gaussian-valued structured kind) is treated as reaching at most this many standard
# deviations from its mean when checking that a draw fits a dtype: P(|z| > 9) = 2.3e-19 per
# element, so even 2**40 elements exceed it with probability < 1e-6.
GAUSSIAN_TAIL_STDS = 9.0


class Distribution:
    """Base class of every kind. Class attributes: ``kind`` (the name backends' sampler tables
    and ``to_dict`` use), ``is_elementwise`` (elements drawn independently, layout-free) and
    ``random`` (needs a random source).

    Moments and bounds live here, so no caller needs an ``isinstance`` chain:

    * :meth:`moments` ``(shape=None) -> (mean, std)``, exact; for structured kinds over the
      elements of a tensor of torch-layout ``shape`` (None when not known in closed form);
    * :meth:`mean`, :meth:`var`, :meth:`std` the same one at a time (``mean`` etc. are fields
      of some kinds, hence the ``expected_`` prefix);
    * :meth:`bounds` the closed interval a draw must be clipped into after rounding to a dtype
      (None: nothing to clip);
    * :meth:`extent` the largest ``|value|`` a draw reaches (Gaussian tails counted to
      ``GAUSSIAN_TAIL_STDS``), which a backend checks against its dtype's largest finite value;
    * :meth:`check_shape` the structural requirements on a torch-layout shape;
    * :meth:`fixed_values` the values a non-random kind writes.
    """

    kind: ClassVar[str] = "distribution"
    is_elementwise: ClassVar[bool] = True
    random: ClassVar[bool] = True

    @property
    def iid(self) -> bool:
        """Alias of ``is_elementwise`` (elements drawn independently)."""
        return self.is_elementwise

    def moments(self, shape: tuple[int, ...] | None = None) -> tuple[float, float] | None:
        """``(mean, std)`` of the elements; None when not known in closed form."""
        return None

    def expected_mean(self, shape: tuple[int, ...] | None = None) -> float | None:
        m = self.moments(shape)
        return None if m is None else m[0]

    def expected_std(self, shape: tuple[int, ...] | None = None) -> float | None:
        m = self.moments(shape)
        return None if m is None else m[1]

    def expected_var(self, shape: tuple[int, ...] | None = None) -> float | None:
        m = self.moments(shape)
        return None if m is None else m[1] ** 2

    def bounds(self) -> tuple[float, float] | None:
        """The interval every value lies in and is clipped into after rounding (None: none)."""
        return None

    def extent(self) -> float:
        """Largest ``|value|`` a draw reaches (Gaussian tails: ``GAUSSIAN_TAIL_STDS`` std)."""
        raise NotImplementedError

    def check_shape(self, shape: tuple[int, ...]) -> None:
        """Raise unless a tensor of torch-layout ``shape`` can hold this kind (no-op here)."""

    def fixed_values(self) -> tuple[float, ...] | None:
        """The values a non-random kind writes (e.g. an integer tensor must hold them exactly);
        None for random kinds."""
        return None

    def to_dict(self) -> dict:
        return {"kind": type(self).__name__, **asdict(self)}  # type: ignore[call-overload]


def _over(*values: float) -> float:
    """max |v|, never inf from an intermediate (``abs(-1e308 - 1e308)`` would be)."""
    return max(abs(v) for v in values)


@dataclass(frozen=True)
class Constant(Distribution):
    value: float
    kind = "constant"
    random = False

    def moments(self, shape=None):
        return float(self.value), 0.0

    def fixed_values(self):
        return (self.value,)

    def extent(self) -> float:
        return abs(float(self.value))


@dataclass(frozen=True)
class Normal(Distribution):
    mean: float
    std: float
    kind = "normal"

    @property
    def variance(self) -> float:
        return self.std**2

    def moments(self, shape=None):
        return self.mean, self.std

    def extent(self) -> float:
        return abs(self.mean) + GAUSSIAN_TAIL_STDS * self.std


@dataclass(frozen=True)
class Uniform(Distribution):
    low: float
    high: float
    kind = "uniform"

    @property
    def mean(self) -> float:
        m = 0.5 * (self.low + self.high)
        return m if math.isfinite(m) else 0.5 * self.low + 0.5 * self.high  # e.g. +-1e308

    @property
    def std(self) -> float:
        width = self.high - self.low
        if math.isfinite(width):
            return width / math.sqrt(12.0)
        return (0.5 * self.high - 0.5 * self.low) / math.sqrt(3.0)  # width overflows float64

    def moments(self, shape=None):
        return self.mean, self.std

    def bounds(self):
        return (min(self.low, self.high), max(self.low, self.high))

    def extent(self) -> float:
        return _over(self.low, self.high)

    def check_shape(self, shape) -> None:
        if self.low > self.high:
            raise fail("low", f"must be <= `high` (={self.high})", self.low, "swap the bounds.")


@dataclass(frozen=True)
class TruncatedNormal(Distribution):
    """N(mean, std^2) conditioned on [a, b]; ``a``/``b`` absolute values, ``std`` the parent's."""

    mean: float
    std: float
    a: float
    b: float
    kind = "truncated_normal"

    def moments(self, shape=None):
        """Mean and standard deviation of the truncated distribution."""
        from scipy import stats

        if self.std == 0:
            return min(max(self.mean, self.a), self.b), 0.0
        alpha = (self.a - self.mean) / self.std
        beta = (self.b - self.mean) / self.std
        m, v = stats.truncnorm.stats(alpha, beta, moments="mv")
        return self.mean + self.std * float(m), self.std * math.sqrt(float(v))

    def bounds(self):
        return (self.a, self.b)

    def extent(self) -> float:
        # values lie in [a, b] and, with probability 1 - 2e-19, within 9 parent std of the mean
        lo = max(self.a, self.mean - GAUSSIAN_TAIL_STDS * self.std)
        hi = min(self.b, self.mean + GAUSSIAN_TAIL_STDS * self.std)
        return _over(lo, hi) if lo <= hi else _over(self.a, self.b)

    def check_shape(self, shape) -> None:
        if not self.a < self.b:
            raise fail("a", f"must be < `b` (={self.b})", self.a, "pass a < b.")


def _rows_cols(shape) -> tuple[int, int, int]:
    n = math.prod(shape)
    return shape[0], (n // shape[0] if shape[0] else 0), n


def _need_2d(shape, what: str, fix: str) -> None:
    if len(shape) < 2:
        raise fail("tensor", f"must have at least 2 dimensions for {what}", shape, fix)


def _need_conv(shape, what: str, fix: str) -> None:
    if len(shape) not in (3, 4, 5):
        raise fail("tensor", f"must be 3-, 4- or 5-D (a conv weight) for {what}", shape, fix)


def _deterministic(shape, nonzeros: int, value: float) -> tuple[float, float] | None:
    """Moments over the elements of a tensor holding ``nonzeros`` copies of ``value``, else 0."""
    n = math.prod(shape)
    if n == 0:
        return None
    mean = value * nonzeros / n
    return mean, math.sqrt(max(value * value * nonzeros / n - mean * mean, 0.0))


ORTHOGONAL_METHODS = ("qr", "svd", "householder")
# The one orthogonal default of initlab's own paths (the catalog's `orthogonal`, plans, LSUV,
# initlab.torch.orthogonal_, delta_orthogonal): Stewart's Householder method draws the same Haar
# distribution as QR + sign fix without a factorization, measured 1.4-1.65x faster than
# torch.nn.init.orthogonal_ (BENCHMARKS.md) and 2x faster than NumPy's QR at 1024 x 1024.
# The JAX and Keras adapters follow their frameworks instead.
DEFAULT_ORTHOGONAL_METHOD = "householder"


@dataclass(frozen=True)
class Orthogonal(Distribution):
    """Haar-distributed (semi-)orthogonal ``(out, prod(rest))`` matrix times ``gain``.

    ``method``: ``"householder"`` (the default, :data:`DEFAULT_ORTHOGONAL_METHOD`; Stewart 1980:
    Householder reflectors built directly from Gaussian vectors, no factorization), ``"qr"`` (QR
    of a Gaussian matrix with the sign fix of diag(R); Mezzadri 2007; torch's ``orthogonal_``) or ``"svd"`` (left/right singular vectors
    of a Gaussian matrix, columns given random signs, which is what makes them Haar).
    """

    gain: float = 1.0
    method: str = DEFAULT_ORTHOGONAL_METHOD
    kind = "orthogonal"
    is_elementwise = False

    def moments(self, shape=None):
        if shape is None or len(shape) < 2 or math.prod(shape) == 0:
            return None
        rows, cols, n = _rows_cols(shape)
        # sum of squares of a semi-orthogonal (rows, cols) matrix is min(rows, cols); mean 0 by
        # the sign symmetry of the Haar measure
        return 0.0, abs(self.gain) * math.sqrt(min(rows, cols) / n)

    def extent(self) -> float:
        return abs(self.gain)  # entries of an orthonormal matrix are at most 1 in size

    def check_shape(self, shape) -> None:
        _need_2d(shape, "an orthogonal matrix", "use another initializer for 1-D tensors.")
        check_choice(self.method, "method", ORTHOGONAL_METHODS)


@dataclass(frozen=True)
class Eye(Distribution):
    """``gain`` times the identity (rectangular: ones on the main diagonal)."""

    gain: float = 1.0
    kind = "eye"
    is_elementwise = False
    random = False

    def moments(self, shape=None):
        if shape is None or len(shape) != 2:
            return None
        return _deterministic(shape, min(shape), self.gain)

    def fixed_values(self):
        return (self.gain, 0.0)

    def extent(self) -> float:
        return abs(self.gain)

    def check_shape(self, shape) -> None:
        if len(shape) != 2:
            raise fail("tensor", "must be 2-D for `eye`", shape, "for conv kernels use `dirac`.")


@dataclass(frozen=True)
class Dirac(Distribution):
    """Convolution identity (torch ``dirac_``): preserves the first ``out/groups`` channels of
    each group; ``gain`` times the delta at the kernel centre."""

    groups: int = 1
    gain: float = 1.0
    kind = "dirac"
    is_elementwise = False
    random = False

    def moments(self, shape=None):
        if shape is None or len(shape) not in (3, 4, 5) or self.groups < 1:
            return None
        per_group = shape[0] // self.groups
        return _deterministic(shape, self.groups * min(per_group, shape[1]), self.gain)

    def fixed_values(self):
        return (self.gain, 0.0)

    def extent(self) -> float:
        return abs(self.gain)

    def check_shape(self, shape) -> None:
        _need_conv(shape, "`dirac`", "for 2-D matrices use `eye`.")
        if self.groups < 1 or shape[0] % self.groups:
            raise fail("groups", f"must divide the number of output channels (={shape[0]})",
                       self.groups, "pass the conv's `groups`.")


@dataclass(frozen=True)
class DeltaOrthogonal(Distribution):
    """Zero kernel with a Haar orthogonal ``(out, in)`` matrix times ``gain`` at the centre tap
    (Xiao et al. 2018). Needs ``in <= out``."""

    gain: float = 1.0
    kind = "delta_orthogonal"
    is_elementwise = False

    def moments(self, shape=None):
        if shape is None or len(shape) not in (3, 4, 5) or math.prod(shape) == 0:
            return None
        # the centre tap holds an (out, in) matrix with orthonormal columns: sum of squares = in
        return 0.0, abs(self.gain) * math.sqrt(min(shape[0], shape[1]) / math.prod(shape))

    def extent(self) -> float:
        return abs(self.gain)

    def check_shape(self, shape) -> None:
        _need_conv(shape, "`delta_orthogonal`", "for 2-D matrices use `orthogonal`.")
        if shape[1] > shape[0]:
            raise fail("tensor", "must have in_channels <= out_channels for `delta_orthogonal`",
                       shape, "use `orthogonal` on the flattened kernel instead.")


#: Where a looks-linear layer sits in its ReLU stack (:class:`LooksLinear`) -> whether it
#: mirrors its (out, in) sides: the one table the block, the signs and the shape rule read.
LOOKS_LINEAR_MIRRORS = {"first": (True, False), "hidden": (True, True), "last": (False, True)}
LOOKS_LINEAR_POSITIONS = tuple(LOOKS_LINEAR_MIRRORS)


def looks_linear_block(shape: tuple[int, ...], position: str) -> tuple[int, int]:
    """The ``(rows, cols)`` of the orthogonal block ``V`` a looks-linear ``(out, in)`` matrix (or
    a conv kernel's ``(out, in)`` centre tap) is made of (:class:`LooksLinear`): halves of the
    mirrored sides."""
    (rows_mirrored, cols_mirrored) = LOOKS_LINEAR_MIRRORS[position]
    return (shape[0] // 2 if rows_mirrored else shape[0],
            shape[1] // 2 if cols_mirrored else shape[1])


def kernel_centre(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The centre tap ``k // 2`` of each spatial axis of a torch-layout conv kernel ``(out, in,
    *k)``, where the delta kernels (``dirac``, ``delta_orthogonal``, a conv ``looks_linear``)
    put their matrix."""
    return tuple(k // 2 for k in shape[2:])


@dataclass(frozen=True)
class LooksLinear(Distribution):
    """Mirrored orthogonal ``(out, in)`` matrix (Balduzzi et al. 2017, "looks-linear"): a Haar
    (semi-)orthogonal block ``V`` times ``gain``, repeated with signs so that a ReLU stack is
    linear at init. Torch layout, 2-D ``(out, in)``, or a conv kernel ``(out, in, *k)``: zeros
    with the matrix at the centre tap (:func:`kernel_centre`; the delta construction of
    ``delta_orthogonal``, so a "same"-padded ReLU CNN is linear at init pixel by pixel).
    ``position``:

    * ``"first"``: ``[[V], [-V]]`` (``out`` even): the output is ``[u, -u]``;
    * ``"hidden"``: ``[[V, -V], [-V, V]]`` (``out``, ``in`` even): maps ``[f(u), f(-u)]`` to
      ``[V w, -V w]`` with ``w = f(u) - f(-u)`` (``= u`` for ReLU);
    * ``"last"``: ``[[V, -V]]`` (``in`` even): maps ``[f(u), f(-u)]`` to ``V w``.

    A conv's mirrored halves are its first and second halves of channels, so a dense readout
    after ``flatten`` of ``(C, H, W)`` features folds them back at position ``"last"``.
    """

    gain: float = 1.0
    position: str = "hidden"
    method: str = DEFAULT_ORTHOGONAL_METHOD
    kind = "looks_linear"
    is_elementwise = False

    @property
    def signs(self) -> tuple[tuple[float, ...], ...]:
        """The sign pattern ``S``: the matrix is ``kron(S, V)``, which every backend computes
        (``(1, -1)`` along each mirrored side, their outer product)."""
        rows, cols = ((1.0, -1.0) if m else (1.0,) for m in LOOKS_LINEAR_MIRRORS[self.position])
        return tuple(tuple(r * c for c in cols) for r in rows)

    @property
    def copies(self) -> int:
        """How many signed copies of ``V`` the matrix holds."""
        return sum(len(row) for row in self.signs)

    def moments(self, shape=None):
        if shape is None or len(shape) not in (2, 3, 4, 5) or math.prod(shape) == 0:
            return None
        rows, cols = looks_linear_block(tuple(shape), self.position)
        # each copy of the semi-orthogonal block holds min(rows, cols) in sum of squares; mean 0
        return 0.0, abs(self.gain) * math.sqrt(self.copies * min(rows, cols) / math.prod(shape))

    def extent(self) -> float:
        return abs(self.gain)

    def check_shape(self, shape) -> None:
        check_choice(self.position, "position", LOOKS_LINEAR_POSITIONS)
        check_choice(self.method, "method", ORTHOGONAL_METHODS)
        misfit = looks_linear_misfit(shape, self.position)
        if misfit:
            raise fail("tensor", misfit[0], shape, misfit[1])


def looks_linear_misfit(shape, position: str) -> tuple[str, str] | None:
    """``(rule, fix)`` when a torch-layout ``shape`` cannot hold looks-linear weights at
    ``position`` (:class:`LooksLinear`), else None: a 2-D ``(out, in)`` matrix or a 3- to 5-D
    conv kernel ``(out, in, *k)`` whose mirrored sides (out for "first"/"hidden", in for
    "hidden"/"last") are even."""
    if len(shape) not in (2, 3, 4, 5):
        return ("must be 2-D (out, in) or a 3-, 4- or 5-D conv kernel (out, in, *k) for "
                "`looks_linear`", "looks-linear mirrors the units of a dense layer or the "
                "channels of a convolution; flatten other weights first.")
    odd = [f"{what} = {n}" for what, n, mirrored in
           zip(("out", "in"), shape, LOOKS_LINEAR_MIRRORS[position]) if mirrored and n % 2]
    if odd:
        return (f"must have even mirrored sides for `looks_linear` at position {position!r} "
                f"({', '.join(odd)})", "use `orthogonal` for this layer, or an even width.")
    return None


@dataclass(frozen=True)
class Sparse(Distribution):
    """torch ``sparse_``: N(0, std^2) entries, then ``ceil(sparsity * rows)`` entries of each column
    set to zero (positions uniformly at random). 2-D only."""

    sparsity: float
    std: float = 0.01
    kind = "sparse"
    is_elementwise = False

    def moments(self, shape=None):
        if shape is None or len(shape) != 2 or shape[0] == 0:
            return None
        rows = shape[0]
        kept = rows - min(rows, int(math.ceil(self.sparsity * rows)))
        return 0.0, self.std * math.sqrt(kept / rows)

    def extent(self) -> float:
        return GAUSSIAN_TAIL_STDS * self.std

    def check_shape(self, shape) -> None:
        if len(shape) != 2:
            raise fail("tensor", "must be 2-D for `sparse`", shape, "use `martens_sparse`.")


@dataclass(frozen=True)
class MartensSparse(Distribution):
    """Martens 2010 sparse init: each unit (row) gets exactly ``k`` nonzero incoming weights
    (positions uniformly at random), drawn from N(0, std^2); all others zero."""

    k: int = 15
    std: float = 1.0
    kind = "martens_sparse"
    is_elementwise = False

    def moments(self, shape=None):
        if shape is None or len(shape) < 2 or math.prod(shape) == 0:
            return None
        _, cols, _ = _rows_cols(shape)
        return 0.0, self.std * math.sqrt(min(self.k, cols) / cols)

    def extent(self) -> float:
        return GAUSSIAN_TAIL_STDS * self.std

    def check_shape(self, shape) -> None:
        cols = math.prod(shape[1:]) if len(shape) >= 2 else 0
        if len(shape) < 2 or self.k > cols:
            raise fail("k", f"must be <= the number of inputs per unit (={cols})", self.k,
                       "pass a smaller k.")


#: The Mamba (S6) time-step range: dt ~ log-uniform on [DT_MIN, DT_MAX], floored at DT_FLOOR
#: (Gu & Dao 2023, "Mamba", section 3.6 and its reference code's defaults).
DT_MIN, DT_MAX, DT_FLOOR = 0.001, 0.1, 1e-4


def _softplus_inverse(dt: float) -> float:
    """x with softplus(x) = log(1 + e^x) = dt, for dt > 0 (dt + log(-expm1(-dt)), stable)."""
    return dt + math.log(-math.expm1(-dt))


def _gauss_legendre(f, a: float, b: float, n: int = 64) -> float:
    """The integral of the smooth ``f`` over [a, b] by n-point Gauss-Legendre quadrature."""
    import numpy as np

    x, w = np.polynomial.legendre.leggauss(n)
    t = 0.5 * (b - a) * x + 0.5 * (b + a)
    return float(0.5 * (b - a) * np.sum(w * f(t)))


class RowDistribution(Distribution):
    """A kind that is one float64 row (:meth:`row`, ``n`` values for a last axis of ``n``)
    repeated along the tensor's last (torch-layout) axis, the same for every other index; not
    random. Every backend writes ``row`` itself (the NumPy reference's values bit for bit), and
    the tensor's moments are the row's. ``axis`` names the last axis in the shape error."""

    is_elementwise = False
    random = False
    axis: ClassVar[str] = "the axis the values run along"
    _shape_fix: ClassVar[str] = "pass a vector or larger tensor."

    def row(self, n: int):
        raise NotImplementedError

    def moments(self, shape=None):
        if shape is None or len(shape) == 0 or math.prod(shape) == 0:
            return None
        r = self.row(shape[-1])
        return float(r.mean()), float(r.std())

    def check_shape(self, shape) -> None:
        if len(shape) == 0:
            raise fail("tensor", f"must have at least 1 dimension ({self.axis}) for "
                       f"`{self.kind}`", shape, self._shape_fix)


@dataclass(frozen=True)
class S4DReal(RowDistribution):
    """The S4D-real diagonal state matrix stored as its log: ``A_n = -(n + 1)``, so the tensor
    holds ``log(n + 1)`` at index n of its last (torch-layout) axis, broadcast over the others
    (Gu, Gupta, Goel, Re 2022, "On the Parameterization and Initialization of Diagonal State
    Space Models"; Mamba's ``A_log``, Mamba-2's per-head ``A_log``). Not random."""

    kind = "s4d_real"
    axis = "the state axis"
    _shape_fix = "pass the state matrix's A_log tensor."

    @staticmethod
    def row(n: int):
        """The values along the last axis, float64: log(1), ..., log(n)."""
        import numpy as np

        return np.log(np.arange(1, n + 1, dtype=np.float64))

    def fixed_values(self):
        # an integer tensor cannot hold log(2) (every last axis of 2 or more holds it)
        return (0.0, math.log(2.0))

    def extent(self) -> float:
        return 64 * math.log(2.0)  # log of any axis length that fits in memory (< 2**64)


@dataclass(frozen=True)
class Linspace(RowDistribution):
    """A ramp from ``start`` towards ``end`` along the tensor's last (torch-layout) axis,
    broadcast over the others: ``start + (end - start) * t_i ** power`` with ``t_i = i / (n - 1)``
    (``endpoint``, ``torch.linspace``; one value ``start`` on an axis of one) or ``t_i = i / n``
    (not ``endpoint``: ``numpy.linspace(..., endpoint=False)``, ``end`` not reached). ``power``
    1 is equal steps; other powers warp the ramp. xLSTM's forget-gate biases are
    linspace(3, 6) over the heads (Beck et al. 2024); RWKV-4's decays and token-shift mixes are
    power ramps (Peng et al. 2023). Not random."""

    start: float = 0.0
    end: float = 1.0
    power: float = 1.0
    endpoint: bool = True
    kind = "linspace"
    axis = "the axis the ramp runs along"

    def row(self, n: int):
        """The values along the last axis, float64."""
        import numpy as np

        if self.power == 1.0 and self.endpoint:
            return np.linspace(self.start, self.end, n, dtype=np.float64)
        t = np.arange(n, dtype=np.float64) / max(n - 1 if self.endpoint else n, 1)
        return self.start + (self.end - self.start) * t ** self.power

    def moments(self, shape=None):
        if shape is None or len(shape) == 0 or math.prod(shape) == 0:
            return None
        n = shape[-1]
        if n == 1:
            return self.start, 0.0
        if self.power == 1.0 and self.endpoint:
            # n equally spaced points: variance step^2 (n^2 - 1) / 12, step (end - start) / (n - 1)
            return ((self.start + self.end) / 2,
                    abs(self.end - self.start) * math.sqrt((n + 1) / (12 * (n - 1))))
        return super().moments(shape)

    def bounds(self):
        return (min(self.start, self.end), max(self.start, self.end))

    def fixed_values(self):
        # the ends, and the midpoint a ramp of odd length holds: an integer tensor takes a ramp
        # only when all three are integers (linspace(2, 4); not linspace(3, 6)); a warped or
        # open ramp adds its values at t = 1/3 and 1/2, so that an integer tensor takes it
        # only in the degenerate case start == end
        if self.start == self.end:
            return (self.start,)
        if self.power == 1.0 and self.endpoint:
            return (self.start, self.end, (self.start + self.end) / 2)
        d = self.end - self.start
        return (self.start, self.end, self.start + d * (1 / 3) ** self.power,
                self.start + d * 0.5 ** self.power)

    def extent(self) -> float:
        return _over(self.start, self.end)


@dataclass(frozen=True)
class Cycle(RowDistribution):
    """The ``values`` repeated in order along the tensor's last (torch-layout) axis, broadcast
    over the others: index i holds ``values[i % len(values)]``. RWKV-4's ``time_first`` starts
    at log(0.3) plus the zigzag (0, 0.5, -0.5) over the channels (Peng et al. 2023). Not
    random."""

    values: tuple[float, ...] = (0.0,)
    kind = "cycle"
    axis = "the axis the values cycle along"

    def row(self, n: int):
        """The values along the last axis, float64."""
        import numpy as np

        v = np.asarray(self.values, dtype=np.float64)
        return v[np.arange(n) % len(v)]

    def bounds(self):
        return (min(self.values), max(self.values))

    def fixed_values(self):
        return tuple(self.values)

    def extent(self) -> float:
        return _over(*self.values)

    def to_dict(self) -> dict:
        return {"kind": type(self).__name__, "values": list(self.values)}


@dataclass(frozen=True)
class TimeStepBias(Distribution):
    """The bias of a selective SSM's time step: dt ~ exp(U(log dt_min, log dt_max)), floored at
    ``floor``, stored as softplus^-1(dt), so that softplus(x + bias) starts at dt for x = 0
    (Gu & Dao 2023, "Mamba: Linear-Time Sequence Modeling with Selective State Spaces",
    section 3.6 and appendix; its ``dt_proj.bias`` / Mamba-2's ``dt_bias``). Elementwise: each
    value a monotone function of one U(0, 1) draw (:meth:`from_unit`)."""

    dt_min: float = DT_MIN
    dt_max: float = DT_MAX
    floor: float = DT_FLOOR
    kind = "time_step_bias"

    def from_unit(self, u):
        """The values for U(0, 1) draws ``u`` (a NumPy array), float64."""
        import numpy as np

        lo, hi = math.log(self.dt_min), math.log(self.dt_max)
        dt = np.maximum(np.exp(lo + np.asarray(u, dtype=np.float64) * (hi - lo)), self.floor)
        return dt + np.log(-np.expm1(-dt))

    def moments(self, shape=None):
        # E[g(U)] and E[g(U)^2] by quadrature, split at the floor's kink (smooth on each part)
        lo, hi = math.log(self.dt_min), math.log(self.dt_max)
        kink = (math.log(self.floor) - lo) / (hi - lo) if hi > lo else 0.0
        parts = [(0.0, 1.0)] if not 0.0 < kink < 1.0 else [(0.0, kink), (kink, 1.0)]
        m1 = sum(_gauss_legendre(self.from_unit, a, b) for a, b in parts)
        m2 = sum(_gauss_legendre(lambda t: self.from_unit(t) ** 2, a, b) for a, b in parts)
        return m1, math.sqrt(max(m2 - m1 * m1, 0.0))

    def bounds(self):
        return (_softplus_inverse(max(self.dt_min, self.floor)),
                _softplus_inverse(max(self.dt_max, self.floor)))

    def extent(self) -> float:
        return _over(*self.bounds())


@dataclass(frozen=True)
class DecayRateLog(Distribution):
    """The decay rates of a gated linear-attention layer stored as their log: A ~ U(low, high),
    the tensor holds log A, and the layer's per-step decay exp(-A softplus(x + dt_bias)) starts
    at a spread of rates (Yang, Kautz, Hatamizadeh 2025, "Gated Delta Networks", and FLA's
    reference: A ~ U(0, 16); Kimi Linear's and GLM-5-Next's ``A_log``: U(1, 16)). Elementwise:
    each value a monotone function of one U(0, 1) draw (:meth:`from_unit`)."""

    low: float = 1.0
    high: float = 16.0
    kind = "decay_rate_log"

    def from_unit(self, u):
        """The values for U(0, 1) draws ``u`` (a NumPy array), float64."""
        import numpy as np

        return np.log(self.low + np.asarray(u, dtype=np.float64) * (self.high - self.low))

    def moments(self, shape=None):
        # E[log A] and E[log^2 A] for A ~ U(a, b), in closed form: the antiderivatives
        # x log x - x and x log^2 x - 2 x log x + 2 x over [a, b], divided by b - a
        a, b = self.low, self.high
        if b == a:
            return math.log(a), 0.0

        def f1(x):
            return x * math.log(x) - x

        def f2(x):
            return x * math.log(x) ** 2 - 2 * x * math.log(x) + 2 * x

        m1 = (f1(b) - f1(a)) / (b - a)
        m2 = (f2(b) - f2(a)) / (b - a)
        return m1, math.sqrt(max(m2 - m1 * m1, 0.0))

    def bounds(self):
        return math.log(self.low), math.log(self.high)

    def extent(self) -> float:
        return _over(*self.bounds())


#: Griffin's RG-LRU radius range (De et al. 2024): a = sigma(Lambda) in [0.9, 0.999]
LRU_MIN_RAD, LRU_MAX_RAD = 0.9, 0.999


@dataclass(frozen=True)
class RecurrenceRadius(Distribution):
    """The recurrence parameter of a real-gated linear recurrent unit (RG-LRU; De, Smith,
    Fernando et al. 2024, "Griffin: Mixing Gated Linear Recurrences with Local Attention for
    Efficient Language Models", in RecurrentGemma): the diagonal recurrence weight
    a = exp(-softplus(x)) (= sigma(-x)) has a^2 ~ U(min_rad^2, max_rad^2), uniform over the
    area of a ring (the LRU's ring initialization, Orvieto et al. 2023, "Resurrecting Recurrent
    Neural Networks for Long Sequences"), and the tensor stores x = softplus^-1(-log a), so that
    the layer's per-step decay a^(c r) starts at memory lengths 1/(1 - a) of 10 to 1,000 steps.
    Elementwise: each value a monotone function of one U(0, 1) draw (:meth:`from_unit`)."""

    min_rad: float = LRU_MIN_RAD
    max_rad: float = LRU_MAX_RAD
    kind = "recurrence_radius"

    def from_unit(self, u):
        """The values for U(0, 1) draws ``u`` (a NumPy array), float64."""
        import numpy as np

        lo2, hi2 = self.min_rad ** 2, self.max_rad ** 2
        s = -0.5 * np.log(lo2 + np.asarray(u, dtype=np.float64) * (hi2 - lo2))  # -log a > 0
        return s + np.log(-np.expm1(-s))   # softplus^-1(s), stable for small s

    def moments(self, shape=None):
        # smooth on [0, 1] (a, max_rad < 1): quadrature of g(U) and g(U)^2
        m1 = _gauss_legendre(self.from_unit, 0.0, 1.0)
        m2 = _gauss_legendre(lambda t: self.from_unit(t) ** 2, 0.0, 1.0)
        return m1, math.sqrt(max(m2 - m1 * m1, 0.0))

    def bounds(self):
        # decreasing in the radius: the largest radius gives the smallest value
        return (_softplus_inverse(-math.log(self.max_rad)),
                _softplus_inverse(-math.log(self.min_rad)))

    def extent(self) -> float:
        return _over(*self.bounds())


#: Every distribution kind; each backend's sampler table must cover all of them.
KINDS: tuple[type[Distribution], ...] = (
    Constant, Normal, Uniform, TruncatedNormal, Orthogonal, Eye, Dirac, DeltaOrthogonal, Sparse,
    MartensSparse, LooksLinear, S4DReal, TimeStepBias, DecayRateLog, RecurrenceRadius,
    Linspace, Cycle,
)


def check_fits_dtype(dist: Distribution, dtype_name: str, max_finite: float, *,
                     name: str = "dtype") -> None:
    """Refuse a distribution whose draws would go beyond a dtype's largest finite value (they
    would be written as inf), with the dtype's range in the message. ``name`` is the parameter
    that carries the dtype (``dtype`` for NumPy sampling, ``tensor`` for initlab.torch)."""
    ext = dist.extent()
    if not ext <= max_finite:  # also refuses nan
        raise fail(
            name,
            f"({dtype_name}, finite range [-{max_finite:.6g}, {max_finite:.6g}]) cannot hold "
            f"draws of {dist!r}, which reach |x| = {ext:.6g} (they would be written as inf)",
            dtype_name,
            "use a dtype with a wider range (float32 instead of float16/bfloat16, float64 instead "
            "of float32) or a smaller std / narrower bounds.")


def check_fits_integer(dist: Distribution, dtype_name: str, lo: int, hi: int, *,
                       name: str = "dtype") -> None:
    """Refuse a distribution an integer dtype with range ``[lo, hi]`` cannot hold exactly: a
    random kind (integers are no draw of it), or a fixed value that would be wrapped or
    truncated (``constant(0.3)`` in int32). Zeros, ones, integer constants, eye and dirac pass.
    A bool dtype is the range ``[0, 1]`` (``constant(2)`` would become True)."""
    values = dist.fixed_values()
    if values is None:
        raise fail(name, f"({dtype_name}) is an integer dtype, which holds no draw of the random "
                   f"{dist!r}", dtype_name, "use a floating dtype, or a constant kind (zeros, "
                   "ones, constant, identity, dirac) for integer arrays.")
    for v in values:
        if not (lo <= v <= hi and float(v).is_integer()):
            what = "0 and 1 (False, True)" if dtype_name == "bool" else f"integers in [{lo}, {hi}]"
            raise fail(
                name, f"({dtype_name}, {what}) cannot hold the value {v!r} exactly (it would be "
                "wrapped, truncated or made a truth value)", v,
                f"pass an integer value in [{lo}, {hi}], or use a floating or wider integer "
                "dtype.")


def missing_kinds(table) -> list[str]:
    """Names of the kinds in :data:`KINDS` a backend's sampler table does not cover."""
    return [k.__name__ for k in KINDS if k not in table]
