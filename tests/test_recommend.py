"""The one recommender: its plan draws exactly its initializer, for every activation."""

from __future__ import annotations

import importlib

import pytest
import torch.nn as nn

import initlab
from initlab.core.activations import SPECS, activation, lookup_module
from initlab.core.recommend import recommend

pytest.importorskip("transformers")


def _module(name: str) -> nn.Module:
    """A module that is activation ``name`` (its first constructible module form)."""
    for form in SPECS[name].forms:
        if form.kind == "module" and form.when is None:
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


def test_depth_only_adds_alternatives_today():
    shallow, deep = recommend("tanh", depth=3), recommend("tanh", depth=50)
    assert deep.initializer == shallow.initializer and deep.plan == shallow.plan == "glorot"
    assert "orthogonal" in deep.alternatives and "orthogonal" not in shallow.alternatives
    assert recommend("relu", depth=50, residual=True).initializer == initlab.get("he_normal")
