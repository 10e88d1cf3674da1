"""Fans and gains: torch's values exactly, numeric gains against reference values and Monte Carlo."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import initlab
from initlab.core.activations import ACTIVATION_NAMES, activation, gaussian_expectation


@pytest.mark.parametrize(
    "shape", [(7, 5), (16, 3, 3), (16, 8, 3, 3), (4, 2, 3, 3, 3), (1, 1), (10, 1, 5)], ids=str
)
def test_fans_match_torch(shape):
    t = torch.empty(shape)
    expected = torch.nn.init._calculate_fan_in_and_fan_out(t)
    assert initlab.fans(shape) == expected


def test_fans_layouts_and_groups():
    assert initlab.fans((3, 3, 32, 64), layout="jax") == (32 * 9, 64 * 9)
    # grouped conv Conv2d(32, 64, 3, groups=4): weight (64, 8, 3, 3): each unit sees 8*9 inputs
    assert initlab.fans(tuple(torch.nn.Conv2d(32, 64, 3, groups=4).weight.shape))[0] == 72
    # ConvTranspose2d(16, 8, 3): weight (16, 8, 3, 3)
    assert initlab.fans((16, 8, 3, 3), layout="torch_transposed") == (16 * 9, 8 * 9)
    assert initlab.fans((16, 8, 3, 3)) == (8 * 9, 16 * 9)  # torch's own (swapped) reading


@pytest.mark.parametrize("bad", [(), (5,)])
def test_fans_need_two_dims(bad):
    with pytest.raises(ValueError, match=r"`shape` must have at least 2 dimensions.*fans="):
        initlab.fans(bad)


def test_one_d_with_fans_needing_initializer_errors_and_with_fans_works():
    with pytest.raises(ValueError, match=r"`shape` has 1 dimension\(s\), and `he_normal` needs"):
        initlab.he_normal().sample((10,), seed=0)
    x = initlab.he_normal().sample((10,), seed=0, fans=(50, 10))
    assert x.shape == (10,)
    with pytest.raises(ValueError, match=r"`fans\[0\] \(fan_in\)` must be >= 1"):
        initlab.he_normal().sample((10,), seed=0, fans=(0, 10))


TORCH_NAMES = ["linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
               "conv_transpose3d", "sigmoid", "tanh", "relu", "leaky_relu", "selu"]


@pytest.mark.parametrize("name", TORCH_NAMES)
def test_calculate_gain_equals_torch(name):
    assert initlab.calculate_gain(name) == torch.nn.init.calculate_gain(name)


@pytest.mark.parametrize("slope", [0.0, 0.01, 0.2, 1.0, 3])
def test_leaky_relu_gain_equals_torch(slope):
    assert initlab.calculate_gain("leaky_relu", slope) == torch.nn.init.calculate_gain("leaky_relu", slope)


def test_calculate_gain_unknown_names_the_fix():
    with pytest.raises(ValueError, match=r"`nonlinearity` must be one of .*'gelu'.*initlab.gain"):
        initlab.calculate_gain("gelu")


@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_relu_gain_is_sqrt2_and_identity_is_1(direction):
    assert initlab.gain("relu", direction=direction) == pytest.approx(math.sqrt(2), abs=1e-6)
    assert initlab.gain("linear", direction=direction) == pytest.approx(1.0, abs=1e-6)
    assert initlab.gain("relu", direction=direction, q=4.0) == pytest.approx(math.sqrt(2), abs=1e-6)


def test_odd_gauss_hermite_would_get_relu_backward_wrong():
    """The pitfall the kink-splitting avoids: a 201-node rule has a node at 0, weighting f'(0)."""
    x, w = np.polynomial.hermite_e.hermegauss(201)
    naive = np.sum(w * (x >= 0)) / np.sqrt(2 * np.pi)  # derivative taken as 1 at the kink
    assert 1 / math.sqrt(naive) == pytest.approx(1.3, abs=0.2)
    assert abs(1 / math.sqrt(naive) - math.sqrt(2)) > 0.05


@pytest.mark.parametrize(
    "name, direction, value",
    [("tanh", "forward", 1.59254), ("gelu", "forward", 1.53353), ("gelu_tanh", "forward", 1.53358),
     ("silu", "forward", 1.67653), ("tanh", "backward", 1.46741)],
)
def test_reference_gains(name, direction, value):
    assert initlab.gain(name, direction=direction) == pytest.approx(value, abs=1e-5)


@pytest.mark.parametrize("name", [n for n in ACTIVATION_NAMES])
def test_gaussian_expectations_match_monte_carlo(name):
    """E[f(z)^2] and E[f'(z)^2] by quadrature vs 10^6 Monte Carlo draws (6 s.e.)."""
    act = activation(name)
    z = np.random.default_rng(0).standard_normal(1_000_000) * 1.5
    for g in (lambda x: act.f(x) ** 2, lambda x: act.df(x) ** 2):
        vals = g(z)
        mc, se = vals.mean(), vals.std() / math.sqrt(z.size)
        quad = gaussian_expectation(g, 1.5**2, act.kinks)
        assert abs(quad - mc) <= 6 * se + 1e-12


def test_gain_accepts_callable_and_torch_gelu_matches_name():
    def my_relu(x):
        return np.maximum(x, 0)

    assert initlab.gain(my_relu) == pytest.approx(math.sqrt(2), abs=1e-6)
    # the name 'gelu' is torch's exact GELU
    z = torch.linspace(-4, 4, 101, dtype=torch.float64)
    np.testing.assert_allclose(activation("gelu")(z.numpy()), torch.nn.functional.gelu(z).numpy(),
                               atol=1e-12)
    np.testing.assert_allclose(activation("gelu_tanh")(z.numpy()),
                               torch.nn.functional.gelu(z, approximate="tanh").numpy(), atol=1e-12)
    np.testing.assert_allclose(activation("selu")(z.numpy()), torch.selu(z).numpy(), atol=1e-12)
    np.testing.assert_allclose(activation("mish")(z.numpy()), torch.nn.functional.mish(z).numpy(),
                               atol=1e-12)


def test_derivatives_match_autograd():
    z = torch.linspace(-3.7, 3.3, 57, dtype=torch.float64, requires_grad=True)
    fns = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "gelu": torch.nn.functional.gelu,
           "silu": torch.nn.functional.silu, "mish": torch.nn.functional.mish,
           "softplus": torch.nn.functional.softplus, "elu": torch.nn.functional.elu,
           "selu": torch.selu,
           "gelu_tanh": lambda x: torch.nn.functional.gelu(x, approximate="tanh")}
    for name, fn in fns.items():
        (g,) = torch.autograd.grad(fn(z).sum(), z)
        np.testing.assert_allclose(activation(name).df(z.detach().numpy()), g.numpy(), atol=1e-10,
                                   err_msg=name)


@pytest.mark.parametrize("bad, match", [
    ({"q": -1.0}, r"`q` must be > 0.0"),
    ({"q": float("nan")}, r"`q` must be a finite number"),
    ({"direction": "sideways"}, r"`direction` must be one of 'forward', 'backward'"),
])
def test_gain_bad_input(bad, match):
    with pytest.raises(ValueError, match=match):
        initlab.gain("tanh", **bad)


def test_unknown_activation():
    with pytest.raises(ValueError, match=r"`activation` must be one of .*got 'swishy'"):
        initlab.gain("swishy")
