"""initlab.scale: the counter stream (fast, single process)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import special, stats

import initlab
from initlab.core.distributions import Constant, Normal, TruncatedNormal, Uniform
from initlab.core.validation import InitlabError, InitlabTypeError
from initlab.modelinit.rules import Plan, Rule
from initlab.scale import (
    COUNTER_STREAM_VERSION,
    STREAM_VERSIONS,
    V1,
    V2,
    counter_fill_,
    counter_sample,
    philox_words,
    sample_range,
    shard_layout,
    stream_key,
)
from initlab.scale.counter import block_runs
from initlab.util.hashing import stable_u64

ELEMENTWISE = [Normal(0.25, 2.0), Uniform(-0.3, 0.7), TruncatedNormal(0.0, 1.0, -2.0, 2.0),
               TruncatedNormal(0.0, 1.0, 1.5, 4.0)]
VERSIONS = pytest.mark.parametrize("stream", STREAM_VERSIONS)


# ------------------------------------------------------------------------------ the stream
def test_key_is_stable_hash_of_seed_and_canonical_name():
    assert stream_key(3, "fc.weight") == stable_u64(3, "fc.weight")
    # wrapper prefixes are stripped: DDP / torch.compile see the same stream as the bare model
    assert stream_key(3, "module._orig_mod.fc.weight") == stream_key(3, "fc.weight")
    assert stream_key(3, "fc.weight") != stream_key(4, "fc.weight")
    assert stream_key(3, "fc.weight") != stream_key(3, "fc.bias")


def test_words_are_numpy_philox_output_at_the_element_index():
    key = stream_key(0, "w")
    ref = np.random.Philox(key=np.array([key, 0], dtype=np.uint64)).random_raw(103)
    assert np.array_equal(philox_words(0, "w", 0, 103), ref)


def test_words_do_not_depend_on_where_drawing_starts():
    full = philox_words(7, "w", 0, 1000)
    rng = np.random.default_rng(0)
    for _ in range(60):
        a, b = sorted(rng.integers(0, 1001, size=2).tolist())
        assert np.array_equal(philox_words(7, "w", a, b), full[a:b]), (a, b)


@VERSIONS
def test_sample_range_slice_equals_full_slice(stream):
    rng = np.random.default_rng(1)
    for dist in ELEMENTWISE:
        full = sample_range(dist, seed=2, name="p", start=0, stop=5000, stream=stream)
        for _ in range(10):
            a, b = sorted(rng.integers(0, 5001, size=2).tolist())
            part = sample_range(dist, seed=2, name="p", start=a, stop=b, chunk_size=97,
                                stream=stream)
            assert np.array_equal(part, full[a:b])


def test_pinned_first_values_of_the_stream():
    # Recomputes the documented definition from the raw words; a failure means the stream
    # changed (bump COUNTER_STREAM_VERSION).
    w = philox_words(0, "w", 0, 8)
    t = w >> np.uint64(11)
    v = (t | np.uint64(1)).astype(np.float64) * 2.0**-54
    expect = np.where((t & np.uint64(1)) == 1, -special.ndtri(v), special.ndtri(v))
    got = sample_range(Normal(0.0, 1.0), seed=0, name="w", start=0, stop=8, stream=V1)
    assert np.array_equal(got, expect)
    assert V1 == "philox4x64-10-ndtri-v1" and V1 in STREAM_VERSIONS


@VERSIONS
@pytest.mark.parametrize("dist", ELEMENTWISE, ids=repr)
def test_block_equals_full_slice(dist, stream):
    g = (13, 7, 5)
    full = counter_sample(dist, g, seed=0, name="x", dtype="float64", stream=stream)
    rng = np.random.default_rng(2)
    for _ in range(12):
        offs, loc = [], []
        for n in g:
            a, b = sorted(rng.integers(0, n + 1, size=2).tolist())
            offs.append(a)
            loc.append(b - a)
        blk = counter_sample(dist, g, seed=0, name="x", offsets=offs, local_shape=loc,
                             dtype="float64", chunk_size=11, stream=stream)
        sl = tuple(slice(a, a + n) for a, n in zip(offs, loc))
        assert np.array_equal(blk, full[sl])


@pytest.mark.parametrize("g,offs,loc", [
    ((40, 30), (0, 3), (40, 17)),      # narrow gaps: covering range + gather
    ((40, 2000), (5, 10), (30, 10)),   # wide gaps: one jump per row
    ((4, 6, 500), (1, 2, 300), (2, 3, 7)),
])
@VERSIONS
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_thread_and_chunk_independence(g, offs, loc, dtype, stream):
    dist = Normal(0.0, 1.0)
    ref = counter_sample(dist, g, seed=5, name="t", offsets=offs, local_shape=loc,
                         dtype=dtype, threads=1, chunk_size=1 << 20, stream=stream)
    full = counter_sample(dist, g, seed=5, name="t", dtype=dtype, stream=stream)
    assert np.array_equal(ref, full[tuple(slice(a, a + n) for a, n in zip(offs, loc))])
    for threads in (1, 2, 3):
        for chunk in (1, 7, 64, 1000):
            got = counter_sample(dist, g, seed=5, name="t", offsets=offs, local_shape=loc,
                                 dtype=dtype, threads=threads, chunk_size=chunk, stream=stream)
            assert np.array_equal(got, ref), (threads, chunk)


def test_worker_pool_leaves_torch_thread_count_and_survives_fork():
    """The persistent worker pool runs one intra-op thread per worker without changing the
    caller's torch thread count (nor the count new threads start with); a forked child (new
    pid) gets a pool of its own."""
    import threading

    from initlab.scale import counter as counter_mod

    prev = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        d = Normal(0.0, 1.0)
        ref = counter_fill_(torch.empty(3000), d, seed=0, name="p", threads=1)
        for _ in range(2):
            counter_mod._POOL["pid"] = -1  # as in a forked child: the parent's threads are gone
            got = counter_fill_(torch.empty(3000), d, seed=0, name="p", threads=3, chunk_size=128)
            assert torch.equal(got, ref)
            assert torch.get_num_threads() == 2
            seen = []
            t = threading.Thread(target=lambda seen=seen: seen.append(torch.get_num_threads()))
            t.start()
            t.join()
            assert seen == [2]
    finally:
        torch.set_num_threads(prev)


def test_block_runs_merge_full_trailing_dims():
    starts, run = block_runs((6, 4, 5), (2, 0, 0), (3, 4, 5))
    assert run == 60 and starts.tolist() == [40]
    starts, run = block_runs((6, 4), (0, 1), (6, 2))
    assert run == 2 and starts.tolist() == [1, 5, 9, 13, 17, 21]
    assert block_runs((), (), ()) == (pytest.approx(np.zeros(1)), 1)


# ------------------------------------------------------------------------------ distributions
N_MOM = 1 << 20


def _check_mean_std(x, mean, std, kurtosis_excess):
    n = x.size
    # sample mean: std sigma/sqrt(n); sample variance: std sigma^2 sqrt(2/(n-1) + kappa/n), kappa
    # the excess kurtosis. 6 sigma: a correct stream fails with probability < 2e-9.
    assert abs(x.mean() - mean) < 6 * std / math.sqrt(n)
    var_sd = std**2 * math.sqrt(2.0 / (n - 1) + kurtosis_excess / n)
    assert abs(x.var(ddof=1) - std**2) < 6 * var_sd


# (stream, dtype): v1 computes in float64; v2 in float32 for float32/bf16/fp16 tensors and in
# float64 for float64 ones (sample_range), so both of v2's compute dtypes are tested
CASES = pytest.mark.parametrize("stream,dtype", [(V1, "float64"), (V2, "float64"),
                                                  (V2, "float32")])


def _draw(d, n, stream, dtype, seed, name):
    if dtype == "float64":
        return sample_range(d, seed=seed, name=name, start=0, stop=n, stream=stream)
    return counter_sample(d, (n,), seed=seed, name=name, dtype=dtype,
                          stream=stream).astype(np.float64)


@CASES
def test_normal_moments_tails_and_symmetry(stream, dtype):
    x = _draw(Normal(0.0, 1.0), N_MOM, stream, dtype, 11, "m")
    _check_mean_std(x, 0.0, 1.0, 0.0)
    # P(|z| > 3) = 2 ndtr(-3) = 0.0027; binomial std sqrt(p(1-p)/n)
    p = 2 * special.ndtr(-3.0)
    assert abs(np.mean(np.abs(x) > 3) - p) < 6 * math.sqrt(p * (1 - p) / N_MOM)
    # sign: Bernoulli(1/2), std 0.5/sqrt(n)
    assert abs(np.mean(x > 0) - 0.5) < 6 * 0.5 / math.sqrt(N_MOM)
    # KS against N(0, 1): the statistic of a correct sampler exceeds 1.95/sqrt(n) w.p. 1e-3
    assert stats.kstest(x[:200_000], "norm").statistic < 1.95 / math.sqrt(200_000)
    # the documented largest |z|: v1 -ndtri(2**-54) = 8.21, v2 sqrt(2) erfinv(1 - 2**-24) = 5.42
    zmax = -special.ndtri(2.0**-54) if stream == V1 else math.sqrt(2) * special.erfinv(
        1 - 2.0**-24)
    assert np.abs(x).max() <= zmax * (1 + 1e-6)


@CASES
def test_uniform_and_truncated_moments(stream, dtype):
    u = _draw(Uniform(-1.0, 3.0), N_MOM, stream, dtype, 1, "u")
    assert u.min() >= -1.0 and u.max() <= 3.0
    _check_mean_std(u, 1.0, 4.0 / math.sqrt(12.0), -1.2)  # uniform excess kurtosis -6/5
    # KS against U(-1, 3) (1e-3 critical value as above)
    assert stats.kstest(u[:200_000], "uniform", args=(-1.0, 4.0)).statistic < 1.95 / math.sqrt(
        200_000)
    for d in (TruncatedNormal(0.0, 1.0, -2.0, 2.0), TruncatedNormal(1.0, 0.5, 1.75, 3.0)):
        x = _draw(d, N_MOM, stream, dtype, 1, "t")
        assert x.min() >= d.a and x.max() <= d.b
        m, s = d.moments()
        alpha, beta = (d.a - d.mean) / d.std, (d.b - d.mean) / d.std
        k = float(stats.truncnorm.stats(alpha, beta, moments="k"))
        _check_mean_std(x, m, s, k)
        ks = stats.kstest(x[:200_000], "truncnorm", args=(alpha, beta, d.mean, d.std))
        assert ks.statistic < 1.95 / math.sqrt(200_000)


@CASES
def test_far_tail_truncated_normal_stays_in_bounds_and_is_not_degenerate(stream, dtype):
    x = _draw(TruncatedNormal(0.0, 1.0, 6.0, 7.0), 10000, stream, dtype, 0, "t")
    assert x.min() >= 6.0 and x.max() <= 7.0
    # conditional mean of N(0,1) on [6, 7]: (pdf(6) - pdf(7)) / (ndtr(7) - ndtr(6))
    m = (stats.norm.pdf(6) - stats.norm.pdf(7)) / (special.ndtr(-6) - special.ndtr(-7))
    assert abs(x.mean() - m) < 0.01  # std of x is ~0.16, so the mean's std is 0.0016
    assert len(np.unique(x)) > 9000  # not collapsed onto a coarse grid


# ------------------------------------------------------------------------------ torch tensors
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
def test_counter_fill_casts_last_and_keeps_bounds_v1(dtype):
    d = TruncatedNormal(0.0, 1.0, -0.1, 0.1)
    t = counter_fill_(torch.empty(20000, dtype=dtype), d, seed=0, name="b", stream=V1)
    assert t.dtype == dtype
    assert float(t.min()) >= -0.1 and float(t.max()) <= 0.1
    x64 = torch.from_numpy(sample_range(d, seed=0, name="b", start=0, stop=20000, stream=V1))
    ref = x64.to(dtype)
    lo, hi = float(ref.min()), float(ref.max())
    inside = (ref.double() >= -0.1) & (ref.double() <= 0.1)
    # where rounding stayed inside the bounds the fill is exactly the rounded float64 value
    assert torch.equal(t[inside], ref[inside])
    assert lo < 0 < hi
    # unbounded: exactly torch's own cast of the float64 values (float64 -> float32 -> dtype)
    n = counter_fill_(torch.empty(7, 3000, dtype=dtype), Normal(0.0, 3.0), seed=1, name="n",
                      threads=2, chunk_size=999, stream=V1)
    x64 = torch.from_numpy(sample_range(Normal(0.0, 3.0), seed=1, name="n", start=0, stop=21000,
                                        stream=V1))
    assert torch.equal(n.view(-1), x64.to(dtype))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_v2_half_precision_is_the_float32_value_cast_and_keeps_bounds(dtype):
    for d in (TruncatedNormal(0.0, 1.0, -0.1, 0.1), Uniform(-0.1, 0.1), Normal(0.0, 3.0)):
        t = counter_fill_(torch.empty(7, 3000, dtype=dtype), d, seed=0, name="b", threads=2,
                          chunk_size=999)
        ref = counter_fill_(torch.empty(7, 3000), d, seed=0, name="b").to(dtype)
        if isinstance(d, Normal):
            assert torch.equal(t, ref)
            continue
        assert float(t.min()) >= -0.1 and float(t.max()) <= 0.1
        inside = (ref.double() >= -0.1) & (ref.double() <= 0.1)
        assert torch.equal(t[inside], ref[inside]) and inside.float().mean() > 0.99


# ------------------------------------------------------------------------------ v2 and v1
def test_v2_is_the_default_and_differs_from_v1():
    assert COUNTER_STREAM_VERSION == V2 == "philox4x64-10-u32-erfinv-v2"
    assert STREAM_VERSIONS == (V1, V2)
    d = Normal(0.0, 1.0)
    a = counter_fill_(torch.empty(64, 64), d, seed=0, name="w")
    assert torch.equal(a, counter_fill_(torch.empty(64, 64), d, seed=0, name="w", stream=V2))
    b = counter_fill_(torch.empty(64, 64), d, seed=0, name="w", stream=V1)
    assert not torch.isclose(a, b).any()  # independent draws: no element agrees


def test_v1_values_unchanged_by_v2():
    """v1 stays reproducible: its values are recomputed here from the raw words and SciPy."""
    w = philox_words(3, "layer.weight", 0, 4096)
    t = w >> np.uint64(11)
    v = (t | np.uint64(1)).astype(np.float64) * 2.0**-54
    z = np.where((t & np.uint64(1)) == 1, -special.ndtri(v), special.ndtri(v))
    got = counter_fill_(torch.empty(64, 64, dtype=torch.float64), Normal(0.0, 1.0), seed=3,
                        name="layer.weight", stream=V1)
    assert np.array_equal(got.numpy().ravel(), z)


def test_v2_torch_philox_equals_numpy_philox():
    """The device path (integer tensor ops) gives NumPy's Philox4x64-10 words bit for bit, at
    any start and length (blocks of 4 words, counters crossing 2**32)."""
    from initlab.scale import philox_words_torch

    for seed, start, count in [(0, 0, 1), (0, 3, 1000), (7, 4097, 513), (1, 2**34 + 5, 99)]:
        key = stream_key(seed, "w")
        ref = philox_words(seed, "w", start, start + count)
        got = philox_words_torch(key, start, count, "cpu").numpy().view(np.uint64)
        assert np.array_equal(got, ref), (seed, start, count)


def _v2_reference(seed, name, n):
    """v2's definition recomputed in NumPy from the raw words: element bits, signed top 24."""
    w = philox_words(seed, name, 0, (n + 1) // 2)
    b = np.stack([w & np.uint64(0xFFFFFFFF), w >> np.uint64(32)], 1).ravel()[:n]
    return (b.astype(np.uint32).view(np.int32) >> 8).astype(np.int64)  # signed, exact


def test_v2_definition_uniform_bit_exact_and_normal_within_ulps():
    n = 1 << 16
    s = _v2_reference(5, "p", n)
    # uniform: two float32 operations, reproduced bit for bit by NumPy's float32 arithmetic
    lo, hi = -0.3, 0.7
    span = hi - lo
    ref = s.astype(np.float32) * np.float32(span * 2.0**-24) + np.float32(lo + span / 2)
    ref = np.clip(ref, np.float32(-0.3), np.nextafter(np.float32(0.7), np.float32(0)))
    got = counter_fill_(torch.empty(n), Uniform(lo, hi), seed=5, name="p").numpy()
    assert np.array_equal(got, ref)
    # normal: y = (2 s + 1) 2**-24 exactly, x = sqrt(2) erfinv(y): float32 torch vs the float64
    # SciPy value of the same y, rounded; the float32 erfinv is within a few ulps
    y = (2 * s + 1) * 2.0**-24
    exact = (math.sqrt(2) * special.erfinv(y)).astype(np.float32)
    got = counter_fill_(torch.empty(n), Normal(0.0, 1.0), seed=5, name="p").numpy()
    ulps = np.abs(got.view(np.int32).astype(np.int64) - exact.view(np.int32).astype(np.int64))
    assert ulps.max() <= 2, ulps.max()  # measured: 1 over all 2**24 values of y (AVX2)
    # float64 tensors: the same y in float64, within 2 ulps of SciPy
    got64 = counter_fill_(torch.empty(n, dtype=torch.float64), Normal(0.0, 1.0), seed=5,
                          name="p").numpy()
    exact64 = math.sqrt(2) * special.erfinv(y)
    ulps64 = np.abs(got64.view(np.int64) - exact64.view(np.int64))
    assert ulps64.max() <= 4, ulps64.max()  # measured: 3


FAST_PATH_DISTS = [Normal(0.0, 1.0), Normal(0.25, 2.0), Uniform(-1.0, 1.0), Uniform(-0.3, 0.7),
                   Uniform(0.0, 1e-3), TruncatedNormal(0.0, 1.0, -2.0, 2.0),
                   TruncatedNormal(0.1, 0.02, 0.06, 0.14), TruncatedNormal(0.0, 1.0, 1.5, 4.0),
                   TruncatedNormal(0.0, 1.0, 6.0, 9.0), TruncatedNormal(0.3, 0.0, -1.0, 1.0)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_v2_cpu_fast_path_equals_the_generic_transform(dtype):
    """CpuTransform (fewer passes, in place) gives transform()'s values bit for bit: the
    generic path (every op as the definition reads, also the one other devices run) is
    recomputed here from the element bits, clipped and cast like fill_block_ does."""
    from initlab.scale.counter import bounds
    from initlab.scale.sharded import _torch_bounds
    from initlab.scale.torch_stream import BitReader, CpuTransform, compute_dtype, transform

    n, start = 70001, 12345
    for d in FAST_PATH_DISTS:
        cdt = compute_dtype(d, dtype)
        got = counter_fill_(torch.empty(n, dtype=dtype), d, seed=9, name="f",
                            global_shape=(start + n,), offsets=(start,), chunk_size=4099,
                            threads=2)
        x = transform(d, BitReader(stream_key(9, "f"), "cpu").read(start, n), cdt)
        if bounds(d) is not None:
            x = x.clamp(*_torch_bounds(bounds(d), dtype))
        assert torch.equal(got, x.to(dtype)), d
        assert CpuTransform.applies(d, cdt, torch.device("cpu")) == (cdt == torch.float32)


def test_unknown_stream_version_refused_everywhere():
    from initlab.scale import check_stream, rng_for_stream

    with pytest.raises(InitlabError, match=r"`stream` must be a counter-stream version"):
        counter_fill_(torch.empty(3), Normal(0, 1), seed=0, name="w", stream="philox-v9")
    with pytest.raises(InitlabError, match=r"`stream` must be a counter-stream version"):
        sample_range(Normal(0, 1), seed=0, name="w", start=0, stop=3, stream="v3")
    with pytest.raises(InitlabError, match=r"philox-v9"):
        rng_for_stream("philox-v9+initlab-torch-v1")
    assert check_stream(None) == V2
    assert rng_for_stream(V1) == f"counter:{V1}"
    with pytest.raises(InitlabTypeError, match=r"`version` must be a stream version string"):
        rng_for_stream(None)


def test_apply_selects_versions_and_a_report_reproduces_its_own():
    from initlab.scale import rng_for_stream

    plan = Plan([Rule("*.bias", initlab.get("zeros")), Rule("*", initlab.get("he_normal"))])
    a, b, c = (torch.nn.Sequential(torch.nn.Linear(7, 13)) for _ in range(3))
    rep = initlab.apply(a, plan, seed=4, rng="counter")
    assert rep.stream_version.split("+")[0] == V2
    old = initlab.apply(b, plan, seed=4, rng=f"counter:{V1}")
    assert old.stream_version.split("+")[0] == V1
    again = initlab.apply(c, plan, seed=4, rng=rng_for_stream(old.stream_version))
    assert torch.equal(c[0].weight, b[0].weight) and not torch.equal(a[0].weight, b[0].weight)
    assert again.stream_version == old.stream_version
    ref = counter_fill_(torch.empty(13, 7), initlab.get("he_normal"), seed=4, name="0.weight",
                        stream=V1)
    assert torch.equal(b[0].weight.detach(), ref)


@pytest.mark.skipif(not torch.cuda.is_available(),
                    reason="no CUDA device on this machine: the CUDA path of the counter stream "
                           "is untested here (see BENCHMARKS.md)")
def test_cuda_matches_cpu():
    """On a GPU: words and uniforms bit-identical to the CPU, normals within 4 float32 ulps
    (erfinv differs between CPU and CUDA), every sharding equal to the full tensor."""
    from initlab.scale import philox_words_torch

    key = stream_key(0, "w")
    assert torch.equal(philox_words_torch(key, 5, 10007, "cuda").cpu(),
                       philox_words_torch(key, 5, 10007, "cpu"))
    u = Uniform(-1.0, 1.0)
    for dtype in (torch.float32, torch.bfloat16):
        cpu = counter_fill_(torch.empty(513, 77, dtype=dtype), u, seed=0, name="w")
        gpu = counter_fill_(torch.empty(513, 77, dtype=dtype, device="cuda"), u, seed=0, name="w")
        assert torch.equal(gpu.cpu(), cpu)
    for d in (Normal(0.0, 1.0), TruncatedNormal(0.0, 1.0, -2.0, 2.0)):
        cpu = counter_fill_(torch.empty(513, 77), d, seed=0, name="w")
        gpu = counter_fill_(torch.empty(513, 77, device="cuda"), d, seed=0, name="w").cpu()
        ulps = (gpu.view(torch.int32).long() - cpu.view(torch.int32).long()).abs()
        assert int(ulps.max()) <= 4
        part = counter_fill_(torch.empty(513, 30, device="cuda"), d, seed=0, name="w",
                             global_shape=(513, 77), offsets=(0, 40))
        full = counter_fill_(torch.empty(513, 77, device="cuda"), d, seed=0, name="w")
        assert torch.equal(part, full[:, 40:70])


def test_counter_fill_shard_equals_full_slice_and_shards_differ():
    d = initlab.get("he_normal").resolve((33, 17))
    full = counter_fill_(torch.empty(33, 17), d, seed=0, name="fc.weight")
    a = counter_fill_(torch.empty(33, 9), d, seed=0, name="fc.weight", global_shape=(33, 17),
                      offsets=(0, 0))
    b = counter_fill_(torch.empty(33, 8), d, seed=0, name="fc.weight", global_shape=(33, 17),
                      offsets=(0, 9))
    assert torch.equal(torch.cat([a, b], 1), full)
    assert not torch.equal(a[:, :8], b)


def test_placements_with_explicit_coordinates_tile_the_tensor():
    from torch.distributed.tensor import Replicate, Shard

    d = Uniform(-1.0, 1.0)
    g = (13, 7)
    full = counter_fill_(torch.empty(g), d, seed=1, name="w")
    placements = (Shard(0), Shard(1))
    got = torch.full(g, float("nan"))
    for c0 in range(2):
        for c1 in range(3):
            shape, offs = shard_layout(g, placements, (2, 3), (c0, c1))
            local = counter_fill_(torch.empty(shape), d, seed=1, name="w", global_shape=g,
                                  placements=placements, mesh_shape=(2, 3), coordinate=(c0, c1))
            got[offs[0]:offs[0] + shape[0], offs[1]:offs[1] + shape[1]] = local
    assert torch.equal(got, full)
    rep = counter_fill_(torch.empty(g), d, seed=1, name="w", placements=(Replicate(),),
                        mesh_shape=(4,), coordinate=(3,))
    assert torch.equal(rep, full)


def test_shard_layout_matches_torch():
    from torch.distributed.tensor import Replicate, Shard
    from torch.distributed.tensor._utils import _compute_local_shape_and_global_offset

    rng = np.random.default_rng(0)
    for _ in range(200):
        nd = int(rng.integers(1, 4))
        g = tuple(int(x) for x in rng.integers(0, 12, size=nd))
        mesh = tuple(int(x) for x in rng.integers(1, 5, size=int(rng.integers(1, 3))))
        pl = [Replicate() if rng.random() < 0.3 else Shard(int(rng.integers(0, nd)))
              for _ in mesh]
        coord = [int(rng.integers(0, m)) for m in mesh]
        mine = shard_layout(g, pl, mesh, coord)
        theirs = _compute_local_shape_and_global_offset(g, mesh, coord, pl)
        assert mine[0] == tuple(theirs[0]), (g, mesh, pl, coord)
        nonempty = [d for d in range(nd) if mine[0][d] > 0]
        assert [mine[1][d] for d in nonempty] == [theirs[1][d] for d in nonempty]


def test_orthogonal_is_full_q_sliced():
    d = initlab.get("orthogonal", gain=1.0).resolve((12, 7))
    full = counter_fill_(torch.empty(12, 7, dtype=torch.float64), d, seed=0, name="q")
    assert torch.allclose(full.T @ full, torch.eye(7, dtype=torch.float64), atol=1e-12)
    part = counter_fill_(torch.empty(5, 7, dtype=torch.float64), d, seed=0, name="q",
                         global_shape=(12, 7), offsets=(4, 0))
    assert torch.equal(part, full[4:9])


def test_threaded_fill_of_a_parameter_that_requires_grad():
    # grad mode is thread-local: worker threads must write under their own no_grad
    p = torch.nn.Parameter(torch.empty(40, 30))
    counter_fill_(p, Normal(0.0, 1.0), seed=0, name="p", threads=2, chunk_size=64)
    ref = counter_fill_(torch.empty(40, 30), Normal(0.0, 1.0), seed=0, name="p")
    assert p.requires_grad and torch.equal(p.detach(), ref)


def test_fill_rows_equals_separate_tensor_and_is_shard_local():
    from initlab.scale import counter_fill_rows_

    init = initlab.get("glorot_uniform")
    packed = torch.zeros(36, 12)
    for i, lab in enumerate("qkv"):
        counter_fill_rows_(packed, init, (12 * i, 12 * (i + 1)), seed=0, name=f"attn/{lab}")
    for i, lab in enumerate("qkv"):
        ref = counter_fill_(torch.empty(12, 12), init, seed=0, name=f"attn/{lab}")
        assert torch.equal(packed[12 * i:12 * (i + 1)], ref)
    # the same through a "shard" (rows 10..25 of the packed tensor) via a DTensor-free path:
    # fill_block_ on the intersection, as each rank does
    shard = torch.zeros(16, 12)
    from initlab.scale.counter import stream_key as key_of
    from initlab.scale.sharded import fill_block_

    d = init.resolve((12, 12))
    fill_block_(shard[:2], d, key=key_of(0, "attn/q"), global_shape=(12, 12), offsets=(10, 0))
    fill_block_(shard[2:14], d, key=key_of(0, "attn/k"), global_shape=(12, 12), offsets=(0, 0))
    fill_block_(shard[14:], d, key=key_of(0, "attn/v"), global_shape=(12, 12), offsets=(0, 0))
    assert torch.equal(shard, packed[10:26])
    with pytest.raises(InitlabError, match=r"`rows` must satisfy"):
        counter_fill_rows_(packed, init, (30, 40), seed=0, name="x")


def test_constant_fill():
    t = counter_fill_(torch.empty(3, 4), Constant(0.5), seed=0, name="c")
    assert torch.equal(t, torch.full((3, 4), 0.5))


def _tiny():
    return torch.nn.Sequential(torch.nn.Embedding(50, 12), torch.nn.Linear(12, 13),
                               torch.nn.LayerNorm(13), torch.nn.Linear(13, 7))


def _plan():
    return Plan([Rule("*.bias", initlab.get("zeros")), Rule("2.weight", initlab.get("ones")),
                 Rule("0.weight", initlab.get("normal", std=0.02)),
                 Rule("*", initlab.get("truncated_normal", std=0.02, a=-0.04, b=0.04))])


def test_apply_counter_is_deterministic_and_reports_the_stream():
    m1, m2 = _tiny(), _tiny()
    r = initlab.apply(m1, _plan(), seed=3, rng="counter")
    initlab.apply(m2, _plan(), seed=3, rng="counter")
    for (n, p1), (_, p2) in zip(m1.named_parameters(), m2.named_parameters()):
        assert torch.equal(p1, p2), n
    assert r.rng == "counter" and r.stream_version.split("+")[0] == COUNTER_STREAM_VERSION
    assert torch.equal(m1[1].bias, torch.zeros(13))
    w = counter_fill_(torch.empty(13, 12), TruncatedNormal(0.0, 0.02, -0.04, 0.04), seed=3,
                      name="1.weight")
    assert torch.equal(m1[1].weight, w)
    # the stream key of a parameter is the hash of (seed, canonical name)
    assert stream_key(3, "module._orig_mod.1.weight") == stable_u64(3, "1.weight")


def test_apply_counter_tied_parameter_initialized_once_under_first_name():
    m = torch.nn.Sequential(torch.nn.Embedding(50, 12), torch.nn.Linear(12, 50, bias=False))
    m[1].weight = m[0].weight
    initlab.apply(m, Plan([Rule("*", initlab.get("normal", std=0.02))]), seed=0, rng="counter")
    assert m[1].weight is m[0].weight
    ref = counter_fill_(torch.empty(50, 12), Normal(0.0, 0.02), seed=0, name="0.weight")
    assert torch.equal(m[1].weight, ref)


def test_apply_counter_backend_matches_counter_fill():
    from initlab.modelinit.rules import Plan, Rule
    from initlab.modelinit.walk import apply

    m = torch.nn.Sequential(torch.nn.Linear(7, 13), torch.nn.Linear(13, 5))
    plan = Plan([Rule("*.bias", initlab.get("zeros")),
                 Rule("*", initlab.get("normal", std=0.1))])
    rep = apply(m, plan, seed=4, rng="counter")
    assert "philox" in rep.stream_version
    for name, p in m.named_parameters():
        if name.endswith("weight"):
            ref = counter_fill_(torch.empty(p.shape), Normal(0.0, 0.1), seed=4, name=name)
            assert torch.equal(p.detach(), ref), name


def test_apply_counter_is_trusted_no_rollback_copy_and_checks_first(monkeypatch):
    from initlab.modelinit import engine
    from initlab.modelinit.walk import RNG_BACKENDS
    from initlab.scale import check_fillable

    assert all(RNG_BACKENDS[k].trusted and RNG_BACKENDS[k].check is check_fillable
               for k in ("counter", f"counter:{V1}", f"counter:{V2}"))
    copied = []
    real_snapshot = engine.snapshot
    monkeypatch.setattr(engine, "snapshot", lambda ts: copied.extend(ts) or real_snapshot(ts))
    initlab.apply(_tiny(), _plan(), seed=0, rng="counter")
    assert copied == []  # apply held no copy of the model
    # the check runs on every tensor before the first write: a refusal leaves the model as it was
    import dataclasses

    def refuse_last(t):
        if t.shape == (13,):  # 1.bias (and the norm), after two random weights
            raise InitlabError("refused")

    monkeypatch.setitem(RNG_BACKENDS, "counter",
                        dataclasses.replace(RNG_BACKENDS["counter"], check=refuse_last))
    m = _tiny()
    before = [p.detach().clone() for p in m.parameters()]
    with pytest.raises(InitlabError, match="refused"):
        initlab.apply(m, _plan(), seed=0, rng="counter")
    assert all(torch.equal(a, b) for a, b in zip(before, m.parameters()))
    with pytest.raises(InitlabError, match=r"`tensor` is on the meta device"):
        check_fillable(torch.empty(3, device="meta"))
    with pytest.raises(InitlabError, match=r"`tensor` must have a floating dtype"):
        check_fillable(torch.zeros(3, dtype=torch.int64))
    with pytest.raises(InitlabTypeError, match=r"`tensor` must be a torch.Tensor or DTensor"):
        check_fillable([1.0])
    check_fillable(torch.empty(3, dtype=torch.bfloat16))


def test_apply_counter_measures_while_drawing_same_values_same_statistics(monkeypatch):
    """The counter source measures (mean, std) chunk by chunk while drawing float32 CPU
    tensors (the report then reads no tensor again); the values are those of counter_fill_ and
    the statistics those of the report's own pass, to ~1e-6 relative."""
    from initlab.modelinit import report as report_mod

    m = torch.nn.Sequential(torch.nn.Linear(300, 700), torch.nn.Linear(700, 5))
    plan = Plan([Rule("*.bias", initlab.get("constant", value=0.25)),
                 Rule("*", initlab.get("normal", std=0.1))])
    read_back = []
    real = report_mod._tensor_moments
    monkeypatch.setattr(report_mod, "_tensor_moments", lambda t: read_back.append(t) or real(t))
    rep = initlab.apply(m, plan, seed=1, rng="counter")
    assert read_back == []
    for name, p in m.named_parameters():
        r = rep[name]
        mean, std = real(p)
        assert r.mean == pytest.approx(mean, rel=1e-6, abs=1e-9), name
        assert r.std == pytest.approx(std, rel=1e-6, abs=1e-9), name
    ref = counter_fill_(torch.empty(700, 300), Normal(0.0, 0.1), seed=1, name="0.weight")
    assert torch.equal(m[0].weight.detach(), ref)
    # a sink only for what it can measure: bf16 (or a shard) leaves it to the report
    sink = []
    counter_fill_(torch.empty(700, 300, dtype=torch.bfloat16), Normal(0.0, 0.1), seed=1,
                  name="w", sink=sink)
    counter_fill_(torch.empty(7, 300), Normal(0.0, 0.1), seed=1, name="w",
                  global_shape=(700, 300), offsets=(0, 0), sink=sink)
    assert sink == []
    counter_fill_(torch.empty(700, 300), Normal(0.0, 0.1), seed=1, name="w", sink=sink,
                  threads=3, chunk_size=1000)
    assert len(sink) == 1


def test_materialize_from_meta_with_counter_equals_apply_on_real_model():
    real = _tiny()
    initlab.apply(real, "he", seed=2, rng="counter")
    with torch.device("meta"):
        meta = _tiny()
    initlab.materialize(meta, "he", device="cpu", seed=2, rng="counter")
    for (n, a), (_, b) in zip(real.named_parameters(), meta.named_parameters()):
        assert torch.equal(a, b), n


# ------------------------------------------------------------------------------ bad input
def test_error_shard_spec_the_tensor_cannot_satisfy():
    from torch.distributed.tensor import Partial, Shard

    with pytest.raises(InitlabError, match=r"`placements` shards dim 2"):
        shard_layout((4, 5), [Shard(2)], (2,), (0,))
    with pytest.raises(InitlabError, match=r"`offsets` put the local block"):
        counter_fill_(torch.empty(3, 3), Normal(0, 1), seed=0, name="w", global_shape=(4, 4),
                      offsets=(2, 0))
    with pytest.raises(InitlabError, match=r"`tensor` has shape \(3, 5\), but `placements`"):
        counter_fill_(torch.empty(3, 5), Normal(0, 1), seed=0, name="w", global_shape=(5, 5),
                      placements=[Shard(0)], mesh_shape=(2,), coordinate=(1,))
    with pytest.raises(InitlabError, match=r"`placements` contains Partial"):
        shard_layout((4, 5), [Partial()], (2,), (0,))
    with pytest.raises(InitlabError, match=r"`coordinate` must lie inside"):
        shard_layout((4, 5), [Shard(0)], (2,), (2,))


def test_error_process_group_not_initialized():
    from torch.distributed.tensor import Shard

    assert not torch.distributed.is_initialized()
    with pytest.raises(InitlabError, match=r"`process group` must be initialized"):
        counter_fill_(torch.empty(2, 5), Normal(0, 1), seed=0, name="w", global_shape=(4, 5),
                      placements=[Shard(0)])


def test_error_meta_tensor():
    with pytest.raises(InitlabError, match=r"`tensor` is on the meta device"):
        counter_fill_(torch.empty(3, device="meta"), Normal(0, 1), seed=0, name="w")
    with torch.device("meta"):
        meta = _tiny()
    with pytest.raises(InitlabError, match=r"`model` has parameters on the meta device.*"
                                           r"initlab.materialize"):
        initlab.apply(meta, _plan(), seed=0, rng="counter")


def test_error_bad_arguments():
    with pytest.raises(InitlabTypeError, match=r"`seed` must be a non-negative int"):
        stream_key(1.5, "w")
    with pytest.raises(InitlabError, match=r"`seed` must be >= 0"):
        stream_key(-1, "w")
    with pytest.raises(InitlabTypeError, match=r"`name` must be a non-empty str"):
        stream_key(0, "")
    with pytest.raises(InitlabError, match=r"`threads` must be >= 1; got 0\. Fix: pass "
                       r"threads=1 or more"):
        sample_range(Normal(0, 1), seed=0, name="w", start=0, stop=10, threads=0)
    with pytest.raises(InitlabTypeError, match=r"`threads` must be an integer; got 2\.0"):
        sample_range(Normal(0, 1), seed=0, name="w", start=0, stop=10, threads=2.0)
    with pytest.raises(InitlabTypeError, match=r"`chunk_size` must be an integer; got True"):
        sample_range(Normal(0, 1), seed=0, name="w", start=0, stop=10, chunk_size=True)
    with pytest.raises(InitlabError, match=r"`stop` must be >= `start`"):
        sample_range(Normal(0, 1), seed=0, name="w", start=5, stop=2)
    with pytest.raises(InitlabError, match=r"`tensor` must have a floating dtype"):
        counter_fill_(torch.empty(3, dtype=torch.int64), Normal(0, 1), seed=0, name="w")
