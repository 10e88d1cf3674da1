"""State-space mixers (Mamba, Mamba-2, Jamba, Bamba, a user's module) and gated linear-attention
decays (Qwen3-Next, Kimi Linear): the catalog's ``s4d_real``, ``time_step_bias`` and
``decay_rate_log``, their draws in every torch-side stream, and the rules every plan gives a
mixer's ``A_log``, ``D`` and time-step bias and a decay's ``A_log`` and ``dt_bias``
(:mod:`initlab.modelinit.ssm`).

Statistical checks: n i.i.d. draws; the sample mean has standard error sigma / sqrt(n), the
sample variance sqrt((m4 - sigma^4) / n) (m4 by quadrature), a fraction p sqrt(p (1 - p) / n);
we allow 6 standard errors and KS p > 1e-6 (fixed seeds: deterministic outcomes, a correct
implementation fails with probability ~1e-9 per check over the choice of seed).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn as nn
from scipy import stats

import initlab
from initlab.modelinit.ssm import mixers, mlstm_gates

Z = 6.0
N = 200_000


def _row(n):
    return np.log(np.arange(1, n + 1, dtype=np.float64))


def _softplus(x):
    return np.logaddexp(0.0, np.asarray(x, dtype=np.float64))


def _numpy_and_torch(ini):
    """N float64 draws of ``ini`` from NumPy and from torch (seed 0 each), named."""
    t = torch.empty(N, dtype=torch.float64)
    initlab.torch.init_(t, ini, generator=torch.Generator().manual_seed(0))
    return [("numpy", ini.sample((N,), seed=0, dtype="float64")), ("torch", t.numpy())]


def _check_moments(x, dist, what):
    """Sample mean and variance against the distribution's (standard errors as in the module
    docs); returns x as a flat float64 array."""
    x = np.asarray(x, dtype=np.float64).ravel()
    m, s = dist.moments()
    assert abs(x.mean() - m) <= Z * s / math.sqrt(x.size), (what, x.mean(), m)
    tol = Z * math.sqrt((_m4(dist) - s**4) / x.size)
    assert abs(x.var() - s * s) <= tol, (what, x.var(), s * s, tol)
    return x


def _m4(dist):
    m, _ = dist.moments()
    u, w = np.polynomial.legendre.leggauss(64)
    return float(0.5 * np.sum(w * (dist.from_unit(0.5 * u + 0.5) - m) ** 4))


# ----------------------------------------------------------------------------- s4d_real

@pytest.mark.parametrize("shape", [(6, 5), (7,), (2, 3, 4)])
def test_s4d_real_is_log_1_to_n_along_the_last_axis_everywhere(shape):
    ini = initlab.get("s4d_real")
    want = np.broadcast_to(_row(shape[-1]), shape)
    np.testing.assert_array_equal(ini.sample(shape, seed=0, dtype="float64"), want)
    t = torch.empty(shape, dtype=torch.float64)
    initlab.torch.init_(t, ini)
    np.testing.assert_array_equal(t.numpy(), want)
    m, s = ini.resolve(shape).moments(shape)
    assert m == pytest.approx(want.mean(), abs=1e-12) and s == pytest.approx(want.std(), abs=1e-12)


def test_s4d_real_under_the_counter_stream_and_any_sharding():
    from initlab.scale.sharded import counter_fill_

    full = torch.empty(6, 5)
    counter_fill_(full, initlab.get("s4d_real"), seed=0, name="A_log")
    np.testing.assert_array_equal(full.numpy(), np.broadcast_to(_row(5), (6, 5)).astype(np.float32))
    part = torch.empty(6, 2)
    counter_fill_(part, initlab.get("s4d_real"), seed=0, name="A_log", global_shape=(6, 5),
                  offsets=(0, 3))
    assert torch.equal(part, full[:, 3:])


def test_s4d_real_refuses_what_cannot_hold_it():
    with pytest.raises(initlab.InitlabError, match="s4d_real"):
        initlab.torch.init_(torch.empty(()), "s4d_real")
    with pytest.raises(initlab.InitlabError, match="0.693"):
        initlab.torch.init_(torch.empty(4, 3, dtype=torch.int32), "s4d_real")


# ----------------------------------------------------------------------------- time_step_bias

def _check_time_step_draws(x, dist, what):
    x = np.asarray(x, dtype=np.float64).ravel()
    n = x.size
    m, s = dist.moments()
    assert abs(x.mean() - m) <= Z * s / math.sqrt(n), (what, x.mean(), m)
    tol = Z * math.sqrt((_m4(dist) - s**4) / n)
    assert abs(x.var() - s * s) <= tol, (what, x.var(), s * s, tol)
    # log dt is uniform on [log dt_min, log dt_max]
    lo, hi = math.log(dist.dt_min), math.log(dist.dt_max)
    u = (np.log(_softplus(x)) - lo) / (hi - lo)
    assert u.min() >= -1e-5 and u.max() <= 1 + 1e-5, what
    assert stats.kstest(u, "uniform").pvalue > 1e-6, what


def test_time_step_bias_numpy_and_torch_draw_mambas_log_uniform_time_steps():
    ini = initlab.get("time_step_bias")
    dist = ini.resolve((N,))
    assert (dist.dt_min, dist.dt_max, dist.floor) == (0.001, 0.1, 1e-4)  # Mamba's defaults
    _check_time_step_draws(ini.sample((N,), seed=0, dtype="float64"), dist, "numpy")
    t = torch.empty(N)
    initlab.torch.init_(t, ini, generator=torch.Generator().manual_seed(0))
    _check_time_step_draws(t.numpy(), dist, "torch")
    t2 = torch.empty(N)
    initlab.torch.init_(t2, ini, generator=torch.Generator().manual_seed(0))
    assert torch.equal(t, t2)  # same generator state, same numbers


def test_time_step_bias_floor_holds_its_share_and_the_moments_see_the_kink():
    ini = initlab.get("time_step_bias", dt_min=1e-5, dt_max=0.1, dt_floor=1e-4)
    dist = ini.resolve((N,))
    x = ini.sample((N,), seed=1, dtype="float64")
    at_floor = np.isclose(_softplus(x), 1e-4, rtol=1e-9)
    p = math.log(10) / math.log(1e4)  # P(log-uniform dt < floor) = 1/4
    assert abs(at_floor.mean() - p) <= Z * math.sqrt(p * (1 - p) / N)
    assert _softplus(x).min() >= 1e-4 * (1 - 1e-9)
    m, s = dist.moments()
    assert abs(x.mean() - m) <= Z * s / math.sqrt(N)
    assert abs(x.std() - s) <= Z * s / math.sqrt(N)  # loose: SE(std) < s / sqrt(n) here


def test_time_step_bias_counter_stream_is_identical_whole_or_sharded():
    from initlab.scale.sharded import counter_fill_

    ini = initlab.get("time_step_bias")
    full = torch.empty(12, 5)
    counter_fill_(full, ini, seed=3, name="mixer.dt_bias")
    for offsets, shape in (((0, 0), (4, 5)), ((4, 0), (8, 5)), ((0, 2), (12, 3))):
        part = torch.empty(shape)
        counter_fill_(part, ini, seed=3, name="mixer.dt_bias", global_shape=(12, 5),
                      offsets=offsets)
        sl = tuple(slice(o, o + s) for o, s in zip(offsets, shape))
        assert torch.equal(part, full[sl]), offsets
    dt = _softplus(full.numpy())
    assert dt.min() >= 0.001 * (1 - 1e-6) and dt.max() <= 0.1 * (1 + 1e-6)


@pytest.mark.parametrize(("kw", "param"), [
    ({"dt_min": 0.0}, "dt_min"), ({"dt_min": 0.1, "dt_max": 0.01}, "dt_max"),
    ({"dt_floor": -1.0}, "dt_floor"), ({"dt_max": float("nan")}, "dt_max")])
def test_time_step_bias_refuses_a_bad_range(kw, param):
    with pytest.raises(initlab.InitlabError, match=param):
        initlab.get("time_step_bias", **kw)


# ----------------------------------------------------------------------------- decay_rate_log

def _check_decay_draws(x, lo, hi, what):
    """log A for A ~ U(lo, hi): moments against the closed form, every value in
    [log lo, log hi], exp(x) uniform."""
    dist = initlab.get("decay_rate_log", low=lo, high=hi).resolve((N,))
    x = _check_moments(x, dist, what)
    assert x.min() >= math.log(lo) - 1e-6 and x.max() <= math.log(hi) + 1e-6, what
    assert stats.kstest((np.exp(x) - lo) / (hi - lo), "uniform").pvalue > 1e-6, what


@pytest.mark.parametrize(("lo", "hi"), [(1.0, 16.0), (0.01, 16.0)])
def test_decay_rate_log_numpy_and_torch_draw_log_uniform_rates(lo, hi):
    for what, x in _numpy_and_torch(initlab.get("decay_rate_log", low=lo, high=hi)):
        _check_decay_draws(x, lo, hi, what)


def test_decay_rate_log_moments_are_the_integrals_of_log():
    """E[log A] and E[log^2 A] over U(a, b) by 200-point Gauss-Legendre quadrature (exact to
    ~1e-12 for this smooth integrand) against the closed form."""
    for lo, hi in ((1.0, 16.0), (0.01, 16.0), (2.0, 2.5)):
        m, s = initlab.get("decay_rate_log", low=lo, high=hi).resolve((4,)).moments()
        u, w = np.polynomial.legendre.leggauss(200)
        a = lo + (hi - lo) * (0.5 * u + 0.5)
        m1 = 0.5 * np.sum(w * np.log(a))
        m2 = 0.5 * np.sum(w * np.log(a) ** 2)
        assert m == pytest.approx(m1, rel=1e-6) and s == pytest.approx(math.sqrt(m2 - m1**2),
                                                                       rel=1e-5)
    dist = initlab.get("decay_rate_log", low=3.0, high=3.0).resolve((4,))
    assert dist.moments() == (pytest.approx(math.log(3.0)), 0.0)


def test_decay_rate_log_counter_stream_is_identical_whole_or_sharded():
    from initlab.scale.sharded import counter_fill_

    ini = initlab.get("gdn_a_log")  # the alias
    full = torch.empty(16)
    counter_fill_(full, ini, seed=3, name="linear_attn.A_log")
    part = torch.empty(6)
    counter_fill_(part, ini, seed=3, name="linear_attn.A_log", global_shape=(16,), offsets=(10,))
    assert torch.equal(part, full[10:])
    assert full.min() >= 0.0 and full.max() <= math.log(16.0) + 1e-6


@pytest.mark.parametrize(("kw", "param"), [
    ({"low": 0.0}, "low"), ({"low": -1.0}, "low"), ({"low": 4.0, "high": 2.0}, "high"),
    ({"high": float("inf")}, "high")])
def test_decay_rate_log_refuses_a_bad_range(kw, param):
    with pytest.raises(initlab.InitlabError, match=param):
        initlab.get("decay_rate_log", **kw)


# ----------------------------------------------------------------------------- recurrence_radius

def _check_radius_draws(x, r0, r1, what):
    """x = softplus^-1(-log a): moments against quadrature, every a = exp(-softplus(x)) in
    [r0, r1], a^2 uniform on [r0^2, r1^2] (KS)."""
    dist = initlab.get("recurrence_radius", min_rad=r0, max_rad=r1).resolve((N,))
    a = np.exp(-_softplus(_check_moments(x, dist, what)))
    assert a.min() >= r0 * (1 - 1e-9) and a.max() <= r1 * (1 + 1e-9), what
    assert stats.kstest((a**2 - r0**2) / (r1**2 - r0**2), "uniform").pvalue > 1e-6, what


@pytest.mark.parametrize(("r0", "r1"), [(0.9, 0.999), (0.5, 0.8)])
def test_recurrence_radius_numpy_and_torch_draw_griffins_ring(r0, r1):
    for what, x in _numpy_and_torch(initlab.get("recurrence_radius", min_rad=r0, max_rad=r1)):
        _check_radius_draws(x, r0, r1, what)


def test_recurrence_radius_matches_griffins_formula_and_its_bounds():
    """The reference's map, log(u^-1/2 - 1) for u = a^2 ~ U(r0^2, r1^2), at the ends and
    inside; the bounds are its values at the outer and inner radius."""
    dist = initlab.get("rglru_param").resolve((4,))   # the alias, Griffin's defaults
    u = np.array([0.0, 0.25, 0.5, 1.0])
    a2 = 0.9**2 + u * (0.999**2 - 0.9**2)
    np.testing.assert_allclose(dist.from_unit(u), np.log(a2**-0.5 - 1.0), rtol=1e-10)
    lo, hi = dist.bounds()
    assert lo == pytest.approx(math.log(1 / 0.999 - 1)) and hi == pytest.approx(math.log(1 / 0.9 - 1))


def test_recurrence_radius_counter_stream_is_identical_whole_or_sharded():
    from initlab.scale.sharded import counter_fill_

    ini = initlab.get("recurrence_radius")
    full = torch.empty(64)
    counter_fill_(full, ini, seed=3, name="rg_lru.recurrent_param")
    part = torch.empty(24)
    counter_fill_(part, ini, seed=3, name="rg_lru.recurrent_param", global_shape=(64,),
                  offsets=(40,))
    assert torch.equal(part, full[40:])
    lo, hi = ini.resolve((64,)).bounds()
    assert full.min() >= lo - 1e-5 and full.max() <= hi + 1e-5


@pytest.mark.parametrize(("kw", "param"), [
    ({"min_rad": 0.0}, "min_rad"), ({"min_rad": 1.2}, "min_rad"),
    ({"min_rad": 0.9, "max_rad": 0.8}, "max_rad"), ({"max_rad": 1.0}, "max_rad")])
def test_recurrence_radius_refuses_a_bad_ring(kw, param):
    with pytest.raises(initlab.InitlabError, match=param):
        initlab.get("recurrence_radius", **kw)


# ----------------------------------------------------------------------------- on models

hf = pytest.importorskip("hf_models")


def _check_mixers(model, what, dt_range=(0.001, 0.1), dt_weight=True):
    found = mixers(model)
    assert found, what
    params = dict(model.named_parameters())
    for mx in found:
        a = params[mx.a_log].detach().double().numpy()
        np.testing.assert_allclose(a, np.broadcast_to(_row(a.shape[-1]), a.shape), rtol=0,
                                   atol=1e-6, err_msg=f"{what} {mx.a_log}")
        assert torch.equal(params[mx.d], torch.ones_like(params[mx.d])), (what, mx.d)
        dt = _softplus(params[mx.dt_bias].detach().numpy())
        lo, hi = dt_range
        assert dt.min() >= lo * (1 - 1e-5) and dt.max() <= hi * (1 + 1e-5), (what, mx.dt_bias)
        assert len(np.unique(dt)) == dt.size, (what, "one step per channel, all different")
        if dt_weight and mx.dt_weight is not None:
            _check_dt_weight(params[mx.dt_weight], 1.0, what)
    return found


def _check_dt_weight(w, scale, what):
    """Mamba's U(+-s/sqrt(rank)): inside the bound, and the sample std at the uniform's
    b/sqrt(3) (relative standard error sqrt(0.8 / (4n)) for a uniform's sample std: the
    kurtosis of a uniform is 1.8), not LeCun's 1/sqrt(rank), sqrt(3) = 1.73 times larger."""
    w = w.detach().double()
    b = scale / math.sqrt(w.shape[-1])
    assert w.abs().max() <= b * (1 + 1e-6), (what, "bound")
    n = w.numel()
    assert abs(w.std().item() / (b / math.sqrt(3)) - 1) <= Z * math.sqrt(0.8 / (4 * n)), what


def _apply(model, plan, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = initlab.apply(model, plan, seed=0, **kw)
    unmatched = [str(w.message) for w in caught if "matched no rule" in str(w.message)]
    return report, unmatched


FACTORIES = ["mamba", "mamba2", "jamba", "bamba"]


@pytest.mark.parametrize("factory", FACTORIES)
@pytest.mark.parametrize("plan", ["auto", "he", "orthogonal", "gpt2", "torch_default"])
def test_every_plan_starts_a_mixer_as_mamba_does(factory, plan):
    """Before: every plan left A_log and D unmatched (a warning; materialize failed) and gave
    ``dt_proj.bias`` the layers' zero bias: every channel at dt = softplus(0) = 0.69."""
    model = getattr(hf, factory)()
    report, unmatched = _apply(model, plan)
    assert not unmatched, unmatched
    found = _check_mixers(model, f"{factory}/{plan}")
    rows = {r.name: r for r in report}
    for mx in found:
        assert rows[mx.dt_bias].initializer.startswith("time_step_bias"), rows[mx.dt_bias]
        assert rows[mx.a_log].initializer.startswith("s4d_real")
        assert "state space" in rows[mx.dt_bias].rule


def test_the_time_step_projection_follows_the_configs_scale_and_scheme():
    """Before: dt_proj.weight took the plan's layer init (LeCun N(0, 1/rank) under auto, He's
    2/rank under he): 3 and 6 times Mamba's variance."""
    model = hf.mamba(time_step_scale=2.0)
    report, _ = _apply(model, "he")
    for mx in mixers(model):
        _check_dt_weight(dict(model.named_parameters())[mx.dt_weight], 2.0, "scale 2")
        assert "time_step_scale 2 from config" in report[mx.dt_weight].why
    model = hf.mamba(time_step_init_scheme="constant")
    _apply(model, "auto")
    for mx in mixers(model):
        w = model.get_parameter(mx.dt_weight)
        assert torch.equal(w, torch.full_like(w, 1 / math.sqrt(w.shape[1]))), mx.dt_weight


def test_jambas_dt_proj_bias_is_not_the_linear_layers_zero_bias():
    model = hf.jamba()
    _apply(model, "auto")
    (mx,) = mixers(model)
    assert mx.dt_bias.endswith("dt_proj.bias")
    bias = dict(model.named_parameters())[mx.dt_bias]
    assert bias.abs().min() > 2.0  # softplus^-1 of dt <= 0.1 is below -2.25; 0 was the bug
    assert dict(model.named_parameters())[mx.dt_bias.replace("bias", "weight")].abs().sum() > 0


def test_the_time_step_range_comes_from_the_mixer_else_the_config():
    model = hf.mamba(time_step_min=0.01, time_step_max=0.05, time_step_floor=1e-3)
    report, _ = _apply(model, "he")
    _check_mixers(model, "mamba config range", dt_range=(0.01, 0.05))
    (row,) = [r for r in report if r.name.endswith("layers.0.mixer.dt_proj.bias")]
    assert "[0.01, 0.05]" in row.why and "config" in row.why
    m2 = hf.mamba2()
    assert {mx.dt_source for mx in mixers(m2)} == {"the mixer"}
    assert {mx.dt_source for mx in mixers(hf.jamba())} == {"Mamba's default"}


@pytest.mark.parametrize("factory", ["mamba", "mamba2"])
def test_materialize_a_meta_mamba_equals_apply_bit_for_bit(factory):
    ref = getattr(hf, factory)()
    initlab.apply(ref, "auto", seed=5)
    with torch.device("meta"):
        meta = getattr(hf, factory)()
    initlab.materialize(meta, "auto", seed=5, device="cpu")  # was: A_log, D unmatched: an error
    for (name, a), b in zip(ref.state_dict().items(), meta.state_dict().values()):
        assert torch.equal(a, b), name


DECAYS = {"qwen3_next": (0.01, 16.0), "kimi_linear": (1.0, 16.0)}


@pytest.mark.parametrize("factory", sorted(DECAYS))
@pytest.mark.parametrize("plan", ["auto", "he", "torch_default"])
def test_every_plan_starts_a_gated_decay_with_a_spread_of_rates_and_steps(factory, plan):
    """Before: A_log matched no rule (a warning; materialize failed) and dt_bias took a generic
    vector's init. Now A_log = log U(a, b) (FLA's Gated DeltaNet range, floored at 0.01, for
    Qwen3-Next; Kimi Linear's U(1, 16)) and softplus(dt_bias) a log-uniform step per channel."""
    from initlab.modelinit.ssm import gated_decays

    model = getattr(hf, factory)()
    report, unmatched = _apply(model, plan)
    assert not unmatched, unmatched
    found = gated_decays(model)
    assert found and {gd.rates for gd in found} == {DECAYS[factory]}
    params = dict(model.named_parameters())
    lo, hi = DECAYS[factory]
    for gd in found:
        a = params[gd.a_log].detach().double().numpy()
        assert a.min() >= math.log(lo) - 1e-6 and a.max() <= math.log(hi) + 1e-6
        assert len(np.unique(a)) == a.size
        dt = _softplus(params[gd.dt_bias].detach().numpy())
        assert dt.min() >= 0.001 * (1 - 1e-5) and dt.max() <= 0.1 * (1 + 1e-5)
        assert len(np.unique(dt)) == dt.size
        assert report[gd.a_log].initializer.startswith("decay_rate_log")
        assert report[gd.dt_bias].initializer.startswith("time_step_bias")
        assert report[gd.a_log].rule == "gated decay"


def test_a_gated_decays_ranges_come_from_the_config_when_it_has_them():
    model = hf.qwen3_next()
    model.config.linear_a_log_min, model.config.linear_a_log_max = 2.0, 4.0
    model.config.linear_dt_min, model.config.linear_dt_max = 0.01, 0.05
    report, _ = _apply(model, "auto")
    from initlab.modelinit.ssm import gated_decays

    (gd,) = gated_decays(model)
    assert gd.rates == (2.0, 4.0) and gd.dt_range[:2] == (0.01, 0.05)
    a = dict(model.named_parameters())[gd.a_log].detach().double().numpy()
    assert a.min() >= math.log(2.0) - 1e-6 and a.max() <= math.log(4.0) + 1e-6
    assert "config" in report[gd.a_log].why


@pytest.mark.parametrize("factory", sorted(DECAYS))
def test_materialize_a_meta_gated_decay_model_equals_apply_bit_for_bit(factory):
    ref = getattr(hf, factory)()
    initlab.apply(ref, "auto", seed=5)
    with torch.device("meta"):
        meta = getattr(hf, factory)()
    initlab.materialize(meta, "auto", seed=5, device="cpu")
    for (name, a), b in zip(ref.state_dict().items(), meta.state_dict().values()):
        assert torch.equal(a, b), name


def test_lsuv_keeps_a_mixers_structure():
    model = hf.mamba()
    ids = torch.randint(0, 64, (4, 16), generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        initlab.lsuv(model, {"input_ids": ids}, seed=0)
    _check_mixers(model, "lsuv")


class UserMixer(nn.Module):
    """A minimal selective-SSM block of a user's own, with the reference code's names."""

    def __init__(self, d=8, n=4):
        super().__init__()
        self.in_proj = nn.Linear(d, 2 * d)
        self.A_log = nn.Parameter(torch.zeros(d, n))
        self.D = nn.Parameter(torch.zeros(d))
        self.dt_bias = nn.Parameter(torch.zeros(d))
        self.out_proj = nn.Linear(d, d)

    def forward(self, x):
        h, z = self.in_proj(x).chunk(2, dim=-1)
        dt = nn.functional.softplus(h + self.dt_bias)
        decay = torch.exp(-dt[..., None] * torch.exp(self.A_log)).mean(-1)
        return x + self.out_proj(decay * h * nn.functional.silu(z) + self.D * h)


class GatedLinearAttention(nn.Module):
    """An A_log with neither D (a mixer) nor dt_bias (a gated decay): left unmatched."""

    def __init__(self, d=8):
        super().__init__()
        self.proj = nn.Linear(d, d)
        self.A_log = nn.Parameter(torch.zeros(4))

    def forward(self, x):
        return self.proj(x) * torch.exp(-self.A_log.exp()).mean()


def test_a_users_mixer_and_a_lookalike_that_is_not_one():
    model = nn.Sequential(UserMixer(), UserMixer())
    report, unmatched = _apply(model, "auto")
    assert not unmatched
    _check_mixers(model, "user mixer")
    other = GatedLinearAttention()
    _, unmatched = _apply(other, "he")
    assert unmatched and "A_log" in unmatched[0]
    assert torch.equal(other.A_log, torch.zeros(4))  # left as it was


@pytest.mark.parametrize("name", ["mup", "ntk"])
def test_width_parametrizations_keep_a_mixers_structure(name):
    """A_log is (d_inner, N): width on its first axis only, an ``input``-like class whose init
    no parametrization rescales (its fan_in N is not width); D and the dt bias are vectors."""
    model = hf.mamba(hidden_size=64)
    par = initlab.parametrize(model, name, base=lambda: hf.mamba(hidden_size=32), seed=0)
    # the time-step projection (d_inner, rank), rank ceil(hidden / 16): a hidden weight whose
    # effective value (ntk: stored x multiplier 1/sqrt(m_in)) is Mamba's at the target rank
    _check_mixers(model, name, dt_weight=False)
    for mx in mixers(model):
        w = model.get_parameter(mx.dt_weight) * par[mx.dt_weight].multiplier
        assert par[mx.dt_weight].klass == "hidden" and par[mx.dt_weight].m_in == 2.0
        _check_dt_weight(w, 1.0, name)
    (mx, *_) = mixers(model)
    assert par[mx.a_log].klass == "input" and par[mx.a_log].m_in == 1.0
    assert par[mx.d].klass == par[mx.dt_bias].klass == "vector"


@pytest.mark.parametrize("factory", ["mamba", "mamba2", "jamba"])
def test_auto_reads_a_mixers_layers_from_its_structure(factory):
    """The scan reads conv1d's, x_proj's and dt_proj's weights directly (``F.conv1d(x,
    weight=conv1d.weight)``, ``dt_proj.weight @ x``): the probe takes such a read as a call of
    the layer, so it sees the SiLU that follows conv1d; where it sees nothing after a layer,
    the mixer's structure says what follows (the projections: nothing, gain 1). SiLU's gain
    squared is 1/E[silu(z)^2] for z ~ N(0, 1), by quadrature here."""
    model = getattr(hf, factory)()
    report, _ = _apply(model, "auto")
    (mx, *_) = mixers(model)
    p = mx.name + "."
    z, w = np.polynomial.hermite_e.hermegauss(80)
    silu2 = float(np.sum(w * (z / (1 + np.exp(-z))) ** 2) / np.sqrt(2 * np.pi))
    conv = report[p + "conv1d.weight"]
    assert conv.init["params"]["scale"] == pytest.approx(1 / silu2, rel=1e-3)
    assert "unknown" not in conv.why.split("[")[0]
    assert "silu" in conv.why and ("probe" in conv.why or "mixer's structure" in conv.why)
    for local in ("in_proj", "x_proj"):
        if p + local + ".weight" in {r.name for r in report}:
            rec = report[p + local + ".weight"]
            assert rec.initializer == "lecun_normal()", (local, rec.initializer)
            assert "mixer's structure" in rec.why
    if mx.dt_weight is not None:   # Mamba's own start, whatever follows it
        assert report[mx.dt_weight].init["name"] == "variance_scaling"
        assert "Mamba's dt_init" in report[mx.dt_weight].why


@pytest.mark.parametrize("factory", ["mamba", "jamba"])
def test_the_doctor_measures_the_layers_a_scan_reads_directly(factory):
    """conv1d runs as ``F.conv1d(x, weight=conv1d.weight)`` and dt_proj as
    ``dt_proj.weight @ x`` inside the scan: each gets its row (the conv its SiLU from the
    mixer's structure), and |dL/dW| / |W| is a plain backward's."""
    model = getattr(hf, factory)()
    _apply(model, "auto")
    ids = torch.randint(0, 64, (2, 16), generator=torch.Generator().manual_seed(0))

    def loss(out):
        return out.logits.sum()

    model.zero_grad()
    loss(model(ids)).backward()
    rows = {s.name: s for s in initlab.doctor(model, ids, loss_fn=loss).layers}
    for mx in mixers(model):
        for local in ("conv1d", "dt_proj"):
            layer = model.get_submodule(f"{mx.name}.{local}")
            s = rows[f"{mx.name}.{local}"]
            assert s.n_units == layer.weight.shape[0]
            ratio = layer.weight.grad.double().norm() / layer.weight.detach().double().norm()
            assert s.grad_weight_ratio == pytest.approx(float(ratio), rel=1e-6), s.name
        conv = rows[f"{mx.name}.conv1d"]
        assert conv.activation == "silu" and conv.h_std is not None
    model.zero_grad()


# ----------------------------------------------------------------------------- linspace

@pytest.mark.parametrize(("shape", "start", "end"), [((4,), 3.0, 6.0), ((3, 7), -1.0, 2.5),
                                                     ((2, 1), 5.0, 9.0), ((2, 3, 5), 6.0, 3.0)])
def test_linspace_is_the_same_ramp_in_numpy_torch_and_every_stream(shape, start, end):
    from initlab.scale.sharded import counter_fill_

    ini = initlab.get("linspace", start=start, end=end)
    want = np.broadcast_to(np.linspace(start, end, shape[-1]), shape)
    np.testing.assert_allclose(ini.sample(shape, seed=0, dtype="float64"), want, rtol=0,
                               atol=1e-15)
    t = torch.empty(shape, dtype=torch.float64)
    initlab.torch.init_(t, ini, generator=torch.Generator().manual_seed(0))
    np.testing.assert_allclose(t.numpy(), want, rtol=0, atol=1e-15)
    # the counter stream, whole and as a shard of the last axis: the global ramp's slice
    full = torch.empty(shape)
    counter_fill_(full, ini, seed=0, name="fgate.bias")
    np.testing.assert_allclose(full.numpy(), want.astype(np.float32), rtol=0, atol=1e-6)
    if shape[-1] > 2:
        part = torch.empty(*shape[:-1], 2)
        counter_fill_(part, ini, seed=0, name="fgate.bias", global_shape=shape,
                      offsets=(0,) * (len(shape) - 1) + (1,))
        assert torch.equal(part, full[..., 1:3])
    m, s = ini.resolve(shape).moments(shape)
    assert m == pytest.approx(want.mean(), abs=1e-12) and s == pytest.approx(want.std(), abs=1e-12)
    assert ini.resolve(shape).bounds() == (min(start, end), max(start, end))


def test_linspace_refuses_what_cannot_hold_it():
    with pytest.raises(initlab.InitlabError, match="start"):
        initlab.get("linspace", start=float("nan"))
    with pytest.raises(initlab.InitlabError, match="end"):
        initlab.get("linspace", end=float("inf"))
    with pytest.raises(initlab.InitlabError, match="at least 1 dimension"):
        initlab.torch.init_(torch.empty(()), "linspace")
    # an integer tensor holds a ramp of integers only: linspace(3, 6) has 4.5 on 3 points
    with pytest.raises(initlab.InitlabError, match="4.5"):
        initlab.torch.init_(torch.empty(4, dtype=torch.int32), initlab.get("linspace", start=3,
                                                                           end=6))
    t = torch.empty(3, dtype=torch.int64)
    initlab.torch.init_(t, initlab.get("linspace", start=2, end=4))
    assert t.tolist() == [2, 3, 4]


# ----------------------------------------------------------------------------- RG-LRU

class BlockDiagonalLinear(nn.Module):
    """The reference code's block-diagonal gate (``w`` (heads, bw, bw), ``b`` (heads, bw))."""

    def __init__(self, width, heads):
        super().__init__()
        self.w = nn.Parameter(torch.full((heads, width // heads, width // heads), 7.0))
        self.b = nn.Parameter(torch.full((heads, width // heads), 7.0))

    def forward(self, x):
        h = x.reshape(*x.shape[:-1], self.w.shape[0], -1)
        return (torch.einsum("...hi,hij->...hj", h, self.w) + self.b).flatten(-2)


class UserRGLRU(nn.Module):
    """An RG-LRU written as the reference code writes it: ``a_param`` beside two
    :class:`BlockDiagonalLinear` gates, ``input_gate`` and ``a_gate``."""

    def __init__(self, width=32, heads=4):
        super().__init__()
        self.a_param = nn.Parameter(torch.full((width,), 7.0))
        self.input_gate = BlockDiagonalLinear(width, heads)
        self.a_gate = BlockDiagonalLinear(width, heads)

    def forward(self, x):
        log_a = -8.0 * torch.sigmoid(self.a_gate(x)) * nn.functional.softplus(self.a_param)
        return x * torch.sigmoid(self.input_gate(x)) * torch.sqrt(1 - torch.exp(2 * log_a))


def _check_lru(model, report, what):
    from initlab.modelinit.ssm import lru_units

    found = lru_units(model)
    assert found, what
    params = dict(model.named_parameters())
    for lu in found:
        a = np.exp(-_softplus(params[lu.param].detach().numpy()))
        assert a.min() >= 0.9 * (1 - 1e-6) and a.max() <= 0.999 * (1 + 1e-6), (what, lu.param)
        assert len(np.unique(a)) == a.size, (what, "one radius per channel, all different")
        assert report[lu.param].initializer.startswith("recurrence_radius"), report[lu.param]
        assert len(lu.gates) == 2, (what, lu.gates)
        for w, b, bw in lu.gates:
            wt = params[w].detach().double()
            # 1,024 entries per gate here at most: the sample std of n normals has relative
            # standard error 1/sqrt(2n); 6 of them at n = 4 x 8 x 8 = 256 is 27%
            n = wt.numel()
            assert abs(wt.std().item() * math.sqrt(bw) - 1.0) <= 6 / math.sqrt(2 * n), (what, w)
            assert [tuple(f) for f in report[w].fans] == [(bw, bw)] * wt.shape[0]  # per head
            assert torch.equal(params[b], torch.zeros_like(params[b])), (what, b)
            # every head's block its own draw: no two blocks equal
            assert len({tuple(blk.flatten().tolist()) for blk in wt}) == wt.shape[0]
    return found


@pytest.mark.parametrize("plan", ["auto", "he", "orthogonal", "gpt2", "torch_default"])
def test_every_plan_starts_an_rg_lru_as_griffin_does(plan):
    """Before: every RG-LRU parameter matched no rule (a warning per tensor: left as torch's
    empty memory left them, or as Hugging Face set them; materialize failed). Now the recurrence
    parameter is Griffin's ring (a in [0.9, 0.999]) and each gate head block N(0, 1/bw)."""
    model = hf.recurrent_gemma()
    report, unmatched = _apply(model, plan)
    assert not unmatched, unmatched
    _check_lru(model, report, f"recurrent_gemma/{plan}")


def test_a_users_rg_lru_written_as_the_reference_code_writes_it():
    model = nn.Sequential(nn.Linear(32, 32), UserRGLRU(), nn.Linear(32, 8))
    report, unmatched = _apply(model, "auto")
    assert not unmatched, unmatched
    (lu,) = _check_lru(model, report, "user RG-LRU")
    assert lu.param == "1.a_param" and [g[0] for g in lu.gates] == ["1.input_gate.w",
                                                                      "1.a_gate.w"]
    # a lookalike: a 1-D `a_param` with no block-diagonal gate beside it is not an RG-LRU
    from initlab.modelinit.ssm import is_lru_unit

    odd = nn.Module()
    odd.a_param = nn.Parameter(torch.zeros(4))
    odd.input_gate = nn.Linear(4, 4)
    assert not is_lru_unit(odd)


def test_materialize_a_meta_recurrent_gemma_equals_apply_bit_for_bit():
    ref = hf.recurrent_gemma()
    initlab.apply(ref, "auto", seed=5)
    with torch.device("meta"):
        meta = hf.recurrent_gemma()
    initlab.materialize(meta, "auto", seed=5, device="cpu")  # was: RG-LRU unmatched, an error
    for (name, a), b in zip(ref.state_dict().items(), meta.state_dict().values()):
        assert torch.equal(a, b), name


# ----------------------------------------------------------------------------- mLSTM gates

class UserMLSTMCell(nn.Module):
    """An mLSTM cell written as the original xLSTM code writes it: ``igate`` and ``fgate``
    linear layers from the concatenated q, k, v to one pre-activation per head."""

    def __init__(self, width=16, heads=4):
        super().__init__()
        self.igate = nn.Linear(3 * width, heads)
        self.fgate = nn.Linear(3 * width, heads)
        self.heads = heads

    def forward(self, q, k, v):
        qkv = torch.cat([q, k, v], dim=-1)
        i, f = self.igate(qkv), nn.functional.logsigmoid(self.fgate(qkv))
        w = torch.exp(i - i.amax(-1, keepdim=True) + f)                # (B, S, heads)
        return (v.unflatten(-1, (self.heads, -1)) * w[..., None]).flatten(-2)


class UserMLSTM(nn.Module):
    def __init__(self, width=16, heads=4):
        super().__init__()
        self.q, self.k, self.v = (nn.Linear(width, width) for _ in range(3))
        self.cell = UserMLSTMCell(width, heads)
        self.out = nn.Linear(width, 3)

    def forward(self, x):
        return self.out(self.cell(self.q(x), self.k(x), self.v(x)))


def _check_mlstm(model, report, igate_bias, what):
    found = mlstm_gates(model)
    assert found, what
    params = dict(model.named_parameters())
    for g in found:
        for w in (g.igate_weight, g.fgate_weight):
            assert torch.equal(params[w], torch.zeros_like(params[w])), (what, w)
            assert report[w].initializer == "zeros()", report[w]
        fb = params[g.fgate_bias].detach().double().numpy()
        np.testing.assert_allclose(fb, np.linspace(3.0, 6.0, g.heads), rtol=0, atol=1e-6,
                                   err_msg=f"{what} {g.fgate_bias}")
        igate_bias(params[g.igate_bias].detach().double(), g)
    return found


def _minus_ten(b, g):
    assert torch.equal(b, torch.full_like(b, -10.0)), g.igate_bias


@pytest.mark.parametrize("plan", ["auto", "he", "orthogonal", "gpt2", "torch_default"])
def test_every_plan_starts_an_mlstm_as_xlstm_does(plan):
    """Before: the gates were ordinary linear layers (random weights, zero biases): every head's
    forget gate at sigmoid(0) = 1/2, a memory of about 1.4 steps, where xLSTM starts them at
    sigmoid(3..6) = 0.95..0.998 (20 to 400 steps) and its input gates at exp(-10)."""
    model = hf.xlstm()
    report, unmatched = _apply(model, plan)
    assert not unmatched, unmatched
    found = _check_mlstm(model, report, _minus_ten, f"xlstm/{plan}")
    assert len(found) == 2 and all(g.heads == 4 and g.layout == "igate_preact" for g in found)


@pytest.mark.parametrize("name", ["mup", "ntk"])
def test_width_parametrizations_keep_an_mlstms_gates(name):
    model = hf.xlstm(hidden_size=128, embedding_dim=128)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*matched no rule")
        par = initlab.parametrize(model, name, base=lambda: hf.xlstm(), seed=0)
    (g, *_) = _check_mlstm(model, par.report, _minus_ten, name)
    # one bias per head, 4 heads at every width: not rescaled; the gates' forward multiplier
    # (an output-like layer, width to heads) scales the weight's product only, so a zero input
    # still reads the biases exactly
    assert par[g.fgate_bias].klass == par[g.igate_bias].klass == "fixed"
    layer = model.get_submodule(g.name)
    with torch.no_grad():
        assert layer.fgate_preact(torch.zeros(1, 128)).flatten().tolist() == [3, 4, 5, 6]
        assert layer.igate_preact(torch.zeros(1, 128)).flatten().tolist() == [-10] * 4


def test_a_users_mlstm_written_as_the_original_xlstm_writes_it():
    """The reference layout's input-gate bias is N(0, 0.1^2), one draw per head: 2,048 heads
    here, so the sample std's relative standard error is 1/sqrt(2n) = 1.6% (6 of them allowed)
    and the mean's standard error 0.1/sqrt(n)."""
    model = UserMLSTM(width=16 * 128, heads=2048)

    def normal(b, g):
        n = b.numel()
        assert abs(b.mean().item()) <= Z * 0.1 / math.sqrt(n), g.igate_bias
        assert abs(b.std().item() / 0.1 - 1) <= Z / math.sqrt(2 * n), g.igate_bias

    report, unmatched = _apply(model, "auto")
    assert not unmatched, unmatched
    (g,) = _check_mlstm(model, report, normal, "user mLSTM")
    assert g.layout == "igate" and g.igate_bias == "cell.igate.bias"
    assert report["cell.igate.bias"].initializer.startswith("normal")
    # a lookalike: gates of different widths (not one pre-activation per head each) are not
    from initlab.modelinit.ssm import is_mlstm

    odd = nn.Module()
    odd.igate, odd.fgate = nn.Linear(8, 4), nn.Linear(8, 3)
    assert not is_mlstm(odd) and is_mlstm(model.cell)


def test_materialize_a_meta_xlstm_equals_apply_bit_for_bit():
    ref = hf.xlstm()
    initlab.apply(ref, "auto", seed=5)
    with torch.device("meta"):
        meta = hf.xlstm()
    initlab.materialize(meta, "auto", seed=5, device="cpu")
    for (name, a), b in zip(ref.state_dict().items(), meta.state_dict().values()):
        assert torch.equal(a, b), name


def test_the_doctor_on_an_xlstm_sees_capped_gates_and_the_memory_layers():
    """xLSTM soft-caps its gates, 15 tanh(z / 15): not a tanh activation, so the input gate's
    bias of -10 is not "100% saturated" (before: an error finding on every block). q, k and v
    feed the mLSTM's matrix memory (linear, from its structure) and the forget gate a sigmoid;
    the zero gate weights are the symmetry the gradients break (info only)."""
    model = hf.xlstm()
    _apply(model, "auto")
    desc = initlab.describe(model)
    for g in mlstm_gates(model):
        for local in ("q", "k", "v"):
            layer = desc.layer(f"{g.name}.{local}")
            assert layer.activation is None and "mLSTM's structure" in layer.activation_why
        assert desc.layer(g.fgate_weight[:-len(".weight")]).activation[0].name == "sigmoid"
    ids = torch.randint(0, 128, (2, 16), generator=torch.Generator().manual_seed(0))
    findings = initlab.doctor(model, ids).findings
    assert [f for f in findings if f.severity != "info"] == [], findings
    assert {f.code for f in findings} <= {"symmetry"}


def test_lsuv_keeps_an_mlstms_gates_and_a_mixers_time_step_projection():
    """Before: LSUV rescaled every linear layer to unit output std, and stopped at an mLSTM's
    zero gate weights ("output std must be > 0"). Layers whose weight the structure sets are
    pre-initialized by it and not rescaled (said in the report)."""
    ids = torch.randint(0, 128, (4, 16), generator=torch.Generator().manual_seed(0))
    model = hf.xlstm()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rep = initlab.lsuv(model, {"input_ids": ids}, seed=0)
    _check_mlstm(model, rep.init_report, _minus_ten, "lsuv")
    gates = {n for g in mlstm_gates(model) for n in (g.igate_weight, g.fgate_weight)}
    assert {f"{n}.weight" for n in rep.structural} == gates
    assert not gates & {f"{layer.name}.weight" for layer in rep.layers}
    assert "weight set by the model's structure" in str(rep)
    model = hf.mamba()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rep = initlab.lsuv(model, {"input_ids": ids % 64}, seed=0)
    assert sorted(rep.structural) == sorted(mx.dt_weight[:-len(".weight")]
                                            for mx in mixers(model))
