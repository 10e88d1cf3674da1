"""Jacobian spectra at initialization: isometry orderings, exact vs randomized, mean-field check."""

import math

import numpy as np
import pytest

import initlab
from initlab.core.validation import InitlabError
from initlab.theory import critical_sigma_w2, fixed_point_q, jacobian_spectrum

WIDTH = 96


def _ortho_critical_tanh(depth, sigma_b2):
    sw = critical_sigma_w2(sigma_b2, "tanh")
    q = fixed_point_q(sw, sigma_b2, "tanh")
    return jacobian_spectrum([WIDTH] * (depth + 1), "tanh",
                             initlab.get("orthogonal", gain=math.sqrt(sw)),
                             initlab.get("critical", sigma_b2=sigma_b2),
                             input_second_moment=(q - sigma_b2) / sw, n_inputs=4, seed=0,
                             layers=False)


def _he_relu(depth, seed=0):
    return jacobian_spectrum([WIDTH] * (depth + 1), "relu", "he_normal", "zeros", n_inputs=4,
                             seed=seed, layers=False)


def test_linear_orthogonal_is_an_exact_isometry():
    spec = jacobian_spectrum([32] * 6, "linear", "orthogonal", None, n_inputs=2)
    np.testing.assert_allclose(spec.singular_values, 1.0, atol=1e-10)
    assert spec.input_output.spread < 1e-18
    for layer in spec.layers:
        assert layer.mean_s2 == pytest.approx(1.0) and layer.condition == pytest.approx(1.0)


def test_orthogonal_critical_tanh_is_closer_to_isometry_than_he_relu():
    depth = 24
    he = _he_relu(depth)
    for sb in (1e-3, 0.05):  # small q* (Pennington et al.'s regime) and the `critical` default
        orth = _ortho_critical_tanh(depth, sb)
        # both are critical: the mean of s^2 stays O(1) (product of chi_1 = 1 per layer)
        assert 0.5 < orth.input_output.mean_s2 < 2 and 0.3 < he.input_output.mean_s2 < 3
        # but the spread of s^2 (var / mean^2) is several times smaller; measured at width 96:
        # 1.1 (sb 1e-3), 10.4 (0.05) vs 41.6 for He-ReLU
        assert orth.input_output.spread * 3 < he.input_output.spread
    # conditioning: ReLU's D_l zero out about half the units, so J is numerically singular
    # (measured s_max/s_min > 1e15); orthogonal critical tanh at small q*: 555
    small = _ortho_critical_tanh(depth, 1e-3)
    assert small.input_output.condition < 1e4 < 1e8 < he.input_output.condition


def test_he_relu_spread_grows_with_depth():
    # Pennington et al. 2017: for ReLU var(s^2) grows linearly with depth; pooled over 2 seeds
    spreads = {d: np.mean([_he_relu(d, seed=s).input_output.spread for s in (0, 1)])
               for d in (4, 16, 32)}
    assert spreads[4] < spreads[16] < spreads[32]
    assert spreads[32] > 3 * spreads[4]


def test_layer_jacobians_mean_s2_matches_chi1():
    # Layer-to-layer J_l = D_l W_l: E[mean s^2] = sigma_w2 E[phi'(z)^2] = chi_1 = 1 at the critical
    # point with inputs at q*. Each layer's estimate averages n_inputs * WIDTH values of
    # sigma_w2 phi'(z_i)^2 ||W_i||^2 (relative std ~0.35 each for tanh at q* = 0.57); pooled over
    # 8 layers x 8 inputs x 96 units with correlations through shared weights, we allow 6 x the
    # std over the layers' estimates / sqrt(8) plus 2% for finite width.
    sb = 0.05
    sw = critical_sigma_w2(sb, "tanh")
    q = fixed_point_q(sw, sb, "tanh")
    init = initlab.get("critical", sigma_b2=sb)
    spec = jacobian_spectrum([WIDTH] * 9, "tanh", init, init, n_inputs=8, seed=3,
                             input_second_moment=(q - sb) / sw)
    per_layer = np.array([s.mean_s2 for s in spec.layers])
    assert abs(per_layer.mean() - 1.0) < 6 * per_layer.std(ddof=1) / math.sqrt(8) + 0.02


def test_glorot_bengio_layer_jacobian_singular_values():
    # Glorot & Bengio 2010 (sec. 4.2.1): the average singular value of the layer-to-layer
    # Jacobians is ~0.5 with the "standard" U(+-1/sqrt(n)) init and ~0.8 with the "normalized"
    # one. For a square n x n layer, W's singular values follow the quarter-circle law with mean
    # 8 / (3 pi) * sqrt(n Var(w)): 0.49 (Var = 1/(3n)) vs 0.85 (Var = 1/n); tanh' <= 1 lowers both.
    kw = dict(n_inputs=2, seed=0, activate_last=False)
    std = jacobian_spectrum([256] * 6, "tanh", "torch_default", "zeros", **kw)
    norm = jacobian_spectrum([256] * 6, "tanh", "glorot_uniform", "zeros", **kw)
    s_std = np.mean([s.mean_s for s in std.layers[2:4]])
    s_norm = np.mean([s.mean_s for s in norm.layers[2:4]])
    assert s_std < 8 / (3 * math.pi) / math.sqrt(3) and 0.4 < s_std
    assert 0.65 < s_norm < 8 / (3 * math.pi)
    assert s_norm > 1.4 * s_std


def test_randomized_estimate_agrees_with_exact():
    kw = dict(n_inputs=3, seed=5, layers=True)
    widths = [48] * 7
    exact = jacobian_spectrum(widths, "relu", "he_normal", "zeros", method="exact", **kw)
    rnd = jacobian_spectrum(widths, "relu", "he_normal", "zeros", method="randomized",
                            n_probes=64, **kw)
    # same seed -> same network and inputs. Hutchinson: ||J v||^2 with v ~ N(0, I) has mean
    # tr(J^T J) = sum s^2 and variance 2 sum s^4; with p probes per input and m inputs the
    # estimate of mean s^2 has std sqrt(2 sum s^4 / p) / k / sqrt(m); 6 sigma.
    sv = exact.singular_values
    k = sv.shape[1]
    sd = math.sqrt(2 * np.mean(np.sum(sv**4, axis=1)) / 64) / k / math.sqrt(3)
    assert abs(rnd.input_output.mean_s2 - exact.input_output.mean_s2) < 6 * sd
    # power iteration never overestimates s_max and gets close in 30 steps
    assert rnd.input_output.s_max <= exact.input_output.s_max * (1 + 1e-9)
    assert rnd.input_output.s_max > 0.9 * exact.input_output.s_max
    assert math.isnan(rnd.input_output.s_min)
    assert len(rnd.layers) == 6


def test_as_dict_and_plot(tmp_path):
    import json

    import matplotlib.pyplot as plt

    from initlab.theory import plot_jacobian_spectrum

    spec = jacobian_spectrum([16] * 4, "tanh", "glorot_normal", None, n_inputs=2)
    d = spec.as_dict()
    json.dumps({k: v for k, v in d.items()})
    assert len(d["layers"]) == 3 and d["method"] == "exact"
    out = tmp_path / "j.png"
    plt.close(plot_jacobian_spectrum(spec, out))
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_errors():
    with pytest.raises(InitlabError, match="`method`"):
        jacobian_spectrum([4, 4], method="svd")
    with pytest.raises(InitlabError, match="`n_inputs`"):
        jacobian_spectrum([4, 4], n_inputs=0)
