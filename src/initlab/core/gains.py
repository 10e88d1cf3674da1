"""Gains: torch's table (``calculate_gain``) and a numeric gain for any activation (``gain``).

Definitions used by :func:`gain` (z ~ N(0, q)):

* forward: ``gain**2 = q / E[f(z)**2]``. A layer with Var(w) = gain**2 / fan_in applied to
  activations f(z) keeps the second moment of its pre-activations at q (the quantity the mean-field
  length map tracks; Poole et al. 2016). For ReLU it is sqrt(2) (He et al. 2015).
* backward: ``gain**2 = 1 / E[f'(z)**2]``: keeps the variance of back-propagated gradients
  (Glorot & Bengio 2010's backward condition; for ReLU sqrt(2), for tanh at q = 1, 1.46741).

Reference values (q = 1): forward tanh 1.59254, gelu 1.53353 (exact erf GELU; the tanh
approximation gives 1.53358), silu 1.67653, relu sqrt(2); backward tanh 1.46741, relu sqrt(2).
"""

from __future__ import annotations

import math

from .activations import SPECS, activation, gaussian_expectation
from .validation import (
    InitlabArgumentError,
    check_choice,
    check_finite_param,
    check_numeric_function,
    check_scalar,
    fail,
)

# torch's layer names whose gain is the linear one
_TORCH_LAYER_NAMES = ("conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                      "conv_transpose3d")
# the names torch.nn.init.calculate_gain accepts: linear, its layers, then every registry entry
# that carries torch's published value (sigmoid, tanh, relu, leaky_relu, selu)
TORCH_GAIN_NAMES = ("linear", *_TORCH_LAYER_NAMES,
                    *(n for n, s in SPECS.items() if s.torch_gain is not None and n != "linear"))


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """torch.nn.init's recommended gain, value for value.

    ========================  ==================================
    nonlinearity              gain
    ========================  ==================================
    linear / conv* / sigmoid  1
    tanh                      5/3
    relu                      sqrt(2)
    leaky_relu                sqrt(2 / (1 + negative_slope**2)), slope default 0.01
    selu                      3/4 (found empirically by PyTorch, for self-normalizing nets)
    ========================  ==================================

    The values live on the activation registry's entries (``Spec.torch_gain``). For activations
    outside torch's table (gelu, silu, mish, elu, ...) use :func:`gain`.
    """
    name = check_choice(nonlinearity, "nonlinearity", TORCH_GAIN_NAMES,
                        fix="for other activations use initlab.gain(name), computed numerically.")
    if name in _TORCH_LAYER_NAMES:
        name = "linear"
    if name == "leaky_relu" and param is not None:
        # nan would give a nan gain and inf a silent 0.0
        # a wrong type raises an error that is also a ValueError, as torch's does
        param = check_finite_param(param, "param", what="the negative slope of leaky_relu",
                                   type_error=InitlabArgumentError)
    torch_gain = SPECS[name].torch_gain
    assert torch_gain is not None  # TORCH_GAIN_NAMES holds only entries with a torch_gain
    return torch_gain(None if param is None else float(param))


def gain(activation_name, *, q: float = 1.0, direction: str = "forward",
         param: float | None = None) -> float:
    """Numeric gain of any activation (a name or a NumPy-vectorized callable).

    ``direction="forward"``: ``sqrt(q / E[f(z)^2])``; ``"backward"``: ``1 / sqrt(E[f'(z)^2])``;
    z ~ N(0, q). Integrals are split at the activation's kinks (see module docs).

    >>> round(gain("relu"), 12) == round(2 ** 0.5, 12)
    True
    """
    q = check_scalar(q, "q", min_val=0.0, include_min=False,
                     why=" (the variance of the pre-activation)")
    check_choice(direction, "direction", ("forward", "backward"))
    if callable(activation_name):
        # math.tanh raises on arrays and np.log is nan for z < 0: refuse before integrating
        check_numeric_function(activation_name, "activation_name")
    if param is not None:
        param = check_finite_param(param, "param", what="the activation's parameter")
    act = activation(activation_name, param)
    if direction == "forward":
        m2 = gaussian_expectation(lambda x: act.f(x) ** 2, q, act.kinks)
        if m2 <= 0:
            raise fail("activation", "must not be identically zero under N(0, q)", act.name)
        return math.sqrt(q / m2)
    m2 = gaussian_expectation(lambda x: act.df(x) ** 2, q, act.kinks)
    if m2 <= 0:
        raise fail("activation", "must have a derivative that is not zero almost everywhere", act.name)
    return 1.0 / math.sqrt(m2)
