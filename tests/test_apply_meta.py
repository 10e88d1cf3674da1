"""initlab.materialize: a meta-device model allocated and initialized equals apply on CPU."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import initlab
from initlab.modelinit import Plan, Rule


def make():
    return nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 32),
        nn.LayerNorm(32), nn.Linear(32, 10))


def lstm_model():
    return nn.ModuleDict({"emb": nn.Embedding(20, 8), "rnn": nn.LSTM(8, 16),
                          "attn": nn.MultiheadAttention(16, 2)})


@pytest.mark.parametrize("factory, plan", [(make, "he"), (make, "torch_default"),
                                           (lstm_model, "orthogonal"), (lstm_model, "gpt2")])
def test_materialize_equals_apply_on_cpu(factory, plan):
    cpu = factory()
    kw = {"n_layer": 1} if plan == "gpt2" else {}
    initlab.apply(cpu, plan, seed=9, **kw)
    with torch.device("meta"):
        meta = factory()
    assert all(p.device.type == "meta" for p in meta.parameters())
    rep = initlab.materialize(meta, plan, device="cpu", seed=9, **kw)
    assert all(p.device.type == "cpu" for p in meta.parameters())
    sa, sb = cpu.state_dict(), meta.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    assert not rep.unmatched


def test_no_default_init_runs(monkeypatch):
    with torch.device("meta"):
        m = make()

    def boom(self):
        raise AssertionError("default init ran")

    monkeypatch.setattr(nn.Linear, "reset_parameters", boom)
    monkeypatch.setattr(nn.Conv2d, "reset_parameters", boom)
    initlab.materialize(m, "he", seed=0)
    assert torch.isfinite(m(torch.zeros(1, 3, 8, 8))).all()


def test_plan_must_cover_every_parameter_and_nothing_is_allocated():
    with torch.device("meta"):
        m = make()
    with pytest.raises(ValueError, match=r"not initialized by the plan .*`1.weight`"):
        initlab.materialize(m, Plan([Rule((nn.Linear, nn.Conv2d), "zeros")]), seed=0)
    assert all(p.device.type == "meta" for p in m.parameters())


class WithBuffer(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 3)
        self.register_buffer("scale", torch.ones(3))


def test_meta_buffers_need_a_decision():
    with torch.device("meta"):
        m = WithBuffer()
    with pytest.raises(ValueError, match="`buffers` are on the meta device.*`scale`"):
        initlab.materialize(m, "he", seed=0)
    initlab.materialize(m, "he", seed=0, buffers="zeros")
    assert torch.equal(m.scale, torch.zeros(3))


def _failing_backend(after: int):
    """A random source that fails (like an interrupt or out-of-memory) after `after` fills."""
    from initlab.modelinit import RNG_BACKENDS, RngBackend

    calls = {"n": 0}
    torch_fill = RNG_BACKENDS["torch"].fill

    def fill(tensor, init, **kw):
        calls["n"] += 1
        if calls["n"] > after:
            raise MemoryError("simulated failure mid-write")
        torch_fill(tensor, init, **kw)

    return RngBackend("failing", "test", fill)


def test_materialize_failure_midway_returns_the_model_to_meta(monkeypatch):
    from initlab.modelinit import RNG_BACKENDS

    monkeypatch.setitem(RNG_BACKENDS, "failing", _failing_backend(after=2))
    with torch.device("meta"):
        meta = make()
    with pytest.raises(MemoryError, match="simulated"):
        initlab.materialize(meta, "he", device="cpu", seed=0, rng="failing")
    assert all(p.device.type == "meta" for p in meta.parameters())


def test_apply_atomic_restores_and_non_atomic_writes_the_same_values(monkeypatch):
    from initlab.modelinit import RNG_BACKENDS

    a, b = make(), make()
    b.load_state_dict(a.state_dict())
    before = {k: v.clone() for k, v in a.state_dict().items()}
    monkeypatch.setitem(RNG_BACKENDS, "failing", _failing_backend(after=2))
    with pytest.raises(MemoryError):
        initlab.apply(a, "he", seed=3, rng="failing")          # atomic (default): rolled back
    for k, v in a.state_dict().items():
        assert torch.equal(v, before[k]), k
    initlab.apply(a, "he", seed=3)
    initlab.apply(b, "he", seed=3, atomic=False)             # no copy held: same values
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k
