"""Saturation: how flat an activation is where its weighted inputs land.

A unit learns at a rate proportional to ``f'(z)`` (backprop multiplies by it). For the sigmoid,
``s'(z) = s(z)(1 - s(z))``: ``s'(0) = 0.25``, ``s'(2) = 0.104994``, ``s'(10) = 4.5396e-5``, so a unit
whose weighted input is 10 learns ``s'(2)/s'(10) = 2312.8`` times slower than one at 2 and
``s'(0)/s'(10) = 5507`` times slower than one at 0 (Nielsen, "Neural Networks and Deep Learning",
ch. 2-3; LeCun, Bottou, Orr, Mueller 1998, "Efficient BackProp", sec. 4.4).

:func:`saturated_fraction` gives the fraction of weighted inputs in the saturated region
``S = {z : |f'(z)| < threshold}``; ``S`` is found as a union of intervals (a fine grid, then
bisection at every crossing of ``|f'| = threshold``) and its probability is computed under the
normal law of ``z`` (exact for Gaussian weights with fixed inputs, a mixture of normals for
empirical inputs, the CLT approximation otherwise; see :mod:`.weighted_input`).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from ..core.activations import activation
from ..core.validation import check_scalar, fail
from .weighted_input import WeightedInput

# Default saturation threshold on |f'(z)|: 1% of a unit slope. For the sigmoid (peak 0.25) that is
# |z| > 4.585; for tanh (peak 1) |z| > 2.993. Learning there is >= 25x (sigmoid) / 100x (tanh)
# slower than at z = 0.
DEFAULT_THRESHOLD = 0.01
_GRID = 20001  # grid points when locating the saturated set


def derivative(act, x, param: float | None = None):
    """``f'(x)`` of an activation (name or NumPy callable); scalar in, float out."""
    a = activation(act, param)
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise fail("x", "must be a number or an array of numbers", x, "pass e.g. 2.0.") from None
    if np.isnan(arr).any():
        raise fail("x", "must not be NaN (f'(NaN) has no value)", x,
                   "pass real points; +-inf give the limits of f'.")
    out = a.df(arr)
    return float(out) if np.ndim(out) == 0 else np.asarray(out, dtype=np.float64)


def slowdown_ratio(x_fast: float, x_slow: float, act="sigmoid", param: float | None = None) -> float:
    """``f'(x_fast) / f'(x_slow)``: how many times slower a unit at ``x_slow`` learns.

    >>> round(slowdown_ratio(2, 10), 1), round(slowdown_ratio(0, 10))
    (2312.8, 5507)
    """
    a = activation(act, param)
    x1 = check_scalar(x_fast, "x_fast")
    x2 = check_scalar(x_slow, "x_slow")
    d2 = float(a.df(np.array([x2]))[0])
    if d2 == 0:
        raise fail("x_slow", f"is where f' = 0 for `{a.name}` (infinitely slow)", x2,
                   "pick a point where the derivative is non-zero.")
    return float(a.df(np.array([x1]))[0]) / d2


def saturated_set(act="sigmoid", threshold: float = DEFAULT_THRESHOLD, *,
                  span: float = 60.0, param: float | None = None) -> list[tuple[float, float]]:
    """Intervals (possibly unbounded: ``-inf``/``inf``) where ``|f'(z)| < threshold``.

    Located on a grid over ``[-span, span]`` refined by bisection at each crossing (60 halvings);
    beyond ``span`` the behaviour at the grid ends is extended to infinity.
    """
    a = activation(act, param)
    thr = check_scalar(threshold, "threshold", min_val=0.0, include_min=False)
    span = check_scalar(span, "span", min_val=0.0, include_min=False)
    grid = np.linspace(-span, span, _GRID)
    inside = np.abs(a.df(grid)) < thr

    def is_in(x):
        return bool(abs(float(a.df(np.array([x]))[0])) < thr)

    intervals: list[tuple[float, float]] = []
    start = -math.inf if inside[0] else None
    for i in range(1, len(grid)):
        if inside[i] == inside[i - 1]:
            continue
        lo, hi = grid[i - 1], grid[i]  # is_in(lo) = inside[i-1]
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            if is_in(mid) == inside[i - 1]:
                lo = mid
            else:
                hi = mid
        edge = float(0.5 * (lo + hi))
        if inside[i]:
            start = edge
        else:
            assert start is not None  # the entries alternate: the set was entered before
            intervals.append((start, edge))
            start = None
    if start is not None:
        intervals.append((start, math.inf))
    return intervals


def normal_mass(intervals, mean: float, std: float) -> float:
    """``P(z in union of intervals)`` for ``z ~ N(mean, std^2)``."""
    total = 0.0
    for lo, hi in intervals:
        if std == 0:
            total += float(lo < mean < hi)
            continue
        total += float(special.ndtr((hi - mean) / std) - special.ndtr((lo - mean) / std))
    return total


def saturated_fraction(z, act="sigmoid", threshold: float = DEFAULT_THRESHOLD, *,
                       param: float | None = None, method: str = "normal",
                       n_samples: int = 100_000, seed=0) -> float:
    """Fraction of weighted inputs ``z`` with ``|f'(z)| < threshold`` (a saturated unit).

    ``z``: a :class:`~initlab.theory.weighted_input.WeightedInput` (from :func:`weighted_input`;
    exact for Gaussian weights with fixed inputs, a normal mixture for empirical inputs, otherwise
    the CLT approximation), or ``(mean, std)`` of a normal weighted input.

    ``method="monte_carlo"`` (WeightedInput only) instead draws ``n_samples`` weighted inputs
    (:meth:`WeightedInput.sample`, with ``seed``) and counts: use it when the CLT is poor (few
    inputs with uniform weights); its standard error is ``sqrt(p (1 - p) / n_samples)``.

    Nielsen's large init (N(0, 1) weights and bias, 500 of 1000 inputs on) gives ``z ~ N(0, 501)``
    and a sigmoid saturated fraction (|s'| < 0.01, i.e. |z| > 4.585) of 0.838.
    """
    from ..core.validation import check_choice

    check_choice(method, "method", ("normal", "monte_carlo"))
    if method == "monte_carlo":
        if not isinstance(z, WeightedInput):
            raise fail("z", "must be a WeightedInput for method='monte_carlo'", type(z).__name__,
                       "pass weighted_input(...), or use method='normal' with (mean, std).")
        a = activation(act, param)
        thr = check_scalar(threshold, "threshold", min_val=0.0, include_min=False)
        draws = z.sample(n_samples, seed=seed)
        return float(np.mean(np.abs(a.df(draws)) < thr))
    intervals = saturated_set(act, threshold, param=param)
    if isinstance(z, WeightedInput):
        means, vars_ = z._comps()
        return float(np.mean([normal_mass(intervals, m, math.sqrt(v))
                              for m, v in zip(means, vars_)]))
    try:
        mean, std = z
    except (TypeError, ValueError):
        raise fail("z", "must be a WeightedInput or a (mean, std) pair", z,
                   "pass weighted_input(...) or e.g. (0.0, 22.38).") from None
    mean = check_scalar(mean, "z[0] (mean)")
    std = check_scalar(std, "z[1] (std)", min_val=0.0)
    return normal_mass(intervals, mean, std)
