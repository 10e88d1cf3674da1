"""The probe's dataflow kept by structure key (``modelinit/fingerprint.py``): a fresh instance of
an architecture reuses it, any structural change probes again, the cache keeps no model alive;
the probe's shortcuts (field-by-field meta copy, shape-only SDPA / dropout / arithmetic) describe
exactly what the plain kernels describe."""

from __future__ import annotations

import copy
import gc
import importlib
import weakref

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import initlab
from initlab.modelinit.fingerprint import structure_key

D = importlib.import_module("initlab.modelinit.describe")
FLOW = importlib.import_module("initlab.modelinit.dataflow")
META = importlib.import_module("initlab.modelinit.probe_meta")

transformers = pytest.importorskip("transformers", reason="transformers is not installed")
transformers.logging.set_verbosity_error()

from hf_models import bert, gpt2, llama  # noqa: E402  (after the skip)


@pytest.fixture(autouse=True)
def fresh_cache():
    D._clear_cache()
    yield
    D._clear_cache()


@pytest.fixture
def probes(monkeypatch):
    """Counts the probe forwards ``describe`` runs."""
    import initlab.modelinit.probing as P

    calls = []
    real = P.probe

    def counting(model, inputs, **kw):
        calls.append(type(model).__name__)
        return real(model, inputs, **kw)

    monkeypatch.setattr(P, "probe", counting)
    return calls


def facts(desc):
    """Everything the dataflow gives, as plain data (no module objects)."""
    return ([(x.name, x.kind, x.activation_name, x.activation_why, x.gated_by, x.is_readout,
              x.residual_branch, x.calls, tuple(x.inputs), tuple(x.outputs))
             for x in desc.layers],
            [(b.index, b.closing, tuple(b.layers), tuple(b.norms), tuple(b.norms_after),
              b.shortcut, b.add_op) for b in desc.residual_branches],
            desc.readouts, desc.method, desc.notes,
            [(p.name, p.aliases, p.role, p.activation_name if hasattr(p, "activation_name")
              else str(p.activation), p.is_readout, p.residual_branch, p.gated_by)
             for p in desc.params])


class Act(nn.Module):
    """Chooses its activation from a string attribute (nothing in its modules says which)."""

    def __init__(self, kind: str):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(8, 16), nn.Linear(16, 4)
        self.kind = kind

    def forward(self, x):
        h = self.fc1(x)
        return self.fc2(F.relu(h) if self.kind == "relu" else torch.tanh(h))


class FnAct(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(8, 16), nn.Linear(16, 4)
        self.fn = fn

    def forward(self, x):
        return self.fc2(self.fn(self.fc1(x)))


# ----------------------------------------------------------------------------- reuse


def test_a_fresh_instance_of_an_architecture_reuses_the_probe(probes):
    a, b = gpt2(), gpt2()
    da = initlab.describe(a)
    db = initlab.describe(b)
    assert len(probes) == 1
    assert facts(da) == facts(db)
    assert da.n_residual == 4 and da.readouts == ["lm_head"]
    # the reused description points at the second model's modules, not the first's
    mods_b = dict(b.named_modules())
    assert all(x.module is mods_b[x.name] for x in db.layers)
    assert all(p.module is mods_b[p.module_name] for p in db.params)


def test_materialize_then_apply_probes_once(probes):
    with torch.device("meta"):
        m = gpt2()
    initlab.materialize(m, "gpt2", device="cpu", seed=0)
    initlab.apply(m, "gpt2", seed=0)
    assert len(probes) == 1


def test_refresh_probes_again(probes):
    m = gpt2()
    initlab.describe(m)
    initlab.describe(m, refresh=True)
    assert len(probes) == 2


@pytest.mark.parametrize("build", [gpt2, llama, bert], ids=["gpt2", "llama", "bert"])
def test_reused_description_equals_a_fresh_probe(build):
    a, b = build(), build()
    initlab.describe(a)
    reused = initlab.describe(b)
    assert facts(reused) == facts(initlab.describe(b, refresh=True))


# ----------------------------------------------------------------------------- invalidation


def test_a_module_replaced_after_apply_gets_a_fresh_description(probes):
    m = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    initlab.apply(m, "kaiming", seed=0)
    assert initlab.describe(m).layer("0").activation_name == "relu"
    m[1] = nn.Tanh()
    assert initlab.describe(m).layer("0").activation_name == "tanh"
    assert len(probes) == 2


def test_attributes_read_by_forward_are_part_of_the_structure(probes):
    relu, tanh = Act("relu"), Act("tanh")
    assert structure_key(relu) != structure_key(tanh)
    assert initlab.describe(relu).layer("fc1").activation_name == "relu"
    assert initlab.describe(tanh).layer("fc1").activation_name == "tanh"
    relu.kind = "tanh"        # changed in place after a first describe
    assert initlab.describe(relu).layer("fc1").activation_name == "tanh"
    # function attributes by qualified name
    assert initlab.describe(FnAct(torch.relu)).layer("fc1").activation_name == "relu"
    assert initlab.describe(FnAct(torch.tanh)).layer("fc1").activation_name == "tanh"
    assert len(probes) == 4
    initlab.describe(Act("relu"))
    assert len(probes) == 4   # the same structure as the first one


def test_same_architecture_with_different_ties_is_described_each_way(probes):
    tied, untied = gpt2(), gpt2()
    untied.lm_head.weight = nn.Parameter(untied.lm_head.weight.detach().clone())
    assert structure_key(tied) != structure_key(untied)
    for first, second in ((tied, untied), (untied, tied)):
        D._clear_cache()
        for m in (first, second):
            d = initlab.describe(m)
            if m is tied:
                assert [p.name for p in d.tied_embeddings()] == ["transformer.wte.weight"]
                assert d.param("lm_head.weight").name == "transformer.wte.weight"
            else:
                assert d.tied_embeddings() == []
                assert d.param("lm_head.weight").is_readout
                assert not d.param("transformer.wte.weight").is_readout
    assert len(probes) == 4


def test_shapes_dtypes_and_configs_are_part_of_the_structure():
    base = structure_key(gpt2())
    assert base == structure_key(gpt2())
    assert base != structure_key(gpt2(n_embd=32))
    assert base != structure_key(gpt2(activation_function="relu"))
    assert base != structure_key(gpt2().to(torch.float64))
    m = gpt2()
    m.transformer.h[0].mlp.c_fc.weight.requires_grad_(False)
    assert base != structure_key(m)
    m = gpt2()
    m.eval()
    assert base != structure_key(m)
    m = gpt2()
    m.transformer.h[1] = m.transformer.h[0]      # one block object under two names
    assert base != structure_key(m)


def test_what_the_key_cannot_see_is_described_per_object(probes):
    m = Act("relu")
    h = m.fc1.register_forward_hook(lambda mod, i, o: None)
    assert structure_key(m) is None
    assert structure_key(FnAct(lambda x: torch.relu(x))) is None
    assert initlab.describe(m).layer("fc1").activation_name == "relu"
    initlab.describe(m)
    assert len(probes) == 1              # kept for this object
    initlab.describe(Act("relu"))        # keyable: its own probe
    assert len(probes) == 2
    h.remove()
    m2 = Act("relu")
    m2.fc1.register_forward_hook(lambda mod, i, o: None)
    initlab.describe(m2)                 # another object: not the first one's description
    assert len(probes) == 3


@pytest.mark.parametrize("hooked", [False, True])
def test_the_cache_keeps_no_model_alive(hooked):
    m = nn.Linear(8, 4) if not hooked else Act("relu")
    if hooked:
        m.fc1.register_forward_hook(lambda mod, i, o: None)
    initlab.apply(m, "kaiming", seed=0)
    ref = weakref.ref(m)
    del m
    gc.collect()
    assert ref() is None


def test_at_most_max_structures_are_kept(monkeypatch, probes):
    monkeypatch.setattr(D, "MAX_STRUCTURES", 2)
    for width in (4, 5, 6):
        initlab.describe(nn.Sequential(nn.Linear(width, 3), nn.ReLU(), nn.Linear(3, 2)))
    assert len(D._BY_STRUCTURE) == 2
    initlab.describe(nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)))
    assert len(probes) == 4              # the oldest was dropped


# ----------------------------------------------------------------------------- the probe's shortcuts


@pytest.mark.parametrize("build", [gpt2, llama, bert], ids=["gpt2", "llama", "bert"])
def test_shape_only_ops_describe_what_the_real_kernels_describe(build, monkeypatch):
    m = build()
    fast = facts(initlab.describe(m, refresh=True))
    monkeypatch.setattr(FLOW, "META_RESULTS", {})
    monkeypatch.setattr(META, "_copy_module", lambda mod, memo, hooks: copy.deepcopy(mod, memo))
    assert facts(initlab.describe(m, refresh=True)) == fast


def test_shape_only_results_match_the_kernels():
    meta = torch.device("meta")
    q = torch.empty(2, 4, 5, 8, device=meta)
    k = torch.empty(2, 2, 7, 8, device=meta)
    v = torch.empty(2, 2, 7, 6, device=meta)
    mask = torch.empty(5, 7, dtype=torch.bool, device=meta)
    got = META._sdpa_result((q, k, v), {"attn_mask": mask, "enable_gqa": True})
    want = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True)
    assert got.shape == want.shape and got.dtype == want.dtype
    # forms the shortcut does not take run the real kernel (and raise its errors)
    assert META._sdpa_result((q, k, v), {}) is None                          # heads differ
    assert META._sdpa_result((q, k[..., :4], v), {"enable_gqa": True}) is None
    assert META._sdpa_result((q[0], k[0], v[0]), {"enable_gqa": True}) is None  # 3-D
    a = torch.empty(3, 1, 4, dtype=torch.float16, device=meta)
    b = torch.empty(5, 1, device=meta)
    for args in ((a, b), (a, 2.5), (3, b), (a, a)):
        got = META._binary_result(args, {})
        want = torch.add(*args) if isinstance(args[0], torch.Tensor) else args[1] + args[0]
        assert got.shape == want.shape and got.dtype == want.dtype
    assert META._binary_result((a, b), {"alpha": 2}).shape == (3, 5, 4)
    assert META._sdpa_result((q, k, v), {"attn_mask": mask, "is_causal": True,
                                          "enable_gqa": True}) is None
    assert META._binary_result((a, torch.empty(2, 4)), {}) is None           # not all meta
    assert META._binary_result((a, torch.empty(7, 5, device=meta)), {}) is None
    ints = torch.empty(3, dtype=torch.long, device=meta)
    assert META._binary_result((ints, ints), {"alpha": 0.5}) is None        # the kernel raises
    flags = torch.empty(3, dtype=torch.bool, device=meta)
    assert META._binary_result((flags, flags), {}) is None                   # bool: the kernel
    assert META._true_div_result((x := torch.empty(2, 3, device=meta), 2), {}).shape == x.shape
    assert META._true_div_result((ints, 2), {}) is None      # int / int: the kernel promotes
    assert META._true_div_result((ints, 2), {"rounding_mode": "floor"}) is None
    assert META._dropout_result((x, 0.1, True, True), {}) is x               # in place
    assert META._dropout_result((x, 1.5, True, False), {}) is None           # F raises


def test_meta_copy_keeps_ties_hooks_and_leaves_the_model_alone():
    m = gpt2()
    seen = []
    m.transformer.h[0].mlp.register_forward_hook(lambda mod, i, o: seen.append(1))
    before = {n: p.clone() for n, p in m.named_parameters()}
    c = META.meta_copy(m)
    assert c is not m and c.transformer.h[0] is not m.transformer.h[0]
    assert c.lm_head.weight is c.transformer.wte.weight and c.lm_head.weight.is_meta
    assert all(p.is_meta for p in c.parameters()) and all(b.is_meta for b in c.buffers())
    assert not c.transformer.h[0].mlp._forward_hooks        # the user's hook is left out
    assert len(META.meta_copy(m, user_hooks=True).transformer.h[0].mlp._forward_hooks) == 1
    assert c.config is not m.config and c.config.to_dict() == m.config.to_dict()
    assert all(torch.equal(p, before[n]) for n, p in m.named_parameters())
    assert not any(p.is_meta for p in m.parameters())
    # a class with its own __deepcopy__ (a parametrized module) goes through copy.deepcopy
    lin = nn.Linear(4, 4)
    torch.nn.utils.parametrizations.orthogonal(lin)
    lc = META.meta_copy(nn.Sequential(lin))
    assert torch.nn.utils.parametrize.is_parametrized(lc[0])
    assert all(p.is_meta for p in lc.parameters())
