"""Conformance with keras.initializers as Keras's own tests define them
(keras/src/initializers/random_initializers_test.py, constant_initializers_test.py and
layers/attention/multi_head_attention_test.py's test_initializer, Keras v3.15.1), plus
bit-for-bit equality with Keras's initializers for the same seed.

Keras's class names are initlab.keras's (``ik.HeNormal`` builds initlab's
``variance_scaling(2.0, "fan_in", "truncated_normal")``, docs/frameworks.md); each test names the
peer case it mirrors. Runs under the Keras backend of the process (torch in CI; jax checked too).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

# Keras's torch backend converts tensors with np.array(tensor, copy=False), which NumPy 2 flags
# (a Keras/torch matter, not initlab's; tests/test_keras.py allows the same one warning)
pytestmark = [pytest.mark.frameworks, pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")]

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras", reason="Keras 3 is not installed (pip install 'initlab[keras]')")
import initlab.keras as ik  # noqa: E402

K = keras.initializers


def np_(x) -> np.ndarray:
    return np.ascontiguousarray(keras.ops.convert_to_numpy(x).astype(np.float64))


def float_dtypes() -> tuple[str, ...]:
    """Keras's float dtypes on this backend (the jax backend has float64 only in x64 mode)."""
    if keras.backend.backend() == "jax":
        import jax

        if not jax.config.jax_enable_x64:
            return ("float32", "bfloat16", "float16")
    return ("float32", "bfloat16", "float16", "float64")


PAIRS = [
    ("HeNormal", {}), ("HeUniform", {}), ("GlorotNormal", {}), ("GlorotUniform", {}),
    ("LecunNormal", {}), ("LecunUniform", {}), ("RandomNormal", {"mean": 0.1, "stddev": 0.3}),
    ("RandomUniform", {"minval": -0.3, "maxval": 0.7}), ("TruncatedNormal", {"stddev": 0.2}),
    ("VarianceScaling", {"scale": 0.3, "mode": "fan_out", "distribution": "untruncated_normal"}),
    ("VarianceScaling", {"scale": 0.3, "mode": "fan_avg", "distribution": "uniform"}),
    ("VarianceScaling", {"scale": 1.7, "mode": "fan_in", "distribution": "normal"}),
    ("Orthogonal", {"gain": 2.0}),
]


@pytest.mark.parametrize(("cls", "kw"), PAIRS, ids=[f"{c}-{'-'.join(map(str, k.values()))}"
                                                    for c, k in PAIRS])
def test_same_values_as_keras_for_the_same_seed(cls, kw):
    """For every Keras class: Keras's values bit for bit, each dtype Keras draws (Keras's QR has
    no bf16/f16 CPU kernel: its Orthogonal raises there, initlab factorizes in float32)."""
    for dtype in float_dtypes():
        for shape in ((5, 7), (3, 3, 8, 16)):
            ours = getattr(ik, cls)(seed=11, **kw)
            assert isinstance(ours, keras.initializers.Initializer)
            got = ours(shape, dtype)
            assert tuple(got.shape) == shape
            assert keras.backend.standardize_dtype(got.dtype) == dtype
            try:
                ref = getattr(K, cls)(seed=11, **kw)(shape, dtype)
            except (NotImplementedError, RuntimeError):
                assert cls == "Orthogonal" and dtype in ("bfloat16", "float16")
                continue
            np.testing.assert_array_equal(np_(got).view(np.uint8), np_(ref).view(np.uint8))


def test_constants_and_identity():
    """Mirrors test_zeros/ones/constant/identity_initializer (and equal to Keras's)."""
    for ours, theirs in ((ik.Zeros(), K.Zeros()), (ik.Ones(), K.Ones()),
                         (ik.Constant(6.0), K.Constant(6.0)), (ik.Identity(gain=2), K.Identity(2))):
        np.testing.assert_array_equal(np_(ours((3, 3))), np_(theirs((3, 3))))
        again = ik.KerasInitializer.from_config(ours.get_config())
        np.testing.assert_array_equal(np_(again((3, 3))), np_(ours((3, 3))))
    assert ik.get("IdentityInitializer").initializer.name == "identity"


def test_constant_array_value():
    """Mirrors test_constant_initializer_array_value, with a serialization round trip."""
    value = np.random.default_rng(0).random((3, 3))
    init = ik.Constant(value=value)
    np.testing.assert_allclose(np_(init((3, 3))), value.astype(np.float32))
    back = keras.initializers.deserialize(keras.initializers.serialize(init))
    np.testing.assert_array_equal(np_(back((3, 3))), np_(init((3, 3))))
    assert init.value is value


def test_random_normal_seeding_and_cloning():
    """Mirrors test_random_normal: attributes; an int seed repeats on every call; a
    SeedGenerator does not; an unseeded clone differs; a seeded clone repeats."""
    init = ik.RandomNormal(mean=0.0, stddev=1.0, seed=1234)
    assert (init.mean, init.stddev, init.seed) == (0.0, 1.0, 1234)
    values = np_(init((25, 20)))
    # std of 500 normal draws: standard error 1/sqrt(2 * 500) = 0.032; 6 SE
    assert abs(values.std() - 1.0) < 6 / np.sqrt(1000)
    np.testing.assert_array_equal(np_(init((25, 20))), values)
    gen = ik.RandomNormal(seed=keras.random.SeedGenerator(1337))
    assert not np.allclose(np_(gen((25, 20))), np_(gen((25, 20))))
    unseeded = ik.RandomNormal(seed=None)
    clone = ik.KerasInitializer.from_config(unseeded.get_config())
    assert not np.allclose(np_(clone((25, 20))), np_(unseeded((25, 20))))
    seeded = ik.RandomNormal(seed=1337)
    clone = ik.KerasInitializer.from_config(seeded.get_config())
    np.testing.assert_array_equal(np_(clone((25, 20))), np_(seeded((25, 20))))


def test_random_uniform_bounds():
    """Mirrors test_random_uniform."""
    init = ik.RandomUniform(minval=-1.0, maxval=1.0, seed=1234)
    assert (init.minval, init.maxval) == (-1.0, 1.0)
    v = np_(init((5, 5)))
    assert v.min() >= -1.0 and v.max() < 1.0


def test_variance_scaling_std_and_errors():
    """Mirrors test_variance_scaling and test_variance_scaling_invalid_{scale,mode,distribution}:
    ValueError with Keras's phrase inside initlab's message."""
    for mode, n in (("fan_in", 25), ("fan_out", 20)):
        init = ik.VarianceScaling(scale=2.0, seed=1234, mode=mode)
        assert (init.scale, init.seed) == (2.0, 1234)
        v = np_(init((25, 20)))
        # truncated normal with std sqrt(2 / n): SE of the std of 500 draws < std * 0.04
        assert abs(v.std() - np.sqrt(2.0 / n)) < 6 * 0.04 * np.sqrt(2.0 / n)
    for kw, phrase in (({"scale": -1.0}, "Argument `scale` must be positive float."),
                       ({"mode": "invalid_mode"}, "Invalid `mode` argument:"),
                       ({"distribution": "invalid_dist"}, "Invalid `distribution` argument:")):
        with pytest.raises(ValueError, match=phrase):
            ik.VarianceScaling(seed=1, **kw)


def test_get_conventions():
    """Mirrors test_get_method, test_get_method_with_tensor and the legacy class names."""
    assert ik.get(None) is None
    with pytest.raises(ValueError):
        ik.get("typo")
    assert ik.get("GlorotNormal").initializer.params["distribution"] == "truncated_normal"
    assert ik.get("glorot_normal").initializer.name == "glorot_normal"  # initlab's meaning
    assert ik.get("OrthogonalInitializer").initializer.name == "orthogonal"
    assert isinstance(ik.get("STFTInitializer"), ik.STFT)
    cfg = keras.initializers.serialize(ik.HeNormal(seed=3))
    np.testing.assert_array_equal(np_(ik.get(cfg)((4, 4))), np_(ik.HeNormal(seed=3)((4, 4))))
    tensor = np.random.default_rng(1).uniform(size=(5, 5)).astype("float32")
    np.testing.assert_array_equal(np_(ik.get(tensor)((5, 5))), tensor)
    with pytest.raises(ValueError, match=r"Expected `shape` to be"):
        ik.get(tensor)((10, 10))
    fn = ik.get(lambda shape, dtype=None: keras.ops.ones(shape))
    assert np_(fn((2,))).tolist() == [1.0, 1.0]


def test_serialization_with_seed_generator():
    """Mirrors test_serialization_with_seed_generator (config round trip)."""
    for init in (ik.Orthogonal(seed=keras.random.SeedGenerator()),
                 ik.VarianceScaling(seed=keras.random.SeedGenerator()),
                 ik.RandomUniform(seed=keras.random.SeedGenerator())):
        back = keras.initializers.deserialize(keras.initializers.serialize(init))
        assert back.get_config().keys() == init.get_config().keys()
        assert isinstance(back.seed, keras.random.SeedGenerator)


def test_compute_fans_and_variance_scaling_with_axes():
    """Mirrors test_compute_fans_with_axes, test_variance_scaling_with_axes and
    test_variance_scaling_serialization_with_axes."""
    q = ik.KerasInitializer("variance_scaling", input_axes=[0], output_axes=[1, 2])
    assert q._fans((512, 8, 64)) == (512, 512)
    o = ik.KerasInitializer("variance_scaling", input_axes=[0, 1], output_axes=[2])
    assert o._fans((512, 8, 64)) == (512 * 8, 64)
    init = ik.VarianceScaling(scale=2.0, seed=1234, mode="fan_in", input_axes=[0],
                              output_axes=[1, 2])
    v = np_(init((32, 4, 16)))
    # 2048 draws: SE of the std < 2.5% of it; 6 SE
    assert abs(v.std() - np.sqrt(2.0 / 32)) < 6 * 0.025 * np.sqrt(2.0 / 32)
    ref = K.VarianceScaling(scale=2.0, seed=1234, mode="fan_in", input_axes=[0],
                            output_axes=[1, 2])((32, 4, 16))
    np.testing.assert_array_equal(v, np_(ref))
    back = keras.initializers.deserialize(keras.initializers.serialize(init))
    assert (back.input_axes, back.output_axes) == ([0], [1, 2])


@pytest.mark.parametrize("init", ["LecunNormal", "lecun_normal"])
def test_mha_query_projection_variance(init):
    """Mirrors test_mha_query_projection_variance: inside MultiHeadAttention the (32, 8, 16)
    query kernel gets fan_in 32 (not 256), so std sqrt(1/32) = 0.177 (0.0625 before).
    4096 draws: SE of the std < 1.2% of it; 6 SE."""
    keras.utils.set_random_seed(1337)
    mha = keras.layers.MultiHeadAttention(num_heads=8, key_dim=16,
                                          kernel_initializer=getattr(ik, init)())
    mha.build((None, 10, 32), (None, 10, 32))
    kernel = np_(mha.query_dense.kernel)
    assert kernel.shape == (32, 8, 16)
    assert abs(kernel.std() - np.sqrt(1 / 32)) < 6 * 0.012 * np.sqrt(1 / 32)


def test_mha_sublayers_get_different_kernels():
    """Mirrors multi_head_attention_test.test_initializer: unseeded, each sublayer's clone
    picks its own seed."""
    layer = keras.layers.MultiHeadAttention(num_heads=12, key_dim=64, use_gate=True,
                                            kernel_initializer=ik.TruncatedNormal(stddev=0.02))
    layer.build((2, 4, 8), (2, 4, 8))
    q = np_(layer._query_dense.kernel)
    for other in (layer._key_dense, layer._value_dense, layer._output_dense, layer._gate_dense):
        k = np_(other.kernel)
        assert k.shape != q.shape or not np.allclose(q, k)


def test_stft():
    """Mirrors test_stft_initializer (tolerances as Keras's: float32 trigonometry)."""
    scipy_signal = pytest.importorskip("scipy.signal")
    shape = (256, 1, 513)
    t = np.arange(256).reshape((-1, 1, 1))
    f = (np.arange(513) / 1024.0).reshape((1, 1, -1))
    args = -2 * np.arccos(np.float32(-1)) * t * f
    np.testing.assert_allclose(np_(ik.STFT("real", None)(shape)), np.cos(args), atol=1e-4)
    win = scipy_signal.windows.get_window("tukey", 256, False).reshape((-1, 1, 1))
    win = win / np.sqrt(np.sum(win**2))
    np.testing.assert_allclose(np_(ik.STFT("imag", "tukey", "density", False)(shape, "float32")),
                               np.sin(args) * win, atol=1e-4, rtol=1e-6)
    win = np.arange(1, 257).reshape((-1, 1, 1)) / np.sum(np.arange(1, 257))
    np.testing.assert_allclose(np_(ik.STFT("imag", list(range(1, 257)), "spectrum")(shape)),
                               np.sin(args) * win, atol=1e-4, rtol=1e-6)
    ref = K.STFT("real", "hamming", None, True)(shape)
    # Keras computes the phase in float32 (errors ~3e-5), initlab in float64
    np.testing.assert_allclose(np_(ik.STFT("real", "hamming", None, True)(shape)), np_(ref),
                               atol=1e-4)
    for bad in ({"side": "imaginary"}, {"scaling": "l2"}, {"window": "unknown"}):
        with pytest.raises(ValueError):
            ik.STFT(**bad)
    back = keras.initializers.deserialize(keras.initializers.serialize(ik.STFT("imag")))
    assert back.get_config() == ik.STFT("imag").get_config()
