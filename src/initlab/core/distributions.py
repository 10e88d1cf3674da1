"""Concrete, framework-free descriptions of what to draw.

An :class:`~initlab.core.initializer.Initializer` *resolves* a shape (and fans) into one of these;
a backend (NumPy, PyTorch, ...) only knows how to draw each kind. Elementwise kinds (``iid``)
draw every element independently; structured kinds are defined on the torch layout
``(out, in, *kernel)`` and the core converts layouts around them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

# Standard deviation of a standard normal truncated to (-2, 2): divide a requested std by it to
# get the std of the parent normal, so the truncated result has the requested variance.
# (JAX's `variance_scaling`, Keras's `VarianceScaling`: ".87962566103423978".)
TRUNCATED_NORMAL_STD_2SIGMA = 0.87962566103423978


class Distribution:
    """Base class. ``iid`` says whether elements are drawn independently."""

    iid = True
    random = True

    def to_dict(self) -> dict:
        return {"kind": type(self).__name__, **asdict(self)}  # type: ignore[call-overload]


@dataclass(frozen=True)
class Constant(Distribution):
    value: float
    random = False


@dataclass(frozen=True)
class Normal(Distribution):
    mean: float
    std: float

    @property
    def variance(self) -> float:
        return self.std**2


@dataclass(frozen=True)
class Uniform(Distribution):
    low: float
    high: float

    @property
    def mean(self) -> float:
        return 0.5 * (self.low + self.high)

    @property
    def std(self) -> float:
        return (self.high - self.low) / math.sqrt(12.0)


@dataclass(frozen=True)
class TruncatedNormal(Distribution):
    """N(mean, std^2) conditioned on [a, b]; ``a``/``b`` absolute values, ``std`` the parent's."""

    mean: float
    std: float
    a: float
    b: float

    def moments(self) -> tuple[float, float]:
        """Mean and standard deviation of the truncated distribution."""
        from scipy import stats

        if self.std == 0:
            return self.mean, 0.0
        alpha = (self.a - self.mean) / self.std
        beta = (self.b - self.mean) / self.std
        m, v = stats.truncnorm.stats(alpha, beta, moments="mv")
        return self.mean + self.std * float(m), self.std * math.sqrt(float(v))


@dataclass(frozen=True)
class Orthogonal(Distribution):
    """Haar-distributed (semi-)orthogonal ``(out, prod(rest))`` matrix times ``gain``.

    ``method``: ``"qr"`` (QR of a Gaussian matrix with the sign fix of diag(R); Mezzadri 2007),
    ``"svd"`` (left/right singular vectors of a Gaussian matrix, columns given random signs, which
    is what makes them Haar), or ``"householder"`` (Stewart 1980: a product of random Householder
    reflectors with a sign correction; no factorization).
    """

    gain: float = 1.0
    method: str = "qr"
    iid = False


@dataclass(frozen=True)
class Eye(Distribution):
    """``gain`` times the identity (rectangular: ones on the main diagonal)."""

    gain: float = 1.0
    iid = False
    random = False


@dataclass(frozen=True)
class Dirac(Distribution):
    """Convolution identity (torch ``dirac_``): preserves the first ``out/groups`` channels of
    each group; ``gain`` times the delta at the kernel centre."""

    groups: int = 1
    gain: float = 1.0
    iid = False
    random = False


@dataclass(frozen=True)
class DeltaOrthogonal(Distribution):
    """Zero kernel with a Haar orthogonal ``(out, in)`` matrix times ``gain`` at the centre tap
    (Xiao et al. 2018). Needs ``in <= out``."""

    gain: float = 1.0
    iid = False


@dataclass(frozen=True)
class Sparse(Distribution):
    """torch ``sparse_``: N(0, std^2) entries, then ``ceil(sparsity * rows)`` entries of each column
    set to zero (positions uniformly at random). 2-D only."""

    sparsity: float
    std: float = 0.01
    iid = False


@dataclass(frozen=True)
class MartensSparse(Distribution):
    """Martens 2010 sparse init: each unit (row) gets exactly ``k`` nonzero incoming weights
    (positions uniformly at random), drawn from N(0, std^2); all others zero."""

    k: int = 15
    std: float = 1.0
    iid = False
