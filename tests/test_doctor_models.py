"""The doctor on the models users have: transformers GPT-2 and Llama from small configs, a CNN
with functional torch.relu, a residual MLP, siblings that are not a chain, an LSTM."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import initlab
from initlab.diagnostics import doctor

transformers = pytest.importorskip("transformers")
transformers.utils.logging.set_verbosity_error()

from hf_models import gpt2 as hf_gpt2  # noqa: E402  (after the skip)
from hf_models import llama as hf_llama  # noqa: E402

DEPTH_CODES = {"vanishing_forward", "exploding_forward", "vanishing_gradient",
               "exploding_gradient", "collapse", "residual_growth"}


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


VOCAB = 1000  # the models' vocabulary, which ids() draws from


def gpt2(n_layer: int = 4):
    return hf_gpt2(n_layer, n_embd=128, vocab_size=VOCAB, n_positions=64)


def llama(n_layer: int = 4):
    return hf_llama(n_layer=n_layer, hidden_size=128, intermediate_size=256, vocab_size=VOCAB,
                    pad_token_id=0)


def ids(seed: int = 0):
    return {"input_ids": torch.randint(0, VOCAB, (4, 32), generator=gen(seed))}


@pytest.mark.parametrize("make", [gpt2, llama], ids=["gpt2", "llama"])
def test_healthy_transformers_are_silent_and_reported_per_block(make):
    m = make()
    initlab.apply(m, "gpt2", seed=0)
    rep = doctor(m, ids())
    assert rep.ok, str(rep)
    assert not rep.codes() & DEPTH_CODES, str(rep)
    # one block per residual branch (attention and MLP of each of the 4 layers), in order
    assert [b.index for b in rep.blocks] == list(range(8))
    closing = [b.closing.rsplit(".", 1)[-1] for b in rep.blocks]
    assert set(closing) <= {"c_proj", "o_proj", "down_proj"}
    # the stream is the shortcut plus the branch: std^2 adds up to the cross term. With the
    # 0.02 scale the branch is small, so stream_std stays within (stream_in, stream_in + branch)
    for b in rep.blocks:
        assert b.stream_in_std - 1e-12 <= b.stream_std + b.branch_std
        assert b.stream_std <= b.stream_in_std + b.branch_std + 1e-12
        assert b.stream_grad_norm is not None and b.stream_grad_norm > 0
    # the consecutive blocks chain: stream out of block k is stream in of block k+1
    for a, b in zip(rep.blocks[:-1], rep.blocks[1:]):
        assert b.stream_in_std == pytest.approx(a.stream_std, rel=1e-9)
    assert all(not s.on_chain for s in rep.layers)  # siblings are not a chain
    out = [s for s in rep.layers if s.is_output]
    assert [s.name for s in out] == ["lm_head"]
    assert "residual stream per block" in str(rep)
    assert rep.to_dict()["blocks"][0]["closing"] == rep.blocks[0].closing


def test_llama_gated_mlp_and_activations_from_the_description():
    m = llama(2)
    initlab.apply(m, "gpt2", seed=0)
    rep = doctor(m, ids(1))
    by = {s.name: s for s in rep.layers}
    gate, up = by["model.layers.0.mlp.gate_proj"], by["model.layers.0.mlp.up_proj"]
    assert gate.activation == "silu" and gate.h_std is not None
    assert up.activation == "silu" and up.gated_by == "model.layers.0.mlp.gate_proj"
    assert up.h_std is None  # multiplied by the gate, not activated itself
    assert by["model.layers.0.self_attn.q_proj"].activation is None


def test_gpt2_logits_saturated_by_a_tied_embedding_of_std_1():
    """GPT-2 (n_embd 128) whose tied wte has std 1 (what `he`/`glorot` gave before issue #10):
    logits std ~ sqrt(128) * 1 * rms(ln_f output) ~ 11."""
    m = gpt2(2)
    initlab.apply(m, "gpt2", seed=0)
    with torch.no_grad():
        m.transformer.wte.weight.normal_(0.0, 1.0, generator=gen(3))
    rep = doctor(m, ids(2))
    f = next(f for f in rep.findings if f.code == "logits_scale")
    assert f.severity == "error"
    assert "`lm_head`" in f.text and "transformer.wte.weight" in f.text and "gpt2" in f.plans
    # z = <ln_f(h), wte row>: ln_f's output has unit RMS per token, the rows are N(0, I_128),
    # so std(z) ~ sqrt(128) = 11.3; the sampled rows and 128 tokens leave a few percent
    out = next(s for s in rep.layers if s.is_output)
    assert abs(out.z_std / math.sqrt(128) - 1) < 0.15
    assert out.tied_to == ["transformer.wte.weight"]
    # and none of the depth findings a chain reading of the siblings would produce
    assert not rep.codes() & DEPTH_CODES


class ResBlock(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(d, d), nn.Linear(d, d)

    def forward(self, x):
        return x + self.fc2(F.relu(self.fc1(x)))


def res_mlp(depth=8, d=64):
    return nn.Sequential(nn.Linear(16, d), *[ResBlock(d) for _ in range(depth)], nn.Linear(d, 4))


def test_residual_stream_that_multiplies_with_depth_is_flagged():
    """He on both branch layers, no norm: Var(branch) = 2 Var(x) (fc1 doubles it, relu halves
    the second moment, fc2 doubles it), so each block multiplies the stream's variance by ~3."""
    m = res_mlp()
    initlab.apply(m, "he", seed=0)
    rep = doctor(m, torch.randn(64, 16, generator=gen(4)))
    f = next(f for f in rep.findings if f.code == "residual_growth")
    assert f.severity == "error" and {"gpt2", "zero_residual", "fixup"} <= set(f.plans)
    # sqrt(3) per block in std; a random 64x64 layer moves the squared norm by ~sqrt(2/64) =
    # 18% per block, ~0.09 in the per-block std factor: 6 sigma / sqrt(7 blocks) = 0.2
    per = f.evidence["ratio"] ** (1 / 7)
    assert abs(per - math.sqrt(3)) < 0.2
    assert len(rep.blocks) == 8
    # Fixup zeroes the last layer of each branch: the stream stays level, nothing to flag
    initlab.apply(m, "fixup", seed=0)
    fixed = doctor(m, torch.randn(64, 16, generator=gen(4)))
    assert "residual_growth" not in fixed.codes()
    assert max(b.stream_std for b in fixed.blocks) == pytest.approx(fixed.blocks[0].stream_std)


class FunctionalCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(3, 16, 3, padding=1), nn.Conv2d(16, 16, 3, padding=1)
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        x = torch.relu(self.c1(x))
        x = torch.relu(self.c2(x))
        return self.head(x.mean(dim=(2, 3)))


def test_functional_relu_in_a_cnn_is_relu():
    m = FunctionalCNN()
    initlab.apply(m, "he", seed=0)
    with torch.no_grad():
        # He keeps z's std near sqrt(2) E[h^2]^(1/2) ~ 1.4: with a bias of -8 an entry is positive
        # with probability Phi(-8 / 1.4) ~ 6e-9, so every unit is negative on the whole batch
        m.c2.bias.fill_(-8.0)
    rep = doctor(m, torch.randn(16, 3, 8, 8, generator=gen(5)))
    c1, c2 = rep.layers[0], rep.layers[1]
    assert c1.activation == "relu" and c1.activation_module == "(functional)"
    assert c2.activation == "relu" and c2.dead == 1.0
    assert "dead_units" in rep.codes("error")
    assert rep.layers[-1].activation is None and rep.layers[-1].is_output


class Siblings(nn.Module):
    """Two parallel projections of the same input, concatenated: siblings, not a chain."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(32, 32), nn.Linear(32, 32)
        self.out = nn.Linear(64, 4)

    def forward(self, x):
        return self.out(torch.cat([torch.tanh(self.a(x)), torch.tanh(self.b(x))], dim=-1))


def test_siblings_are_not_a_chain():
    m = Siblings()
    initlab.apply(m, "glorot", seed=0)
    with torch.no_grad():
        m.b.weight.mul_(1e-4)  # a sibling 4 decades smaller: not a vanishing signal over depth
    rep = doctor(m, torch.randn(64, 32, generator=gen(6)))
    assert not rep.codes() & DEPTH_CODES, str(rep)
    on = {s.name for s in rep.layers if s.on_chain}
    assert "out" in on and len(on & {"a", "b"}) == 1


def test_lstm_internals_are_said_not_diagnosed():
    class Tagger(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn, self.head = nn.LSTM(8, 16, batch_first=True), nn.Linear(16, 3)

        def forward(self, x):
            return self.head(self.rnn(x)[0])

    rep = doctor(Tagger(), torch.randn(4, 5, 8, generator=gen(7)))
    assert any("`rnn` (LSTM)" in n and "not diagnosed" in n for n in rep.notes)
    assert "not diagnosed" in str(rep) and rep.to_dict()["notes"] == rep.notes


class Swishy(nn.Module):
    """A custom activation module the registry does not know."""

    def forward(self, x):
        return x * torch.sigmoid(2.0 * x)


def test_unknown_activation_is_said_not_measured():
    m = nn.Sequential(nn.Linear(16, 32), Swishy(), nn.Linear(32, 4))
    rep = doctor(m, torch.randn(32, 16, generator=gen(8)))
    assert rep.layers[0].activation == "unknown" and rep.layers[0].saturated is None
    assert any("activation after `0` not found" in n for n in rep.notes), rep.notes


class Subsample(nn.Module):
    """A parameterless reshaping of the user's own (as LeViT's ``LevitSubsample``): a view and
    a strided slice, no arithmetic."""

    def forward(self, x):
        return x.view(x.shape[0], 8, 4)[:, ::2].reshape(x.shape[0], 16)


def test_a_reshaping_module_is_passed_through_and_a_computing_one_is_not():
    x = torch.randn(4, 16, generator=gen(11))
    desc = initlab.describe(nn.Sequential(nn.Linear(16, 32), Subsample(), nn.ReLU(),
                                          nn.Linear(16, 4)), x)
    assert desc.layers[0].activation_name == "relu", desc.layers[0].activation_why
    # a module that computes (Swishy: a product with a sigmoid) stays opaque: never guessed
    desc = initlab.describe(nn.Sequential(nn.Linear(16, 32), Swishy(), nn.Linear(32, 4)), x)
    assert desc.layers[0].activation == "unknown"
    assert "Swishy" in desc.layers[0].activation_why


class Scan(nn.Module):
    """Reads two of its layers' weights directly, as a Mamba scan does: ``F.conv1d`` with the
    conv's weight (as a keyword) and ``W @ x`` with a linear layer's weight; one layer it
    never uses."""

    def __init__(self):
        super().__init__()
        self.proj, self.dt = nn.Linear(8, 16), nn.Linear(16, 16)
        self.conv = nn.Conv1d(16, 16, 3, groups=16, padding=1)
        self.unused, self.head = nn.Linear(16, 16), nn.Linear(16, 4)

    def forward(self, x, keep=None):
        c = F.conv1d(self.proj(x).transpose(1, 2), weight=self.conv.weight,
                     bias=self.conv.bias, padding=1, groups=16)         # (B, 16, T)
        d = self.dt.weight @ c                                          # units on axis -2
        if keep is not None:
            keep.update(c=c, d=d)
            c.retain_grad()
            d.retain_grad()
        return self.head(torch.tanh(d).transpose(1, 2))


def test_layers_whose_weights_the_forward_reads_get_rows_and_an_unused_layer_a_note():
    m = Scan()
    x = torch.randn(4, 10, 8, generator=gen(12))
    keep: dict = {}
    m(x, keep).sum().backward()
    want = {"conv": (keep["c"], keep["c"].grad), "dt": (keep["d"], keep["d"].grad)}
    grads = {n: m.get_submodule(n).weight.grad.clone() for n in want}
    m.zero_grad()
    rep = doctor(m, x)      # loss: the sum of the outputs, as above
    rows = {s.name: s for s in rep.layers}
    assert "unused" not in rows and "conv" in rows and "dt" in rows
    for name, (z, g) in want.items():
        s = rows[name]
        assert s.n_units == 16 and s.weight_shape == list(m.get_submodule(name).weight.shape)
        assert s.z_std == pytest.approx(float(z.detach().double().std(unbiased=False)), rel=1e-9)
        assert s.grad_out_rms == pytest.approx(float(g.double().square().mean().sqrt()),
                                               rel=1e-9)
        w = m.get_submodule(name).weight.detach().double()
        assert s.grad_weight_ratio == pytest.approx(
            float(grads[name].double().norm() / w.norm()), rel=1e-9)
    assert any("`unused`" in n and "did not run as modules" in n for n in rep.notes), rep.notes
    assert not any("`conv`" in n or "`dt`" in n for n in rep.notes if "did not run" in n)


def test_torch_transformer_encoder_blocks_and_attention_note():
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(64, 4, 128, batch_first=True),
                                num_layers=3, enable_nested_tensor=False)
    initlab.apply(enc, "gpt2", seed=0)
    rep = doctor(enc, torch.randn(4, 10, 64, generator=gen(9)))
    # out_proj runs inside F.multi_head_attention_forward: the branch is followed from the
    # attention module's output
    assert [b.closing for b in rep.blocks] == [f"layers.{i}.{n}" for i in range(3)
                                               for n in ("self_attn.out_proj", "linear2")]
    assert any("MultiheadAttention" in n for n in rep.notes)
    assert not rep.codes() & DEPTH_CODES, str(rep)
