"""The torch backend: ``draw_`` for every distribution kind, against the formulas.

Tolerances come from the sampling error (derivations next to each check); seeds are fixed, so a
correct implementation gives the same numbers on every run and the 5-6 sigma margins only guard
against an unlucky seed choice, never against flakiness.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from scipy import stats

from initlab.backends.torch_backend import CHUNK, draw_, haar_orthogonal
from initlab.core.distributions import (
    Constant,
    DeltaOrthogonal,
    Dirac,
    Eye,
    MartensSparse,
    Normal,
    Orthogonal,
    Sparse,
    TruncatedNormal,
    Uniform,
)
from initlab.core.validation import InitlabError, InitlabTypeError


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def truncnorm(d: TruncatedNormal):
    return stats.truncnorm((d.a - d.mean) / d.std, (d.b - d.mean) / d.std, loc=d.mean,
                           scale=d.std)


def check_moments(x: torch.Tensor, mean: float, std: float, kurtosis: float = 3.0,
                  rel: float = 0.0) -> None:
    """Sample mean and variance against the target, 6 sigma of the sampling error.

    The sample mean of n iid draws has std sigma / sqrt(n); the sample variance has std
    sqrt((mu4 - sigma^4) / n) = sigma^2 sqrt((kurtosis - 1) / n) (kurtosis = mu4 / sigma^4: 3 for
    a normal, 1.8 for a uniform). ``rel`` adds a rounding allowance for low-precision dtypes.
    """
    v = x.double().reshape(-1)
    n = v.numel()
    scale = abs(mean) + std
    assert abs(v.mean().item() - mean) <= 6 * std / math.sqrt(n) + rel * scale + 1e-12
    var = v.var().item()
    assert abs(var - std**2) <= 6 * std**2 * math.sqrt((kurtosis - 1) / n) + 2 * rel * scale**2 + 1e-12


# ============================================================================ elementwise


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
def test_normal_and_uniform_moments_and_dtype(dtype):
    x = torch.empty(300_000, dtype=dtype)
    assert draw_(x, Normal(0.5, 2.0), gen(1)) is x
    assert x.dtype == dtype
    # Rounding to bf16 (8 significant bits) moves each value by <= 2^-9 relative: the mean by
    # <= 2^-9 * E|x| and the variance by <= ~2^-8 sigma^2; that is added to the sampling error.
    rel = 0.0 if dtype in (torch.float32, torch.float64) else 2.0**-8
    check_moments(x, 0.5, 2.0, rel=rel)
    draw_(x, Uniform(-3.0, 1.0), gen(2))
    assert x.double().min() >= -3.0 and x.double().max() <= 1.0
    check_moments(x, -1.0, 4 / math.sqrt(12), kurtosis=1.8, rel=rel)


@pytest.mark.parametrize("dist,ref", [(Normal(-1.0, 0.3), stats.norm(-1.0, 0.3)),
                                      (Uniform(-2.0, 5.0), stats.uniform(-2.0, 7.0))],
                         ids=["normal", "uniform"])
def test_elementwise_family_ks(dist, ref):
    x = torch.empty(200_000, dtype=torch.float64)
    draw_(x, dist, gen(8))
    assert stats.kstest(x.numpy(), ref.cdf).pvalue > 1e-3
    # the KS test can fail: the same sample against a slightly wrong scale is rejected
    assert stats.kstest(x.numpy() * 1.02, ref.cdf).pvalue < 1e-3


def test_degenerate_uniform_and_normal():
    x = torch.empty(100)
    draw_(x, Uniform(0.25, 0.25), gen())
    assert (x == 0.25).all()
    draw_(x, Normal(3.0, 0.0), gen())
    assert (x == 3.0).all()


def test_constant_accepts_integer_and_bool_tensors():
    x = torch.zeros(3, 4, dtype=torch.int64)
    assert draw_(x, Constant(7.0)) is x
    assert (x == 7).all()
    b = torch.zeros(5, dtype=torch.bool)
    draw_(b, Constant(1.0))
    assert b.all()


@pytest.mark.parametrize(
    "dist",
    [TruncatedNormal(0.0, 1.0, -2.0, 2.0), TruncatedNormal(1.0, 0.5, 0.0, 3.0),
     TruncatedNormal(0.0, 1.0, 0.5, 1.5), TruncatedNormal(0.0, 1.0, -1.5, -0.5),
     TruncatedNormal(0.0, 2.0, -1.0, 10.0), TruncatedNormal(0.0, 1.0, 3.0, 3.1)],
    ids=["sym", "shifted", "upper", "lower", "onesided-wide", "far-tail-narrow"],
)
def test_truncated_normal_matches_scipy(dist):
    x = torch.empty(200_000)
    draw_(x, dist, gen(3))
    assert x.min().item() >= dist.a and x.max().item() <= dist.b
    ref = truncnorm(dist)
    m, v = ref.stats(moments="mv")
    check_moments(x, float(m), math.sqrt(float(v)), kurtosis=float(ref.stats(moments="k")) + 3)
    # KS against the exact CDF: a correct sampler has p ~ U(0, 1); the seed is fixed.
    assert stats.kstest(x.double().numpy(), ref.cdf).pvalue > 1e-3


@pytest.mark.parametrize("a,b", [(5.0, 6.0), (-6.0, -5.0), (4.0, 10.0), (8.0, 8.5)])
def test_truncated_normal_far_tails_are_exact(a, b):
    """Far-tail intervals go through float64 u-space (ndtri), so even [8, 8.5] std is exact."""
    d = TruncatedNormal(0.0, 1.0, a, b)
    x = torch.empty(100_000)
    draw_(x, d, gen(4))
    assert x.min().item() >= a and x.max().item() <= b
    assert stats.kstest(x.double().numpy(), truncnorm(d).cdf).pvalue > 1e-3


def test_truncated_normal_float32_never_outside_bounds_wide_interval():
    """pytorch issue 155588: float32 values outside [a, b]. Bounds not representable in float32
    are rounded inward; with a huge interval no value may be inf or reach far beyond 5.3 std."""
    a, b = -2.0000001, 1.9999999  # not float32 values
    x = torch.empty(2_000_000)
    draw_(x, TruncatedNormal(0.0, 1.0, a, b), gen(5))
    assert x.double().min().item() >= a and x.double().max().item() <= b
    draw_(x, TruncatedNormal(0.0, 1.0, -1e6, 1e6), gen(6))
    assert torch.isfinite(x).all() and x.abs().max().item() < 6.0


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_truncated_normal_low_precision_bounds_hold_after_rounding(dtype):
    # 0.7 and -0.3 are not representable in bf16/fp16; values must stay inside after the cast
    a, b = -0.3, 0.7
    x = torch.empty(CHUNK + 12_345, dtype=dtype)  # spans two chunks
    draw_(x, TruncatedNormal(0.2, 1.0, a, b), gen(7))
    assert x.dtype == dtype
    v = x.double()
    assert v.min().item() >= a and v.max().item() <= b
    ref = truncnorm(TruncatedNormal(0.2, 1.0, a, b))
    # mean within sampling error plus the dtype's rounding (relative 2^-8 for bf16)
    assert abs(v.mean().item() - float(ref.mean())) < 6 * float(ref.std()) / math.sqrt(len(v)) + 4e-3


def test_truncated_normal_zero_std_is_the_clipped_mean():
    x = torch.empty(10)
    draw_(x, TruncatedNormal(5.0, 0.0, -1.0, 1.0), gen())
    assert (x == 1.0).all()


def test_truncated_normal_needs_no_temporary_for_float32():
    """In place on the output: the storage pointer is unchanged and a non-contiguous view works."""
    base = torch.empty(64, 64)
    ptr = base.data_ptr()
    draw_(base, TruncatedNormal(0.0, 1.0, -2.0, 2.0), gen())
    assert base.data_ptr() == ptr
    view = torch.zeros(64, 64).t()[::2]
    draw_(view, TruncatedNormal(0.0, 1.0, -0.5, 0.5), gen())
    assert view.abs().max() <= 0.5 and (view != 0).all()


@pytest.mark.parametrize("dist", [Normal(0, 1), Uniform(0, 1), TruncatedNormal(0, 1, -1, 1)])
def test_noncontiguous_low_precision(dist):
    base = torch.zeros(50, 40, dtype=torch.bfloat16)
    view = base.t()
    draw_(view, dist, gen())
    assert (base != 0).float().mean() > 0.95


def test_determinism_same_and_different_seeds():
    for dist in (Normal(0, 1), Uniform(-1, 1), TruncatedNormal(0, 1, -2, 2), Orthogonal(1.0),
                 Sparse(0.5), MartensSparse(3)):
        a, b, c = (torch.empty(20, 30) for _ in range(3))
        draw_(a, dist, gen(11))
        draw_(b, dist, gen(11))
        draw_(c, dist, gen(12))
        assert torch.equal(a, b)
        assert not torch.equal(a, c)


# ============================================================================ orthogonal


@pytest.mark.parametrize("method", ["householder", "qr", "svd"])
def test_orthogonal_is_haar(method):
    """For Haar O(n), n >= 2: E[tr Q] = 0, Var[tr Q] = 1, P(Q[0,0] > 0) = 1/2.

    N = 3000 matrices of 6 x 6. The trace's first n moments equal those of N(0, 1) (Diaconis &
    Shahshahani 1994), so its mean has std 1/sqrt(N) = 0.018 (6 sigma: 0.11) and its sample
    variance std sqrt(2/N) = 0.026 (6 sigma: 0.155). sign(Q[0,0]) is a fair coin: the fraction
    has std 0.5/sqrt(N) = 0.0091 (6 sigma: 0.055). LAPACK's Q without the sign fix has
    Q[0,0] < 0 almost always and fails the last check.
    """
    g = gen(21)
    n_mat, n = 3000, 6
    tr = torch.empty(n_mat, dtype=torch.float64)
    pos = 0
    for i in range(n_mat):
        q = haar_orthogonal(n, n, generator=g, dtype=torch.float64, method=method)
        tr[i] = torch.trace(q)
        pos += int(q[0, 0] > 0)
    assert abs(tr.mean().item()) < 0.11
    assert abs(tr.var().item() - 1.0) < 0.155
    assert abs(pos / n_mat - 0.5) < 0.055
    # Q^T Q = I
    assert torch.allclose(q.T @ q, torch.eye(n, dtype=torch.float64), atol=1e-12)


@pytest.mark.parametrize("method", ["householder", "qr", "svd"])
@pytest.mark.parametrize("shape", [(40, 25), (25, 40), (16, 4, 3, 3), (8, 3, 5)])
def test_orthogonal_rows_or_columns_orthonormal(method, shape):
    w = torch.empty(shape)
    draw_(w, Orthogonal(1.5, method), gen(22))
    m = w.reshape(shape[0], -1).double()
    if m.shape[0] <= m.shape[1]:
        gram = m @ m.T
    else:
        gram = m.T @ m
    assert torch.allclose(gram, 2.25 * torch.eye(gram.shape[0], dtype=torch.float64), atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_orthogonal_low_precision_sampled_in_float32(dtype):
    w = torch.empty(64, 32, dtype=dtype)
    draw_(w, Orthogonal(1.0, "householder"), gen())
    assert w.dtype == dtype
    m = w.double()
    # bf16 has 8 significant bits: each entry off by <= 2^-9 relative; the Gram error of unit
    # columns is then <= ~2 * 2^-8.
    assert torch.allclose(m.T @ m, torch.eye(32, dtype=torch.float64), atol=2e-2)


def test_orthogonal_householder_matches_qr_in_distribution_of_first_entry():
    """Both methods give Haar columns: Q[0, 0] of a 30 x 30 Haar matrix has mean 0 and variance
    1/30. N = 2000 draws; the sample variance has std (1/30) sqrt(2/N) (Q[0,0] is close to
    normal), 6 sigma = 0.0063."""
    for method in ("householder", "qr"):
        g = gen(23)
        v = torch.tensor([haar_orthogonal(30, 30, generator=g, method=method,
                                          dtype=torch.float64)[0, 0].item() for _ in range(2000)])
        assert abs(v.mean().item()) < 6 * math.sqrt(1 / 30 / 2000)
        assert abs(v.var().item() - 1 / 30) < 0.0063


def test_delta_orthogonal_centre_tap():
    w = torch.empty(12, 8, 3, 5)
    draw_(w, DeltaOrthogonal(2.0), gen())
    centre = w[:, :, 1, 2].double()
    assert torch.allclose(centre.T @ centre, 4 * torch.eye(8, dtype=torch.float64), atol=1e-5)
    mask = torch.ones_like(w, dtype=torch.bool)
    mask[:, :, 1, 2] = False
    assert (w[mask] == 0).all()


# ============================================================================ constant structured


def test_eye_and_dirac_match_torch():
    for shape in [(3, 5), (5, 3), (4, 4)]:
        a = torch.empty(shape)
        draw_(a, Eye(1.0))
        assert torch.equal(a, torch.nn.init.eye_(torch.empty(shape)))
    for shape, groups in [((6, 4, 3), 1), ((8, 2, 3, 3), 2), ((6, 6, 3, 3, 3), 3), ((4, 8, 5), 1)]:
        a = torch.empty(shape)
        draw_(a, Dirac(groups, 1.0))
        assert torch.equal(a, torch.nn.init.dirac_(torch.empty(shape), groups))


def test_eye_on_integer_tensor_and_jax_layout():
    x = torch.full((3, 4), 9, dtype=torch.int32)
    draw_(x, Eye(1.0))
    assert torch.equal(x, torch.eye(3, 4, dtype=torch.int32))
    # jax layout (kh, kw, in, out): the dirac delta sits at the centre tap, [.., d, d] = 1
    k = torch.empty(3, 3, 4, 4)
    draw_(k, Dirac(1, 1.0), layout="jax")
    assert torch.equal(k[1, 1], torch.eye(4)) and k.sum() == 4


# ============================================================================ sparse


def test_sparse_zero_count_per_column_and_generator_controls_mask():
    rows, cols, sparsity = 50, 40, 0.3
    w = torch.empty(rows, cols)
    draw_(w, Sparse(sparsity, 0.01), gen(31))
    assert ((w == 0).sum(dim=0) == math.ceil(sparsity * rows)).all()
    w2 = torch.empty(rows, cols)
    draw_(w2, Sparse(sparsity, 0.01), gen(31))
    assert torch.equal(w, w2)  # the mask comes from the generator too (torch issue 98200)


def test_sparse_mask_is_uniform_over_positions():
    """Each position is zeroed with probability n_zero/rows = 0.3; over 400 columns x 20
    draws = 8000 trials per row the zero fraction has std sqrt(.3 * .7 / 8000) = 0.0051."""
    rows = 10
    counts = torch.zeros(rows)
    g = gen(32)
    for _ in range(20):
        w = torch.empty(rows, 400)
        draw_(w, Sparse(0.3, 1.0), g)
        counts += (w == 0).sum(dim=1)
    frac = counts / 8000
    assert (frac - 0.3).abs().max() < 6 * 0.0051


def test_martens_sparse_exactly_k_per_unit():
    w = torch.empty(30, 8, 3, 3)
    draw_(w, MartensSparse(15, 1.0), gen(33))
    nz = (w.reshape(30, -1) != 0).sum(dim=1)
    assert (nz == 15).all()
    vals = w[w != 0].double()
    check_moments(vals, 0.0, 1.0)


# ============================================================================ bad input


def test_random_on_integer_tensor_raises_and_leaves_it_untouched():
    x = torch.full((4, 4), 3, dtype=torch.int64)
    with pytest.raises(InitlabError, match=r"`tensor` must have a real floating dtype.*int64"):
        draw_(x, Normal(0, 1))
    assert (x == 3).all()
    with pytest.raises(InitlabError, match="real floating dtype"):
        draw_(torch.zeros(3, dtype=torch.bool), Uniform(0, 1))
    # complex tensors take normal / uniform / sparse (torch's meaning); other kinds are refused
    c = torch.full((3,), 1 + 1j, dtype=torch.complex64)
    with pytest.raises(InitlabError, match=r"real floating dtype.*complex64.*normal, uniform and sparse"):
        draw_(c, TruncatedNormal(0.0, 1.0, -2.0, 2.0))
    assert (c == 1 + 1j).all()


def test_generator_on_another_device_type_raises():
    x = torch.empty(3, 3, device="meta")
    with pytest.raises(InitlabError, match=r"`generator` must be on the tensor's device type \('meta'\)"):
        draw_(x, Normal(0, 1), gen())
    with pytest.raises(InitlabTypeError, match="`generator` must be a torch.Generator or None"):
        draw_(torch.empty(3), Normal(0, 1), 123)


def test_not_a_tensor_or_not_a_distribution():
    with pytest.raises(InitlabTypeError, match="`tensor` must be a torch.Tensor"):
        draw_(np.zeros(3), Normal(0, 1))
    with pytest.raises(InitlabTypeError, match="`dist` must be an initlab.core.distributions"):
        draw_(torch.empty(3), "normal")


def test_zero_element_tensor_warns_and_returns():
    x = torch.empty(0, 5)
    with pytest.warns(UserWarning, match="Initializing zero-element tensors is a no-op"):
        assert draw_(x, Normal(0, 1), gen()) is x


def test_meta_tensor_is_a_no_op():
    x = torch.empty(4, 4, device="meta")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert draw_(x, Orthogonal(1.0)) is x


@pytest.mark.parametrize(
    "shape,dist,match",
    [((3,), Orthogonal(1.0), r"`tensor` must have at least 2 dimensions"),
     ((3, 3, 3), Eye(1.0), r"`tensor` must be 2-D for `eye`"),
     ((3, 3), Dirac(1, 1.0), r"`tensor` must be 3-, 4- or 5-D"),
     ((6, 4, 3), Dirac(4, 1.0), r"`groups` must divide the number of output channels \(=6\)"),
     ((4, 6, 3), DeltaOrthogonal(1.0), r"`tensor` must have in_channels <= out_channels"),
     ((4, 6, 3), Sparse(0.5), r"`tensor` must be 2-D for `sparse`"),
     ((4, 6), MartensSparse(7), r"`k` must be <= the number of inputs per unit \(=6\)"),
     ((4, 6), TruncatedNormal(0, 1, 1.0, 1.0), r"`a` must be < `b`"),
     ((4, 6), Orthogonal(1.0, "lu"), r"`method` must be one of 'qr', 'svd', 'householder'")],
)
def test_structure_errors_leave_tensor_untouched(shape, dist, match):
    x = torch.full(shape, 5.0)
    with pytest.raises(InitlabError, match=match):
        draw_(x, dist, gen())
    assert (x == 5).all()
