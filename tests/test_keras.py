"""initlab.keras: the catalog as Keras 3 initializers (torch backend here; the jax backend in a
subprocess, since a process has one Keras backend).

initlab.keras draws with the NumPy reference sampler, so the oracle is exact: the first call with
seed s equals ``initlab.get(name).sample(shape, seed=s, layout="jax")`` bit for bit, under every
backend. The statistical checks against the core are in tests/test_cross_framework.py.
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


@pytest.mark.parametrize("name", CANONICAL)
def test_every_entry_equals_numpy_reference(name):
    init = getattr(ik, name)(seed=5)
    assert isinstance(init, keras.initializers.Initializer)
    shape = shape_for(name)
    x = init(shape)
    assert tuple(x.shape) == shape and keras.backend.standardize_dtype(x.dtype) == "float32"
    np.testing.assert_array_equal(to_numpy(x), initlab.get(name).sample(shape, seed=5,
                                                                        layout="jax"))
    y = init(shape, dtype="bfloat16")  # dtype kept; the float32 sample rounded once
    assert keras.backend.standardize_dtype(y.dtype) == "bfloat16"
    # config round trip gives an equal initializer (the call counter restarts)
    again = ik.KerasInitializer.from_config(init.get_config())
    assert again.initializer == init.initializer and again.seed == 5
    np.testing.assert_array_equal(to_numpy(again(shape)), to_numpy(x))


def test_calls_get_independent_streams():
    """Keras's pitfall: an int-seeded initializer returning the same values on every call.
    initlab: call k uses SeedSequence(seed) (k = 0) or its k-th spawned child (k >= 1)."""
    init = ik.he_normal(seed=3)
    a, b, c = (to_numpy(init((64, 32))) for _ in range(3))
    assert not np.allclose(a, b) and not np.allclose(b, c)
    fresh = ik.he_normal(seed=3)  # a model rebuilt the same way gets the same weights
    np.testing.assert_array_equal(to_numpy(fresh((64, 32))), a)
    np.testing.assert_array_equal(to_numpy(fresh((64, 32))), b)
    child = np.random.Generator(np.random.PCG64(np.random.SeedSequence(3).spawn(1)[0]))
    np.testing.assert_array_equal(b, initlab.he_normal().sample((64, 32), seed=child,
                                                                layout="jax"))
    assert init.calls == 3


def test_two_layers_sharing_an_initializer_differ():
    shared = ik.glorot_uniform(seed=1)

    def build():
        return keras.Sequential([keras.Input((16,)),
                                 keras.layers.Dense(16, kernel_initializer=shared),
                                 keras.layers.Dense(16, kernel_initializer=shared)])

    m = build()
    w1, w2 = (to_numpy(layer.kernel.value) for layer in m.layers)
    assert not np.allclose(w1, w2)
    # Keras's own int-seeded initializer gives both layers the same weights (the pitfall)
    theirs = keras.initializers.GlorotUniform(seed=1)
    k = keras.Sequential([keras.Input((16,)), keras.layers.Dense(16, kernel_initializer=theirs),
                          keras.layers.Dense(16, kernel_initializer=theirs)])
    np.testing.assert_array_equal(*(to_numpy(layer.kernel.value) for layer in k.layers))


def test_seed_none_follows_keras_global_seed():
    keras.utils.set_random_seed(7)
    a = to_numpy(ik.he_normal()((32, 32)))
    keras.utils.set_random_seed(7)
    init = ik.he_normal()
    b, c = to_numpy(init((32, 32))), to_numpy(init((32, 32)))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(b, c)


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
    assert cfg["registered_name"] == "initlab>KerasInitializer"
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
    assert dense.kernel_initializer.initializer == initlab.orthogonal(gain=2.0)
    assert dense.bias_initializer.get_config()["fans"] == [144, 5]
    k = to_numpy(dense.kernel.value)
    np.testing.assert_allclose(k.T @ k, 4.0 * np.eye(5), atol=1e-4)


def test_keras_jax_backend_same_values(tmp_path):
    """Under Keras's jax backend: same values as here (the NumPy stream), and save/load works."""
    pytest.importorskip("jax", reason="JAX is not installed: the Keras jax backend needs it")
    code = (
        "import json, sys, numpy as np, keras, initlab.keras as ik\n"
        "assert keras.backend.backend() == 'jax'\n"
        "init = ik.he_normal(seed=3)\n"
        "m = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4, kernel_initializer=init),"
        " keras.layers.Dense(4, kernel_initializer=init)])\n"
        "p = sys.argv[1]; m.save(p); l = keras.saving.load_model(p)\n"
        "ws = [np.asarray(w.value).tolist() for w in m.weights]\n"
        "same = all(np.array_equal(np.asarray(a.value), np.asarray(b.value))"
        " for a, b in zip(m.weights, l.weights))\n"
        "print(json.dumps({'weights': ws, 'loaded_equal': same}))\n")
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "j.keras")], env=env,
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["loaded_equal"]
    init = ik.he_normal(seed=3)
    here = [to_numpy(init((6, 4))), to_numpy(init((4, 4)))]
    np.testing.assert_array_equal(np.asarray(out["weights"][0], np.float32), here[0])
    np.testing.assert_array_equal(np.asarray(out["weights"][2], np.float32), here[1])


def test_fans_layout_and_bias():
    # Keras kernels are (*kernel, in, out): JAX's layout, the default
    dist = ik.he_normal(seed=0).initializer.resolve((3, 3, 16, 32), layout="jax")
    assert dist.std == pytest.approx((2 / 144) ** 0.5)
    t = ik.he_normal(seed=0, layout="torch")((32, 16, 3, 3))
    np.testing.assert_array_equal(to_numpy(t), initlab.he_normal().sample((32, 16, 3, 3),
                                                                          seed=0))
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
