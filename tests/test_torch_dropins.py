"""``initlab.torch``: torch.nn.init drop-ins (torch as the oracle), extras, ``init_``, the
registry-driven table (every name x shape x dtype) and every error message."""

from __future__ import annotations

import inspect
import math
import warnings

import pytest
import torch
from scipy import stats

import initlab
import initlab.torch as it
from initlab.core.validation import InitlabError, InitlabTypeError

EPS = 2.0**-52


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


DROP_INS = ["uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_", "eye_",
            "dirac_", "xavier_uniform_", "xavier_normal_", "kaiming_uniform_",
            "kaiming_normal_", "orthogonal_", "sparse_"]


# ============================================================================ torch as oracle


@pytest.mark.parametrize("name", DROP_INS + ["calculate_gain"])
def test_signature_matches_torch(name):
    """Same positional parameters, in order, with the same defaults (extras are keyword-only)."""
    ours = inspect.signature(getattr(it, name)).parameters
    theirs = inspect.signature(getattr(torch.nn.init, name)).parameters
    positional = [p for p in ours.values() if p.kind is not p.KEYWORD_ONLY]
    assert [p.name for p in positional] == list(theirs)
    for p in positional:
        assert p.default == theirs[p.name].default, p.name


SAME_STREAM = [
    ("normal_", {"mean": 0.5, "std": 2.0}),
    ("uniform_", {"a": -0.3, "b": 0.9}),
    ("xavier_uniform_", {"gain": 1.7}),
    ("xavier_normal_", {}),
    ("kaiming_uniform_", {}),
    ("kaiming_uniform_", {"a": math.sqrt(5)}),  # nn.Linear's default
    ("kaiming_normal_", {"mode": "fan_out", "nonlinearity": "relu"}),
    ("kaiming_normal_", {"a": 0.2, "mode": "FAN_IN"}),  # torch lower-cases the mode
    ("orthogonal_", {"gain": 1.3, "method": "qr"}),
]


@pytest.mark.parametrize("name,kwargs", SAME_STREAM, ids=[f"{n}{i}" for i, (n, _) in enumerate(SAME_STREAM)])
@pytest.mark.parametrize("shape", [(30, 17), (17, 30), (16, 8, 3, 3), (7, 5, 3), (4, 2, 2, 3, 3)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_same_generator_seed_same_values_as_torch(name, kwargs, shape, dtype):
    """Where torch's result is defined by the same formula and the same draw, initlab gives the
    same tensor for the same generator seed."""
    theirs_kw = {k: v for k, v in kwargs.items() if k != "method"}
    expected = getattr(torch.nn.init, name)(torch.empty(shape, dtype=dtype), **theirs_kw,
                                            generator=gen(5))
    got = getattr(it, name)(torch.empty(shape, dtype=dtype), **kwargs, generator=gen(5))
    if dtype == torch.float32:
        assert torch.equal(got, expected)
    else:
        # float64 keeps the last bit of std/bound, which the core computes as sqrt(gain^2 / n)
        # and torch as gain / sqrt(n): equal to within 2 ulp (see test_formula_values_equal_torchs)
        torch.testing.assert_close(got, expected, rtol=4 * EPS, atol=0)


@pytest.mark.parametrize("shape", [(30, 17), (64, 3, 5, 5), (10, 10, 2)])
def test_formula_values_equal_torchs(shape):
    """The core's std / bound for the drop-ins' arguments, against torch's own arithmetic
    (``torch/nn/init.py``), to within 2 ulp."""
    fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    for gain in (1.0, 0.5, 5 / 3):
        std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
        d = initlab.get("glorot_normal", gain=gain).resolve(shape)
        assert math.isclose(d.std, std, rel_tol=2 * EPS)
        d = initlab.get("glorot_uniform", gain=gain).resolve(shape)
        assert math.isclose(d.high, math.sqrt(3.0) * std, rel_tol=2 * EPS)
    for a, mode, nl in [(0, "fan_in", "leaky_relu"), (math.sqrt(5), "fan_in", "leaky_relu"),
                        (0, "fan_out", "relu"), (0, "fan_in", "tanh"), (0, "fan_in", "selu")]:
        fan = fan_in if mode == "fan_in" else fan_out
        std = torch.nn.init.calculate_gain(nl, a) / math.sqrt(fan)
        d = initlab.get("he_normal", a=a, mode=mode, nonlinearity=nl).resolve(shape)
        assert math.isclose(d.std, std, rel_tol=2 * EPS)
        d = initlab.get("he_uniform", a=a, mode=mode, nonlinearity=nl).resolve(shape)
        assert math.isclose(d.high, math.sqrt(3.0) * std, rel_tol=2 * EPS)


def test_calculate_gain_is_torchs():
    for nl in ["linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
               "conv_transpose3d", "sigmoid", "tanh", "relu", "selu", "leaky_relu"]:
        assert it.calculate_gain(nl) == torch.nn.init.calculate_gain(nl)
    assert it.calculate_gain("leaky_relu", 0.2) == torch.nn.init.calculate_gain("leaky_relu", 0.2)


@pytest.mark.parametrize("shape", [(3, 5), (5, 3), (4, 4)])
def test_eye_constant_ones_zeros_equal_torch(shape):
    assert torch.equal(it.eye_(torch.empty(shape)), torch.nn.init.eye_(torch.empty(shape)))
    assert torch.equal(it.constant_(torch.empty(shape), 0.3),
                       torch.nn.init.constant_(torch.empty(shape), 0.3))
    assert torch.equal(it.ones_(torch.empty(shape)), torch.ones(shape))
    assert torch.equal(it.zeros_(torch.full(shape, 2.0)), torch.zeros(shape))


@pytest.mark.parametrize("shape,groups", [((6, 4, 3), 1), ((8, 4, 3, 3), 2), ((6, 2, 3, 3, 3), 3)])
def test_dirac_equals_torch(shape, groups):
    assert torch.equal(it.dirac_(torch.empty(shape), groups),
                       torch.nn.init.dirac_(torch.empty(shape), groups))


@pytest.mark.parametrize("mean,std,a,b", [(0.0, 1.0, -2.0, 2.0), (0.0, 0.02, -0.04, 0.04),
                                          (1.0, 2.0, 0.0, 3.0), (0.0, 1.0, 0.5, 2.5)])
def test_trunc_normal_same_distribution_as_torch(mean, std, a, b):
    """Same arguments (absolute a, b; the parent's std) -> same distribution as torch's
    trunc_normal_: a two-sample KS test (fixed seeds; p > 1e-3) and both against scipy."""
    n = 100_000
    ours = it.trunc_normal_(torch.empty(n), mean, std, a, b, generator=gen(1)).double()
    theirs = torch.nn.init.trunc_normal_(torch.empty(n), mean, std, a, b, generator=gen(2)).double()
    assert ours.min() >= a and ours.max() <= b
    assert stats.ks_2samp(ours.numpy(), theirs.numpy()).pvalue > 1e-3
    ref = stats.truncnorm((a - mean) / std, (b - mean) / std, loc=mean, scale=std)
    assert stats.kstest(ours.numpy(), ref.cdf).pvalue > 1e-3
    # mean within 6 sigma of the sampling error (std_t / sqrt(n))
    assert abs(ours.mean().item() - ref.mean()) < 6 * ref.std() / math.sqrt(n)


def test_sparse_matches_torch_zero_counts_and_std():
    """Same number of zeros per column as torch's; nonzeros N(0, std^2): with 40 x 100 x 0.8
    = 3200 nonzeros the sample std has relative error 1/sqrt(2 * 3200) = 1.25% (6 sigma 7.5%)."""
    ours = it.sparse_(torch.empty(40, 100), 0.2, 0.05, generator=gen(3))
    theirs = torch.nn.init.sparse_(torch.empty(40, 100), 0.2, 0.05, generator=gen(3))
    assert torch.equal((ours == 0).sum(0), (theirs == 0).sum(0))
    assert abs(ours[ours != 0].std().item() / 0.05 - 1) < 0.075


def test_default_orthogonal_is_householder_and_orthonormal():
    assert inspect.signature(it.orthogonal_).parameters["method"].default == "householder"
    w = it.orthogonal_(torch.empty(64, 3, 3, 3), 2.0, gen())
    m = w.reshape(64, -1).double()
    assert torch.allclose(m.T @ m, 4 * torch.eye(27, dtype=torch.float64), atol=1e-5)


def test_one_orthogonal_default_across_initlabs_own_paths():
    """The catalog's `orthogonal`, init_, orthogonal_ and the `orthogonal` plan draw the same
    values for the same generator state (before stream v2 the catalog was QR, orthogonal_
    Householder); QR stays selectable and reproduces torch.nn.init.orthogonal_."""
    from initlab.core.distributions import DEFAULT_ORTHOGONAL_METHOD, Orthogonal
    from initlab.core.seeding import stream_seed

    assert DEFAULT_ORTHOGONAL_METHOD == "householder" == Orthogonal().method
    assert initlab.orthogonal().params["method"] == it.ORTHOGONAL_METHOD == "householder"
    a = it.orthogonal_(torch.empty(12, 20), 1.5, gen(4))
    b = it.init_(torch.empty(12, 20), "orthogonal", gain=1.5, generator=gen(4))
    c = it.init_(torch.empty(12, 20), initlab.get("orthogonal", gain=1.5), generator=gen(4))
    assert torch.equal(a, b) and torch.equal(a, c)
    lin = torch.nn.Linear(20, 12)
    initlab.apply(lin, "orthogonal", seed=5)
    g = torch.Generator().manual_seed(stream_seed(5, "weight", bits=63))
    assert torch.equal(lin.weight.detach(), it.orthogonal_(torch.empty(12, 20), 1.0, g))
    qr = it.orthogonal_(torch.empty(12, 20), 1.5, gen(4), method="qr")
    assert torch.equal(qr, torch.nn.init.orthogonal_(torch.empty(12, 20), 1.5, generator=gen(4)))
    assert not torch.equal(qr, a)


def test_none_generator_uses_torchs_global_generator_exactly_as_torch():
    with torch.random.fork_rng():
        torch.manual_seed(123)
        theirs = torch.nn.init.kaiming_normal_(torch.empty(20, 30))
        torch.manual_seed(123)
        ours = it.kaiming_normal_(torch.empty(20, 30))
        torch.manual_seed(123)
        ours_tn = it.trunc_normal_(torch.empty(100))
        torch.manual_seed(123)
        again = it.trunc_normal_(torch.empty(100))
    assert torch.equal(ours, theirs)
    assert torch.equal(ours_tn, again)


def test_no_grad_and_returns_the_tensor():
    p = torch.nn.Parameter(torch.empty(8, 5))
    for fn in (it.normal_, it.trunc_normal_, it.orthogonal_, it.xavier_uniform_, it.zeros_,
               it.lecun_normal_, it.kaiming_uniform_):
        assert fn(p) is p
        assert p.requires_grad and p.grad_fn is None


def test_module_weights_through_drop_ins():
    lin = torch.nn.Linear(50, 20)
    it.torch_default_(lin.weight, gen(1))
    it.torch_default_(lin.bias, gen(2), fans=(50, 20), role="bias")
    bound = 1 / math.sqrt(50)
    assert lin.weight.abs().max() <= bound and lin.bias.abs().max() <= bound


# ============================================================================ extras


def test_extras_resolve_through_the_core():
    w = torch.empty(400, 300)
    it.lecun_normal_(w, gen())
    # sample std of n normal draws: relative error 1/sqrt(2n); 6 sigma with n = 120000: 1.2%
    assert abs(w.std().item() * math.sqrt(300) - 1) < 0.012
    it.lecun_uniform_(w, gen())
    assert w.abs().max() <= math.sqrt(3 / 300)
    it.variance_scaling_(w, 2.0, "fan_avg", "truncated_normal", gen())
    assert abs(w.std().item() * math.sqrt(350 / 2) - 1) < 0.012
    parent = math.sqrt(2 / 350) / initlab.core.TRUNCATED_NORMAL_STD_2SIGMA
    assert w.abs().max().item() <= 2 * parent
    it.uniform_std_(w, 0.1, 0.0, gen())
    assert w.abs().max() <= math.sqrt(3) * 0.1
    it.small_normal_(w, generator=gen())
    assert abs(w.std().item() / 0.01 - 1) < 0.012
    b = torch.empty(400)
    it.nielsen_default_(b, gen(), fans=(300, 400), role="bias")
    assert abs(b.std().item() - 1) < 0.3  # 400 draws: 6 sigma = 6 / sqrt(800) = 0.21
    assert it.he_normal_ is it.kaiming_normal_ and it.glorot_uniform_ is it.xavier_uniform_
    assert it.truncated_normal_ is it.trunc_normal_
    k = it.delta_orthogonal_(torch.empty(16, 8, 3, 3), 1.0, gen())
    assert (k[:, :, 0, 0] == 0).all()
    m = it.martens_sparse_(torch.empty(20, 40), 5, 1.0, gen())
    assert ((m != 0).sum(1) == 5).all()
    e = it.identity_(torch.empty(3, 3), 2.0)
    assert torch.equal(e, 2 * torch.eye(3))


def test_every_name_has_a_function():
    for name in initlab.names():
        fn = getattr(it, name + "_")
        assert callable(fn) and fn.__doc__, name
    with pytest.raises(AttributeError):
        it.not_an_initializer_  # noqa: B018


def test_init_accepts_an_initializer_object():
    ini = initlab.get("he_uniform", a=0.1)
    a = it.init_(torch.empty(10, 20), ini, generator=gen(4))
    b = it.init_(torch.empty(10, 20), "he_uniform", generator=gen(4), a=0.1)
    assert torch.equal(a, b)


# ============================================================================ the table

SHAPES = [(6, 4), (4, 9), (8, 4, 3), (8, 4, 3, 3), (8, 2, 2, 3, 3)]
DTYPES = [torch.float32, torch.float64, torch.bfloat16, torch.float16]


def expected_error(name: str, shape) -> str | None:
    """The rule a default-parameter initializer breaks on ``shape``, if any."""
    canonical = initlab.core.canonical_name(name)
    nd = len(shape)
    fan_in = shape[1] * math.prod(shape[2:])
    if canonical == "identity" and nd != 2:
        return "must be 2-D"
    if canonical in ("dirac", "delta_orthogonal") and nd not in (3, 4, 5):
        return "must be 3-, 4- or 5-D"
    if canonical == "delta_orthogonal" and shape[1] > shape[0]:
        return "in_channels <= out_channels"
    if canonical == "sparse" and nd != 2:
        return "must be 2-D"
    if canonical == "martens_sparse" and fan_in < 15:
        return "must be <= fan_in"
    if canonical == "looks_linear" and nd not in (2, 3, 4, 5):
        return "must be 2-D .* or a 3-, 4- or 5-D conv kernel"
    if canonical == "looks_linear" and shape[0] % 2 + shape[1] % 2:   # default position hidden
        return "even mirrored sides"
    return None


@pytest.mark.parametrize("name", initlab.names())
def test_table_every_name_shape_dtype(name):
    ini = initlab.get(name)
    for shape in SHAPES:
        err = expected_error(name, shape)
        for dtype in DTYPES:
            t = torch.full(shape, 7.0, dtype=dtype)
            if err:
                with pytest.raises(InitlabError, match=err):
                    it.init_(t, name, generator=gen(1))
                assert (t == 7).all(), "modified although an error was raised"
                continue
            out = it.init_(t, name, generator=gen(1))
            assert out is t and t.dtype == dtype and t.shape == shape
            assert torch.isfinite(t.float()).all()
            if ini.random:
                again = it.init_(torch.empty(shape, dtype=dtype), name, generator=gen(1))
                other = it.init_(torch.empty(shape, dtype=dtype), name, generator=gen(2))
                assert torch.equal(t, again), (name, shape, dtype)
                # (sparse's default 0.9 zeroes all 6 rows of a (6, 4) matrix: nothing to differ)
                assert not torch.equal(t, other) or not t.any(), (name, shape, dtype)
        if err is None and ini.random:
            # low precision = the float32 draw, rounded (same generator seed)
            f32 = it.init_(torch.empty(shape), name, generator=gen(1))
            b16 = it.init_(torch.empty(shape, dtype=torch.bfloat16), name, generator=gen(1))
            assert torch.equal(b16, f32.to(torch.bfloat16)) or _close_bf16(b16, f32), name


def _close_bf16(b16, f32):
    # clamped truncated bounds can differ by one bf16 ulp from a plain cast at the boundary
    return torch.allclose(b16.float(), f32, rtol=2**-7, atol=0)


def test_jax_layout_through_init_():
    k = it.init_(torch.empty(3, 3, 16, 32), "orthogonal", layout="jax", generator=gen())
    m = k.permute(3, 2, 0, 1).reshape(32, -1).double()  # torch layout (out, in*kh*kw)
    assert torch.allclose(m @ m.T, torch.eye(32, dtype=torch.float64), atol=1e-5)
    d = it.init_(torch.empty(3, 3, 16, 64), "he_normal", layout="jax", generator=gen())
    assert abs(d.std().item() * math.sqrt(9 * 16 / 2) - 1) < 0.05


# ============================================================================ bad input


def t2(dtype=torch.float32):
    return torch.full((4, 6), 5.0, dtype=dtype)


ERRORS = [
    (lambda: it.normal_(t2(torch.int64)), InitlabError,
     r"`tensor` must have a real floating dtype.*got 'torch.int64'.*constant initializer"),
    (lambda: it.kaiming_uniform_(t2(torch.bool)), InitlabError, r"`tensor` must have a real floating dtype"),
    (lambda: it.trunc_normal_(t2(), a=1.0, b=0.0), InitlabError, r"`a` must be <= `b` \(=0.0\)"),
    (lambda: it.uniform_(t2(), 2.0, 1.0), InitlabError, r"`a` must be <= `b` \(=1.0\); got 2.0"),
    (lambda: it.normal_(t2(), std=-1.0), InitlabError, r"`std` must be >= 0.0"),
    (lambda: it.normal_(t2(), std=float("nan")), InitlabError, r"`std` must be a finite number"),
    (lambda: it.xavier_uniform_(torch.empty(5)), InitlabError,
     r"`shape` has 1 dimension\(s\).*fan_in/fan_out.*`fans=\(fan_in, fan_out\)`"),
    (lambda: it.xavier_normal_(t2(), gain=-1.0), InitlabError, r"`gain` must be >= 0.0"),
    (lambda: it.kaiming_normal_(t2(), mode="fan_avg"), InitlabError,
     r"`mode` must be one of 'fan_in', 'fan_out'"),
    (lambda: it.kaiming_uniform_(t2(), nonlinearity="gelu"), InitlabError,
     r"`nonlinearity` must be one of .*initlab.gain"),
    (lambda: it.variance_scaling_(t2(), 1.0, "fan_in", "cauchy"), InitlabError,
     r"`distribution` must be one of 'normal', 'truncated_normal', 'uniform'"),
    (lambda: it.variance_scaling_(t2(), -2.0), InitlabError, r"`scale` must be > 0.0"),
    (lambda: it.sparse_(t2(), 1.5), InitlabError, r"`sparsity` must be <= 1.0"),
    (lambda: it.sparse_(t2(), -0.1), InitlabError, r"`sparsity` must be >= 0.0"),
    (lambda: it.sparse_(torch.empty(4, 5, 3), 0.5), InitlabError, r"`shape` must be 2-D for `sparse`"),
    (lambda: it.orthogonal_(torch.empty(5)), InitlabError, r"`shape` must have at least 2 dimensions"),
    (lambda: it.orthogonal_(t2(), method="lu"), InitlabError, r"`method` must be one of 'qr', 'svd', 'householder'"),
    (lambda: it.eye_(torch.empty(2, 3, 4)), InitlabError, r"`shape` must be 2-D for `identity`"),
    (lambda: it.dirac_(t2()), InitlabError, r"`shape` must be 3-, 4- or 5-D"),
    (lambda: it.dirac_(torch.empty(6, 3, 3), 4), InitlabError,
     r"`groups` must divide the number of output channels \(=6\)"),
    (lambda: it.delta_orthogonal_(torch.empty(4, 8, 3)), InitlabError,
     r"`shape` must have in_channels <= out_channels"),
    (lambda: it.martens_sparse_(t2(), 7), InitlabError, r"`k` must be <= fan_in \(=6\)"),
    (lambda: it.normal_(torch.empty(3, device="meta"), generator=gen()), InitlabError,
     r"`generator` must be on the tensor's device type \('meta'\).*torch.Generator\(device="),
    (lambda: it.normal_(t2(), generator=42), InitlabTypeError, r"`generator` must be a torch.Generator or None"),
    (lambda: it.normal_([1.0, 2.0]), InitlabTypeError, r"`tensor` must be a torch.Tensor"),
    (lambda: it.constant_(t2(), "x"), InitlabTypeError, r"`val` must be a real number"),
    (lambda: it.init_(t2(), "he_nromal"), InitlabError,
     r"`name` must be a registered initializer.*Did you mean 'he_normal'"),
    (lambda: it.init_(t2(), initlab.get("normal"), std=2.0), InitlabError,
     r"`params` cannot be given with an Initializer object"),
    (lambda: it.init_(t2(), "normal", sd=2.0), InitlabTypeError,
     r"`normal` got unknown parameter\(s\) 'sd'; valid parameters: mean, std"),
    (lambda: it.init_(t2(), "normal", layout="tf"), InitlabError, r"`layout` must be one of"),
    (lambda: it.init_(torch.empty(5), "torch_default", fans=(0, 3)), InitlabError,
     r"`fans\[0\] \(fan_in\)` must be >= 1"),
]


@pytest.mark.parametrize("call,exc,match", ERRORS, ids=[str(i) for i in range(len(ERRORS))])
def test_error_messages(call, exc, match):
    with pytest.raises(exc, match=match) as info:
        call()
    msg = str(info.value)
    assert "`" in msg and "got" in msg  # parameter in backticks, value received


def test_errors_leave_the_tensor_untouched():
    for call in (lambda t: it.trunc_normal_(t, a=3.0, b=-3.0),
                 lambda t: it.sparse_(t, 1.5),
                 lambda t: it.normal_(t, generator=torch.Generator(device="meta")),
                 lambda t: it.martens_sparse_(t, 99)):
        t = t2()
        with pytest.raises((InitlabError, InitlabTypeError, RuntimeError)):
            call(t)
        assert (t == 5).all()


def test_zero_element_tensors_warn_at_the_callers_line_and_return():
    for fn in (it.normal_, it.kaiming_normal_, it.orthogonal_, it.zeros_, it.trunc_normal_):
        t = torch.empty(0, 4)
        with pytest.warns(UserWarning, match="Initializing zero-element tensors is a no-op") as rec:
            assert fn(t) is t
        assert rec[0].filename == __file__, fn.__name__


def test_integer_tensors_accepted_by_constant_initializers():
    x = torch.zeros(3, 3, dtype=torch.int32)
    assert torch.equal(it.eye_(x), torch.eye(3, dtype=torch.int32))
    assert (it.constant_(x, 4) == 4).all()
    assert (it.ones_(x) == 1).all()
    k = torch.zeros(4, 4, 3, dtype=torch.int64)
    assert it.dirac_(k).sum() == 4


def test_meta_tensors_are_left_alone():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for fn in (it.normal_, it.trunc_normal_, it.orthogonal_, it.zeros_):
            t = torch.empty(8, 4, device="meta")
            assert fn(t) is t
