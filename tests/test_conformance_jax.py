"""Conformance with jax.nn.initializers as JAX's own tests define them (tests/nn_test.py,
NNInitializersTest, jax-v0.10.2), plus bit-for-bit equality with JAX for the same key.

Names are mapped as docs/frameworks.md says (JAX's truncated ``he_normal`` is initlab's
``variance_scaling(2.0, "fan_in", "truncated_normal")``, ...). Each test names the peer case it
mirrors. Everything runs with ``jax_numpy_rank_promotion="raise"``, as JAX's test harness does.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest

import initlab

pytestmark = pytest.mark.frameworks

jax = pytest.importorskip("jax", reason="JAX is not installed (pip install 'initlab[jax]')")
import jax.numpy as jnp  # noqa: E402

import initlab.jax as ij  # noqa: E402

J = jax.nn.initializers


@pytest.fixture(autouse=True)
def _rank_promotion_raise():
    with jax.numpy_rank_promotion("raise"):
        yield


# JAX name -> (JAX factory, initlab factory, min_dims, max_dims, complex allowed)
MAPPED = {
    "uniform": (lambda **k: J.uniform(0.3, **k), lambda **k: ij.uniform(scale=0.3, **k), 1, 4,
                False),
    "normal": (lambda **k: J.normal(0.3, **k), lambda **k: ij.normal(stddev=0.3, **k), 1, 4, True),
    "truncated_normal": (lambda **k: J.truncated_normal(0.3, **k),
                         lambda **k: ij.truncated_normal(stddev=0.3, **k), 1, 4, False),
    "truncated_normal_bounds": (lambda **k: J.truncated_normal(0.3, lower=-1.5, upper=2.5, **k),
                                lambda **k: ij.truncated_normal(std=0.3, a=-0.45, b=0.75, **k),
                                1, 4, False),
    "he_normal": (J.he_normal, functools.partial(ij.variance_scaling, 2.0, "fan_in",
                                                 "truncated_normal"), 2, 4, True),
    "he_uniform": (J.he_uniform, functools.partial(ij.variance_scaling, 2.0, "fan_in",
                                                   "uniform"), 2, 4, True),
    "glorot_normal": (J.glorot_normal, functools.partial(ij.variance_scaling, 1.0, "fan_avg",
                                                         "truncated_normal"), 2, 4, True),
    "glorot_uniform": (J.glorot_uniform, ij.glorot_uniform, 2, 4, True),
    "lecun_normal": (J.lecun_normal, functools.partial(ij.variance_scaling, 1.0, "fan_in",
                                                       "truncated_normal"), 2, 4, True),
    "lecun_uniform": (J.lecun_uniform, ij.lecun_uniform, 2, 4, True),
    "variance_scaling_fan_geo_avg": (
        functools.partial(J.variance_scaling, 0.7, "fan_geo_avg", "normal"),
        functools.partial(ij.variance_scaling, 0.7, "fan_geo_avg", "normal"), 2, 4, True),
    "variance_scaling_fan_out_tn": (
        functools.partial(J.variance_scaling, 1.3, "fan_out", "truncated_normal"),
        functools.partial(ij.variance_scaling, 1.3, "fan_out", "truncated_normal"), 2, 4, True),
    "variance_scaling_in0_out_empty": (
        functools.partial(J.variance_scaling, 1, "fan_in", "normal", in_axis=[0], out_axis=[]),
        functools.partial(ij.variance_scaling, 1, "fan_in", "normal", in_axis=[0], out_axis=[]),
        1, 4, True),
    "variance_scaling_in_empty_out0": (
        functools.partial(J.variance_scaling, 1, "fan_in", "normal", in_axis=[], out_axis=[0]),
        functools.partial(ij.variance_scaling, 1, "fan_in", "normal", in_axis=[], out_axis=[0]),
        1, 4, True),
    "variance_scaling_no_axes": (
        functools.partial(J.variance_scaling, 1, "fan_avg", "uniform", in_axis=[], out_axis=[]),
        functools.partial(ij.variance_scaling, 1, "fan_avg", "uniform", in_axis=[],
                          out_axis=[]), 0, 4, True),
    "orthogonal": (lambda **k: J.orthogonal(1.7, **k), lambda **k: ij.orthogonal(scale=1.7, **k),
                   2, 4, True),
    "orthogonal_column_axis_0": (lambda **k: J.orthogonal(column_axis=0, **k),
                                 lambda **k: ij.orthogonal(column_axis=0, **k), 2, 4, True),
    "delta_orthogonal": (lambda **k: J.delta_orthogonal(1.3, **k),
                         lambda **k: ij.delta_orthogonal(scale=1.3, **k), 3, 5, True),
    "constant": (lambda **k: J.constant(0.37, **k), lambda **k: ij.constant(0.37, **k), 0, 4,
                 True),
}
# a few of testInitializer's shapes per rank (each new shape and dtype compiles eager ops: the
# frameworks group must stay within its CI budget)
SHAPES = [(), (3, 2), (2, 2, 3, 5)]
DTYPES = [jnp.bfloat16, jnp.float16, jnp.float32, jnp.complex64]


def cases():
    for name, (_, _, lo, hi, cplx) in MAPPED.items():
        for shape, dt in itertools.product(SHAPES, DTYPES):
            if lo <= len(shape) <= hi and (cplx or dt != jnp.complex64):
                if name == "delta_orthogonal" and shape[-1] < shape[-2]:
                    continue
                yield name, shape, dt


def bits(x) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(x)).view(np.uint8)


@pytest.mark.parametrize(("name", "shape", "dtype"), list(cases()),
                         ids=lambda v: getattr(v, "__name__", str(v)))
def test_same_values_as_jax_for_the_same_key(name, shape, dtype):
    """Mirrors testInitializer / testInitializerProvider (shape and dtype kept, factory dtype=)
    and goes further: the values equal JAX's bit for bit, in every dtype JAX draws. (JAX's QR
    has no bf16/f16 CPU kernel: its orthogonal raises there, initlab factorizes in float32.)"""
    theirs, ours, *_ = MAPPED[name]
    key = jax.random.PRNGKey(len(shape) + 7)
    got = ours(dtype=dtype)(key, shape)
    assert got.shape == shape and got.dtype == jnp.dtype(dtype)
    assert ours()(key, shape, dtype).dtype == jnp.dtype(dtype)  # call dtype, as testInitializer
    try:
        ref = theirs(dtype=dtype)(key, shape)
    except NotImplementedError:
        assert "orthogonal" in name and dtype in (jnp.bfloat16, jnp.float16)
        return
    np.testing.assert_array_equal(bits(got), bits(ref))


@pytest.mark.parametrize("init", [J.zeros, J.ones])
def test_zeros_ones(init):
    for dt in DTYPES:
        ours = getattr(ij, init.__name__)(dtype=dt)(jax.random.key(0), (3, 4))
        np.testing.assert_array_equal(bits(ours), bits(init(jax.random.key(0), (3, 4), dt)))


def test_float64_and_complex128_with_x64():
    """The same in 64-bit (JAX's x64 mode): JAX's arithmetic on the exact variance."""
    with jax.enable_x64(True):
        key = jax.random.key(3)
        for name in ("he_normal", "he_uniform", "glorot_normal", "lecun_uniform",
                     "variance_scaling_fan_geo_avg", "orthogonal", "delta_orthogonal",
                     "truncated_normal", "uniform"):
            theirs, ours, lo, _, cplx = MAPPED[name]
            shape = (3, 3, 8, 16) if lo <= 4 else (2, 2, 2, 4, 6)
            for dt in (jnp.float64, jnp.complex128) if cplx else (jnp.float64,):
                np.testing.assert_array_equal(bits(ours(dtype=dt)(key, shape)),
                                              bits(theirs(dtype=dt)(key, shape)))


def test_whole_adapter_under_rank_promotion_raise():
    """The bug the peer suite found: orthogonal/delta_orthogonal multiplied with implicit rank
    promotion. Every catalog entry runs with rank promotion set to "raise" (the fixture)."""
    for name in sorted(initlab.names()):
        shape = (3, 3, 4, 8) if name in ("dirac", "delta_orthogonal") else (24, 32)
        assert getattr(ij, name)()(jax.random.key(0), shape).shape == shape
    for method in ("qr", "svd", "householder"):
        ij.orthogonal(method=method, batch_axis=0)(jax.random.key(0), (2, 8, 8))
        ij.orthogonal(method=method, layout="torch")(jax.random.key(0), (6, 4, 3))


def test_orthogonal_zero_size():
    """Mirrors testInitializerOrthogonalZeroSize."""
    for rows, cols in itertools.product(range(4), range(4)):
        _orthogonal_zero_size(rows, cols)


def _orthogonal_zero_size(rows, cols):
    val = ij.orthogonal()(jax.random.PRNGKey(0), (rows, cols), jnp.float32)
    assert val.shape == (rows, cols) and val.dtype == jnp.float32
    if rows <= cols:
        np.testing.assert_allclose(val @ val.T, np.eye(rows), atol=1e-6)
    if cols <= rows:
        np.testing.assert_allclose(val.T @ val, np.eye(cols), atol=1e-6)


def test_variance_scaling_multi_and_batch_axis():
    """Mirrors testVarianceScalingMultiAxis and testVarianceScalingBatchAxis (and equal values)."""
    key = jax.random.PRNGKey(0)
    for axes in ({"in_axis": (0, 1), "out_axis": (-2, -1)},
                 {"in_axis": 0, "out_axis": (2, 3), "batch_axis": 1}):
        ours = ij.variance_scaling(1.0, "fan_avg", "truncated_normal", **axes)(key, (2, 3, 4, 5))
        theirs = J.variance_scaling(1.0, "fan_avg", "truncated_normal", **axes)(key, (2, 3, 4, 5))
        np.testing.assert_array_equal(bits(ours), bits(theirs))


def test_variance_scaling_error():
    """Mirrors testVarianceScalingError: a ValueError with JAX's sentence."""
    init = ij.variance_scaling(1.0, "fan_avg", "truncated_normal")
    with pytest.raises(ValueError, match="Can't compute input and output sizes of a "
                       "1-dimensional weights tensor with default in_axis. Must be at least 2D "
                       "or specify in_axis explicitly.") as info:
        init(jax.random.PRNGKey(0), (5,))
    assert "Fix:" in str(info.value)


@pytest.mark.parametrize(("call", "phrase"), [
    (lambda: ij.orthogonal()(jax.random.key(0), (5,)),
     "orthogonal initializer requires at least a 2D shape"),
    (lambda: ij.delta_orthogonal()(jax.random.key(0), (5, 5)),
     "Delta orthogonal initializer requires a 3D, 4D or 5D shape."),
    (lambda: ij.delta_orthogonal()(jax.random.key(0), (3, 3, 5, 4)),
     "`fan_in` must be less or equal than `fan_out`."),
])
def test_jax_error_phrases(call, phrase):
    """Where JAX raises ValueError, initlab raises ValueError with JAX's phrase inside its own
    message (parameter, rule, value, fix)."""
    for fn in (call,):
        with pytest.raises(ValueError) as info:
            fn()
        assert phrase in str(info.value) and "Fix:" in str(info.value)


def test_accidental_upcasting():
    """Mirrors testAccidentalUpcasting: a float32 0-d array parameter and a bf16 factory dtype
    give bf16."""
    p = jnp.array(1.0, dtype=jnp.float32)
    for init in (ij.uniform(scale=p, dtype=jnp.bfloat16), ij.normal(stddev=p, dtype=jnp.bfloat16),
                 ij.truncated_normal(stddev=p, dtype=jnp.bfloat16)):
        assert init(jax.random.PRNGKey(1), (4, 4)).dtype == jnp.bfloat16


def test_jax_argument_names_translate():
    assert ij.normal(stddev=0.2).initializer == initlab.normal(std=0.2)
    assert ij.truncated_normal(stddev=0.5, lower=-1, upper=3).initializer == \
        initlab.truncated_normal(std=0.5, a=-0.5, b=1.5)
    assert ij.orthogonal(scale=2.0).initializer == initlab.orthogonal(gain=2.0, method="qr")
    assert ij.uniform(scale=0.1).initializer == initlab.uniform(0.0, 0.1)
    with pytest.raises(ValueError, match="`stddev` cannot be given together"):
        ij.normal(std=0.1, stddev=0.2)
    assert initlab.variance_scaling(1.0, "fan_geo_avg").resolve((4, 9), layout="jax").std == \
        pytest.approx((1 / 6) ** 0.5 / 0.87962566103423978)
