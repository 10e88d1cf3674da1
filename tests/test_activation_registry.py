"""The activation registry: one entry per activation, its gains, and what modules and calls it is."""

from __future__ import annotations

import functools
import importlib
import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from initlab import InitlabError
from initlab.backends import torch_activations
from initlab.core.activations import (
    ACTIVATION_NAMES,
    SPECS,
    activation,
    lookup_function,
    lookup_module,
)
from initlab.core.gains import calculate_gain
from initlab.theory._net import torch_activation

transformers_activations = pytest.importorskip("transformers.activations")
TA = transformers_activations


def _module_of(target: str, kwargs: dict):
    module, _, attr = target.rpartition(".")
    return getattr(importlib.import_module(module), attr)(**kwargs)


@pytest.mark.parametrize("name", list(SPECS))
def test_every_form_is_found_and_computes_the_entry(name):
    """Every module form, built with its fixed settings, is looked up as its own entry, and its
    torch output equals the entry's NumPy function (to float64 rounding; the tanh-approximation
    forms and ``relu6`` via Hardtanh included)."""
    spec = SPECS[name]
    x = torch.linspace(-8, 8, 801, dtype=torch.float64)
    ref = activation(name)
    n_mod = 0
    for form in spec.forms:
        if form.kind != "module" or (form.when is not None and name != "xielu"):
            continue  # (xIELU's condition holds for the module as built; ClippedGELU needs args)
        m = _module_of(form.target, dict(form.fixed)).double().eval()  # RReLU: eval slope
        found = lookup_module(m)
        assert found is not None and found[0].name == name, form.target
        want = ref.f(x.numpy()) if found[1] is None else activation(name, found[1]).f(x.numpy())
        got = m(x.clone()).detach().numpy()
        # FastGELU's constant 0.7978845608 is sqrt(2/pi) to 3e-11; float64 rounding elsewhere;
        # xIELU keeps its slopes in bfloat16 (softplus of them is 0.8 to 2e-3, times x^2 <= 64)
        tol = 0.2 if name == "xielu" else 1e-9
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol, err_msg=form.target)
        n_mod += 1
    assert n_mod >= 1  # every entry is some module


@pytest.mark.parametrize("module, name, param", [
    (nn.ReLU6(), "relu6", None), (nn.Hardtanh(0.0, 6.0), "relu6", None),
    (nn.Hardtanh(), "hardtanh", None), (nn.LeakyReLU(0.2), "leaky_relu", 0.2),
    (nn.PReLU(init=0.1), "leaky_relu", 0.1), (nn.RReLU(0.1, 0.3), "leaky_relu", 0.2),
    (nn.ELU(0.5), "elu", 0.5), (nn.CELU(2.0), "celu", 2.0), (nn.Softplus(beta=2.0), "softplus", 2.0),
    (nn.GELU(), "gelu", None), (nn.GELU(approximate="tanh"), "gelu_tanh", None),
    (TA.NewGELUActivation(), "gelu_tanh", None), (TA.QuickGELUActivation(), "quick_gelu", None),
    (TA.GELUActivation(), "gelu", None), (TA.ACT2FN["gelu_10"], "gelu", None),
    (TA.ACT2FN["gelu_pytorch_tanh"], "gelu_tanh", None), (TA.ACT2FN["swish"], "silu", None),
    (TA.ACT2FN["silu"], "silu", None), (TA.ACT2FN["relu2"], "relu_squared", None),
])
def test_lookup_module(module, name, param):
    act, p = lookup_module(module)
    assert act.name == name
    assert p == pytest.approx(param) if param is not None else p is None
    assert act.param == p


def test_subclass_found_and_unknown_settings_or_non_activations_are_none():
    class MyReLU(nn.ReLU):
        pass

    assert lookup_module(MyReLU())[0].name == "relu"
    for m in (nn.Hardtanh(-2.0, 2.0), nn.Identity(), nn.Linear(2, 2), TA.LaplaceActivation(),
              TA.ClippedGELUActivation(-1.0, 1.0)):
        assert lookup_module(m) is None, m


X = torch.randn(4)


@pytest.mark.parametrize("func, args, kwargs, name, param", [
    (torch.relu, (X,), {}, "relu", None), (F.relu, (X,), {}, "relu", None),
    (torch.Tensor.relu, (X,), {}, "relu", None), (torch.Tensor.relu_, (X,), {}, "relu", None),
    (F.relu_, (X,), {}, "relu", None), (X.relu, (), {}, "relu", None),
    (torch.clamp, (X,), {"min": 0}, "relu", None), (torch.Tensor.clamp, (X, 0, 6), {}, "relu6", None),
    (F.relu6, (X,), {}, "relu6", None), (F.hardtanh, (X, 0.0, 6.0), {}, "relu6", None),
    (F.hardtanh, (X,), {}, "hardtanh", None),
    (F.gelu, (X,), {}, "gelu", None), (F.gelu, (X,), {"approximate": "tanh"}, "gelu_tanh", None),
    (functools.partial(F.gelu, approximate="tanh"), (X,), {}, "gelu_tanh", None),
    (F.leaky_relu, (X, 0.2), {}, "leaky_relu", 0.2), (F.leaky_relu, (X,), {}, "leaky_relu", 0.01),
    (F.leaky_relu, (X,), {"negative_slope": 0.3}, "leaky_relu", 0.3),
    (F.elu, (X,), {"alpha": 0.5}, "elu", 0.5), (F.elu_, (X,), {}, "elu", 1.0),
    (torch.tanh, (X,), {}, "tanh", None), (F.tanh, (X,), {}, "tanh", None),
    (torch.Tensor.tanh, (X,), {}, "tanh", None), (torch.sigmoid, (X,), {}, "sigmoid", None),
    (torch.Tensor.sigmoid_, (X,), {}, "sigmoid", None), (torch.special.expit, (X,), {}, "sigmoid", None),
    (F.silu, (X,), {}, "silu", None), (F.mish, (X,), {}, "mish", None),
    (F.softplus, (X,), {}, "softplus", 1.0), (torch.selu, (X,), {}, "selu", None),
    (F.hardswish, (X,), {}, "hardswish", None), (F.prelu, (X, torch.tensor([0.25])), {}, "leaky_relu", 0.25),
])
def test_lookup_function(func, args, kwargs, name, param):
    act, p = lookup_function(func, args, kwargs)
    assert act.name == name
    assert p == pytest.approx(param) if param is not None else p is None


@pytest.mark.parametrize("func, args, kwargs", [
    (torch.add, (X, X), {}), (torch.clamp, (X,), {"min": -1}), (torch.Tensor.clamp, (X, torch.zeros(4)), {}),
    (F.hardtanh, (X, -2.0, 2.0), {}), (torch.erf, (X,), {}), (lambda x: x, (X,), {}),
])
def test_lookup_function_none(func, args, kwargs):
    assert lookup_function(func, args, kwargs) is None


def test_function_lookup_sees_what_a_torch_function_mode_sees():
    """A probe under ``TorchFunctionMode`` sees the outermost call; each is looked up."""
    seen = []

    class Mode(torch.overrides.TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            found = lookup_function(func, args, kwargs)
            if found is not None:
                seen.append((found[0].name, found[1]))
            return func(*args, **(kwargs or {}))

    x = torch.randn(3)
    with Mode():
        F.relu(x), torch.relu(x), x.relu(), x.tanh(), F.gelu(x, approximate="tanh"), nn.SiLU()(x)
        F.leaky_relu(x, 0.2), torch.add(x, 1)
    assert seen == [("relu", None)] * 3 + [("tanh", None), ("gelu_tanh", None), ("silu", None),
                                           ("leaky_relu", 0.2)]


def test_aliases_and_names():
    assert activation("swish") == activation("silu")
    assert activation("gelu_new").name == "gelu_tanh"
    assert activation("relu2").name == "relu_squared"
    assert activation("identity").name == "linear"
    assert len(set(ACTIVATION_NAMES)) == len(ACTIVATION_NAMES)
    assert activation("relu6") != activation("relu")


def test_gains_on_the_activation_match_reference_values():
    # /work/shared/docs/references.md: forward tanh 1.59254, gelu 1.53353, silu 1.67653
    assert activation("tanh").forward_gain() == pytest.approx(1.59254, abs=1e-5)
    assert activation("gelu").forward_gain() == pytest.approx(1.53353, abs=1e-5)
    assert activation("silu").forward_gain() == pytest.approx(1.67653, abs=1e-5)
    assert activation("tanh").backward_gain() == pytest.approx(1.46741, abs=1e-5)
    # relu6 has its own gain: E[min(max(z,0),6)^2] = 1/2 minus a 6-sigma tail (< 1e-8)
    assert activation("relu6").forward_gain() == pytest.approx(math.sqrt(2), rel=1e-7)
    # relu^2: E[relu(z)^4] = 3/2, so the forward gain is sqrt(2/3); E[(2 relu(z))^2] = 2
    assert activation("relu_squared").forward_gain() == pytest.approx(math.sqrt(2 / 3), rel=1e-10)
    assert activation("relu_squared").backward_gain() == pytest.approx(math.sqrt(0.5), rel=1e-10)


@pytest.mark.parametrize("name", list(SPECS))
def test_forward_gain_against_monte_carlo(name):
    """Quadrature gain vs a Monte Carlo estimate of E[f(z)^2] with 2e5 draws (seed 0); the
    tolerance is 5 standard errors of that mean, propagated to the gain (d g / g = -dm/(2m))."""
    act = activation(name)
    z = np.random.default_rng(0).standard_normal(200_000)
    f2 = act.f(z) ** 2
    m, se = f2.mean(), f2.std() / math.sqrt(z.size)
    assert act.forward_gain() == pytest.approx(1 / math.sqrt(m), rel=5 * se / (2 * m) + 1e-12)


def test_calculate_gain_reads_the_registry_and_equals_torch():
    for n in ("linear", "conv2d", "sigmoid", "tanh", "relu", "leaky_relu", "selu"):
        assert calculate_gain(n) == torch.nn.init.calculate_gain(n)
        if n not in ("conv2d",):
            assert SPECS[n].torch_gain is not None
    assert SPECS["gelu"].torch_gain is None


# a non-default parameter per entry that has one
PARAMS = {"leaky_relu": 0.2, "elu": 0.5, "celu": 0.5, "softplus": 2.0}


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_every_name_has_a_torch_function_that_computes_the_entry(name):
    """Every registry name (aliases included) has a torch function, read from its entry's
    function form: an entry added without one fails here. Its values and its autograd gradient
    (the theory's Jacobians) equal the entry's NumPy f and df, at the default and at another
    parameter (the gradient away from the kinks, where the derivative is a convention)."""
    x = torch.linspace(-8, 8, 801, dtype=torch.float64, requires_grad=True)
    for param in {None, PARAMS.get(activation(name).name)}:
        ref = activation(name, param)
        y = torch_activations.function(name, param)(x)
        (dy,) = torch.autograd.grad(y.sum(), x)
        xs = x.detach().numpy()
        np.testing.assert_allclose(y.detach().numpy(), ref.f(xs), rtol=1e-9, atol=1e-12)
        smooth = np.all([np.abs(xs - k) > 1e-6 for k in ref.kinks], axis=0)
        # rtol 1e-7: torch's float64 hardsigmoid backward uses 1/6 rounded to float32 (3e-8)
        np.testing.assert_allclose(dy.numpy()[smooth], ref.df(xs)[smooth], rtol=1e-7, atol=1e-12)
    assert torch_activation is torch_activations.function      # the theory's MLP uses this one


def test_torch_function_of_activation_objects_and_callables():
    assert torch_activations.function(activation("leaky_relu", 0.2)).keywords == \
        {"negative_slope": 0.2}
    assert torch_activations.function("quick_gelu") is torch_activations.quick_gelu
    assert torch_activations.function("relu2") is torch_activations.relu_squared
    assert torch_activations.function(torch.erf) is torch.erf      # any other callable: as it is
    # the registry knows initlab's own torch functions as their entries
    assert lookup_function(torch_activations.quick_gelu, (X,))[0].name == "quick_gelu"
    assert lookup_function(torch_activations.relu_squared, (X,))[0].name == "relu_squared"
    with pytest.raises(InitlabError, match=r"`activation` must be one of .*'quick_gelu'"):
        torch_activations.function("quick-gelu")


def test_an_entry_without_a_torch_function_form_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch_activations, "function_form", lambda name, param=None: None)
    with pytest.raises(InitlabError, match=r"`activation` has no torch function form in the "
                       r"registry \(entries with one: \); got 'relu'\. Fix: pass a torch "
                       r"callable that computes it, or add a function form to its entry in "
                       r"initlab\.core\.activations"):
        torch_activations.function("relu")


@pytest.mark.parametrize("name", list(SPECS))
def test_torch_module_of_every_entry_is_the_entry_or_a_clear_error(name):
    if name == "linear":
        assert isinstance(torch_activations.module(name), nn.Identity)
    elif name in ("quick_gelu", "relu_squared", "xielu"):  # no torch.nn module: transformers'
        # only
        with pytest.raises(InitlabError, match=rf"has no torch.nn module form .*; got '{name}'"
                           rf"\. Fix: use function\('{name}'\)"):
            torch_activations.module(name)
    else:
        param = PARAMS.get(name)
        act, p = lookup_module(torch_activations.module(name, param))
        assert act.name == name and p == (param if param is not None else act.param)


def test_xielu_is_the_module_at_its_starting_slopes_only():
    """transformers' XIELUActivation is the registry's xielu as built (its slopes softplus(alpha_p)
    and beta + softplus(alpha_n) at 0.8, in bfloat16) and on meta, and is nothing once a slope
    has moved by more than the bfloat16 rounding or beta differs."""
    m = TA.XIELUActivation()
    assert lookup_module(m)[0].name == "xielu"
    x = torch.linspace(-8, 8, 801, dtype=torch.float64)
    exact = TA.XIELUActivation(dtype=torch.float64)       # slopes 0.8 to float64 rounding
    np.testing.assert_allclose(exact(x).detach().numpy(), activation("xielu").f(x.numpy()),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(torch_activations.xielu(x).numpy(), activation("xielu").f(x.numpy()),
                               rtol=1e-12, atol=1e-12)
    with torch.device("meta"):
        assert lookup_module(TA.XIELUActivation())[0].name == "xielu"
    moved = TA.XIELUActivation()
    with torch.no_grad():
        moved.alpha_p.fill_(2.0)                            # softplus(2) = 2.13
    assert lookup_module(moved) is None
    assert lookup_module(TA.XIELUActivation(beta=0.3)) is None
    assert lookup_module(TA.XIELUActivation(alpha_n_init=0.6)) is None


def test_prelu_on_meta_reads_as_torch_init_slope():
    with torch.device("meta"):
        m = nn.PReLU()
    act, p = lookup_module(m)
    assert act.name == "leaky_relu" and p == 0.25  # nn.PReLU's init, no values on meta
    assert lookup_module(nn.PReLU(init=0.1))[1] == pytest.approx(0.1)


# ---------------------------------------------------------------- output ranges

BOUNDED = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0), "softsign": (-1.0, 1.0),
           "hardtanh": (-1.0, 1.0), "relu6": (0.0, 6.0), "hardsigmoid": (0.0, 1.0)}
# a grid from -1e6 to 1e6, dense near 0 (where the kinks are) and reaching far into the tails
_XS = np.concatenate([-np.logspace(6, -4, 2001), [0.0], np.logspace(-4, 6, 2001)])


@pytest.mark.parametrize("name", list(SPECS))
def test_bounds_are_the_true_range_of_f(name):
    """``bounds`` is (inf f, sup f), read off the registry's own NumPy f: every value lies in it
    and the ends are reached (to 1e-5) at +-1e6; an entry without bounds grows past 1e5 there."""
    for param in {None, PARAMS.get(name)}:
        act = activation(name, param)
        y = act(_XS)
        if act.bounds is None:
            assert name not in BOUNDED
            assert max(abs(act(-1e6)), abs(act(1e6))) > 1e5
            continue
        lo, hi = act.bounds
        assert act.bounds == BOUNDED[name]
        assert lo <= y.min() and y.max() <= hi
        assert abs(y.min() - lo) < 1e-5 and abs(y.max() - hi) < 1e-5


def test_saturating_is_bounded_and_not_relu_like():
    """The doctor measures saturation where ``saturating``: the bounded entries but relu6 (whose
    flat lower half is dead units, ``relu_like``); the set it had as a hand-set flag."""
    names = {n for n in SPECS if activation(n).saturating}
    assert names == {"sigmoid", "tanh", "softsign", "hardtanh", "hardsigmoid"}
    assert activation("relu6").bounds == (0.0, 6.0) and activation("relu6").relu_like
    assert activation(np.tanh).bounds is None and not activation(np.tanh).saturating  # a callable


def test_spec_make_without_the_parameter_is_a_clear_error():
    # Spec.make(None) of a parametrized entry once returned functions that raised a bare
    # TypeError (None * x) when called; _build fills in the default, a direct call must pass it
    from initlab.core.activations import spec

    for name in ("leaky_relu", "elu", "celu", "softplus"):
        with pytest.raises(InitlabError, match=rf"`param` must be a number to build {name}.*"
                           r"got None.*Fix: pass a value"):
            spec(name).make(None)
        built = spec(name).make(spec(name).default)
        assert np.isfinite(built["f"](np.array([-1.0, 1.0]))).all()
    assert activation("elu").f(-1.0) == pytest.approx(math.expm1(-1.0))
