"""The one-dimensional mean field and the predicted Jacobian spectrum (framework-free).

This is the part of the mean-field theory that the recommender needs, so it lives in the core
(which may import nothing above it); :mod:`initlab.theory.meanfield` builds the rest (correlation
map, depth scales, the ``MeanField`` summary) on these functions and re-exports them.

Length map and critical line (Poole et al. 2016; Schoenholz et al. 2017)
-------------------------------------------------------------------------
``q_l = sigma_w2 E[phi(sqrt(q_{l-1}) z)^2] + sigma_b2`` with fixed point ``q*``;
``chi_1 = sigma_w2 E[phi'(sqrt(q*) z)^2]``; the critical line is ``chi_1 = 1``. On it, ``q*``
determines the point: ``sigma_w2 = 1 / E[phi'(sqrt(q*) z)^2]`` and
``sigma_b2 = q* - sigma_w2 E[phi(sqrt(q*) z)^2]`` (:func:`critical_point_at`), which is how
:func:`isometric_point` solves for ``q*`` without a nested search.

Predicted spectrum (Pennington, Schoenholz, Ganguli 2017, "Resurrecting the sigmoid in deep
learning through dynamical isometry: theory and practice", sec. 2-3)
------------------------------------------------------------------------------------------------
For an MLP with ``phi`` after each of its ``L`` layers, at the fixed point, the input-output
Jacobian is ``J = D_L W_L ... D_1 W_1`` with ``D_l = diag(phi'(z_l))``, ``z ~ N(0, q*)``. With
``mu_k = E[phi'(sqrt(q*) z)^(2k)]``, free probability (the S-transform is multiplicative over
the asymptotically free factors ``D_l^2`` and ``W_l W_l^T``) gives for the eigenvalues ``s^2`` of
``J J^T``::

    mean(s^2)              = (sigma_w2 mu_1)^L = chi_1^L
    var(s^2) / mean(s^2)^2 = L (mu_2 / mu_1^2 - 1 - s_1)

where ``s_1`` is the first S-transform coefficient of ``W W^T / sigma_w2``: -1 for Gaussian
weights (Marchenko-Pastur, variance 1), 0 for orthogonal ones. Derivation in one line: a law with
moments ``m_1, m_2`` has ``S(w) = (1 - (m_2/m_1^2 - 1) w + O(w^2)) / m_1``; multiplying the 2L
factors' S-transforms adds their ``m_2/m_1^2 - 1``. This is exact at infinite width for every L;
finite width ``N`` adds corrections of relative order ``L / N`` (tests/test_isometry_theory.py measures
them). Exact cases: ReLU (``phi'^2`` is 0 or 1 with probability 1/2, ``mu_2 / mu_1^2 = 2``):
spread ``L`` orthogonal, ``2 L`` Gaussian, whatever ``q*``; a linear net: 0 and ``L``; tanh as
``q* -> 0``: ``phi'`` is 1 everywhere that matters and the orthogonal spread goes to 0 (about
``8 L q*^2``): dynamical isometry.

Numerics: every Gaussian expectation goes through :func:`initlab.core.gaussian_expectation`, split
at the activation's kinks (and for wide Gaussians at unit-scale cuts, :func:`expect`); ``q*`` by
bracketing and Brent's method (see :func:`fixed_point_q`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np
from scipy import optimize

from .activations import Activation, activation, gaussian_expectation
from .validation import check_choice, check_scalar, fail

Q_LARGE = 1e10     # stand-in for q = inf when q* diverges (large-q limit of chi_1)
Q_SEARCH_MAX = 1e12  # beyond this, q* is declared infinite
Q_SEARCH_MIN = 1e-30  # below this, q* is declared 0 (only when L(0) = 0)

#: first S-transform coefficient of W W^T / sigma_w2 (Pennington et al. 2017, eq. (12)):
#: Gaussian (Marchenko-Pastur) -1, Haar orthogonal 0
S1 = {"gaussian": -1.0, "orthogonal": 0.0}
WEIGHTS = tuple(S1)

# Activations vary on the scale |x| ~ 1 (tanh saturates by |x| ~ 3, sech^4 is 1e-5 at |x| = 6),
# while the Gaussian's scale is sqrt(q). For q >> 1 a rule spread over +-12 sqrt(q) would step
# over that unit-scale structure, so expectations are also cut at +-2^k, k = -2 .. up to
# 12 sqrt(q): every piece is then within a factor 2 of its distance from the structure, and the
# 96-point Gauss-Legendre rule on each piece stays accurate for any q (checked against Monte
# Carlo up to q = 1e13 in tests/test_theory_meanfield.py).
# Below sqrt(q) = 4 the plain rule (pieces of 3 sqrt(q)) already resolves the unit scale.
SCALE_MIN_EXP = -2
SCALE_CUTS_FROM = 12.0 * 4.0


def scale_cuts(half_width: float, centre: float = 0.0) -> tuple[float, ...]:
    """Cuts at ``centre +- 2^k`` for 2^-2 <= 2^k < half_width, when half_width > 48
    (12 sigma of a Gaussian wider than 4)."""
    if not half_width > SCALE_CUTS_FROM:
        return ()
    top = int(math.ceil(math.log2(half_width)))
    offs = [2.0**k for k in range(SCALE_MIN_EXP, top + 1) if 2.0**k < half_width]
    return tuple([centre] + [centre + o for o in offs] + [centre - o for o in offs])


def expect(g, q: float, a: Activation) -> float:
    """E[g(sqrt(q) z)] split at the activation's kinks and at the unit-scale cuts."""
    cuts = a.kinks + scale_cuts(12.0 * math.sqrt(q)) if q > 0 else a.kinks
    return gaussian_expectation(g, q, cuts)


def deriv_moment(a: Activation, q: float, k: int = 1) -> float:
    """``mu_k = E[phi'(sqrt(q) z)^(2k)]`` (``phi'(0)^(2k)`` at q = 0)."""
    if q <= 0:
        return float(a.df(np.zeros(1))[0]) ** (2 * k)
    return expect(lambda x: a.df(x) ** (2 * k), q, a)


def fixed_point_q(sw: float, sb: float, a: Activation, q0: float = 1.0) -> float:
    """The fixed point ``q*`` of the length map reached from ``q0`` (0 and ``inf`` possible);
    arguments unchecked (the public, checked form is :func:`initlab.theory.fixed_point_q`).

    ``L(q) = sigma_w2 E[phi(sqrt(q) z)^2] + sigma_b2`` is increasing in q for the usual
    activations, so iterating from ``q0`` moves monotonically to the nearest root of
    ``h(q) = L(q) - q`` in the direction of ``sign h(q0)``; this brackets that root (doubling /
    quartering q) and solves it with Brent's method to ~1e-14 relative accuracy.
    """
    # For a bounded activation q* <= sigma_w2 sup(phi^2) + sigma_b2, so the search for a root
    # must reach beyond sigma_w2 + sigma_b2 before q* is declared infinite.
    q_max = Q_SEARCH_MAX * (1.0 + sw + sb)

    def h(q):
        return sw * expect(lambda x: a.f(x) ** 2, q, a) + sb - q

    h0 = h(q0)
    if abs(h0) <= 1e-13 * q0:
        return q0
    if h0 > 0:  # grows: find q with h < 0 above
        lo, hi = q0, q0 * 2.0
        while h(hi) > 0:
            lo, hi = hi, hi * 2.0
            if hi > q_max:
                return math.inf
    else:  # shrinks: find q with h > 0 below
        hi, lo = q0, q0 / 4.0
        while True:
            # a bracket needs h clearly above the ~1e-12 relative quadrature noise
            if h(lo) > 1e-10 * lo:
                break
            hi, lo = lo, lo / 4.0
            if lo < Q_SEARCH_MIN:
                h_zero = sw * float(a.f(np.zeros(1))[0]) ** 2 + sb
                if h_zero <= 0:
                    return 0.0
                lo = 0.0
                break
    return float(optimize.brentq(h, lo, hi, xtol=1e-300, rtol=4 * np.finfo(float).eps,
                                 maxiter=500))


def chi1_at(sw: float, a: Activation, q: float) -> float:
    """``chi_1 = sigma_w2 E[phi'(sqrt(q) z)^2]`` at a given ``q`` (inf: the large-q limit)."""
    if math.isinf(q):
        q = Q_LARGE
    return float(sw * deriv_moment(a, q))


def slope_at(sw: float, a: Activation, q: float) -> float:
    """``dL/dq = sigma_w2 * E[phi(sqrt(q) z)^2 (z^2 - 1)] / (2 q)`` (the Gaussian heat-equation
    identity, valid for kinked activations); at ``q = 0`` the limit ``sigma_w2 phi'(0)^2``."""
    if q <= 0:
        return sw * float(a.df(np.zeros(1))[0]) ** 2
    val = expect(lambda x: a.f(x) ** 2 * (x * x / q - 1.0), q, a)
    return sw * val / (2.0 * q)


def critical_sigma_w2(sb: float, a: Activation, max_sw: float = 1e4) -> float:
    """``sigma_w2`` with ``chi_1 = 1`` at ``sigma_b2 = sb`` (unchecked; the public, checked form
    is :func:`initlab.theory.critical_sigma_w2`); cached for registry activations."""
    if _is_registered(a):
        return _critical_cached(sb, a.name, a.param, max_sw)
    return _critical(sb, a, max_sw)


def _is_registered(a: Activation) -> bool:
    """Whether ``a`` is the registry's activation of its name (then results cache by name)."""
    from .activations import SPECS

    return a.name in SPECS and activation(a.name, a.param) == a


@lru_cache(maxsize=256)
def _critical_cached(sb: float, name: str, param: float | None, max_sw: float) -> float:
    return _critical(sb, activation(name, param), max_sw)


def _critical(sb: float, a: Activation, max_sw: float) -> float:
    def g(sw):
        return chi1_at(sw, a, fixed_point_q(sw, sb, a)) - 1.0

    lo, hi = 1e-3, 1.0
    g_lo = g(lo)
    if g_lo > 0:
        raise fail("sigma_b2", f"admits no critical point for `{a.name}`: chi_1 > 1 already at "
                   f"sigma_w2 = {lo}", sb, "choose another activation or sigma_b2.")
    while g(hi) < 0:
        lo, hi = hi, hi * 2.0
        if hi > max_sw:
            raise fail("max_sigma_w2", f"is too small for `{a.name}` with sigma_b2 = {sb}: "
                       f"chi_1 stays below 1 for sigma_w2 up to {max_sw:g}", max_sw,
                       "raise max_sigma_w2, or choose another sigma_b2 or activation "
                       "(chi_1 = sigma_w2 E[phi'^2] must reach 1).")
    return float(optimize.brentq(g, lo, hi, xtol=1e-12, rtol=1e-12))


def critical_point_at(a: Activation, q: float) -> tuple[float, float]:
    """``(sigma_w2, sigma_b2)`` of the critical line whose fixed point is ``q``:
    ``sigma_w2 = 1 / mu_1(q)``, ``sigma_b2 = q - sigma_w2 E[phi(sqrt(q) z)^2]`` (negative when
    no bias variance puts the fixed point there: sigmoid's ``phi(0) = 1/2`` keeps q* large)."""
    sw = 1.0 / deriv_moment(a, q)
    if q <= 0:
        return sw, -sw * float(a.f(np.zeros(1))[0]) ** 2
    return sw, q - sw * expect(lambda x: a.f(x) ** 2, q, a)


# ---------------------------------------------------------------- predicted spectrum


@dataclass(frozen=True)
class PredictedSpectrum:
    """The mean-field prediction for ``J J^T`` of a depth-``depth`` net (see module docs).

    ``mean_s2 = chi1^depth``; ``spread = var(s^2) / mean(s^2)^2 = depth (mu2/mu1^2 - 1 - s_1)``
    (nan when q* is infinite); ``spread_gaussian`` / ``spread_orthogonal``: the same point with
    the other weights, for comparison. Compare with :class:`initlab.theory.jacobian
    .SpectrumSummary` (same definitions, measured)."""

    activation: str
    sigma_w2: float
    sigma_b2: float
    depth: int
    weights: str
    q_star: float
    chi1: float
    mu1: float
    mu2: float
    mean_s2: float
    spread: float

    @property
    def per_layer(self) -> float:
        """``mu2 / mu1^2 - 1``: the activation's share of the spread per layer."""
        return self.mu2 / self.mu1**2 - 1.0 if self.mu1 > 0 else math.nan

    @property
    def spread_orthogonal(self) -> float:
        return self.depth * (self.per_layer - S1["orthogonal"])

    @property
    def spread_gaussian(self) -> float:
        return self.depth * (self.per_layer - S1["gaussian"])

    def as_dict(self) -> dict:
        d = asdict(self)
        d.update(per_layer=self.per_layer, spread_orthogonal=self.spread_orthogonal,
                 spread_gaussian=self.spread_gaussian)
        return d


def critical_at(a: Activation, q: float, depth: int) -> PredictedSpectrum | None:
    """The orthogonal prediction at the critical point whose fixed point is ``q``, or None when
    no such point exists with ``sigma_b2 >= 0`` and a stable fixed point (``L'(q) < 1``)."""
    sw, sb = critical_point_at(a, q)
    if sb < -1e-12 * q or not slope_at(sw, a, q) < 1.0:
        return None
    return spectrum_at(a, sw, max(sb, 0.0), depth, "orthogonal", q)


def _power(x: float, n: int) -> float:
    try:
        return math.pow(x, n)
    except OverflowError:
        return math.inf


def spectrum_at(a: Activation, sw: float, sb: float, depth: int, weights: str = "orthogonal",
                q: float | None = None) -> PredictedSpectrum:
    """:func:`predicted_spectrum` with unchecked arguments (``q``: a known fixed point)."""
    q = fixed_point_q(sw, sb, a) if q is None else q
    if math.isinf(q):
        x1 = chi1_at(sw, a, q)
        return PredictedSpectrum(a.name, sw, sb, depth, weights, q, x1, math.nan, math.nan,
                                 _power(x1, depth), math.nan)
    # at q* = 0 a kink at 0 (ReLU) makes phi'(0) meaningless: the moments' limit q -> 0+ (for a
    # homogeneous activation the same at every q) is what the Jacobian sees
    qm = Q_SEARCH_MIN if q <= 0 and 0.0 in a.kinks else q
    mu1, mu2 = float(deriv_moment(a, qm, 1)), float(deriv_moment(a, qm, 2))
    x1 = sw * mu1
    per = mu2 / mu1**2 - 1.0 if mu1 > 0 else math.nan
    per = max(per, 0.0)  # a variance: quadrature noise (~1e-16) must not make it negative
    return PredictedSpectrum(a.name, sw, sb, depth, weights, q, x1, mu1, mu2, _power(x1, depth),
                             depth * (per - S1[weights]))


def predicted_spectrum(activation_, sigma_w2: float, sigma_b2: float, depth: int,
                       weights: str = "orthogonal") -> PredictedSpectrum:
    """Predicted mean and spread of the squared singular values of the input-output Jacobian of
    a depth-``depth`` MLP (``phi`` after every layer, inputs at the fixed point ``q*``) with
    weights of variance ``sigma_w2 / fan_in`` (``weights``: ``"gaussian"`` or ``"orthogonal"``:
    a Haar orthogonal matrix times ``sqrt(sigma_w2)``) and biases N(0, sigma_b2).

    Pennington, Schoenholz, Ganguli 2017, "Resurrecting the sigmoid in deep learning through
    dynamical isometry: theory and practice": ``mean(s^2) = (sigma_w2 mu_1)^L``,
    ``var(s^2) / mean(s^2)^2 = L (mu_2 / mu_1^2 - 1 - s_1)``, ``s_1 = -1`` Gaussian, 0 orthogonal.

    >>> round(predicted_spectrum("relu", 2.0, 0.0, 10, "gaussian").spread, 6)
    20.0
    """
    a = activation(activation_)
    sw = check_scalar(sigma_w2, "sigma_w2", min_val=0.0, include_min=False,
                      why=" (the weight variance times fan_in)")
    sb = check_scalar(sigma_b2, "sigma_b2", min_val=0.0, why=" (a bias variance)")
    depth = check_scalar(depth, "depth", min_val=1, integer=True,
                         why=" (the number of weighted layers)")
    check_choice(weights, "weights", WEIGHTS)
    return spectrum_at(a, sw, sb, depth, weights)


# ---------------------------------------------------------------- the isometric point

#: Target of the predicted orthogonal spread var(s^2)/mean(s^2)^2 at the recommended point.
#: 4: the std of the squared singular values ~2x their mean, whatever the depth (for tanh,
#: q* 0.16 at L = 51, 0.064 at L = 201, 0.025 at L = 1001; the orthogonal spread is ~ 8 L q*^2
#: for small q*). Smaller is more isometric but nearer to a linear network (q* -> 0), which on
#: MNIST generalizes like a linear classifier. Chosen on validation data (RESULTS.md, isometry,
#: "the spread target"): on the lab's depth-200 tanh MLP the validation accuracy is flat over
#: targets 2-8 (93.1-93.7%) and lower at 0.5 (91.8%) and 32 (91.3%); 4 is the middle of the
#: flat range. Until session 13 it was 0.5.
ISOMETRY_SPREAD_TARGET = 4.0
#: Largest bias variance the isometric point may use: 0.05, the `critical` initializer's default
#: (Schoenholz et al. 2017's trainability experiments); reached only by shallow nets.
ISOMETRY_SIGMA_B2_MAX = 0.05


def isometric_point(a: Activation, depth: int, target: float = ISOMETRY_SPREAD_TARGET,
                    sigma_b2_max: float = ISOMETRY_SIGMA_B2_MAX) -> PredictedSpectrum:
    """The critical point (chi_1 = 1) with orthogonal weights whose predicted spread at
    ``depth`` is ``target``: the largest ``q*`` (so the largest ``sigma_b2 <= sigma_b2_max``)
    with ``depth (mu_2/mu_1^2 - 1) <= target``, then ``sigma_w2, sigma_b2`` from
    :func:`critical_point_at`. Cached for registry activations.

    When even the smallest reachable ``q*`` (``sigma_b2 = 0``) exceeds the target (sigmoid,
    hardsigmoid: ``phi(0) != 0`` keeps ``q*`` large), that point is returned: its ``spread``
    says how far from isometric it stays. Raises when the activation has no critical point with
    ``sigma_b2 >= 0``.
    """
    if _is_registered(a):
        return _isometric_cached((a.name, a.param), depth, float(target), float(sigma_b2_max))
    return _isometric(a, depth, target, sigma_b2_max)


@lru_cache(maxsize=512)
def _isometric_cached(key, depth: int, target: float, sigma_b2_max: float) -> PredictedSpectrum:
    return _isometric(activation(*key), depth, target, sigma_b2_max)


def _isometric(a: Activation, depth: int, target: float, sb_max: float) -> PredictedSpectrum:
    per_target = target / depth

    def per(q):
        return max(deriv_moment(a, q, 2) / deriv_moment(a, q, 1) ** 2 - 1.0, 0.0)

    sw_cap = critical_sigma_w2(sb_max, a)
    q_cap = fixed_point_q(sw_cap, sb_max, a)
    if not 0 < q_cap < math.inf:
        raise fail("activation", "has no finite critical fixed point for the isometric choice",
                   a.name, "use `orthogonal` with the activation's gain, or another activation.")
    # the smallest q* reachable with sigma_b2 >= 0: 0 when phi(0) = 0 (sigma_b2 = 0, q* -> 0)
    sb_zero = critical_point_at(a, 0.0)[1]
    if sb_zero >= 0:
        q_lo = 0.0
    else:
        sw0 = critical_sigma_w2(0.0, a)
        q_lo = fixed_point_q(sw0, 0.0, a)
    if per(q_lo) >= per_target:   # the target is out of reach: the most isometric point
        sw, sb = (critical_sigma_w2(0.0, a), 0.0)
        return spectrum_at(a, sw, sb, depth, "orthogonal", q_lo)
    if per(q_cap) <= per_target:
        q = q_cap
    else:
        q = float(optimize.brentq(lambda t: per(t) - per_target, q_lo, q_cap, xtol=1e-14,
                                  rtol=1e-10))
    sw, sb = critical_point_at(a, q)
    sb = min(max(sb, 0.0), sb_max)  # quadrature noise at q ~ 0 (hardtanh: sb ~ -1e-19)
    if q == 0.0:
        sb = 0.0
    return spectrum_at(a, sw, sb, depth, "orthogonal", q)

