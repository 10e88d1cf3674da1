"""LSUV (Mishkin & Matas 2016): every layer's output std within tol of the target, determinism,
errors leave the model unchanged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

import initlab

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist10k.npz"


def output_stds(model, batch, types=(nn.Linear, nn.Conv2d)):
    """Std of every selected layer's output in one forward pass (eval mode), measured
    independently of the implementation."""
    stds, handles = {}, []
    for name, m in model.named_modules():
        if isinstance(m, types):
            handles.append(m.register_forward_hook(
                lambda mod, i, o, n=name: stds.__setitem__(n, float(o.double().std()))))
    model.eval()
    with torch.no_grad():
        model(batch)
    for h in handles:
        h.remove()
    return stds


def deep_tanh(depth=12, width=96):
    layers = [nn.Linear(32, width), nn.Tanh()]
    for _ in range(depth - 2):
        layers += [nn.Linear(width, width), nn.Tanh()]
    layers += [nn.Linear(width, 10)]
    return nn.Sequential(*layers)


def cnn(c_in=1):
    return nn.Sequential(
        nn.Conv2d(c_in, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1),
        nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(16, 32, 3, padding=1, groups=2), nn.ReLU(),
        nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(128, 10))


def gauss(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_deep_tanh_mlp_reaches_target_on_every_layer():
    m = deep_tanh()
    x = gauss(256, 32)
    rep = initlab.lsuv(m, x, seed=0)
    assert [layer.name for layer in rep.layers] == [str(i) for i in range(0, 23, 2)]
    assert rep.converged and rep.tol == 0.1 and rep.max_iter == 10
    stds = output_stds(m, x)
    assert len(stds) == 12
    for name, s in stds.items():
        assert abs(s - 1.0) < 0.1, (name, s)
        assert s == pytest.approx(rep.layers[[la.name for la in rep.layers].index(name)]
                                  .final_std, rel=1e-5)
    assert any(layer.iterations >= 1 for layer in rep.layers)
    assert "iters" in str(rep)


def test_cnn_reaches_target_on_every_layer_with_tight_tol():
    m = cnn(3)
    x = gauss(32, 3, 12, 12, seed=1)
    rep = initlab.lsuv(m, x, tol=0.02, max_iter=20, target_std=0.5, seed=3)
    stds = output_stds(m, x)
    assert set(stds) == {"0", "2", "5", "9"} == {layer.name for layer in rep.layers}
    assert all(abs(s - 0.5) < 0.02 for s in stds.values()), stds


@pytest.mark.skipif(not MNIST.is_file(), reason=f"MNIST sample not found at {MNIST}")
def test_cnn_on_real_mnist_digits():
    with np.load(MNIST, allow_pickle=False) as z:
        imgs = z["images"][:128].astype(np.float32) / 255.0
    x = torch.from_numpy(imgs).unsqueeze(1)
    m = cnn(1)
    initlab.lsuv(m, x, seed=0)
    stds = output_stds(m, x)
    assert all(abs(s - 1.0) < 0.1 for s in stds.values()), stds


def test_deterministic_given_seed_and_batch():
    x = gauss(64, 32)
    a, b, c = deep_tanh(6), deep_tanh(6), deep_tanh(6)
    initlab.lsuv(a, x, seed=5)
    initlab.lsuv(b, x, seed=5)
    initlab.lsuv(c, x, seed=6)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a[0].weight, c[0].weight)


def test_mean_correction_centres_outputs():
    m = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 32))
    x = gauss(128, 16) + 3.0
    initlab.lsuv(m, x, mean_correction=True, seed=0)
    m.eval()
    with torch.no_grad():
        y0 = m[0](x)
        y2 = m(x)
    assert abs(float(y0.mean())) < 1e-4 and abs(float(y2.mean())) < 1e-4
    assert abs(float(y2.std()) - 1) < 0.1


def test_bad_batch_leaves_model_unchanged():
    m = deep_tanh(4)
    before = [p.detach().clone() for p in m.parameters()]
    with pytest.raises(ValueError, match=r"`batch` must fit the model: the forward pass raised "
                                         r"RuntimeError.*got \(8, 7\)"):
        initlab.lsuv(m, gauss(8, 7))
    assert all(torch.equal(p, q) for p, q in zip(m.parameters(), before))
    assert m.training


def test_dead_input_is_an_error_and_restores():
    m = deep_tanh(4)
    before = [p.detach().clone() for p in m.parameters()]
    with pytest.raises(ValueError, match="output std` must be finite and > 0"):
        initlab.lsuv(m, torch.zeros(8, 32))
    assert all(torch.equal(p, q) for p, q in zip(m.parameters(), before))


def test_apply_lsuv_plan_returns_report_with_lsuv_table():
    m = deep_tanh(5)
    x = gauss(128, 32)
    rep = initlab.apply(m, "lsuv", seed=0, batch=x)
    assert rep.lsuv is not None and rep.lsuv.converged
    assert rep["0.weight"].init["name"] == "orthogonal"
    assert any("LSUV" in n for n in rep["2.weight"].notes)
    assert rep["2.weight"].std == pytest.approx(float(m[2].weight.detach().double().std(
        unbiased=False)))
    text = str(rep)
    assert "LSUV (Mishkin & Matas 2016)" in text and rep.to_dict()["lsuv"]["layers"]


def test_other_module_types_opt_in():
    m = nn.Sequential(nn.ConvTranspose2d(4, 8, 3), nn.Tanh(), nn.Conv2d(8, 2, 3))
    x = gauss(16, 4, 6, 6)
    rep = initlab.lsuv(m, x, modules=(nn.ConvTranspose2d, nn.Conv2d))
    assert [layer.name for layer in rep.layers] == ["0", "2"]
    stds = output_stds(m, x, types=(nn.ConvTranspose2d, nn.Conv2d))
    assert all(abs(s - 1) < 0.1 for s in stds.values())
    with pytest.raises(ValueError, match="`modules` matched no layer"):
        initlab.lsuv(m, x, modules=(nn.Linear,))


class _NoisyBlock(nn.Module):
    """A forward that draws from the global stream (as wav2vec2's LayerDrop draws
    ``torch.rand([])`` in every mode) around a frozen BatchNorm."""

    def __init__(self):
        super().__init__()
        self.fc1, self.bn, self.fc2 = nn.Linear(8, 16), nn.BatchNorm1d(16), nn.Linear(16, 4)

    def forward(self, x):
        torch.rand([])
        return self.fc2(torch.tanh(self.bn(self.fc1(x))))


def test_lsuv_keeps_each_modules_mode_and_the_global_random_state():
    m = _NoisyBlock()
    m.train()
    m.bn.eval()  # a frozen BatchNorm inside a training model: its flag must come back as it was
    x = torch.randn(64, 8, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    initlab.lsuv(m, x, seed=0)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert m.training and m.fc1.training and not m.bn.training
