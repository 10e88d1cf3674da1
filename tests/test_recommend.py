"""The one recommender: its plan draws exactly its initializer, for every activation."""

from __future__ import annotations

import importlib
import math

import pytest
import torch
import torch.nn as nn

import initlab
from initlab.core.activations import SPECS, activation, lookup_module
from initlab.core.recommend import recommend

pytest.importorskip("transformers")


def _module(name: str) -> nn.Module:
    """A module that is activation ``name`` (its first constructible module form)."""
    for form in SPECS[name].forms:
        # xIELU's condition holds for the module as built (its starting slopes)
        if form.kind == "module" and (form.when is None or name == "xielu"):
            mod, _, attr = form.target.rpartition(".")
            m = getattr(importlib.import_module(mod), attr)(**dict(form.fixed))
            assert lookup_module(m)[0].name == name
            return m
    raise AssertionError(name)


@pytest.mark.parametrize("name", list(SPECS))
def test_plan_draws_the_recommended_initializer(name):
    m = nn.Sequential(nn.Linear(16, 16), _module(name), nn.Linear(16, 4))
    rec = recommend(lookup_module(m[1]))
    rep = initlab.apply(m, rec.plan, seed=0)
    drawn = rep["0.weight"].init
    want = rec.initializer.to_dict()
    assert (drawn["name"], drawn["params"]) == (want["name"], want["params"]), rec.reason
    assert rep["0.weight"].scale == 1.0
    assert rec.activation == name
    assert rec.reason.startswith(name)


@pytest.mark.parametrize("slope, plan", [(0.0, "he"), (0.2, "auto")])
def test_leaky_relu_plan(slope, plan):
    m = nn.Sequential(nn.Linear(16, 16), nn.LeakyReLU(slope), nn.Linear(16, 4))
    rec = recommend(lookup_module(m[1]))
    assert rec.plan == plan and rec.initializer == initlab.get("he_normal", a=slope)
    assert initlab.apply(m, rec.plan, seed=0)["0.weight"].init["params"]["a"] == slope


def test_one_answer_for_tanh_and_readout_and_unknown():
    assert recommend("tanh").initializer == initlab.get("glorot_uniform")
    assert recommend("tanh").plan == "glorot"
    assert recommend(activation("tanh")) == recommend(("tanh", None))
    r = recommend(None, role="readout")
    assert r.initializer == initlab.get("lecun_normal") and "readout" in r.reason
    u = recommend("unknown")
    assert "unknown" in u.reason and u.activation == "unknown" and "lsuv" in u.alternatives
    assert recommend("relu6").plan == "he" and recommend("relu6").activation == "relu6"
    assert recommend("swish").activation == "silu"


@pytest.mark.parametrize("kw, match", [
    ({"role": "output"}, r"`role` must be one of 'hidden', 'readout'"),
    ({"depth": 0}, r"`depth` must be >= 1"),
    ({"residual": "yes"}, r"`residual` must be a bool"),
])
def test_bad_input(kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        recommend("relu", **kw)


def test_bad_activation():
    with pytest.raises(ValueError, match=r"`activation` must be one of"):
        recommend("relu9")
    with pytest.raises(TypeError, match=r"`activation` must be an activation name"):
        recommend(3.0)


@pytest.mark.parametrize("act, shallow_plan", [("tanh", "glorot"), ("relu", "he"),
                                               ("gelu", "auto")])
def test_depth_switches_plain_stacks_to_the_isometric_choice(act, shallow_plan):
    shallow, deep = recommend(act, depth=5), recommend(act, depth=200)
    assert shallow.plan == shallow_plan and shallow.theory is None
    assert shallow.initializer == recommend(act).initializer  # classic below DEEP, unchanged
    # dense ReLU stacks get looks-linear weights (spread 0), the others orthogonal ones
    want = "looks_linear" if act == "relu" else "orthogonal"
    assert deep.plan == "isometry" and deep.initializer.name == want
    assert deep.theory.spread_orthogonal < deep.theory.spread_gaussian
    # residual branches and readouts keep the classic choice at any depth
    assert recommend(act, depth=200, residual=True).initializer == shallow.initializer
    assert recommend(None, depth=200, role="readout").initializer == initlab.get("lecun_normal")
    # and isometry=True asks for the deep choice at any depth, False never
    assert recommend(act, depth=5, isometry=True).plan == "isometry"
    assert recommend(act, depth=200, isometry=False).initializer == shallow.initializer


def test_deep_tanh_is_orthogonal_on_the_critical_line_at_the_spread_target():
    from initlab.core.criticality import ISOMETRY_SPREAD_TARGET
    from initlab.theory import critical_sigma_w2, fixed_point_q, predicted_spectrum

    for depth in (50, 200, 1000):
        rec = recommend("tanh", depth=depth)
        p = rec.theory
        sw, sb = p.sigma_w2, p.sigma_b2
        assert rec.initializer == initlab.get("orthogonal", gain=math.sqrt(sw))
        assert rec.bias == initlab.get("normal", std=math.sqrt(sb))
        # the point is the theory module's critical point for that bias variance ...
        assert sw == pytest.approx(critical_sigma_w2(sb, "tanh"), rel=1e-8)
        assert p.q_star == pytest.approx(fixed_point_q(sw, sb, "tanh"), rel=1e-8)
        # ... whose predicted orthogonal spread is the target (the largest sigma_b2 meeting it)
        assert predicted_spectrum("tanh", sw, sb, depth).spread == pytest.approx(
            ISOMETRY_SPREAD_TARGET, rel=1e-6)
        assert predicted_spectrum("tanh", sw * 1.0, sb * 1.5 + 1e-9, depth).spread > \
            ISOMETRY_SPREAD_TARGET
        for text in (f"sigma_w2 = {sw:.4g}", f"sigma_b2 = {sb:.3g}", f"q* = {p.q_star:.3g}",
                     f"= {p.spread:.3g} (Gaussian weights: {p.spread_gaussian:.3g})"):
            assert text in rec.reason
    # deeper needs a smaller q* (orthogonal spread ~ 8 L q*^2 for tanh as q* -> 0; at a small
    # target the approximation holds to a few %, at the default's larger q* only roughly)
    q200, q1000 = (recommend("tanh", depth=d).theory.q_star for d in (200, 1000))
    assert q1000 < q200 < 0.1
    small = recommend("tanh", depth=200, spread=0.5).theory.q_star
    assert small == pytest.approx(math.sqrt(0.5 / (8 * 200)), rel=0.1)
    assert q200 == pytest.approx(math.sqrt(ISOMETRY_SPREAD_TARGET / (8 * 200)), rel=0.3)


def test_conv_layers_get_delta_orthogonal_and_relu_gets_he_gain():
    rec = recommend("tanh", depth=50, layer="conv")
    assert rec.initializer == initlab.get("delta_orthogonal",
                                          gain=math.sqrt(rec.theory.sigma_w2))
    relu = recommend("relu", depth=50, deep_relu="orthogonal")
    assert relu.initializer == initlab.get("orthogonal", gain=math.sqrt(2.0))
    assert relu.bias == initlab.get("zeros")
    assert relu.theory.spread == pytest.approx(50) and relu.theory.spread_gaussian == \
        pytest.approx(100)
    # conv kernels: delta-orthogonal with He's gain under deep_relu="orthogonal", else
    # looks-linear centre taps (test_deep_relu_dense_layers_get_looks_linear_by_position)
    conv = recommend("relu", depth=50, layer="conv", deep_relu="orthogonal")
    assert conv.initializer == initlab.get("delta_orthogonal", gain=math.sqrt(2.0))
    leaky = recommend(("leaky_relu", 0.2), depth=50, deep_relu="orthogonal")
    assert leaky.initializer == initlab.get("orthogonal", gain=math.sqrt(2 / 1.04))


def test_deep_relu_dense_layers_get_looks_linear_by_position():
    """A deep plain ReLU stack's dense layers: looks-linear (Balduzzi et al. 2017); the position
    follows from whether the layer's input is mirrored (``mirrored_input``) and whether the
    layer mirrors its output (a ReLU-family hidden layer)."""
    first = recommend("relu", depth=50)
    assert first.initializer == initlab.get("looks_linear", gain=1.0, position="first")
    assert first.plan == "isometry" and first.bias == initlab.get("zeros")
    assert first.theory.spread == pytest.approx(0, abs=1e-9) and first.theory.chi1 == \
        pytest.approx(1)
    assert "spread 0; orthogonal He weights' spread would be 50, Gaussian He's 100" in \
        first.reason
    hidden = recommend("relu", depth=50, mirrored_input="relu")
    assert hidden.initializer == initlab.get("looks_linear", position="hidden")
    last = recommend(None, role="readout", depth=50, mirrored_input="relu")
    assert last.initializer == initlab.get("looks_linear", position="last")
    assert last.reason.startswith("readout (linear output), plain stack of 50 layers")
    # leaky_relu(a): f(u) - f(-u) = (1 + a) u, so a layer fed by it has gain 1/(1 + a)
    a = 0.2
    leaky = recommend(("leaky_relu", a), depth=50, mirrored_input=("leaky_relu", a))
    assert leaky.initializer == initlab.get("looks_linear", gain=1 / (1 + a), position="hidden")
    assert recommend(("leaky_relu", a), depth=50).initializer.params["gain"] == 1.0  # data in
    # a mirrored input is folded back even when the layer itself would not mirror
    folded = recommend("relu", depth=50, mirrored_input="relu", deep_relu="orthogonal")
    assert folded.initializer.params["position"] == "last"
    # conv kernels too: the same matrix at the centre tap, said in the reason
    conv = recommend("relu", depth=50, layer="conv", mirrored_input="relu")
    assert conv.initializer == initlab.get("looks_linear", position="hidden")
    assert "[[V, -V], [-V, V]] at the kernel's centre tap, zeros elsewhere" in conv.reason
    # shallow stacks keep He; isometry=True asks for looks-linear at any depth
    assert recommend("relu", depth=5).initializer == initlab.get("he_normal")
    assert recommend("relu", depth=5, isometry=True).initializer.name == "looks_linear"


def test_deep_relu_and_mirrored_input_are_checked():
    with pytest.raises(ValueError, match=r"`deep_relu` must be one of 'looks_linear', "
                                         r"'orthogonal'; got 'he'"):
        recommend("relu", depth=50, deep_relu="he")
    with pytest.raises(TypeError, match=r"`mirrored_input` must be None or the ReLU-family "
                                        r"activation .*; got 'tanh'"):
        recommend("relu", depth=50, mirrored_input="tanh")


def test_sigmoid_has_no_isometric_point_and_says_so():
    rec = recommend("sigmoid", depth=200)
    assert rec.initializer == initlab.get("glorot_uniform") and rec.plan == "glorot"
    assert "no point of sigmoid is isometric" in rec.reason and "prefer tanh" in rec.reason
    assert rec.theory.spread > 100  # sigma_b2 = 0 is its best: q* ~ 46


@pytest.mark.parametrize("act", ["tanh", "relu", "gelu", "softsign"])
def test_isometry_plan_draws_the_deep_recommendation(act):
    depth = 24
    layers: list[nn.Module] = []
    for _ in range(depth - 1):
        layers += [nn.Linear(16, 16), _module(act)]
    m = nn.Sequential(*layers, nn.Linear(16, 4))
    rec = recommend(act, depth=depth)
    for plan in ("isometry", "auto"):   # 24 > DEEP: auto gives the same
        rep = initlab.apply(m, plan, seed=0)
        drawn = rep["0.weight"].init
        want = rec.initializer.to_dict()
        assert (drawn["name"], drawn["params"]) == (want["name"], want["params"]), rec.reason
        b, want_b = rep["0.bias"].init, rec.bias.to_dict()
        assert (b["name"], b["params"]) == (want_b["name"], want_b["params"])
        assert rep["0.weight"].why.startswith(rec.reason)


def test_spread_sets_the_isometric_points_target():
    """``spread=`` moves the tanh point along the critical line to the target it names; the
    default is ISOMETRY_SPREAD_TARGET, and a larger target means a larger q* and sigma_b2."""
    from initlab.core.criticality import ISOMETRY_SPREAD_TARGET
    from initlab.theory import critical_sigma_w2, predicted_spectrum

    default = recommend("tanh", depth=200)
    assert recommend("tanh", depth=200, spread=ISOMETRY_SPREAD_TARGET) == default
    assert "spread target" not in default.reason
    targets = (0.1, ISOMETRY_SPREAD_TARGET / 2, ISOMETRY_SPREAD_TARGET * 2)
    points = [recommend("tanh", depth=200, spread=t).theory for t in targets]
    for t, p in zip(targets, points):
        assert p.spread == pytest.approx(t, rel=1e-6)
        assert predicted_spectrum("tanh", p.sigma_w2, p.sigma_b2, 200).spread == \
            pytest.approx(t, rel=1e-6)
        assert p.sigma_w2 == pytest.approx(critical_sigma_w2(p.sigma_b2, "tanh"), rel=1e-8)
    assert points[0].q_star < points[1].q_star < default.theory.q_star < points[2].q_star
    assert points[0].sigma_b2 < points[1].sigma_b2 < default.theory.sigma_b2 < \
        points[2].sigma_b2
    assert "(spread target 0.5, default 4)" in recommend("tanh", depth=200, spread=0.5).reason
    # the other activations' deep choices have no free parameter
    assert recommend("relu", depth=200, spread=4) == recommend("relu", depth=200)


def test_isometry_plan_takes_spread_and_records_it():
    m = nn.Sequential(*[x for _ in range(30) for x in (nn.Linear(16, 16), nn.Tanh())],
                      nn.Linear(16, 4))
    want = recommend("tanh", depth=31, spread=0.5, isometry=True)
    for plan in ("isometry", "auto"):
        rep = initlab.apply(m, plan, seed=0, spread=0.5)
        drawn = rep["0.weight"].init
        assert (drawn["name"], drawn["params"]) == (want.initializer.to_dict()["name"],
                                                    want.initializer.to_dict()["params"])
        assert rep.to_dict()["plan"]["options"] == {"spread": 0.5}
        assert rep["0.weight"].why.startswith(want.reason)
    assert initlab.apply(m, "isometry", seed=0).to_dict()["plan"]["options"] == {}
    # a bad value fails before anything is drawn: the weights are untouched
    before = m[0].weight.detach().clone()
    with pytest.raises(ValueError, match=r"`spread` must be > 0.0 .*got 0.0"):
        initlab.apply(m, "isometry", seed=1, spread=0)
    with pytest.raises(TypeError, match=r"`spread` must be a real number; got 'wide'"):
        initlab.apply(m, "auto", seed=1, spread="wide")
    assert torch.equal(m[0].weight, before)


@pytest.mark.parametrize("kw, match", [
    ({"layer": "convolution"}, r"`layer` must be one of 'dense', 'conv'"),
    ({"isometry": "yes"}, r"`isometry` must be a bool or None"),
    ({"spread": float("nan")}, r"`spread` must be"),
    ({"spread": -1}, r"`spread` must be > 0.0"),
])
def test_bad_new_arguments(kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        recommend("tanh", depth=50, **kw)


def test_doctor_advice_reads_the_depth_auto_reads():
    """The doctor's advice uses the depth it is given (the model description's plain_depth(),
    as `auto`), not its own count of measured layers: the same saturated tanh layer gets the
    shallow choice in a 3-layer net and the deep (isometric) one in a 40-layer net."""
    from initlab.core.recommend import recommend
    from initlab.diagnostics.findings import diagnose
    from initlab.diagnostics.stats import LayerStats

    def layers():
        return [LayerStats(index=i + 1, name=f"l{i}", kind="Linear", weight_shape=[64, 64],
                           fan_in=64, fan_out=64, n_units=64, activation="tanh",
                           saturated=0.9 if i == 0 else 0.0) for i in range(3)]

    for depth in (3, 40):
        found = [f for f in diagnose(layers(), depth=depth) if f.code == "saturation"]
        assert found, depth
        rec = recommend("tanh", depth=depth)
        assert found[0].plans[0] == rec.plan, (depth, found[0].plans, rec.plan)
    shallow = [f for f in diagnose(layers(), depth=3) if f.code == "saturation"][0]
    deep = [f for f in diagnose(layers(), depth=40) if f.code == "saturation"][0]
    assert shallow.plans[0] != deep.plans[0]
    # without a description's depth, the measured layers are counted
    assert [f for f in diagnose(layers()) if f.code == "saturation"][0].plans == shallow.plans
