"""initlab.keras: the catalog as Keras 3 initializers (torch backend here; the jax backend in a
subprocess, since a process has one Keras backend).

Where Keras has the same initializer, initlab.keras makes Keras's own ``keras.random`` calls
(tests/test_conformance_keras.py checks bit-for-bit equality with keras.initializers); the kinds
Keras lacks are drawn by the NumPy reference sampler, so there the oracle is
``initlab.get(name).sample(shape, seed=s, layout="jax")``. Seeds follow Keras: an int seed gives
the same values on every call. The statistical checks are in tests/test_cross_framework.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import initlab
from initlab.core.registry import canonical_name

pytestmark = pytest.mark.frameworks

os.environ.setdefault("KERAS_BACKEND", "torch")  # Keras's torch backend needs no TensorFlow
# Imported by the fixture below, so a default run (frameworks deselected) doesn't pay for Keras.
keras = ik = None


@pytest.fixture(autouse=True, scope="module")
def _keras():
    global keras, ik
    keras = pytest.importorskip("keras",
                                reason="Keras 3 is not installed (pip install 'initlab[keras]')")
    import initlab.keras as ik_

    ik = ik_


CANONICAL = sorted({canonical_name(n) for n in initlab.names()})
# Keras's torch backend converts tensors with np.array(tensor, copy=False), which NumPy 2 flags
# (a Keras/torch matter, not initlab's): allow that one warning where Keras saves a model.
KERAS_NUMPY_COPY_WARNING = ("ignore:__array__ implementation doesn't accept a copy keyword"
                            ":DeprecationWarning")


def to_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):
        return x.detach().cpu().float().numpy()
    return np.asarray(x, dtype=np.float32)


def shape_for(name: str) -> tuple[int, ...]:
    return (3, 3, 8, 16) if name in ("dirac", "delta_orthogonal") else (48, 64)


def numpy_fallback(init, shape) -> bool:
    """Whether the entry is one Keras lacks (drawn by the NumPy reference sampler)."""
    from initlab.core import distributions as d

    dist = init.initializer.resolve(shape, layout="jax")
    if isinstance(dist, (d.Constant, d.Normal, d.Uniform, d.Eye)):
        return False
    if isinstance(dist, d.Orthogonal):
        return dist.method != "qr"
    if isinstance(dist, d.TruncatedNormal):
        return init.initializer.scaling is None and not (
            dist.a == pytest.approx(dist.mean - 2 * dist.std)
            and dist.b == pytest.approx(dist.mean + 2 * dist.std))
    return True


@pytest.mark.parametrize("name", CANONICAL)
def test_every_entry_shape_dtype_seed(name):
    init = getattr(ik, name)(seed=5)
    assert isinstance(init, keras.initializers.Initializer)
    shape = shape_for(name)
    x = init(shape)
    assert tuple(x.shape) == shape and keras.backend.standardize_dtype(x.dtype) == "float32"
    # Keras's convention: an int seed gives the same values on every call
    np.testing.assert_array_equal(to_numpy(init(shape)), to_numpy(x))
    if numpy_fallback(init, shape):
        np.testing.assert_array_equal(to_numpy(x), initlab.get(name).sample(shape, seed=5,
                                                                            layout="jax"))
    y = init(shape, dtype="bfloat16")
    assert keras.backend.standardize_dtype(y.dtype) == "bfloat16"
    assert np.isfinite(to_numpy(y)).all()
    again = ik.KerasInitializer.from_config(init.get_config())
    assert type(again) is type(init) and again.initializer == init.initializer
    assert again.seed == 5
    np.testing.assert_array_equal(to_numpy(again(shape)), to_numpy(x))
    assert isinstance(init, keras.initializers.VarianceScaling) == (
        init.initializer.scaling is not None)


def test_int_seed_same_values_every_call():
    """Keras's documented behaviour (and its test_random_normal): a fixed int seed yields the
    same values on each call, like keras.initializers.HeNormal(seed=3) does."""
    init = ik.he_normal(seed=3)
    a, b = to_numpy(init((64, 32))), to_numpy(init((64, 32)))
    np.testing.assert_array_equal(a, b)
    theirs = keras.initializers.VarianceScaling(2.0, "fan_in", "untruncated_normal", seed=3)
    np.testing.assert_array_equal(to_numpy(theirs((64, 32))), to_numpy(theirs((64, 32))))
    assert not np.array_equal(to_numpy(ik.he_normal(seed=4)((64, 32))), a)


def test_two_layers_sharing_an_int_seeded_initializer_are_equal():
    """The pitfall docs/frameworks.md explains: one int-seeded object given to two layers gives
    both the same weights (in Keras and, now, in initlab.keras); separate objects or a
    SeedGenerator avoid it."""
    def build(a, b):
        return keras.Sequential([keras.Input((16,)), keras.layers.Dense(16, kernel_initializer=a),
                                 keras.layers.Dense(16, kernel_initializer=b)])

    shared = ik.glorot_uniform(seed=1)
    np.testing.assert_array_equal(*(to_numpy(layer.kernel.value)
                                    for layer in build(shared, shared).layers))
    theirs = keras.initializers.GlorotUniform(seed=1)
    np.testing.assert_array_equal(*(to_numpy(layer.kernel.value)
                                    for layer in build(theirs, theirs).layers))
    gen = ik.glorot_uniform(seed=keras.random.SeedGenerator(1))
    w1, w2 = (to_numpy(layer.kernel.value) for layer in build(gen, gen).layers)
    assert not np.allclose(w1, w2)
    w1, w2 = (to_numpy(layer.kernel.value)
              for layer in build(ik.glorot_uniform(seed=1), ik.glorot_uniform(seed=2)).layers)
    assert not np.allclose(w1, w2)


def test_seed_none_picks_a_seed_once():
    """seed=None: a random int seed picked when the object is built (Python's `random`, which
    keras.utils.set_random_seed seeds), so calls repeat and a clone from config differs."""
    keras.utils.set_random_seed(7)
    a = ik.he_normal()
    keras.utils.set_random_seed(7)
    b = ik.he_normal()
    assert a.seed == b.seed and isinstance(a.seed, int)
    np.testing.assert_array_equal(to_numpy(a((32, 32))), to_numpy(b((32, 32))))
    np.testing.assert_array_equal(to_numpy(a((32, 32))), to_numpy(a((32, 32))))
    clone = ik.KerasInitializer.from_config(a.get_config())
    assert a.get_config()["seed"] is None
    assert not np.allclose(to_numpy(clone((32, 32))), to_numpy(a((32, 32))))


def test_seed_generator():
    init = ik.orthogonal(seed=keras.random.SeedGenerator(4))
    a, b = to_numpy(init((8, 8))), to_numpy(init((8, 8)))
    assert not np.allclose(a, b)
    np.testing.assert_allclose(a @ a.T, np.eye(8), atol=1e-5)
    again = ik.KerasInitializer.from_config(ik.orthogonal(seed=keras.random.SeedGenerator(4))
                                            .get_config())
    np.testing.assert_array_equal(to_numpy(again((8, 8))), a)


def test_serialization_registered():
    init = ik.get("variance_scaling", scale=2.0, mode="fan_avg", distribution="uniform", seed=9)
    cfg = keras.initializers.serialize(init)
    assert cfg["registered_name"] == "initlab>KerasVarianceScaling"
    assert keras.initializers.serialize(ik.orthogonal(seed=1))["registered_name"] == \
        "initlab>KerasInitializer"
    back = keras.initializers.deserialize(json.loads(json.dumps(cfg)))
    assert isinstance(back, ik.KerasInitializer) and back.initializer == init.initializer
    assert back.get_config() == init.get_config()


@pytest.mark.filterwarnings(KERAS_NUMPY_COPY_WARNING)
def test_saved_model_loads_again(tmp_path):
    model = keras.Sequential([
        keras.Input((8, 8, 3)),
        keras.layers.Conv2D(4, 3, kernel_initializer=ik.he_normal(seed=0),
                            bias_initializer=ik.zeros()),
        keras.layers.Flatten(),
        keras.layers.Dense(5, kernel_initializer=ik.orthogonal(gain=2.0, seed=1),
                           bias_initializer=ik.get("torch_default", role="bias",
                                                   fans=(144, 5), seed=2)),
    ])
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(to_numpy(a.value), to_numpy(b.value))
    dense = loaded.layers[-1]
    assert isinstance(dense.kernel_initializer, ik.KerasInitializer)
    assert dense.kernel_initializer.initializer == initlab.orthogonal(gain=2.0, method="qr")
    assert dense.bias_initializer.get_config()["fans"] == [144, 5]
    k = to_numpy(dense.kernel.value)
    np.testing.assert_allclose(k.T @ k, 4.0 * np.eye(5), atol=1e-4)


def test_keras_jax_backend_same_values_as_keras(tmp_path):
    """Under Keras's jax backend: the same values as Keras's own initializer there (each Keras
    backend has its own random stream, so not the torch backend's values), and save/load works."""
    pytest.importorskip("jax", reason="JAX is not installed: the Keras jax backend needs it")
    code = (
        "import json, sys, numpy as np, keras, initlab.keras as ik\n"
        "assert keras.backend.backend() == 'jax'\n"
        "init = ik.variance_scaling(2.0, 'fan_in', 'truncated_normal', seed=3)\n"
        "m = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4, kernel_initializer=init),"
        " keras.layers.Dense(4, kernel_initializer=ik.orthogonal(seed=4))])\n"
        "p = sys.argv[1]; m.save(p); l = keras.saving.load_model(p)\n"
        "same = all(np.array_equal(np.asarray(a.value), np.asarray(b.value))"
        " for a, b in zip(m.weights, l.weights))\n"
        "ref = [keras.initializers.HeNormal(seed=3)((6, 4)),"
        " keras.initializers.Orthogonal(seed=4)((4, 4))]\n"
        "eq = [np.array_equal(np.asarray(m.weights[i].value), np.asarray(r))"
        " for i, r in ((0, ref[0]), (2, ref[1]))]\n"
        "print(json.dumps({'loaded_equal': same, 'equal_to_keras': eq}))\n")
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "j.keras")], env=env,
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["loaded_equal"] and out["equal_to_keras"] == [True, True]


def test_fans_layout_and_bias():
    # Keras kernels are (*kernel, in, out): JAX's layout, the default
    dist = ik.he_normal(seed=0).initializer.resolve((3, 3, 16, 32), layout="jax")
    assert dist.std == pytest.approx((2 / 144) ** 0.5)
    # torch layout (out, in, *k): fan_in = 16 * 9; drawn with Keras's normal at that std
    t = ik.he_normal(seed=0, layout="torch")((32, 16, 3, 3))
    std = initlab.he_normal().resolve((32, 16, 3, 3)).std
    np.testing.assert_array_equal(to_numpy(t), to_numpy(keras.random.normal(
        (32, 16, 3, 3), stddev=std, seed=0)))
    b = to_numpy(ik.torch_default(seed=0, fans=(400, 300), role="bias")((300,)))
    assert np.abs(b).max() <= 400**-0.5


ERRORS = [
    (lambda: ik.he_normal(seed=0)((5,)), ValueError,
     "`shape` has 1 dimension(s), and `he_normal` needs fan_in/fan_out"),
    (lambda: ik.he_normal(seed=0)((5, 5), dtype="int32"), ValueError,
     "`dtype` must be a floating dtype (initial weights are real numbers); got 'int32'."),
    (lambda: ik.he_normal(seed=1.5), TypeError,
     "`seed` must be an int, None or a keras.random.SeedGenerator; got 1.5."),
    (lambda: ik.he_normal(seed="0"), TypeError,
     "`seed` must be an int, None or a keras.random.SeedGenerator; got '0'."),
    (lambda: ik.he_normal(seed=-1), ValueError, "`seed` must be >= 0; got -1."),
    (lambda: ik.he_normal(seed=True), TypeError, "`seed` must be an int, None"),
    (lambda: ik.he_normal(layout="tf"), ValueError, "`layout` must be one of 'torch',"),
    (lambda: ik.get("nope"), ValueError, "`name` must be a registered initializer"),
    (lambda: ik.he_normal(bogus=1), TypeError, "`he_normal`: got an unexpected keyword"),
    (lambda: ik.KerasInitializer("he_normal", params=[1]), TypeError,
     "`params` must be a dict or None"),
]


@pytest.mark.parametrize(("call", "exc", "message"), ERRORS,
                         ids=[m[:40] for _, _, m in ERRORS])
def test_errors(call, exc, message):
    with pytest.raises(exc) as info:
        call()
    assert message in str(info.value)
