"""Model-level init on the models users have: Hugging Face GPT-2, Llama (tied and untied), BERT,
T5, torch's TransformerEncoder, LSTM/GRU, a CNN with functional relu, a ResNet-style CNN and a
renamed copy of a Llama block with its own RMSNorm, all built from small configs (no download).

Statistical checks: the sample std of n iid draws has relative standard error 1/sqrt(2(n-1));
``assert_std`` allows 6 of those (a false failure has probability ~2e-9 per check)."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import initlab
from initlab.core.activations import get_activation
from initlab.core.validation import InitlabError
from initlab.modelinit import describe

transformers = pytest.importorskip("transformers", reason="transformers is not installed")
transformers.logging.set_verbosity_error()

from hf_models import bert, gpt2, llama  # noqa: E402  (after the skip)

RANDOM_PLANS = [p for p in initlab.plans.names() if p not in ("zeros", "lsuv")]


def assert_std(t, sigma):
    n = t.numel()
    s = float(t.detach().double().std())
    assert abs(s / sigma - 1) < 6 / math.sqrt(2 * (n - 1)), (s, sigma)


# ----------------------------------------------------------------------------- models


def t5():
    return transformers.T5ForConditionalGeneration(transformers.T5Config(
        d_model=64, d_ff=128, num_layers=2, num_heads=4, d_kv=16, vocab_size=128))


def encoder():
    layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True)
    return nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)


class MyRMSNorm(nn.Module):      # a user's own norm class (not torch's, not Llama's)
    def __init__(self, d, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.full((d,), 0.5))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class RenamedBlock(nn.Module):
    """A Llama block copied by hand with renamed layers: `out` instead of o_proj, `w1/w3/w2`
    instead of gate/up/down, and its own RMSNorm class."""

    def __init__(self, d=32, h=64):
        super().__init__()
        self.n1, self.n2 = MyRMSNorm(d), MyRMSNorm(d)
        self.q, self.k, self.v = nn.Linear(d, d, bias=False), nn.Linear(d, d, bias=False), \
            nn.Linear(d, d, bias=False)
        self.out = nn.Linear(d, d, bias=False)
        self.w1, self.w3 = nn.Linear(d, h, bias=False), nn.Linear(d, h, bias=False)
        self.w2 = nn.Linear(h, d, bias=False)

    def forward(self, x):
        y = self.n1(x)
        b, t, d = y.shape
        q, k, v = (f(y).view(b, t, 4, d // 4).transpose(1, 2) for f in (self.q, self.k, self.v))
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.out(a.transpose(1, 2).reshape(b, t, d))
        y = self.n2(x)
        return x + self.w2(F.silu(self.w1(y)) * self.w3(y))


class RenamedLlama(nn.Module):
    def __init__(self, n=3, d=32, vocab=50):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.blocks = nn.ModuleList(RenamedBlock(d) for _ in range(n))
        self.norm = MyRMSNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)

    def forward(self, ids):
        x = self.tok(ids)
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.norm(x))


class FunctionalCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1)
        self.fc = nn.Linear(8 * 8 * 8, 10)

    def forward(self, x):
        x = torch.relu(self.conv1(x))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc(x.flatten(1))


class Basic(nn.Module):
    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.proj = None if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(y + (x if self.proj is None else self.proj(x)))


class ResNetish(nn.Module):       # no `downsample`/`shortcut` attribute: found from dataflow
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.b1, self.b2 = Basic(8, 8), Basic(8, 16, stride=2)
        self.gn = nn.GroupNorm(4, 16)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.gn(self.b2(self.b1(torch.relu(self.stem(x)))))
        return self.fc(x.mean((2, 3)))


class Recurrent(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(20, 8)
        self.lstm = nn.LSTM(8, 16, batch_first=True)
        self.gru = nn.GRU(16, 16, batch_first=True)
        self.head = nn.Linear(16, 20)

    def forward(self, ids):
        y, _ = self.lstm(self.emb(ids))
        y, _ = self.gru(y)
        return self.head(y)


def logits_std(m, ids):
    m.eval()
    with torch.no_grad():
        out = m(ids)
    return float((out.logits if hasattr(out, "logits") else out).double().std())


# ----------------------------------------------------------------------------- ties


def test_materialize_meta_gpt2_keeps_the_tie_and_counts_28_tensors():
    with torch.device("meta"):
        m = gpt2()
    rep = initlab.materialize(m, "gpt2", device="cpu", seed=0)
    assert m.lm_head.weight is m.transformer.wte.weight
    assert m.lm_head.weight.device.type == "cpu"
    assert len(rep) == 28 == len(list(m.parameters()))
    assert rep["lm_head.weight"] is rep["transformer.wte.weight"]   # one record, all names
    # one optimizer step: still one tensor
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    m(torch.arange(8).unsqueeze(0), labels=torch.arange(8).unsqueeze(0)).loss.backward()
    opt.step()
    assert torch.equal(m.lm_head.weight, m.transformer.wte.weight)


def test_materialize_keeps_a_hand_made_tie():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(10, 4)
            self.head = nn.Linear(4, 10, bias=False)
            self.head.weight = self.emb.weight

        def forward(self, ids):
            return self.head(self.emb(ids))

    with torch.device("meta"):
        m = Tied()
    rep = initlab.materialize(m, "he", device="cpu", seed=0)
    assert m.head.weight is m.emb.weight and len(rep) == 1
    assert rep["head.weight"].name == "emb.weight" and rep["emb.weight"].aliases == ("head.weight",)


@pytest.mark.parametrize("plan", RANDOM_PLANS + ["zeros"])
def test_tied_embedding_gets_the_embedding_rule_in_every_plan(plan):
    m = gpt2()
    rep = initlab.apply(m, plan, seed=0)
    rec = rep["lm_head.weight"]
    assert rec.name == "transformer.wte.weight" and rec.aliases == ("lm_head.weight",)
    assert rec.rule == "embedding" and rec.readout
    assert m.lm_head.weight is m.transformer.wte.weight


# ----------------------------------------------------------------------------- residual


@pytest.mark.parametrize("build, closers", [
    (lambda: gpt2(n_layer=3), ["attn.c_proj", "mlp.c_proj"]),
    (lambda: llama(n_layer=3), ["self_attn.o_proj", "mlp.down_proj"]),
    (lambda: RenamedLlama(n=3), ["out", "w2"]),
])
def test_gpt2_plan_scales_the_residual_closers_found_by_dataflow(build, closers):
    m = build()
    rep = initlab.apply(m, "gpt2", seed=0)
    d = describe(m)
    assert d.method == "probe" and d.n_residual == 6
    res = 0.02 / math.sqrt(6)
    found = {b.closing for b in d.residual_branches}
    assert len(found) == 6 and all(any(c.endswith(x) for x in closers) for c in found)
    for name in found:
        assert_std(m.get_submodule(name).weight, res)
        assert "closes residual branch" in rep[f"{name}.weight"].why
        assert "dataflow" in rep[f"{name}.weight"].why
    others = [r for r in rep if r.role == "weight" and r.name.rsplit(".", 1)[0] not in found
              and r.rule == "layers"]
    assert others and all(r.init["params"]["std"] == 0.02 for r in others)


def test_residual_closers_on_bert_t5_and_torch_encoder():
    closing = {b.closing for b in describe(bert()).residual_branches}
    assert closing == {f"bert.encoder.layer.{i}.{s}" for i in range(2)
                       for s in ("attention.output.dense", "output.dense")}
    closing = [b.closing for b in describe(encoder()).residual_branches]
    assert closing == [f"layers.{i}.{s}" for i in range(2) for s in ("self_attn.out_proj",
                                                                       "linear2")]
    d = describe(t5())
    assert d.n_residual == 10       # encoder 2 x 2, decoder 2 x 3 (with cross-attention)
    assert all(b.closing.endswith((".o", ".wo")) for b in d.residual_branches)


def test_zero_residual_and_fixup_on_a_resnet_without_naming_conventions():
    m = ResNetish()
    blocks = initlab.plans.residual_blocks(m)
    assert [b for b, _, _ in blocks] == ["b1", "b2"]
    assert blocks[1][1] == ["b2.conv1", "b2.conv2"]            # projection shortcut excluded
    initlab.apply(m, "zero_residual", seed=0)
    assert torch.count_nonzero(m.b1.bn2.weight) == 0 and torch.count_nonzero(m.b2.bn2.weight) == 0
    assert torch.equal(m.b2.proj[1].weight, torch.ones(16))    # the shortcut's BN keeps 1
    assert torch.equal(m.gn.weight, torch.ones(16))
    rep = initlab.apply(m, "fixup", seed=0)
    assert torch.count_nonzero(m.b1.conv2.weight) == 0
    assert torch.count_nonzero(m.fc.weight) == 0                # the readout, from dataflow
    fan_in = m.b1.conv1.weight[0].numel()
    assert_std(m.b1.conv1.weight, 2 ** -0.5 * math.sqrt(2 / fan_in))   # L=2, m=2
    assert "L=2" in rep.plan.description


def test_fixup_never_zeroes_a_tied_embedding():
    m = gpt2()
    initlab.apply(m, "fixup", seed=0)
    assert torch.count_nonzero(m.transformer.wte.weight) == m.transformer.wte.weight.numel()


# ----------------------------------------------------------------------------- norms


NORM_MODELS = {
    "llama": lambda: llama(),
    "t5": t5,
    "renamed": lambda: RenamedLlama(n=1),
    "resnet": ResNetish,
    "bert": bert,
}


def _norm_params(m):
    d = describe(m)
    return [p for p in d.params if p.role in ("norm_scale", "norm_shift")]


ALL_PLANS = [p for p in initlab.plans.names() if p != "lsuv"]
NORM_CASES = [(p, w) for p in ALL_PLANS for w in ("llama", "renamed", "resnet")] + [
    (p, w) for p in ("he", "gpt2", "zero_residual", "fixup", "auto") for w in ("t5", "bert")]


@pytest.mark.parametrize("plan, which", NORM_CASES)
def test_every_norm_type_gets_one_and_zero(plan, which):
    m = NORM_MODELS[which]()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rep = initlab.apply(m, plan, seed=0)
    norms = _norm_params(m)
    assert norms
    zeroed = set()
    if plan == "zero_residual":
        zeroed = {f"{b.norms_after[-1]}.weight" for b in describe(m).residual_branches
                  if b.norms_after}
    for p in norms:
        if p.name in zeroed:
            assert torch.count_nonzero(p.tensor) == 0, p.name
            continue
        want = 1.0 if p.role == "norm_scale" else 0.0
        assert torch.equal(p.tensor, torch.full_like(p.tensor, want)), (p.name, plan)
    assert rep.unmatched == []


def test_unmatched_parameters_are_warned_and_unknown_modules_explained():
    class Scale(nn.Module):          # a module type initlab does not know
        def __init__(self):
            super().__init__()
            self.alpha = nn.Parameter(torch.ones(3, 3))

        def forward(self, x):   # not a product: a product would make alpha a free weight
            return x.unsqueeze(-1) * self.alpha

    m = nn.Sequential(nn.Linear(3, 3), Scale())
    with pytest.warns(UserWarning, match=r"matched no rule for 1 parameter.*`1\.alpha`"):
        rep = initlab.apply(m, "he", seed=0)
    assert rep.unmatched == ["1.alpha"]
    text = str(rep)
    assert "1.alpha: module type Scale is not one initlab knows" in text
    assert "matched by no rule" in text
    # matched: the note stays when the draw reads the fans guessed from the shape, and goes
    # when it reads none (RWKV's 21 structural vectors each printed it)
    plan = initlab.Plan([initlab.Rule("*alpha", "he_normal"), initlab.Rule(nn.Linear,
                                                                           "he_normal")])
    assert "1.alpha: module type Scale" in str(initlab.apply(m, plan, seed=0))
    plan = initlab.Plan([initlab.Rule("*alpha", "ones"), initlab.Rule(nn.Linear, "he_normal")])
    rep = initlab.apply(m, plan, seed=0)
    assert "module type" not in str(rep) and rep["1.alpha"].notes == []


# ----------------------------------------------------------------------------- activations / auto


def test_auto_names_the_activation_it_found():
    rep = initlab.apply(gpt2(), "auto", seed=0)
    assert "gelu" in rep["transformer.h.0.mlp.c_fc.weight"].why
    assert "no activation" in rep["transformer.h.0.attn.c_attn.weight"].why
    m = llama()
    rep = initlab.apply(m, "auto", seed=0)
    for name in ("gate_proj", "up_proj"):
        r = rep[f"model.layers.0.mlp.{name}.weight"]
        assert "silu" in r.why and r.activation == "silu"
    assert "gated by `model.layers.0.mlp.gate_proj`" in rep["model.layers.0.mlp.up_proj.weight"].why
    g = get_activation("silu").forward_gain()
    assert_std(m.model.layers[0].mlp.gate_proj.weight, g / math.sqrt(64))
    rep = initlab.apply(bert(), "auto", seed=0)
    assert "gelu" in rep["bert.encoder.layer.0.intermediate.dense.weight"].why
    m = FunctionalCNN()
    rep = initlab.apply(m, "auto", seed=0)
    assert rep["conv1.weight"].init["name"] == "he_normal"
    assert "relu" in rep["conv1.weight"].why and "relu" in rep["conv2.weight"].why
    assert "readout" in rep["fc.weight"].why


class SoftCapped(nn.Module):
    """``cap * tanh(fc(x) / cap)``, the soft cap of Gemma 2's logits and xLSTM's gates."""

    def __init__(self, cap, then_relu=False):
        super().__init__()
        self.fc, self.cap, self.then_relu = nn.Linear(8, 8), cap, then_relu

    def forward(self, x):
        y = self.cap * torch.tanh(self.fc(x) / self.cap)
        return torch.relu(y) if self.then_relu else y


def test_a_soft_cap_is_not_a_tanh_activation():
    """Before: ``cap * tanh(z / cap)`` told the layer "tanh follows" (Gemma 2's lm_head, with its
    cap of 30, took Glorot for a tanh; the doctor flagged xLSTM's gates, cap 15, 100% saturated
    at their bias of -10, whose tanh input is -0.67). A tanh whose input is the layer's output
    scaled by 1/5 or less is a cap: what reads the capped value decides."""
    head = nn.Linear(8, 3)
    d = describe(nn.Sequential(SoftCapped(30.0), head))
    assert d.layer("0.fc").activation is None, d.layer("0.fc").activation_why
    d = describe(nn.Sequential(SoftCapped(15.0, then_relu=True), head))
    assert d.layer("0.fc").activation[0].name == "relu", d.layer("0.fc").activation_why
    # tanh(z / 2) = 2 sigmoid(z) - 1 and tanh(z) are activations, not caps
    for cap in (2.0, 1.0):
        assert describe(nn.Sequential(SoftCapped(cap), head)).layer("0.fc").activation[0].name \
            == "tanh", cap
    cfg = transformers.Gemma2Config(vocab_size=64, hidden_size=32, intermediate_size=64,
                                    num_hidden_layers=2, num_attention_heads=4,
                                    num_key_value_heads=2, head_dim=8)
    d = describe(transformers.Gemma2ForCausalLM(cfg))
    lm = d.layer("lm_head")
    assert cfg.final_logit_softcapping == 30.0 and d.method == "probe"
    assert lm.activation is None and lm.is_readout, lm.activation_why


class SquaredRelu(nn.Module):
    """relu(fc(x))^2 written six ways; ``how="pow3"`` is relu(x)^3, not an activation the
    registry knows."""

    def __init__(self, how):
        super().__init__()
        self.fc, self.out, self.how = nn.Linear(8, 16), nn.Linear(16, 4), how

    def forward(self, x):
        h = torch.relu(self.fc(x))
        h = {"square": lambda: h.square(), "torch.square": lambda: torch.square(h),
             "mul": lambda: h * h, "pow": lambda: h ** 2, "pow3": lambda: h ** 3,
             "square_": lambda: h.square_(), "pow_": lambda: h.pow_(2),
             "plain": lambda: h}[self.how]()
        return self.out(h)


@pytest.mark.parametrize("how", ["square", "torch.square", "mul", "pow", "square_", "pow_"])
def test_relu_then_square_is_relu_squared(how):
    """Before: ``F.relu(x).square()`` (the nanoGPT speedrun's MLP, RWKV's channel mix) told the
    layer "relu follows" (He: 2/fan_in); relu(z)^2 has E[f(z)^2] = 3/2 for z ~ N(0, 1), so its
    variance-preserving gain is sqrt(2/3) and auto's Var = (2/3)/fan_in."""
    m = SquaredRelu(how)
    d = describe(m)
    act = d.layer("fc").activation[0]
    assert act.name == "relu_squared", d.layer("fc").activation_why
    assert "then" in d.layer("fc").activation_why
    rep = initlab.apply(m, "auto", seed=0)
    assert rep["fc.weight"].init["params"]["scale"] == pytest.approx(2 / 3, rel=1e-4)
    assert d.layer("out").activation is None


def test_relu_then_another_power_stays_relu():
    for how in ("pow3", "plain"):
        assert describe(SquaredRelu(how)).layer("fc").activation[0].name == "relu", how


class TimesSigmoid(nn.Module):
    """``z * sigmoid(k z)`` of a layer output z written out (k = 1: silu, 1.702: quick_gelu),
    optionally behind GPT-OSS's ``clamp(max=7)``; ``fused=True`` is GPT-OSS's clamped SwiGLU:
    one ``gate_up`` layer, ``(up + 1) * gate * sigmoid(1.702 gate)``."""

    def __init__(self, k=1.0, order="zs", clamp=None, fused=False):
        super().__init__()
        self.fc = nn.Linear(8, 32 if fused else 16)
        self.out = nn.Linear(16, 4)
        self.k, self.order, self.clamp, self.fused = k, order, clamp, fused

    def forward(self, x):
        h = self.fc(x)
        if self.fused:
            gate, up = h.chunk(2, dim=-1)
            gate, up = gate.clamp(max=7.0), up.clamp(min=-7.0, max=7.0)
            return self.out((up + 1) * (gate * torch.sigmoid(gate * self.k)))
        if self.clamp is not None:
            h = h.clamp(**self.clamp)
        s = torch.sigmoid(h * self.k if self.k != 1 else h)
        return self.out(h * s if self.order == "zs" else s * h)


@pytest.mark.parametrize("k, order, clamp, name", [
    (1.0, "zs", None, "silu"), (1.0, "sz", None, "silu"), (1.702, "zs", None, "quick_gelu"),
    (1.702, "sz", {"max": 7.0}, "quick_gelu"), (1.0, "zs", {"min": -10.0, "max": 10.0}, "silu")])
def test_a_layer_times_its_own_sigmoid_is_silu_or_quick_gelu(k, order, clamp, name):
    """Before: ``h * torch.sigmoid(h)`` (silu written out) told the layer "sigmoid follows"
    (gain 1/sqrt(E[sigmoid(z)^2]) = 1.86, three times silu's variance); a clamp at +-7 (GPT-OSS,
    MiniMax) was "unknown". A clamp that cannot bind on unit-scale values (bounds at 5 or beyond)
    is passed through."""
    m = TimesSigmoid(k, order, clamp)
    d = describe(m)
    fc = d.layer("fc")
    assert fc.activation != "unknown" and fc.activation[0].name == name, fc.activation_why
    assert fc.gated_by is None
    rep = initlab.apply(m, "auto", seed=0)
    g = get_activation(name).forward_gain()
    assert rep["fc.weight"].expected_std == pytest.approx(g / math.sqrt(8), rel=1e-9)


def test_gpt_oss_clamped_swiglu_is_a_quick_gelu_gated_unit():
    d = describe(TimesSigmoid(1.702, fused=True))
    fc = d.layer("fc")
    assert fc.activation != "unknown" and fc.activation[0].name == "quick_gelu", fc.activation_why


def test_other_self_gates_and_binding_clamps_stay_unknown():
    """z * sigmoid(2 z) is no registry activation (not sigmoid, not a gated unit: the gate is the
    layer itself); a clamp at +-1 binds, so what follows it is not read through it."""
    fc = describe(TimesSigmoid(2.0)).layer("fc")
    assert fc.activation == "unknown" and "sigmoid(2 z)" in fc.activation_why
    fc = describe(TimesSigmoid(1.0, clamp={"min": -1.0, "max": 1.0})).layer("fc")
    assert fc.activation == "unknown" and "clamp" in fc.activation_why, fc.activation_why


def test_description_of_rnns_and_unknown_activations():
    d = describe(Recurrent())
    lstm = d.param("lstm.weight_hh_l0")
    assert lstm.packed == "gates" and [b.label for b in lstm.blocks] == [
        "gate_i", "gate_f", "gate_g", "gate_o"]
    assert d.layer("head").is_readout
    assert d.layer("lstm").activation == "unknown"            # inside the cell: said so
    assert "recurrent cell" in d.layer("lstm").activation_why

    class Mystery(nn.Module):                                 # not in the registry
        def forward(self, x):
            return x * torch.sigmoid(1.7 * x)

    m = nn.Sequential(nn.Linear(4, 8), Mystery(), nn.Linear(8, 2))
    d = describe(m)
    assert d.layer("0").activation == "unknown"               # never "linear output"
    assert "Mystery" in d.layer("0").activation_why
    assert d.layer("2").activation is None and d.layer("2").is_readout


def test_hf_conv1d_layout_and_fans():
    d = describe(gpt2())
    p = d.param("transformer.h.0.mlp.c_fc.weight")
    assert p.layout == "torch_transposed" and p.fans == [(64, 256)]


# ----------------------------------------------------------------------------- logits at init


@pytest.mark.parametrize("plan", RANDOM_PLANS)
def test_logits_std_at_init_gpt2_small_width_and_tied_llama(plan):
    # GPT-2 small's width (n_embd 768, 12 heads) with 1 layer and a 1024-token vocabulary: the
    # logit scale is std(wte) * sqrt(768) after ln_f, independent of depth and vocabulary size
    # (the full GPT2Config() runs in the slow group below)
    with torch.device("meta"):     # skips transformers' own init: materialize draws once
        m = gpt2(n_layer=1, n_embd=768, n_head=12, vocab_size=1024, n_positions=64)
    initlab.materialize(m, plan, device="cpu", seed=0)
    s = logits_std(m, torch.arange(32).unsqueeze(0))
    assert 0.1 <= s <= 3, (plan, s)
    # (Llama's rotary `inv_freq` buffers are computed in __init__: built on CPU, then apply)
    m = llama(tied=True, hidden_size=256, intermediate_size=512, vocab_size=1024)
    initlab.apply(m, plan, seed=0)
    assert m.lm_head.weight is m.model.embed_tokens.weight
    s = logits_std(m, torch.arange(32).unsqueeze(0))
    assert 0.1 <= s <= 3, (plan, s)


@pytest.mark.slow
@pytest.mark.parametrize("plan", RANDOM_PLANS)
def test_logits_std_at_init_full_gpt2_small(plan):
    with torch.device("meta"):
        m = transformers.GPT2LMHeadModel(transformers.GPT2Config())
    initlab.materialize(m, plan, device="cpu", seed=0)
    s = logits_std(m, torch.arange(16).unsqueeze(0))
    assert 0.1 <= s <= 3, (plan, s)


def test_untied_llama_keeps_torch_embeddings_and_a_lecun_readout():
    m = llama(tied=False)
    rep = initlab.apply(m, "he", seed=0)
    assert rep["model.embed_tokens.weight"].init == {"name": "normal",
                                                    "params": {"mean": 0.0, "std": 1.0}}
    assert_std(m.lm_head.weight, math.sqrt(2 / 64))


# ----------------------------------------------------------------------------- report statistics


@pytest.mark.parametrize("plan", ["gpt2", "he", "torch_default"])
def test_report_statistics_equal_the_tensors(plan):
    m = bert()
    rep = initlab.apply(m, plan, seed=0)
    named = dict(m.named_parameters(remove_duplicate=False))
    for r in rep:
        t = named[r.name].detach().double()
        assert r.mean == pytest.approx(float(t.mean()), rel=1e-4, abs=1e-7)
        assert r.std == pytest.approx(float(t.std(unbiased=False)), rel=1e-4, abs=1e-9)


def test_report_says_how_structure_was_found():
    rep = initlab.apply(llama(), "gpt2", seed=0)
    text = str(rep)
    assert "model structure (probe): 4 residual branch(es), readout lm_head" in text
    assert "model.layers.0.self_attn.o_proj" in text
    d = rep.description
    assert d.layer("model.layers.0.mlp.down_proj").inputs == [
        "model.layers.0.mlp.gate_proj", "model.layers.0.mlp.up_proj"]   # siblings, not a chain
    assert d.layer("model.layers.0.mlp.gate_proj").outputs == ["model.layers.0.mlp.down_proj"]


# ----------------------------------------------------------------------------- LSUV


def test_lsuv_on_gpt2_conv1d_ties_respected_and_exact_report():
    m = gpt2()
    ids = torch.randint(0, 128, (4, 16), generator=torch.Generator().manual_seed(0))
    rep = initlab.lsuv(m, {"input_ids": ids}, seed=0)
    names = [layer.name for layer in rep.layers]
    assert "transformer.h.0.mlp.c_fc" in names and "transformer.h.0.attn.c_attn" in names
    assert "lm_head" not in names and rep.tied == ["lm_head"]
    assert m.lm_head.weight is m.transformer.wte.weight
    init = rep.init_report
    assert init.unmatched == [] and len(init) == 28
    named = dict(m.named_parameters(remove_duplicate=False))
    for r in init:
        t = named[r.name].detach().double()
        assert r.std == pytest.approx(float(t.std(unbiased=False)), rel=1e-4, abs=1e-9), r.name
    assert any("LSUV:" in n for n in init["transformer.h.0.mlp.c_fc.weight"].notes)


def test_lsuv_with_a_nan_batch_is_an_error_and_changes_nothing():
    m = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    before = [p.detach().clone() for p in m.parameters()]
    with pytest.raises(InitlabError, match=r"`batch` must be finite: 32 of 32"):
        initlab.lsuv(m, torch.full((8, 4), float("nan")), seed=0)
    assert all(torch.equal(a, b) for a, b in zip(before, m.parameters()))


# ----------------------------------------------------------------------------- errors


def test_errors_name_the_argument():
    m = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    with pytest.raises(InitlabError, match=r"`seed` must be < 2\*\*64"):
        initlab.apply(m, "he", seed=10**5000)
    with pytest.raises(InitlabError, match=r"`batch` must fit the model"):
        initlab.apply(m, "auto", seed=0, batch=torch.zeros(2, 5))
    with torch.device("meta"):
        meta = nn.Sequential(nn.Linear(4, 8))
    with pytest.raises(InitlabError, match=r"meta device.*initlab\.materialize"):
        initlab.apply(meta, "he", seed=0)
    with pytest.raises(InitlabError, match=r"`device` must be a torch device"):
        initlab.materialize(meta, "he", device="nonsense", seed=0)
    assert all(p.is_meta for p in meta.parameters())


def test_kaiming_and_xavier_are_aliases():
    a, b = nn.Linear(50, 40), nn.Linear(50, 40)
    initlab.apply(a, "he", seed=1)
    rep = initlab.apply(b, "kaiming", seed=1)
    assert torch.equal(a.weight, b.weight) and rep.plan.name == "kaiming"
    initlab.apply(a, "glorot", seed=1)
    initlab.apply(b, "xavier", seed=1)
    assert torch.equal(a.weight, b.weight)


def test_features_scattered_into_the_embeddings_are_used_linearly():
    """An image-text model's projector writes its features where the image tokens are
    (``masked_scatter``, GOT-OCR2): no activation follows it (before: "unknown")."""

    class Scatter(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb, self.proj, self.head = nn.Embedding(10, 8), nn.Linear(4, 8), nn.Linear(8, 3)

        def forward(self, ids, feats):
            e = self.emb(ids)
            mask = (ids == 9).unsqueeze(-1).expand_as(e)
            return self.head(e.masked_scatter(mask, self.proj(feats)))

    d = describe(Scatter(), batch=(torch.tensor([[1, 9, 9, 2]]), torch.zeros(2, 4)))
    assert d.layer("proj").activation is None, d.layer("proj").activation_why
