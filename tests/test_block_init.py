"""Initializers for named blocks of packed tensors (``Rule(block_init=...)``): an LSTM's
forget-gate bias under ``auto``, a user's rule on attention's packed q/k/v, the streams
(one block's initializer never shifts another's draw), the report, serialization and the
errors raised before any write.

Statistical checks: the sample std of n iid normals has relative standard error
1/sqrt(2(n-1)); 6 of them are allowed (a false failure has probability ~2e-9 per check)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

import initlab
from initlab.modelinit import Plan, Rule


class Tagger(nn.Module):
    """A user's sequence tagger: embedding, a 2-layer bidirectional LSTM, a linear head."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(50, 16)
        self.lstm = nn.LSTM(16, 32, num_layers=2, bidirectional=True, batch_first=True)
        self.head = nn.Linear(64, 5)

    def forward(self, ids):
        return self.head(self.lstm(self.emb(ids))[0])


def _gates(t, hidden):
    return t.detach().view(4, hidden)          # torch's order: i, f, g, o


def test_auto_opens_every_lstms_forget_gate():
    """Before: ``auto`` zeroed every LSTM bias, so each forget gate started at sigmoid(0) = 1/2
    and the cell halved its memory every step. Now bias_ih's forget rows are 1 (bias_hh's 0:
    the gate's bias, their sum, is 1), Keras' ``unit_forget_bias``."""
    m = Tagger()
    rep = initlab.apply(m, "auto", seed=0)
    for name, p in m.lstm.named_parameters():
        if not name.startswith("bias"):
            continue
        g = _gates(p, 32)
        if name.startswith("bias_ih"):
            assert torch.equal(g[1], torch.ones(32)), name
            assert torch.equal(g[[0, 2, 3]], torch.zeros(3, 32)), name
            rec = rep[f"lstm.{name}"]
            assert rec.initializer == "zeros(); gate_f: ones()" and rec.blocks[1] == "gate_f"
            # the report's expected moments are the mixture's: mean 1/4, std sqrt(3)/4
            assert rec.expected_mean == pytest.approx(0.25) and rec.mean == pytest.approx(0.25)
            assert rec.expected_std == pytest.approx(math.sqrt(3) / 4)
            assert rec.std == pytest.approx(math.sqrt(3) / 4, rel=1e-6)
            assert "Jozefowicz" in rec.why
        else:
            assert torch.equal(p, torch.zeros_like(p)), name
    # a GRU has no forget gate: its biases stay 0
    gru = nn.GRU(8, 16)
    initlab.apply(gru, "auto", seed=0)
    assert all(torch.equal(p, torch.zeros_like(p)) for n, p in gru.named_parameters()
               if n.startswith("bias"))


def test_the_named_schemes_keep_their_papers_zero_biases():
    m = Tagger()
    initlab.apply(m, "he", seed=0)
    assert all(torch.equal(p, torch.zeros_like(p)) for n, p in m.lstm.named_parameters()
               if n.startswith("bias"))


def test_one_blocks_initializer_never_shifts_another_blocks_draw():
    """MHA's packed in_proj (q, k, v): a rule zeroing v. q and k are the plain rule's draws bit
    for bit (each block has its own stream, keyed by the tensor's name and the block label),
    under torch's generator and the counter stream alike."""
    import initlab.scale  # noqa: F401  (registers the "counter" source)

    for rng in ("torch", "counter"):
        plain, zero_v = nn.MultiheadAttention(32, 4), nn.MultiheadAttention(32, 4)
        base = [Rule(nn.MultiheadAttention, params={"*weight": "glorot_uniform",
                                                    "*bias*": "zeros"})]
        initlab.apply(plain, Plan(base), seed=3, rng=rng)
        rule = Rule(nn.MultiheadAttention, params={"in_proj_weight": "glorot_uniform"},
                    block_init={"v": "zeros"})
        initlab.apply(zero_v, Plan([rule, *base]), seed=3, rng=rng)
        w0, w1 = plain.in_proj_weight.detach(), zero_v.in_proj_weight.detach()
        assert torch.equal(w1[:64], w0[:64]), rng                  # q and k unchanged
        assert torch.equal(w1[64:], torch.zeros(32, 32)), rng      # v zero
        # the q block is Glorot over its own (32, 32) fans: std sqrt(2 / 64)
        n = 32 * 32
        assert abs(float(w1[:32].std()) / math.sqrt(2 / 64) - 1) < 6 / math.sqrt(2 * (n - 1))


def test_block_init_round_trips_through_the_plan_file(tmp_path):
    rule = Rule(nn.LSTM, params={"bias_ih*": "zeros"}, block_init={"gate_f": "ones"},
                label="forget")
    plan = Plan([rule], name="forget")
    path = tmp_path / "plan.json"
    plan.save(path)
    back = Plan.load(path)
    assert back == plan and back.rules[0].block_init["gate_f"].name == "ones"
    assert "block gate_f: ones" in repr(plan)
    a, b = nn.LSTM(4, 8), nn.LSTM(4, 8)
    initlab.apply(a, plan, seed=0)
    initlab.apply(b, back, seed=0)
    assert torch.equal(a.bias_ih_l0, b.bias_ih_l0)


def test_a_block_the_tensor_does_not_have_is_refused_before_any_write():
    m = Tagger()
    before = {n: p.detach().clone() for n, p in m.named_parameters()}
    # a GRU-style label on an LSTM, and a packed-block rule reaching an unpacked tensor
    for rule, says in [
        (Rule(nn.LSTM, params={"bias_ih*": "zeros"}, block_init={"gate_z": "ones"}),
         ("lstm.bias_ih_l0", "['gate_z']", "'gate_i', 'gate_f', 'gate_g', 'gate_o'")),
        (Rule("*", "zeros", block_init={"gate_f": "ones"}), ("emb.weight", "not a packed")),
    ]:
        with pytest.raises(initlab.InitlabError, match="block_init") as exc:
            initlab.apply(m, Plan([rule]), seed=0)
        for text in says:
            assert text in str(exc.value), (text, str(exc.value))
        for n, p in m.named_parameters():
            assert torch.equal(p, before[n]), n          # nothing written


@pytest.mark.parametrize(("kw", "exc", "match"), [
    ({"block_init": {"gate_f": "ones"}, "blocks": False}, initlab.InitlabError, "blocks=True"),
    ({"block_init": {"gate_f": "keep"}}, initlab.InitlabError, "cannot be 'keep'"),
    ({"block_init": {"": "ones"}}, initlab.InitlabError, "non-empty"),
    ({"block_init": ["gate_f"]}, initlab.InitlabTypeError, "dict of block label"),
    ({"block_init": {"gate_f": 3}}, initlab.InitlabTypeError, r"block_init\['gate_f'\]"),
])
def test_bad_block_init_is_a_clear_error(kw, exc, match):
    with pytest.raises(exc, match=match):
        Rule(nn.LSTM, params={"bias_ih*": "zeros"}, **kw)


class CellTagger(nn.Module):
    """A model that steps torch's cells itself: an LSTMCell then a GRUCell over time."""

    def __init__(self):
        super().__init__()
        self.lstm, self.gru, self.head = nn.LSTMCell(6, 16), nn.GRUCell(16, 12), nn.Linear(12, 3)

    def forward(self, x):                                   # x: (batch, time, 6)
        h = c = x.new_zeros(x.shape[0], 16)
        g = x.new_zeros(x.shape[0], 12)
        for t in range(x.shape[1]):
            h, c = self.lstm(x[:, t], (h, c))
            g = self.gru(h, g)
        return self.head(g)


@pytest.mark.parametrize("plan", ["auto", "he", "orthogonal", "torch_default"])
def test_rnn_cells_are_recurrent_layers_in_every_plan(plan):
    """Before: every plan left nn.LSTMCell/GRUCell/RNNCell parameters unmatched (a warning;
    torch's values kept). They are recurrent layers now, gates packed as in nn.LSTM/nn.GRU."""
    import warnings

    m = CellTagger()
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*matched no rule")
        rep = initlab.apply(m, plan, seed=0)
    assert rep["lstm.weight_hh"].blocks == ["gate_i", "gate_f", "gate_g", "gate_o"]
    assert rep["gru.weight_hh"].blocks == ["gate_r", "gate_z", "gate_n"]
    if plan == "orthogonal":                 # each (16, 16) recurrent gate block orthogonal
        w = m.lstm.weight_hh.detach().view(4, 16, 16)
        for blk in w:
            assert torch.allclose(blk @ blk.T, torch.eye(16), atol=1e-5)
    if plan == "torch_default":              # torch's U(+-1/sqrt(hidden)) for every tensor
        assert all(float(p.detach().abs().max()) <= 1 / math.sqrt(16)
                   for p in m.lstm.parameters())
    if plan == "auto":                       # the forget gate open, as for nn.LSTM
        assert torch.equal(_gates(m.lstm.bias_ih, 16)[1], torch.ones(16))
    if plan in ("he", "orthogonal"):
        assert torch.equal(m.lstm.bias_ih, torch.zeros(64))


def test_the_doctor_says_a_cells_internals_are_not_diagnosed():
    m = CellTagger()
    initlab.apply(m, "auto", seed=0)
    x = torch.randn(4, 5, 6, generator=torch.Generator().manual_seed(0))
    rep = initlab.doctor(m, x)
    notes = " ".join(rep.notes)
    assert "`lstm` (LSTMCell): its internals are not diagnosed" in notes
    assert "`gru` (GRUCell)" in notes
