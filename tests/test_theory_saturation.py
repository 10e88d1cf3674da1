"""Saturation: derivatives, slowdown ratios, saturated region and fraction (with Monte Carlo)."""

import math

import numpy as np
import pytest

from initlab.core.validation import InitlabError
from initlab.theory import (
    binary_inputs,
    derivative,
    saturated_fraction,
    saturated_set,
    slowdown_ratio,
    weighted_input,
)


def test_sigmoid_derivative_values():
    # s'(x) = s(x)(1 - s(x)); reference values from references.md
    assert derivative("sigmoid", 0.0) == pytest.approx(0.25, rel=1e-14)
    assert derivative("sigmoid", 2.0) == pytest.approx(0.104994, rel=1e-5)
    assert derivative("sigmoid", 10.0) == pytest.approx(4.5396e-5, rel=1e-4)
    assert derivative("tanh", 0.0) == pytest.approx(1.0)
    np.testing.assert_allclose(derivative("tanh", [0.5, -0.5]), 1 - np.tanh(0.5) ** 2)


def test_slowdown_ratios_exact():
    assert round(slowdown_ratio(2, 10, "sigmoid"), 1) == 2312.8
    assert round(slowdown_ratio(0, 10, "sigmoid")) == 5507
    # closed form: s'(a)/s'(b) with s'(x) = e^-x / (1 + e^-x)^2
    def ds(x):
        return math.exp(-x) / (1 + math.exp(-x)) ** 2

    assert slowdown_ratio(2, 10) == pytest.approx(ds(2) / ds(10), rel=1e-12)


def test_slowdown_ratio_zero_derivative_is_an_error():
    with pytest.raises(InitlabError, match="`x_slow`"):
        slowdown_ratio(1.0, -1.0, "relu")


@pytest.mark.parametrize("act,edge", [("sigmoid", None), ("tanh", None), ("softsign", None)])
def test_saturated_set_edges_are_where_derivative_equals_threshold(act, edge):
    thr = 0.01
    ivs = saturated_set(act, thr)
    assert len(ivs) == 2 and ivs[0][0] == -math.inf and ivs[1][1] == math.inf
    for x in (ivs[0][1], ivs[1][0]):
        assert abs(derivative(act, x)) == pytest.approx(thr, rel=1e-9)
    assert ivs[0][1] == pytest.approx(-ivs[1][0], rel=1e-9)  # symmetric activations


def test_tanh_edge_closed_form():
    # 1 - tanh(x)^2 = t  <=>  x = artanh(sqrt(1 - t))
    (lo, hi) = saturated_set("tanh", 0.01)[1]
    assert lo == pytest.approx(math.atanh(math.sqrt(0.99)), rel=1e-10)


def test_relu_saturated_set_is_negative_half_line():
    ivs = saturated_set("relu", 0.5)
    assert len(ivs) == 1 and ivs[0][0] == -math.inf and abs(ivs[0][1]) < 1e-12


def _mc_fraction(z, act, thr):
    return np.mean(np.abs(derivative(act, z)) < thr)


@pytest.mark.parametrize("init,act", [("nielsen_large", "sigmoid"), ("nielsen_default", "sigmoid"),
                                      ("nielsen_large", "tanh")])
def test_saturated_fraction_matches_monte_carlo(init, act):
    wi = weighted_input(init, binary_inputs(1000, 500), bias="same")
    exact = saturated_fraction(wi, act, 0.01)
    n = 10_000
    z = wi.sample(n, seed=7)
    mc = _mc_fraction(z, act, 0.01)
    # the MC fraction is a binomial proportion: std sqrt(p (1 - p) / n); 6 sigma (+1e-12 for p=0)
    tol = 6 * math.sqrt(exact * (1 - exact) / n) + 1e-12
    assert abs(mc - exact) < tol


def test_nielsen_large_saturates_most_sigmoid_units():
    wi = weighted_input("nielsen_large", binary_inputs(1000, 500), bias="same")
    frac = saturated_fraction(wi, "sigmoid", 0.01)
    # z ~ N(0, 501) exactly; saturated iff |z| > 4.585: P = 2 (1 - Phi(4.585 / 22.383)) = 0.8377
    assert frac == pytest.approx(0.8377, abs=2e-4)
    assert saturated_fraction(weighted_input("nielsen_default", binary_inputs(1000, 500),
                                             bias="same"), "sigmoid") < 1e-3


def test_saturated_fraction_with_mean_std_pair_and_errors():
    assert saturated_fraction((0.0, 0.0), "sigmoid") == 0.0
    assert saturated_fraction((10.0, 0.0), "sigmoid") == 1.0
    with pytest.raises(InitlabError, match="`z`"):
        saturated_fraction("abc", "sigmoid")
    with pytest.raises(InitlabError, match="`threshold`"):
        saturated_set("tanh", -1.0)


def test_monte_carlo_method_for_few_uniform_inputs():
    # 3 inputs with U(+-1/sqrt(3)) weights: z is far from normal (bounded by sqrt(3) * max|x|)
    wi = weighted_input("torch_default", np.array([4.0, 4.0, 4.0]))
    n = 20_000
    mc = saturated_fraction(wi, "tanh", 0.01, method="monte_carlo", n_samples=n, seed=3)
    # independent check: draw the weights ourselves
    rng = np.random.default_rng(11)
    w = rng.uniform(-1 / math.sqrt(3), 1 / math.sqrt(3), (n, 3))
    ref = np.mean(np.abs(derivative("tanh", w @ np.full(3, 4.0))) < 0.01)
    # two independent binomial proportions: std of the difference sqrt(2 p (1 - p) / n); 6 sigma
    assert abs(mc - ref) < 6 * math.sqrt(2 * ref * (1 - ref) / n)
    with pytest.raises(InitlabError, match="`z`"):
        saturated_fraction((0.0, 1.0), "tanh", method="monte_carlo")
    with pytest.raises(InitlabError, match="`method`"):
        saturated_fraction(wi, "tanh", method="exact")
