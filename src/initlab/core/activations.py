"""Activation functions and their derivatives, in NumPy, for the theory and the gains.

Each entry knows its kinks (points where the derivative jumps), so that Gaussian expectations
can be split there; a quadrature rule with a node on a kink gets the derivative's expectation
wrong (an odd Gauss-Hermite rule gives a ReLU backward gain of 1.48 instead of sqrt(2)).

Name conventions
----------------
``gelu`` is the exact GELU, ``x * Phi(x)`` with the normal CDF (torch's default
``approximate='none'``); ``gelu_tanh`` is the tanh approximation
``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``. ``silu`` and ``swish`` are ``x * sigmoid(x)``.
``selu`` uses the constants of Klambauer et al. 2017. ``leaky_relu`` takes its negative slope as
``param`` (default 0.01, torch's); ``elu`` takes alpha (default 1.0).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import special

from .validation import check_choice

Array = np.ndarray

SELU_ALPHA = 1.6732632423543772848170429916717  # Klambauer et al. 2017, eq. (14)
SELU_SCALE = 1.0507009873554804934193349852946
SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


@dataclass(frozen=True)
class Activation:
    """An activation ``f`` with derivative ``df`` (NumPy, elementwise) and its kinks."""

    name: str
    f: Callable[[Array], Array]
    df: Callable[[Array], Array]
    kinks: tuple[float, ...] = ()
    saturating: bool = False  # bounded output (sigmoid/tanh-like): can saturate
    relu_like: bool = False   # zero derivative on a half-line: units can die
    doc: str = field(default="", compare=False)

    def __call__(self, x):
        return self.f(np.asarray(x, dtype=np.float64))


def _sigmoid(x):
    return special.expit(x)


def _dsigmoid(x):
    s = special.expit(x)
    return s * (1.0 - s)


def _gelu(x):
    return x * special.ndtr(x)


def _dgelu(x):
    return special.ndtr(x) + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


def _gelu_tanh(x):
    u = SQRT_2_OVER_PI * (x + 0.044715 * x**3)
    return 0.5 * x * (1.0 + np.tanh(u))


def _dgelu_tanh(x):
    u = SQRT_2_OVER_PI * (x + 0.044715 * x**3)
    t = np.tanh(u)
    return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * SQRT_2_OVER_PI * (1.0 + 3 * 0.044715 * x * x)


def _silu(x):
    return x * special.expit(x)


def _dsilu(x):
    s = special.expit(x)
    return s * (1.0 + x * (1.0 - s))


def _softplus(x):
    return np.logaddexp(0.0, x)


def _mish(x):
    return x * np.tanh(_softplus(x))


def _dmish(x):
    sp = _softplus(x)
    t = np.tanh(sp)
    return t + x * (1.0 - t * t) * special.expit(x)


def _elu(alpha: float):
    return (lambda x: np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0))),
            lambda x: np.where(x > 0, 1.0, alpha * np.exp(np.minimum(x, 0.0))))


def _leaky(slope: float):
    return (lambda x: np.where(x > 0, x, slope * x), lambda x: np.where(x > 0, 1.0, slope))


def _selu(x):
    return SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(np.minimum(x, 0.0)))


def _dselu(x):
    return SELU_SCALE * np.where(x > 0, 1.0, SELU_ALPHA * np.exp(np.minimum(x, 0.0)))


def _ones(x):
    return np.ones_like(x)


ACTIVATION_NAMES = (
    "linear", "identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu", "gelu",
    "gelu_tanh", "silu", "swish", "mish", "softplus", "softsign", "hardtanh", "relu6",
)


def activation(name_or_fn, param: float | None = None) -> Activation:
    """Return the :class:`Activation` for a name (see module docs) or wrap a callable.

    A callable ``f`` (NumPy-vectorized) gets a central-difference derivative and is assumed to
    have a possible kink at 0 (so integrals are split there, which costs nothing when it has none).
    """
    if isinstance(name_or_fn, Activation):
        return name_or_fn
    if callable(name_or_fn):
        f = name_or_fn

        def df(x, _f=f):
            x = np.asarray(x, dtype=np.float64)
            h = 1e-5 * np.maximum(1.0, np.abs(x))
            return (_f(x + h) - _f(x - h)) / (2 * h)

        return Activation(getattr(f, "__name__", "callable"), f, df, kinks=(0.0,))
    name = check_choice(name_or_fn, "activation", ACTIVATION_NAMES,
                        fix="pass one of the names above, or a NumPy-vectorized callable.")
    if name in ("linear", "identity"):
        return Activation(name, lambda x: x, _ones)
    if name == "sigmoid":
        return Activation(name, _sigmoid, _dsigmoid, saturating=True)
    if name == "tanh":
        return Activation(name, np.tanh, lambda x: 1.0 - np.tanh(x) ** 2, saturating=True)
    if name == "relu":
        return Activation(name, lambda x: np.maximum(x, 0.0), lambda x: (x > 0).astype(np.float64),
                          kinks=(0.0,), relu_like=True)
    if name == "leaky_relu":
        f, df = _leaky(0.01 if param is None else float(param))
        return Activation(name, f, df, kinks=(0.0,), relu_like=True)
    if name == "elu":
        f, df = _elu(1.0 if param is None else float(param))
        return Activation(name, f, df, kinks=(0.0,))
    if name == "selu":
        return Activation(name, _selu, _dselu, kinks=(0.0,))
    if name == "gelu":
        return Activation(name, _gelu, _dgelu)
    if name == "gelu_tanh":
        return Activation(name, _gelu_tanh, _dgelu_tanh)
    if name in ("silu", "swish"):
        return Activation(name, _silu, _dsilu)
    if name == "mish":
        return Activation(name, _mish, _dmish)
    if name == "softplus":
        return Activation(name, _softplus, _sigmoid)
    if name == "softsign":
        return Activation(name, lambda x: x / (1 + np.abs(x)), lambda x: 1.0 / (1 + np.abs(x)) ** 2,
                          saturating=True)
    if name == "hardtanh":
        return Activation(name, lambda x: np.clip(x, -1.0, 1.0),
                          lambda x: (np.abs(x) < 1).astype(np.float64), kinks=(-1.0, 1.0),
                          saturating=True)
    # relu6
    return Activation(name, lambda x: np.clip(x, 0.0, 6.0),
                      lambda x: ((x > 0) & (x < 6)).astype(np.float64), kinks=(0.0, 6.0),
                      relu_like=True)


# ---------------------------------------------------------------- Gaussian expectations

_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(96)


def gaussian_expectation(g: Callable[[Array], Array], q: float = 1.0,
                         kinks: tuple[float, ...] = (), *, width: float = 12.0) -> float:
    """E[g(z)] for z ~ N(0, q), integrating piecewise between kinks.

    The real line is cut at ``+-width * sqrt(q)`` (the mass beyond 12 sigma is below 1e-32) and
    at every kink of ``g`` inside; each piece gets a 96-point Gauss-Legendre rule, exact for
    polynomials of degree 191 and accurate to ~1e-12 for the smooth pieces met here.
    """
    if q <= 0:
        return float(g(np.zeros(1))[0])
    s = math.sqrt(q)
    lo, hi = -width * s, width * s
    cuts = [lo] + sorted(k for k in kinks if lo < k < hi) + [hi]
    total = 0.0
    for a, b in zip(cuts[:-1], cuts[1:]):
        # subdivide long pieces so each covers at most ~3 sigma (keeps the rule accurate)
        n_sub = max(1, math.ceil((b - a) / (3.0 * s)))
        edges = np.linspace(a, b, n_sub + 1)
        for ea, eb in zip(edges[:-1], edges[1:]):
            x = 0.5 * (eb - ea) * _GL_NODES + 0.5 * (eb + ea)
            dens = np.exp(-0.5 * x * x / q) / math.sqrt(2 * math.pi * q)
            total += 0.5 * (eb - ea) * float(np.sum(_GL_WEIGHTS * g(x) * dens))
    return total
