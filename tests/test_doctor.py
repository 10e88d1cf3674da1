"""The init doctor: the three classic failures, healthy nets, and its statistics against theory.

Every model is built with explicit weights drawn from a seeded ``torch.Generator``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import optimize, special
from torch import nn

import initlab
from initlab.diagnostics import DoctorReport, Thresholds, doctor
from initlab.diagnostics.findings import span

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist10k.npz"


# ------------------------------------------------------------------ model builders

def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def mlp(widths, act, weight, bias, g, final_act=None) -> nn.Sequential:
    """Linear layers of ``widths`` with ``act()`` between them; ``weight(shape, g)`` and
    ``bias(shape, fan_in, g)`` give the initial values."""
    layers: list[nn.Module] = []
    for k, (i, o) in enumerate(zip(widths[:-1], widths[1:])):
        lin = nn.Linear(i, o)
        with torch.no_grad():
            lin.weight.copy_(weight((o, i), g))
            lin.bias.copy_(bias((o,), i, g))
        layers.append(lin)
        if k < len(widths) - 2:
            layers.append(act())
        elif final_act is not None:
            layers.append(final_act())
    return nn.Sequential(*layers)


def normal_w(std):
    return lambda shape, g: torch.randn(shape, generator=g) * std


def torch_default_w(shape, g):  # U(+-1/sqrt(fan_in)), torch's nn.Linear default
    return (2 * torch.rand(shape, generator=g) - 1) / math.sqrt(shape[1])


def torch_default_b(shape, fan_in, g):
    return (2 * torch.rand(shape, generator=g) - 1) / math.sqrt(fan_in)


def glorot_w(shape, g):
    return torch.randn(shape, generator=g) * math.sqrt(2.0 / (shape[0] + shape[1]))


def he_w(shape, g):
    return torch.randn(shape, generator=g) * math.sqrt(2.0 / shape[1])


def lecun_w(shape, g):
    return torch.randn(shape, generator=g) / math.sqrt(shape[1])


def zeros_w(shape, g):
    return torch.zeros(shape)


def zeros_b(shape, fan_in, g):
    return torch.zeros(shape)


def normal_b(shape, fan_in, g):
    return torch.randn(shape, generator=g)


def half_on(n, d, g):
    """Nielsen's example: d inputs, exactly half of them 1 and the rest 0."""
    order = torch.rand(n, d, generator=g).argsort(dim=1)
    return (order < d // 2).float()


def mnist_like(n, g):
    """Pixel-like inputs in [0, 1], ~19% ink (as in MNIST)."""
    on = torch.rand(n, 784, generator=g) < 0.19
    return on * (0.5 + 0.5 * torch.rand(n, 784, generator=g))


# ------------------------------------------------------------------ the three classic failures

def test_large_sigmoid_net_is_saturated():
    # Nielsen's "large" init: N(0, 1) weights and biases, 1000 inputs of which 500 are on, so
    # z = sum of 501 N(0,1) terms has std sqrt(501) = 22.4 (Nielsen ch. 3).
    g = gen(1)
    model = mlp([1000, 30, 10], nn.Sigmoid, normal_w(1.0), normal_b, g, final_act=nn.Sigmoid)
    rep = doctor(model, half_on(64, 1000, g))
    sat = [f for f in rep.findings if f.code == "saturation" and 1 in f.layers]
    assert sat and sat[0].severity == "error"
    f = sat[0]
    # the one recommender's answer for sigmoid: Glorot (plan `glorot`, which draws exactly it)
    assert "glorot_uniform" in f.suggest and "glorot_uniform" in f.text and f.plans == ["glorot"]
    assert "too large" in f.text and "1/sqrt(1000)" in f.text
    # Weight-std ratio to LeCun's 1/sqrt(1000): the sample std of 30,000 N(0,1) draws has a
    # relative std of 1/sqrt(2 * 30000) = 0.41%; 6 sigma = 2.5% around sqrt(1000) = 31.6.
    ratio = f.evidence["weight_std"] / f.evidence["lecun_std"]
    assert abs(ratio / math.sqrt(1000) - 1) < 0.025
    # P(|z| > 4.36) for z ~ N(0, 501) is 0.845 (sigmoid' below 5% of its peak beyond 4.36)
    assert rep.layers[0].saturated > 0.6
    assert not rep.ok


def test_deep_tanh_torch_default_vanishes_in_the_backward_pass():
    # 50 tanh layers of width 100, torch's default U(+-1/sqrt(n)) weights and biases:
    # n Var(w) = 1/3, so chi_1 ~ 1/3 and gradients shrink by sqrt(1/3) per layer, while the
    # forward std settles at the fixed point sqrt(Var(b) / (1 - 1/3)) ~ 0.07 set by the biases.
    g = gen(2)
    model = mlp([100] * 51 + [10], nn.Tanh, torch_default_w, torch_default_b, g)
    rep = doctor(model, torch.randn(64, 100, generator=g))
    assert "vanishing_gradient" in rep.codes("error")
    assert "collapse" in rep.codes("error")
    # the forward std alone does not show it
    assert "vanishing_forward" not in rep.codes("warning")
    stds = [s.h_std for s in rep.layers[:-1]]
    assert max(stds[10:]) / min(stds[10:]) < 2
    vg = next(f for f in rep.findings if f.code == "vanishing_gradient")
    # 51 layers is a deep plain stack: the recommender's isometric choice (issue #11)
    assert "orthogonal" in vg.suggest and "critical" in vg.suggest
    assert vg.plans[0] == "isometry" and "critical" in vg.plans
    assert "dynamical isometry" in vg.text and "sigma_b2" in vg.text
    assert "forward pass alone does not show it" in vg.text
    # Slope against theory: from layer 5 to 50 the gradient gains sqrt(3 / E[tanh'(z)^2]) per
    # layer, E[tanh'^2] ~ 1 - 2q ~ 0.99 at the fixed point q ~ 0.005: 45 * log10(sqrt(3/0.99))
    # = 10.83 decades. Per layer the squared norm ratio of a random 100x100 map fluctuates by
    # sqrt(2/100) = 14%, i.e. 0.031 decades; over 45 layers 0.2 decades; 6 sigma = 1.25 decades.
    g5, g50 = rep.layers[4].grad_out_rms, rep.layers[49].grad_out_rms
    decades = math.log10(g50 / g5)
    assert abs(decades - 45 * math.log10(math.sqrt(3 / 0.99))) < 1.25


def test_zero_init_mlp_is_symmetric():
    g = gen(3)
    model = mlp([784, 30, 10], nn.Sigmoid, zeros_w, zeros_b, g)
    rep = doctor(model, mnist_like(64, g))
    sym = [f for f in rep.findings if f.code == "symmetry" and f.severity == "error"]
    assert len(sym) == 1 and sym[0].layers == [1]
    assert "all 30 hidden units identical (zero init)" in sym[0].text
    assert "no gradient can separate them" in sym[0].text
    assert rep.layers[0].unit_groups == 1 and rep.layers[0].symmetric_units == 29
    assert rep.layers[0].duplicate_outputs == 29
    # the zero output layer alone is only noted
    assert all(f.severity == "info" for f in rep.findings if f.layers == [2])


def test_zero_hidden_layer_with_random_layer_above_is_only_noted():
    # Identical units whose outgoing weights differ get different gradients: the first step
    # separates them, so this is information, not an error.
    g = gen(4)
    model = mlp([20, 30, 10], nn.Tanh, glorot_w, zeros_b, g)
    with torch.no_grad():
        model[0].weight.zero_()
    rep = doctor(model, torch.randn(64, 20, generator=g))
    f = next(f for f in rep.findings if f.code == "symmetry")
    assert f.severity == "info" and rep.layers[0].duplicate_units == 29
    assert rep.layers[0].symmetric_units == 0


def test_some_duplicated_units_are_a_warning():
    g = gen(5)
    model = mlp([20, 30, 30, 10], nn.Tanh, glorot_w, zeros_b, g)
    with torch.no_grad():  # unit 1 copies unit 0 in layer 2, and so does its outgoing column
        model[2].weight[1] = model[2].weight[0]
        model[4].weight[:, 1] = model[4].weight[:, 0]
    rep = doctor(model, torch.randn(64, 20, generator=g))
    f = next(f for f in rep.findings if f.code == "symmetry")
    assert f.severity == "warning" and f.layers == [2]
    assert "1 of 30 units" in f.text


def test_conv_zero_init_channels_are_symmetric():
    g = gen(6)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1),
                          nn.ReLU(), nn.Flatten(), nn.Linear(8 * 8 * 8, 10))
    with torch.no_grad():
        for m in model:
            if hasattr(m, "weight"):
                m.weight.copy_(he_w((m.weight.shape[0], m.weight[0].numel()), g).view_as(m.weight))
                m.bias.zero_()
        model[2].weight.zero_()
    rep = doctor(model, torch.randn(16, 3, 8, 8, generator=g))
    assert rep.layers[1].n_units == 8 and rep.layers[1].unit_groups == 1
    assert rep.layers[1].dead == 1.0  # relu(0) has derivative 0 everywhere
    assert any(f.code == "symmetry" and f.severity == "error" and f.layers == [2]
               for f in rep.findings)


# ------------------------------------------------------------------ other failures

def test_small_tanh_weights_vanish_in_the_forward_pass():
    # n Var(w) = 0.3, no bias: near 0 tanh is linear, so the std shrinks by sqrt(0.3) per
    # layer, 10x every 2 / log10(1/0.3) = 3.8 layers.
    g = gen(20)
    model = mlp([100] * 31 + [10], nn.Tanh, normal_w(math.sqrt(0.3 / 100)), zeros_b, g)
    rep = doctor(model, torch.randn(64, 100, generator=g))
    f = next(f for f in rep.findings if f.code == "vanishing_forward")
    assert f.severity == "error" and "10x every" in f.text and "critical" in f.suggest
    per_decade = (f.layers[-1] - f.layers[0]) / f.evidence["decades"]
    # per layer the squared norm ratio fluctuates by sqrt(2/100) = 14%, 0.031 decades, so over
    # 30 layers the total has std 0.17 decades of 7.8: 6 sigma = 13% of the slope
    assert abs(per_decade / (2 / math.log10(1 / 0.3)) - 1) < 0.13


def test_relu_with_unit_normal_weights_explodes():
    g = gen(21)
    model = mlp([100] * 11 + [10], nn.ReLU, normal_w(1.0), zeros_b, g)
    rep = doctor(model, torch.randn(64, 100, generator=g))
    assert {"exploding_forward", "exploding_gradient"} <= rep.codes("error")
    assert "he_normal" in next(f for f in rep.findings if f.code == "exploding_forward").suggest


def test_negative_biases_kill_relu_units():
    g = gen(22)
    model = mlp([100] * 4 + [10], nn.ReLU, he_w, lambda shape, fan_in, g: torch.full(shape, -3.0), g)
    rep = doctor(model, torch.randn(64, 100, generator=g))
    dead = [f for f in rep.findings if f.code == "dead_units" and f.severity == "error"]
    assert dead and "pushed down by the biases (mean -3)" in dead[0].text
    assert rep.layers[1].dead == 1.0


def test_huge_biases_make_a_layer_ignore_its_input():
    # z = Wx + b with Var(Wx) = 1 and b ~ N(0, 100^2): the input accounts for 1e-4 of E[z^2]
    g = gen(24)
    model = mlp([50, 50, 10], nn.Tanh, lecun_w, lambda shape, fan_in, g: 100 * torch.randn(shape, generator=g), g)
    rep = doctor(model, torch.randn(64, 50, generator=g))
    f = next(f for f in rep.findings if f.code == "collapse" and f.layers == [1])
    assert "biases" in f.text and "zero the biases" in f.recommendation
    sat = next(f for f in rep.findings if f.code == "saturation")
    assert "biases are large" in sat.text and "too large" not in sat.text


def test_global_average_pooling_of_noise_is_not_a_collapse():
    # Averaging 32x32 positions of i.i.d. noise probes leaves ~1/1024 of the input-to-input
    # spread: an abrupt drop between two layers, caused by the probe, not by the init.
    g = gen(25)
    convs = [nn.Conv2d(3, 16, 3, padding=1), nn.Conv2d(16, 16, 3, padding=1)]
    head = nn.Linear(16, 10)
    with torch.no_grad():
        for m in [*convs, head]:
            fan_in = m.weight[0].numel()
            m.weight.copy_(torch.randn(m.weight.shape, generator=g) * math.sqrt(2 / fan_in))
            m.bias.zero_()
    model = nn.Sequential(convs[0], nn.ReLU(), convs[1], nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), head)
    rep = doctor(model, torch.randn(16, 3, 32, 32, generator=g))
    assert rep.layers[2].spread / rep.inputs.spread < 0.01  # the drop is there ...
    assert rep.ok, str(rep)                                 # ... and not blamed on the init


def test_overflow_is_an_error():
    g = gen(23)
    # each layer multiplies the std by 30 * sqrt(100 / 2) = 212: float32 overflows (3.4e38) by ~17
    model = mlp([100] * 20 + [10], nn.ReLU, normal_w(30.0), zeros_b, g)
    rep = doctor(model, torch.randn(8, 100, generator=g))
    assert "nonfinite" in rep.codes("error")
    json.loads(rep.to_json())  # inf/NaN became null


# ------------------------------------------------------------------ healthy nets

@pytest.mark.parametrize("act, weight", [(nn.Tanh, glorot_w), (nn.ReLU, he_w), (nn.SELU, lecun_w),
                                         (nn.GELU, he_w)])
def test_well_initialized_mlp_has_no_warning(act, weight):
    g = gen(7)
    model = mlp([20] + [100] * 8 + [10], act, weight, zeros_b, g)
    rep = doctor(model, torch.randn(64, 20, generator=g))
    assert rep.ok, str(rep)
    assert len(rep.layers) == 9


def test_shallow_sigmoid_lecun_is_fine_but_deep_sigmoid_vanishes():
    # Glorot & Bengio 2010: sigmoid' <= 1/4, so at LeCun's scale each layer divides the
    # back-propagated gradient by ~4-5; one hidden layer is fine, eight are not.
    g = gen(7)
    x = torch.randn(64, 20, generator=g)
    shallow = mlp([20, 100, 10], nn.Sigmoid, lecun_w, zeros_b, g)
    assert doctor(shallow, x).ok
    deep = mlp([20] + [100] * 8 + [10], nn.Sigmoid, lecun_w, zeros_b, g)
    rep = doctor(deep, x)
    f = next(f for f in rep.findings if f.code == "vanishing_gradient")
    assert f.severity == "error" and "tanh" in f.recommendation


def test_well_initialized_cnn_with_batchnorm_has_no_warning():
    g = gen(8)
    layers: list[nn.Module] = []
    c = 3
    for _ in range(4):
        conv = nn.Conv2d(c, 16, 3, padding=1, bias=False)
        with torch.no_grad():
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) * math.sqrt(2 / (c * 9)))
        layers += [conv, nn.BatchNorm2d(16), nn.ReLU(inplace=True)]
        c = 16
    head = nn.Linear(16 * 8 * 8, 10)
    with torch.no_grad():
        head.weight.copy_(lecun_w(head.weight.shape, g))
        head.bias.zero_()
    model = nn.Sequential(*layers, nn.Flatten(), head)
    rep = doctor(model, torch.randn(32, 3, 8, 8, generator=g))
    assert rep.ok, str(rep)
    assert [s.activation for s in rep.layers] == ["relu"] * 4 + [None]
    assert rep.layers[0].n_units == 16 and rep.layers[0].activation_module == "2"


@pytest.mark.skipif(not MNIST.exists(), reason=f"real MNIST digits not found at {MNIST}")
def test_nielsen_default_vs_large_on_real_mnist():
    images = np.load(MNIST)["images"][:100].reshape(100, 784).astype(np.float32) / 255.0
    x = torch.from_numpy(images)
    g = gen(9)
    large = mlp([784, 30, 10], nn.Sigmoid, normal_w(1.0), normal_b, g, final_act=nn.Sigmoid)
    default = mlp([784, 30, 10], nn.Sigmoid, lecun_w, normal_b, g, final_act=nn.Sigmoid)
    rl, rd = doctor(large, x), doctor(default, x)
    assert "saturation" in rl.codes("warning")
    assert "saturation" not in rd.codes("warning")
    assert rl.layers[0].saturated > 10 * max(rd.layers[0].saturated, 1e-3)


# ------------------------------------------------------------------ statistics against theory

def _sigmoid_threshold(frac=0.05):
    """|z| beyond which sigmoid'(z) < frac * sigmoid'(0)."""
    return optimize.brentq(lambda z: special.expit(z) * (1 - special.expit(z)) - frac * 0.25, 0, 20)


def test_saturated_fraction_matches_the_gaussian_tail():
    # Inputs x_a = c e_a make z[a, j] = c W[j, a]: B * U independent N(0, (c sigma)^2) entries.
    # The saturated fraction estimates p = P(|z| > t) with std sqrt(p (1 - p) / (B U)).
    B, U, scale = 64, 500, 5.0
    g = gen(10)
    lin = nn.Linear(B, U)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(U, B, generator=g))
        lin.bias.zero_()
    rep = doctor(nn.Sequential(lin, nn.Sigmoid(), nn.Linear(U, 1)), scale * torch.eye(B))
    t = _sigmoid_threshold()
    assert abs(t - 4.3565) < 1e-3
    p = 2 * special.ndtr(-t / scale)
    sd = math.sqrt(p * (1 - p) / (B * U))
    assert abs(rep.layers[0].saturated - p) < 6 * sd


def _old_lab_saturation(a, act):
    """The lab's saturation test before the registry had bounds (lab/train.py, compare_report)."""
    return (float(np.mean(np.abs(a) > 0.99)) if act == "tanh" else
            float(np.mean((a < 0.01) | (a > 0.99))) if act == "sigmoid" else None)


@pytest.mark.parametrize("act", ["tanh", "sigmoid"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_output_saturation_is_the_old_lab_formula_for_tanh_and_sigmoid(act, dtype):
    from initlab.core.activations import activation
    from initlab.diagnostics.stats import output_saturation

    rng = np.random.default_rng(0)
    f = activation(act)
    ties = [0.99, 0.01, -0.99, 1.0, 0.0, -1.0, np.nextafter(0.99, 1), np.nextafter(0.01, 0)]
    for scale in (0.5, 2.0, 5.0):
        h = np.concatenate([f(rng.normal(0, scale, 20000)), ties]).astype(dtype)
        got = output_saturation(h, act)
        assert got == _old_lab_saturation(h, act) and 0 < got < 1
        assert output_saturation(torch.from_numpy(h), act) == got  # a CPU tensor too


def test_output_saturation_counts_every_bounded_activation_and_none_for_unbounded():
    """Within 0.01 of a bound, checked on the input side: hardtanh |u| > 0.99, softsign
    |u| > 99, hardsigmoid |u| > 2.94, relu6 u < 0.01 or u > 5.99."""
    from initlab.core.activations import activation
    from initlab.diagnostics.stats import output_saturation

    rng = np.random.default_rng(1)
    cases = {"hardtanh": (2.0, lambda u: np.abs(u) > 0.99),
             "softsign": (200.0, lambda u: np.abs(u) > 99.0),
             "hardsigmoid": (4.0, lambda u: np.abs(u) > 2.94),
             "relu6": (5.0, lambda u: (u < 0.01) | (u > 5.99))}
    for name, (scale, near) in cases.items():
        u = rng.normal(0, scale, 50000)
        got = output_saturation(activation(name)(u), name)
        assert got == pytest.approx(float(np.mean(near(u))), abs=1e-4) and 0.05 < got < 0.95
    u = rng.normal(0, 3.0, 1000)
    for name in ("relu", "gelu", "linear", "elu", "silu", "softplus"):
        assert output_saturation(activation(name)(u), name) is None
    assert output_saturation(np.zeros(0), "tanh") is None
    assert output_saturation(np.array([0.5, 0.9]), "tanh", margin=0.2) == 0.5


def test_dead_fraction_matches_theory():
    # z[a, j] = c W[j, a] + beta, all independent N(beta, c^2): a unit is dead when all B of its
    # entries are <= 0, probability Phi(-beta / c)^B; U units give std sqrt(P (1 - P) / U).
    B, U, c, beta = 4, 2000, 1.0, -0.5
    g = gen(11)
    lin = nn.Linear(B, U)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(U, B, generator=g))
        lin.bias.fill_(beta)
    for inplace in (False, True):
        rep = doctor(nn.Sequential(lin, nn.ReLU(inplace=inplace), nn.Linear(U, 1)), c * torch.eye(B))
        P = special.ndtr(-beta / c) ** B
        assert abs(rep.layers[0].dead - P) < 6 * math.sqrt(P * (1 - P) / U)


def test_spread_and_correlation_of_iid_and_identical_inputs():
    g = gen(12)
    B, D = 64, 4000
    lin = nn.Linear(D, D // 10, bias=False)
    with torch.no_grad():
        lin.weight.copy_(lecun_w(lin.weight.shape, g))
    rep = doctor(lin, torch.randn(B, D, generator=g))
    # For iid N(0,1) inputs E[spread] = (B - 1) / B; the mean of B*D squared normals has relative
    # std sqrt(2 / (B D)) = 0.28%, the batch variances likewise: 6 sigma ~ 2.5% together.
    assert abs(rep.inputs.spread - (B - 1) / B) < 0.025
    # A pair's cosine has std 1/sqrt(D); the mean over pairs is no worse: |c| < 6 / sqrt(D).
    assert abs(rep.inputs.example_corr) < 6 / math.sqrt(D)
    same = torch.randn(1, D, generator=g).repeat(B, 1)
    rep2 = doctor(lin, same)
    assert rep2.inputs.spread < 1e-12 and rep2.layers[0].spread < 1e-12
    assert abs(rep2.layers[0].example_corr - 1) < 1e-9


def test_gradients_match_autograd():
    # micrograd-style: PyTorch itself is the oracle for dL/dz and dL/dW.
    g = gen(13)
    model = mlp([10, 20, 20, 3], nn.Tanh, glorot_w, normal_b, g)
    x = torch.randn(8, 10, generator=g)
    rep = doctor(model, x)
    zs = []
    h = x
    for m in model:
        h = m(h)
        if isinstance(m, nn.Linear):
            h.retain_grad()
            zs.append(h)
    h.sum().backward()
    for s, z, lin in zip(rep.layers, zs, [model[0], model[2], model[4]]):
        assert s.grad_out_rms == pytest.approx(float(z.grad.double().square().mean().sqrt()), rel=1e-6)
        assert s.weight_grad_norm == pytest.approx(float(lin.weight.grad.double().norm()), rel=1e-6)
        assert s.z_std == pytest.approx(float(z.detach().double().std(unbiased=False)), rel=1e-6)


def test_loss_fn_and_target_are_used():
    g = gen(14)
    model = mlp([10, 20, 5], nn.ReLU, he_w, zeros_b, g)
    x, y = torch.randn(16, 10, generator=g), torch.randint(5, (16,), generator=g)
    rep = doctor(model, x, loss_fn=nn.functional.cross_entropy, target=y)
    with torch.no_grad():
        expected = float(nn.functional.cross_entropy(model(x), y))
    assert rep.meta["loss"] == "cross_entropy"
    assert rep.meta["loss_value"] == pytest.approx(expected, rel=1e-6)


def test_functional_activation_is_found_by_the_description(monkeypatch):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(50, 40), nn.Linear(40, 3)

        def forward(self, x):
            return self.b(torch.tanh(self.a(x)))

    g = gen(15)
    net = Net()
    with torch.no_grad():
        net.a.weight.copy_(normal_w(1.0)(net.a.weight.shape, g))  # z std ~ sqrt(50) = 7
    x = torch.randn(64, 50, generator=g)
    rep = doctor(net, x)  # the probe sees torch.tanh in forward
    assert rep.layers[0].activation == "tanh" and rep.layers[0].activation_module == "(functional)"
    assert rep.layers[1].activation is None and rep.layers[1].is_output
    assert "saturation" in rep.codes("error")
    # P(|z| > 2.18) for z ~ N(0, 50): 0.758. Sampling error: binomial over 64 x 40 entries
    # (0.0084) and the 40 units' row norms (chi^2_50: std of p per unit 0.023, /sqrt(40) =
    # 0.0037); together 0.009, 6 sigma = 0.055
    assert abs(rep.layers[0].saturated - 0.758) < 0.055
    # without a description, the user names it, and the report says what it could not see
    import importlib

    D = importlib.import_module("initlab.modelinit.describe")

    def no_description(*a, **k):
        raise RuntimeError("cannot trace")

    monkeypatch.setattr(D, "describe", no_description)
    blind = doctor(net, x)
    assert blind.layers[0].saturated is None
    assert any("no model description" in n and "torch.relu" in n for n in blind.notes)
    assert "no model description" in str(blind)
    rep = doctor(net, x, activation="tanh")
    assert rep.layers[0].activation == "tanh" and rep.layers[1].activation is None
    assert "saturation" in rep.codes("error")


def test_reused_modules_are_reported_per_call():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.out, self.act = nn.Linear(16, 16), nn.Linear(16, 2), nn.Tanh()

        def forward(self, x):
            return self.out(self.act(self.fc(self.act(self.fc(x)))))

    rep = doctor(Net(), torch.randn(8, 16, generator=gen(16)))
    assert [s.name for s in rep.layers] == ["fc", "fc (call 2)", "out"]
    assert [s.activation for s in rep.layers] == ["tanh", "tanh", None]


def test_findings_thresholds_are_configurable():
    g = gen(17)
    model = mlp([20] + [100] * 8 + [10], nn.Tanh, glorot_w, zeros_b, g)
    x = torch.randn(64, 20, generator=g)
    strict = Thresholds(decades_warning=0.1, decades_error=10.0)
    assert "vanishing_forward" in doctor(model, x, thresholds=strict).codes("warning")


# ------------------------------------------------------------------ output formats

def test_report_as_dict_json_table_and_plot(tmp_path):
    g = gen(18)
    model = mlp([1000, 30, 10], nn.Sigmoid, normal_w(1.0), normal_b, g)
    rep = doctor(model, half_on(32, 1000, g))
    assert isinstance(rep, DoctorReport)
    d = json.loads(rep.to_json())
    assert d == json.loads(json.dumps(rep.to_dict()))
    assert [layer["index"] for layer in d["layers"]] == [1, 2]
    assert d["findings"][0]["severity"] == "error" and d["findings"][0]["text"]
    assert len(d["layers"][0]["hist_counts"]) == 40 and sum(d["layers"][0]["hist_counts"]) == 32 * 30
    text = str(rep)
    assert "|dL/dz|" in text and "[error] layer 1:" in text
    assert json.loads(rep.save_json(tmp_path / "rep.json").read_text()) == d
    path = rep.plot(tmp_path / "sub" / "doctor.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_suggested_names_exist():
    # every suggestion is a catalog initializer (or initlab.lsuv), every plan an apply plan
    g = gen(19)
    broken = [mlp([1000, 30, 10], nn.Sigmoid, normal_w(1.0), normal_b, g),
              mlp([100] * 31 + [10], nn.Tanh, torch_default_w, torch_default_b, g),
              mlp([100] * 11 + [10], nn.ReLU, normal_w(1.0), zeros_b, g),
              mlp([100] * 9 + [10], nn.GELU, normal_w(0.01), zeros_b, g)]
    x = [half_on(16, 1000, g)] + [torch.randn(16, 100, generator=g)] * 3
    plans = initlab.plans.names()
    seen = set()
    for model, xb in zip(broken, x):
        for f in doctor(model, xb).findings:
            for name in f.suggest:
                assert name in initlab.names() or callable(getattr(initlab, name, None)), name
            assert set(f.plans) <= set(plans), f.plans
            seen.update(f.suggest)
    assert {"glorot_uniform", "critical", "he_normal", "lsuv"} <= seen


@pytest.mark.slow
@pytest.mark.parametrize("plan", ["critical", "isometry"])
def test_applying_a_suggested_plan_clears_the_findings(plan):
    # end to end with initlab.apply: the deep tanh net's suggested plans fix it (a plain stack
    # of 52 layers: the recommender's deep choice, isometry, and the edge of chaos)
    g = gen(2)
    model = mlp([100] * 51 + [10], nn.Tanh, torch_default_w, torch_default_b, g)
    x = torch.randn(64, 100, generator=g)
    before = doctor(model, x)
    assert plan in {p for f in before.findings for p in f.plans}
    initlab.apply(model, plan, seed=0)
    assert doctor(model, x).ok


def test_lazy_access_from_the_package():
    assert initlab.doctor is doctor


def test_span_formatting():
    assert span([3]) == "layer 3"
    assert span([1, 2, 3]) == "layers 1-3"
    assert span([1, 4, 5, 6, 9]) == "layers 1, 4-6, 9"


def test_bad_arguments_have_clear_errors():
    lin = nn.Linear(3, 2)
    with pytest.raises(TypeError, match="`model` must be a torch.nn.Module"):
        doctor(lin.state_dict(), torch.randn(2, 3))
    with pytest.raises(TypeError, match="`batch` must be a tensor"):
        doctor(lin, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="`activation` must be one of"):
        doctor(lin, torch.randn(2, 3), activation="tanhh")
    with pytest.raises(ValueError, match="`loss_fn` must return a scalar tensor"):
        doctor(lin, torch.randn(2, 3), loss_fn=lambda out: out)
