"""Edge cases of the drop-ins where torch.nn.init has a meaning initlab once refused or got
wrong: infinite truncation bounds, a == b, sparsity 1, gain 0, negative orthogonal gains,
``a=None``, low-precision dtypes staying inside their bounds, zero-element tensors of the wrong
rank, and complex tensors (torch as the oracle wherever torch defines the answer)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from scipy import stats

import initlab
import initlab.torch as it
from initlab.core.distributions import Normal, Orthogonal, TruncatedNormal
from initlab.core.validation import InitlabError
from initlab.scale import counter_fill_

N = 200_000


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _ks_ok(x: np.ndarray, cdf) -> bool:
    # one-sample KS: the statistic's critical value at alpha = 1e-4 is ~2.15 / sqrt(n)
    return stats.kstest(x, cdf).statistic < 2.15 / math.sqrt(len(x))


# ------------------------------------------------------------------ truncation bounds


@pytest.mark.parametrize("a,b", [(0.0, math.inf), (-math.inf, -1.0), (-math.inf, math.inf),
                                 (1.5, math.inf)])
def test_trunc_normal_with_infinite_bounds_has_the_truncated_law(a, b):
    t = it.trunc_normal_(torch.empty(N, dtype=torch.float64), 0.0, 1.0, a, b, generator=gen(1))
    x = t.numpy()
    assert np.isfinite(x).all() and x.min() >= a and x.max() <= b
    law = stats.truncnorm(a, b)
    assert _ks_ok(x, law.cdf), (a, b)
    # the mean within 5 standard errors (std / sqrt(n)) of the truncated law's
    assert abs(x.mean() - law.mean()) < 5 * law.std() / math.sqrt(N)


def test_torch_agrees_that_infinite_bounds_are_a_half_normal():
    ours = it.trunc_normal_(torch.empty(N), 0.0, 1.0, 0.0, math.inf, generator=gen(2)).numpy()
    theirs = torch.nn.init.trunc_normal_(torch.empty(N), 0.0, 1.0, 0.0, math.inf,
                                         generator=gen(2)).numpy()
    # two samples of the same law: two-sample KS critical value at alpha=1e-4 ~ 2.15*sqrt(2/n)
    assert stats.ks_2samp(ours, theirs).statistic < 2.15 * math.sqrt(2 / N)
    assert ours.min() >= 0.0


def test_numpy_sample_and_counter_stream_accept_infinite_bounds():
    x = initlab.truncated_normal(0.0, 2.0, 0.0, math.inf).sample((N,), seed=0, dtype="float64")
    assert x.min() >= 0 and _ks_ok(x, stats.truncnorm(0, math.inf, scale=2.0).cdf)
    d = TruncatedNormal(0.0, 1.0, -math.inf, 0.5)
    full = counter_fill_(torch.empty(64, 48), d, seed=3, name="w")
    part = counter_fill_(torch.empty(64, 20), d, seed=3, name="w", global_shape=(64, 48),
                         offsets=(0, 28))
    assert torch.equal(part, full[:, 28:]) and full.max() <= 0.5 and torch.isfinite(full).all()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16, torch.float16])
def test_trunc_normal_with_equal_bounds_is_that_constant(dtype):
    t = it.trunc_normal_(torch.empty(7, 5, dtype=dtype), 0.0, 1.0, 0.5, 0.5, generator=gen())
    assert (t == 0.5).all() and t.dtype == dtype
    assert initlab.truncated_normal(a=-1.0, b=-1.0).random is False


def test_trunc_normal_refuses_inverted_or_empty_infinite_bounds():
    x = torch.full((3,), 9.0)
    with pytest.raises(InitlabError, match=r"`a` must be <= `b`"):
        it.trunc_normal_(x, a=1.0, b=-1.0)
    with pytest.raises(InitlabError, match=r"`a` must be finite when a == b"):
        it.trunc_normal_(x, a=-math.inf, b=-math.inf)
    assert (x == 9.0).all()


# ------------------------------------------------------------------ torch's degenerate values


def test_sparsity_one_zeros_everything_as_torch():
    ours = it.sparse_(torch.empty(6, 5), 1.0, generator=gen())
    theirs = torch.nn.init.sparse_(torch.empty(6, 5), 1.0, generator=gen())
    assert (ours == 0).all() and (theirs == 0).all()


@pytest.mark.parametrize("fn", ["xavier_uniform_", "xavier_normal_", "orthogonal_"])
def test_gain_zero_is_torchs_zero_tensor(fn):
    kw = {"method": "qr"} if fn == "orthogonal_" else {}
    ours = getattr(it, fn)(torch.empty(8, 6), gain=0.0, generator=gen(), **kw)
    theirs = getattr(torch.nn.init, fn)(torch.empty(8, 6), gain=0.0, generator=gen())
    assert torch.equal(ours, theirs) and (ours == 0).all()


@pytest.mark.parametrize("gain", [-2.0, -0.5])
def test_negative_orthogonal_gain_equals_torch(gain):
    ours = it.orthogonal_(torch.empty(12, 20), gain, generator=gen(4), method="qr")
    theirs = torch.nn.init.orthogonal_(torch.empty(12, 20), gain, generator=gen(4))
    assert torch.equal(ours, theirs)
    # and with the default (Householder) method: rows orthogonal with norm |gain|
    h = it.orthogonal_(torch.empty(12, 20, dtype=torch.float64), gain, generator=gen(4))
    assert torch.allclose(h @ h.T, gain**2 * torch.eye(12, dtype=torch.float64), atol=1e-12)


@pytest.mark.parametrize("fn", ["kaiming_uniform_", "kaiming_normal_"])
def test_kaiming_a_none_is_torchs_default_slope(fn):
    ours = getattr(it, fn)(torch.empty(30, 40), a=None, generator=gen(5))
    theirs = getattr(torch.nn.init, fn)(torch.empty(30, 40), a=None, generator=gen(5))
    assert torch.equal(ours, theirs)
    assert initlab.he_normal(a=None).resolve((30, 40)).std == pytest.approx(
        math.sqrt(2 / (1 + 0.01**2) / 40), rel=1e-12)


def test_calculate_gain_bad_slope_is_both_value_and_type_error():
    for bad in (True, "x"):
        for exc in (ValueError, TypeError, InitlabError):
            with pytest.raises(exc, match=r"`param`"):
                it.calculate_gain("leaky_relu", bad)


# ------------------------------------------------------------------ low-precision bounds


LOW = [torch.bfloat16, torch.float16, torch.float8_e4m3fn, torch.float8_e5m2]


@pytest.mark.parametrize("dtype", LOW)
def test_uniform_family_stays_within_its_bounds_in_low_precision(dtype):
    # 0.3 and the Glorot/He bounds are not representable: rounding to nearest after the draw
    # puts values past the bound; initlab rounds the bounds inward and clips before the cast
    x = it.uniform_(torch.empty(N, dtype=dtype), -0.3, 0.3, generator=gen()).double()
    assert x.min() >= -0.3 and x.max() <= 0.3 and x.abs().max() > 0.2
    w = it.xavier_uniform_(torch.empty(300, 700, dtype=dtype), generator=gen()).double()
    bound = math.sqrt(6 / 1000)
    assert w.abs().max() <= bound
    k = it.kaiming_uniform_(torch.empty(300, 700, dtype=dtype), generator=gen()).double()
    assert k.abs().max() <= math.sqrt(6 / 700)


@pytest.mark.parametrize("dtype", LOW)
def test_trunc_normal_stays_within_unrepresentable_bounds(dtype):
    x = it.trunc_normal_(torch.empty(N, dtype=dtype), 0.0, 1.0, -0.3, 0.3,
                         generator=gen()).double()
    assert x.min() >= -0.3 and x.max() <= 0.3


# ------------------------------------------------------------------ zero-element tensors


@pytest.mark.parametrize("fn,match", [
    ("orthogonal_", r"`shape` must have at least 2 dimensions"),
    ("eye_", r"`shape` must be 2-D"),
    ("sparse_", r"`shape` must be 2-D"),
])
def test_zero_element_tensor_of_the_wrong_rank_is_refused_as_torch(fn, match):
    args = (0.5,) if fn == "sparse_" else ()
    with pytest.raises(InitlabError, match=match):
        getattr(it, fn)(torch.empty(0), *args)
    with pytest.raises(ValueError):  # torch refuses the rank before it looks at the size
        getattr(torch.nn.init, fn)(torch.empty(0), *args)


def test_zero_element_fan_based_tensor_is_the_no_op_whatever_its_rank():
    # torch's kaiming_* return a zero-element tensor before computing fans; initlab does so
    # for every fan-based initializer (torch's xavier_* would raise on a 1-D one)
    for fn in (it.kaiming_normal_, it.xavier_normal_, it.xavier_uniform_):
        with pytest.warns(UserWarning, match="zero-element"):
            fn(torch.empty(0))


def test_zero_element_rank_rules_hold_in_numpy_and_counter_paths():
    with pytest.raises(InitlabError, match=r"`shape` must have at least 2 dimensions"):
        initlab.orthogonal().sample((0,), seed=0)
    with pytest.raises(InitlabError, match=r"must be 2-D"):
        initlab.get("identity").sample((0, 2, 3), seed=0)
    with pytest.warns(UserWarning, match="zero-element"):
        assert initlab.orthogonal().sample((0, 3), seed=0).shape == (0, 3)
    with pytest.raises(InitlabError, match=r"at least 2 dimensions"):
        counter_fill_(torch.empty(0), Orthogonal(), seed=0, name="w")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = torch.empty(0, 4)
        assert counter_fill_(t, Normal(0.0, 1.0), seed=0, name="w") is t
        assert counter_fill_(torch.empty(0, 4), Orthogonal(), seed=0, name="w").shape == (0, 4)


# ------------------------------------------------------------------ complex tensors


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
@pytest.mark.parametrize("fn,kw", [("normal_", {"std": 0.5}), ("uniform_", {"a": -1, "b": 2}),
                                   ("xavier_normal_", {}), ("xavier_uniform_", {}),
                                   ("kaiming_normal_", {}), ("kaiming_uniform_", {})])
def test_complex_tensors_equal_torch_bit_for_bit(dtype, fn, kw):
    ours = getattr(it, fn)(torch.empty(16, 24, dtype=dtype), generator=gen(6), **kw)
    theirs = getattr(torch.nn.init, fn)(torch.empty(16, 24, dtype=dtype), generator=gen(6), **kw)
    assert ours.dtype == dtype and torch.equal(ours, theirs)


@pytest.mark.parametrize("call", [lambda t: it.trunc_normal_(t), lambda t: it.orthogonal_(t),
                                  lambda t: it.init_(t, "variance_scaling")])
def test_other_random_kinds_refuse_complex_and_leave_it(call):
    t = torch.full((6, 6), 1 + 2j, dtype=torch.complex64)
    with pytest.raises(InitlabError, match=r"complex64.*normal, uniform and sparse"):
        call(t)
    assert (t == 1 + 2j).all()


def test_bool_tensors_take_only_false_and_true():
    b = torch.zeros(3, 3, dtype=torch.bool)
    assert it.ones_(b).all() and it.eye_(b).sum() == 3 and it.constant_(b, 0).sum() == 0
    with pytest.raises(InitlabError, match=r"\(bool, 0 and 1 \(False, True\)\) cannot hold the "
                                           r"value 2"):
        it.constant_(b, 2)  # torch would store True
    assert b.sum() == 0  # untouched
