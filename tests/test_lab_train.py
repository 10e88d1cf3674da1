"""Models and the training loop: shapes, determinism, resume after an interruption."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from initlab.core.validation import InitlabError
from initlab.lab.data import load_dataset
from initlab.lab.models import KINDS, ModelConfig, Residual, build_model, hidden_layers
from initlab.lab.train import TrainConfig, evaluate, layer_stats, train


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", n_train=240, n_val=40, n_test=100)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("kind", KINDS)
def test_build_every_kind(kind, digits):
    cfg = ModelConfig(kind=kind, depth=2, width=16, activation="tanh", in_shape=digits.shape,
                      n_classes=10, channels=4)
    before = torch.random.get_rng_state()
    m = build_model(cfg, generator=_gen())
    assert torch.equal(before, torch.random.get_rng_state())  # global RNG untouched
    out = m(torch.from_numpy(digits.x_train[:5]))
    assert out.shape == (5, 10) and torch.isfinite(out).all()
    m2 = build_model(cfg, generator=_gen())
    assert all(torch.equal(a, b) for a, b in zip(m.parameters(), m2.parameters()))
    m3 = build_model(cfg, generator=_gen(1))
    assert not all(torch.equal(a, b) for a, b in zip(m.parameters(), m3.parameters()))
    n_hidden = len(hidden_layers(m))
    assert n_hidden == (2 if kind in ("mlp", "cnn", "linear") else 3)


def test_mlp_layout_and_deep_linear():
    m = build_model(ModelConfig(kind="mlp", depth=3, width=20, in_shape=(64,), bias=False))
    lin = [x for x in m.modules() if isinstance(x, nn.Linear)]
    assert [tuple(x.weight.shape) for x in lin] == [(20, 64), (20, 20), (20, 20), (10, 20)]
    assert all(x.bias is None for x in lin)
    saxe = build_model(ModelConfig(kind="linear", depth=4, width=8, in_shape=(6,), n_classes=3))
    assert not any(isinstance(x, (nn.Tanh, nn.ReLU)) for x in saxe.modules())
    # a deep linear network is linear in its input
    x = torch.randn(4, 6, generator=_gen(2))
    nb = build_model(ModelConfig(kind="linear", depth=4, width=8, in_shape=(6,), n_classes=3,
                                 bias=False))
    assert torch.allclose(nb(2 * x), 2 * nb(x), atol=1e-5)


def test_torch_default_distribution():
    # weights ~ U(-b, b), b = 1/sqrt(fan_in): Var = b^2/3. The sample variance of n draws has
    # std sqrt(Var(X^2)/n) with Var(X^2) = b^4/5 - b^4/9 = 4 b^4 / 45; allow 6 of those.
    m = build_model(ModelConfig(depth=1, width=400, in_shape=(300,)), generator=_gen(3))
    w = m[1].weight.detach().double()
    b = 1 / math.sqrt(300)
    n = w.numel()
    assert float(w.abs().max()) <= b
    assert abs(float(w.var()) - b * b / 3) < 6 * math.sqrt(4 * b ** 4 / 45 / n)


def test_residual_convention_matches_apply_plans():
    from initlab.modelinit.plans import residual_blocks

    m = build_model(ModelConfig(kind="resmlp", depth=3, width=8, in_shape=(5,), n_classes=2,
                                residual_scalar=True))
    blocks = [x for x in m.modules() if isinstance(x, Residual)]
    assert len(blocks) == 3 and all(isinstance(b.shortcut, nn.Identity) for b in blocks)
    assert all(float(b.scale.detach()) == 1.0 for b in blocks)
    found = residual_blocks(m)
    assert len(found) == 3 and all(len(layers) == 2 for _, layers, _ in found)
    x = torch.randn(3, 5, generator=_gen())
    with torch.no_grad():
        for b in blocks:
            b.branch[-1].weight.zero_()
            b.branch[-1].bias.zero_()
        h = m[2](m[1](m[0](x)))  # stem
        assert torch.allclose(blocks[0](h), h)  # a zeroed branch makes the block the identity


@pytest.mark.parametrize("kw, match", [
    (dict(kind="transformer"), "`kind` must be one of"),
    (dict(activation="swish2"), "`activation` must be one of"),
    (dict(width=0), "`width` must be >= 1"),
    (dict(kind="resmlp", depth=0), "`depth` must be >= 1"),
    (dict(depth=-1), "`depth` must be >= 0"),
    (dict(kind="cnn", in_shape=(64,)), "`in_shape` must be"),
])
def test_model_config_errors(kw, match):
    with pytest.raises(InitlabError, match=match):
        ModelConfig(**kw)


@pytest.mark.parametrize("kw, match", [
    (dict(epochs=-1), "`epochs` must be >= 0"),
    (dict(lr=0), "`lr` must be > 0"),
    (dict(optimizer="lbfgs"), "`optimizer` must be one of"),
    (dict(loss="hinge"), "`loss` must be one of"),
])
def test_train_config_errors(kw, match):
    with pytest.raises(InitlabError, match=match):
        TrainConfig(**kw)


def _model(digits, seed=0):
    cfg = ModelConfig(depth=2, width=16, activation="tanh", in_shape=(64,))
    return build_model(cfg, generator=_gen(seed))


def test_train_is_deterministic_and_epoch0_is_init(digits):
    cfg = TrainConfig(lr=0.05, epochs=3, batch_size=32)
    m = _model(digits)
    loss0, acc0 = evaluate(m, digits.x_test, digits.y_test, cfg, 10)
    h1 = train(m, digits, cfg, seed=0)
    h2 = train(_model(digits), digits, cfg, seed=0)
    h3 = train(_model(digits), digits, cfg, seed=1)
    assert [r["epoch"] for r in h1] == [0, 1, 2, 3]
    assert (h1[0]["test_loss"], h1[0]["test_acc"]) == (loss0, acc0)
    assert h1 == h2
    assert h1[0] == h3[0] and h1[-1] != h3[-1]  # same init, different batch order
    assert h1[-1]["train_loss"] < h1[0]["train_loss"] and h1[-1]["val_acc"] > 0.5
    json.dumps(h1, allow_nan=False)


def test_resume_after_interruption_gives_the_same_history(digits, tmp_path):
    cfg = TrainConfig(optimizer="sgd", momentum=0.9, lr=0.05, epochs=4, batch_size=32)
    full = train(_model(digits), digits, cfg, seed=0)

    class Crash(Exception):
        pass

    seen = []

    def crash_after_2(rec):
        if rec["epoch"] == 2:
            raise Crash
        seen.append(rec["epoch"])

    ck = tmp_path / "run.pt"
    with pytest.raises(Crash):
        train(_model(digits), digits, cfg, seed=0, on_epoch=crash_after_2, checkpoint=ck)
    assert seen == [0, 1] and ck.is_file()
    seen.clear()
    # a fresh process would build the model again: its initial values are overwritten by the
    # checkpoint (use a different init to prove it)
    resumed = train(_model(digits, seed=9), digits, cfg, seed=0, on_epoch=lambda r: seen.append(
        r["epoch"]), checkpoint=ck)
    assert seen == [3, 4]
    assert resumed == full


def test_adam_mse_bce_and_layer_stats(digits):
    h = train(_model(digits), digits, TrainConfig(optimizer="adam", lr=1e-3, epochs=1,
                                                  loss="mse"), seed=0, record_layer_stats=True,
              activation="tanh")
    assert all(len(r["layers"]) == 2 for r in h)
    lay = h[0]["layers"][0]
    assert set(lay) == {"name", "mean", "std", "frac_zero", "frac_saturated"}
    assert 0 < lay["std"] < 1 and 0 <= lay["frac_saturated"] <= 1
    hi = train(_model(digits), digits, TrainConfig(epochs=2), seed=0, record_layer_stats="init")
    assert "layers" in hi[0] and "layers" not in hi[1]
    circles = load_dataset("circles")
    m = build_model(ModelConfig(depth=2, width=8, in_shape=(2,), n_classes=1, activation="relu"))
    hb = train(m, circles, TrainConfig(loss="bce", lr=0.1, epochs=2, batch_size=300), seed=0)
    assert 0 <= hb[-1]["test_acc"] <= 1 and hb[-1]["train_loss"] is not None
    stats = layer_stats(m, circles.x_train[:50], "relu")
    assert stats[0]["frac_saturated"] is None and 0 <= stats[0]["frac_zero"] <= 1


def test_layer_stats_saturation_of_any_bounded_activation():
    """frac_saturated is the registry's near-bound fraction for every bounded activation (here
    two the lab's models do not offer), checked on the input side; None for an unbounded one."""
    g = _gen(12)
    lin = nn.Linear(16, 400)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(400, 16, generator=g))
    x = torch.randn(50, 16, generator=g)
    for act, mod, k, near in (("hardtanh", nn.Hardtanh, 1.0, lambda u: np.abs(u) > 0.99),
                              ("softsign", nn.Softsign, 30.0, lambda u: np.abs(u) > 99.0),
                              ("gelu", nn.GELU, 1.0, None)):
        row = layer_stats(nn.Sequential(lin, mod(), nn.Linear(400, 2)), k * x, act)[0]
        if near is None:
            assert row["frac_saturated"] is None
            continue
        want = float(np.mean(near(lin(k * x).detach().numpy())))
        assert row["frac_saturated"] == pytest.approx(want, abs=1e-3) and 0.05 < want < 0.95


def test_divergence_is_recorded(digits):
    m = build_model(ModelConfig(depth=2, width=16, activation="relu", in_shape=(64,)))
    h = train(m, digits, TrainConfig(lr=1e6, epochs=3, momentum=0.0), seed=0)
    assert h[-1]["diverged"] and h[-1]["train_loss"] is None
    assert len(h) == 4
    json.dumps(h, allow_nan=False)  # strict JSON: no NaN
    assert np.isfinite([r["train_acc"] for r in h]).all()


@pytest.mark.parametrize("kind", ["cnn", "rescnn"])
def test_1d_convolutions_on_mnist1d(kind):
    d = load_dataset("mnist1d", n_train=64, n_test=32)
    m = build_model(ModelConfig(kind=kind, depth=1, in_shape=d.shape, channels=4))
    assert any(isinstance(x, nn.Conv1d) for x in m.modules())
    h = train(m, d, TrainConfig(epochs=1, batch_size=32), seed=0)
    assert len(h) == 2 and h[-1]["train_loss"] is not None
