"""Variance propagation: mean-field prediction vs measurement on real torch networks."""

import numpy as np
import pytest

import initlab
from initlab.core.validation import InitlabError
from initlab.theory import (
    critical_sigma_w2,
    fixed_point_q,
    measure_propagation,
    predict_propagation,
)


def _assert_close(meas, se, pred, bias_allow, name):
    """|measured - predicted| < 6 standard errors (over independent networks, t with >= 11 dof,
    so a correct implementation fails with probability ~1e-4 per layer) + an allowance for the
    O(1/width) finite-width corrections to the mean-field recursion."""
    meas, se, pred = map(np.asarray, (meas, se, pred))
    tol = 6 * se + bias_allow * pred
    bad = np.abs(meas - pred) > tol
    assert not bad.any(), f"{name}: layers {np.nonzero(bad)[0] + 1}: {meas[bad]} vs {pred[bad]}"


def test_relu_he_measured_matches_prediction():
    n = 256
    p = measure_propagation([n] * 9, "relu", "he_normal", "zeros", batch=128, n_nets=12, seed=0)
    # forward: for ReLU with symmetric weights E[relu(z)^2] = E[z^2] / 2 exactly, so the
    # recursion is exact in expectation at any width (no allowance); He keeps q = n Var(w) E[x^2]
    np.testing.assert_allclose(p.forward, 2.0, rtol=1e-12)
    _assert_close(p.measured_forward, p.measured_forward_se, p.forward, 0.0, "forward")
    # backward relies on the gradient-independence assumption: O(1/n) allowance
    _assert_close(p.measured_backward, p.measured_backward_se, p.backward, 3 / n, "backward")


def test_tanh_measured_matches_prediction_with_biases():
    n = 256
    init = initlab.get("critical", sigma_b2=0.05)
    sw = critical_sigma_w2(0.05, "tanh")
    q_star = fixed_point_q(sw, 0.05, "tanh")
    # inputs with E[x^2] = (q* - sigma_b2) / sigma_w2 put layer 1 at q* already
    p = measure_propagation([n] * 9, "tanh", init, init, batch=128, n_nets=12, seed=1,
                            input_second_moment=(q_star - 0.05) / sw)
    _assert_close(p.measured_forward, p.measured_forward_se, p.forward, 3 / n, "forward")
    _assert_close(p.measured_backward, p.measured_backward_se, p.backward, 3 / n, "backward")
    # ... and the recursion stays at the mean-field fixed point q* (the last layer is linear)
    np.testing.assert_allclose(p.forward[:-1], q_star, rtol=1e-9)


def test_uniform_torch_default_tanh_prediction_and_measurement():
    n = 200
    p = measure_propagation([n] * 7, "tanh", "torch_default", "same", batch=128, n_nets=12,
                            seed=2)
    _assert_close(p.measured_forward, p.measured_forward_se, p.forward, 3 / n, "forward")
    _assert_close(p.measured_backward, p.measured_backward_se, p.backward, 3 / n, "backward")
    # torch's default on tanh: the forward variance shrinks towards the bias-set fixed point
    assert p.forward[-2] < 0.5 * p.forward[0]


def test_glorot_factors():
    p = predict_propagation([784, 256, 100], "linear", "glorot_uniform")
    # Var(w) = 2 / (fan_in + fan_out): forward factor n_{l-1} Var(w), backward n_l Var(w)
    assert p.forward_factor == pytest.approx([784 * 2 / 1040, 256 * 2 / 356])
    assert p.backward_factor == pytest.approx([256 * 2 / 1040, 100 * 2 / 356])
    # linear: the recursion is the product of the factors
    assert p.forward[1] == pytest.approx(p.forward_factor[0] * p.forward_factor[1])
    assert p.backward[0] == pytest.approx(p.backward_factor[1])


def test_relu_halves_the_variance_he_restores_it():
    L = 30
    xavier = predict_propagation([100] * (L + 1), "relu", "glorot_normal")
    he = predict_propagation([100] * (L + 1), "relu", "he_normal")
    # Xavier's Var(w) = 1/n on ReLU: each layer after the first halves q (He et al. 2015)
    assert xavier.forward[-1] / xavier.forward[0] == pytest.approx(2.0 ** -(L - 1), rel=1e-9)
    np.testing.assert_allclose(he.forward, 2.0, rtol=1e-12)  # layer 1: n (2/n) E[x^2] = 2
    # backward: E[relu'^2] n Var(w) = 1/2 * 2 (He) per layer, 1/2 * 1 (Xavier)
    np.testing.assert_allclose(he.backward, 1.0, rtol=1e-12)
    assert xavier.backward[0] == pytest.approx(2.0 ** -(L - 1), rel=1e-9)


def test_weight_gradient_measured():
    p = measure_propagation([64] * 4, "tanh", "lecun_normal", None, batch=256, n_nets=12,
                            seed=3)
    # per-example weight gradient second moment = Var(d_l) E[h_{l-1}^2]; no se recorded for it,
    # so a 10% band: its relative sampling error over 12 nets x 256 examples is a few percent
    np.testing.assert_allclose(p.measured_weight_grad, p.weight_grad, rtol=0.1)


def test_propagate_and_plot(tmp_path):
    from initlab.theory import plot_propagation, propagate

    p = propagate([32, 32, 32, 4], "tanh", "glorot_normal", "zeros", batch=16, n_nets=2)
    assert p.measured_forward is not None and len(p.measured_forward) == 3
    out = tmp_path / "prop.png"
    import matplotlib.pyplot as plt

    plt.close(plot_propagation(p, out))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert p.as_dict()["widths"] == [32, 32, 32, 4]
    assert propagate([8, 8], "relu", measure=False).measured_forward is None


def test_per_layer_initializers_and_errors():
    p = predict_propagation([10, 10, 10], "relu", ["he_normal", "lecun_normal"])
    assert p.forward_factor == pytest.approx([2.0, 1.0])
    with pytest.raises(InitlabError, match="`weight_init`"):
        predict_propagation([10, 10, 10], "relu", ["he_normal"])
    with pytest.raises(InitlabError, match="`widths`"):
        predict_propagation([10], "relu")
    with pytest.raises(InitlabError, match="`weight_init`"):
        predict_propagation([10, 10], "relu", initlab.get("normal", mean=1.0))
    assert predict_propagation([5, 5], "tanh", "lecun_uniform").forward == pytest.approx([1.0])


def test_same_is_refused_as_a_weight_init():
    # "same" (the weight initializer's bias rule) is a bias_init value; as the weight init it
    # once reached `"same".resolve` and raised a bare AttributeError
    for call in (predict_propagation, measure_propagation):
        with pytest.raises(InitlabError, match=r"`weight_init` cannot be 'same'.*got 'same'.*"
                           r"Fix: pass an initializer name"):
            call([8, 8], "tanh", "same")
        with pytest.raises(InitlabError, match="`weight_init` cannot be 'same'"):
            call([8, 8, 8], "tanh", ["lecun_normal", "same"])
    assert predict_propagation([8, 8], "tanh", "lecun_normal", "same").forward
