"""Singular values of a network's Jacobians at initialization, measured with torch autograd.

For an MLP ``h_l = phi(W_l h_{l-1} + b_l)`` the input-output Jacobian is
``J = prod_l D_l W_l`` with ``D_l = diag(phi'(z_l))``, and the layer-to-layer Jacobian is
``J_l = dh_l/dh_{l-1} = D_l W_l``. *Dynamical isometry* (Saxe, McClelland, Ganguli 2014;
Pennington, Schoenholz, Ganguli 2017, "Resurrecting the sigmoid in deep learning through dynamical
isometry: theory and practice"; Xiao, Bahri, Sohl-Dickstein, Schoenholz, Pennington 2018,
"Dynamical Isometry and a Mean Field Theory of CNNs") means every singular value of ``J`` is near 1:
the mean of ``s^2`` is 1 (that is ``chi_1 = 1``, criticality) *and* their spread is small.
Pennington et al. show that orthogonal weights with tanh at the critical point with small ``q*``
achieve it, while for ReLU (and for Gaussian weights) the variance of ``s^2`` grows linearly with
depth. Glorot & Bengio 2010 report the average singular value of the layer-to-layer Jacobians
(about 0.5 for their "standard" init vs 0.8 for the "normalized" one).

Two methods:

* ``"exact"``: the full Jacobian per sample input (``torch.func.jacrev``) and all its singular
  values (``torch.linalg.svdvals``); cost ~ width^2 * depth * width per input.
* ``"randomized"``: Hutchinson estimates with ``n_probes`` Gaussian probes ``v`` per input:
  ``tr(J^T J) = E ||J v||^2`` and ``tr((J^T J)^2) = E ||J^T J v||^2`` (``J v`` and ``J^T w`` by
  reverse-mode autograd only), giving the mean and variance of ``s^2`` over the
  ``k = min(n_in, n_out)`` singular values; ``s_max`` by 30 steps of power iteration on
  ``J^T J`` (from below); ``s_min`` is not estimated (nan).

``"auto"`` is exact when every width is <= ``EXACT_MAX_WIDTH``.

Summary of the squared singular values ``s^2`` pooled over the sample inputs: ``mean_s2``,
``var_s2``, ``std_s2``, ``spread = var_s2 / mean_s2^2`` (scale-free: 0 for an isometry up to scale),
``mean_s`` (Glorot's average singular value), ``s_max``, ``s_min`` and ``condition = s_max/s_min``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from ..core.validation import check_choice, check_scalar, fail
from ._net import check_widths

EXACT_MAX_WIDTH = 512


@dataclass
class SpectrumSummary:
    """Statistics of the squared singular values (see module docstring)."""

    mean_s2: float
    var_s2: float
    mean_s: float
    s_max: float
    s_min: float
    k: int  # singular values per Jacobian

    @property
    def std_s2(self) -> float:
        return math.sqrt(max(self.var_s2, 0.0))

    @property
    def spread(self) -> float:
        return self.var_s2 / self.mean_s2**2 if self.mean_s2 > 0 else math.inf

    @property
    def condition(self) -> float:
        return self.s_max / self.s_min if self.s_min > 0 else math.inf

    def as_dict(self) -> dict:
        d = asdict(self)
        d.update(std_s2=self.std_s2, spread=self.spread, condition=self.condition)
        return d


def summarize(s: np.ndarray) -> SpectrumSummary:
    """Summary of singular values ``s`` (any shape; pooled)."""
    s = np.asarray(s, dtype=np.float64)
    s2 = s.ravel() ** 2
    return SpectrumSummary(float(s2.mean()), float(s2.var()), float(s.mean()), float(s.max()),
                           float(s.min()), int(s.shape[-1]))


@dataclass
class JacobianSpectrum:
    """Input-output summary, per-layer summaries (layer-to-layer Jacobians) and, for the exact
    method, the input-output singular values (``(n_inputs, k)``)."""

    widths: list[int]
    activation: str
    method: str
    input_output: SpectrumSummary
    layers: list[SpectrumSummary]
    singular_values: np.ndarray | None = None
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"widths": self.widths, "activation": self.activation, "method": self.method,
                "input_output": self.input_output.as_dict(),
                "layers": [s.as_dict() for s in self.layers], **self.extra}

    def _repr_html_(self) -> str:  # Jupyter
        from ..report.notebook import theory_html
        from .plots import plot_jacobian_spectrum

        return theory_html(self, plot_jacobian_spectrum(self))


def _exact(fn, x):
    import torch

    jac = torch.func.jacrev(fn)(x)
    return torch.linalg.svdvals(jac).numpy()


def _jvp_vjp(fn, x):
    """``(Jv, J^T w)`` closures at ``x``, both in reverse mode: ``J^T u`` is built with
    ``create_graph`` for a dummy ``u``, and ``J v = d(v . J^T u)/du`` (the "double-vjp" trick; it
    avoids forward-mode AD, whose decompositions go through the deprecated ``torch.jit``)."""
    import torch

    x = x.detach().requires_grad_(True)
    y = fn(x)
    u = torch.zeros_like(y, requires_grad=True)
    (jtu,) = torch.autograd.grad(y, x, grad_outputs=u, create_graph=True)

    def jv(v):
        return torch.autograd.grad(jtu, u, grad_outputs=v, retain_graph=True)[0].detach()

    def jtw(w):
        return torch.autograd.grad(y, x, grad_outputs=w, retain_graph=True)[0].detach()

    return jv, jtw


def _randomized(fn, x, n_probes: int, gen, k: int):
    import torch

    n_in = x.shape[0]
    jv, jtw = _jvp_vjp(fn, x)
    tr, tr2 = 0.0, 0.0
    for _ in range(n_probes):
        v = torch.randn(n_in, generator=gen, dtype=x.dtype)
        a = jv(v)
        tr += float((a**2).sum())
        tr2 += float((jtw(a) ** 2).sum())
    tr /= n_probes
    tr2 /= n_probes
    mean_s2 = tr / k
    var_s2 = max(tr2 / k - mean_s2**2, 0.0)
    v = torch.randn(n_in, generator=gen, dtype=x.dtype)
    v = v / v.norm()
    lam = 0.0
    for _ in range(30):  # power iteration on J^T J: lam -> s_max^2 from below
        w = jtw(jv(v))
        lam = float(w.norm())
        if lam == 0:
            break
        v = w / lam
    return mean_s2, var_s2, math.sqrt(lam)


def jacobian_spectrum(widths, activation="tanh", weight_init="lecun_normal", bias_init=None, *,
                      n_inputs: int = 4, seed: int = 0, input_second_moment: float = 1.0,
                      method: str = "auto", n_probes: int = 16, activate_last: bool = True,
                      layers: bool = True, param: float | None = None,
                      progress: bool = False) -> JacobianSpectrum:
    """Singular values of the input-output and layer-to-layer Jacobians at initialization.

    The network (see :func:`initlab.theory.propagation.predict_propagation` for ``weight_init`` /
    ``bias_init``) applies ``phi`` after every layer, the last included (``activate_last=True``,
    as in Pennington et al. 2017). Sample inputs ``x ~ N(0, input_second_moment I)``; use ``q*``
    of the mean-field fixed point to start at equilibrium. Parameters, inputs and probes come from
    ``torch.Generator().manual_seed(seed)``. See the module docstring for methods and summaries.
    """
    import torch
    from tqdm.auto import tqdm

    from ._net import build_mlp

    ws = check_widths(widths)
    L = len(ws) - 1
    n_inputs = check_scalar(n_inputs, "n_inputs", min_val=1, integer=True)
    n_probes = check_scalar(n_probes, "n_probes", min_val=1, integer=True)
    seed = check_scalar(seed, "seed", min_val=0, integer=True)
    m0 = check_scalar(input_second_moment, "input_second_moment", min_val=0.0, include_min=False)
    check_choice(method, "method", ("auto", "exact", "randomized"))
    if method == "auto":
        method = "exact" if max(ws) <= EXACT_MAX_WIDTH else "randomized"
    gen = torch.Generator().manual_seed(seed)
    net = build_mlp(ws, activation, weight_init, bias_init, generator=gen,
                    activate_last=activate_last, param=param)
    xs = torch.randn(n_inputs, ws[0], generator=gen, dtype=torch.float64) * math.sqrt(m0)

    def layer_fn(li):
        return lambda h: net.apply_act(li, net.layer(li, h))

    io_s, io_stats = [], []
    layer_s: list[list] = [[] for _ in range(L)]
    layer_stats: list[list] = [[] for _ in range(L)]
    for i in tqdm(range(n_inputs), disable=not progress, desc="inputs"):
        x = xs[i]
        hs = [x]
        with torch.no_grad():
            for li in range(L):
                hs.append(layer_fn(li)(hs[-1]))
        if method == "exact":
            io_s.append(_exact(net.forward, x))
            if layers:
                for li in range(L):
                    layer_s[li].append(_exact(layer_fn(li), hs[li]))
        else:
            io_stats.append(_randomized(net.forward, x, n_probes, gen, min(ws[0], ws[-1])))
            if layers:
                for li in range(L):
                    layer_stats[li].append(_randomized(layer_fn(li), hs[li], n_probes, gen,
                                                      min(ws[li], ws[li + 1])))
    if method == "exact":
        sv = np.stack(io_s)
        io = summarize(sv)
        per = [summarize(np.stack(s)) for s in layer_s] if layers else []
    else:
        sv = None
        io = _combine(io_stats, min(ws[0], ws[-1]))
        per = [_combine(s, min(ws[li], ws[li + 1])) for li, s in enumerate(layer_stats)] \
            if layers else []
    return JacobianSpectrum(ws, getattr(activation, "__name__", str(activation)), method, io, per,
                            sv, {"n_inputs": n_inputs, "seed": seed,
                                 "input_second_moment": m0})


def _combine(stats, k: int) -> SpectrumSummary:
    """Pool randomized per-input (mean_s2, var_s2, s_max) estimates (law of total variance)."""
    means = np.array([s[0] for s in stats])
    vars_ = np.array([s[1] for s in stats])
    mean = float(means.mean())
    var = float(vars_.mean() + means.var())
    return SpectrumSummary(mean, var, math.nan, float(max(s[2] for s in stats)), math.nan, k)


# ----------------------------------------------------------------------------- real models
def hidden_segment(model) -> tuple[int, int]:
    """``(start, stop)``: the slice of an ``nn.Sequential`` lab model from the first hidden
    activation's output to the last one's (activation modules as the registry knows them,
    :func:`initlab.core.activations.lookup_module`) (``model[start:stop]`` maps hidden layer 1 to hidden
    layer L, the part whose Jacobian is square: ``width x width`` for an MLP)."""
    from ..core.activations import lookup_module

    children = list(model.children()) if hasattr(model, "children") else []
    acts = [i for i, m in enumerate(children) if lookup_module(m) is not None]
    if len(acts) < 2:
        raise fail("model", "must be an nn.Sequential with at least two top-level hidden "
                   "activation modules (a lab model of depth >= 2)", type(model).__name__,
                   "pass start=/stop= to name the slice of the model to differentiate.")
    return acts[0] + 1, acts[-1] + 1


def model_jacobian_spectrum(model, x, *, start: int | None = None, stop: int | None = None,
                            method: str = "exact", n_probes: int = 16, seed: int = 0,
                            dtype=None) -> JacobianSpectrum:
    """Singular values of the Jacobian of a real torch model (an ``nn.Sequential``) at the
    inputs ``x`` (a batch, ``(n, ...)``), one Jacobian per input.

    The Jacobian is of the slice ``model[start:stop]`` at ``model[:start](x_i)``; by default
    (:func:`hidden_segment`) from the first hidden layer's output to the last hidden layer's
    output: ``J = prod_{l=2..L} D_l W_l``, the product of depth - 1 layer-to-layer Jacobians that
    Pennington, Schoenholz, Ganguli 2017 (fig. 1, 3) study. (The full input-output Jacobian of a
    classifier has only ``n_classes`` singular values and is dominated by the input and readout
    layers.) ``start=0, stop=len(model)`` gives the input-output Jacobian.

    ``method``: ``"exact"`` (``jacrev`` and every singular value; cost ~ depth * width^3 per
    input) or ``"randomized"`` (the Hutchinson estimates of the module docstring). ``dtype``:
    the precision of the computation (default float64, on a copy of the model: at depth 1000 the
    singular values of Gaussian nets span hundreds of decades). The model is left as it was.
    """
    import copy

    import torch

    check_choice(method, "method", ("exact", "randomized"))
    n_probes = check_scalar(n_probes, "n_probes", min_val=1, integer=True)
    seed = check_scalar(seed, "seed", min_val=0, integer=True)
    if not isinstance(model, torch.nn.Sequential):
        raise fail("model", "must be an nn.Sequential (a lab model)", type(model).__name__,
                   "wrap the layers in nn.Sequential, or use jacobian_spectrum(widths, ...).")
    if start is None or stop is None:
        d_start, d_stop = hidden_segment(model)
        start = d_start if start is None else start
        stop = d_stop if stop is None else stop
    if not 0 <= start < stop <= len(model):
        raise fail("start/stop", f"must satisfy 0 <= start < stop <= {len(model)}",
                   (start, stop), "pick a slice of the model's layers.")
    dtype = torch.float64 if dtype is None else dtype
    net = copy.deepcopy(model).to(dtype).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    head, seg = net[:start], net[start:stop]
    assert isinstance(seg, torch.nn.Sequential)  # a slice of one is (torch's stub says Module)
    with torch.no_grad():
        hs = head(torch.as_tensor(x).to(dtype))
    shape = hs.shape[1:]

    def fn(h):  # one flat input -> one flat output
        return seg(h.reshape(1, *shape)).reshape(-1)

    gen = torch.Generator().manual_seed(seed)
    flat = hs.reshape(len(hs), -1)
    n_in = flat.shape[1]
    with torch.no_grad():
        n_out = fn(flat[0]).numel()
    k = min(n_in, n_out)
    if method == "exact":
        sv = np.stack([_exact(fn, h) for h in flat])
        io = summarize(sv)
    else:
        sv = None
        io = _combine([_randomized(fn, h, n_probes, gen, k) for h in flat], k)
    act = model[start - 1] if start > 0 else None
    return JacobianSpectrum([n_in, n_out], type(act).__name__ if act is not None else "",
                            method, io, [], sv,
                            {"n_inputs": len(flat), "seed": seed, "start": start, "stop": stop,
                             "depth": sum(isinstance(m, torch.nn.Linear | torch.nn.Conv1d |
                                                     torch.nn.Conv2d) for m in seg)})
