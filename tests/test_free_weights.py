"""Free weights and free biases: parameters that a module the probe looks inside holds itself
and uses as a layer would (``einsum(..., self.q)``, ``x @ self.w``, ``z + self.b``). The probe
names them as layers, with the fans of their use, and every plan draws them; XLNet and
GPT-NeoX-Japanese from small configs, and a user's own module."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import initlab
from hf_models import gpt_neox_japanese, sam_vision, xlnet
from initlab.core.gains import gain
from initlab.modelinit.dataflow_ops import einsum_fans, product_weight


@pytest.mark.parametrize("eq, shapes, k, fans", [
    ("ibh,hnd->ibnd", [(5, 2, 32), (32, 4, 8)], 1, (32, 32)),     # XLNet's q/k/v/r
    ("ibnd,hnd->ibh", [(5, 2, 4, 8), (32, 4, 8)], 1, (32, 32)),   # XLNet's o: in n*d, out h
    ("ibnd,snd->ibns", [(5, 2, 4, 8), (2, 4, 8)], 1, (8, 2)),     # heads n are batch dims
    ("b i, i o", [(3, 6), (6, 7)], 1, (6, 7)),                    # implicit output "bo"
    ("...h,hd->...d", [(2, 3, 6), (6, 5)], 1, (6, 5)),            # ellipsis on the data
    ("hd,...h->...d", [(6, 5), (2, 3, 6)], 0, (6, 5)),            # the weight first
])
def test_einsum_fans_are_the_contracted_and_the_produced_dimensions(eq, shapes, k, fans):
    assert einsum_fans(eq, shapes, k) == fans


@pytest.mark.parametrize("eq, shapes, k", [
    ("bd,d->bd", [(3, 6), (6,)], 1),            # an elementwise scale: nothing contracted
    ("ii,i->i", [(4, 4), (4,)], 0),             # a diagonal
    ("ij,jk->ik", [(3, 4)], 0),                 # operands do not match the equation
    ("...d,d->...", [(3, 6), (6,)], 5),         # no such operand
    ("...h,hd->...d", [(2, 3, 6), (6, 5)], 0),  # an ellipsis in the weight's own term
])
def test_einsum_fans_refuse_what_is_not_a_layer(eq, shapes, k):
    assert einsum_fans(eq, shapes, k) is None


def test_product_weight_reads_each_product_form():
    x, w, b = torch.zeros(2, 6), torch.zeros(6, 5), torch.zeros(5)
    free = {id(w), id(b)}

    def is_free(t):
        return id(t) in free

    assert product_weight("matmul", (x, w), {}, is_free)[1:3] == ((6, 5), "x @ W")
    assert product_weight("matmul", (w, x.T), {}, is_free)[1:3] == ((5, 6), "W @ x")
    assert product_weight("__rmatmul__", (w, x), {}, is_free)[1:3] == ((6, 5), "x @ W")
    wt = torch.zeros(5, 6)
    free.add(id(wt))
    found = product_weight("linear", (x, wt, b), {}, is_free)
    assert found[1:3] == ((6, 5), "F.linear") and found[3] is b
    assert product_weight("matmul", (x, x.T), {}, is_free) is None      # no parameter
    assert product_weight("matmul", (w, w), {}, is_free) is None        # no data


class FreeBlock(nn.Module):
    """A user's block: raw weights used as layers (a view of one too), a free bias, and a norm
    child, so the probe looks inside it."""

    def __init__(self, d=16, h=48):
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.w_in = nn.Parameter(torch.randn(d, h))       # x @ w_in: (in, out)
        self.b_in = nn.Parameter(torch.randn(h))
        self.w_out = nn.Parameter(torch.randn(d, h))      # x @ w_out.t(): (out, in) stored
        self.head = nn.Linear(d, 3)

    def forward(self, x):
        u = F.gelu(self.norm(x) @ self.w_in + self.b_in)
        return self.head(x + u @ self.w_out.t())


def test_a_users_free_weights_are_layers_with_the_fans_of_their_use():
    m = FreeBlock()
    desc = initlab.describe(m, torch.zeros(2, 16))
    layers = {x.name: x for x in desc.layers}
    w_in, w_out = layers["w_in"], layers["w_out"]
    assert (w_in.kind, w_in.fans, w_in.use, w_in.biases) == ("free", (16, 48), "x @ W",
                                                             ("b_in",))
    assert w_in.activation_name == "gelu"
    assert (w_out.kind, w_out.fans) == ("free", (48, 16))   # through the .t() view
    assert [b.closing for b in desc.residual_branches] == ["w_out"]
    assert desc.param("b_in").role == "bias"
    rep = initlab.apply(m, "auto", seed=0)
    assert {r.name for r in rep.records if r.status == "unmatched"} == set()
    # gelu's Var = g^2 / fan_in on w_in, fan_in 16: the probe's fans, not the stored (16, 48)
    # read in torch layout (fan_in 48); N = 768 draws, std's relative sampling error
    # 1/sqrt(2N) = 2.6%, so 10% is ~4 standard errors
    gain2 = gain("gelu") ** 2
    assert abs(m.w_in.std().item() / math.sqrt(gain2 / 16) - 1) < 0.10
    assert torch.count_nonzero(m.b_in) == 0
    # w_out closes the branch: zero_residual zeroes it (and fixup), through the free name
    initlab.apply(m, "zero_residual", seed=0, batch=torch.zeros(2, 16))
    assert torch.count_nonzero(m.w_out) == 0


def test_xlnets_einsum_projections_and_query_biases_are_drawn_by_every_plan():
    m = xlnet()
    desc = initlab.describe(m)
    layers = {x.name: x for x in desc.layers}
    att = "transformer.layer.0.rel_attn"
    for local in "qkvor":
        assert (layers[f"{att}.{local}"].kind, layers[f"{att}.{local}"].fans) == \
            ("free", (32, 32)), local
    # the segment encoding runs with segment ids (the probe gives them): fans (head 8, segs 2)
    assert layers[f"{att}.seg_embed"].fans == (8, 2)
    assert set(layers[f"{att}.q"].biases) == {f"{att}.r_w_bias", f"{att}.r_r_bias",
                                              f"{att}.r_s_bias"}
    assert f"{att}.o" in {c for b in desc.residual_branches for c in b.closing_layers}
    for plan in ("auto", "glorot", "torch_default", "fixup", "zero_residual", "gpt2"):
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message=".*matched no rule")
            initlab.apply(m, plan, seed=0)
    initlab.apply(m, "glorot", seed=0)
    # Glorot uniform on fans (32, 32): std sqrt(2/64) = 0.177; 1024 draws per tensor, 5 tensors
    # of layer 0: relative sampling error of the std ~1/sqrt(2 * 5120) = 1%, 5% is ~5 errors
    q = torch.cat([getattr(m.transformer.layer[0].rel_attn, x).flatten() for x in "qkvor"])
    assert abs(q.std().item() / math.sqrt(2 / 64) - 1) < 0.05
    assert torch.count_nonzero(m.transformer.layer[0].rel_attn.r_w_bias) == 0
    initlab.apply(m, "fixup", seed=0)
    assert torch.count_nonzero(m.transformer.layer[0].rel_attn.o) == 0


def test_the_kept_description_keeps_free_weights():
    first = initlab.describe(xlnet())
    again = initlab.describe(xlnet())     # the same structure: from the kept dataflow
    pick = [(x.name, x.kind, x.fans, x.biases) for x in first.layers if x.kind == "free"]
    assert pick and pick == [(x.name, x.kind, x.fans, x.biases) for x in again.layers
                             if x.kind == "free"]
    assert again.param("transformer.layer.1.rel_attn.o").fans == [(32, 32)]


def test_gpt_neox_japaneses_dense_bias_is_its_dense_layers_bias():
    m = gpt_neox_japanese()
    desc = initlab.describe(m)
    att = "gpt_neox_japanese.layers.1.attention"
    assert desc.layer(f"{att}.dense").biases == (f"{att}.dense_bias",)
    p = desc.param(f"{att}.dense_bias")
    assert p.role == "bias" and p.fans == [(32, 32)]
    with torch.no_grad():
        m.get_parameter(f"{att}.dense_bias").fill_(1.0)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*matched no rule")
        initlab.apply(m, "auto", seed=0)
    assert torch.count_nonzero(m.get_parameter(f"{att}.dense_bias")) == 0


class NeedsTwoInputs(nn.Module):
    """A residual block whose forward needs an input that cannot be built from the model."""

    def __init__(self, d=8):
        super().__init__()
        self.up, self.proj, self.head = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, 2)

    def forward(self, x, temperature):
        return self.head(x + self.proj(torch.relu(self.up(x))) / temperature)


def test_every_plan_takes_a_batch_and_reads_the_description_made_from_it():
    m = NeedsTwoInputs()
    batch = (torch.zeros(2, 8), 2.0)
    assert initlab.describe(m).method == "names-fallback"
    with pytest.raises(initlab.InitlabError, match="found no residual block"):
        initlab.apply(m, "zero_residual", seed=0)
    # with the batch, the branch is found (a plan without a batch option no longer refuses it)
    rep = initlab.apply(m, "zero_residual", seed=0, batch=batch)
    assert torch.count_nonzero(m.proj.weight) == 0 and torch.count_nonzero(m.up.weight) > 0
    assert "found by dataflow" in rep.plan.description
    initlab.apply(m, "he", seed=0, batch=batch)
    assert torch.count_nonzero(m.proj.weight) > 0


class LearnedQuery(nn.Module):
    """Attention over a stack of inputs with a learned query vector (Inkling's block-attention
    residual, whose query starts at 0: uniform attention)."""

    def __init__(self, d=8):
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.query = nn.Parameter(torch.zeros(d))
        self.head_query = nn.Parameter(torch.zeros(2, d))      # per head: "bhd,hd->bh"

    def forward(self, x):                                       # x: (batch, blocks, d)
        w = torch.softmax(self.norm(x) @ self.query, dim=-1)
        s = torch.einsum("bhd,hd->bh", x[:, :2], self.head_query)
        return (w.unsqueeze(-1) * x).sum(1) + s.sum(-1, keepdim=True)


def test_a_learned_query_vector_is_not_a_layer():
    assert product_weight("matmul", (torch.zeros(2, 6), torch.zeros(6)), {},
                          lambda t: t.dim() == 1) is None
    desc = initlab.describe(LearnedQuery(), torch.zeros(2, 3, 8))
    assert [x.name for x in desc.layers if x.kind == "free"] == []
    m = LearnedQuery()
    with pytest.warns(UserWarning, match="matched no rule"):
        rep = initlab.apply(m, "auto", seed=0, batch=torch.zeros(2, 3, 8))
    assert rep["query"].status == "unmatched" and torch.count_nonzero(m.query) == 0


def test_a_position_table_added_to_a_layers_output_is_not_its_bias():
    # SAM's (1, 4, 4, 32) pos_embed is added to the patch embedding's output: one value per
    # position and unit, not per unit, so it stays a position table
    desc = initlab.describe(sam_vision())
    assert [x.name for x in desc.layers if x.biases] == []
    assert desc.param("vision_encoder.pos_embed").role == "embedding"
