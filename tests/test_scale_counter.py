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
from initlab.scale import (
    COUNTER_STREAM_VERSION,
    counter_fill_,
    counter_sample,
    init_model,
    philox_words,
    sample_range,
    shard_layout,
    stream_key,
)
from initlab.scale.counter import block_runs
from initlab.util.hashing import stable_u64

ELEMENTWISE = [Normal(0.25, 2.0), Uniform(-0.3, 0.7), TruncatedNormal(0.0, 1.0, -2.0, 2.0),
               TruncatedNormal(0.0, 1.0, 1.5, 4.0)]


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


def test_sample_range_slice_equals_full_slice():
    rng = np.random.default_rng(1)
    for dist in ELEMENTWISE:
        full = sample_range(dist, seed=2, name="p", start=0, stop=5000)
        for _ in range(10):
            a, b = sorted(rng.integers(0, 5001, size=2).tolist())
            part = sample_range(dist, seed=2, name="p", start=a, stop=b, chunk_size=97)
            assert np.array_equal(part, full[a:b])


def test_pinned_first_values_of_the_stream():
    # Recomputes the documented definition from the raw words; a failure means the stream
    # changed (bump COUNTER_STREAM_VERSION).
    w = philox_words(0, "w", 0, 8)
    t = w >> np.uint64(11)
    v = (t | np.uint64(1)).astype(np.float64) * 2.0**-54
    expect = np.where((t & np.uint64(1)) == 1, -special.ndtri(v), special.ndtri(v))
    got = sample_range(Normal(0.0, 1.0), seed=0, name="w", start=0, stop=8)
    assert np.array_equal(got, expect)
    assert COUNTER_STREAM_VERSION == "philox4x64-10-ndtri-v1"


@pytest.mark.parametrize("dist", ELEMENTWISE, ids=repr)
def test_block_equals_full_slice(dist):
    g = (13, 7, 5)
    full = counter_sample(dist, g, seed=0, name="x", dtype="float64")
    rng = np.random.default_rng(2)
    for _ in range(12):
        offs, loc = [], []
        for n in g:
            a, b = sorted(rng.integers(0, n + 1, size=2).tolist())
            offs.append(a)
            loc.append(b - a)
        blk = counter_sample(dist, g, seed=0, name="x", offsets=offs, local_shape=loc,
                             dtype="float64", chunk_size=11)
        sl = tuple(slice(a, a + n) for a, n in zip(offs, loc))
        assert np.array_equal(blk, full[sl])


@pytest.mark.parametrize("g,offs,loc", [
    ((40, 30), (0, 3), (40, 17)),      # narrow gaps: covering range + gather
    ((40, 2000), (5, 10), (30, 10)),   # wide gaps: one jump per row
    ((4, 6, 500), (1, 2, 300), (2, 3, 7)),
])
def test_thread_and_chunk_independence(g, offs, loc):
    dist = Normal(0.0, 1.0)
    ref = counter_sample(dist, g, seed=5, name="t", offsets=offs, local_shape=loc,
                         dtype="float64", threads=1, chunk_size=1 << 20)
    full = counter_sample(dist, g, seed=5, name="t", dtype="float64")
    assert np.array_equal(ref, full[tuple(slice(a, a + n) for a, n in zip(offs, loc))])
    for threads in (1, 2, 3):
        for chunk in (1, 7, 64, 1000):
            got = counter_sample(dist, g, seed=5, name="t", offsets=offs, local_shape=loc,
                                 dtype="float64", threads=threads, chunk_size=chunk)
            assert np.array_equal(got, ref), (threads, chunk)


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


def test_normal_moments_tails_and_symmetry():
    x = sample_range(Normal(0.0, 1.0), seed=11, name="m", start=0, stop=N_MOM)
    _check_mean_std(x, 0.0, 1.0, 0.0)
    # P(|z| > 3) = 2 ndtr(-3) = 0.0027; binomial std sqrt(p(1-p)/n)
    p = 2 * special.ndtr(-3.0)
    assert abs(np.mean(np.abs(x) > 3) - p) < 6 * math.sqrt(p * (1 - p) / N_MOM)
    # sign: Bernoulli(1/2), std 0.5/sqrt(n)
    assert abs(np.mean(x > 0) - 0.5) < 6 * 0.5 / math.sqrt(N_MOM)
    # KS against N(0, 1): the statistic of a correct sampler exceeds 1.95/sqrt(n) w.p. 1e-3
    assert stats.kstest(x[:200_000], "norm").statistic < 1.95 / math.sqrt(200_000)


def test_uniform_and_truncated_moments():
    u = sample_range(Uniform(-1.0, 3.0), seed=1, name="u", start=0, stop=N_MOM)
    assert u.min() >= -1.0 and u.max() < 3.0
    _check_mean_std(u, 1.0, 4.0 / math.sqrt(12.0), -1.2)  # uniform excess kurtosis -6/5
    for d in (TruncatedNormal(0.0, 1.0, -2.0, 2.0), TruncatedNormal(1.0, 0.5, 1.75, 3.0)):
        x = sample_range(d, seed=1, name="t", start=0, stop=N_MOM)
        assert x.min() >= d.a and x.max() <= d.b
        m, s = d.moments()
        alpha, beta = (d.a - d.mean) / d.std, (d.b - d.mean) / d.std
        k = float(stats.truncnorm.stats(alpha, beta, moments="k"))
        _check_mean_std(x, m, s, k)


def test_far_tail_truncated_normal_stays_in_bounds_and_is_not_degenerate():
    x = sample_range(TruncatedNormal(0.0, 1.0, 6.0, 7.0), seed=0, name="t", start=0, stop=10000)
    assert x.min() >= 6.0 and x.max() <= 7.0
    # conditional mean of N(0,1) on [6, 7]: (pdf(6) - pdf(7)) / (ndtr(7) - ndtr(6))
    m = (stats.norm.pdf(6) - stats.norm.pdf(7)) / (special.ndtr(-6) - special.ndtr(-7))
    assert abs(x.mean() - m) < 0.01  # std of x is ~0.16, so the mean's std is 0.0016


# ------------------------------------------------------------------------------ torch tensors
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
def test_counter_fill_casts_last_and_keeps_bounds(dtype):
    d = TruncatedNormal(0.0, 1.0, -0.1, 0.1)
    t = counter_fill_(torch.empty(20000, dtype=dtype), d, seed=0, name="b")
    assert t.dtype == dtype
    assert float(t.min()) >= -0.1 and float(t.max()) <= 0.1
    x64 = torch.from_numpy(sample_range(d, seed=0, name="b", start=0, stop=20000))
    ref = x64.to(dtype)
    lo, hi = float(ref.min()), float(ref.max())
    inside = (ref.double() >= -0.1) & (ref.double() <= 0.1)
    # where rounding stayed inside the bounds the fill is exactly the rounded float64 value
    assert torch.equal(t[inside], ref[inside])
    assert lo < 0 < hi
    # unbounded: exactly torch's own cast of the float64 values (float64 -> float32 -> dtype)
    n = counter_fill_(torch.empty(7, 3000, dtype=dtype), Normal(0.0, 3.0), seed=1, name="n",
                      threads=2, chunk_size=999)
    x64 = torch.from_numpy(sample_range(Normal(0.0, 3.0), seed=1, name="n", start=0, stop=21000))
    assert torch.equal(n.view(-1), x64.to(dtype))


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


PLAN = {"*.bias": "zeros", "2.weight": "ones", "0.weight": initlab.get("normal", std=0.02),
        "*": initlab.get("truncated_normal", std=0.02, a=-0.04, b=0.04)}


def test_init_model_is_deterministic_and_reports():
    m1, m2 = _tiny(), _tiny()
    r = init_model(m1, PLAN, seed=3)
    init_model(m2, PLAN, seed=3)
    for (n, p1), (_, p2) in zip(m1.named_parameters(), m2.named_parameters()):
        assert torch.equal(p1, p2), n
    assert r["1.weight"]["stream"] == COUNTER_STREAM_VERSION
    assert r["1.weight"]["seed"] == 3 and r["1.weight"]["global_shape"] == [13, 12]
    assert torch.equal(m1[1].bias, torch.zeros(13))
    w = counter_fill_(torch.empty(13, 12), TruncatedNormal(0.0, 0.02, -0.04, 0.04), seed=3,
                      name="1.weight")
    assert torch.equal(m1[1].weight, w)


def test_init_model_tied_parameter_initialized_once_under_first_name():
    m = torch.nn.Sequential(torch.nn.Embedding(50, 12), torch.nn.Linear(12, 50, bias=False))
    m[1].weight = m[0].weight
    r = init_model(m, {"*": initlab.get("normal", std=0.02)}, seed=0)
    assert list(r) == ["0.weight"]
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


def test_error_meta_and_mixed_meta_real():
    with torch.device("meta"):
        meta = _tiny()
    with pytest.raises(InitlabError, match=r"has 7 parameter\(s\) on the meta device"):
        init_model(meta, PLAN, seed=0)
    mixed = _tiny()
    with torch.device("meta"):
        mixed[3] = torch.nn.Linear(13, 7)
    with pytest.raises(InitlabError, match=r"mixes 2 meta-device parameter\(s\) with 5 real"):
        init_model(mixed, PLAN, seed=0)
    with pytest.raises(InitlabError, match=r"`tensor` is on the meta device"):
        counter_fill_(torch.empty(3, device="meta"), Normal(0, 1), seed=0, name="w")


def test_error_name_collision():
    class Wrapped(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(3, 3)
            self._orig_mod = torch.nn.ModuleDict({"fc": torch.nn.Linear(3, 3)})

    with pytest.raises(InitlabError, match=r"same canonical name `fc.weight`"):
        init_model(Wrapped(), {"*": "zeros"}, seed=0)


def test_error_bad_arguments():
    with pytest.raises(InitlabTypeError, match=r"`seed` must be a non-negative int"):
        stream_key(1.5, "w")
    with pytest.raises(InitlabError, match=r"`seed` must be >= 0"):
        stream_key(-1, "w")
    with pytest.raises(InitlabTypeError, match=r"`name` must be a non-empty str"):
        stream_key(0, "")
    with pytest.raises(InitlabError, match=r"`threads` must be an int >= 1"):
        sample_range(Normal(0, 1), seed=0, name="w", start=0, stop=10, threads=0)
    with pytest.raises(InitlabError, match=r"`stop` must be >= `start`"):
        sample_range(Normal(0, 1), seed=0, name="w", start=5, stop=2)
    with pytest.raises(InitlabError, match=r"`tensor` must have a floating dtype"):
        counter_fill_(torch.empty(3, dtype=torch.int64), Normal(0, 1), seed=0, name="w")
    with pytest.raises(InitlabError, match=r"`plan` matches no rule for `1.weight`"):
        init_model(_tiny(), {"0.*": "zeros", "2.*": "zeros", "*.bias": "zeros"}, seed=0)


def test_init_model_reports_the_stream_key_it_draws_from():
    m = torch.nn.Sequential(torch.nn.Linear(3, 2))
    rep = initlab.scale.init_model(m, {"*": "zeros"}, seed=7)
    assert rep["0.weight"]["stream_key"] == f"{stream_key(7, '0.weight'):016x}"
    assert rep["0.weight"]["stream_key"] == f"{stable_u64(7, '0.weight'):016x}"
