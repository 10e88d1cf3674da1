"""The ``critical`` initializer: weights and biases on the mean-field critical line (edge of chaos).

Imported lazily by :mod:`initlab.core.registry` at first catalog use, so this module imports only
the core, NumPy and SciPy (no torch) and never ``initlab.core.registry``'s users.
"""

from __future__ import annotations

import math

from ..core.distributions import Normal
from ..core.initializer import Context, Initializer
from ..core.registry import register
from ..core.validation import check_scalar
from .meanfield import critical_sigma_w2

# Default bias variance of `critical`: 0.05, the value Schoenholz et al. 2017 use for their
# trainability experiments; see the docstring of `critical` for the trade-off.
DEFAULT_SIGMA_B2 = 0.05


@register()
def critical(activation: str = "tanh", sigma_b2: float = DEFAULT_SIGMA_B2,
             sigma_w2: float | None = None) -> Initializer:
    """Edge-of-chaos init: weights N(0, sigma_w2 / fan_in), biases (``role="bias"``) N(0, sigma_b2),
    with ``sigma_w2`` on the critical line ``chi_1 = sigma_w2 E[phi'(sqrt(q*) z)^2] = 1``.

    Poole, Lahiri, Raghu, Sohl-Dickstein, Ganguli 2016, "Exponential expressivity in deep neural
    networks through transient chaos"; Schoenholz, Gilmer, Ganguli, Sohl-Dickstein 2017, "Deep
    Information Propagation". At ``chi_1 = 1`` the correlation depth scale ``xi_c`` diverges, so
    signals and gradients neither explode nor vanish exponentially and very deep nets train.

    Parameters
    ----------
    activation : the nonlinearity (a name from :func:`initlab.core.activation`).
    sigma_b2 : bias variance. Default 0.05: the value Schoenholz et al. use in their depth
        experiments, for which tanh's critical point is sigma_w2 = 1.761 with q* = 0.570. It is
        small, so pre-activations stay in tanh's near-linear range (small q*, which Pennington et
        al. 2017 show gives the best-conditioned input-output Jacobian), yet positive: at
        ``sigma_b2 = 0`` tanh's fixed point is ``q* = 0`` (critical point ``sigma_w2 = 1``) and
        the forward signal shrinks slowly (like 1/depth) towards 0 instead of settling.
        For dynamical isometry with orthogonal weights, go smaller (Pennington et al. 2017 favour
        small q*): measured here with width 128, 32 layers, orthogonal weights, the variance of
        the input-output Jacobian's s^2 over its mean squared is 0.37 at sigma_b2 = 1e-4
        (q* = 0.046), 1.4 at 1e-3 (q* = 0.107) and 12 at 0.05 (vs 95 for ReLU + He).
    sigma_w2 : pick the point explicitly (then nothing is solved; ``sigma_b2`` is used for biases).
        ``None`` (default): solved from ``activation`` and ``sigma_b2`` by
        :func:`initlab.theory.meanfield.critical_sigma_w2`.

    >>> import initlab
    >>> round(initlab.get("critical", activation="tanh", sigma_b2=0.05)
    ...       .resolve((100, 100)).std ** 2 * 100, 3)
    1.761
    """
    from ..core.activations import ACTIVATION_NAMES
    from ..core.validation import check_choice

    act = check_choice(activation, "activation", ACTIVATION_NAMES,
                       fix="pass an activation name (initlab.core.activations.ACTIVATION_NAMES).")
    sb = check_scalar(sigma_b2, "sigma_b2", min_val=0.0, why=" (a bias variance)")
    if sigma_w2 is None:
        sw = critical_sigma_w2(sb, act)
        sw_param = None
    else:
        sw = check_scalar(sigma_w2, "sigma_w2", min_val=0.0, include_min=False,
                          why=" (the weight variance times fan_in)")
        sw_param = sw

    def resolve(ctx: Context):
        if ctx.role == "bias":
            return Normal(0.0, math.sqrt(sb))
        fan_in, _ = ctx.fans()
        return Normal(0.0, math.sqrt(sw / fan_in))

    init = Initializer("critical", {"activation": act, "sigma_b2": sb, "sigma_w2": sw_param},
                       resolve, needs_fans=True)
    return init


def critical_point(activation: str = "tanh", sigma_b2: float = DEFAULT_SIGMA_B2) -> tuple[float, float]:
    """``(sigma_w2, sigma_b2)`` on the critical line for ``activation`` (see :func:`critical`)."""
    sb = check_scalar(sigma_b2, "sigma_b2", min_val=0.0, why=" (a bias variance)")
    return critical_sigma_w2(sb, activation), sb
