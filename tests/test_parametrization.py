"""Width parametrizations (SP, μP, NTK, MFP) on unmodified models, against Microsoft's ``mup``.

The reference comparisons build the same model twice: once unmodified for initlab, once with
``mup.MuReadout`` (and the attention scale ``mup`` asks the user to write) for ``mup``. Both start
from the same base draw (``initlab.apply(..., "torch_default", seed=0)``, which is what
``parametrize`` draws before scaling), so the stored tensors, the forward pass and three optimizer
steps must agree to float precision, which is the claim "the effective quantities equal mup's".
"""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch
import torch.nn as nn

import initlab
from initlab import InitlabError
from initlab.modelinit.widths import width_shapes


def mlp(w: int, readout=nn.Linear, d_in: int = 16, d_out: int = 4) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, w), nn.ReLU(), nn.Linear(w, w), nn.ReLU(),
                         readout(w, d_out))


class Attention(nn.Module):
    """A plain attention block with Hugging Face's attribute names (``head_dim``, ``scaling``)."""

    def __init__(self, d: int, n_head: int):
        super().__init__()
        self.n_head, self.head_dim = n_head, d // n_head
        self.scaling = self.head_dim ** -0.5
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))

    def forward(self, x):
        b, t, d = x.shape
        def split(z):
            return z.view(b, t, self.n_head, self.head_dim).transpose(1, 2)
        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        att = torch.softmax((q @ k.transpose(-1, -2)) * self.scaling, dim=-1)
        return self.o((att @ v).transpose(1, 2).reshape(b, t, d))


class TinyTransformer(nn.Module):
    def __init__(self, d: int, readout=nn.Linear, vocab: int = 17, n_head: int = 2,
                 n_layer: int = 2):
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.blocks = nn.ModuleList()
        for _ in range(n_layer):
            self.blocks.append(nn.ModuleDict({
                "ln1": nn.LayerNorm(d), "attn": Attention(d, n_head), "ln2": nn.LayerNorm(d),
                "fc": nn.Linear(d, 2 * d), "proj": nn.Linear(2 * d, d)}))
        self.ln_f = nn.LayerNorm(d)
        self.head = readout(d, vocab)

    def forward(self, ids):
        h = self.emb(ids)
        for blk in self.blocks:
            h = h + blk["attn"](blk["ln1"](h))
            h = h + blk["proj"](torch.relu(blk["fc"](blk["ln2"](h))))
        return self.head(self.ln_f(h))


# ----------------------------------------------------------------------------- width shapes

def test_width_shapes_from_a_meta_base():
    ws = width_shapes(mlp(256), base=lambda: mlp(64))
    assert [d.mult for d in ws["0.weight"]] == [4.0, 1.0]
    assert [d.mult for d in ws["2.weight"]] == [4.0, 4.0]
    assert [d.mult for d in ws["4.weight"]] == [1.0, 4.0]
    assert [d.is_width for d in ws["4.bias"]] == [False]


def test_width_shapes_with_delta_know_widths_at_base_width():
    ws = width_shapes(mlp(64), base=lambda: mlp(64), delta=lambda: mlp(128))
    assert [d.is_width for d in ws["2.weight"]] == [True, True]
    assert [d.mult for d in ws["2.weight"]] == [1.0, 1.0]


def test_width_shapes_declared_by_mapping():
    base = {n: tuple(p.shape) for n, p in mlp(64).named_parameters()}
    base["0.weight"] = (None, 16)   # fan_out of the input layer declared not width
    ws = width_shapes(mlp(256), base=base)
    assert not ws["0.weight"][0].is_width


def test_width_shapes_of_a_model_mapping_with_none_is_a_clear_error():
    # None marks a base's non-width dimension; in the model's own shapes it once reached
    # int(None) and raised a bare TypeError
    shapes = {n: tuple(p.shape) for n, p in mlp(256).named_parameters()}
    with pytest.raises(InitlabError, match=r"`model` must give the size of every dimension.*"
                       r"'0.weight': \(None, 16\).*Fix: pass the model itself"):
        width_shapes({**shapes, "0.weight": (None, 16)}, base=lambda: mlp(64))
    assert width_shapes(shapes, base=lambda: mlp(64))["2.weight"][0].mult == 4.0


@pytest.mark.parametrize("base, phrase", [
    (lambda: nn.Sequential(nn.Linear(16, 64)), "same parameters"),
    (42, "must be an nn.Module"),
    ({"0.weight": "big"}, "must map parameter names to shapes"),
])
def test_width_shapes_errors(base, phrase):
    with pytest.raises((InitlabError, TypeError), match=phrase):
        width_shapes(mlp(256), base=base)


# ----------------------------------------------------------------------------- classes, rules

def test_classes_and_mup_table_on_an_mlp():
    par = initlab.parametrize(mlp(256), "mup", base=lambda: mlp(64), seed=0)
    assert {s.name: s.klass for s in par.scalings} == {
        "0.weight": "input", "0.bias": "vector", "2.weight": "hidden", "2.bias": "vector",
        "4.weight": "output", "4.bias": "fixed"}
    assert par.readout_multiplier == pytest.approx(1 / 4)
    assert par["2.weight"].lr_adam == pytest.approx(1 / 4)
    assert par["4.weight"].init_scale == pytest.approx(2.0)
    # effective quantities: readout std = multiplier * stored; SGD lr = mult^2 * stored lr
    s = par["4.weight"]
    assert s.effective_std == pytest.approx(s.stored_std / 4)
    assert s.effective_lr("sgd") == pytest.approx((1 / 4) ** 2 * 4)
    assert s.effective_lr("adam") == pytest.approx(1 / 4)


def test_sp_changes_nothing_and_every_parametrization_is_sp_at_base_width():
    ref = mlp(64)
    initlab.apply(ref, "torch_default", seed=0)
    x = torch.randn(8, 16, generator=torch.Generator().manual_seed(1))
    for name in initlab.modelinit.parametrization.PARAMETRIZATIONS:
        m = mlp(64)
        par = initlab.parametrize(m, name, base=lambda: mlp(64), seed=0)
        assert all(s.multiplier == 1 and s.init_scale == 1 for s in par.scalings), name
        torch.testing.assert_close(m(x), ref(x), rtol=0, atol=0)


def test_ntk_and_mfp_keep_sp_effective_std_and_scale_the_readout():
    ntk = initlab.parametrize(mlp(256), "ntk", base=lambda: mlp(64), seed=0)
    mfp = initlab.parametrize(mlp(256), "mfp", base=lambda: mlp(64), seed=0)
    sp = initlab.parametrize(mlp(256), "sp", base=lambda: mlp(64), seed=0)
    for n in ("2.weight", "4.weight"):
        # NTK: stored draw x sqrt(m_in), multiplier 1/sqrt(m_in): effective = SP's draw exactly
        assert ntk[n].effective_std == pytest.approx(sp[n].stored_std, rel=1e-6)
        assert ntk[n].effective_lr("sgd") == pytest.approx(1 / 4)
    assert mfp["4.weight"].multiplier == pytest.approx(1 / 4)
    assert mfp["4.weight"].effective_std == pytest.approx(sp["4.weight"].stored_std / 2,
                                                          rel=1e-6)
    assert mfp["0.weight"].lr_sgd == pytest.approx(4.0)   # c = -1: every SGD lr x width


def test_report_tells_the_truth_after_scaling():
    m = mlp(256)
    par = initlab.parametrize(m, "mup", base=lambda: mlp(64), seed=0)
    for r in par.report.records:
        t = dict(m.named_parameters())[r.name].detach().double()
        assert r.std == pytest.approx(float(t.std(unbiased=False)), rel=1e-4) or \
            r.std == pytest.approx(float(t.std()), rel=1e-4)
    assert any("x2 after the draw" in n for n in par.report["4.weight"].notes)


def test_remove_restores_the_forward_and_is_idempotent():
    m = mlp(256)
    par = initlab.parametrize(m, "mup", base=lambda: mlp(64), seed=0)
    x = torch.randn(8, 16)
    with_mult = m(x)
    par.remove()
    par.remove()
    without = m(x)
    torch.testing.assert_close(with_mult[:, :0], without[:, :0])
    assert not torch.allclose(with_mult, without)


def test_param_groups_cover_every_parameter_once_and_check_the_model():
    m = mlp(256)
    par = initlab.parametrize(m, "mup", base=lambda: mlp(64), seed=0)
    groups = initlab.param_groups(m, par, lr=1e-3, optimizer="adam")
    ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in m.parameters())
    assert sorted(g["lr"] for g in groups) == pytest.approx([2.5e-4, 1e-3])
    torch.optim.Adam([{k: v for k, v in g.items() if k != "names"} for g in groups])
    with pytest.raises(InitlabError, match="another model"):
        initlab.param_groups(mlp(256), par, lr=1e-3)
    with pytest.raises(InitlabError, match="`lr`"):
        initlab.param_groups(m, par, lr=-1.0)
    with pytest.raises(InitlabError, match="`optimizer`"):
        initlab.param_groups(m, par, lr=1e-3, optimizer="lamb")


@pytest.mark.parametrize("kw, phrase", [
    ({"name": "muP"}, "`name`"),
    ({"depth": "linear"}, "`depth`"),
    ({"depth": "sqrt"}, "`base_depth`"),
    ({"output_mult": 0.0}, "`output_mult`"),
])
def test_parametrize_errors_leave_the_model_unchanged(kw, phrase):
    m = mlp(128)
    before = {n: p.detach().clone() for n, p in m.state_dict().items()}
    name = kw.pop("name", "mup")
    with pytest.raises(InitlabError, match=phrase):
        initlab.parametrize(m, name, base=lambda: mlp(64), seed=0, **kw)
    assert all(torch.equal(before[n], p) for n, p in m.state_dict().items())
    assert not m._forward_pre_hooks and not m[4]._forward_pre_hooks


def test_output_mult_at_base_width_needs_delta_to_find_the_readout():
    # tuning output_mult on the base model (μTransfer) must not drop it silently: at base width
    # no dimension differs from the base, so only `delta` tells which layer is the readout
    with pytest.raises(InitlabError, match="`delta=`"):
        initlab.parametrize(mlp(64), "mup", base=lambda: mlp(64), seed=0, output_mult=4.0)
    with pytest.raises(InitlabError, match="`readout_zero_init`"):
        initlab.parametrize(mlp(64), "mup", base=lambda: mlp(64), seed=0,
                            readout_zero_init=True)
    par = initlab.parametrize(mlp(64), "mup", base=lambda: mlp(64), delta=lambda: mlp(128),
                              seed=0, output_mult=4.0)
    assert par["4.weight"].klass == "output" and par.readout_multiplier == 4.0


@pytest.mark.parametrize("name, expected", [("sp", 3.0), ("ntk", 3.0 / 2), ("mup", 3.0 / 4),
                                            ("mfp", 3.0 / 4)])
def test_output_mult_multiplies_the_readout_in_every_parametrization(name, expected):
    # width 256 over base 64: m_in = 4; the readout's forward multiplier is output_mult under SP,
    # output_mult / sqrt(m_in) under NTK, output_mult / m_in under μP and MFP
    x = torch.randn(8, 16, generator=torch.Generator().manual_seed(1))
    plain = mlp(256)
    p1 = initlab.parametrize(plain, name, base=lambda: mlp(64), seed=0)
    h = plain[:4](x)
    m = mlp(256)
    par = initlab.parametrize(m, name, base=lambda: mlp(64), seed=0, output_mult=3.0)
    assert par["4.weight"].multiplier == pytest.approx(expected)
    assert par.readout_multiplier == pytest.approx(expected)
    # the effect, measured: the readout's pre-activation is the plain run's readout weight
    # applied to (multiplier x its input); nothing else changes
    want = nn.functional.linear(h * expected, m[4].weight, m[4].bias)
    torch.testing.assert_close(m(x), want, rtol=1e-6, atol=1e-6)
    assert p1["4.weight"].multiplier == pytest.approx(expected / 3.0)
    # at base width without delta no readout is found: an error for every parametrization
    with pytest.raises(InitlabError, match="`delta=`"):
        initlab.parametrize(mlp(64), name, base=lambda: mlp(64), seed=0, output_mult=3.0)


# ----------------------------------------------------------------------------- against mup

def _mup_twin(build_ref, build_base_ref, mup):
    ref = build_ref()
    initlab.apply(ref, "torch_default", seed=0)
    mup.set_base_shapes(ref, build_base_ref())
    return ref


def _train(model, opt, x, y, steps=3):
    for _ in range(steps):
        opt.zero_grad()
        out = model(x)
        nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1)).backward()
        opt.step()
    return model(x)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_equals_mup_on_an_mlp(optimizer):
    mup = pytest.importorskip("mup", reason="the reference package `mup` is not installed "
                                            "(.ci/run installs it with pip --no-deps)")
    ours = mlp(256)
    par = initlab.parametrize(ours, "mup", base=lambda: mlp(64), seed=0)
    ref = _mup_twin(lambda: mlp(256, mup.MuReadout), lambda: mlp(64, mup.MuReadout), mup)
    for (n, a), (_, b) in zip(ours.named_parameters(), ref.named_parameters()):
        torch.testing.assert_close(a, b, rtol=1e-7, atol=0, msg=n)
    g = torch.Generator().manual_seed(3)
    x, y = torch.randn(32, 16, generator=g), torch.randint(0, 4, (32,), generator=g)
    torch.testing.assert_close(ours(x), ref(x), rtol=1e-6, atol=1e-7)
    groups = [{k: v for k, v in gr.items() if k not in ("names", "lr_mult")}
              for gr in par.param_groups(1e-2, optimizer)]
    opt = (torch.optim.Adam if optimizer == "adam" else torch.optim.SGD)(groups)
    ref_opt = (mup.MuAdam if optimizer == "adam" else mup.MuSGD)(ref.parameters(), lr=1e-2)
    torch.testing.assert_close(_train(ours, opt, x, y), _train(ref, ref_opt, x, y),
                               rtol=1e-5, atol=1e-6)


def test_equals_mup_on_a_transformer_with_its_attention_scale():
    mup = pytest.importorskip("mup", reason="the reference package `mup` is not installed "
                                            "(.ci/run installs it with pip --no-deps)")
    ours = TinyTransformer(64)
    par = initlab.parametrize(ours, "mup", base=lambda: TinyTransformer(16), seed=0)
    # mup asks the user to write the attention as attn_mult / d; at the base head size (8) it
    # is SP's 1/sqrt(8), so attn_mult = sqrt(8) and the scale at head size 32 is sqrt(8)/32
    ref = _mup_twin(lambda: TinyTransformer(64, mup.MuReadout),
                    lambda: TinyTransformer(16, mup.MuReadout), mup)
    for blk in ref.blocks:
        blk["attn"].scaling = math.sqrt(8) / 32
    assert [a[2] for a in par.attention] == [pytest.approx(math.sqrt(8) / 32)] * 2
    assert par["blocks.0.attn.q.weight"].klass == "hidden"
    assert par["emb.weight"].klass == "input"
    assert par["head.weight"].klass == "output"
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 17, (4, 6), generator=g)
    tgt = torch.randint(0, 17, (4, 6), generator=g)
    torch.testing.assert_close(ours(ids), ref(ids), rtol=1e-5, atol=1e-6)
    groups = [{k: v for k, v in gr.items() if k not in ("names", "lr_mult")}
              for gr in par.param_groups(3e-3, "adam")]
    torch.testing.assert_close(_train(ours, torch.optim.Adam(groups), ids, tgt),
                               _train(ref, mup.MuAdam(ref.parameters(), lr=3e-3), ids, tgt),
                               rtol=1e-4, atol=1e-5)
    par.remove()
    assert all(b["attn"].scaling == pytest.approx(32 ** -0.5) for b in ours.blocks)


# ----------------------------------------------------------------------------- real models

def _gpt2(n_embd: int, n_layer: int = 2):
    from hf_models import gpt2  # here, not at the top: skips only the GPT-2 tests

    return gpt2(n_layer, n_embd=n_embd, n_head=2, vocab_size=97)


def test_mup_on_hugging_face_gpt2_as_it_stands():
    model = _gpt2(128)
    par = initlab.parametrize(model, "mup", base=lambda: _gpt2(32), seed=0)
    cls = {s.name: s.klass for s in par.scalings}
    assert cls["transformer.wte.weight"] == "input"          # tied with lm_head
    assert cls["transformer.h.0.attn.c_attn.weight"] == "hidden"   # HF Conv1D, (in, out)
    assert cls["transformer.h.0.mlp.c_fc.weight"] == "hidden"
    assert cls["transformer.wpe.weight"] == "input"
    assert cls["transformer.ln_f.weight"] == "vector"
    assert model.lm_head.weight is model.transformer.wte.weight
    # the readout use of the tied embedding gets 1/width_mult; the embedding use does not
    wte = par["transformer.wte.weight"]
    assert wte.multiplier == 1 and wte.readout_use == "lm_head"
    assert wte.readout_multiplier == pytest.approx(1 / 4) == par.readout_multiplier
    assert len(par.attention) == 2 and par.attention[0][2] == pytest.approx(math.sqrt(16) / 64)
    ids = torch.randint(0, 97, (2, 8), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits = model(ids).logits
        emb = model.transformer.wte(ids)
    assert torch.isfinite(logits).all()
    par.remove()
    with torch.no_grad():
        assert model(ids).logits.std() > 2 * logits.std()    # the 1/4 readout multiplier is gone
        torch.testing.assert_close(model.transformer.wte(ids), emb)


def test_depth_sqrt_scales_residual_branches_found_by_the_description():
    model = _gpt2(64, n_layer=4)
    par = initlab.parametrize(model, "mup", base=lambda: _gpt2(32, n_layer=4), seed=0,
                              depth="sqrt", base_depth=2)
    assert par.n_branches == 8                       # 4 blocks x (attention, MLP)
    assert par.branch_multiplier == pytest.approx(math.sqrt(2 / 8))
    assert par["transformer.h.0.mlp.c_proj.weight"].lr_adam == pytest.approx(
        math.sqrt(2 / 8) / 2)                         # μP's 1/m_in times the depth factor
    assert par["transformer.wte.weight"].lr_adam == pytest.approx(1.0)


# ----------------------------------------------------------------------------- coord check

@pytest.fixture(scope="module")
def coord_data():
    g = torch.Generator().manual_seed(0)
    return torch.randn(64, 8, generator=g), torch.randint(0, 3, (64,), generator=g)


def _small_mlp(w):
    return mlp(w, d_in=8, d_out=3)


def test_coord_check_sp_breaks_and_names_the_layers(coord_data):
    cc = initlab.coord_check(_small_mlp, [64, 128, 256, 512], coord_data,
                             parametrization="sp", steps=3, seeds=(0, 1), lr=1e-2)
    v = cc.verdicts()
    # under SP with Adam the hidden layer's and the readout's coordinates grow with width
    # (slopes ~0.7 and ~1.3 here, against a tolerance of 0.1); the input layer stays put
    assert v["2"][0] == "growing" and v["4"][0] == "growing"
    assert v["0"][0] == "stable"
    assert set(cc.breaking) == {"2", "4", ""}
    assert "break it: 2, 4" in str(cc)


def test_coord_check_mup_is_stable(coord_data):
    cc = initlab.coord_check(_small_mlp, [64, 128, 256, 512], coord_data,
                             parametrization="mup", steps=3, seeds=(0, 1), lr=1e-2)
    assert cc.breaking == [], str(cc)
    assert max(abs(s) for _, s, _ in cc.verdicts().values()) < cc.tolerance
    d = cc.to_dict()
    assert d["verdicts"]["4"]["verdict"] == "stable" and len(d["records"]) > 0


def test_coord_check_errors(coord_data):
    with pytest.raises(InitlabError, match="at least 3 distinct widths"):
        initlab.coord_check(_small_mlp, [64, 128], coord_data)
    with pytest.raises(TypeError, match="`data`"):
        initlab.coord_check(_small_mlp, [64, 128, 256], coord_data[0])
    with pytest.raises(InitlabError, match="`from_step`"):
        initlab.coord_check(_small_mlp, [64, 128, 256], coord_data, steps=1)


def test_coord_check_plot(tmp_path, coord_data):
    cc = initlab.coord_check(_small_mlp, [32, 64, 128], coord_data, parametrization="mup",
                             steps=2)
    path = cc.plot(tmp_path / "cc.png")
    assert path.stat().st_size > 5000
    assert copy.deepcopy(cc.to_dict())["widths"] == [32, 64, 128]


def test_a_fixed_std_base_plan_gets_mup_hidden_std_from_the_base_width():
    # GPT-2's plan draws N(0, 0.02^2) at every width; μP's hidden weights need
    # (base std) / sqrt(m_in): 0.02 / 2 at 4x the base width, as mup.init.normal_ gives
    model = _gpt2(128)
    par = initlab.parametrize(model, "mup", base=lambda: _gpt2(32), seed=0, init="gpt2")
    fc = par["transformer.h.0.mlp.c_fc.weight"]
    assert fc.init_scale == pytest.approx(0.5)
    # 128 x 512 draws: the sample std's relative sampling error is ~1/sqrt(2n) = 0.2%
    assert fc.stored_std == pytest.approx(0.01, rel=0.02)
    assert par["transformer.wte.weight"].init_scale == pytest.approx(1.0)   # input: base std
    # torch's default plan: the draw already has std 1/sqrt(fan_in), so it is kept (mup's rule)
    par2 = initlab.parametrize(_gpt2(128), "mup", base=lambda: _gpt2(32), seed=0)
    assert par2["transformer.h.0.mlp.c_fc.weight"].init_scale == pytest.approx(1.0)


def test_apply_with_a_parametrization_name_returns_its_report():
    m = mlp(256)
    report = initlab.apply(m, "mup", seed=0, base=lambda: mlp(64))
    assert report.parametrization is not None
    assert report["4.weight"].multipliers["forward"] == pytest.approx(1 / 4)
    assert report["2.weight"].multipliers["lr_adam"] == pytest.approx(1 / 4)
    assert "lr x adam" in report.table()
    d = report.to_dict()
    assert d["parametrization"]["parametrization"] == "mup"
    assert d["parameters"][4]["multipliers"]["lr_sgd"] == pytest.approx(4.0)
    groups = initlab.param_groups(m, report, lr=1e-3)
    assert sum(len(g["params"]) for g in groups) == 6
    with pytest.raises(InitlabError, match="`base`"):
        initlab.apply(mlp(64), "mup", seed=0)
    with pytest.raises(InitlabError, match="width parametrization"):
        initlab.plans.get("ntk")
    sp = initlab.apply(mlp(64), "sp", seed=0)       # SP needs no base
    assert all(r.multipliers["forward"] == 1 for r in sp.records)


def test_coord_check_cli(tmp_path, capsys):
    from initlab.cli import main

    src = tmp_path / "models.py"
    src.write_text("import torch.nn as nn\n\ndef mlp(width):\n    return nn.Sequential("
                   "nn.Linear(8, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), "
                   "nn.Linear(width, 3))\n")
    args = ["coord-check", f"{src}:mlp", "--widths", "64,128,256", "--input-shape", "8",
            "--classes", "3", "--seeds", "0,1", "--fail"]
    assert main([*args, "--parametrization", "sp"]) == 1      # SP breaks: exit 1 with --fail
    out = capsys.readouterr().out
    assert "growing" in out and "break it" in out
    assert main([*args, "--parametrization", "mup", "--json",
                 "--plot", str(tmp_path / "cc.png")]) == 0
    assert json.loads(capsys.readouterr().out)["verdicts"]["4"]["verdict"] == "stable"
    assert (tmp_path / "cc.png").stat().st_size > 5000


# ------------------------------------------------------------------------- query zero init
def _queries(model):
    from initlab.modelinit.params import query_parts

    parts, notes = query_parts(model)
    return {(q.name, q.axis, q.start, q.stop) for q in parts}, notes


def test_query_parts_locate_the_query_in_every_attention_kind():
    """The one owner of "which parameter is the query": separate projections (our RowAttention,
    Llama's q_proj, BERT's query), nn.MultiheadAttention's packed in_proj (first E rows) and
    GPT-2's packed c_attn Conv1D (first E columns of its (in, 3E) weight)."""
    from hf_models import bert, gpt2, llama
    from initlab.lab.models import RowTransformer

    got, notes = _queries(RowTransformer(32, rows=4, cols=4, n_layer=2))
    assert got == {(f"blocks.{i}.attn.q_proj.{t}", 0, None, None) for i in (0, 1)
                   for t in ("weight", "bias")} and not notes
    mha = nn.TransformerEncoderLayer(24, 3, 48, batch_first=True)
    got, _ = _queries(mha)
    assert got == {("self_attn.in_proj_weight", 0, 0, 24), ("self_attn.in_proj_bias", 0, 0, 24)}
    got, _ = _queries(gpt2(n_embd=64))
    assert got == {(f"transformer.h.{i}.attn.c_attn.{t}", ax, 0, 64) for i in (0, 1)
                   for t, ax in (("weight", 1), ("bias", 0))}
    got, _ = _queries(llama())
    assert got == {(f"model.layers.{i}.self_attn.q_proj.weight", 0, None, None) for i in (0, 1)}
    got, _ = _queries(bert())
    assert got == {(f"bert.encoder.layer.{i}.attention.self.query.{t}", 0, None, None)
                   for i in (0, 1) for t in ("weight", "bias")}
    assert _queries(mlp(64)) == (set(), [])


def test_query_part_needs_both_ends_of_its_range():
    # a range with one end once built, and its view() raised a bare TypeError (None - start)
    from initlab.modelinit.params import QueryPart

    t = torch.zeros(6, 4)
    for start, stop in ((0, None), (None, 2)):
        with pytest.raises(InitlabError, match=r"`start, stop` must be given together.*Fix:"):
            QueryPart("attn", "attn.w", t, 0, start, stop)
    assert QueryPart("attn", "attn.w", t, 0, 2, 4).view().shape == (2, 4)
    assert QueryPart("attn", "attn.w", t).view() is t


def test_query_zero_init_zeroes_the_query_and_nothing_else():
    """Under μP with query_zero_init the query parts are zero and every other value equals the
    run without it (same seed); attention then starts uniform (softmax of zero logits)."""
    from hf_models import gpt2

    def make(w):
        return gpt2(n_embd=w, n_head=2, vocab_size=97)

    a, b = make(64), make(64)
    pa = initlab.parametrize(a, "mup", base=lambda: make(32), seed=3)
    pb = initlab.parametrize(b, "mup", base=lambda: make(32), seed=3, query_zero_init=True)
    sa, sb = a.state_dict(), b.state_dict()
    for n in sa:
        if n.endswith("attn.c_attn.weight"):
            assert not sb[n][:, :64].any() and torch.equal(sb[n][:, 64:], sa[n][:, 64:])
        elif n.endswith("attn.c_attn.bias"):
            assert not sb[n][:64].any() and torch.equal(sb[n][64:], sa[n][64:])
        else:
            assert torch.equal(sa[n], sb[n]), n
    rec = {r.name: r for r in pb.report.records}["transformer.h.0.attn.c_attn.weight"]
    assert any("query of `transformer.h.0.attn` zeroed" in n and "64 of 192 along dim 1" in n
               for n in rec.notes)
    assert rec.expected_std is None
    # measured again after the zeroing (the report's std is the population std, ddof 0)
    assert rec.std == pytest.approx(float(sb["transformer.h.0.attn.c_attn.weight"].std(
        correction=0)), rel=1e-5)
    pa.remove()
    pb.remove()


def test_query_zero_init_on_the_lab_transformer_gives_uniform_attention():
    from initlab.lab.models import RowTransformer

    m = RowTransformer(32, rows=4, cols=4, n_layer=1)
    initlab.parametrize(m, "mup", base=lambda: RowTransformer(16, rows=4, cols=4, n_layer=1),
                        seed=0, query_zero_init=True)
    att = m.blocks[0].attn
    assert not att.q_proj.weight.any() and not att.q_proj.bias.any()
    assert att.k_proj.weight.abs().sum() > 0
    seen = {}
    h = att.register_forward_hook(lambda mod, args, out: seen.setdefault("x", args[0]))
    with torch.no_grad():
        m(torch.randn(3, 16, generator=torch.Generator().manual_seed(0)))
    h.remove()
    x = seen["x"]
    with torch.no_grad():
        v = att.v_proj(x)
        expected = att.o_proj(v.mean(dim=1, keepdim=True).expand_as(v))
        torch.testing.assert_close(att(x), expected, rtol=1e-5, atol=1e-6)


def test_query_zero_init_without_attention_is_an_error_and_changes_nothing():
    m = mlp(128)
    before = {n: p.detach().clone() for n, p in m.state_dict().items()}
    with pytest.raises(InitlabError, match="`query_zero_init` needs attention modules"):
        initlab.parametrize(m, "mup", base=lambda: mlp(64), seed=0, query_zero_init=True)
    assert all(torch.equal(before[n], p) for n, p in m.state_dict().items())


def test_query_zero_init_refuses_a_parametrized_query():
    # a weight computed by torch.nn.utils.parametrize is not stored: zeroing it would change
    # nothing, so it is refused before anything is drawn
    from torch.nn.utils import parametrizations

    from initlab.lab.models import RowTransformer

    def make(w):
        return RowTransformer(w, rows=4, cols=4, n_layer=1)

    m = make(32)
    parametrizations.weight_norm(m.blocks[0].attn.q_proj)
    before = {n: p.detach().clone() for n, p in m.state_dict().items()}
    with pytest.raises(InitlabError, match="would zero queries that a parametrization computes"):
        initlab.parametrize(m, "mup", base=lambda: make(16), seed=0, query_zero_init=True)
    assert all(torch.equal(before[n], p) for n, p in m.state_dict().items())


def test_a_forward_multiplier_on_a_module_with_two_matrices_is_refused_before_any_write():
    # ntk's hidden multiplier on an LSTM's weight_hh would be a pre-hook scaling the LSTM's
    # input, i.e. weight_ih's contribution: refused, and nothing is written
    class Net(nn.Module):
        def __init__(self, w):
            super().__init__()
            self.rnn, self.head = nn.LSTM(8, w, batch_first=True), nn.Linear(w, 3)

        def forward(self, x):
            return self.head(self.rnn(x)[0])

    m = Net(64)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    with pytest.raises(InitlabError, match=r"`rnn` \(LSTM\) holds 2 matrices"):
        initlab.parametrize(m, "ntk", base=lambda: Net(16), seed=0)
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())
    assert not m.rnn._forward_pre_hooks
    par = initlab.parametrize(m, "mup", base=lambda: Net(16), seed=0)  # no hidden multiplier
    assert par["rnn.weight_hh_l0"].klass == "hidden" and par["rnn.weight_hh_l0"].multiplier == 1
