"""Width parametrizations of models with *free* weights (a parameter that the module's own
``einsum``/``@`` reads as a layer's weight): their width class comes from the fans of that use,
not from their stored shape, and their forward multiplier is a parametrization of the parameter
(their module holds other matrices, so the usual pre-hook on its input cannot be it). XLNet from
small configs, and a user's module beside the same network written with ``nn.Linear``."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import transformers

import initlab
from initlab.core.validation import InitlabError


def xlnet(d: int, heads: int = 4) -> nn.Module:
    return transformers.XLNetLMHeadModel(transformers.XLNetConfig(
        vocab_size=128, d_model=d, n_layer=2, n_head=heads, d_inner=2 * d, dropout=0.0))


class FreeNet(nn.Module):
    """in -> relu(h @ W + b) -> h @ R: a hidden free weight stored (in, out) and a free readout
    (w, 3), whose torch-layout reading would take fan_in = 3 (its fixed dimension)."""

    def __init__(self, w: int) -> None:
        super().__init__()
        self.inp = nn.Linear(8, w)
        self.W = nn.Parameter(torch.zeros(w, w))   # every plan here draws it
        self.b = nn.Parameter(torch.zeros(w))
        self.R = nn.Parameter(torch.zeros(w, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.inp(x))
        h = torch.relu(torch.einsum("bi,io->bo", h, self.W) + self.b)
        return torch.einsum("bi,io->bo", h, self.R)


class LinearNet(nn.Module):
    """The same network with nn.Linear layers."""

    def __init__(self, w: int) -> None:
        super().__init__()
        self.inp, self.W, self.R = nn.Linear(8, w), nn.Linear(w, w), nn.Linear(w, 3, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.R(torch.relu(self.W(torch.relu(self.inp(x)))))


@pytest.mark.parametrize("name", ["mup", "ntk", "mfp"])
def test_free_weights_get_the_scalings_of_the_same_linear_layers(name):
    free = initlab.parametrize(FreeNet(64), name, base=lambda: FreeNet(16), seed=0)
    lin = initlab.parametrize(LinearNet(64), name, base=lambda: LinearNet(16), seed=0)
    for fname, lname in (("W", "W.weight"), ("b", "W.bias"), ("R", "R.weight"),
                         ("inp.weight", "inp.weight")):
        f, g = free[fname], lin[lname]
        assert (f.klass, f.m_in, f.m_out) == (g.klass, g.m_in, g.m_out), fname
        assert (f.multiplier, f.lr_adam, f.lr_sgd, f.init_scale) == pytest.approx(
            (g.multiplier, g.lr_adam, g.lr_sgd, g.init_scale), rel=1e-12), fname
    assert free["R"].klass == "output" and free["R"].m_in == 4.0
    assert free.readout_multiplier == pytest.approx(lin.readout_multiplier)


def test_a_free_weights_multiplier_is_a_removable_parametrization():
    torch.manual_seed(0)
    m = FreeNet(64)
    names = [n for n, _ in m.named_parameters()]
    stored, w = m.R, m.W
    par = initlab.parametrize(m, "ntk", base=lambda: FreeNet(16), seed=0)
    x = torch.randn(5, 8)
    h = torch.relu(m.inp(x))
    h = torch.relu(h @ (w * par["W"].multiplier) + m.b)
    expected = h @ (stored * par["R"].multiplier)
    assert par["W"].multiplier == pytest.approx(0.5) and par["R"].multiplier == pytest.approx(0.5)
    torch.testing.assert_close(m(x), expected, rtol=1e-6, atol=1e-7)
    # the stored tensor is the one the optimizer's groups hold
    groups = par.param_groups(lr=0.1, optimizer="sgd")
    assert any(p is stored for g in groups for p in g["params"])
    par.remove()
    par.remove()   # twice is safe
    assert m.R is stored and m.W is w and [n for n, _ in m.named_parameters()] == names
    h = torch.relu(torch.relu(m.inp(x)) @ w + m.b)
    torch.testing.assert_close(m(x), h @ stored, rtol=1e-6, atol=1e-7)


def test_xlnets_einsum_weights_get_their_width_classes_from_their_use():
    """XLNet's q is (d_model, heads, head) and read by einsum("ibh,hnd->ibnd"): before, its
    torch-layout reading made the head size a kernel dimension and μP refused the model."""
    par = initlab.parametrize(xlnet(64), "mup", base=lambda: xlnet(32), seed=0)
    for w in ("q", "k", "v", "o", "r"):
        s = par[f"transformer.layer.0.rel_attn.{w}"]
        assert (s.klass, s.m_in, s.m_out, s.lr_adam) == ("hidden", 2.0, 2.0, 0.5), w
    for b in ("r_w_bias", "r_r_bias", "r_s_bias"):   # the query's free biases, one per unit
        s = par[f"transformer.layer.0.rel_attn.{b}"]
        assert (s.klass, s.m_out) == ("vector", 2.0), b
    # seg_embed (2, heads, head), read by einsum("ibnd,snd->ibns"): fan_in the head size (8 ->
    # 16), fan_out the 2 segments: a readout of the segment scores, multiplier 1/2
    seg = par["transformer.layer.0.rel_attn.seg_embed"]
    assert (seg.klass, seg.m_in, seg.multiplier) == ("output", 2.0, 0.5)
    # its stored std is the base's: torch's default with fan_in 8 (uniform, std 1/sqrt(3 * 8));
    # 1,024 draws: std's relative sampling error ~ 1/sqrt(2 * 1024) = 2.2 %, tolerance 4 sd
    assert seg.stored_std == pytest.approx(1 / math.sqrt(24), rel=0.09)
    # μP's 1/d attention: XLNet's `scale` (1/sqrt(d_head)) becomes sqrt(8)/16
    assert ("transformer.layer.0.rel_attn", 0.25, pytest.approx(math.sqrt(8) / 16)) in \
        par.attention


def test_xlnet_with_more_heads_keeps_each_heads_segment_matrix():
    """The base has 2 heads of the same size: the heads are an einsum batch dimension of
    seg_embed, so its fans do not change and it is fixed; q's fan_out (heads x head) grows."""
    par = initlab.parametrize(xlnet(64), "mup", base=lambda: xlnet(32, heads=2), seed=0)
    assert par["transformer.layer.0.rel_attn.seg_embed"].klass == "fixed"
    q = par["transformer.layer.0.rel_attn.q"]
    assert (q.klass, q.m_in, q.m_out) == ("hidden", 2.0, 2.0)
    assert par.attention == []   # the head size is the base's


def test_xlnet_under_mup_trains_and_removes_cleanly():
    m = xlnet(64)
    names = [n for n, _ in m.named_parameters()]
    rel = m.transformer.layer[0].rel_attn
    par = initlab.parametrize(m, "mup", base=lambda: xlnet(32), seed=0)
    assert rel.scale == pytest.approx(math.sqrt(8) / 16)
    x = torch.randint(0, 128, (2, 8), generator=torch.Generator().manual_seed(0))
    seg = torch.zeros(2, 8, dtype=torch.long)
    seg[:, 4:] = 1
    opt = torch.optim.Adam(par.param_groups(lr=1e-3))
    loss = m(x, token_type_ids=seg, labels=x).loss
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
    par.remove()
    assert rel.scale == 0.25 and [n for n, _ in m.named_parameters()] == names
    assert type(rel).__name__ == "XLNetRelativeAttention"


def test_a_declared_base_cannot_give_a_free_weights_fans():
    shapes = {n: tuple(p.shape) for n, p in FreeNet(16).named_parameters()}
    m = FreeNet(64)
    before = [p.detach().clone() for p in m.parameters()]
    with pytest.raises(InitlabError, match=r"`base` must be a model .* free weights"):
        initlab.parametrize(m, "mup", base=shapes, seed=0)
    assert all(torch.equal(a, p) for a, p in zip(before, m.parameters()))   # nothing written


class ScaleNet(FreeNet):
    """FreeNet's parameters, but `W` scales the hidden units elementwise: no free use of it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.inp(x))
        h = torch.relu(h * self.W.mean(0) + self.b)
        return torch.einsum("bi,io->bo", h, self.R)


def test_the_base_or_delta_that_does_not_match_is_the_one_named_in_the_error():
    m = FreeNet(64)
    before = [p.detach().clone() for p in m.parameters()]
    # the delta's `W` is no free weight: the error names the delta, not the base
    with pytest.raises(InitlabError, match=r"`delta` must use `W` as the model does.*"
                                           r"the delta's description does not find it"):
        initlab.parametrize(m, "mup", base=lambda: FreeNet(16), delta=lambda: ScaleNet(32),
                            seed=0)
    # and a delta with other parameter names
    with pytest.raises(InitlabError, match=r"^`delta` must have the same parameters .* \"`delta` "
                                           r"has other parameters than the model"):
        initlab.parametrize(m, "mup", base=lambda: FreeNet(16), delta=lambda: LinearNet(32),
                            seed=0)
    assert all(torch.equal(a, p) for a, p in zip(before, m.parameters()))   # nothing written


def test_six_free_multipliers_on_one_module_are_removed_in_place():
    """Under NTK every hidden matrix has a multiplier: XLNet's attention module gets six
    parametrizations (q, k, v, o, r, seg_embed), and removing them restores its parameters'
    names and order (state_dict keys)."""
    m = xlnet(64)
    keys = list(m.state_dict())
    x = torch.randint(0, 128, (2, 8), generator=torch.Generator().manual_seed(1))
    par = initlab.parametrize(m, "ntk", base=lambda: xlnet(32), seed=0)
    rel = m.transformer.layer[0].rel_attn
    assert sorted(rel.parametrizations) == ["k", "o", "q", "r", "seg_embed", "v"]
    stored = rel.parametrizations.q.original
    torch.testing.assert_close(rel.q, stored * par["transformer.layer.0.rel_attn.q"].multiplier)
    assert par["transformer.layer.0.rel_attn.q"].multiplier == pytest.approx(2 ** -0.5)
    with_mult = m(x).logits
    par.remove()
    assert list(m.state_dict()) == keys and rel.q is stored
    assert not torch.allclose(m(x).logits, with_mult)   # the multipliers did act


def test_at_base_width_the_delta_tells_which_free_fans_are_width():
    """mup's set_base_shapes(model, base, delta): a model at its base width knows its widths
    from a second base; every multiplier is then 1 (μP at base width is SP)."""
    par = initlab.parametrize(xlnet(32), "mup", base=lambda: xlnet(32), delta=lambda: xlnet(64),
                              seed=0)
    q = par["transformer.layer.0.rel_attn.q"]
    seg = par["transformer.layer.0.rel_attn.seg_embed"]
    assert (q.klass, q.m_in, q.m_out) == ("hidden", 1.0, 1.0)
    assert (seg.klass, seg.m_in, seg.multiplier) == ("output", 1.0, 1.0)
    assert par["transformer.layer.0.rel_attn.r_w_bias"].klass == "vector"
    # without the delta nothing is width
    par0 = initlab.parametrize(xlnet(32), "mup", base=lambda: xlnet(32), seed=0)
    assert par0["transformer.layer.0.rel_attn.q"].klass == "fixed"


def test_coordinate_check_of_xlnet_sp_breaks_and_mup_keeps_its_hidden_layers():
    """Widths 32-256, 4 Adam steps at lr 1e-2, 2 seeds: under SP the MLP layers' activations
    grow with width (measured slopes +0.1 to +0.8); under μP every hidden layer is within the
    check's +-0.1 (measured |slope| <= 0.05). The tied readout's output shrinks under μP in these
    first steps: at init its logits are O(1/sqrt(width)) (μP's readout), and 4 steps at this lr do
    not yet give the O(1) update that dominates later; it is the only layer allowed to break."""
    x = torch.randint(0, 128, (4, 16), generator=torch.Generator().manual_seed(0))
    ws = [32, 64, 128, 256]
    sp = initlab.coord_check(xlnet, ws, (x, x), parametrization="sp", steps=4, lr=1e-2,
                             seeds=(0, 1))
    mup = initlab.coord_check(xlnet, ws, (x, x), parametrization="mup", steps=4, lr=1e-2,
                              seeds=(0, 1))
    ff = [f"transformer.layer.{i}.ff.layer_{j}" for i in (0, 1) for j in (1, 2)]
    assert {"transformer.layer.0.ff.layer_2", "transformer.layer.1.ff.layer_2"} <= set(
        sp.breaking)
    assert set(mup.breaking) <= {"lm_loss", ""}   # "": the model output
    verdicts = mup.verdicts()
    assert all(verdicts[m][0] == "stable" for m in ff)


def sam(hidden: int) -> nn.Module:
    return transformers.SamVisionModel(transformers.SamVisionConfig(
        hidden_size=hidden, num_hidden_layers=2, num_attention_heads=4, image_size=64,
        patch_size=16, use_rel_pos=True, window_size=2, global_attn_indexes=[1],
        output_channels=16, mlp_dim=2 * hidden))


def test_sams_relative_position_tables_get_their_multiplier_on_each_table():
    """SAM's (and GOT-OCR2's) attention holds two tables, rel_pos_h and rel_pos_w (offsets, head
    size), which its own code contracts with the queries over the head size: under μP each is
    an `output` with multiplier 1/m_in. A pre-hook on the module's input could be neither (it
    was refused); each table's parametrization is exact."""
    m = sam(64)
    keys = list(m.state_dict())
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    par = initlab.parametrize(m, "mup", base=lambda: sam(32), seed=0)
    att = m.vision_encoder.layers[0].attn
    for t in ("rel_pos_h", "rel_pos_w"):
        s = par[f"vision_encoder.layers.0.attn.{t}"]
        assert (s.klass, s.m_in, s.multiplier) == ("output", 2.0, 0.5)
        torch.testing.assert_close(getattr(att, t), att.parametrizations[t].original * 0.5)
    assert torch.isfinite(m(pixel_values=x).last_hidden_state).all()
    par.remove()
    assert list(m.state_dict()) == keys


class LearnedQueries(nn.Module):
    """Inkling-style learned queries (loops, heads, d), indexed by loop and read by the module's
    own attention over d: one width dimension, in a place where no matrix keeps its fans."""

    def __init__(self, w: int) -> None:
        super().__init__()
        self.inp = nn.Linear(8, w)
        self.query = nn.Parameter(torch.zeros(3, 2, w))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)                                    # (b, d)
        return torch.softmax(h @ self.query[1].t(), -1)    # (b, heads)


def test_a_tensor_with_one_width_dimension_off_the_fan_axes_is_a_vector_as_in_mup():
    """Before, μP refused the model ("makes a kernel dimension a width dimension"); mup counts
    a tensor with one infinite dimension as vector-like wherever it is, and so does initlab."""
    mup = pytest.importorskip("mup", reason="the reference package `mup` is not installed "
                                            "(.ci/run installs it with pip --no-deps)")
    with pytest.warns(UserWarning, match="matched no rule .* `query`"):   # torch has no init
        par = initlab.parametrize(LearnedQueries(64), "mup", base=lambda: LearnedQueries(16),
                                  seed=0)
    q = par["query"]
    assert (q.klass, q.m_out, q.multiplier, q.lr_adam, q.lr_sgd) == ("vector", 4.0, 1.0, 1.0, 4.0)
    ref = LearnedQueries(64)
    mup.set_base_shapes(ref, LearnedQueries(16), rescale_params=False)
    assert ref.query.infshape.ninf() == 1     # mup: vector-like (MuAdam: lr unscaled)
    # a 3-D tensor of a module initlab does not know with two such width dimensions is still
    # an error: which of them are fans is not known
    with pytest.raises(InitlabError, match="kernel dimension"):
        initlab.parametrize(nn.ModuleDict({"m": _TwoWide(64)}), "mup",
                            base=lambda: nn.ModuleDict({"m": _TwoWide(16)}), seed=0)


class _TwoWide(nn.Module):
    def __init__(self, w: int) -> None:
        super().__init__()
        self.t = nn.Parameter(torch.zeros(3, w, w))


class _Readout(nn.Module):
    def __init__(self, r: nn.Parameter) -> None:
        super().__init__()
        self.R = r

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bi,oi->bo", h, self.R)


class TiedReadouts(nn.Module):
    """Two heads sharing one readout tensor (3, w) of a module initlab does not know."""

    def __init__(self, w: int) -> None:
        super().__init__()
        self.inp = nn.Linear(8, w)
        r = nn.Parameter(torch.randn(3, w) / math.sqrt(w))
        self.a, self.b = _Readout(r), _Readout(r)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.inp(x))
        return self.a(h) + self.b(h)


def test_a_multiplier_on_a_tensor_tied_across_modules_is_refused_before_any_write():
    m = TiedReadouts(64)
    before = [p.detach().clone() for p in m.parameters()]
    with pytest.raises(InitlabError, match=r"2 modules use that tensor"):
        initlab.parametrize(m, "mup", base=lambda: TiedReadouts(16), seed=0)
    assert all(torch.equal(a, p) for a, p in zip(before, m.parameters()))
    assert not hasattr(m.a, "parametrizations")
