"""Mixtures of experts (transformers v5's stacked expert banks and their routers) on small
Mixtral, GPT-OSS and DeepSeek-V3 models built from configs: every parameter is matched, each
expert is drawn as its own layer with its own fans, the bank's output projection closes the
residual branch (scaled by gpt2, zeroed by zero_residual), and the width parametrizations
classify a bank as hidden matrices."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
import torch.nn as nn

import initlab
from hf_models import afmoe, deepseek_v3, ernie45_moe, gpt_oss, laguna, llama4, mixtral, qwen2_moe
from initlab import InitlabError
from initlab.modelinit.experts import expert_count, expert_layout, is_router
from initlab.scale import counter_fill_, counter_fill_rows_

PLANS = ["he", "glorot", "auto", "gpt2", "torch_default", "orthogonal", "zero_residual", "fixup"]


def _apply(model, plan, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = initlab.apply(model, plan, seed=0, **kw)
    return report, [str(w.message) for w in caught]


@pytest.mark.parametrize("build", [mixtral, gpt_oss, deepseek_v3, qwen2_moe, llama4,
                                   ernie45_moe])
def test_probe_finds_every_branch_and_the_bank_closes_the_moe_branch(build):
    m = build()
    desc = initlab.describe(m)
    # before banks were known, Mixtral's probe failed and the names fallback read the experts'
    # act_fn as the activation after o_proj
    assert desc.method == "probe", desc.notes
    assert len(desc.residual_branches) == 4
    last = desc.residual_branches[-1]
    mlp = "feed_forward" if build is llama4 else "mlp"
    assert f"model.layers.1.{mlp}.experts" in last.closing_layers
    o_proj = desc.layer("model.layers.0.self_attn.o_proj")
    assert o_proj.activation is None, o_proj.activation_why
    shared = {deepseek_v3: "shared_experts.down_proj", qwen2_moe: "shared_expert.down_proj",
              llama4: "shared_expert.down_proj",
              ernie45_moe: "shared_experts.down_proj"}.get(build)
    if shared:  # the routed bank and the shared expert both reach the add
        mlp = "feed_forward" if build is llama4 else "mlp"
        assert set(last.closing_layers) == {f"model.layers.1.{mlp}.experts",
                                            f"model.layers.1.{mlp}.{shared}"}
        # Qwen2-MoE: through the sigmoid gate's product; Llama 4: through the sum over experts
        assert all(desc.layer(c).residual_branch == last.index for c in last.closing_layers)


@pytest.mark.parametrize("plan", PLANS)
def test_every_moe_parameter_is_matched(plan):
    for build in (mixtral, deepseek_v3, ernie45_moe):
        report, msgs = _apply(build(), plan)
        assert not [m for m in msgs if "matched no rule" in m], msgs
        names = {r.name for r in report.records}
        assert "model.layers.1.mlp.gate.weight" in names
        assert "model.layers.1.mlp.experts.gate_up_proj" in names


@pytest.mark.parametrize("plan", ["he", "auto", "gpt2"])
def test_gpt_oss_is_matched_whole_its_attention_sinks_at_zero(plan):
    m = gpt_oss()
    with torch.no_grad():
        m.model.layers[0].self_attn.sinks.fill_(3.0)
    report, msgs = _apply(m, plan)
    assert not [x for x in msgs if "matched no rule" in x], msgs
    assert torch.equal(m.model.layers[0].self_attn.sinks, torch.zeros(4))
    assert "attention-sink" in next(r for r in report.records
                                    if r.name == "model.layers.0.self_attn.sinks").why
    ref = gpt_oss()
    initlab.apply(ref, plan, seed=0)
    with torch.device("meta"):
        meta = gpt_oss()
    initlab.materialize(meta, plan, seed=0, device="cpu")   # was: sinks unmatched, an error
    for (name, a), b in zip(ref.state_dict().items(), meta.state_dict().values()):
        assert torch.equal(a, b), name


def _std_tolerance(n: int) -> float:
    # the sample std of n iid normal draws has relative standard error 1/sqrt(2n); 5 of them
    return 5 / math.sqrt(2 * n)


@pytest.mark.parametrize("build, name, fan_in", [
    (mixtral, "model.layers.0.mlp.experts.gate_up_proj", 64),    # (E, 2I, H) = (4, 192, 64)
    (mixtral, "model.layers.0.mlp.experts.down_proj", 96),       # (E, H, I) = (4, 64, 96)
    (gpt_oss, "model.layers.0.mlp.experts.gate_up_proj", 64),    # (in, out): (4, 64, 192)
    (gpt_oss, "model.layers.0.mlp.experts.down_proj", 96),       # (4, 96, 64)
])
def test_he_draws_each_expert_with_that_experts_fans(build, name, fan_in):
    m = build()
    report, _ = _apply(m, "he")
    w = m.get_parameter(name).detach()
    rec = next(r for r in report.records if r.name == name)
    assert {tuple(f) for f in rec.fans} == {(fan_in, w.shape[1] * w.shape[2] // fan_in)}
    expect = math.sqrt(2 / fan_in)  # He normal: Var = 2 / fan_in of one expert's matrix
    tol = _std_tolerance(w[0].numel())
    for e in range(w.shape[0]):
        assert float(w[e].std()) == pytest.approx(expect, rel=tol), e
    # each expert its own stream
    assert not torch.equal(w[0], w[1])


@pytest.mark.parametrize("rng", ["torch", "counter"])
def test_orthogonal_makes_each_expert_an_orthogonal_matrix(rng):
    m = mixtral()
    report, _ = _apply(m, "orthogonal", rng=rng)
    recs = {r.name: r for r in report.records}
    for name in ("gate_up_proj", "down_proj"):
        rec = recs[f"model.layers.0.mlp.experts.{name}"]
        # the report's expected std is one expert's: an orthogonal (a, b) matrix has
        # E[w^2] = 1 / max(a, b) (exact, so only float error separates the two)
        assert rec.expected_std == pytest.approx(rec.std, rel=1e-3)
        w = m.get_parameter(f"model.layers.0.mlp.experts.{name}").detach().double()
        for e in range(w.shape[0]):
            a = w[e] if w.shape[1] >= w.shape[2] else w[e].T   # tall: orthonormal columns
            gram = a.T @ a
            assert torch.allclose(gram, torch.eye(gram.shape[0], dtype=gram.dtype),
                                  atol=1e-5), (name, e)


def test_counter_single_row_is_the_slice_drawn_as_a_tensor_of_its_own():
    init = initlab.orthogonal()
    bank = torch.empty(4, 12, 8)
    counter_fill_rows_(bank, init, (2, 3), seed=5, name="k", single=True)
    alone = counter_fill_(torch.empty(12, 8), init, seed=5, name="k")
    assert torch.equal(bank[2], alone)
    with pytest.raises(InitlabError, match="rows"):
        counter_fill_rows_(bank, init, (1, 3), seed=5, name="k", single=True)


def test_auto_uses_the_banks_activation_inside_and_linear_at_its_output():
    m = mixtral()
    report, _ = _apply(m, "auto")
    recs = {r.name: r for r in report.records}
    up = recs["model.layers.0.mlp.experts.gate_up_proj"]
    down = recs["model.layers.0.mlp.experts.down_proj"]
    assert "silu" in up.why and "input projection of an expert bank" in up.why
    assert "LeCun" in down.why and "output projection of an expert bank" in down.why
    # silu's numeric gain on each expert's fan_in (64)
    w = m.get_parameter("model.layers.0.mlp.experts.gate_up_proj").detach()
    gain2 = initlab.gain("silu") ** 2  # numeric: 1 / E[silu(z)^2]
    assert float(w.std()) == pytest.approx(math.sqrt(gain2 / 64), rel=_std_tolerance(w.numel()))


@pytest.mark.parametrize("build", [mixtral, deepseek_v3])
def test_gpt2_scales_every_closer_of_a_moe_branch(build):
    m = build()
    _apply(m, "gpt2")
    branches = initlab.describe(m).residual_branches
    # GPT-2: 0.02 / sqrt(N), N the residual layers (DeepSeek-V3's MoE branch has two: 5 in all)
    n = len({c for b in branches for c in b.closing_layers})
    assert n == len(branches) + (build is deepseek_v3)
    scaled = 0.02 / math.sqrt(n)
    closers = ["model.layers.1.mlp.experts.down_proj"]
    if build is deepseek_v3:
        closers.append("model.layers.1.mlp.shared_experts.down_proj.weight")
    for name in closers:
        w = m.get_parameter(name).detach()
        assert float(w.std()) == pytest.approx(scaled, rel=_std_tolerance(w.numel())), name
    up = m.get_parameter("model.layers.1.mlp.experts.gate_up_proj").detach()
    assert float(up.std()) == pytest.approx(0.02, rel=_std_tolerance(up.numel()))


@pytest.mark.parametrize("build", [mixtral, gpt_oss, deepseek_v3, qwen2_moe, llama4])
def test_zero_residual_makes_every_moe_branch_start_at_zero(build):
    m = build()
    _apply(m, "zero_residual")
    mlp = m.model.layers[1].feed_forward if build is llama4 else m.model.layers[1].mlp
    assert mlp.experts.gate_up_proj.abs().sum() > 0      # only the output projection is zeroed
    x = torch.randn(2, 5, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = mlp(x)
    out = out[0] if isinstance(out, tuple) else out
    assert torch.equal(out, torch.zeros_like(out))


@pytest.mark.parametrize("build", [mixtral, ernie45_moe])
def test_materialize_on_meta_equals_apply_bit_for_bit(build):
    for plan in ("auto", "orthogonal"):
        ref = build()
        initlab.apply(ref, plan, seed=3)
        with torch.device("meta"):
            m = build()
        initlab.materialize(m, plan, seed=3, device="cpu")
        for (name, a), b in zip(ref.state_dict().items(), m.state_dict().values()):
            assert torch.equal(a, b), (plan, name)


def test_mup_classifies_a_bank_as_hidden_matrices_and_ntk_multiplies_each_matrix():
    base = lambda: mixtral(hidden_size=32, intermediate_size=48)  # noqa: E731
    par = initlab.parametrize(mixtral(), "mup", base=base, seed=0)
    for name in ("gate_up_proj", "down_proj"):
        s = par[f"model.layers.0.mlp.experts.{name}"]
        assert (s.klass, s.m_in, s.m_out) == ("hidden", 2.0, 2.0)
        assert s.lr_adam == 0.5
    assert par["model.layers.0.mlp.gate.weight"].klass == "output"   # width in, experts out
    # NTK's hidden multiplier 1/sqrt(m_in) on each of the bank's two matrices: a pre-hook on
    # the bank's input could be only one of them; a parametrization of each is exact
    m = mixtral()
    keys = list(m.state_dict())
    x = torch.randint(0, 64, (1, 6), generator=torch.Generator().manual_seed(0))
    par = initlab.parametrize(m, "ntk", base=base, seed=0)
    bank = m.model.layers[0].mlp.experts
    for name in ("gate_up_proj", "down_proj"):
        assert par[f"model.layers.0.mlp.experts.{name}"].multiplier == pytest.approx(2 ** -0.5)
        stored = bank.parametrizations[name].original
        torch.testing.assert_close(getattr(bank, name), stored * 2 ** -0.5)
    with_mult = m(x).logits
    par.remove()
    assert list(m.state_dict()) == keys
    assert not torch.allclose(m(x).logits, with_mult)
    with pytest.raises(InitlabError, match="number of experts"):
        initlab.parametrize(mixtral(), "mup", base=lambda: mixtral(num_local_experts=2), seed=0)


def test_gpt_oss_biases_get_their_experts_fans_and_mup_calls_them_vectors():
    m = gpt_oss()
    report, _ = _apply(m, "he")
    rec = next(r for r in report.records if r.name.endswith("layers.0.mlp.experts.down_proj_bias"))
    assert {tuple(f) for f in rec.fans} == {(96, 64)} and rec.std == 0.0
    base = lambda: gpt_oss(hidden_size=32, intermediate_size=48)  # noqa: E731
    par = initlab.parametrize(gpt_oss(), "mup", base=base, seed=0)
    assert par["model.layers.0.mlp.experts.down_proj_bias"].klass == "vector"
    assert par["model.layers.0.mlp.experts.gate_up_proj"].klass == "hidden"


def test_what_is_not_a_router_or_a_bank():
    assert not is_router(nn.Linear(4, 4))
    assert expert_count(nn.Conv1d(3, 4, 5)) is None
    assert expert_count(nn.Conv1d(3, 4, 5, bias=False)) is None   # 3-D, but not declared

    class MyExperts(nn.Module):
        def __init__(self):
            super().__init__()
            self.w1 = nn.Parameter(torch.empty(3, 10, 6))
            self.w2 = nn.Parameter(torch.empty(3, 6, 10))

    class NoisyGate(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.empty(3, 6))
            self.inner = nn.Linear(2, 2)      # a child with parameters: not a leaf router

    assert expert_count(MyExperts()) == 3
    # no flag or width attribute: (out, in) per expert assumed, and the reason says so
    layout, how = expert_layout(MyExperts(), "w2", (3, 6, 10))
    assert layout == "torch" and "assumed" in how
    assert not is_router(NoisyGate())


def test_lsuv_pre_initializes_routers_and_banks_and_rescales_the_linear_layers():
    m = mixtral()
    ids = torch.randint(0, 128, (4, 16), generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = initlab.lsuv(m, ids, seed=0)
    assert not [w for w in caught if "matched no rule" in str(w.message)]
    recs = {r.name: r for r in report.init_report.records}
    assert recs["model.layers.0.mlp.experts.down_proj"].initializer.startswith("orthogonal")
    assert recs["model.layers.0.mlp.gate.weight"].initializer.startswith("orthogonal")
    w = m.model.layers[0].mlp.experts.down_proj.detach().double()[1]   # (64, 96): wide
    assert torch.allclose(w @ w.T, torch.eye(64, dtype=w.dtype), atol=1e-5)
    assert {layer.name for layer in report.layers} >= {"model.layers.0.self_attn.q_proj"}
    assert all(layer.converged for layer in report.layers)


def test_depth_multiplier_scales_every_closer_of_a_moe_branch():
    # routed bank + shared expert: 1/sqrt(L) must scale their sum, so both outputs are hooked
    m = deepseek_v3()
    base = lambda: deepseek_v3(hidden_size=32, intermediate_size=48, moe_intermediate_size=24)  # noqa: E731
    ids = torch.randint(0, 128, (2, 6), generator=torch.Generator().manual_seed(0))
    # sp: the depth multiplier alone (under mup the router, width in and experts out, is
    # readout-like and gets a 1/width input multiplier, which changes the routing)
    par = initlab.parametrize(m, "sp", base=base, seed=0, depth="sqrt", base_depth=1,
                              batch=ids)
    assert par.n_branches == 4 and par.branch_multiplier == pytest.approx(0.5)
    x = torch.randn(2, 5, 64, generator=torch.Generator().manual_seed(1))
    mlp = m.model.layers[1].mlp
    with torch.no_grad():
        scaled = mlp(x)
        par.remove()
        plain = mlp(x)
    assert torch.allclose(scaled, 0.5 * plain, atol=1e-6)


def test_doctor_measures_each_router_on_its_logits():
    m = mixtral()
    _apply(m, "auto")
    ids = torch.randint(0, 128, (2, 16), generator=torch.Generator().manual_seed(0))
    logits = {}
    handles = [m.get_submodule(f"model.layers.{i}.mlp.gate").register_forward_hook(
        lambda mod, inp, out, i=i: logits.__setitem__(i, out[0].detach().double()))
        for i in range(2)]
    with torch.no_grad():
        m.eval()
        m(ids)
    m.train()
    for h in handles:
        h.remove()
    report = initlab.doctor(m, ids)
    rows = {s.name: s for s in report.layers}
    for i in range(2):
        s = rows[f"model.layers.{i}.mlp.gate"]   # a router returns (logits, weights, indices)
        assert s.weight_shape == [4, 64] and s.n_units == 4
        assert s.z_std == pytest.approx(float(logits[i].std(unbiased=False)), rel=1e-9)
        assert s.grad_weight_ratio is not None and s.grad_weight_ratio > 0  # routing is trained


ROUTING = {  # model: (routing bias, router weight, what its logits go through)
    ernie45_moe: ("model.layers.1.mlp.gate.moe_statics.e_score_correction_bias",
                  "model.layers.1.mlp.gate.weight", None),                # softmax
    # Laguna's sigmoid is inside the router (a unit): what follows its output is the experts
    laguna: ("model.layers.1.mlp.gate.e_score_correction_bias", "model.layers.1.mlp.gate.weight",
             None),
    afmoe: ("model.layers.1.mlp.expert_bias", "model.layers.1.mlp.router.gate.weight",
            "sigmoid"),                                      # the router's module calls it

}


@pytest.mark.parametrize("build", list(ROUTING), ids=lambda b: b.__name__)
def test_a_routing_bias_starts_at_zero_and_the_router_is_a_layer(build):
    """Ernie 4.5's router holds its routing bias in a child module (a frozen parameter),
    Laguna's as its own parameter beside its weight, AFMoE's MoE block holds it and passes it
    to its router: the router is still a linear layer (drawn, probed and measured as one) and
    the bias starts at 0, whatever it held, under every plan. Before: Laguna's router weight
    and AFMoE's ``expert_bias`` matched no rule."""
    bias_name, weight_name, act = ROUTING[build]
    for plan in ("auto", "he", "gpt2", "torch_default"):
        m = build()
        bias = m.get_parameter(bias_name)
        with torch.no_grad():
            bias.fill_(7.0)
        report, msgs = _apply(m, plan)
        assert not [w for w in msgs if "matched no rule" in w], msgs
        assert torch.equal(bias, torch.zeros_like(bias))
        recs = {r.name: r for r in report.records}
        assert recs[bias_name].rule == "routing bias"
        assert [tuple(f) for f in recs[weight_name].fans] == [(64, 4)]
        assert m.get_parameter(weight_name).abs().sum() > 0
    router = weight_name.rsplit(".", 1)[0]
    desc = initlab.describe(m)
    assert desc.method == "probe", desc.notes
    assert desc.layer(router).activation_name == act, desc.layer(router).activation_why
    rep = initlab.doctor(m, torch.randint(0, 128, (2, 16), generator=torch.Generator()
                                          .manual_seed(7)))
    assert router in {s.name for s in rep.layers}
    assert not any("did not run" in n for n in rep.notes), rep.notes


def _routed(m, ids, layers=(0, 1), router="mlp.gate"):
    """{layer: the experts its router sends a token of ``ids`` to}, from the router's own
    top-k indices (its third output)."""
    got = {}
    handles = [m.get_submodule(f"model.layers.{i}.{router}").register_forward_hook(
        lambda mod, inp, out, i=i: got.__setitem__(i, sorted(set(out[2].reshape(-1).tolist()))))
        for i in layers]
    with torch.no_grad():
        m(ids)
    for h in handles:
        h.remove()
    return got


def _set_experts_implementation(m, impl):
    for sub in m.modules():
        cfg = getattr(sub, "config", None)
        if cfg is not None and hasattr(cfg, "_experts_implementation"):
            cfg._experts_implementation = impl


def _logits_sum(out):
    return out.logits.sum()


def _manual_ratios(m, ids, bank="model.layers.{i}.mlp.experts", layers=(0, 1)):
    """{(layer, parameter, expert): |dL/dW_e| / |W_e|} from one plain backward of the same
    loss."""
    m.zero_grad()
    _logits_sum(m(ids)).backward()
    out = {}
    for i in layers:
        b = m.get_submodule(bank.format(i=i))
        for local in ("gate_up_proj", "down_proj"):
            p = getattr(b, local)
            for e in range(p.shape[0]):
                w = p[e].detach().double()
                out[(i, local, e)] = float(p.grad[e].double().norm() / w.norm())
    m.zero_grad()
    return out


def test_doctor_measures_every_routed_expert_and_both_transformers_paths_agree():
    """transformers' default grouped product and its eager per-expert loop compute the same
    experts: the doctor gives each routed expert's two projections a row with the same numbers
    on both paths (float32 products summed in another order: 1e-5 relative), and the weight
    gradient ratio is the slice of a plain backward's gradient."""
    m = mixtral()
    _apply(m, "auto")
    ids = torch.randint(0, 128, (2, 16), generator=torch.Generator().manual_seed(3))
    routed = _routed(m, ids)
    manual = _manual_ratios(m, ids)
    rows = {}
    for impl in ("grouped_mm", "eager"):
        _set_experts_implementation(m, impl)
        rep = initlab.doctor(m, ids, loss_fn=_logits_sum)
        rows[impl] = {s.name: s for s in rep.layers if ".experts." in s.name}
        assert not any("expert banks" in n for n in rep.notes), rep.notes
    _set_experts_implementation(m, "grouped_mm")
    want = {f"model.layers.{i}.mlp.experts.{local}[{e}]" for i in (0, 1) for e in routed[i]
            for local in ("gate_up_proj", "down_proj")}
    assert set(rows["grouped_mm"]) == set(rows["eager"]) == want
    for name, g in rows["grouped_mm"].items():
        e = rows["eager"][name]
        i, local, ex = int(name.split(".")[2]), name.split(".")[-1][:-3], int(name[-2])
        assert g.weight_shape == ([192, 64] if local == "gate_up_proj" else [64, 96])
        assert g.fan_in == (64 if local == "gate_up_proj" else 96)
        for field in ("z_mean", "z_std", "grad_out_rms", "grad_weight_ratio", "h_std"):
            a, b = getattr(g, field), getattr(e, field)
            assert (a is None) == (b is None), (name, field)
            if a is not None:
                assert a == pytest.approx(b, rel=1e-5, abs=1e-9), (name, field)
        assert g.grad_weight_ratio == pytest.approx(manual[(i, local, ex)], rel=1e-6), name
        if local == "gate_up_proj":   # silu on the gate half; the output projection: linear
            assert g.activation == e.activation == "silu" and g.h_std is not None, name
        else:
            assert g.activation is None and g.h_std is None, name


def test_doctor_reads_a_transposed_bank_as_out_by_in_with_its_bias_slices():
    m = gpt_oss()
    _apply(m, "auto")
    bank = m.model.layers[0].mlp.experts
    with torch.no_grad():   # distinct biases per expert, to see each row read its own slice
        bank.gate_up_proj_bias.copy_(torch.arange(bank.gate_up_proj_bias.numel(),
                                                  dtype=torch.float32).reshape(4, -1) / 1000)
    ids = torch.randint(0, 128, (2, 16), generator=torch.Generator().manual_seed(4))
    routed = _routed(m, ids, router="mlp.router")
    manual = _manual_ratios(m, ids)
    rep = initlab.doctor(m, ids, loss_fn=_logits_sum)
    rows = {s.name: s for s in rep.layers}
    for e in routed[0]:
        s = rows[f"model.layers.0.mlp.experts.gate_up_proj[{e}]"]
        assert s.weight_shape == [192, 64] and s.fan_in == 64   # stored (64, 192): (in, out)
        b = bank.gate_up_proj_bias[e].detach().double()
        assert s.bias_rms == pytest.approx(float(b.square().mean().sqrt()), rel=1e-12)
        assert s.grad_weight_ratio == pytest.approx(manual[(0, "gate_up_proj", e)], rel=1e-6)
        assert s.activation == "unknown"   # GPT-OSS's clamped GLU is functional: said, not guessed


def test_doctor_splits_llama4s_one_bmm_over_all_experts_by_expert():
    """Llama 4 multiplies every token by every expert in one ``torch.bmm``, the tokens not
    routed to an expert scaled to zero first: each expert's row is its routed tokens' product
    (z's std computed here from the bank's own input to 1e-9), the zero rows left out."""
    m = llama4()
    _apply(m, "auto")
    ids = torch.randint(0, 128, (2, 16), generator=torch.Generator().manual_seed(5))
    bank = m.get_submodule("model.layers.0.feed_forward.experts")
    seen = {}
    h = bank.register_forward_pre_hook(lambda mod, a: seen.__setitem__("x", a[0].detach()))
    with torch.no_grad():
        m(ids)
    h.remove()
    x = seen["x"].view(bank.gate_up_proj.shape[0], -1, bank.gate_up_proj.shape[1]).double()
    rep = initlab.doctor(m, ids)
    rows = {s.name: s for s in rep.layers}
    assert not any("expert banks" in n for n in rep.notes), rep.notes
    for e in range(x.shape[0]):
        routed = x[e][x[e].abs().amax(-1) > 0]
        name = f"model.layers.0.feed_forward.experts.gate_up_proj[{e}]"
        if not len(routed):
            assert name not in rows
            continue
        z = routed @ bank.gate_up_proj[e].detach().double()
        assert rows[name].z_std == pytest.approx(float(z.std(unbiased=False)), rel=1e-6)
        assert rows[name].activation == "silu" and rows[name].h_std is not None


def test_fixup_scales_a_banks_input_projections_and_zeroes_its_output():
    m = mixtral()
    _apply(m, "fixup")
    n = initlab.describe(m).n_residual                 # L = 4 branches of m = 2 layers
    up = m.get_parameter("model.layers.1.mlp.experts.gate_up_proj").detach()
    expect = math.sqrt(2 / 64) * n ** (-1 / 2)         # He per expert x L^(-1/(2m-2))
    assert float(up.std()) == pytest.approx(expect, rel=_std_tolerance(up.numel()))
    assert (m.get_parameter("model.layers.1.mlp.experts.down_proj") == 0).all()


def test_materialize_computes_a_routers_buffer_without_touching_the_global_stream():
    # DeepSeek-V3's router holds its weight and a meta buffer, e_score_correction_bias: HF's
    # _init_weights computes the buffer (and draws the weight, which the plan redraws)
    ref = deepseek_v3()
    initlab.apply(ref, "auto", seed=0)
    with torch.device("meta"):
        m = deepseek_v3()
    state = torch.get_rng_state()
    initlab.materialize(m, "auto", seed=0, device="cpu")
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(m.model.layers[1].mlp.gate.e_score_correction_bias, torch.zeros(4))
    for (name, a), b in zip(ref.state_dict().items(), m.state_dict().values()):
        assert torch.equal(a, b), name
    with torch.device("meta"):
        m = deepseek_v3()
    with pytest.raises(InitlabError, match="e_score_correction_bias"):
        initlab.materialize(m, "auto", seed=0, device="cpu", buffers="error")
