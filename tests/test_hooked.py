"""Weights a torch hook computes (:mod:`initlab.modelinit.hooked`): pruning, and the old
``spectral_norm``/``weight_norm``; and the same normalizations as ``torch.nn.utils.parametrize``
parametrizations (and the orthogonal one), which initlab writes through ``right_inverse``.

Models pruned by ``torch.nn.utils.prune``. Pruning moves a layer's parameter to
``weight_orig``, keeps a ``weight_mask`` buffer and makes ``weight`` an attribute its forward
pre-hook recomputes. Re-initializing a pruned network is the lottery-ticket experiment
(Frankle & Carbin 2019: train, prune, rewind the survivors to their initialization), so a pruned
model must draw exactly the weights the unpruned model draws with the same seed, keep its mask,
and leave ``weight`` = weight_orig * mask, as its next forward computes it."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.utils.parametrizations as P
import torch.nn.utils.prune as prune

import initlab
from hf_models import gpt2, llama
from initlab.modelinit.describe import _clear_cache, describe


@pytest.fixture(autouse=True)
def _probe_anew():
    _clear_cache()


def mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(),
                         nn.Linear(32, 10))


def _rows(report):
    return sorted((r.name, r.initializer, r.rule) for r in report.records)


def _same_as_unpruned(pruned: nn.Module, ref: nn.Module) -> None:
    own = dict(ref.named_parameters())
    for name, t in pruned.named_parameters():
        assert torch.equal(t, own[name.replace("weight_orig", "weight")]), name


def _masked_consistently(model: nn.Module) -> int:
    n = 0
    for m in model.modules():
        if hasattr(m, "weight_orig"):
            assert torch.equal(m.weight, m.weight_orig * m.weight_mask)
            n += 1
    return n


def test_a_pruned_mlp_draws_what_the_unpruned_one_draws_and_keeps_its_mask():
    net, ref = mlp(), mlp()
    prune.l1_unstructured(net[0], "weight", amount=0.5)
    prune.random_unstructured(net[2], "weight", amount=0.3)
    masks = [net[0].weight_mask.clone(), net[2].weight_mask.clone()]
    batch = torch.zeros(4, 64)
    d = describe(net, batch=batch)
    assert d.method == "probe"                 # the meta copy of a pruned module (its `weight`
    p = d.param("0.weight")                    # is a computed tensor deepcopy refuses)
    assert p.tensor is net[0].weight_orig and p.role == "weight" and p.hooked
    assert any("pruned (a torch hook): drawn into `weight_orig`" in n for n in p.notes)
    rep = initlab.apply(net, "auto", seed=3, batch=batch)
    ref_rep = initlab.apply(ref, "auto", seed=3, batch=batch)
    assert not rep.unmatched and _rows(rep) == _rows(ref_rep)
    # in the unpruned order too (torch re-registers the pruned weight after the bias)
    assert [r.name for r in rep.records] == [r.name for r in ref_rep.records]
    first = next(r for r in rep.records if r.name == "0.weight")
    assert first.initializer.startswith("glorot")             # the tanh was seen
    _same_as_unpruned(net, ref)
    assert torch.equal(net[0].weight_mask, masks[0]) and torch.equal(net[2].weight_mask, masks[1])
    assert _masked_consistently(net) == 2
    # the forward agrees with the unpruned net whose weights are masked by hand
    x = torch.randn(8, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref[0].weight.mul_(masks[0])
        ref[2].weight.mul_(masks[1])
    assert torch.equal(net(x), ref(x))


@pytest.mark.parametrize("build", [gpt2, llama], ids=["gpt2", "llama"])
def test_a_globally_pruned_transformer_rewinds_to_the_unpruned_init(build):
    """Global magnitude pruning over attention, MLP and the readout (GPT-2's tied to the
    embedding: one tensor, pruned as the readout)."""
    m, ref = build(n_layer=2), build(n_layer=2)
    ends = ("c_attn", "c_fc", "q_proj", "up_proj", "lm_head")
    prune.global_unstructured([(mod, "weight") for n, mod in m.named_modules()
                               if n.endswith(ends)],
                              pruning_method=prune.L1Unstructured, amount=0.3)
    rep = initlab.apply(m, "auto", seed=0)
    assert rep.description.method == "probe"
    ref_rep = initlab.apply(ref, "auto", seed=0)
    assert not rep.unmatched and _rows(rep) == _rows(ref_rep)
    _same_as_unpruned(m, ref)
    assert _masked_consistently(m) == 5       # the tied readout's `weight` recomputed too


def test_lsuv_scales_a_pruned_weight_through_its_mask():
    net = mlp()
    prune.l1_unstructured(net[2], "weight", amount=0.5)
    mask = net[2].weight_mask.clone()
    x = torch.randn(256, 64, generator=torch.Generator().manual_seed(0))
    rep = initlab.lsuv(net, x, seed=0)
    assert [layer.name for layer in rep.layers] == ["0", "2", "4"]
    assert all(layer.converged for layer in rep.layers)
    with torch.no_grad():
        h = net[1](net[0](x))
        out = net[2](h)        # the pruning hook recomputes weight = weight_orig * mask
    assert abs(out.std().item() - 1.0) < 0.1          # LSUV's tol (0.1) on the masked layer
    assert torch.equal(net[2].weight_mask, mask) and _masked_consistently(net) == 1


def test_the_doctor_measures_pruned_layers_and_their_gradients():
    m = gpt2(n_layer=2)
    plain = gpt2(n_layer=2)
    prune.global_unstructured([(mod, "weight") for n, mod in m.named_modules()
                               if n.endswith(("c_attn", "c_fc"))],
                              pruning_method=prune.L1Unstructured, amount=0.3)
    ids = torch.randint(0, 128, (4, 16), generator=torch.Generator().manual_seed(0))
    rows = {s.name: s for s in initlab.doctor(m, ids).layers}
    assert set(rows) == {s.name for s in initlab.doctor(plain, ids).layers}
    c_attn = rows["transformer.h.0.attn.c_attn"]
    assert c_attn.grad_weight_ratio is not None        # the gradient is weight_orig's
    w = m.transformer.h[0].attn.c_attn.weight          # the statistics are the masked weight's
    assert c_attn.weight_std == pytest.approx(w.std(unbiased=False).item(), rel=1e-6)


def test_a_lottery_ticket_rewinds_from_the_unpruned_checkpoint():
    """Save the init, prune, rewind: the unpruned state dict (``0.weight``) loads into the
    pruned model's ``0.weight_orig`` (strict: the mask it lacks is the model's own), and a
    pruned state dict (``weight_orig`` + ``weight_mask``) loads as itself."""
    net = mlp()
    init = {k: v.clone() for k, v in net.state_dict().items()}
    prune.l1_unstructured(net[0], "weight", amount=0.5)
    prune.l1_unstructured(net[2], "weight", amount=0.5)
    mask = net[0].weight_mask.clone()
    with torch.no_grad():                       # "training" moved the weights
        for p in net.parameters():
            p.add_(1.0)
    rep = initlab.load_pretrained(net, init)
    assert not rep.missing and not rep.unexpected and "0.weight" in rep.loaded
    assert torch.equal(net[0].weight_orig, init["0.weight"])
    assert torch.equal(net[4].weight, init["4.weight"])
    assert torch.equal(net[0].weight_mask, mask) and _masked_consistently(net) == 2
    pruned_sd = {k: v.clone() for k, v in net.state_dict().items()}
    with torch.no_grad():
        net[0].weight_orig.zero_()
    rep = initlab.load_pretrained(net, pruned_sd)
    assert not rep.missing and torch.equal(net[0].weight_orig, init["0.weight"])
    assert _masked_consistently(net) == 2
    # the mask of a pruned checkpoint is loaded too, and `weight` follows it
    flipped = {**pruned_sd, "0.weight_mask": 1 - pruned_sd["0.weight_mask"]}
    initlab.load_pretrained(net, flipped)
    assert torch.equal(net[0].weight_mask, 1 - mask) and _masked_consistently(net) == 2



# ------------------------------------------------------------------ normalized and orthogonal


def _old_weight_norm(layer):
    with pytest.warns(FutureWarning):
        return torch.nn.utils.weight_norm(layer)


WRAPS = {"weight_norm": _old_weight_norm, "spectral_norm": torch.nn.utils.spectral_norm,
         "P.weight_norm": P.weight_norm, "P.spectral_norm": P.spectral_norm,
         "P.orthogonal": P.orthogonal}


def wrapped(name: str | None) -> nn.Sequential:
    net = mlp()
    if name is not None:
        net[0] = WRAPS[name](net[0])
    return net


def _sigma(w: torch.Tensor) -> float:
    return torch.linalg.matrix_norm(w.detach(), 2).item()


@pytest.mark.parametrize("name", list(WRAPS))
def test_a_normalized_or_orthogonal_layer_computes_the_draw(name):
    """An orthogonal draw has sigma 1 and is orthogonal: every one of these layers computes it
    exactly (weight norm: g = ||W||, v = W; spectral norm: W / 1; torch's orthogonal
    parametrization: its base set to W). Before, the old APIs' tensors were unmatched and the
    orthogonal parametrization computed an all-zero weight from the draw."""
    net, ref = wrapped(name), mlp()
    rep = initlab.apply(net, "orthogonal", seed=4)
    initlab.apply(ref, "orthogonal", seed=4)
    assert not rep.unmatched
    assert torch.allclose(net[0].weight, ref[0].weight, atol=1e-5)
    assert rep["0.weight"].std == pytest.approx(ref[0].weight.std(unbiased=False).item(),
                                                rel=1e-5)      # the draw's statistics
    assert torch.equal(net[2].weight, ref[2].weight)
    x = torch.randn(8, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(net(x), ref(x), atol=1e-5)     # the forward computes it too


@pytest.mark.parametrize("name", ["spectral_norm", "P.spectral_norm"])
def test_a_spectral_norm_is_refitted_to_the_weight_drawn(name):
    """The power iteration's vectors describe the old weight: left as they were, the old API
    divided a Glorot draw by a sigma estimate 220x too small. They are fitted (to sigma's
    relative change 1e-6), so the layer's weight has spectral norm 1 (tolerance: the iteration's
    convergence, measured 4e-6 here; torch's own 15 steps left 2.4%)."""
    net = wrapped(name)
    initlab.apply(net, "glorot", seed=0)
    assert _sigma(net[0].weight) == pytest.approx(1.0, abs=1e-4)
    net.eval()                               # (no power step in eval: the vectors as fitted)
    with torch.no_grad():
        net(torch.zeros(2, 64))
    assert _sigma(net[0].weight) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("name", ["weight_norm", "P.weight_norm"])
def test_lsuv_rescales_a_weight_normed_layer_through_g(name):
    """Scaling v does nothing under weight norm (g v / ||v||): LSUV scales the weight and
    stores it back (g = ||c W||), so the output std reaches 1 from an input of std 3."""
    net = wrapped(name)
    x = torch.randn(256, 64, generator=torch.Generator().manual_seed(0)) * 3
    rep = initlab.lsuv(net, x, seed=0)
    assert [layer.name for layer in rep.layers] == ["0", "2", "4"] and rep.converged
    with torch.no_grad():
        assert abs(net[0](x).std().item() - 1.0) < 0.1           # LSUV's tol
    assert rep.init_report["0.weight"].std == pytest.approx(
        net[0].weight.std(unbiased=False).item(), rel=1e-5)


@pytest.mark.parametrize("name", ["spectral_norm", "P.spectral_norm", "P.orthogonal"])
def test_lsuv_leaves_a_fixed_scale_layer_orthonormal_and_says_so(name):
    net = wrapped(name)
    x = torch.randn(256, 64, generator=torch.Generator().manual_seed(0)) * 3
    rep = initlab.lsuv(net, x, seed=0)
    assert rep.normalized == ["0"] and [layer.name for layer in rep.layers] == ["2", "4"]
    assert "scale is fixed" in str(rep) and rep.to_dict()["normalized"] == ["0"]
    w = net[0].weight.detach()
    assert torch.allclose(w @ w.T, torch.eye(32), atol=1e-4)    # the orthonormal pre-init


def test_a_state_dict_without_the_hook_loads_into_a_weight_normed_model():
    """`0.weight` of a plain model loads as g = ||W||, v = W (the layer computes W); strict."""
    plain = mlp()
    sd = {k: v.clone() for k, v in plain.state_dict().items()}
    net = wrapped("weight_norm")
    rep = initlab.load_pretrained(net, sd)
    assert not rep.missing and not rep.unexpected
    assert torch.allclose(net[0].weight, plain[0].weight, atol=1e-6)
    spec = wrapped("spectral_norm")
    initlab.load_pretrained(spec, sd)
    assert torch.equal(spec[0].weight_orig, plain[0].weight)
    assert _sigma(spec[0].weight) == pytest.approx(1.0, abs=1e-4)     # its vectors fitted


@pytest.mark.parametrize("name", ["spectral_norm", "P.spectral_norm", "P.orthogonal"])
def test_a_failed_apply_restores_the_parametrization_state_too(name):
    """Writing through an orthogonal parametrization sets its `base` buffer, and a spectral
    norm's refit changes its vectors: a draw that fails later in the same apply restores
    them with the parameters (the model unchanged)."""
    from initlab.modelinit.rules import Plan, Rule
    from initlab.modelinit.streams import RNG_BACKENDS, RngBackend

    net = wrapped(name)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    calls = []

    def flaky(tensor, init, **kw):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("device fell over")
        RNG_BACKENDS["torch"].fill(tensor, init, **kw)

    RNG_BACKENDS["flaky"] = RngBackend("flaky", "test", flaky)
    try:
        with pytest.raises(RuntimeError, match="device fell over"):
            initlab.apply(net, Plan([Rule("0.weight", "orthogonal"), Rule("*", "glorot_uniform")],
                                    warn_unused=False), seed=0, rng="flaky")
    finally:
        del RNG_BACKENDS["flaky"]
    assert all(torch.equal(v, state[k]) for k, v in net.state_dict().items())
