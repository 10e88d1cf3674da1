"""LoRA adapters as Hugging Face ``peft`` builds them (:mod:`initlab.modelinit.adapters`), on
transformers models built from small configs.

A LoRA wrapper holds the adapted layer as ``base_layer`` and computes base(x) + B(A(x)) * s.
Before, the description took each adapter's sum for a residual branch closed by ``lora_B`` (a
Llama with LoRA on o_proj/down_proj had 8 branches, not 4, and GPT-2's scaling went to the
adapters), and every plan drew B like a layer, so the adapted model no longer started as its
base. Now the wrapper is its base layer, B = 0, A is drawn as peft's config says, and the base
weights are those of the unwrapped model with the same seed (peft's ``base_model.model.`` and
``base_layer`` are stripped from the stream names)."""

from __future__ import annotations

import math

import pytest
import torch

import initlab
from hf_models import bert, gpt2, llama
from initlab.modelinit.describe import _clear_cache, describe
from initlab.util.hashing import canonical_param_name

peft = pytest.importorskip("peft", reason="peft is not installed (pip install peft)")

LLAMA_TARGETS = ["q_proj", "v_proj", "o_proj", "down_proj", "gate_proj"]


@pytest.fixture(autouse=True)
def _probe_anew():
    _clear_cache()


def lora(model, targets, **config):
    if "c_attn" in targets:            # GPT-2's Conv1D stores (in, out), as peft asks to say
        config.setdefault("fan_in_fan_out", True)
    cfg = peft.LoraConfig(r=4, lora_alpha=8, target_modules=targets, **config)
    return peft.get_peft_model(model, cfg)


def _base_params(pm):
    return {canonical_param_name(n): p for n, p in pm.named_parameters() if "lora_" not in n}


def _lora_params(pm, part):
    return {n: p for n, p in pm.named_parameters() if f"lora_{part}." in n}


def _closers(desc):
    return [canonical_param_name(x.name) for x in desc.layers if x.residual_branch is not None]


@pytest.mark.parametrize("build,targets", [(llama, LLAMA_TARGETS), (gpt2, ["c_attn", "c_proj"])],
                         ids=["llama", "gpt2"])
def test_the_wrapper_is_its_base_layer_in_the_description(build, targets):
    plain, pm = build(n_layer=2), lora(build(n_layer=2), targets)
    d0, d = describe(plain), describe(pm)
    assert d.method == "probe" and d.n_residual == d0.n_residual == 4
    assert [c.replace(".base_layer", "") for c in _closers(d)] == _closers(d0)
    # what follows each base layer is what follows the unwrapped layer
    acts = {canonical_param_name(x.name): x.activation_name for x in d0.layers}
    for x in d.layers:
        name = canonical_param_name(x.name).replace(".base_layer", "")
        if name in acts:
            assert x.activation_name == acts[name], x.name
    gate_b = d.layer("base_model.model.model.layers.0.mlp.gate_proj.lora_B.default") \
        if build is llama else None
    if gate_b is not None:      # B's sum goes through the base layer's activation
        assert gate_b.activation_name == "silu" and "LoRA B" in gate_b.activation_why


# BERT: LoRA on `dense` also wraps the MLM head's transform, on the main path; its parts once
# counted towards the plain depth, so `auto` gave that layer a deep stack's orthogonal init
@pytest.mark.parametrize("plan", ["auto", "gpt2", "zero_residual", "he"])
@pytest.mark.parametrize("build,targets", [(llama, LLAMA_TARGETS), (gpt2, ["c_attn", "c_proj"]),
                                           (bert, ["query", "value", "dense"])],
                         ids=["llama", "gpt2", "bert"])
def test_every_plan_starts_the_adapted_model_as_its_base(build, targets, plan):
    plain, pm = build(n_layer=2), lora(build(n_layer=2), targets)
    initlab.apply(plain, plan, seed=5)
    rep = initlab.apply(pm, plan, seed=5)
    assert not rep.unmatched
    own = dict(plain.named_parameters())
    base = _base_params(pm)
    assert set(base) == set(own)
    assert all(torch.equal(t, own[n]) for n, t in base.items())        # bit for bit
    assert all(not b.any() for b in _lora_params(pm, "B").values())    # B = 0
    assert all(a.abs().sum() > 0 for a in _lora_params(pm, "A").values())
    ids = torch.randint(0, 128, (2, 8), generator=torch.Generator().manual_seed(0))
    plain.eval(), pm.eval()
    with torch.no_grad():
        assert torch.equal(pm(ids).logits, plain(ids).logits)


def _standardized_a(pm, scale_of):
    """Every A's entries divided by its scale: one pooled sample."""
    return torch.cat([(a / scale_of(a)).flatten() for a in _lora_params(pm, "A").values()])


def test_a_is_drawn_as_peft_draws_it():
    """peft's default A is kaiming_uniform(a=sqrt(5)): U(+-1/sqrt(fan_in)), so A sqrt(fan_in)
    is U(-1, 1), std 1/sqrt(3). initlab's draw and peft's own are pooled over the 10 adapters
    (3,072 values each); the sample std's standard error for a uniform is sigma
    sqrt((kurtosis - 1) / 4n) = 0.0081 sigma: 5 standard errors is 4.1%."""
    pm = lora(llama(n_layer=2), LLAMA_TARGETS)
    torch.manual_seed(0)
    ours = lora(llama(n_layer=2), LLAMA_TARGETS)    # peft's draw from the global seed
    initlab.apply(pm, "auto", seed=0)

    def bound(a):
        return 1.0 / math.sqrt(a.shape[1])

    for model in (pm, ours):
        u = _standardized_a(model, bound)
        assert u.numel() == 3072 and u.abs().max() <= 1.0
        assert u.std().item() == pytest.approx(1 / math.sqrt(3), rel=0.041)
    rep = initlab.apply(pm, "auto", seed=0)
    rec = next(r for r in rep.records if "lora_A" in r.name)
    assert "kaiming_uniform(a=sqrt(5))" in rec.why and rec.rule == "LoRA A"


def test_gaussian_a_and_an_embedding_adapter():
    """``init_lora_weights="gaussian"``: A ~ N(0, 1/r^2); r = 4, so A r ~ N(0, 1) (3,072
    values: the std's standard error is sigma / sqrt(2n) = 0.0128 sigma, 5 of them 6.4%). An
    embedding's adapter is the other way round: A = 0 and B ~ N(0, 1)."""
    pm = lora(llama(n_layer=2), [*LLAMA_TARGETS, "embed_tokens"], init_lora_weights="gaussian")
    initlab.apply(pm, "auto", seed=0)
    z = _standardized_a(pm, lambda a: 1.0 / 4)
    assert z.numel() == 3072 and z.std().item() == pytest.approx(1.0, rel=0.064)
    emb = pm.base_model.model.model.embed_tokens
    assert not emb.lora_embedding_A["default"].any()
    b = emb.lora_embedding_B["default"]      # (64, 4): 256 values, 5 SE = 5 / sqrt(512) = 22%
    assert b.shape == (64, 4) and b.std().item() == pytest.approx(1.0, rel=0.22)


@pytest.mark.parametrize("config", [{"init_lora_weights": "pissa"}, {"use_dora": True}],
                         ids=["pissa", "dora"])
def test_adapters_computed_from_the_base_weight_are_kept_with_it(config):
    """PiSSA's A and B are the base weight's top singular directions and the base keeps the
    rest; DoRA's magnitude is the base weight's norm: drawing any of them alone would change
    the model. They are kept, and the report says why."""
    torch.manual_seed(0)
    pm = lora(llama(n_layer=2), ["q_proj", "o_proj"], **config)
    wrapped = [n for n, _ in pm.named_parameters() if ".q_proj." in n or ".o_proj." in n]
    before = {n: p.clone() for n, p in pm.named_parameters()}
    rep = initlab.apply(pm, "auto", seed=0)
    now = dict(pm.named_parameters())
    assert wrapped and all(torch.equal(now[n], before[n]) for n in wrapped)
    assert not torch.equal(now["base_model.model.model.layers.0.self_attn.k_proj.weight"],
                           before["base_model.model.model.layers.0.self_attn.k_proj.weight"])
    kept = [r for r in rep.records if r.rule == "LoRA (kept)"]
    assert len(kept) == len(wrapped) and all(r.initializer == "keep" for r in kept)


def test_lsuv_leaves_the_adapters_and_rescales_the_base_layers():
    pm = lora(llama(n_layer=2), LLAMA_TARGETS)
    ids = torch.randint(0, 128, (4, 16), generator=torch.Generator().manual_seed(0))
    rep = initlab.lsuv(pm, ids, seed=0)
    assert rep.converged
    assert any(n.endswith("o_proj.base_layer") for n in (x.name for x in rep.layers))
    assert all("lora_" in n for n in rep.structural) and len(rep.structural) == 20
    assert all(not b.any() for b in _lora_params(pm, "B").values())


def test_a_plain_checkpoint_loads_into_the_peft_model():
    """The unwrapped model's state dict names `model.layers.0.self_attn.q_proj.weight`; the
    PeftModel's base weight is `base_model.model.model.layers.0.self_attn.q_proj.base_layer.
    weight`: the same canonical name, so the checkpoint loads, and only the adapters are
    missing."""
    plain, pm = llama(n_layer=2), lora(llama(n_layer=2), LLAMA_TARGETS)
    sd = {k: v.clone() for k, v in plain.state_dict().items()}
    rep = initlab.load_pretrained(pm, sd, strict=False)
    assert not rep.unexpected and rep.missing and all("lora_" in k for k in rep.missing)
    base = _base_params(pm)
    assert all(torch.equal(base[k], v) for k, v in sd.items() if k in base)


def _lora_mlp(width):
    m = torch.nn.Sequential(torch.nn.Linear(16, width), torch.nn.ReLU(),
                            torch.nn.Linear(width, width), torch.nn.ReLU(),
                            torch.nn.Linear(width, 4))
    return lora(m, ["2"])


def test_mup_scales_lora_as_lora_plus_and_keeps_a_out_of_the_readout():
    """LoRA's A has width in its fan_in only, as a readout has. Before, μP took it for one: a
    1/m multiplier shrank its output, output_mult multiplied it, and readout_zero_init zeroed it
    beside B = 0, so that neither A nor B ever got a gradient. Now it is hidden-like, LoRA+'s
    scaling for Adam (eta_B / eta_A = m, A kept at peft's 1/sqrt(fan_in))."""
    pm = _lora_mlp(256)
    par = initlab.parametrize(pm, "mup", base=lambda: _lora_mlp(64), seed=3, output_mult=2.0,
                              readout_zero_init=True)
    a_name, b_name = "2.lora_A.default.weight", "2.lora_B.default.weight"
    a, b, readout = par[a_name], par[b_name], par["4.weight"]
    assert (a.klass, b.klass, readout.klass) == ("hidden", "input", "output")
    assert a.multiplier == 1.0 and readout.multiplier == pytest.approx(2.0 / 4)
    assert par.readout_multiplier == pytest.approx(2.0 / 4)
    assert b.effective_lr("adam") / a.effective_lr("adam") == pytest.approx(4.0)   # m = 4
    # A is the draw `apply` gives it (peft's kaiming_uniform(a=sqrt(5)) at fan_in 256), not
    # rescaled and not zeroed; the readout is zeroed
    ref = _lora_mlp(256)
    initlab.apply(ref, "torch_default", seed=3)
    own, theirs = dict(pm.named_parameters()), dict(ref.named_parameters())
    full = "base_model.model."
    assert torch.equal(own[full + a_name], theirs[full + a_name])
    assert own[full + a_name].abs().sum() > 0 and not own[full + "4.weight"].any()
    # the adapter trains: Adam steps on the parametrized model move B off zero, and A (peft froze
    # the base; the zeroed readout is trained here, as it would be from scratch)
    own[full + "4.weight"].requires_grad_(True)
    opt = torch.optim.Adam(par.param_groups(lr=1e-2))
    x = torch.randn(32, 16, generator=torch.Generator().manual_seed(0))
    y = torch.randn(32, 4, generator=torch.Generator().manual_seed(1))
    a0 = own[full + a_name].detach().clone()
    for _ in range(3):
        opt.zero_grad()
        (pm(x) - y).pow(2).mean().backward()
        opt.step()
    assert own[full + b_name].abs().sum() > 0 and not torch.equal(own[full + a_name], a0)
