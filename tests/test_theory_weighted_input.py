"""Weighted input z = w . x + b: exact moments (Nielsen's numbers), tails, Monte Carlo checks."""

import math

import numpy as np
import pytest
from scipy import stats

import initlab
from initlab.core.distributions import Normal, TruncatedNormal, Uniform
from initlab.core.validation import InitlabError, InitlabTypeError
from initlab.theory import (
    IidInputs,
    binary_inputs,
    distribution_moments,
    standardized_inputs,
    weighted_input,
)


def test_nielsen_large_std_sqrt_501():
    wi = weighted_input("nielsen_large", binary_inputs(1000, 500), bias="same")
    assert wi.mean == 0.0
    assert wi.variance == pytest.approx(501.0, rel=1e-14)
    assert round(wi.std, 2) == 22.38
    assert wi.exact


def test_nielsen_default_std_sqrt_3_over_2():
    wi = weighted_input("nielsen_default", binary_inputs(1000, 500), bias="same")
    assert wi.variance == pytest.approx(1.5, rel=1e-14)
    assert round(wi.std, 2) == 1.22


def test_explicit_n01_over_1000_weights():
    w = initlab.get("normal", std=1 / math.sqrt(1000))
    wi = weighted_input(w, binary_inputs(1000, 500), bias=initlab.get("normal", std=1.0))
    assert wi.variance == pytest.approx(1.5, rel=1e-14)


@pytest.mark.parametrize("d", [3, 10, 100, 784, 10_000])
def test_uniform_one_over_sqrt_d_gives_one_third(d):
    wi = weighted_input("torch_default", standardized_inputs(d))
    assert wi.variance == pytest.approx(1 / 3, rel=1e-12)
    assert not wi.exact  # uniform weights: P(|z| > t) is a CLT approximation
    # torch's bias U(+-1/sqrt(d)) adds 1/(3 d)
    wb = weighted_input("torch_default", standardized_inputs(d), bias="same")
    assert wb.variance == pytest.approx(1 / 3 + 1 / (3 * d), rel=1e-12)


def test_distribution_moments():
    assert distribution_moments(Normal(1.0, 2.0)) == (1.0, 4.0)
    m, v = distribution_moments(Uniform(-3.0, 3.0))
    assert m == 0.0 and v == pytest.approx(3.0)
    # truncated N(0,1) on [-2, 2]: variance 0.7737413035499232 (references.md)
    m, v = distribution_moments(TruncatedNormal(0.0, 1.0, -2.0, 2.0))
    assert abs(m) < 1e-12 and v == pytest.approx(0.7737413035499232, rel=1e-10)
    with pytest.raises(InitlabError, match="`weights`"):
        weighted_input("orthogonal", standardized_inputs(10))


def test_prob_exceeds_exact_for_gaussian_fixed_inputs():
    wi = weighted_input("nielsen_large", binary_inputs(1000, 500), bias="same")
    assert wi.prob_exceeds(1.0) == pytest.approx(2 * stats.norm.sf(1 / math.sqrt(501)), rel=1e-12)
    assert wi.prob_exceeds(0.0) == pytest.approx(1.0)


def _check_moments_mc(wi, n, seed):
    z = wi.sample(n, seed=seed)
    # sample mean: std sqrt(Var z / n); the mean of z^2 - centred: std(z^2)/sqrt(n) estimated from
    # the draws themselves (valid for any distribution with a finite 4th moment); 6 sigma each.
    assert abs(z.mean() - wi.mean) < 6 * math.sqrt(wi.variance / n)
    m2 = ((z - wi.mean) ** 2)
    assert abs(m2.mean() - wi.variance) < 6 * m2.std() / math.sqrt(n)
    return z


def test_monte_carlo_fixed_inputs_gaussian_tail():
    wi = weighted_input("nielsen_default", binary_inputs(1000, 500), bias="same")
    n = 10_000
    z = _check_moments_mc(wi, n, seed=1)
    for t in (0.5, 1.0, 2.0, 3.0):
        p = wi.prob_exceeds(t)
        # binomial proportion, 6 sigma
        assert abs(np.mean(np.abs(z) > t) - p) < 6 * math.sqrt(p * (1 - p) / n) + 1e-9


def test_monte_carlo_uniform_weights_iid_inputs_clt():
    wi = weighted_input("lecun_uniform", IidInputs(500, mean=0.5, var=2.0), bias="zeros")
    # Var z = n [Var(w) (v_x + m_x^2)] with Var(w) = 1/n: = 2.25
    assert wi.variance == pytest.approx(2.25, rel=1e-12)
    n = 10_000
    z = _check_moments_mc(wi, n, seed=2)
    for t in (1.0, 2.0):
        p = wi.prob_exceeds(t)
        # binomial sampling error (6 sigma) + 2e-3 for the CLT approximation itself: the sum of
        # 500 products w x has excess kurtosis ~ (3 * 9/5 * E[x^4]/E[x^2]^2 - 3)/500 < 0.02,
        # whose Edgeworth correction to a two-sided tail is below 1e-3.
        assert abs(np.mean(np.abs(z) > t) - p) < 6 * math.sqrt(p * (1 - p) / n) + 2e-3


def test_nonzero_mean_weights_iid_inputs_formula():
    w = initlab.get("normal", mean=0.1, std=0.2)
    wi = weighted_input(w, IidInputs(50, mean=1.0, var=0.5), bias=initlab.get("constant", value=0.3))
    # E z = n m_w m_x + m_b; Var z = n [(v_w + m_w^2)(v_x + m_x^2) - m_w^2 m_x^2]
    assert wi.mean == pytest.approx(50 * 0.1 * 1.0 + 0.3)
    assert wi.variance == pytest.approx(50 * ((0.04 + 0.01) * 1.5 - 0.01))
    _check_moments_mc(wi, 20_000, seed=3)


def test_empirical_inputs_mixture_exact_and_mc():
    X = np.random.default_rng(0).normal(size=(32, 200)) * np.linspace(0.2, 2, 32)[:, None]
    wi = weighted_input("lecun_normal", X, bias=initlab.get("normal", std=0.5))
    assert wi.exact  # Gaussian weights: a mixture of normals, exact tail
    n = 20_000
    z = _check_moments_mc(wi, n, seed=4)
    for t in (0.5, 1.5):
        p = wi.prob_exceeds(t)
        assert abs(np.mean(np.abs(z) > t) - p) < 6 * math.sqrt(p * (1 - p) / n)


def test_explicit_vector_inputs():
    x = np.array([1.0, -2.0, 3.0])
    wi = weighted_input(Normal(0.0, 0.5), x)
    assert wi.variance == pytest.approx(0.25 * 14)


def test_errors_name_the_parameter():
    with pytest.raises(InitlabError, match="`inputs`"):
        weighted_input("lecun_normal", None)
    with pytest.raises(InitlabError, match="`inputs`"):
        weighted_input("lecun_normal", np.zeros((2, 2, 2)))
    with pytest.raises(InitlabTypeError, match="`weights`"):
        weighted_input(3.0, standardized_inputs(4))
    with pytest.raises(InitlabError, match="`n_on`"):
        binary_inputs(10, 11)
    with pytest.raises(InitlabError, match="`t`"):
        weighted_input("lecun_normal", standardized_inputs(4)).prob_exceeds(-1)
