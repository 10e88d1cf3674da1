"""A user's own convolution: a leaf module of a class initlab does not know whose forward is one
``F.conv{1,2,3}d`` with its own kernel (and bias, in the call or added after it). The probe
reads it as a free weight with the fans of a conv kernel and the conv's channels
(``LayerInfo.conv``), so every plan draws it as ``nn.Conv2d``: ``auto``'s and ``isometry``'s
delta-orthogonal kernels included, and the doctor takes its channels as its units."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import initlab
from initlab.diagnostics.findings import _net
from initlab.modelinit.describe import describe
from test_user_linear import assert_same_scalings


class MyConv(nn.Module):
    """``F.conv2d(x, self.weight, self.bias, padding=1, groups=...)``."""

    def __init__(self, c_in: int, c_out: int, k: int = 3, groups: int = 1) -> None:
        super().__init__()
        self.groups = groups
        self.weight = nn.Parameter(torch.zeros(c_out, c_in // groups, k, k))
        self.bias = nn.Parameter(torch.zeros(c_out))

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, padding=self.weight.shape[-1] // 2,
                        groups=self.groups)


class BiasAfter(MyConv):
    """The bias added after the convolution, through a view: ``conv(x, W) + b.view(1,-1,1,1)``."""

    def forward(self, x):
        y = F.conv2d(x, self.weight, padding=self.weight.shape[-1] // 2, groups=self.groups)
        return y + self.bias.view(1, -1, 1, 1)


def nn_conv(c_in: int, c_out: int, k: int = 3, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, k, padding=k // 2, groups=groups)


class CNN(nn.Module):
    """3 -> w (act) -> [w -> w act] x depth -> mean pool -> Linear readout; with a residual
    block [w -> w relu -> w] when ``residual``."""

    def __init__(self, conv=nn_conv, act=torch.tanh, depth: int = 3, w: int = 8,
                 residual: bool = False, groups: int = 1) -> None:
        super().__init__()
        self.act, self.residual = act, residual
        self.inp = conv(3, w)
        self.body = nn.ModuleList(conv(w, w, groups=groups) for _ in range(depth))
        self.up, self.down = (conv(w, w), conv(w, w)) if residual else (None, None)
        self.head = nn.Linear(w, 5)

    def forward(self, x):
        h = self.act(self.inp(x))
        for c in self.body:
            h = self.act(c(h))
        if self.residual:
            h = h + self.down(torch.relu(self.up(h)))
        return self.head(h.mean((2, 3)))


def _layers(model, batch):
    """module name -> (activation, kernel fans, conv channels, readout, residual branch, biases)."""
    d = describe(model, batch=batch)
    params = {p.name: p for p in d.params}
    out = {}
    for layer in d.layers:
        mod = layer.name.removesuffix(".weight")
        biases = tuple(b.removeprefix(mod) for b in layer.biases) if layer.kind == "free" \
            else (".bias",) if f"{mod}.bias" in params else ()
        out[mod] = (layer.activation_name, tuple(params[f"{mod}.weight"].fans), layer.conv,
                    layer.is_readout, layer.residual_branch, biases)
    return out


@pytest.mark.parametrize("conv", [MyConv, BiasAfter])
def test_a_users_conv_layer_is_described_as_the_same_nn_conv2d(conv):
    batch = torch.randn(2, 3, 8, 8)
    got = _layers(CNN(conv, residual=True), batch)
    want = _layers(CNN(residual=True), batch)
    assert got == want
    assert want["body.0"][0] == "tanh" and want["up"][0] == "relu"
    # an (8, 8, 3, 3) kernel: fans 8 * 9 both ways; channels (in/groups, out, groups)
    assert want["body.0"][1:3] == (((72, 72),), (8, 8, 1))
    assert want["down"][4] is not None and want["head"][3]
    d = describe(CNN(conv), batch=batch)
    layer = d.layer("body.0.weight")
    assert (layer.kind, layer.use, layer.module_output) == ("free", "F.conv2d", True)


def test_a_grouped_users_conv_carries_its_groups():
    batch = torch.randn(2, 3, 8, 8)
    got = describe(CNN(MyConv, groups=4), batch=batch).layer("body.0.weight")
    want = describe(CNN(groups=4), batch=batch).layer("body.0")
    assert got.conv == want.conv == (2, 8, 4)
    assert got.fans == (2 * 9, 8 * 9)


ACTS = {"tanh": torch.tanh, "relu": torch.relu}


@pytest.mark.parametrize("act", ["tanh", "relu"])
@pytest.mark.parametrize("plan", ["auto", "isometry", "he", "glorot", "torch_default",
                                  "orthogonal"])
def test_every_plan_draws_a_users_conv_net_as_the_nn_conv_net(plan, act):
    """The same parameter names, the same stream, the same rules: bit for bit. A deep stack
    (plain depth 14) makes ``auto`` and ``isometry`` choose by depth (delta-orthogonal kernels
    for tanh, looks-linear ones for ReLU), which need the layer to be known as a conv."""
    batch = torch.randn(2, 3, 8, 8)
    ref = CNN(act=ACTS[act], depth=12)
    want = initlab.apply(ref, plan, seed=3, batch=batch)
    for conv in (MyConv, BiasAfter):
        m = CNN(conv, act=ACTS[act], depth=12)
        got = initlab.apply(m, plan, seed=3, batch=batch)
        assert got.unmatched == [], (conv, plan)
        for name, p in ref.named_parameters():
            assert torch.equal(dict(m.named_parameters())[name], p), (conv, plan, name)
            assert got[name].initializer == want[name].initializer, (conv, plan, name)
    if plan == "isometry":
        kernel = want["body.5.weight"].initializer
        assert kernel.startswith("delta_orthogonal" if act == "tanh" else "looks_linear"), kernel


def test_a_grouped_users_conv_gets_the_grouped_nn_convs_isometry_fallback():
    """Looks-linear kernels mirror all channels: a grouped conv keeps them apart, for a user's
    conv as for nn.Conv2d (the reason is in the report's `why`)."""
    batch = torch.randn(2, 3, 8, 8)
    got = initlab.apply(CNN(MyConv, act=torch.relu, depth=12, groups=2), "isometry", seed=0,
                        batch=batch)
    want = initlab.apply(CNN(act=torch.relu, depth=12, groups=2), "isometry", seed=0,
                         batch=batch)
    for k in range(12):
        a, b = got[f"body.{k}.weight"], want[f"body.{k}.weight"]
        assert a.initializer == b.initializer, k
    assert "grouped conv (groups = 2)" in got["body.3.weight"].why


def test_the_doctor_measures_a_users_conv_net_as_the_nn_conv_net():
    """Channels are a conv's units (axis 1 of its output), for a user's conv too: the per-unit
    statistics (dead units under ReLU, duplicate units) are the nn.Conv2d net's."""
    torch.manual_seed(0)
    ref = CNN(act=torch.relu, depth=4)
    user = CNN(MyConv, act=torch.relu, depth=4)
    initlab.apply(ref, "he", seed=0, batch=torch.randn(2, 3, 8, 8))
    with torch.no_grad():
        ref.body[1].bias[:4] = -50.0        # half the channels of body.1 dead
        ref.body[2].weight[3:].copy_(ref.body[2].weight[:1].expand(5, -1, -1, -1))
        ref.body[2].bias[3:] = ref.body[2].bias[0]   # 5 duplicates of channel 0
        user.load_state_dict(ref.state_dict())
    x, y = torch.randn(16, 3, 8, 8), torch.randint(0, 5, (16,))
    got, want = initlab.doctor(user, x, target=y), initlab.doctor(ref, x, target=y)
    assert [s.name for s in got.layers] == [s.name for s in want.layers]
    for s, r in zip(got.layers, want.layers):
        assert (s.activation, s.fan_in, s.fan_out, s.n_units, s.conv) == \
            (r.activation, r.fan_in, r.fan_out, r.n_units, r.conv), s.name
        assert (s.dead, s.duplicate_units, s.duplicate_outputs) == \
            (r.dead, r.duplicate_units, r.duplicate_outputs), s.name
        assert s.z_std == pytest.approx(r.z_std, rel=1e-5), s.name
        assert (s.spread is None) == (r.spread is None), s.name
        assert s.spread is None or s.spread == pytest.approx(r.spread, rel=1e-5, abs=1e-9)
    dead = next(s for s in got.layers if s.name == "body.1")
    assert dead.dead == 0.5 and dead.conv    # read over another axis, no unit is all dead
    assert next(s for s in got.layers if s.name == "body.2").duplicate_units == 5
    assert _net(got.layers)["layer"] == _net(want.layers)["layer"] == "conv"
    assert sorted(f.code for f in got.findings) == sorted(f.code for f in want.findings)


def test_the_doctor_takes_hf_conv1d_for_a_dense_layer():
    """GPT-2's Conv1D is a linear layer stored (in, out): the recommender is told "dense"."""
    import transformers

    cfg = transformers.GPT2Config(n_embd=32, n_layer=2, n_head=4, n_positions=16, vocab_size=64)
    m = transformers.GPT2LMHeadModel(cfg)
    rep = initlab.doctor(m, torch.randint(0, 64, (2, 8)))
    assert not any(s.conv for s in rep.layers)
    assert _net(rep.layers)["layer"] == "dense"


def test_lsuv_scales_a_users_conv_layers_as_nn_conv_ones():
    batch = torch.randn(16, 3, 8, 8)
    ref = CNN(depth=2)
    want = initlab.lsuv(ref, batch, seed=3)
    m = CNN(MyConv, depth=2)
    got = initlab.lsuv(m, batch, seed=3)
    assert [x.name for x in got.layers] == [x.name for x in want.layers]
    assert [x.final_std for x in got.layers] == pytest.approx(
        [x.final_std for x in want.layers], rel=1e-6)
    for name, p in ref.named_parameters():
        assert torch.equal(dict(m.named_parameters())[name], p), name


def test_a_net_that_starts_with_a_users_conv_is_probed_without_a_batch():
    d = describe(CNN(MyConv))
    assert d.method == "probe", d.notes
    assert _layers(CNN(MyConv), None) == _layers(CNN(MyConv), torch.randn(2, 3, 8, 8))


@pytest.mark.parametrize("name", ["mup", "ntk"])
def test_a_users_conv_net_gets_the_scalings_of_the_nn_conv_net(name):
    batch = torch.randn(2, 3, 8, 8)
    user = initlab.parametrize(CNN(MyConv, w=32), name, base=lambda: CNN(MyConv, w=8),
                               seed=0, batch=batch)
    ref = initlab.parametrize(CNN(w=32), name, base=lambda: CNN(w=8), seed=0, batch=batch)
    assert_same_scalings(user, ref, ("inp.weight", "inp.bias", "body.0.weight", "body.0.bias",
                                     "head.weight"))
    # torch's bias std 1/sqrt(fan_in) at the base width, kept as width grows 4x: x sqrt(4)
    assert ref["body.0.bias"].init_scale == pytest.approx(2.0)
    assert user["body.0.weight"].klass == "hidden" and user["inp.weight"].klass == "input"
    user.remove()
    ref.remove()


def test_a_conv_leaf_that_does_more_stays_opaque():
    class Standardized(MyConv):      # its kernel used elementwise too (weight standardization)
        def forward(self, x):
            w = self.weight - self.weight.mean((1, 2, 3), keepdim=True)
            return F.conv2d(x, w, self.bias, padding=1)

    class TwoKernels(MyConv):         # two convolutions with its kernel
        def forward(self, x):
            return F.conv2d(x, self.weight, padding=1) + F.conv2d(x, self.weight, padding=1)

    class GroupedTransposed(nn.Module):   # (in, out/groups, *k): units not one dimension
        def __init__(self, c_in, c_out):
            super().__init__()
            self.weight = nn.Parameter(torch.zeros(c_in, c_out // 2, 3, 3))

        def forward(self, x):
            return F.conv_transpose2d(x, self.weight, padding=1, groups=2)

    for cls in (Standardized, TwoKernels, GroupedTransposed):
        m = nn.Sequential(cls(4, 8), nn.ReLU(), nn_conv(8, 4))
        d = describe(m, batch=torch.randn(2, 4, 8, 8))
        assert [x.name for x in d.layers if x.name.startswith("0")] == [], cls
        with pytest.warns(UserWarning, match="matched no rule"):
            rep = initlab.apply(m, "auto", seed=0, batch=torch.randn(2, 4, 8, 8))
        assert "0.weight" in rep.unmatched, cls


def test_a_kernel_a_block_holds_itself_is_a_free_conv_weight():
    """A kernel held by a larger module and read by ``F.conv1d`` in its forward (not a leaf of
    its own): a free weight with a kernel's fans and the conv's channels."""

    class Block(nn.Module):
        def __init__(self, c: int = 6, k: int = 5) -> None:
            super().__init__()
            self.kernel = nn.Parameter(torch.zeros(2 * c, c, k))
            self.proj = nn.Linear(2 * c, c)

        def forward(self, x):                       # (batch, c, time)
            h = torch.tanh(F.conv1d(x, self.kernel, padding=2))
            return self.proj(h.transpose(1, 2))

    d = describe(Block(), batch=torch.randn(2, 6, 16))
    layer = d.layer("kernel")
    assert (layer.kind, layer.use, layer.conv, layer.fans) == ("free", "F.conv1d", (6, 12, 1),
                                                               (30, 60))
    assert layer.activation_name == "tanh" and not layer.module_output
    rep = initlab.apply(Block(), "auto", seed=0, batch=torch.randn(2, 6, 16))
    assert rep.unmatched == [] and rep["kernel"].initializer.startswith("glorot")
    assert [tuple(f) for f in rep["kernel"].fans] == [(30, 60)]


class MyConvTranspose(nn.Module):
    """``F.conv_transpose2d(x, self.weight, self.bias, stride=2)``, kernel (in, out, k, k)."""

    def __init__(self, c_in: int, c_out: int, k: int = 2) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(c_in, c_out, k, k))
        self.bias = nn.Parameter(torch.zeros(c_out))

    def forward(self, x):
        return F.conv_transpose2d(x, self.weight, self.bias, stride=2)


class Decoder(nn.Module):
    """A decoder: 6 -> 12 -> 4 channels, each a stride-2 transposed conv (ReLU, then a conv)."""

    def __init__(self, up=None) -> None:
        super().__init__()
        up = up or (lambda i, o: nn.ConvTranspose2d(i, o, 2, stride=2))
        self.up1, self.up2, self.out = up(6, 12), up(12, 4), nn_conv(4, 3)

    def forward(self, x):
        return self.out(torch.relu(self.up2(torch.relu(self.up1(x)))))


def test_a_users_transposed_conv_is_the_same_nn_convtranspose2d():
    """A transposed kernel (in, out, *k): torch's fan convention (fan_in from dimension 1, as
    nn.init reads nn.ConvTranspose2d), no delta-orthogonal form (``conv`` None), its units its
    output channels; every plan draws it bit for bit as nn.ConvTranspose2d."""
    batch = torch.randn(2, 6, 4, 4)
    d = describe(Decoder(MyConvTranspose), batch=batch)
    layer = d.layer("up1.weight")
    assert (layer.kind, layer.use, layer.conv, layer.transposed_conv, layer.channel_units) == \
        ("free", "F.conv_transpose2d", None, True, True)
    ref = describe(Decoder(), batch=batch).layer("up1")
    assert layer.fans == (12 * 4, 6 * 4) and d.param("up1.weight").fans == [(48, 24)]
    assert (ref.transposed_conv, ref.conv) == (True, None)
    assert layer.activation_name == ref.activation_name == "relu"
    for plan in ("auto", "he", "torch_default", "orthogonal"):
        want, m = Decoder(), Decoder(MyConvTranspose)
        a = initlab.apply(want, plan, seed=1, batch=batch)
        b = initlab.apply(m, plan, seed=1, batch=batch)
        assert b.unmatched == [], plan
        for name, p in want.named_parameters():
            assert torch.equal(dict(m.named_parameters())[name], p), (plan, name)
            assert a[name].initializer == b[name].initializer, (plan, name)


def test_the_doctor_counts_a_transposed_convs_output_channels_as_its_units():
    """nn.ConvTranspose2d(6, 12) has 12 units (its kernel's dimension 1), not 6; a user's
    transposed conv too. Five output channels made copies of channel 0 are 5 duplicate
    units and 5 duplicate outputs."""
    torch.manual_seed(0)
    ref, user = Decoder(), Decoder(MyConvTranspose)
    initlab.apply(ref, "he", seed=0, batch=torch.randn(2, 6, 4, 4))
    with torch.no_grad():
        ref.up1.weight[:, 7:] = ref.up1.weight[:, :1]
        ref.up1.bias[7:] = ref.up1.bias[0]
        user.load_state_dict(ref.state_dict())
    x = torch.randn(16, 6, 4, 4)
    for rep in (initlab.doctor(ref, x), initlab.doctor(user, x)):
        up1 = next(s for s in rep.layers if s.name == "up1")
        assert (up1.n_units, up1.fan_in, up1.fan_out) == (12, 48, 24)
        assert (up1.duplicate_units, up1.duplicate_outputs) == (5, 5)
        assert not up1.conv
