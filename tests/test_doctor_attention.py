"""The doctor's attention softmax measurements and dropout-off guarantee, on Hugging Face models
built from configs (eager and sdpa attention must measure the same thing) and on hand-written
blocks whose attention weights are computed here independently."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import initlab
from hf_models import gpt2, llama, vit
from initlab.diagnostics.attention import p_saturated


def ids(b=2, s=8, v=128, seed=0):
    return torch.randint(0, v, (b, s), generator=torch.Generator().manual_seed(seed))


def pixels(b=2, seed=0):
    return torch.randn(b, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def _doctor(build, impl, plan, batch):
    m = build()
    m.set_attn_implementation(impl)
    initlab.apply(m, plan, seed=0)
    return initlab.doctor(m, batch)


def test_saturation_point_is_where_the_softmax_slope_is_5_percent_of_its_peak():
    p = p_saturated(0.05)
    assert p * (1 - p) == pytest.approx(0.05 * 0.25, rel=1e-12) and 0.98 < p < 0.99


@pytest.mark.parametrize("build,batch", [(vit, {"pixel_values": pixels()}),
                                         (gpt2, {"input_ids": ids()}),
                                         (llama, {"input_ids": ids()})],
                         ids=["vit", "gpt2", "llama-gqa"])
def test_eager_and_sdpa_attention_measure_the_same(build, batch):
    for plan in ("nielsen_large", "gpt2"):
        eager = _doctor(build, "eager", plan, batch)
        sdpa = _doctor(build, "sdpa", plan, batch)
        assert [a.source for a in eager.attention] == ["softmax"] * len(eager.attention)
        assert [a.source for a in sdpa.attention] == ["sdpa"] * len(sdpa.attention)
        assert len(eager.attention) == 2  # one per layer
        for a, b in zip(eager.attention, sdpa.attention):
            assert a.rows == b.rows and a.module == b.module
            for f in ("saturated", "max_prob", "entropy", "logit_std", "keys"):
                assert getattr(a, f) == pytest.approx(getattr(b, f), rel=1e-4, abs=1e-6), f
        # and the two forwards are the same network: dropout is off in both
        assert eager.meta["loss_value"] == pytest.approx(sdpa.meta["loss_value"], rel=1e-5)


def test_large_init_saturates_attention_and_small_init_does_not():
    bad = _doctor(vit, "sdpa", "nielsen_large", {"pixel_values": pixels()})
    f = [f for f in bad.findings if f.code == "attention_saturation"]
    assert f and f[0].severity == "error" and "entropy collapse" in f[0].message
    assert f[0].evidence["saturated"] > 0.5 and "auto" in f[0].plans
    for plan in ("gpt2", "glorot", "auto"):
        good = _doctor(vit, "sdpa", plan, {"pixel_values": pixels()})
        assert "attention_saturation" not in good.codes(), plan
        assert all(a.entropy > 0.5 and a.saturated == 0 for a in good.attention), plan


def test_causal_rows_with_one_key_are_left_out():
    rep = _doctor(gpt2, "sdpa", "gpt2", {"input_ids": ids(b=2, s=8)})
    # 2 examples x 4 heads x 7 rows (the first query sees only itself); keys 2..8, mean 5
    assert [a.rows for a in rep.attention] == [56, 56]
    assert all(a.keys == pytest.approx(5.0) for a in rep.attention)
    # GPT-2 at std 0.02 attends almost uniformly: entropy ~1 of uniform's
    assert all(a.entropy > 0.999 for a in rep.attention)


class Block(nn.Module):
    """Single-head self-attention written out: scores, functional dropout, softmax."""

    def __init__(self, d=16):
        super().__init__()
        self.q, self.k, self.v = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.router = nn.Linear(d, 4)

    def scores(self, x):
        return self.q(x) @ self.k(x).transpose(-2, -1) / math.sqrt(x.shape[-1])

    def forward(self, x):
        w = F.dropout(self.scores(x).softmax(-1), 0.5, training=self.training)
        gate = F.softmax(self.router(x).mean(1), dim=-1)  # 2-D: a router, not attention
        return (w @ self.v(x)) * gate.sum(-1, keepdim=True)[:, :, None]


def test_hand_written_attention_matches_an_independent_computation():
    torch.manual_seed(0)
    m = Block()
    with torch.no_grad():
        m.q.weight.mul_(8)
        m.k.weight.mul_(8)
    x = torch.randn(3, 10, 16, generator=torch.Generator().manual_seed(1))
    rep = initlab.doctor(m, x)
    assert len(rep.attention) == 1  # the router's 2-D softmax is not attention
    a = rep.attention[0]
    with torch.no_grad():
        p = m.scores(x).double().softmax(-1)
        s = m.scores(x).double()
    top = p.max(-1).values
    ent = -(p * p.log()).sum(-1) / math.log(10)
    assert a.rows == 30 and a.keys == 10 and a.module == "Block"
    assert a.max_prob == pytest.approx(float(top.mean()), rel=1e-5)
    assert a.entropy == pytest.approx(float(ent.mean()), rel=1e-4)
    assert a.saturated == pytest.approx(float((top > p_saturated(0.05)).double().mean()))
    assert a.logit_std == pytest.approx(float(s.var(-1, unbiased=False).mean().sqrt()),
                                        rel=1e-5)


def test_functional_dropout_is_off_during_the_doctors_forward():
    torch.manual_seed(0)
    m = Block()
    x = torch.randn(3, 10, 16, generator=torch.Generator().manual_seed(1))
    losses = []
    for seed in (1, 2):
        torch.manual_seed(seed)  # another global state: dropout would draw another mask
        losses.append(initlab.doctor(m, x).meta["loss_value"])
    with torch.no_grad():
        m.eval()
        expect = float(m(x).sum())
    assert losses[0] == losses[1] == pytest.approx(expect, rel=1e-6)


def test_multihead_attention_is_noted_not_measured_and_report_serializes():
    layer = nn.TransformerEncoderLayer(16, 2, 32, batch_first=True)
    rep = initlab.doctor(layer, torch.randn(2, 5, 16, generator=torch.Generator().manual_seed(0)))
    assert rep.attention == []
    assert any("nn.MultiheadAttention" in n and "not measured" in n for n in rep.notes)
    rep2 = _doctor(gpt2, "sdpa", "gpt2", {"input_ids": ids()})
    d = rep2.to_dict()
    assert len(d["attention"]) == 2 and d["attention"][0]["source"] == "sdpa"
    assert "attention softmax per call" in str(rep2)
    rep2.to_json()  # finite numbers only (allow_nan=False)


def test_html_page_shows_the_attention_and_residual_tables(tmp_path):
    from initlab.diagnostics.html import write_doctor_html

    rep = _doctor(vit, "sdpa", "nielsen_large", {"pixel_values": pixels()})
    page = write_doctor_html(rep, tmp_path / "doctor.html").read_text(encoding="utf-8")
    assert "Attention softmax (2 calls)" in page and "Residual stream (4 blocks)" in page
    assert "attention entropy collapse" in page
