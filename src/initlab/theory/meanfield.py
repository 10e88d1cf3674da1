"""Mean-field theory of deep random networks: length map, chi_1, critical line, depth scales.

A fully connected layer ``z_l = W_l phi(z_{l-1}) + b_l`` with ``W_ij ~ N(0, sigma_w2 / N)`` and
``b_i ~ N(0, sigma_b2)`` maps the second moment ``q`` of its pre-activations, at infinite width, by
the *length map* (Poole, Lahiri, Raghu, Sohl-Dickstein, Ganguli 2016, "Exponential expressivity in
deep neural networks through transient chaos", eq. (3))::

    q_l = sigma_w2 * E[phi(sqrt(q_{l-1}) z)^2] + sigma_b2,        z ~ N(0, 1)

with a stable fixed point ``q*``. Two inputs at correlation ``c`` evolve by the correlation map;
its slope at ``c = 1`` is (Poole et al. 2016, eq. (7))::

    chi_1 = sigma_w2 * E[phi'(sqrt(q*) z)^2]

``chi_1 < 1``: ordered phase (inputs become correlated, gradients vanish); ``chi_1 > 1``: chaotic
(nearby inputs decorrelate, gradients explode); ``chi_1 = 1``: the critical line / edge of chaos.
Schoenholz, Gilmer, Ganguli, Sohl-Dickstein 2017, "Deep Information Propagation", eqs. (4)-(9),
define the depth scales over which ``q`` and ``c`` approach their fixed points::

    xi_q = -1 / ln( L'(q*) ),   L'(q*) = sigma_w2 * E[phi'(u)^2 + phi(u) phi''(u)],  u ~ N(0, q*)
    xi_c = -1 / ln( chi_c ),    chi_c = sigma_w2 * E[phi'(u_1) phi'(u_2)]  at the fixed point c*

(in the ordered phase c* = 1 and chi_c = chi_1), and find that networks are trainable when their
depth is below about ``6 xi_c``. Both depth scales diverge on the critical line: they are returned
as ``math.inf`` there, never as an error.

The one-dimensional pieces (length map, ``q*``, ``chi_1``, critical line) and the predicted
Jacobian spectrum (Pennington et al. 2017) live in :mod:`initlab.core.criticality`, so that the
recommender can use them; this module checks arguments and adds the correlation map, the depth
scales and the summary. ``predicted_spectrum`` and ``PredictedSpectrum`` are re-exported here.

Numerics: every Gaussian expectation goes through :func:`initlab.core.gaussian_expectation`, split
at the activation's kinks. ``L'(q)`` is computed without ``phi''`` by the Gaussian heat-equation
identity ``d/dq E[g(sqrt(q) z)] = E[g(sqrt(q) z) (z^2 - 1)] / (2 q)`` applied to ``g = phi^2``
(valid for kinked activations such as ReLU). ``q*`` is found by bracketing and Brent's method (not
by iterating the map, which converges only algebraically on the critical line): it is the root of
``L(q) - q`` that the iteration started at ``q0`` would converge to.

Special cases: with ``sigma_b2 = 0`` and ``phi(0) = 0`` (tanh) ``q = 0`` is a fixed point; for
``sigma_w2 <= 1`` it is the stable one, so ``q* = 0`` and the critical point is ``sigma_w2 = 1``
exactly (there ``q`` still shrinks to 0, algebraically, like ``1/l``). For unbounded activations
with ``L'(q) >= 1`` at large q (ReLU with ``sigma_w2 >= 2`` and ``sigma_b2 > 0``) ``q*`` is
``inf``; ``chi_1`` is then the large-q limit (evaluated at ``q = 1e10``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import optimize

from ..core.activations import Activation, activation, gaussian_expectation
from ..core.criticality import (  # noqa: F401  (the 1-D mean field lives in the core)
    Q_LARGE,
    Q_SEARCH_MAX,
    Q_SEARCH_MIN,
    PredictedSpectrum,
    predicted_spectrum,
)
from ..core.criticality import SCALE_CUTS_FROM as _SCALE_CUTS_FROM
from ..core.criticality import SCALE_MIN_EXP as _SCALE_MIN_EXP
from ..core.criticality import chi1_at as _chi1_at
from ..core.criticality import critical_sigma_w2 as _critical_sigma_w2
from ..core.criticality import expect as _expect
from ..core.criticality import fixed_point_q as _fixed_point_q
from ..core.criticality import scale_cuts as _scale_cuts
from ..core.criticality import slope_at as _slope
from ..core.validation import check_scalar, fail

TRAINABLE_DEPTH_FACTOR = 6.0  # Schoenholz et al. 2017, sec. 5: trainable up to ~6 xi_c


def _act(act) -> Activation:
    return activation(act)


def _check_q(q, name: str = "q") -> float:
    return check_scalar(q, name, min_val=0.0, why=" (a second moment of pre-activations)",
                        fix=f"pass a finite {name} >= 0.")


def _check_sw_sb(sigma_w2, sigma_b2) -> tuple[float, float]:
    sw = check_scalar(sigma_w2, "sigma_w2", min_val=0.0, include_min=False,
                      why=" (the weight variance times fan_in)")
    sb = check_scalar(sigma_b2, "sigma_b2", min_val=0.0, why=" (a bias variance)")
    return sw, sb


def second_moment(act, q: float) -> float:
    """E[phi(sqrt(q) z)^2], z ~ N(0, 1)."""
    a = _act(act)
    q = _check_q(q)
    return _expect(lambda x: a.f(x) ** 2, q, a)


def length_map(q: float, sigma_w2: float, sigma_b2: float, act="tanh") -> float:
    """The length map ``q -> sigma_w2 * E[phi(sqrt(q) z)^2] + sigma_b2`` (Poole et al. 2016)."""
    sw, sb = _check_sw_sb(sigma_w2, sigma_b2)
    q = _check_q(q)
    return sw * second_moment(act, q) + sb


def length_map_slope(q: float, sigma_w2: float, act="tanh") -> float:
    """``dL/dq = sigma_w2 * E[phi(sqrt(q) z)^2 (z^2 - 1)] / (2 q)`` (heat-equation identity);
    equal to ``sigma_w2 * E[phi'^2 + phi phi'']``; at ``q = 0`` the limit ``sigma_w2 phi'(0)^2``
    (for ``phi(0) = 0``)."""
    sw = check_scalar(sigma_w2, "sigma_w2", min_val=0.0, include_min=False,
                      why=" (the weight variance times fan_in)")
    q = _check_q(q)
    return _slope(sw, _act(act), q)


def fixed_point_q(sigma_w2: float, sigma_b2: float, act="tanh", *, q0: float = 1.0) -> float:
    """The fixed point ``q*`` of the length map reached from ``q0`` (0 and ``inf`` possible).

    ``L(q) = sigma_w2 E[phi(sqrt(q) z)^2] + sigma_b2`` is increasing in q for the usual
    activations, so iterating from ``q0`` moves monotonically to the nearest root of
    ``h(q) = L(q) - q`` in the direction of ``sign h(q0)``; this function brackets that root
    (doubling / quartering q) and solves it with Brent's method to ~1e-14 relative accuracy.
    """
    sw, sb = _check_sw_sb(sigma_w2, sigma_b2)
    q0 = check_scalar(q0, "q0", min_val=0.0, include_min=False)
    return _fixed_point_q(sw, sb, _act(act), q0)


def chi1(sigma_w2: float, sigma_b2: float, act="tanh", *, q_star: float | None = None) -> float:
    """``chi_1 = sigma_w2 * E[phi'(sqrt(q*) z)^2]`` (Poole et al. 2016, eq. (7))."""
    sw, sb = _check_sw_sb(sigma_w2, sigma_b2)
    a = _act(act)
    if q_star is None:
        q = _fixed_point_q(sw, sb, a)
    else:
        q = check_scalar(q_star, "q_star", min_val=0.0, why=" (the length map's fixed point)",
                         fix="pass q_star >= 0, or leave it None to solve for it.")
    return _chi1_at(sw, a, q)


# ---------------------------------------------------------------- correlation map (2-D)


_GH_Z, _GH_W = np.polynomial.hermite_e.hermegauss(81)
_GH_W = _GH_W / math.sqrt(2 * math.pi)
_OUTER_GL_X, _OUTER_GL_W = np.polynomial.legendre.leggauss(24)


def _outer_rule(q: float, cuts: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights (density included) of N(0, q) on +-12 sqrt(q), split at ``cuts`` and
    into pieces of at most 3 sqrt(q), 24-point Gauss-Legendre on each."""
    s = math.sqrt(q)
    lo, hi = -12.0 * s, 12.0 * s
    edges = [lo] + sorted({c for c in cuts if lo < c < hi}) + [hi]
    xs, ws = [], []
    for a, b in zip(edges[:-1], edges[1:]):
        n_sub = max(1, math.ceil((b - a) / (3.0 * s)))
        sub = np.linspace(a, b, n_sub + 1)
        for ea, eb in zip(sub[:-1], sub[1:]):
            xs.append(0.5 * (eb - ea) * _OUTER_GL_X + 0.5 * (eb + ea))
            ws.append(0.5 * (eb - ea) * _OUTER_GL_W)
    x, w = np.concatenate(xs), np.concatenate(ws)
    return x, w * np.exp(-0.5 * x * x / q) / math.sqrt(2 * math.pi * q)


_GL96_X, _GL96_W = np.polynomial.legendre.leggauss(96)


def _inner_batch(g, v: float, m: np.ndarray, kinks) -> np.ndarray:
    """``E[g(x + m_i)]`` for every ``m_i``, ``x ~ N(0, v)``: the real line cut at +-12 sqrt(v),
    every 3 sqrt(v), at the kinks shifted by ``-m_i`` and (for a wide Gaussian) at the unit-scale
    cuts around ``-m_i``; 96-point Gauss-Legendre on each piece, all rows at once."""
    sd = math.sqrt(v)
    half = 12.0 * sd
    fixed = np.linspace(-half, half, 9)
    shifts = [np.asarray(kinks, dtype=np.float64)]
    if half > _SCALE_CUTS_FROM:
        top = int(math.ceil(math.log2(half + float(np.max(np.abs(m))))))
        offs = 2.0 ** np.arange(_SCALE_MIN_EXP, top + 1)
        shifts.append(np.concatenate([[0.0], offs, -offs]))
    rel = np.concatenate(shifts)
    out = np.empty(len(m))
    for start in range(0, len(m), 256):   # bounded memory: 256 rows x pieces x 96 nodes
        mm = m[start:start + 256, None]
        edges = np.concatenate([np.broadcast_to(fixed, (len(mm), 9)),
                                np.clip(rel[None, :] - mm, -half, half)], axis=1)
        edges.sort(axis=1)
        lo, hi = edges[:, :-1, None], edges[:, 1:, None]
        x = 0.5 * (hi - lo) * _GL96_X + 0.5 * (hi + lo)
        w = 0.5 * (hi - lo) * _GL96_W * np.exp(-0.5 * x * x / v) / math.sqrt(2 * math.pi * v)
        out[start:start + 256] = np.sum(w * g(x + mm[:, :, None]), axis=(1, 2))
    return out


def _bivariate(g1, g2, q: float, c: float, kinks) -> float:
    """E[g1(u1) g2(u2)], (u1, u2) centred normal, variances q, correlation c.

    u2 = c u1 + x with x ~ N(0, q (1 - c^2)) independent of u1. Outer over u1: 81-point
    Gauss-Hermite for moderate q, else a piecewise Gauss-Legendre rule split at the kinks and
    the unit-scale cuts (:func:`_outer_rule`); inner over ``x``: :func:`_inner_batch`.
    """
    if c >= 1.0:
        return gaussian_expectation(lambda x: g1(x) * g2(x), q, tuple(kinks)
                                    + _scale_cuts(12.0 * math.sqrt(q)))
    v = q * (1.0 - c * c)
    if 12.0 * math.sqrt(q) > _SCALE_CUTS_FROM:
        x1, w1 = _outer_rule(q, tuple(kinks) + _scale_cuts(12.0 * math.sqrt(q)))
    else:  # moderate q: 81-point probabilists' Gauss-Hermite over z1 = u1 / sqrt(q)
        x1, w1 = math.sqrt(q) * _GH_Z, _GH_W
    wf = w1 * g1(x1)
    keep = np.abs(wf) > 1e-17 * np.sum(np.abs(wf))  # drop the far tails (relative 1e-17 each)
    return float(np.sum(wf[keep] * _inner_batch(g2, v, c * x1[keep], kinks)))


def correlation_map(c: float, sigma_w2: float, sigma_b2: float, act="tanh", *,
                    q_star: float | None = None) -> float:
    """``c -> (sigma_w2 E[phi(u1) phi(u2)] + sigma_b2) / q*`` (Poole et al. 2016, eq. (5)),
    ``(u1, u2)`` with variances ``q*`` and correlation ``c``."""
    sw, sb = _check_sw_sb(sigma_w2, sigma_b2)
    c = check_scalar(c, "c", min_val=-1.0, max_val=1.0, why=" (a correlation)")
    a = _act(act)
    if q_star is None:
        q = _fixed_point_q(sw, sb, a)
    else:
        q = check_scalar(q_star, "q_star", min_val=0.0, include_min=False,
                         why=" (the length map's fixed point)",
                         fix="pass a finite q_star > 0, or leave it None to solve for it.")
    if not 0 < q < math.inf:
        raise fail("q_star", "must be finite and > 0 for the correlation map", q,
                   "choose (sigma_w2, sigma_b2) where the length map has a finite, positive fixed "
                   "point.")
    return (sw * _bivariate(a.f, a.f, q, c, a.kinks) + sb) / q


def _fixed_point_c(sw: float, sb: float, a: Activation, q: float) -> float:
    """Stable fixed point c* of the correlation map in the chaotic phase (1 in the ordered one)."""

    def h(c):
        return (sw * _bivariate(a.f, a.f, q, c, a.kinks) + sb) / q - c

    for eps in (1e-2, 1e-3, 1e-4, 1e-5, 1e-6):
        if h(1.0 - eps) < 0:
            hi = 1.0 - eps
            break
    else:
        return 1.0  # no root below 1 found: c* = 1 (ordered or critical)
    lo = 0.0
    h_lo = h(lo)
    while h_lo < 0 and lo > -1.0 + 1e-9:
        hi, lo = lo, max(-1.0 + 1e-9, lo - 0.25 if lo > -0.75 else (lo - 1.0) / 2)
        h_lo = h(lo)
    if h_lo == 0:
        return lo
    if h_lo < 0:
        return -1.0
    return float(optimize.brentq(h, lo, hi, xtol=1e-12))


# ---------------------------------------------------------------- summary


@dataclass(frozen=True)
class MeanField:
    """Mean-field quantities at one point ``(sigma_w2, sigma_b2)``; see the module docstring.

    ``phase`` is "ordered" (chi_1 < 1), "chaotic" (chi_1 > 1) or "critical" (|chi_1 - 1| < 1e-6).
    ``max_trainable_depth = 6 * xi_c`` (Schoenholz et al. 2017); ``inf`` on the critical line.
    ``note`` explains a regime where some quantities do not exist (``q* = inf``: they are nan).
    """

    activation: str
    sigma_w2: float
    sigma_b2: float
    q_star: float
    chi1: float
    c_star: float
    chi_c: float
    xi_q: float
    xi_c: float
    max_trainable_depth: float
    phase: str
    note: str = ""

    def as_dict(self) -> dict:
        return {k: (v if not (isinstance(v, float) and math.isinf(v)) else "inf")
                for k, v in asdict(self).items()}

    def _repr_html_(self) -> str:  # Jupyter
        from ..report.notebook import theory_html

        return theory_html(self)


CRITICAL_TOL = 1e-6


def _depth_scale(slope: float) -> float:
    """``-1 / ln(slope)``; inf when slope is (numerically) 1, nan outside (0, 1]."""
    if not slope > 0:
        return 0.0 if slope == 0 else math.nan
    if slope >= 1.0 - 1e-12:
        return math.inf if slope <= 1.0 + 1e-12 else math.nan
    return -1.0 / math.log(slope)


def mean_field(sigma_w2: float, sigma_b2: float, act="tanh") -> MeanField:
    """All mean-field quantities at ``(sigma_w2, sigma_b2)`` for an activation.

    ``q*`` (length-map fixed point), ``chi_1``, ``c*`` and ``chi_c`` (correlation fixed point and
    slope), ``xi_q = -1/ln L'(q*)``, ``xi_c = -1/ln chi_c``, ``max_trainable_depth = 6 xi_c``.
    Poole et al. 2016, "Exponential expressivity in deep neural networks through transient chaos";
    Schoenholz et al. 2017, "Deep Information Propagation". Depth scales are ``inf`` at
    criticality (and ``xi_q`` is ``inf`` at ``q* = 0`` on ``sigma_w2 = 1``).

    >>> mf = mean_field(critical_sigma_w2(0.05, "tanh"), 0.05, "tanh")
    >>> mf.phase, mf.xi_c, round(mf.q_star, 3)
    ('critical', inf, 0.57)
    """
    sw, sb = _check_sw_sb(sigma_w2, sigma_b2)
    a = _act(act)
    q = _fixed_point_q(sw, sb, a)
    x1 = _chi1_at(sw, a, q)
    if abs(x1 - 1.0) < CRITICAL_TOL:
        phase = "critical"
    else:
        phase = "ordered" if x1 < 1 else "chaotic"
    note = ""
    if math.isinf(q):
        xi_q = math.nan
        c_star, chi_c = math.nan, math.nan
        xi_c = math.nan
        note = (f"no finite fixed point: for {a.name} with sigma_w2 = {sw:g} and sigma_b2 = "
                f"{sb:g} the length map gives L(q) > q for every q (its slope L'(q) = "
                f"{_slope(sw, a, Q_LARGE):.4g} >= 1 at large q), so the pre-activation variance "
                "grows without bound with depth. q* is infinite and c*, chi_c and the depth "
                "scales do not exist; chi_1 is the large-q limit. For a finite q*, lower "
                "sigma_w2 below the point where L'(q) reaches 1 (ReLU: sigma_w2 < 2) or set "
                "sigma_b2 = 0.")
    else:
        xi_q = _depth_scale(_slope(sw, a, q))
        if phase == "chaotic" and q > 0:
            c_star = _fixed_point_c(sw, sb, a, q)
            chi_c = float(sw * _bivariate(a.df, a.df, q, c_star, a.kinks)) if c_star < 1 else x1
        else:
            c_star, chi_c = 1.0, x1
        xi_c = math.inf if phase == "critical" else _depth_scale(chi_c)
    depth = TRAINABLE_DEPTH_FACTOR * xi_c if not math.isnan(xi_c) else math.nan
    return MeanField(a.name, sw, sb, q, x1, c_star, chi_c, xi_q, xi_c, depth, phase, note)


# ---------------------------------------------------------------- critical line


def critical_sigma_w2(sigma_b2: float = 0.0, act="tanh", *, max_sigma_w2: float = 1e4) -> float:
    """The weight variance ``sigma_w2`` on the critical line ``chi_1(sigma_w2, sigma_b2) = 1``.

    Solved by Brent's method on ``chi_1(sigma_w2) - 1``, each ``chi_1`` at its own ``q*``.
    For tanh: 1.000 (sigma_b2 = 0), 1.424 (0.01), 1.761 (0.05), 1.948 (0.09), 2.843 (0.5),
    3.443 (1.0) (Schoenholz et al. 2017, Fig. 1 / Poole et al. 2016, Fig. 2); ReLU: 2 for every
    sigma_b2 (He et al. 2015). Raises when chi_1 never crosses 1 below ``max_sigma_w2``.
    """
    sb = check_scalar(sigma_b2, "sigma_b2", min_val=0.0, why=" (a bias variance)")
    max_sw = check_scalar(max_sigma_w2, "max_sigma_w2", min_val=1.0, include_min=False,
                          why=" (the search for the critical point starts at sigma_w2 = 1)",
                          fix="pass max_sigma_w2 > 1 (default 1e4).")
    return _critical_sigma_w2(sb, _act(act), max_sw)


def critical_line(sigma_b2_values, act="tanh") -> list[tuple[float, float]]:
    """``[(sigma_b2, sigma_w2 critical), ...]`` for each value of ``sigma_b2`` (at least one)."""
    try:
        values = np.atleast_1d(np.asarray(sigma_b2_values, dtype=np.float64))
    except (TypeError, ValueError):
        raise fail("sigma_b2", "must be a list of bias variances (numbers >= 0)",
                   sigma_b2_values, "pass e.g. [0, 0.05, 0.5].") from None
    if values.ndim != 1 or values.size == 0:
        raise fail("sigma_b2", "must list at least one bias variance", sigma_b2_values,
                   "pass e.g. [0, 0.05, 0.5].")
    if not np.all(np.isfinite(values)):
        raise fail("sigma_b2", "must list finite bias variances (numbers >= 0)", sigma_b2_values,
                   "pass e.g. [0, 0.05, 0.5].")
    return [(float(sb), critical_sigma_w2(sb, act)) for sb in values]
