"""initlab.apply on real architectures from well-known libraries, built from their configs with
no download: Hugging Face transformers' GPT-2 and timm's ResNet-18 (skipped when the package is
not installed or cannot be imported)."""

from __future__ import annotations

import math

import pytest
import torch

import initlab


@pytest.fixture(autouse=True)
def _no_grad():
    with torch.no_grad():
        yield


def assert_std(t, sigma):
    # sample std of n normal draws: relative standard error 1/sqrt(2(n-1)); 6 of them
    n = t.numel()
    s = float(t.double().std())
    assert abs(s / sigma - 1) < 6 / math.sqrt(2 * (n - 1)), (s, sigma)


def gpt2_model(n_layer=2):
    from hf_models import gpt2  # here, not at the top: skips only the GPT-2 tests

    return gpt2(n_layer)


def test_gpt2_plan_on_hugging_face_gpt2():
    m = gpt2_model(n_layer=3)
    rep = initlab.apply(m, "gpt2", seed=0)
    assert rep.unmatched == []
    res = 0.02 / math.sqrt(2 * 3)                 # n_layer read from model.config
    for i in range(3):
        h = m.transformer.h[i]
        assert_std(h.attn.c_proj.weight, res)
        assert_std(h.mlp.c_proj.weight, res)
        assert_std(h.attn.c_attn.weight, 0.02)
        assert_std(h.mlp.c_fc.weight, 0.02)
        assert torch.count_nonzero(h.attn.c_attn.bias) == 0
        assert torch.equal(h.ln_1.weight, torch.ones(64))
    assert_std(m.transformer.wte.weight, 0.02)
    # lm_head is tied to wte: initialized once, reported as an alias
    assert m.lm_head.weight is m.transformer.wte.weight
    assert rep["transformer.wte.weight"].aliases == ("lm_head.weight",)
    out = m(torch.arange(10).unsqueeze(0)).logits
    assert out.shape == (1, 10, 128) and torch.isfinite(out).all()


def test_he_on_gpt2_reads_conv1d_as_in_out():
    m = gpt2_model()
    rep = initlab.apply(m, "he", seed=0)
    # Conv1D stores (in, out): c_fc.weight (64, 256) has fan_in 64
    assert rep["transformer.h.0.mlp.c_fc.weight"].fans == [[64, 256]]
    assert rep["transformer.h.0.mlp.c_fc.weight"].layout == "torch_transposed"
    assert_std(m.transformer.h[0].mlp.c_fc.weight, math.sqrt(2 / 64))
    assert_std(m.transformer.h[0].mlp.c_proj.weight, math.sqrt(2 / 256))


def test_gpt2_pretrained_plus_new_head(tmp_path):
    from safetensors.torch import save_file

    src = gpt2_model()
    initlab.apply(src, "gpt2", seed=1)
    body = {k: v.contiguous() for k, v in src.transformer.state_dict().items()}
    save_file(body, str(tmp_path / "body.safetensors"))
    dst = gpt2_model()
    rep = initlab.apply(dst, "gpt2", seed=2, pretrained=tmp_path / "body.safetensors",
                        mapping={"*": "transformer.*"})
    for k, v in body.items():
        assert torch.equal(dst.transformer.state_dict()[k], v), k
    assert rep.initialized == []                  # lm_head is tied to the loaded wte
    assert rep.load.missing == []                 # lm_head.weight came with wte


def timm_resnet():
    try:
        import timm
    except ImportError as exc:   # not installed, or its torchvision dependency is unusable
        pytest.skip(f"timm is not importable here ({exc})")
    return timm.create_model("resnet18", pretrained=False, num_classes=10)


def test_fixup_and_zero_residual_on_timm_resnet18():
    m = timm_resnet()
    blocks = initlab.plans.residual_blocks(m)
    assert len(blocks) == 8
    rep = initlab.apply(m, "fixup", seed=0)
    for name, _layers, _ in blocks:
        blk = m.get_submodule(name)
        assert torch.count_nonzero(blk.conv2.weight) == 0
        fan_in = blk.conv1.weight[0].numel()
        assert_std(blk.conv1.weight, 8 ** -0.5 * math.sqrt(2 / fan_in))
    assert torch.count_nonzero(m.fc.weight) == 0
    assert rep.unmatched == []
    initlab.apply(m, "zero_residual", seed=0)
    for name, _, _ in blocks:
        assert torch.count_nonzero(m.get_submodule(name).bn2.weight) == 0
    m.eval()
    assert torch.isfinite(m(torch.randn(1, 3, 32, 32))).all()
