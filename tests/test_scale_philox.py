"""The optional compiled Philox words (initlab.scale._philox) against NumPy's Philox, and the
counter stream's values under both word backends (they must not differ in a single bit)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

import initlab
from initlab.core.distributions import Constant, Normal, TruncatedNormal, Uniform
from initlab.core.validation import InitlabError
from initlab.scale import (
    V1,
    V2,
    compiled_words_available,
    counter_fill_,
    counter_sample,
    sample_range,
    set_words_backend,
    words_backend,
)
from initlab.scale import counter as counter_mod

needs_ext = pytest.mark.skipif(
    not compiled_words_available(),
    reason="the optional extension initlab.scale._philox is not built in this install (no C "
           "compiler at install time, or a source tree without `python setup.py build_ext "
           "--inplace`); the counter stream runs on NumPy's Philox, with the same values")


def numpy_words(key: int, start: int, count: int) -> np.ndarray:
    """Words start .. start + count - 1 straight from numpy.random.Philox(key=[key, 0]), the
    reference: its counter is advanced to the block before ``start`` and the skipped words of
    that block discarded, so it shares no code with initlab's readers."""
    bg = np.random.Philox(key=np.array([key, 0], dtype=np.uint64))
    blocks = start // 4
    if blocks:
        st = bg.state
        c = blocks
        st["state"]["counter"] = np.array([(c >> (64 * i)) & (2**64 - 1) for i in range(4)],
                                          dtype=np.uint64)
        bg.state = st
    skip = start % 4
    return bg.random_raw(skip + count)[skip:]


@pytest.fixture
def backend():
    """Set the words backend for the test and restore the previous setting afterwards."""
    previous = counter_mod._WORDS_SETTING["value"]
    try:
        yield set_words_backend
    finally:
        counter_mod._WORDS_SETTING["value"] = previous


KEYS = [0, 1, 12345, 2**63, 2**64 - 1, 0x9E3779B97F4A7C15,
        initlab.scale.stream_key(0, "layers.0.attn.wq.weight")]
STARTS = [0, 1, 2, 3, 4, 5, 17, 1023, 2**32 - 1, 2**40 + 3, 2**63 + 6]
COUNTS = [0, 1, 2, 3, 4, 5, 7, 8, 1000, 2**18 + 5]


@needs_ext
def test_compiled_words_equal_numpy_philox():
    from initlab.scale import _philox

    for key in KEYS:
        for start in STARTS:
            for count in COUNTS:
                if count > 1000 and key not in (0, 2**64 - 1) and start not in (0, 5, 2**40 + 3):
                    continue  # the long reads on a subset: the test stays well under a second
                out = np.empty(count, dtype=np.uint64)
                _philox.fill(out, key, start)
                assert np.array_equal(out, numpy_words(key, start, count)), (key, start, count)


@needs_ext
def test_compiled_words_at_the_end_of_the_index_range():
    """The last words a 64-bit index can address: counter blocks up to 2**62, NumPy's carry."""
    from initlab.scale import _philox

    for start, count in [(2**64 - 9, 9), (2**64 - 4, 4), (2**64 - 1, 1), (2**64 - 7, 3)]:
        out = np.empty(count, dtype=np.uint64)
        _philox.fill(out, 77, start)
        assert np.array_equal(out, numpy_words(77, start, count)), (start, count)


@needs_ext
def test_compiled_fill_into_torch_and_bytearray_and_slices():
    """Any writable contiguous buffer of whole uint64s: a NumPy slice, a torch int64 tensor."""
    from initlab.scale import _philox

    ref = numpy_words(5, 10, 64)
    buf = np.zeros(100, dtype=np.uint64)
    _philox.fill(buf[20:84], 5, 10)
    assert np.array_equal(buf[20:84], ref) and not buf[:20].any() and not buf[84:].any()
    t = torch.empty(64, dtype=torch.int64)
    _philox.fill(t.numpy(), 5, 10)
    assert np.array_equal(t.numpy().view(np.uint64), ref)
    b = bytearray(64 * 8)
    _philox.fill(b, 5, 10)
    assert np.array_equal(np.frombuffer(b, dtype=np.uint64), ref)


@needs_ext
def test_compiled_fill_refuses_bad_arguments():
    from initlab.scale import _philox

    out = np.empty(4, dtype=np.uint64)
    with pytest.raises(OverflowError):
        _philox.fill(out, -1, 0)
    with pytest.raises(OverflowError):
        _philox.fill(out, 2**64, 0)
    with pytest.raises(OverflowError):
        _philox.fill(out, 0, -1)
    with pytest.raises(OverflowError):
        _philox.fill(out, 0, 2**64 - 3)  # the last word would be 2**64
    with pytest.raises(TypeError):
        _philox.fill(out, 1.5, 0)
    with pytest.raises(ValueError, match="multiple of 8"):
        _philox.fill(bytearray(12), 0, 0)
    ro = np.empty(4, dtype=np.uint64)
    ro.flags.writeable = False
    with pytest.raises((TypeError, ValueError, BufferError)):
        _philox.fill(ro, 0, 0)
    with pytest.raises((TypeError, ValueError, BufferError)):
        _philox.fill(np.empty(8, dtype=np.uint64)[::2], 0, 0)  # not contiguous
    _philox.fill(np.empty(0, dtype=np.uint64), 0, 2**64 - 1)  # nothing to write: fine


def test_backend_switch_and_its_errors(backend):
    assert words_backend() in ("compiled", "numpy")
    backend("numpy")
    assert words_backend() == "numpy"
    assert counter_mod._Words(3).backend == "numpy"
    backend("auto")
    assert words_backend() == ("compiled" if compiled_words_available() else "numpy")
    with pytest.raises(InitlabError, match="must be one of"):
        set_words_backend("fast")
    if compiled_words_available():
        assert backend("compiled") == "auto"
        assert counter_mod._Words(3).backend == "compiled"
    else:
        with pytest.raises(InitlabError, match="not built"):
            set_words_backend("compiled")


def test_environment_variable_forces_numpy():
    code = ("from initlab.scale import words_backend, compiled_words_available as c; "
            "print(words_backend(), c())")
    import os

    env = dict(os.environ, INITLAB_PHILOX_WORDS="numpy")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out[0] == "numpy"
    assert out[1] == str(compiled_words_available())


def test_environment_variable_with_an_unknown_value_warns_and_uses_auto():
    import os

    code = "from initlab.scale import words_backend as w, compiled_words_available as c; " \
           "print(w(), c())"
    env = dict(os.environ, INITLAB_PHILOX_WORDS="fast")
    run = subprocess.run([sys.executable, "-W", "always", "-c", code], env=env,
                         capture_output=True, text=True, check=True)
    assert "INITLAB_PHILOX_WORDS='fast' is not one of auto, compiled, numpy" in run.stderr
    backend_, built = run.stdout.split()
    assert backend_ == ("compiled" if built == "True" else "numpy")


def test_reader_words_equal_numpy_under_both_backends(backend):
    for name in ("compiled", "numpy") if compiled_words_available() else ("numpy",):
        backend(name)
        for key in KEYS[:4]:
            r = counter_mod._Words(key)
            for start in (0, 3, 5, 2**40 + 3):
                assert np.array_equal(r.read(start, 1001), numpy_words(key, start, 1001))


DISTS = [Normal(0.0, 1.0), Normal(0.5, 0.02), Uniform(-1.0, 1.0), Uniform(0.0, 3e-3),
         TruncatedNormal(0.0, 1.0, -2.0, 2.0), TruncatedNormal(0.0, 0.02, -0.04, 0.04),
         TruncatedNormal(0.0, 1.0, 6.0, 7.0),  # far tail: float64 compute dtype
         Constant(0.25)]


def _both(backend, fn):
    """fn() under the NumPy words and under the compiled words (the latter only when built)."""
    backend("numpy")
    a = fn()
    if not compiled_words_available():
        return a, a
    backend("compiled")
    return a, fn()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16, torch.float64])
def test_stream_tensors_identical_under_both_backends(backend, dtype):
    for d in DISTS:
        for threads, chunk in ((1, None), (2, 4099)):
            a, b = _both(backend, lambda d=d, threads=threads, chunk=chunk: counter_fill_(
                torch.empty(301, 233, dtype=dtype), d, seed=3, name="layers.1.w",
                threads=threads, chunk_size=chunk))
            assert torch.equal(a.view(torch.uint8), b.view(torch.uint8)), (d, threads)


def test_sharded_blocks_identical_under_both_backends(backend):
    """Shard(1) blocks (many short runs: the gather and the run-by-run reads) and an odd
    offset, v2 and v1."""
    for stream in (V2, V1):
        for offs, loc in (((0, 117), (301, 61)), ((7, 0), (5, 233)), ((0, 1), (301, 1))):
            for d in DISTS[:5]:
                a, b = _both(backend, lambda d=d, offs=offs, loc=loc, stream=stream:
                             counter_fill_(torch.empty(loc), d, seed=1, name="s",
                                           global_shape=(301, 233), offsets=offs,
                                           chunk_size=1000, stream=stream))
                assert torch.equal(a, b), (stream, offs, d)


def test_numpy_entry_points_and_structured_identical_under_both_backends(backend):
    for stream in (V2, V1):
        a, b = _both(backend, lambda stream=stream: sample_range(
            Normal(0.0, 1.0), seed=2, name="r", start=12345, stop=40001, stream=stream))
        assert np.array_equal(a, b)
        a, b = _both(backend, lambda stream=stream: counter_sample(
            TruncatedNormal(0.0, 1.0, -2.0, 2.0), (64, 48), seed=2, name="t", stream=stream))
        assert np.array_equal(a, b)
    q = initlab.get("orthogonal", gain=1.0).resolve((40, 24))
    a, b = _both(backend, lambda: counter_fill_(torch.empty(40, 24, dtype=torch.float64), q,
                                                seed=0, name="q"))
    assert torch.equal(a, b)


def test_apply_identical_under_both_backends(backend):
    def run():
        torch.manual_seed(0)
        m = torch.nn.Sequential(torch.nn.Linear(37, 64), torch.nn.LayerNorm(64),
                                torch.nn.Linear(64, 5))
        initlab.apply(m, "he", seed=4, rng="counter")
        return torch.cat([p.detach().ravel() for p in m.parameters()])

    a, b = _both(backend, run)
    assert torch.equal(a, b)


# ------------------------------------------------------------ the fused v2 kernels (compiled)
def _ref_bits(key: int, start: int, count: int) -> torch.Tensor:
    """int32 element bits of v2 elements start .. start + count - 1, from NumPy's Philox words
    (element e: the 32-bit half e % 2, low first, of word e // 2)."""
    w0 = start // 2
    nw = (start + count + 1) // 2 - w0
    halves = numpy_words(key, w0, nw).astype("<u8").view("<u4").astype(np.int64)
    off = start - 2 * w0
    h = halves[off:off + count]
    return torch.from_numpy(np.where(h >= 2**31, h - 2**32, h).astype(np.int32))


def _ref_y(bits: torch.Tensor, mode: int, c1: float, c2: float, add: bool) -> torch.Tensor:
    """The first float32 step of v2's transform by torch ops (as transform() does it)."""
    from initlab.scale.torch_stream import _scaled

    s = bits >> 8
    if mode == 0:
        return _scaled(s, 2.0**-23, torch.float32).add_(2.0**-24)
    y = _scaled(s, c1, torch.float32)
    return y.add_(c2) if add else y


V2_CASES = [(0, 0.0, 0.0, False), (1, 3.7e-8, 0.0, False), (1, 2.0**-24 * 0.3, 0.15, False),
            (1, 1.13e-7, -0.05, True), (1, 7.1e-9, 0.95, True)]


@needs_ext
@pytest.mark.parametrize("mode,c1,c2,add", V2_CASES)
def test_compiled_v2_first_step_equals_torch_ops(mode, c1, c2, add):
    """v2_y (words and the first step in one pass) and bits_y (from given bits) against torch
    ops on NumPy's words, bit for bit: odd and even starts, starts inside a cipher block, counts
    around the kernel's 512-element block, an index near the end of the range."""
    from initlab.scale import _philox

    for key in (0, 12345, 2**64 - 1):
        for start in (0, 1, 2, 7, 8, 9, 511, 4097, 2**40 + 3, 2**64 - 1100):
            for count in (0, 1, 7, 8, 9, 511, 512, 513, 1025):
                bits = _ref_bits(key, start, count)
                ref = _ref_y(bits, mode, c1, c2, add)
                y = torch.full((count,), float("nan"))
                _philox.v2_y(y.numpy(), key, start, mode, c1, c2, add)
                assert torch.equal(y.view(torch.int32), ref.view(torch.int32)), (key, start,
                                                                                count)
                y2 = torch.full((count,), float("nan"))
                _philox.bits_y(bits.numpy(), y2.numpy(), mode, c1, c2, add)
                assert torch.equal(y2.view(torch.int32), ref.view(torch.int32))


@needs_ext
def test_compiled_finish_equals_torch_mul_add_clamp():
    """finish's multiply, add and clip are torch's mul_ / add_ / clamp_ in float32, bit for bit,
    signed zeros at a zero bound and values beyond both bounds included."""
    from initlab.scale import _philox

    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(4099, generator=g) * 3, torch.tensor([0.0, -0.0, 2.5, -2.5,
                                                                       1e-30, -1e-30])])
    for flags in range(8):
        for a, c, lo, hi in ((0.0282842712, 0.0, -0.04, 0.04), (1.7, -0.3, 0.0, 2.0),
                             (-0.9, 0.25, -1.0, -0.0)):
            ref = x.clone()
            if flags & 1:
                ref.mul_(a)
            if flags & 2:
                ref.add_(c)
            if flags & 4:
                ref.clamp_(lo, hi)
            y = x.clone()
            _philox.finish(y.numpy(), flags, a, c, lo, hi)
            assert torch.equal(y.view(torch.int32), ref.view(torch.int32)), (flags, a, c)


@needs_ext
def test_compiled_v2_kernels_refuse_bad_arguments():
    from initlab.scale import _philox

    y = np.empty(8, dtype=np.float32)
    with pytest.raises(ValueError, match="mode must be 0"):
        _philox.v2_y(y, 0, 0, 2, 0.0, 0.0, False)
    with pytest.raises(ValueError, match="mode must be 0"):
        _philox.bits_y(np.zeros(8, np.int32), y, -1, 0.0, 0.0, False)
    with pytest.raises(ValueError, match="multiple of 4"):
        _philox.v2_y(bytearray(6), 0, 0, 0, 0.0, 0.0, False)
    with pytest.raises(ValueError, match="same number"):
        _philox.bits_y(np.zeros(4, np.int32), y, 0, 0.0, 0.0, False)
    with pytest.raises(OverflowError):
        _philox.v2_y(y, 0, 2**64 - 3, 0, 0.0, 0.0, False)  # the last element would be 2**64
    with pytest.raises(OverflowError):
        _philox.v2_y(y, -1, 0, 0, 0.0, 0.0, False)
    with pytest.raises(ValueError, match="flags must be in 0..7"):
        _philox.finish(y, 8, 1.0, 0.0, 0.0, 0.0)
    ro = np.empty(8, dtype=np.float32)
    ro.flags.writeable = False
    with pytest.raises((TypeError, ValueError, BufferError)):
        _philox.v2_y(ro, 0, 0, 0, 0.0, 0.0, False)
    with pytest.raises((TypeError, ValueError, BufferError)):
        _philox.finish(np.empty(16, dtype=np.float32)[::2], 1, 1.0, 0.0, 0.0, 0.0)


def test_fused_path_follows_the_words_backend(backend):
    """The fused kernels are used exactly when the compiled words are (one owner of the
    choice), so NumPy's words run the whole torch-ops path."""
    from initlab.scale.torch_stream import CpuTransform

    backend("numpy")
    assert counter_mod.compiled_kernels() is None
    assert not CpuTransform(Normal(0.0, 1.0), torch.float32, None, 16).fused
    if compiled_words_available():
        backend("compiled")
        assert counter_mod.compiled_kernels() is not None
        assert CpuTransform(Normal(0.0, 1.0), torch.float32, None, 16).fused
