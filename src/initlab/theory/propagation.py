"""Variance propagation through depth: predicted by the mean-field recursion, measured in torch.

An MLP with widths ``n_0, n_1, ..., n_L`` computes ``z_l = W_l h_{l-1} + b_l``, ``h_l = phi(z_l)``
(``h_0 = x``; the last layer is linear unless ``activate_last``). With zero-mean i.i.d. weights of
variance ``Var(w_l)`` and biases of variance ``Var(b_l)``, at large width (Glorot & Bengio 2010,
"Understanding the difficulty of training deep feedforward neural networks", eqs. (5)-(6); He,
Zhang, Ren, Sun 2015, "Delving Deep into Rectifiers", sec. 2.2; Poole et al. 2016)::

    forward:   q_l = n_{l-1} Var(w_l) E[h_{l-1}^2] + Var(b_l),   E[h_l^2] = E[phi(z)^2], z ~ N(0, q_l)
    backward:  Var(d_l) = E[phi'(z_l)^2] * n_{l+1} Var(w_{l+1}) * Var(d_{l+1}),   d_l = dLoss/dz_l
    weights:   E[(dLoss/dW_l)^2] = Var(d_l) * E[h_{l-1}^2]                  (per example)

``q_l`` is the pre-activations' second moment (their variance: everything is zero-mean) and the
loss is ``sum(g * z_L)`` with ``g ~ N(0, 1)``, so ``Var(d_L) = 1``. For a linear unit the forward
factor is Glorot's ``n_{l-1} Var(w)`` and the backward one ``n_l Var(w)``; ReLU halves both
(``E[relu(z)^2] = q/2``, ``E[relu'(z)^2] = 1/2``), which ``Var(w) = 2/n`` (He) undoes. Gaussian
expectations use :func:`initlab.core.gaussian_expectation`, split at the activation's kinks.

:func:`measure_propagation` runs the same network in torch (float64) on random inputs
``x ~ N(0, input_second_moment)`` drawn, like the parameters, from one seeded ``torch.Generator``,
and records per layer the mean of ``z_l^2``, of ``d_l^2``, and of the per-example weight gradient
``(d_l h_{l-1}^T)^2``, averaged over ``n_nets`` independent networks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..core.activations import activation as get_activation
from ..core.activations import gaussian_expectation
from ..core.validation import check_scalar, fail
from ._net import check_widths, per_layer, resolve_layer
from .weighted_input import distribution_moments


@dataclass
class Propagation:
    """Per-layer variances (index 0 is layer 1). ``measured_*`` are ``None`` until measured."""

    widths: list[int]
    activation: str
    forward: list[float]            # predicted q_l = E[z_l^2]
    backward: list[float]           # predicted Var(dLoss/dz_l)
    weight_grad: list[float]        # predicted per-example E[(dLoss/dW_l)^2]
    forward_factor: list[float]     # Glorot: n_{l-1} Var(w_l)
    backward_factor: list[float]    # Glorot: n_l Var(w_l)
    measured_forward: list[float] | None = None
    measured_backward: list[float] | None = None
    measured_weight_grad: list[float] | None = None
    measured_forward_se: list[float] | None = None  # standard error over networks
    measured_backward_se: list[float] | None = None
    extra: dict = field(default_factory=dict)

    @property
    def depth(self) -> int:
        return len(self.forward)

    def as_dict(self) -> dict:
        from dataclasses import asdict

        return asdict(self)

    def _repr_html_(self) -> str:  # Jupyter
        from ..report.notebook import theory_html
        from .plots import plot_propagation

        return theory_html(self, plot_propagation(self))


def _layer_moments(winits, binits, ws):
    out = []
    for li in range(len(ws) - 1):
        wd, bd = resolve_layer(winits[li], binits[li], ws[li], ws[li + 1])
        mw, vw = distribution_moments(wd)
        if abs(mw) > 1e-12:
            raise fail("weight_init", "must have zero-mean weights for the variance recursion",
                       mw, "use a zero-mean initializer (every variance-scaling preset is).")
        mb, vb = distribution_moments(bd) if bd is not None else (0.0, 0.0)
        out.append((vw, vb + mb * mb))
    return out


def predict_propagation(widths, activation="tanh", weight_init="lecun_normal", bias_init=None, *,
                        input_second_moment: float = 1.0, activate_last: bool = False,
                        param: float | None = None) -> Propagation:
    """Predicted per-layer forward and backward variances (formulas in the module docstring).

    ``weight_init`` / ``bias_init``: one initializer (name, Initializer or Distribution) or a list
    with one per layer; ``bias_init=None`` means no biases, ``"same"`` the weight initializer's
    ``role="bias"`` distribution. Non-Gaussian weights (uniform, truncated) enter only through
    their variance (the CLT at large width). A bias with non-zero mean enters through its second
    moment.
    """
    ws = check_widths(widths)
    L = len(ws) - 1
    m0 = check_scalar(input_second_moment, "input_second_moment", min_val=0.0,
                      include_min=False, why=" (E[x^2] of the inputs)")
    a = get_activation(activation, param)
    moments = _layer_moments(per_layer(weight_init, L, "weight_init", allow_none=False),
                             per_layer(bias_init, L, "bias_init", allow_none=True,
                                       allow_same=True), ws)

    def act_on(li: int) -> bool:
        return li < L - 1 or activate_last

    q, h2, dphi2 = [], [], []
    prev_h2 = m0
    for li, (vw, vb) in enumerate(moments):
        ql = ws[li] * vw * prev_h2 + vb
        q.append(ql)
        if act_on(li):
            prev_h2 = gaussian_expectation(lambda x: a.f(x) ** 2, ql, a.kinks)
            dphi2.append(gaussian_expectation(lambda x: a.df(x) ** 2, ql, a.kinks))
        else:
            prev_h2 = ql
            dphi2.append(1.0)
        h2.append(prev_h2)
    back = [0.0] * L
    back[L - 1] = dphi2[L - 1]
    for li in range(L - 2, -1, -1):
        vw_next = moments[li + 1][0]
        back[li] = dphi2[li] * ws[li + 2] * vw_next * back[li + 1]
    h_in = [m0] + h2[:-1]
    wgrad = [back[li] * h_in[li] for li in range(L)]
    return Propagation(
        widths=ws, activation=a.name, forward=q, backward=back, weight_grad=wgrad,
        forward_factor=[ws[li] * moments[li][0] for li in range(L)],
        backward_factor=[ws[li + 1] * moments[li][0] for li in range(L)],
        extra={"input_second_moment": m0, "activate_last": activate_last})


def measure_propagation(widths, activation="tanh", weight_init="lecun_normal", bias_init=None, *,
                        batch: int = 256, n_nets: int = 1, seed: int = 0,
                        input_second_moment: float = 1.0, activate_last: bool = False,
                        param: float | None = None, progress: bool = False,
                        prediction: Propagation | None = None) -> Propagation:
    """Measure the variances on actual torch networks; returns a :class:`Propagation` with both
    the prediction and the measurements (means over ``n_nets`` networks, and standard errors).

    Everything random (parameters, inputs, the loss direction ``g``) comes from
    ``torch.Generator().manual_seed(seed)``.
    """
    import torch
    from tqdm.auto import tqdm

    from ._net import build_mlp

    ws = check_widths(widths)
    L = len(ws) - 1
    batch = check_scalar(batch, "batch", min_val=1, integer=True)
    n_nets = check_scalar(n_nets, "n_nets", min_val=1, integer=True)
    seed = check_scalar(seed, "seed", min_val=0, integer=True)
    m0 = check_scalar(input_second_moment, "input_second_moment", min_val=0.0, include_min=False)
    pred = prediction or predict_propagation(ws, activation, weight_init, bias_init,
                                             input_second_moment=m0,
                                             activate_last=activate_last, param=param)
    gen = torch.Generator().manual_seed(seed)
    fwd = np.zeros((n_nets, L))
    bwd = np.zeros((n_nets, L))
    wgr = np.zeros((n_nets, L))
    for k in tqdm(range(n_nets), disable=not progress, desc="networks"):
        net = build_mlp(ws, activation, weight_init, bias_init, generator=gen,
                        activate_last=activate_last, param=param)
        x = torch.randn(batch, ws[0], generator=gen, dtype=torch.float64) * math.sqrt(m0)
        x.requires_grad_(True)  # so that every z_l is part of the autograd graph
        out, zs = net.forward(x, record=True)
        g = torch.randn(out.shape, generator=gen, dtype=torch.float64)
        grads = torch.autograd.grad((out * g).sum(), zs)
        hs = [x] + [net.apply_act(li, zs[li]) for li in range(L - 1)]
        for li in range(L):
            fwd[k, li] = float((zs[li].detach() ** 2).mean())
            d2 = grads[li].detach() ** 2
            bwd[k, li] = float(d2.mean())
            h2 = hs[li].detach() ** 2
            wgr[k, li] = float((d2.mean(dim=1) * h2.mean(dim=1)).mean())

    def se(a):
        return list(a.std(axis=0, ddof=1) / math.sqrt(n_nets)) if n_nets > 1 else [math.nan] * L

    pred.measured_forward = list(fwd.mean(axis=0))
    pred.measured_backward = list(bwd.mean(axis=0))
    pred.measured_weight_grad = list(wgr.mean(axis=0))
    pred.measured_forward_se = se(fwd)
    pred.measured_backward_se = se(bwd)
    pred.extra.update({"batch": batch, "n_nets": n_nets, "seed": seed})
    return pred


def propagate(widths, activation="tanh", weight_init="lecun_normal", bias_init=None, *,
                measure: bool = True, **kwargs) -> Propagation:
    """:func:`predict_propagation`, then (``measure=True``) :func:`measure_propagation`."""
    pkeys = {"input_second_moment", "activate_last", "param"}
    pred = predict_propagation(widths, activation, weight_init, bias_init,
                               **{k: v for k, v in kwargs.items() if k in pkeys})
    if not measure:
        return pred
    return measure_propagation(widths, activation, weight_init, bias_init, prediction=pred,
                               **kwargs)
