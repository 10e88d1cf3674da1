"""Mean field: critical line (published tanh values), q*, chi_1, depth scales, Monte Carlo."""

import math

import numpy as np
import pytest

from initlab.core.validation import InitlabError
from initlab.theory import (
    chi1,
    correlation_map,
    critical_line,
    critical_sigma_w2,
    fixed_point_q,
    length_map,
    length_map_slope,
    mean_field,
)


@pytest.mark.parametrize("sigma_b2,expected", [
    (0.0, 1.000), (0.01, 1.424), (0.05, 1.761), (0.09, 1.948), (0.5, 2.843), (1.0, 3.443)])
def test_tanh_critical_line_published_values(sigma_b2, expected):
    # Schoenholz et al. 2017 / references.md, +-0.01 (we agree to 1e-3)
    assert critical_sigma_w2(sigma_b2, "tanh") == pytest.approx(expected, abs=1e-3)


def test_critical_line_list_and_chi1_equals_one_on_it():
    pts = critical_line([0.05, 0.5], "tanh")
    for sb, sw in pts:
        assert chi1(sw, sb, "tanh") == pytest.approx(1.0, abs=1e-9)


def test_relu_critical_point_is_two():
    # chi_1 = sigma_w2 E[relu'^2] = sigma_w2 / 2 whatever q*: He et al. 2015
    for sb in (0.0, 0.1, 1.0):
        assert critical_sigma_w2(sb, "relu") == pytest.approx(2.0, abs=1e-9)


def test_tanh_zero_bias_fixed_point_is_zero_and_critical_at_one():
    for sw in (0.5, 0.9, 1.0):
        assert fixed_point_q(sw, 0.0, "tanh") == 0.0
    mf = mean_field(1.0, 0.0, "tanh")
    assert mf.q_star == 0.0 and mf.chi1 == pytest.approx(1.0) and mf.phase == "critical"
    assert mf.xi_c == math.inf and mf.xi_q == math.inf and mf.max_trainable_depth == math.inf
    # just above 1: small positive q* ~ (sigma_w2 - 1) / (2 sigma_w2) (tanh^2 x = x^2 - 2/3 x^4 ...)
    q = fixed_point_q(1.01, 0.0, "tanh")
    assert 0 < q and q == pytest.approx(0.01 / (2 * 1.01), rel=0.05)


def test_ordered_zero_bias_depth_scale_closed_form():
    # q* = 0: chi_1 = sigma_w2 phi'(0)^2 = sigma_w2 and xi_c = -1/ln(sigma_w2)
    mf = mean_field(0.5, 0.0, "tanh")
    assert mf.chi1 == pytest.approx(0.5) and mf.xi_c == pytest.approx(1 / math.log(2))
    assert mf.max_trainable_depth == pytest.approx(6 / math.log(2))


def test_near_criticality_depth_scales_diverge_without_crashing():
    sw = critical_sigma_w2(0.05, "tanh")
    mf = mean_field(sw, 0.05, "tanh")
    assert mf.phase == "critical" and mf.xi_c == math.inf
    near = [mean_field(sw * (1 - e), 0.05, "tanh").xi_c for e in (1e-1, 1e-2, 1e-3)]
    assert near[0] < near[1] < near[2] and near[2] > 100


def test_fixed_point_is_limit_of_iteration():
    q = 1.0
    for _ in range(200):
        q = length_map(q, 2.0, 0.1, "tanh")
    assert fixed_point_q(2.0, 0.1, "tanh") == pytest.approx(q, rel=1e-10)
    assert length_map(q, 2.0, 0.1, "tanh") == pytest.approx(q, rel=1e-12)


@pytest.mark.parametrize("act,sw,sb,q", [("tanh", 1.761, 0.05, 0.7), ("relu", 1.5, 0.1, 2.0),
                                         ("gelu", 1.8, 0.0, 1.3)])
def test_length_map_and_chi1_monte_carlo(act, sw, sb, q):
    from initlab.core.activations import activation

    a = activation(act)
    rng = np.random.default_rng(0)
    n = 400_000
    u = math.sqrt(q) * rng.standard_normal(n)
    f2 = sw * a.f(u) ** 2 + sb
    # MC mean has std = sample std / sqrt(n); 6 sigma
    assert abs(f2.mean() - length_map(q, sw, sb, act)) < 6 * f2.std() / math.sqrt(n)
    d2 = sw * a.df(u) ** 2
    assert abs(d2.mean() - chi1(sw, sb, act, q_star=q)) < 6 * d2.std() / math.sqrt(n)


def test_correlation_map_monte_carlo():
    sw, sb = 2.5, 0.05
    q = fixed_point_q(sw, sb, "tanh")
    rng = np.random.default_rng(1)
    n = 400_000
    c = 0.6
    z1, z2 = rng.standard_normal((2, n))
    u1 = math.sqrt(q) * z1
    u2 = math.sqrt(q) * (c * z1 + math.sqrt(1 - c * c) * z2)
    vals = (sw * np.tanh(u1) * np.tanh(u2) + sb) / q
    # 6 sigma of the MC mean
    assert abs(vals.mean() - correlation_map(c, sw, sb, "tanh")) < 6 * vals.std() / math.sqrt(n)
    assert correlation_map(1.0, sw, sb, "tanh") == pytest.approx(1.0, abs=1e-10)


def test_depth_scales_are_the_convergence_rates_of_the_maps():
    # xi_q: (q_{l+1} - q*) / (q_l - q*) -> L'(q*) = exp(-1/xi_q)
    sw, sb = 1.5, 0.05
    mf = mean_field(sw, sb, "tanh")
    assert mf.phase == "ordered" and mf.c_star == 1.0
    eps = 1e-4
    q1 = length_map(mf.q_star + eps, sw, sb, "tanh")
    assert (q1 - mf.q_star) / eps == pytest.approx(math.exp(-1 / mf.xi_q), rel=1e-3)
    assert length_map_slope(mf.q_star, sw, "tanh") == pytest.approx(math.exp(-1 / mf.xi_q))
    # xi_c (ordered): (1 - c_{l+1}) / (1 - c_l) -> chi_1 as c -> 1
    c0 = 1 - 1e-3
    c1 = correlation_map(c0, sw, sb, "tanh", q_star=mf.q_star)
    assert (1 - c1) / (1 - c0) == pytest.approx(math.exp(-1 / mf.xi_c), rel=2e-3)
    # chaotic: (c_{l+1} - c*) / (c_l - c*) -> chi_c
    sw, sb = 2.5, 0.05
    mf = mean_field(sw, sb, "tanh")
    assert mf.phase == "chaotic" and 0 < mf.c_star < 1
    c0 = mf.c_star + 1e-3
    c1 = correlation_map(c0, sw, sb, "tanh", q_star=mf.q_star)
    assert (c1 - mf.c_star) / 1e-3 == pytest.approx(mf.chi_c, rel=5e-3)
    assert mf.xi_c == pytest.approx(-1 / math.log(mf.chi_c))


def test_relu_divergent_q_star():
    mf = mean_field(2.5, 0.1, "relu")
    assert mf.q_star == math.inf and mf.chi1 == pytest.approx(1.25) and mf.phase == "chaotic"
    assert math.isnan(mf.xi_c)
    assert mean_field(1.5, 0.1, "relu").q_star == pytest.approx(0.1 / (1 - 0.75))


def test_as_dict_is_json_serializable():
    import json

    json.dumps(mean_field(1.0, 0.0, "tanh").as_dict())


def test_errors():
    with pytest.raises(InitlabError, match="`sigma_w2`"):
        mean_field(0.0, 0.1)
    with pytest.raises(InitlabError, match="`sigma_b2`"):
        critical_sigma_w2(-1.0)
    with pytest.raises(InitlabError, match="`max_sigma_w2`"):
        critical_sigma_w2(0.1, "relu", max_sigma_w2=1.5)


@pytest.mark.parametrize("sigma_w2", [1e6, 1e13])
def test_tanh_huge_weight_variance_is_chaotic_with_finite_q(sigma_w2):
    # Bounded activation: q* <= sigma_w2 + sigma_b2 is finite, and chi_1 is far above 1.
    # Independent check, the large-q expansion (x = sqrt(q) z, phi_q(x) = N(0, q) density):
    #   E[tanh^2] = 1 - E[sech^2] = 1 - 2 / sqrt(2 pi q) + O(q^-3/2)   (int sech^2 = 2)
    #   E[sech^4] = (4/3) / sqrt(2 pi q) * (1 + O(1/q))                (int sech^4 = 4/3)
    # so q* solves q = sigma_w2 (1 - 2 / sqrt(2 pi q)) + sigma_b2 and
    # chi_1 = sigma_w2 (4/3) / sqrt(2 pi q*); relative error of the expansion <= 1/q* ~ 1e-6.
    sb = 0.05
    q = sigma_w2
    for _ in range(50):
        q = sigma_w2 * (1 - 2 / math.sqrt(2 * math.pi * q)) + sb
    chi_expected = sigma_w2 * (4 / 3) / math.sqrt(2 * math.pi * q)
    mf = mean_field(sigma_w2, sb, "tanh")
    assert mf.q_star == pytest.approx(q, rel=1e-6)
    assert mf.chi1 == pytest.approx(chi_expected, rel=1e-5)
    assert mf.phase == "chaotic" and mf.q_star <= sigma_w2 + sb
    # two inputs decorrelate: tanh -> sign, E[sign u1 sign u2] at c ~ 0 gives chi_c -> 2/pi
    assert mf.c_star == pytest.approx(0.0, abs=1e-5)
    assert mf.chi_c == pytest.approx(2 / math.pi, rel=1e-2)


def test_tanh_chi1_at_sigma_w2_1e6_monte_carlo():
    # The number: chi_1(1e6, 0.05) is about 532 (it was 629). Monte Carlo, independent of
    # the quadrature: E[sech^4(u)], u ~ N(0, q*), by importance sampling x ~ U(-20, 20)
    # (sech^4(20) ~ 1e-34: the tails are negligible), estimate 40 * mean(sech^4(x) phi_q(x)).
    # n = 2e6 draws; tolerance 5 standard errors of the mean.
    q, x1 = fixed_point_q(1e6, 0.05, "tanh"), chi1(1e6, 0.05, "tanh")
    rng = np.random.default_rng(0)
    x = rng.uniform(-20, 20, 2_000_000)
    vals = 40.0 * np.cosh(x) ** -4 * np.exp(-0.5 * x * x / q) / math.sqrt(2 * math.pi * q)
    est, se = 1e6 * vals.mean(), 1e6 * vals.std() / math.sqrt(len(vals))
    assert abs(x1 - est) < 5 * se and 520 < est < 545
    assert x1 == pytest.approx(532.1, abs=0.5)


def test_infinite_q_star_is_explained():
    mf = mean_field(2.0, 0.05, "relu")
    assert mf.q_star == math.inf and "no finite fixed point" in mf.note
    assert "sigma_w2 < 2" in mf.note
    assert mean_field(1.5, 0.05, "relu").note == ""
