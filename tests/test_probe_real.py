"""The probe on the model itself (``"probe-real"``): when a forward cannot run on meta tensors
(a data-dependent shape: ``torch.nonzero``), the description runs the user's model on the
user's batch. That forward must leave the model as it was: a BatchNorm in train mode would
otherwise update its running statistics, and a module may replace a buffer while it runs."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import initlab
from initlab.modelinit.describe import _clear_cache, describe


@pytest.fixture(autouse=True)
def _probe_anew():
    """Each test probes: a kept dataflow of the same structure would skip the forward."""
    _clear_cache()


class Routed(nn.Module):
    """Linear -> BatchNorm -> a data-dependent row selection (no meta kernel) -> ReLU -> Linear;
    a step counter replaced (not updated in place) on every forward."""

    def __init__(self) -> None:
        super().__init__()
        self.inp, self.bn, self.out = nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 2)
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def forward(self, x):
        self.steps = self.steps + 1                  # a new tensor in the buffer's place
        h = self.bn(self.inp(x))
        rows = torch.nonzero(h[:, 0] > -1e9).squeeze(1)
        return self.out(torch.relu(h[rows]))


def test_the_real_probe_describes_the_model_and_leaves_its_buffers_as_they_were():
    m = Routed()
    before = {n: (b, b.clone()) for n, b in m.named_buffers()}
    batch = torch.randn(16, 4) * 3 + 5              # moves BatchNorm's statistics if it ran
    d = describe(m, batch=batch)
    assert d.method == "probe-real"
    assert any("did not run on meta" in n for n in d.notes)
    assert d.layer("inp").activation_name == "relu" and d.layer("out").is_readout
    for name, b in m.named_buffers():
        tensor, value = before[name]
        assert b is tensor, name                     # the same tensor object
        assert torch.equal(b, value), name
    assert int(m.bn.num_batches_tracked) == 0 and int(m.steps) == 0
    # and a forward of the user's own does update them: the probe really ran one
    m(batch)
    assert int(m.bn.num_batches_tracked) == 1 and not torch.equal(m.bn.running_mean,
                                                                  before["bn.running_mean"][1])


def test_apply_with_the_real_probe_changes_only_what_it_draws():
    """The plan resets BatchNorm's statistics (a fresh start, by design); the step counter the
    probe's forward replaced is the model's own again."""
    m = Routed()
    with torch.no_grad():
        m.steps.fill_(7)
    rep = initlab.apply(m, "auto", seed=0, batch=torch.randn(16, 4) * 3 + 5)
    assert rep["inp.weight"].initializer == "he_normal()"
    assert int(m.steps) == 7
    assert torch.equal(m.bn.running_mean, torch.zeros(8)) and int(m.bn.num_batches_tracked) == 0


def test_without_a_batch_a_small_model_is_probed_on_itself_with_an_input_built_from_it():
    """No batch: the input is built from the first layer (Linear(4): zeros of (2, 4)); the meta
    forward fails (nonzero), so the model itself runs on it. Its buffers and the global random
    state are as they were."""
    m = Routed()
    rng = torch.get_rng_state()
    d = describe(m)
    assert d.method == "probe-real", d.notes
    assert any("an input built from it" in n for n in d.notes)
    assert d.layer("inp").activation_name == "relu" and d.layer("out").is_readout
    assert int(m.steps) == 0 and int(m.bn.num_batches_tracked) == 0
    assert torch.equal(torch.get_rng_state(), rng)


def test_a_model_above_the_size_limit_is_not_run_without_a_batch(monkeypatch):
    """Without a batch initlab does not run a large model's forward of its own accord: the
    names-fallback, and the note says to pass batch=."""
    import initlab.modelinit.probing as probing

    monkeypatch.setattr(probing, "REAL_PROBE_MAX_PARAMS", 10)
    d = describe(Routed())
    assert d.method == "names-fallback"
    assert any("pass batch= for a probe" in n for n in d.notes)


def test_a_model_with_forward_hooks_is_not_run_without_a_batch():
    """A forward initlab would start on its own would fire the user's hooks (or FSDP's, which
    swap sharded and unsharded parameters): without a batch, such a model is not run."""
    m = Routed()
    fired = []        # is_meta of each call's output (the meta probe runs on a copy without
    m.bn.register_forward_hook(lambda mod, i, out: fired.append(out.is_meta))  # the hooks,
    d = describe(m)   # then, as it fails without them, with them: a meta call)
    assert d.method == "names-fallback" and False not in fired
    fired.clear()
    d = describe(m, batch=torch.randn(4, 4))          # a batch: the user asked for a forward
    assert d.method == "probe-real" and fired.count(False) == 1        # one real forward


def test_a_global_module_hook_keeps_a_model_from_being_run_without_a_batch():
    """``register_module_forward_hook`` fires for every module's forward: a forward initlab
    would start on its own is not run while one is registered."""
    from torch.nn.modules.module import register_module_forward_hook

    fired = []
    handle = register_module_forward_hook(
        lambda mod, i, out: fired.append(1) if isinstance(out, torch.Tensor) and
        not out.is_meta else None)
    try:
        d = describe(Routed())
    finally:
        handle.remove()
    assert d.method == "names-fallback" and fired == []
    assert describe(Routed()).method == "probe-real"     # without it, as before


class Drawing(Routed):
    """Routed, whose forward also draws from Python's, NumPy's and torch's global streams (a
    user's noise injection)."""

    def forward(self, x):
        import random

        import numpy as np

        noise = random.random() + float(np.random.rand())  # noqa: NPY002
        return super().forward(x + noise * torch.rand(()))


def test_the_real_probe_leaves_every_global_random_state_as_it_was():
    import random

    import numpy as np

    m = Drawing()
    random.seed(1), np.random.seed(2), torch.manual_seed(3)  # noqa: NPY002
    states = random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state()  # noqa: NPY002
    d = describe(m, batch=torch.randn(16, 4, generator=torch.Generator().manual_seed(0)))
    assert d.method == "probe-real"
    assert random.getstate() == states[0]
    assert np.array_equal(np.random.get_state()[1], states[1])  # noqa: NPY002
    assert torch.equal(torch.get_rng_state(), states[2])


def test_the_fallback_note_gives_the_fullest_inputs_error():
    """The names-fallback note quotes the error of the first input tried (the fullest one
    built from the model), not of the last, simplest one, and counts the others."""

    class Needs(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inp = nn.Linear(4, 4)

        def forward(self, x, mask):
            return self.inp(x) * mask

    d = describe(Needs())
    assert d.method == "names-fallback"
    note = next(n for n in d.notes if "names-fallback used" in n)
    assert "missing 1 required positional argument: 'mask'" in note
    assert "other input(s) failed too" in note
