"""The model description on more Hugging Face architectures than GPT-2/Llama/BERT/T5/ViT, built
from small configs: the probe runs on an input built from each config (encoder-decoders, two
towers, raw audio), and every residual branch is found through layer scales and stochastic depth,
which the residual plans and the doctor rely on."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
import torch.nn as nn
import transformers

import initlab
from hf_models import (
    ARCHITECTURES,
    apertus,
    bart,
    beit,
    bloom,
    clap,
    clip,
    convnext,
    convnextv2,
    cpmant,
    dinov2,
    gpt_neox,
    levit,
    opt,
    poolformer,
    sam_vision,
    siglip,
    swin,
    swinv2,
    wav2vec2,
)
from initlab.modelinit.dataflow import unit_kind_of
from initlab.modelinit.stochastic import is_stochastic_depth

#: architectures where a layer's activation was once "unknown" (what stood after it)
SEEN_THROUGH = {"levit": "a parameterless subsample module (a view and a strided slice)",
                "hiera": "a max over a window's positions", "mobilevit": "interpolate",
                "deberta_v2": "`pad_token_id in input_ids` on meta (names-fallback)",
                "bloom": "its own BloomGelu module",
                "vit_mae": "a gather of a random share of the patches",
                "olmo": "layer norms without parameters",
                "llama4": "RoPE in complex numbers (view_as_complex, view_as_real)",
                "apertus": "its xIELU module (the registry's xielu at its starting slopes)"}


@pytest.mark.parametrize("name", sorted(SEEN_THROUGH))
def test_every_layers_activation_is_found_through_what_stood_after_it(name):
    desc = initlab.describe(ARCHITECTURES[name][0]())
    assert desc.method == "probe", desc.notes
    unknown = [(layer.name, layer.activation_why) for layer in desc.layers
               if layer.activation == "unknown"]
    assert unknown == [], (SEEN_THROUGH[name], unknown)


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_probe_runs_and_finds_every_residual_branch(name):
    build, branches = ARCHITECTURES[name]
    desc = initlab.describe(build())
    assert desc.method == "probe", desc.notes
    assert len(desc.residual_branches) == branches, [b.closing for b in desc.residual_branches]


@pytest.mark.parametrize("name", ["dinov2", "beit", "swin", "bart"])
def test_zero_residual_zeroes_every_branch(name):
    build, branches = ARCHITECTURES[name]
    m = build()
    with warnings.catch_warnings():
        # every parameter matched: relative-position tables and layer scales included
        warnings.filterwarnings("error", message=".*matched no rule")
        initlab.apply(m, "zero_residual", seed=0)
    found = initlab.describe(m).residual_branches
    assert len(found) == branches
    for b in found:
        # the closing layer, or the norm after it inside the branch (BN's gamma), is zero
        target = b.norms_after[-1] if b.norms_after else b.closing
        assert (m.get_submodule(target).weight == 0).all(), (b.closing, target)


class DropPath(nn.Module):
    """timm's stochastic depth: drops a whole residual branch per example in training."""

    def __init__(self, p):
        super().__init__()
        self.p = p

    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        keep = (torch.rand(x.shape[0], *([1] * (x.dim() - 1)), device=x.device) > self.p)
        return x * keep / (1 - self.p)


class LayerScale(nn.Module):
    def __init__(self, d, init=1e-5):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((d,), init))

    def forward(self, x):
        return x * self.gamma


class Block(nn.Module):
    def __init__(self, d=16):
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.fc1, self.fc2 = nn.Linear(d, 2 * d), nn.Linear(2 * d, d)
        self.ls = LayerScale(d)
        self.drop_path = DropPath(0.5)

    def forward(self, x):
        return x + self.drop_path(self.ls(self.fc2(torch.relu(self.fc1(self.norm(x))))))


def test_layer_scale_and_drop_path_keep_a_users_branches_visible():
    m = nn.Sequential(Block(), Block(), Block(), nn.Linear(16, 3))
    assert unit_kind_of(m[0].ls) is None and unit_kind_of(m[0].drop_path) is None
    assert is_stochastic_depth(m[0].drop_path) and not is_stochastic_depth(m[0].ls)
    desc = initlab.describe(m, batch=torch.zeros(2, 16))
    assert [b.closing for b in desc.residual_branches] == ["0.fc2", "1.fc2", "2.fc2"]
    # relu found through the branch; fc2 closes it (linear)
    assert desc.layer("0.fc1").activation[0].name == "relu"


def test_doctor_switches_drop_path_off():
    m = swin(drop_path_rate=0.5)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*matched no rule")  # rel.-pos. tables too
        initlab.apply(m, "gpt2", seed=0)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    losses = []
    for seed in (1, 2):
        torch.manual_seed(seed)  # drop path would draw another set of dropped examples
        losses.append(initlab.doctor(m, {"pixel_values": x}).meta["loss_value"])
    with torch.no_grad():
        m.eval()
        expect = float(m(pixel_values=x).logits.sum())
    assert losses[0] == losses[1] == pytest.approx(expect, rel=1e-5)


def _global_states():
    import random

    import numpy as np
    return (torch.random.get_rng_state(), random.getstate(),
            np.random.get_state()[1].copy())  # noqa: NPY002


@pytest.mark.parametrize("build, config, branches", [
    (wav2vec2, {"layerdrop": 1.0}, 4),                            # config.layerdrop, read in forward
    (bart, {"encoder_layerdrop": 1.0, "decoder_layerdrop": 1.0}, 5),  # copied onto the module
    (opt, {"layerdrop": 1.0}, 4),
])
def test_layerdrop_never_hides_a_layer_and_the_global_random_state_is_kept(build, config,
                                                                           branches):
    # LayerDrop at 1.0 would skip every layer of a train-mode forward; the probe switches it off
    # (and SpecAugment), restores the settings, and leaves the user's global streams as they were
    m = build(**config)
    assert m.training
    before = _global_states()
    desc = initlab.describe(m)
    after = _global_states()
    assert len(desc.residual_branches) == branches, [b.closing for b in desc.residual_branches]
    assert torch.equal(before[0], after[0]) and before[1] == after[1]
    assert (before[2] == after[2]).all()
    for key, value in config.items():
        assert getattr(m.config, key) == value
    if build is bart:
        assert m.model.encoder.layerdrop == 1.0 and m.model.decoder.layerdrop == 1.0
    if build is wav2vec2:
        assert m.config.apply_spec_augment is True


def test_doctor_runs_every_layer_of_a_layerdrop_model():
    m = wav2vec2(layerdrop=1.0)
    initlab.apply(m, "auto", seed=0)
    x = torch.randn(2, 16000, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    before = torch.random.get_rng_state()
    report = initlab.doctor(m, {"input_values": x})
    assert torch.equal(torch.random.get_rng_state(), before)
    assert m.training and m.config.layerdrop == 1.0
    seen = {s.name for s in report.layers}
    for i in range(2):  # both encoder layers ran (LayerDrop 1.0 would have skipped both)
        assert f"wav2vec2.encoder.layers.{i}.feed_forward.output_dense" in seen
    with torch.no_grad():
        m.eval()
        expect = float(m(input_values=x).logits.sum())
    # no LayerDrop, dropout or SpecAugment noise: the doctor's loss is the eval forward's
    assert report.meta["loss_value"] == pytest.approx(expect, rel=1e-5)


def test_gpt2_counts_both_layers_of_a_parallel_block():
    # GPT-2's N is the number of residual layers: a parallel block adds attention and MLP at one
    # addition, so 2 layers per block (N = 2 n_layer, as the n_layer= override and Megatron's
    # scaled init), not 1 per addition
    m = gpt_neox()
    desc = initlab.describe(m)
    assert desc.method == "probe" and len(desc.residual_branches) == 2
    closers = {c for b in desc.residual_branches for c in b.closing_layers}
    assert closers == {f"gpt_neox.layers.{i}.{n}" for i in range(2)
                       for n in ("attention.dense", "mlp.dense_4h_to_h")}
    report = initlab.apply(m, "gpt2", seed=0)
    same = initlab.apply(gpt_neox(), initlab.plans.get("gpt2", m, n_layer=2), seed=0)
    for name in closers:
        w = m.get_submodule(name).weight.detach()
        # N(0, (0.02/sqrt(4))^2): the sample std's relative standard error is 1/sqrt(2n); 5 of them
        assert float(w.std()) == pytest.approx(0.01, rel=5 / (2 * w.numel()) ** 0.5), name
    stds = {r.name: r.expected_std for r in report.records}
    assert stds == {r.name: r.expected_std for r in same.records}


@pytest.mark.parametrize("build, value", [(dinov2, 1.0), (beit, 0.1), (convnext, 1e-6),
                                          (poolformer, 1e-5)])
@pytest.mark.parametrize("plan", ["auto", "he", "gpt2"])
def test_layer_scales_start_at_the_configs_constant(build, value, plan):
    m = build()
    with torch.no_grad():   # the constructor's value is overwritten by the plan's
        for _, t in initlab.modelinit.tables.layer_scales(m):
            t.fill_(7.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = initlab.apply(m, plan, seed=0)
    assert not [w for w in caught if "matched no rule" in str(w.message)]
    scales = initlab.modelinit.tables.layer_scales(m)
    assert len(scales) == (2 if build is convnext else 4)
    recs = {r.name: r for r in report.records}
    for name, t in scales:
        assert torch.equal(t, torch.full_like(t, value)), name
        assert "config." in recs[name].why


def test_a_users_layer_scale_keeps_its_constant_and_other_vectors_are_not_layer_scales():
    class GlobalResponseNorm(nn.Module):  # timm's layout: 1-D weight and bias and an eps,
        def __init__(self, d):               # which is a norm by structure but for its name
            super().__init__()
            self.eps = 1e-6
            self.weight, self.bias = nn.Parameter(torch.ones(d)), nn.Parameter(torch.ones(d))

        def forward(self, x):
            n = x.norm(dim=-1, keepdim=True)
            return x + self.weight * (x * n / (n.mean(-1, keepdim=True) + self.eps)) + self.bias

    m = nn.Sequential(Block(), GlobalResponseNorm(16), nn.Linear(16, 3))
    names = [n for n, _ in initlab.modelinit.tables.layer_scales(m)]
    assert names == ["0.ls.gamma"]
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*matched no rule")
        report = initlab.apply(m, "he", seed=0)
    assert torch.equal(m[0].ls.gamma, torch.full((16,), 1e-5))
    # the response norm starts as the identity (gamma = beta = 0), not as a norm's (1, 0)
    recs = {r.name: r for r in report.records}
    for local in ("weight", "bias"):
        assert torch.equal(getattr(m[1], local), torch.zeros(16)), local
        assert recs[f"1.{local}"].rule == "response norm"
        assert recs[f"1.{local}"].role not in ("norm_scale", "norm_shift")
    assert "constructor's constant" in next(r for r in report.records
                                             if r.name == "0.ls.gamma").why
    with torch.device("meta"):
        meta = nn.Sequential(Block(), nn.Linear(16, 3))
    # on meta, with no config, the value is unknown: unmatched, and materialize says so
    with pytest.raises(initlab.InitlabError, match="0.ls.gamma"):
        initlab.materialize(meta, "he", seed=0, device="cpu")


# ---------------------------------------------- relative-position tables and logit temperatures
_LOG10, _CLIP = math.log(10.0), math.log(1 / 0.07)


def _tables(m):
    """{name: the value the architecture starts it at}, from the model's own code paths."""
    if isinstance(m, transformers.SiglipModel):
        return {"logit_scale": _LOG10, "logit_bias": -10.0}
    if isinstance(m, transformers.ClapModel):  # CLAP's config holds 1/tau, the parameter log
        v = math.log(m.config.logit_scale_init_value)
        return {"logit_scale_a": v, "logit_scale_t": v}
    if isinstance(m, transformers.CLIPModel):
        return {"logit_scale": m.config.logit_scale_init_value}
    out = {}
    for n, _ in m.named_parameters():
        if n.endswith(("relative_position_bias_table", "attention_biases",  # LeViT's
                       "position_bias.relative_attention_bias",    # CPM-Ant's
                       "attn.rel_pos_h", "attn.rel_pos_w")):        # SAM's
            out[n] = 0.0
        elif n.endswith((".grn.weight", ".grn.bias")):   # ConvNeXt V2: the identity at 0
            out[n] = 0.0
        elif n.endswith("attention.self.logit_scale"):      # Swin-V2, per head
            out[n] = _LOG10
    return out


@pytest.mark.parametrize("build", [clip, siglip, clap, swin, swinv2, levit, convnextv2, cpmant,
                                   sam_vision], ids=lambda b: b.__name__)
@pytest.mark.parametrize("plan", ["auto", "he", "gpt2"])
def test_position_tables_and_logit_temperatures_start_as_the_architecture_does(build, plan):
    m = build()
    want = _tables(m)
    assert want, "the factory has no such tables"
    params = dict(m.named_parameters())
    with torch.no_grad():   # as if trained: the start comes from the architecture, not the tensor
        for name in want:
            params[name].fill_(7.0)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*matched no rule")
        report = initlab.apply(m, plan, seed=0)
    recs = {r.name: r for r in report.records}
    for name, value in want.items():
        t = params[name].detach()
        assert torch.equal(t, torch.full_like(t, value)), (name, t.reshape(-1)[:3])
        assert recs[name].rule in ("relative position", "logit scale", "response norm"), \
            recs[name]
    if build is siglip:   # the attention-pooling query is a free token: the embedding rule
        probe = recs["vision_model.head.probe"]
        assert probe.rule == "token/position" and probe.role == "embedding", probe


@pytest.mark.parametrize("build", [dinov2, clip, siglip, swin, swinv2, poolformer, levit,
                                   convnextv2, apertus], ids=lambda b: b.__name__)
def test_a_meta_model_with_tables_materializes_as_apply_draws_it(build):
    """Layer scales (DINOv2's lambda1), relative-position tables, logit temperatures and
    Apertus' xIELU alphas: a meta model materializes to what apply draws (each was unmatched
    once: an error)."""
    ref = build()
    initlab.apply(ref, "auto", seed=0)
    with torch.device("meta"):
        m = build()
    initlab.materialize(m, "auto", seed=0, device="cpu")
    for (name, a), b in zip(ref.state_dict().items(), m.state_dict().values()):
        assert torch.equal(a, b), name


def test_a_users_logit_scale_is_clips_and_an_unknown_shape_is_left_unmatched():
    class Tower(nn.Module):   # open_clip's layout: a scalar logit_scale, no config
        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(8, 4)
            self.logit_scale = nn.Parameter(torch.tensor(0.0))

        def forward(self, x):
            return self.proj(x) * self.logit_scale.exp()

    m = Tower()
    report = initlab.apply(m, "auto", seed=0)
    assert float(m.logit_scale.detach()) == pytest.approx(_CLIP, rel=1e-7)
    assert "CLIP" in next(r for r in report.records if r.name == "logit_scale").why

    class Odd(Tower):
        def __init__(self):
            super().__init__()
            self.logit_scale = nn.Parameter(torch.full((4,), 3.0))  # no known start for this

    odd = Odd()
    with pytest.warns(UserWarning, match="logit_scale"):
        initlab.apply(odd, "auto", seed=0)
    assert torch.equal(odd.logit_scale.detach(), torch.full((4,), 3.0))


def test_blooms_own_gelu_is_the_tanh_gelu_the_registry_knows():
    """BLOOM's MLP activation is its own module (``BloomGelu``, sqrt(2/pi) written 0.79788456):
    found as gelu_tanh, and numerically that function (|difference| below float32's rounding of
    its constant, 1e-6 on [-6, 6])."""
    from initlab.core.activations import get_activation

    m = bloom()
    desc = initlab.describe(m)
    ups = [layer for layer in desc.layers if layer.name.endswith("dense_h_to_4h")]
    assert len(ups) == 2 and all(layer.activation_name == "gelu_tanh" for layer in ups), ups
    x = torch.linspace(-6, 6, 2001, dtype=torch.float64)
    act = m.transformer.h[0].mlp.gelu_impl
    ref = torch.from_numpy(get_activation("gelu_tanh").f(x.numpy()))
    assert float((act(x) - ref).abs().max()) < 1e-6


class Assembled(nn.Module):
    """Two layers' outputs written into one new tensor, by ``copy_`` into views of a
    ``new_empty`` (multi-head latent attention's keys) or by item assignment, then an
    activation: the activation follows both layers."""

    def __init__(self, how):
        super().__init__()
        self.how = how
        self.a, self.b = nn.Linear(8, 4), nn.Linear(8, 4)
        self.out = nn.Linear(8, 2)

    def forward(self, x):
        u, v = self.a(x), self.b(x)
        h = u.new_empty(*u.shape[:-1], 8)
        if self.how == "copy":
            h[..., :4].copy_(u)
            h[..., 4:].copy_(v)
        else:
            h[..., :4] = u
            h[..., 4:] = v
        return self.out(torch.tanh(h))


@pytest.mark.parametrize("how", ["copy", "setitem"])
def test_a_tensor_assembled_in_place_carries_its_layers_outputs(how):
    """Before: ``new_empty`` and ``copy_`` were consumers the registry did not know, so both
    layers' activation was "unknown" (Kimi Linear's kv_a_proj_with_mqa and kv_b_proj); item
    assignment returned nothing and the layers' outputs were never seen."""
    desc = initlab.describe(Assembled(how), torch.zeros(2, 8))
    assert desc.method == "probe", desc.notes
    acts = {layer.name: layer.activation_name for layer in desc.layers}
    assert acts == {"a": "tanh", "b": "tanh", "out": None}, desc.layers


def test_kimi_linears_latent_attention_is_linear_not_unknown():
    from hf_models import kimi_linear

    desc = initlab.describe(kimi_linear())
    rows = {layer.name: layer for layer in desc.layers}
    for local in ("kv_a_proj_with_mqa", "kv_b_proj"):
        layer = rows[f"model.layers.1.self_attn.{local}"]
        assert layer.activation is None, (local, layer.activation_why)


class FreeNorm(nn.Module):
    """An RMSNorm of a user's own without parameters (NanoChat's)."""

    def __init__(self, eps=1e-6):
        super().__init__()
        self.variance_epsilon = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.variance_epsilon)


class Rotary(nn.Module):
    """A rotary embedding: given the value states only for their dtype (Moshi's, Csm's)."""

    def forward(self, x, pos):
        ang = pos[..., None].float() * torch.arange(4, dtype=torch.float32, device=pos.device)
        return ang.cos().to(x.dtype), ang.sin().to(x.dtype)


class PostNormBlocks(nn.Module):
    """Two post-norm residual blocks, x = norm(x + fc2(relu(fc1(x)))), with parameterless
    norms, and a rotary module that is handed a layer's output."""

    def __init__(self, d=8):
        super().__init__()
        self.fc1 = nn.ModuleList(nn.Linear(d, 2 * d) for _ in range(2))
        self.fc2 = nn.ModuleList(nn.Linear(2 * d, d) for _ in range(2))
        self.norm = nn.ModuleList(FreeNorm() for _ in range(2))
        self.v = nn.Linear(d, d)
        self.rotary = Rotary()
        self.head = nn.Linear(d, 3)

    def forward(self, x):
        for fc1, fc2, norm in zip(self.fc1, self.fc2, self.norm):
            x = norm(x + fc2(torch.relu(fc1(x))))
        v = self.v(x)
        cos, sin = self.rotary(v, torch.arange(x.shape[-1], device=x.device))
        return self.head(torch.tanh(v) * cos.sum() + sin.sum())


def test_a_norm_without_parameters_is_a_norm_and_a_rotarys_input_is_not_consumed():
    """Before: a parameterless norm of an unknown class was an opaque module, so the layer
    before it had activation "unknown" (OLMo's o_proj and down_proj, NanoChat's q/k_proj); a
    rotary embedding handed v_proj's output (only for its dtype) made v_proj "unknown"
    (Moshi). Now the norm passes the layer's output on (fc2 closes its branch: no activation)
    and the rotary module reads nothing of v, whose tanh is found. zero_residual zeroes fc2 (a
    parameterless norm has nothing to zero), so each block starts as norm(x)."""
    model = PostNormBlocks()
    desc = initlab.describe(model, torch.zeros(2, 8))
    assert desc.method == "probe", desc.notes
    acts = {layer.name: layer.activation_name for layer in desc.layers}
    assert acts == {"fc1.0": "relu", "fc1.1": "relu", "fc2.0": None, "fc2.1": None,
                    "v": "tanh", "head": None}, desc.layers
    assert [b.closing for b in desc.residual_branches] == ["fc2.0", "fc2.1"]
    assert all(b.norms_after == [] for b in desc.residual_branches)
    initlab.apply(model, "zero_residual", seed=0)
    for fc2 in model.fc2:
        assert torch.count_nonzero(fc2.weight) == 0 and torch.count_nonzero(fc2.bias) == 0
    assert torch.count_nonzero(model.fc1[0].weight) > 0


@pytest.mark.parametrize("name", ["llava", "gemma3_vlm"])
def test_an_image_text_model_is_probed_with_its_image_tokens(name):
    """An image-text model's probe input holds as many image tokens as its vision tower gives
    features (found on a meta copy), so both towers and the projector run; before, pixel values
    beside 8 text tokens failed HF's token count check and the whole model fell back to names."""
    m = ARCHITECTURES[name][0]()
    desc = initlab.describe(m)
    assert desc.method == "probe", desc.notes
    assert [layer.name for layer in desc.layers if "did not run" in layer.activation_why] == []
    if name == "llava":
        proj = desc.layer("model.multi_modal_projector.linear_1")
        assert proj.activation[0].name == "gelu", proj.activation_why


def test_an_image_text_model_whose_image_cannot_go_in_is_probed_on_its_text():
    """When the image does not go in (here: the vision tower fails on it), the text alone is
    probed: the language model's dataflow is seen, the vision tower is said not to have run."""
    from hf_models import llava

    m = llava()

    def broken(*args, **kwargs):
        raise RuntimeError("no image here")

    m.model.vision_tower.forward = broken
    desc = initlab.describe(m)
    assert desc.method == "probe", desc.notes
    not_run = {layer.name for layer in desc.layers if "did not run" in layer.activation_why}
    assert not_run and all(n.startswith(("model.vision_tower", "model.multi_modal_projector"))
                           for n in not_run), not_run
    up = desc.layer("model.language_model.layers.0.mlp.up_proj")
    assert up.activation != "unknown", up.activation_why


def test_the_probe_input_of_an_image_text_model_holds_one_token_per_image_feature():
    """LLaVA on 32x32 images in 8x8 patches: 16 patch features (CLIP's class token dropped), so
    the built input holds 8 text tokens then 16 image tokens; models that compare the two counts
    in Python (GOT-OCR2) run only with it."""
    from hf_models import llava
    from initlab.modelinit.inputs import config_inputs

    m = llava()
    (args, kw), *rest = config_inputs(m)
    ids = kw["input_ids"]
    assert ids.shape == (1, 8 + 16) and tuple(kw["pixel_values"].shape) == (1, 3, 32, 32)
    assert ids.is_meta and rest[0][1].keys() == {"input_ids"}   # then the text alone


def test_a_one_config_image_text_model_is_probed_with_its_pixels():
    """ViLT has one config (image_size beside vocab_size, no vision_config) and a forward that
    asks for pixel_values beside the text. The built input held the text alone, the forward
    refused it, and the model was described from its names; now the pixels go in too."""
    import transformers

    from initlab.modelinit.inputs import config_inputs

    cfg = transformers.ViltConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                  intermediate_size=128, image_size=32, patch_size=8,
                                  vocab_size=128, max_position_embeddings=16)
    m = transformers.ViltModel(cfg)
    (_, kw), *_ = config_inputs(m)
    assert tuple(kw["pixel_values"].shape) == (1, 3, 32, 32) and "input_ids" in kw
    desc = initlab.describe(m)
    assert desc.method in ("probe", "probe-real"), desc.notes
    patch = desc.layer("embeddings.patch_embeddings.projection")
    assert patch.calls == 1 and "did not run" not in patch.activation_why
    assert [x.name for x in desc.layers if "did not run" in x.activation_why] == []


def _groupvit():
    import transformers

    cfg = transformers.GroupViTConfig(
        text_config=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, vocab_size=128, max_position_embeddings=16),
        vision_config=dict(hidden_size=64, intermediate_size=128, depths=[1, 1],
                           num_group_tokens=[8, 0], num_output_groups=[8, 8],
                           num_attention_heads=4, image_size=32, patch_size=8),
        projection_dim=32, projection_intermediate_dim=64)
    return transformers.GroupViTModel(cfg)


def test_a_training_mode_batchnorm_takes_a_batch_of_one_in_the_probe():
    """GroupViT's projection heads hold a BatchNorm1d, in training mode as built; the input
    built from the config is a batch of one, which BatchNorm refuses in training. The whole
    model was described from its names; the probe now runs BatchNorm from shapes (it computes
    nothing inside a unit). A user's batch of one fits too, where the real forward fails."""
    desc = initlab.describe(_groupvit())
    assert desc.method == "probe", desc.notes
    assert [x.name for x in desc.layers if "did not run" in x.activation_why] == []
    head = desc.layer("visual_projection.0")             # Linear -> BatchNorm1d -> ReLU
    assert head.activation_name == "relu", head.activation_why
    net = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
    d = initlab.describe(net, batch=torch.randn(1, 4))
    assert d.method == "probe" and d.layer("0").activation_name == "relu"
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        net(torch.randn(1, 4))                           # the model itself refuses it
