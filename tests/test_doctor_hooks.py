"""Hooks clean up after themselves; a doctor run leaves the model exactly as it found it."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from initlab.diagnostics import Hook, Hooks, doctor


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def hook_count(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
               + len(m._backward_pre_hooks) for m in model.modules())


def global_hook_count() -> int:
    mod = torch.nn.modules.module
    return (len(mod._global_forward_hooks) + len(mod._global_forward_pre_hooks)
            + len(mod._global_backward_hooks) + len(mod._global_backward_pre_hooks))


class Boom(nn.Module):
    """Raises in forward, after the layers before it have run (and updated BatchNorm stats)."""

    def forward(self, x):
        raise RuntimeError("boom in forward")


def bn_model(g: torch.Generator, tail: nn.Module | None = None) -> nn.Sequential:
    layers = [nn.Linear(12, 32), nn.BatchNorm1d(32), nn.ReLU(inplace=True), nn.Dropout(0.5),
              nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 4)]
    model = nn.Sequential(*layers, *([tail] if tail is not None else []))
    with torch.no_grad():
        for m in model:
            if isinstance(m, nn.Linear):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) / math.sqrt(m.in_features))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
        # non-trivial running statistics, so that a reset would be noticed too
        model[1].running_mean.copy_(torch.randn(32, generator=g))
        model[1].running_var.copy_(torch.rand(32, generator=g) + 0.5)
        model[1].num_batches_tracked.fill_(7)
    return model


def state(model: nn.Module):
    """Values and identities of every parameter, buffer and gradient, and every mode flag."""
    return {
        "tensors": {k: (v.data_ptr(), v.detach().clone()) for k, v in model.state_dict(keep_vars=True).items()},
        "grads": {k: (p.grad, None if p.grad is None else p.grad.clone())
                  for k, p in model.named_parameters()},
        "training": [m.training for m in model.modules()],
    }


def assert_same_state(model: nn.Module, before) -> None:
    after = model.state_dict(keep_vars=True)
    assert after.keys() == before["tensors"].keys()
    for k, (ptr, value) in before["tensors"].items():
        assert after[k].data_ptr() == ptr, k
        assert torch.equal(after[k].detach(), value), k
    for k, p in model.named_parameters():
        grad, value = before["grads"][k]
        assert p.grad is grad, k
        if value is not None:
            assert torch.equal(p.grad, value), k
    assert [m.training for m in model.modules()] == before["training"]


# ------------------------------------------------------------------ Hook / Hooks

def test_hook_removes_itself_and_twice_is_safe():
    lin = nn.Linear(3, 2)
    seen = []
    h = Hook(lin, lambda m, i, o: seen.append(o.shape))
    lin(torch.zeros(1, 3))
    assert seen == [torch.Size([1, 2])] and not h.removed
    h.remove()
    h.remove()
    lin(torch.zeros(1, 3))
    assert len(seen) == 1 and h.removed and hook_count(lin) == 0


@pytest.mark.parametrize("kind", ["forward", "forward_pre", "backward"])
def test_hook_kinds_and_context_manager(kind):
    lin = nn.Linear(3, 2)
    calls = []
    with Hook(lin, lambda *a: calls.append(kind), kind) as h:
        assert hook_count(lin) == 1
        lin(torch.ones(1, 3, requires_grad=True)).sum().backward()
    assert calls == [kind] and h.removed and hook_count(lin) == 0


def test_hooks_collection_cleans_up_when_the_block_raises():
    model = nn.Sequential(nn.Linear(3, 3), nn.Tanh(), nn.Linear(3, 1))
    with pytest.raises(RuntimeError, match="inside"), Hooks() as hooks:
        for m in model:
            hooks.register(m, lambda *a: None)
        t = torch.ones(2, requires_grad=True)
        hooks.adopt((t * 2).register_hook(lambda g: g))
        assert len(hooks) == 4
        raise RuntimeError("inside")
    assert hook_count(model) == 0 and len(hooks) == 0
    hooks.remove()  # a second removal does nothing


def test_hook_rejects_an_unknown_kind():
    with pytest.raises(ValueError, match="`kind` must be one of"):
        Hook(nn.Linear(2, 2), lambda *a: None, "sideways")


# ------------------------------------------------------------------ doctor side effects

def test_doctor_leaves_no_hooks_and_no_side_effects():
    g = gen(0)
    model = bn_model(g)
    model[4].eval()  # mixed modes must come back as they were
    model(torch.randn(8, 12, generator=g)).sum().backward()  # existing .grad values
    model[6].bias.grad = None                                # ... and one None
    before = state(model)
    rng = torch.get_rng_state()
    n_global = global_hook_count()
    x = torch.randn(64, 12, generator=g, requires_grad=True)
    x_before = x.detach().clone()
    rep = doctor(model, x)
    assert len(rep.layers) == 3 and rep.meta["train_mode"] is True
    assert hook_count(model) == 0 and global_hook_count() == n_global
    assert_same_state(model, before)
    assert torch.equal(torch.get_rng_state(), rng)  # dropout is off and the RNG is forked
    assert x.grad is None and torch.equal(x.detach(), x_before)


@pytest.mark.parametrize("where", ["forward", "loss"])
def test_doctor_cleans_up_when_the_run_raises(where):
    g = gen(1)
    model = bn_model(g, Boom() if where == "forward" else None)
    before = state(model)
    loss_fn = None
    if where == "loss":
        def loss_fn(out):
            raise RuntimeError("boom in loss")
    with pytest.raises(RuntimeError, match=f"boom in {where}"):
        doctor(model, torch.randn(16, 12, generator=g), loss_fn=loss_fn)
    assert hook_count(model) == 0
    assert_same_state(model, before)  # BatchNorm ran in train mode before the error: restored


def test_doctor_measures_train_mode_batchnorm_and_restores_eval():
    # Linear with huge weights -> BatchNorm -> Sigmoid. In train mode BatchNorm standardizes z
    # over the batch, so the sigmoid's input is ~N(0, 1) and almost nothing saturates
    # (P(|u| > 4.36) = 1.3e-5); in eval mode (running var 1) the sigmoid sees z, std ~30.
    g = gen(2)
    model = nn.Sequential(nn.Linear(100, 50), nn.BatchNorm1d(50), nn.Sigmoid(), nn.Linear(50, 1))
    with torch.no_grad():
        model[0].weight.copy_(3 * torch.randn(50, 100, generator=g))
    model.eval()
    x = torch.randn(64, 100, generator=g)
    train = doctor(model, x)
    assert train.layers[0].saturated < 0.01 and train.layers[0].activation_module == "2"
    assert train.layers[0].z_std > 20
    assert not model.training and not model[1].training
    evaluated = doctor(model, x, train=False)
    assert evaluated.layers[0].saturated > 0.8


def test_frozen_model_gets_no_backward_and_no_crash():
    g = gen(3)
    model = bn_model(g)
    for p in model.parameters():
        p.requires_grad_(False)
    rep = doctor(model, torch.randn(16, 12, generator=g))
    assert rep.meta["backward"] is False and "no_backward" in rep.codes()
    assert all(s.grad_out_rms is None and s.weight_grad_norm is None for s in rep.layers)
    assert hook_count(model) == 0


def test_tuple_and_dict_batches():
    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(4, 3), nn.Linear(5, 3)

        def forward(self, x, y):
            return {"sum": self.a(x) + self.b(y), "aux": (self.a(x),)}

    g = gen(4)
    x, y = torch.randn(8, 4, generator=g), torch.randn(8, 5, generator=g)
    r1 = doctor(Two(), (x, y))
    r2 = doctor(Two(), {"x": x, "y": y})
    assert [s.name for s in r1.layers] == ["a", "b", "a (call 2)"]
    assert len(r2.layers) == 3 and r1.meta["batch_shape"] == [8, 4]
