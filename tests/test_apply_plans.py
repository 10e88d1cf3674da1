"""initlab.apply with the built-in plans on real (small) models: statistics against each rule's
formula, packed blocks, residual plans, auto, and the plan/report data."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn as nn

import initlab
from initlab.modelinit import Plan, Rule, plans

# Tolerance for a sample standard deviation of n i.i.d. draws with true std sigma: for a normal,
# Var(s) ~= sigma^2 / (2 (n - 1)); for a uniform (kurtosis 1.8) Var(s) ~= 0.2 sigma^2 / n, smaller.
# Six standard errors make a false failure (p ~ 2e-9) impossible in practice.


@pytest.fixture(autouse=True)
def _no_grad():
    # statistics of parameters: no autograd (float() of a grad-requiring tensor warns)
    with torch.no_grad():
        yield


def std_tol(n: int) -> float:
    return 6.0 / math.sqrt(2.0 * (n - 1))


def assert_std(t: torch.Tensor, sigma: float) -> None:
    n = t.numel()
    s = float(t.detach().double().std())
    assert abs(s / sigma - 1.0) < std_tol(n), (s, sigma, n)
    # the mean of n draws has standard error sigma / sqrt(n)
    assert abs(float(t.detach().double().mean())) < 6.0 * sigma / math.sqrt(n)


def mlp():
    return nn.Sequential(nn.Linear(300, 200), nn.ReLU(), nn.Linear(200, 100), nn.Tanh(),
                         nn.Linear(100, 10))


def small_cnn():
    return nn.Sequential(
        nn.Conv2d(4, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Conv2d(32, 32, 3, padding=1, groups=4), nn.ReLU(),        # grouped
        nn.Conv2d(32, 32, 5, padding=2, groups=32), nn.GELU(),       # depthwise
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))


def transformer():
    layer = nn.TransformerEncoderLayer(d_model=32, nhead=4, dim_feedforward=64, dropout=0.0,
                                       batch_first=True)
    return nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)


class BasicBlock(nn.Module):
    def __init__(self, c_in, c_out, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False),
                                            nn.BatchNorm2d(c_out))

    def forward(self, x):
        idt = x if self.downsample is None else self.downsample(x)
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + idt)


class ResNetStack(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.layer1 = nn.Sequential(BasicBlock(16, 16), BasicBlock(16, 16))
        self.layer2 = nn.Sequential(BasicBlock(16, 32, 2), BasicBlock(32, 32))
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = self.layer2(self.layer1(torch.relu(self.stem(x))))
        return self.fc(x.mean(dim=(2, 3)))


# ----------------------------------------------------------------------------- named schemes


@pytest.mark.parametrize("plan, weight_std", [
    ("he", lambda fi, fo: math.sqrt(2.0 / fi)),
    ("lecun", lambda fi, fo: math.sqrt(1.0 / fi)),
    ("glorot", lambda fi, fo: math.sqrt(2.0 / (fi + fo))),            # U(+-sqrt(6/(fi+fo)))
    ("torch_default", lambda fi, fo: 1.0 / math.sqrt(3.0 * fi)),      # U(+-1/sqrt(fi))
    ("small_normal", lambda fi, fo: 0.01),
    ("nielsen_default", lambda fi, fo: 1.0 / math.sqrt(fi)),
    ("nielsen_large", lambda fi, fo: 1.0),
])
def test_mlp_weight_statistics_follow_the_formula(plan, weight_std):
    m = mlp()
    rep = initlab.apply(m, plan, seed=0)
    for i in (0, 2, 4):
        w = m[i].weight
        fo, fi = w.shape
        assert_std(w, weight_std(fi, fo))
        rec = rep[f"{i}.weight"]
        assert rec.fans == [[fi, fo]]
        assert rec.expected_std == pytest.approx(weight_std(fi, fo), rel=1e-12)
        assert rec.std == pytest.approx(float(w.double().std(unbiased=False)))
        assert rec.status == "initialized" and rec.rule_index is not None


@pytest.mark.parametrize("plan, bias_std", [
    ("he", lambda fi: 0.0), ("glorot", lambda fi: 0.0), ("small_normal", lambda fi: 0.0),
    ("torch_default", lambda fi: 1.0 / math.sqrt(3.0 * fi)),   # bias U(+-1/sqrt(fan_in))
    ("nielsen_default", lambda fi: 1.0), ("nielsen_large", lambda fi: 1.0),
])
def test_biases_use_their_layers_fans(plan, bias_std):
    m = nn.Sequential(nn.Linear(50, 4000))      # 4000 biases for the statistics
    initlab.apply(m, plan, seed=1)
    b = m[0].bias
    if bias_std(50) == 0:
        assert torch.count_nonzero(b) == 0
    else:
        assert_std(b, bias_std(50))
    if plan == "torch_default":
        assert float(b.abs().max()) <= 1 / math.sqrt(50)


def test_uniform_bounds_hold():
    m = mlp()
    initlab.apply(m, "glorot", seed=2)
    for i in (0, 2, 4):
        fo, fi = m[i].weight.shape
        assert float(m[i].weight.abs().max()) <= math.sqrt(6.0 / (fi + fo))


def test_zeros_plan_makes_units_identical():
    m = mlp()
    initlab.apply(m, "zeros", seed=0)
    assert all(torch.count_nonzero(p) == 0 for p in m.parameters())


def test_orthogonal_plan_gives_orthonormal_rows():
    m = nn.Sequential(nn.Linear(64, 32), nn.Linear(32, 64))
    initlab.apply(m, "orthogonal", seed=0)
    w0, w1 = m[0].weight.double(), m[1].weight.double()
    assert torch.allclose(w0 @ w0.T, torch.eye(32, dtype=torch.float64), atol=1e-5)
    assert torch.allclose(w1.T @ w1, torch.eye(32, dtype=torch.float64), atol=1e-5)


def test_cnn_with_groups_and_norm():
    m = small_cnn()
    m[1].running_mean.fill_(3.0)
    m[1].num_batches_tracked.fill_(7)
    rep = initlab.apply(m, "he", seed=0)
    # grouped conv weight (32, 8, 3, 3): fan_in = 8 * 9 = 72; depthwise (32, 1, 5, 5): 25
    assert rep["3.weight"].fans == [[72, 32 * 9]]
    assert rep["5.weight"].fans == [[25, 32 * 25]]
    assert_std(m[0].weight, math.sqrt(2 / 36))
    assert_std(m[3].weight, math.sqrt(2 / 72))
    assert rep["5.weight"].expected_std == pytest.approx(math.sqrt(2 / 25))
    assert torch.equal(m[1].weight, torch.ones(32)) and torch.count_nonzero(m[1].bias) == 0
    assert torch.count_nonzero(m[1].running_mean) == 0 and int(m[1].num_batches_tracked) == 0
    assert rep.running_stats_reset == 1
    assert m(torch.zeros(2, 4, 8, 8)).shape == (2, 10)


def test_lstm_gate_blocks():
    lstm = nn.LSTM(input_size=12, hidden_size=8, num_layers=2)
    rep = initlab.apply(lstm, "orthogonal", seed=0)
    h = 8
    for name in ("weight_hh_l0", "weight_hh_l1"):
        w = getattr(lstm, name).double()
        assert rep[name].blocks == ["gate_i", "gate_f", "gate_g", "gate_o"]
        for g in range(4):     # each (H, H) gate block is orthogonal on its own
            blk = w[g * h:(g + 1) * h]
            assert torch.allclose(blk @ blk.T, torch.eye(h, dtype=torch.float64), atol=1e-5)
    blk = lstm.weight_ih_l0.double()[:h]          # (8, 12): orthonormal rows
    assert torch.allclose(blk @ blk.T, torch.eye(h, dtype=torch.float64), atol=1e-5)
    assert rep["bias_ih_l0"].fans == [[12, 8]] * 4
    assert len(set(rep["weight_hh_l0"].stream_keys)) == 4
    # torch_default: U(+-1/sqrt(hidden_size)) everywhere, like nn.LSTM.reset_parameters
    initlab.apply(lstm, "torch_default", seed=0)
    for p in lstm.parameters():
        assert float(p.abs().max()) <= 1 / math.sqrt(h)


def test_gru_and_glorot_blocks_have_block_fans():
    gru = nn.GRU(10, 30)
    initlab.apply(gru, "glorot", seed=0)
    # each gate block (30, 10) gets bound sqrt(6 / 40), not the packed (90, 10)'s sqrt(6 / 100)
    w = gru.weight_ih_l0
    assert float(w.abs().max()) > math.sqrt(6 / 100)
    assert float(w.abs().max()) <= math.sqrt(6 / 40)
    assert_std(w, math.sqrt(2 / 40))


def test_transformer_mha_blocks_and_torch_default():
    t = transformer()
    rep = initlab.apply(t, "glorot", seed=0)
    w = t.layers[0].self_attn.in_proj_weight
    assert rep["layers.0.self_attn.in_proj_weight"].fans == [[32, 32]] * 3
    assert rep["layers.0.self_attn.in_proj_weight"].blocks == ["q", "k", "v"]
    for i in range(3):   # each (E, E) block: U(+-sqrt(6 / 64)), std sqrt(2 / 64)
        assert float(w[i * 32:(i + 1) * 32].abs().max()) <= math.sqrt(6 / 64)
    assert_std(w, math.sqrt(2 / 64))
    # torch_default treats the packed tensor as one (3E, E) matrix, like torch
    rep = initlab.apply(t, "torch_default", seed=0)
    assert rep["layers.0.self_attn.in_proj_weight"].fans == [[32, 96]]
    assert float(w.abs().max()) <= math.sqrt(6 / 128)
    assert torch.count_nonzero(t.layers[0].self_attn.out_proj.bias) == 0
    x = torch.randn(2, 5, 32, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(t(x)).all()


def test_gpt2_plan_on_torch_transformer():
    t = transformer()
    initlab.apply(t, "gpt2", seed=0)
    lay = t.layers[1]
    res_std = 0.02 / math.sqrt(2 * 2)
    assert_std(lay.linear2.weight, res_std)
    assert_std(lay.self_attn.out_proj.weight, res_std)
    assert_std(lay.linear1.weight, 0.02)
    assert_std(lay.self_attn.in_proj_weight, 0.02)
    # n_layer can be given
    initlab.apply(t, "gpt2", seed=0, n_layer=8)
    assert_std(lay.linear2.weight, 0.02 / 4)


def test_convtranspose_uses_torch_fans_and_layout_override():
    m = nn.Sequential(nn.ConvTranspose2d(16, 4, 3))   # weight (16, 4, 3, 3)
    rep = initlab.apply(m, "he", seed=0)
    assert rep["0.weight"].fans == [[36, 144]]         # torch's convention: dims 1, 0
    assert rep["0.bias"].fans == [[36, 144]]
    plan = Plan([Rule(nn.ConvTranspose2d, weight="he_normal", bias="zeros",
                      layout="torch_transposed")])
    rep = initlab.apply(m, plan, seed=0)
    assert rep["0.weight"].fans == [[144, 36]]
    assert_std(m[0].weight, math.sqrt(2 / 144))


def test_embedding_padding_idx_and_norms():
    m = nn.Sequential(nn.Embedding(50, 16, padding_idx=3), nn.LayerNorm(16))
    rep = initlab.apply(m, "he", seed=0)
    assert torch.count_nonzero(m[0].weight[3]) == 0
    assert_std(m[0].weight[torch.arange(50) != 3], 1.0)
    assert any("padding_idx" in n for n in rep["0.weight"].notes)
    assert torch.equal(m[1].weight, torch.ones(16))


def test_critical_plan():
    from initlab.theory.critical import critical_point

    m = nn.Sequential(nn.Linear(400, 3000), nn.Tanh(), nn.Linear(3000, 400))
    initlab.apply(m, "critical", seed=0, activation="tanh", sigma_b2=0.05)
    sw2, sb2 = critical_point("tanh", 0.05)
    assert sw2 == pytest.approx(1.761, abs=2e-3)     # Schoenholz et al. 2017 (references.md)
    assert_std(m[0].weight, math.sqrt(sw2 / 400))
    assert_std(m[0].bias, math.sqrt(sb2))


# ----------------------------------------------------------------------------- residual


def test_zero_residual_blocks_start_as_identity():
    m = ResNetStack()
    rep = initlab.apply(m, "zero_residual", seed=0)
    for blk in (*m.layer1, *m.layer2):
        assert torch.count_nonzero(blk.bn2.weight) == 0
        assert torch.count_nonzero(blk.conv2.weight) > 0
    assert "layer1.0.bn2.weight" in rep.initialized
    m.eval()
    x = torch.randn(2, 16, 8, 8, generator=torch.Generator().manual_seed(0))
    blk = m.layer1[0]
    assert torch.allclose(blk(x), torch.relu(x))


def test_fixup_scales_and_zeros():
    m = ResNetStack()
    found = plans.residual_blocks(m)
    assert [b for b, _, _ in found] == ["layer1.0", "layer1.1", "layer2.0", "layer2.1"]
    assert found[2][1] == ["layer2.0.conv1", "layer2.0.conv2"]   # shortcut excluded
    rep = initlab.apply(m, "fixup", seed=0)
    n_branches, m_layers = 4, 2
    scale = n_branches ** (-1.0 / (2 * m_layers - 2))           # L^(-1/(2m-2)) = 1/2
    for blk in (*m.layer1, *m.layer2):
        assert torch.count_nonzero(blk.conv2.weight) == 0
        fan_in = blk.conv1.weight[0].numel()
        assert_std(blk.conv1.weight, scale * math.sqrt(2 / fan_in))
    assert rep["layer1.0.conv1.weight"].scale == pytest.approx(0.5)
    assert torch.count_nonzero(m.fc.weight) == 0 and torch.count_nonzero(m.fc.bias) == 0
    assert_std(m.stem.weight, math.sqrt(2 / 27))
    # a user pattern instead of the convention
    rep2 = initlab.apply(m, "fixup", seed=0, blocks="layer*.*")
    assert "L=4" in rep2.plan.description


def test_residual_plans_need_blocks():
    with pytest.raises(ValueError, match="`blocks` found no residual block"):
        initlab.apply(mlp(), "fixup", seed=0)


# ----------------------------------------------------------------------------- auto


def test_auto_on_sequential():
    m = nn.Sequential(nn.Linear(20, 30), nn.ReLU(), nn.Linear(30, 30), nn.LeakyReLU(0.2),
                      nn.Linear(30, 30), nn.Dropout(0.1), nn.Tanh(), nn.Linear(30, 30),
                      nn.SELU(), nn.Linear(30, 30), nn.LayerNorm(30), nn.GELU(),
                      nn.Linear(30, 5))
    rep = initlab.apply(m, "auto", seed=0)
    assert rep["0.weight"].init["name"] == "he_normal"
    assert rep["2.weight"].init == {"name": "he_normal",
                                    "params": {"a": 0.2, "mode": "fan_in",
                                               "nonlinearity": "leaky_relu"}}
    assert rep["4.weight"].init["name"] == "glorot_uniform"   # dropout skipped
    assert rep["7.weight"].init["name"] == "lecun_normal"
    g = initlab.gain("gelu")
    assert rep["9.weight"].init["params"]["scale"] == pytest.approx(g * g)  # norm skipped
    assert rep["12.weight"].init["name"] == "lecun_normal"
    assert "ReLU" in rep["0.weight"].why and "linear output" in rep["12.weight"].why
    assert "why" in str(rep)


class Functional(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(8, 8)
        self.b = nn.Linear(8, 8)
        self.c = nn.Linear(8, 2)

    def forward(self, x):
        return self.c(torch.tanh(self.b(torch.relu(self.a(x)))))


def test_auto_sees_functional_activations_through_fx():
    rep = initlab.apply(Functional(), "auto", seed=0)
    assert rep["a.weight"].init["name"] == "he_normal"
    assert rep["b.weight"].init["name"] == "glorot_uniform"
    assert rep["c.weight"].init["name"] == "lecun_normal"
    assert "probe" in rep.plan.description


class SharedCell(nn.Module):
    """One tanh layer ``cell`` applied ``steps`` times (a weight-shared recurrent block)."""

    def __init__(self, steps: int, width: int = 16):
        super().__init__()
        self.inp, self.cell, self.out = nn.Linear(8, width), nn.Linear(width, width), \
            nn.Linear(width, 2)
        self.steps = steps

    def forward(self, x):
        h = torch.tanh(self.inp(x))
        for _ in range(self.steps):
            h = torch.tanh(self.cell(h))
        return self.out(h)


def test_auto_counts_each_call_of_a_reused_layer_towards_the_depth():
    # 30 calls of one Linear are as deep as 30 Linears: 32 on the main path, past DEEP (20), so
    # the reused layer gets its unrolled twin's isometric choice; with one call it is shallow
    deep, shallow = SharedCell(30), SharedCell(1)
    desc = initlab.describe(deep)
    assert desc.layer("cell").calls == 30 and desc.plain_depth() == 32
    text = desc.summary()
    assert "plain depth 32" in text and "cell: linear" in text
    assert "runs 30 times in forward" in text and text.count("times in forward") == 1
    assert initlab.describe(shallow).plain_depth() == 3
    unrolled = nn.Sequential(nn.Linear(8, 16), nn.Tanh(),
                             *[m for _ in range(30) for m in (nn.Linear(16, 16), nn.Tanh())],
                             nn.Linear(16, 2))
    rep = initlab.apply(deep, "auto", seed=0)
    twin = initlab.apply(unrolled, "auto", seed=0)
    assert rep["cell.weight"].init == twin["2.weight"].init
    assert rep["cell.weight"].init["name"] == "orthogonal"
    assert "`cell` runs 30 times in forward" in rep["cell.weight"].why
    assert "runs" not in rep["inp.weight"].why
    rep1 = initlab.apply(shallow, "auto", seed=0)
    assert rep1["cell.weight"].init["name"] == "glorot_uniform" and "runs" not in rep1["cell.weight"].why


def test_auto_with_batch_on_transformer():
    t = transformer()
    rep = initlab.apply(t, "auto", seed=0, batch=torch.zeros(2, 3, 32))
    assert rep["layers.0.linear1.weight"].init["name"] == "he_normal"   # layer.activation
    assert rep["layers.0.linear2.weight"].init["name"] == "lecun_normal"
    assert rep["layers.0.self_attn.in_proj_weight"].fans == [[32, 32]] * 3
    assert "probe" in rep.plan.description


# ----------------------------------------------------------------------------- plans as data


def test_plan_json_round_trip(tmp_path):
    plan = Plan([
        Rule("*c_proj.weight", initlab.normal(std=0.02 / math.sqrt(2 * 3))),
        Rule(nn.Linear, weight=initlab.normal(std=0.02), bias="zeros"),
        Rule(nn.LSTM, params={"weight_hh*": "orthogonal", "weight_ih*": "glorot_uniform",
                              "bias*": "zeros"}, why="recurrent"),
        Rule("Conv1D", initlab.he_normal(a=0.1), scale=0.5, layout="torch_transposed",
             blocks=False, label="hf"),
    ], strict=True, name="mine")
    d = plan.to_dict()
    text = json.dumps(d)
    assert '"torch.nn.Linear"' in text and '"torch.nn.LSTM"' in text
    back = Plan.from_dict(json.loads(text))
    assert back == plan and back.to_dict() == d
    path = plan.save(tmp_path / "plan.json")
    assert Plan.load(path) == plan
    # the same plan from JSON initializes identically
    m1 = nn.Sequential(nn.Linear(4, 4), nn.LSTM(4, 4))
    m2 = nn.Sequential(nn.Linear(4, 4), nn.LSTM(4, 4))
    with pytest.warns(UserWarning, match=r"matched no parameter: #0 \*c_proj.weight; #3 hf"):
        initlab.apply(m1, plan, seed=5)
    with pytest.warns(UserWarning, match="matched no parameter"):
        initlab.apply(m2, Plan.load(path), seed=5)
    assert all(torch.equal(a, b) for a, b in zip(m1.parameters(), m2.parameters()))


def test_builtin_plans_round_trip_and_names():
    m = ResNetStack()
    assert set(plans.names()) >= {"torch_default", "lecun", "glorot", "he", "orthogonal",
                                  "nielsen_default", "nielsen_large", "small_normal", "zeros",
                                  "gpt2", "zero_residual", "fixup", "critical", "auto", "lsuv"}
    for name in ("torch_default", "he", "fixup", "zero_residual", "auto"):
        p = plans.get(name, m)
        assert Plan.from_dict(json.loads(json.dumps(p.to_dict()))) == p


def test_first_match_wins_and_glob_crosses_dots():
    m = ResNetStack()
    plan = Plan([Rule("*conv2.weight", "zeros"), Rule(nn.Conv2d, weight="he_normal"),
                 Rule("*", "ones")])
    rep = initlab.apply(m, plan, seed=0)
    assert torch.count_nonzero(m.layer2[1].conv2.weight) == 0
    assert rep["layer2.1.conv2.weight"].rule_index == 0
    assert rep["layer2.1.conv1.weight"].rule_index == 1
    assert rep["fc.weight"].rule_index == 2 and torch.equal(m.fc.weight, torch.ones(10, 32))


def test_report_to_dict_and_table():
    m = small_cnn()
    rep = initlab.apply(m, "he", seed=11)
    d = json.loads(rep.to_json())
    assert d["seed"] == 11 and d["rng"] == "torch" and d["stream_version"]
    p0 = d["parameters"][0]
    assert p0["name"] == "0.weight" and p0["stream_keys"] == ["0.weight"]
    assert p0["shape"] == [32, 4, 3, 3] and p0["init"]["name"] == "he_normal"
    text = str(rep)
    for col in ("name", "shape", "initializer", "fans in/out", "std", "mean", "rule"):
        assert col in text.splitlines()[2]
    assert "0.weight" in text and "he_normal()" in text


@pytest.mark.parametrize("factory", [
    lambda: nn.Linear(600, 400),
    lambda: nn.Conv2d(16, 64, 3, groups=4),
    lambda: nn.ConvTranspose2d(64, 16, 3),
    lambda: nn.LSTM(40, 60),
    lambda: nn.MultiheadAttention(64, 4),
])
def test_torch_default_matches_pytorchs_own_init(factory):
    """The oracle is PyTorch: a freshly built module (its reset_parameters) and our
    torch_default must have the same support and the same std per parameter."""
    ref = factory()
    ours = factory()
    initlab.apply(ours, "torch_default", seed=0)
    for (name, p), q in zip(ref.named_parameters(), ours.parameters()):
        p, q = p.double(), q.double()
        if torch.count_nonzero(p) == 0:
            assert torch.count_nonzero(q) == 0, name
            continue
        # both are uniform U(-b, b); the sample max of n draws is within b(1 - 10/n) of b
        # with probability 1 - e^-10, so the two maxima agree to 20/n relative
        n = p.numel()
        assert float(q.abs().max()) <= float(p.abs().max()) * (1 + 20 / n) + 1e-12, name
        assert float(p.abs().max()) <= float(q.abs().max()) * (1 + 20 / n) + 1e-12, name
        # the two sample stds, each with relative s.e. sqrt(0.2 / n) (uniform), 6 s.e. apart
        assert abs(float(q.std()) / float(p.std()) - 1) < 6 * math.sqrt(2 * 0.2 / n), name


def test_auto_tanh_critical_option():
    m = nn.Sequential(nn.Linear(10, 10), nn.Tanh(), nn.Linear(10, 2))
    rep = initlab.apply(m, "auto", seed=0, tanh="critical")
    assert rep["0.weight"].init["name"] == "critical"
    assert "edge of chaos" in rep["0.weight"].why
