"""The activation registry: every activation initlab knows, in NumPy, with what it is in a model.

One entry per activation (:data:`SPECS`) holds its name and aliases, the function and its
derivative (NumPy, elementwise), its kinks (points where the derivative jumps, so that Gaussian
expectations can be split there; a quadrature rule with a node on a kink gets the derivative's
expectation wrong: an odd Gauss-Hermite rule gives a ReLU backward gain of 1.48 instead of
sqrt(2)), its output range (``bounds``; None when unbounded), its parameter, torch's
``calculate_gain`` value where torch has one, and its *forms*: the module classes and the
functions that ARE this activation in a model, by qualified name
(``"torch.nn.LeakyReLU"``, ``"torch.nn.functional.gelu"``, ``"torch.Tensor.relu"``,
``"transformers.activations.NewGELUActivation"``). The core imports no framework: modules and
callables are recognized by the qualified names of their classes and functions and read through
their attributes and arguments. Every entry has a torch function form: the four torch has no
function for (``linear``, ``quick_gelu``, ``relu_squared``, ``xielu``) name initlab's own in
:mod:`initlab.backends.torch_activations`, the one place that turns forms into torch callables
and modules (tests/test_activation_registry.py checks every entry). Everything else asks here:
:func:`activation` (by name), :func:`lookup_module` (the activation a module is),
:func:`lookup_function` (the activation a call is), :meth:`Activation.forward_gain` /
:meth:`Activation.backward_gain`.

Name conventions
----------------
``gelu`` is the exact GELU, ``x * Phi(x)`` with the normal CDF (torch's default
``approximate='none'``, transformers' ``GELUActivation``); ``gelu_tanh`` is the tanh
approximation ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`` (torch's ``approximate='tanh'``,
transformers' ``NewGELUActivation``, ``FastGELUActivation``, ``GELUTanh``,
``AccurateGELUActivation``, GPT-2's ``gelu_new``); ``quick_gelu`` is ``x * sigmoid(1.702 x)``
(CLIP's). ``silu`` (alias ``swish``) is ``x * sigmoid(x)``. ``selu`` uses the constants of
Klambauer et al. 2017. ``leaky_relu`` takes its negative slope as ``param`` (default 0.01,
torch's; ``PReLU`` reads as leaky_relu with the mean of its learned slopes, ``RReLU`` with
``(lower + upper) / 2``, its slope in eval mode); ``elu`` and ``celu`` take alpha (default 1.0),
``softplus`` takes beta (default 1; torch's linear regime beyond ``threshold`` differs from it by
less than 2e-9). ``relu6`` is ``min(max(x, 0), 6)``, its own entry (``nn.ReLU6``, ``F.relu6``,
``Hardtanh(0, 6)``), never read as relu. ``hardtanh`` is ``Hardtanh(-1, 1)``; other bounds, and
``Softplus``/``ELU`` settings without a counterpart here, are not recognized (lookups return None).
``relu_squared`` (alias ``relu2``) is ``relu(x)^2`` (transformers' ``ReLUSquaredActivation``).
``x.clamp(min=0)`` is relu and ``x.clamp(0, 6)`` relu6. ``xielu`` is xIELU (Huang et al. 2024;
Apertus) at its starting slopes, ``alpha_p = alpha_n = 0.8``, ``beta = 0.5``: transformers'
``XIELUActivation`` is it while its slopes are there (as built), and is not recognized once they
have moved (a trained model's).

Not in the registry (lookups return None): transformers' ``LaplaceActivation``,
``SqrtSoftplusActivation``; torch's ``Softshrink``, ``Hardshrink``,
``Tanhshrink``, ``LogSigmoid``, ``Threshold``, ``GLU``, ``Softmax``; ``nn.Identity`` (not an
activation: a placeholder a model skips).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
from scipy import special

from .validation import check_choice, fail

Array = np.ndarray

SELU_ALPHA = 1.6732632423543772848170429916717  # Klambauer et al. 2017, eq. (14)
SELU_SCALE = 1.0507009873554804934193349852946
SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
QUICK_GELU_SCALE = 1.702  # Hendrycks & Gimpel 2016, sec. 2: x * sigmoid(1.702 x) ~ GELU
GELU_MIN = -0.16997  # min of x * Phi(x) (at x = -0.7518): a clip below it never binds
# xIELU (Huang et al. 2024, "Deriving Activation Functions Using Integration"): the slopes
# alpha_p, alpha_n start at 0.8 and beta = 0.5, eps = -1e-6 (the paper's and Hugging Face's
# ``XIELUActivation`` defaults; the registry's ``xielu`` is the activation at these values)
XIELU_ALPHA_INIT = 0.8
XIELU_BETA = 0.5
XIELU_EPS = -1e-6
# how far a module's softplus-stored slopes may sit from 0.8 and still be the registry's xielu:
# Hugging Face keeps them in bfloat16, whose rounding moves them by up to ~2e-3
XIELU_ATOL = 1e-2
# Hugging Face's ``XIELUActivation`` keeps beta and eps as floats beside its buffers of the same
# values (buffer: attribute): the one place initlab reads them (here, in the model's starting
# xIELU parameters and in ``materialize``)
XIELU_SCALARS = {"beta": "_beta_scalar", "eps": "_eps_scalar"}


@dataclass(frozen=True)
class Activation:
    """An activation ``f`` with derivative ``df`` (NumPy, elementwise), its kinks and parameter.

    Two activations are equal when their names, parameters and kinks are (the functions are not
    compared: a wrapped callable's name is all it has).

    ``bounds`` is the output range ``(inf f, sup f)`` of a bounded activation (tanh ``(-1, 1)``,
    sigmoid ``(0, 1)``, relu6 ``(0, 6)``), None when f is unbounded on either side (relu, elu,
    gelu, a wrapped callable). The measures of saturation read it:
    :func:`initlab.diagnostics.stats.output_saturation` (outputs near a bound) and, through
    :attr:`saturating`, :func:`initlab.diagnostics.stats.saturation` (the doctor's slope test).
    """

    name: str
    f: Callable[[Array], Array] = field(compare=False)
    df: Callable[[Array], Array] = field(compare=False)
    kinks: tuple[float, ...] = ()
    # (inf f, sup f) when both are finite, else None: the range f's outputs lie in (its closure)
    bounds: tuple[float, float] | None = field(default=None, compare=False)
    relu_like: bool = False   # zero derivative on a half-line: units can die
    doc: str = field(default="", compare=False)
    param: float | None = None
    aliases: tuple[str, ...] = field(default=(), compare=False)

    @property
    def saturating(self) -> bool:
        """Bounded and not ReLU-like: flat towards both ends (sigmoid/tanh-like), so units can
        saturate. relu6 is bounded but ReLU-like: its flat lower half is where units die."""
        return self.bounds is not None and not self.relu_like

    def __call__(self, x):
        return self.f(np.asarray(x, dtype=np.float64))

    def forward_gain(self, q: float = 1.0) -> float:
        """``sqrt(q / E[f(z)^2])``, z ~ N(0, q): see :func:`initlab.core.gains.gain`."""
        from .gains import gain

        return gain(self, q=q, direction="forward")

    def backward_gain(self, q: float = 1.0) -> float:
        """``1 / sqrt(E[f'(z)^2])``, z ~ N(0, q): see :func:`initlab.core.gains.gain`."""
        from .gains import gain

        return gain(self, q=q, direction="backward")


# ---------------------------------------------------------------- the functions (NumPy)

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


def _scaled_silu(k: float):
    """``x * sigmoid(k x)`` and its derivative (silu: k = 1; quick_gelu: k = 1.702)."""
    def f(x):
        return x * special.expit(k * x)

    def df(x):
        s = special.expit(k * x)
        return s * (1.0 + k * x * (1.0 - s))
    return f, df


def _mish(x):
    return x * np.tanh(np.logaddexp(0.0, x))


def _dmish(x):
    t = np.tanh(np.logaddexp(0.0, x))
    return t + x * (1.0 - t * t) * special.expit(x)


def _softplus(beta: float):
    return (lambda x: np.logaddexp(0.0, beta * x) / beta, lambda x: special.expit(beta * x))


def _elu(alpha: float):
    return (lambda x: np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0))),
            lambda x: np.where(x > 0, 1.0, alpha * np.exp(np.minimum(x, 0.0))))


def _celu(alpha: float):
    return (lambda x: np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0) / alpha)),
            lambda x: np.where(x > 0, 1.0, np.exp(np.minimum(x, 0.0) / alpha)))


def _given(p: float | None, name: str) -> float:
    """The parameter a parametrized activation is built with: :func:`_build` passes the default
    for None, so None reaches here only from a direct ``Spec.make(None)``."""
    if p is None:
        raise fail("param", f"must be a number to build {name} (Spec.make does not fill in the "
                   "default)", p, f"pass a value, e.g. spec({name!r}).default.")
    return p


def _leaky(slope: float):
    return (lambda x: np.where(x > 0, x, slope * x), lambda x: np.where(x > 0, 1.0, slope))


def _selu(x):
    return SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(np.minimum(x, 0.0)))


def _dselu(x):
    return SELU_SCALE * np.where(x > 0, 1.0, SELU_ALPHA * np.exp(np.minimum(x, 0.0)))


def _ones(x):
    return np.ones_like(x)


def _box(x, lo, hi):
    return ((x > lo) & (x < hi)).astype(np.float64)


def _xielu(x):
    """xIELU at its starting slopes: ``a_p x^2 + b x`` for x > 0, else
    ``a_n (expm1(min(x, eps)) - x) + b x`` (a_p = a_n = 0.8, b = 0.5, eps = -1e-6)."""
    a, b = XIELU_ALPHA_INIT, XIELU_BETA
    return np.where(x > 0, a * x * x + b * x, a * (np.expm1(np.minimum(x, XIELU_EPS)) - x) + b * x)


def _dxielu(x):
    a, b = XIELU_ALPHA_INIT, XIELU_BETA
    neg = np.where(x < XIELU_EPS, a * np.expm1(np.minimum(x, XIELU_EPS)), -a)
    return np.where(x > 0, 2.0 * a * x + b, neg + b)


def _softplus_value(t) -> float | None:
    """``softplus`` of a one-element parameter (how xIELU stores its slopes), None without
    values (on the meta device) or for anything else."""
    v = _mean(t)
    return None if v is None else float(np.logaddexp(0.0, v))


def _xielu_at_start(get) -> bool:
    """Whether an ``XIELUActivation`` holds the registry's xielu: beta and eps as the defaults,
    and its slopes softplus(alpha_p), beta + softplus(alpha_n) at 0.8 (a module on meta, whose
    slopes have no values, is taken at its constructor's, as torch's PReLU is)."""
    beta, eps = get(XIELU_SCALARS["beta"]), get(XIELU_SCALARS["eps"])
    if beta is None or eps is None or abs(beta - XIELU_BETA) > 1e-9 or abs(eps - XIELU_EPS) > 1e-12:
        return False
    a_p, a_n = _softplus_value(get("alpha_p")), _softplus_value(get("alpha_n"))
    if a_p is None or a_n is None:
        return all(getattr(get(k), "is_meta", False) for k in ("alpha_p", "alpha_n"))
    return abs(a_p - XIELU_ALPHA_INIT) <= XIELU_ATOL and \
        abs(beta + a_n - XIELU_ALPHA_INIT) <= XIELU_ATOL


def _hardswish(x):
    return x * np.clip(x + 3.0, 0.0, 6.0) / 6.0


def _dhardswish(x):
    return np.where(x <= -3.0, 0.0, np.where(x >= 3.0, 1.0, (2.0 * x + 3.0) / 6.0))


# ---------------------------------------------------------------- forms: what is this activation

_MISSING = object()


@dataclass(frozen=True)
class Form:
    """One way an activation appears in a model: a module class or a function, by qualified name.

    ``args`` names a function's positional arguments after the input; a module's settings are its
    attributes. ``fixed`` are the settings this form requires (a missing one counts as its
    ``defaults`` value): ``nn.GELU`` is gelu_tanh only with ``approximate == "tanh"``. ``param``
    is the setting (attribute or argument) holding the activation's parameter, or a reader
    ``get -> float | None`` of several (``RReLU``'s ``(lower + upper) / 2``). ``when`` is an extra
    condition ``get -> bool``.
    """

    target: str
    args: tuple[str, ...] = ()
    param: str | Callable | None = None
    fixed: Mapping[str, Any] = field(default_factory=dict)
    defaults: Mapping[str, Any] = field(default_factory=dict)
    when: Callable | None = None
    kind: str = "module"  # or "function"
    unread: float | None = None  # the param when its setting holds no value (a meta tensor)

    def read(self, get: Callable[[str, Any], Any]) -> tuple[bool, float | None]:
        """``(matches, param)`` of a module or call whose settings ``get(key, default)`` reads."""
        def value(key):
            return get(key, self.defaults.get(key))

        try:
            for key, want in self.fixed.items():
                v = value(key)
                if v is None or want is None:
                    if v is not want:
                        return False, None
                elif not bool(v == want):
                    return False, None
            if self.when is not None and not self.when(value):
                return False, None
            if self.param is None:
                return True, None
            p = self.param(value) if callable(self.param) else value(self.param)
            return True, self.unread if p is None else float(p)
        except (TypeError, ValueError, RuntimeError):  # a tensor-valued setting, say
            return False, None


def _mean(t) -> float | None:
    """The mean of a parameter tensor (PReLU's slopes), read without importing a framework;
    None for a tensor without values (on the meta device)."""
    if t is None or getattr(t, "is_meta", False):
        return None
    if hasattr(t, "detach"):
        t = t.detach().float().mean().item()
    return float(np.mean(np.asarray(t, dtype=np.float64)))


def _mod(*names: str, **kw) -> tuple[Form, ...]:
    return tuple(Form(n, **kw) for n in names)


def _fn(*names: str, **kw) -> tuple[Form, ...]:
    return tuple(Form(n, kind="function", **kw) for n in names)


TF = "transformers.activations."
NN = "torch.nn."
F_ = "torch.nn.functional."
# initlab's own torch functions, for the entries torch has no function of (see the module docs)
IL = "initlab.backends.torch_activations."


@dataclass(frozen=True)
class Spec:
    """A registry entry: how to build the activation for a parameter, and where it appears."""

    name: str
    make: Callable[[float | None], dict[str, Any]] = field(repr=False)
    aliases: tuple[str, ...] = ()
    default: float | None = None       # the parameter's default (None: no parameter)
    param_name: str = ""               # what the parameter is, for messages
    forms: tuple[Form, ...] = ()
    torch_gain: Callable[[float | None], float] | None = field(default=None, repr=False)
    doc: str = ""


def _relu(_):
    return {"f": lambda x: np.maximum(x, 0.0), "df": lambda x: (x > 0).astype(np.float64),
            "kinks": (0.0,), "relu_like": True}


def _hardtanh_bounds(lo, hi):
    return {"min_val": lo, "max_val": hi}


SPECS_LIST: tuple[Spec, ...] = (
    Spec("linear", lambda _: {"f": lambda x: x, "df": _ones}, aliases=("identity",),
         forms=_mod(TF + "LinearActivation") + _fn(IL + "identity"), torch_gain=lambda _: 1,
         doc="f(x) = x (no activation)"),
    Spec("sigmoid", lambda _: {"f": _sigmoid, "df": _dsigmoid, "bounds": (0.0, 1.0)},
         forms=_mod(NN + "Sigmoid") + _fn("torch.sigmoid", F_ + "sigmoid", "torch.Tensor.sigmoid",
                                          "torch.special.expit"),
         torch_gain=lambda _: 1, doc="1 / (1 + exp(-x))"),
    Spec("tanh", lambda _: {"f": np.tanh, "df": lambda x: 1.0 - np.tanh(x) ** 2,
                            "bounds": (-1.0, 1.0)},
         forms=_mod(NN + "Tanh") + _fn("torch.tanh", F_ + "tanh", "torch.Tensor.tanh"),
         torch_gain=lambda _: 5.0 / 3, doc="tanh(x)"),
    Spec("relu", _relu,
         forms=_mod(NN + "ReLU") + _fn("torch.relu", F_ + "relu", "torch.Tensor.relu")
         + _fn("torch.clamp", "torch.clip", "torch.Tensor.clamp", "torch.Tensor.clip",
               args=("min", "max"), fixed={"min": 0, "max": None}),
         torch_gain=lambda _: math.sqrt(2.0), doc="max(x, 0)"),
    Spec("leaky_relu", lambda a: dict(zip(("f", "df"), _leaky(_given(a, "leaky_relu"))),
                                      kinks=(0.0,), relu_like=True),
         default=0.01, param_name="negative slope",
         forms=_mod(NN + "LeakyReLU", param="negative_slope")
         + _fn(F_ + "leaky_relu", args=("negative_slope",), param="negative_slope",
               defaults={"negative_slope": 0.01})
         # a PReLU on meta has no slopes yet: torch's init, nn.PReLU(init=0.25)
         + _mod(NN + "PReLU", param=lambda get: _mean(get("weight")), unread=0.25)
         + _fn(F_ + "prelu", "torch.prelu", args=("weight",), param=lambda get: _mean(get("weight")))
         + _mod(NN + "RReLU", param=lambda get: (get("lower") + get("upper")) / 2)
         + _fn(F_ + "rrelu", args=("lower", "upper"),
               defaults={"lower": 1.0 / 8, "upper": 1.0 / 3},
               param=lambda get: (get("lower") + get("upper")) / 2),
         torch_gain=lambda a: math.sqrt(2.0 / (1 + (0.01 if a is None else a) ** 2)),
         doc="x for x > 0, slope * x otherwise"),
    Spec("elu", lambda a: dict(zip(("f", "df"), _elu(_given(a, "elu"))), kinks=(0.0,)),
         default=1.0, param_name="alpha",
         forms=_mod(NN + "ELU", param="alpha")
         + _fn(F_ + "elu", "torch.elu", args=("alpha",), param="alpha", defaults={"alpha": 1.0}),
         doc="x for x > 0, alpha (exp(x) - 1) otherwise"),
    Spec("celu", lambda a: dict(zip(("f", "df"), _celu(_given(a, "celu"))), kinks=(0.0,)),
         default=1.0, param_name="alpha",
         forms=_mod(NN + "CELU", param="alpha")
         + _fn(F_ + "celu", "torch.celu", args=("alpha",), param="alpha", defaults={"alpha": 1.0}),
         doc="x for x > 0, alpha (exp(x / alpha) - 1) otherwise"),
    Spec("selu", lambda _: {"f": _selu, "df": _dselu, "kinks": (0.0,)},
         forms=_mod(NN + "SELU") + _fn(F_ + "selu", "torch.selu"),
         torch_gain=lambda _: 3.0 / 4,  # found empirically by PyTorch (self-normalizing nets)
         doc="scale * elu(x, alpha), Klambauer et al. 2017"),
    Spec("gelu", lambda _: {"f": _gelu, "df": _dgelu}, aliases=("gelu_python", "gelu_10"),
         forms=_mod(NN + "GELU", fixed={"approximate": "none"}, defaults={"approximate": "none"})
         + _fn(F_ + "gelu", args=("approximate",), fixed={"approximate": "none"},
               defaults={"approximate": "none"})
         + _mod(TF + "GELUActivation")
         # gelu_10: clip(gelu, min, max) is gelu while the clip cannot bind within 10 sigma
         + _mod(TF + "ClippedGELUActivation",
                when=lambda get: get("min") <= GELU_MIN and get("max") >= 10.0),
         doc="x Phi(x), the exact (erf) GELU, Hendrycks & Gimpel 2016"),
    Spec("gelu_tanh", lambda _: {"f": _gelu_tanh, "df": _dgelu_tanh},
         aliases=("gelu_new", "gelu_pytorch_tanh", "gelu_python_tanh", "gelu_fast",
                  "gelu_accurate"),
         forms=_mod(NN + "GELU", fixed={"approximate": "tanh"})
         + _fn(F_ + "gelu", args=("approximate",), fixed={"approximate": "tanh"})
         + _mod(TF + "NewGELUActivation", TF + "FastGELUActivation", TF + "GELUTanh",
                TF + "PytorchGELUTanh", TF + "AccurateGELUActivation",
                # BLOOM's: the tanh form with sqrt(2/pi) written 0.79788456
                "transformers.models.bloom.modeling_bloom.BloomGelu"),
         doc="0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))"),
    Spec("quick_gelu", lambda _: dict(zip(("f", "df"), _scaled_silu(QUICK_GELU_SCALE))),
         forms=_mod(TF + "QuickGELUActivation") + _fn(IL + "quick_gelu"),
         doc="x sigmoid(1.702 x)"),
    Spec("silu", lambda _: dict(zip(("f", "df"), _scaled_silu(1.0))), aliases=("swish",),
         forms=_mod(NN + "SiLU", TF + "SiLUActivation") + _fn(F_ + "silu"),
         doc="x sigmoid(x), Elfwing et al. 2018 / Ramachandran et al. 2017"),
    Spec("mish", lambda _: {"f": _mish, "df": _dmish},
         forms=_mod(NN + "Mish", TF + "MishActivation") + _fn(F_ + "mish"),
         doc="x tanh(softplus(x)), Misra 2019"),
    Spec("softplus", lambda b: dict(zip(("f", "df"), _softplus(_given(b, "softplus")))),
         default=1.0, param_name="beta",
         forms=_mod(NN + "Softplus", param="beta")
         + _fn(F_ + "softplus", args=("beta",), param="beta", defaults={"beta": 1.0}),
         doc="log(1 + exp(beta x)) / beta"),
    Spec("softsign", lambda _: {"f": lambda x: x / (1 + np.abs(x)),
                                "df": lambda x: 1.0 / (1 + np.abs(x)) ** 2,
                                "bounds": (-1.0, 1.0)},
         forms=_mod(NN + "Softsign") + _fn(F_ + "softsign"), doc="x / (1 + |x|)"),
    Spec("hardtanh", lambda _: {"f": lambda x: np.clip(x, -1.0, 1.0),
                                "df": lambda x: _box(x, -1.0, 1.0), "kinks": (-1.0, 1.0),
                                "bounds": (-1.0, 1.0)},
         forms=_mod(NN + "Hardtanh", fixed=_hardtanh_bounds(-1.0, 1.0))
         + _fn(F_ + "hardtanh", args=("min_val", "max_val"), fixed=_hardtanh_bounds(-1.0, 1.0),
               defaults=_hardtanh_bounds(-1.0, 1.0)),
         doc="clip(x, -1, 1)"),
    Spec("relu6", lambda _: {"f": lambda x: np.clip(x, 0.0, 6.0),
                             "df": lambda x: _box(x, 0.0, 6.0), "kinks": (0.0, 6.0),
                             "bounds": (0.0, 6.0), "relu_like": True},
         forms=_mod(NN + "ReLU6") + _fn(F_ + "relu6")
         + _mod(NN + "Hardtanh", fixed=_hardtanh_bounds(0.0, 6.0))
         + _fn(F_ + "hardtanh", args=("min_val", "max_val"), fixed=_hardtanh_bounds(0.0, 6.0))
         + _fn("torch.clamp", "torch.clip", "torch.Tensor.clamp", "torch.Tensor.clip",
               args=("min", "max"), fixed={"min": 0, "max": 6}),
         doc="min(max(x, 0), 6), Krizhevsky 2010; MobileNet"),
    Spec("hardswish", lambda _: {"f": _hardswish, "df": _dhardswish, "kinks": (-3.0, 3.0),
                                 "relu_like": True},
         forms=_mod(NN + "Hardswish") + _fn(F_ + "hardswish"),
         doc="x relu6(x + 3) / 6, Howard et al. 2019"),
    Spec("hardsigmoid", lambda _: {"f": lambda x: np.clip(x / 6.0 + 0.5, 0.0, 1.0),
                                   "df": lambda x: _box(x, -3.0, 3.0) / 6.0,
                                   "kinks": (-3.0, 3.0), "bounds": (0.0, 1.0)},
         forms=_mod(NN + "Hardsigmoid") + _fn(F_ + "hardsigmoid"),
         doc="relu6(x + 3) / 6, Howard et al. 2019"),
    Spec("relu_squared", lambda _: {"f": lambda x: np.maximum(x, 0.0) ** 2,
                                    "df": lambda x: 2.0 * np.maximum(x, 0.0), "kinks": (0.0,),
                                    "relu_like": True},
         aliases=("relu2",), forms=_mod(TF + "ReLUSquaredActivation") + _fn(IL + "relu_squared"),
         doc="relu(x)^2, So et al. 2021 (Primer)"),
    # the slopes are learned; at the start (what initialization sees) they are 0.8, so the entry
    # is xIELU there, and a module whose slopes moved is not it (lookups return None)
    Spec("xielu", lambda _: {"f": _xielu, "df": _dxielu, "kinks": (XIELU_EPS, 0.0)},
         forms=_mod(TF + "XIELUActivation", when=_xielu_at_start) + _fn(IL + "xielu"),
         doc="0.8 x^2 + 0.5 x for x > 0, 0.8 (expm1(x) - x) + 0.5 x otherwise (xIELU at its "
             "starting slopes), Huang et al. 2024 (Apertus)"),
)

SPECS: dict[str, Spec] = {s.name: s for s in SPECS_LIST}
_BY_NAME: dict[str, Spec] = {n: s for s in SPECS_LIST for n in (s.name, *s.aliases)}
ACTIVATION_NAMES: tuple[str, ...] = tuple(_BY_NAME)

_MODULE_FORMS: dict[str, list[tuple[Spec, Form]]] = {}
_FUNCTION_FORMS: dict[str, list[tuple[Spec, Form]]] = {}
for _s in SPECS_LIST:
    for _f in _s.forms:
        (_FUNCTION_FORMS if _f.kind == "function" else _MODULE_FORMS).setdefault(_f.target, []).append(
            (_s, _f))
del _s, _f


# ---------------------------------------------------------------- by name

def _check_name(name) -> Spec:
    name = check_choice(name, "activation", ACTIVATION_NAMES,
                        fix="pass one of the names above, or a NumPy-vectorized callable.")
    return _BY_NAME[name]


@lru_cache(maxsize=256)
def _build(name: str, param: float | None) -> Activation:
    spec = _BY_NAME[name]
    p = spec.default if param is None else (float(param) if spec.default is not None else None)
    return Activation(spec.name, param=p, aliases=spec.aliases, doc=spec.doc, **spec.make(p))


def activation(name_or_fn, param: float | None = None) -> Activation:
    """The :class:`Activation` for a name or alias (see module docs), or a wrapped callable.

    ``param`` is the activation's parameter (leaky_relu's slope, elu's alpha, softplus' beta);
    activations without one ignore it. A callable ``f`` (NumPy-vectorized) gets a
    central-difference derivative and is assumed to have a possible kink at 0 (so integrals are
    split there, which costs nothing when it has none).
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
    spec = _check_name(name_or_fn)
    if param is not None:
        from .validation import check_scalar

        param = check_scalar(param, "param", why=f" ({spec.param_name or 'unused'} of {spec.name})")
    return _build(name_or_fn, param)


def get_activation(name: str, param: float | None = None) -> Activation:
    """The registry's activation ``name`` (an alias gives its entry: ``swish`` -> silu)."""
    return activation(name, param) if isinstance(name, str) else activation(_check_name(name))


def spec(name: str) -> Spec:
    """The registry entry of an activation name or alias."""
    return _check_name(name)


# ---------------------------------------------------------------- what a module or call is

def class_name(cls: type) -> str:
    """Qualified name of a class; torch.nn's modules by their public path (``torch.nn.ReLU``)."""
    module = getattr(cls, "__module__", "") or ""
    if module.startswith("torch.nn.modules."):
        module = "torch.nn"
    return f"{module}.{cls.__qualname__}"


def callable_names(func) -> list[str]:
    """Qualified names under which a callable is registered: the public path of torch's builtins
    (``torch.relu``, ``torch.nn.functional.gelu``, ``torch.Tensor.relu``), then the in-place
    variant's base (``relu_`` -> ``relu``)."""
    name = getattr(func, "__name__", None)
    if not isinstance(name, str):
        return []
    qual = getattr(func, "__qualname__", None)
    qual = qual if isinstance(qual, str) and qual else name
    module = getattr(func, "__module__", None)
    objclass = getattr(func, "__objclass__", None)
    owner = getattr(func, "__self__", None)
    if qual.startswith("_VariableFunctionsClass."):
        full = f"torch.{name}"
    elif qual.startswith(("TensorBase.", "_TensorBase.", "Tensor.")) and (
            objclass is not None or module in (None, "torch._tensor")
            or type(owner).__name__ in ("Tensor", "Parameter")):
        full = f"torch.Tensor.{name}"
    elif module == "torch._C._nn":
        full = f"torch.nn.functional.{name}"
    elif module == "torch._C._special":
        full = f"torch.special.{name.removeprefix('special_')}"
    else:
        full = f"{module}.{qual}"
    out = [full]
    if full.endswith("_") and not full.endswith("__"):
        out.append(full[:-1])
    return out


#: An activation followed by an elementwise function that together compute another activation:
#: ``(first activation, function, its constant argument) -> the composite``. ``F.relu(x).square()``
#: (the nanoGPT speedrun's MLP), ``torch.square(torch.relu(k))`` (RWKV's channel mix) and
#: ``relu(x) ** 2`` are relu_squared (``x * x`` is read as ``square``; functions by their
#: names without an in-place underscore: ``square_`` is ``square``); ``z * sigmoid(z)`` is silu
#: and ``z * sigmoid(1.702 z)`` quick_gelu (GPT-OSS's gate), z a layer's output.
COMPOSITES: dict[tuple[str, str, float | None], str] = {
    ("relu", "square", None): "relu_squared", ("relu", "pow", 2.0): "relu_squared",
    ("relu", "__pow__", 2.0): "relu_squared", ("relu", "__ipow__", 2.0): "relu_squared",
    # z * sigmoid(k z) written out (the probe's "times_input", k): silu and quick_gelu
    ("sigmoid", "times_input", 1.0): "silu",
    ("sigmoid", "times_input", QUICK_GELU_SCALE): "quick_gelu",
}


def composite(first: Activation, fname: str, const: float | None = None
              ) -> tuple[Activation, float | None] | None:
    """``(Activation, param)`` of ``fname(first(x), const)`` when that is an activation the
    registry knows (:data:`COMPOSITES`), else None."""
    name = COMPOSITES.get((first.name, fname, None if const is None else float(const)))
    return None if name is None else _found(_BY_NAME[name], None)


def _found(spec: Spec, param: float | None) -> tuple[Activation, float | None]:
    act = _build(spec.name, param)
    return act, act.param


def lookup_module(module) -> tuple[Activation, float | None] | None:
    """``(Activation, param)`` of the activation a module IS, or None.

    Walks ``type(module).__mro__`` by qualified class name (a subclass of ``nn.ReLU`` is relu);
    the first class the registry knows decides, and its settings must match one of its forms
    (``nn.GELU(approximate="tanh")`` is gelu_tanh, ``Hardtanh(-2, 2)`` is nothing here: None).
    """
    for cls in type(module).__mro__:
        forms = _MODULE_FORMS.get(class_name(cls))
        if not forms:
            continue
        def get(key, default, _m=module):
            return getattr(_m, key, default)

        for spec, form in forms:
            ok, p = form.read(get)
            if ok:
                return _found(spec, p)
        return None
    return None


def lookup_function(func, args=(), kwargs=None) -> tuple[Activation, float | None] | None:
    """``(Activation, param)`` of the activation a call ``func(*args, **kwargs)`` computes, or None.

    ``args`` include the input (first); ``functools.partial`` objects are unwrapped (transformers'
    ``GELUTanh`` holds ``partial(F.gelu, approximate="tanh")``). ``F.gelu(x, approximate="tanh")``
    is gelu_tanh, ``F.leaky_relu(x, 0.2)`` leaky_relu with param 0.2, ``x.relu_()`` relu.
    """
    kwargs = dict(kwargs or {})
    args = tuple(args)
    while hasattr(func, "func") and hasattr(func, "keywords") and hasattr(func, "args"):
        args = tuple(func.args) + args
        kwargs = {**func.keywords, **kwargs}
        func = func.func
    bound_to_input = getattr(func, "__self__", None) is not None and \
        type(func.__self__).__name__ in ("Tensor", "Parameter")
    for qn in callable_names(func):
        forms = _FUNCTION_FORMS.get(qn)
        if not forms:
            continue
        for spec, form in forms:
            rest = args if bound_to_input else args[1:]
            values = dict(zip(form.args, rest))
            values.update(kwargs)

            def get(key, default, _v=values):
                return _v.get(key, default)

            ok, p = form.read(get)
            if ok:
                return _found(spec, p)
        return None
    return None


def function_form(name: str, param: float | None = None) -> tuple[str, dict[str, Any]] | None:
    """``(qualified name, keyword arguments)`` of the first function form of an activation:
    how a framework calls it (``("torch.nn.functional.gelu", {"approximate": "tanh"})``,
    ``("initlab.backends.torch_activations.quick_gelu", {})``), or None when it has none (every
    entry has one today)."""
    s = _check_name(name)
    act = _build(name, param)
    for form in s.forms:
        if form.kind != "function" or form.when is not None or form.target.startswith(
                ("torch.Tensor.", "torch.clamp", "torch.clip")):
            continue
        kw = {k: v for k, v in form.fixed.items()}
        if isinstance(form.param, str) and act.param is not None:
            kw[form.param] = act.param
        elif form.param is not None:
            continue  # a reader of several settings (prelu's weight): not a plain keyword
        return form.target, kw
    return None


def module_form(name: str, param: float | None = None) -> tuple[str, dict[str, Any]] | None:
    """``(qualified class name, constructor keywords)`` of the first ``torch.nn`` module form of
    an activation (``("torch.nn.LeakyReLU", {"negative_slope": 0.2})``), or None (none in
    ``torch.nn``: ``quick_gelu``, ``linear``)."""
    s = _check_name(name)
    act = _build(name, param)
    for form in s.forms:
        if form.kind != "module" or not form.target.startswith("torch.nn.") or \
                form.when is not None or (form.param is not None and not isinstance(form.param, str)):
            continue
        kw = dict(form.fixed)
        if isinstance(form.param, str) and act.param is not None:
            kw[form.param] = act.param
        return form.target, kw
    return None


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
