"""Constant initializers on integer and bool dtypes in the JAX and Keras adapters (as
jax.nn.initializers' and keras.initializers' zeros / ones / constant accept them), the values
such a dtype cannot hold, and Keras configs naming Keras's classes."""

from __future__ import annotations

import os

import numpy as np
import pytest

from initlab.core.validation import InitlabError

pytestmark = pytest.mark.frameworks

os.environ.setdefault("KERAS_BACKEND", "torch")  # Keras's torch backend needs no TensorFlow


@pytest.fixture(scope="module")
def jx():
    jax = pytest.importorskip("jax", reason="JAX is not installed (pip install 'initlab[jax]')")
    import jax.numpy as jnp

    import initlab.jax as ij

    return jax, jnp, ij


@pytest.fixture(scope="module")
def kr():
    keras = pytest.importorskip("keras", reason="Keras 3 is not installed")
    import initlab.keras as ik

    return keras, ik


def np_of(x) -> np.ndarray:
    """A backend tensor as NumPy (Keras's convert_to_numpy warns under NumPy 2 on torch)."""
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


# ------------------------------------------------------------------ JAX


@pytest.mark.parametrize("dtype", ["int32", "int8", "uint8", "bool"])
def test_jax_constants_fill_integer_and_bool_arrays_as_jax_does(jx, dtype):
    jax, jnp, ij = jx
    key = jax.random.key(0)
    for name, theirs in (("zeros", jax.nn.initializers.zeros),
                         ("ones", jax.nn.initializers.ones)):
        got = getattr(ij, name)()(key, (3, 4), jnp.dtype(dtype))
        ref = theirs(key, (3, 4), jnp.dtype(dtype))
        assert got.dtype == ref.dtype and np.array_equal(np.asarray(got), np.asarray(ref))
    if dtype != "bool":
        got = ij.constant(7)(key, (2, 5), jnp.dtype(dtype))
        assert got.dtype == jnp.dtype(dtype) and (np.asarray(got) == 7).all()


@pytest.mark.parametrize("value,dtype", [(0.3, "int32"), (300, "int8"), (-1, "uint8"),
                                         (2, "bool")])
def test_jax_constant_that_the_dtype_cannot_hold_is_refused(jx, value, dtype):
    jax, jnp, ij = jx
    with pytest.raises(InitlabError, match=r"`dtype`"):
        ij.constant(value)(jax.random.key(0), (2, 2), jnp.dtype(dtype))


def test_jax_random_initializer_refuses_an_integer_dtype(jx):
    jax, jnp, ij = jx
    for init in (ij.normal(), ij.he_normal(), ij.orthogonal()):
        with pytest.raises(InitlabError, match=r"`dtype` must be a floating or complex dtype"):
            init(jax.random.key(0), (4, 4), jnp.int32)


# ------------------------------------------------------------------ Keras


@pytest.mark.parametrize("dtype", ["int32", "int64", "uint8", "bool"])
def test_keras_constants_fill_integer_and_bool_tensors_as_keras_does(kr, dtype):
    keras, ik = kr
    for ours, theirs in ((ik.zeros(), keras.initializers.Zeros()),
                         (ik.ones(), keras.initializers.Ones())):
        got, ref = ours((3, 4), dtype=dtype), theirs((3, 4), dtype=dtype)
        assert keras.backend.standardize_dtype(got.dtype) == dtype
        assert np.array_equal(np_of(got), np_of(ref))
    if dtype != "bool":
        got = ik.constant(5)((2, 3), dtype=dtype)
        assert (np_of(got) == 5).all()


def test_keras_constant_that_the_dtype_cannot_hold_and_random_on_int_are_refused(kr):
    keras, ik = kr
    with pytest.raises(InitlabError, match=r"`dtype`"):
        ik.constant(0.3)((2, 2), dtype="int32")
    with pytest.raises(InitlabError, match=r"`dtype`"):
        ik.constant(256)((2, 2), dtype="uint8")
    with pytest.raises(InitlabError, match=r"\(bool, 0 and 1"):
        ik.constant(2)((2, 2), dtype="bool")
    with pytest.raises(InitlabError, match=r"integer and bool dtypes take zeros, ones and "
                                           r"constant only"):
        ik.he_normal(seed=0)((4, 4), dtype="int32")


@pytest.mark.parametrize("config,theirs", [
    ({"class_name": "HeNormal", "config": {"seed": 3}}, lambda k: k.initializers.HeNormal(seed=3)),
    ({"class_name": "GlorotUniform", "config": {"seed": 5}, "module": "keras.initializers"},
     lambda k: k.initializers.GlorotUniform(seed=5)),
    ({"class_name": "Constant", "config": {"value": 0.25}, "module": None},
     lambda k: k.initializers.Constant(0.25)),
    ({"class_name": "Orthogonal", "config": {"seed": 2, "gain": 1.5}},
     lambda k: k.initializers.Orthogonal(seed=2, gain=1.5)),
])
def test_keras_config_of_a_keras_class_gives_initlabs_with_the_same_values(kr, config, theirs):
    keras, ik = kr
    init = ik.get(config)
    assert type(init).__module__.startswith("initlab")
    got = np_of(init((24, 16)))
    ref = np_of(theirs(keras)((24, 16)))
    np.testing.assert_array_equal(got, ref)
