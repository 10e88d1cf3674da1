"""The distribution of a neuron's weighted input ``z = sum_i w_i x_i + b`` at initialization.

Weights ``w_i`` are i.i.d. from an initializer's distribution (mean ``m_w``, variance ``v_w``), the
bias ``b`` from the bias initializer (``m_b``, ``v_b``), independent of the inputs ``x``:

* fixed inputs ``x`` (one vector)::

      E[z] = m_w sum_i x_i + m_b,          Var[z] = v_w sum_i x_i^2 + v_b

  With Gaussian weights and bias ``z`` is *exactly* normal, so ``P(|z| > t)`` is exact.
* an empirical input distribution (rows of an array, each equally likely): ``z`` is a mixture over
  rows of the fixed-input case; ``P(|z| > t)`` is the mean of the rows' probabilities, exact for
  Gaussian weights.
* i.i.d. random inputs with mean ``m_x`` and variance ``v_x`` (e.g. standardized inputs)::

      E[z] = n m_w m_x + m_b,
      Var[z] = n [(v_w + m_w^2)(v_x + m_x^2) - m_w^2 m_x^2] + v_b

  and ``P(|z| > t)`` uses the normal approximation (central limit theorem over the n terms).

Uniform or truncated-normal weights make ``z`` a sum of non-Gaussian terms: ``P(|z| > t)`` is then
the CLT normal approximation in every case (``exact`` is False); ``sample`` draws ``z`` itself for
a Monte Carlo answer.

Nielsen ("Neural Networks and Deep Learning", ch. 3): 1000 inputs, 500 of them 1 and the rest 0;
N(0, 1) weights and bias give ``Var z = 500 + 1``, std ``sqrt(501) = 22.38``; weights N(0, 1/1000)
give ``Var z = 500/1000 + 1 = 3/2``, std 1.22. U(-1/sqrt(d), 1/sqrt(d)) weights with unit-variance,
zero-mean inputs give ``Var z = d * (1 / (3 d)) = 1/3`` whatever ``d``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from ..core.distributions import Constant, Distribution, Normal, TruncatedNormal, Uniform
from ..core.initializer import Initializer
from ..core.registry import get
from ..core.validation import InitlabTypeError, check_scalar, error_message, fail

# ---------------------------------------------------------------- input distributions


@dataclass(frozen=True)
class FixedInputs:
    """One fixed input vector ``x``."""

    x: np.ndarray

    def __post_init__(self):
        object.__setattr__(self, "x", _finite_array(self.x, "inputs", 1))

    @property
    def n(self) -> int:
        return int(self.x.shape[0])


@dataclass(frozen=True)
class EmpiricalInputs:
    """Each row of ``X`` (batch, n) equally likely (e.g. a batch of real data)."""

    X: np.ndarray

    def __post_init__(self):
        object.__setattr__(self, "X", _finite_array(self.X, "inputs", 2))

    @property
    def n(self) -> int:
        return int(self.X.shape[1])


@dataclass(frozen=True)
class IidInputs:
    """``n`` i.i.d. inputs with ``mean`` and variance ``var`` (distribution otherwise unspecified;
    :meth:`WeightedInput.sample` draws them normal)."""

    n: int
    mean: float = 0.0
    var: float = 1.0

    def __post_init__(self):
        object.__setattr__(self, "n", check_scalar(self.n, "n", min_val=1, integer=True))
        object.__setattr__(self, "mean", check_scalar(self.mean, "input_mean",
                                                      why=" (the inputs' mean)"))
        object.__setattr__(self, "var", check_scalar(
            self.var, "input_var", min_val=0.0, why=" (a variance cannot be negative)",
            fix="pass the inputs' variance, a finite number >= 0 (1 for standardized inputs)."))


InputSpec = FixedInputs | EmpiricalInputs | IidInputs


def _finite_array(values, name: str, ndim: int) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise InitlabTypeError(error_message(
            name, "must be an array of real numbers", type(values).__name__,
            "pass a 1-D vector or a 2-D (batch, n) array of floats.")) from None
    if arr.ndim != ndim or arr.size == 0:
        raise fail(name, f"must be a non-empty {ndim}-D array", arr.shape,
                   "pass one input vector (1-D) or a batch of input rows (2-D).")
    bad = ~np.isfinite(arr)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise fail(name, f"must hold only finite numbers ({int(bad.sum())} NaN/inf, the first "
                   f"at index {idx})", float(arr[idx]),
                   "clean the inputs (np.nan_to_num, or drop the rows) before the calculation.")
    return arr


def binary_inputs(n: int, n_on: int) -> FixedInputs:
    """``n`` inputs, the first ``n_on`` equal to 1 and the rest 0 (Nielsen's example: 1000, 500)."""
    n = check_scalar(n, "n", min_val=1, integer=True)
    n_on = check_scalar(n_on, "n_on", min_val=0, max_val=n, integer=True)
    x = np.zeros(n)
    x[:n_on] = 1.0
    return FixedInputs(x)


def standardized_inputs(n: int) -> IidInputs:
    """``n`` i.i.d. inputs with mean 0 and variance 1."""
    return IidInputs(check_scalar(n, "n", min_val=1, integer=True), 0.0, 1.0)


def as_inputs(inputs) -> InputSpec:
    """Accept an input spec, a 1-D array (fixed vector) or a 2-D array (empirical rows)."""
    if isinstance(inputs, (FixedInputs, EmpiricalInputs, IidInputs)):
        return inputs
    try:
        arr = np.asarray(inputs, dtype=np.float64)
    except (TypeError, ValueError):
        raise InitlabTypeError(error_message(
            "inputs", "must be an input spec (binary_inputs, standardized_inputs, IidInputs) or a "
            "1-D/2-D array of numbers", type(inputs).__name__,
            "pass e.g. binary_inputs(1000, 500) or an array.")) from None
    if arr.ndim == 1 and arr.size:
        return FixedInputs(arr)
    if arr.ndim == 2 and arr.size and arr.shape[1]:
        return EmpiricalInputs(arr)
    raise fail("inputs", "must be a non-empty 1-D vector or 2-D (batch, n) array", arr.shape,
               "pass one input vector or a batch of input rows.")


# ---------------------------------------------------------------- distribution moments


def distribution_moments(dist: Distribution) -> tuple[float, float]:
    """``(mean, variance)`` of an elementwise distribution (Constant, Normal, Uniform,
    TruncatedNormal)."""
    if isinstance(dist, Constant):
        return float(dist.value), 0.0
    if isinstance(dist, Normal):
        return float(dist.mean), float(dist.std) ** 2
    if isinstance(dist, Uniform):
        return dist.mean, dist.std**2
    if isinstance(dist, TruncatedNormal):
        m, s = dist.moments()
        return m, s * s
    raise fail("weights", "must resolve to an elementwise distribution (Constant, Normal, Uniform, "
               "TruncatedNormal) for the weighted-input calculation", type(dist).__name__,
               "structured initializers (orthogonal, sparse, ...) have no i.i.d. weights; measure "
               "them with WeightedInput.sample on the actual matrix instead.")


def _finite_moments(dist: Distribution, name: str) -> tuple[float, float]:
    m, v = distribution_moments(dist)
    if not (math.isfinite(m) and math.isfinite(v)) or v < 0:
        raise fail(name, "must have a finite mean and a finite, non-negative variance", dist,
                   "pass finite distribution parameters.")
    return m, v


def _is_gaussian(dist: Distribution | None) -> bool:
    return dist is None or isinstance(dist, (Constant, Normal))


def _resolve(init, n: int, n_out: int, role: str) -> Distribution:
    if isinstance(init, Distribution):
        return init
    if isinstance(init, str):
        init = get(init)
    if not isinstance(init, Initializer):
        raise InitlabTypeError(error_message(
            "weights" if role == "weight" else "bias",
            "must be an initializer name, an Initializer or a Distribution", init,
            "pass e.g. 'lecun_normal' or initlab.get('normal', std=1.0)."))
    shape = (n_out, n) if role == "weight" else (n_out,)
    return init.resolve(shape, fans=(n, n_out), role=role)


# ---------------------------------------------------------------- result


@dataclass(frozen=True)
class WeightedInput:
    """Moments of ``z = w . x + b`` (see the module docstring) and how to query them.

    ``exact``: ``z`` is exactly normal (fixed inputs) or a mixture of normals (empirical inputs),
    so :meth:`prob_exceeds` is exact; otherwise it is the CLT normal approximation.
    """

    mean: float
    variance: float
    exact: bool
    weight_dist: Distribution
    bias_dist: Distribution | None
    inputs: InputSpec
    # per-row (mean, variance) when inputs are empirical (mixture components)
    components: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def std(self) -> float:
        return math.sqrt(self.variance)

    def _repr_html_(self) -> str:  # Jupyter
        from ..report.notebook import theory_html

        return theory_html(self)

    def _comps(self) -> tuple[np.ndarray, np.ndarray]:
        if self.components is not None:
            return self.components
        return np.array([self.mean]), np.array([self.variance])

    def prob_exceeds(self, t: float) -> float:
        """``P(|z| > t)``: exact for Gaussian weights with fixed/empirical inputs (``z`` normal
        or a mixture of normals), else the CLT normal approximation."""
        t = check_scalar(t, "t", min_val=0.0, why=" (a threshold on |z|)")
        means, vars_ = self._comps()
        sd = np.sqrt(vars_)
        with np.errstate(divide="ignore", invalid="ignore"):
            hi = np.where(sd > 0, special.ndtr((means - t) / np.where(sd > 0, sd, 1.0)),
                          (means > t).astype(float))
            lo = np.where(sd > 0, special.ndtr((-t - means) / np.where(sd > 0, sd, 1.0)),
                          (means < -t).astype(float))
        return float(np.mean(hi + lo))

    def sample(self, n_samples: int, *, seed) -> np.ndarray:
        """Monte Carlo draws of ``z``: fresh weights, bias (and inputs, when random) per draw.

        ``seed``: int or ``numpy.random.Generator``. IidInputs are drawn normal.
        """
        from ..backends.numpy_backend import draw, make_rng

        rng = make_rng(seed)
        n_samples = check_scalar(n_samples, "n_samples", min_val=1, integer=True)
        spec = self.inputs
        n = spec.n
        out = np.empty(n_samples)
        chunk = max(1, 4_000_000 // n)
        for start in range(0, n_samples, chunk):
            m = min(chunk, n_samples - start)
            w = draw(self.weight_dist, (m, n), rng, np.float64)
            if isinstance(spec, FixedInputs):
                z = w @ spec.x
            elif isinstance(spec, EmpiricalInputs):
                rows = spec.X[rng.integers(0, spec.X.shape[0], m)]
                z = np.einsum("ij,ij->i", w, rows)
            else:
                x = spec.mean + math.sqrt(spec.var) * rng.standard_normal((m, n))
                z = np.einsum("ij,ij->i", w, x)
            if self.bias_dist is not None:
                z = z + draw(self.bias_dist, (m,), rng, np.float64)
            out[start:start + m] = z
        return out

    def as_dict(self) -> dict:
        return {"mean": self.mean, "variance": self.variance, "std": self.std,
                "exact": self.exact, "weights": self.weight_dist.to_dict(),
                "bias": None if self.bias_dist is None else self.bias_dist.to_dict(),
                "n_inputs": self.inputs.n}


def weighted_input(weights="torch_default", inputs=None, *, bias=None,
                   n_out: int = 1) -> WeightedInput:
    """Mean and variance of ``z = sum_i w_i x_i + b`` (formulas in the module docstring).

    Parameters
    ----------
    weights : initializer name, :class:`Initializer` or a resolved ``Distribution``; resolved for
        a ``(n_out, n)`` weight with ``fans=(n, n_out)``.
    inputs : :func:`binary_inputs`, :func:`standardized_inputs`, :class:`IidInputs`, a 1-D vector
        (fixed inputs) or a 2-D ``(batch, n)`` array (empirical inputs).
    bias : ``None`` (no bias), ``"same"`` (the weights' initializer with ``role="bias"``, e.g.
        nielsen's N(0, 1) bias), or an initializer / name / Distribution for the bias.
    n_out : number of units in the layer (only matters for fan_out-based initializers).

    Nielsen's example (Neural Networks and Deep Learning, ch. 3):

    >>> round(weighted_input("nielsen_large", binary_inputs(1000, 500), bias="same").std, 2)
    22.38
    >>> round(weighted_input("nielsen_default", binary_inputs(1000, 500), bias="same").std, 2)
    1.22
    """
    if inputs is None:
        raise fail("inputs", "is required", None,
                   "pass e.g. binary_inputs(1000, 500) or standardized_inputs(784).")
    spec = as_inputs(inputs)
    n_out = check_scalar(n_out, "n_out", min_val=1, integer=True)
    n = spec.n
    wdist = _resolve(weights, n, n_out, "weight")
    if bias is None:
        bdist = None
    elif isinstance(bias, str) and bias == "same":
        if isinstance(weights, Distribution):
            raise fail("bias", "cannot be 'same' when `weights` is a Distribution", bias,
                       "pass the bias distribution or initializer explicitly.")
        bdist = _resolve(weights, n, n_out, "bias")
    else:
        bdist = _resolve(bias, n, n_out, "bias")
    mw, vw = _finite_moments(wdist, "weights")
    mb, vb = _finite_moments(bdist, "bias") if bdist is not None else (0.0, 0.0)
    gaussian = _is_gaussian(wdist) and _is_gaussian(bdist)
    if isinstance(spec, FixedInputs):
        with np.errstate(over="ignore", invalid="ignore"):
            mean = mw * float(spec.x.sum()) + mb
            var = vw * float(np.sum(spec.x**2)) + vb
        _check_result(mean, var)
        return WeightedInput(mean, var, gaussian, wdist, bdist, spec)
    if isinstance(spec, EmpiricalInputs):
        with np.errstate(over="ignore", invalid="ignore"):
            means = mw * spec.X.sum(axis=1) + mb
            vars_ = vw * np.sum(spec.X**2, axis=1) + vb
            mean = float(means.mean())
            var = float(vars_.mean() + means.var())  # law of total variance
        _check_result(mean, var)
        return WeightedInput(mean, var, gaussian, wdist, bdist, spec, (means, vars_))
    mx, vx = float(spec.mean), float(spec.var)
    try:
        mean = n * mw * mx + mb
        var = n * ((vw + mw**2) * (vx + mx**2) - mw**2 * mx**2) + vb
    except OverflowError:
        mean = var = math.inf
    _check_result(mean, var)
    return WeightedInput(mean, var, False, wdist, bdist, spec)


def _check_result(mean: float, var: float) -> None:
    """Refuse a mean or variance of ``z`` that overflows float64 (never return inf/nan)."""
    if not (math.isfinite(mean) and math.isfinite(var)):
        raise fail("inputs", "give a weighted input whose mean or variance overflows float64 "
                   "(beyond 1.8e308) with these weights", {"mean": mean, "variance": var},
                   "scale the inputs or the weights down.")
