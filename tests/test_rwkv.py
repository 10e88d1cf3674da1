"""RWKV-4's time-mixing and channel-mixing vectors (:mod:`initlab.modelinit.rwkv`): the rules
every plan gives ``time_decay``, ``time_first`` and the token-shift mixes of Hugging Face's
``RwkvForCausalLM`` and of a module written as the reference code writes it, and the catalog's
``linspace`` (with ``power``/``endpoint``) and ``cycle`` those rules use, in every stream.

Nothing here is random: every value is compared with the formula computed in the test by loops
(float64, then stored as float32: atol 1e-6).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn as nn

import hf_models as hf
import initlab
from initlab.modelinit.rwkv import block_kind, rwkv_blocks

PLANS = ["auto", "he", "orthogonal", "gpt2", "torch_default"]


# ---------------------------------------------------------------- the reference formulas, by loops

def _ref_time(layer, layers, c, h):
    """RWKV-v4neo RWKV_TimeMix.__init__: (decay, first, mix_k, mix_v, mix_r) as lists."""
    r01 = layer / (layers - 1) if layers > 1 else 0.0
    r10 = 1.0 - layer / layers
    decay = [-5 + 8 * (i / (h - 1)) ** (0.7 + 1.3 * r01) for i in range(h)]
    first = [math.log(0.3) + ((i + 1) % 3 - 1) * 0.5 for i in range(h)]
    ddd = [i / c for i in range(c)]
    return (decay, first, [x ** r10 for x in ddd], [x ** r10 + 0.3 * r01 for x in ddd],
            [x ** (0.5 * r10) for x in ddd])


def _ref_channel(layer, layers, c):
    r10 = 1.0 - layer / layers
    ddd = [i / c for i in range(c)]
    return [x ** r10 for x in ddd], [x ** r10 for x in ddd]


def _close(t, want, what):
    got = t.detach().double().reshape(-1).numpy()
    np.testing.assert_allclose(got, np.asarray(want, dtype=np.float64), rtol=0, atol=1e-6,
                               err_msg=what)


def _check_hf(model, what):
    cfg = model.config
    layers = cfg.num_hidden_layers
    for layer, block in enumerate(model.rwkv.blocks):
        a, f = block.attention, block.feed_forward
        decay, first, mk, mv, mr = _ref_time(layer, layers, cfg.hidden_size,
                                             cfg.attention_hidden_size)
        _close(a.time_decay, decay, f"{what}: time_decay {layer}")
        _close(a.time_first, first, f"{what}: time_first {layer}")
        _close(a.time_mix_key, mk, f"{what}: time_mix_key {layer}")
        _close(a.time_mix_value, mv, f"{what}: time_mix_value {layer}")
        _close(a.time_mix_receptance, mr, f"{what}: time_mix_receptance {layer}")
        fk, fr = _ref_channel(layer, layers, cfg.hidden_size)
        _close(f.time_mix_key, fk, f"{what}: ffn time_mix_key {layer}")
        _close(f.time_mix_receptance, fr, f"{what}: ffn time_mix_receptance {layer}")


def _apply(model, plan, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = initlab.apply(model, plan, seed=0, **kw)
    return report, [str(w.message) for w in caught if "matched no rule" in str(w.message)]


# ------------------------------------------------------------------------- Hugging Face's RWKV

@pytest.mark.parametrize("plan", PLANS)
def test_every_plan_starts_rwkv_as_the_reference_code_does(plan):
    """Before: the 21 time_* vectors of a 3-block RWKV matched no rule under every plan (a
    warning each; materialize failed)."""
    model = hf.rwkv()
    with torch.no_grad():   # as if trained: the start comes from the structure, not the tensor
        for n, p in model.named_parameters():
            if ".time_" in n:
                p.fill_(7.0)
    report, unmatched = _apply(model, plan)
    assert not unmatched, unmatched
    _check_hf(model, plan)
    rows = {r.name: r for r in report}
    names = [n for n, _ in model.named_parameters() if ".time_" in n]
    assert len(names) == 21
    for n in names:
        assert rows[n].rule == "rwkv", rows[n]
    assert rows["rwkv.blocks.0.attention.time_first"].initializer.startswith("cycle")
    assert rows["rwkv.blocks.2.attention.time_decay"].initializer.startswith("linspace")
    assert "block 2 of 3" in rows["rwkv.blocks.2.attention.time_decay"].why


def test_the_decays_and_mixes_are_hugging_faces_and_time_first_the_references():
    """Hugging Face's own init (transformers' _init_weights) writes the same decays and mixes;
    its time_first is all ones (``ones_like(time_first * log(0.3) + zigzag)``), where the
    reference code has log(0.3) + zigzag: initlab follows the reference (said in the docs)."""
    theirs = hf.rwkv()
    ours = hf.rwkv()
    initlab.apply(ours, "auto", seed=0)
    a, b = dict(theirs.named_parameters()), dict(ours.named_parameters())
    for n in a:
        if ".time_" in n and not n.endswith("time_first"):
            torch.testing.assert_close(b[n], a[n], rtol=0, atol=1e-6, msg=n)
    first = b["rwkv.blocks.1.attention.time_first"]
    assert not torch.allclose(first, torch.ones_like(first))
    assert first[:3].tolist() == pytest.approx([math.log(0.3), math.log(0.3) + 0.5,
                                               math.log(0.3) - 0.5], abs=1e-6)


def test_the_blocks_read_layer_ids_and_the_configs_depth():
    model = hf.rwkv(num_hidden_layers=4)
    blocks = rwkv_blocks(model)
    assert [(b.kind, b.layer, b.layers) for b in blocks] == [
        (k, i, 4) for i in range(4) for k in ("time", "channel")]
    assert blocks[0].params["mix_v"] == "rwkv.blocks.0.attention.time_mix_value"
    assert "mix_v" not in blocks[1].params and "decay" not in blocks[1].params
    assert blocks[6].r01 == 1.0 and blocks[6].r10 == 0.25


def test_materialize_a_meta_rwkv_equals_apply_bit_for_bit():
    ref = hf.rwkv()
    initlab.apply(ref, "auto", seed=0)
    with torch.device("meta"):
        m = hf.rwkv()
    initlab.materialize(m, "auto", seed=0, device="cpu")   # was: 21 unmatched, an error
    for (name, a), b in zip(ref.state_dict().items(), m.state_dict().values()):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("name", ["mup", "ntk"])
def test_width_parametrizations_keep_rwkvs_vectors(name):
    """The time_* vectors are vector-like (no parametrization rescales them): each starts as
    the reference has it at the target width."""
    model = hf.rwkv(hidden_size=64, attention_hidden_size=64, intermediate_size=128)
    par = initlab.parametrize(model, name, seed=0,
                              base=lambda: hf.rwkv(hidden_size=32, attention_hidden_size=32,
                                                   intermediate_size=64))
    _check_hf(model, name)
    for n, _ in model.named_parameters():
        if ".time_" in n:
            assert par[n].multiplier == 1.0, (n, par[n])


def test_lsuv_keeps_rwkvs_vectors():
    model = hf.rwkv()
    ids = torch.randint(0, 64, (4, 16), generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        initlab.lsuv(model, {"input_ids": ids}, seed=0)
    _check_hf(model, "lsuv")


# ------------------------------------------------------------ a module written as the reference

class Args:
    n_layer = 3
    n_embd = 12
    dim_att = 12
    dim_ffn = 24


class TimeMix(nn.Module):
    """RWKV-v4neo's RWKV_TimeMix: its names (time_mix_k/v/r), ``layer_id`` and ``args``."""

    def __init__(self, args, layer_id):
        super().__init__()
        self.args, self.layer_id = args, layer_id
        c, h = args.n_embd, args.dim_att
        self.time_decay = nn.Parameter(torch.zeros(h))
        self.time_first = nn.Parameter(torch.zeros(h))
        self.time_mix_k = nn.Parameter(torch.zeros(1, 1, c))
        self.time_mix_v = nn.Parameter(torch.zeros(1, 1, c))
        self.time_mix_r = nn.Parameter(torch.zeros(1, 1, c))
        self.key, self.value = nn.Linear(c, h, bias=False), nn.Linear(c, h, bias=False)
        self.receptance = nn.Linear(c, h, bias=False)
        self.output = nn.Linear(h, c, bias=False)

    def forward(self, x):
        xx = nn.functional.pad(x, (0, 0, 1, -1))
        k = self.key(x * self.time_mix_k + xx * (1 - self.time_mix_k))
        v = self.value(x * self.time_mix_v + xx * (1 - self.time_mix_v))
        r = self.receptance(x * self.time_mix_r + xx * (1 - self.time_mix_r))
        w = torch.exp(-torch.exp(self.time_decay))
        return self.output(torch.sigmoid(r) * (k * w + self.time_first * v))


class ChannelMix(nn.Module):
    def __init__(self, args, layer_id):
        super().__init__()
        self.args, self.layer_id = args, layer_id
        c = args.n_embd
        self.time_mix_k = nn.Parameter(torch.zeros(1, 1, c))
        self.time_mix_r = nn.Parameter(torch.zeros(1, 1, c))
        self.key = nn.Linear(c, args.dim_ffn, bias=False)
        self.receptance = nn.Linear(c, c, bias=False)
        self.value = nn.Linear(args.dim_ffn, c, bias=False)

    def forward(self, x):
        xx = nn.functional.pad(x, (0, 0, 1, -1))
        k = self.key(x * self.time_mix_k + xx * (1 - self.time_mix_k))
        r = self.receptance(x * self.time_mix_r + xx * (1 - self.time_mix_r))
        return torch.sigmoid(r) * self.value(torch.square(torch.relu(k)))


class Block(nn.Module):
    def __init__(self, args, layer_id):
        super().__init__()
        if layer_id == 0:   # the reference's optional pre-FFN of block 0 (``ffnPre``)
            self.ffnPre = ChannelMix(args, 0)
        self.att, self.ffn = TimeMix(args, layer_id), ChannelMix(args, layer_id)

    def forward(self, x):
        if hasattr(self, "ffnPre"):
            x = x + self.ffnPre(x)
        return x + self.ffn(x + self.att(x))


def test_a_users_rwkv_written_as_the_reference_code_writes_it():
    args = Args()
    model = nn.Sequential(*[Block(args, i) for i in range(args.n_layer)])
    report, unmatched = _apply(model, "auto")
    assert not unmatched, unmatched
    for i, block in enumerate(model):
        decay, first, mk, mv, mr = _ref_time(i, 3, 12, 12)
        _close(block.att.time_decay, decay, f"decay {i}")
        _close(block.att.time_first, first, f"first {i}")
        _close(block.att.time_mix_k, mk, f"mix_k {i}")
        _close(block.att.time_mix_v, mv, f"mix_v {i}")
        _close(block.att.time_mix_r, mr, f"mix_r {i}")
        fk, fr = _ref_channel(i, 3, 12)
        _close(block.ffn.time_mix_k, fk, f"ffn mix_k {i}")
        _close(block.ffn.time_mix_r, fr, f"ffn mix_r {i}")
    # the pre-FFN says layer_id 0: block 0's channel mixes, though it is a fourth channel block
    fk, _ = _ref_channel(0, 3, 12)
    _close(model[0].ffnPre.time_mix_k, fk, "ffnPre")
    assert rows_rule(report, "0.ffnPre.time_mix_r") == "rwkv"


def rows_rule(report, name):
    return {r.name: r for r in report}[name].rule


def test_without_layer_ids_the_blocks_position_and_count_decide():
    class Bare(TimeMix):
        def __init__(self):
            super().__init__(Args(), 0)
            del self.layer_id, self.args

    model = nn.Sequential(Bare(), Bare())
    _, unmatched = _apply(model, "he")
    assert not unmatched
    for i in range(2):   # L = 2 blocks found
        decay, first, mk, mv, mr = _ref_time(i, 2, 12, 12)
        _close(model[i].time_decay, decay, f"decay {i}")
        _close(model[i].time_mix_v, mv, f"mix_v {i}")
    # a layer_id beyond the depth it states is not believed: position and count again
    blk = TimeMix(Args(), 7)
    assert [(b.layer, b.layers) for b in rwkv_blocks(nn.Sequential(blk))] == [(0, 1)]


def test_a_lookalike_is_not_a_block():
    class Decay(nn.Module):   # a decay and a bonus without the three mixes
        def __init__(self):
            super().__init__()
            self.time_decay = nn.Parameter(torch.zeros(4))
            self.time_first = nn.Parameter(torch.zeros(4))

    class ThreeMixes(nn.Module):   # all three mixes but no decay: not a channel mix
        def __init__(self):
            super().__init__()
            for n in ("time_mix_k", "time_mix_v", "time_mix_r"):
                setattr(self, n, nn.Parameter(torch.zeros(4)))

    assert block_kind(Decay()) is None and block_kind(ThreeMixes()) is None
    assert block_kind(TimeMix(Args(), 0)) == "time"
    assert block_kind(ChannelMix(Args(), 0)) == "channel"
    assert rwkv_blocks(nn.Sequential(Decay(), ThreeMixes())) == []


# ----------------------------------------------------------------- linspace power/endpoint, cycle

def _counter(ini, shape, name):
    from initlab.scale.sharded import counter_fill_

    full = torch.empty(shape)
    counter_fill_(full, ini, seed=0, name=name)
    if shape[-1] > 2:
        part = torch.empty(*shape[:-1], 2)
        counter_fill_(part, ini, seed=0, name=name, global_shape=shape,
                      offsets=(0,) * (len(shape) - 1) + (1,))
        assert torch.equal(part, full[..., 1:3])
    return full


def _check_everywhere(ini, shape, want, name):
    """NumPy, torch's generator path and the counter stream (whole and sharded) give ``want``;
    the moments are its own; the initializer rebuilt from its dict draws the same."""
    np.testing.assert_allclose(ini.sample(shape, seed=0, dtype="float64"), want, rtol=0,
                               atol=1e-14)
    t = torch.empty(shape, dtype=torch.float64)
    initlab.torch.init_(t, ini, generator=torch.Generator().manual_seed(0))
    np.testing.assert_allclose(t.numpy(), want, rtol=0, atol=1e-14)
    np.testing.assert_allclose(_counter(ini, shape, name).numpy(), want.astype(np.float32),
                               rtol=0, atol=1e-6)
    m, s = ini.resolve(shape).moments(shape)
    assert m == pytest.approx(want.mean(), abs=1e-12) and s == pytest.approx(want.std(), abs=1e-12)
    back = initlab.from_dict(ini.to_dict())
    np.testing.assert_array_equal(back.sample(shape, seed=0, dtype="float64"),
                                  ini.sample(shape, seed=0, dtype="float64"))


@pytest.mark.parametrize(("shape", "kw"), [
    ((5,), {"start": -5.0, "end": 3.0, "power": 1.7}),
    ((2, 6), {"start": 0.0, "end": 1.0, "power": 0.4, "endpoint": False}),
    ((1, 1, 7), {"start": 0.3, "end": 1.3, "power": 1.0, "endpoint": False}),
    ((3, 1), {"start": 2.0, "end": 9.0, "power": 2.5})])
def test_a_warped_or_open_ramp_is_the_same_everywhere(shape, kw):
    ini = initlab.get("linspace", **kw)
    n = shape[-1]
    den = (n - 1 if kw.get("endpoint", True) else n) or 1
    row = [kw["start"] + (kw["end"] - kw["start"]) * (i / den) ** kw["power"] for i in range(n)]
    _check_everywhere(ini, shape, np.broadcast_to(np.asarray(row), shape), "x.time_decay")


@pytest.mark.parametrize("shape", [(7,), (2, 5), (1, 1, 4), (3, 1)])
def test_cycle_repeats_its_values_along_the_last_axis_everywhere(shape):
    values = [math.log(0.3), math.log(0.3) + 0.5, math.log(0.3) - 0.5]
    ini = initlab.get("cycle", values=values)
    want = np.broadcast_to(np.asarray([values[i % 3] for i in range(shape[-1])]), shape)
    _check_everywhere(ini, shape, want, "x.time_first")
    assert ini.resolve(shape).bounds() == (min(values), max(values))


def test_ramps_and_cycles_refuse_what_cannot_hold_them():
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(initlab.InitlabError, match="power"):
            initlab.get("linspace", power=bad)
    with pytest.raises(initlab.InitlabError, match="endpoint"):
        initlab.get("linspace", endpoint="no")
    with pytest.raises(initlab.InitlabError, match="values"):
        initlab.get("cycle", values=[])
    with pytest.raises(initlab.InitlabError, match="values"):
        initlab.get("cycle", values=[1.0, float("nan")])
    with pytest.raises(initlab.InitlabError, match="values"):
        initlab.get("cycle", values="abc")
    with pytest.raises(initlab.InitlabError, match="at least 1 dimension"):
        initlab.torch.init_(torch.empty(()), initlab.get("cycle", values=[1.0, 2.0]))
    # an integer tensor takes whole values only
    with pytest.raises(initlab.InitlabError, match="0.5"):
        initlab.torch.init_(torch.empty(4, dtype=torch.int32),
                            initlab.get("cycle", values=[1.0, 0.5]))
    t = torch.empty(5, dtype=torch.int64)
    initlab.torch.init_(t, initlab.get("cycle", values=[1, -2]))
    assert t.tolist() == [1, -2, 1, -2, 1]
    # a warped ramp of integer ends still has fractions between them: 4 (1/3)^2 = 0.444
    with pytest.raises(initlab.InitlabError, match="0.444"):
        initlab.torch.init_(torch.empty(4, dtype=torch.int32),
                            initlab.get("linspace", start=0, end=4, power=2.0))



def test_auto_reads_the_channel_mixs_squared_relu():
    """``torch.square(torch.relu(self.key(x)))``: relu_squared follows the key (gain sqrt(2/3),
    E[relu(z)^4] = 3/2), not relu (He)."""
    rep = initlab.apply(hf.rwkv(), "auto", seed=0)
    r = rep["rwkv.blocks.1.feed_forward.key.weight"]
    assert r.activation == "relu_squared", r.why
    assert r.init["params"]["scale"] == pytest.approx(2 / 3, rel=1e-4)
