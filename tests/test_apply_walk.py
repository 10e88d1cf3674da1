"""initlab.apply: random streams, names, tied and parametrized weights, lazy modules, errors and
the all-or-nothing guarantee."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
from torch.nn.utils import parametrizations

import initlab
from initlab.modelinit import RNG_BACKENDS, Plan, RngBackend, Rule
from initlab.util.hashing import stable_u64


@pytest.fixture(autouse=True)
def _no_grad():
    with torch.no_grad():
        yield


def net(extra: bool = False):
    layers = [nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 20)]
    if extra:
        layers += [nn.ReLU(), nn.Linear(20, 5)]
    return nn.Sequential(*layers)


def values(m):
    return {n: p.detach().clone() for n, p in m.named_parameters()}


def test_deterministic_and_seed_dependent():
    a, b, c = net(), net(), net()
    initlab.apply(a, "he", seed=7)
    initlab.apply(b, "he", seed=7)
    initlab.apply(c, "he", seed=8)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a[0].weight, c[0].weight)


def test_stream_is_the_documented_generator():
    m = net()
    rep = initlab.apply(m, Plan([Rule("0.weight", "he_normal")], warn_unused=False), seed=3)
    g = torch.Generator().manual_seed(stable_u64(3, "0.weight") % 2**63)
    expected = initlab.torch.init_(torch.empty(20, 10), "he_normal", generator=g)
    assert torch.equal(m[0].weight, expected)
    assert rep["0.weight"].stream_keys == ["0.weight"]
    assert rep.seed == 3 and "torch-generator" in rep.stream_version


def test_adding_a_layer_leaves_other_parameters_unchanged():
    small, big = net(), net(extra=True)
    initlab.apply(small, "glorot", seed=1)
    initlab.apply(big, "glorot", seed=1)
    for name, v in values(small).items():
        assert torch.equal(v, dict(big.named_parameters())[name]), name


def test_initializing_one_parameter_does_not_shift_another():
    a, b = net(), net()
    initlab.apply(a, "he", seed=0)
    initlab.apply(b, Plan([Rule("2.weight", "he_normal")], warn_unused=False), seed=0)
    assert torch.equal(a[2].weight, b[2].weight)


class Wrapper(nn.Module):   # like DDP: the model under `module.`
    def __init__(self, module):
        super().__init__()
        self.module = module


def test_wrapper_prefixes_are_stripped():
    a, b = net(), Wrapper(net())
    initlab.apply(a, "he", seed=4)
    rep = initlab.apply(b, "he", seed=4)
    assert torch.equal(a[0].weight, b.module[0].weight)
    assert rep["0.weight"].name == "0.weight"
    # rules match the canonical names too
    initlab.apply(b, Plan([Rule("0.weight", "zeros")], warn_unused=False), seed=0)
    assert torch.count_nonzero(b.module[0].weight) == 0
    # and a glob written with the wrapper's prefix (the model's own names) matches as well
    initlab.apply(b, Plan([Rule("module.0.weight", "ones")], warn_unused=False), seed=0)
    assert torch.all(b.module[0].weight == 1)


class _Forwarding(Wrapper):
    def forward(self, x):
        return self.module(x)


def test_auto_on_a_wrapped_model_keeps_its_per_layer_choices():
    """auto's rules name the layers as the model does (`module.0`): a tanh MLP under a
    DDP-like wrapper got LeCun from the generic rule instead of its Glorot, and LSUV looked its
    weights up by those names."""
    plain = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 4))
    wrapped = _Forwarding(nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 4)))
    ra = initlab.apply(plain, "auto", seed=1)
    rb = initlab.apply(wrapped, "auto", seed=1)
    assert rb["0.weight"].initializer == ra["0.weight"].initializer == "glorot_uniform()"
    assert rb["0.weight"].rule == "auto module.0"
    assert all(torch.equal(p, q) for p, q in zip(plain.parameters(), wrapped.parameters()))
    x = torch.randn(64, 8, generator=torch.Generator().manual_seed(0))
    rep = initlab.lsuv(wrapped, x, seed=0)
    assert [layer.name for layer in rep.layers] == ["module.0", "module.2"] and rep.converged


class Tied(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(30, 8)
        self.head = nn.Linear(8, 30, bias=False)
        self.head.weight = self.emb.weight


def test_tied_parameters_initialized_once_with_aliases():
    m = Tied()
    rep = initlab.apply(m, Plan([Rule("head.weight", initlab.normal(std=0.5))]), seed=0)
    assert len(rep.records) == 1
    rec = rep["emb.weight"]
    assert rec.aliases == ("head.weight",) and rep["head.weight"] is rec
    assert rec.init["name"] == "normal" and m.head.weight is m.emb.weight
    assert "(= head.weight)" in str(rep)


def test_weight_norm_and_spectral_norm_initialize_the_original():
    plain = nn.Sequential(nn.Linear(10, 20), nn.Linear(20, 5))
    wn = nn.Sequential(parametrizations.weight_norm(nn.Linear(10, 20)),
                       parametrizations.spectral_norm(nn.Linear(20, 5)))
    initlab.apply(plain, "he", seed=2)
    rep = initlab.apply(wn, "he", seed=2)
    # weight_norm: g and v from right_inverse of the draw, so the effective weight is the draw
    assert torch.allclose(wn[0].weight, plain[0].weight, atol=1e-6)
    assert torch.allclose(wn[0].parametrizations.weight.original1, plain[0].weight)
    # spectral_norm: the draw goes into `original`
    assert torch.equal(wn[1].parametrizations.weight.original, plain[1].weight)
    assert rep["0.weight"].status == "initialized" and rep["1.weight"].status == "initialized"
    assert {r.name for r in rep.records} == {"0.weight", "0.bias", "1.weight", "1.bias"}


def test_lazy_modules_raise_until_materialized():
    m = nn.Sequential(nn.LazyLinear(4))
    with pytest.raises(ValueError, match=r"uninitialized \(lazy\) parameters: `0.weight`"):
        initlab.apply(m, "he", seed=0)
    m(torch.zeros(2, 3))
    initlab.apply(m, "he", seed=0)
    assert m[0].weight.shape == (4, 3)


def test_unmatched_parameters_listed_or_strict_error():
    m = net()
    before = values(m)
    rep = initlab.apply(m, Plan([Rule("0.*", "zeros")]), seed=0)
    assert rep.unmatched == ["2.weight", "2.bias"]
    assert torch.equal(m[2].weight, before["2.weight"])
    assert "2 unmatched" in str(rep)
    with pytest.raises(ValueError, match=r"no rule matches `2.weight`, `2.bias` and the plan is "
                                         r"strict"):
        initlab.apply(m, Plan([Rule("0.*", "ones")], strict=True), seed=0)
    assert torch.count_nonzero(m[0].weight) == 0       # unchanged by the failed call


def test_strict_override_keeps_the_plan_otherwise():
    m = net()
    plan = Plan([Rule("*", "zeros")], name="mine", description="d", warn_unused=False,
                reset_running_stats=False, options={"k": 1})
    rep = initlab.apply(m, plan, seed=0, strict=True)
    assert rep.plan.strict and not plan.strict
    assert {**rep.plan.to_dict(), "strict": False} == plan.to_dict()


def test_keep_leaves_a_parameter_alone():
    m = net()
    before = values(m)
    rep = initlab.apply(m, Plan([Rule("2.weight", "keep"), Rule("*", "zeros")]), seed=0)
    assert torch.equal(m[2].weight, before["2.weight"])
    assert rep["2.weight"].status == "kept"


def test_bad_shape_is_an_error_naming_the_parameter_and_nothing_changes():
    m = net()
    before = values(m)
    plan = Plan([Rule(nn.Linear, weight="he_normal", bias="orthogonal")])
    with pytest.raises(ValueError) as exc:
        initlab.apply(m, plan, seed=0)
    msg = str(exc.value)
    assert "`0.bias`" in msg and "`2.bias`" in msg and "2 problem(s)" in msg
    assert "nothing was changed" in msg
    assert all(torch.equal(v, dict(m.named_parameters())[n]) for n, v in before.items())


def test_a_failure_while_writing_restores_everything():
    calls = []

    def flaky(tensor, init, **kw):
        calls.append(kw["key"])
        if len(calls) == 3:
            raise RuntimeError("device fell over")
        RNG_BACKENDS["torch"].fill(tensor, init, **kw)

    RNG_BACKENDS["flaky"] = RngBackend("flaky", "test", flaky)
    try:
        m = net()
        before = values(m)
        with pytest.raises(RuntimeError, match="device fell over"):
            initlab.apply(m, "he", seed=0, rng="flaky")
        assert all(torch.equal(v, dict(m.named_parameters())[n]) for n, v in before.items())
    finally:
        del RNG_BACKENDS["flaky"]


def test_custom_rng_backend_is_dispatched_and_recorded():
    seen = []

    def fill(tensor, init, *, seed, key, fans, role, layout):
        seen.append((key, fans, role))
        tensor.fill_(float(len(seen)))

    RNG_BACKENDS["fake"] = RngBackend("fake", "fake-v0", fill)
    try:
        m = nn.Sequential(nn.Linear(3, 2))
        rep = initlab.apply(m, "he", seed=0, rng="fake")
        assert rep.rng == "fake" and rep.stream_version.startswith("fake-v0")
        assert seen == [("0.weight", (3, 2), "weight"), ("0.bias", (3, 2), "bias")]
    finally:
        del RNG_BACKENDS["fake"]
    with pytest.raises(ValueError, match="`rng` must be one of"):
        initlab.apply(m, "he", seed=0, rng="fake")


@pytest.mark.parametrize("call, exc, match", [
    (lambda: initlab.apply([nn.Linear(2, 2)], "he", seed=0), TypeError,
     "`model` must be a torch.nn.Module"),
    (lambda: initlab.apply(nn.Linear(2, 2), "hee", seed=0), ValueError,
     "`plan` must be a built-in plan name; got 'hee'.*Did you mean 'he'"),
    (lambda: initlab.apply(nn.Linear(2, 2), "he", seed=-1), ValueError, "`seed` must be >= 0"),
    (lambda: initlab.apply(nn.Linear(2, 2), "he", seed=None), TypeError, "`seed` must be given"),
    (lambda: Rule(nn.Linear, weight="he_normall"), ValueError,
     "`name` must be a registered initializer"),
    (lambda: Rule(nn.Linear), ValueError, "`init` must be given"),
    (lambda: Rule(3, "zeros"), TypeError, "`match` must be a glob string"),
    (lambda: Plan.from_dict({"rules": [{"module": ["torch.nn.Linearr"], "init": "zeros"}]}),
     ValueError, "`module` must name a module type known to initlab"),
    (lambda: Plan.from_dict({"rules": [{"pattern": "*", "init": "zeros", "bogus": 1}]}),
     ValueError, "`rule` has unknown key"),
    (lambda: initlab.apply(nn.Linear(2, 2), "gpt2", seed=0), ValueError,
     "`n_layer` could not be inferred"),
    (lambda: initlab.apply(nn.Linear(2, 2), "he", seed=0, n_layer=3), ValueError,
     "`options` are not accepted by the 'he' plan"),
])
def test_error_messages(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_module_type_by_bare_class_name_and_qualified_name():
    m = net()
    initlab.apply(m, Plan.from_dict({"rules": [
        {"module": ["Linear"], "params": {"weight": {"name": "ones"}, "bias": "zeros"}}]}), seed=0)
    assert torch.equal(m[0].weight, torch.ones(20, 10))
    p = Plan.from_dict({"rules": [{"module": ["torch.nn.modules.linear.Linear"], "init": "zeros"}]})
    assert p.rules[0].module == (nn.Linear,)


def test_expected_std_recorded_for_orthogonal():
    m = nn.Sequential(nn.Linear(30, 60))
    rep = initlab.apply(m, "orthogonal", seed=0)
    # semi-orthogonal (60, 30): sum of squares = 30, so the element std is sqrt(30 / 1800)
    assert rep["0.weight"].expected_std == pytest.approx(math.sqrt(30 / 1800))
    r = rep["0.weight"]   # the root mean square is exact: sqrt(std^2 + mean^2)
    assert math.hypot(r.std, r.mean) == pytest.approx(math.sqrt(30 / 1800), rel=1e-5)


def test_counter_rng_from_initlab_scale():
    try:
        import initlab.scale  # noqa: F401  (registers "counter")
    except ImportError as exc:
        pytest.skip(f"initlab.scale is not importable ({exc})")
    a, b = net(), net()
    rep = initlab.apply(a, "he", seed=0, rng="counter")
    initlab.apply(b, "he", seed=0, rng="counter")
    assert rep.rng == "counter" and "torch-generator" not in rep.stream_version
    assert torch.equal(a[0].weight, b[0].weight)
    n = a[0].weight.numel()
    s = float(a[0].weight.double().std())
    assert abs(s / math.sqrt(2 / 10) - 1) < 6 / math.sqrt(2 * (n - 1))


def test_two_parameters_with_one_canonical_name_are_refused_before_any_write():
    """`_orig_mod.` is stripped anywhere, so `_orig_mod.weight` and `weight` would share a
    stream: refused, naming both, and nothing is written."""
    import initlab

    m = nn.Module()
    m.weight = nn.Parameter(torch.full((3, 4), 7.0))
    m._orig_mod = nn.Module()
    m._orig_mod.weight = nn.Parameter(torch.full((3, 4), 7.0))
    with pytest.raises(ValueError, match=r"`weight` and `_orig_mod.weight`.*same canonical name"):
        initlab.apply(m, initlab.Plan([initlab.Rule("*", initlab.normal())]), seed=0)
    assert torch.all(m.weight == 7) and torch.all(m._orig_mod.weight == 7)
