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

Deep plain stacks (issue #11): dynamical isometry
-------------------------------------------------
For a hidden layer of a plain stack (``residual=False``) deeper than :data:`DEEP` weighted layers
(or whenever ``isometry=True``: the ``isometry`` plan), :func:`_for_depth` replaces the Gaussian
choice by one that keeps the input-output Jacobian's spectrum concentrated (Saxe et al. 2014;
Pennington, Schoenholz, Ganguli 2017; Xiao et al. 2018 for convolutions). The predicted spread
``var(s^2)/mean(s^2)^2 = L (mu_2/mu_1^2 - 1 - s_1)`` (:mod:`initlab.core.criticality`; ``s_1 = -1``
Gaussian, 0 orthogonal) decides:

==============================  ==================================================  ==========
activation that follows         initializer (``layer="conv"``: delta_orthogonal)    bias
==============================  ==================================================  ==========
saturating with phi(0) = 0,     orthogonal(gain = sqrt(sigma_w2)) on the critical   N(0, sb2)
phi'(0) > 0: tanh, hardtanh,    line, at the largest sigma_b2 whose predicted
softsign                        orthogonal spread at this depth is
                                ``spread`` (default :data:`~initlab.core.criticality.
                                ISOMETRY_SPREAD_TARGET`;
                                :func:`~initlab.core.criticality.isometric_point`)
sigmoid, hardsigmoid            unchanged (Glorot): no bias variance brings q* near 0
                                (phi(0) != 0), so no point is isometric; the reason
                                quotes the best one's spread and suggests tanh
relu, relu6, leaky_relu(a)      looks_linear (Balduzzi et al. 2017), by position    0
                                in the stack: first [[V], [-V]], hidden
                                [[V, -V], [-V, V]] (gain 1/(1+a)), readout [[V, -V]],
                                V Haar orthogonal (a conv: that matrix at the
                                kernel's centre tap): the stack is linear at init,
                                spread 0. ``deep_relu="orthogonal"``:
                                orthogonal(gain = sqrt(2/(1+a^2))): He's variance,
                                spread L (1-a^2)^2/(1+a^2)^2 instead of that + L
every other activation          orthogonal on the critical line at q* = 1 (the      N(0, sb2)
(gelu, silu, selu, elu, ...)    classic scale): sigma_w2 = 1/mu_1(1), sigma_b2 =
                                1 - sigma_w2 E[phi(z)^2]; without a stable such
                                point (softplus) the classic gain, biases 0
linear (a hidden layer)         orthogonal, gain 1 (Saxe et al. 2014): spread 0     0
any layer fed by a              looks_linear at position "hidden" (it mirrors its   0
looks-linear layer              output too) or "last", gain 1/(1+a) for the input's
(``mirrored_input``)            leaky slope a
readout, unknown, residual      unchanged
==============================  ==================================================  ==========

The reason states the chosen sigma_w2, sigma_b2, q* and the predicted spread against Gaussian
weights' at the same point; ``theory`` holds the prediction
(:class:`~initlab.core.criticality.PredictedSpectrum`), ``bias`` the bias initializer (zeros
unless the choice says otherwise), and ``plan`` is ``"isometry"``, which draws it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from . import criticality
from .activations import Activation
from .activations import activation as get_activation
from .criticality import PredictedSpectrum
from .distributions import Normal
from .initializer import Initializer
from .registry import get as get_init
from .validation import InitlabTypeError, check_choice, check_scalar, error_message

ROLES = ("hidden", "readout")
LAYERS = ("dense", "conv")
UNKNOWN = "unknown"

_HE = ("relu", "relu6")
_LECUN = ("selu", "linear")


@dataclass(frozen=True)
class Recommendation:
    """An initializer for one layer, the built-in plan that draws it, and why.

    ``activation`` is the registry name of the activation that follows (None: a linear output;
    ``"unknown"``: not found), ``param`` its parameter. ``alternatives`` are other built-in plans
    worth trying for it (the doctor lists them). ``bias`` initializes the layer's bias;
    ``theory`` is the predicted Jacobian spectrum behind a deep-stack choice (else None).
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
    bias: Initializer = field(default_factory=lambda: get_init("zeros"))
    layer: str = "dense"
    theory: PredictedSpectrum | None = None


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
    if act.saturating:   # bounded and not ReLU-like: tanh, sigmoid, hardtanh, softsign, ...
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


#: Weighted layers of a plain stack beyond which the recommender switches to the isometric
#: choices (Pennington et al. 2017 see Gaussian and orthogonal tanh nets part by ~20-50 layers;
#: at 20 the Gaussian spread L (mu_2/mu_1^2) is already ~20x the orthogonal one at small q*).
#: A tuning knob, like criticality.ISOMETRY_SPREAD_TARGET.
DEEP = 20
#: activations whose deep plain stacks get orthogonal weights with He's gain
_HE_FAMILY = (*_HE, "leaky_relu")


def _orthogonal(gain: float, layer: str) -> Initializer:
    """Haar orthogonal times ``gain`` (a conv: delta-orthogonal, Xiao et al. 2018)."""
    return get_init("delta_orthogonal" if layer == "conv" else "orthogonal", gain=gain)


def _what(layer: str) -> str:
    return "delta-orthogonal (Xiao et al. 2018)" if layer == "conv" else "orthogonal"


def _spread_text(p: PredictedSpectrum) -> str:
    return (f"predicted Jacobian spread var(s^2)/mean(s^2)^2 = {p.spread_orthogonal:.3g} "
            f"(Gaussian weights: {p.spread_gaussian:.3g})")


def _point_text(p: PredictedSpectrum) -> str:
    return (f"sigma_w2 = {p.sigma_w2:.4g} (gain {math.sqrt(p.sigma_w2):.4g}), bias N(0, "
            f"sigma_b2 = {p.sigma_b2:.3g})")


def _on_critical_line(rec: Recommendation, p: PredictedSpectrum, layer: str, reason: str
                      ) -> Recommendation:
    """Orthogonal weights at ``p``'s sigma_w2 with N(0, sigma_b2) biases (zero when 0)."""
    bias = get_init("normal", std=math.sqrt(p.sigma_b2)) if p.sigma_b2 > 0 else get_init("zeros")
    return replace(rec, initializer=_orthogonal(math.sqrt(p.sigma_w2), layer), bias=bias,
                   plan="isometry", theory=p, reason=reason)


def _isometric(rec: Recommendation, act: Activation, depth: int, layer: str, target: float
               ) -> Recommendation:
    """Saturating activations: the critical point whose orthogonal spread meets ``target``."""
    where = f"{rec.activation} follows, plain stack of {depth} layers"
    try:
        p = criticality.isometric_point(act, depth, target)
    except ValueError as exc:  # no critical point with sigma_b2 >= 0: keep the classic choice
        return replace(rec, reason=f"{rec.reason} (no isometric point: {exc})")
    if p.spread > target * (1 + 1e-6):
        return replace(rec, reason=(
            f"{rec.reason}; no point of {rec.activation} is isometric at depth {depth}: the most "
            f"isometric critical point (sigma_w2 = {p.sigma_w2:.4g}, sigma_b2 = 0, q* = "
            f"{p.q_star:.3g}) still has {_spread_text(p)}, as phi(0) != 0 keeps q* large; "
            "prefer tanh"), theory=p)
    return _on_critical_line(
        rec, p, layer, f"{where}: dynamical isometry (Pennington, Schoenholz, Ganguli 2017), "
        f"{_what(layer)} weights on the critical line, {_point_text(p)}, q* = {p.q_star:.3g}; "
        f"{_spread_text(p)}{_target_text(target)}")


def _target_text(target: float) -> str:
    """Names a spread target that is not the default one."""
    if target == criticality.ISOMETRY_SPREAD_TARGET:
        return ""
    return f" (spread target {target:g}, default {criticality.ISOMETRY_SPREAD_TARGET:g})"


def _orthogonal_classic(rec: Recommendation, act: Activation, depth: int, layer: str,
                        gain: float, source: str) -> Recommendation:
    """The classic variance, drawn orthogonal (s_1: -1 -> 0); biases 0."""
    p = criticality.spectrum_at(act, gain * gain, 0.0, depth)
    mean = ("" if not math.isfinite(p.chi1) or abs(p.chi1 - 1) < 1e-6 else
            f", mean(s^2) = chi_1^L = {p.chi1:.4g}^{depth}")
    spread = _spread_text(p) if math.isfinite(p.spread) else "spread not predicted (q* = inf)"
    return replace(
        rec, initializer=_orthogonal(gain, layer), plan="isometry", theory=p,
        reason=(f"{rec.activation or 'linear'} follows, plain stack of {depth} layers: "
                f"{_what(layer)} weights with {source} (gain {gain:.4g}, sigma_w2 = "
                f"{gain * gain:.4g}; Saxe et al. 2014), biases 0, q* = {p.q_star:.3g}; "
                f"{spread}{mean}"))


def _critical_orthogonal(rec: Recommendation, act: Activation, depth: int, layer: str
                         ) -> Recommendation:
    """Non-saturating activations: orthogonal weights on the critical line at the classic scale
    q* = 1 (where the forward gain puts the signal), else the classic gain."""
    p = criticality.critical_at(act, 1.0, depth)
    if p is None:  # no stable critical point at q* = 1 with sigma_b2 >= 0 (softplus)
        dist = rec.initializer.resolve((256, 256))
        assert isinstance(dist, Normal)  # the non-saturating, non-ReLU plans draw N(0, std^2)
        g = math.sqrt(dist.std ** 2 * 256)
        return _orthogonal_classic(rec, act, depth, layer, g, f"the variance of "
                                   f"{rec.initializer.name} (no critical point at q* = 1)")
    return _on_critical_line(
        rec, p, layer, f"{rec.activation} follows, plain stack of {depth} layers: "
        f"{_what(layer)} weights on the critical line at the classic scale q* = 1 (chi_1 = 1; "
        f"Saxe et al. 2014, Pennington et al. 2017), {_point_text(p)}; {_spread_text(p)}")


def _slope(act: Activation) -> float:
    """The negative slope ``a`` of a ReLU-family activation (0 for relu, relu6)."""
    if act.name != "leaky_relu":
        return 0.0
    assert act.param is not None  # the registry's leaky_relu always carries its slope
    return act.param


def _looks_linear(rec: Recommendation, act: Activation | None, mirrored: Activation | None,
                  depth: int | None, layer: str,
                  deep_relu: str = "looks_linear") -> Recommendation:
    """Looks-linear weights (Balduzzi et al. 2017): ``"first"`` when the layer mirrors its output
    but not its input, ``"hidden"`` both, ``"last"`` only its input; the gain 1/(1 + a) undoes
    the input's ``f(u) - f(-u) = (1 + a) u``."""
    out = (act is not None and act.name in _HE_FAMILY and rec.role == "hidden"
           and deep_relu == "looks_linear")
    position = ("hidden" if out else "last") if mirrored is not None else "first"
    gain = 1.0 / (1.0 + _slope(mirrored)) if mirrored is not None else 1.0
    layers = depth or 1
    # with the gain undoing (1 + a), the chain is exactly the product of the orthogonal V's
    p = criticality.spectrum_at(get_activation("linear"), 1.0, 0.0, layers)
    side = {"first": "its output mirrored, [[V], [-V]]",
            "hidden": "input and output mirrored, [[V, -V], [-V, V]]",
            "last": "its mirrored input folded back, [[V, -V]]"}[position]
    fed = f" (fed by {mirrored.name}: gain 1/(1 + a) = {gain:.4g})" if mirrored is not None else ""
    if layer == "conv":
        side += " at the kernel's centre tap, zeros elsewhere (a delta kernel, as Xiao et al. 2018)"
    plain = f"plain stack of {depth} layers" if depth else "plain stack"
    who = (f"{rec.activation} follows" if rec.activation else
           "readout (linear output)" if rec.role == "readout" else "no activation follows")
    he = criticality.spectrum_at(act, 2.0 / (1.0 + _slope(act) ** 2), 0.0, layers) \
        if out and depth and act is not None else None
    versus = (f"; orthogonal He weights' spread would be {he.spread_orthogonal:.3g}, Gaussian "
              f"He's {he.spread_gaussian:.3g}") if he is not None else ""
    return replace(
        rec, initializer=get_init("looks_linear", gain=gain, position=position), plan="isometry",
        theory=p, bias=get_init("zeros"), reason=(
            f"{who}, {plain}: looks-linear weights (Balduzzi et "
            f"al. 2017), position {position!r}: {side}, V Haar orthogonal{fed}, biases 0; as "
            "relu(u) - relu(-u) = u the stack is the linear map V_L ... V_1 at init (first "
            "layer [[V], [-V]], hidden [[V, -V], [-V, V]], readout [[V, -V]]; `auto` places "
            "them by position), so every singular value of its Jacobian on the mirrored "
            f"coordinates is 1: spread 0{versus}"))


def _for_depth(rec: Recommendation, act: Activation | None, layer: str,
               isometry: bool | None, spread: float, deep_relu: str,
               mirrored: Activation | None) -> Recommendation:
    """The deep-plain-stack choices (see the module's second table)."""
    if mirrored is not None:   # fed by a looks-linear layer's mirrored output
        return _looks_linear(rec, act, mirrored, rec.depth, layer, deep_relu)
    deep = rec.depth is not None and rec.depth > DEEP if isometry is None else isometry
    if not deep or rec.residual or rec.role != "hidden" or rec.depth is None or \
            rec.activation == UNKNOWN:
        return rec
    name, depth = rec.activation, rec.depth
    if name is None or name == "linear":
        return _orthogonal_classic(rec, get_activation("linear"), depth, layer, 1.0,
                                   "gain 1 (a linear net)")
    assert act is not None  # recommend builds it for every name but None and "unknown"
    if act.saturating:
        return _isometric(rec, act, depth, layer, spread)
    if name in _HE_FAMILY:
        if deep_relu == "looks_linear":
            return _looks_linear(rec, act, None, depth, layer)
        a = _slope(act)
        return _orthogonal_classic(rec, act, depth, layer, math.sqrt(2.0 / (1.0 + a * a)),
                                   "He's variance")
    return _critical_orthogonal(rec, act, depth, layer)


def recommend(activation: Any, *, depth: int | None = None, residual: bool = False,
              role: str = "hidden", layer: str = "dense", isometry: bool | None = None,
              spread: float | None = None, deep_relu: str = "looks_linear",
              mirrored_input: Any = None) -> Recommendation:
    """The initializer for a layer followed by ``activation`` (see the module's tables).

    ``activation``: a registry name or alias, an :class:`Activation`, an ``(activation, param)``
    pair (as the lookups return), None for no activation (a linear output) or ``"unknown"``.
    ``depth``: the number of weighted layers of the plain stack the layer is on; ``residual``:
    whether the layer sits in a residual branch; ``role``: ``"hidden"`` or ``"readout"`` (the
    model's output layer); ``layer``: ``"dense"`` or ``"conv"`` (a convolution whose
    in_channels <= out_channels: delta-orthogonal kernels in a deep stack). ``isometry``:
    None (default) uses the deep-stack choices beyond :data:`DEEP` layers, True always (given a
    depth), False never. ``spread``: the target of the predicted orthogonal spread for the
    saturating activations' isometric point (default
    :data:`~initlab.core.criticality.ISOMETRY_SPREAD_TARGET`); larger means a larger ``q*`` and
    ``sigma_b2``, further from a linear net and from isometry. The other activations' deep
    choices have no free parameter and ignore it. ``deep_relu``: what a layer of a deep plain
    ReLU-family stack gets, ``"looks_linear"`` (default: mirrored orthogonal weights that make
    the stack linear at init, Balduzzi et al. 2017; a conv kernel holds them at its centre tap)
    or ``"orthogonal"`` (orthogonal or delta-orthogonal with He's gain). ``mirrored_input``:
    None, or the activation ``f`` on this layer's input when that input is a looks-linear
    layer's mirrored output ``[f(u), f(-u)]`` (``auto`` passes it from the model's dataflow);
    the layer then gets looks-linear weights at position ``"hidden"`` (its output mirrored
    too) or ``"last"``.

    >>> recommend("relu").plan
    'he'
    >>> recommend("tanh", depth=200).initializer.name
    'orthogonal'
    """
    check_choice(role, "role", ROLES)
    check_choice(layer, "layer", LAYERS, fix="pass 'dense' (Linear, or any matrix) or 'conv'.")
    if depth is not None:
        depth = check_scalar(depth, "depth", min_val=1, integer=True,
                             why=" (the number of weighted layers)")
    for flag, value in (("residual", residual), ("isometry", isometry)):
        if not (isinstance(value, bool) or (flag == "isometry" and value is None)):
            raise InitlabTypeError(error_message(flag, "must be a bool" + (
                " or None" if flag == "isometry" else ""), value, "pass True or False."))
    name, param = _normalize(activation)
    init, plan, reason, alts = _choose(name, param, role)
    rec = Recommendation(init, plan, reason, name, param if name not in (None, UNKNOWN) else None,
                         depth, residual, role, alts, layer=layer)
    act = get_activation(name, param) if name not in (None, UNKNOWN) else None
    check_choice(deep_relu, "deep_relu", DEEP_RELU)
    return _for_depth(rec, act, layer, isometry, check_spread(spread), deep_relu,
                      _mirrored(mirrored_input))


#: What a dense layer of a deep plain ReLU-family stack gets (``recommend(deep_relu=...)``).
DEEP_RELU = ("looks_linear", "orthogonal")


def _mirrored(act: Any) -> Activation | None:
    """``mirrored_input`` as a ReLU-family Activation (None: the input is not mirrored)."""
    if act is None:
        return None
    name, param = _normalize(act)
    if name not in _HE_FAMILY:
        raise InitlabTypeError(error_message(
            "mirrored_input", "must be None or the ReLU-family activation (relu, relu6, "
            "leaky_relu) between a looks-linear layer and this one", act,
            "pass the activation that follows the looks-linear layer feeding this one, or None."))
    return get_activation(name, param)


def check_spread(spread: float | None) -> float:
    """``spread`` (None: the default target) as a finite positive float, or a clear error."""
    if spread is None:
        return criticality.ISOMETRY_SPREAD_TARGET
    return check_scalar(spread, "spread", min_val=0.0, include_min=False, why=(
        " (the target of the predicted Jacobian spread var(s^2)/mean(s^2)^2, e.g. 0.5 or 4)"))
