"""A user's own linear layer: a leaf module of a class initlab does not know whose forward is a
plain product with its own weight (``x @ self.weight + self.bias``, ``F.linear(x, self.weight,
self.bias)``, ``x @ self.weight.t()``). The probe reads it as a free weight: its fans come from
that use, so an ``(in, out)`` layout is read as such, and the activation after it, the readout
and the residual branches it closes are found as for ``nn.Linear``. A leaf that does anything
more stays an opaque unit, whose parameters no plan guesses at."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
import transformers

import initlab
from initlab.modelinit.describe import describe


class InOut(nn.Module):
    """Weight stored (in, out), as HF's Conv1D and JAX store it: ``x @ W + b``."""

    def __init__(self, n_in: int, n_out: int, bias: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(n_in, n_out))
        self.bias = nn.Parameter(torch.zeros(n_out)) if bias else None

    def forward(self, x):
        y = x @ self.weight
        return y + self.bias if self.bias is not None else y


class FLinear(nn.Module):
    """Torch layout (out, in) through ``F.linear``."""

    def __init__(self, n_in: int, n_out: int, bias: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(n_out, n_in))
        self.bias = nn.Parameter(torch.zeros(n_out)) if bias else None

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)


class Transposed(FLinear):
    """Torch layout read through a view: ``x.reshape(-1, in) @ W.t()``, reshaped back."""

    def forward(self, x):
        y = (x.reshape(-1, x.shape[-1]) @ self.weight.t()).reshape(*x.shape[:-1], -1)
        return y + self.bias if self.bias is not None else y


class ViewBias(InOut):
    """The bias read through a view after the product: ``x @ W + b.view(1, -1)``."""

    def forward(self, x):
        y = x @ self.weight
        return y + self.bias.view(*[1] * (x.dim() - 1), -1) if self.bias is not None else y


class Net(nn.Module):
    """12 -> 32 (gelu) -> residual block [32 -> 64 relu -> 32] -> 5 (readout)."""

    def __init__(self, layer=nn.Linear, w: int = 32) -> None:
        super().__init__()
        self.inp, self.up = layer(12, w), layer(w, 2 * w)
        self.down, self.out = layer(2 * w, w), layer(w, 5, bias=False)

    def forward(self, x):
        h = F.gelu(self.inp(x))
        h = h + self.down(torch.relu(self.up(h)))
        return self.out(h)


def _layers(model, batch):
    """name (of the module) -> (activation, fans, readout, residual branch, biases) for each
    layer of the description."""
    out = {}
    for layer in describe(model, batch=batch).layers:
        mod = layer.name.removesuffix(".weight")
        act = getattr(layer.activation, "name", layer.activation) if not isinstance(
            layer.activation, tuple) else layer.activation[0].name
        params = {p.name: p for p in describe(model, batch=batch).params}
        w = params[f"{mod}.weight"]
        out[mod] = (act, tuple(w.fans), layer.is_readout, layer.residual_branch,
                    tuple(b.removeprefix(mod) for b in layer.biases) if layer.kind == "free"
                    else (".bias",) if f"{mod}.bias" in params else ())
    return out


@pytest.mark.parametrize("layer", [InOut, FLinear, Transposed, ViewBias])
def test_a_users_linear_layer_is_described_as_the_same_nn_linear(layer):
    batch = torch.randn(4, 12)
    got, want = _layers(Net(layer), batch), _layers(Net(), batch)
    assert got == want
    assert want["up"][0] == "relu" and want["inp"][0] == "gelu" and want["out"][2]
    assert want["down"][3] is not None            # closes the residual branch


def test_auto_draws_a_users_in_out_weight_from_the_fans_of_its_use():
    torch.manual_seed(0)
    m = nn.Sequential(InOut(400, 100), nn.ReLU(), InOut(100, 3))
    rep = initlab.apply(m, "auto", seed=0, batch=torch.randn(2, 400))
    assert rep.unmatched == []
    assert [tuple(f) for f in rep["0.weight"].fans] == [(400, 100)]
    assert rep["0.weight"].initializer == "he_normal()"
    # 40,000 normal entries: the sample std's relative standard error is 1/sqrt(2n) = 0.35%;
    # 5 of them (1.8%) separate sqrt(2/400) from the torch-layout reading sqrt(2/100) (2x)
    assert abs(m[0].weight.std().item() / math.sqrt(2 / 400) - 1) < 5 / math.sqrt(2 * 40_000)
    assert torch.count_nonzero(m[0].bias) == 0
    assert rep["2.weight"].readout and "lecun" in rep["2.weight"].initializer


def test_a_leaf_that_does_more_than_one_product_stays_opaque():
    class TwoActivations(InOut):
        def forward(self, x):
            return torch.tanh(torch.relu(x @ self.weight + self.bias))

    class BiasAfterActivation(InOut):
        def forward(self, x):
            return torch.relu(x @ self.weight) + self.bias

    class TwoMatrices(InOut):
        def __init__(self, n_in, n_out):
            super().__init__(n_in, n_out)
            self.gate = nn.Parameter(torch.zeros(n_in, n_out))

        def forward(self, x):
            return x @ self.weight * (x @ self.gate)

    class Scaled(InOut):     # its weight used elementwise too
        def forward(self, x):
            return (x @ self.weight) * self.weight.sum(0)

    for cls in (TwoActivations, BiasAfterActivation, TwoMatrices, Scaled):
        m = nn.Sequential(nn.Linear(6, 8), cls(8, 4))
        d = describe(m, batch=torch.randn(2, 6))
        assert [layer.kind for layer in d.layers if layer.name.startswith("1")] == [], cls
        with pytest.warns(UserWarning, match="matched no rule"):
            rep = initlab.apply(m, "auto", seed=0, batch=torch.randn(2, 6))
        assert "1.weight" in rep.unmatched, cls


def assert_same_scalings(got, want, names) -> None:
    """Two parametrizations give ``names`` the same class, width ratios, multipliers, learning
    rates and init scale (float ratios of the same sizes: to 1e-12)."""
    for p in names:
        u, g = got[p], want[p]
        assert (u.klass, u.m_in, u.m_out) == (g.klass, g.m_in, g.m_out), p
        assert (u.multiplier, u.lr_adam, u.lr_sgd, u.init_scale) == pytest.approx(
            (g.multiplier, g.lr_adam, g.lr_sgd, g.init_scale), rel=1e-12), p


@pytest.mark.parametrize("name", ["mup", "ntk", "mfp"])
def test_a_users_linear_net_gets_the_scalings_of_the_nn_linear_net(name):
    batch = torch.randn(4, 12)
    user = initlab.parametrize(Net(InOut, 64), name, base=lambda: Net(InOut, 16), seed=0,
                               batch=batch)
    lin = initlab.parametrize(Net(nn.Linear, 64), name, base=lambda: Net(nn.Linear, 16),
                              seed=0, batch=batch)
    assert_same_scalings(user, lin, ("inp.weight", "inp.bias", "up.weight", "up.bias",
                                     "down.weight", "out.weight"))
    assert user["out.weight"].klass == "output" and user["inp.weight"].klass == "input"
    assert user.readout_multiplier == pytest.approx(lin.readout_multiplier)
    user.remove()
    lin.remove()


def _gpt2(replace: bool) -> nn.Module:
    cfg = transformers.GPT2Config(n_embd=32, n_layer=2, n_head=4, n_positions=16,
                                  vocab_size=64)
    torch.manual_seed(0)
    m = transformers.GPT2LMHeadModel(cfg)
    if replace:          # a user's own (in, out) layer in place of HF's Conv1D c_fc
        for block in m.transformer.h:
            block.mlp.c_fc = InOut(32, 128)
    return m


def test_a_users_linear_inside_gpt2_is_initialized_as_hfs_conv1d():
    batch = torch.randint(0, 64, (1, 8))
    ref = initlab.apply(_gpt2(False), "auto", seed=0, batch=batch)
    got = initlab.apply(_gpt2(True), "auto", seed=0, batch=batch)
    assert got.unmatched == []
    for i in range(2):
        for p in ("weight", "bias"):
            name = f"transformer.h.{i}.mlp.c_fc.{p}"
            assert got[name].initializer == ref[name].initializer, name
            assert got[name].fans == ref[name].fans, name
            assert got[name].activation == ref[name].activation, name
    assert "gelu" in got["transformer.h.0.mlp.c_fc.weight"].why


def test_a_free_weight_tied_across_modules_is_named_as_its_parameter():
    class Inner(nn.Module):
        def __init__(self, w):
            super().__init__()
            self.lin = nn.Linear(8, 8)
            self.w = w

        def forward(self, x):
            return self.lin(x) @ self.w

    class Outer(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(8, 16))
            self.inner = Inner(self.w)

        def forward(self, x):
            return self.inner(x)

    d = describe(Outer(), batch=torch.randn(2, 8))
    (p,) = [p for p in d.params if "w" in p.names]
    assert p.name == "w" and set(p.names) == {"w", "inner.w"}
    assert [layer.name for layer in d.layers if layer.kind == "free"] == [p.name]


def test_the_doctor_measures_a_users_linear_net_as_the_nn_linear_net():
    torch.manual_seed(0)
    lin = Net()
    user = Net(InOut)
    with torch.no_grad():        # the same network: each weight stored transposed
        for name in ("inp", "up", "down", "out"):
            a, b = getattr(lin, name), getattr(user, name)
            b.weight.copy_(a.weight.t())
            if a.bias is not None:
                b.bias.copy_(a.bias)
    x, y = torch.randn(64, 12), torch.randint(0, 5, (64,))
    ref, got = initlab.doctor(lin, x, target=y), initlab.doctor(user, x, target=y)
    assert [s.name for s in got.layers] == [s.name for s in ref.layers]
    for s, r in zip(got.layers, ref.layers):
        assert (s.activation, s.fan_in, s.fan_out, s.n_units) == \
            (r.activation, r.fan_in, r.fan_out, r.n_units), s.name
        assert s.z_std == pytest.approx(r.z_std, rel=1e-5), s.name
        assert s.lecun_std == pytest.approx(r.lecun_std, rel=1e-12), s.name
    assert len(got.blocks) == len(ref.blocks) == 1
    assert got.blocks[0].stream_std == pytest.approx(ref.blocks[0].stream_std, rel=1e-5)
    assert not any("did not run" in n for n in got.notes), got.notes


@pytest.mark.parametrize("plan", ["auto", "he", "glorot", "torch_default", "orthogonal"])
def test_every_plan_draws_a_users_linear_net_as_the_nn_linear_net(plan):
    """Stored (out, in), a user's layer gets nn.Linear's draws bit for bit (the same stream:
    the same parameter names). Stored (in, out), an orthogonal draw is the transpose of
    nn.Linear's (units are its columns, as for HF's Conv1D); elementwise draws come in the
    stored order, from the same distribution (tested above)."""
    batch = torch.randn(4, 12)
    ref = Net()
    initlab.apply(ref, plan, seed=3, batch=batch)
    for layer in (FLinear, Transposed, InOut):
        m = Net(layer)
        rep = initlab.apply(m, plan, seed=3, batch=batch)
        assert rep.unmatched == [], (layer, plan)
        for name in ("inp", "up", "down", "out"):
            got, want = getattr(m, name).weight, getattr(ref, name).weight
            if layer is InOut and plan != "orthogonal":
                assert got.shape == want.t().shape
                continue
            assert torch.equal(got.t() if layer is InOut else got, want), (layer, plan, name)


def test_lsuv_scales_a_users_linear_layers_as_nn_linear_ones():
    batch = torch.randn(32, 12)
    ref = Net()
    want = initlab.lsuv(ref, batch, seed=3)
    for layer in (FLinear, Transposed, InOut):
        m = Net(layer)
        got = initlab.lsuv(m, batch, seed=3)
        assert [x.name for x in got.layers] == [x.name for x in want.layers] == \
            ["inp", "up", "down", "out"]
        assert [x.final_std for x in got.layers] == pytest.approx(
            [x.final_std for x in want.layers], rel=1e-6)
        for name in ("inp", "up", "down", "out"):
            w = getattr(m, name).weight
            assert torch.equal(w.t() if layer is InOut else w, getattr(ref, name).weight)


def test_the_coordinate_check_of_a_users_linear_net_is_the_nn_linear_nets():
    """Under μP the user's readout carries its multiplier as a parametrization (its module then
    holds no parameter of its own): it is still measured, as itself."""
    torch.manual_seed(0)
    x, y = torch.randn(64, 12), torch.randint(0, 5, (64,))
    runs = {}
    for layer in (nn.Linear, FLinear):
        runs[layer] = initlab.coord_check(lambda w, layer=layer: Net(layer, w), [32, 64, 128],
                                          (x, y), parametrization="mup", steps=3,
                                          batch=x[:4])
    got, want = runs[FLinear], runs[nn.Linear]
    assert got.modules() == want.modules() == ["inp", "up", "down", "out", ""]
    # the hidden layers are stable; the readout may still shrink after 3 steps from μP's
    # O(1/width) readout at init, in both alike
    assert got.breaking == want.breaking and not {"inp", "up", "down"} & set(got.breaking)
    for m in want.modules():      # the same network, the same weights: the same sizes
        for t in range(3):
            assert got.sizes(m, t) == pytest.approx(want.sizes(m, t), rel=1e-5), (m, t)


@pytest.mark.parametrize("layer", [InOut, FLinear])
def test_a_net_that_starts_with_a_users_linear_layer_is_probed_without_a_batch(layer):
    """The input is built from the first layer's matrix, of either width (the stored layout is
    not known before the probe): no batch needed, the same description as with one."""
    d = describe(Net(layer))
    assert d.method == "probe", d.notes
    assert _layers(Net(layer), None) == _layers(Net(layer), torch.randn(4, 12))
    rep = initlab.apply(Net(layer), "auto", seed=0)
    assert rep.unmatched == [] and rep["up.weight"].initializer == "he_normal()"


class Dense(InOut):
    """A Keras-style dense layer: its activation inside, as a module it holds or a call."""

    def __init__(self, n_in, n_out, act=None):
        super().__init__(n_in, n_out)
        self.act = act

    def forward(self, x):
        y = x @ self.weight + self.bias
        return self.act(y) if self.act is not None else F.gelu(y)


def test_a_users_dense_layer_with_its_activation_inside_gets_that_activations_init():
    m = nn.Sequential(Dense(10, 40, nn.Tanh()), Dense(40, 40), InOut(40, 3))
    ref = nn.Sequential(nn.Linear(10, 40), nn.Tanh(), nn.Linear(40, 40), nn.GELU(),
                        nn.Linear(40, 3))
    got = initlab.apply(m, "auto", seed=0)          # input built from the first matrix
    want = initlab.apply(ref, "auto", seed=0)
    assert got.unmatched == []
    for g, w in (("0", "0"), ("1", "2"), ("2", "4")):
        a, b = got[f"{g}.weight"], want[f"{w}.weight"]
        assert (a.initializer, a.fans, a.activation) == (b.initializer, b.fans, b.activation)
    assert "inside `0`" in got["0.weight"].why and "inside `1`" in got["1.weight"].why
    d = describe(m)
    assert [layer.activation_inside for layer in d.layers] == [True, True, False]
    # the doctor does not apply gelu a second time to the module's output: it says so
    rep = initlab.doctor(m, torch.randn(32, 10), target=torch.randint(0, 3, (32,)))
    assert any("`1` (gelu): the activation runs inside the module" in n for n in rep.notes)
    row = next(s for s in rep.layers if s.name == "1")
    assert row.saturated is None


class Kernel(nn.Module):
    """Keras's names: a ``kernel`` stored (in, out), the activation a module it holds."""

    def __init__(self, n_in, n_out, act=None):
        super().__init__()
        self.kernel = nn.Parameter(torch.zeros(n_in, n_out))
        self.bias = nn.Parameter(torch.zeros(n_out))
        self.act = act

    def forward(self, x):
        y = x @ self.kernel + self.bias
        return self.act(y) if self.act is not None else y


def test_the_doctor_measures_a_dense_layer_and_the_activation_it_holds():
    """A user's layer is a row whatever its weight is called, and an activation module inside
    it is measured as the one after nn.Linear: z is its input, h its output, and |dL/dz| the
    gradient at its input; the nn.Linear + nn.Tanh net with the same weights gives the same
    numbers."""
    torch.manual_seed(0)
    ref = nn.Sequential(nn.Linear(10, 40), nn.Tanh(), nn.Linear(40, 40), nn.Tanh(),
                        nn.Linear(40, 3))
    user = nn.Sequential(Kernel(10, 40, nn.Tanh()), Kernel(40, 40, nn.Tanh()), Kernel(40, 3))
    with torch.no_grad():
        for u, r in zip(user, (ref[0], ref[2], ref[4])):
            u.kernel.copy_(3 * r.weight.t())     # large enough that tanh saturates somewhat
            u.bias.copy_(r.bias)
            r.weight.mul_(3)
    x, y = torch.randn(256, 10), torch.randint(0, 3, (256,))
    got, want = initlab.doctor(user, x, target=y), initlab.doctor(ref, x, target=y)
    assert [s.name for s in got.layers] == ["0", "1", "2"]
    assert [s.name for s in want.layers] == ["0", "2", "4"]
    for s, r in zip(got.layers, want.layers):
        assert (s.activation, s.fan_in, s.fan_out, s.n_units) == \
            (r.activation, r.fan_in, r.fan_out, r.n_units), s.name
        for field in ("z_std", "h_std", "saturated", "grad_out_rms", "grad_weight_ratio"):
            a, b = getattr(s, field), getattr(r, field)
            assert (a is None) == (b is None), (s.name, field)
            assert a is None or a == pytest.approx(b, rel=1e-5, abs=1e-12), (s.name, field)
    assert got.layers[0].saturated > 0 and got.layers[0].activation_module == "0 (inside)"
    assert not any("inside the module" in n for n in got.notes), got.notes
    assert not any("did not run" in n for n in got.notes), got.notes


class TiedHead(nn.Module):
    """A user's readout reading the input embedding's table: ``x @ emb.weight.t()``."""

    def __init__(self, table: nn.Parameter) -> None:
        super().__init__()
        self.weight = table

    def forward(self, x):
        return x @ self.weight.t()


class TinyLM(nn.Module):
    def __init__(self, head=None, w: int = 16) -> None:
        super().__init__()
        self.emb, self.mid = nn.Embedding(50, w), nn.Linear(w, w)
        self.head = head(self.emb.weight) if head is not None else nn.Linear(w, 50, bias=False)
        if head is None:
            self.head.weight = self.emb.weight

    def forward(self, ids):
        return self.head(torch.tanh(self.mid(self.emb(ids))))


def test_a_users_readout_tied_to_the_embedding_keeps_the_embedding_rule():
    """As an nn.Linear head tied to the embedding: the tensor is the embedding (its rule, its
    `why`), the readout of the description, and μP's classes and multipliers are the same."""
    batch = torch.randint(0, 50, (2, 5))
    got = initlab.apply(TinyLM(TiedHead), "auto", seed=0, batch=batch)
    want = initlab.apply(TinyLM(), "auto", seed=0, batch=batch)
    for name in ("emb.weight", "mid.weight"):
        a, b = got[name], want[name]
        assert (a.initializer, a.rule, a.why) == (b.initializer, b.rule, b.why), name
    assert "tied to the readout" in got["emb.weight"].why
    d = describe(TinyLM(TiedHead), batch=batch)
    assert [p.name for p in d.tied_embeddings()] == ["emb.weight"]
    par = {}
    for head in (TiedHead, None):
        par[head] = initlab.parametrize(TinyLM(head, 64), "mup", seed=0, batch=batch,
                                        base=lambda head=head: TinyLM(head, 16))
    assert_same_scalings(par[TiedHead], par[None], ("emb.weight", "mid.weight", "mid.bias"))
    assert par[TiedHead].readout_multiplier == pytest.approx(par[None].readout_multiplier)
    for p in par.values():
        p.remove()
