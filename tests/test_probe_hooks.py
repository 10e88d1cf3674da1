"""The user's forward hooks and the meta probe. A hook of the user's (a feature extractor, a
logger) is not run on the meta copy: it would see meta tensors, keep them in the user's own
objects (a feature dict overwritten with meta tensors) and log numbers that were never computed.
torch's own hooks are part of what a module computes (pruning recomputes the weight from
``weight_orig`` and the mask in a pre-hook) and stay. A forward that needs the user's hook (a pre-hook that reshapes
the input) is probed again with the hooks, and the notes say which way it ran."""

from __future__ import annotations

import functools

import pytest
import torch
import torch.nn as nn
import torch.nn.utils.prune as prune

import initlab
from hf_models import gpt2
from initlab.modelinit import probe_meta
from initlab.modelinit.describe import _clear_cache, describe


@pytest.fixture(autouse=True)
def _probe_anew():
    """Each test probes: a kept dataflow of the same structure would skip the forward."""
    _clear_cache()


def _rows(report):
    return [(r.name, r.initializer, r.rule) for r in report.records]


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    sb = b.state_dict()
    return all(torch.equal(v, sb[k]) for k, v in a.state_dict().items())


def test_a_feature_extractor_hook_keeps_the_users_real_features():
    m = gpt2(n_layer=2)
    feats: dict[str, torch.Tensor] = {}
    calls = []

    def keep(name):
        def hook(mod, inputs, output):
            calls.append(name)
            feats[name] = output.detach()
        return hook

    for i, block in enumerate(m.transformer.h):
        block.mlp.register_forward_hook(keep(f"mlp{i}"))
    ids = torch.randint(0, 128, (2, 8), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        m(ids)
    real = {k: v.clone() for k, v in feats.items()}
    assert calls == ["mlp0", "mlp1"]

    d = describe(m)
    assert d.method == "probe"
    rep = initlab.apply(m, "auto", seed=0)
    assert calls == ["mlp0", "mlp1"]            # no call from the probes (the test fails if
    assert set(feats) == set(real)              # the copy keeps the hooks: they append)
    assert all(not v.is_meta and torch.equal(v, real[k]) for k, v in feats.items())
    assert any("without the model's 2 forward/backward hook(s)" in n for n in d.notes)
    # the same description and plan as the model without hooks
    _clear_cache()
    plain = gpt2(n_layer=2)
    def facts(desc):
        return [line for line in desc.summary().splitlines() if "note:" not in line]
    assert facts(describe(plain)) == facts(d)
    assert _rows(initlab.apply(plain, "auto", seed=0)) == _rows(rep)
    assert _same_weights(plain, m)


def test_a_pre_hook_the_forward_needs_is_run_on_the_meta_copy():
    """A pre-hook that flattens images for an MLP: without it the first Linear sees 8x8 inputs
    and the meta forward fails; the probe is run again with the hooks and finds the tanh."""
    net = nn.Sequential(nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 10))
    net.register_forward_pre_hook(lambda mod, args: (args[0].flatten(1),))
    d = describe(net, batch=torch.zeros(4, 1, 8, 8))
    assert d.method == "probe"
    assert any("with the model's 1 forward/backward hook(s)" in n and "failed without" in n
               for n in d.notes)
    rep = initlab.apply(net, "auto", seed=0, batch=torch.zeros(4, 1, 8, 8))
    _clear_cache()
    flat = nn.Sequential(nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 10))
    assert _rows(initlab.apply(flat, "auto", seed=0, batch=torch.zeros(4, 64))) == _rows(rep)
    assert _same_weights(flat, net)
    assert rep.records[0].initializer.startswith("glorot")     # the tanh was found


class _Recorder:
    def __init__(self) -> None:
        self.seen: list[torch.Tensor] = []

    def __call__(self, mod, inputs, output):
        self.seen.append(output)

    def method(self, mod, inputs, output):
        self.seen.append(output)


def test_which_hooks_are_torchs_own():
    lin = nn.Linear(4, 4)
    pruned = prune.l1_unstructured(nn.Linear(4, 4), "weight", amount=0.5)
    assert probe_meta.torch_hook(pruned._forward_pre_hooks.popitem()[1])
    assert probe_meta.torch_hook(nn.LazyLinear(3)._forward_pre_hooks.popitem()[1])
    rec = _Recorder()
    for h in (rec, rec.method, functools.partial(_Recorder.method, rec),
              lambda mod, i, o: None):
        assert not probe_meta.torch_hook(h)
    assert probe_meta.torch_hook(functools.partial(torch.nn.functional.relu))
    lin.register_forward_hook(rec)
    lin.register_forward_pre_hook(lambda mod, args: None)
    assert probe_meta.user_hook_count(nn.Sequential(lin)) == 2


def test_the_meta_copy_keeps_torchs_hooks_and_leaves_the_users_out():
    rec = _Recorder()
    wn = prune.l1_unstructured(nn.Linear(4, 4), "weight", amount=0.5)
    wn.register_forward_hook(rec)
    wn.register_forward_hook(rec.method)
    net = nn.Sequential(wn, nn.Tanh())
    c = probe_meta.meta_copy(net)
    assert len(c[0]._forward_pre_hooks) == 1 and not c[0]._forward_hooks
    c(torch.zeros(2, 4, device="meta"))         # pruning's hook computes the weight
    assert c[0].weight.is_meta and rec.seen == []
    kept = probe_meta.meta_copy(net, user_hooks=True)
    assert len(kept[0]._forward_hooks) == 2
    # a module class with its own __deepcopy__ goes through copy.deepcopy: filtered after it
    lin = nn.Linear(4, 4)
    torch.nn.utils.parametrizations.orthogonal(lin)
    lin.register_forward_hook(rec)
    lc = probe_meta.meta_copy(nn.Sequential(lin))
    assert torch.nn.utils.parametrize.is_parametrized(lc[0]) and not lc[0]._forward_hooks
    lc(torch.zeros(2, 4, device="meta"))
    assert rec.seen == [] and len(lin._forward_hooks) == 1      # the user's module keeps it


def test_a_hook_registered_for_every_module_is_out_of_the_meta_probe_and_back_after():
    """A logger registered with ``register_module_forward_hook`` (it reads ``.item()``, which a
    meta tensor refuses) made the meta probe fail: GPT-2 was described from its names. Now the
    global hooks are out of torch's tables while the meta copy is made and runs, and back, as
    the same entries, after: the hook logs the user's forward only, and its handle removes it."""
    from torch.nn.modules import module as tm

    seen: list[float] = []

    def log(module, args, out):
        if isinstance(out, torch.Tensor):
            seen.append(out.float().abs().mean().item())

    m = gpt2(n_layer=2)
    handle = tm.register_module_forward_hook(log)
    pre = tm.register_module_forward_pre_hook(lambda module, args: None)
    try:
        before = list(tm._global_forward_hooks.items()), list(tm._global_forward_pre_hooks.items())
        d = describe(m)
        rep = initlab.apply(m, "gpt2", seed=0)
        assert d.method == "probe" and rep.description.method == "probe", d.notes
        assert d.n_residual == 4 and seen == []          # the probe's forwards were not logged
        assert (list(tm._global_forward_hooks.items()),
                list(tm._global_forward_pre_hooks.items())) == before
        with torch.no_grad():
            m(torch.zeros(1, 4, dtype=torch.long))
        assert len(seen) > 10 and all(v == v for v in seen)   # real numbers, logged
    finally:
        handle.remove()
        pre.remove()
    assert not tm._global_forward_hooks and not tm._global_forward_pre_hooks
