"""initlab.jax: the catalog as JAX/Flax initializers.

JAX's own ``jax.nn.initializers`` are the oracle where they draw the same distribution: initlab
makes the same ``jax.random`` calls in the output dtype with JAX's arithmetic, so for the same key
the values are equal bit for bit (tests/test_conformance_jax.py checks every dtype). The
statistical checks of every entry against the core are in tests/test_cross_framework.py.
"""

from __future__ import annotations

import functools
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import initlab
from initlab.core.registry import canonical_name

pytestmark = pytest.mark.frameworks

# Imported by the fixture below, so a default run (frameworks deselected) doesn't pay for JAX.
jax = jnp = ij = KEY = None


@pytest.fixture(autouse=True, scope="module")
def _jax():
    global jax, jnp, ij, KEY
    jax = pytest.importorskip("jax", reason="JAX is not installed (pip install 'initlab[jax]')")
    import jax.numpy as jnp_

    import initlab.jax as ij_

    jnp, ij, KEY = jnp_, ij_, jax.random.key(0)

Z = 6.0  # standard errors allowed in the statistical checks (see test_cross_framework.py)
CONV_ONLY = ("dirac", "delta_orthogonal")


def jax_shape(name: str) -> tuple[int, ...]:
    return (3, 3, 8, 16) if name in CONV_ONLY else (48, 64)


@functools.cache
def jitted(init, shape, dtype=None):
    """One compiled function per (initializer, shape, dtype): eager JAX compiles op by op."""
    return jax.jit(lambda k: init(k, shape, dtype))


CANONICAL = sorted({canonical_name(n) for n in initlab.names()})


# ------------------------------------------------------------------------------ the table


@pytest.mark.parametrize("name", CANONICAL)
def test_every_entry_jit_shape_dtype(name):
    """Every catalog entry: jit-compatible, shape kept, dtype kept (no silent bf16 -> f32). bf16
    is drawn in bf16 where JAX has the same initializer (as JAX does); the structured kinds JAX
    lacks are drawn in float32 and rounded once, which this checks."""
    init = getattr(ij, name)()
    # the adapter's orthogonal follows JAX's (QR); initlab's own default is Householder
    expected = initlab.get(name, method="qr") if name == "orthogonal" else initlab.get(name)
    assert isinstance(init, ij.JaxInitializer) and init.initializer == expected
    shape = jax_shape(name)
    x32 = jitted(init, shape)(KEY)
    x16 = jitted(init, shape, jnp.bfloat16)(KEY)
    assert x32.shape == x16.shape == shape
    assert x32.dtype == jnp.float32 and x16.dtype == jnp.bfloat16
    assert bool(jnp.all(jnp.isfinite(x32))) and bool(jnp.all(jnp.isfinite(x16)))
    dist = init.initializer.resolve(shape, layout="jax")
    jax_recipe = dist.iid or type(dist).__name__ == "DeltaOrthogonal" or (
        type(dist).__name__ == "Orthogonal" and dist.method == "qr")
    if not jax_recipe:  # computed in float32, then one rounding to bf16
        np.testing.assert_array_equal(np.asarray(x16), np.asarray(x32.astype(jnp.bfloat16)))
    # same key, same values; another key, other values (for random entries)
    if init.initializer.random:
        assert not np.array_equal(np.asarray(jitted(init, shape)(jax.random.key(1))),
                                  np.asarray(x32))


@pytest.mark.parametrize("name", ["he_normal", "truncated_normal", "orthogonal"])
def test_eager_equals_jit(name):
    """Without jit the values are the same (XLA may fuse the scaling differently: 1 ulp)."""
    init = getattr(ij, name)()
    np.testing.assert_allclose(np.asarray(init(KEY, (48, 64))),
                               np.asarray(jitted(init, (48, 64))(KEY)), rtol=2.5e-7, atol=1e-7)


def test_aliases_and_float16():
    for name in initlab.names():
        assert getattr(ij, name)() == ij.get(canonical_name(name)) or name == "eye"
    x = ij.he_normal()(KEY, (48, 64), jnp.float16)  # eager, as the reference below (under
    assert x.dtype == jnp.float16                    # jit XLA may fuse f16 ops in float32)
    # drawn in float16 with JAX's variance_scaling arithmetic: Var = 2 / 48 rounded to float16
    ref = jax.random.normal(KEY, (48, 64), jnp.float16) * jnp.sqrt(
        jnp.array(2.0000000000000004 / 48, jnp.float16))  # initlab's gain^2 = sqrt(2)^2
    np.testing.assert_array_equal(np.asarray(x), np.asarray(ref))


def test_same_values_as_jax_nn_initializers_with_axes():
    """in_axis / out_axis / batch_axis mean what they mean in jax.nn.initializers."""
    vs = jax.nn.initializers.variance_scaling
    for shape, axes, dist in [((4, 5, 6), {"in_axis": (0, 1), "out_axis": 2}, "normal"),
                              ((6, 3, 8, 16), {"batch_axis": 0}, "truncated_normal"),
                              ((16, 8), {"in_axis": -1, "out_axis": -2}, "uniform")]:
        theirs = jax.jit(lambda k, s=shape, a=axes, d=dist: vs(2.0, "fan_avg", d, **a)(k, s))(KEY)
        ours = jitted(ij.variance_scaling(2.0, "fan_avg", dist, **axes), shape)(KEY)
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))


def test_compute_fans():
    assert ij.compute_fans((3, 3, 16, 32)) == (144, 288)
    assert ij.compute_fans((784, 256)) == (784, 256)
    assert ij.compute_fans((5, 3, 16, 32), batch_axis=0) == (48, 96)
    assert ij.compute_fans((4, 5, 6), in_axis=(0, 1), out_axis=2) == (20, 6)
    assert ij.compute_fans((16, 8), in_axis=-1, out_axis=-2) == (8, 16)


def test_layout_switch_torch():
    """layout="torch": shape (out, in, *k) with the core's torch fans; the same values as JAX's
    initializer told in_axis=1, out_axis=0 (dense) -- and orthogonal rows for (out < in)."""
    theirs = jax.nn.initializers.variance_scaling(2.0, "fan_in", "normal", in_axis=-1,
                                                  out_axis=-2)(KEY, (64, 48))
    ours = ij.he_normal(layout="torch")(KEY, (64, 48))  # eager: a handful of ops
    np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=1e-6)
    q = np.asarray(jitted(ij.orthogonal(layout="torch"), (32, 8, 3, 3))(KEY)).reshape(32, -1)
    np.testing.assert_allclose(q @ q.T, np.eye(32), atol=1e-5)
    x = np.asarray(ij.dirac(layout="torch")(KEY, (8, 8, 3, 3)))
    np.testing.assert_array_equal(x, initlab.dirac().sample((8, 8, 3, 3), seed=0))


def test_batch_axis_structured():
    """batch_axis: one independent orthogonal kernel per batch index."""
    x = np.asarray(jitted(ij.orthogonal(batch_axis=0), (3, 16, 16))(KEY))
    for b in range(3):
        np.testing.assert_allclose(x[b].T @ x[b], np.eye(16), atol=1e-5)
    assert not np.allclose(x[0], x[1])
    # batch axis in the middle, conv kernel (k, in, out) per batch index
    y = np.asarray(jitted(ij.delta_orthogonal(batch_axis=1), (3, 2, 4, 4))(KEY))
    for b in range(2):
        centre = y[1, b]  # (in, out) at the centre tap
        np.testing.assert_allclose(centre.T @ centre, np.eye(4), atol=1e-5)
        assert not y[0, b].any() and not y[2, b].any()


def test_orthogonal_bf16_computed_in_float32():
    for init in (ij.orthogonal(method="svd"), ij.orthogonal(method="householder")):
        shape = (16, 16)
        x32 = jitted(init, shape)(KEY)
        x16 = jitted(init, shape, jnp.bfloat16)(KEY)
        np.testing.assert_array_equal(np.asarray(x16), np.asarray(x32.astype(jnp.bfloat16)))


def test_raw_and_typed_keys_agree():
    raw = jax.random.PRNGKey(3)
    typed = jax.random.wrap_key_data(raw)
    f = jitted(ij.orthogonal(), (8, 8))
    np.testing.assert_array_equal(np.asarray(f(raw)), np.asarray(f(typed)))


def test_bias_and_zero_size():
    b = ij.get("torch_default", role="bias", fans=(400, 300))(KEY, (300,))
    assert b.shape == (300,) and float(jnp.abs(b).max()) <= 1 / math.sqrt(400)
    assert ij.zeros()(KEY, (7,)).shape == (7,)
    assert ij.normal(std=0.5)(KEY, ()).shape == ()
    empty = ij.he_normal()(KEY, (0, 5))
    assert empty.shape == (0, 5) and empty.dtype == jnp.float32


def test_named_functions_and_get():
    assert set(initlab.names()) <= set(dir(ij))
    assert ij.variance_scaling(2.0, "fan_in", "normal").initializer == \
        initlab.variance_scaling(2.0, "fan_in", "normal")
    assert ij.get("orthogonal", gain=2.0) == ij.orthogonal(gain=2.0)
    assert ij.get(initlab.he_normal(a=0.1)).initializer == initlab.he_normal(a=0.1)
    assert hash(ij.he_normal()) == hash(ij.he_normal())  # usable as a linen module field
    assert repr(ij.glorot_uniform()) == "initlab.jax.glorot_uniform(gain=1.0)"


# ------------------------------------------------------------------------------ Flax


def test_flax_linen():
    nn = pytest.importorskip("flax.linen", reason="Flax is not installed")

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.Conv(32, (3, 3), kernel_init=ij.he_normal(), bias_init=ij.zeros())(x)
            x = nn.relu(x).reshape(x.shape[0], -1)
            return nn.Dense(10, kernel_init=ij.orthogonal(),
                            bias_init=ij.get("torch_default", role="bias",
                                             fans=(x.shape[-1], 10)))(x)

    params = jax.jit(MLP().init)(KEY, jnp.ones((1, 8, 8, 16)))["params"]
    k = np.asarray(params["Conv_0"]["kernel"])
    assert k.shape == (3, 3, 16, 32)
    n = k.size  # 4608 normal draws: sample std within Z * std / sqrt(2 n)
    std = math.sqrt(2 / 144)
    assert abs(k.std() - std) <= Z * std / math.sqrt(2 * n)
    w = np.asarray(params["Dense_0"]["kernel"])
    np.testing.assert_allclose(w.T @ w, np.eye(10), atol=1e-5)
    assert np.abs(np.asarray(params["Dense_0"]["bias"])).max() <= 1 / math.sqrt(w.shape[0])


def test_flax_nnx():
    nnx = pytest.importorskip("flax.nnx", reason="Flax (with nnx) is not installed")
    lin = nnx.Linear(400, 300, kernel_init=ij.he_normal(), bias_init=ij.zeros(),
                     rngs=nnx.Rngs(0))
    k = np.asarray(lin.kernel[...])
    std = math.sqrt(2 / 400)
    assert k.shape == (400, 300) and abs(k.std() - std) <= Z * std / math.sqrt(2 * k.size)
    assert not np.asarray(lin.bias[...]).any()


# ------------------------------------------------------------------------------ sharding


def test_sharded_creation_equals_unsharded():
    """4 forced CPU devices: jit(..., out_shardings=...) gives the values of one device, for
    elementwise and structured entries (partitionable Threefry, default since jax 0.5.0)."""
    script = Path(__file__).with_name("_frameworks_multidevice.py")
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
           "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True,
                          timeout=300, cwd=script.parent)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["devices"] == 4 and out["partitionable"]
    assert len(out["cases"]) >= 9
    for case in out["cases"]:
        assert case["shards"] == 4, case
        if case["spec"] == "out_sharding=":
            assert case["max_rel_diff"] <= 2.5e-7, case  # 2 float32 ulps (see the script)
        else:
            assert case["equal"], case


# ------------------------------------------------------------------------------ errors

ERRORS = [
    (lambda: ij.he_normal()(KEY, (5,)), ValueError,
     "`shape` has 1 dimension(s), too few for the default `in_axis`=-2 (JAX: \"Can't compute "
     "input and output sizes of a 1-dimensional weights tensor with default in_axis."),
    (lambda: ij.he_normal(layout="torch")(KEY, (5,)), ValueError,
     "`shape` has 1 dimension(s), and `he_normal` needs fan_in/fan_out"),
    (lambda: ij.orthogonal()(KEY, (5,)), ValueError,
     "`shape` must have at least 2 dimensions for `orthogonal`"),
    (lambda: ij.he_normal()(KEY, (5, 5), jnp.int32), ValueError,
     "`dtype` must be a floating or complex dtype (initial weights are real or complex "
     "numbers); got 'int32'."),
    (lambda: ij.he_normal()(KEY, (5, 5), "not-a-dtype"), TypeError,
     "`dtype` must be a floating or complex dtype; got 'not-a-dtype'."),
    (lambda: ij.he_normal()(3, (5, 5)), TypeError, "`key` must be a JAX PRNG key; got 3."),
    (lambda: ij.he_normal()(np.zeros(2, np.float32), (5, 5)), TypeError,
     "`key` must be a JAX PRNG key (a typed key or a raw uint32 array of shape (2,)); "
     "got 'array of dtype float32 and shape (2,)'."),
    (lambda: ij.he_normal()(jax.random.split(KEY, 2), (5, 5)), ValueError,
     "`key` must be a single key (shape ()), not a batch of keys"),
    (lambda: ij.he_normal()(KEY, (5, 5), jnp.float64), ValueError,
     "`dtype` can only be 64-bit (float64, complex128) when JAX's x64 mode is on"),
    (lambda: ij.he_normal(in_axis=0, out_axis=0)(KEY, (3, 3)), ValueError,
     "`in_axis/out_axis/batch_axis` must name distinct axes"),
    (lambda: ij.he_normal(in_axis=3)(KEY, (3, 3)), ValueError,
     "`shape` has 2 dimension(s), too few for `in_axis`=3"),
    (lambda: ij.he_normal(in_axis="a"), TypeError,
     "`in_axis` must be an int or a sequence of ints; got 'a'."),
    (lambda: ij.he_normal(layout="torch", batch_axis=0), ValueError,
     "`layout` must be 'jax' when `in_axis`, `out_axis`, `batch_axis` or `column_axis` is "
     "given"),
    (lambda: ij.he_normal(layout="tf"), ValueError, "`layout` must be one of 'torch',"),
    (lambda: ij.he_normal(bogus=1), TypeError, "`he_normal`: got an unexpected keyword"),
    (lambda: ij.wrap("he_normal"), TypeError, "`initializer` must be an initlab Initializer"),
]


@pytest.mark.parametrize(("call", "exc", "message"), ERRORS,
                         ids=[m[:40] for _, _, m in ERRORS])
def test_errors(call, exc, message):
    with pytest.raises(exc) as info:
        call()
    assert message in str(info.value)
    assert "Fix:" in str(info.value) or "Valid parameters" in str(info.value)


def test_float64_with_x64():
    if not hasattr(jax, "enable_x64"):
        pytest.skip("this JAX has no jax.enable_x64 context manager")
    with jax.enable_x64(True):
        q = jax.jit(lambda k: ij.orthogonal()(k, (8, 8), jnp.float64))(KEY)
        assert q.dtype == jnp.float64  # factorized in float64: orthogonal to 1e-12
        np.testing.assert_allclose(np.asarray(q) @ np.asarray(q).T, np.eye(8), atol=1e-12)
