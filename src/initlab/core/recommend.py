"""The one recommender: which initializer a layer gets for the activation that follows it.

``recommend(activation, depth=None, residual=False, role="hidden")`` returns a
:class:`Recommendation`: the catalog initializer, the built-in plan of ``initlab.apply`` that
draws exactly that initializer for such a layer, and the reason. ``auto`` uses it per layer and
the doctor's advice quotes it, so both give one answer.

==============================  ==================================================  ==========
activation that follows         initializer                                         plan
==============================  ==================================================  ==========
relu, relu6                     he_normal: Var = 2/fan_in (He et al. 2015)          he
leaky_relu(a), PReLU, RReLU     he_normal(a): Var = 2/((1 + a^2) fan_in)            he (a = 0)
                                                                                    else auto
tanh, sigmoid, hardtanh,        glorot_uniform: U(+-sqrt(6/(fan_in + fan_out)))     glorot
softsign, hardsigmoid           (Glorot & Bengio 2010, "normalized initialization")
selu                            lecun_normal: Var = 1/fan_in (Klambauer et al.      lecun
                                2017, self-normalizing networks)
gelu, gelu_tanh, quick_gelu,    N(0, g^2/fan_in) with the numeric forward gain      auto
silu, mish, elu, celu,          g = 1/sqrt(E[f(z)^2]), z ~ N(0, 1)
softplus, hardswish,            (:meth:`Activation.forward_gain`)
relu_squared
none / linear (a readout)       lecun_normal: Var = 1/fan_in (gain 1)               lecun
"unknown" (not found)           lecun_normal, said so in the reason; try ``lsuv``   lecun
==============================  ==================================================  ==========

``plan`` is a uniform plan (``he``, ``glorot``, ``lecun``) when it draws this initializer for
every such layer, else ``auto`` (which draws it per layer from this function). A test checks,
for every activation of the registry, that applying ``plan`` to a layer followed by that
activation draws ``initializer``.

``depth`` and ``residual`` are recorded but do not change the choice yet: the depth-aware rules
(issue #11) go in :func:`_for_depth`, the one place that sees them (today it only offers
``orthogonal`` as an alternative for tanh nets deeper than 20 layers).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from .activations import Activation
from .activations import activation as get_activation
from .initializer import Initializer
from .registry import get as get_init
from .validation import InitlabTypeError, check_choice, check_scalar, error_message

ROLES = ("hidden", "readout")
UNKNOWN = "unknown"

_HE = ("relu", "relu6")
_GLOROT = ("tanh", "sigmoid", "hardtanh", "softsign", "hardsigmoid")
_LECUN = ("selu", "linear")


@dataclass(frozen=True)
class Recommendation:
    """An initializer for one layer, the built-in plan that draws it, and why.

    ``activation`` is the registry name of the activation that follows (None: a linear output;
    ``"unknown"``: not found), ``param`` its parameter. ``alternatives`` are other built-in plans
    worth trying for it (the doctor lists them).
    """

    initializer: Initializer
    plan: str
    reason: str
    activation: str | None = None
    param: float | None = None
    depth: int | None = None
    residual: bool = False
    role: str = "hidden"
    alternatives: tuple[str, ...] = field(default=())


def _normalize(act: Any) -> tuple[str | None, float | None]:
    """``(registry name or None or "unknown", param)`` from a name, an Activation or a pair."""
    if act is None or act == UNKNOWN:
        return act, None
    param = None
    if isinstance(act, tuple) and len(act) == 2:
        act, param = act
        if act is None or act == UNKNOWN:
            return act, None
    if isinstance(act, Activation):
        return act.name, act.param if param is None else param
    if isinstance(act, str):
        a = get_activation(act, param)
        return a.name, a.param
    raise InitlabTypeError(error_message(
        "activation", "must be an activation name, an Activation, a (name, param) pair, None "
        "(linear output) or 'unknown'", act, "pass e.g. 'relu' or ('leaky_relu', 0.2)."))


def _choose(name: str | None, param: float | None, role: str
            ) -> tuple[Initializer, str, str, tuple[str, ...]]:
    if name is None or name == "linear":
        what = ("linear output (readout)" if role == "readout" and name is None else
                "no activation follows (linear)" if name is None else "linear follows")
        return get_init("lecun_normal"), "lecun", f"{what}: LeCun, Var = 1/fan_in (gain 1)", ()
    if name == UNKNOWN:
        return (get_init("lecun_normal"), "lecun",
                "activation not found (unknown): LeCun, Var = 1/fan_in, as a neutral default; "
                "name the activation or let `lsuv` set the scale from data", ("lsuv",))
    act = get_activation(name, param)
    if name in _HE:
        extra = "" if name == "relu" else f" (its forward gain {act.forward_gain():.5f})"
        return (get_init("he_normal"), "he",
                f"{name} follows: He et al. 2015, Var = 2/fan_in{extra}", ())
    if name == "leaky_relu":
        a = act.param
        return (get_init("he_normal", a=a), "he" if a == 0 else "auto",
                f"leaky_relu(a={a:g}) follows: He et al. 2015, Var = 2/((1+a^2) fan_in)", ())
    if name in _GLOROT:
        alts = ("critical",) if name == "tanh" else ()
        return (get_init("glorot_uniform"), "glorot",
                f"{name} follows: Glorot & Bengio 2010, U(+-sqrt(6/(fan_in+fan_out)))", alts)
    if name == "selu":
        return (get_init("lecun_normal"), "lecun",
                "selu follows: LeCun, Var = 1/fan_in (Klambauer et al. 2017)", ())
    g = act.forward_gain()
    return (get_init("variance_scaling", scale=g * g, mode="fan_in", distribution="normal"),
            "auto", f"{name} follows: numeric forward gain {g:.5f} = 1/sqrt(E[f(z)^2]), "
            f"Var = {g * g:.4f}/fan_in", ("lsuv",))


DEEP = 20  # weighted layers beyond which the alternatives for deep nets are offered


def _for_depth(rec: Recommendation) -> Recommendation:
    """Where depth and residual branches will change the choice (issue #11). Today the choice
    stays; a deep tanh net is offered orthogonal weights as well (Saxe et al. 2014: orthogonal
    matrices keep every singular value of a near-linear net's Jacobian at 1)."""
    if rec.activation == "tanh" and rec.depth is not None and rec.depth > DEEP:
        return replace(rec, alternatives=(*rec.alternatives, "orthogonal"))
    return rec


def recommend(activation: Any, *, depth: int | None = None, residual: bool = False,
              role: str = "hidden") -> Recommendation:
    """The initializer for a layer followed by ``activation`` (see the module's table).

    ``activation``: a registry name or alias, an :class:`Activation`, an ``(activation, param)``
    pair (as the lookups return), None for no activation (a linear output) or ``"unknown"``.
    ``depth``: the number of weighted layers; ``residual``: whether the layer sits in a residual
    branch; ``role``: ``"hidden"`` or ``"readout"`` (the model's output layer).

    >>> recommend("relu").plan
    'he'
    """
    check_choice(role, "role", ROLES)
    if depth is not None:
        depth = check_scalar(depth, "depth", min_val=1, integer=True,
                             why=" (the number of weighted layers)")
    if not isinstance(residual, bool):
        raise InitlabTypeError(error_message("residual", "must be a bool", residual,
                                             "pass True or False."))
    name, param = _normalize(activation)
    init, plan, reason, alts = _choose(name, param, role)
    rec = Recommendation(init, plan, reason, name, param if name not in (None, UNKNOWN) else None,
                         depth, residual, role, alts)
    return _for_depth(rec)
