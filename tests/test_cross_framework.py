"""One initlab initializer, the same distribution in NumPy, PyTorch, JAX and Keras; and the
documented differences between the libraries' own same-named initializers (docs/frameworks.md),
checked against the installed libraries.

Tolerances come from the sampling error. For n i.i.d. draws of a distribution with standard
deviation sigma and fourth central moment m4:

* the sample mean has standard error sigma / sqrt(n);
* the sample variance has standard error sqrt((m4 - sigma^4) / n) (m4 = 3 sigma^4 for a normal,
  1.8 sigma^4 for a uniform, (3 + excess kurtosis) sigma^4 for a truncated normal);
* a fraction p estimated from n draws has standard error sqrt(p (1 - p) / n).

We allow Z = 6 standard errors: with fixed seeds the outcome is deterministic, and a correct
implementation would fail with probability ~2e-9 per check over the choice of seeds. Shapes are
compared through the core's Kolmogorov-Smirnov tests too, with p > 1e-6 (same argument).
"""

from __future__ import annotations

import importlib.util
import math
import os

import numpy as np
import pytest
from scipy import stats

import initlab
from initlab.core import distributions as D

pytestmark = pytest.mark.frameworks

os.environ.setdefault("KERAS_BACKEND", "torch")  # Keras's torch backend needs no TensorFlow

Z = 6.0
P_MIN = 1e-6
FRAMEWORKS = ["numpy", "torch", "jax", "keras"]
MAIN_SHAPE = (200, 100)  # torch layout (out, in): 20,000 draws, fans (100, 200)
CONV_SHAPE = (16, 8, 3, 3)


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _needs(fw: str) -> None:
    module = {"numpy": "numpy", "torch": "torch", "jax": "jax", "keras": "keras"}[fw]
    if not _installed(module):
        pytest.skip(f"{module} is not installed (pip install 'initlab[{fw}]')")


# ------------------------------------------------------------------------------------ drawing


def jax_shape(tshape: tuple[int, ...]) -> tuple[int, ...]:
    """torch (out, in, *k) -> JAX/Keras (*k, in, out): same fans."""
    return (*tshape[2:], tshape[1], tshape[0])


def to_torch_layout(x: np.ndarray) -> np.ndarray:
    nd = x.ndim
    return np.transpose(x, (nd - 1, nd - 2, *range(nd - 2)))


def to_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):
        return x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def draw(fw: str, ini: initlab.Initializer, tshape: tuple[int, ...], seed: int) -> np.ndarray:
    """One tensor of torch-layout shape ``tshape`` from framework ``fw``, in torch layout."""
    if fw == "numpy":
        return ini.sample(tshape, seed=seed).astype(np.float64)
    if fw == "torch":
        import torch

        import initlab.torch as it

        t = torch.empty(tshape)
        return to_numpy(it.init_(t, ini, generator=torch.Generator().manual_seed(seed)))
    if fw == "jax":
        import jax

        import initlab.jax as ij

        init = ij.wrap(ini)
        x = jax.jit(lambda k: init(k, jax_shape(tshape)))(jax.random.key(seed))
        return to_torch_layout(to_numpy(x))
    import initlab.keras as ik

    return to_torch_layout(to_numpy(ik.get(ini, seed=seed)(jax_shape(tshape))))


def draw_many(fw: str, ini, tshape, reps: int, seed: int = 0) -> np.ndarray:
    """``reps`` independent tensors (stacked), each from its own seed / key / call."""
    if fw == "jax":
        import jax

        import initlab.jax as ij

        init = ij.wrap(ini)
        keys = jax.random.split(jax.random.key(seed), reps)
        x = to_numpy(jax.jit(jax.vmap(lambda k: init(k, jax_shape(tshape))))(keys))
        return np.stack([to_torch_layout(a) for a in x])
    if fw == "keras":
        import keras

        import initlab.keras as ik

        # a SeedGenerator: every call new values (an int seed repeats them, as in Keras)
        init = ik.get(ini, seed=keras.random.SeedGenerator(seed))
        return np.stack([to_torch_layout(to_numpy(init(jax_shape(tshape)))) for _ in range(reps)])
    return np.stack([draw(fw, ini, tshape, seed + 1000 * r) for r in range(reps)])


# ------------------------------------------------------------------------------------ checks


def iid_reference(dist: D.Distribution):
    """(mean, variance, m4, cdf, support) of an elementwise distribution."""
    if isinstance(dist, D.Normal):
        s2 = dist.std**2
        return dist.mean, s2, 3 * s2 * s2, stats.norm(dist.mean, dist.std).cdf, (-np.inf, np.inf)
    if isinstance(dist, D.Uniform):
        s2 = (dist.high - dist.low) ** 2 / 12
        law = stats.uniform(dist.low, dist.high - dist.low)
        return dist.mean, s2, 1.8 * s2 * s2, law.cdf, (dist.low, dist.high)
    if isinstance(dist, D.TruncatedNormal):
        alpha, beta = (dist.a - dist.mean) / dist.std, (dist.b - dist.mean) / dist.std
        law = stats.truncnorm(alpha, beta, loc=dist.mean, scale=dist.std)
        m, v, k = (float(t) for t in law.stats(moments="mvk"))
        return m, v, (3 + k) * v * v, law.cdf, (dist.a, dist.b)
    if isinstance(dist, D.TimeStepBias):
        # x = g(U), g monotone: the CDF is g^-1 (u of softplus(x) on the log scale); the fourth
        # central moment by quadrature over u (no floor inside the range for the defaults)
        assert dist.floor <= dist.dt_min
        lo, hi = math.log(dist.dt_min), math.log(dist.dt_max)
        m, s = dist.moments()
        u, w = np.polynomial.legendre.leggauss(64)
        m4 = float(0.5 * np.sum(w * (dist.from_unit(0.5 * u + 0.5) - m) ** 4))

        def cdf(x):
            return np.clip((np.log(np.logaddexp(0.0, x)) - lo) / (hi - lo), 0.0, 1.0)

        return m, s * s, m4, cdf, dist.bounds()
    if isinstance(dist, D.DecayRateLog):
        # x = log A, A ~ U(low, high): the CDF is (e^x - low) / (high - low); m4 by quadrature
        a, b = dist.low, dist.high
        m, s = dist.moments()
        u, w = np.polynomial.legendre.leggauss(64)
        m4 = float(0.5 * np.sum(w * (dist.from_unit(0.5 * u + 0.5) - m) ** 4))

        def cdf(x):
            return np.clip((np.exp(x) - a) / (b - a), 0.0, 1.0)

        return m, s * s, m4, cdf, dist.bounds()
    if isinstance(dist, D.RecurrenceRadius):
        # x = softplus^-1(-log a), a^2 ~ U(r0^2, r1^2), decreasing in a: P(X <= x) is the
        # share of a^2 above exp(-2 softplus(x)); m4 by quadrature
        lo2, hi2 = dist.min_rad ** 2, dist.max_rad ** 2
        m, s = dist.moments()
        u, w = np.polynomial.legendre.leggauss(64)
        m4 = float(0.5 * np.sum(w * (dist.from_unit(0.5 * u + 0.5) - m) ** 4))

        def cdf(x):
            a2 = np.exp(-2.0 * np.logaddexp(0.0, x))
            return np.clip((hi2 - a2) / (hi2 - lo2), 0.0, 1.0)

        return m, s * s, m4, cdf, dist.bounds()
    raise AssertionError(f"no reference for {dist}")


def check_iid(x: np.ndarray, dist: D.Distribution, what: str) -> None:
    x = x.ravel()
    n = x.size
    mean, var, m4, cdf, (lo, hi) = iid_reference(dist)
    assert abs(x.mean() - mean) <= Z * math.sqrt(var / n), f"{what}: mean {x.mean()} vs {mean}"
    tol = Z * math.sqrt((m4 - var * var) / n)
    assert abs(x.var() - var) <= tol, f"{what}: variance {x.var()} vs {var} (tol {tol})"
    # float32 rounding of the bound is allowed (|b| * 2^-23)
    slack = 1.2e-7 * max(abs(lo), abs(hi), 1.0) if np.isfinite(lo) else 0.0
    assert x.min() >= lo - slack and x.max() <= hi + slack, f"{what}: outside [{lo}, {hi}]"
    p = stats.kstest(x, cdf).pvalue
    assert p > P_MIN, f"{what}: KS p = {p}"


def check_haar(q: np.ndarray, gain: float, what: str) -> None:
    """``q``: (R, n, n) draws of gain * Haar O(n), n >= 4.

    For Haar O(n) the trace has mean 0 and variance 1, and E[tr^4] = 3 for n >= 4 (its first n
    moments are those of N(0, 1); Diaconis & Shahshahani 1994), so the sample mean of R traces has
    standard error 1/sqrt(R) and the sample variance sqrt(2/R). Q[0, 0] > 0 with probability 1/2
    (without the sign fix of diag(R), LAPACK's Q has Q[0, 0] < 0 almost always).
    """
    reps, n, _ = q.shape
    eye = np.broadcast_to(np.eye(n), q.shape)
    err = np.abs(q @ np.swapaxes(q, 1, 2) / gain**2 - eye).max()
    assert err < 1e-5, f"{what}: not orthogonal ({err})"
    tr = np.trace(q, axis1=1, axis2=2) / gain
    assert abs(tr.mean()) <= Z / math.sqrt(reps), f"{what}: trace mean {tr.mean()}"
    assert abs(tr.var() - 1.0) <= Z * math.sqrt(2 / reps), f"{what}: trace variance {tr.var()}"
    frac = (q[:, 0, 0] > 0).mean()
    assert abs(frac - 0.5) <= Z * 0.5 / math.sqrt(reps), f"{what}: P(Q00 > 0) = {frac}"


# ------------------------------------------------------------------------------------ the table

EXTRA = [  # non-default parameters, and a conv shape for the fan conventions
    ("he_normal", {"mode": "fan_out"}, (64, 32, 3, 3)),
    ("he_uniform", {"a": 0.2}, (64, 32, 3)),
    ("variance_scaling", {"scale": 2.0, "mode": "fan_avg", "distribution": "uniform"}, None),
    ("variance_scaling", {"distribution": "normal"}, (64, 32, 3, 3)),
    ("truncated_normal", {"mean": 0.5, "std": 2.0, "a": -1.0, "b": 3.0}, None),
    ("truncated_normal", {"std": 0.02, "a": -0.04, "b": 0.04}, None),
    ("orthogonal", {"method": "svd"}, None),
    ("orthogonal", {"method": "householder", "gain": 2.0}, None),
    ("sparse", {"sparsity": 0.5, "std": 1.0}, None),
    ("dirac", {"groups": 2}, (16, 8, 3, 3)),
    ("martens_sparse", {"k": 5, "std": 0.5}, (40, 8, 3)),
    ("looks_linear", {"position": "first"}, (40, 30)),
    ("looks_linear", {"position": "last", "gain": 0.5}, (10, 64)),
    ("looks_linear", {"position": "hidden", "gain": 0.8}, (16, 12, 3, 5)),  # a conv kernel
    ("linspace", {"start": -5.0, "end": 3.0, "power": 1.3}, None),   # RWKV-4's decays
    ("linspace", {"start": 0.3, "end": 1.3, "power": 0.5, "endpoint": False}, (1, 1, 9)),
    ("cycle", {"values": [0.1, 0.6, -0.4]}, (5, 7)),                  # RWKV-4's bonus
]


def cases():
    out = []
    for name in initlab.names():
        out.append((name, {}, None))
    out.extend(EXTRA)
    return out


def shape_for(ini: initlab.Initializer, shape) -> tuple[int, ...]:
    if shape is not None:
        return shape
    try:
        ini.resolve(MAIN_SHAPE)
        return MAIN_SHAPE
    except ValueError:  # conv-only initializers (dirac, delta_orthogonal)
        return CONV_SHAPE


@pytest.mark.parametrize("fw", FRAMEWORKS)
@pytest.mark.parametrize(("name", "params", "shape"), cases(),
                         ids=[f"{n}-{'-'.join(map(str, p.values()))}" for n, p, _ in cases()])
def test_same_distribution_everywhere(fw, name, params, shape):
    """Every catalog entry: the framework's draw has the distribution the core resolves."""
    _needs(fw)
    ini = initlab.get(name, **params)
    tshape = shape_for(ini, shape)
    dist = ini.resolve(tshape)
    what = f"{fw}:{ini!r}{tshape}"
    x = draw(fw, ini, tshape, seed=1)
    assert x.shape == tshape, what
    if not dist.random:  # constants, identity, dirac: the same array everywhere
        np.testing.assert_allclose(x, ini.sample(tshape, seed=0), rtol=0, atol=1e-7, err_msg=what)
    elif dist.iid:
        check_iid(x, dist, what)
    elif isinstance(dist, D.Orthogonal):
        flat = x.reshape(tshape[0], -1)
        small, large = sorted(flat.shape)
        gram = flat @ flat.T if flat.shape[0] == small else flat.T @ flat
        assert np.abs(gram / dist.gain**2 - np.eye(small)).max() < 1e-5, what
        check_haar(draw_many(fw, ini, (5, 5), reps=400), dist.gain, what)
    elif isinstance(dist, D.DeltaOrthogonal):
        centre = tuple(k // 2 for k in tshape[2:])
        mid = x[(slice(None), slice(None), *centre)]
        assert np.abs(mid.T @ mid / dist.gain**2 - np.eye(tshape[1])).max() < 1e-5, what
        assert np.count_nonzero(x) == np.count_nonzero(mid), what  # zero off the centre
        many = draw_many(fw, ini, (5, 5, 3), reps=400)[:, :, :, 1]
        check_haar(many, dist.gain, what)
    elif isinstance(dist, D.Sparse):
        rows = tshape[0]
        zeros = (x == 0).sum(axis=0)
        assert (zeros == math.ceil(dist.sparsity * rows)).all(), what
        check_iid(x[x != 0], D.Normal(0.0, dist.std), what)
        # positions: every row equally likely to be zeroed in a column
        hit = (x == 0).mean(axis=1)  # per row, over cols columns
        p = math.ceil(dist.sparsity * rows) / rows
        assert np.abs(hit - p).max() <= Z * math.sqrt(p * (1 - p) / tshape[1]), what
    elif isinstance(dist, D.MartensSparse):
        flat = x.reshape(tshape[0], -1)
        assert ((flat != 0).sum(axis=1) == dist.k).all(), what
        check_iid(flat[flat != 0], D.Normal(0.0, dist.std), what)
        hit = (flat != 0).mean(axis=0)  # per input, over rows units
        p = dist.k / flat.shape[1]
        assert np.abs(hit - p).max() <= Z * math.sqrt(p * (1 - p) / flat.shape[0]), what
    elif isinstance(dist, D.LooksLinear):
        rows, cols = D.looks_linear_block(tshape, dist.position)
        if len(tshape) > 2:  # a conv kernel: the matrix at the centre tap, zeros elsewhere
            centre = (slice(None), slice(None), *D.kernel_centre(tshape))
            rest = x.copy()
            rest[centre] = 0
            assert not rest.any(), what
            x = x[centre]
        block = x[:rows, :cols]
        # exactly the signed copies of one block, V = gain * (semi-)orthogonal
        np.testing.assert_array_equal(x, np.kron(np.array(dist.signs), block), err_msg=what)
        small = min(rows, cols)
        gram = block @ block.T if rows == small else block.T @ block
        assert np.abs(gram / dist.gain**2 - np.eye(small)).max() < 1e-5, what
        square = {"first": (10, 5), "hidden": (10, 10), "last": (5, 10)}[dist.position]
        many = draw_many(fw, ini, square, reps=400)[:, :5, :5]  # V: 5 x 5
        check_haar(many, dist.gain, what)
    else:
        raise AssertionError(f"no cross-framework check for {type(dist).__name__}: add one")


@pytest.mark.parametrize("fw", ["torch", "jax", "keras"])
def test_bias_role_same_everywhere(fw):
    """A bias gets its layer's fans: torch_default's U(+-1/sqrt(fan_in)), nielsen's N(0, 1)."""
    _needs(fw)
    fan_in, fan_out, n = 400, 300, 20000
    for name, dist in (("torch_default", D.Uniform(-0.05, 0.05)),
                       ("nielsen_default", D.Normal(0.0, 1.0))):
        if fw == "torch":
            import torch

            import initlab.torch as it

            x = to_numpy(it.init_(torch.empty(n), name, fans=(fan_in, fan_out), role="bias",
                                  generator=torch.Generator().manual_seed(0)))
        elif fw == "jax":
            import jax

            import initlab.jax as ij

            x = to_numpy(ij.get(name, fans=(fan_in, fan_out), role="bias")(jax.random.key(0), (n,)))
        else:
            import initlab.keras as ik

            x = to_numpy(ik.get(name, fans=(fan_in, fan_out), role="bias", seed=0)((n,)))
        check_iid(x, dist, f"{fw}:{name} bias")


# ================================================================== the documented table's claims
# Each test below checks one row of docs/frameworks.md against the installed library.

FAN_IN, FAN_OUT = 300, 200
TN_STD = 0.87962566103423978  # std of N(0, 1) truncated to (-2, 2)
P_OUTSIDE_2SIGMA = 2 * stats.norm.sf(2.0)  # 0.0455: mass of N(0, 1) beyond +-2


def check_truncated_2sigma(x: np.ndarray, var: float, what: str, p_outside: float = 0.0) -> None:
    """``x``: a normal truncated at +-2 parent std with the 0.8796 correction, variance ``var``.

    ``p_outside``: the probability with which the implementation lets a value escape the bounds
    (Keras's torch backend keeps the first of 4 draws inside +-2 and the first draw when none is:
    0.0455^4 = 4.3e-6 per element). The count outside is then allowed up to its mean plus Z
    Poisson standard errors.
    """
    parent = math.sqrt(var) / TN_STD
    bound = 2 * parent * (1 + 1.2e-7)  # float32 rounding of the bound
    outside = int((np.abs(x) > bound).sum())
    expected = p_outside * x.size
    assert outside <= expected + Z * math.sqrt(expected), f"{what}: {outside} values beyond 2 std"
    inside = x[np.abs(x) <= bound]
    check_iid(inside, D.TruncatedNormal(0.0, parent, -2 * parent, 2 * parent), what)
    # and the support really ends there: the largest |x| of n draws is within a hair of it
    assert np.abs(inside).max() > 0.98 * 2 * parent, what


def check_untruncated(x: np.ndarray, std: float, what: str) -> None:
    check_iid(x, D.Normal(0.0, std), what)
    frac = (np.abs(x) > 2 * std).mean()
    se = math.sqrt(P_OUTSIDE_2SIGMA * (1 - P_OUTSIDE_2SIGMA) / x.size)
    assert abs(frac - P_OUTSIDE_2SIGMA) <= Z * se, f"{what}: {frac} beyond 2 std"


JAX_PRESETS = [  # (jax name, scale, mode): all truncated normals in JAX
    ("lecun_normal", 1.0, "fan_in"), ("glorot_normal", 1.0, "fan_avg"),
    ("he_normal", 2.0, "fan_in"),
]


def _fan(mode: str) -> float:
    return {"fan_in": FAN_IN, "fan_out": FAN_OUT, "fan_avg": (FAN_IN + FAN_OUT) / 2}[mode]


@pytest.mark.parametrize(("name", "scale", "mode"), JAX_PRESETS)
def test_claim_jax_normal_presets_are_truncated(name, scale, mode):
    """JAX's *_normal: truncated at 2 std / 0.8796 with variance scale / n; initlab's
    variance_scaling(scale, mode, "truncated_normal") gives the same values for the same key."""
    jax = pytest.importorskip("jax", reason="JAX is not installed (pip install 'initlab[jax]')")
    import initlab.jax as ij

    key = jax.random.key(7)
    theirs = getattr(jax.nn.initializers, name)()(key, (FAN_IN, FAN_OUT))
    check_truncated_2sigma(to_numpy(theirs), scale / _fan(mode), f"jax {name}")
    ours = ij.variance_scaling(scale, mode, "truncated_normal")(key, (FAN_IN, FAN_OUT))
    np.testing.assert_allclose(to_numpy(ours), to_numpy(theirs), rtol=1e-6, atol=1e-8)
    # initlab's own preset of the same name is the untruncated one (torch's meaning)
    plain = getattr(ij, name)()(key, (FAN_IN, FAN_OUT))
    check_untruncated(to_numpy(plain), math.sqrt(scale / _fan(mode)), f"initlab {name}")


def test_claim_jax_uniform_presets_match():
    jax = pytest.importorskip("jax", reason="JAX is not installed (pip install 'initlab[jax]')")
    import initlab.jax as ij

    key = jax.random.key(3)
    for name in ("lecun_uniform", "glorot_uniform", "he_uniform"):
        theirs = getattr(jax.nn.initializers, name)()(key, (3, 3, 16, 32))
        ours = getattr(ij, name)()(key, (3, 3, 16, 32))
        # same uniform bits; JAX computes -1 + 2u then scales, initlab low + (high - low) u
        np.testing.assert_allclose(to_numpy(ours), to_numpy(theirs), rtol=1e-5, atol=1e-7)


def test_claim_jax_truncated_normal_bounds_in_std_units():
    """jax.nn.initializers.truncated_normal(0.02): bounds +-2 in units of std (support +-0.04),
    std of the untruncated parent (real std 0.0176); initlab truncated_normal(std=0.02,
    a=-0.04, b=0.04) gives the same values for the same key."""
    jax = pytest.importorskip("jax", reason="JAX is not installed (pip install 'initlab[jax]')")
    import initlab.jax as ij

    key = jax.random.key(11)
    theirs = to_numpy(jax.nn.initializers.truncated_normal(0.02)(key, (FAN_IN, FAN_OUT)))
    check_iid(theirs, D.TruncatedNormal(0.0, 0.02, -0.04, 0.04), "jax truncated_normal")
    ours = to_numpy(ij.truncated_normal(std=0.02, a=-0.04, b=0.04)(key, (FAN_IN, FAN_OUT)))
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-9)


def test_claim_torch_trunc_normal_bounds_absolute():
    """torch's trunc_normal_(std=0.02) keeps a=-2, b=2 as absolute values: with std 0.02 they are
    100 std away, so it is an untruncated N(0, 0.02^2); initlab truncated_normal(std=0.02) means
    the same."""
    import torch

    t = torch.nn.init.trunc_normal_(torch.empty(FAN_IN, FAN_OUT), std=0.02,
                                    generator=torch.Generator().manual_seed(0))
    check_untruncated(to_numpy(t), 0.02, "torch trunc_normal_")
    check_untruncated(initlab.truncated_normal(std=0.02).sample((FAN_IN, FAN_OUT), seed=0)
                      .astype(np.float64), 0.02, "initlab truncated_normal(std=0.02)")


def test_claim_timm_trunc_normal_tf_bounds_in_std_units():
    timm_init = pytest.importorskip("timm.layers.weight_init",
                                    reason="timm is not installed; the claim is checked on JAX's "
                                           "truncated_normal, which has the same meaning")
    import torch

    torch.manual_seed(0)  # timm's trunc_normal_tf_ takes no generator (test code only)
    t = timm_init.trunc_normal_tf_(torch.empty(FAN_IN, FAN_OUT), std=0.02)
    check_iid(to_numpy(t), D.TruncatedNormal(0.0, 0.02, -0.04, 0.04), "timm trunc_normal_tf_")


@pytest.mark.parametrize("name", ["xavier_normal_", "kaiming_normal_"])
def test_claim_torch_normal_presets_untruncated(name):
    """torch's xavier_normal_/kaiming_normal_ are plain normals; initlab's glorot_normal /
    he_normal give the same values from the same generator."""
    import torch

    t = getattr(torch.nn.init, name)(torch.empty(FAN_OUT, FAN_IN),
                                     generator=torch.Generator().manual_seed(0))
    std = math.sqrt(2 / (FAN_IN + FAN_OUT)) if name == "xavier_normal_" else math.sqrt(2 / FAN_IN)
    check_untruncated(to_numpy(t), std, f"torch {name}")
    if _installed("initlab.torch"):
        import initlab.torch as it

        ours = it.init_(torch.empty(FAN_OUT, FAN_IN),
                        "glorot_normal" if name == "xavier_normal_" else "he_normal",
                        generator=torch.Generator().manual_seed(0))
        check_iid(to_numpy(ours), D.Normal(0.0, std), f"initlab for {name}")


def test_claim_torch_linear_default():
    """nn.Linear: weight and bias U(+-1/sqrt(fan_in)); initlab torch_default (role='bias')."""
    import torch

    torch.manual_seed(0)  # nn.Linear's own init reads the global generator (test code only)
    lin = torch.nn.Linear(FAN_IN, 20000)
    bound = 1 / math.sqrt(FAN_IN)
    check_iid(to_numpy(lin.weight)[:, :1], D.Uniform(-bound, bound), "torch Linear weight")
    check_iid(to_numpy(lin.bias), D.Uniform(-bound, bound), "torch Linear bias")
    for dist in (initlab.torch_default().resolve((20000, FAN_IN)),
                 initlab.torch_default().resolve((20000,), fans=(FAN_IN, 20000), role="bias")):
        assert (dist.low, dist.high) == pytest.approx((-bound, bound), rel=1e-12)


def test_claim_flax_dense_default_is_truncated_lecun_normal():
    """Flax Dense's default kernel is JAX's lecun_normal (truncated), bias zeros; a Dense with
    initlab's variance_scaling(1, "fan_in", "truncated_normal") gets the same values."""
    pytest.importorskip("flax", reason="Flax is not installed (pip install 'initlab[jax]')")
    import flax.linen as nn
    import jax

    import initlab.jax as ij

    x = jax.numpy.ones((1, FAN_IN))
    key = jax.random.key(0)
    theirs = nn.Dense(FAN_OUT).init(key, x)["params"]
    ours = nn.Dense(FAN_OUT, kernel_init=ij.variance_scaling(1.0, "fan_in", "truncated_normal"),
                    bias_init=ij.zeros()).init(key, x)["params"]
    check_truncated_2sigma(to_numpy(theirs["kernel"]), 1 / FAN_IN, "flax Dense kernel")
    np.testing.assert_allclose(to_numpy(ours["kernel"]), to_numpy(theirs["kernel"]), rtol=1e-6,
                               atol=1e-9)
    assert not np.any(to_numpy(theirs["bias"])) and not np.any(to_numpy(ours["bias"]))
    from flax import nnx

    lin = nnx.Linear(FAN_IN, FAN_OUT, rngs=nnx.Rngs(1))  # nnx: the same default
    check_truncated_2sigma(to_numpy(lin.kernel[...]), 1 / FAN_IN, "flax nnx.Linear kernel")
    assert not np.any(to_numpy(lin.bias[...]))


def _keras_p_outside(keras) -> float:
    """Keras's torch backend: first of 4 draws inside +-2, else the first draw (see
    keras/src/backend/torch/random.py), so P(outside) = P(|z| > 2)^4; other backends: 0."""
    return P_OUTSIDE_2SIGMA**4 if keras.backend.backend() == "torch" else 0.0


def _keras():
    return pytest.importorskip("keras", reason="Keras 3 is not installed "
                                               "(pip install 'initlab[keras]')")


@pytest.mark.parametrize(("name", "scale", "mode"), JAX_PRESETS)
def test_claim_keras_normal_presets_are_truncated(name, scale, mode):
    keras = _keras()
    cls = {"lecun_normal": "LecunNormal", "glorot_normal": "GlorotNormal",
           "he_normal": "HeNormal"}[name]
    theirs = to_numpy(getattr(keras.initializers, cls)(seed=0)((FAN_IN, FAN_OUT)))
    check_truncated_2sigma(theirs, scale / _fan(mode), f"keras {cls}", _keras_p_outside(keras))
    import initlab.keras as ik

    ours = to_numpy(ik.variance_scaling(scale, mode, "truncated_normal", seed=0)((FAN_IN, FAN_OUT)))
    p = stats.ks_2samp(ours.ravel(), theirs.ravel()).pvalue
    assert p > P_MIN, f"keras {cls} vs initlab: KS p = {p}"


def test_claim_keras_variance_scaling_normal_means_truncated():
    keras = _keras()
    vs = keras.initializers.VarianceScaling(scale=2.0, mode="fan_in", distribution="normal", seed=1)
    assert vs.get_config()["distribution"] == "truncated_normal"
    check_truncated_2sigma(to_numpy(vs((FAN_IN, FAN_OUT))), 2.0 / FAN_IN, "keras VS('normal')",
                           _keras_p_outside(keras))
    # initlab's "normal" is the untruncated one (Keras calls it "untruncated_normal")
    check_untruncated(initlab.variance_scaling(2.0, "fan_in", "normal")
                      .sample((FAN_IN, FAN_OUT), seed=1, layout="jax").astype(np.float64),
                      math.sqrt(2.0 / FAN_IN), "initlab VS('normal')")


def test_claim_keras_dense_default_glorot_uniform():
    keras = _keras()
    layer = keras.layers.Dense(FAN_OUT)
    layer.build((None, FAN_IN))
    bound = math.sqrt(6 / (FAN_IN + FAN_OUT))
    check_iid(to_numpy(layer.kernel.value), D.Uniform(-bound, bound), "keras Dense kernel")
    assert not np.any(to_numpy(layer.bias.value))
    ours = initlab.glorot_uniform().resolve((FAN_IN, FAN_OUT), layout="jax")
    assert (ours.low, ours.high) == pytest.approx((-bound, bound), rel=1e-12)


def test_claim_haiku_linear_default_uncorrected_truncated_normal():
    """Haiku's Linear: TruncatedNormal(stddev=1/sqrt(fan_in)) without the 0.8796 correction, so
    the real std is 0.8796/sqrt(fan_in) (check_iid checks that variance); initlab
    truncated_normal(std=s, a=-2s, b=2s) is it."""
    hk = pytest.importorskip("haiku", reason="dm-haiku is not installed (pip install dm-haiku)")
    import jax

    net = hk.transform(lambda x: hk.Linear(FAN_OUT)(x))
    params = net.init(jax.random.key(0), jax.numpy.ones((1, FAN_IN)))["linear"]
    s = 1 / math.sqrt(FAN_IN)
    w = to_numpy(params["w"])
    check_iid(w, D.TruncatedNormal(0.0, s, -2 * s, 2 * s), "haiku Linear w")
    assert not np.any(to_numpy(params["b"]))
    ours = initlab.truncated_normal(std=s, a=-2 * s, b=2 * s).resolve((FAN_IN, FAN_OUT))
    assert (ours.std, ours.a, ours.b) == pytest.approx((s, -2 * s, 2 * s), rel=1e-12)
    # for every layer at once: scale 0.8796^2 cancels the correction (parent std 1/sqrt(fan_in))
    per_layer = initlab.variance_scaling(TN_STD**2, "fan_in", "truncated_normal")
    ours = per_layer.resolve((FAN_IN, FAN_OUT), layout="jax")
    assert (ours.std, ours.a, ours.b) == pytest.approx((s, -2 * s, 2 * s), rel=1e-12)


@pytest.mark.parametrize("fw", FRAMEWORKS)
def test_truncated_bounds_hold_after_float32_rounding(fw):
    """Every float32 value lies in [a, b] even when b (0.1) rounds *up* in float32: the bounds are
    rounded into the interval before clipping (NumPy 2 compares np.float32(0.1) > 0.1 in float32,
    which once hid that rounding from the NumPy backend)."""
    _needs(fw)
    ini = initlab.get("truncated_normal", mean=0.0, std=1.0, a=0.0999999, b=0.1)
    x = draw(fw, ini, (40, 50), seed=0)
    assert x.min() >= 0.0999999 and x.max() <= 0.1, (x.min(), x.max())
