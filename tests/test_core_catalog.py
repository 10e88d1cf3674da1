"""The catalog against its formulas, with the NumPy reference backend.

Tolerances come from the sampling error. For n i.i.d. draws:

* the sample mean has standard error sigma / sqrt(n);
* the sample variance has standard error sqrt((m4 - sigma^4) / n), m4 the fourth central moment
  (estimated from the sample itself; for a normal it is 3 sigma^4, giving sigma^2 sqrt(2/n)).

We allow 6 standard errors: with the seed fixed the outcome is deterministic, and a correct
implementation would fail with probability ~2e-9 per check over the choice of seed.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

import initlab
from initlab.core import distributions as D

Z = 6.0  # standard errors allowed

SHAPES = [(300, 200), (200, 300), (64, 16, 5), (32, 8, 3, 3), (8, 4, 3, 3, 3)]


def check_moments(x: np.ndarray, mean: float, std: float) -> None:
    x = np.asarray(x, dtype=np.float64).ravel()
    n = x.size
    m = x.mean()
    v = x.var()
    assert abs(m - mean) <= Z * std / math.sqrt(n) + 1e-12, (m, mean)
    m4 = np.mean((x - m) ** 4)
    se_var = math.sqrt(max(m4 - v * v, 0.0) / n)
    assert abs(v - std**2) <= Z * se_var + 1e-12, (v, std**2)


def _all_instances():
    return [initlab.get(n) for n in initlab.names()]


@pytest.mark.parametrize("name", initlab.names())
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_initializer_every_shape(name, shape, dtype):
    """Registry-driven table: every name x shape x dtype draws the right shape and dtype, or
    refuses with a clear error when the shape doesn't fit the initializer's rule."""
    init = initlab.get(name)
    try:
        dist = init.resolve(shape)
    except ValueError as exc:
        # only structural refusals are allowed, and they must name the shape
        assert "`shape`" in str(exc) or "`k`" in str(exc), str(exc)
        assert name in {"identity", "eye", "dirac", "delta_orthogonal", "sparse", "martens_sparse",
                        "looks_linear"}
        return
    x = init.sample(shape, seed=0, dtype=dtype)
    assert x.shape == shape and x.dtype == np.dtype(dtype)
    assert np.all(np.isfinite(x))
    if isinstance(dist, D.Constant):
        assert np.all(x == np.asarray(dist.value, dtype=dtype))


def _elementwise_random_names():
    out = []
    for n in initlab.names():
        try:
            dist = initlab.get(n).resolve((400, 500))
        except ValueError:
            continue  # structured initializers with shape rules: tested below
        if dist.iid and not isinstance(dist, D.Constant):
            out.append(n)
    return out


@pytest.mark.parametrize("name", _elementwise_random_names())
def test_moments_match_formula(name):
    """Elementwise initializers: sample mean/variance equal the resolved distribution's.
    (Structured and constant ones have their own tests below.)"""
    init = initlab.get(name)
    shape = (400, 500)
    dist = init.resolve(shape)
    x = init.sample(shape, seed=1, dtype="float64")
    if isinstance(dist, D.TruncatedNormal):
        assert x.min() >= dist.a and x.max() <= dist.b
    m, s = dist.moments(shape)  # each kind's own formula (quadrature for time_step_bias)
    check_moments(x, m, s)


@pytest.mark.parametrize(
    "name, params, expected_std",
    [
        # fan_in = 300, fan_out = 200 for a torch (200, 300) weight
        ("lecun_normal", {}, math.sqrt(1 / 300)),
        ("lecun_uniform", {}, math.sqrt(1 / 300)),
        ("glorot_normal", {}, math.sqrt(2 / 500)),
        ("glorot_uniform", {"gain": 2.0}, 2 * math.sqrt(2 / 500)),
        ("he_normal", {}, math.sqrt(2 / 300)),
        ("he_uniform", {"mode": "fan_out"}, math.sqrt(2 / 200)),
        ("he_normal", {"a": 0.2}, math.sqrt(2 / (1 + 0.04) / 300)),
        ("variance_scaling", {"scale": 3.0, "mode": "fan_avg", "distribution": "truncated_normal"},
         math.sqrt(3 / 250)),
        ("variance_scaling", {"scale": 0.5, "mode": "fan_out", "distribution": "normal"},
         math.sqrt(0.5 / 200)),
        ("torch_default", {}, 1 / math.sqrt(3 * 300)),
        ("nielsen_default", {}, 1 / math.sqrt(300)),
        ("nielsen_large", {}, 1.0),
        ("small_normal", {}, 0.01),
        ("uniform_std", {"std": 0.3}, 0.3),
    ],
)
def test_variance_scaling_presets_exact(name, params, expected_std):
    """The resolved std equals the formula exactly (no sampling involved)."""
    dist = initlab.get(name, **params).resolve((200, 300))
    if isinstance(dist, D.TruncatedNormal):
        _, s = dist.moments()
        assert s == pytest.approx(expected_std, rel=1e-9)
        # bounds at +-2 parent std, parent std corrected by the named constant
        assert dist.std == pytest.approx(expected_std / 0.87962566103423978, rel=1e-12)
        assert dist.b == pytest.approx(2 * dist.std, rel=1e-12)
    else:
        assert dist.std == pytest.approx(expected_std, rel=1e-12)


def test_truncated_normal_constant_is_the_std_of_truncated_standard_normal():
    s = stats.truncnorm(-2, 2).std()
    assert s == pytest.approx(0.87962566103423978, abs=1e-15)
    assert s**2 == pytest.approx(0.7737413035499232, abs=1e-14)


def test_torch_default_bias_and_nielsen_bias_roles():
    td = initlab.get("torch_default").resolve((30,), fans=(784, 30), role="bias")
    assert isinstance(td, D.Uniform) and td.high == pytest.approx(1 / math.sqrt(784))
    nb = initlab.get("nielsen_default").resolve((30,), role="bias")
    assert nb == D.Normal(0.0, 1.0)
    nw = initlab.get("nielsen_default").resolve((30, 784))
    assert nw.std == pytest.approx(1 / math.sqrt(784))


@pytest.mark.parametrize(
    "name, params, family",
    [
        ("normal", {"mean": 0.5, "std": 2.0}, lambda d: stats.norm(d.mean, d.std)),
        ("he_normal", {}, lambda d: stats.norm(0, d.std)),
        ("glorot_uniform", {}, lambda d: stats.uniform(d.low, d.high - d.low)),
        ("uniform", {"low": -3.0, "high": 1.0}, lambda d: stats.uniform(d.low, d.high - d.low)),
        ("truncated_normal", {"mean": 1.0, "std": 2.0, "a": -1.0, "b": 2.0},
         lambda d: stats.truncnorm((d.a - d.mean) / d.std, (d.b - d.mean) / d.std, d.mean, d.std)),
        ("variance_scaling", {}, lambda d: stats.truncnorm(-2, 2, 0, d.std)),
    ],
)
def test_ks_distribution_family(name, params, family):
    """Kolmogorov-Smirnov against the target family (seed fixed; p > 1e-3)."""
    init = initlab.get(name, **params)
    dist = init.resolve((100, 200))
    x = init.sample((100, 200), seed=7, dtype="float64").ravel()
    assert stats.kstest(x, family(dist).cdf).pvalue > 1e-3


def test_truncated_normal_far_tail_is_exact():
    """Inverse CDF mirrored into the lower tail keeps precision for [5, 6] sigma."""
    init = initlab.truncated_normal(mean=0.0, std=1.0, a=5.0, b=6.0)
    x = init.sample((200_000,), seed=3, dtype="float64")
    assert x.min() >= 5.0 and x.max() <= 6.0
    m, s = stats.truncnorm(5, 6).stats(moments="mv")
    check_moments(x, float(m), math.sqrt(float(s)))


def test_truncated_normal_float32_bounds_hold_after_rounding():
    # bounds that are not representable in float32: every value stays inside after the cast
    init = initlab.truncated_normal(mean=0.0, std=1.0, a=-0.1, b=0.1)
    x = init.sample((1_000_000,), seed=0, dtype="float32")
    assert float(x.min()) >= -0.1 and float(x.max()) <= 0.1


# ----------------------------------------------------------------------- structured


@pytest.mark.parametrize("method", ["qr", "svd", "householder"])
@pytest.mark.parametrize("shape", [(6, 6), (4, 9), (9, 4), (8, 3, 3, 3), (3, 4, 2)], ids=str)
def test_orthogonal_is_orthogonal(method, shape):
    x = initlab.orthogonal(gain=1.5, method=method).sample(shape, seed=0, dtype="float64")
    m = x.reshape(shape[0], -1)
    gram = m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m
    np.testing.assert_allclose(gram, 1.5**2 * np.eye(gram.shape[0]), atol=1e-12)


@pytest.mark.parametrize("method", ["qr", "svd", "householder"])
def test_orthogonal_is_haar(method):
    """For Haar O(n), n >= 2: E[tr Q] = 0, Var[tr Q] = 1, P(Q[0,0] > 0) = 1/2.

    M = 4000 draws of n = 5: the mean of the trace has s.e. 1/sqrt(M) = 0.016; the variance of the
    trace has s.e. sqrt((E[t^4] - 1)/M) <= sqrt(2/M) = 0.022 (E[t^4] = 3 for n >= 4); the
    frequency of Q[0,0] > 0 has s.e. 0.5/sqrt(M) = 0.0079. Allowed: 6 s.e.
    """
    rng = np.random.Generator(np.random.PCG64(11))
    init = initlab.orthogonal(method=method)
    M, n = 4000, 5
    qs = np.stack([init.sample((n, n), seed=rng, dtype="float64") for _ in range(M)])
    tr = np.trace(qs, axis1=1, axis2=2)
    assert abs(tr.mean()) <= Z / math.sqrt(M)
    assert abs(tr.var() - 1.0) <= Z * math.sqrt(2 / M)
    assert abs((qs[:, 0, 0] > 0).mean() - 0.5) <= Z * 0.5 / math.sqrt(M)
    # and every entry has variance 1/n
    assert abs(qs[:, 1, 2].var() - 1 / n) <= Z * math.sqrt(2 / M) / n * 1.5


def test_unfixed_qr_would_not_be_haar():
    """Why the sign fix matters: LAPACK's raw Q has Q[0,0] < 0 almost always."""
    rng = np.random.Generator(np.random.PCG64(0))
    neg = np.mean([np.linalg.qr(rng.standard_normal((5, 5)))[0][0, 0] < 0 for _ in range(500)])
    assert neg > 0.95


def test_identity_and_dirac():
    np.testing.assert_array_equal(initlab.identity(gain=2.0).sample((3, 4), seed=0), 2 * np.eye(3, 4))
    w = initlab.dirac().sample((4, 4, 3, 3), seed=0, dtype="float64")
    x = np.random.default_rng(0).standard_normal((4, 7, 7))
    # conv with 'same' padding == identity: the centre tap holds the identity matrix
    np.testing.assert_array_equal(w[:, :, 1, 1], np.eye(4))
    assert np.count_nonzero(w) == 4
    wg = initlab.dirac(groups=2).sample((6, 3, 3), seed=0, dtype="float64")
    assert np.count_nonzero(wg) == 6 and wg[3, 0, 1] == 1 and wg[0, 0, 1] == 1
    assert x.shape == (4, 7, 7)


def test_delta_orthogonal():
    w = initlab.delta_orthogonal(gain=2.0).sample((8, 5, 3, 3), seed=0, dtype="float64")
    c = w[:, :, 1, 1]
    np.testing.assert_allclose(c.T @ c, 4 * np.eye(5), atol=1e-12)
    w[:, :, 1, 1] = 0
    assert not w.any()


def test_sparse_matches_torch_definition():
    w = initlab.sparse(sparsity=0.3, std=0.5).sample((100, 40), seed=0, dtype="float64")
    zeros_per_col = (w == 0).sum(axis=0)
    assert np.all(zeros_per_col == math.ceil(0.3 * 100))
    check_moments(w[w != 0], 0.0, 0.5)


def test_martens_sparse_k_per_unit():
    w = initlab.martens_sparse(k=15).sample((50, 200), seed=0, dtype="float64")
    assert np.all((w != 0).sum(axis=1) == 15)
    check_moments(w[w != 0], 0.0, 1.0)


def test_jax_layout_gives_the_same_fans_and_transposed_structure():
    t = initlab.he_normal().resolve((64, 32, 3, 3))
    j = initlab.he_normal().resolve((3, 3, 32, 64), layout="jax")
    assert t == j
    # jax (in=3, out=7): the torch-layout (7, 3) matrix has orthonormal columns, so the stored
    # (3, 7) kernel has orthonormal rows
    q = initlab.orthogonal().sample((3, 7), seed=0, layout="jax", dtype="float64")
    np.testing.assert_allclose(q @ q.T, np.eye(3), atol=1e-12)
    d = initlab.dirac().sample((3, 3, 4, 4), seed=0, layout="jax")
    np.testing.assert_array_equal(d[1, 1], np.eye(4))


# ----------------------------------------------------------------------- determinism, dicts


@pytest.mark.parametrize("name", initlab.names())
def test_same_seed_same_array_different_seed_differs(name):
    init = initlab.get(name)
    shape = (16, 16, 3)
    try:
        a = init.sample(shape, seed=5)
    except ValueError:
        shape = (16, 16)
        a = init.sample(shape, seed=5)
    b = init.sample(shape, seed=5)
    np.testing.assert_array_equal(a, b)
    if init.random:
        assert not np.array_equal(a, init.sample(shape, seed=6))


@pytest.mark.parametrize("name", initlab.names())
def test_to_dict_round_trip(name):
    import json

    init = initlab.get(name)
    d = json.loads(json.dumps(init.to_dict()))
    again = initlab.from_dict(d)
    assert again == init and again.to_dict() == init.to_dict()
    assert d["stream"] == initlab.STREAM_VERSION


def test_aliases_are_the_same_initializer():
    assert initlab.xavier_uniform is initlab.glorot_uniform
    assert initlab.kaiming_normal is initlab.he_normal
    np.testing.assert_array_equal(initlab.get("xavier_normal").sample((5, 6), seed=1),
                                  initlab.get("glorot_normal").sample((5, 6), seed=1))
    assert initlab.core.canonical_name("kaiming_uniform") == "he_uniform"


def test_names_sorted_and_complete():
    names = initlab.names()
    assert names == sorted(names)
    for required in ["zeros", "ones", "constant", "normal", "uniform", "uniform_std", "small_normal",
                     "variance_scaling", "lecun_normal", "lecun_uniform", "glorot_normal",
                     "glorot_uniform", "xavier_normal", "xavier_uniform", "he_normal", "he_uniform",
                     "kaiming_normal", "kaiming_uniform", "nielsen_default", "nielsen_large",
                     "torch_default", "truncated_normal", "orthogonal", "identity", "eye", "dirac",
                     "delta_orthogonal", "sparse", "martens_sparse", "rbm_normal"]:
        assert required in names


def test_every_preset_has_a_docstring_with_formula_or_paper():
    import inspect

    from initlab.core import registry

    registry.names()
    for name, fn in registry._REGISTRY.items():
        doc = inspect.getdoc(fn) or ""
        assert len(doc) > 20, name


def test_adapter_factory_keeps_the_preset_signature_and_adds_extras():
    """The framework adapters' per-name functions: preset parameters + keyword-only extras."""
    import inspect

    from initlab.core.registry import adapter_factory

    def build(name, **kw):
        return name, kw

    f = adapter_factory("he_normal", build, {"layout": "jax", "fans": None}, returns="X",
                        doc="adapter doc")
    assert f.__name__ == "he_normal" and f.__doc__.startswith("adapter doc")
    params = inspect.signature(f).parameters
    assert list(params) == ["a", "mode", "nonlinearity", "layout", "fans"]
    assert params["layout"].kind is inspect.Parameter.KEYWORD_ONLY
    assert f(0.1, layout="torch") == ("he_normal", {"layout": "torch", "fans": None, "a": 0.1})
    with pytest.raises(TypeError, match=r"`he_normal`: .*Valid parameters: a, mode, nonlinearity"):
        f(gain=2.0)
